#!/bin/sh
# Prints a greeting, the current time in UTC and the user id the job runs as.
set -eu

echo "Hello from kuul"
echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
echo "uid=$(id -u)"
