#!/usr/bin/env bash
# The whole loop, on both fakes (test/fake/stripe.py and test/fake/hetzner.py,
# each on a loopback port), with the worker on: carol signs up, pays at
# Stripe, gets a server (the first location is full), her renewal fails
# (grace, then paused), she pays (resumed), she cancels at Stripe and that
# webhook never arrives: the worker recovers it from GET /v1/events, access
# ends and her server is deleted after the delay.  psql plays Stripe's
# webhook sender only (it signs each event the fake Stripe recorded, as 30
# does); everything else is the worker.  A reconciliation at the end records
# a subscription whose customer no account knows.  Time-dependent steps use small
# settings (seconds) and waits that poll; the output is the same every run (no
# ids, ports, durations or timestamps).
set -euo pipefail
source "$(dirname "$0")/fakes.sh"
work=$fakes_work
# the endpoint signing secret step 30 stored (webhook:stripe)
WHSEC=whsec_demo_5f2b9c0e7a4d4e1f8a3b6c9d0e1f2a3b

# --- the fakes (fakes.sh stops them whatever happens and shows their logs on a failure)
rand() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
hz_token="hz-demo-$(rand)"
sk="sk_test_demo$(rand)"
printf 'Authorization: Bearer %s\n' "$sk" >"$work/stripe-auth"
printf 'Authorization: Bearer %s\n' "$hz_token" >"$work/hz-auth"
FAKE_HETZNER_TOKEN=$hz_token fake_start hz hetzner.py
fake_start st stripe.py --token "$sk"

# hz METHOD PATH [JSON] / st METHOD PATH [JSON]: the fakes' control APIs (no token).
hz() { control "$hz_base" "$@"; }
st() { control "$st_base" "$@"; }
# stripe_event ID: the event as Stripe's API has it (GET /v1/events/ID with the key).
stripe_event() { curl -sS -f -H @"$work/stripe-auth" "$st_base/v1/events/$1"; }
# stripe_change JSON: create or change a subscription at the fake Stripe; prints
# the id of the event Stripe recorded for it.
stripe_change() {
  # each change in a later second than the last one (Stripe's created is in whole seconds)
  next_second
  curl -sS -f -D "$work/headers" -o /dev/null -H 'content-type: application/json' --data "$1" \
    "$st_base/__fake/subscriptions"
  mark_second
  tr -d '\r' <"$work/headers" | sed -n 's/^[Ff]ake-[Ee]vent-[Ii]d: *//p'
}
# mark_second: the next stripe_change happens in a later second than now;
# next_second: wait for that later second (Stripe's created is in whole
# seconds: a snapshot taken in the second of an event counts as older).
mark_second() { date +%s >"$work/second"; }
next_second() {
  while [ "$(date +%s)" -le "$(cat "$work/second" 2>/dev/null || echo 0)" ]; do sleep 0.05; done
}
# stripe_raw_event JSON: an event of Stripe's own (invoice, checkout) added to
# the fake's /v1/events; prints the event.
stripe_raw_event() { st POST events "$1"; }
# deliver EVENT_JSON: Stripe's webhook delivery, as psql plays it: sign the body
# with the endpoint secret (HMAC-SHA256 over "<t>.<body>") and hand body and
# Stripe-Signature to pgext.webhook_ingest, as an app's HTTP handler would.
deliver() {
  local t sig
  t=$(date +%s)
  sig=$(printf '%s.%s' "$t" "$1" | openssl dgst -sha256 -hmac "$WHSEC" -r | cut -d' ' -f1)
  BODY=$1 SIG="t=$t,v1=$sig" val <<'SQL' | sed 's/^/    webhook_ingest: /'
\getenv body BODY
\getenv sig SIG
SELECT status FROM pgext.webhook_ingest('stripe', :'body', :'sig');
SQL
}

# history: the server's state changes since the last call (dates and Hetzner ids masked).
last=0
history() {
  while IFS='|' read -r id from to reason; do
    [ -n "$id" ] || continue
    echo "    ${from:-(new)} -> $to: $reason"
    last=$id
  done < <(val -c "SELECT id, from_state, to_state,
                          regexp_replace(regexp_replace(coalesce(reason, ''), '[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9:]{5} UTC)?', '{date}', 'g'),
                                         '[0-9]{5,}', '{id}', 'g')
                     FROM pgext.server_history WHERE server_id = $srv AND id > $last ORDER BY id")
}
# at_fake: the server at the fake Hetzner once its last action has finished
# (GET /v1/servers/ID with the token, as the worker would; gone: 404).
at_fake() {
  local hid deadline=$(( $(date +%s) + TIMEOUT )) status
  hid=$(val -c "SELECT hetzner_id FROM pgext.servers WHERE id = $srv")
  while :; do
    status=$(curl -sS -H @"$work/hz-auth" -o "$work/server.json" -w '%{http_code}' "$hz_base/v1/servers/$hid")
    if [ "$status" = 404 ]; then
      echo "    at the fake Hetzner: gone"
      return
    fi
    status=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["server"]; print(s["status"], "in", s["datacenter"]["location"]["name"])' "$work/server.json")
    case "$status" in
      initializing*|starting*|stopping*|deleting*) ;;
      *) echo "    at the fake Hetzner: $status"; return ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "FAILED: after ${TIMEOUT} s the fake's server is still $status" >&2
      exit 1
    fi
    sleep 0.1
  done
}
access() { q -c "SELECT access FROM pgext.billing_access('$carol')"; }

echo '--- two fakes listen on 127.0.0.1 (free ports): the Hetzner Cloud API and the Stripe API'
echo '    (test/fake/hetzner.py, test/fake/stripe.py); the worker is pointed at both'
q -c "ALTER SYSTEM SET pgext.hetzner_api_url = '$hz_base/v1'" \
  -c "ALTER SYSTEM SET pgext.stripe_api_url = '$st_base'" \
  -c 'ALTER SYSTEM SET pgext.allow_insecure_urls = on' -c 'SELECT pg_reload_conf()' >/dev/null
echo '--- the Stripe key (a test key: pgext.stripe_livemode is off) and the Hetzner token go into the'
echo '    secret store (the worker reads stripe:api_key and hetzner:api_token; never printed)'
HZ_TOKEN=$hz_token SK=$sk q <<'SQL'
\getenv tok HZ_TOKEN
\getenv sk SK
SELECT pgext.secret_set('hetzner:api_token', :'tok') IS NOT NULL AS hetzner_stored,
       pgext.secret_set('stripe:api_key', :'sk') IS NOT NULL AS stripe_stored;
SQL
echo '--- small windows, so that the loop fits in a minute (ALTER SYSTEM; the defaults are days):'
echo '    pgext.grace_period = 6 s, pgext.server_delete_after = 8 s, billing_expire_grace and'
echo '    server_reconcile every second; Stripe reconciliation and event fetches only on demand'
q -c 'ALTER SYSTEM SET pgext.grace_period = 6' -c 'ALTER SYSTEM SET pgext.server_delete_after = 8' \
  -c 'ALTER SYSTEM SET pgext.billing_expire_grace_interval = 1' \
  -c 'ALTER SYSTEM SET pgext.server_reconcile_interval = 1' \
  -c 'ALTER SYSTEM SET pgext.webhook_apply_interval = 1' \
  -c 'ALTER SYSTEM SET pgext.stripe_reconcile_interval = 0' \
  -c 'ALTER SYSTEM SET pgext.stripe_events_interval = 0' \
  -c 'ALTER SYSTEM SET pgext.hetzner_reconcile_interval = 0' -c 'SELECT pg_reload_conf()' >/dev/null
# Hetzner never reuses a server id; a new fake starts counting again, so it
# first makes (unlabelled, unseen by pgext) servers up to the ids step 60 used.
used=$(val -c "SELECT coalesce(max(hetzner_id), 1000000) - 1000000 FROM pgext.servers")
[ "$used" -le 0 ] || hz POST seed '{"count": '"$used"', "labels": {"owner": "someone-else"}, "name_prefix": "other-"}' >/dev/null
echo '--- fsn1 is full: the fake Hetzner answers creates there with 412 resource_unavailable'
hz POST faults '{"kind": "resource_unavailable", "location": "fsn1"}' >/dev/null
# its actions (power off/on, delete) finish after a second, whoever asks
hz POST config '{"action_seconds": 1}' >/dev/null

echo '--- the worker goes on; this time it calls both APIs'
q -c 'ALTER SYSTEM SET pgext.worker_enabled = on' -c 'SELECT pg_reload_conf()' >/dev/null
wait_for "SELECT bool_and(refusing IS NULL) FROM pgext.worker_api_status" \
  'the worker to call the Hetzner and Stripe APIs (pgext.worker_api_status.refusing)'
q -c "SELECT api, coalesce(refusing, '(calls it)') AS refusing FROM pgext.worker_api_status ORDER BY api"

echo
echo '--- 1. carol signs up: SELECT pgext.account_create('"'carol'"')'
carol=$(val -c "SELECT pgext.account_create('carol')")
now=$(date +%s)
period_end=$(( now + 30 * 86400 ))

echo '--- 2. she pays at Stripe Checkout; Stripe sends checkout.session.completed (mode subscription,'
echo '    client_reference_id = her external_id, customer cus_demo_carol): the worker applies it and'
echo '    links her Stripe customer'
ev=$(stripe_raw_event '{"type": "checkout.session.completed", "data": {"object": {"id": "cs_demo_carol", "object": "checkout.session", "mode": "subscription", "payment_status": "paid", "client_reference_id": "carol", "customer": "cus_demo_carol", "subscription": "sub_demo_carol"}}}')
deliver "$ev"
wait_for "SELECT stripe_customer_id = 'cus_demo_carol' FROM pgext.accounts WHERE id = '$carol'" \
  'the checkout webhook to link her Stripe customer'
q -c "SELECT external_id, stripe_customer_id FROM pgext.accounts WHERE id = '$carol'"
echo '--- Stripe creates her subscription (made here at the fake Stripe with its control API, so it and'
echo '    its customer.subscription.created event exist there); that webhook is seconds behind'
created_ev=$(stripe_change '{"id": "sub_demo_carol", "customer": "cus_demo_carol", "status": "active", "price": "price_pro_monthly", "current_period_end": '"$period_end"'}')

echo '--- 3. checkout returns to the app first; the app asks for an on-demand sync (the worker fetches'
echo '    her subscriptions from Stripe at once) and waits for its answer:'
echo "      SELECT pgext.stripe_sync_account(account);     -- commit, then"
echo "      SELECT pgext.stripe_sync_wait(request, '10 seconds');"
next_second
req=$(val -c "SELECT pgext.stripe_sync_account('$carol')")
q -c "SELECT pgext.stripe_sync_wait($req, '20 seconds') AS sync"
mark_second
q -c "SELECT customer_id, status, pages, seen, changed, changed_ids FROM pgext.stripe_sync_requests WHERE id = $req"
echo '    so the page after payment already shows the subscription:'
access
echo '--- the webhook arrives: the snapshot the sync took is newer, so the event changes nothing'
deliver "$(stripe_event "$created_ev")"
wait_for "SELECT status <> 'pending' FROM pgext.webhook_events WHERE event_id = '$created_ev'" \
  'customer.subscription.created to be processed'
q -c "SELECT type, status FROM pgext.webhook_events WHERE event_id = '$created_ev'"

echo
echo '--- 4. she asks for a server (server_request) in fsn1 or nbg1; fsn1 is full, and pgext still'
echo '    remembers that from step 60 (pgext.hetzner_cold), so the worker creates it in nbg1 at once:'
srv=$(val -c "SELECT pgext.server_request('$carol', 'carol-agent-1', '{\"server_type\":\"cx22\",\"image\":\"ubuntu-24.04\",\"locations\":[\"fsn1\",\"nbg1\"]}')")
wait_for "SELECT state = 'active' AND next_action IS NULL FROM pgext.servers WHERE id = $srv" \
  "carol's server to become active"
history
q -c "SELECT method, regexp_replace(path, '[0-9]{5,}', '{id}', 'g') AS path, http_status, error_code
        FROM pgext.api_calls WHERE server_id = $srv AND method = 'POST' ORDER BY id"
at_fake
hz DELETE faults >/dev/null

echo
echo '--- 5. her renewal fails: Stripe sends invoice.payment_failed and customer.subscription.updated'
echo '    (past_due); grace starts (pgext.grace_period) and the server stays on meanwhile'
ev=$(stripe_raw_event '{"type": "invoice.payment_failed", "data": {"object": {"id": "in_demo_carol_2", "object": "invoice", "customer": "cus_demo_carol", "subscription": "sub_demo_carol"}}}')
deliver "$ev"
ev_id=$(stripe_change '{"id": "sub_demo_carol", "status": "past_due"}')
deliver "$(stripe_event "$ev_id")"
wait_for "SELECT access <> 'active' FROM pgext.billing_access('$carol')" 'the failed payment to be applied'
access
q -c "SELECT state, desired_state, regexp_replace(why, '[0-9]{4}-[0-9]{2}-[0-9]{2}', '{date}', 'g') AS why
        FROM pgext.server_status WHERE server = $srv"

echo '--- 6. the grace period runs out (billing_expire_grace): access ends, the server is paused'
wait_for "SELECT state = 'paused' AND next_action IS NULL FROM pgext.servers WHERE id = $srv" \
  "carol's server to be paused"
access
history
at_fake

echo
echo '--- 7. she pays: invoice.paid and customer.subscription.updated (active); the server resumes'
ev=$(stripe_raw_event '{"type": "invoice.paid", "data": {"object": {"id": "in_demo_carol_3", "object": "invoice", "customer": "cus_demo_carol", "subscription": "sub_demo_carol", "lines": {"object": "list", "data": [{"id": "il_demo_carol_3", "price": {"id": "price_pro_monthly"}, "subscription": "sub_demo_carol", "period": {"start": '"$now"', "end": '"$period_end"'}}]}}}}')
deliver "$ev"
ev_id=$(stripe_change '{"id": "sub_demo_carol", "status": "active"}')
deliver "$(stripe_event "$ev_id")"
wait_for "SELECT state = 'active' AND next_action IS NULL FROM pgext.servers WHERE id = $srv" \
  "carol's server to be resumed"
access
history
at_fake

echo
echo '--- 8. she cancels; Stripe records customer.subscription.deleted, but the webhook never arrives'
echo '    (an endpoint down for longer than Stripe retries): pgext does not know'
stripe_change '{"id": "sub_demo_carol", "status": "canceled"}' >/dev/null
access
echo "--- SELECT pgext.worker_run_now('stripe_events'): the worker lists GET /v1/events for the types"
echo '    pgext applies (hourly by default) and queues every event it has not recorded'
val -c "SELECT pgext.worker_run_now('stripe_events')" >/dev/null
wait_for "SELECT status <> 'running' FROM pgext.stripe_sync_status WHERE kind = 'events'" \
  'the missed-event run to finish'
q -c "SELECT kind, status, pages, seen, known, applied AS queued FROM pgext.stripe_sync_status WHERE kind = 'events'"
wait_for "SELECT access = 'none' FROM pgext.billing_access('$carol')" 'the recovered event to end her access'
q -c "SELECT type, status, fetched_run IS NOT NULL AS fetched_not_signed FROM pgext.webhook_events
        WHERE type = 'customer.subscription.deleted' AND payload -> 'data' -> 'object' ->> 'id' = 'sub_demo_carol'"
access
echo '--- 9. access ended: the server is paused, then deleted after pgext.server_delete_after (8 s here)'
wait_for "SELECT state = 'deleted' FROM pgext.servers WHERE id = $srv" "carol's server to be deleted"
history
at_fake

echo
echo '--- 10. the daily reconciliation, now: a subscription appears at Stripe whose customer no account'
echo "    knows (no event); SELECT pgext.worker_run_now('stripe_reconcile') lists every subscription"
echo '    (GET /v1/subscriptions?status=all) and applies each as a snapshot'
stripe_change '{"id": "sub_demo_stranger", "customer": "cus_demo_stranger", "status": "active", "price": "price_pro_monthly", "current_period_end": '"$period_end"', "event": false}' >/dev/null
val -c "SELECT pgext.worker_run_now('stripe_reconcile')" >/dev/null
wait_for "SELECT status <> 'running' FROM pgext.stripe_sync_status WHERE kind = 'reconcile'" \
  'the reconciliation to finish'
q -c "SELECT kind, status, seen, applied, changed, unmatched FROM pgext.stripe_sync_status WHERE kind = 'reconcile'"
echo '    carol'"'"'s subscription agrees with pgext (canceled); the other is kept for an operator, who links'
echo "    the customer with account_set_stripe_customer (never matched by email):"
q -c "SELECT subscription_id, customer_id, status, sightings FROM pgext.stripe_unmatched ORDER BY subscription_id"

echo
echo '--- what her app was told along the way (pgext.outbox, in order)'
q -c "SELECT kind, subscription_id,
               coalesce(regexp_replace(detail, '[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9:]{5} UTC)?', '{date}', 'g'), '') AS detail
        FROM pgext.outbox WHERE account_id = '$carol' ORDER BY id"
echo '--- the worker'"'"'s Stripe calls (pgext.api_calls: no key; paths without their query)'
q -c "SELECT method, split_part(path, '?', 1) AS path, http_status, count(*) AS calls
        FROM pgext.api_calls WHERE api = 'stripe' GROUP BY 1, 2, 3 ORDER BY 2"

echo '--- the worker goes off again (ALTER SYSTEM RESET ...; reload)'
q -c 'ALTER SYSTEM RESET pgext.worker_enabled' -c 'ALTER SYSTEM RESET pgext.hetzner_api_url' \
  -c 'ALTER SYSTEM RESET pgext.stripe_api_url' -c 'ALTER SYSTEM RESET pgext.allow_insecure_urls' \
  -c 'ALTER SYSTEM RESET pgext.grace_period' -c 'ALTER SYSTEM RESET pgext.server_delete_after' \
  -c 'ALTER SYSTEM RESET pgext.billing_expire_grace_interval' \
  -c 'ALTER SYSTEM RESET pgext.server_reconcile_interval' \
  -c 'ALTER SYSTEM RESET pgext.webhook_apply_interval' \
  -c 'ALTER SYSTEM RESET pgext.stripe_reconcile_interval' \
  -c 'ALTER SYSTEM RESET pgext.stripe_events_interval' \
  -c 'ALTER SYSTEM RESET pgext.hetzner_reconcile_interval' -c 'SELECT pg_reload_conf()' >/dev/null
wait_for "SELECT bool_and(refusing = 'disabled by pgext.worker_enabled') FROM pgext.worker_status" \
  'the worker to stop acting'
q -c "SELECT DISTINCT refusing FROM pgext.worker_status"
