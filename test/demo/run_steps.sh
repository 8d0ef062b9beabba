#!/usr/bin/env bash
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER set): one psql per .sql
# step, or bash for a .sh step (steps that need pg_dump and friends).
set -euo pipefail
cd "$(dirname "$0")"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pgext CASCADE' >/dev/null
for step in [0-9][0-9]_*; do
  echo
  echo "================ ${step%.*} ================"
  case "$step" in
    *.sql) psql -X -q -v ON_ERROR_STOP=1 -P pager=off -f "$step" ;;
    *.sh)  bash "$step" ;;
  esac
done
echo
echo "demo finished: every step ran against a throwaway cluster that is now removed"
