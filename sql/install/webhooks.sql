------------------------------------------------------------------------------
-- Webhooks (src/webhooks/)
------------------------------------------------------------------------------

-- Intake: webhook_ingest verifies and records a delivery (the dedup record);
-- webhook_apply applies recorded Stripe events to billing state later, in
-- event order per Stripe object, retrying failures and parking dead letters.

CREATE TYPE pgext.webhook_result AS (status text, event_id text);

-- Generic HMAC sources (n8n, messaging providers, ...).  'stripe' is built in.
--   layout 'plain'        signature argument is <prefix><sig>, HMAC over the body
--   layout 'timestamped'  signature argument is t=<unix>,<scheme>=<sig>[,...],
--                         HMAC over "<t>.<body>", timestamp within tolerance
-- The secret is read from the secret store under secret_name (and
-- secret_name || ':previous' during a rotation).
CREATE TABLE pgext.webhook_sources (
  name        text PRIMARY KEY,
  secret_name text NOT NULL,
  layout      text NOT NULL DEFAULT 'plain',
  prefix      text NOT NULL DEFAULT '',
  scheme      text NOT NULL DEFAULT 'v1',
  encoding    text NOT NULL DEFAULT 'hex',
  algorithm   text NOT NULL DEFAULT 'sha256',
  tolerance   interval,
  id_key      text NOT NULL DEFAULT 'id',
  type_key    text NOT NULL DEFAULT 'type',
  created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT webhook_sources_name_valid CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$' AND name <> 'stripe'),
  CONSTRAINT webhook_sources_secret_name_valid CHECK (secret_name <> ''),
  CONSTRAINT webhook_sources_layout_valid CHECK (layout IN ('plain', 'timestamped')),
  CONSTRAINT webhook_sources_scheme_valid CHECK (scheme ~ '^[A-Za-z0-9_-]{1,32}$' AND scheme <> 't'),
  CONSTRAINT webhook_sources_encoding_valid CHECK (encoding IN ('hex', 'base64')),
  CONSTRAINT webhook_sources_algorithm_valid CHECK (algorithm IN ('sha256', 'sha512', 'sha1')),
  CONSTRAINT webhook_sources_tolerance_valid
    CHECK (tolerance IS NULL OR (tolerance >= '1 second' AND tolerance <= '1 day')),
  CONSTRAINT webhook_sources_timestamp_layout
    CHECK (layout = 'timestamped' OR tolerance IS NULL)
);

-- One row per (source, event id): the dedup record.  Stripe events go
-- pending -> applied | superseded | ignored, or (after retries) dead;
-- other sources' events are 'received' until an app claims them.
-- payload holds only what processing needs (src/webhooks/payload.c) and is
-- dropped by webhook_retention; the row itself outlives Stripe's retries.
CREATE TABLE pgext.webhook_events (
  source          text NOT NULL,
  event_id        text NOT NULL,
  type            text NOT NULL,
  object_id       text,
  created         timestamptz NOT NULL,
  livemode        boolean,
  payload         jsonb,
  received_at     timestamptz NOT NULL,
  status          text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
  last_error      text,
  applied_at      timestamptz,
  fetched_run     bigint,
  PRIMARY KEY (source, event_id)
);
-- fetched_run: NULL for a delivery whose signature was verified; else the
-- pgext.stripe_sync_runs 'events' run that fetched the event from Stripe's
-- GET /v1/events (over TLS with our key: fetched, not signed).
-- status is one of pending, applied, superseded, ignored, dead, received,
-- claimed.  Only pgext's functions write it; no CHECK constraint, because the
-- executor re-reads a CHECK expression on every insert of the ingest hot path.
CREATE INDEX webhook_events_pending ON pgext.webhook_events (created, event_id)
  WHERE status = 'pending';
CREATE INDEX webhook_events_received ON pgext.webhook_events (source, received_at)
  WHERE status = 'received';

-- Rejected deliveries, for alerting on spikes: no payload, no signature, no secret.
CREATE TABLE pgext.webhook_rejections (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source      text NOT NULL,
  reason      text NOT NULL,
  detail      text,
  received_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX webhook_rejections_time ON pgext.webhook_rejections (received_at);

-- The hot path pins its search path in C instead of with SET search_path
-- (src/webhooks/intake.c, PinSearchPath: pg_catalog, then pgext, no pg_temp,
-- for everything the call runs; a GUC save/parse/restore per call costs
-- more).  sql/security.sql replays the search_path attacks against it.
CREATE FUNCTION pgext.webhook_ingest(source text, payload text, signature text,
                                     received_at timestamptz DEFAULT pg_catalog.now())
RETURNS pgext.webhook_result AS 'MODULE_PATHNAME', 'webhook_ingest'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION pgext.webhook_apply("limit" integer DEFAULT 100,
                                    OUT applied integer, OUT superseded integer,
                                    OUT ignored integer, OUT failed integer, OUT dead integer)
AS 'MODULE_PATHNAME', 'webhook_apply'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- Put a dead letter back in the queue, or make a pending event that is
-- backing off due now; attempts reset.  False for settled events.
CREATE FUNCTION pgext.webhook_replay(source text, event_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  st pg_catalog.text;
BEGIN
  SELECT e.status INTO st FROM pgext.webhook_events e
   WHERE e.source = $1 AND e.event_id = $2 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'webhook event %/% does not exist', pg_catalog.left($1, 64), pg_catalog.left($2, 64)
      USING ERRCODE = 'P0002', HINT = 'List dead letters with: SELECT * FROM pgext.webhook_events WHERE status = ''dead''.';
  END IF;
  IF st NOT IN ('dead', 'pending') THEN
    RETURN false;
  END IF;
  IF $1 <> 'stripe' THEN
    RAISE EXCEPTION 'only Stripe events are applied and replayed' USING ERRCODE = '22023';
  END IF;
  UPDATE pgext.webhook_events e
     SET status = 'pending', attempts = 0, next_attempt_at = '-infinity', last_error = NULL
   WHERE e.source = $1 AND e.event_id = $2;
  RETURN true;
END
$$;

-- Replay every dead letter of a source; returns how many were requeued.
CREATE FUNCTION pgext.webhook_replay_dead(source text DEFAULT 'stripe') RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  WITH r AS (
    UPDATE pgext.webhook_events e
       SET status = 'pending', attempts = 0, next_attempt_at = '-infinity', last_error = NULL
     WHERE e.source = $1 AND e.status = 'dead' AND e.source = 'stripe'
    RETURNING 1)
  SELECT pg_catalog.count(*)::integer FROM r
$$;

-- Rejections per source and reason since a moment (for spike alerts).
CREATE FUNCTION pgext.webhook_rejection_counts(since interval DEFAULT '1 hour')
RETURNS TABLE (source text, reason text, rejections bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT r.source, r.reason, pg_catalog.count(*)
    FROM pgext.webhook_rejections r
   WHERE r.received_at >= pg_catalog.now() - $1
   GROUP BY 1, 2 ORDER BY 1, 2
$$;

-- Retention: drop payloads of settled events older than
-- pgext.webhook_payload_retention; forget event ids and rejections older than
-- pgext.webhook_dedup_retention (>= 4 days, past Stripe's 3-day retries).
-- Pending, dead and unclaimed events keep their payload: they still need it.
CREATE FUNCTION pgext.webhook_retention(at timestamptz DEFAULT pg_catalog.now(),
                                        OUT payloads_dropped bigint, OUT events_forgotten bigint,
                                        OUT rejections_forgotten bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  payload_age interval := pg_catalog.current_setting('pgext.webhook_payload_retention')::interval;
  dedup_age interval := pg_catalog.current_setting('pgext.webhook_dedup_retention')::interval;
BEGIN
  UPDATE pgext.webhook_events
     SET payload = NULL
   WHERE payload IS NOT NULL AND received_at < $1 - payload_age
     AND status IN ('applied', 'superseded', 'ignored', 'claimed');
  GET DIAGNOSTICS payloads_dropped = ROW_COUNT;
  DELETE FROM pgext.webhook_events
   WHERE received_at < $1 - dedup_age
     AND status IN ('applied', 'superseded', 'ignored', 'claimed');
  GET DIAGNOSTICS events_forgotten = ROW_COUNT;
  DELETE FROM pgext.webhook_rejections WHERE received_at < $1 - dedup_age;
  GET DIAGNOSTICS rejections_forgotten = ROW_COUNT;
END
$$;

-- Configure a generic HMAC source (upsert).
CREATE FUNCTION pgext.webhook_source_set(name text, secret_name text, layout text DEFAULT 'plain',
                                         encoding text DEFAULT 'hex', prefix text DEFAULT '',
                                         scheme text DEFAULT 'v1', tolerance interval DEFAULT NULL,
                                         algorithm text DEFAULT 'sha256',
                                         id_key text DEFAULT 'id', type_key text DEFAULT 'type')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL OR $1 !~ '^[a-z][a-z0-9_]{0,62}$' OR $1 = 'stripe' THEN
    RAISE EXCEPTION 'invalid webhook source name %', pg_catalog.quote_nullable(pg_catalog.left($1, 64))
      USING ERRCODE = '22023', HINT = 'Use 1 to 63 characters of a-z, 0-9 and _, starting with a letter; ''stripe'' is built in.';
  END IF;
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.octet_length($2) > 255 OR $2 ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'secret_name must be a secret name (1 to 255 bytes, no control characters)'
      USING ERRCODE = '22023', HINT = 'Name the secret-store entry holding the signing secret, e.g. ''webhook:n8n''.';
  END IF;
  IF pg_catalog.length($5) > 64 OR $5 ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'prefix must be at most 64 characters, without control characters'
      USING ERRCODE = '22023', HINT = 'The text before the signature, e.g. ''sha256=''; '''' for none.';
  END IF;
  IF pg_catalog.btrim($9) = '' OR pg_catalog.length($9) > 255 OR $9 ~ '[[:cntrl:]]'
     OR pg_catalog.btrim($10) = '' OR pg_catalog.length($10) > 255 OR $10 ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id_key and type_key must be JSON keys of 1 to 255 characters, without control characters'
      USING ERRCODE = '22023', HINT = 'Name the payload''s top-level keys, e.g. ''id'' and ''type'' (NULL: these defaults).';
  END IF;
  IF $3 IS NULL OR $3 NOT IN ('plain', 'timestamped') THEN
    RAISE EXCEPTION 'invalid layout %', pg_catalog.quote_nullable(pg_catalog.left($3, 64))
      USING ERRCODE = '22023', HINT = 'Use ''plain'' (<prefix><sig>) or ''timestamped'' (t=<unix>,<scheme>=<sig>).';
  END IF;
  IF $4 IS NULL OR $4 NOT IN ('hex', 'base64') THEN
    RAISE EXCEPTION 'invalid encoding %', pg_catalog.quote_nullable(pg_catalog.left($4, 64))
      USING ERRCODE = '22023', HINT = 'Use ''hex'' or ''base64''.';
  END IF;
  IF $8 IS NULL OR $8 NOT IN ('sha256', 'sha512', 'sha1') THEN
    RAISE EXCEPTION 'invalid algorithm %', pg_catalog.quote_nullable(pg_catalog.left($8, 64))
      USING ERRCODE = '22023', HINT = 'Use ''sha256'', ''sha512'' or ''sha1''.';
  END IF;
  IF $7 IS NOT NULL AND $3 <> 'timestamped' THEN
    RAISE EXCEPTION 'a tolerance needs the ''timestamped'' layout'
      USING ERRCODE = '22023', HINT = 'Only timestamped signatures carry a time to check.';
  END IF;
  IF $6 IS NOT NULL AND ($6 !~ '^[A-Za-z0-9_-]{1,32}$' OR $6 = 't') THEN
    RAISE EXCEPTION 'invalid scheme %', pg_catalog.quote_literal(pg_catalog.left($6, 64))
      USING ERRCODE = '22023', HINT = 'Use 1 to 32 characters of A-Z, a-z, 0-9, _ and - (not ''t''), e.g. ''v1''.';
  END IF;
  IF $7 < interval '1 second' OR $7 > interval '1 day' THEN
    RAISE EXCEPTION 'tolerance must be between 1 second and 1 day, not %', $7
      USING ERRCODE = '22023', HINT = 'NULL uses pgext.webhook_tolerance.';
  END IF;
  INSERT INTO pgext.webhook_sources AS s (name, secret_name, layout, encoding, prefix, scheme,
                                          tolerance, algorithm, id_key, type_key)
  VALUES ($1, $2, $3, $4, COALESCE($5, ''), COALESCE($6, 'v1'), $7, $8,
          COALESCE($9, 'id'), COALESCE($10, 'type'))
  ON CONFLICT ON CONSTRAINT webhook_sources_pkey DO UPDATE
    SET secret_name = EXCLUDED.secret_name, layout = EXCLUDED.layout, encoding = EXCLUDED.encoding,
        prefix = EXCLUDED.prefix, scheme = EXCLUDED.scheme, tolerance = EXCLUDED.tolerance,
        algorithm = EXCLUDED.algorithm, id_key = EXCLUDED.id_key, type_key = EXCLUDED.type_key;
END
$$;

-- Remove a generic source; its recorded events stay.
CREATE FUNCTION pgext.webhook_source_remove(name text) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  WITH d AS (DELETE FROM pgext.webhook_sources s WHERE s.name = $1 RETURNING 1)
  SELECT pg_catalog.count(*) > 0 FROM d
$$;

-- Hand a generic source's received events to the app, oldest first, once:
-- they become 'claimed' when the caller's transaction commits.
CREATE FUNCTION pgext.webhook_claim(source text, "limit" integer DEFAULT 100)
RETURNS TABLE (event_id text, type text, payload jsonb, received_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_platform('webhook_claim');
  WITH c AS (
    SELECT e.source, e.event_id FROM pgext.webhook_events e
     WHERE e.source = $1 AND e.status = 'received'
     ORDER BY e.received_at, e.event_id
     LIMIT $2 FOR UPDATE SKIP LOCKED)
  UPDATE pgext.webhook_events e SET status = 'claimed', applied_at = pg_catalog.now()
    FROM c WHERE e.source = c.source AND e.event_id = c.event_id
  RETURNING e.event_id, e.type, e.payload, e.received_at
$$;

REVOKE ALL ON pgext.webhook_sources, pgext.webhook_events, pgext.webhook_rejections FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.webhook_ingest(text, text, text, timestamptz),
  pgext.webhook_apply(integer),
  pgext.webhook_replay(text, text),
  pgext.webhook_replay_dead(text),
  pgext.webhook_rejection_counts(interval),
  pgext.webhook_retention(timestamptz),
  pgext.webhook_source_set(text, text, text, text, text, text, interval, text, text, text),
  pgext.webhook_source_remove(text),
  pgext.webhook_claim(text, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.webhook_ingest(text, text, text, timestamptz),
  pgext.webhook_apply(integer),
  pgext.webhook_claim(text, integer)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.webhook_replay(text, text),
  pgext.webhook_replay_dead(text),
  pgext.webhook_rejection_counts(interval),
  pgext.webhook_retention(timestamptz),
  pgext.webhook_source_set(text, text, text, text, text, text, interval, text, text, text),
  pgext.webhook_source_remove(text)
  TO pgext_admin;
GRANT SELECT ON pgext.webhook_sources, pgext.webhook_events, pgext.webhook_rejections
  TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.webhook_sources', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.webhook_rejections', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.webhook_rejections', 'id'), '');
