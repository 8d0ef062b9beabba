------------------------------------------------------------------------------
-- Hetzner: the HTTP requests the background worker sends to the Hetzner
-- Cloud API and what their answers mean (src/worker/ moves the bytes; every
-- Hetzner rule is here).  The worker's lease (epochs), the API call log,
-- capacity fallback, the fleet reconciliation (orphans, vanished servers,
-- drift, cost) and alerts.
------------------------------------------------------------------------------

-- One row per HTTP call to an outside API, for people and dashboards: never
-- a token, a header or a body.  api: 'hetzner' (later 'stripe', 'health');
-- path is below the API's base URL (Hetzner queries hold no secrets);
-- http_status NULL when no response arrived, error_code then the worker's
-- word (network, timeout, too_large, tls), else the body's error.code or
-- 'malformed'; attempt counts tries of that piece of work (1 = first);
-- request_id is the x-correlation-id.  Kept pgext.api_calls_retention.
CREATE TABLE pgext.api_calls (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          timestamptz NOT NULL,
  api         text NOT NULL,
  method      text NOT NULL,
  path        text NOT NULL,
  http_status integer,
  error_code  text,
  duration_ms double precision,
  attempt     integer,
  request_id  text,
  server_id   bigint,
  CONSTRAINT api_calls_api_valid CHECK (api IN ('hetzner', 'stripe', 'health')),
  CONSTRAINT api_calls_method_valid CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
  CONSTRAINT api_calls_status_valid CHECK (http_status BETWEEN 100 AND 599)
);
CREATE INDEX api_calls_at ON pgext.api_calls (at);

-- The worker's lease: one row.  Each pgext.worker_begin starts a new epoch
-- and takes back every claim of the earlier ones; claims of a stale epoch
-- are refused (55000).
CREATE TABLE pgext.worker_lease (
  one          boolean PRIMARY KEY DEFAULT true,
  epoch        bigint NOT NULL,
  holder       text NOT NULL,
  began_at     timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  CONSTRAINT worker_lease_one CHECK (one)
);

-- Capacity: a (location, server type) that answered 412 resource_unavailable
-- / placement_error is skipped by creates until cold_until
-- (pgext.hetzner_cold_for, jittered).  hits counts the answers.
CREATE TABLE pgext.hetzner_cold (
  location    text NOT NULL,
  server_type text NOT NULL,
  cold_until  timestamptz NOT NULL,
  marked_at   timestamptz NOT NULL,
  hits        integer NOT NULL DEFAULT 1,
  last_error  text,
  PRIMARY KEY (location, server_type)
);

-- Fleet reconciliation runs (pgext.hetzner_reconcile_start): the managed
-- servers are listed page by page (one page in flight at a time), then the
-- list is compared with pgext.servers.  expected: the Hetzner ids the list
-- must contain (known when the run started); outcome: what the run found
-- and did.  At most one run is open.
CREATE TABLE pgext.hetzner_reconcile_runs (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at           timestamptz NOT NULL,
  finished_at          timestamptz,
  pages                integer NOT NULL DEFAULT 0,
  servers_seen         integer NOT NULL DEFAULT 0,
  next_page            integer,
  page_claim           bigint NOT NULL DEFAULT 0,
  page_in_flight_until timestamptz,
  page_attempts        integer NOT NULL DEFAULT 0,
  page_due_at          timestamptz,
  progress_at          timestamptz NOT NULL,
  last_error           text,
  expected             bigint[] NOT NULL DEFAULT '{}',
  outcome              jsonb
);
CREATE UNIQUE INDEX hetzner_reconcile_runs_open ON pgext.hetzner_reconcile_runs ((true))
  WHERE finished_at IS NULL;

-- The servers a run's pages listed (the rows of earlier runs are dropped
-- when a run finishes).
CREATE TABLE pgext.hetzner_seen (
  run        bigint NOT NULL REFERENCES pgext.hetzner_reconcile_runs (id) ON DELETE CASCADE,
  hetzner_id bigint NOT NULL,
  name       text NOT NULL,
  labels     jsonb NOT NULL DEFAULT '{}',
  status     text,
  created    timestamptz,
  ipv4       text,
  location   text,
  PRIMARY KEY (run, hetzner_id)
);

-- Managed servers at Hetzner that no pgext.servers row knows (listed by a
-- reconcile run).  created_at is Hetzner's; sightings counts the runs that
-- listed it.  An operator keeps one with pgext.server_orphan_keep; others
-- are deleted (delete_queued_at, then the worker's DELETE) when the rules
-- of pgext.hetzner_reconcile allow; deleted_at: gone (deleted, 404, or no
-- longer listed).
CREATE TABLE pgext.server_orphans (
  hetzner_id       bigint PRIMARY KEY,
  name             text NOT NULL,
  labels           jsonb NOT NULL DEFAULT '{}',
  status           text,
  location         text,
  created_at       timestamptz,
  first_seen_at    timestamptz NOT NULL,
  last_seen_at     timestamptz NOT NULL,
  last_run         bigint,
  sightings        integer NOT NULL DEFAULT 1,
  kept_at          timestamptz,
  kept_reason      text,
  kept_by          text,
  delete_queued_at timestamptz,
  next_attempt_at  timestamptz,
  attempts         integer NOT NULL DEFAULT 0,
  claim            bigint NOT NULL DEFAULT 0,
  claimed_until    timestamptz,
  deleted_at       timestamptz,
  last_error       text
);
CREATE INDEX server_orphans_due ON pgext.server_orphans (next_attempt_at)
  WHERE delete_queued_at IS NOT NULL AND deleted_at IS NULL;

-- Things an operator must look at (source: the module; code: what;
-- detail: the numbers).  Each is also announced with
-- pg_notify('pgext_alert', code).
CREATE TABLE pgext.alerts (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  raised_at timestamptz NOT NULL,
  source    text NOT NULL,
  code      text NOT NULL,
  detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_raised_at ON pgext.alerts (raised_at);

-- Internal: raise an alert (a row and a notification).
CREATE FUNCTION pgext.alert_raise(source text, code text, detail jsonb, at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  new_id bigint;
BEGIN
  INSERT INTO pgext.alerts (raised_at, source, code, detail) VALUES ($4, $1, $2, COALESCE($3, '{}'))
  RETURNING id INTO new_id;
  PERFORM pg_catalog.pg_notify('pgext_alert', $2);
  RETURN new_id;
END
$$;

-- Delete pgext.api_calls rows older than pgext.api_calls_retention before
-- `at` (the worker's api_calls_retention task).  Returns how many.
CREATE FUNCTION pgext.api_calls_retention(at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  DELETE FROM pgext.api_calls c
   WHERE c.at < $1 - pg_catalog.current_setting('pgext.api_calls_retention')::interval;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- The worker starts (or is promoted): a new epoch, returned.  Every claim
-- still live is taken back at once (its lease ends at `at`): the next claim
-- rescues it (a create is then looked up by name first), in-flight
-- reconcile pages and orphan deletes likewise.
CREATE FUNCTION pgext.worker_begin(holder text, at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  e bigint;
BEGIN
  IF $1 IS NULL OR pg_catalog.btrim($1) = '' OR pg_catalog.length($1) > 200 THEN
    RAISE EXCEPTION 'holder must name the worker (1 to 200 characters)' USING ERRCODE = '22023',
      HINT = 'Pass something that identifies this worker, e.g. ''pgext worker pid 4242''.';
  END IF;
  IF $2 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  INSERT INTO pgext.worker_lease AS l (one, epoch, holder, began_at, heartbeat_at)
  VALUES (true, 1, $1, $2, $2)
  ON CONFLICT (one) DO UPDATE SET epoch = l.epoch + 1, holder = EXCLUDED.holder,
                                  began_at = EXCLUDED.began_at, heartbeat_at = EXCLUDED.heartbeat_at
  RETURNING l.epoch INTO e;
  UPDATE pgext.servers x SET claimed_until = $2 WHERE x.claimed_until > $2;
  UPDATE pgext.hetzner_reconcile_runs r SET page_in_flight_until = $2
   WHERE r.finished_at IS NULL AND r.page_in_flight_until > $2;
  UPDATE pgext.server_orphans o SET claimed_until = $2 WHERE o.claimed_until > $2;
  RETURN e;
END
$$;

-- The worker is alive: true while `epoch` is the current one (false: call
-- pgext.worker_begin again; the claims of the old epoch are void).
CREATE FUNCTION pgext.worker_heartbeat(epoch bigint, at timestamptz DEFAULT pg_catalog.now()) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'epoch and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  UPDATE pgext.worker_lease l SET heartbeat_at = GREATEST(l.heartbeat_at, $2) WHERE l.epoch = $1;
  RETURN FOUND;
END
$$;

-- Internal: the POST /servers body of a claimed create: the spec's fields
-- (never 'datacenter'), the location being tried, start_after_create, and
-- the spec's labels plus managed-by=pgext, pgext-account (the account uuid,
-- 36 characters) and pgext-server (the id).
CREATE FUNCTION pgext.hetzner_create_body(s pgext.servers) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
           'name', s.name,
           'server_type', s.spec -> 'server_type',
           'image', s.spec -> 'image',
           'location', s.location,
           'user_data', s.spec -> 'user_data',
           'ssh_keys', s.spec -> 'ssh_keys',
           'start_after_create', true))
         || pg_catalog.jsonb_build_object('labels',
              COALESCE(CASE WHEN pg_catalog.jsonb_typeof(s.spec -> 'labels') = 'object' THEN s.spec -> 'labels' END,
                       '{}'::pg_catalog.jsonb)
              || pg_catalog.jsonb_build_object('managed-by', 'pgext',
                                               'pgext-account', s.account_id::pg_catalog.text,
                                               'pgext-server', s.id::pg_catalog.text))
$$;

-- Internal: one claimed server action as an HTTP request (class, ref,
-- method, path, body).
CREATE FUNCTION pgext.hetzner_server_request(s pgext.servers, OUT class text, OUT ref jsonb, OUT method text,
                                             OUT path text, OUT body text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  class := CASE WHEN s.claimed_action IN ('delete', 'power_off') THEN 'urgent' ELSE 'normal' END;
  CASE s.claimed_action
    WHEN 'create' THEN
      method := 'POST'; path := '/servers'; body := pgext.hetzner_create_body(s)::pg_catalog.text;
    WHEN 'lookup' THEN
      method := 'GET'; path := '/servers?name=' || s.name;
    WHEN 'power_off' THEN
      method := 'POST'; path := pg_catalog.format('/servers/%s/actions/poweroff', s.hetzner_id);
    WHEN 'power_on' THEN
      method := 'POST'; path := pg_catalog.format('/servers/%s/actions/poweron', s.hetzner_id);
    WHEN 'reboot' THEN
      method := 'POST'; path := pg_catalog.format('/servers/%s/actions/reboot', s.hetzner_id);
    WHEN 'reset' THEN
      method := 'POST'; path := pg_catalog.format('/servers/%s/actions/reset', s.hetzner_id);
    WHEN 'delete' THEN
      method := 'DELETE'; path := pg_catalog.format('/servers/%s', s.hetzner_id);
  END CASE;
  ref := pg_catalog.jsonb_build_object('kind', 'server', 'server', s.id, 'claim', s.claim,
                                       'action', s.claimed_action, 'attempt', s.attempts + 1,
                                       'method', method, 'path', path);
  IF s.claimed_action = 'create' THEN
    ref := ref || pg_catalog.jsonb_build_object('location', s.location, 'server_type', s.spec ->> 'server_type');
  ELSIF s.claimed_action = 'lookup' THEN
    ref := ref || pg_catalog.jsonb_build_object('name', s.name);
  END IF;
END
$$;

-- Internal: a poll batch (GET /actions?id=..&id=..) as an HTTP request.
CREATE FUNCTION pgext.hetzner_poll_request(items jsonb, OUT ref jsonb, OUT path text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pg_catalog.jsonb_build_object('kind', 'poll', 'items', $1, 'method', 'GET', 'path', p,
                                       'attempt', (SELECT pg_catalog.max((i ->> 'attempt')::integer)
                                                     FROM pg_catalog.jsonb_array_elements($1) i)),
         p
    FROM (SELECT '/actions?' || pg_catalog.string_agg('id=' || (i ->> 'action_id'), '&' ORDER BY o) AS p
            FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS e(i, o)) q
$$;

-- The worker takes up to "limit" HTTP requests to send now, of the given
-- classes ('urgent': deletes, power-offs, orphan deletes; 'reconcile': the
-- open reconcile run's next page; 'normal': creates, lookups, power-ons and
-- action polls, batched up to 25 per GET /actions), urgent first, then
-- reconcile, then normal, each oldest due first (normal also carries fleet
-- health's reboots and resets).  Each is claimed for
-- pgext.hetzner_claim_lease as 'epoch N'; ref (opaque to the worker) goes
-- back with the answer to pgext.hetzner_response.  A create goes to the
-- first location from location_index that is not cold (pgext.hetzner_cold);
-- when all are, it is not sent but waits (30 s doubling to 10 min,
-- jittered) and starts the list again.  A stale epoch: 55000, nothing claimed.
CREATE FUNCTION pgext.hetzner_claim(epoch bigint, "limit" integer, classes text[],
                                    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (ref jsonb, class text, method text, path text, body text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  cur bigint;
  claimant pg_catalog.text;
  until pg_catalog.timestamptz;
  budget integer := $2;
  sid bigint;
  act pg_catalog.text;
  s pgext.servers;
  o pgext.server_orphans;
  run pgext.hetzner_reconcile_runs;
  req record;
  batch pg_catalog.jsonb := '[]';
  idx integer;
  poll record;
BEGIN
  IF $1 IS NULL OR $4 IS NULL THEN
    RAISE EXCEPTION 'epoch and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL OR $2 < 1 OR $2 > 1000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF $3 IS NULL OR pg_catalog.cardinality($3) = 0
     OR NOT ($3 <@ ARRAY['urgent', 'reconcile', 'normal']::pg_catalog.text[]) THEN
    RAISE EXCEPTION 'classes must name some of urgent, reconcile, normal, not %', COALESCE(pg_catalog.left($3::pg_catalog.text, 64), 'NULL')
      USING ERRCODE = '22023', HINT = 'Pass e.g. ARRAY[''urgent'', ''reconcile'', ''normal''].';
  END IF;
  SELECT l.epoch INTO cur FROM pgext.worker_lease l FOR SHARE;
  IF cur IS DISTINCT FROM $1 THEN
    RAISE EXCEPTION 'worker epoch % is not the current one (%)', $1, COALESCE(cur::pg_catalog.text, 'none')
      USING ERRCODE = '55000',
            HINT = 'Another worker_begin took the lease: call pgext.worker_begin(holder) and use its epoch.';
  END IF;
  claimant := 'epoch ' || $1;
  until := $4 + pg_catalog.current_setting('pgext.hetzner_claim_lease')::interval;

  IF 'urgent' = ANY ($3) THEN
    FOR sid IN
      SELECT x.id FROM pgext.servers x
       WHERE x.next_action IN ('delete', 'power_off') AND x.next_attempt_at <= $4
         AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
       ORDER BY x.next_attempt_at, x.id
       LIMIT budget FOR UPDATE SKIP LOCKED
    LOOP
      s := pgext.server_take(sid, claimant, until, $4);
      SELECT * INTO req FROM pgext.hetzner_server_request(s);
      ref := req.ref; class := req.class; method := req.method; path := req.path; body := req.body;
      RETURN NEXT;
      budget := budget - 1;
    END LOOP;
    FOR o IN
      SELECT * FROM pgext.server_orphans y
       WHERE y.delete_queued_at IS NOT NULL AND y.deleted_at IS NULL AND y.kept_at IS NULL
         AND y.next_attempt_at <= $4 AND (y.claimed_until IS NULL OR y.claimed_until <= $4)
       ORDER BY y.next_attempt_at, y.hetzner_id
       LIMIT budget FOR UPDATE SKIP LOCKED
    LOOP
      UPDATE pgext.server_orphans y
         SET claim = y.claim + 1, claimed_until = until,
             attempts = y.attempts + CASE WHEN y.claimed_until IS NOT NULL THEN 1 ELSE 0 END
       WHERE y.hetzner_id = o.hetzner_id
      RETURNING * INTO o;
      class := 'urgent'; method := 'DELETE'; path := '/servers/' || o.hetzner_id; body := NULL;
      ref := pg_catalog.jsonb_build_object('kind', 'orphan_delete', 'hetzner_id', o.hetzner_id, 'claim', o.claim,
                                           'attempt', o.attempts + 1, 'method', method, 'path', path);
      RETURN NEXT;
      budget := budget - 1;
    END LOOP;
  END IF;

  IF 'reconcile' = ANY ($3) AND budget > 0 THEN
    SELECT * INTO run FROM pgext.hetzner_reconcile_runs r
     WHERE r.finished_at IS NULL AND r.next_page IS NOT NULL
       AND (r.page_in_flight_until IS NULL OR r.page_in_flight_until <= $4)
       AND COALESCE(r.page_due_at, r.started_at) <= $4
     FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      UPDATE pgext.hetzner_reconcile_runs r
         SET page_claim = r.page_claim + 1, page_in_flight_until = until,
             page_attempts = r.page_attempts + CASE WHEN r.page_in_flight_until IS NOT NULL THEN 1 ELSE 0 END
       WHERE r.id = run.id
      RETURNING * INTO run;
      class := 'reconcile'; method := 'GET'; body := NULL;
      path := pg_catalog.format('/servers?label_selector=managed-by%%3Dpgext&page=%s&per_page=50', run.next_page);
      ref := pg_catalog.jsonb_build_object('kind', 'page', 'run', run.id, 'page', run.next_page, 'claim', run.page_claim,
                                           'attempt', run.page_attempts + 1, 'method', method, 'path', path);
      RETURN NEXT;
      budget := budget - 1;
    END IF;
  END IF;

  IF 'normal' = ANY ($3) AND budget > 0 THEN
    FOR sid, act IN
      SELECT x.id, x.next_action FROM pgext.servers x
       WHERE x.next_action IN ('create', 'lookup', 'power_on', 'poll_action', 'reboot', 'reset')
         AND x.next_attempt_at <= $4
         AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
       ORDER BY x.next_attempt_at, x.id
       LIMIT budget * 25
    LOOP
      IF act = 'poll_action' THEN
        CONTINUE WHEN pg_catalog.jsonb_array_length(batch) = 0 AND budget = 0;
        PERFORM FROM pgext.servers x
          WHERE x.id = sid AND x.next_action = act AND x.next_attempt_at <= $4
            AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
            FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        IF pg_catalog.jsonb_array_length(batch) = 0 THEN
          budget := budget - 1;   -- this batch's request
        END IF;
        s := pgext.server_take(sid, claimant, until, $4);
        batch := batch || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                   'server', s.id, 'claim', s.claim, 'action_id', s.action_id, 'attempt', s.attempts + 1));
        IF pg_catalog.jsonb_array_length(batch) = 25 THEN
          SELECT * INTO poll FROM pgext.hetzner_poll_request(batch);
          ref := poll.ref; class := 'normal'; method := 'GET'; path := poll.path; body := NULL;
          RETURN NEXT;
          batch := '[]';
        END IF;
        CONTINUE;
      END IF;
      CONTINUE WHEN budget = 0;
      -- lock only the rows taken (another claimer gets the rest)
      SELECT * INTO s FROM pgext.servers x
       WHERE x.id = sid AND x.next_action = act AND x.next_attempt_at <= $4
         AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
         FOR UPDATE SKIP LOCKED;
      CONTINUE WHEN NOT FOUND;
      IF act = 'create' AND NOT s.create_unknown THEN
        -- the first location from location_index that is not cold
        SELECT (e.o - 1)::integer INTO idx
          FROM pg_catalog.jsonb_array_elements_text(s.spec -> 'locations') WITH ORDINALITY AS e(loc, o)
         WHERE e.o - 1 >= s.location_index
           AND NOT EXISTS (SELECT FROM pgext.hetzner_cold c
                            WHERE c.location = e.loc AND c.server_type = s.spec ->> 'server_type'
                              AND c.cold_until > $4)
         ORDER BY e.o LIMIT 1;
        IF idx IS NULL THEN
          UPDATE pgext.servers x
             SET location_index = 0, attempts = 0, capacity_rounds = x.capacity_rounds + 1,
                 next_attempt_at = $4 + pgext.server_backoff(x.capacity_rounds, '30 seconds', '10 minutes'),
                 last_error = pg_catalog.format('no capacity for %s in %s (out of capacity recently); trying again later',
                                s.spec ->> 'server_type',
                                (SELECT pg_catalog.string_agg(l, ', ')
                                   FROM pg_catalog.jsonb_array_elements_text(s.spec -> 'locations') l))
           WHERE x.id = sid;
          CONTINUE;
        ELSIF idx <> s.location_index THEN
          UPDATE pgext.servers x SET location_index = idx WHERE x.id = sid;
        END IF;
      END IF;
      s := pgext.server_take(sid, claimant, until, $4);
      SELECT * INTO req FROM pgext.hetzner_server_request(s);
      ref := req.ref; class := req.class; method := req.method; path := req.path; body := req.body;
      RETURN NEXT;
      budget := budget - 1;
    END LOOP;
    IF pg_catalog.jsonb_array_length(batch) > 0 THEN
      SELECT * INTO poll FROM pgext.hetzner_poll_request(batch);
      ref := poll.ref; class := 'normal'; method := 'GET'; path := poll.path; body := NULL;
      RETURN NEXT;
    END IF;
  END IF;
END
$$;

-- Internal: does a 2xx body have the shape its request promises?  (A create
-- answers a server with an id; lists answer arrays.)  Else it counts as
-- 'malformed'.
CREATE FUNCTION pgext.hetzner_shape_ok(ref jsonb, body jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE
    WHEN $1 ->> 'kind' = 'server' AND $1 ->> 'action' = 'create'
      THEN pg_catalog.jsonb_typeof($2 -> 'server' -> 'id') = 'number'
    WHEN $1 ->> 'kind' = 'server' AND $1 ->> 'action' = 'lookup'
      THEN pg_catalog.jsonb_typeof($2 -> 'servers') = 'array'
    WHEN $1 ->> 'kind' = 'poll'
      THEN pg_catalog.jsonb_typeof($2 -> 'actions') = 'array'
    WHEN $1 ->> 'kind' = 'page'
      THEN pg_catalog.jsonb_typeof($2 -> 'servers') = 'array'
           AND NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements($2 -> 'servers') e
                            WHERE pg_catalog.jsonb_typeof(e -> 'id') IS DISTINCT FROM 'number'
                               OR pg_catalog.jsonb_typeof(e -> 'name') IS DISTINCT FROM 'string')
           AND COALESCE(pg_catalog.jsonb_typeof($2 -> 'meta' -> 'pagination' -> 'next_page'), 'null')
               IN ('null', 'number')
    ELSE true END
$$;

-- Internal: a reconcile page's answer: stored, then the next page, or the
-- run is finished after the last one.  A failed page is retried with backoff.
CREATE FUNCTION pgext.hetzner_reconcile_page(ref jsonb, response jsonb, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r pgext.hetzner_reconcile_runs;
  nextp integer;
BEGIN
  SELECT * INTO r FROM pgext.hetzner_reconcile_runs x WHERE x.id = ($1 ->> 'run')::bigint FOR UPDATE;
  IF NOT FOUND OR r.finished_at IS NOT NULL OR r.page_in_flight_until IS NULL
     OR r.page_claim IS DISTINCT FROM ($1 ->> 'claim')::bigint THEN
    RETURN 'stale';
  END IF;
  IF pgext.server_response_class($2) <> 'ok' THEN
    UPDATE pgext.hetzner_reconcile_runs x
       SET page_in_flight_until = NULL, page_attempts = x.page_attempts + 1,
           page_due_at = $3 + GREATEST(pgext.server_backoff(x.page_attempts, '2 seconds', '5 minutes'),
                                       pg_catalog.make_interval(secs => COALESCE(($2 ->> 'retry_after')::double precision, 0))),
           last_error = pg_catalog.format('page %s: %s (%s)', x.next_page,
                                          COALESCE($2 -> 'error' ->> 'code', 'error'),
                                          COALESCE($2 ->> 'http_status', 'no response'))
     WHERE x.id = r.id;
    RETURN 'retry';
  END IF;
  INSERT INTO pgext.hetzner_seen AS v (run, hetzner_id, name, labels, status, created, ipv4, location)
  SELECT r.id, (e ->> 'id')::bigint, e ->> 'name',
         CASE WHEN pg_catalog.jsonb_typeof(e -> 'labels') = 'object' THEN e -> 'labels' ELSE '{}' END,
         e ->> 'status', (e ->> 'created')::pg_catalog.timestamptz,
         e -> 'public_net' -> 'ipv4' ->> 'ip', e -> 'datacenter' -> 'location' ->> 'name'
    FROM pg_catalog.jsonb_array_elements($2 -> 'servers') e
  ON CONFLICT (run, hetzner_id) DO UPDATE
    SET name = EXCLUDED.name, labels = EXCLUDED.labels, status = EXCLUDED.status, created = EXCLUDED.created,
        ipv4 = EXCLUDED.ipv4, location = EXCLUDED.location;
  nextp := ($2 -> 'meta' -> 'pagination' ->> 'next_page')::integer;
  IF nextp <= r.next_page OR nextp > 100000 THEN
    nextp := NULL;   -- a list that goes backwards ends here
  END IF;
  UPDATE pgext.hetzner_reconcile_runs x
     SET pages = x.pages + 1,
         servers_seen = (SELECT pg_catalog.count(*) FROM pgext.hetzner_seen v WHERE v.run = r.id),
         next_page = nextp, page_in_flight_until = NULL, page_attempts = 0, page_due_at = $3,
         progress_at = $3, last_error = NULL
   WHERE x.id = r.id;
  IF nextp IS NULL THEN
    PERFORM pgext.hetzner_reconcile_finish(r.id, $3);
    RETURN 'finished';
  END IF;
  RETURN 'page';
END
$$;

-- Internal: compare a complete list with pgext.servers (see
-- pgext.hetzner_reconcile_start) and act; the run's outcome says what it did.
CREATE FUNCTION pgext.hetzner_reconcile_finish(run bigint, at timestamptz) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r pgext.hetzner_reconcile_runs;
  s pgext.servers;
  v pgext.hetzner_seen;
  delete_after interval := pg_catalog.current_setting('pgext.orphan_delete_after')::interval;
  adopted integer := 0;
  orphans integer;
  gone integer;
  eligible integer := 0;
  cap integer;
  queued integer := 0;
  vanished integer := 0;
  held_vanished integer := 0;
  drift integer := 0;
  live integer;
  paying integer;
  lim integer := pg_catalog.current_setting('pgext.server_limit_per_account')::integer;
  why pg_catalog.text;
  summary pg_catalog.jsonb;
BEGIN
  SELECT * INTO r FROM pgext.hetzner_reconcile_runs x WHERE x.id = $1;

  -- adopt: a listed server named like a row whose create outcome was unknown
  FOR v IN
    SELECT * FROM pgext.hetzner_seen y WHERE y.run = $1 AND y.status IS DISTINCT FROM 'deleting'
       AND NOT EXISTS (SELECT FROM pgext.servers z WHERE z.hetzner_id = y.hetzner_id)
     ORDER BY y.hetzner_id
  LOOP
    SELECT * INTO s FROM pgext.servers z
     WHERE z.name = v.name AND z.state <> 'deleted' AND z.hetzner_id IS NULL AND z.create_sent
       AND (z.claimed_until IS NULL OR z.claimed_until <= $2)
       FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    UPDATE pgext.servers z
       SET hetzner_id = v.hetzner_id, ipv4 = COALESCE(v.ipv4, z.ipv4), location = COALESCE(v.location, z.location),
           hetzner_status = v.status, create_unknown = false
     WHERE z.id = s.id;
    IF s.state = 'requested' THEN
      PERFORM pgext.server_move(s.id, 'creating',
                                pg_catalog.format('Hetzner server %s adopted from the list of reconcile run %s', v.hetzner_id, $1),
                                'worker', $2);
    END IF;
    PERFORM pgext.server_replan(s.id, $2);
    adopted := adopted + 1;
  END LOOP;

  -- (a) orphans: listed, and no live row knows it by id or name
  INSERT INTO pgext.server_orphans AS o (hetzner_id, name, labels, status, location, created_at,
                                         first_seen_at, last_seen_at, last_run, sightings)
  SELECT y.hetzner_id, y.name, y.labels, y.status, y.location, y.created, $2, $2, $1, 1
    FROM pgext.hetzner_seen y
   WHERE y.run = $1 AND y.status IS DISTINCT FROM 'deleting'
     AND NOT EXISTS (SELECT FROM pgext.servers z
                      WHERE z.state <> 'deleted' AND (z.hetzner_id = y.hetzner_id OR z.name = y.name))
  ON CONFLICT (hetzner_id) DO UPDATE
    SET name = EXCLUDED.name, labels = EXCLUDED.labels, status = EXCLUDED.status, location = EXCLUDED.location,
        created_at = EXCLUDED.created_at, last_seen_at = $2, last_run = $1,
        sightings = o.sightings + CASE WHEN o.last_run IS DISTINCT FROM $1 THEN 1 ELSE 0 END,
        deleted_at = NULL, delete_queued_at = CASE WHEN o.deleted_at IS NULL THEN o.delete_queued_at END,
        next_attempt_at = CASE WHEN o.deleted_at IS NULL THEN o.next_attempt_at END;
  GET DIAGNOSTICS orphans = ROW_COUNT;
  -- orphans no longer listed are gone
  UPDATE pgext.server_orphans o
     SET deleted_at = $2, claimed_until = NULL,
         last_error = COALESCE(o.last_error, pg_catalog.format('not in the list of reconcile run %s', $1))
   WHERE o.deleted_at IS NULL AND o.last_run IS DISTINCT FROM $1;
  GET DIAGNOSTICS gone = ROW_COUNT;

  -- (b) orphan deletes, within the limits
  IF delete_after > interval '0' THEN
    SELECT pg_catalog.count(*) INTO eligible FROM pgext.server_orphans o
     WHERE o.last_run = $1 AND o.deleted_at IS NULL AND o.kept_at IS NULL AND o.delete_queued_at IS NULL
       AND o.first_seen_at + delete_after <= $2 AND o.sightings >= 2 AND o.last_seen_at - o.first_seen_at >= interval '5 minutes'
       AND o.created_at <= $2 - interval '15 minutes';
    cap := LEAST(5, pg_catalog.floor(r.servers_seen * 0.1)::integer);
    UPDATE pgext.server_orphans o SET delete_queued_at = $2, next_attempt_at = $2, attempts = 0
     WHERE o.hetzner_id IN (
       SELECT p.hetzner_id FROM pgext.server_orphans p
        WHERE p.last_run = $1 AND p.deleted_at IS NULL AND p.kept_at IS NULL AND p.delete_queued_at IS NULL
          AND p.first_seen_at + delete_after <= $2 AND p.sightings >= 2
          AND p.last_seen_at - p.first_seen_at >= interval '5 minutes'
          AND p.created_at <= $2 - interval '15 minutes'
        ORDER BY p.first_seen_at, p.hetzner_id LIMIT cap);
    GET DIAGNOSTICS queued = ROW_COUNT;
    IF eligible > queued THEN
      PERFORM pgext.alert_raise('hetzner', 'orphan_delete_limit',
                                pg_catalog.jsonb_build_object('run', $1, 'eligible', eligible, 'queued', queued,
                                                              'limit', cap, 'servers_seen', r.servers_seen),
                                $2);
    END IF;
  END IF;

  -- (c) vanished: rows the list had to contain (known before the run,
  -- working, not claimed now) but does not.  Many at once looks like a
  -- wrong token or a broken list: then nothing is failed and an alert says so.
  SELECT pg_catalog.count(*) INTO vanished FROM pgext.servers z
   WHERE z.hetzner_id = ANY (r.expected)
     AND z.state IN ('creating', 'configuring', 'active', 'paused', 'deleting')
     AND (z.claimed_until IS NULL OR z.claimed_until <= $2)
     AND NOT EXISTS (SELECT FROM pgext.hetzner_seen y WHERE y.run = $1 AND y.hetzner_id = z.hetzner_id);
  IF vanished > GREATEST(5, pg_catalog.cardinality(r.expected) / 10) THEN
    held_vanished := vanished;
    vanished := 0;
    PERFORM pgext.alert_raise('hetzner', 'vanished_limit',
                              pg_catalog.jsonb_build_object('run', $1, 'vanished', held_vanished,
                                                            'expected', pg_catalog.cardinality(r.expected)),
                              $2);
  ELSE
    vanished := 0;
    FOR s IN
      SELECT * FROM pgext.servers z
       WHERE z.hetzner_id = ANY (r.expected)
         AND z.state IN ('creating', 'configuring', 'active', 'paused', 'deleting')
         AND (z.claimed_until IS NULL OR z.claimed_until <= $2)
         AND NOT EXISTS (SELECT FROM pgext.hetzner_seen y WHERE y.run = $1 AND y.hetzner_id = z.hetzner_id)
       ORDER BY z.id FOR UPDATE SKIP LOCKED
    LOOP
      why := pg_catalog.format('vanished at Hetzner (not in the list of reconcile run %s)', $1);
      IF s.state = 'deleting' THEN
        PERFORM pgext.server_move(s.id, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (gone at Hetzner)',
                                  'worker', $2);
        UPDATE pgext.servers z SET action_id = NULL, hetzner_status = NULL WHERE z.id = s.id;
        PERFORM pgext.server_replan(s.id, $2);
      ELSE
        -- forget the id: the cleanup looks the name up (a list that missed
        -- it finds it again) before it counts as gone
        UPDATE pgext.servers z SET hetzner_id = NULL, ipv4 = NULL, action_id = NULL, hetzner_status = NULL,
                                   last_error = why
         WHERE z.id = s.id;
        PERFORM pgext.server_fail(s.id, why, 'worker', $2);
      END IF;
      vanished := vanished + 1;
    END LOOP;
  END IF;

  -- (d) drift: the power state at Hetzner is not the one wanted
  UPDATE pgext.servers z SET hetzner_status = y.status
    FROM pgext.hetzner_seen y
   WHERE y.run = $1 AND z.hetzner_id = y.hetzner_id AND z.state <> 'deleted'
     AND z.hetzner_status IS DISTINCT FROM y.status AND z.state_since < r.started_at
     AND (z.claimed_until IS NULL OR z.claimed_until <= $2);
  FOR s IN
    SELECT * FROM pgext.servers z
     WHERE z.state IN ('active', 'paused') AND z.state = z.desired_state
       AND z.hetzner_status = CASE z.state WHEN 'active' THEN 'off' ELSE 'running' END
       AND z.next_action IS NULL
       AND EXISTS (SELECT FROM pgext.hetzner_seen y WHERE y.run = $1 AND y.hetzner_id = z.hetzner_id)
     ORDER BY z.id FOR UPDATE SKIP LOCKED
  LOOP
    PERFORM pgext.server_replan(s.id, $2);
    UPDATE pgext.servers z
       SET last_error = pg_catalog.format('drift: %s but %s at Hetzner (reconcile run %s)', s.state, s.hetzner_status, $1)
     WHERE z.id = s.id;
    drift := drift + 1;
  END LOOP;

  -- (e) cost: more live managed servers than paying accounts may have
  SELECT pg_catalog.count(*) INTO live FROM pgext.hetzner_seen y
   WHERE y.run = $1 AND y.status IS DISTINCT FROM 'deleting';
  SELECT pg_catalog.count(*) INTO paying FROM pgext.accounts a
   WHERE EXISTS (SELECT FROM pgext.billing_access(a.id, $2) b WHERE b.access <> 'none');
  IF live > paying::bigint * lim THEN
    PERFORM pgext.alert_raise('hetzner', 'fleet_over_entitlement',
                              pg_catalog.jsonb_build_object('run', $1, 'live', live, 'accounts_with_access', paying,
                                                            'server_limit_per_account', lim,
                                                            'entitled', paying::bigint * lim),
                              $2);
  END IF;

  summary := pg_catalog.jsonb_build_object('servers_seen', r.servers_seen, 'adopted', adopted, 'orphans', orphans,
                                       'orphans_gone', gone, 'orphan_deletes_queued', queued,
                                       'orphan_deletes_held', eligible - queued, 'vanished', vanished,
                                       'vanished_held', held_vanished, 'drift', drift, 'live', live,
                                       'entitled', paying::bigint * lim);
  UPDATE pgext.hetzner_reconcile_runs x SET finished_at = $2, outcome = summary WHERE x.id = $1;
  DELETE FROM pgext.hetzner_seen y WHERE y.run < $1;
  DELETE FROM pgext.hetzner_cold c WHERE c.cold_until < $2 - interval '1 day';
  RETURN summary;
END
$$;

-- The reconcile task: open a run (returns its id; NULL while a run is under
-- way that made progress within the last hour; an older one is abandoned).
-- Its pages are claimed by pgext.hetzner_claim (class 'reconcile'), one at a
-- time, and pgext.hetzner_response finishes it after the last page:
--   adopt    a listed server named like a row whose create outcome was
--            unknown gets that row (its hetzner_id)
--   orphans  listed managed servers no row knows go to pgext.server_orphans;
--            deleted (urgent DELETE) only after pgext.orphan_delete_after
--            since first seen, two sightings 5+ minutes apart, 15+ minutes
--            old at Hetzner, not kept; at most 5 per run and 10% of the
--            listed fleet (more eligible: alert orphan_delete_limit)
--   vanished rows known before the run (creating .. deleting, not claimed)
--            missing from the list: deleting -> deleted, others fail (more
--            than max(5, 10%) at once: none, alert vanished_limit)
--   drift    active but off -> power on; paused but running -> power off
--   cost     live servers > accounts with billing access x
--            pgext.server_limit_per_account: alert fleet_over_entitlement
CREATE FUNCTION pgext.hetzner_reconcile_start(at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r pgext.hetzner_reconcile_runs;
  new_id bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO r FROM pgext.hetzner_reconcile_runs x WHERE x.finished_at IS NULL FOR UPDATE;
  IF FOUND THEN
    IF r.progress_at > $1 - interval '1 hour' THEN
      RETURN NULL;
    END IF;
    UPDATE pgext.hetzner_reconcile_runs x
       SET finished_at = $1, page_in_flight_until = NULL,
           outcome = pg_catalog.jsonb_build_object('abandoned', 'no progress for an hour', 'last_error', x.last_error)
     WHERE x.id = r.id;
  END IF;
  INSERT INTO pgext.hetzner_reconcile_runs (started_at, next_page, page_due_at, progress_at, expected)
  VALUES ($1, 1, $1, $1,
          ARRAY(SELECT z.hetzner_id FROM pgext.servers z
                 WHERE z.hetzner_id IS NOT NULL
                   AND z.state IN ('creating', 'configuring', 'active', 'paused', 'deleting')
                 ORDER BY z.hetzner_id))
  ON CONFLICT ((true)) WHERE finished_at IS NULL DO NOTHING
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;

-- Internal: an orphan delete's answer: 2xx or 404 (already gone) deleted;
-- anything else retried with backoff.
CREATE FUNCTION pgext.hetzner_orphan_deleted(ref jsonb, response jsonb, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  o pgext.server_orphans;
  cls pg_catalog.text := pgext.server_response_class($2);
BEGIN
  SELECT * INTO o FROM pgext.server_orphans y WHERE y.hetzner_id = ($1 ->> 'hetzner_id')::bigint FOR UPDATE;
  IF NOT FOUND OR o.claimed_until IS NULL OR o.claim IS DISTINCT FROM ($1 ->> 'claim')::bigint THEN
    RETURN 'stale';
  END IF;
  IF cls IN ('ok', 'not_found') THEN
    UPDATE pgext.server_orphans y SET deleted_at = $3, claimed_until = NULL, last_error = NULL
     WHERE y.hetzner_id = o.hetzner_id;
    RETURN 'deleted';
  END IF;
  UPDATE pgext.server_orphans y
     SET claimed_until = NULL, attempts = y.attempts + 1,
         next_attempt_at = $3 + GREATEST(pgext.server_backoff(y.attempts, '2 seconds', '5 minutes'),
                                         pg_catalog.make_interval(secs => COALESCE(($2 ->> 'retry_after')::double precision, 0))),
         last_error = pg_catalog.format('%s (%s)', COALESCE($2 -> 'error' ->> 'code', 'error'),
                                        COALESCE($2 ->> 'http_status', 'no response'))
   WHERE y.hetzner_id = o.hetzner_id;
  RETURN 'retry';
END
$$;

-- The worker hands back one answer to a request of pgext.hetzner_claim
-- (http_status NULL: none arrived, meta.error.code says why: network,
-- timeout, too_large, tls).  The body is parsed as JSON (not a JSON object,
-- or not the shape the request promises: error 'malformed'); one
-- pgext.api_calls row is written (never the body); a 412 to a create marks
-- its location cold; then the answer is applied and the outcome returned:
--   a server action: pgext.server_report's outcome (stale, retry, lookup,
--     next_location, no_capacity, running, not_found, cleaned, or the state)
--   an action poll batch: the items' outcomes joined by commas, in order
--   a reconcile page: page (more to come), finished (the run is done),
--     retry, stale
--   an orphan delete: deleted (2xx or 404), retry, stale
CREATE FUNCTION pgext.hetzner_response(ref jsonb, http_status integer, body text, meta jsonb,
                                       at timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  kind pg_catalog.text := $1 ->> 'kind';
  m pg_catalog.jsonb := COALESCE($4, '{}');
  parsed pg_catalog.jsonb;
  resp pg_catalog.jsonb;
  code pg_catalog.text;
  item pg_catalog.jsonb;
  act pg_catalog.jsonb;
  outcomes pg_catalog.text[] := '{}';
BEGIN
  IF pg_catalog.jsonb_typeof($1) IS DISTINCT FROM 'object'
     OR kind IS NULL OR kind NOT IN ('server', 'poll', 'page', 'orphan_delete')
     OR pg_catalog.jsonb_typeof($1 -> 'method') IS DISTINCT FROM 'string'
     OR pg_catalog.jsonb_typeof($1 -> 'path') IS DISTINCT FROM 'string' THEN
    RAISE EXCEPTION 'ref is not a request of pgext.hetzner_claim' USING ERRCODE = '22023',
      HINT = 'Hand back the ref hetzner_claim returned with the request, unchanged.';
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
    resp := pg_catalog.jsonb_build_object('error', pg_catalog.jsonb_build_object(
              'code', code, 'message', COALESCE(m -> 'error' ->> 'message', 'no response')));
  ELSE
    BEGIN
      parsed := CASE WHEN $3 IS NULL OR pg_catalog.btrim($3) = '' THEN '{}'::pg_catalog.jsonb ELSE $3::pg_catalog.jsonb END;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
      parsed := NULL;
    END;
    IF pg_catalog.jsonb_typeof(parsed) IS DISTINCT FROM 'object'
       OR (parsed ? 'error' AND pg_catalog.jsonb_typeof(parsed -> 'error') <> 'object')
       OR ($2 BETWEEN 200 AND 299 AND NOT parsed ? 'error' AND NOT pgext.hetzner_shape_ok($1, parsed)) THEN
      code := 'malformed';
      resp := pg_catalog.jsonb_build_object('http_status', $2, 'error', pg_catalog.jsonb_build_object(
                'code', 'malformed', 'message', 'the response body is not the JSON the request promises'));
    ELSE
      code := parsed -> 'error' ->> 'code';
      resp := parsed || pg_catalog.jsonb_build_object('http_status', $2);
    END IF;
  END IF;
  IF pg_catalog.jsonb_typeof(m -> 'retry_after') = 'number' THEN
    resp := resp || pg_catalog.jsonb_build_object('retry_after', m -> 'retry_after');
  END IF;

  INSERT INTO pgext.api_calls (at, api, method, path, http_status, error_code, duration_ms, attempt,
                               request_id, server_id)
  VALUES ($5, 'hetzner', $1 ->> 'method', $1 ->> 'path', $2, pg_catalog.left(code, 100),
          CASE WHEN pg_catalog.jsonb_typeof(m -> 'duration_ms') = 'number' THEN (m ->> 'duration_ms')::double precision END,
          CASE WHEN pg_catalog.jsonb_typeof($1 -> 'attempt') = 'number' THEN ($1 ->> 'attempt')::integer END,
          CASE WHEN pg_catalog.jsonb_typeof(m -> 'correlation_id') = 'string'
               THEN pg_catalog.left(NULLIF(m ->> 'correlation_id', ''), 128) END,
          CASE WHEN kind = 'server' THEN ($1 ->> 'server')::bigint END);

  IF kind = 'server' THEN
    IF $1 ->> 'action' = 'create' AND pgext.server_response_class(resp) = 'unavailable'
       AND $1 ->> 'location' IS NOT NULL AND $1 ->> 'server_type' IS NOT NULL THEN
      INSERT INTO pgext.hetzner_cold AS c (location, server_type, cold_until, marked_at, hits, last_error)
      VALUES ($1 ->> 'location', $1 ->> 'server_type',
              $5 + pg_catalog.current_setting('pgext.hetzner_cold_for')::interval * (0.8 + pg_catalog.random() * 0.4),
              $5, 1, pg_catalog.format('%s: %s', code, resp -> 'error' ->> 'message'))
      ON CONFLICT (location, server_type) DO UPDATE
        SET cold_until = EXCLUDED.cold_until, marked_at = EXCLUDED.marked_at, hits = c.hits + 1,
            last_error = EXCLUDED.last_error;
    END IF;
    IF $1 ->> 'action' = 'lookup' AND pg_catalog.jsonb_typeof(resp -> 'servers') = 'array' THEN
      -- only a server of exactly that name is this one
      resp := pg_catalog.jsonb_set(resp, '{servers}',
                COALESCE((SELECT pg_catalog.jsonb_agg(e) FROM pg_catalog.jsonb_array_elements(resp -> 'servers') e
                           WHERE e ->> 'name' = $1 ->> 'name'), '[]'));
    END IF;
    RETURN pgext.server_report(($1 ->> 'server')::bigint, $1 ->> 'action', resp, ($1 ->> 'claim')::bigint, $5);
  ELSIF kind = 'poll' THEN
    FOR item IN SELECT * FROM pg_catalog.jsonb_array_elements($1 -> 'items') LOOP
      IF pgext.server_response_class(resp) = 'ok' THEN
        SELECT a INTO act FROM pg_catalog.jsonb_array_elements(resp -> 'actions') a
         WHERE a -> 'id' = item -> 'action_id' LIMIT 1;
        outcomes := outcomes || pgext.server_report((item ->> 'server')::bigint, 'poll_action',
          CASE WHEN act IS NULL
               THEN pg_catalog.jsonb_build_object('http_status', 404, 'error',
                      pg_catalog.jsonb_build_object('code', 'not_found', 'message', 'action not in the list'))
               ELSE pg_catalog.jsonb_build_object('http_status', $2, 'action', act) END,
          (item ->> 'claim')::bigint, $5);
      ELSE
        outcomes := outcomes || pgext.server_report((item ->> 'server')::bigint, 'poll_action', resp,
                                                    (item ->> 'claim')::bigint, $5);
      END IF;
    END LOOP;
    RETURN pg_catalog.array_to_string(outcomes, ',');
  ELSIF kind = 'page' THEN
    RETURN pgext.hetzner_reconcile_page($1, resp, $5);
  ELSE
    RETURN pgext.hetzner_orphan_deleted($1, resp, $5);
  END IF;
END
$$;

-- Keep an orphan (operators): it is never deleted; the reason is recorded.
-- True when it was not kept before.  An unknown id: P0002.
CREATE FUNCTION pgext.server_orphan_keep(hetzner_id bigint, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  o pgext.server_orphans;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'hetzner_id must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.length($2) > 1000 THEN
    RAISE EXCEPTION 'keeping an orphan needs a reason (1 to 1000 characters)' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''build box of the ops team''; it is kept in pgext.server_orphans.';
  END IF;
  SELECT * INTO o FROM pgext.server_orphans y WHERE y.hetzner_id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no orphan with Hetzner id %', $1 USING ERRCODE = 'P0002',
      HINT = 'List them with: SELECT * FROM pgext.server_orphans WHERE deleted_at IS NULL.';
  END IF;
  UPDATE pgext.server_orphans y
     SET kept_at = COALESCE(y.kept_at, pg_catalog.now()), kept_reason = $2, kept_by = pg_catalog.session_user(),
         delete_queued_at = NULL, next_attempt_at = NULL
   WHERE y.hetzner_id = $1;
  RETURN o.kept_at IS NULL;
END
$$;

REVOKE ALL ON pgext.api_calls, pgext.worker_lease, pgext.hetzner_cold, pgext.hetzner_reconcile_runs,
  pgext.hetzner_seen, pgext.server_orphans, pgext.alerts FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.alert_raise(text, text, jsonb, timestamptz),
  pgext.api_calls_retention(timestamptz),
  pgext.worker_begin(text, timestamptz),
  pgext.worker_heartbeat(bigint, timestamptz),
  pgext.hetzner_create_body(pgext.servers),
  pgext.hetzner_server_request(pgext.servers),
  pgext.hetzner_poll_request(jsonb),
  pgext.hetzner_claim(bigint, integer, text[], timestamptz),
  pgext.hetzner_shape_ok(jsonb, jsonb),
  pgext.hetzner_reconcile_page(jsonb, jsonb, timestamptz),
  pgext.hetzner_reconcile_finish(bigint, timestamptz),
  pgext.hetzner_reconcile_start(timestamptz),
  pgext.hetzner_orphan_deleted(jsonb, jsonb, timestamptz),
  pgext.hetzner_response(jsonb, integer, text, jsonb, timestamptz),
  pgext.server_orphan_keep(bigint, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.api_calls_retention(timestamptz),
  pgext.worker_begin(text, timestamptz),
  pgext.worker_heartbeat(bigint, timestamptz),
  pgext.hetzner_claim(bigint, integer, text[], timestamptz),
  pgext.hetzner_reconcile_start(timestamptz),
  pgext.hetzner_response(jsonb, integer, text, jsonb, timestamptz),
  pgext.server_orphan_keep(bigint, text)
  TO pgext_admin;
GRANT SELECT ON pgext.api_calls, pgext.worker_lease, pgext.hetzner_cold, pgext.hetzner_reconcile_runs,
  pgext.hetzner_seen, pgext.server_orphans, pgext.alerts TO pgext_admin;

-- State tables and identity sequences are kept by pg_dump (sql/backups.sql).
SELECT pg_catalog.pg_extension_config_dump('pgext.api_calls', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.api_calls', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.worker_lease', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.hetzner_cold', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.hetzner_reconcile_runs', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.hetzner_reconcile_runs', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.hetzner_seen', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.server_orphans', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.alerts', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.alerts', 'id'), '');
