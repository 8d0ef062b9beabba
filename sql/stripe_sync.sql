-- Stripe sync: the requests pgext.stripe_claim hands the worker and what
-- pgext.stripe_response makes of the answers (all fabricated here: no
-- network): subscription reconciliation (pages, snapshots ordered with
-- webhook events, unmatched customers, the server policy following), missed
-- events (only unknown ids queued, cursor and overlap, the 72 h alert,
-- livemode), on-demand account syncs and waiting for them, retries, fatal
-- answers, worker epochs and the API call log.
-- Time is driven through the `at` arguments (offsets from :t).
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
SET TIME ZONE 'UTC';

SELECT pgext.secret_set('webhook:stripe', 'whsec_sync_test') IS NOT NULL AS stored;
SELECT pgext.account_create('sync_a') AS acct_a \gset
SELECT pgext.account_create('sync_b') AS acct_b \gset
SELECT pgext.account_create('sync_c') AS acct_c \gset
SELECT pgext.account_set_stripe_customer(:'acct_a', 'cus_a');
SELECT pgext.account_set_stripe_customer(:'acct_b', 'cus_b');
-- the first page of a reconcile run arrives at :t (fractional seconds: a
-- snapshot never ties with an event's whole-second created)
\set t '2026-06-01 12:00:00.5+00'
SELECT pgext.worker_begin('stripe test', :'t'::timestamptz - interval '1 hour') AS epoch \gset
SELECT set_config('test.epoch', :'epoch', false) IS NOT NULL AS set;

-- run a statement, show its SQLSTATE and message
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- what the worker got from its last claim (n: the order)
CREATE TEMP TABLE sent (n bigint, ref jsonb, class text, method text, path text, body text);
CREATE FUNCTION pg_temp.claim(at timestamptz, classes text[] DEFAULT '{urgent,reconcile,normal}', lim integer DEFAULT 10)
RETURNS TABLE (n bigint, class text, method text, path text, body text) LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM sent;
  INSERT INTO sent SELECT h.o, h.ref, h.class, h.method, h.path, h.body
    FROM pgext.stripe_claim(current_setting('test.epoch')::bigint, lim, classes, at)
         WITH ORDINALITY AS h(ref, class, method, path, body, o);
  RETURN QUERY SELECT s.n, s.class, s.method, s.path, s.body FROM sent s ORDER BY s.n;
END $$;
-- hand the answer to request n back
CREATE FUNCTION pg_temp.answer(n bigint, status integer, body text, at timestamptz,
                               meta jsonb DEFAULT '{"duration_ms": 8.5, "correlation_id": "req_x"}')
RETURNS text LANGUAGE sql AS $$
  SELECT pgext.stripe_response(s.ref, $2, $3, $5, $4) FROM sent s WHERE s.n = $1
$$;
-- a Stripe list page
CREATE FUNCTION pg_temp.page(has_more boolean, VARIADIC items jsonb[]) RETURNS text LANGUAGE sql AS $$
  SELECT jsonb_build_object('object', 'list', 'url', '/v1/x', 'has_more', $1,
                            'data', COALESCE((SELECT jsonb_agg(i ORDER BY o) FROM unnest($2) WITH ORDINALITY u(i, o)), '[]'))::text
$$;
-- a subscription as Stripe lists it (period end 2099: access runs while active)
CREATE FUNCTION pg_temp.sub(id text, customer text, status text, extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', $1, 'object', 'subscription', 'customer', $2, 'status', $3, 'livemode', false,
                            'cancel_at_period_end', false, 'cancel_at', NULL,
                            'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
                              'id', 'si_' || $1, 'price', jsonb_build_object('id', 'price_sync'),
                              'current_period_start', 1780272000, 'current_period_end', 4070908800))))
         || $4
$$;
-- a Stripe event about a subscription
CREATE FUNCTION pg_temp.event(id text, type text, created timestamptz, obj jsonb, live boolean DEFAULT false)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', $1, 'object', 'event', 'type', $2, 'livemode', $5,
                            'created', floor(extract(epoch FROM $3))::bigint, 'data', jsonb_build_object('object', $4))
$$;
-- deliver an event as a signed webhook (Stripe's scheme, the test secret)
CREATE FUNCTION pg_temp.deliver(ev jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT (pgext.webhook_ingest('stripe', $1::text,
            't=' || ($1 ->> 'created') || ',v1='
            || encode(hmac(($1 ->> 'created') || '.' || $1::text, 'whsec_sync_test', 'sha256'), 'hex'),
            to_timestamp(($1 ->> 'created')::bigint))).status
$$;
-- a subscription's record, short
CREATE FUNCTION pg_temp.subs() RETURNS TABLE (id text, account text, status text, cancel_at_period_end boolean,
                                              ended_at timestamptz, version text)
LANGUAGE sql AS $$
  SELECT s.id, a.external_id, s.status, s.cancel_at_period_end, s.ended_at, v.event_id
    FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
    LEFT JOIN pgext.stripe_object_versions v ON v.object_id = s.id ORDER BY s.id
$$;

-- 1. bad inputs of every public function
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(NULL, 1, '{reconcile}')$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1, '{reconcile}', NULL)$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 0, '{reconcile}')$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1001, '{reconcile}')$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1, '{}')$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1, '{bulk}')$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1, ARRAY['urgent', NULL])$$);
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1, NULL)$$);
-- bad inputs (issue 13): a 2-D array is no list of classes (22023, not 0A000)
SELECT pg_temp.try($$SELECT * FROM pgext.stripe_claim(1, 1, '{{urgent},{normal}}')$$);
SELECT pg_temp.try(format($$SELECT * FROM pgext.stripe_claim(%s, 1, '{reconcile}')$$, :epoch + 7));
SELECT pg_temp.try($$SELECT pgext.stripe_response(NULL, 200, '{}', '{}')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"page","run":1,"claim":1,"method":"GET","path":"/"}', 200, '{}', '{}')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"stripe_page","run":"1","claim":1,"method":"GET","path":"/"}', 200, '{}', '{}')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"stripe_page","run":1,"claim":1,"method":"GET","path":"/"}', 200, '{}', '[]')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"stripe_page","run":1,"claim":1,"method":"GET","path":"/"}', 99, '{}', '{}')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"stripe_page","run":1,"claim":1,"method":"GET","path":"/"}', NULL, NULL, '{}')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"stripe_page","run":1,"claim":1,"method":"GET","path":"/"}', NULL, NULL, '{"error":{"code":"dns"}}')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_response('{"kind":"stripe_page","run":1,"claim":1,"method":"GET","path":"/"}', 200, '{}', '{}', NULL)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_reconcile_start(NULL)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_events_start(NULL)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_sync_account(NULL)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_sync_account('00000000-0000-0000-0000-000000000000')$$);
SELECT replace(pg_temp.try(format($$SELECT pgext.stripe_sync_account(%L)$$, :'acct_c')), :'acct_c', '<acct_c>') AS try;
SELECT pg_temp.try($$SELECT pgext.stripe_sync_wait(NULL)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_sync_wait(424242)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_sync_wait(1, NULL)$$);
SELECT pg_temp.try($$SELECT pgext.stripe_sync_wait(1, '-1 second')$$);
SELECT pg_temp.try($$SELECT pgext.stripe_sync_wait(1, '6 minutes')$$);
-- nothing to do yet
SELECT * FROM pg_temp.claim(:'t');
SELECT pgext.stripe_next_due();
SELECT count(*) AS api_calls FROM pgext.api_calls;

-- 2. before the run: b subscribed through webhooks (active); a has a
-- subscription pgext has never heard of
SELECT pg_temp.deliver(pg_temp.event('evt_b1', 'customer.subscription.created', :'t'::timestamptz - interval '2 days',
                                     pg_temp.sub('sub_b1', 'cus_b', 'active')));
SELECT * FROM pgext.webhook_apply();
SELECT * FROM pg_temp.subs();
SELECT access FROM pgext.billing_access(:'acct_b', :'t');

-- 3. a reconciliation run over two pages: a's subscription is new, b's was
-- canceled at Stripe only (its webhook never came), x's customer is nobody's
SELECT pgext.stripe_reconcile_start(:'t'::timestamptz - interval '1 second') AS run1 \gset
SELECT pgext.stripe_reconcile_start(:'t'::timestamptz - interval '1 second') AS again;
SELECT pgext.stripe_next_due() = :'t'::timestamptz - interval '1 second' AS due_now;
SELECT * FROM pg_temp.claim(:'t', '{urgent,normal}');
SELECT * FROM pg_temp.claim(:'t');
SELECT ref - 'path' AS ref FROM sent;
-- in flight: not handed out again until the lease ends
SELECT count(*) AS again FROM pgext.stripe_claim(:epoch, 10, '{reconcile}', :'t');
SELECT pgext.stripe_next_due() = :'t'::timestamptz + interval '120 seconds' AS due_at_lease_end;
SELECT pg_temp.answer(1, 200, pg_temp.page(true, pg_temp.sub('sub_a1', 'cus_a', 'active'),
                                                 pg_temp.sub('sub_x1', 'cus_nobody', 'active')), :'t');
SELECT * FROM pg_temp.claim(:'t');
SELECT pg_temp.answer(1, 200, pg_temp.page(false,
         pg_temp.sub('sub_b1', 'cus_b', 'canceled', jsonb_build_object('ended_at', extract(epoch FROM :'t'::timestamptz - interval '1 day')::bigint))),
       :'t'::timestamptz + interval '1 second');
SELECT kind, status, pages, seen, applied, changed, changed_ids, superseded, unmatched, errors,
       finished_at = :'t'::timestamptz + interval '1 second' AS finished_at_last_page
  FROM pgext.stripe_sync_runs WHERE id = :run1;
SELECT * FROM pg_temp.subs();
SELECT subscription_id, customer_id, status, first_seen_at = :'t' AS seen_at_t, last_run = :run1 AS this_run, sightings
  FROM pgext.stripe_unmatched;
-- b: access ends and the server policy follows
SELECT access FROM pgext.billing_access(:'acct_b', :'t');
SELECT * FROM pgext.account_server_desired(:'acct_b', NULL, :'t');
SELECT * FROM pgext.account_server_desired(:'acct_b', NULL, :'t'::timestamptz + interval '2 days');
SELECT a.external_id, o.kind, o.subscription_id, o.event_id, o.detail
  FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id ORDER BY o.id;
SELECT kind, last_run, status, pages, seen, changed, changed_ids, unmatched, open_runs, unmatched_total
  FROM pgext.stripe_sync_status;
SELECT pgext.stripe_next_due();
-- the run finished: a new one may start
SELECT pgext.stripe_reconcile_start(:'t'::timestamptz + interval '2 seconds') IS NOT NULL AS started;

-- 4. the snapshot and webhook events: an event created before the snapshot
-- that arrives later is superseded; a newer one applies
SELECT pg_temp.deliver(pg_temp.event('evt_a_old', 'customer.subscription.updated', :'t'::timestamptz - interval '10 seconds',
                                     pg_temp.sub('sub_a1', 'cus_a', 'past_due')));
SELECT * FROM pgext.webhook_apply();
SELECT * FROM pg_temp.subs() WHERE id = 'sub_a1';
SELECT pg_temp.deliver(pg_temp.event('evt_a_new', 'customer.subscription.updated', :'t'::timestamptz + interval '60 seconds',
                                     pg_temp.sub('sub_a1', 'cus_a', 'active', '{"cancel_at_period_end": true}')));
SELECT * FROM pgext.webhook_apply();
SELECT * FROM pg_temp.subs() WHERE id = 'sub_a1';
-- the second run lists it again; an event newer than that run's snapshot was
-- applied meanwhile: the snapshot is superseded (nothing changes)
SELECT * FROM pg_temp.claim(:'t'::timestamptz + interval '2 seconds');
SELECT pg_temp.deliver(pg_temp.event('evt_a_newer', 'customer.subscription.updated', :'t'::timestamptz + interval '120 seconds',
                                     pg_temp.sub('sub_a1', 'cus_a', 'active')));
SELECT * FROM pgext.webhook_apply();
SELECT pg_temp.answer(1, 200, pg_temp.page(false, pg_temp.sub('sub_a1', 'cus_a', 'active', '{"cancel_at_period_end": true}'),
                                                  pg_temp.sub('sub_x1', 'cus_nobody', 'canceled')),
                      :'t'::timestamptz + interval '100 seconds');
SELECT status, seen, applied, changed, superseded, unmatched FROM pgext.stripe_sync_runs ORDER BY id DESC LIMIT 1;
SELECT * FROM pg_temp.subs() WHERE id = 'sub_a1';
SELECT subscription_id, status, sightings FROM pgext.stripe_unmatched;

-- 5. the unmatched customer is linked: the next run applies it and the
-- operators' row goes
SELECT pgext.account_set_stripe_customer(:'acct_c', 'cus_nobody');
SELECT pgext.stripe_reconcile_start(:'t'::timestamptz + interval '1 hour') AS run3 \gset
SELECT * FROM pg_temp.claim(:'t'::timestamptz + interval '1 hour');
SELECT pg_temp.answer(1, 200, pg_temp.page(false, pg_temp.sub('sub_x1', 'cus_nobody', 'active'),
                                                  pg_temp.sub('sub_live', 'cus_a', 'active', '{"livemode": true}'),
                                                  '{"object": "subscription"}'),
                      :'t'::timestamptz + interval '1 hour');
SELECT status, seen, applied, changed, changed_ids, unmatched, livemode_skipped, malformed
  FROM pgext.stripe_sync_runs WHERE id = :run3;
SELECT count(*) AS unmatched_rows FROM pgext.stripe_unmatched;
SELECT * FROM pg_temp.subs() WHERE id IN ('sub_x1', 'sub_live');

-- 6. missed events: the first run lists from 3 days back; only ids not yet
-- recorded are queued (fetched, not signed), a live event is skipped
\set t2 '2026-06-02 12:00:00+00'
SELECT pgext.stripe_events_start(:'t2') AS ev1 \gset
SELECT pgext.stripe_events_start(:'t2') AS again;
SELECT created_gte = :'t2'::timestamptz - interval '3 days' AS from_3_days_back FROM pgext.stripe_sync_runs WHERE id = :ev1;
SELECT * FROM pg_temp.claim(:'t2');
SELECT pg_temp.answer(1, 200, pg_temp.page(true,
         pg_temp.event('evt_a_del', 'customer.subscription.deleted', :'t2'::timestamptz - interval '100 seconds',
                       pg_temp.sub('sub_a1', 'cus_a', 'canceled', '{"customer_email": "who@example.com"}')),
         pg_temp.event('evt_b1', 'customer.subscription.created', :'t'::timestamptz - interval '2 days',
                       pg_temp.sub('sub_b1', 'cus_b', 'active'))), :'t2');
SELECT * FROM pg_temp.claim(:'t2');
SELECT pg_temp.answer(1, 200, pg_temp.page(false,
         pg_temp.event('evt_live', 'customer.subscription.updated', :'t2'::timestamptz - interval '50 seconds',
                       pg_temp.sub('sub_a1', 'cus_a', 'active'), true),
         '{"id": "evt_bad"}'::jsonb), :'t2'::timestamptz + interval '1 second');
SELECT status, pages, seen, applied, known, livemode_skipped, malformed,
       newest_created = :'t2'::timestamptz - interval '50 seconds' AS newest
  FROM pgext.stripe_sync_runs WHERE id = :ev1;
SELECT event_id, type, status, fetched_run = :ev1 AS fetched, received_at = :'t2' AS received_at_answer,
       payload #> '{data,object}' ? 'customer_email' AS kept_email
  FROM pgext.webhook_events ORDER BY created, event_id;
SELECT * FROM pgext.webhook_apply();
SELECT * FROM pg_temp.subs() WHERE id = 'sub_a1';
SELECT created_cursor = :'t2'::timestamptz - interval '50 seconds' AS cursor_newest,
       listed_through = :'t2' AS listed_through_start, behind_alerted_at
  FROM pgext.stripe_events_cursor;
-- the next run starts at the cursor minus the overlap (1 hour)
SELECT pgext.stripe_events_start(:'t2'::timestamptz + interval '1 hour') AS ev2 \gset
SELECT * FROM pg_temp.claim(:'t2'::timestamptz + interval '1 hour');
SELECT (regexp_match(path, 'created%5Bgte%5D=([0-9]+)'))[1]::bigint
       = extract(epoch FROM :'t2'::timestamptz - interval '50 seconds' - interval '1 hour')::bigint AS from_cursor_minus_overlap
  FROM sent;
SELECT pg_temp.answer(1, 200, pg_temp.page(false, VARIADIC '{}'::jsonb[]), :'t2'::timestamptz + interval '1 hour');
-- four days without a successful run: the alert, once a day
SELECT pgext.stripe_events_start(:'t2'::timestamptz + interval '4 days') IS NOT NULL AS started;
SELECT source, code, detail FROM pgext.alerts ORDER BY id;
SELECT pgext.stripe_events_start(:'t2'::timestamptz + interval '4 days 1 hour') AS open_run_still;
SELECT count(*) AS alerts FROM pgext.alerts WHERE code = 'stripe_events_behind';

-- 7. retries: 429 (Retry-After honoured), 5xx, no response, malformed; then
-- the run fails after pgext.stripe_max_attempts tries
\set t3 '2026-06-06 13:00:00+00'
SELECT * FROM pg_temp.claim(:'t3');
SELECT pg_temp.answer(1, 429, '{"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}}',
                      :'t3', '{"retry_after": 30, "correlation_id": "req_429"}');
SELECT page_attempts, page_due_at >= :'t3'::timestamptz + interval '30 seconds' AS honours_retry_after, last_error
  FROM pgext.stripe_sync_runs WHERE finished_at IS NULL;
SELECT count(*) AS before_due FROM pgext.stripe_claim(:epoch, 10, '{reconcile}', :'t3'::timestamptz + interval '10 seconds');
SELECT * FROM pg_temp.claim(:'t3'::timestamptz + interval '10 minutes');
SELECT pg_temp.answer(1, 503, 'Service Unavailable', :'t3'::timestamptz + interval '10 minutes');
SELECT * FROM pg_temp.claim(:'t3'::timestamptz + interval '20 minutes');
SELECT pg_temp.answer(1, NULL, NULL, :'t3'::timestamptz + interval '20 minutes',
                      '{"error": {"code": "timeout", "message": "Operation timed out"}}');
SET pgext.stripe_max_attempts = 4;
SELECT * FROM pg_temp.claim(:'t3'::timestamptz + interval '30 minutes');
SELECT pg_temp.answer(1, 200, '{"object": "list", "data": [], "has_more": true}', :'t3'::timestamptz + interval '30 minutes');
SELECT status, error, page_attempts FROM pgext.stripe_sync_runs ORDER BY id DESC LIMIT 1;
SELECT code, detail - 'run' AS detail FROM pgext.alerts ORDER BY id DESC LIMIT 1;
RESET pgext.stripe_max_attempts;

-- 8. a fatal answer (401: a bad key) fails the run at once; Stripe's
-- message is never stored
SELECT pgext.stripe_reconcile_start(:'t3'::timestamptz + interval '1 hour') IS NOT NULL AS started;
SELECT * FROM pg_temp.claim(:'t3'::timestamptz + interval '1 hour');
-- bad inputs (issue 13): a 2xx answer whose body is a JSON object but no list
-- (or empty) is malformed, not a NOT NULL violation (tried, then rolled back)
BEGIN;
SELECT pg_temp.answer(1, 200, '{}', :'t3'::timestamptz + interval '1 hour') AS empty_object;
SELECT last_error FROM pgext.stripe_sync_runs ORDER BY id DESC LIMIT 1;
ROLLBACK;
BEGIN;
SELECT pg_temp.answer(1, 200, '', :'t3'::timestamptz + interval '1 hour') AS empty_body;
ROLLBACK;
SELECT pg_temp.answer(1, 401, '{"error": {"message": "Invalid API Key provided: sk_test_****wxyz", "type": "invalid_request_error"}}',
                      :'t3'::timestamptz + interval '1 hour');
SELECT kind, status, error FROM pgext.stripe_sync_runs ORDER BY id DESC LIMIT 1;
SELECT count(*) AS key_text_anywhere FROM pgext.stripe_sync_runs r, pgext.api_calls c, pgext.alerts l
 WHERE r::text LIKE '%sk_test%' OR c::text LIKE '%sk_test%' OR l::text LIKE '%sk_test%';

-- 9. epochs: a new worker epoch takes a page in flight back at once; the
-- old epoch may claim nothing, and its answer is stale
SELECT pgext.stripe_reconcile_start(:'t3'::timestamptz + interval '2 hours') IS NOT NULL AS started;
SELECT * FROM pg_temp.claim(:'t3'::timestamptz + interval '2 hours');
CREATE TEMP TABLE old_sent AS SELECT * FROM sent;
SELECT pgext.worker_begin('stripe test 2', :'t3'::timestamptz + interval '2 hours') AS epoch2 \gset
SELECT pg_temp.try(format($$SELECT * FROM pgext.stripe_claim(%s, 10, '{reconcile}', %L)$$, :epoch, :'t3'::timestamptz + interval '2 hours'));
SELECT pgext.stripe_next_due() = :'t3'::timestamptz + interval '2 hours' AS due_at_once;
SELECT set_config('test.epoch', :'epoch2', false) IS NOT NULL AS set;
SELECT * FROM pg_temp.claim(:'t3'::timestamptz + interval '2 hours');
SELECT pgext.stripe_response(o.ref, 200, pg_temp.page(false, VARIADIC '{}'::jsonb[]), '{}', :'t3'::timestamptz + interval '2 hours') AS old_answer
  FROM old_sent o;
SELECT pg_temp.answer(1, 200, pg_temp.page(false, VARIADIC '{}'::jsonb[]), :'t3'::timestamptz + interval '2 hours');

-- 10. on demand: a's subscriptions right after checkout; waiting for them
SELECT pgext.stripe_sync_account(:'acct_a') AS req \gset
SELECT pgext.stripe_sync_account(:'acct_a') = :req AS same_request_until_sent;
SELECT pgext.stripe_sync_wait(:req, '0.1 seconds');
BEGIN;
SELECT pgext.stripe_sync_account(:'acct_b') AS req_b \gset
SELECT pg_temp.try(format('SELECT pgext.stripe_sync_wait(%s)', :req_b));
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.try(format('SELECT pgext.stripe_sync_wait(%s)', :req));
ROLLBACK;
SELECT * FROM pg_temp.claim(now(), '{reconcile}');
SELECT * FROM pg_temp.claim(now());
-- once sent, a new call is a new request (the answer may predate the checkout)
SELECT pgext.stripe_sync_account(:'acct_a') AS req_a2 \gset
SELECT :req_a2 <> :req AS new_request_after_sent;
SELECT pg_temp.answer(1, 200, pg_temp.page(false, pg_temp.sub('sub_a2', 'cus_a', 'active')), now());
SELECT pgext.stripe_sync_wait(:req);
SELECT pgext.stripe_sync_wait(:req, '0 seconds');
SELECT * FROM pg_temp.subs() WHERE id = 'sub_a2';
SELECT access, subscription_id FROM pgext.billing_access(:'acct_a');
SELECT status, pages, seen, changed, changed_ids FROM pgext.stripe_sync_requests WHERE id = :req;
-- a request that fails, and one the worker never gets to
SELECT pgext.stripe_sync_account(:'acct_b') AS req_b \gset
SELECT * FROM pg_temp.claim(now());
SELECT pg_temp.answer(1, 200, pg_temp.page(false, pg_temp.sub('sub_a2', 'cus_a', 'active')), now());
SELECT pg_temp.answer(2, 404, '{"error": {"type": "invalid_request_error", "code": "resource_missing"}}', now());
SELECT pgext.stripe_sync_wait(:req_a2), pgext.stripe_sync_wait(:req_b);
SELECT status, seen, applied, changed FROM pgext.stripe_sync_requests WHERE id = :req_a2;
SELECT pgext.stripe_sync_account(:'acct_b') AS req_b2 \gset
SELECT pgext.stripe_sync_wait(:req_b2, '0.2 seconds');
SELECT count(*) AS claimed FROM pgext.stripe_claim(:epoch2, 10, '{urgent}', now() + interval '61 minutes');
SELECT pgext.stripe_sync_wait(:req_b2);

-- 11. the API call log: one row per answer, api 'stripe'
SELECT api, method, regexp_replace(path, 'types%5B%5D=.*&created', '<types>&created') AS path,
       http_status, error_code, attempt, request_id
  FROM pgext.api_calls ORDER BY id;
SELECT kind, last_run IS NOT NULL AS has_run, status, open_runs FROM pgext.stripe_sync_status ORDER BY kind;
