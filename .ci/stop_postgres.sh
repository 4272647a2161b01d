#!/usr/bin/env bash
# Stop the cluster started by .ci/start_postgres.sh (same SLUICE_CI_PG_DIR). Pass --purge to delete its data.
set -euo pipefail
BASE="${SLUICE_CI_PG_DIR:-/tmp/sluice-ci-pg}"
DATA="$BASE/data"
[ -f "$DATA/PG_VERSION" ] || { echo "stop_postgres: no cluster in $DATA" >&2; exit 0; }
VER="$(cat "$DATA/PG_VERSION")"
BINDIR="/usr/lib/postgresql/$VER/bin"
if [ "$(id -u)" -eq 0 ]; then AS=(runuser -u postgres --); else AS=(); fi
"${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
if [ "${1:-}" = "--purge" ]; then rm -rf "$BASE"; fi
