------------------------------------------------------------------------------
-- Billing: Stripe prices, subscriptions, purchases, access; notices go to
-- pgext.outbox (outbox.sql)
-- (src/billing/; driven by webhook_apply, src/webhooks/)
------------------------------------------------------------------------------

-- Operator-maintained mapping from Stripe prices to what they buy.
--   subscription  invoice.paid allocates `credits` per billing period
--                 (credit_allocate, rollover_cap passed through)
--   lifetime      checkout (mode payment) grants lifetime access (+ credits if > 0)
--   credit_pack   checkout (mode payment) grants `credits` once
CREATE TABLE pgext.stripe_prices (
  price_id     text PRIMARY KEY,
  kind         text NOT NULL,
  credits      bigint NOT NULL DEFAULT 0,
  rollover_cap bigint,
  CONSTRAINT stripe_prices_id_valid CHECK (price_id ~ '^(price|plan)_[A-Za-z0-9_]+$'),
  CONSTRAINT stripe_prices_kind_valid CHECK (kind IN ('subscription', 'lifetime', 'credit_pack')),
  CONSTRAINT stripe_prices_credits_valid CHECK (credits >= 0 AND (kind <> 'credit_pack' OR credits > 0)),
  CONSTRAINT stripe_prices_cap_valid CHECK (rollover_cap IS NULL OR rollover_cap >= 0)
);

-- Subscription state as last reported by Stripe (newest event per subscription).
CREATE TABLE pgext.stripe_subscriptions (
  id                   text PRIMARY KEY,
  account_id           uuid NOT NULL REFERENCES pgext.accounts (id),
  customer_id          text,
  status               text,
  price_id             text,
  cancel_at_period_end boolean NOT NULL DEFAULT false,
  cancel_at            timestamptz,
  current_period_start timestamptz,
  current_period_end   timestamptz,
  ended_at             timestamptz,
  grace_until          timestamptz,
  grace_event_created  timestamptz,
  grace_expired_at     timestamptz,
  updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX stripe_subscriptions_account ON pgext.stripe_subscriptions (account_id);
CREATE INDEX stripe_subscriptions_customer ON pgext.stripe_subscriptions (customer_id);
CREATE INDEX stripe_subscriptions_grace ON pgext.stripe_subscriptions (grace_until)
  WHERE grace_until IS NOT NULL AND grace_expired_at IS NULL;

-- Access given by an operator without Stripe (demo, partner, support), until
-- a time, with a reason.  A grant is active while revoked_at IS NULL and
-- until > the time asked about (billing_access's `at`): it ends by itself.
-- ended_announced_at: when its 'access_grant_ended' outbox row was written
-- (by access_revoke, or by access_expire once until has passed), so the row
-- is written once.
CREATE TABLE pgext.access_grants (
  id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id         uuid NOT NULL REFERENCES pgext.accounts (id),
  until              timestamptz NOT NULL,
  reason             text NOT NULL,
  granted_by         text NOT NULL DEFAULT SESSION_USER,
  created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
  revoked_at         timestamptz,
  revoked_by         text,
  revoke_reason      text,
  ended_announced_at timestamptz,
  CONSTRAINT access_grants_reason_valid CHECK (pg_catalog.btrim(reason) <> ''),
  CONSTRAINT access_grants_revoked_valid
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL) AND (revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX access_grants_account ON pgext.access_grants (account_id, until);
CREATE INDEX access_grants_unannounced ON pgext.access_grants (until)
  WHERE ended_announced_at IS NULL;

-- One-time purchases (checkout sessions in mode payment).
CREATE TABLE pgext.stripe_purchases (
  checkout_session_id text PRIMARY KEY,
  account_id          uuid NOT NULL REFERENCES pgext.accounts (id),
  price_id            text NOT NULL,
  kind                text NOT NULL,
  credits             bigint NOT NULL DEFAULT 0,
  event_id            text NOT NULL,
  customer_id         text,
  created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX stripe_purchases_account ON pgext.stripe_purchases (account_id);
CREATE INDEX stripe_purchases_customer ON pgext.stripe_purchases (customer_id);

-- Newest event applied per Stripe object: an older event is 'superseded'.
-- Events of one second are ordered by rank (*.created 0, most 1,
-- *.deleted and invoice.paid 2), then id.
CREATE TABLE pgext.stripe_object_versions (
  object_id     text PRIMARY KEY,
  event_created timestamptz NOT NULL,
  event_rank    integer NOT NULL,
  event_id      text NOT NULL
);

-- Map a Stripe price to what it buys (upsert).
CREATE FUNCTION pgext.stripe_price_set(price_id text, kind text, credits bigint DEFAULT 0,
                                       rollover_cap bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL OR $1 !~ '^(price|plan)_[A-Za-z0-9_]+$' THEN
    RAISE EXCEPTION 'invalid Stripe price id %', pg_catalog.quote_nullable(pg_catalog.left($1, 64))
      USING ERRCODE = '22023', HINT = 'Stripe price ids look like ''price_...''.';
  END IF;
  IF $2 IS NULL OR $2 NOT IN ('subscription', 'lifetime', 'credit_pack') THEN
    RAISE EXCEPTION 'invalid price kind %', pg_catalog.quote_nullable(pg_catalog.left($2, 64))
      USING ERRCODE = '22023', HINT = 'Use ''subscription'', ''lifetime'' or ''credit_pack''.';
  END IF;
  IF $3 IS NULL OR $3 < 0 OR ($2 = 'credit_pack' AND $3 = 0) THEN
    RAISE EXCEPTION 'invalid credits % for a % price', pg_catalog.quote_nullable($3), $2
      USING ERRCODE = '22023', HINT = 'credits must be >= 0, and > 0 for a credit pack.';
  END IF;
  IF $4 < 0 THEN
    RAISE EXCEPTION 'rollover_cap must be zero or positive' USING ERRCODE = '22023';
  END IF;
  INSERT INTO pgext.stripe_prices AS p (price_id, kind, credits, rollover_cap)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT ON CONSTRAINT stripe_prices_pkey DO UPDATE
    SET kind = EXCLUDED.kind, credits = EXCLUDED.credits, rollover_cap = EXCLUDED.rollover_cap;
END
$$;

-- Remove a price mapping; purchases already recorded stay.
CREATE FUNCTION pgext.stripe_price_remove(price_id text) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  WITH d AS (DELETE FROM pgext.stripe_prices p WHERE p.price_id = $1 RETURNING 1)
  SELECT pg_catalog.count(*) > 0 FROM d
$$;

-- An account's access at `at`: lifetime, active, trialing, canceling (until
-- period end or cancel_at), granted (an operator's access grant, until its
-- end), grace (payment failed, until grace_until) or none.  The first that
-- applies wins, in that order:
--   lifetime first: it never ends and never depends on a subscription;
--   then what Stripe says the customer pays for (active, trialing,
--     canceling), so the app sees the subscription it bills (and its id);
--   then granted: an operator's explicit decision, so it outranks grace (a
--     failed payment covered by a grant is not shown as a warning; if the
--     grant ends first, grace shows again for the rest of it);
--   then grace, the only kind that warns; none last.
-- Within one kind the latest until wins.  Time-based ends (period end,
-- cancel_at, grace_until, a grant's until) are compared with `at`; other
-- facts (status, a revocation) are the rows as they are now.
CREATE FUNCTION pgext.billing_access(account uuid, at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (access text, until timestamptz, subscription_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_check($1);
  SELECT a.access, a.until, a.sub FROM (
    SELECT 'lifetime'::pg_catalog.text AS access, NULL::pg_catalog.timestamptz AS until,
           NULL::pg_catalog.text AS sub, 0 AS rank
      FROM pgext.stripe_purchases p WHERE p.account_id = $1 AND p.kind = 'lifetime'
    UNION ALL
    SELECT CASE WHEN NOT x.active THEN 'grace'
                WHEN x.ends IS NOT NULL THEN 'canceling'
                ELSE s.status END,
           CASE WHEN x.active THEN COALESCE(x.ends, s.current_period_end) ELSE s.grace_until END,
           s.id,
           CASE WHEN x.active THEN 1 ELSE 3 END
      FROM pgext.stripe_subscriptions s
     CROSS JOIN LATERAL (
       SELECT s.status IN ('active', 'trialing') AS active,
              -- a scheduled end: at period end, or at cancel_at (newer API versions)
              LEAST(CASE WHEN s.cancel_at_period_end THEN s.current_period_end END, s.cancel_at) AS ends) x
     WHERE s.account_id = $1
       AND ((x.active AND (x.ends IS NULL OR x.ends > $2))
         OR (s.status IN ('past_due', 'unpaid') AND s.grace_until > $2))
    UNION ALL
    SELECT 'granted', g.until, NULL, 2
      FROM pgext.access_grants g
     WHERE g.account_id = $1 AND g.revoked_at IS NULL AND g.until > $2
    UNION ALL
    SELECT 'none', NULL, NULL, 4
  ) a ORDER BY a.rank, a.until DESC NULLS FIRST LIMIT 1
$$;

-- End grace periods that have run out: one 'grace_expired' outbox row per
-- subscription (none for lifetime accounts).  For the worker; returns the count.
CREATE FUNCTION pgext.billing_expire_grace(at timestamptz DEFAULT pg_catalog.now()) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n integer := 0;
  s record;
BEGIN
  FOR s IN SELECT * FROM pgext.stripe_subscriptions
            WHERE grace_until <= $1 AND grace_expired_at IS NULL
            ORDER BY grace_until, id FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE pgext.stripe_subscriptions SET grace_expired_at = $1, updated_at = pg_catalog.now()
     WHERE id = s.id;
    IF s.status IS DISTINCT FROM 'active' AND s.status IS DISTINCT FROM 'trialing'
       AND NOT EXISTS (SELECT FROM pgext.stripe_purchases p
                        WHERE p.account_id = s.account_id AND p.kind = 'lifetime') THEN
      INSERT INTO pgext.outbox (account_id, kind, subscription_id, until)
      VALUES (s.account_id, 'grace_expired', s.id, s.grace_until);
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- Give an account access without Stripe until `until`, with a reason; the
-- caller's session user is recorded as granted_by.  Every call records a new
-- grant (no idempotency key: a retried call makes a second grant, harmless
-- for access since the latest until counts; revoke the extra one).
-- Announced with an 'access_granted' outbox row.  Returns the grant id.
CREATE FUNCTION pgext.access_grant(account uuid, until timestamptz, reason text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  gid pg_catalog.int8;
BEGIN
  PERFORM pgext.account_scope_check($1);
  IF $1 IS NULL OR NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'PX001', HINT = 'Create it first with pgext.account_create().';
  END IF;
  IF $2 IS NULL OR $2 <= pg_catalog.now() THEN
    RAISE EXCEPTION 'an access grant must end in the future'
      USING ERRCODE = '22023', HINT = 'Pass until as a time after now(), e.g. now() + ''30 days''.';
  END IF;
  IF $2 > pg_catalog.now() + '10 years'::pg_catalog.interval THEN
    RAISE EXCEPTION 'an access grant may last at most 10 years'
      USING ERRCODE = '22023', HINT = 'Grant a shorter time (and renew it); sell a lifetime price for lasting access.';
  END IF;
  IF $3 IS NULL OR pg_catalog.btrim($3) = '' OR pg_catalog.length($3) > 1000 THEN
    RAISE EXCEPTION 'an access grant needs a reason (1 to 1000 characters)'
      USING ERRCODE = '22023', HINT = 'Say why, e.g. ''partner demo until the launch''.';
  END IF;
  INSERT INTO pgext.access_grants (account_id, until, reason)
  VALUES ($1, $2, $3) RETURNING id INTO gid;
  INSERT INTO pgext.outbox (account_id, kind, until, detail)
  VALUES ($1, 'access_granted', $2, 'grant ' || gid || ': ' || $3);
  RETURN gid;
END
$$;

-- Revoke an access grant now, with a reason (recorded with the session user).
-- True if it was active; false if it had already been revoked or had ended.
-- A revoked grant is announced as ended at once ('access_grant_ended').
CREATE FUNCTION pgext.access_revoke(grant_id bigint, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  g pgext.access_grants;
BEGIN
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.length($2) > 1000 THEN
    RAISE EXCEPTION 'revoking an access grant needs a reason (1 to 1000 characters)'
      USING ERRCODE = '22023', HINT = 'Say why, e.g. ''partner contract ended''.';
  END IF;
  SELECT * INTO g FROM pgext.access_grants WHERE id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'access grant % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'P0002',
            HINT = 'List an account''s grants with: SELECT * FROM pgext.access_grants WHERE account_id = ''<uuid>''.';
  END IF;
  PERFORM pgext.account_scope_check(g.account_id);
  -- nothing to end: revoked, ran out, or already announced as ended (by an
  -- access_expire that committed while this call waited for the row)
  IF g.revoked_at IS NOT NULL OR g.until <= pg_catalog.now() OR g.ended_announced_at IS NOT NULL THEN
    RETURN false;
  END IF;
  UPDATE pgext.access_grants
     SET revoked_at = pg_catalog.now(), revoked_by = SESSION_USER, revoke_reason = $2,
         ended_announced_at = pg_catalog.now()
   WHERE id = g.id;
  INSERT INTO pgext.outbox (account_id, kind, until, detail)
  VALUES (g.account_id, 'access_grant_ended', pg_catalog.now(), 'grant ' || g.id || ' revoked: ' || $2);
  RETURN true;
END
$$;

-- Announce access grants that ended by `at` (until passed): one
-- 'access_grant_ended' outbox row per grant, written once (revoked grants
-- were announced when revoked).  For the worker; returns the count.
CREATE FUNCTION pgext.access_expire(at timestamptz DEFAULT pg_catalog.now()) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n integer := 0;
  g record;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004', HINT = 'Omit it for now().';
  END IF;
  FOR g IN SELECT * FROM pgext.access_grants
            WHERE ended_announced_at IS NULL AND until <= $1
            ORDER BY until, id FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE pgext.access_grants SET ended_announced_at = $1 WHERE id = g.id;
    INSERT INTO pgext.outbox (account_id, kind, until, detail)
    VALUES (g.account_id, 'access_grant_ended', g.until, 'grant ' || g.id || ' ran out');
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- The desired state of an account's server from billing facts alone (the
-- policy; no table is read, so it can be tested over every combination):
--   access        billing_access's kind: lifetime, active, trialing,
--                 canceling, granted, grace or none
--   lapse         for access none, how access was lost: 'unpaid' (grace ran
--                 out unpaid) or 'ended' (canceled, expired, a grant ended);
--                 NULL = no billing on record
--   lapsed_at     when access was lost (NULL: unknown)
--   paused_since  when the server was paused (NULL: it is not)
--   at            the time to decide for
--   access_until  billing_access's until, only for the reason text
-- Any access → 'active' (a paused server resumes; even one paused past the
-- retention: a server is never deleted while it is paid for); grace →
-- 'active' with a warning.  No access: 'unpaid' → 'paused'; 'ended' →
-- 'paused' during pgext.server_delete_after from lapsed_at (a customer who
-- comes back keeps the server; paused, it runs no workload nobody pays
-- for), then 'deleting'; no record or no lapsed_at → 'paused' (deleting at
-- once would be irreversible and this only happens when access records
-- vanished, e.g. an operator removed them).  Without access, a server paused
-- for pgext.server_paused_retention → 'deleting' (Hetzner bills powered-off
-- servers).  Dates in reasons are UTC.
CREATE FUNCTION pgext.server_desired_state(access text, lapse text, lapsed_at timestamptz,
                                           paused_since timestamptz, at timestamptz,
                                           access_until timestamptz DEFAULT NULL)
RETURNS TABLE (desired_state text, reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  -- the windows as seconds (a '1d' interval would be a calendar day, 23 or
  -- 25 hours across a DST change in the session's time zone)
  delete_after pg_catalog.interval := pg_catalog.make_interval(secs => pg_catalog.date_part('epoch',
    COALESCE(pg_catalog.current_setting('pgext.server_delete_after', true), '1d')::pg_catalog.interval));
  retention pg_catalog.interval := pg_catalog.make_interval(secs => pg_catalog.date_part('epoch',
    COALESCE(pg_catalog.current_setting('pgext.server_paused_retention', true), '14d')::pg_catalog.interval));
  d_until pg_catalog.text := pg_catalog.to_char($6 AT TIME ZONE 'UTC', 'YYYY-MM-DD');
  d_lapsed pg_catalog.text := pg_catalog.to_char($3 AT TIME ZONE 'UTC', 'YYYY-MM-DD');
  d_paused pg_catalog.text := pg_catalog.to_char($4 AT TIME ZONE 'UTC', 'YYYY-MM-DD');
  over_retention boolean := $4 + retention <= $5;
  -- the retention in words, whatever the session's IntervalStyle
  r_secs pg_catalog.int8 := pg_catalog.date_part('epoch', retention)::pg_catalog.int8;
  r_text pg_catalog.text := CASE WHEN r_secs % 86400 = 0 THEN (r_secs / 86400) || ' days'
                                 WHEN r_secs % 3600 = 0 THEN (r_secs / 3600) || ' hours'
                                 ELSE (r_secs / 60) || ' minutes' END;
BEGIN
  IF $5 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004', HINT = 'Pass the time to decide for, e.g. now().';
  END IF;
  IF $1 IS NULL OR $1 NOT IN ('lifetime', 'active', 'trialing', 'canceling', 'granted', 'grace', 'none') THEN
    RAISE EXCEPTION 'unknown access kind %', pg_catalog.quote_nullable(pg_catalog.left($1, 64))
      USING ERRCODE = '22023',
            HINT = 'Pass billing_access''s access: lifetime, active, trialing, canceling, granted, grace or none.';
  END IF;
  IF $2 IS NOT NULL AND $2 NOT IN ('unpaid', 'ended') THEN
    RAISE EXCEPTION 'unknown lapse %', pg_catalog.quote_nullable(pg_catalog.left($2, 64))
      USING ERRCODE = '22023', HINT = 'Pass ''unpaid'', ''ended'' or NULL (no billing on record).';
  END IF;

  desired_state := 'active';
  CASE $1
    WHEN 'lifetime' THEN reason := 'active: lifetime access';
    WHEN 'active' THEN reason := 'active: subscription active';
    WHEN 'trialing' THEN reason := 'active: trial' || COALESCE(' until ' || d_until, '');
    WHEN 'canceling' THEN reason := 'active: subscription canceled, access' || COALESCE(' until ' || d_until, '');
    WHEN 'granted' THEN reason := 'active: access granted by an operator' || COALESCE(' until ' || d_until, '');
    WHEN 'grace' THEN reason := 'grace: payment failed, access' || COALESCE(' until ' || d_until, '');
    ELSE desired_state := NULL;
  END CASE;
  IF desired_state IS NOT NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;

  -- no access
  IF over_retention THEN
    desired_state := 'deleting';
    reason := 'deleting: paused since ' || d_paused || ', longer than ' || r_text;
  ELSIF $2 = 'unpaid' THEN
    desired_state := 'paused';
    reason := 'paused: payment failed' || COALESCE(', grace ended on ' || d_lapsed, '');
  ELSIF $2 = 'ended' AND $3 IS NOT NULL AND $3 + delete_after <= $5 THEN
    desired_state := 'deleting';
    reason := 'deleting: access ended on ' || d_lapsed;
  ELSIF $2 = 'ended' AND $3 IS NOT NULL THEN
    desired_state := 'paused';
    reason := 'paused: access ended on ' || d_lapsed || ', deleting from '
              || pg_catalog.to_char(($3 + delete_after) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
  ELSE
    desired_state := 'paused';
    reason := 'paused: no billing access on record';
  END IF;
  RETURN NEXT;
END
$$;

-- The desired state of `account`'s server at `at`: gathers the facts
-- (billing_access; for access none, the most recent way access was lost)
-- and applies server_desired_state.  paused_since: when the server was
-- paused (NULL: it is not).  Lapses: a past_due/unpaid/incomplete
-- subscription whose grace ran out ('unpaid' at grace_until); a canceled
-- or incomplete_expired one, or one with ended_at, or an active one whose
-- scheduled end passed ('ended' at ended_at, else its scheduled end, else
-- period end); a grant that ran out or was revoked ('ended' at until or the
-- revocation).  The latest wins (on a tie, 'unpaid': pausing is the milder).
CREATE FUNCTION pgext.account_server_desired(account uuid, paused_since timestamptz DEFAULT NULL,
                                             at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (desired_state text, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  b record;
  l record;
BEGIN
  PERFORM pgext.account_scope_check($1);
  IF $1 IS NULL OR NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'PX001', HINT = 'Create it first with pgext.account_create().';
  END IF;
  IF $3 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004', HINT = 'Omit it for now().';
  END IF;
  SELECT * INTO b FROM pgext.billing_access($1, $3);
  IF b.access <> 'none' THEN
    RETURN QUERY SELECT * FROM pgext.server_desired_state(b.access, NULL, NULL, $2, $3, b.until);
    RETURN;
  END IF;
  SELECT x.lapse, x.lapsed_at INTO l FROM (
    SELECT CASE WHEN s.status IN ('canceled', 'incomplete_expired') OR s.ended_at IS NOT NULL
                  OR s.status IN ('active', 'trialing') THEN 'ended'
                ELSE 'unpaid' END AS lapse,
           CASE WHEN s.status IN ('canceled', 'incomplete_expired') OR s.ended_at IS NOT NULL
                  THEN COALESCE(s.ended_at, s.current_period_end, s.cancel_at)
                WHEN s.status IN ('active', 'trialing')
                  THEN LEAST(CASE WHEN s.cancel_at_period_end THEN s.current_period_end END, s.cancel_at)
                ELSE COALESCE(s.grace_until, s.updated_at) END AS lapsed_at
      FROM pgext.stripe_subscriptions s
     WHERE s.account_id = $1
       -- no grace period and incomplete (or only a stub): it never gave access
       AND NOT (s.grace_until IS NULL AND (s.status IS NULL OR s.status = 'incomplete'))
    UNION ALL
    SELECT 'ended', LEAST(g.until, g.revoked_at)
      FROM pgext.access_grants g
     WHERE g.account_id = $1 AND (g.revoked_at IS NOT NULL OR g.until <= $3)
  ) x ORDER BY x.lapsed_at DESC NULLS LAST, x.lapse = 'unpaid' DESC LIMIT 1;
  RETURN QUERY SELECT * FROM pgext.server_desired_state('none', COALESCE(l.lapse, 'ended'),
                                                        l.lapsed_at, $2, $3);
END
$$;

REVOKE ALL ON pgext.stripe_prices, pgext.stripe_subscriptions, pgext.stripe_purchases,
  pgext.stripe_object_versions, pgext.access_grants FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.stripe_price_set(text, text, bigint, bigint),
  pgext.stripe_price_remove(text),
  pgext.billing_access(uuid, timestamptz),
  pgext.billing_expire_grace(timestamptz),
  pgext.access_grant(uuid, timestamptz, text),
  pgext.access_revoke(bigint, text),
  pgext.access_expire(timestamptz),
  pgext.server_desired_state(text, text, timestamptz, timestamptz, timestamptz, timestamptz),
  pgext.account_server_desired(uuid, timestamptz, timestamptz)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.billing_access(uuid, timestamptz),
  pgext.server_desired_state(text, text, timestamptz, timestamptz, timestamptz, timestamptz)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.stripe_price_set(text, text, bigint, bigint),
  pgext.stripe_price_remove(text),
  pgext.billing_expire_grace(timestamptz),
  pgext.access_grant(uuid, timestamptz, text),
  pgext.access_revoke(bigint, text),
  pgext.access_expire(timestamptz),
  pgext.account_server_desired(uuid, timestamptz, timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.stripe_prices, pgext.stripe_subscriptions, pgext.stripe_purchases,
  pgext.stripe_object_versions, pgext.access_grants
  TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_prices', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_purchases', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_object_versions', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.access_grants', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.access_grants', 'id'), '');
