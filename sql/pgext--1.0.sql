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
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
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
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.account_set_credit_mode(account uuid, credit_mode text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_credit_mode'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.account_set_stripe_customer(account uuid, customer_id text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_stripe_customer'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_grant(account uuid, amount bigint, idempotency_key text,
                                   kind text DEFAULT 'bonus', expires_at timestamptz DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_grant'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.credit_deduct(account uuid, amount bigint, idempotency_key text DEFAULT NULL,
                                    reason text DEFAULT NULL)
RETURNS pgext.credit_result AS 'MODULE_PATHNAME', 'credit_deduct'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

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
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.secret_get(name text, account uuid DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'secret_get'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.secret_masked(name text, account uuid DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'secret_masked'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.secret_delete(name text, account uuid DEFAULT NULL)
RETURNS boolean AS 'MODULE_PATHNAME', 'secret_delete'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.secret_rewrap(batch integer DEFAULT 1000)
RETURNS integer AS 'MODULE_PATHNAME', 'secret_rewrap'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- Migration: a value encrypted with pgcrypto's pgp_sym_encrypt(value, passphrase).
CREATE FUNCTION pgext.secret_import_pgp(name text, ciphertext bytea, passphrase text,
                                        account uuid DEFAULT NULL,
                                        expires_at timestamptz DEFAULT NULL)
RETURNS uuid AS 'MODULE_PATHNAME', 'secret_import_pgp'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.secret_key_versions()
RETURNS integer[] AS 'MODULE_PATHNAME', 'secret_key_versions'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.secret_audit_flush()
RETURNS integer AS 'MODULE_PATHNAME', 'secret_audit_flush'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- Counters not yet flushed to pgext.secret_audit (shared memory).
CREATE FUNCTION pgext.secret_audit_pending()
RETURNS TABLE (role_name text, op text, outcome text, secret_id uuid, account_id uuid,
               name text, count bigint, first_at timestamptz, last_at timestamptz)
AS 'MODULE_PATHNAME', 'secret_audit_pending'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- Every secret without its ciphertext.  last_used is the latest successful
-- secret_get, flushed or still in shared memory.
CREATE FUNCTION pgext.secret_list()
RETURNS TABLE (id uuid, account_id uuid, name text, last4 text, key_version integer,
               created_at timestamptz, updated_at timestamptz, last_used timestamptz,
               expires_at timestamptz, expired boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
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
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

DO $$
DECLARE
  risks pg_catalog.text[] := pgext.secret_logging_risks();
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
-- payload holds only what processing needs (src/stripe_payload.c) and is
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
  PRIMARY KEY (source, event_id)
);
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
  created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX stripe_purchases_account ON pgext.stripe_purchases (account_id);

-- Newest event applied per Stripe object: an older event is 'superseded'.
-- Events of one second are ordered by rank (*.created 0, most 1,
-- *.deleted and invoice.paid 2), then id.
CREATE TABLE pgext.stripe_object_versions (
  object_id     text PRIMARY KEY,
  event_created timestamptz NOT NULL,
  event_rank    integer NOT NULL,
  event_id      text NOT NULL
);

-- State changes apps react to; each insert is announced with
-- NOTIFY pgext_billing, '<kind>:<id>' (delivered at commit); apps then read
-- the rows after the last id they processed (billing_outbox_since).
CREATE TABLE pgext.billing_outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL,
  kind            text NOT NULL,
  subscription_id text,
  until           timestamptz,
  event_id        text,
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT billing_outbox_kind_valid
    CHECK (kind IN ('payment_failed', 'access_ending', 'access_ended', 'grace_expired'))
);
CREATE INDEX billing_outbox_account ON pgext.billing_outbox (account_id, id);

CREATE FUNCTION pgext.billing_outbox_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pg_catalog.pg_notify('pgext_billing', NEW.kind || ':' || NEW.id);
  RETURN NULL;
END
$$;
CREATE TRIGGER billing_outbox_notify AFTER INSERT ON pgext.billing_outbox
  FOR EACH ROW EXECUTE FUNCTION pgext.billing_outbox_notify();

CREATE FUNCTION pgext.webhook_ingest(source text, payload text, signature text,
                                     received_at timestamptz DEFAULT pg_catalog.now())
RETURNS pgext.webhook_result AS 'MODULE_PATHNAME', 'webhook_ingest'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

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
    RAISE EXCEPTION 'webhook event %/% does not exist', $1, $2
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
    RAISE EXCEPTION 'invalid webhook source name %', pg_catalog.quote_nullable($1)
      USING ERRCODE = '22023', HINT = 'Use 1 to 63 characters of a-z, 0-9 and _, starting with a letter; ''stripe'' is built in.';
  END IF;
  IF $2 IS NULL OR $2 = '' THEN
    RAISE EXCEPTION 'secret_name must not be empty'
      USING ERRCODE = '22023', HINT = 'Name the secret-store entry holding the signing secret, e.g. ''webhook:n8n''.';
  END IF;
  IF $3 IS NULL OR $3 NOT IN ('plain', 'timestamped') THEN
    RAISE EXCEPTION 'invalid layout %', pg_catalog.quote_nullable($3)
      USING ERRCODE = '22023', HINT = 'Use ''plain'' (<prefix><sig>) or ''timestamped'' (t=<unix>,<scheme>=<sig>).';
  END IF;
  IF $4 IS NULL OR $4 NOT IN ('hex', 'base64') THEN
    RAISE EXCEPTION 'invalid encoding %', pg_catalog.quote_nullable($4)
      USING ERRCODE = '22023', HINT = 'Use ''hex'' or ''base64''.';
  END IF;
  IF $8 IS NULL OR $8 NOT IN ('sha256', 'sha512', 'sha1') THEN
    RAISE EXCEPTION 'invalid algorithm %', pg_catalog.quote_nullable($8)
      USING ERRCODE = '22023', HINT = 'Use ''sha256'', ''sha512'' or ''sha1''.';
  END IF;
  IF $7 IS NOT NULL AND $3 <> 'timestamped' THEN
    RAISE EXCEPTION 'a tolerance needs the ''timestamped'' layout'
      USING ERRCODE = '22023', HINT = 'Only timestamped signatures carry a time to check.';
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
  WITH c AS (
    SELECT e.source, e.event_id FROM pgext.webhook_events e
     WHERE e.source = $1 AND e.status = 'received'
     ORDER BY e.received_at, e.event_id
     LIMIT $2 FOR UPDATE SKIP LOCKED)
  UPDATE pgext.webhook_events e SET status = 'claimed', applied_at = pg_catalog.now()
    FROM c WHERE e.source = c.source AND e.event_id = c.event_id
  RETURNING e.event_id, e.type, e.payload, e.received_at
$$;

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
      INSERT INTO pgext.billing_outbox (account_id, kind, subscription_id, until)
      VALUES (s.account_id, 'grace_expired', s.id, s.grace_until);
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- Outbox rows after a given id, for apps that poll (or wake on NOTIFY).
CREATE FUNCTION pgext.billing_outbox_since(after_id bigint DEFAULT 0, "limit" integer DEFAULT 100)
RETURNS SETOF pgext.billing_outbox
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT * FROM pgext.billing_outbox WHERE id > $1 ORDER BY id LIMIT $2
$$;

REVOKE ALL ON pgext.webhook_sources, pgext.webhook_events, pgext.webhook_rejections,
  pgext.stripe_prices, pgext.stripe_subscriptions, pgext.stripe_purchases,
  pgext.stripe_object_versions, pgext.billing_outbox FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.billing_outbox_notify(),
  pgext.webhook_ingest(text, text, text, timestamptz),
  pgext.webhook_apply(integer),
  pgext.webhook_replay(text, text),
  pgext.webhook_replay_dead(text),
  pgext.webhook_rejection_counts(interval),
  pgext.webhook_retention(timestamptz),
  pgext.webhook_source_set(text, text, text, text, text, text, interval, text, text, text),
  pgext.webhook_source_remove(text),
  pgext.webhook_claim(text, integer),
  pgext.stripe_price_set(text, text, bigint, bigint),
  pgext.stripe_price_remove(text),
  pgext.billing_access(uuid, timestamptz),
  pgext.billing_expire_grace(timestamptz),
  pgext.billing_outbox_since(bigint, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.webhook_ingest(text, text, text, timestamptz),
  pgext.webhook_apply(integer),
  pgext.webhook_claim(text, integer),
  pgext.billing_access(uuid, timestamptz),
  pgext.billing_outbox_since(bigint, integer)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.webhook_replay(text, text),
  pgext.webhook_replay_dead(text),
  pgext.webhook_rejection_counts(interval),
  pgext.webhook_retention(timestamptz),
  pgext.webhook_source_set(text, text, text, text, text, text, interval, text, text, text),
  pgext.webhook_source_remove(text),
  pgext.stripe_price_set(text, text, bigint, bigint),
  pgext.stripe_price_remove(text),
  pgext.billing_expire_grace(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.webhook_sources, pgext.webhook_events, pgext.webhook_rejections,
  pgext.stripe_prices, pgext.stripe_subscriptions, pgext.stripe_purchases,
  pgext.stripe_object_versions, pgext.billing_outbox
  TO pgext_admin;
