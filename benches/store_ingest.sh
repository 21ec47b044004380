#!/usr/bin/env bash
# Sustained event ingest into the event store: SQLite (a file in a temporary folder) and
# PostgreSQL (a throw-away cluster started here on 127.0.0.1, Debian's postgresql package).
#
#   benches/store_ingest.sh [EVENTS] [BATCH]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-1000000}"
B="${2:-32768}"
(cd "$REPO" && cargo build --release -q -p gatehouse-benches --bin store_bench)
BIN="$REPO/target/release/store_bench"
"$BIN" sqlite "$N" "$B"

PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
DIR="$(mktemp -d)"
PORT=55432
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
trap 'as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
as_pg "$PGBIN/initdb" -A trust -U gatehouse -D "$DIR/data" >/dev/null
# Stock settings but for the listen address and socket folder (durable commits kept).
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-h 127.0.0.1 -p $PORT -k $DIR" start >/dev/null
/usr/bin/time -f "store_bench process: %U s user, %S s sys" "$BIN" postgres "$N" "$B" "host=127.0.0.1 port=$PORT user=gatehouse dbname=postgres"
