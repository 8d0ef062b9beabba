#!/usr/bin/env bash
# The worker for real: until now psql played the background worker.  Here the
# worker itself drives a fake Hetzner Cloud API (test/fake/hetzner.py, on a
# loopback port): bob's second server goes from requested to active while
# the first location is full, every call lands in pgext.api_calls, and a
# reconciliation finds a server nobody asked for.  The output is the same
# every run: no ids, ports, durations or timestamps are printed.
set -euo pipefail
source "$(dirname "$0")/fakes.sh"
work=$fakes_work

token="hz-demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
FAKE_HETZNER_TOKEN=$token fake_start hz hetzner.py
base=$hz_base
# fake METHOD PATH [JSON]: one call of the fake's control API (no token).
fake() { control "$base" "$@"; }

echo '--- a fake Hetzner Cloud API listens on 127.0.0.1 (a free port); the worker is pointed at it'
echo '    (pgext.allow_insecure_urls: http and loopback are refused otherwise; for test fakes only)'
q -c "ALTER SYSTEM SET pgext.hetzner_api_url = '$base/v1'" \
  -c 'ALTER SYSTEM SET pgext.allow_insecure_urls = on' -c 'SELECT pg_reload_conf()' >/dev/null
echo '--- the project token goes into the secret store (the worker reads hetzner:api_token; never printed)'
HZ_TOKEN=$token q <<'SQL'
\getenv tok HZ_TOKEN
SELECT pgext.secret_set('hetzner:api_token', :'tok') IS NOT NULL AS stored;
SQL
echo '--- fsn1 is full: the fake answers creates there with 412 resource_unavailable'
fake POST faults '{"kind": "resource_unavailable", "location": "fsn1"}' >/dev/null

echo '--- the worker goes on (ALTER SYSTEM SET pgext.worker_enabled = on; reload); it checks its configuration:'
echo '    Hetzner is called; Stripe is refused, and the worker says why and keeps running'
q -c 'ALTER SYSTEM SET pgext.worker_enabled = on' -c 'SELECT pg_reload_conf()' >/dev/null
wait_for "SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'hetzner'" \
  'the worker to call the Hetzner API (pgext.worker_api_status.refusing)'
q -c "SELECT api, coalesce(refusing, '(calls it)') AS refusing FROM pgext.worker_api_status ORDER BY api"

echo '--- at start it reconciles: lists the servers labelled managed-by=pgext and compares them with pgext.servers'
wait_for "SELECT count(*) > 0 AND bool_and(finished_at IS NOT NULL) FROM pgext.hetzner_reconcile_runs" \
  'the reconciliation at start to finish'
echo '    bob-agent-1 of step 50 was only simulated (psql played Hetzner): the fake never had it, so it vanished'
wait_for "SELECT state IN ('failed', 'deleted') AND next_action IS NULL FROM pgext.servers WHERE provision_key = 'bob-agent-1'" \
  'bob-agent-1 to settle'
q -c "SELECT s.name, s.state, regexp_replace(s.state_reason, '[0-9]{5,}', '{id}', 'g') AS reason
        FROM pgext.servers s WHERE s.provision_key = 'bob-agent-1'"
echo '    the calls so far (pgext.api_calls)'
q -c "SELECT method, path, http_status, error_code FROM pgext.api_calls ORDER BY id"
before=$(val -c "SELECT coalesce(max(id), 0) FROM pgext.api_calls")

bob=$(val -c "SELECT id FROM pgext.accounts WHERE external_id = 'bob'")
echo '--- bob (he pays) asks for a second server; his spec tries fsn1 first, then nbg1.'
echo '    server_request wakes the worker when it commits; here is what happens, as it happens:'
srv=$(val -v bob="$bob" <<'SQL'
SELECT pgext.server_request(:'bob', 'bob-agent-2', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"],"labels":{"app":"agent"}}');
SQL
)
last=0
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  # the state first: once it is active, the history read next holds every change
  state=$(val -c "SELECT state FROM pgext.servers WHERE id = $srv")
  while IFS='|' read -r id from to; do
    [ -n "$id" ] || continue
    echo "    ${from:-(new)} -> $to"
    last=$id
  done < <(val -c "SELECT id, from_state, to_state FROM pgext.server_history WHERE server_id = $srv AND id > $last ORDER BY id")
  [ "$state" = active ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "FAILED: bob-agent-2 is not active after ${TIMEOUT} s; its status and calls so far:" >&2
    q -x -c "SELECT * FROM pgext.server_status WHERE server = $srv" >&2
    q -c "SELECT method, path, http_status, error_code FROM pgext.api_calls WHERE server_id = $srv ORDER BY id" >&2
    exit 1
  fi
  sleep 0.1
done

echo '--- its history (Hetzner ids shown as {id})'
q -c "SELECT from_state, to_state, regexp_replace(reason, '[0-9]{5,}', '{id}', 'g') AS reason
        FROM pgext.server_history WHERE server_id = $srv ORDER BY id"
echo '--- every call the worker made since bob asked (pgext.api_calls: no token, no body; ids shown as {id})'
q -c "SELECT method, regexp_replace(path, '[0-9]{5,}', '{id}', 'g') AS path, http_status, error_code
        FROM pgext.api_calls WHERE id > $before ORDER BY id"
echo '--- fsn1 answered "no capacity", so creates of cx22 skip it for about 10 minutes'
q -c "SELECT location, server_type, cold_until > now() AS cold FROM pgext.hetzner_cold ORDER BY location, server_type"
echo '--- the budget: Hetzner sends RateLimit-* headers with every answer; creates go out only above 30% of the limit'
q -c "SELECT api, ratelimit_limit AS limit, ratelimit_remaining > 0.3 * ratelimit_limit AS creates_allowed,
             rate_limited AS answered_429, paused_until IS NOT NULL AS paused
        FROM pgext.worker_api_status WHERE api = 'hetzner'"
echo "--- the fake's view of the server (pgext's name and labels; the account label is bob's uuid)"
fake GET 'state?actions=0&calls=0' >"$work/state.json"
name=$(val -c "SELECT name FROM pgext.servers WHERE id = $srv")
python3 - "$work/state.json" "$name" "$bob" <<'PY'
import json, sys
state, name, bob = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for s in state["servers"]:
    if s["name"] == name:
        labels = {k: ("<bob>" if v == bob else v) for k, v in s["labels"].items()}
        print("    name:     %s" % s["name"])
        print("    status:   %s" % s["status"])
        print("    location: %s" % s["datacenter"]["location"]["name"])
        print("    labels:   %s" % ", ".join("%s=%s" % kv for kv in sorted(labels.items())))
PY
q -c "SELECT name, state, location, ipv4 IS NOT NULL AS has_ipv4 FROM pgext.server_status WHERE server = $srv"

echo '--- a server nobody asked for appears at Hetzner with the managed-by=pgext label (a create that lost its row, a copy-paste)'
fake POST seed '{"count": 1, "labels": {"managed-by": "pgext"}, "name_prefix": "stray-"}' >/dev/null
echo "--- SELECT pgext.worker_run_now('hetzner_reconcile'): the reconciliation runs now instead of within the hour"
val -c "SELECT pgext.worker_run_now('hetzner_reconcile')" >/dev/null
wait_for "SELECT count(*) > 0 FROM pgext.server_orphans" 'the stray server to show in pgext.server_orphans'
echo '    it is an orphan: deleted after pgext.orphan_delete_after (7 days) unless an operator keeps it'
q -c "SELECT name, labels, status, location, sightings, deleted_at IS NULL AS still_there FROM pgext.server_orphans ORDER BY name"

echo '--- the worker goes off again (ALTER SYSTEM RESET ...; reload)'
q -c 'ALTER SYSTEM RESET pgext.worker_enabled' -c 'ALTER SYSTEM RESET pgext.hetzner_api_url' \
  -c 'ALTER SYSTEM RESET pgext.allow_insecure_urls' -c 'SELECT pg_reload_conf()' >/dev/null
wait_for "SELECT bool_and(refusing = 'disabled by pgext.worker_enabled') FROM pgext.worker_status" \
  'the worker to stop acting'
q -c "SELECT DISTINCT refusing FROM pgext.worker_status"
