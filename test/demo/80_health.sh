#!/usr/bin/env bash
# Fleet health: the worker polls dave's agent and acts on what it sees.  A
# fake Hetzner (test/fake/hetzner.py) gives his server a loopback address,
# and a fake agent (test/fake/agent.py) answers its health endpoints there;
# the demo plays the agent (it boots, its upstream fails, it hangs, a reboot
# brings it back) through the fake's control API, and everything else is the
# worker: configuring -> active on the first passing check, a deep failure
# that degrades but never restarts, a dead agent that turns unhealthy and is
# rebooted, and its recovery.  No ids, ports, durations or timestamps are
# printed, so the output is the same every run.
set -euo pipefail
source "$(dirname "$0")/fakes.sh"

token="hz-demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
FAKE_HETZNER_TOKEN=$token fake_start hz hetzner.py
fake_start agent agent.py --quiet
hz() { control "$hz_base" "$@"; }
agent() { control "$agent_base" "$@"; }
agent_port=${agent_base##*:}

# history: the server's state changes since the last call (ids masked).
last=0
history() {
  while IFS='|' read -r id from to reason; do
    [ -n "$id" ] || continue
    echo "    ${from:-(new)} -> $to: $reason"
    last=$id
  done < <(val -c "SELECT id, from_state, to_state, regexp_replace(coalesce(reason, ''), '[0-9]{5,}', '{id}', 'g')
                     FROM pgext.server_history WHERE server_id = $srv AND id > $last ORDER BY id")
}
# told: what dave's app was told since the last call (pgext.outbox).
told_last=0
told() {
  while IFS='|' read -r id kind detail; do
    [ -n "$id" ] || continue
    echo "    outbox: $kind${detail:+ — $detail}"
    told_last=$id
  done < <(val -c "SELECT id, kind, regexp_replace(regexp_replace(coalesce(detail, ''), 'https?://[0-9.]+:[0-9]+', 'http://{ip}:{port}', 'g'), '[0-9]{5,}', '{id}', 'g')
                     FROM pgext.outbox WHERE account_id = '$dave' AND id > $told_last ORDER BY id")
}
# agent_state: the two layers of dave's server (pgext.health_status).
agent_state() {
  q -c "SELECT vps_state, agent, shallow, deep, coalesce(last_error, '') AS last_error, recovery_attempts,
               coalesce(last_recovery_action, '') AS last_recovery
          FROM pgext.health_status WHERE server = $srv"
}
# hetzner_actions: the recovery calls the fake Hetzner received for the server.
hetzner_actions() {
  val -c "SELECT count(*) FROM pgext.api_calls
           WHERE server_id = $srv AND method = 'POST' AND path ~ '/actions/(reboot|reset)$'"
}

echo '--- a fake Hetzner and a fake fleet of agents listen on loopback addresses (free ports);'
echo '    the fake Hetzner gives new servers 127.x.y.z addresses, where the fake agents answer'
hz POST config '{"ipv4_prefix": "127", "action_seconds": 1}' >/dev/null
used=$(val -c "SELECT coalesce(max(hetzner_id), 1000000) - 1000000 FROM pgext.servers")
[ "$used" -le 0 ] || hz POST seed '{"count": '"$used"', "labels": {"owner": "someone-else"}, "name_prefix": "other-"}' >/dev/null
TOK=$token q <<SQL >/dev/null
\getenv tok TOK
SELECT pgext.secret_set('hetzner:api_token', :'tok') IS NOT NULL;
ALTER SYSTEM SET pgext.hetzner_api_url = '$hz_base/v1';
ALTER SYSTEM SET pgext.allow_insecure_urls = on;
SQL
echo '--- small numbers so that it fits in a minute (defaults in brackets): shallow checks every'
echo '    500 ms (30 s), grace 2 s after the server becomes active (5 min), unhealthy after 3 failures'
echo '    and healthy after 2 passes (the defaults), recovery checked every second (5 s)'
q -c 'ALTER SYSTEM SET pgext.health_grace = 2' \
  -c 'ALTER SYSTEM SET pgext.health_recover_interval = 1' \
  -c 'ALTER SYSTEM SET pgext.server_reconcile_interval = 1' \
  -c 'ALTER SYSTEM SET pgext.hetzner_reconcile_interval = 0' \
  -c 'ALTER SYSTEM SET pgext.stripe_reconcile_interval = 0' \
  -c 'ALTER SYSTEM SET pgext.stripe_events_interval = 0' \
  -c 'ALTER SYSTEM SET pgext.worker_enabled = on' -c 'SELECT pg_reload_conf()' >/dev/null
wait_for "SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'hetzner'" \
  'the worker to call the fake Hetzner API'

echo
echo '--- 1. dave pays (an operator grant here) and asks for a server whose spec carries its agent'"'"'s'
echo '    health endpoints: a shallow one (is the agent up) and a deep one (can it reach its upstream)'
dave=$(val -c "SELECT pgext.account_create('dave')")
val -c "SELECT pgext.access_grant('$dave', now() + interval '30 days', 'demo') > 0" >/dev/null
spec='{"server_type":"cx22","image":"ubuntu-24.04","locations":["nbg1"],
       "health":[{"url":"http://{ipv4}:'"$agent_port"'/health","every":"500 ms","timeout":"300 ms"},
                 {"url":"http://{ipv4}:'"$agent_port"'/ready","kind":"deep","every":"500 ms","timeout":"300 ms"}]}'
echo '      "health": [{"url": "http://{ipv4}:PORT/health", "every": "500 ms", "timeout": "300 ms"},'
echo '                 {"url": "http://{ipv4}:PORT/ready", "kind": "deep", ...}]'
srv=$(val -c "SELECT pgext.server_request('$dave', 'dave-agent-1', '$spec')")
wait_for "SELECT state = 'configuring' FROM pgext.servers WHERE id = $srv" "dave's server to be configuring"
history
echo '--- created; cloud-init is still running, nothing answers at its address yet (connection'
echo '    refused): that does not count against it, the server waits in configuring'
wait_for "SELECT last_error = 'refused' FROM pgext.health_status WHERE server = $srv" 'a refused check'
agent_state
ip=$(val -c "SELECT ipv4 FROM pgext.servers WHERE id = $srv")

echo '--- 2. the agent comes up (the fake agent starts answering at the server'"'"'s address): the first'
echo '    passing shallow check makes the server active (billing starts now)'
agent POST agents '{"ip": "'"$ip"'"}' >/dev/null
wait_for "SELECT state = 'active' FROM pgext.servers WHERE id = $srv" "dave's server to become active"
history
wait_for "SELECT agent = 'healthy' FROM pgext.health_status WHERE server = $srv" 'the agent to be healthy'
told
agent_state

echo
echo '--- 3. its upstream fails: the deep check answers 503. The agent is degraded, and nothing is'
echo '    restarted for it (restarting a server does not fix an upstream)'
wait_for "SELECT now() > min(grace_until) FROM pgext.health_checks WHERE server_id = $srv" 'the grace period to end'
agent POST mode '{"ip": "'"$ip"'", "path": "/ready", "mode": "fail", "status": 503}' >/dev/null
wait_for "SELECT agent = 'degraded' FROM pgext.health_status WHERE server = $srv" 'the agent to be degraded'
told
agent_state
echo "    recovery calls sent to Hetzner: $(hetzner_actions)"
agent POST mode '{"ip": "'"$ip"'", "path": "/ready", "mode": "ok"}' >/dev/null
wait_for "SELECT agent = 'healthy' FROM pgext.health_status WHERE server = $srv" 'the agent to be healthy again'
echo '--- the upstream is back:'
told

echo
echo '--- 4. the agent hangs (its /health never answers: the bot is dead, the VPS still "running"):'
echo '    after 3 timeouts in a row it is unhealthy; health_recover queues a reboot, the worker sends'
echo '    it to Hetzner (POST /servers/{id}/actions/reboot)'
agent POST mode '{"ip": "'"$ip"'", "mode": "hang"}' >/dev/null
wait_for "SELECT agent = 'unhealthy' FROM pgext.health_status WHERE server = $srv" 'the agent to be unhealthy'
wait_for "SELECT $(hetzner_actions) > 0" 'the reboot to reach the fake Hetzner'
told
agent_state
q -c "SELECT method, regexp_replace(path, '[0-9]{5,}', '{id}', 'g') AS path, http_status
        FROM pgext.api_calls WHERE server_id = $srv AND path ~ '/actions/' ORDER BY id"
echo '--- 5. the reboot brings the agent back (the fake agent answers again): healthy after 2 passes'
agent POST mode '{"ip": "'"$ip"'", "mode": "ok"}' >/dev/null
wait_for "SELECT agent = 'healthy' FROM pgext.health_status WHERE server = $srv" 'the agent to recover'
told
agent_state

echo
echo '--- the fleet (pgext.health_fleet) and the history of state changes (pgext.health_events)'
q -c "SELECT servers, healthy, unhealthy, degraded, unknown, breaker, recovery_paused,
             checks_per_second > 0 AS polling FROM pgext.health_fleet"
q -c "SELECT e.kind, (SELECT k.kind FROM pgext.health_checks k WHERE k.id = e.check_id) AS check_kind,
             e.from_state, e.to_state
        FROM pgext.health_events e WHERE e.server_id = $srv ORDER BY e.id"

echo '--- the worker goes off again (ALTER SYSTEM RESET ...; reload)'
q -c 'ALTER SYSTEM RESET pgext.worker_enabled' -c 'ALTER SYSTEM RESET pgext.hetzner_api_url' \
  -c 'ALTER SYSTEM RESET pgext.allow_insecure_urls' -c 'ALTER SYSTEM RESET pgext.health_grace' \
  -c 'ALTER SYSTEM RESET pgext.health_recover_interval' \
  -c 'ALTER SYSTEM RESET pgext.server_reconcile_interval' \
  -c 'ALTER SYSTEM RESET pgext.hetzner_reconcile_interval' \
  -c 'ALTER SYSTEM RESET pgext.stripe_reconcile_interval' \
  -c 'ALTER SYSTEM RESET pgext.stripe_events_interval' -c 'SELECT pg_reload_conf()' >/dev/null
wait_for "SELECT bool_and(refusing = 'disabled by pgext.worker_enabled') FROM pgext.worker_status" \
  'the worker to stop acting'
