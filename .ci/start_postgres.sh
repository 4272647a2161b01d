#!/usr/bin/env bash
# Start a throwaway Postgres cluster for the test suite and print the line to export its URL.
#
#   eval "$(.ci/start_postgres.sh)"      # then: pytest ...  (tests read SLUICE_TEST_DATABASE_URL)
#
# Why a script: CI runs as root on a fresh Debian box. Postgres refuses to run as root, so the cluster
# runs as the `postgres` system user. If no server binaries exist, Debian's package is installed.
# Everything except the final `export ...` line goes to stderr so `eval` sees only that line.
# Env knobs: SLUICE_CI_PG_PORT (default 54329), SLUICE_CI_PG_DIR (default /tmp/sluice-ci-pg).
set -euo pipefail

PORT="${SLUICE_CI_PG_PORT:-54329}"
BASE="${SLUICE_CI_PG_DIR:-/tmp/sluice-ci-pg}"
DATA="$BASE/data"
ROLE=sluice
DB=sluice
say() { echo "start_postgres: $*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  return 1
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
  say "no Postgres server binaries found; installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq postgresql >&2
  BINDIR="$(find_bindir)" || { say "postgresql installed but no binaries under /usr/lib/postgresql"; exit 1; }
fi
say "using $BINDIR"

# Run Postgres tools as an unprivileged user when we are root.
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  AS=(runuser -u postgres --)
else
  AS=()
fi

mkdir -p "$BASE"
chmod 755 "$BASE"
[ "$(id -u)" -eq 0 ] && chown postgres "$BASE"

if "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  say "cluster in $DATA already running"
else
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initdb $DATA"
    "${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-instructions >&2
    cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$BASE'
max_connections = 400
shared_buffers = 256MB
max_wal_size = 2GB
log_min_messages = warning
CONF
  fi
  "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -w -t 60 -l "$BASE/server.log" start >&2
fi

PSQL=("${AS[@]}" "$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt)
# Tests create and drop one database per test, so the role needs CREATEDB; superuser keeps
# `DROP DATABASE ... WITH (FORCE)` and advisory-lock inspection simple on a throwaway CI cluster.
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
  "${PSQL[@]}" -c "CREATE ROLE $ROLE LOGIN SUPERUSER PASSWORD '$ROLE'" >&2
fi
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  "${PSQL[@]}" -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

echo "export SLUICE_TEST_DATABASE_URL=postgresql://$ROLE:$ROLE@127.0.0.1:$PORT/$DB"
