-- pgext 1.0 install script.  Sections: core, accounts and credits, secrets,
-- webhooks.  Every function that touches money or secrets is SECURITY DEFINER
-- with a pinned search_path; nothing is executable by PUBLIC.

\echo Use "CREATE EXTENSION pgext" to load this file. \quit

------------------------------------------------------------------------------
-- Core
------------------------------------------------------------------------------

-- Roles are cluster-wide and survive DROP EXTENSION; create them only once.
--   pgext_app    applications: accounts and credit calls
--   pgext_admin  operators: sweeps, audits, reading the tables
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgext_app') THEN
    CREATE ROLE pgext_app NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgext_admin') THEN
    CREATE ROLE pgext_admin NOLOGIN;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA pgext TO pgext_app, pgext_admin;

DO $$
BEGIN
  IF NOT ('pgext' = ANY (pg_catalog.string_to_array(pg_catalog.replace(
          pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))) THEN
    RAISE WARNING 'pgext is not in shared_preload_libraries'
      USING DETAIL = 'Credits work; secrets and the background worker will refuse to run.',
            HINT = 'Add pgext to shared_preload_libraries in postgresql.conf and restart the server.';
  END IF;
END
$$;

------------------------------------------------------------------------------
-- Accounts and credits (src/accounts.c, src/credits.c)
------------------------------------------------------------------------------

-- balance      every credit the account holds and has not spent, reserved,
--              expired (as recorded by credit_sweep) or forfeited; always the
--              sum of the ledger's deltas.
-- lot_credits  the part of balance held in credit_lots (expiring grants and
--              plan allocations); balance - lot_credits is the non-expiring pool.
CREATE TABLE pgext.accounts (
  id                 uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
  external_id        text NOT NULL UNIQUE,
  credit_mode        text NOT NULL DEFAULT 'metered',
  stripe_customer_id text UNIQUE,
  balance            bigint NOT NULL DEFAULT 0,
  lot_credits        bigint NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT accounts_external_id_valid
    CHECK (external_id <> '' AND pg_catalog.length(external_id) <= 255),
  CONSTRAINT accounts_credit_mode_valid CHECK (credit_mode IN ('metered', 'unlimited')),
  CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0),
  CONSTRAINT accounts_lot_credits_within_balance CHECK (lot_credits >= 0 AND lot_credits <= balance)
);

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
-- right after it.  No foreign keys: only pgext's functions write here, always
-- holding the account's row lock, and a key check per row would sit on the
-- hottest path.
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
  CONSTRAINT credit_ledger_op_valid CHECK (op IN ('grant', 'allocate', 'deduct', 'reserve',
                                                  'commit', 'release', 'expire', 'forfeit')),
  CONSTRAINT credit_ledger_balance_nonnegative CHECK (balance_after >= 0),
  CONSTRAINT credit_ledger_key_unique UNIQUE (account_id, idempotency_key)
);
CREATE INDEX credit_ledger_account ON pgext.credit_ledger (account_id, id);

CREATE FUNCTION pgext.credit_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext AS $$
BEGIN
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

CREATE FUNCTION pgext.account_create(external_id text, credit_mode text DEFAULT 'metered')
RETURNS uuid AS 'MODULE_PATHNAME', 'account_create'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.account_set_credit_mode(account uuid, credit_mode text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_credit_mode'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.account_set_stripe_customer(account uuid, customer_id text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_stripe_customer'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_grant(account uuid, amount bigint, idempotency_key text,
                                   kind text DEFAULT 'bonus', expires_at timestamptz DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_grant'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_deduct(account uuid, amount bigint, idempotency_key text DEFAULT NULL,
                                    reason text DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_deduct'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_reserve(account uuid, amount bigint, idempotency_key text,
                                     ttl interval DEFAULT '15 minutes')
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_reserve'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_commit(reservation bigint, amount bigint DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_commit'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_release(reservation bigint)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_release'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_allocate(account uuid, amount bigint, period_key text,
                                      rollover_cap bigint DEFAULT NULL,
                                      expires_at timestamptz DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_allocate'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_balance(account uuid)
RETURNS bigint AS 'MODULE_PATHNAME', 'credit_balance'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.credit_sweep(batch integer DEFAULT 1000,
                                   OUT expired_lots integer, OUT expired_reservations integer)
AS 'MODULE_PATHNAME', 'credit_sweep'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

-- Accounts whose balance disagrees with the sum of their ledger; empty when all is well.
CREATE FUNCTION pgext.credit_audit(account uuid DEFAULT NULL)
RETURNS TABLE (account uuid, balance bigint, ledger_sum bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext AS $$
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
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext AS $$
  SELECT a.id, 'lot_credits ' || a.lot_credits || ' <> sum of lot remaining ' || COALESCE(s.total, 0)
    FROM pgext.accounts a
    LEFT JOIN (SELECT account_id, sum(remaining) AS total FROM pgext.credit_lots GROUP BY 1) s
           ON s.account_id = a.id
   WHERE a.lot_credits <> COALESCE(s.total, 0)
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' balance_after ' || l.balance_after
         || ' <> running sum ' || l.running
    FROM (SELECT id, account_id, balance_after,
                 sum(delta) OVER (PARTITION BY account_id ORDER BY id) AS running
            FROM pgext.credit_ledger) l
   WHERE l.balance_after <> l.running
  UNION ALL
  SELECT r.account_id, 'reservation ' || r.id || ' parts do not add up to held ' || r.held
    FROM pgext.credit_reservations r
   WHERE r.status = 'held'
     AND r.held <> r.pool_part + COALESCE((SELECT sum(p) FROM unnest(r.lot_parts) p), 0)
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA pgext FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgext FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.account_create(text, text),
  pgext.account_set_stripe_customer(uuid, text),
  pgext.credit_grant(uuid, bigint, text, text, timestamptz),
  pgext.credit_deduct(uuid, bigint, text, text),
  pgext.credit_reserve(uuid, bigint, text, interval),
  pgext.credit_commit(bigint, bigint),
  pgext.credit_release(bigint),
  pgext.credit_allocate(uuid, bigint, text, bigint, timestamptz),
  pgext.credit_balance(uuid)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.account_set_credit_mode(uuid, text),
  pgext.credit_sweep(integer),
  pgext.credit_audit(uuid),
  pgext.credit_verify()
  TO pgext_admin;
GRANT SELECT ON pgext.accounts, pgext.credit_lots, pgext.credit_reservations, pgext.credit_ledger
  TO pgext_admin;

------------------------------------------------------------------------------
-- Secrets (src/secrets.c, src/keyring.c)
------------------------------------------------------------------------------

-- Values are sealed with AES-256-GCM in C before any row is written; the
-- tables hold only ciphertext.  Master keys come from the postmaster-only
-- setting pgext.master_key_command and never enter the database.
--   pgext_secret_reader  may decrypt: secret_get, secret_masked
--   pgext_secret_writer  may store, mask and delete, but never read plaintext
--   pgext_admin          rotation (secret_rewrap), audit flush, key versions
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgext_secret_reader') THEN
    CREATE ROLE pgext_secret_reader NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgext_secret_writer') THEN
    CREATE ROLE pgext_secret_writer NOLOGIN;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA pgext TO pgext_secret_reader, pgext_secret_writer;

-- One row per (account, name); account_id NULL = a platform secret.
-- sealed = 0x01 || nonce || ciphertext || tag, bound (AAD) to id, account_id,
-- name, expires_at and key_version: see src/secret_box.h.  last4 is what a
-- mask may show: the last 4 characters of a value of 12 or more characters,
-- '' for shorter ones; masking therefore needs no key and no decrypt right.
CREATE TABLE pgext.secrets (
  id          uuid PRIMARY KEY,
  account_id  uuid REFERENCES pgext.accounts (id) ON DELETE CASCADE,
  name        text NOT NULL,
  key_version integer NOT NULL,
  sealed      bytea NOT NULL,
  expires_at  timestamptz,
  last4       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT secrets_name_valid CHECK (name <> '' AND pg_catalog.octet_length(name) <= 255),
  CONSTRAINT secrets_key_version_valid CHECK (key_version > 0),
  CONSTRAINT secrets_sealed_valid CHECK (pg_catalog.octet_length(sealed) > 29),
  CONSTRAINT secrets_name_unique UNIQUE NULLS NOT DISTINCT (account_id, name)
);
-- secret_rewrap finds rows under older key versions through this.
CREATE INDEX secrets_key_version ON pgext.secrets (key_version);

-- Batched use counts from shared memory (pgext.secret_audit_flush()).
-- op: set | get | masked | delete | rewrap | import | dropped (uses not
-- counted individually because pgext.secret_audit_slots was full).
CREATE TABLE pgext.secret_audit (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  flushed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  role_oid   oid,
  role_name  text,
  op         text NOT NULL,
  outcome    text NOT NULL,
  secret_id  uuid,
  account_id uuid,
  name       text,
  count      bigint NOT NULL,
  first_at   timestamptz NOT NULL,
  last_at    timestamptz NOT NULL,
  CONSTRAINT secret_audit_op_valid
    CHECK (op IN ('set', 'get', 'masked', 'delete', 'rewrap', 'import', 'dropped')),
  CONSTRAINT secret_audit_outcome_valid
    CHECK (outcome IN ('ok', 'not_found', 'expired', 'decrypt_failed', 'key_missing')),
  CONSTRAINT secret_audit_count_positive CHECK (count > 0)
);
CREATE INDEX secret_audit_secret ON pgext.secret_audit (secret_id, id);

CREATE FUNCTION pgext.secret_set(name text, value text, account uuid DEFAULT NULL,
                                 expires_at timestamptz DEFAULT NULL)
RETURNS uuid AS 'MODULE_PATHNAME', 'secret_set'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.secret_get(name text, account uuid DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'secret_get'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.secret_masked(name text, account uuid DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'secret_masked'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.secret_delete(name text, account uuid DEFAULT NULL)
RETURNS boolean AS 'MODULE_PATHNAME', 'secret_delete'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.secret_rewrap(batch integer DEFAULT 1000)
RETURNS integer AS 'MODULE_PATHNAME', 'secret_rewrap'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

-- Migration: a value encrypted with pgcrypto's pgp_sym_encrypt(value, passphrase).
CREATE FUNCTION pgext.secret_import_pgp(name text, ciphertext bytea, passphrase text,
                                        account uuid DEFAULT NULL,
                                        expires_at timestamptz DEFAULT NULL)
RETURNS uuid AS 'MODULE_PATHNAME', 'secret_import_pgp'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.secret_key_versions()
RETURNS integer[] AS 'MODULE_PATHNAME', 'secret_key_versions'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext;

CREATE FUNCTION pgext.secret_audit_flush()
RETURNS integer AS 'MODULE_PATHNAME', 'secret_audit_flush'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

-- Counters not yet flushed to pgext.secret_audit (shared memory).
CREATE FUNCTION pgext.secret_audit_pending()
RETURNS TABLE (role_name text, op text, outcome text, secret_id uuid, account_id uuid,
               name text, count bigint, first_at timestamptz, last_at timestamptz)
AS 'MODULE_PATHNAME', 'secret_audit_pending'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext;

-- Every secret without its ciphertext.  last_used is the latest successful
-- secret_get, flushed or still in shared memory.
CREATE FUNCTION pgext.secret_list()
RETURNS TABLE (id uuid, account_id uuid, name text, last4 text, key_version integer,
               created_at timestamptz, updated_at timestamptz, last_used timestamptz,
               expires_at timestamptz, expired boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext AS $$
  SELECT s.id, s.account_id, s.name, s.last4, s.key_version, s.created_at, s.updated_at,
         GREATEST(f.last_at, p.last_at), s.expires_at,
         COALESCE(s.expires_at <= pg_catalog.clock_timestamp(), false)
    FROM pgext.secrets s
    LEFT JOIN (SELECT a.secret_id, max(a.last_at) AS last_at
                 FROM pgext.secret_audit a
                WHERE a.op = 'get' AND a.outcome = 'ok'
                GROUP BY a.secret_id) f ON f.secret_id = s.id
    LEFT JOIN (SELECT q.secret_id, max(q.last_at) AS last_at
                 FROM pgext.secret_audit_pending() q
                WHERE q.op = 'get' AND q.outcome = 'ok'
                GROUP BY q.secret_id) p ON p.secret_id = s.id
$$;
CREATE VIEW pgext.secret_catalog AS SELECT * FROM pgext.secret_list();

-- Settings under which the server would log secret values (empty = none).
CREATE FUNCTION pgext.secret_logging_risks()
RETURNS text[] AS 'MODULE_PATHNAME', 'secret_logging_risks'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext;

DO $$
DECLARE
  risks text[] := pgext.secret_logging_risks();
BEGIN
  IF pg_catalog.cardinality(risks) > 0 THEN
    RAISE WARNING 'pgext: the logging settings can write secret values to the server log'
      USING DETAIL = pg_catalog.array_to_string(risks, '; ') || '.',
            HINT = 'Set log_statement to ''none'' or ''ddl'', keep log_min_duration_statement = -1 '
                   'and log_parameter_max_length_on_error = 0, and pass secret values as bind parameters.';
  END IF;
END
$$;

REVOKE ALL ON pgext.secrets, pgext.secret_audit FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.secret_set(text, text, uuid, timestamptz),
  pgext.secret_get(text, uuid),
  pgext.secret_masked(text, uuid),
  pgext.secret_delete(text, uuid),
  pgext.secret_rewrap(integer),
  pgext.secret_import_pgp(text, bytea, text, uuid, timestamptz),
  pgext.secret_key_versions(),
  pgext.secret_audit_flush(),
  pgext.secret_audit_pending(),
  pgext.secret_list(),
  pgext.secret_logging_risks()
  FROM PUBLIC;
REVOKE ALL ON pgext.secret_catalog FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.secret_list()
  TO pgext_secret_reader, pgext_secret_writer, pgext_admin;
GRANT SELECT ON pgext.secret_catalog TO pgext_secret_reader, pgext_secret_writer, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.secret_get(text, uuid),
  pgext.secret_masked(text, uuid)
  TO pgext_secret_reader;
GRANT EXECUTE ON FUNCTION
  pgext.secret_set(text, text, uuid, timestamptz),
  pgext.secret_masked(text, uuid),
  pgext.secret_delete(text, uuid),
  pgext.secret_import_pgp(text, bytea, text, uuid, timestamptz)
  TO pgext_secret_writer;
GRANT EXECUTE ON FUNCTION
  pgext.secret_rewrap(integer),
  pgext.secret_key_versions(),
  pgext.secret_audit_flush(),
  pgext.secret_audit_pending(),
  pgext.secret_logging_risks()
  TO pgext_admin;
GRANT SELECT ON pgext.secrets, pgext.secret_audit TO pgext_admin;

------------------------------------------------------------------------------
-- Webhooks (src/webhooks.c, src/sigparse.c)
------------------------------------------------------------------------------


