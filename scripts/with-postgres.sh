#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD...
# Starts a throwaway PostgreSQL cluster (Debian packages) on a free loopback port, creates database `hyperbatch`,
# exports HYPERBATCH_POSTGRES_URL, runs CMD, stops the cluster on exit and returns CMD's exit code.
# initdb/pg_ctl refuse to run as root, so they run as the `postgres` user (swift-notes §9).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CMD..." >&2; exit 2; }

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && { echo "$d"; return; }; done
}
PGBIN="$(find_bin || true)"
if [ -z "$PGBIN" ]; then
  echo "with-postgres: installing PostgreSQL from Debian packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PGBIN="$(find_bin)"
fi

as_postgres() {
  if [ "$(id -un)" = postgres ]; then bash -c "$1"; else su postgres -s /bin/bash -c "$1"; fi
}

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
DIR="$(mktemp -d /tmp/hyperbatch-pg.XXXXXX)"
chown postgres:postgres "$DIR" 2>/dev/null || true
chmod 700 "$DIR"

cleanup() {
  as_postgres "'$PGBIN/pg_ctl' -D '$DIR/data' stop -m fast -w" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

as_postgres "'$PGBIN/initdb' -D '$DIR/data' -U postgres --auth=trust -E UTF8 >'$DIR/initdb.log' 2>&1" \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
as_postgres "'$PGBIN/pg_ctl' -D '$DIR/data' -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1\" -l '$DIR/server.log' start -w >/dev/null" \
  || { cat "$DIR/server.log" >&2; exit 1; }
as_postgres "'$PGBIN/createdb' -h 127.0.0.1 -p $PORT -U postgres hyperbatch"

export HYPERBATCH_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/hyperbatch"
echo "with-postgres: $HYPERBATCH_POSTGRES_URL ($("$PGBIN/postgres" --version))" >&2
set +e
"$@"
RC=$?
set -e
exit $RC
