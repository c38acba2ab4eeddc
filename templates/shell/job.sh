#!/bin/sh
# The job's entry point. Replace the lines below with the real work, and
# add a link in kuul.toml for each busybox command you use.
set -eu

echo "Hello from {{name}}"
echo "started at $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
