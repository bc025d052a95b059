#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD...
# Starts a throwaway PostgreSQL cluster (Debian packages) on a free loopback port, creates database `hyperbatch`,
# exports HYPERBATCH_POSTGRES_URL, runs CMD, stops the cluster on exit and returns CMD's exit code.
# With openssl installed the cluster also accepts TLS (plain connections still work): a throwaway CA signs a server
# certificate for the name localhost only (so sslmode=verify-full to 127.0.0.1 fails as a wrong host name), and
# HYPERBATCH_POSTGRES_CA is the CA's path (unset without openssl).
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
T="$DIR/tls"
make_tls() {  # CA + server certificate into $T; the key belongs to postgres with mode 0600, as the server demands
  mkdir -p "$T" \
  && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=hyperbatch test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null \
  && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null \
  && printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$T/server.ext" \
  && openssl x509 -req -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/server.ext" -out "$T/server.crt" 2>/dev/null \
  && { chown -R postgres:postgres "$T" 2>/dev/null || true; } && chmod 600 "$T/server.key"
}
SSLOPTS=""
if ! command -v openssl >/dev/null; then
  echo "with-postgres: no openssl, TLS off (HYPERBATCH_POSTGRES_CA not set)" >&2
elif make_tls; then
  SSLOPTS="-c ssl=on -c ssl_cert_file='$T/server.crt' -c ssl_key_file='$T/server.key'"
else
  echo "with-postgres: making the TLS certificates failed, TLS off (HYPERBATCH_POSTGRES_CA not set)" >&2
fi
as_postgres "'$PGBIN/pg_ctl' -D '$DIR/data' -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1 $SSLOPTS\" -l '$DIR/server.log' start -w >/dev/null" \
  || { cat "$DIR/server.log" >&2; exit 1; }
as_postgres "'$PGBIN/createdb' -h 127.0.0.1 -p $PORT -U postgres hyperbatch"

export HYPERBATCH_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/hyperbatch"
[ -z "$SSLOPTS" ] || export HYPERBATCH_POSTGRES_CA="$T/ca.crt"
echo "with-postgres: $HYPERBATCH_POSTGRES_URL ($("$PGBIN/postgres" --version))${SSLOPTS:+, TLS CA $T/ca.crt}" >&2
set +e
"$@"
RC=$?
set -e
exit $RC
