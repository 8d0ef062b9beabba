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
    RAISE EXCEPTION 'invalid Stripe price id %', pg_catalog.quote_nullable($1)
      USING ERRCODE = '22023', HINT = 'Stripe price ids look like ''price_...''.';
  END IF;
  IF $2 IS NULL OR $2 NOT IN ('subscription', 'lifetime', 'credit_pack') THEN
    RAISE EXCEPTION 'invalid price kind %', pg_catalog.quote_nullable($2)
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

-- An account's access right now: lifetime, active, trialing, canceling (until
-- period end or cancel_at), grace (payment failed, until grace_until) or none.
CREATE FUNCTION pgext.billing_access(account uuid, at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (access text, until timestamptz, subscription_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
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
           CASE WHEN x.active THEN 1 ELSE 2 END
      FROM pgext.stripe_subscriptions s
     CROSS JOIN LATERAL (
       SELECT s.status IN ('active', 'trialing') AS active,
              -- a scheduled end: at period end, or at cancel_at (newer API versions)
              LEAST(CASE WHEN s.cancel_at_period_end THEN s.current_period_end END, s.cancel_at) AS ends) x
     WHERE s.account_id = $1
       AND ((x.active AND (x.ends IS NULL OR x.ends > $2))
         OR (s.status IN ('past_due', 'unpaid') AND s.grace_until > $2))
    UNION ALL
    SELECT 'none', NULL, NULL, 3
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

REVOKE ALL ON pgext.stripe_prices, pgext.stripe_subscriptions, pgext.stripe_purchases,
  pgext.stripe_object_versions FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.stripe_price_set(text, text, bigint, bigint),
  pgext.stripe_price_remove(text),
  pgext.billing_access(uuid, timestamptz),
  pgext.billing_expire_grace(timestamptz)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.billing_access(uuid, timestamptz) TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.stripe_price_set(text, text, bigint, bigint),
  pgext.stripe_price_remove(text),
  pgext.billing_expire_grace(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.stripe_prices, pgext.stripe_subscriptions, pgext.stripe_purchases,
  pgext.stripe_object_versions
  TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_prices', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_purchases', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.stripe_object_versions', '');
