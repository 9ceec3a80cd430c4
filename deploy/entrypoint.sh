#!/bin/sh
# The image's command: `receiver serve` on port 8080, with Litestream beside it when
# LITESTREAM_REPLICA_URL is set. Arguments are added to serve's (the tests pass --host, --port).
#
# With a replica: a fresh volume (no database file) is first restored from the replica, if it
# holds one; then Litestream runs the service as its child (-exec), replicating every change
# until the service exits, and exits with it. SIGTERM to Litestream reaches the service, which
# finishes what is in flight. Litestream's own lines are JSON too (deploy/litestream.yml).
# A PostgreSQL RECEIVER_DB is served without Litestream, which copies SQLite files only (one
# warning line, backup.skipped).
set -eu

say() {  # a log line in the service's own form: say LEVEL EVENT HINT
    printf '{"event":"%s","level":"%s","timestamp":"%s","hint":"%s"}\n' \
        "$2" "$1" "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" "$3" >&2
}

serve="receiver serve --host 0.0.0.0 --port 8080"
if [ "$#" -gt 0 ]; then
    serve="$serve $*"
fi

if [ -z "${LITESTREAM_REPLICA_URL:-}" ]; then
    # shellcheck disable=SC2086  # serve is words on purpose
    exec $serve
fi

case "${RECEIVER_DB:-}" in
    postgresql://* | postgres://*)
        # Litestream copies a SQLite file; a PostgreSQL database is its provider's to back up.
        say warning backup.skipped "RECEIVER_DB is a PostgreSQL database, which Litestream \
cannot replicate: back it up with its provider's backups and unset LITESTREAM_REPLICA_URL"
        # shellcheck disable=SC2086
        exec $serve
        ;;
esac

RECEIVER_DB="${RECEIVER_DB:-data/receiver.db}"
export RECEIVER_DB
config="${LITESTREAM_CONFIG:-$(dirname "$0")/litestream.yml}"
mkdir -p "$(dirname "$RECEIVER_DB")"
if [ ! -e "$RECEIVER_DB" ]; then
    litestream restore -config "$config" -if-db-not-exists -if-replica-exists "$RECEIVER_DB"
    if [ -e "$RECEIVER_DB" ]; then
        say info backup.restored "no database on the volume: restored it from the replica"
    else
        say info backup.none "no database on the volume and none in the replica: a new one"
    fi
fi
exec litestream replicate -config "$config" -exec "$serve"
