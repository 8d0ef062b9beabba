#!/usr/bin/env bash
# Inside pg_virtualenv: start the fake Hetzner API, seed it, point the worker
# at it, run one reconciliation, count the fake's list calls, then fetch the
# same pages with curl for the baseline.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
N=${SERVERS:-10000}
PER_PAGE=50
EXPECTED=$(( (N + PER_PAGE - 1) / PER_PAGE ))
TIMEOUT=${RECONCILE_TIMEOUT:-600}

# q: psql printing bare values.
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# --- the fake, on a free loopback port; stopped on every exit
work=$(mktemp -d /tmp/pgext-bench-hetzner.XXXXXX)
token="hz-bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
FAKE_HETZNER_TOKEN=$token python3 ../fake/hetzner.py --port 0 --port-file "$work/port" \
  2>"$work/fake.log" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 300); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "the fake Hetzner API did not start:" >&2; cat "$work/fake.log" >&2; exit 1; }
base="http://127.0.0.1:$(cat "$work/port")"

# fake METHOD PATH [JSON]: one call of the fake's control API (/__fake/...).
fake() {
  if [ $# -gt 2 ]; then
    curl -sS -f -X "$1" -H 'content-type: application/json' --data "$3" "$base/__fake/$2"
  else
    curl -sS -f -X "$1" "$base/__fake/$2"
  fi
}

# --- the extension, the worker's configuration and the fleet
fake POST seed "{\"count\": $N, \"labels\": {\"managed-by\": \"pgext\"}, \"name_prefix\": \"bench-\"}" >/dev/null
q -c 'CREATE EXTENSION pgext CASCADE' >/dev/null
q -c "ALTER SYSTEM SET pgext.hetzner_api_url = '$base/v1'" \
  -c 'ALTER SYSTEM SET pgext.allow_insecure_urls = on' -c 'SELECT pg_reload_conf()' >/dev/null
# the token goes through the environment, never a command line or the output
HZ_TOKEN=$token q >/dev/null <<'SQL'
\getenv tok HZ_TOKEN
SELECT pgext.secret_set('hetzner:api_token', :'tok');
SQL

# wait_for SQL SECONDS WHAT: poll until SQL prints t; fail saying WHAT.
wait_for() {
  local deadline=$(( $(date +%s) + $2 ))
  until [ "$(q -c "$1")" = t ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out after $2 s waiting for: $3" >&2
      q -c "SELECT api, refusing, last_error FROM pgext.worker_api_status" >&2 || true
      q -c "SELECT task, last_ok, last_error, refusing FROM pgext.worker_status WHERE task = 'hetzner_reconcile'" >&2 || true
      exit 1
    fi
    sleep 0.05
  done
}
# the worker notices the extension within 10 s and a stored token within 5 s
wait_for "SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'hetzner'" 60 \
  'the worker to call the fake Hetzner API'

bench_header
echo "servers at the fake: $N (labels managed-by=pgext, none known to pgext.servers), per page: $PER_PAGE"

# --- the reconciliation
t0=$(date +%s.%N)
q -c "SELECT pgext.worker_run_now('hetzner_reconcile')" >/dev/null
wait_for "SELECT count(*) = 1 AND bool_and(finished_at IS NOT NULL) FROM pgext.hetzner_reconcile_runs" "$TIMEOUT" \
  'the reconciliation to finish'
t1=$(date +%s.%N)
IFS='|' read -r run_s pages seen run_error <<<"$(q -c "
  SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 3), pages, servers_seen, coalesce(last_error, '')
    FROM pgext.hetzner_reconcile_runs")"
orphans=$(q -c 'SELECT count(*) FROM pgext.server_orphans')
IFS='|' read -r recorded http_s <<<"$(q -c "
  SELECT count(*), round((sum(duration_ms) / 1000)::numeric, 3) FROM pgext.api_calls
   WHERE api = 'hetzner' AND method = 'GET' AND path LIKE '/servers?%' AND path NOT LIKE '%name=%'")"

# The fake's own count: GET /v1/servers without a name (a list page), and the
# paths, for curl to fetch the same pages.
fake GET 'state?servers=0&actions=0' >"$work/state.json"
python3 - "$work/state.json" "$work/paths" <<'PY'
import json, sys
from urllib.parse import urlsplit, parse_qs
st = json.load(open(sys.argv[1]))
pages = [c["path"] for c in st["calls"]
         if c["method"] == "GET" and urlsplit(c["path"]).path == "/v1/servers"
         and "name" not in parse_qs(urlsplit(c["path"]).query)]
with open(sys.argv[2], "w") as fh:
    fh.write("\n".join(pages) + "\n")
PY
list_calls=$(grep -c . "$work/paths" || true)
total_calls=$(python3 -c 'import json,sys; st=json.load(open(sys.argv[1])); print(st["counters"]["requests"])' "$work/state.json")

# --- the baseline: curl fetches the same pages one after another (one process,
# one kept-alive connection, like the worker's), the token in a private file
{
  echo "header = \"Authorization: Bearer $token\""
  while read -r p; do echo "url = \"$base$p\""; echo 'output = "/dev/null"'; done <"$work/paths"
} >"$work/curl.conf"
c0=$(date +%s.%N)
curl -sS -f --config "$work/curl.conf"
c1=$(date +%s.%N)

echo
echo "list calls: $list_calls (expected $EXPECTED = ceil($N/$PER_PAGE))   (all API calls at the fake: $total_calls; recorded in pgext.api_calls: $recorded)"
echo "reconciliation: $run_s s (hetzner_reconcile_runs.started_at to finished_at; $pages pages, $seen servers seen${run_error:+, last_error: $run_error})"
echo "  of which the worker waited for HTTP answers: $http_s s (sum of api_calls.duration_ms; one page in flight at a time)"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "  wall clock from worker_run_now until seen finished: %.3f s\n", b - a }'
echo "orphans recorded: $orphans (expected $N)"
awk -v a="$c0" -v b="$c1" -v n="$list_calls" 'BEGIN { printf "curl, the same %d pages sequentially: %.3f s\n", n, b - a }'
awk -v p="$run_s" -v a="$c0" -v b="$c1" 'BEGIN { printf "pgext/curl ratio: %.2f\n", p / (b - a) }'

status=0
[ "$list_calls" = "$EXPECTED" ] || { echo "FAIL: $list_calls list calls, expected $EXPECTED" >&2; status=1; }
[ "$orphans" = "$N" ] || { echo "FAIL: $orphans orphans recorded, expected $N" >&2; status=1; }
exit "$status"
