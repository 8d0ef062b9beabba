------------------------------------------------------------------------------
-- Credits (src/credits/)
------------------------------------------------------------------------------

-- Credits that are tracked one grant at a time: grants with an expiry and
-- plan allocations (whose leftovers a later allocation may cap).
CREATE TABLE pgext.credit_lots (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id   uuid NOT NULL REFERENCES pgext.accounts (id),
  kind         text NOT NULL,
  amount       bigint NOT NULL,
  remaining    bigint NOT NULL,
  expires_at   timestamptz,
  period_key   text,
  rollover_cap bigint,
  created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT credit_lots_amount_positive CHECK (amount > 0),
  CONSTRAINT credit_lots_remaining_valid CHECK (remaining >= 0 AND remaining <= amount),
  CONSTRAINT credit_lots_period_unique UNIQUE (account_id, period_key)
);
-- Spending order: soonest expiry first, then oldest first.
CREATE INDEX credit_lots_spend_order ON pgext.credit_lots (account_id, expires_at, id)
  WHERE remaining > 0;
CREATE INDEX credit_lots_expiry ON pgext.credit_lots (expires_at)
  WHERE remaining > 0 AND expires_at IS NOT NULL;

-- A hold on credits: committed (fully or partly) or released, or released by
-- credit_sweep once its ttl has passed (status 'expired').
CREATE TABLE pgext.credit_reservations (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL REFERENCES pgext.accounts (id),
  amount          bigint NOT NULL,
  held            bigint NOT NULL,
  committed       bigint,
  status          text NOT NULL DEFAULT 'held',
  idempotency_key text NOT NULL,
  ttl             interval NOT NULL,
  expires_at      timestamptz NOT NULL,
  pool_part       bigint NOT NULL DEFAULT 0,
  lot_ids         bigint[] NOT NULL DEFAULT '{}',
  lot_parts       bigint[] NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  settled_at      timestamptz,
  CONSTRAINT credit_reservations_amount_positive CHECK (amount > 0),
  CONSTRAINT credit_reservations_held_valid CHECK (held >= 0 AND held <= amount),
  CONSTRAINT credit_reservations_status_valid
    CHECK (status IN ('held', 'committed', 'released', 'expired')),
  CONSTRAINT credit_reservations_committed_valid
    CHECK (committed IS NULL OR (committed > 0 AND committed <= amount)),
  CONSTRAINT credit_reservations_key_unique UNIQUE (account_id, idempotency_key)
);
CREATE INDEX credit_reservations_expiry ON pgext.credit_reservations (expires_at)
  WHERE status = 'held';

-- The append-only ledger: one row per change, balance_after is accounts.balance
-- right after it.  No foreign keys and no CHECKs: only pgext's functions write
-- here, always holding the account's row lock, with op a literal of the code
-- and balance_after read back from accounts (whose CHECK (balance >= 0) is
-- the last line of defence); a key check or a CHECK per row would sit on the
-- hottest path (issue 14).  credit_verify() checks both off it.
CREATE TABLE pgext.credit_ledger (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL,
  op              text NOT NULL,
  kind            text,
  amount          bigint NOT NULL,
  delta           bigint NOT NULL,
  balance_after   bigint NOT NULL,
  idempotency_key text,
  reason          text,
  lot_id          bigint,
  reservation_id  bigint,
  expires_at      timestamptz,
  lot_ids         bigint[],
  lot_parts       bigint[],
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT credit_ledger_key_unique UNIQUE (account_id, idempotency_key)
);
CREATE INDEX credit_ledger_account ON pgext.credit_ledger (account_id, id);

-- The one sanctioned change: pgext.account_forget strips the caller-chosen
-- strings of a forgotten account's rows (reason dropped, idempotency key
-- replaced by pgext.forget_hash), every other column unchanged.
CREATE FUNCTION pgext.credit_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND EXISTS (SELECT FROM pgext.account_forgets f WHERE f.account_id = OLD.account_id)
     AND NEW.reason IS NULL
     AND NEW.idempotency_key IS NOT DISTINCT FROM pgext.forget_hash(OLD.idempotency_key)
     AND (NEW.id, NEW.account_id, NEW.op, NEW.kind, NEW.amount, NEW.delta, NEW.balance_after,
          NEW.lot_id, NEW.reservation_id, NEW.expires_at, NEW.lot_ids, NEW.lot_parts, NEW.created_at)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.account_id, OLD.op, OLD.kind, OLD.amount, OLD.delta, OLD.balance_after,
          OLD.lot_id, OLD.reservation_id, OLD.expires_at, OLD.lot_ids, OLD.lot_parts, OLD.created_at) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'pgext.credit_ledger is append-only: % is not allowed', TG_OP
    USING ERRCODE = '42501',
          HINT = 'Correct a mistake with a new entry (credit_grant or credit_deduct), never by editing history.';
END
$$;
CREATE TRIGGER credit_ledger_no_update_delete BEFORE UPDATE OR DELETE ON pgext.credit_ledger
  FOR EACH ROW EXECUTE FUNCTION pgext.credit_ledger_append_only();
CREATE TRIGGER credit_ledger_no_truncate BEFORE TRUNCATE ON pgext.credit_ledger
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.credit_ledger_append_only();

CREATE TYPE pgext.credit_result AS (ok boolean, status text, balance bigint, id bigint);

CREATE FUNCTION pgext.credit_grant(account uuid, amount bigint, idempotency_key text,
                                   kind text DEFAULT 'bonus', expires_at timestamptz DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_grant'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- The hot path (issue 14): declared without SET search_path, the function
-- pins pg_catalog, pgext (temporary schema not searched) in C instead.
CREATE FUNCTION pgext.credit_deduct(account uuid, amount bigint, idempotency_key text DEFAULT NULL,
                                    reason text DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_deduct'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION pgext.credit_reserve(account uuid, amount bigint, idempotency_key text,
                                     ttl interval DEFAULT '15 minutes')
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_reserve'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_commit(reservation bigint, amount bigint DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_commit'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_release(reservation bigint)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_release'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_allocate(account uuid, amount bigint, period_key text,
                                      rollover_cap bigint DEFAULT NULL,
                                      expires_at timestamptz DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_allocate'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_balance(account uuid)
RETURNS bigint AS 'MODULE_PATHNAME', 'credit_balance'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_sweep(batch integer DEFAULT 1000,
                                   OUT expired_lots integer, OUT expired_reservations integer)
AS 'MODULE_PATHNAME', 'credit_sweep'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- Accounts whose balance disagrees with the sum of their ledger; empty when all is well.
CREATE FUNCTION pgext.credit_audit(account uuid DEFAULT NULL)
RETURNS TABLE (account uuid, balance bigint, ledger_sum bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_check($1);
  SELECT a.id, a.balance, COALESCE(l.total, 0)::bigint
    FROM pgext.accounts a
    LEFT JOIN (SELECT account_id, sum(delta) AS total
                 FROM pgext.credit_ledger
                WHERE $1 IS NULL OR account_id = $1
                GROUP BY account_id) l ON l.account_id = a.id
   WHERE ($1 IS NULL OR a.id = $1)
     AND a.balance IS DISTINCT FROM COALESCE(l.total, 0)
$$;

-- Deeper invariants than credit_audit: every row names an account and a broken rule.
CREATE FUNCTION pgext.credit_verify()
RETURNS TABLE (account uuid, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_platform('credit_verify');
  SELECT a.id, 'lot_credits ' || a.lot_credits || ' <> sum of lot remaining ' || COALESCE(s.total, 0)
    FROM pgext.accounts a
    LEFT JOIN (SELECT account_id, sum(remaining) AS total FROM pgext.credit_lots GROUP BY 1) s
           ON s.account_id = a.id
   WHERE a.lot_credits <> COALESCE(s.total, 0)
  UNION ALL
  SELECT a.id, 'lot_credits ' || a.lot_credits || ' outside 0 .. balance ' || a.balance
    FROM pgext.accounts a
   WHERE a.lot_credits < 0 OR a.lot_credits > a.balance
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' balance_after ' || l.balance_after
         || ' <> running sum ' || l.running
    FROM (SELECT id, account_id, balance_after,
                 sum(delta) OVER (PARTITION BY account_id ORDER BY id) AS running
            FROM pgext.credit_ledger) l
   WHERE l.balance_after <> l.running
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' has an unknown op ' || pg_catalog.quote_literal(l.op)
    FROM pgext.credit_ledger l
   WHERE l.op NOT IN ('grant', 'allocate', 'deduct', 'reserve', 'commit', 'release', 'expire', 'forfeit')
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' has a negative balance_after ' || l.balance_after
    FROM pgext.credit_ledger l
   WHERE l.balance_after < 0
  UNION ALL
  SELECT r.account_id, 'reservation ' || r.id || ' parts do not add up to held ' || r.held
    FROM pgext.credit_reservations r
   WHERE r.status = 'held'
     AND r.held <> r.pool_part + COALESCE((SELECT sum(p) FROM unnest(r.lot_parts) p), 0)
$$;

REVOKE ALL ON pgext.credit_lots, pgext.credit_reservations, pgext.credit_ledger FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.credit_ledger_append_only(),
  pgext.credit_grant(uuid, bigint, text, text, timestamptz),
  pgext.credit_deduct(uuid, bigint, text, text),
  pgext.credit_reserve(uuid, bigint, text, interval),
  pgext.credit_commit(bigint, bigint),
  pgext.credit_release(bigint),
  pgext.credit_allocate(uuid, bigint, text, bigint, timestamptz),
  pgext.credit_balance(uuid),
  pgext.credit_sweep(integer),
  pgext.credit_audit(uuid),
  pgext.credit_verify()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.credit_grant(uuid, bigint, text, text, timestamptz),
  pgext.credit_deduct(uuid, bigint, text, text),
  pgext.credit_reserve(uuid, bigint, text, interval),
  pgext.credit_commit(bigint, bigint),
  pgext.credit_release(bigint),
  pgext.credit_allocate(uuid, bigint, text, bigint, timestamptz),
  pgext.credit_balance(uuid)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.credit_sweep(integer),
  pgext.credit_audit(uuid),
  pgext.credit_verify()
  TO pgext_admin;
GRANT SELECT ON pgext.credit_lots, pgext.credit_reservations, pgext.credit_ledger TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.credit_lots', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.credit_reservations', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.credit_ledger', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.credit_lots', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.credit_reservations', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.credit_ledger', 'id'), '');
