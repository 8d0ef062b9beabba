------------------------------------------------------------------------------
-- Stripe sync: the HTTP requests the background worker sends to Stripe and
-- what their answers mean (src/worker/ moves the bytes; every rule is here).
-- Three kinds of run, each a chain of list pages (one page in flight at a
-- time, starting_after = the last id of the previous page):
--   reconcile  GET /v1/subscriptions?status=all: every subscription applied
--              as a snapshot taken at the answer's arrival
--   events     GET /v1/events for the types pgext applies, from the cursor
--              minus pgext.stripe_events_overlap: ids not yet recorded go
--              into the webhook queue (pgext.webhook_events, pending)
--   account    one account's subscriptions, on demand (stripe_sync_account)
------------------------------------------------------------------------------

-- One row per run.  kind 'account' runs are the on-demand requests
-- (account_id, customer_id; status is what pgext.stripe_sync_wait reports).
-- Page state: starting_after (NULL: the first page), page_claim (bumped per
-- claim; an answer to an older claim is 'stale'), page_epoch (the worker
-- epoch that holds it: a newer epoch takes it back at once),
-- page_in_flight_until, page_attempts (tries of the current page),
-- page_due_at.  Counts: seen (listed objects), applied (subscriptions whose
-- snapshot was applied / events queued), changed + changed_ids (the
-- subscriptions whose record changed; ids kept up to 1000), superseded (a
-- newer event had been applied), unmatched (no account), known (events
-- already recorded), livemode_skipped, malformed (objects skipped), errors.
-- created_gte / newest_created: an events run's lower bound and the newest
-- event it listed.  At most one reconcile and one events run is open.
CREATE TABLE pgext.stripe_sync_runs (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind                 text NOT NULL,
  account_id           uuid REFERENCES pgext.accounts (id),
  customer_id          text,
  started_at           timestamptz NOT NULL,
  finished_at          timestamptz,
  status               text NOT NULL DEFAULT 'running',
  error                text,
  pages                integer NOT NULL DEFAULT 0,
  starting_after       text,
  created_gte          timestamptz,
  page_claim           bigint NOT NULL DEFAULT 0,
  page_epoch           bigint,
  page_in_flight_until timestamptz,
  page_attempts        integer NOT NULL DEFAULT 0,
  page_due_at          timestamptz NOT NULL,
  progress_at          timestamptz NOT NULL,
  last_error           text,
  seen                 integer NOT NULL DEFAULT 0,
  applied              integer NOT NULL DEFAULT 0,
  changed              integer NOT NULL DEFAULT 0,
  changed_ids          text[] NOT NULL DEFAULT '{}',
  superseded           integer NOT NULL DEFAULT 0,
  unmatched            integer NOT NULL DEFAULT 0,
  known                integer NOT NULL DEFAULT 0,
  livemode_skipped     integer NOT NULL DEFAULT 0,
  malformed            integer NOT NULL DEFAULT 0,
  errors               integer NOT NULL DEFAULT 0,
  newest_created       timestamptz,
  CONSTRAINT stripe_sync_runs_kind_valid CHECK (kind IN ('reconcile', 'events', 'account')),
  CONSTRAINT stripe_sync_runs_status_valid CHECK (status IN ('running', 'done', 'failed', 'abandoned')),
  CONSTRAINT stripe_sync_runs_finished_valid CHECK ((finished_at IS NULL) = (status = 'running')),
  CONSTRAINT stripe_sync_runs_account_valid
    CHECK ((kind = 'account') = (account_id IS NOT NULL AND customer_id IS NOT NULL))
);
CREATE UNIQUE INDEX stripe_sync_runs_open ON pgext.stripe_sync_runs (kind)
  WHERE finished_at IS NULL AND kind <> 'account';
CREATE INDEX stripe_sync_runs_due ON pgext.stripe_sync_runs (page_due_at)
  WHERE finished_at IS NULL;
CREATE INDEX stripe_sync_runs_account ON pgext.stripe_sync_runs (account_id) WHERE account_id IS NOT NULL;

-- Subscriptions Stripe listed whose customer matches no account (by
-- pgext.accounts.stripe_customer_id, an earlier event of the subscription or
-- metadata.client_reference_id = external_id; never by email), for
-- operators: link the customer with pgext.account_set_stripe_customer and
-- the next sync applies it (the row is then removed).
CREATE TABLE pgext.stripe_unmatched (
  subscription_id text PRIMARY KEY,
  customer_id     text,
  status          text,
  first_seen_at   timestamptz NOT NULL,
  last_seen_at    timestamptz NOT NULL,
  last_run        bigint,
  sightings       integer NOT NULL DEFAULT 1
);

-- The missed-event cursor (one row): created_cursor is the newest event
-- `created` listed (Stripe's clock); listed_through the start of the last
-- events run that listed every page (our clock).  The next run lists from
-- created_cursor - pgext.stripe_events_overlap.  behind_alerted_at: when
-- the stripe_events_behind alert was last raised (again after a day).
CREATE TABLE pgext.stripe_events_cursor (
  one               boolean PRIMARY KEY DEFAULT true,
  created_cursor    timestamptz,
  listed_through    timestamptz,
  updated_at        timestamptz NOT NULL,
  behind_alerted_at timestamptz,
  CONSTRAINT stripe_events_cursor_one CHECK (one)
);

-- Internal: the webhook effects of effects.c (what webhook_apply runs for
-- one event), callable from SQL.
CREATE FUNCTION pgext.stripe_event_effects(event_id text, type text, object_id text, created timestamptz,
                                           payload jsonb)
RETURNS text AS 'MODULE_PATHNAME', 'stripe_event_effects'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- Internal: the stored form of a Stripe event (webhook_ingest's whitelist,
-- without data.object's personal fields when its customer belongs to a
-- forgotten account: VOLATILE, it depends on pgext.account_forgets).
CREATE FUNCTION pgext.stripe_event_minimal(event jsonb) RETURNS jsonb
AS 'MODULE_PATHNAME', 'stripe_event_minimal'
LANGUAGE C VOLATILE STRICT SET search_path = pg_catalog, pgext, pg_temp;

-- The Stripe event types pgext applies (effects.c), the types[] of the
-- missed-event list.
CREATE FUNCTION pgext.stripe_event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT ARRAY['checkout.session.completed', 'checkout.session.async_payment_succeeded',
               'customer.subscription.created', 'customer.subscription.updated',
               'customer.subscription.deleted', 'customer.subscription.paused',
               'customer.subscription.resumed', 'invoice.paid', 'invoice.payment_succeeded',
               'invoice.payment_failed']::pg_catalog.text[]
$$;

-- Internal: the path (below pgext.stripe_api_url) of a run's next page.
CREATE FUNCTION pgext.stripe_run_path(r pgext.stripe_sync_runs) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE r.kind
           WHEN 'reconcile' THEN '/v1/subscriptions?status=all&limit=100'
           WHEN 'account' THEN '/v1/subscriptions?customer=' || r.customer_id || '&status=all&limit=100'
           ELSE '/v1/events?'
                || (SELECT pg_catalog.string_agg('types%5B%5D=' || t, '&' ORDER BY o)
                      FROM pg_catalog.unnest(pgext.stripe_event_types()) WITH ORDINALITY AS u(t, o))
                || '&created%5Bgte%5D=' || pg_catalog.floor(pg_catalog.date_part('epoch', r.created_gte))::bigint
                || '&limit=100'
         END
         || COALESCE('&starting_after=' || r.starting_after, '')
$$;

-- Internal: a Stripe answer's class: ok (2xx), retry (no response,
-- malformed, 408, 409, 429, 5xx) or fatal (any other status: the run fails).
CREATE FUNCTION pgext.stripe_response_class(response jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE
           WHEN $1 -> 'error' ->> 'code' = 'malformed' OR NOT $1 ? 'http_status' THEN 'retry'
           WHEN ($1 ->> 'http_status')::integer BETWEEN 200 AND 299 THEN 'ok'
           WHEN ($1 ->> 'http_status')::integer IN (408, 409, 429) OR ($1 ->> 'http_status')::integer >= 500 THEN 'retry'
           ELSE 'fatal'
         END
$$;

-- Internal: a run ends (done or failed); a failure raises the alert
-- stripe_sync_failed; a finished events run moves the cursor.
CREATE FUNCTION pgext.stripe_run_finish(run bigint, run_status text, reason text, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r pgext.stripe_sync_runs;
BEGIN
  UPDATE pgext.stripe_sync_runs x
     SET finished_at = $4, status = $2, error = $3, page_in_flight_until = NULL, progress_at = $4
   WHERE x.id = $1
  RETURNING * INTO r;
  IF $2 = 'failed' THEN
    PERFORM pgext.alert_raise('stripe', 'stripe_sync_failed',
                              pg_catalog.jsonb_build_object('run', r.id, 'kind', r.kind, 'reason', $3,
                                                            'account', r.account_id), $4);
  ELSIF r.kind = 'events' THEN
    INSERT INTO pgext.stripe_events_cursor AS c (one, created_cursor, listed_through, updated_at)
    VALUES (true, r.newest_created, r.started_at, $4)
    ON CONFLICT (one) DO UPDATE
      SET created_cursor = GREATEST(c.created_cursor, EXCLUDED.created_cursor),
          listed_through = GREATEST(c.listed_through, EXCLUDED.listed_through),
          updated_at = EXCLUDED.updated_at, behind_alerted_at = NULL;
  END IF;
END
$$;

-- Internal: apply one listed subscription as a snapshot taken at `at`:
-- through the webhook effects (pgext.stripe_event_effects) as a
-- customer.subscription.updated event whose created is just before the
-- second of `at` and whose id is 'snapshot:<run>'.
-- pgext.stripe_object_versions orders it with the events of that
-- subscription: an event created in an earlier second that arrives later is
-- superseded, a newer one applies.  Stripe's created has whole seconds, so
-- an event of the fetch's own second may be older or newer than the
-- snapshot: it applies (were it older, the snapshot already holds its
-- change; dropping a newer one would lose a change until the next run).  Returns changed, unchanged,
-- superseded, unmatched (recorded in pgext.stripe_unmatched),
-- livemode_mismatch, malformed or error (the run's last_error says why);
-- counts it in the run; a change is listed in the run and announced
-- ('subscription_synced' outbox row).
CREATE FUNCTION pgext.stripe_subscription_sync(run bigint, subscription jsonb, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid pg_catalog.text := $2 ->> 'id';
  snap pg_catalog.text := 'snapshot:' || $1;
  before pg_catalog.jsonb;
  after pgext.stripe_subscriptions;
  result pg_catalog.text;
  msg pg_catalog.text;
BEGIN
  IF pg_catalog.jsonb_typeof($2) IS DISTINCT FROM 'object'
     OR pg_catalog.jsonb_typeof($2 -> 'id') IS DISTINCT FROM 'string'
     OR sid !~ '^[A-Za-z0-9_]{1,255}$'
     OR pg_catalog.jsonb_typeof($2 -> 'status') IS DISTINCT FROM 'string' THEN
    UPDATE pgext.stripe_sync_runs x SET malformed = x.malformed + 1 WHERE x.id = $1;
    RETURN 'malformed';
  END IF;
  IF pg_catalog.jsonb_typeof($2 -> 'livemode') = 'boolean'
     AND ($2 ->> 'livemode')::boolean IS DISTINCT FROM pg_catalog.current_setting('pgext.stripe_livemode')::boolean THEN
    UPDATE pgext.stripe_sync_runs x SET livemode_skipped = x.livemode_skipped + 1 WHERE x.id = $1;
    RETURN 'livemode_mismatch';
  END IF;
  SELECT pg_catalog.to_jsonb(s) - 'updated_at' INTO before FROM pgext.stripe_subscriptions s WHERE s.id = sid;
  BEGIN
    result := pgext.stripe_event_effects(snap, 'customer.subscription.updated', sid,
                                         pg_catalog.date_trunc('second', $3) - interval '1 microsecond',
                                         pg_catalog.jsonb_build_object('data', pg_catalog.jsonb_build_object('object', $2)));
  EXCEPTION
    WHEN no_data_found THEN
      result := 'unmatched';
    WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
      UPDATE pgext.stripe_sync_runs x
         SET errors = x.errors + 1, last_error = pg_catalog.left(pg_catalog.format('%s: %s', sid, msg), 1000)
       WHERE x.id = $1;
      RETURN 'error';
  END;
  IF result = 'unmatched' THEN
    INSERT INTO pgext.stripe_unmatched AS u (subscription_id, customer_id, status, first_seen_at, last_seen_at, last_run)
    VALUES (sid, pg_catalog.left($2 ->> 'customer', 255), pg_catalog.left($2 ->> 'status', 100), $3, $3, $1)
    ON CONFLICT (subscription_id) DO UPDATE
      SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
          last_seen_at = GREATEST(u.last_seen_at, EXCLUDED.last_seen_at), last_run = EXCLUDED.last_run,
          sightings = u.sightings + 1;
    UPDATE pgext.stripe_sync_runs x SET unmatched = x.unmatched + 1 WHERE x.id = $1;
    RETURN 'unmatched';
  END IF;
  IF result = 'superseded' THEN
    UPDATE pgext.stripe_sync_runs x SET superseded = x.superseded + 1 WHERE x.id = $1;
    RETURN 'superseded';
  END IF;
  DELETE FROM pgext.stripe_unmatched u WHERE u.subscription_id = sid;
  SELECT * INTO after FROM pgext.stripe_subscriptions s WHERE s.id = sid;
  IF before IS NOT DISTINCT FROM pg_catalog.to_jsonb(after) - 'updated_at' THEN
    UPDATE pgext.stripe_sync_runs x SET applied = x.applied + 1 WHERE x.id = $1;
    RETURN 'unchanged';
  END IF;
  UPDATE pgext.stripe_sync_runs x
     SET applied = x.applied + 1, changed = x.changed + 1,
         changed_ids = CASE WHEN pg_catalog.cardinality(x.changed_ids) < 1000 THEN x.changed_ids || sid
                            ELSE x.changed_ids END
   WHERE x.id = $1;
  INSERT INTO pgext.outbox (account_id, kind, subscription_id, event_id, detail)
  VALUES (after.account_id, 'subscription_synced', sid, snap,
          pg_catalog.format('status %s -> %s', COALESCE(before ->> 'status', 'unknown'),
                            COALESCE(after.status, 'unknown')));
  RETURN 'changed';
END
$$;

-- Internal: record one listed event in the webhook queue like an accepted
-- delivery (status pending, received_at = `at`, fetched_run = the run), so
-- webhook_apply applies it in event order.  Returns queued, known (its id
-- is already recorded), livemode_mismatch or malformed; counts it in the run.
CREATE FUNCTION pgext.stripe_event_fetched(run bigint, event jsonb, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  ev_created pg_catalog.timestamptz;
  n integer;
BEGIN
  IF pg_catalog.jsonb_typeof($2) IS DISTINCT FROM 'object'
     OR pg_catalog.jsonb_typeof($2 -> 'id') IS DISTINCT FROM 'string'
     OR pg_catalog.length($2 ->> 'id') NOT BETWEEN 1 AND 255
     OR pg_catalog.jsonb_typeof($2 -> 'type') IS DISTINCT FROM 'string'
     OR pg_catalog.length($2 ->> 'type') NOT BETWEEN 1 AND 255
     OR pg_catalog.jsonb_typeof($2 -> 'created') IS DISTINCT FROM 'number'
     OR ($2 ->> 'created') !~ '^[0-9]{1,11}$' OR ($2 ->> 'created')::bigint NOT BETWEEN 1 AND 253402300799
     OR pg_catalog.jsonb_typeof($2 -> 'livemode') IS DISTINCT FROM 'boolean'
     OR pg_catalog.jsonb_typeof($2 #> '{data,object}') IS DISTINCT FROM 'object' THEN
    UPDATE pgext.stripe_sync_runs x SET malformed = x.malformed + 1 WHERE x.id = $1;
    RETURN 'malformed';
  END IF;
  ev_created := pg_catalog.to_timestamp(($2 ->> 'created')::double precision);
  UPDATE pgext.stripe_sync_runs x SET newest_created = GREATEST(x.newest_created, ev_created) WHERE x.id = $1;
  IF ($2 ->> 'livemode')::boolean IS DISTINCT FROM pg_catalog.current_setting('pgext.stripe_livemode')::boolean THEN
    UPDATE pgext.stripe_sync_runs x SET livemode_skipped = x.livemode_skipped + 1 WHERE x.id = $1;
    RETURN 'livemode_mismatch';
  END IF;
  INSERT INTO pgext.webhook_events (source, event_id, type, object_id, created, livemode, payload,
                                    received_at, status, fetched_run)
  VALUES ('stripe', $2 ->> 'id', $2 ->> 'type',
          CASE WHEN pg_catalog.jsonb_typeof($2 #> '{data,object,id}') = 'string'
                    AND pg_catalog.length($2 #>> '{data,object,id}') BETWEEN 1 AND 255
               THEN $2 #>> '{data,object,id}' END,
          ev_created, ($2 ->> 'livemode')::boolean, pgext.stripe_event_minimal($2), $3, 'pending', $1)
  ON CONFLICT (source, event_id) DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 1 THEN
    UPDATE pgext.stripe_sync_runs x SET applied = x.applied + 1 WHERE x.id = $1;
    RETURN 'queued';
  END IF;
  UPDATE pgext.stripe_sync_runs x SET known = x.known + 1 WHERE x.id = $1;
  RETURN 'known';
END
$$;

-- Internal: one answer to a run's page.  ok: each listed object applied
-- (subscriptions) or queued (events), then the next page (has_more) or the
-- run is done; retry: the page is tried again after a backoff (1 s doubling
-- to 5 min, jittered, at least Retry-After), and the run fails after
-- pgext.stripe_max_attempts tries; fatal: the run fails with the status and
-- Stripe's error type/code (never its message).  Returns page, finished,
-- retry, failed or stale.
CREATE FUNCTION pgext.stripe_page(ref jsonb, response jsonb, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r pgext.stripe_sync_runs;
  cls pg_catalog.text := pgext.stripe_response_class($2);
  why pg_catalog.text;
  obj pg_catalog.jsonb;
  last_id pg_catalog.text;
  queued integer := 0;
  res pg_catalog.text;
BEGIN
  SELECT * INTO r FROM pgext.stripe_sync_runs x WHERE x.id = ($1 ->> 'run')::bigint FOR UPDATE;
  IF NOT FOUND OR r.finished_at IS NOT NULL OR r.page_in_flight_until IS NULL
     OR r.page_claim IS DISTINCT FROM ($1 ->> 'claim')::bigint THEN
    RETURN 'stale';
  END IF;
  why := pg_catalog.format('page %s: %s%s', r.pages + 1,
                           COALESCE($2 ->> 'http_status', 'no response'),
                           COALESCE(' ' || COALESCE($2 -> 'error' ->> 'code', $2 -> 'error' ->> 'type'), ''));
  IF cls = 'fatal' THEN
    PERFORM pgext.stripe_run_finish(r.id, 'failed', why, $3);
    RETURN 'failed';
  END IF;
  IF cls = 'retry' THEN
    IF r.page_attempts + 1 >= pg_catalog.current_setting('pgext.stripe_max_attempts')::integer THEN
      PERFORM pgext.stripe_run_finish(r.id, 'failed',
                                      pg_catalog.format('%s (after %s tries)', why, r.page_attempts + 1), $3);
      RETURN 'failed';
    END IF;
    UPDATE pgext.stripe_sync_runs x
       SET page_in_flight_until = NULL, page_attempts = x.page_attempts + 1, last_error = why,
           page_due_at = $3 + GREATEST(pgext.server_backoff(x.page_attempts, '2 seconds', '5 minutes'),
                                       pg_catalog.make_interval(secs => COALESCE(($2 ->> 'retry_after')::double precision, 0)))
     WHERE x.id = r.id;
    RETURN 'retry';
  END IF;

  FOR obj IN SELECT e FROM pg_catalog.jsonb_array_elements($2 -> 'data') e LOOP
    IF r.kind = 'events' THEN
      res := pgext.stripe_event_fetched(r.id, obj, $3);
      IF res = 'queued' THEN
        queued := queued + 1;
      END IF;
    ELSE
      PERFORM pgext.stripe_subscription_sync(r.id, obj, $3);
    END IF;
    last_id := obj ->> 'id';
  END LOOP;
  IF queued > 0 THEN
    PERFORM pgext.worker_wake();   -- webhook_apply applies them at once
  END IF;
  UPDATE pgext.stripe_sync_runs x
     SET pages = x.pages + 1, seen = x.seen + pg_catalog.jsonb_array_length($2 -> 'data'),
         page_in_flight_until = NULL, page_attempts = 0, page_due_at = $3, progress_at = $3,
         starting_after = CASE WHEN ($2 ->> 'has_more')::boolean THEN last_id ELSE x.starting_after END
   WHERE x.id = r.id;
  IF ($2 ->> 'has_more')::boolean THEN
    RETURN 'page';
  END IF;
  PERFORM pgext.stripe_run_finish(r.id, 'done', NULL, $3);
  RETURN 'finished';
END
$$;

-- The worker takes up to "limit" HTTP requests to send now (GET only), of
-- the given classes: 'urgent' = on-demand account syncs, 'reconcile' =
-- subscription-list and event-list pages ('normal' has none), urgent
-- first, each oldest due first; one page per run at a time.  Each is the
-- worker's for pgext.stripe_claim_lease (a newer epoch takes it back at
-- once); ref (opaque to the worker) goes back with the answer to
-- pgext.stripe_response.  Account requests not finished within an hour of
-- the request fail ('expired').  A stale epoch: 55000, nothing claimed.
CREATE FUNCTION pgext.stripe_claim(epoch bigint, "limit" integer, classes text[],
                                   at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (ref jsonb, class text, method text, path text, body text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  cur bigint;
  until pg_catalog.timestamptz;
  budget integer := $2;
  r pgext.stripe_sync_runs;
  rid bigint;
BEGIN
  IF $1 IS NULL OR $4 IS NULL THEN
    RAISE EXCEPTION 'epoch and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL OR $2 < 1 OR $2 > 1000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF $3 IS NULL OR pg_catalog.array_ndims($3) <> 1 OR pg_catalog.cardinality($3) = 0
     OR pg_catalog.array_position($3, NULL) IS NOT NULL
     OR NOT ($3 <@ ARRAY['urgent', 'reconcile', 'normal']::pg_catalog.text[]) THEN
    RAISE EXCEPTION 'classes must name some of urgent, reconcile, normal, not %', COALESCE(pg_catalog.left($3::pg_catalog.text, 64), 'NULL')
      USING ERRCODE = '22023', HINT = 'Pass e.g. ARRAY[''urgent'', ''reconcile''].';
  END IF;
  SELECT l.epoch INTO cur FROM pgext.worker_lease l FOR SHARE;
  IF cur IS DISTINCT FROM $1 THEN
    RAISE EXCEPTION 'worker epoch % is not the current one (%)', $1, COALESCE(cur::pg_catalog.text, 'none')
      USING ERRCODE = '55000',
            HINT = 'Another worker_begin took the lease: call pgext.worker_begin(holder) and use its epoch.';
  END IF;
  until := $4 + pg_catalog.current_setting('pgext.stripe_claim_lease')::interval;

  FOR rid IN
    SELECT x.id FROM pgext.stripe_sync_runs x
     WHERE x.kind = 'account' AND x.finished_at IS NULL AND x.started_at <= $4 - interval '1 hour'
       AND (x.page_in_flight_until IS NULL OR x.page_in_flight_until <= $4 OR x.page_epoch < $1)
     ORDER BY x.id FOR UPDATE SKIP LOCKED
  LOOP
    PERFORM pgext.stripe_run_finish(rid, 'failed', 'expired: not synced within an hour of the request', $4);
  END LOOP;

  FOR r IN
    SELECT * FROM pgext.stripe_sync_runs x
     WHERE x.finished_at IS NULL AND x.page_due_at <= $4
       AND (x.page_in_flight_until IS NULL OR x.page_in_flight_until <= $4 OR x.page_epoch < $1)
       AND ((x.kind = 'account' AND 'urgent' = ANY ($3)) OR (x.kind <> 'account' AND 'reconcile' = ANY ($3)))
     ORDER BY x.kind <> 'account', x.page_due_at, x.id
     LIMIT budget FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE pgext.stripe_sync_runs x
       SET page_claim = x.page_claim + 1, page_epoch = $1, page_in_flight_until = until,
           page_attempts = x.page_attempts + CASE WHEN x.page_in_flight_until IS NOT NULL THEN 1 ELSE 0 END
     WHERE x.id = r.id
    RETURNING * INTO r;
    class := CASE WHEN r.kind = 'account' THEN 'urgent' ELSE 'reconcile' END;
    method := 'GET'; body := NULL;
    path := pgext.stripe_run_path(r);
    ref := pg_catalog.jsonb_build_object('kind', 'stripe_page', 'run', r.id, 'run_kind', r.kind,
                                         'claim', r.page_claim, 'attempt', r.page_attempts + 1,
                                         'method', method, 'path', path);
    RETURN NEXT;
  END LOOP;
END
$$;

-- The worker hands back one answer to a request of pgext.stripe_claim
-- (http_status NULL: none arrived, meta.error.code says why: network,
-- timeout, too_large, tls).  The body is parsed as JSON (a 2xx that is not
-- a Stripe list {"object": "list", "data": [...], "has_more": bool}, or an
-- error that is not an object: 'malformed'); one pgext.api_calls row is
-- written (api 'stripe', the Request-Id from meta.correlation_id, error_code
-- Stripe's error.code or error.type; never a body, a message or the key);
-- then the page is applied (pgext.stripe_page): page, finished, retry,
-- failed or stale.
CREATE FUNCTION pgext.stripe_response(ref jsonb, http_status integer, body text, meta jsonb,
                                      at timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  m pg_catalog.jsonb := COALESCE($4, '{}');
  parsed pg_catalog.jsonb;
  resp pg_catalog.jsonb;
  code pg_catalog.text;
BEGIN
  IF pg_catalog.jsonb_typeof($1) IS DISTINCT FROM 'object'
     OR $1 ->> 'kind' IS DISTINCT FROM 'stripe_page'
     OR pg_catalog.jsonb_typeof($1 -> 'run') IS DISTINCT FROM 'number'
     OR pg_catalog.jsonb_typeof($1 -> 'claim') IS DISTINCT FROM 'number'
     OR pg_catalog.jsonb_typeof($1 -> 'method') IS DISTINCT FROM 'string'
     OR pg_catalog.jsonb_typeof($1 -> 'path') IS DISTINCT FROM 'string' THEN
    RAISE EXCEPTION 'ref is not a request of pgext.stripe_claim' USING ERRCODE = '22023',
      HINT = 'Hand back the ref stripe_claim returned with the request, unchanged.';
  END IF;
  IF pg_catalog.jsonb_typeof(m) <> 'object' THEN
    RAISE EXCEPTION 'meta must be a JSON object' USING ERRCODE = '22023',
      HINT = 'Pass {"duration_ms": n, "correlation_id": s, "retry_after": n, "error": {"code": s, "message": s}} (each may be null).';
  END IF;
  IF $5 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NOT NULL AND ($2 < 100 OR $2 > 599) THEN
    RAISE EXCEPTION 'http_status % is not an HTTP status', $2 USING ERRCODE = '22023',
      HINT = 'Pass NULL when no response arrived, with meta.error.code saying why.';
  END IF;
  IF $2 IS NULL THEN
    code := m -> 'error' ->> 'code';
    IF code IS NULL OR code NOT IN ('network', 'timeout', 'too_large', 'tls') THEN
      RAISE EXCEPTION 'no response needs meta.error.code network, timeout, too_large or tls, not %',
                      pg_catalog.quote_nullable(code) USING ERRCODE = '22023',
        HINT = 'Pass the HTTP status when a response arrived (any status).';
    END IF;
    resp := pg_catalog.jsonb_build_object('error', pg_catalog.jsonb_build_object('code', code));
  ELSE
    BEGIN
      parsed := CASE WHEN $3 IS NULL OR pg_catalog.btrim($3) = '' THEN '{}'::pg_catalog.jsonb ELSE $3::pg_catalog.jsonb END;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
      parsed := NULL;
    END;
    IF pg_catalog.jsonb_typeof(parsed) IS DISTINCT FROM 'object'
       OR (parsed ? 'error' AND pg_catalog.jsonb_typeof(parsed -> 'error') <> 'object')
       OR ($2 BETWEEN 200 AND 299 AND NOT COALESCE(
             parsed ->> 'object' = 'list'
             AND pg_catalog.jsonb_typeof(parsed -> 'data') = 'array'
             AND pg_catalog.jsonb_typeof(parsed -> 'has_more') = 'boolean'
             -- more pages need the last id to continue from
             AND (NOT (parsed ->> 'has_more')::boolean
                  OR (pg_catalog.jsonb_array_length(parsed -> 'data') > 0
                      AND (parsed -> 'data' -> -1 ->> 'id') ~ '^[A-Za-z0-9_]{1,255}$')), false)) THEN
      code := 'malformed';
      resp := pg_catalog.jsonb_build_object('http_status', $2, 'error', pg_catalog.jsonb_build_object('code', 'malformed'));
    ELSE
      code := COALESCE(parsed -> 'error' ->> 'code', parsed -> 'error' ->> 'type');
      resp := parsed || pg_catalog.jsonb_build_object('http_status', $2);
    END IF;
  END IF;
  IF pg_catalog.jsonb_typeof(m -> 'retry_after') = 'number' THEN
    resp := resp || pg_catalog.jsonb_build_object('retry_after', m -> 'retry_after');
  END IF;

  INSERT INTO pgext.api_calls (at, api, method, path, http_status, error_code, duration_ms, attempt, request_id)
  VALUES ($5, 'stripe', $1 ->> 'method', $1 ->> 'path', $2, pg_catalog.left(code, 100),
          CASE WHEN pg_catalog.jsonb_typeof(m -> 'duration_ms') = 'number' THEN (m ->> 'duration_ms')::double precision END,
          CASE WHEN pg_catalog.jsonb_typeof($1 -> 'attempt') = 'number' THEN ($1 ->> 'attempt')::integer END,
          CASE WHEN pg_catalog.jsonb_typeof(m -> 'correlation_id') = 'string'
               THEN pg_catalog.left(NULLIF(m ->> 'correlation_id', ''), 128) END);

  RETURN pgext.stripe_page($1, resp, $5);
END
$$;

-- When pgext.stripe_claim would next have something (NULL: nothing open):
-- the earliest due page of an open run, or the end of a claim's lease.
CREATE FUNCTION pgext.stripe_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pg_catalog.min(GREATEST(x.page_due_at,
                                 CASE WHEN x.page_epoch < (SELECT l.epoch FROM pgext.worker_lease l) THEN NULL
                                      ELSE x.page_in_flight_until END))
    FROM pgext.stripe_sync_runs x WHERE x.finished_at IS NULL
$$;

-- Internal: open a reconcile or events run (NULL while one is under way
-- that made progress within the last hour; an older one is abandoned).
CREATE FUNCTION pgext.stripe_run_open(run_kind text, run_created_gte timestamptz, at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r pgext.stripe_sync_runs;
  new_id bigint;
BEGIN
  SELECT * INTO r FROM pgext.stripe_sync_runs x WHERE x.kind = $1 AND x.finished_at IS NULL FOR UPDATE;
  IF FOUND THEN
    IF r.progress_at > $3 - interval '1 hour' THEN
      RETURN NULL;
    END IF;
    UPDATE pgext.stripe_sync_runs x
       SET finished_at = $3, status = 'abandoned', page_in_flight_until = NULL,
           error = 'no progress for an hour' || COALESCE(' (last error: ' || x.last_error || ')', '')
     WHERE x.id = r.id;
  END IF;
  INSERT INTO pgext.stripe_sync_runs (kind, started_at, created_gte, page_due_at, progress_at)
  VALUES ($1, $3, $2, $3, $3)
  ON CONFLICT (kind) WHERE finished_at IS NULL AND kind <> 'account' DO NOTHING
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;

-- The task stripe_reconcile: open a subscription reconciliation run (its
-- id; NULL while one is under way).  Its pages (GET
-- /v1/subscriptions?status=all) are claimed by pgext.stripe_claim (class
-- 'reconcile'); every subscription is applied as a snapshot taken at its
-- page's arrival (pgext.stripe_subscription_sync).
CREATE FUNCTION pgext.stripe_reconcile_start(at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  RETURN pgext.stripe_run_open('reconcile', NULL, $1);
END
$$;

-- The task stripe_events: open a missed-event run (its id; NULL while one
-- is under way).  It lists GET /v1/events for pgext.stripe_event_types()
-- created from the cursor's created_cursor - pgext.stripe_events_overlap
-- (no cursor yet: `at` - 3 days) and queues every event id not yet recorded.
-- When the cursor (the later of created_cursor and listed_through) is more
-- than pgext.stripe_events_max_lag behind `at`, the alert
-- stripe_events_behind is raised (again a day later while it stays behind).
CREATE FUNCTION pgext.stripe_events_start(at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  c pgext.stripe_events_cursor;
  lag_limit interval := pg_catalog.current_setting('pgext.stripe_events_max_lag')::interval;
  mark pg_catalog.timestamptz;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO c FROM pgext.stripe_events_cursor x FOR UPDATE;
  mark := GREATEST(c.created_cursor, c.listed_through);
  IF mark IS NOT NULL AND mark < $1 - lag_limit
     AND (c.behind_alerted_at IS NULL OR c.behind_alerted_at <= $1 - interval '1 day') THEN
    PERFORM pgext.alert_raise('stripe', 'stripe_events_behind',
                              pg_catalog.jsonb_build_object('created_cursor', c.created_cursor,
                                                            'listed_through', c.listed_through,
                                                            'behind_hours',
                                                            pg_catalog.round((pg_catalog.date_part('epoch', $1 - mark) / 3600)::numeric, 1)),
                              $1);
    UPDATE pgext.stripe_events_cursor x SET behind_alerted_at = $1;
  END IF;
  RETURN pgext.stripe_run_open('events',
                               COALESCE(c.created_cursor - pg_catalog.current_setting('pgext.stripe_events_overlap')::interval,
                                        $1 - interval '3 days'),
                               $1);
END
$$;

-- On demand (apps, right after checkout returns): fetch the account's
-- subscriptions from Stripe at once (GET
-- /v1/subscriptions?customer=<cus>&status=all, class 'urgent') and apply
-- them as snapshots; wakes the worker at commit.  Returns the request id
-- for pgext.stripe_sync_wait (a request of the account not yet sent is
-- reused).  An unknown account: PX001; one without a Stripe customer: 22023.
CREATE FUNCTION pgext.stripe_sync_account(account uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  cus pg_catalog.text;
  rid bigint;
BEGIN
  PERFORM pgext.account_scope_check($1);
  SELECT a.stripe_customer_id INTO cus FROM pgext.accounts a WHERE a.id = $1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'PX001', HINT = 'Create it first with pgext.account_create().';
  END IF;
  IF cus IS NULL THEN
    RAISE EXCEPTION 'account % has no Stripe customer', $1 USING ERRCODE = '22023',
      HINT = 'Link it with pgext.account_set_stripe_customer(account, ''cus_...''), or wait for the checkout webhook.';
  END IF;
  IF cus !~ '^[A-Za-z0-9_]{1,255}$' THEN
    RAISE EXCEPTION 'the Stripe customer id of account % is not a Stripe id', $1 USING ERRCODE = '22023',
      HINT = 'Fix it with pgext.account_set_stripe_customer(account, ''cus_...'').';
  END IF;
  SELECT x.id INTO rid FROM pgext.stripe_sync_runs x
   WHERE x.kind = 'account' AND x.account_id = $1 AND x.customer_id = cus AND x.finished_at IS NULL
     AND x.page_claim = 0
   ORDER BY x.id LIMIT 1;
  IF rid IS NULL THEN
    INSERT INTO pgext.stripe_sync_runs (kind, account_id, customer_id, started_at, page_due_at, progress_at)
    VALUES ('account', $1, cus, pg_catalog.now(), pg_catalog.now(), pg_catalog.now())
    RETURNING id INTO rid;
  END IF;
  PERFORM pgext.worker_wake();
  RETURN rid;
END
$$;

-- Wait for an on-demand sync request: 'done' (its subscriptions are
-- applied), 'failed: <why>' or 'timeout' (still under way after `timeout`,
-- at most 5 minutes).  Polls the request every 50 ms; READ COMMITTED only
-- (each poll sees the worker's commit) and only after the transaction that
-- made the request has committed.  An unknown request: P0002.
CREATE FUNCTION pgext.stripe_sync_wait(request bigint, timeout interval DEFAULT '10 seconds') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  deadline pg_catalog.timestamptz;
  st pg_catalog.text;
  why pg_catalog.text;
  mine boolean;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'request must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the id pgext.stripe_sync_account returned.';
  END IF;
  IF $2 IS NULL OR $2 < interval '0' OR $2 > interval '5 minutes' THEN
    RAISE EXCEPTION 'timeout must be between 0 and 5 minutes, not %', COALESCE($2::pg_catalog.text, 'NULL')
      USING ERRCODE = '22023', HINT = 'Pass e.g. ''10 seconds''; call again to wait longer.';
  END IF;
  PERFORM pgext.account_scope_check(x.account_id)
     FROM pgext.stripe_sync_runs x WHERE x.id = $1 AND x.kind = 'account';
  deadline := pg_catalog.clock_timestamp() + $2;
  LOOP
    SELECT x.status, x.error, x.xmin::pg_catalog.text::bigint
             = pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text::bigint % 4294967296
      INTO st, why, mine
      FROM pgext.stripe_sync_runs x WHERE x.id = $1 AND x.kind = 'account';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no on-demand sync request %', $1 USING ERRCODE = 'P0002',
        HINT = 'Pass the id pgext.stripe_sync_account returned.';
    END IF;
    IF st = 'done' THEN
      RETURN 'done';
    ELSIF st <> 'running' THEN
      RETURN 'failed: ' || COALESCE(why, st);
    END IF;
    IF mine THEN
      RAISE EXCEPTION 'request % is not committed yet', $1 USING ERRCODE = '25000',
        HINT = 'Commit the transaction that called pgext.stripe_sync_account, then wait: the worker cannot see it before.';
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE EXCEPTION 'pgext.stripe_sync_wait needs READ COMMITTED' USING ERRCODE = '25000',
        HINT = 'Call it outside a REPEATABLE READ or SERIALIZABLE transaction: they never see the worker''s commit.';
    END IF;
    IF pg_catalog.clock_timestamp() >= deadline THEN
      RETURN 'timeout';
    END IF;
    PERFORM pg_catalog.pg_sleep(LEAST(0.05, GREATEST(0, pg_catalog.date_part('epoch', deadline - pg_catalog.clock_timestamp()))));
  END LOOP;
END
$$;

-- For operators: the latest run of each kind (reconcile, events, account)
-- with what it found and changed, the missed-event cursor and how far it is
-- behind now, and how many subscriptions match no account.
CREATE VIEW pgext.stripe_sync_status WITH (security_invoker = true) AS
  SELECT r.kind, r.id AS last_run, r.status, r.started_at, r.finished_at, r.error, r.last_error,
         r.pages, r.seen, r.applied, r.changed, r.changed_ids, r.superseded, r.unmatched, r.known,
         r.livemode_skipped, r.malformed, r.errors,
         (SELECT pg_catalog.count(*) FROM pgext.stripe_sync_runs o
           WHERE o.kind = r.kind AND o.finished_at IS NULL) AS open_runs,
         CASE WHEN r.kind = 'events' THEN c.created_cursor END AS events_cursor,
         CASE WHEN r.kind = 'events' THEN pg_catalog.now() - GREATEST(c.created_cursor, c.listed_through) END AS events_behind,
         (SELECT pg_catalog.count(*) FROM pgext.stripe_unmatched) AS unmatched_total
    FROM (SELECT DISTINCT ON (x.kind) x.* FROM pgext.stripe_sync_runs x ORDER BY x.kind, x.id DESC) r
    LEFT JOIN pgext.stripe_events_cursor c ON true;

-- The on-demand requests (kind 'account' runs), for operators.
CREATE VIEW pgext.stripe_sync_requests WITH (security_invoker = true) AS
  SELECT x.id, x.account_id, x.customer_id, x.started_at AS requested_at, x.finished_at, x.status, x.error,
         x.pages, x.seen, x.applied, x.changed, x.changed_ids, x.superseded, x.unmatched, x.last_error
    FROM pgext.stripe_sync_runs x WHERE x.kind = 'account';

REVOKE ALL ON pgext.stripe_sync_runs, pgext.stripe_unmatched, pgext.stripe_events_cursor,
  pgext.stripe_sync_status, pgext.stripe_sync_requests FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.stripe_event_effects(text, text, text, timestamptz, jsonb),
  pgext.stripe_event_minimal(jsonb),
  pgext.stripe_event_types(),
  pgext.stripe_run_path(pgext.stripe_sync_runs),
  pgext.stripe_response_class(jsonb),
  pgext.stripe_run_finish(bigint, text, text, timestamptz),
  pgext.stripe_subscription_sync(bigint, jsonb, timestamptz),
  pgext.stripe_event_fetched(bigint, jsonb, timestamptz),
  pgext.stripe_page(jsonb, jsonb, timestamptz),
  pgext.stripe_claim(bigint, integer, text[], timestamptz),
  pgext.stripe_response(jsonb, integer, text, jsonb, timestamptz),
  pgext.stripe_next_due(),
  pgext.stripe_run_open(text, timestamptz, timestamptz),
  pgext.stripe_reconcile_start(timestamptz),
  pgext.stripe_events_start(timestamptz),
  pgext.stripe_sync_account(uuid),
  pgext.stripe_sync_wait(bigint, interval)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.stripe_sync_account(uuid),
  pgext.stripe_sync_wait(bigint, interval)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.stripe_claim(bigint, integer, text[], timestamptz),
  pgext.stripe_response(jsonb, integer, text, jsonb, timestamptz),
  pgext.stripe_next_due(),
  pgext.stripe_reconcile_start(timestamptz),
  pgext.stripe_events_start(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.stripe_sync_runs, pgext.stripe_unmatched, pgext.stripe_events_cursor,
  pgext.stripe_sync_status, pgext.stripe_sync_requests TO pgext_admin;

-- State tables and identity sequences are kept by pg_dump (sql/backups.sql).
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.stripe_sync_runs', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_unmatched', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_events_cursor', '');
