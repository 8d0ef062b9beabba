-- Bad inputs (issue 13, "Hardening", item 1): every public function (every
-- function of schema pgext that a role other than the owner may EXECUTE) gets
-- one valid call (its BASE CASE), then each argument in turn is replaced by
-- each bad value of its type (NULLs, empty, huge, control characters,
-- injection strings, overflowing numbers, infinite timestamps, huge
-- intervals, odd JSON, invalid UTF-8 bytes, odd arrays).  Every case runs in
-- its own subtransaction that is always rolled back (a sentinel error after
-- a call that returned), so cases are independent.  The checks print their
-- offending rows: none is expected.  Then a summary per function: the
-- SQLSTATEs seen and how many cases returned normally ('ok').
--
-- A granted function without a base case is listed first (the test fails):
-- add its valid call to the base table below.
--
-- The whole test runs in one transaction on a fresh extension (its tables
-- and sequences are objects of that transaction) and is rolled back at the
-- end: the database is as the tests before left it.  What cannot be rolled
-- back (shared memory) is named where it is checked.
\set VERBOSITY terse
SET client_min_messages = warning;
SET statement_timeout = '120s';
\set SHOW_CONTEXT never
-- Invalid UTF-8 never reaches a text argument in a UTF8 database: the
-- conversion (or the input function) refuses it first, with 22021.  Shown
-- once here; bytea arguments get invalid UTF-8 for real below.
SELECT pgext.server_name(convert_from('\xff'::bytea, 'UTF8'));
SELECT pgext.server_name(E'\xff');

BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext CASCADE;
CREATE EXTENSION pgext;
SET LOCAL TIME ZONE 'UTC';

-- Fixtures: the values the base cases refer to, by key (pg_temp.fx('key')).
CREATE TEMP TABLE fx (k text PRIMARY KEY, v text NOT NULL);
CREATE FUNCTION pg_temp.fx(key text) RETURNS text LANGUAGE sql STABLE AS
  $$ SELECT f.v FROM pg_temp.fx f WHERE f.k = $1 $$;
CREATE FUNCTION pg_temp.put(key text, val anyelement) RETURNS void LANGUAGE sql AS
  $$ INSERT INTO pg_temp.fx VALUES ($1, $2::text) $$;
SELECT pg_temp.put('acct', pgext.account_create('badin-a')),
       pg_temp.put('acct2', pgext.account_create('badin-b'));
SELECT pgext.account_set_stripe_customer(pg_temp.fx('acct')::uuid, 'cus_badin_a');
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
VALUES ('sub_badin_a', pg_temp.fx('acct')::uuid, 'active', '2026-01-01', '2099-01-01');
SELECT (pgext.credit_grant(pg_temp.fx('acct')::uuid, 1000, 'badin-grant-1')).status;
SELECT pg_temp.put('res', (pgext.credit_reserve(pg_temp.fx('acct')::uuid, 50, 'badin-res-1')).id),
       pg_temp.put('grant', pgext.access_grant(pg_temp.fx('acct2')::uuid, now() + interval '30 days', 'badin'));
SELECT pg_temp.put('spec', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"],"user_data":"#!/bin/sh\necho hello\n","health":{"url":"http://{ipv4}:8080/health"}}'::jsonb);
SELECT pg_temp.put('srv', pgext.server_request(pg_temp.fx('acct')::uuid, 'badin-srv-1', pg_temp.fx('spec')::jsonb)),
       pg_temp.put('srv2', pgext.server_request(pg_temp.fx('acct')::uuid, 'badin-srv-2', pg_temp.fx('spec')::jsonb));
SELECT pg_temp.put('check', pgext.health_check_add(pg_temp.fx('srv')::bigint, 'http://203.0.113.9:8080/health'));
SELECT pg_temp.put('epoch', pgext.worker_begin('badin worker'));
-- a Hetzner request of the first server for hetzner_response
SELECT pg_temp.put('href', h.ref)
  FROM pgext.hetzner_claim(pg_temp.fx('epoch')::bigint, 1, '{urgent,reconcile,normal}') h
 WHERE h.ref ->> 'kind' = 'server' LIMIT 1;
-- a claim of the second server for server_report
SELECT pg_temp.put('claim', c.claim), pg_temp.put('claim_action', c.action)
  FROM pgext.server_claim('badin-agent', 1) c WHERE c.server = pg_temp.fx('srv2')::bigint;
-- a Stripe request (an on-demand sync of the account) for stripe_response
SELECT pg_temp.put('sync', pgext.stripe_sync_account(pg_temp.fx('acct')::uuid));
SELECT pg_temp.put('sref', s.ref)
  FROM pgext.stripe_claim(pg_temp.fx('epoch')::bigint, 10, '{urgent,reconcile,normal}') s LIMIT 1;
-- a finished sync request: stripe_sync_wait answers at once
WITH r AS (
  INSERT INTO pgext.stripe_sync_runs (kind, account_id, customer_id, started_at, finished_at, status, page_due_at, progress_at)
  VALUES ('account', pg_temp.fx('acct')::uuid, 'cus_badin_a', now(), now(), 'done', now(), now()) RETURNING id)
SELECT pg_temp.put('sync_done', r.id) FROM r;
SELECT pgext.secret_set('badin:secret', 'value-0123456789abcdef', pg_temp.fx('acct')::uuid) IS NOT NULL AS stored;
SELECT pg_temp.put('pgp', encode(public.pgp_sym_encrypt('imported-0123456789abcdef', 'badin-pass'), 'hex'));
SELECT pgext.stripe_price_set('price_badin', 'subscription', 1000, 500);
INSERT INTO pgext.server_orphans (hetzner_id, name, first_seen_at, last_seen_at)
VALUES (990001, 'badin-orphan', now(), now());
-- webhooks: the Stripe secret, a generic source, one ingested event
SELECT pgext.secret_set('webhook:stripe', 'whsec_badin') IS NOT NULL AS stored,
       pgext.secret_set('webhook:badin', 'whsec_badin_generic') IS NOT NULL AS stored;
SELECT pgext.webhook_source_set('badin_src', 'webhook:badin');
CREATE FUNCTION pg_temp.stripe_event(id text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('{"id":"%s","object":"event","api_version":"2025-03-31.basil","created":%s,"livemode":false,'
                '"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created",'
                '"data":{"object":{"id":"cus_badin_x","object":"customer"}}}',
                $1, extract(epoch FROM date_trunc('second', now()))::bigint) $$;
CREATE FUNCTION pg_temp.stripe_sig(payload text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('t=%s,v1=%s', t, encode(public.hmac(t || '.' || $1, 'whsec_badin', 'sha256'), 'hex'))
    FROM (SELECT extract(epoch FROM date_trunc('second', now()))::bigint::text AS t) x $$;
SELECT (pgext.webhook_ingest('stripe', pg_temp.stripe_event('evt_badin_1'),
                             pg_temp.stripe_sig(pg_temp.stripe_event('evt_badin_1')),
                             date_trunc('second', now()))).status;
SELECT pg_temp.put('payload', pg_temp.stripe_event('evt_badin_2')),
       pg_temp.put('sig', pg_temp.stripe_sig(pg_temp.stripe_event('evt_badin_2')));
-- every fixture is there
SELECT k AS fixture FROM unnest(ARRAY['acct', 'acct2', 'res', 'grant', 'srv', 'srv2', 'check', 'epoch', 'claim',
                                      'href', 'sync', 'sref', 'sync_done', 'pgp', 'payload', 'sig']) k
 WHERE pg_temp.fx(k) IS NULL;

-- BASE CASES: one valid call per public function, every argument given (a
-- SQL expression per argument; it is cast to the argument's type).
CREATE TEMP TABLE base (fn regprocedure PRIMARY KEY, args text[] NOT NULL);
INSERT INTO base VALUES
 ('pgext.access_expire(timestamptz)', '{now()}'),
 ('pgext.access_grant(uuid,timestamptz,text)', ARRAY[$$pg_temp.fx('acct')$$, $$now() + interval '30 days'$$, $$'badin grant'$$]),
 ('pgext.access_revoke(bigint,text)', ARRAY[$$pg_temp.fx('grant')$$, $$'badin revoke'$$]),
 ('pgext.account_export(uuid)', ARRAY[$$pg_temp.fx('acct')$$]),
 ('pgext.account_forget(uuid,boolean)', ARRAY[$$pg_temp.fx('acct2')$$, 'true']),
 ('pgext.account_create(text,text)', ARRAY[$$'badin-new'$$, $$'metered'$$]),
 ('pgext.account_server_desired(uuid,timestamptz,timestamptz)', ARRAY[$$pg_temp.fx('acct')$$, $$now() - interval '1 day'$$, 'now()']),
 ('pgext.account_set_credit_mode(uuid,text)', ARRAY[$$pg_temp.fx('acct')$$, $$'unlimited'$$]),
 ('pgext.account_set_stripe_customer(uuid,text)', ARRAY[$$pg_temp.fx('acct2')$$, $$'cus_badin_b'$$]),
 ('pgext.api_calls_retention(timestamptz)', '{now()}'),
 ('pgext.current_account()', '{}'),
 ('pgext.billing_access(uuid,timestamptz)', ARRAY[$$pg_temp.fx('acct')$$, 'now()']),
 ('pgext.billing_expire_grace(timestamptz)', '{now()}'),
 ('pgext.credit_allocate(uuid,bigint,text,bigint,timestamptz)', ARRAY[$$pg_temp.fx('acct')$$, '100', $$'2026-11'$$, '50', $$now() + interval '30 days'$$]),
 ('pgext.credit_audit(uuid)', ARRAY[$$pg_temp.fx('acct')$$]),
 ('pgext.credit_balance(uuid)', ARRAY[$$pg_temp.fx('acct')$$]),
 ('pgext.credit_commit(bigint,bigint)', ARRAY[$$pg_temp.fx('res')$$, '5']),
 ('pgext.credit_deduct(uuid,bigint,text,text)', ARRAY[$$pg_temp.fx('acct')$$, '10', $$'badin-deduct'$$, $$'badin reason'$$]),
 ('pgext.credit_grant(uuid,bigint,text,text,timestamptz)', ARRAY[$$pg_temp.fx('acct')$$, '100', $$'badin-grant-2'$$, $$'bonus'$$, $$now() + interval '30 days'$$]),
 ('pgext.credit_release(bigint)', ARRAY[$$pg_temp.fx('res')$$]),
 ('pgext.credit_reserve(uuid,bigint,text,interval)', ARRAY[$$pg_temp.fx('acct')$$, '10', $$'badin-res-2'$$, $$'15 minutes'$$]),
 ('pgext.credit_sweep(integer)', '{1000}'),
 ('pgext.credit_verify()', '{}'),
 ('pgext.health_check_add(bigint,text,text,interval,interval)', ARRAY[$$pg_temp.fx('srv')$$, $$'http://203.0.113.9:8080/other'$$, $$'shallow'$$, $$'30 s'$$, $$'5 s'$$]),
 ('pgext.health_check_remove(bigint)', ARRAY[$$pg_temp.fx('check')$$]),
 ('pgext.health_check_update(bigint,text,interval,interval,boolean)', ARRAY[$$pg_temp.fx('check')$$, $$'http://203.0.113.9:8080/health2'$$, $$'20 s'$$, $$'2 s'$$, 'true']),
 ('pgext.health_config_version()', '{}'),
 ('pgext.health_poller()', '{}'),
 ('pgext.health_record(bigint[],boolean[],integer[],integer[],text[],timestamptz)', ARRAY[$$ARRAY[pg_temp.fx('check')::bigint]$$, $$'{t}'$$, $$'{200}'$$, $$'{12}'$$, $$'{NULL}'$$, 'now()']),
 ('pgext.health_recover(timestamptz)', '{now()}'),
 ('pgext.health_recovery_pause(text)', ARRAY[$$'badin pause'$$]),
 ('pgext.health_recovery_resume()', '{}'),
 ('pgext.health_retention(timestamptz)', '{now()}'),
 ('pgext.health_worker_load()', '{}'),
 ('pgext.hetzner_claim(bigint,integer,text[],timestamptz)', ARRAY[$$pg_temp.fx('epoch')$$, '10', $$'{urgent,reconcile,normal}'$$, 'now()']),
 ('pgext.hetzner_reconcile_start(timestamptz)', '{now()}'),
 ('pgext.hetzner_response(jsonb,integer,text,jsonb,timestamptz)', ARRAY[$$pg_temp.fx('href')$$, '201',
   $$'{"server":{"id":4711,"name":"x","status":"initializing","public_net":{"ipv4":{"ip":"203.0.113.7"}}},"action":{"id":1,"status":"running"}}'$$, $$'{}'$$, 'now()']),
 ('pgext.outbox_since(bigint,integer)', '{0,100}'),
 ('pgext.rate_limit(text,integer,double precision,integer)', ARRAY[$$'badin:key'$$, '10', '1.5', '1']),
 ('pgext.rate_limit_reset(text)', ARRAY[$$'badin:key'$$]),
 ('pgext.secret_audit_flush()', '{}'),
 ('pgext.secret_audit_pending()', '{}'),
 ('pgext.secret_delete(text,uuid)', ARRAY[$$'badin:secret'$$, $$pg_temp.fx('acct')$$]),
 ('pgext.secret_get(text,uuid)', ARRAY[$$'badin:secret'$$, $$pg_temp.fx('acct')$$]),
 ('pgext.secret_import_pgp(text,bytea,text,uuid,timestamptz)', ARRAY[$$'badin:imported'$$, $$decode(pg_temp.fx('pgp'), 'hex')$$, $$'badin-pass'$$, $$pg_temp.fx('acct')$$, $$now() + interval '30 days'$$]),
 ('pgext.secret_key_versions()', '{}'),
 ('pgext.secret_list()', '{}'),
 ('pgext.secret_logging_risks()', '{}'),
 ('pgext.secret_masked(text,uuid)', ARRAY[$$'badin:secret'$$, $$pg_temp.fx('acct')$$]),
 ('pgext.secret_rewrap(integer)', '{1000}'),
 ('pgext.secret_set(text,text,uuid,timestamptz)', ARRAY[$$'badin:secret2'$$, $$'value-0123456789abcdef'$$, $$pg_temp.fx('acct')$$, $$now() + interval '30 days'$$]),
 ('pgext.server_claim(text,integer,interval,timestamptz)', ARRAY[$$'badin-agent'$$, '10', $$'2 minutes'$$, 'now()']),
 ('pgext.server_delete(bigint,text)', ARRAY[$$pg_temp.fx('srv')$$, $$'badin delete'$$]),
 ('pgext.server_desired_state(text,text,timestamptz,timestamptz,timestamptz,timestamptz)', ARRAY[$$'none'$$, $$'unpaid'$$, $$now() - interval '2 days'$$, $$now() - interval '1 day'$$, 'now()', $$now() - interval '2 days'$$]),
 ('pgext.server_name(text)', ARRAY[$$'badin-key'$$]),
 ('pgext.server_orphan_keep(bigint,text)', ARRAY['990001', $$'badin keep'$$]),
 ('pgext.server_reconcile(timestamptz)', '{now()}'),
 ('pgext.server_report(bigint,text,jsonb,bigint,timestamptz)', ARRAY[$$pg_temp.fx('srv2')$$, $$pg_temp.fx('claim_action')$$,
   $$'{"http_status":201,"server":{"id":4712,"name":"y","status":"initializing","public_net":{"ipv4":{"ip":"203.0.113.8"}}},"action":{"id":2,"status":"running"}}'$$, $$pg_temp.fx('claim')$$, 'now()']),
 ('pgext.server_request(uuid,text,jsonb)', ARRAY[$$pg_temp.fx('acct')$$, $$'badin-srv-3'$$, $$pg_temp.fx('spec')$$]),
 ('pgext.server_spec_check(jsonb)', ARRAY[$$pg_temp.fx('spec')$$]),
 ('pgext.server_status_of(uuid)', ARRAY[$$pg_temp.fx('acct')$$]),
 ('pgext.server_transition(bigint,text,text)', ARRAY[$$pg_temp.fx('srv')$$, $$'failed'$$, $$'badin'$$]),
 ('pgext.server_user_data_check(bytea)', ARRAY[$$convert_to(E'#!/bin/sh\necho hello\n', 'UTF8')$$]),
 ('pgext.stripe_claim(bigint,integer,text[],timestamptz)', ARRAY[$$pg_temp.fx('epoch')$$, '10', $$'{urgent,reconcile,normal}'$$, 'now()']),
 ('pgext.stripe_events_start(timestamptz)', '{now()}'),
 ('pgext.stripe_next_due()', '{}'),
 ('pgext.stripe_price_remove(text)', ARRAY[$$'price_badin'$$]),
 ('pgext.stripe_price_set(text,text,bigint,bigint)', ARRAY[$$'price_badin2'$$, $$'subscription'$$, '1000', '500']),
 ('pgext.stripe_reconcile_start(timestamptz)', '{now()}'),
 ('pgext.stripe_response(jsonb,integer,text,jsonb,timestamptz)', ARRAY[$$pg_temp.fx('sref')$$, '200',
   $$'{"object":"list","data":[],"has_more":false,"url":"/v1/subscriptions"}'$$, $$'{}'$$, 'now()']),
 ('pgext.stripe_sync_account(uuid)', ARRAY[$$pg_temp.fx('acct')$$]),
 ('pgext.stripe_sync_wait(bigint,interval)', ARRAY[$$pg_temp.fx('sync_done')$$, $$'1 second'$$]),
 ('pgext.webhook_apply(integer)', '{100}'),
 ('pgext.webhook_claim(text,integer)', ARRAY[$$'badin_src'$$, '100']),
 ('pgext.webhook_ingest(text,text,text,timestamptz)', ARRAY[$$'stripe'$$, $$pg_temp.fx('payload')$$, $$pg_temp.fx('sig')$$, $$date_trunc('second', now())$$]),
 ('pgext.webhook_rejection_counts(interval)', ARRAY[$$'1 hour'$$]),
 ('pgext.webhook_replay(text,text)', ARRAY[$$'stripe'$$, $$'evt_badin_1'$$]),
 ('pgext.webhook_replay_dead(text)', ARRAY[$$'stripe'$$]),
 ('pgext.webhook_retention(timestamptz)', '{now()}'),
 ('pgext.webhook_source_remove(text)', ARRAY[$$'badin_src'$$]),
 ('pgext.webhook_source_set(text,text,text,text,text,text,interval,text,text,text)',
   ARRAY[$$'badin_src2'$$, $$'webhook:badin'$$, $$'timestamped'$$, $$'hex'$$, $$''$$, $$'v1'$$, $$'5 minutes'$$, $$'sha256'$$, $$'id'$$, $$'type'$$]),
 ('pgext.worker_apis()', '{}'),
 ('pgext.worker_begin(text,timestamptz)', ARRAY[$$'badin worker 2'$$, 'now()']),
 ('pgext.set_account(uuid)', ARRAY[$$pg_temp.fx('acct')$$]),
 ('pgext.worker_heartbeat(bigint,timestamptz)', ARRAY[$$pg_temp.fx('epoch')$$, 'now()']),
 ('pgext.worker_queue_depth(text)', ARRAY[$$'webhook_apply'$$]),
 ('pgext.worker_run_now(text)', ARRAY[$$'credit_sweep'$$]),
 ('pgext.worker_tasks()', '{}'),
 ('pgext.worker_wake()', '{}');

-- The public functions: EXECUTE granted to anyone but the owner (or to
-- PUBLIC by default: a NULL acl); trigger functions cannot be called.
CREATE TEMP VIEW public_fn AS
  SELECT p.oid::regprocedure AS fn, string_to_array(p.proargtypes::text, ' ')::oid[] AS argtypes, p.proargnames AS argnames
    FROM pg_catalog.pg_proc p
   WHERE p.pronamespace = 'pgext'::regnamespace AND p.prorettype <> 'trigger'::regtype
     AND (p.proacl IS NULL
          OR EXISTS (SELECT FROM pg_catalog.aclexplode(p.proacl) a
                      WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner));
-- a public function without a base case (add one above): must be none
SELECT fn AS missing_base_case FROM public_fn WHERE fn NOT IN (SELECT fn FROM base) ORDER BY fn::text;
-- a base case of no public function, or with the wrong number of arguments
SELECT b.fn AS stray_base_case FROM base b LEFT JOIN public_fn f ON f.fn = b.fn
 WHERE f.fn IS NULL OR cardinality(b.args) <> cardinality(f.argtypes) ORDER BY 1;

-- BAD VALUES per argument type (label, SQL expression).
CREATE TEMP TABLE bad (typ regtype, label text, expr text, PRIMARY KEY (typ, label));
INSERT INTO bad VALUES
 ('text', 'null', 'NULL'),
 ('text', 'empty', $$''$$),
 ('text', 'blank', $$'   '$$),
 ('text', '100kB', $$repeat('x', 100000)$$),
 ('text', '1MB', $$repeat('y', 1048576)$$),
 ('text', 'control chars', $$E'a\x01b\tc\nd\x1b[31m\x7f'$$),
 ('text', 'sql injection', $$'''; DROP TABLE pgext.accounts; --'$$),
 ('text', 'bobby tables', $$'Robert''); DROP TABLE students;--'$$),
 ('text', 'dollar quotes', $q$'$$ $body$'$q$),
 ('text', 'backslash', $$E'\\'$$),
 ('text', 'quotes', $$'"''`"'$$),
 ('text', 'format string', $$'%s%n%x%%'$$),
 ('text', 'rtl zero-width', $$E'\u202Eabc\u200B\uFEFFdef'$$),
 ('text', 'emoji', $$'naïve 😀 名前'$$),
 ('text', '64-char ident', $$repeat('n', 64)$$),
 ('text', 'long ident', $$repeat('i', 5000)$$),
 ('bigint', 'null', 'NULL'),
 ('bigint', 'zero', '0'),
 ('bigint', 'minus one', '-1'),
 ('bigint', 'min', '-9223372036854775808'),
 ('bigint', 'max', '9223372036854775807'),
 ('bigint', 'max+1', '9223372036854775807::bigint + 1'),
 ('integer', 'null', 'NULL'),
 ('integer', 'zero', '0'),
 ('integer', 'minus one', '-1'),
 ('integer', 'min', '-2147483648'),
 ('integer', 'max', '2147483647'),
 ('integer', 'max+1', '2147483647::integer + 1'),
 ('uuid', 'null', 'NULL'),
 ('uuid', 'nil', $$'00000000-0000-0000-0000-000000000000'$$),
 ('uuid', 'unknown', $$'deadbeef-dead-4eef-8eef-deadbeefdead'$$),
 ('timestamptz', 'null', 'NULL'),
 ('timestamptz', 'infinity', $$'infinity'$$),
 ('timestamptz', '-infinity', $$'-infinity'$$),
 ('timestamptz', 'max', $$'294276-12-31 23:59:59.999999+00'$$),
 ('timestamptz', 'min', $$'4714-11-24 00:00:00+00 BC'$$),
 ('timestamptz', 'far past', $$'1900-01-01 00:00:00+00'$$),
 ('timestamptz', 'far future', $$'9999-12-31 00:00:00+00'$$),
 -- ('infinity' is no interval in PostgreSQL 15)
 ('interval', 'null', 'NULL'),
 ('interval', 'zero', $$'0'$$),
 ('interval', 'minus 1 s', $$'-1 s'$$),
 ('interval', '1 us', $$'1 microsecond'$$),
 ('interval', 'huge', $$'178000000 years'$$),
 ('interval', 'huge negative', $$'-178000000 years'$$),
 ('interval', 'max', $$'2147483647 days 2562047788 hours'$$),
 ('double precision', 'null', 'NULL'),
 ('double precision', 'NaN', $$'NaN'$$),
 ('double precision', 'Infinity', $$'Infinity'$$),
 ('double precision', '-Infinity', $$'-Infinity'$$),
 ('double precision', 'minus one', '-1'),
 ('double precision', 'zero', '0'),
 ('double precision', '1e308', '1e308'),
 ('double precision', '1e-308', '1e-308'),
 ('jsonb', 'null', 'NULL'),
 ('jsonb', 'json null', $$'null'$$),
 ('jsonb', 'array', $$'[]'$$),
 ('jsonb', 'empty object', $$'{}'$$),
 ('jsonb', 'string', $$'"x"'$$),
 ('jsonb', 'number', $$'-1'$$),
 ('jsonb', 'deep nesting', $$(repeat('{"a":', 10000) || '1' || repeat('}', 10000))$$),
 ('jsonb', 'huge object', $$(SELECT jsonb_object_agg('k' || i, repeat('v', 10)) FROM generate_series(1, 100000) i)$$),
 ('bytea', 'null', 'NULL'),
 ('bytea', 'empty', $$''$$),
 ('bytea', 'invalid utf8', $$'\xfffe'$$),
 ('bytea', 'NUL byte', $$'\x2321202f62696e2f73680a00'$$),
 ('bytea', '64kB+1', $$decode(repeat('41', 65537), 'hex')$$),
 ('bytea', '1MB', $$decode(repeat('23', 1048576), 'hex')$$),
 ('boolean', 'null', 'NULL'),
 ('text[]', 'null', 'NULL'),
 ('text[]', 'empty', $$'{}'$$),
 ('text[]', 'null element', $$'{NULL}'$$),
 ('text[]', 'three', $$'{a,b,c}'$$),
 ('text[]', 'injection element', $$ARRAY['''; DROP TABLE pgext.accounts; --']$$),
 ('text[]', '1MB element', $$ARRAY[repeat('z', 1048576)]$$),
 ('text[]', '2-D', $$'{{a},{b}}'$$),
 ('bigint[]', 'null', 'NULL'),
 ('bigint[]', 'empty', $$'{}'$$),
 ('bigint[]', 'null element', $$'{NULL}'$$),
 ('bigint[]', 'three', $$'{1,2,3}'$$),
 ('bigint[]', 'minus one', $$'{-1}'$$),
 ('bigint[]', 'max', $$'{9223372036854775807}'$$),
 ('boolean[]', 'null', 'NULL'),
 ('boolean[]', 'empty', $$'{}'$$),
 ('boolean[]', 'null element', $$'{NULL}'$$),
 ('boolean[]', 'three', $$'{t,t,t}'$$),
 ('integer[]', 'null', 'NULL'),
 ('integer[]', 'empty', $$'{}'$$),
 ('integer[]', 'null element', $$'{NULL}'$$),
 ('integer[]', 'three', $$'{1,2,3}'$$),
 ('integer[]', 'minus one', $$'{-1}'$$),
 ('integer[]', 'max', $$'{2147483647}'$$);
-- an argument type of a public function without bad values (add some above)
SELECT DISTINCT t::regtype AS type_without_bad_values
  FROM public_fn f, unnest(f.argtypes) t
 WHERE t::regtype NOT IN (SELECT typ FROM bad) ORDER BY 1;

-- Table digests of every pgext table, before and after the run.
CREATE FUNCTION pg_temp.digests() RETURNS TABLE (tab regclass, digest text) LANGUAGE plpgsql AS $$
DECLARE r regclass;
BEGIN
  FOR r IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'pgext'::regnamespace
              AND c.relkind IN ('r', 'p') ORDER BY c.relname LOOP
    tab := r;
    EXECUTE format('SELECT md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text), '''')) FROM %s x', r)
      INTO digest;
    RETURN NEXT;
  END LOOP;
END $$;
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.digests();
CREATE TEMP TABLE audit_before AS SELECT * FROM pgext.secret_audit_pending();

-- The run: each case in its own subtransaction, always rolled back.
CREATE TEMP TABLE outcome (fn regprocedure, argn int, arg text, label text, sqlstate text, message text);
CREATE FUNCTION pg_temp.run_case(fn regprocedure, argtypes oid[], args text[]) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  call text;
  st text;
  msg text;
BEGIN
  SELECT format('SELECT count(*) FROM %s(%s) x', p.oid::regproc,
                coalesce(string_agg(format('(%s)::%s', a.e, format_type(argtypes[a.n], NULL)), ', ' ORDER BY a.n)
                         FILTER (WHERE a.n IS NOT NULL), ''))
    INTO call
    FROM pg_proc p LEFT JOIN unnest(args) WITH ORDINALITY a(e, n) ON true
   WHERE p.oid = fn GROUP BY p.oid;
  BEGIN
    EXECUTE call;
    RAISE EXCEPTION 'bad_inputs sentinel' USING ERRCODE = 'ZB999';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  END;
  IF st = 'ZB999' AND msg = 'bad_inputs sentinel' THEN
    RETURN ARRAY['ok', NULL];
  END IF;
  RETURN ARRAY[st, msg];
END $$;
DO $$
DECLARE
  f record;
  b record;
  i int;
  r text[];
  args text[];
BEGIN
  FOR f IN SELECT pf.fn, pf.argtypes, pf.argnames, bs.args FROM public_fn pf JOIN base bs USING (fn)
            -- set_account last: its base case binds the whole (one) transaction
            -- to an account, and a rolled-back savepoint keeps a binding
            ORDER BY pf.fn = 'pgext.set_account(uuid)'::regprocedure, pf.fn::text LOOP
    r := pg_temp.run_case(f.fn, f.argtypes, f.args);
    INSERT INTO outcome VALUES (f.fn, 0, NULL, 'base', r[1], r[2]);
    FOR i IN 1 .. coalesce(cardinality(f.argtypes), 0) LOOP
      FOR b IN SELECT * FROM bad WHERE typ = f.argtypes[i]::regtype ORDER BY label LOOP
        args := f.args;
        args[i] := b.expr;
        r := pg_temp.run_case(f.fn, f.argtypes, args);
        INSERT INTO outcome VALUES (f.fn, i, f.argnames[i], b.label, r[1], r[2]);
      END LOOP;
    END LOOP;
  END LOOP;
END $$;

-- Checks (each: no rows).
-- a base case that did not return normally
SELECT fn, sqlstate, message FROM outcome WHERE argn = 0 AND sqlstate <> 'ok' ORDER BY fn::text;
-- internal errors: XX000 and classes XX, 58 (system errors), 53 (resources)
SELECT fn, arg, label, sqlstate, left(message, 200) AS message FROM outcome
 WHERE left(sqlstate, 2) IN ('XX', '58', '53') ORDER BY 1, 2, 3;
-- errors that point at the function rather than at the input: a table
-- constraint caught what the function should check itself (class 23), a
-- statement inside it failed (class 42, but 42704 "unknown webhook source"
-- is the answer of webhook_ingest), an unsupported feature (0A), a RAISE
-- without its own SQLSTATE (P0001)
SELECT fn, arg, label, sqlstate, left(message, 200) AS message FROM outcome
 WHERE (left(sqlstate, 2) IN ('23', '42', '0A') AND sqlstate <> '42704') OR sqlstate = 'P0001'
 ORDER BY 1, 2, 3;
-- an error with an empty message or one that shows internals, or too long
-- (an echoed 100 kB value)
SELECT fn, arg, label, sqlstate, left(message, 200) AS message, length(message) AS len FROM outcome
 WHERE sqlstate <> 'ok'
   AND (coalesce(message, '') = '' OR message ~* 'cache lookup failed|unrecognized|SPI_|internal error'
        OR length(message) > 600)
 ORDER BY 1, 2, 3;
-- every table as before the run (proves each case rolled back and nothing
-- escaped through another connection)
SELECT b.tab AS changed_table FROM before b JOIN pg_temp.digests() a USING (tab)
 WHERE a.digest IS DISTINCT FROM b.digest ORDER BY 1;
-- Shared memory is not rolled back.  What the run leaves there on purpose:
-- the secret audit counts every access attempt when it happens, whether its
-- transaction commits or not (an aborted read was still a read), so the
-- pending audit gained entries for the secret operations the cases tried.
-- Other shared state the cases touched: rate_limit buckets (key 'badin:key'
-- and the bad keys take buckets of the fixed pool, least recently used ones
-- are reused; rate_limit_reset empties one at once), the worker's wake latch
-- and run-now flags (worker_wake, worker_run_now: the worker runs a task
-- early), the health poller's config version (the poller reloads).
SELECT p.op, p.outcome, count(*) AS entries
  FROM pgext.secret_audit_pending() p
  LEFT JOIN audit_before b USING (role_name, op, outcome, secret_id, account_id, name)
 WHERE p.count IS DISTINCT FROM b.count GROUP BY 1, 2 ORDER BY 1, 2;

-- Summary: per function (its base case included), the SQLSTATEs the bad
-- values got and how many cases returned normally.  Read the 'ok' column:
-- each bad value a function accepted is a question (a reason text with
-- quotes is fine, a negative amount would not be).
SELECT fn AS function,
       string_agg(DISTINCT sqlstate, ' ' ORDER BY sqlstate) FILTER (WHERE sqlstate <> 'ok') AS errors,
       count(*) FILTER (WHERE sqlstate = 'ok') AS ok, count(*) AS cases
  FROM outcome GROUP BY fn ORDER BY fn::text;
SELECT count(*) AS cases, count(DISTINCT fn) AS functions FROM outcome;
ROLLBACK;
