-- Hetzner: the worker's lease (epochs), the HTTP requests pgext.hetzner_claim
-- hands out and what pgext.hetzner_response makes of the answers (all
-- fabricated here: no network), capacity fallback, the rescue of creates
-- whose answer was lost, the API call log and its retention, and the fleet
-- reconciliation (orphans, adoption, vanished servers, drift, limits, alerts).
-- Time is driven through the `at` arguments (offsets from :t).
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
SET TIME ZONE 'UTC';
-- one account asks for many servers here
SET pgext.server_limit_per_account = 100;

SELECT pgext.account_create('hz_pay') AS pay \gset
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
VALUES ('sub_hz_pay', :'pay', 'active', '2026-01-01', '2099-01-01');
SELECT pg_catalog.now() + interval '1 minute' AS t \gset
-- run a statement, show its SQLSTATE and message
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- what the worker got from its last claim (n: the order), the account uuid masked
CREATE TEMP TABLE sent (n bigint, ref jsonb, class text, method text, path text, body text);
CREATE FUNCTION pg_temp.claim(at timestamptz, classes text[] DEFAULT '{urgent,reconcile,normal}', lim integer DEFAULT 10)
RETURNS TABLE (n bigint, class text, method text, path text, body text) LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM sent;
  INSERT INTO sent SELECT h.o, h.ref, h.class, h.method, h.path, h.body
    FROM pgext.hetzner_claim(current_setting('test.epoch')::bigint, lim, classes, at)
         WITH ORDINALITY AS h(ref, class, method, path, body, o);
  RETURN QUERY SELECT s.n, s.class, s.method, s.path,
                      replace(s.body, (SELECT a.id::text FROM pgext.accounts a WHERE a.external_id = 'hz_pay'), '<pay>')
                 FROM sent s ORDER BY s.n;
END $$;
-- hand the answer to request n back
CREATE FUNCTION pg_temp.answer(n bigint, status integer, body text, at timestamptz,
                               meta jsonb DEFAULT '{"duration_ms": 12.5, "correlation_id": "corr-x"}')
RETURNS text LANGUAGE sql AS $$
  SELECT pgext.hetzner_response(s.ref, $2, $3, $5, $4) FROM sent s WHERE s.n = $1
$$;
-- the answer for server s's request
CREATE FUNCTION pg_temp.answer_for(s bigint, status integer, body text, at timestamptz)
RETURNS text LANGUAGE sql AS $$
  SELECT pgext.hetzner_response(x.ref, $2, $3, '{}', $4) FROM sent x WHERE x.ref ->> 'server' = $1::text
$$;
-- every action poll in the last claim: all its actions finished
CREATE FUNCTION pg_temp.answer_polls(at timestamptz) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(pgext.hetzner_response(x.ref, 200,
           (SELECT jsonb_build_object('actions', jsonb_agg(jsonb_build_object('id', i -> 'action_id', 'status', 'success')))
              FROM jsonb_array_elements(x.ref -> 'items') i)::text, '{}', $1), ';' ORDER BY x.n)
    FROM sent x WHERE x.ref ->> 'kind' = 'poll'
$$;
\set spec '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"],"user_data":"#!/bin/sh\\necho hi\\n","labels":{"app":"agent"},"ssh_keys":["ops"]}'
\set hspec '{"server_type":"cx32","image":"ubuntu-24.04","locations":["fsn1"],"health":{"url":"http://{ipv4}:8080/health"}}'

-- 1. The lease: worker_begin starts an epoch; a stale epoch claims nothing (55000)
SELECT pgext.worker_heartbeat(1, :'t') AS alive_before_begin;
SELECT set_config('test.epoch', pgext.worker_begin('test worker', :'t')::text, false) AS epoch;
SELECT pgext.worker_heartbeat(1, :'t') AS alive, pgext.worker_heartbeat(2, :'t') AS other_alive;
SELECT epoch, holder, began_at = :'t' AS began FROM pgext.worker_lease;
SELECT pg_temp.try($$SELECT * FROM pgext.hetzner_claim(2, 10, '{normal}')$$) AS stale_epoch;
SELECT pg_temp.try($$SELECT pgext.worker_begin('')$$) AS empty_holder,
       pg_temp.try($$SELECT pgext.worker_begin('w', NULL)$$) AS null_at,
       pg_temp.try($$SELECT pgext.worker_heartbeat(NULL)$$) AS null_epoch;
SELECT pg_temp.try($$SELECT * FROM pgext.hetzner_claim(1, 0, '{normal}')$$) AS zero_limit,
       pg_temp.try($$SELECT * FROM pgext.hetzner_claim(1, 10, '{normal,bogus}')$$) AS bad_class;
SELECT pg_temp.try($$SELECT * FROM pgext.hetzner_claim(1, 10, '{}')$$) AS no_class,
       pg_temp.try($$SELECT * FROM pgext.hetzner_claim(1, 10, NULL)$$) AS null_classes,
       pg_temp.try($$SELECT * FROM pgext.hetzner_claim(NULL, 10, '{normal}')$$) AS null_epoch;

-- 2. A create: POST /servers with the spec, the location tried, pgext's labels, never datacenter
SELECT pgext.server_request(:'pay', 'hz-1', :'spec') AS s1 \gset
SELECT pgext.server_request(:'pay', 'hz-2', :'hspec') AS s2 \gset
SELECT pgext.server_request(:'pay', 'hz-3', :'spec') AS s3 \gset
SELECT * FROM pg_temp.claim(:'t');
SELECT n, ref - 'path' AS ref, body::jsonb ? 'datacenter' AS datacenter,
       body::jsonb -> 'labels' ->> 'pgext-account' = :'pay' AS account_label,
       length(body::jsonb -> 'labels' ->> 'pgext-account') <= 63 AS label_value_ok
  FROM sent ORDER BY n;
SELECT id, claimed_by, claimed_until - :'t'::timestamptz AS lease, create_sent, create_unknown FROM pgext.servers ORDER BY id;
-- the claims are held: nothing again until answered
SELECT count(*) AS again FROM pgext.hetzner_claim(1, 10, '{urgent,reconcile,normal}', :'t');
SELECT pgext.hetzner_response(ref, 201,
         jsonb_build_object('server', jsonb_build_object('id', 5000 + (ref ->> 'server')::int, 'name', 'x', 'status', 'initializing',
                                                         'public_net', jsonb_build_object('ipv4', jsonb_build_object('ip', '203.0.113.' || (ref ->> 'server'))),
                                                         'datacenter', jsonb_build_object('location', jsonb_build_object('name', 'fsn1'))),
                            'action', jsonb_build_object('id', 9000 + (ref ->> 'server')::int, 'command', 'create_server', 'status', 'running'),
                            'next_actions', '[]'::jsonb, 'root_password', NULL)::text,
         '{"duration_ms": 250, "correlation_id": "corr-create"}', :'t') AS outcome
  FROM sent ORDER BY n;
SELECT id, state, hetzner_id, ipv4, action_id, next_action, hetzner_status FROM pgext.servers ORDER BY id;

-- 3. Action polls go in one batched GET /actions (up to 25 ids); a spec without
-- health is active when its create action finished, one with health is configuring
SELECT * FROM pg_temp.claim(:'t'::timestamptz + interval '2 minutes');
SELECT jsonb_array_length(ref -> 'items') AS items, ref -> 'items' -> 0 AS first_item FROM sent;
SELECT pg_temp.answer(1, 200, '{"actions":[{"id":9001,"command":"create_server","status":"success","progress":100},
                                          {"id":9003,"command":"create_server","status":"running","progress":50},
                                          {"id":9002,"command":"create_server","status":"success","progress":100}],
                               "meta":{"pagination":{"page":1,"per_page":25,"next_page":null}}}',
                      :'t'::timestamptz + interval '2 minutes') AS outcomes;
SELECT id, state, state_reason, next_action FROM pgext.servers ORDER BY id;
SELECT * FROM pg_temp.claim(:'t'::timestamptz + interval '2 minutes 5 seconds');
SELECT pg_temp.answer(1, 200, '{"actions":[{"id":9003,"status":"success"}]}', :'t'::timestamptz + interval '2 minutes 5 seconds') AS outcomes;
-- a poll batch that fails retries each item; an action missing from the list is looked up
SELECT pgext.server_request(:'pay', 'hz-p', :'spec') AS sp \gset
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '3 minutes');
SELECT pg_temp.answer(1, 201, '{"server":{"id":5090,"status":"initializing"},"action":{"id":9090,"status":"running"}}', :'t'::timestamptz + interval '3 minutes');
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '3 minutes');
SELECT pg_temp.answer(1, 503, '{"error":{"code":"unavailable","message":"try later"}}', :'t'::timestamptz + interval '3 minutes') AS outcomes;
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '4 minutes');
SELECT pg_temp.answer(1, 200, '{"actions":[]}', :'t'::timestamptz + interval '4 minutes') AS outcomes;
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '4 minutes');
-- a listed server of another name is not this one
SELECT pg_temp.answer(1, 200, format('{"servers":[{"id":5091,"name":"pgext-0000000000000000","status":"running"},{"id":5090,"name":"%s","status":"running"}]}',
                                     pgext.server_name('hz-p')), :'t'::timestamptz + interval '4 minutes') AS outcome;
SELECT hetzner_id, state FROM pgext.servers WHERE id = :sp;

-- 4. Capacity: a 412 marks (location, server type) cold and tries the next location;
-- another server skips the cold location; when all are cold the create waits (not failed)
SELECT pgext.server_request(:'pay', 'hz-4', :'spec') AS s4 \gset
SELECT pg_catalog.now() + interval '10 minutes' AS t \gset
SELECT n, method, path, body::jsonb ->> 'location' AS location FROM pg_temp.claim(:'t');
SELECT pg_temp.answer(1, 412, '{"error":{"code":"resource_unavailable","message":"error during placement","details":{}}}', :'t') AS outcome;
SELECT location, server_type, cold_until - :'t'::timestamptz BETWEEN '8 minutes' AND '12 minutes' AS cold_for, hits, last_error
  FROM pgext.hetzner_cold;
SELECT pgext.server_request(:'pay', 'hz-5', :'spec') AS s5 \gset
SELECT count(*) AS sent FROM pg_temp.claim(:'t');
SELECT ref ->> 'server' = :'s4' AS is_s4, method, body::jsonb ->> 'location' AS location FROM sent ORDER BY 1;
SELECT pg_temp.answer_for(:s4, 201, '{"server":{"id":5004,"status":"initializing","datacenter":{"location":{"name":"nbg1"}}},"action":{"id":9004,"status":"running"}}', :'t') AS s4,
       pg_temp.answer_for(:s5, 412, '{"error":{"code":"resource_unavailable","message":"error during placement"}}', :'t') AS s5;
SELECT id, state, location_index, capacity_rounds, next_attempt_at - :'t'::timestamptz BETWEEN '15 seconds' AND '30 seconds' AS backoff_ok, last_error
  FROM pgext.servers WHERE id = :s5;
-- every location cold: a third server is not sent at all; it waits and stays requested
SELECT pgext.server_request(:'pay', 'hz-6', :'spec') AS s6 \gset
SELECT n, method, path FROM pg_temp.claim(:'t', '{normal}');
SELECT pg_temp.answer_polls(:'t') AS polls;
SELECT id, state, location_index, capacity_rounds, next_attempt_at > :'t'::timestamptz AS waits, last_error
  FROM pgext.servers WHERE id IN (:s5, :s6) ORDER BY id;
-- after the cold marks expire, from the first location again
SELECT count(*) AS sent FROM pg_temp.claim(:'t'::timestamptz + interval '13 minutes', '{normal}');
SELECT (ref ->> 'server')::int AS server, method, body::jsonb ->> 'location' AS location FROM sent ORDER BY 1;
SELECT pgext.hetzner_response(ref, 201, format('{"server":{"id":%s,"status":"running"},"action":{"id":%s,"status":"running"}}',
                                               5200 + (ref ->> 'server')::int, 9200 + (ref ->> 'server')::int),
                              NULL, :'t'::timestamptz + interval '13 minutes') AS outcome
  FROM sent WHERE method = 'POST' ORDER BY n;

-- 5. A create whose answer never arrived is looked up by name first: found (adopted) or
-- not found (created again); never a blind second create
SELECT pgext.server_request(:'pay', 'hz-7', :'spec') AS s7 \gset
SELECT pgext.server_request(:'pay', 'hz-8', :'spec') AS s8 \gset
SELECT pg_catalog.now() + interval '30 minutes' AS t \gset
SELECT n, method, path FROM pg_temp.claim(:'t', '{normal}');
SELECT pg_temp.answer_polls(:'t') AS polls;
SELECT pg_temp.answer(1, NULL, NULL, :'t', '{"duration_ms": 30000, "correlation_id": null, "error": {"code": "timeout", "message": "Operation timed out"}}') AS no_answer,
       pg_temp.answer(2, 201, '{"server": {"id": 50', :'t') AS truncated;
SELECT id, next_action, create_unknown, attempts, last_error FROM pgext.servers WHERE id IN (:s7, :s8) ORDER BY id;
SELECT count(*) AS sent FROM pg_temp.claim(:'t'::timestamptz + interval '10 seconds', '{normal}');
SELECT (ref ->> 'server')::int AS server, method, path, ref ->> 'attempt' AS attempt FROM sent ORDER BY 1;
SELECT pg_temp.answer_for(:s7, 200, format('{"servers":[{"id":5007,"name":"%s","status":"running","public_net":{"ipv4":{"ip":"203.0.113.77"}}}],"meta":{"pagination":{"page":1}}}',
                                           pgext.server_name('hz-7')), :'t'::timestamptz + interval '10 seconds') AS found,
       pg_temp.answer_for(:s8, 200, '{"servers":[],"meta":{"pagination":{"page":1}}}', :'t'::timestamptz + interval '10 seconds') AS not_found;
SELECT id, state, hetzner_id, ipv4, next_action, create_unknown FROM pgext.servers WHERE id IN (:s7, :s8) ORDER BY id;
SELECT from_state, to_state, reason FROM pgext.server_history WHERE server_id = :s7 AND from_state IS NOT NULL ORDER BY id;
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '10 seconds', '{normal}');
SELECT pg_temp.answer(1, 201, '{"server":{"id":5008,"status":"initializing"},"action":{"id":9008,"status":"running"}}', :'t'::timestamptz + interval '10 seconds') AS outcome;
-- a claim taken back by a new epoch (worker restart): the old epoch is refused, the
-- create is looked up (attempt 2), the old claim's late answer is stale
SELECT pgext.server_request(:'pay', 'hz-9', :'spec') AS s9 \gset
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '20 seconds', '{normal}');
CREATE TEMP TABLE old_sent AS SELECT * FROM sent;
SELECT set_config('test.epoch', pgext.worker_begin('restarted worker', :'t'::timestamptz + interval '25 seconds')::text, false) AS epoch;
SELECT pgext.worker_heartbeat(1, :'t'::timestamptz + interval '25 seconds') AS old_epoch_alive;
SELECT pg_temp.try(format($$SELECT * FROM pgext.hetzner_claim(1, 10, '{normal}', %L)$$, :'t'::timestamptz + interval '25 seconds')) AS old_epoch;
SELECT id, claimed_by, claimed_until = :'t'::timestamptz + interval '25 seconds' AS taken_back FROM pgext.servers WHERE id = :s9;
SELECT count(*) AS sent FROM pg_temp.claim(:'t'::timestamptz + interval '25 seconds', '{normal}');
SELECT n, method, path, ref ->> 'attempt' AS attempt FROM sent ORDER BY n;
SELECT last_error FROM pgext.servers WHERE id = :s9;
SELECT pgext.hetzner_response(o.ref, 201, '{"server":{"id":5009},"action":{"id":9009,"status":"running"}}', '{}', :'t'::timestamptz + interval '26 seconds') AS late
  FROM old_sent o WHERE o.method = 'POST';
SELECT pg_temp.answer_polls(:'t'::timestamptz + interval '26 seconds') AS polls;
SELECT pg_temp.answer(1, 200, format('{"servers":[{"id":5009,"name":"%s","status":"starting"}]}', pgext.server_name('hz-9')),
                      :'t'::timestamptz + interval '26 seconds') AS outcome;
SELECT id, state, hetzner_id, next_action, next_attempt_at - :'t'::timestamptz AS next_at FROM pgext.servers WHERE id = :s9;
-- answers the worker cannot make sense of
SELECT pg_temp.try($$SELECT pgext.hetzner_response('[]', 200, '{}', '{}')$$) AS ref_not_object,
       pg_temp.try($$SELECT pgext.hetzner_response('{"kind":"server"}', 200, '{}', '{}')$$) AS ref_no_path;
SELECT pg_temp.try($$SELECT pgext.hetzner_response('{"kind":"page","method":"GET","path":"/x"}', 700, '{}', '{}')$$) AS bad_status,
       pg_temp.try($$SELECT pgext.hetzner_response('{"kind":"page","method":"GET","path":"/x"}', 200, '{}', '[]')$$) AS meta_not_object;
SELECT pg_temp.try($$SELECT pgext.hetzner_response('{"kind":"page","method":"GET","path":"/x"}', NULL, NULL, '{}')$$) AS no_status_no_error,
       pg_temp.try($$SELECT pgext.hetzner_response('{"kind":"page","method":"GET","path":"/x"}', NULL, NULL, '{"error":{"code":"boom"}}')$$) AS unknown_error,
       pg_temp.try($$SELECT pgext.hetzner_response('{"kind":"page","method":"GET","path":"/x"}', 200, '{}', '{}', NULL)$$) AS null_at;

-- 6. Every call is in pgext.api_calls: method, path, status, error code, duration,
-- attempt, correlation id, server; never a token or a body
SELECT count(*) AS calls, count(DISTINCT id) AS ids FROM pgext.api_calls;
SELECT method, path ~ '^/servers\?name=pgext-[0-9a-f]{16}$' AS lookup_path, http_status, error_code, duration_ms, attempt, request_id,
       server_id = :s7 AS s7
  FROM pgext.api_calls WHERE server_id IN (:s7, :s8) ORDER BY id;
SELECT method, regexp_replace(path, '[0-9]+', 'N', 'g') AS path, http_status, error_code, count(*)
  FROM pgext.api_calls GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
SELECT count(*) AS rows_with_secrets FROM pgext.api_calls c
 WHERE row_to_json(c)::text ~* 'bearer|token|root_password|user_data';
SELECT pgext.api_calls_retention(:'t'::timestamptz + interval '29 days') AS deleted_early;
SELECT pg_temp.try($$SELECT pgext.api_calls_retention(NULL)$$) AS null_at;

-- 7. Reconciliation: list the managed servers page by page, then compare
SELECT pgext.server_request(:'pay', 'hz-10', :'spec') AS s10 \gset
SELECT n, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '30 seconds', '{normal}');
SELECT pgext.hetzner_response(ref, NULL, NULL, '{"error":{"code":"network","message":"connection reset"}}', :'t'::timestamptz + interval '30 seconds') AS lost
  FROM sent WHERE ref ->> 'server' = :'s10';
SELECT pgext.server_delete(:s4, 'customer left') AS s4_deleting;
SELECT id, state, hetzner_id, next_action, claimed_by IS NOT NULL AND claimed_until > :'t'::timestamptz + interval '1 minute' AS claimed
  FROM pgext.servers ORDER BY id;
SELECT pgext.hetzner_reconcile_start(:'t'::timestamptz + interval '1 minute') AS run \gset
SELECT :run AS run, pgext.hetzner_reconcile_start(:'t'::timestamptz + interval '1 minute') AS while_open,
       pg_temp.try($$SELECT pgext.hetzner_reconcile_start(NULL)$$) AS null_at;
SELECT expected FROM pgext.hetzner_reconcile_runs WHERE id = :run;
SELECT :'t'::timestamptz + interval '1 minute' AS t \gset
-- a list page: our servers (5001 is off: drift), the lost create of hz-10 under its name, an orphan
CREATE FUNCTION pg_temp.srv(id bigint, name text, status text, created timestamptz) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id, 'name', name, 'status', status, 'created', created,
                            'labels', jsonb_build_object('managed-by', 'pgext'),
                            'public_net', jsonb_build_object('ipv4', jsonb_build_object('ip', '198.51.100.' || (id % 250))),
                            'datacenter', jsonb_build_object('location', jsonb_build_object('name', 'fsn1')))
$$;
SELECT n, class, method, path FROM pg_temp.claim(:'t', '{reconcile}');
SELECT count(*) AS second_page_before_first FROM pgext.hetzner_claim(current_setting('test.epoch')::bigint, 10, '{reconcile}', :'t');
SELECT pgext.hetzner_response(s.ref, 200, jsonb_build_object('servers', jsonb_build_array(
         pg_temp.srv(5001, pgext.server_name('hz-1'), 'off', :'t'::timestamptz - interval '1 hour'),
         pg_temp.srv(5002, pgext.server_name('hz-2'), 'running', :'t'::timestamptz - interval '1 hour'),
         pg_temp.srv(5007, pgext.server_name('hz-7'), 'running', :'t'::timestamptz - interval '1 hour'),
         pg_temp.srv(5010, pgext.server_name('hz-10'), 'initializing', :'t'::timestamptz - interval '1 minute'),
         pg_temp.srv(7001, 'ops-build-box', 'running', :'t'::timestamptz - interval '30 days')),
       'meta', jsonb_build_object('pagination', jsonb_build_object('page', 1, 'per_page', 50, 'next_page', 2, 'last_page', 2)))::text,
       '{"correlation_id": "corr-page-1"}', :'t') AS outcome
  FROM sent s;
SELECT n, class, method, path FROM pg_temp.claim(:'t', '{reconcile}');
SELECT pg_temp.answer(1, 502, '<html>bad gateway</html>', :'t') AS outcome;
SELECT pages, servers_seen, next_page, page_attempts, page_due_at > :'t'::timestamptz AS waits, last_error FROM pgext.hetzner_reconcile_runs WHERE id = :run;
SELECT count(*) AS during_backoff FROM pg_temp.claim(:'t'::timestamptz + interval '1 second', '{reconcile}');
-- page 2: 60 orphans created long ago, the rest of ours (5003 and 5004 are missing: vanished)
SELECT count(*) AS sent FROM pg_temp.claim(:'t'::timestamptz + interval '10 seconds', '{reconcile}');
SELECT n, path, ref ->> 'attempt' AS attempt FROM sent ORDER BY n;
-- (more live servers than the paying accounts may have: an alert)
SET pgext.server_limit_per_account = 3;
SELECT pg_temp.answer(1, 200, jsonb_build_object('servers',
         (SELECT jsonb_agg(pg_temp.srv(i, 'stray-' || i, 'running', :'t'::timestamptz - interval '30 days') ORDER BY i)
            FROM generate_series(8001, 8060) i)
         || jsonb_build_array(pg_temp.srv(5206, pgext.server_name('hz-5'), 'running', :'t'::timestamptz - interval '1 hour'),
                              pg_temp.srv(5207, pgext.server_name('hz-6'), 'running', :'t'::timestamptz - interval '1 hour'),
                              pg_temp.srv(5008, pgext.server_name('hz-8'), 'running', :'t'::timestamptz - interval '1 hour'),
                              pg_temp.srv(5009, pgext.server_name('hz-9'), 'running', :'t'::timestamptz - interval '1 hour'),
                              pg_temp.srv(5090, pgext.server_name('hz-p'), 'running', :'t'::timestamptz - interval '1 hour')),
       'meta', jsonb_build_object('pagination', jsonb_build_object('page', 2, 'per_page', 50, 'next_page', NULL, 'last_page', 2)))::text,
       :'t'::timestamptz + interval '10 seconds') AS outcome;
SET pgext.server_limit_per_account = 100;
SELECT finished_at IS NOT NULL AS finished, pages, servers_seen, next_page, outcome FROM pgext.hetzner_reconcile_runs WHERE id = :run;
-- adopted: hz-10 (its create's answer was lost); vanished: hz-3 failed, hz-4 (deleting) deleted;
-- drift: hz-1 is active but off, so it is powered on
SELECT id, state, state_reason, hetzner_id, hetzner_status, next_action, needs_cleanup FROM pgext.servers ORDER BY id;
SELECT n, class, method, path FROM pg_temp.claim(:'t'::timestamptz + interval '20 seconds', '{urgent,normal}') ORDER BY n;
SELECT count(*) AS orphans, min(sightings) AS sightings, count(*) FILTER (WHERE delete_queued_at IS NOT NULL) AS queued
  FROM pgext.server_orphans;
SELECT source, code, detail FROM pgext.alerts ORDER BY id;
-- an operator keeps one orphan
SELECT pgext.server_orphan_keep(7001, 'the ops build box') AS kept, pgext.server_orphan_keep(7001, 'the ops team''s build box') AS kept_again;
SELECT hetzner_id, kept_reason, kept_by = session_user AS by_caller FROM pgext.server_orphans WHERE kept_at IS NOT NULL;
SELECT pg_temp.try($$SELECT pgext.server_orphan_keep(4242, 'x')$$) AS unknown,
       pg_temp.try($$SELECT pgext.server_orphan_keep(7001, ' ')$$) AS no_reason,
       pg_temp.try($$SELECT pgext.server_orphan_keep(NULL, 'x')$$) AS null_id;
-- bad inputs (issue 13): a reason of at most 1000 characters; a message
-- shows at most 64 characters of a rejected value
SELECT pg_temp.try($$SELECT pgext.server_orphan_keep(7001, repeat('r', 1001))$$) AS long_reason,
       pg_temp.try($$SELECT pgext.hetzner_claim(1, 10, ARRAY[repeat('c', 100000)])$$) AS huge_class;

-- 8. A week later the orphans are seen again: deleted, at most 5 per run and 10% of the
-- fleet (the rest waits, an alert says so); never kept ones, never young ones
SELECT :'t'::timestamptz + interval '8 days' AS t8 \gset
SELECT pgext.hetzner_reconcile_start(:'t8') AS run2 \gset
SELECT n, path FROM pg_temp.claim(:'t8', '{reconcile}');
SELECT pg_temp.answer(1, 200, jsonb_build_object('servers',
         (SELECT jsonb_agg(pg_temp.srv(x.hetzner_id, x.name, 'running', :'t'::timestamptz - interval '1 hour'))
            FROM pgext.servers x WHERE x.hetzner_id IS NOT NULL AND x.state <> 'deleted')
         || (SELECT jsonb_agg(pg_temp.srv(i, 'stray-' || i, 'running', :'t'::timestamptz - interval '30 days') ORDER BY i)
               FROM generate_series(8001, 8060) i)
         || jsonb_build_array(pg_temp.srv(7001, 'ops-build-box', 'running', :'t'::timestamptz - interval '30 days'),
                              pg_temp.srv(7002, 'fresh-one', 'initializing', :'t8'::timestamptz - interval '5 minutes')),
       'meta', jsonb_build_object('pagination', jsonb_build_object('page', 1, 'next_page', NULL)))::text,
       :'t8') AS outcome;
SELECT outcome FROM pgext.hetzner_reconcile_runs WHERE id = :run2;
SELECT hetzner_id, sightings, delete_queued_at IS NOT NULL AS queued, kept_at IS NOT NULL AS kept
  FROM pgext.server_orphans WHERE delete_queued_at IS NOT NULL OR hetzner_id < 8000 ORDER BY hetzner_id;
SELECT code, detail FROM pgext.alerts WHERE id > 1 ORDER BY id;
SELECT n, class, method, path FROM pg_temp.claim(:'t8', '{urgent}');
SELECT pg_temp.answer(1, 200, '{"action":{"id":1,"command":"delete_server","status":"running"}}', :'t8') AS ok,
       pg_temp.answer(2, 404, '{"error":{"code":"not_found","message":"server not found"}}', :'t8') AS gone,
       pg_temp.answer(3, 500, '{"error":{"code":"server_error","message":"boom"}}', :'t8') AS error,
       pg_temp.answer(3, 200, '{}', :'t8') AS again;
SELECT hetzner_id, deleted_at IS NOT NULL AS deleted, attempts, last_error
  FROM pgext.server_orphans WHERE delete_queued_at IS NOT NULL ORDER BY hetzner_id;
-- a kept orphan is never deleted, even when it was queued
SELECT pgext.server_orphan_keep(8004, 'keep this one after all');
SELECT n, path FROM pg_temp.claim(:'t8'::timestamptz + interval '1 minute', '{urgent}');
-- pgext.orphan_delete_after = 0: never; orphans no longer listed are gone
SET pgext.orphan_delete_after = 0;
SELECT pgext.hetzner_reconcile_start(:'t8'::timestamptz + interval '1 day') AS run3 \gset
SELECT n, path FROM pg_temp.claim(:'t8'::timestamptz + interval '1 day', '{reconcile}');
SELECT pg_temp.answer(1, 200, jsonb_build_object('servers',
         (SELECT jsonb_agg(pg_temp.srv(x.hetzner_id, x.name, 'running', :'t'::timestamptz - interval '1 hour'))
            FROM pgext.servers x WHERE x.hetzner_id IS NOT NULL AND x.state <> 'deleted')
         || (SELECT jsonb_agg(pg_temp.srv(i, 'stray-' || i, 'running', :'t'::timestamptz - interval '30 days') ORDER BY i)
               FROM generate_series(8006, 8030) i),
       'meta', jsonb_build_object('pagination', jsonb_build_object('page', 1, 'next_page', NULL)))::text,
       :'t8'::timestamptz + interval '1 day') AS outcome;
RESET pgext.orphan_delete_after;
SELECT outcome - 'live' - 'entitled' AS outcome FROM pgext.hetzner_reconcile_runs WHERE id = :run3;
SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS listed, count(*) FILTER (WHERE deleted_at IS NOT NULL) AS gone
  FROM pgext.server_orphans;
SELECT count(*) AS seen_rows_kept, min(run) = :run3 AS only_last_run FROM pgext.hetzner_seen;
-- a stale page answer (an earlier claim) and a run that made no progress for an hour
SELECT pgext.hetzner_response(jsonb_build_object('kind', 'page', 'run', :run3, 'page', 1, 'claim', 1, 'method', 'GET', 'path', '/servers'),
                              200, '{"servers":[]}', NULL, :'t8'::timestamptz + interval '1 day') AS stale;
SELECT pgext.hetzner_reconcile_start(:'t8'::timestamptz + interval '2 days') AS run4 \gset
SELECT pgext.hetzner_reconcile_start(:'t8'::timestamptz + interval '2 days 59 minutes') AS while_open,
       pgext.hetzner_reconcile_start(:'t8'::timestamptz + interval '2 days 1 hour') > :run4 AS after_an_hour;
SELECT id = :run4 AS run4, outcome FROM pgext.hetzner_reconcile_runs WHERE id = :run4;
-- a list without any of ours (a token of another project?) fails nothing: an alert says so
SELECT count(*) FILTER (WHERE state = 'failed') AS failed_before FROM pgext.servers;
SELECT n, path FROM pg_temp.claim(:'t8'::timestamptz + interval '2 days 1 hour', '{reconcile}');
SELECT pg_temp.answer(1, 200, '{"servers":[],"meta":{"pagination":{"page":1,"next_page":null}}}', :'t8'::timestamptz + interval '2 days 1 hour') AS outcome;
SELECT outcome ->> 'vanished' AS vanished, outcome ->> 'vanished_held' AS held FROM pgext.hetzner_reconcile_runs ORDER BY id DESC LIMIT 1;
SELECT count(*) FILTER (WHERE state = 'failed') AS failed_after FROM pgext.servers;
SELECT code, detail - 'run' AS detail FROM pgext.alerts ORDER BY id DESC LIMIT 1;

-- 9. Retention of the call log
SELECT count(*) > 0 AS have_calls FROM pgext.api_calls;
SELECT pgext.api_calls_retention(now()) AS deleted_none;
SELECT pgext.api_calls_retention(:'t8'::timestamptz + interval '31 days') > 0 AS deleted_old;
SELECT count(*) AS left_after, min(at) >= :'t8'::timestamptz + interval '1 day' AS only_recent FROM pgext.api_calls;
SHOW pgext.api_calls_retention;
SHOW pgext.orphan_delete_after;
SHOW pgext.hetzner_cold_for;
SHOW pgext.hetzner_claim_lease;
