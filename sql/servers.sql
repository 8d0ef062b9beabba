-- Servers: the provisioning state machine, requests, the work queue (claim
-- and report), the policy and the clocks (reconcile), history, outbox and
-- the status view.  Time is driven through the functions' `at` arguments
-- (offsets from :t, a moment just after the request), never by sleeping.
-- Desired-state cases use unambiguous billing: an active subscription
-- (active), an unpaid one past its grace (paused), a canceled one that ended
-- long ago (deleting); fixed dates, so the policy's reasons are stable.
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
SET TIME ZONE 'UTC';

SELECT pgext.account_create('srv_pay') AS pay, pgext.account_create('srv_none') AS nobody,
       pgext.account_create('srv_late') AS late \gset
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
VALUES ('sub_srv_pay', :'pay', 'active', '2026-01-01', '2099-01-01'),
       ('sub_srv_late', :'late', 'active', '2026-01-01', '2099-01-01');
-- run a statement, show its SQLSTATE and message with account uuids named by external id
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m text;
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  m := SQLSTATE || ': ' || SQLERRM;
  FOR stmt IN SELECT a.id::text || ' ' || a.external_id FROM pgext.accounts a LOOP
    m := replace(m, split_part(stmt, ' ', 1), '<' || split_part(stmt, ' ', 2) || '>');
  END LOOP;
  RETURN m;
END $$;
\set spec '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"],"user_data":"#!/bin/sh\\necho hello\\n","health":{"url":"http://{ipv4}:8080/health"}}'
\set spec2 '{"server_type":"cx32","image":"ubuntu-24.04","locations":["fsn1"],"user_data":"#!/bin/sh\\necho hello\\n"}'

-- 1. The Hetzner name: 'pgext-' + 16 hex of sha256(provision_key), a hostname label
SELECT pgext.server_name('agent-1') AS name, pgext.server_name('agent-1') = pgext.server_name('agent-1') AS stable,
       pgext.server_name('agent-1') ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' AS hostname,
       pgext.server_name('agent-1') <> pgext.server_name('agent-2') AS distinct_keys;

-- 2. Requests: idempotent on the provision key
SELECT pgext.server_request(:'pay', 'agent-1', :'spec') AS s1 \gset
SELECT pgext.server_request(:'pay', 'agent-1', :'spec') = :s1 AS same_id;
-- the same spec written differently is the same spec
SELECT pgext.server_request(:'pay', 'agent-1',
  '{"health": {"url": "http://{ipv4}:8080/health"}, "user_data":"#!/bin/sh\necho hello\n", "locations":["fsn1","nbg1"], "image":"ubuntu-24.04", "server_type":"cx22"}') = :s1 AS same_id;
SELECT state, desired_state, next_action, attempts, name = pgext.server_name('agent-1') AS named,
       state_reason, location, hetzner_id FROM pgext.servers WHERE id = :s1;
SELECT from_state, to_state, reason, actor = session_user AS by_caller FROM pgext.server_history WHERE server_id = :s1;
-- same key, another spec or another account: 22023, nothing written
SELECT pgext.server_request(:'pay', 'agent-1', :'spec2');
SELECT pgext.server_request(:'late', 'agent-1', :'spec');
-- a bad spec (server_spec_check's message is its own business)
\set VERBOSITY sqlstate
SELECT pgext.server_request(:'pay', 'agent-bad', '{"server_type":"cx22"}');
SELECT pgext.server_request(:'pay', 'agent-bad', '{"server_type":"cx22","image":"x","locations":["fsn1"],"datacenter":"fsn1-dc14"}');
\set VERBOSITY terse
-- bad arguments
SELECT pgext.server_request(NULL, 'k', :'spec');
SELECT pgext.server_request(:'pay', '', :'spec');
SELECT pgext.server_request(:'pay', NULL, :'spec');
SELECT pgext.server_request(:'pay', 'k', NULL);
SELECT pgext.server_request('00000000-0000-0000-0000-000000000000', 'k', :'spec');
-- no billing access: refused, nothing written
SELECT pg_temp.try(format('SELECT pgext.server_request(%L, %L, %L)', :'nobody', 'agent-nobody', :'spec'));
-- the limit of live servers per account
SET pgext.server_limit_per_account = 2;
SELECT pgext.server_request(:'pay', 'agent-2', :'spec') AS s2 \gset
SELECT pg_temp.try(format('SELECT pgext.server_request(%L, %L, %L)', :'pay', 'agent-3', :'spec'));
-- ... a replay of an existing key is not a new server
SELECT pgext.server_request(:'pay', 'agent-2', :'spec') = :s2 AS same_id;
SELECT count(*) AS servers, count(*) FILTER (WHERE provision_key IN ('agent-bad', 'agent-nobody', 'agent-3', 'k')) AS refused_written
  FROM pgext.servers;
-- 3. server_delete before anything was handed out: deleted at once; it no longer counts
SELECT pgext.server_delete(:s2, 'customer changed their mind');
SELECT pgext.server_delete(:s2, 'again');
SELECT state, desired_state, next_action, state_reason FROM pgext.servers WHERE id = :s2;
SELECT pgext.server_delete(:s2, '');
SELECT pgext.server_delete(-1, 'nope');
SELECT pgext.server_request(:'pay', 'agent-3', :'spec') AS s3 \gset
RESET pgext.server_limit_per_account;
SELECT pgext.server_delete(:s3, 'not needed in this test');

-- 4. The work queue: the happy path of s1
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
SELECT server = :s1 AS s1, claim, action, name = pgext.server_name('agent-1') AS named, hetzner_id, location, attempts
  FROM pgext.server_claim('w1', 10, '2 minutes', :'t');
-- claimed: nobody else gets it while the lease runs
SELECT count(*) AS claimed_again FROM pgext.server_claim('w2', 10, '2 minutes', :'t');
SELECT claim AS c FROM pgext.servers WHERE id = :s1 \gset
-- a report needs the claim, a known action and a response
SELECT pgext.server_report(:s1, 'create', '{"http_status":201}');
SELECT pgext.server_report(:s1, 'reboot', '{"http_status":201}', :c);
SELECT pgext.server_report(:s1, 'create', '{"nothing":1}', :c);
SELECT pgext.server_report(:s1, 'delete', '{"http_status":200}', :c);
SELECT pgext.server_report(:s1, 'create', '{"http_status":201,"server":{"id":4711,"name":"x","status":"initializing","public_net":{"ipv4":{"ip":"203.0.113.7"}},"datacenter":{"location":{"name":"fsn1"}}},"action":{"id":9001,"status":"running"}}', :c, :'t');
SELECT state, next_action, hetzner_id, ipv4, location, action_id, claimed_by, state_reason FROM pgext.servers WHERE id = :s1;
-- the same report again (its claim is finished): stale, ignored
SELECT pgext.server_report(:s1, 'create', '{"http_status":201}', :c, :'t');
SELECT action, action_id, hetzner_id FROM pgext.server_claim('w1', 10, '2 minutes', :'t');
SELECT claim AS c FROM pgext.servers WHERE id = :s1 \gset
SELECT pgext.server_report(:s1, 'poll_action', '{"http_status":200,"action":{"id":9001,"status":"running"}}', :c, :'t');
SELECT next_attempt_at - :'t'::timestamptz AS poll_in FROM pgext.servers WHERE id = :s1;
SELECT count(*) AS due_early FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '4 seconds');
SELECT action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '5 seconds');
SELECT claim AS c FROM pgext.servers WHERE id = :s1 \gset
SELECT pgext.server_report(:s1, 'poll_action', '{"http_status":200,"action":{"id":9001,"status":"success"}}', :c, :'t'::timestamptz + interval '6 seconds');
SELECT state, next_action, active_since FROM pgext.servers WHERE id = :s1;
-- configuring -> active on the first passing health check (the health issue reports it)
SELECT pgext.server_report(:s1, 'configured', '{}', NULL, :'t'::timestamptz + interval '60 seconds');
SELECT pgext.server_report(:s1, 'configured', '{}', NULL, :'t'::timestamptz + interval '70 seconds');
SELECT state, next_action, active_since - :'t'::timestamptz AS active_after, state_since = active_since AS since
  FROM pgext.servers WHERE id = :s1;
SELECT from_state, to_state, reason, actor, at - :'t'::timestamptz AS after
  FROM pgext.server_history WHERE server_id = :s1 AND from_state IS NOT NULL ORDER BY id;
SELECT kind, server_id = :s1 AS s1, until = (SELECT active_since FROM pgext.servers WHERE id = :s1) AS until_active_since, detail
  FROM pgext.outbox WHERE server_id = :s1 ORDER BY id;

-- 5. Location fallback; no capacity anywhere waits and starts the list again (it does not
-- fail for that); the requested timeout fails it; cleanup and the retry
SELECT pgext.server_request(:'pay', 'agent-4', :'spec') AS s4 \gset
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
SELECT action, location FROM pgext.server_claim('w1', 10, '2 minutes', :'t');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_report(:s4, 'create', '{"http_status":412,"error":{"code":"resource_unavailable","message":"error during placement"}}', :c, :'t');
SELECT action, location, attempts FROM pgext.server_claim('w1', 10, '2 minutes', :'t');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_report(:s4, 'create', '{"http_status":412,"error":{"code":"resource_unavailable","message":"error during placement"}}', :c, :'t');
SELECT state, next_action, location_index, capacity_rounds, create_unknown,
       next_attempt_at - :'t'::timestamptz BETWEEN '15 seconds' AND '30 seconds' AS backoff_ok, last_error
  FROM pgext.servers WHERE id = :s4;
SELECT count(*) AS due_early FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '14 seconds');
SELECT action, location FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '30 seconds');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_report(:s4, 'create', '{"http_status":412,"error":{"code":"resource_unavailable","message":"error during placement"}}', :c, :'t'::timestamptz + interval '30 seconds');
-- the requested timeout fails it in the end
SELECT state_since + interval '5 minutes' AS t FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_reconcile(:'t') AS changed;
SELECT state, state_reason, needs_cleanup, next_action, retry_at - :'t'::timestamptz BETWEEN '30 seconds' AND '60 seconds' AS backoff_ok
  FROM pgext.servers WHERE id = :s4;
-- a create was handed out, so one may exist by that name: look it up before retrying
SELECT action FROM pgext.server_claim('w1', 10, '2 minutes', :'t');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_report(:s4, 'lookup', '{"http_status":200,"servers":[]}', :c, :'t');
SELECT state, needs_cleanup, next_action FROM pgext.servers WHERE id = :s4;
-- the retry comes when retry_at has come, from the first location again
SELECT retry_at AS r FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_reconcile(:'r'::timestamptz - interval '1 second') AS changed;
SELECT pgext.server_reconcile(:'r') AS changed;
SELECT state, state_reason, create_retries, next_action, location_index FROM pgext.servers WHERE id = :s4;
SELECT action, location FROM pgext.server_claim('w1', 10, '2 minutes', :'r');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
-- 6. uniqueness_error: an earlier create went through; look it up by name, never create twice
SELECT pgext.server_report(:s4, 'create', '{"http_status":409,"error":{"code":"uniqueness_error","message":"server name is already used"}}', :c, :'r');
SELECT state, next_action, state_reason FROM pgext.servers WHERE id = :s4;
SELECT action FROM pgext.server_claim('w1', 10, '2 minutes', :'r');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_report(:s4, 'lookup', '{"http_status":200,"servers":[{"id":4712,"name":"x","status":"starting","public_net":{"ipv4":{"ip":"203.0.113.8"}},"datacenter":{"location":{"name":"fsn1"}}}]}', :c, :'r');
SELECT action FROM pgext.server_claim('w1', 10, '2 minutes', :'r'::timestamptz + interval '5 seconds');
SELECT claim AS c FROM pgext.servers WHERE id = :s4 \gset
SELECT pgext.server_report(:s4, 'lookup', '{"http_status":200,"servers":[{"id":4712,"name":"x","status":"running","public_net":{"ipv4":{"ip":"203.0.113.8"}}}]}', :c, :'r');
SELECT state, hetzner_id, ipv4, location, next_action FROM pgext.servers WHERE id = :s4;

-- 7. Retryable errors back off (exponential, jitter, Retry-After honoured); other errors fail the create
SELECT pgext.server_request(:'pay', 'agent-5', :'spec') AS s5 \gset
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
SELECT action FROM pgext.server_claim('w1', 10, '2 minutes', :'t');
SELECT claim AS c FROM pgext.servers WHERE id = :s5 \gset
SELECT pgext.server_report(:s5, 'create', '{"http_status":429,"retry_after":30,"error":{"code":"rate_limit_exceeded","message":"limit reached"}}', :c, :'t');
SELECT state, attempts, next_attempt_at - :'t'::timestamptz AS wait, last_error FROM pgext.servers WHERE id = :s5;
SELECT action, attempts FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '30 seconds');
SELECT claim AS c FROM pgext.servers WHERE id = :s5 \gset
-- a 5xx to a create leaves its outcome unknown: the next step is a lookup by name, with backoff
SELECT pgext.server_report(:s5, 'create', '{"http_status":503}', :c, :'t');
SELECT next_action, create_unknown, attempts,
       next_attempt_at - :'t'::timestamptz >= '2 seconds' AND next_attempt_at - :'t'::timestamptz < '4 seconds' AS backoff_ok,
       last_error FROM pgext.servers WHERE id = :s5;
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '4 seconds') \gset
SELECT :'action' AS action, pgext.server_report(:s5, 'lookup', '{"error":{"code":"network","message":"connection reset"}}', :c, :'t');
SELECT attempts, next_attempt_at - :'t'::timestamptz >= '4 seconds' AND next_attempt_at - :'t'::timestamptz < '8 seconds' AS backoff_ok
  FROM pgext.servers WHERE id = :s5;
-- 8. A claim not reported in time is taken back; the late report is stale
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '10 seconds') \gset
SELECT count(*) AS during_lease FROM pgext.server_claim('w2', 10, '2 minutes', :'t'::timestamptz + interval '2 minutes');
SELECT claim AS c2, attempts FROM pgext.server_claim('w2', 10, '2 minutes', :'t'::timestamptz + interval '2 minutes 10 seconds') \gset
SELECT :c2 > :c AS new_claim, :attempts AS attempts, last_error FROM pgext.servers WHERE id = :s5;
SELECT pgext.server_report(:s5, 'lookup', '{"http_status":200,"servers":[{"id":1}]}', :c, :'t');
-- nothing by that name: the create is queued again; a refused create fails
SELECT pgext.server_report(:s5, 'lookup', '{"http_status":200,"servers":[]}', :c2, :'t');
SELECT state, next_action, create_unknown FROM pgext.servers WHERE id = :s5;
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '2 minutes 10 seconds') \gset
SELECT :'action' AS action, pgext.server_report(:s5, 'create', '{"http_status":422,"error":{"code":"invalid_input","message":"invalid image"}}', :c, :'t');
SELECT state, state_reason, needs_cleanup, next_action FROM pgext.servers WHERE id = :s5;
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '3 minutes') \gset
SELECT pgext.server_report(:s5, 'lookup', '{"http_status":200,"servers":[{"id":4713,"name":"x","status":"running"}]}', :c, :'t');
SELECT state, hetzner_id, next_action, needs_cleanup FROM pgext.servers WHERE id = :s5;
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '3 minutes') \gset
SELECT pgext.server_report(:s5, 'delete', '{"http_status":200,"action":{"id":5,"status":"running"}}', :c, :'t');
SELECT state, hetzner_id, next_action, needs_cleanup, retry_at IS NOT NULL AS retry_pending FROM pgext.servers WHERE id = :s5;
SELECT pgext.server_delete(:s5, 'giving up on this one');

-- 9. Timeouts and the retry limit, driven by timestamps
SELECT pgext.server_request(:'pay', 'agent-6', :'spec') AS s6 \gset
SELECT state_since AS since FROM pgext.servers WHERE id = :s6 \gset
SELECT pgext.server_reconcile(:'since'::timestamptz + interval '4 minutes 59 seconds') AS changed;
SELECT pgext.server_reconcile(:'since'::timestamptz + interval '5 minutes') AS changed;
SELECT state, state_reason, needs_cleanup, next_action FROM pgext.servers WHERE id = :s6;
DO $$
DECLARE r timestamptz; s bigint := (SELECT id FROM pgext.servers WHERE provision_key = 'agent-6');
BEGIN
  FOR i IN 1..3 LOOP
    SELECT retry_at INTO r FROM pgext.servers WHERE id = s;
    PERFORM pgext.server_reconcile(r);
    PERFORM pgext.server_reconcile(r + interval '5 minutes');
  END LOOP;
END $$;
SELECT state, state_reason, create_retries, retry_at FROM pgext.servers WHERE id = :s6;
SELECT from_state, to_state, reason, actor FROM pgext.server_history WHERE server_id = :s6 ORDER BY id;
-- an operator may try again by hand
SELECT pgext.server_transition(:s6, 'requested', 'quota raised by support');
SELECT state, next_action, create_retries FROM pgext.servers WHERE id = :s6;
-- creating and configuring time out too; a server that exists is cleaned up
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s6, 'create', '{"http_status":201,"server":{"id":4714,"status":"initializing"},"action":{"id":9002,"status":"running"}}', :c, :'t');
SELECT pgext.server_reconcile(:'t'::timestamptz + interval '9 minutes') AS changed;
SELECT pgext.server_reconcile(:'t'::timestamptz + interval '10 minutes') AS changed;
SELECT state, state_reason, needs_cleanup, next_action, hetzner_id FROM pgext.servers WHERE id = :s6;
SELECT pgext.server_delete(:s6, 'test over');
SELECT state, next_action, hetzner_id FROM pgext.servers WHERE id = :s6;
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '10 minutes') \gset
SELECT pgext.server_report(:s6, 'delete', '{"http_status":404,"error":{"code":"not_found","message":"not found"}}', :c, :'t'::timestamptz + interval '10 minutes');

-- 10. Billing drives the desired state: unpaid pauses, paying again resumes, ended deletes
SELECT pgext.server_request(:'late', 'agent-late', :'spec') AS s7 \gset
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s7, 'create', '{"http_status":201,"server":{"id":4715},"action":{"id":9003,"status":"running"}}', :c, :'t');
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s7, 'poll_action', '{"http_status":200,"action":{"id":9003,"status":"success"}}', :c, :'t');
SELECT pgext.server_report(:s7, 'configured', '{}', NULL, :'t');
SELECT pgext.server_reconcile(:'t') AS changed;
UPDATE pgext.stripe_subscriptions SET status = 'unpaid', grace_until = '2026-11-20 12:00+00' WHERE id = 'sub_srv_late';
SELECT pgext.server_reconcile(:'t'::timestamptz + interval '1 minute') AS changed;
SELECT state, desired_state, next_action FROM pgext.servers WHERE id = :s7;
SELECT state, desired_state, why FROM pgext.server_status WHERE server = :s7;
SELECT action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '1 minute') \gset
SELECT claim AS c FROM pgext.servers WHERE id = :s7 \gset
SELECT :'action' AS action, pgext.server_report(:s7, 'power_off', '{"http_status":201,"action":{"id":9004,"status":"running"}}', :c, :'t'::timestamptz + interval '1 minute');
SELECT state, desired_state, next_action, why FROM pgext.server_status WHERE server = :s7;
UPDATE pgext.stripe_subscriptions SET status = 'active', grace_until = NULL WHERE id = 'sub_srv_late';
SELECT pgext.server_reconcile(:'t'::timestamptz + interval '2 minutes') AS changed;
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '2 minutes') \gset
SELECT :'action' AS action, pgext.server_report(:s7, 'power_on', '{"http_status":201,"action":{"id":9005,"status":"running"}}', :c, :'t'::timestamptz + interval '2 minutes');
UPDATE pgext.stripe_subscriptions SET status = 'canceled', ended_at = '2026-11-01 00:00+00' WHERE id = 'sub_srv_late';
SELECT pgext.server_reconcile(:'t'::timestamptz + interval '3 minutes') AS changed;
SELECT state, desired_state, next_action FROM pgext.servers WHERE id = :s7;
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '3 minutes') \gset
SELECT :'action' AS action, pgext.server_report(:s7, 'delete', '{"http_status":200,"action":{"id":9006,"status":"running"}}', :c, :'t'::timestamptz + interval '3 minutes');
-- paying again does not bring a deleted server back
UPDATE pgext.stripe_subscriptions SET status = 'active', ended_at = NULL WHERE id = 'sub_srv_late';
SELECT pgext.server_reconcile(:'t'::timestamptz + interval '4 minutes') AS changed;
SELECT from_state, to_state, reason, actor FROM pgext.server_history WHERE server_id = :s7 ORDER BY id;
SELECT kind, detail FROM pgext.outbox WHERE server_id = :s7 AND kind <> 'server_active' ORDER BY id;

-- 10b. The other report paths: a vanished action, a failed create action,
-- a manual failure and its cleanup, an error powering off, a server gone at
-- Hetzner, bad arguments
SELECT pgext.server_request(:'pay', 'agent-8', :'spec') AS s8 \gset
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s8, 'create', '{"http_status":201,"server":{"id":4801},"action":{"id":9801,"status":"running"}}', :c, :'t');
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s8, 'poll_action', '{"http_status":404,"error":{"code":"not_found","message":"action not found"}}', :c, :'t');
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT :'action' AS action, pgext.server_report(:s8, 'lookup', '{"http_status":200,"servers":[{"id":4801,"status":"running"}]}', :c, :'t');
SELECT pgext.server_report(:s8, 'configured', '{"reason":"health check https://agent/health passed"}', NULL, :'t');
-- an operator marks it failed by hand: no automatic retry, but it exists, so it is cleaned up
SELECT pgext.server_transition(:s8, 'failed', 'agent corrupted its disk');
SELECT state, needs_cleanup, next_action, retry_at FROM pgext.servers WHERE id = :s8;
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s8, 'delete', '{"http_status":500,"error":{"code":"server_error","message":"boom"}}', :c, :'t');
SELECT state, needs_cleanup, next_action, attempts, last_error FROM pgext.servers WHERE id = :s8;
-- a failed server with nothing left is not live and does not count against the limit
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '10 minutes') \gset
SELECT pgext.server_report(:s8, 'delete', '{"http_status":200}', :c, :'t');
SELECT state, needs_cleanup, next_action, hetzner_id FROM pgext.servers WHERE id = :s8;
SELECT pgext.server_transition(:s8, 'deleted', 'removed from the Hetzner console by support');
SELECT state, desired_state FROM pgext.servers WHERE id = :s8;
-- a create action that ends in error fails the create (the server exists: cleanup)
SELECT pgext.server_request(:'pay', 'agent-9', :'spec') AS s9 \gset
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s9, 'create', '{"http_status":201,"server":{"id":4901},"action":{"id":9901,"status":"running"}}', :c, :'t');
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s9, 'poll_action', '{"http_status":200,"action":{"id":9901,"status":"error","error":{"code":"action_failed","message":"image not found"}}}', :c, :'t');
SELECT state, state_reason, needs_cleanup, next_action, hetzner_id FROM pgext.servers WHERE id = :s9;
SELECT pgext.server_delete(:s9, 'test over');
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s9, 'delete', '{"http_status":200}', :c, :'t');
-- an active server whose power-off is refused keeps trying (and says why); one gone at Hetzner fails
SELECT pgext.server_request(:'late', 'agent-10', :'spec') AS s10 \gset
SELECT id, state, next_action FROM pgext.servers WHERE next_action IS NOT NULL AND id <> :s10;
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s10, 'create', '{"http_status":201,"server":{"id":5001},"action":{"id":10001,"status":"running"}}', :c, :'t');
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s10, 'poll_action', '{"http_status":200,"action":{"id":10001,"status":"success"}}', :c, :'t');
SELECT pgext.server_report(:s10, 'configured', '{}', NULL, :'t');
UPDATE pgext.stripe_subscriptions SET status = 'unpaid', grace_until = '2026-11-20 12:00+00' WHERE id = 'sub_srv_late';
SELECT pgext.server_reconcile(:'t') AS changed;
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT :'action' AS action, pgext.server_report(:s10, 'power_off', '{"http_status":403,"error":{"code":"forbidden","message":"insufficient permissions"}}', :c, :'t');
SELECT state, next_action, attempts, last_error, why FROM pgext.server_status WHERE server = :s10;
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t'::timestamptz + interval '5 seconds') \gset
SELECT :'action' AS action, pgext.server_report(:s10, 'power_off', '{"http_status":404,"error":{"code":"not_found","message":"server not found"}}', :c, :'t');
SELECT state, state_reason, needs_cleanup, next_action, hetzner_id, retry_at FROM pgext.servers WHERE id = :s10;
UPDATE pgext.stripe_subscriptions SET status = 'active', grace_until = NULL WHERE id = 'sub_srv_late';
-- a power-on in flight when the server is deleted, and the server turns out gone: deleted
SELECT pgext.server_request(:'late', 'agent-11', :'spec') AS s11 \gset
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s11, 'create', '{"http_status":201,"server":{"id":5101},"action":{"id":11001,"status":"running"}}', :c, :'t');
SELECT claim AS c FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT pgext.server_report(:s11, 'poll_action', '{"http_status":200,"action":{"id":11001,"status":"success"}}', :c, :'t');
SELECT pgext.server_report(:s11, 'configured', '{}', NULL, :'t');
SELECT pgext.server_transition(:s11, 'paused', 'powered off in the console by support');
SELECT claim AS c, action FROM pgext.server_claim('w1', 10, '2 minutes', :'t') \gset
SELECT :'action' AS action, pgext.server_delete(:s11, 'customer closed the agent');
SELECT next_action, claimed_by FROM pgext.servers WHERE id = :s11;
SELECT pgext.server_report(:s11, 'power_on', '{"http_status":404,"error":{"code":"not_found","message":"server not found"}}', :c, :'t');
SELECT state, state_reason, next_action FROM pgext.servers WHERE id = :s11;
\set VERBOSITY sqlstate
SELECT pgext.server_claim('', 10);
SELECT pgext.server_claim('w1', 0);
SELECT pgext.server_claim('w1', 10, '0 seconds');
SELECT pgext.server_reconcile(NULL);
SELECT pgext.server_report(NULL, 'create', '{"http_status":201}', 1);
SELECT pgext.server_report(:s1, 'create', '{"http_status":"201"}', 1);
\set VERBOSITY terse

-- 11. The status view and the apps' function
SELECT server = :s1 AS s1, state, desired_state, why, location, ipv4, next_action, attempts
  FROM pgext.server_status_of(:'pay') WHERE server = :s1;
SELECT count(*) AS rows_for_nobody FROM pgext.server_status_of(:'nobody');

-- 12. Every transition, valid and invalid, as direct UPDATEs by the superuser:
-- one server per state (reached along allowed moves), then every target tried
SET pgext.server_limit_per_account = 100;
CREATE TEMP TABLE moves (from_state text, to_state text, ok boolean, err text);
DO $$
DECLARE
  states text[] := ARRAY['requested', 'creating', 'configuring', 'active', 'paused', 'deleting', 'deleted', 'failed'];
  path text[];
  f text; t text; s bigint; p text;
BEGIN
  FOREACH f IN ARRAY states LOOP
    path := CASE f WHEN 'requested' THEN '{}'::text[]
                   WHEN 'creating' THEN '{creating}' WHEN 'configuring' THEN '{creating,configuring}'
                   WHEN 'active' THEN '{creating,configuring,active}'
                   WHEN 'paused' THEN '{creating,configuring,active,paused}'
                   WHEN 'deleting' THEN '{deleting}' WHEN 'deleted' THEN '{deleted}'
                   WHEN 'failed' THEN '{failed}' END;
    FOREACH t IN ARRAY states LOOP
      CONTINUE WHEN t = f;
      s := pgext.server_request((SELECT id FROM pgext.accounts WHERE external_id = 'srv_pay'),
                                'matrix-' || f || '-' || t, '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}');
      FOREACH p IN ARRAY path LOOP
        UPDATE pgext.servers SET state = p WHERE id = s;
      END LOOP;
      BEGIN
        UPDATE pgext.servers SET state = t WHERE id = s;
        INSERT INTO moves VALUES (f, t, true, NULL);
      EXCEPTION WHEN object_not_in_prerequisite_state THEN
        INSERT INTO moves VALUES (f, t, false, SQLERRM);
      END;
    END LOOP;
  END LOOP;
END $$;
SELECT from_state, string_agg(to_state, ', ' ORDER BY to_state) FILTER (WHERE ok) AS allowed,
       string_agg(to_state, ', ' ORDER BY to_state) FILTER (WHERE NOT ok) AS refused
  FROM moves GROUP BY from_state ORDER BY array_position(ARRAY['requested', 'creating', 'configuring', 'active', 'paused', 'deleting', 'deleted', 'failed'], from_state);
-- exactly the table
SELECT count(*) AS mismatches FROM moves m
 WHERE m.ok <> EXISTS (SELECT FROM pgext.server_transitions t WHERE t.from_state = m.from_state AND t.to_state = m.to_state);
-- what a refused direct UPDATE says
\set VERBOSITY default
UPDATE pgext.servers SET state = 'creating' WHERE id = :s1;
\set VERBOSITY terse
UPDATE pgext.servers SET state = 'requested' WHERE provision_key = 'matrix-deleted-active';
-- through the function: the same check, plus a reason
SELECT pgext.server_transition(:s1, 'configuring', 'trying');
SELECT pgext.server_transition(:s1, 'bogus', 'trying');
SELECT pgext.server_transition(:s1, 'paused', '');
-- bad inputs (issue 13): reasons and claimant names have a length; a
-- message shows at most 64 characters of a rejected value
SELECT pgext.server_transition(:s1, 'paused', repeat('r', 1001));
SELECT pgext.server_transition(:s1, repeat('x', 100000), 'trying');
SELECT pgext.server_delete(:s1, repeat('r', 1001));
SELECT count(*) FROM pgext.server_claim(repeat('w', 201));
SELECT pgext.server_report(:s1, repeat('a', 100000), '{}');
-- a direct UPDATE that is allowed is recorded as such
UPDATE pgext.servers SET state = 'paused' WHERE id = :s1;
SELECT to_state, reason, actor = current_user AS by_me FROM pgext.server_history WHERE server_id = :s1 ORDER BY id DESC LIMIT 1;
-- ... with a reason when the operator gives one
BEGIN;
SET LOCAL pgext.transition_reason = 'powered back on in the console';
UPDATE pgext.servers SET state = 'active' WHERE id = :s1;
COMMIT;
SELECT to_state, reason FROM pgext.server_history WHERE server_id = :s1 ORDER BY id DESC LIMIT 1;
-- a new row must start requested
INSERT INTO pgext.servers (account_id, provision_key, name, spec, spec_hash, state)
VALUES (:'pay', 'sneaky', 'sneaky', '{}', '', 'active');
RESET pgext.server_limit_per_account;

-- The DROP guard counts servers that are not deleted: pgext's record is the only link to them
\set VERBOSITY default
DROP EXTENSION pgext;
\set VERBOSITY terse
