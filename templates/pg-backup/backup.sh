#!/bin/sh
# Dumps the PostgreSQL database named by the libpq variables as plain SQL
# into a timestamped file under $BACKUP_DIR (default /backup). When pg_dump
# fails, removes the partial file and exits with status 1.
set -eu

: "${PGHOST:?PGHOST must name the database server}"
: "${PGUSER:?PGUSER must name the database user}"
: "${PGDATABASE:?PGDATABASE must name the database to dump}"

pg_dump=/usr/lib/postgresql/15/bin/pg_dump
backup_dir=${BACKUP_DIR:-/backup}
timestamp=$(date -u '+%Y%m%dT%H%M%SZ')
file="$backup_dir/$PGDATABASE-$timestamp.sql"

mkdir -p "$backup_dir"

# Dump into a temporary name first, so that a failed run never leaves a
# file that looks like a complete backup.
if ! "$pg_dump" --no-password --format=plain --file="$file.partial"; then
  rm -f "$file.partial"
  echo "error: pg_dump of database \`$PGDATABASE\` on $PGHOST:${PGPORT:-5432} failed" >&2
  exit 1
fi
mv "$file.partial" "$file"

size=$(wc -c < "$file")
echo "wrote $file ($size bytes)"
