-- pgext 1.0 install script, assembled by the Makefile from sql/install/*.sql
-- (core, accounts, credits, secrets, billing, webhooks, closing: one file per
-- capability, the same names as in src/).  Every function that touches money
-- or secrets is SECURITY DEFINER with search_path pinned to
-- pg_catalog, pgext, pg_temp; nothing is executable by PUBLIC.

\echo Use "CREATE EXTENSION pgext" to load this file. \quit

------------------------------------------------------------------------------
-- Core: roles, schema usage, the preload check
------------------------------------------------------------------------------

-- Roles are cluster-wide and survive DROP EXTENSION; one block creates all four:
--   pgext_app            applications: accounts and credit calls
--   pgext_admin          operators: sweeps, audits, reading the tables
--   pgext_secret_reader  may decrypt secrets (see Secrets)
--   pgext_secret_writer  may store and delete secrets, never read them
-- A missing role is created NOLOGIN and marked as pgext's with a comment.  An
-- existing one (a reinstall, a restore into another database of the cluster,
-- or a role someone created first) is adopted only when that is safe:
--   - it has no attribute pgext does not give: LOGIN, SUPERUSER, CREATEDB,
--     CREATEROLE, REPLICATION, BYPASSRLS or a password (a connection limit or
--     VALID UNTIL matter only for a login, which is refused anyway);
--   - a role pgext created (marked) keeps the members and memberships a DBA
--     granted it; a role pgext did not create is adopted (and marked) only
--     while it has none, since its members would get every right granted
--     to it below without anyone having decided so.
-- Otherwise CREATE EXTENSION fails and says what to change.  The mark is a
-- comment, which a CREATEROLE holder can set; in PostgreSQL 15 such a role can
-- also grant itself any of these roles after the install, so CREATEROLE is
-- as good as pgext_admin plus both secret roles (README, Quick start).
DO $$
DECLARE
  mark CONSTANT pg_catalog.text := 'pgext role: created by CREATE EXTENSION pgext';
  r pg_catalog.text;
  a record;
  attrs pg_catalog.text[];
  members pg_catalog.text;
  memberships pg_catalog.text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pgext_app', 'pgext_admin', 'pgext_secret_reader', 'pgext_secret_writer'] LOOP
    SELECT * INTO a FROM pg_catalog.pg_authid WHERE rolname = r;
    IF NOT FOUND THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
      EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, mark);
      CONTINUE;
    END IF;
    attrs := pg_catalog.array_remove(ARRAY[
      CASE WHEN a.rolcanlogin THEN 'LOGIN' END,
      CASE WHEN a.rolsuper THEN 'SUPERUSER' END,
      CASE WHEN a.rolcreatedb THEN 'CREATEDB' END,
      CASE WHEN a.rolcreaterole THEN 'CREATEROLE' END,
      CASE WHEN a.rolreplication THEN 'REPLICATION' END,
      CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' END,
      CASE WHEN a.rolpassword IS NOT NULL THEN 'PASSWORD' END], NULL);
    IF pg_catalog.cardinality(attrs) > 0 THEN
      RAISE EXCEPTION 'role % already exists with attributes pgext does not give it: %',
                      r, pg_catalog.array_to_string(attrs, ', ')
        USING ERRCODE = '55000',
              DETAIL = pg_catalog.format('pgext adopts an existing %s only if it looks like a role pgext creates (NOLOGIN, no other attribute): whoever logs in as it or uses its attributes would hold every right pgext grants it.', r),
              HINT = pg_catalog.format('Check who created %1$s and why; then remove the attributes (ALTER ROLE %1$s NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD NULL) or drop the role, and run CREATE EXTENSION pgext again. To log in with its rights, create your own login role and GRANT %1$s TO it.', r);
    END IF;
    IF pg_catalog.shobj_description(a.oid, 'pg_authid') IS NOT DISTINCT FROM mark THEN
      CONTINUE;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(m.rolname), ', ' ORDER BY m.rolname) INTO members
      FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles m ON m.oid = am.member
     WHERE am.roleid = a.oid;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.rolname), ', ' ORDER BY g.rolname) INTO memberships
      FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
     WHERE am.member = a.oid;
    IF members IS NOT NULL OR memberships IS NOT NULL THEN
      RAISE EXCEPTION 'role % already exists, was not created by pgext, and %', r,
                      CASE WHEN members IS NOT NULL THEN 'has members: ' || members
                           ELSE 'is a member of: ' || memberships END
        USING ERRCODE = '55000',
              DETAIL = pg_catalog.format('Members of %1$s would get every right pgext grants it without anyone having decided so. pgext keeps the members only of roles it created, which carry the comment ''%2$s''.', r, mark),
              HINT = pg_catalog.format('Check who created %1$s and who granted what. Then either revoke: %3$s, or drop the role; or, if these grants are yours and wanted, adopt the role deliberately: COMMENT ON ROLE %1$s IS ''%2$s''; and run CREATE EXTENSION pgext again.', r, mark,
                       CASE WHEN members IS NOT NULL
                            THEN pg_catalog.format('REVOKE %s FROM %s', r, members)
                            ELSE pg_catalog.format('REVOKE %s FROM %s', memberships, r) END);
    END IF;
    -- clean and alone: pgext takes it over, and keeps what a DBA grants it from now on
    EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, mark);
  END LOOP;
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
-- Accounts (src/accounts.c)
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

CREATE FUNCTION pgext.account_create(external_id text, credit_mode text DEFAULT 'metered')
RETURNS uuid AS 'MODULE_PATHNAME', 'account_create'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.account_set_credit_mode(account uuid, credit_mode text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_credit_mode'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.account_set_stripe_customer(account uuid, customer_id text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_stripe_customer'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

REVOKE ALL ON pgext.accounts FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.account_create(text, text),
  pgext.account_set_credit_mode(uuid, text),
  pgext.account_set_stripe_customer(uuid, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.account_create(text, text),
  pgext.account_set_stripe_customer(uuid, text)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.account_set_credit_mode(uuid, text) TO pgext_admin;
GRANT SELECT ON pgext.accounts TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.accounts', '');
------------------------------------------------------------------------------
-- Outbox: one table for every change apps react to (billing, servers,
-- operator access grants); written by the capabilities that follow
------------------------------------------------------------------------------

-- Each insert is announced with NOTIFY pgext_outbox, '<kind>:<id>' (delivered
-- at commit); apps then read the rows after the last id they processed
-- (outbox_since).  Columns a kind does not use stay NULL.
CREATE TABLE pgext.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL,
  kind            text NOT NULL,
  subscription_id text,
  server_id       bigint,
  until           timestamptz,
  event_id        text,
  detail          text,
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT outbox_kind_valid CHECK (kind IN (
    -- billing
    'payment_failed', 'access_ending', 'access_ended', 'grace_expired',
    -- servers
    'server_active', 'server_failed', 'server_paused', 'server_resumed',
    'server_deleting', 'server_deleted',
    -- access granted by an operator
    'access_granted', 'access_grant_ended',
    -- Stripe sync: a fetched subscription changed pgext's record of it
    'subscription_synced',
    -- fleet health: the agent's state changed, or it is being restarted
    'agent_healthy', 'agent_unhealthy', 'agent_degraded', 'agent_restarting'))
);
CREATE INDEX outbox_account ON pgext.outbox (account_id, id);

CREATE FUNCTION pgext.outbox_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pg_catalog.pg_notify('pgext_outbox', NEW.kind || ':' || NEW.id);
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON pgext.outbox
  FOR EACH ROW EXECUTE FUNCTION pgext.outbox_notify();

-- Outbox rows after a given id, oldest first, for apps that poll (or wake on
-- NOTIFY): remember the last id processed and pass it next time.
CREATE FUNCTION pgext.outbox_since(after_id bigint DEFAULT 0, "limit" integer DEFAULT 100)
RETURNS SETOF pgext.outbox
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $2 IS NULL OR $2 < 1 OR $2 > 10000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 10000, got %', COALESCE($2::pg_catalog.text, 'NULL')
      USING ERRCODE = '22023',
            HINT = 'Call outbox_since repeatedly with the last id you processed to page through more rows.';
  END IF;
  RETURN QUERY SELECT * FROM pgext.outbox o WHERE o.id > COALESCE($1, 0) ORDER BY o.id LIMIT $2;
END
$$;

REVOKE ALL ON pgext.outbox FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.outbox_notify(),
  pgext.outbox_since(bigint, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.outbox_since(bigint, integer) TO pgext_app, pgext_admin;
GRANT SELECT ON pgext.outbox TO pgext_admin;

-- A configuration table, so pg_dump keeps its rows, and its identity
-- sequence, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.outbox', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.outbox', 'id'), '');
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
------------------------------------------------------------------------------
-- Secrets (src/secrets/)
------------------------------------------------------------------------------

-- Values are sealed with AES-256-GCM in C before any row is written; the
-- tables hold only ciphertext.  Master keys come from the postmaster-only
-- setting pgext.master_key_command and never enter the database.
--   pgext_secret_reader  may decrypt: secret_get, secret_masked
--   pgext_secret_writer  may store, mask and delete, but never read plaintext;
--                        platform secrets (account NULL) only as a member of
--                        pgext_admin too (checked in C, src/secrets/secrets.c)
--   pgext_admin          rotation (secret_rewrap), audit flush, key versions
-- (The two secret roles are created with the others, in the Core section.)

GRANT USAGE ON SCHEMA pgext TO pgext_secret_reader, pgext_secret_writer;

-- One row per (account, name); account_id NULL = a platform secret.
-- sealed = 0x01 || nonce || ciphertext || tag, bound (AAD) to id, account_id,
-- name, expires_at and key_version: see src/secrets/box.h.  last4 is what a
-- mask may show: the last 4 characters of a value of 16 or more characters,
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
-- secret_rewrap walks rows under other key versions through this, in
-- (key_version, id) order (keyset pagination past rows it has to skip).
CREATE INDEX secrets_key_version ON pgext.secrets (key_version, id);

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
    CHECK (outcome IN ('ok', 'not_found', 'expired', 'decrypt_failed', 'key_missing', 'denied')),
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
-- Operators store and rotate the platform's secrets (webhook:stripe,
-- stripe:api_key, ...) without also being writers; reading plaintext still
-- needs pgext_secret_reader, and "webhook:" platform secrets both.
GRANT EXECUTE ON FUNCTION
  pgext.secret_set(text, text, uuid, timestamptz),
  pgext.secret_masked(text, uuid),
  pgext.secret_delete(text, uuid),
  pgext.secret_import_pgp(text, bytea, text, uuid, timestamptz)
  TO pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.secret_rewrap(integer),
  pgext.secret_key_versions(),
  pgext.secret_audit_flush(),
  pgext.secret_audit_pending(),
  pgext.secret_logging_risks()
  TO pgext_admin;
GRANT SELECT ON pgext.secrets, pgext.secret_audit TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.secrets', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.secret_audit', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.secret_audit', 'id'), '');
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
    RAISE EXCEPTION 'unknown access kind %', pg_catalog.quote_nullable($1)
      USING ERRCODE = '22023',
            HINT = 'Pass billing_access''s access: lifetime, active, trialing, canceling, granted, grace or none.';
  END IF;
  IF $2 IS NOT NULL AND $2 NOT IN ('unpaid', 'ended') THEN
    RAISE EXCEPTION 'unknown lapse %', pg_catalog.quote_nullable($2)
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
------------------------------------------------------------------------------
-- Server specs (src/servers/spec.c, src/servers/cloudinit.c)
------------------------------------------------------------------------------

-- The check every server request runs before anything is queued: the whole
-- spec, including cloud-init user_data parsed with libyaml.  It reads and
-- writes nothing, so it is a plain IMMUTABLE function (not SECURITY DEFINER);
-- the path is pinned anyway, like every pgext function.
CREATE FUNCTION pgext.server_spec_check(spec jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME', 'server_spec_check'
LANGUAGE C IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pgext, pg_temp;
COMMENT ON FUNCTION pgext.server_spec_check(jsonb) IS
  'Checks a server spec and returns it unchanged: server_type, image, locations (required); '
  'user_data (#cloud-config YAML or #! script, <= 32768 bytes of UTF-8), labels (Hetzner rules; '
  'managed-by and pgext-* reserved), health, ssh_keys (optional; null = absent); datacenter and '
  'unknown fields refused.  Errors: 22023 naming the field (user_data: line and column), 22004 for NULL.';

-- The user_data rules on raw bytes: a jsonb string is always valid text, so
-- this is how an app (or a test) checks bytes before putting them in a spec.
CREATE FUNCTION pgext.server_user_data_check(user_data bytea)
RETURNS void AS 'MODULE_PATHNAME', 'server_user_data_check'
LANGUAGE C IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pgext, pg_temp;
COMMENT ON FUNCTION pgext.server_user_data_check(bytea) IS
  'Checks cloud-init user_data bytes (the rules of server_spec_check''s user_data); 22023 with '
  'line and column when they are refused, 22004 for NULL.';

REVOKE ALL ON FUNCTION
  pgext.server_spec_check(jsonb),
  pgext.server_user_data_check(bytea)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.server_spec_check(jsonb),
  pgext.server_user_data_check(bytea)
  TO pgext_app, pgext_admin;

------------------------------------------------------------------------------
-- Servers: the provisioning state machine, its history, the work queue the
-- worker carries out, and the billing policy applied to it (src/servers/)
------------------------------------------------------------------------------

-- The allowed state changes, in one place.  The state trigger below checks
-- every write against it (pgext's functions, an operator's direct UPDATE).
--   requested -> creating -> configuring -> active <-> paused -> deleting -> deleted
--   creating -> active directly when the spec has no health check
--   failed: from every working state; from failed a create is retried
--   (requested), a server that may exist is deleted (deleting), or nothing
--   was ever created (deleted).
-- Its rows come from this script, so it is not marked for pg_dump.
CREATE TABLE pgext.server_transitions (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO pgext.server_transitions (from_state, to_state) VALUES
  ('requested', 'creating'), ('requested', 'failed'), ('requested', 'deleting'), ('requested', 'deleted'),
  ('creating', 'configuring'), ('creating', 'active'), ('creating', 'failed'), ('creating', 'deleting'),
  ('configuring', 'active'), ('configuring', 'failed'), ('configuring', 'deleting'),
  ('active', 'paused'), ('active', 'failed'), ('active', 'deleting'),
  ('paused', 'active'), ('paused', 'failed'), ('paused', 'deleting'),
  ('deleting', 'deleted'), ('deleting', 'failed'),
  ('failed', 'requested'), ('failed', 'deleting'), ('failed', 'deleted');

-- One row per server an account asked for (server_request), forever: a
-- deleted server stays as the record of what existed.
--   state / desired_state   observed and wanted (active | paused | deleted)
--   state_reason            why the last transition happened; desired_reason
--                           why the policy wants desired_state
--   name                    the Hetzner name, derived from provision_key
--                           (pgext.server_name): a retried create can never
--                           make a second server
-- Work queue (server_claim / server_report):
--   next_action      create | poll_action | lookup | power_off | power_on |
--                    delete, or NULL when nothing is to be done
--   next_attempt_at  when it is due; attempts: tries of this action so far
--   claim            counts claims; a report names the claim it answers
--   claimed_by / claimed_until / claimed_action   the claim in progress
--   location_index   which of spec.locations a create tries (capacity fallback)
--   create_sent      a create was handed out: a server may exist by that name
--   create_unknown   a create was handed out and its answer never arrived (no
--                    response, 5xx, unreadable, or its claim was taken back):
--                    the server is looked up by name before any new create
--   capacity_rounds  times every location was out of capacity (the backoff)
--   hetzner_status   the server's status at Hetzner when last seen (lookup,
--                    reconcile list); a power state that drifted is corrected
--   create_retries   failed creates retried so far; retry_at: the next one
--   needs_cleanup    a failed server that may exist at Hetzner (deleted by the worker)
--   recovery_action  reboot | reset queued by fleet health (pgext.health_recover)
--                    until the worker reports it sent
CREATE TABLE pgext.servers (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL REFERENCES pgext.accounts (id),
  provision_key   text NOT NULL UNIQUE,
  name            text NOT NULL UNIQUE,
  spec            jsonb NOT NULL,
  spec_hash       text NOT NULL,
  state           text NOT NULL DEFAULT 'requested',
  desired_state   text NOT NULL DEFAULT 'active',
  state_reason    text,
  desired_reason  text,
  state_since     timestamptz NOT NULL DEFAULT pg_catalog.now(),
  active_since    timestamptz,
  hetzner_id      bigint UNIQUE,
  location        text,
  location_index  integer NOT NULL DEFAULT 0,
  ipv4            text,
  last_error      text,
  next_action     text,
  action_id       bigint,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  claim           bigint NOT NULL DEFAULT 0,
  claimed_action  text,
  claimed_by      text,
  claimed_until   timestamptz,
  create_sent     boolean NOT NULL DEFAULT false,
  create_unknown  boolean NOT NULL DEFAULT false,
  capacity_rounds integer NOT NULL DEFAULT 0,
  hetzner_status  text,
  create_retries  integer NOT NULL DEFAULT 0,
  retry_at        timestamptz,
  needs_cleanup   boolean NOT NULL DEFAULT false,
  recovery_action text,
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT servers_state_valid CHECK (state IN ('requested', 'creating', 'configuring', 'active',
                                                  'paused', 'deleting', 'deleted', 'failed')),
  CONSTRAINT servers_desired_state_valid CHECK (desired_state IN ('active', 'paused', 'deleted')),
  CONSTRAINT servers_next_action_valid CHECK (next_action IN ('create', 'poll_action', 'lookup',
                                                              'power_off', 'power_on', 'delete',
                                                              'reboot', 'reset')),
  CONSTRAINT servers_recovery_action_valid CHECK (recovery_action IN ('reboot', 'reset')),
  CONSTRAINT servers_name_valid CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  CONSTRAINT servers_provision_key_valid
    CHECK (provision_key <> '' AND pg_catalog.length(provision_key) <= 255),
  CONSTRAINT servers_claim_valid CHECK ((claimed_by IS NULL) = (claimed_until IS NULL)
                                        AND (claimed_by IS NULL) = (claimed_action IS NULL))
);
CREATE INDEX servers_account ON pgext.servers (account_id);
CREATE INDEX servers_due ON pgext.servers (next_attempt_at, id) WHERE next_action IS NOT NULL;
CREATE INDEX servers_working ON pgext.servers (state) WHERE state <> 'deleted';

-- Every state change: written by the state trigger, never by hand.
-- actor is the role that made it, or 'worker' (server_report) / 'policy'
-- (server_reconcile); at is the time of the change (the functions' `at`).
CREATE TABLE pgext.server_history (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  server_id  bigint NOT NULL REFERENCES pgext.servers (id),
  from_state text,
  to_state   text NOT NULL,
  reason     text NOT NULL,
  actor      text NOT NULL,
  at         timestamptz NOT NULL
);
CREATE INDEX server_history_server ON pgext.server_history (server_id, id);

-- The Hetzner name of a provision key: 'pgext-' and the first 16 hex digits
-- (64 bits) of its SHA-256.  A valid hostname label (lowercase, 22 chars),
-- stable across retries, restores and upgrades.  Two keys collide with
-- probability ~n^2/2^65 (about 1 in 10^8 at 60,000 servers); the UNIQUE
-- constraint on servers.name refuses a collision inside one database.
CREATE FUNCTION pgext.server_name(provision_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT 'pgext-' || pg_catalog.left(pg_catalog.encode(
           pg_catalog.sha256(pg_catalog.convert_to($1, 'UTF8')), 'hex'), 16)
$$;

-- BEFORE INSERT OR UPDATE OF state: the one check every state write passes.
-- A new row starts 'requested'; a change must be listed in
-- pgext.server_transitions.  Stamps state_since (now() for a direct UPDATE
-- that does not set it; pgext's functions pass their `at`), active_since on
-- the first 'active', and state_reason from pgext.transition_reason
-- ('direct update' when unset).
CREATE FUNCTION pgext.servers_state_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  reason pg_catalog.text := NULLIF(pg_catalog.current_setting('pgext.transition_reason', true), '');
  allowed pg_catalog.text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.state IS DISTINCT FROM 'requested' THEN
      RAISE EXCEPTION 'a new server starts in state ''requested'', not %', pg_catalog.quote_nullable(NEW.state)
        USING ERRCODE = '55000', HINT = 'Ask for servers with pgext.server_request(account, provision_key, spec).';
    END IF;
    NEW.state_reason := COALESCE(reason, NEW.state_reason, 'requested');
    RETURN NEW;
  END IF;
  IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
    RETURN NEW;
  END IF;
  IF NOT EXISTS (SELECT FROM pgext.server_transitions t
                  WHERE t.from_state = OLD.state AND t.to_state = NEW.state) THEN
    SELECT pg_catalog.string_agg(t.to_state, ', ' ORDER BY t.to_state) INTO allowed
      FROM pgext.server_transitions t WHERE t.from_state = OLD.state;
    RAISE EXCEPTION 'server % cannot go from % to %', OLD.id, OLD.state, pg_catalog.quote_nullable(NEW.state)
      USING ERRCODE = '55000',
            DETAIL = pg_catalog.format('Allowed from %s: %s.', OLD.state, COALESCE(allowed, 'nothing (final state)')),
            HINT = 'The transitions are listed in pgext.server_transitions; move a server by hand with pgext.server_transition(server, to_state, reason).';
  END IF;
  IF reason IS NULL THEN
    reason := 'direct update';
    IF NEW.state_since IS NOT DISTINCT FROM OLD.state_since THEN
      NEW.state_since := pg_catalog.now();
    END IF;
  END IF;
  NEW.state_reason := reason;
  IF NEW.state = 'active' AND NEW.active_since IS NULL THEN
    NEW.active_since := NEW.state_since;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER servers_state_guard BEFORE INSERT OR UPDATE OF state ON pgext.servers
  FOR EACH ROW EXECUTE FUNCTION pgext.servers_state_guard();

-- AFTER a state change: the history row, and the outbox row apps react to
-- (server_active, server_resumed, server_paused, server_failed,
-- server_deleting, server_deleted; detail is the reason; for server_active
-- until is active_since: the app starts billing only then).
CREATE FUNCTION pgext.servers_state_record() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  actor pg_catalog.text := COALESCE(NULLIF(pg_catalog.current_setting('pgext.transition_actor', true), ''),
                                    pg_catalog.current_user());
  from_state pg_catalog.text := CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END;
  kind pg_catalog.text;
BEGIN
  INSERT INTO pgext.server_history (server_id, from_state, to_state, reason, actor, at)
  VALUES (NEW.id, from_state, NEW.state, NEW.state_reason, actor, NEW.state_since);
  kind := CASE NEW.state
            WHEN 'active' THEN CASE WHEN from_state = 'paused' THEN 'server_resumed' ELSE 'server_active' END
            WHEN 'paused' THEN 'server_paused'
            WHEN 'failed' THEN 'server_failed'
            WHEN 'deleting' THEN 'server_deleting'
            WHEN 'deleted' THEN 'server_deleted' END;
  IF kind IS NOT NULL THEN
    INSERT INTO pgext.outbox (account_id, kind, server_id, until, detail)
    VALUES (NEW.account_id, kind, NEW.id,
            CASE WHEN kind = 'server_active' THEN NEW.active_since END, NEW.state_reason);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER servers_state_recorded AFTER INSERT ON pgext.servers
  FOR EACH ROW EXECUTE FUNCTION pgext.servers_state_record();
CREATE TRIGGER servers_state_changed AFTER UPDATE OF state ON pgext.servers
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION pgext.servers_state_record();

-- Internal: move a server to a state at a time, with a reason and an actor
-- for the history (the notes are cleared again right after).
CREATE FUNCTION pgext.server_move(server bigint, to_state text, reason text, actor text, at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pg_catalog.set_config('pgext.transition_reason', COALESCE(NULLIF($3, ''), 'no reason given'), true);
  PERFORM pg_catalog.set_config('pgext.transition_actor', $4, true);
  UPDATE pgext.servers s SET state = $2, state_since = $5 WHERE s.id = $1;
  PERFORM pg_catalog.set_config('pgext.transition_reason', '', true);
  PERFORM pg_catalog.set_config('pgext.transition_actor', '', true);
END
$$;

-- Internal: what the worker should do next for a server, from its state,
-- desired state and what is known at Hetzner (NULL: nothing).  A create
-- whose outcome is unknown is a lookup by name first (never a blind re-send).
CREATE FUNCTION pgext.server_plan(s pgext.servers) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE
    WHEN s.state = 'deleted' THEN NULL
    WHEN s.state = 'deleting' OR (s.state = 'failed' AND s.needs_cleanup)
      THEN CASE WHEN s.hetzner_id IS NOT NULL THEN 'delete' ELSE 'lookup' END
    WHEN s.state = 'requested' AND s.desired_state = 'active'
      THEN CASE WHEN s.create_unknown THEN 'lookup' ELSE 'create' END
    WHEN s.state = 'creating' THEN CASE WHEN s.action_id IS NOT NULL THEN 'poll_action' ELSE 'lookup' END
    WHEN s.state = 'active' AND s.desired_state = 'paused' THEN 'power_off'
    WHEN s.state = 'paused' AND s.desired_state = 'active' THEN 'power_on'
    -- drift seen at Hetzner (pgext.hetzner_reconcile): put the power state back
    WHEN s.state = 'active' AND s.desired_state = 'active' AND s.hetzner_status = 'off' THEN 'power_on'
    WHEN s.state = 'paused' AND s.desired_state = 'paused' AND s.hetzner_status = 'running' THEN 'power_off'
    -- fleet health asked for a reboot or reset (pgext.health_recover)
    WHEN s.state = 'active' AND s.desired_state = 'active' AND s.hetzner_id IS NOT NULL
         AND s.recovery_action IS NOT NULL THEN s.recovery_action
  END
$$;

-- Internal: queue the planned action unless a live claim holds the row (its
-- report replans).  A new action starts fresh (attempts 0, due at `at`); the
-- same action keeps its backoff.
CREATE FUNCTION pgext.server_replan(server bigint, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  want pg_catalog.text;
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  IF s.claimed_until > $2 THEN
    RETURN;
  END IF;
  want := pgext.server_plan(s);
  IF want IS DISTINCT FROM s.next_action THEN
    UPDATE pgext.servers x
       SET next_action = want, attempts = 0,
           next_attempt_at = CASE WHEN want IS NOT NULL THEN $2 END
     WHERE x.id = $1;
  END IF;
END
$$;

-- Internal: exponential backoff with jitter: base * 2^n, at most cap, times
-- a random factor in [0.5, 1).
CREATE FUNCTION pgext.server_backoff(n integer, base interval, cap interval) RETURNS interval
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT LEAST($3, $2 * pg_catalog.power(2, LEAST(GREATEST($1, 0), 30))::double precision)
         * (0.5 + pg_catalog.random() / 2)
$$;

-- Internal: a server fails.  A server that may exist at Hetzner is marked
-- for cleanup (the worker deletes it); a failure on the way to active
-- (requested, creating, configuring) schedules a create retry with backoff
-- while pgext.server_create_retries allows, else it stays failed and says so.
CREATE FUNCTION pgext.server_fail(server bigint, reason text, actor text, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  lim integer := pg_catalog.current_setting('pgext.server_create_retries')::integer;
  retry boolean;
  why pg_catalog.text := $2;
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  IF s.state = 'failed' THEN
    RETURN;
  END IF;
  retry := s.state IN ('requested', 'creating', 'configuring') AND s.create_retries < lim;
  IF s.state IN ('requested', 'creating', 'configuring') THEN
    why := why || CASE WHEN retry THEN pg_catalog.format('; create retry %s of %s scheduled', s.create_retries + 1, lim)
                       ELSE pg_catalog.format('; gave up after %s create retries', s.create_retries) END;
  END IF;
  PERFORM pgext.server_move($1, 'failed', why, $3, $4);
  UPDATE pgext.servers x
     SET needs_cleanup = (x.hetzner_id IS NOT NULL OR x.create_sent),
         action_id = NULL,
         retry_at = CASE WHEN retry THEN $4 + pgext.server_backoff(x.create_retries, '1 minute', '1 hour') END
   WHERE x.id = $1;
  PERFORM pgext.server_replan($1, $4);
END
$$;

-- Internal: the desired state becomes 'deleted' (for good).  A server of
-- which nothing can exist at Hetzner yet (no create handed out) is deleted at
-- once; any other goes to deleting, and the worker deletes it (after a
-- lookup by name when its Hetzner id is not known).
CREATE FUNCTION pgext.server_begin_delete(server bigint, reason text, actor text, at timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
BEGIN
  UPDATE pgext.servers x SET desired_state = 'deleted', desired_reason = $2
   WHERE x.id = $1 AND x.desired_state <> 'deleted';
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  IF s.state IN ('deleting', 'deleted') THEN
    RETURN s.state;
  END IF;
  IF s.state IN ('requested', 'failed') AND s.hetzner_id IS NULL AND NOT s.create_sent THEN
    PERFORM pgext.server_move($1, 'deleted', $2 || ' (nothing was created at Hetzner)', $3, $4);
    UPDATE pgext.servers x SET needs_cleanup = false, retry_at = NULL WHERE x.id = $1;
  ELSE
    PERFORM pgext.server_move($1, 'deleting', $2, $3, $4);
    UPDATE pgext.servers x SET retry_at = NULL, action_id = NULL WHERE x.id = $1;
  END IF;
  PERFORM pgext.server_replan($1, $4);
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  RETURN s.state;
END
$$;

-- Ask for a server (apps).  Idempotent on provision_key: the same key and
-- spec return the same id (whatever happened since); the same key with
-- another spec or account is an error (22023).  Refused, with nothing
-- written: a bad spec (22023, pgext.server_spec_check), an unknown account
-- (PX001), an account without billing access (55000), an account at
-- pgext.server_limit_per_account live servers (53400).  Live: not deleted,
-- not on its way to deleted, and not failed for good with nothing left at
-- Hetzner.  The new server is 'requested' and its create is queued.
CREATE FUNCTION pgext.server_request(account uuid, provision_key text, spec jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  checked pg_catalog.jsonb;
  s pgext.servers;
  access pg_catalog.text;
  live integer;
  lim integer := pg_catalog.current_setting('pgext.server_limit_per_account')::integer;
  new_id bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'account must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL THEN
    RAISE EXCEPTION 'provision_key must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 = '' OR pg_catalog.length($2) > 255 THEN
    RAISE EXCEPTION 'provision_key must be 1 to 255 characters long' USING ERRCODE = '22023',
      HINT = 'Use a key of your own that names this one server (e.g. your agent''s id): the same key always returns the same server.';
  END IF;
  IF $3 IS NULL THEN
    RAISE EXCEPTION 'spec must not be NULL' USING ERRCODE = '22004';
  END IF;
  checked := pgext.server_spec_check($3);
  PERFORM pgext.health_spec_check(checked);
  IF NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'PX001',
      HINT = 'Create it first with pgext.account_create(external_id).';
  END IF;
  -- one request per account at a time, so the limit holds (READ COMMITTED:
  -- the statements below see what a request that went first committed; a
  -- snapshot transaction that had to wait cannot see it, so it must retry)
  IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pgext.server_request'),
                                              pg_catalog.hashtext($1::pg_catalog.text)) THEN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgext.server_request'),
                                             pg_catalog.hashtext($1::pg_catalog.text));
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE EXCEPTION 'a concurrent server_request for the same account committed after this transaction''s snapshot'
        USING ERRCODE = '40001',
              HINT = 'Retry the transaction: it then sees the other request (the same provision key returns the same server).';
    END IF;
  END IF;
  SELECT * INTO s FROM pgext.servers x WHERE x.provision_key = $2;
  IF NOT FOUND THEN
    SELECT b.access INTO access FROM pgext.billing_access($1) b;
    IF access IS NULL OR access = 'none' THEN
      RAISE EXCEPTION 'account % has no billing access', $1 USING ERRCODE = '55000',
        DETAIL = 'A server needs an active, trialing, canceling (until its end), grace, lifetime or operator-granted access (pgext.billing_access).',
        HINT = 'Let the customer subscribe or buy first, or grant access as an operator; then request the server again.';
    END IF;
    SELECT pg_catalog.count(*) INTO live FROM pgext.servers x
     WHERE x.account_id = $1 AND x.state <> 'deleted' AND x.desired_state <> 'deleted'
       AND NOT (x.state = 'failed' AND NOT x.needs_cleanup AND x.retry_at IS NULL);
    IF live >= lim THEN
      RAISE EXCEPTION 'account % already has % live servers (limit %)', $1, live, lim USING ERRCODE = '53400',
        HINT = 'Delete one with pgext.server_delete(server, reason), or raise pgext.server_limit_per_account.';
    END IF;
    PERFORM pg_catalog.set_config('pgext.transition_reason', 'requested', true);
    PERFORM pg_catalog.set_config('pgext.transition_actor', pg_catalog.session_user(), true);
    INSERT INTO pgext.servers AS x (account_id, provision_key, name, spec, spec_hash,
                                    next_action, next_attempt_at)
    VALUES ($1, $2, pgext.server_name($2), checked,
            pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(checked::pg_catalog.text, 'UTF8')), 'hex'),
            'create', pg_catalog.now())
    ON CONFLICT ON CONSTRAINT servers_provision_key_key DO NOTHING
    RETURNING x.id INTO new_id;
    PERFORM pg_catalog.set_config('pgext.transition_reason', '', true);
    PERFORM pg_catalog.set_config('pgext.transition_actor', '', true);
    IF new_id IS NOT NULL THEN
      RETURN new_id;
    END IF;
    -- the same key, committed meanwhile under another account's lock
    SELECT * INTO s FROM pgext.servers x WHERE x.provision_key = $2;
  END IF;
  IF s.account_id <> $1 THEN
    RAISE EXCEPTION 'provision key % already names server % of another account', pg_catalog.quote_literal($2), s.id
      USING ERRCODE = '22023', HINT = 'A provision key names one server for good: use a new key for a new server.';
  END IF;
  IF s.spec <> checked THEN
    RAISE EXCEPTION 'provision key % already names server % with a different spec', pg_catalog.quote_literal($2), s.id
      USING ERRCODE = '22023', HINT = 'A provision key names one server for good: use a new key for a new server.';
  END IF;
  RETURN s.id;
END
$$;

-- Internal: lock a server row or say it does not exist.
CREATE FUNCTION pgext.server_lock(server bigint) RETURNS pgext.servers
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'server must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'server % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'List servers with: SELECT * FROM pgext.server_status.';
  END IF;
  RETURN s;
END
$$;

-- Move a server by hand (operators); the only sanctioned manual move.  An
-- invalid move raises 55000 naming the allowed ones.  To 'failed': no
-- automatic retry, cleanup if it may exist; to 'requested': the create is
-- queued again from the first location; to 'deleting'/'deleted': desired
-- state becomes 'deleted'.  Returns the new state.
CREATE FUNCTION pgext.server_transition(server bigint, to_state text, reason text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers := pgext.server_lock($1);
  actor pg_catalog.text := pg_catalog.session_user();
  at pg_catalog.timestamptz := pg_catalog.now();
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('requested', 'creating', 'configuring', 'active', 'paused',
                              'deleting', 'deleted', 'failed') THEN
    RAISE EXCEPTION 'unknown server state %', pg_catalog.quote_nullable($2) USING ERRCODE = '22023',
      HINT = 'States: requested, creating, configuring, active, paused, deleting, deleted, failed.';
  END IF;
  IF $3 IS NULL OR pg_catalog.btrim($3) = '' THEN
    RAISE EXCEPTION 'a manual transition needs a reason' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''verified in the Hetzner console''; it is kept in pgext.server_history.';
  END IF;
  PERFORM pgext.server_move($1, $2, $3, actor, at);
  UPDATE pgext.servers x
     SET needs_cleanup = CASE WHEN $2 = 'failed' THEN (x.hetzner_id IS NOT NULL OR x.create_sent)
                              WHEN $2 = 'deleted' THEN false ELSE x.needs_cleanup END,
         retry_at = NULL,
         desired_state = CASE WHEN $2 IN ('deleting', 'deleted') THEN 'deleted' ELSE x.desired_state END,
         desired_reason = CASE WHEN $2 IN ('deleting', 'deleted') THEN $3 ELSE x.desired_reason END,
         location_index = CASE WHEN $2 = 'requested' THEN 0 ELSE x.location_index END,
         hetzner_id = CASE WHEN $2 = 'requested' THEN NULL ELSE x.hetzner_id END,
         action_id = CASE WHEN $2 IN ('requested', 'deleting', 'failed') THEN NULL ELSE x.action_id END
   WHERE x.id = $1;
  PERFORM pgext.server_replan($1, at);
  RETURN $2;
END
$$;

-- Ask for a server to go away (apps and operators).  Nothing created yet:
-- 'deleted' at once; otherwise 'deleting' and the worker deletes it.
-- Returns the state; repeating it is harmless.
CREATE FUNCTION pgext.server_delete(server bigint, reason text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers := pgext.server_lock($1);
BEGIN
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' THEN
    RAISE EXCEPTION 'deleting a server needs a reason' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''customer closed the agent''; it is kept in pgext.server_history.';
  END IF;
  RETURN pgext.server_begin_delete($1, $2, pg_catalog.session_user(), pg_catalog.now());
END
$$;

-- Internal: claim one server row (the caller holds its lock) for claimant
-- until `until`, with a new claim number.  A claim taken back (its lease ran
-- out, or pgext.worker_begin ended it) counts as an attempt; a create whose
-- outcome is unknown (create_unknown: its answer never arrived or its claim
-- was taken back) is claimed as a lookup by name instead, never re-sent
-- blindly.  A create is marked sent and unknown until its answer arrives;
-- its location is spec.locations[location_index].
CREATE FUNCTION pgext.server_take(server bigint, claimant text, until timestamptz, at timestamptz)
RETURNS pgext.servers
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  act pg_catalog.text;
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  act := CASE WHEN s.next_action = 'create' AND s.create_unknown THEN 'lookup' ELSE s.next_action END;
  UPDATE pgext.servers x
     SET next_action = act,
         claim = x.claim + 1, claimed_action = act, claimed_by = $2, claimed_until = $3,
         attempts = CASE WHEN act IS DISTINCT FROM x.next_action THEN 0 ELSE x.attempts END
                    + CASE WHEN x.claimed_by IS NOT NULL THEN 1 ELSE 0 END,
         last_error = CASE WHEN x.claimed_by IS NOT NULL
                           THEN pg_catalog.format('claim %s by %s was not reported in time', x.claim, x.claimed_by)
                           ELSE x.last_error END,
         create_sent = x.create_sent OR act = 'create',
         create_unknown = x.create_unknown OR act = 'create',
         location = CASE WHEN act = 'create' THEN x.spec -> 'locations' ->> x.location_index ELSE x.location END
   WHERE x.id = $1
  RETURNING * INTO s;
  RETURN s;
END
$$;

-- The worker takes due work: up to "limit" servers whose next action is due
-- at `at` and that no live claim holds, oldest first, skipping rows another
-- claimant has locked.  Each comes with a claim number its report must quote;
-- a claim not reported within `lease` is taken back by the next claimant
-- (counted as an attempt; a create taken back is looked up by name next).
-- For a create, location is the one to try.  (The background worker uses
-- pgext.hetzner_claim, which builds the HTTP requests from the same rows.)
CREATE FUNCTION pgext.server_claim(worker text, "limit" integer DEFAULT 10,
                                   lease interval DEFAULT '2 minutes',
                                   at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (server bigint, claim bigint, action text, name text, account_id uuid, spec jsonb,
               hetzner_id bigint, action_id bigint, location text, attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid bigint;
  s pgext.servers;
BEGIN
  IF $1 IS NULL OR pg_catalog.btrim($1) = '' THEN
    RAISE EXCEPTION 'worker must name the claimant' USING ERRCODE = '22023';
  END IF;
  IF $2 IS NULL OR $2 < 1 OR $2 > 1000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF $3 IS NULL OR $3 < interval '1 second' OR $3 > interval '1 hour' THEN
    RAISE EXCEPTION 'lease must be between 1 second and 1 hour' USING ERRCODE = '22023';
  END IF;
  IF $4 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  FOR sid IN
    SELECT x.id FROM pgext.servers x
     WHERE x.next_action IS NOT NULL AND x.next_attempt_at <= $4
       AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
     ORDER BY x.next_attempt_at, x.id
     LIMIT $2 FOR UPDATE SKIP LOCKED
  LOOP
    s := pgext.server_take(sid, $1, $4 + $3, $4);
    server := s.id; claim := s.claim; action := s.claimed_action; name := s.name;
    account_id := s.account_id; spec := s.spec; hetzner_id := s.hetzner_id; action_id := s.action_id;
    location := s.location; attempts := s.attempts;
    RETURN NEXT;
  END LOOP;
END
$$;

-- Internal: the class of an API response handed to server_report.
--   ok           2xx without an error
--   retry        rate_limit_exceeded, conflict, locked, timeout, server_error,
--                unavailable, 429, 5xx, and the worker's own 'network',
--                'too_large', 'tls' (no usable response) and 'malformed'
--                (unreadable body)
--   unavailable  resource_unavailable / placement_error (no capacity there)
--   uniqueness   uniqueness_error (the name exists: an earlier create worked)
--   not_found    not_found / 404
--   fatal        anything else (invalid_input, forbidden, quota, ...)
CREATE FUNCTION pgext.server_response_class(response jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  code pg_catalog.text := $1 -> 'error' ->> 'code';
  http integer;
BEGIN
  IF pg_catalog.jsonb_typeof($1) IS DISTINCT FROM 'object'
     OR ($1 ? 'http_status' AND pg_catalog.jsonb_typeof($1 -> 'http_status') <> 'number')
     OR NOT ($1 ? 'http_status' OR code IS NOT NULL) THEN
    RAISE EXCEPTION 'invalid API response for server_report' USING ERRCODE = '22023',
      DETAIL = 'Expected an object with "http_status" (a number) and the response body''s fields, or "error": {"code", "message"}.',
      HINT = 'Report a transport failure as {"error":{"code":"network","message":"..."}} and an unreadable body as code "malformed".';
  END IF;
  http := ($1 ->> 'http_status')::pg_catalog.numeric::integer;
  IF code IS NOT NULL THEN
    RETURN CASE
      WHEN code = 'uniqueness_error' THEN 'uniqueness'
      WHEN code IN ('resource_unavailable', 'placement_error') THEN 'unavailable'
      WHEN code = 'not_found' THEN 'not_found'
      WHEN code IN ('rate_limit_exceeded', 'conflict', 'locked', 'timeout', 'server_error',
                    'unavailable', 'network', 'too_large', 'tls', 'malformed') THEN 'retry'
      WHEN http >= 500 THEN 'retry'
      ELSE 'fatal' END;
  END IF;
  RETURN CASE
    WHEN http = 429 OR http >= 500 THEN 'retry'
    WHEN http = 404 THEN 'not_found'
    WHEN http BETWEEN 200 AND 299 THEN 'ok'
    ELSE 'fatal' END;
END
$$;

-- Internal: a creating server exists and runs at Hetzner.  With a health
-- check in its spec it is configuring until the first check passes; without
-- one there is nothing to wait for and it is active at once.
CREATE FUNCTION pgext.server_created(server bigint, what text, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF (SELECT pg_catalog.jsonb_typeof(x.spec -> 'health') IN ('object', 'array')
        FROM pgext.servers x WHERE x.id = $1) THEN
    PERFORM pgext.server_move($1, 'configuring', $2 || '; waiting for the first health check', 'worker', $3);
  ELSE
    PERFORM pgext.server_move($1, 'active', 'created; the spec has no health check', 'worker', $3);
  END IF;
END
$$;

-- The worker reports what the API answered for a claimed action (response:
-- {"http_status": N, ...the body} or {"error": {...}}); this decides the next
-- state in one short transaction and returns the outcome:
--   stale          the claim no longer holds the row (taken back): ignored
--   retry          retryable error: attempts+1, backoff with jitter (at least
--                  "retry_after" seconds when given), state unchanged
--   next_location  no capacity in that location: the next of spec.locations
--   no_capacity    no capacity in any location: from the first one again
--                  after a backoff (30 s doubling to 10 min, jittered); the
--                  server does not fail for it (the requested timeout may)
--   lookup         the name exists / the action is gone / a create's answer
--                  never arrived: look it up by name (never create blindly)
--   not_found      a lookup of a requested server found nothing: create again
--   running        the create is still running: poll again in 5 s
--   cleaned        a failed server's leftovers are gone
--   otherwise the new state (creating, configuring, active, paused,
--   deleted, failed) or the unchanged one.
-- action 'configured' (no claim) is the health checks' word that a
-- configuring server works: it becomes active (until the health issue, an
-- operator or the demo says it).
CREATE FUNCTION pgext.server_report(server bigint, action text, response jsonb, claim bigint DEFAULT NULL,
                                    at timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  cls pg_catalog.text;
  err pg_catalog.text;
  outcome pg_catalog.text;
  srv pg_catalog.jsonb;
  act pg_catalog.text;
  wait interval;
  unknown boolean;
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('create', 'poll_action', 'lookup', 'power_off', 'power_on', 'delete',
                              'reboot', 'reset', 'configured') THEN
    RAISE EXCEPTION 'unknown server action %', pg_catalog.quote_nullable($2) USING ERRCODE = '22023',
      HINT = 'Actions: create, poll_action, lookup, power_off, power_on, delete, reboot, reset (claimed), configured.';
  END IF;
  IF $5 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  s := pgext.server_lock($1);
  IF $2 = 'configured' THEN
    IF s.state <> 'configuring' THEN
      RETURN 'stale';
    END IF;
    PERFORM pgext.server_move($1, 'active', COALESCE($3 ->> 'reason', 'configured: first health check passed'),
                              'worker', $5);
    PERFORM pgext.server_replan($1, $5);
    RETURN 'active';
  END IF;
  IF $4 IS NULL THEN
    RAISE EXCEPTION 'claim must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the claim number server_claim returned with this work item.';
  END IF;
  cls := pgext.server_response_class($3);
  IF s.claimed_by IS NULL OR s.claim <> $4 THEN
    RETURN 'stale';
  END IF;
  IF s.claimed_action <> $2 THEN
    RAISE EXCEPTION 'claim % of server % is for %, not %', $4, $1, s.claimed_action, $2 USING ERRCODE = '22023';
  END IF;
  err := CASE WHEN $3 ? 'error'
              THEN pg_catalog.format('%s: %s (%s)', $3 -> 'error' ->> 'code',
                                     COALESCE($3 -> 'error' ->> 'message', 'no message'),
                                     COALESCE($3 ->> 'http_status', 'no response'))
              WHEN cls <> 'ok' THEN pg_catalog.format('HTTP %s', $3 ->> 'http_status') END;
  UPDATE pgext.servers x SET claimed_by = NULL, claimed_until = NULL, claimed_action = NULL
   WHERE x.id = $1;

  IF cls = 'retry' OR (cls = 'fatal' AND $2 <> 'create') THEN
    -- transient (or, for anything but a create, an error that waiting may cure: it stays visible)
    wait := GREATEST(pgext.server_backoff(s.attempts, '2 seconds', '5 minutes'),
                     pg_catalog.make_interval(secs => COALESCE(($3 ->> 'retry_after')::double precision, 0)));
    -- a create refused before it ran (rate limit, conflict, locked) made
    -- nothing; any other retryable answer (no response, 5xx, unreadable)
    -- leaves its outcome unknown: the next step is a lookup by name
    unknown := $2 = 'create'
               AND COALESCE($3 -> 'error' ->> 'code', '') NOT IN ('rate_limit_exceeded', 'conflict', 'locked')
               AND ($3 ->> 'http_status') IS DISTINCT FROM '429';
    UPDATE pgext.servers x
       SET attempts = x.attempts + 1, next_attempt_at = $5 + wait, last_error = err,
           create_unknown = CASE WHEN $2 = 'create' THEN unknown ELSE x.create_unknown END,
           next_action = CASE WHEN unknown AND x.next_action = 'create' THEN 'lookup' ELSE x.next_action END
     WHERE x.id = $1;
    outcome := CASE WHEN unknown THEN 'lookup' ELSE 'retry' END;
  ELSIF $2 = 'create' THEN
    UPDATE pgext.servers x SET create_unknown = false WHERE x.id = $1;
    IF cls = 'ok' THEN
      srv := $3 -> 'server';
      UPDATE pgext.servers x
         SET hetzner_id = (srv ->> 'id')::bigint,
             ipv4 = srv -> 'public_net' -> 'ipv4' ->> 'ip',
             location = COALESCE(srv -> 'datacenter' -> 'location' ->> 'name', x.location),
             action_id = ($3 -> 'action' ->> 'id')::bigint,
             hetzner_status = srv ->> 'status',
             capacity_rounds = 0,
             last_error = NULL
       WHERE x.id = $1;
      IF s.state = 'requested' THEN
        PERFORM pgext.server_move($1, 'creating',
                                  pg_catalog.format('Hetzner server %s created in %s', srv ->> 'id',
                                                    COALESCE(srv -> 'datacenter' -> 'location' ->> 'name', s.location)),
                                  'worker', $5);
      ELSIF s.state = 'failed' THEN
        UPDATE pgext.servers x SET needs_cleanup = true WHERE x.id = $1;
      END IF;
    ELSIF cls = 'unavailable' THEN
      UPDATE pgext.servers x SET last_error = err WHERE x.id = $1;
      IF s.state = 'requested' AND pg_catalog.jsonb_array_length(s.spec -> 'locations') > s.location_index + 1 THEN
        UPDATE pgext.servers x SET location_index = x.location_index + 1, next_attempt_at = $5, attempts = 0
         WHERE x.id = $1;
        outcome := 'next_location';
      ELSIF s.state = 'requested' THEN
        -- every location was tried: wait, then go down the list again
        UPDATE pgext.servers x
           SET location_index = 0, attempts = 0, capacity_rounds = x.capacity_rounds + 1,
               next_attempt_at = $5 + pgext.server_backoff(x.capacity_rounds, '30 seconds', '10 minutes'),
               last_error = pg_catalog.format('no capacity in any location (%s): %s',
                              (SELECT pg_catalog.string_agg(l, ', ') FROM pg_catalog.jsonb_array_elements_text(s.spec -> 'locations') l),
                              err)
         WHERE x.id = $1;
        outcome := 'no_capacity';
      END IF;
    ELSIF cls = 'uniqueness' THEN
      -- an earlier create went through (its answer was lost): find it, never create twice
      UPDATE pgext.servers x SET last_error = err, action_id = NULL WHERE x.id = $1;
      IF s.state = 'requested' THEN
        PERFORM pgext.server_move($1, 'creating', 'the name exists at Hetzner: an earlier create went through', 'worker', $5);
      END IF;
      outcome := 'lookup';
    ELSE
      UPDATE pgext.servers x SET last_error = err WHERE x.id = $1;
      IF s.state = 'requested' THEN
        PERFORM pgext.server_fail($1, 'create refused: ' || err, 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 = 'poll_action' THEN
    act := $3 -> 'action' ->> 'status';
    IF cls = 'not_found' THEN
      UPDATE pgext.servers x SET action_id = NULL, last_error = err WHERE x.id = $1;
      outcome := 'lookup';
    ELSIF act = 'success' THEN
      UPDATE pgext.servers x SET action_id = NULL, last_error = NULL WHERE x.id = $1;
      IF s.state = 'creating' THEN
        PERFORM pgext.server_created($1, 'create action finished', $5);
      END IF;
    ELSIF act = 'error' THEN
      IF s.state = 'creating' THEN
        PERFORM pgext.server_fail($1, pg_catalog.format('create action failed: %s: %s',
                                    $3 -> 'action' -> 'error' ->> 'code', $3 -> 'action' -> 'error' ->> 'message'),
                                  'worker', $5);
      END IF;
    ELSE
      UPDATE pgext.servers x SET next_attempt_at = $5 + interval '5 seconds' WHERE x.id = $1;
      outcome := 'running';
    END IF;
  ELSIF $2 = 'lookup' THEN
    srv := COALESCE($3 -> 'servers' -> 0, $3 -> 'server');
    IF cls = 'ok' AND srv IS NOT NULL AND srv <> 'null' THEN
      UPDATE pgext.servers x
         SET hetzner_id = (srv ->> 'id')::bigint,
             ipv4 = COALESCE(srv -> 'public_net' -> 'ipv4' ->> 'ip', x.ipv4),
             location = COALESCE(srv -> 'datacenter' -> 'location' ->> 'name', x.location),
             hetzner_status = srv ->> 'status',
             create_unknown = false, capacity_rounds = 0
       WHERE x.id = $1;
      IF s.state = 'requested' THEN
        -- a create whose answer never arrived went through: adopt it
        PERFORM pgext.server_move($1, 'creating',
                                  pg_catalog.format('Hetzner server %s found by name after a create whose answer never arrived',
                                                    srv ->> 'id'), 'worker', $5);
        s.state := 'creating';
      END IF;
      IF s.state = 'creating' AND srv ->> 'status' = 'running' THEN
        PERFORM pgext.server_created($1, 'found running at Hetzner', $5);
      ELSIF s.state = 'creating' THEN
        UPDATE pgext.servers x SET next_attempt_at = $5 + interval '5 seconds' WHERE x.id = $1;
        outcome := 'running';
      END IF;
    ELSE
      -- no server by that name at Hetzner
      UPDATE pgext.servers x SET create_unknown = false WHERE x.id = $1;
      IF s.state = 'requested' THEN
        outcome := 'not_found';
      ELSIF s.state = 'deleting' THEN
        PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (not found at Hetzner)', 'worker', $5);
      ELSIF s.state = 'failed' THEN
        UPDATE pgext.servers x SET needs_cleanup = false, create_sent = false, hetzner_id = NULL, ipv4 = NULL
         WHERE x.id = $1;
        outcome := 'cleaned';
      ELSIF s.state = 'creating' THEN
        UPDATE pgext.servers x SET create_sent = false WHERE x.id = $1;
        PERFORM pgext.server_fail($1, 'no server named ' || s.name || ' at Hetzner', 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 IN ('power_off', 'power_on') THEN
    IF cls = 'ok' THEN
      UPDATE pgext.servers x SET action_id = ($3 -> 'action' ->> 'id')::bigint, last_error = NULL,
                                 hetzner_status = NULL
       WHERE x.id = $1;
      IF $2 = 'power_off' AND s.state = 'active' THEN
        PERFORM pgext.server_move($1, 'paused', COALESCE(s.desired_reason, 'powered off'), 'worker', $5);
      ELSIF $2 = 'power_on' AND s.state = 'paused' THEN
        PERFORM pgext.server_move($1, 'active', COALESCE(s.desired_reason, 'powered on'), 'worker', $5);
      END IF;
    ELSE
      -- not_found: the server is gone at Hetzner
      UPDATE pgext.servers x SET hetzner_id = NULL, create_sent = false, ipv4 = NULL, last_error = err
       WHERE x.id = $1;
      IF s.state = 'deleting' THEN
        -- asked to go away meanwhile: it already has
        PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (already gone at Hetzner)', 'worker', $5);
      ELSE
        PERFORM pgext.server_fail($1, 'server ' || s.name || ' no longer exists at Hetzner', 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 IN ('reboot', 'reset') THEN
    IF cls = 'ok' THEN
      -- sent: the app hears that its agent restarts (pgext.health_events has the attempt)
      UPDATE pgext.servers x SET recovery_action = NULL, last_error = NULL WHERE x.id = $1;
      INSERT INTO pgext.outbox (account_id, kind, server_id, detail)
      VALUES (s.account_id, 'agent_restarting', $1,
              pg_catalog.format('%s (attempt %s)', $2,
                                COALESCE((SELECT y.recovery_attempts FROM pgext.health_servers y WHERE y.server_id = $1), 1)));
    ELSIF cls <> 'not_found' THEN
      -- (unavailable, uniqueness: not answers a reboot should get) kept, tried again later
      UPDATE pgext.servers x
         SET attempts = x.attempts + 1, last_error = err,
             next_attempt_at = $5 + pgext.server_backoff(x.attempts, '2 seconds', '5 minutes')
       WHERE x.id = $1;
      outcome := 'retry';
    ELSE
      -- not_found: the server is gone at Hetzner
      UPDATE pgext.servers x SET hetzner_id = NULL, create_sent = false, ipv4 = NULL, last_error = err,
                                 recovery_action = NULL
       WHERE x.id = $1;
      IF s.state = 'deleting' THEN
        PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (already gone at Hetzner)', 'worker', $5);
      ELSE
        PERFORM pgext.server_fail($1, 'server ' || s.name || ' no longer exists at Hetzner', 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 = 'delete' THEN
    -- ok or not_found: it is gone
    IF s.state = 'deleting' THEN
      PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted'), 'worker', $5);
      UPDATE pgext.servers x SET last_error = NULL WHERE x.id = $1;
    ELSIF s.state = 'failed' THEN
      UPDATE pgext.servers x SET needs_cleanup = false, create_sent = false, create_unknown = false,
                                 hetzner_id = NULL, ipv4 = NULL
       WHERE x.id = $1;
      outcome := 'cleaned';
    END IF;
  END IF;
  PERFORM pgext.server_replan($1, $5);
  IF outcome IS NULL THEN
    SELECT x.state INTO outcome FROM pgext.servers x WHERE x.id = $1;
  END IF;
  RETURN outcome;
END
$$;

-- Apply the policy and the clocks to every server not deleted (operators;
-- the worker calls it): the desired state from
-- pgext.account_server_desired (its 'deleting' is desired 'deleted', for
-- good); a server past pgext.server_requested_timeout /
-- server_creating_timeout / server_configuring_timeout in that state fails;
-- a failed create is retried when its retry_at has come; the next action is
-- queued.  Rows another transaction holds are skipped (the next run takes
-- them).  Returns how many servers changed desired state, state or next action.
CREATE FUNCTION pgext.server_reconcile(at timestamptz DEFAULT pg_catalog.now()) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  t pgext.servers;
  n integer := 0;
  want pg_catalog.text;
  why pg_catalog.text;
  limit_for interval;
  lim integer := pg_catalog.current_setting('pgext.server_create_retries')::integer;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  FOR s IN SELECT * FROM pgext.servers x WHERE x.state <> 'deleted' ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    IF s.desired_state <> 'deleted' THEN
      SELECT d.desired_state, d.reason INTO want, why
        FROM pgext.account_server_desired(s.account_id, CASE WHEN s.state = 'paused' THEN s.state_since END, $1) d;
      want := CASE want WHEN 'deleting' THEN 'deleted' WHEN 'active' THEN 'active' WHEN 'paused' THEN 'paused' END;
      IF want IS NULL THEN
        RAISE EXCEPTION 'account_server_desired gave no valid desired state for account %', s.account_id
          USING ERRCODE = 'XX000';
      END IF;
      IF want = 'deleted' THEN
        PERFORM pgext.server_begin_delete(s.id, why, 'policy', $1);
      ELSIF want <> s.desired_state OR why IS DISTINCT FROM s.desired_reason THEN
        UPDATE pgext.servers x SET desired_state = want, desired_reason = why WHERE x.id = s.id;
      END IF;
    END IF;
    SELECT * INTO t FROM pgext.servers x WHERE x.id = s.id;
    limit_for := CASE t.state
                   WHEN 'requested' THEN pg_catalog.current_setting('pgext.server_requested_timeout')::interval
                   WHEN 'creating' THEN pg_catalog.current_setting('pgext.server_creating_timeout')::interval
                   WHEN 'configuring' THEN pg_catalog.current_setting('pgext.server_configuring_timeout')::interval END;
    IF limit_for IS NOT NULL AND t.state_since + limit_for <= $1 THEN
      PERFORM pgext.server_fail(t.id, pg_catalog.format('%s for longer than %s%s', t.state,
                                  pg_catalog.current_setting('pgext.server_' || t.state || '_timeout'),
                                  COALESCE(' (last error: ' || t.last_error || ')', '')),
                                'policy', $1);
    ELSIF t.state = 'failed' AND t.retry_at <= $1 AND NOT t.needs_cleanup AND t.desired_state = 'active'
          AND (t.claimed_until IS NULL OR t.claimed_until <= $1) THEN
      PERFORM pgext.server_move(t.id, 'requested',
                                pg_catalog.format('create retry %s of %s', t.create_retries + 1, lim), 'policy', $1);
      UPDATE pgext.servers x
         SET create_retries = x.create_retries + 1, retry_at = NULL, location_index = 0, capacity_rounds = 0,
             hetzner_id = NULL, ipv4 = NULL, action_id = NULL, last_error = NULL
       WHERE x.id = t.id;
    END IF;
    PERFORM pgext.server_replan(s.id, $1);
    SELECT * INTO t FROM pgext.servers x WHERE x.id = s.id;
    IF (t.desired_state, t.state, t.next_action) IS DISTINCT FROM (s.desired_state, s.state, s.next_action) THEN
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- Per server, for people and dashboards: the state and since when, what is
-- wanted, why (the last transition's reason, e.g. 'paused: payment failed,
-- grace ended on 2026-11-20', then '; next: ' and the policy's reason while
-- the desired state is still to be reached), where, and the queued work.
CREATE VIEW pgext.server_status WITH (security_invoker = true) AS
SELECT s.id AS server, s.account_id, s.name, s.state, s.state_since, s.desired_state,
       CASE WHEN s.state_reason = s.state OR s.state_reason LIKE s.state || ':%' THEN s.state_reason
            ELSE s.state || ': ' || COALESCE(s.state_reason, '') END
         || CASE WHEN s.desired_state <> s.state
                      AND NOT (s.desired_state = 'deleted' AND s.state = 'deleting')
                      AND NOT (s.desired_state = 'active' AND s.state IN ('requested', 'creating', 'configuring'))
                 THEN '; next: ' || COALESCE(s.desired_reason, s.desired_state)
                 ELSE '' END AS why,
       s.active_since, s.last_error, s.location, s.ipv4, s.hetzner_id,
       s.next_action, s.attempts, s.next_attempt_at, s.retry_at, s.needs_cleanup
  FROM pgext.servers s;

-- The status of one account's servers (apps).
CREATE FUNCTION pgext.server_status_of(account uuid) RETURNS SETOF pgext.server_status
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT * FROM pgext.server_status st WHERE st.account_id = $1 ORDER BY st.server
$$;

REVOKE ALL ON pgext.server_transitions, pgext.servers, pgext.server_history, pgext.server_status
  FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.server_name(text),
  pgext.servers_state_guard(),
  pgext.servers_state_record(),
  pgext.server_move(bigint, text, text, text, timestamptz),
  pgext.server_plan(pgext.servers),
  pgext.server_replan(bigint, timestamptz),
  pgext.server_backoff(integer, interval, interval),
  pgext.server_fail(bigint, text, text, timestamptz),
  pgext.server_begin_delete(bigint, text, text, timestamptz),
  pgext.server_request(uuid, text, jsonb),
  pgext.server_lock(bigint),
  pgext.server_transition(bigint, text, text),
  pgext.server_delete(bigint, text),
  pgext.server_take(bigint, text, timestamptz, timestamptz),
  pgext.server_claim(text, integer, interval, timestamptz),
  pgext.server_response_class(jsonb),
  pgext.server_created(bigint, text, timestamptz),
  pgext.server_report(bigint, text, jsonb, bigint, timestamptz),
  pgext.server_reconcile(timestamptz),
  pgext.server_status_of(uuid)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.server_name(text),
  pgext.server_request(uuid, text, jsonb),
  pgext.server_delete(bigint, text),
  pgext.server_status_of(uuid)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.server_transition(bigint, text, text),
  pgext.server_claim(text, integer, interval, timestamptz),
  pgext.server_report(bigint, text, jsonb, bigint, timestamptz),
  pgext.server_reconcile(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.server_transitions, pgext.servers, pgext.server_history, pgext.server_status
  TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows; identity sequences too (sql/backups.sql checks).
-- pgext.server_transitions is not: its rows come from this script.
SELECT pg_catalog.pg_extension_config_dump('pgext.servers', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.servers', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.server_history', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.server_history', 'id'), '');
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
    RAISE EXCEPTION 'classes must name some of urgent, reconcile, normal, not %', COALESCE($3::pg_catalog.text, 'NULL')
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
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' THEN
    RAISE EXCEPTION 'keeping an orphan needs a reason' USING ERRCODE = '22023',
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

-- Internal: the stored form of a Stripe event (webhook_ingest's whitelist).
CREATE FUNCTION pgext.stripe_event_minimal(event jsonb) RETURNS jsonb
AS 'MODULE_PATHNAME', 'stripe_event_minimal'
LANGUAGE C IMMUTABLE STRICT SET search_path = pg_catalog, pgext, pg_temp;

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
  IF $3 IS NULL OR pg_catalog.cardinality($3) = 0 OR pg_catalog.array_position($3, NULL) IS NOT NULL
     OR NOT ($3 <@ ARRAY['urgent', 'reconcile', 'normal']::pg_catalog.text[]) THEN
    RAISE EXCEPTION 'classes must name some of urgent, reconcile, normal, not %', COALESCE($3::pg_catalog.text, 'NULL')
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
       OR ($2 BETWEEN 200 AND 299 AND NOT (
             parsed ->> 'object' = 'list'
             AND pg_catalog.jsonb_typeof(parsed -> 'data') = 'array'
             AND pg_catalog.jsonb_typeof(parsed -> 'has_more') = 'boolean'
             -- more pages need the last id to continue from
             AND (NOT (parsed ->> 'has_more')::boolean
                  OR (pg_catalog.jsonb_array_length(parsed -> 'data') > 0
                      AND (parsed -> 'data' -> -1 ->> 'id') ~ '^[A-Za-z0-9_]{1,255}$')))) THEN
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
CREATE VIEW pgext.stripe_sync_status AS
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
CREATE VIEW pgext.stripe_sync_requests AS
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
------------------------------------------------------------------------------
-- Worker: the background worker's controls and status (src/worker/)
------------------------------------------------------------------------------

-- Wake the worker now (apps call it after queuing work); false when the
-- worker is not running.
CREATE FUNCTION pgext.worker_wake() RETURNS boolean
AS 'MODULE_PATHNAME', 'worker_wake'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- Make one task due now and wake the worker; an unknown task is an error
-- (22023) that lists the tasks.  False when the worker is not running.
CREATE FUNCTION pgext.worker_run_now(task text) RETURNS boolean
AS 'MODULE_PATHNAME', 'worker_run_now'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- One row per task: interval, last run, outcome, next run, runs; and the
-- worker's pid and why it refuses to act (NULL while it acts).
CREATE FUNCTION pgext.worker_tasks(OUT task text, OUT "interval" interval,
                                   OUT last_run_at timestamptz, OUT last_ok boolean,
                                   OUT last_error text, OUT next_run_at timestamptz,
                                   OUT runs bigint, OUT worker_pid integer, OUT refusing text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'worker_tasks'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- The work waiting for a task (NULL where a task has no queue): events to
-- apply, servers with an action queued (or a reconcile page / orphan delete
-- for hetzner_reconcile), Stripe runs open (subscription lists and
-- on-demand account syncs; event lists), api_calls rows past their retention.
CREATE FUNCTION pgext.worker_queue_depth(task text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE $1
    WHEN 'webhook_apply' THEN
      (SELECT pg_catalog.count(*) FROM pgext.webhook_events e WHERE e.status IN ('pending', 'received'))
    WHEN 'server_reconcile' THEN
      (SELECT pg_catalog.count(*) FROM pgext.servers s WHERE s.next_action IS NOT NULL)
    WHEN 'hetzner_reconcile' THEN
      (SELECT pg_catalog.count(*) FROM pgext.hetzner_reconcile_runs r WHERE r.finished_at IS NULL)
      + (SELECT pg_catalog.count(*) FROM pgext.server_orphans o
          WHERE o.delete_queued_at IS NOT NULL AND o.deleted_at IS NULL)
    WHEN 'stripe_reconcile' THEN
      (SELECT pg_catalog.count(*) FROM pgext.stripe_sync_runs r
        WHERE r.status = 'running' AND r.kind IN ('reconcile', 'account'))
    WHEN 'stripe_events' THEN
      (SELECT pg_catalog.count(*) FROM pgext.stripe_sync_runs r WHERE r.status = 'running' AND r.kind = 'events')
    WHEN 'api_calls_retention' THEN
      (SELECT pg_catalog.count(*) FROM pgext.api_calls c
        WHERE c.at < pg_catalog.now() - pg_catalog.current_setting('pgext.api_calls_retention')::interval)
  END
$$;

CREATE VIEW pgext.worker_status AS
  SELECT t.*, pgext.worker_queue_depth(t.task) AS queue_depth FROM pgext.worker_tasks() t;

REVOKE ALL ON FUNCTION pgext.worker_wake(), pgext.worker_run_now(text),
  pgext.worker_tasks(), pgext.worker_queue_depth(text) FROM PUBLIC;
REVOKE ALL ON pgext.worker_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.worker_wake() TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.worker_run_now(text), pgext.worker_tasks(), pgext.worker_queue_depth(text)
  TO pgext_admin;
GRANT SELECT ON pgext.worker_status TO pgext_admin;

-- One row per external API the worker calls: its base URL, why it refuses
-- to call it (NULL while it calls it), calls in flight and the limit on
-- them, counters since the worker started, the rate-limit budget (limit,
-- the worker's estimate of what is left now, when it is full again), until
-- when calls wait after a 429, when the worker next claims work, and the
-- last error.
CREATE FUNCTION pgext.worker_apis(OUT api text, OUT base_url text, OUT refusing text,
                                  OUT concurrency integer, OUT in_flight integer,
                                  OUT sent bigint, OUT no_response bigint, OUT rate_limited bigint,
                                  OUT report_errors bigint, OUT ratelimit_limit bigint,
                                  OUT ratelimit_remaining bigint, OUT ratelimit_reset timestamptz,
                                  OUT paused_until timestamptz, OUT next_claim_at timestamptz,
                                  OUT last_error text, OUT last_error_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'worker_apis'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

CREATE VIEW pgext.worker_api_status AS SELECT * FROM pgext.worker_apis();

REVOKE ALL ON FUNCTION pgext.worker_apis() FROM PUBLIC;
REVOKE ALL ON pgext.worker_api_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.worker_apis() TO pgext_admin;
GRANT SELECT ON pgext.worker_api_status TO pgext_admin;

-- When the worker should next look for Hetzner work (NULL: nothing queued):
-- the earliest due server action, claim to take back, orphan delete or
-- reconcile page.  The worker sleeps until then unless woken.
CREATE FUNCTION pgext.hetzner_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pg_catalog.min(t) FROM (
    SELECT pg_catalog.min(GREATEST(s.next_attempt_at, COALESCE(s.claimed_until, '-infinity'))) AS t
      FROM pgext.servers s WHERE s.next_action IS NOT NULL
    UNION ALL
    SELECT pg_catalog.min(GREATEST(o.next_attempt_at, COALESCE(o.claimed_until, '-infinity')))
      FROM pgext.server_orphans o WHERE o.delete_queued_at IS NOT NULL AND o.deleted_at IS NULL
    UNION ALL
    SELECT pg_catalog.min(GREATEST(COALESCE(r.page_due_at, r.started_at), COALESCE(r.page_in_flight_until, '-infinity')))
      FROM pgext.hetzner_reconcile_runs r WHERE r.finished_at IS NULL AND r.next_page IS NOT NULL) due
$$;

REVOKE ALL ON FUNCTION pgext.hetzner_next_due() FROM PUBLIC;

-- Wake the worker at commit when a server gets work to do (a request, a
-- delete, a policy change, a retry): it claims the work within
-- milliseconds instead of at its next timer.  A claim does not change
-- next_action, so the worker's own claims do not wake it.
CREATE FUNCTION pgext.servers_wake_worker() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pgext.worker_wake();
  RETURN NULL;
END
$$;
CREATE TRIGGER servers_wake_worker AFTER INSERT OR UPDATE OF next_action ON pgext.servers
  FOR EACH ROW WHEN (NEW.next_action IS NOT NULL) EXECUTE FUNCTION pgext.servers_wake_worker();

REVOKE ALL ON FUNCTION pgext.servers_wake_worker() FROM PUBLIC;
------------------------------------------------------------------------------
-- Fleet health: checks, their results, agent states, recovery and the
-- breaker (src/health/).  The worker moves bytes (it polls the URLs and hands
-- results to pgext.health_record in batches); everything decided is here.
------------------------------------------------------------------------------

-- One row per health check a server has (added by hand with
-- pgext.health_check_add, or from spec.health when the server becomes
-- configuring: from_spec).  state: unknown | healthy | unhealthy, with the
-- per-check counters; history is pgext.health_events (state changes only).
--   grace_until   failures before it do not count (after the server became
--                 active, or the check was added to an active server)
--   ignored_total failures that did not count (grace, server not active)
--   last_error    NULL after a pass; else 'HTTP 503', 'timeout', 'refused',
--                 'tls', 'dns', 'network', 'too_large'
CREATE TABLE pgext.health_checks (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  server_id             bigint NOT NULL REFERENCES pgext.servers (id),
  account_id            uuid NOT NULL,
  url                   text NOT NULL,
  kind                  text NOT NULL,
  every                 interval NOT NULL,
  timeout               interval NOT NULL,
  enabled               boolean NOT NULL DEFAULT true,
  from_spec             boolean NOT NULL DEFAULT false,
  state                 text NOT NULL DEFAULT 'unknown',
  state_since           timestamptz,
  consecutive_failures  integer NOT NULL DEFAULT 0,
  consecutive_successes integer NOT NULL DEFAULT 0,
  checks_total          bigint NOT NULL DEFAULT 0,
  failures_total        bigint NOT NULL DEFAULT 0,
  ignored_total         bigint NOT NULL DEFAULT 0,
  last_checked_at       timestamptz,
  last_ok_at            timestamptz,
  last_latency_ms       integer,
  last_status           integer,
  last_error            text,
  grace_until           timestamptz,
  created_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT health_checks_unique UNIQUE (server_id, url, kind),
  CONSTRAINT health_checks_kind_valid CHECK (kind IN ('shallow', 'deep')),
  CONSTRAINT health_checks_state_valid CHECK (state IN ('unknown', 'healthy', 'unhealthy')),
  CONSTRAINT health_checks_every_valid CHECK (every BETWEEN interval '100 milliseconds' AND interval '1 day'),
  CONSTRAINT health_checks_timeout_valid CHECK (timeout > interval '0' AND timeout < every)
);

-- One row per server that has checks: the agent's state from its checks
-- (unhealthy: a shallow check is unhealthy; degraded: only deep ones are;
-- healthy: some check is healthy; else unknown) and its recoveries.
CREATE TABLE pgext.health_servers (
  server_id            bigint PRIMARY KEY REFERENCES pgext.servers (id),
  account_id           uuid NOT NULL,
  agent                text NOT NULL DEFAULT 'unknown',
  agent_since          timestamptz,
  agent_reason         text,
  recovery_attempts    integer NOT NULL DEFAULT 0,
  next_recovery_at     timestamptz,
  last_recovery_at     timestamptz,
  last_recovery_action text,
  CONSTRAINT health_servers_agent_valid CHECK (agent IN ('unknown', 'healthy', 'unhealthy', 'degraded')),
  CONSTRAINT health_servers_action_valid CHECK (last_recovery_action IN ('reboot', 'reset'))
);

-- The history: state changes of checks and agents, recoveries, the breaker
-- and operator pauses (pgext.health_history_retention, pgext.health_retention).
CREATE TABLE pgext.health_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL,
  kind       text NOT NULL,
  server_id  bigint,
  check_id   bigint,
  account_id uuid,
  from_state text,
  to_state   text,
  detail     text,
  CONSTRAINT health_events_kind_valid CHECK (kind IN ('check', 'agent', 'recovery', 'breaker', 'pause'))
);
CREATE INDEX health_events_kind_at ON pgext.health_events (kind, at);
CREATE INDEX health_events_server ON pgext.health_events (server_id, id);

-- The breaker and the operator's pause: at most one row.  The install script
-- writes no rows (a restore brings them back), so no row means closed and not
-- paused; the functions below create it when they first change something.
CREATE TABLE pgext.health_breaker (
  one           boolean PRIMARY KEY DEFAULT true,
  state         text NOT NULL DEFAULT 'closed',
  since         timestamptz,
  reason        text,
  paused        boolean NOT NULL DEFAULT false,
  paused_at     timestamptz,
  paused_by     text,
  paused_reason text,
  CONSTRAINT health_breaker_one CHECK (one),
  CONSTRAINT health_breaker_state_valid CHECK (state IN ('closed', 'open'))
);

-- The version of the check list the worker polls: bumped in the transaction
-- that changes it (a sequence would not be transactional).  No row = 0.
CREATE TABLE pgext.health_config (
  one     boolean PRIMARY KEY DEFAULT true,
  version bigint NOT NULL,
  CONSTRAINT health_config_one CHECK (one)
);

-- The poller's counters in shared memory (src/health/stats.c): one row,
-- zeros and NULLs when the worker does not poll.
CREATE FUNCTION pgext.health_poller()
RETURNS TABLE (checks_loaded integer, in_flight integer, sent bigint, completed bigint, recorded bigint,
               record_errors bigint, checks_per_second double precision, last_flush_at timestamptz,
               last_flush_ms double precision, loaded_at timestamptz, version bigint)
AS 'MODULE_PATHNAME', 'health_poller'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- Internal: bump the check list's version (the worker reloads it).
CREATE FUNCTION pgext.health_config_bump() RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
  INSERT INTO pgext.health_config AS c (one, version) VALUES (true, 1)
  ON CONFLICT (one) DO UPDATE SET version = c.version + 1
$$;

-- Statement trigger on pgext.health_checks: a check was added, removed, or
-- its url, kind, every, timeout or enabled was written.
CREATE FUNCTION pgext.health_checks_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pgext.health_config_bump();
  RETURN NULL;
END
$$;
CREATE TRIGGER health_checks_changed
  AFTER INSERT OR DELETE OR UPDATE OF url, kind, every, timeout, enabled ON pgext.health_checks
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.health_checks_changed();

-- The worker: the check list's version (0 before the first change).
CREATE FUNCTION pgext.health_config_version() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT COALESCE((SELECT c.version FROM pgext.health_config c), 0)
$$;

-- Internal: the rules of a check; raises 22023 naming the field (prefix:
-- '' for the function arguments, 'health[0].' for a spec).  The URL itself
-- is never quoted when it carries userinfo (it may hold a password).
CREATE FUNCTION pgext.health_check_valid(url text, kind text, every interval, timeout interval, prefix text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  authority pg_catalog.text;
BEGIN
  IF $2 NOT IN ('shallow', 'deep') THEN
    RAISE EXCEPTION '%kind must be shallow or deep, not %', $5, pg_catalog.quote_literal($2) USING ERRCODE = '22023',
      HINT = 'shallow: is the agent process up (its /health); deep: can it reach its upstreams.';
  END IF;
  IF pg_catalog.length($1) > 2048 THEN
    RAISE EXCEPTION '%url is longer than 2048 characters', $5 USING ERRCODE = '22023';
  END IF;
  IF $1 ~ '[[:space:][:cntrl:]]' THEN
    RAISE EXCEPTION '%url must not contain whitespace or control characters', $5 USING ERRCODE = '22023',
      HINT = 'Percent-encode them.';
  END IF;
  authority := pg_catalog.substring($1, '^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)');
  IF authority IS NULL THEN
    RAISE EXCEPTION '%url must start with http:// or https://', $5 USING ERRCODE = '22023',
      HINT = 'For example http://{ipv4}:8080/health.';
  END IF;
  IF pg_catalog.strpos(authority, '@') > 0 THEN
    RAISE EXCEPTION '%url must not carry a user name or password', $5 USING ERRCODE = '22023',
      HINT = 'Health checks send no credentials: expose an endpoint that needs none.';
  END IF;
  IF authority !~ '^([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$' THEN
    RAISE EXCEPTION '%url has no valid host: %', $5, pg_catalog.quote_literal($1) USING ERRCODE = '22023',
      HINT = 'For example http://{ipv4}:8080/health.';
  END IF;
  IF $3 < interval '100 milliseconds' OR $3 > interval '1 day' THEN
    RAISE EXCEPTION '%every must be between 100 ms and 1 day, not %', $5, $3 USING ERRCODE = '22023';
  END IF;
  IF $4 <= interval '0' OR $4 >= $3 THEN
    RAISE EXCEPTION '%timeout must be more than 0 and less than every (%), not %', $5, $3, $4 USING ERRCODE = '22023';
  END IF;
END
$$;

-- Internal: an interval in a spec: interval text ('30 s') or seconds.
CREATE FUNCTION pgext.health_spec_interval(v jsonb, field text) RETURNS interval
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r interval;
BEGIN
  IF $1 IS NULL OR $1 = 'null' THEN
    RETURN NULL;
  ELSIF pg_catalog.jsonb_typeof($1) = 'number' THEN
    RETURN pg_catalog.make_interval(secs => ($1 #>> '{}')::double precision);
  ELSIF pg_catalog.jsonb_typeof($1) = 'string' THEN
    BEGIN
      r := ($1 #>> '{}')::interval;
    EXCEPTION WHEN OTHERS THEN
      r := NULL;
    END;
    IF r IS NOT NULL THEN
      RETURN r;
    END IF;
  END IF;
  RAISE EXCEPTION '% must be an interval such as "30 s" or a number of seconds, not %', $2, $1::pg_catalog.text
    USING ERRCODE = '22023';
END
$$;

-- Internal: the checks of a spec, one row each, with defaults applied
-- (field: health or health[n], for messages).
CREATE FUNCTION pgext.health_spec_entries(spec jsonb)
RETURNS TABLE (field text, url text, kind text, every interval, timeout interval)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  e pg_catalog.jsonb;
  n integer := 0;
  k pg_catalog.text;
BEGIN
  FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(
             CASE pg_catalog.jsonb_typeof($1 -> 'health') WHEN 'array' THEN $1 -> 'health'
                  WHEN 'object' THEN pg_catalog.jsonb_build_array($1 -> 'health') ELSE '[]' END) x
  LOOP
    field := CASE WHEN pg_catalog.jsonb_typeof($1 -> 'health') = 'array' THEN 'health[' || n || ']' ELSE 'health' END;
    n := n + 1;
    IF pg_catalog.jsonb_typeof(e) IS DISTINCT FROM 'object' OR pg_catalog.jsonb_typeof(e -> 'url') IS DISTINCT FROM 'string' THEN
      RAISE EXCEPTION '% must be an object with a "url" string', field USING ERRCODE = '22023';
    END IF;
    SELECT pg_catalog.min(x) INTO k FROM pg_catalog.jsonb_object_keys(e) x
     WHERE x NOT IN ('url', 'kind', 'every', 'timeout');
    IF k IS NOT NULL THEN
      RAISE EXCEPTION '%.% is not a health check field', field, k USING ERRCODE = '22023',
        HINT = 'A health check has url, kind (shallow or deep), every and timeout.';
    END IF;
    IF e ? 'kind' AND e -> 'kind' <> 'null' AND pg_catalog.jsonb_typeof(e -> 'kind') <> 'string' THEN
      RAISE EXCEPTION '%.kind must be shallow or deep', field USING ERRCODE = '22023';
    END IF;
    url := e ->> 'url';
    kind := COALESCE(e ->> 'kind', 'shallow');
    every := COALESCE(pgext.health_spec_interval(e -> 'every', field || '.every'),
                      CASE WHEN kind = 'deep' THEN interval '5 minutes' ELSE interval '30 seconds' END);
    timeout := COALESCE(pgext.health_spec_interval(e -> 'timeout', field || '.timeout'), interval '5 seconds');
    RETURN NEXT;
  END LOOP;
END
$$;

-- spec.health's checks, checked up front by pgext.server_request (so adding
-- them later can never fail): kind, every, timeout and the url's shape with
-- {ipv4} standing for an address.  22023 naming the field.
CREATE FUNCTION pgext.health_spec_check(spec jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  e record;
BEGIN
  FOR e IN SELECT * FROM pgext.health_spec_entries($1) LOOP
    PERFORM pgext.health_check_valid(pg_catalog.replace(e.url, '{ipv4}', '192.0.2.1'), e.kind, e.every,
                                     e.timeout, e.field || '.');
  END LOOP;
END
$$;

-- Internal: recompute a server's agent state from its checks; on a change:
-- the health_servers row, an event and an outbox row (agent_healthy,
-- agent_unhealthy, agent_degraded).  Leaving 'unhealthy' for healthy or
-- degraded clears the recovery backoff and cancels a queued recovery action
-- not handed out yet.  Returns the agent state.
CREATE FUNCTION pgext.health_agent_update(server bigint, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  h pgext.health_servers;
  acct uuid;
  new_agent pg_catalog.text;
  why pg_catalog.text;
  w record;
BEGIN
  SELECT x.account_id INTO acct FROM pgext.servers x WHERE x.id = $1;
  INSERT INTO pgext.health_servers (server_id, account_id) VALUES ($1, acct) ON CONFLICT (server_id) DO NOTHING;
  SELECT * INTO h FROM pgext.health_servers y WHERE y.server_id = $1 FOR UPDATE;
  SELECT c.kind, c.url, c.state, c.consecutive_failures, c.consecutive_successes, c.last_error INTO w
    FROM pgext.health_checks c WHERE c.server_id = $1
   ORDER BY c.state = 'unhealthy' AND c.kind = 'shallow' DESC, c.state = 'unhealthy' DESC,
            c.state = 'healthy' DESC, c.state_since DESC NULLS LAST, c.id
   LIMIT 1;
  new_agent := CASE WHEN w.state = 'unhealthy' AND w.kind = 'shallow' THEN 'unhealthy'
                WHEN w.state = 'unhealthy' THEN 'degraded'
                WHEN w.state = 'healthy' THEN 'healthy'
                ELSE 'unknown' END;
  IF new_agent = h.agent THEN
    RETURN new_agent;
  END IF;
  why := CASE WHEN new_agent IN ('unhealthy', 'degraded')
                THEN pg_catalog.format('%s check %s failed %s times in a row: %s', w.kind, w.url,
                                       w.consecutive_failures, COALESCE(w.last_error, 'no error recorded'))
              WHEN new_agent = 'healthy'
                THEN pg_catalog.format('%s check %s passed%s', w.kind, w.url,
                                       CASE WHEN w.consecutive_successes > 1
                                            THEN pg_catalog.format(' %s times in a row', w.consecutive_successes)
                                            ELSE '' END)
              WHEN w.state IS NULL THEN 'no health checks'
              ELSE 'no check result yet' END;
  UPDATE pgext.health_servers y
     SET agent = new_agent, agent_since = $2, agent_reason = why,
         recovery_attempts = CASE WHEN h.agent = 'unhealthy' AND new_agent IN ('healthy', 'degraded') THEN 0
                                  ELSE y.recovery_attempts END,
         next_recovery_at = CASE WHEN h.agent = 'unhealthy' AND new_agent IN ('healthy', 'degraded') THEN NULL
                                 ELSE y.next_recovery_at END
   WHERE y.server_id = $1;
  INSERT INTO pgext.health_events (at, kind, server_id, account_id, from_state, to_state, detail)
  VALUES ($2, 'agent', $1, acct, h.agent, new_agent, why);
  IF new_agent <> 'unknown' THEN
    INSERT INTO pgext.outbox (account_id, kind, server_id, detail) VALUES (acct, 'agent_' || new_agent, $1, why);
  END IF;
  IF h.agent = 'unhealthy' AND new_agent IN ('healthy', 'degraded') THEN
    UPDATE pgext.servers x SET recovery_action = NULL
     WHERE x.id = $1 AND x.recovery_action IS NOT NULL AND x.claimed_by IS NULL;
    IF FOUND THEN
      PERFORM pgext.server_replan($1, $2);
    END IF;
  END IF;
  RETURN new_agent;
END
$$;

-- Internal: add (or update) one check of a locked server; the caller has
-- validated.  Returns its id.
CREATE FUNCTION pgext.health_check_put(s pgext.servers, url text, kind text, every interval, timeout interval,
                                       enabled boolean, from_spec boolean, last_error text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  c pgext.health_checks;
BEGIN
  SELECT * INTO c FROM pgext.health_checks x WHERE x.server_id = s.id AND x.url = $2 AND x.kind = $3 FOR UPDATE;
  IF FOUND THEN
    IF (c.every, c.timeout) IS DISTINCT FROM ($4, $5) OR (c.from_spec < $7) THEN
      UPDATE pgext.health_checks x SET every = $4, timeout = $5, from_spec = x.from_spec OR $7 WHERE x.id = c.id;
    END IF;
    RETURN c.id;
  END IF;
  INSERT INTO pgext.health_checks (server_id, account_id, url, kind, every, timeout, enabled, from_spec,
                                   last_error, grace_until)
  VALUES (s.id, s.account_id, $2, $3, $4, $5, $6, $7, $8,
          CASE WHEN s.state = 'active' THEN pg_catalog.now() + pg_catalog.current_setting('pgext.health_grace')::interval END)
  RETURNING id INTO c.id;
  INSERT INTO pgext.health_servers (server_id, account_id) VALUES (s.id, s.account_id) ON CONFLICT (server_id) DO NOTHING;
  RETURN c.id;
END
$$;

-- Add a health check to a server (apps, operators); idempotent on (server,
-- url, kind): the existing id comes back, with the given every and timeout
-- applied.  every NULL: 30 s (shallow) or 5 min (deep).  Errors: NULL 22004;
-- bad kind, url (http(s)://host..., no userinfo, no whitespace, <= 2048
-- chars), every outside [100 ms, 1 day], timeout not in (0, every): 22023;
-- unknown server P0002; deleting or deleted server 55000.  A check added to
-- an active server starts with pgext.health_grace of grace.
CREATE FUNCTION pgext.health_check_add(server bigint, url text, kind text DEFAULT 'shallow',
                                       every interval DEFAULT NULL, timeout interval DEFAULT '5 s')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  e interval;
BEGIN
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL OR $5 IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', CASE WHEN $1 IS NULL THEN 'server' WHEN $2 IS NULL THEN 'url'
                                              WHEN $3 IS NULL THEN 'kind' ELSE 'timeout' END
      USING ERRCODE = '22004';
  END IF;
  e := COALESCE($4, CASE WHEN $3 = 'deep' THEN interval '5 minutes' ELSE interval '30 seconds' END);
  PERFORM pgext.health_check_valid($2, $3, e, $5, '');
  s := pgext.server_lock($1);
  IF s.state IN ('deleting', 'deleted') THEN
    RAISE EXCEPTION 'server % is %: it gets no health checks', $1, s.state USING ERRCODE = '55000';
  END IF;
  RETURN pgext.health_check_put(s, $2, $3, e, $5, true, false, NULL);
END
$$;

-- Change a check (NULL = unchanged); the same rules as health_check_add.  A
-- new url or disabling it starts its state over (unknown).  Returns the row.
CREATE FUNCTION pgext.health_check_update("check" bigint, url text DEFAULT NULL, every interval DEFAULT NULL,
                                          timeout interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS pgext.health_checks
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  c pgext.health_checks;
  s pgext.servers;
  restart boolean;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'check must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO c FROM pgext.health_checks x WHERE x.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'health check % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'List them with: SELECT * FROM pgext.health_checks.';
  END IF;
  SELECT * INTO s FROM pgext.servers x WHERE x.id = c.server_id;
  IF s.state IN ('deleting', 'deleted') THEN
    RAISE EXCEPTION 'server % is %: its health checks cannot change', s.id, s.state USING ERRCODE = '55000';
  END IF;
  PERFORM pgext.health_check_valid(COALESCE($2, c.url), c.kind, COALESCE($3, c.every), COALESCE($4, c.timeout), '');
  IF (COALESCE($2, c.url), COALESCE($3, c.every), COALESCE($4, c.timeout), COALESCE($5, c.enabled))
     IS NOT DISTINCT FROM (c.url, c.every, c.timeout, c.enabled) THEN
    RETURN c;
  END IF;
  IF $2 <> c.url AND EXISTS (SELECT FROM pgext.health_checks x WHERE x.server_id = c.server_id AND x.url = $2
                                                                  AND x.kind = c.kind) THEN
    RAISE EXCEPTION 'server % already has a % check of that url', c.server_id, c.kind USING ERRCODE = '22023',
      HINT = 'Remove one of them with pgext.health_check_remove(check).';
  END IF;
  restart := $2 <> c.url OR ($5 = false AND c.enabled);
  UPDATE pgext.health_checks x
     SET url = COALESCE($2, x.url), every = COALESCE($3, x.every), timeout = COALESCE($4, x.timeout),
         enabled = COALESCE($5, x.enabled),
         state = CASE WHEN restart THEN 'unknown' ELSE x.state END,
         state_since = CASE WHEN restart AND x.state <> 'unknown' THEN pg_catalog.now() ELSE x.state_since END,
         consecutive_failures = CASE WHEN restart THEN 0 ELSE x.consecutive_failures END,
         consecutive_successes = CASE WHEN restart THEN 0 ELSE x.consecutive_successes END,
         last_error = CASE WHEN restart THEN NULL ELSE x.last_error END
   WHERE x.id = $1
  RETURNING * INTO c;
  IF restart THEN
    PERFORM pgext.health_agent_update(c.server_id, pg_catalog.now());
  END IF;
  RETURN c;
END
$$;

-- Remove a check; false when it did not exist.  The server's agent state is
-- recomputed (a server without checks loses its health_servers row).
CREATE FUNCTION pgext.health_check_remove("check" bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'check must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT x.server_id INTO sid FROM pgext.health_checks x WHERE x.id = $1;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  DELETE FROM pgext.health_checks x WHERE x.id = $1;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT FROM pgext.health_checks x WHERE x.server_id = sid) THEN
    PERFORM pgext.health_agent_update(sid, pg_catalog.now());
  ELSE
    DELETE FROM pgext.health_servers y WHERE y.server_id = sid;
  END IF;
  RETURN true;
END
$$;

-- Internal: the checks of a server's spec.health are added (from_spec),
-- '{ipv4}' replaced by its address; without a known address the check is
-- added disabled and says why.  Spec checks no longer in the spec go.
-- Returns how many the spec has.
CREATE FUNCTION pgext.health_checks_from_spec(server bigint) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  e record;
  u pgext.health_checks.url%TYPE;
  keep bigint[] := '{}';
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  FOR e IN SELECT * FROM pgext.health_spec_entries(s.spec) LOOP
    u := CASE WHEN s.ipv4 IS NOT NULL THEN pg_catalog.replace(e.url, '{ipv4}', s.ipv4) ELSE e.url END;
    keep := keep || pgext.health_check_put(s, u, e.kind, e.every, e.timeout,
                                           s.ipv4 IS NOT NULL OR pg_catalog.strpos(e.url, '{ipv4}') = 0, true,
                                           CASE WHEN s.ipv4 IS NULL AND pg_catalog.strpos(e.url, '{ipv4}') > 0
                                                THEN 'no IPv4 address known for {ipv4}' END);
  END LOOP;
  DELETE FROM pgext.health_checks x WHERE x.server_id = $1 AND x.from_spec AND x.id <> ALL (keep);
  RETURN pg_catalog.cardinality(keep);
END
$$;

-- AFTER a server's state changes (a server with checks or spec.health): the
-- worker reloads (version bump); configuring: the spec's checks are added;
-- active from configuring/creating: grace starts; active from paused: checks
-- start over (unknown) with grace; paused/failed/deleting: checks unknown,
-- agent unknown, a queued recovery cleared; deleted: its checks go (the
-- events stay).
CREATE FUNCTION pgext.health_servers_state() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  grace interval := pg_catalog.current_setting('pgext.health_grace')::interval;
BEGIN
  IF NOT (pg_catalog.jsonb_typeof(NEW.spec -> 'health') IN ('object', 'array')
          OR EXISTS (SELECT FROM pgext.health_checks c WHERE c.server_id = NEW.id)) THEN
    RETURN NULL;
  END IF;
  PERFORM pgext.health_config_bump();
  IF NEW.state = 'configuring' THEN
    PERFORM pgext.health_checks_from_spec(NEW.id);
  ELSIF NEW.state = 'active' AND OLD.state IN ('configuring', 'creating') THEN
    UPDATE pgext.health_checks c SET grace_until = NEW.state_since + grace WHERE c.server_id = NEW.id;
  ELSIF NEW.state = 'active' OR NEW.state IN ('paused', 'failed', 'deleting') THEN
    UPDATE pgext.health_checks c
       SET state = 'unknown', state_since = CASE WHEN c.state <> 'unknown' THEN NEW.state_since ELSE c.state_since END,
           consecutive_failures = 0, consecutive_successes = 0,
           grace_until = CASE WHEN NEW.state = 'active' THEN NEW.state_since + grace END
     WHERE c.server_id = NEW.id;
    IF EXISTS (SELECT FROM pgext.health_checks c WHERE c.server_id = NEW.id) THEN
      PERFORM pgext.health_agent_update(NEW.id, NEW.state_since);
    END IF;
    IF NEW.state <> 'active' THEN
      UPDATE pgext.servers x SET recovery_action = NULL WHERE x.id = NEW.id AND x.recovery_action IS NOT NULL;
    END IF;
  ELSIF NEW.state = 'deleted' THEN
    DELETE FROM pgext.health_checks c WHERE c.server_id = NEW.id;
    DELETE FROM pgext.health_servers y WHERE y.server_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER health_servers_state AFTER UPDATE OF state ON pgext.servers
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION pgext.health_servers_state();

-- The worker: the checks to poll: enabled, of a server configuring or
-- active that is meant to be active (a paused, failed or deleting server is
-- never polled, so never "recovered").
CREATE FUNCTION pgext.health_worker_load()
RETURNS TABLE (id bigint, url text, every_ms integer, timeout_ms integer, consecutive_failures integer, state text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT c.id, c.url,
         (pg_catalog.date_part('epoch', c.every) * 1000)::integer,
         (pg_catalog.date_part('epoch', c.timeout) * 1000)::integer,
         c.consecutive_failures, c.state
    FROM pgext.health_checks c JOIN pgext.servers s ON s.id = c.server_id
   WHERE c.enabled AND s.state IN ('configuring', 'active') AND s.desired_state = 'active'
   ORDER BY c.id
$$;

-- The worker: one batch of results (arrays of equal length; statuses
-- element 0 = no HTTP response; errors element NULL when ok).  ids that no
-- longer exist are ignored; when one id comes twice only its later result is
-- applied.  One set-based UPDATE for all; per-row work only for checks whose
-- state changed (an event each, then the agent state of their servers) and
-- for configuring servers whose shallow check passed (they become active).
-- A failure counts when the server is active and the check is out of grace;
-- otherwise it is counted in ignored_total only.  Returns how many checks
-- changed state.
CREATE FUNCTION pgext.health_record(ids bigint[], ok boolean[], statuses integer[], latency_ms integer[],
                                    errors text[], at timestamptz DEFAULT pg_catalog.now())
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n integer := pg_catalog.cardinality($1);
  bad_after integer := pg_catalog.current_setting('pgext.health_unhealthy_after')::integer;
  good_after integer := pg_catalog.current_setting('pgext.health_healthy_after')::integer;
  changed integer;
  agents bigint[];
  configured bigint[];
  sid bigint;
BEGIN
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL OR $4 IS NULL OR $5 IS NULL OR $6 IS NULL THEN
    RAISE EXCEPTION 'ids, ok, statuses, latency_ms, errors and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF pg_catalog.cardinality($2) <> n OR pg_catalog.cardinality($3) <> n OR pg_catalog.cardinality($4) <> n
     OR pg_catalog.cardinality($5) <> n THEN
    RAISE EXCEPTION 'the result arrays must have the same length (ids %, ok %, statuses %, latency_ms %, errors %)',
      n, pg_catalog.cardinality($2), pg_catalog.cardinality($3), pg_catalog.cardinality($4),
      pg_catalog.cardinality($5) USING ERRCODE = '22023';
  END IF;
  IF n = 0 THEN
    RETURN 0;
  END IF;
  IF pg_catalog.array_position($1, NULL) IS NOT NULL OR pg_catalog.array_position($2, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'ids and ok must not contain NULL' USING ERRCODE = '22004';
  END IF;

  WITH r AS (
    SELECT DISTINCT ON (u.id) u.id, u.ok, NULLIF(u.status, 0) AS status, u.latency, u.err
      FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),
                     pg_catalog.unnest($4), pg_catalog.unnest($5)) WITH ORDINALITY AS u(id, ok, status, latency, err, o)
     ORDER BY u.id, u.o DESC
  ), v AS (
    SELECT r.*, o.state AS old_state, s.state AS server_state,
           s.state IN ('configuring', 'active') AS live,
           NOT r.ok AND s.state = 'active' AND (o.grace_until IS NULL OR $6 >= o.grace_until) AS counts
      FROM r JOIN pgext.health_checks o ON o.id = r.id JOIN pgext.servers s ON s.id = o.server_id
  ), u AS (
    UPDATE pgext.health_checks c
       SET checks_total = c.checks_total + 1,
           failures_total = c.failures_total + (NOT v.ok)::integer,
           ignored_total = c.ignored_total + (NOT v.ok AND NOT v.counts)::integer,
           last_checked_at = $6,
           last_ok_at = CASE WHEN v.ok THEN $6 ELSE c.last_ok_at END,
           last_latency_ms = v.latency,
           last_status = v.status,
           last_error = CASE WHEN v.ok THEN NULL ELSE COALESCE(v.err, 'HTTP ' || v.status, 'network') END,
           consecutive_failures = CASE WHEN v.ok THEN 0 WHEN v.counts THEN c.consecutive_failures + 1
                                       ELSE c.consecutive_failures END,
           consecutive_successes = CASE WHEN v.ok THEN c.consecutive_successes + 1 WHEN v.counts THEN 0
                                        ELSE c.consecutive_successes END,
           state = CASE WHEN NOT v.live THEN c.state
                        WHEN v.ok AND (c.state = 'unknown' OR c.consecutive_successes + 1 >= good_after) THEN 'healthy'
                        WHEN v.counts AND c.consecutive_failures + 1 >= bad_after THEN 'unhealthy'
                        ELSE c.state END,
           state_since = CASE WHEN NOT v.live THEN c.state_since
                              WHEN v.ok AND c.state <> 'healthy'
                                   AND (c.state = 'unknown' OR c.consecutive_successes + 1 >= good_after) THEN $6
                              WHEN v.counts AND c.state <> 'unhealthy' AND c.consecutive_failures + 1 >= bad_after THEN $6
                              ELSE c.state_since END
      FROM v
     WHERE c.id = v.id
    RETURNING c.id, c.server_id, c.account_id, c.kind, c.url, c.state, v.old_state, v.ok, v.server_state,
              c.consecutive_failures, c.consecutive_successes, c.last_error
  ), ev AS (
    INSERT INTO pgext.health_events (at, kind, server_id, check_id, account_id, from_state, to_state, detail)
    SELECT $6, 'check', u.server_id, u.id, u.account_id, u.old_state, u.state,
           CASE WHEN u.ok THEN pg_catalog.format('%s check %s passed%s', u.kind, u.url,
                                 CASE WHEN u.consecutive_successes > 1
                                      THEN pg_catalog.format(' %s times in a row', u.consecutive_successes) ELSE '' END)
                ELSE pg_catalog.format('%s check %s failed %s times in a row: %s', u.kind, u.url,
                                       u.consecutive_failures, u.last_error) END
      FROM u WHERE u.state IS DISTINCT FROM u.old_state
     ORDER BY u.id
  )
  SELECT pg_catalog.count(*) FILTER (WHERE u.state IS DISTINCT FROM u.old_state),
         pg_catalog.array_agg(DISTINCT u.server_id) FILTER (WHERE u.state IS DISTINCT FROM u.old_state),
         pg_catalog.array_agg(DISTINCT u.server_id) FILTER (WHERE u.server_state = 'configuring' AND u.ok
                                                              AND u.kind = 'shallow')
    INTO changed, agents, configured
    FROM u;

  FOREACH sid IN ARRAY COALESCE(configured, '{}') LOOP
    PERFORM pgext.server_report(sid, 'configured', '{"reason": "configured: first health check passed"}', NULL, $6);
  END LOOP;
  FOREACH sid IN ARRAY COALESCE(agents, '{}') LOOP
    PERFORM pgext.health_agent_update(sid, $6);
  END LOOP;
  RETURN changed;
END
$$;

-- Internal: recovery actions queued but not handed out yet are dropped
-- (operator pause, breaker open).
CREATE FUNCTION pgext.health_recovery_cancel(at timestamptz) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid bigint;
  n integer := 0;
BEGIN
  FOR sid IN SELECT x.id FROM pgext.servers x
              WHERE x.recovery_action IS NOT NULL AND x.claimed_by IS NULL ORDER BY x.id FOR UPDATE
  LOOP
    UPDATE pgext.servers x SET recovery_action = NULL WHERE x.id = sid;
    PERFORM pgext.server_replan(sid, $1);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- The worker's task 'health_recover' (every 5 s, and at once after a batch
-- that changed states).  (1) The breaker opens when many servers turned
-- unhealthy within pgext.health_breaker_window: at least
-- health_breaker_min_servers and more than health_breaker_share of the
-- active servers with checks, or of one location's
-- (health_breaker_location_share); it closes after health_breaker_quiet
-- without a server turning unhealthy.  (2) Unless paused or open: each
-- unhealthy (shallow) active server due for it gets a reboot (first
-- attempt) or a reset, with backoff base * 2^(attempt-1) up to the max, at
-- most health_recovery_per_minute in the fleet.  Deep failures never queue
-- anything.  Returns the recovery actions queued.
CREATE FUNCTION pgext.health_recover(at timestamptz DEFAULT pg_catalog.now()) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  b pgext.health_breaker;
  win interval := pg_catalog.current_setting('pgext.health_breaker_window')::interval;
  quiet interval := pg_catalog.current_setting('pgext.health_breaker_quiet')::interval;
  share double precision := pg_catalog.current_setting('pgext.health_breaker_share')::double precision;
  loc_share double precision := pg_catalog.current_setting('pgext.health_breaker_location_share')::double precision;
  min_servers integer := pg_catalog.current_setting('pgext.health_breaker_min_servers')::integer;
  per_minute integer := pg_catalog.current_setting('pgext.health_recovery_per_minute')::integer;
  base interval := pg_catalog.current_setting('pgext.health_recovery_backoff_base')::interval;
  cap interval := pg_catalog.current_setting('pgext.health_recovery_backoff_max')::interval;
  win_start pg_catalog.timestamptz;
  turned integer;
  active integer;
  l record;
  why pg_catalog.text;
  detail pg_catalog.jsonb;
  budget integer;
  h record;
  act pg_catalog.text;
  n integer := 0;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  INSERT INTO pgext.health_breaker (one) VALUES (true) ON CONFLICT (one) DO NOTHING;
  SELECT * INTO b FROM pgext.health_breaker y FOR UPDATE;

  -- 1. the breaker; after it closed, only servers that turned unhealthy since
  -- count (else a window longer than the quiet period would reopen it at once)
  IF b.state = 'closed' THEN
    win_start := GREATEST($1 - win, COALESCE(b.since, '-infinity'));
    SELECT pg_catalog.count(DISTINCT e.server_id) INTO turned FROM pgext.health_events e
     WHERE e.kind = 'agent' AND e.to_state = 'unhealthy' AND e.at > win_start AND e.at <= $1;
    SELECT pg_catalog.count(*) INTO active FROM pgext.health_servers y JOIN pgext.servers s ON s.id = y.server_id
     WHERE s.state = 'active';
    IF turned >= min_servers AND turned > share * active THEN
      why := pg_catalog.format('%s of %s active servers turned unhealthy within %s', turned, active, win);
      detail := pg_catalog.jsonb_build_object('unhealthy', turned, 'active', active, 'window', win::pg_catalog.text);
    ELSE
      SELECT q.location, q.turned, q.active INTO l FROM (
        SELECT s.location,
               pg_catalog.count(*) FILTER (WHERE EXISTS (
                 SELECT FROM pgext.health_events e
                  WHERE e.kind = 'agent' AND e.to_state = 'unhealthy' AND e.server_id = s.id
                    AND e.at > win_start AND e.at <= $1)) AS turned,
               pg_catalog.count(*) FILTER (WHERE s.state = 'active') AS active
          FROM pgext.health_servers y JOIN pgext.servers s ON s.id = y.server_id
         WHERE s.location IS NOT NULL
         GROUP BY s.location) q
       WHERE q.turned >= min_servers AND q.turned > loc_share * q.active
       ORDER BY q.turned DESC, q.location LIMIT 1;
      IF FOUND THEN
        why := pg_catalog.format('%s of %s active servers in %s turned unhealthy within %s',
                                 l.turned, l.active, l.location, win);
        detail := pg_catalog.jsonb_build_object('location', l.location, 'unhealthy', l.turned, 'active', l.active,
                                                'window', win::pg_catalog.text);
      END IF;
    END IF;
    IF why IS NOT NULL THEN
      UPDATE pgext.health_breaker y SET state = 'open', since = $1, reason = why RETURNING * INTO b;
      INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail)
      VALUES ($1, 'breaker', 'closed', 'open', why || '; recovery holds until none turns unhealthy for ' || quiet);
      PERFORM pgext.alert_raise('health', 'breaker_open', detail || pg_catalog.jsonb_build_object('reason', why), $1);
      PERFORM pgext.health_recovery_cancel($1);
    END IF;
  ELSIF NOT EXISTS (SELECT FROM pgext.health_events e
                     WHERE e.kind = 'agent' AND e.to_state = 'unhealthy' AND e.at > $1 - quiet AND e.at <= $1) THEN
    why := pg_catalog.format('no server turned unhealthy for %s', quiet);
    UPDATE pgext.health_breaker y SET state = 'closed', since = $1, reason = why RETURNING * INTO b;
    INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail) VALUES ($1, 'breaker', 'open', 'closed', why);
    PERFORM pgext.alert_raise('health', 'breaker_closed', pg_catalog.jsonb_build_object('reason', why), $1);
  END IF;

  -- 2. recoveries
  IF b.paused OR b.state = 'open' THEN
    RETURN 0;
  END IF;
  SELECT per_minute - pg_catalog.count(*) INTO budget FROM pgext.health_events e
   WHERE e.kind = 'recovery' AND e.at > $1 - interval '1 minute' AND e.at <= $1;
  IF budget <= 0 THEN
    RETURN 0;
  END IF;
  FOR h IN
    SELECT y.server_id, y.account_id, y.recovery_attempts, y.agent_reason FROM pgext.health_servers y
      JOIN pgext.servers s ON s.id = y.server_id
     WHERE y.agent = 'unhealthy' AND s.state = 'active' AND s.desired_state = 'active'
       AND s.hetzner_id IS NOT NULL AND s.recovery_action IS NULL
       AND (y.next_recovery_at IS NULL OR y.next_recovery_at <= $1)
     ORDER BY y.next_recovery_at NULLS FIRST, y.agent_since, y.server_id
     LIMIT budget
       FOR UPDATE OF y, s SKIP LOCKED
  LOOP
    act := CASE WHEN h.recovery_attempts = 0 THEN 'reboot' ELSE 'reset' END;
    UPDATE pgext.servers x SET recovery_action = act WHERE x.id = h.server_id;
    PERFORM pgext.server_replan(h.server_id, $1);
    UPDATE pgext.health_servers y
       SET recovery_attempts = y.recovery_attempts + 1,
           next_recovery_at = $1 + LEAST(cap, base * pg_catalog.power(2, LEAST(y.recovery_attempts, 30))::double precision),
           last_recovery_at = $1, last_recovery_action = act
     WHERE y.server_id = h.server_id;
    INSERT INTO pgext.health_events (at, kind, server_id, account_id, from_state, to_state, detail)
    VALUES ($1, 'recovery', h.server_id, h.account_id, 'unhealthy', act,
            pg_catalog.format('attempt %s: %s', h.recovery_attempts + 1, h.agent_reason));
    IF h.recovery_attempts + 1 = 5 THEN
      PERFORM pgext.alert_raise('health', 'recovery_not_working',
                                pg_catalog.jsonb_build_object('server', h.server_id, 'attempts', 5,
                                                              'reason', h.agent_reason), $1);
    END IF;
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- Operators: stop queuing recoveries (and drop those queued but not sent);
-- an event and an alert.  true when it was not paused.
CREATE FUNCTION pgext.health_recovery_pause(reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  b pgext.health_breaker;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'reason must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF pg_catalog.btrim($1) = '' THEN
    RAISE EXCEPTION 'pausing recovery needs a reason' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''Hetzner incident in fsn1''; it is kept in pgext.health_events.';
  END IF;
  INSERT INTO pgext.health_breaker (one) VALUES (true) ON CONFLICT (one) DO NOTHING;
  SELECT * INTO b FROM pgext.health_breaker y FOR UPDATE;
  IF b.paused THEN
    RETURN false;
  END IF;
  UPDATE pgext.health_breaker y
     SET paused = true, paused_at = pg_catalog.now(), paused_by = pg_catalog.session_user(), paused_reason = $1;
  INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail)
  VALUES (pg_catalog.now(), 'pause', 'running', 'paused', pg_catalog.format('by %s: %s', pg_catalog.session_user(), $1));
  PERFORM pgext.alert_raise('health', 'recovery_paused',
                            pg_catalog.jsonb_build_object('by', pg_catalog.session_user(), 'reason', $1), pg_catalog.now());
  PERFORM pgext.health_recovery_cancel(pg_catalog.now());
  RETURN true;
END
$$;

-- Operators: recovery goes on; an event and an alert.  true when it was paused.
CREATE FUNCTION pgext.health_recovery_resume() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  UPDATE pgext.health_breaker y
     SET paused = false, paused_at = NULL, paused_by = NULL, paused_reason = NULL
   WHERE y.paused;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail)
  VALUES (pg_catalog.now(), 'pause', 'paused', 'running', 'resumed by ' || pg_catalog.session_user());
  PERFORM pgext.alert_raise('health', 'recovery_resumed',
                            pg_catalog.jsonb_build_object('by', pg_catalog.session_user()), pg_catalog.now());
  RETURN true;
END
$$;

-- The worker's task 'health_retention' (hourly): events older than
-- pgext.health_history_retention go.  Returns how many.
CREATE FUNCTION pgext.health_retention(at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  DELETE FROM pgext.health_events e
   WHERE e.at < $1 - pg_catalog.current_setting('pgext.health_history_retention')::interval;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Per server (not deleted) with checks or spec.health: both layers, the VPS
-- (servers.state) and the agent, the worst state of its shallow and deep
-- checks (unhealthy, unknown, healthy), and its recoveries.
CREATE VIEW pgext.health_status WITH (security_invoker = true) AS
SELECT s.id AS server, s.account_id, s.name, s.location, s.state AS vps_state, s.desired_state,
       COALESCE(y.agent, 'unknown') AS agent, y.agent_since, y.agent_reason,
       c.shallow, c.deep, COALESCE(c.checks, 0) AS checks, c.last_checked_at, c.last_error,
       COALESCE(y.recovery_attempts, 0) AS recovery_attempts, y.next_recovery_at, y.last_recovery_action,
       y.last_recovery_at, s.recovery_action
  FROM pgext.servers s
  LEFT JOIN pgext.health_servers y ON y.server_id = s.id
  LEFT JOIN LATERAL (
    SELECT (pg_catalog.array_agg(k.state ORDER BY k.state = 'unhealthy' DESC, k.state = 'unknown' DESC)
              FILTER (WHERE k.kind = 'shallow'))[1] AS shallow,
           (pg_catalog.array_agg(k.state ORDER BY k.state = 'unhealthy' DESC, k.state = 'unknown' DESC)
              FILTER (WHERE k.kind = 'deep'))[1] AS deep,
           pg_catalog.count(*) AS checks,
           pg_catalog.max(k.last_checked_at) AS last_checked_at,
           (pg_catalog.array_agg(k.last_error ORDER BY k.state = 'unhealthy' DESC, k.kind = 'shallow' DESC,
                                                   k.consecutive_failures DESC, k.id)
              FILTER (WHERE k.last_error IS NOT NULL))[1] AS last_error
      FROM pgext.health_checks k WHERE k.server_id = s.id) c ON true
 WHERE s.state <> 'deleted'
   AND (c.checks > 0 OR pg_catalog.jsonb_typeof(s.spec -> 'health') IN ('object', 'array'));

-- The fleet in one row: agent states of configuring and active servers,
-- checks, the worker's rate (NULL without a polling worker), the breaker,
-- the operator's pause and the recoveries of the last hour.
CREATE VIEW pgext.health_fleet WITH (security_invoker = true) AS
SELECT st.servers, st.healthy, st.unhealthy, st.degraded, st.unknown,
       (SELECT pg_catalog.count(*) FROM pgext.health_checks) AS checks,
       p.checks_per_second,
       COALESCE(b.state, 'closed') AS breaker, b.since AS breaker_since, b.reason AS breaker_reason,
       COALESCE(b.paused, false) AS recovery_paused,
       (SELECT pg_catalog.count(*) FROM pgext.health_events e
         WHERE e.kind = 'recovery' AND e.at > pg_catalog.now() - interval '1 hour') AS recoveries_last_hour
  FROM (SELECT pg_catalog.count(*) AS servers,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'healthy') AS healthy,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'unhealthy') AS unhealthy,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'degraded') AS degraded,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'unknown') AS unknown
          FROM pgext.health_status h WHERE h.vps_state IN ('configuring', 'active')) st
  CROSS JOIN pgext.health_poller() p
  LEFT JOIN pgext.health_breaker b ON true;

REVOKE ALL ON pgext.health_checks, pgext.health_servers, pgext.health_events, pgext.health_breaker,
  pgext.health_config, pgext.health_status, pgext.health_fleet FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.health_poller(),
  pgext.health_config_bump(),
  pgext.health_checks_changed(),
  pgext.health_config_version(),
  pgext.health_check_valid(text, text, interval, interval, text),
  pgext.health_spec_interval(jsonb, text),
  pgext.health_spec_entries(jsonb),
  pgext.health_spec_check(jsonb),
  pgext.health_agent_update(bigint, timestamptz),
  pgext.health_check_put(pgext.servers, text, text, interval, interval, boolean, boolean, text),
  pgext.health_check_add(bigint, text, text, interval, interval),
  pgext.health_check_update(bigint, text, interval, interval, boolean),
  pgext.health_check_remove(bigint),
  pgext.health_checks_from_spec(bigint),
  pgext.health_servers_state(),
  pgext.health_worker_load(),
  pgext.health_record(bigint[], boolean[], integer[], integer[], text[], timestamptz),
  pgext.health_recovery_cancel(timestamptz),
  pgext.health_recover(timestamptz),
  pgext.health_recovery_pause(text),
  pgext.health_recovery_resume(),
  pgext.health_retention(timestamptz)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.health_check_add(bigint, text, text, interval, interval),
  pgext.health_check_update(bigint, text, interval, interval, boolean),
  pgext.health_check_remove(bigint)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.health_poller(),
  pgext.health_config_version(),
  pgext.health_worker_load(),
  pgext.health_record(bigint[], boolean[], integer[], integer[], text[], timestamptz),
  pgext.health_recover(timestamptz),
  pgext.health_recovery_pause(text),
  pgext.health_recovery_resume(),
  pgext.health_retention(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.health_checks, pgext.health_servers, pgext.health_events, pgext.health_breaker,
  pgext.health_config, pgext.health_status, pgext.health_fleet TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows; identity sequences too (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.health_checks', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.health_checks', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_servers', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_events', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.health_events', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_breaker', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_config', '');
------------------------------------------------------------------------------
-- Rate limiter: token buckets in shared memory (src/ratelimit/ratelimit.c)
------------------------------------------------------------------------------

-- Takes `cost` tokens from key's bucket (capacity tokens, refilled at
-- refill_per_second) when it holds that many.  Every app instance on this
-- server shares the buckets; they are not written to disk or WAL.
CREATE FUNCTION pgext.rate_limit(key text, capacity integer, refill_per_second double precision,
                                 cost integer DEFAULT 1,
                                 OUT allowed boolean, OUT remaining integer, OUT retry_after_ms integer)
RETURNS record
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pgext, pg_temp
AS 'MODULE_PATHNAME', 'rate_limit';
COMMENT ON FUNCTION pgext.rate_limit(text, integer, double precision, integer) IS
  'Token bucket in shared memory: allowed when key''s bucket holds cost tokens (then takes them); cost 0 peeks. Needs shared_preload_libraries.';

-- Forgets key's bucket (its next call starts full); false when it had none.
CREATE FUNCTION pgext.rate_limit_reset(key text)
RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pgext, pg_temp
AS 'MODULE_PATHNAME', 'rate_limit_reset';
COMMENT ON FUNCTION pgext.rate_limit_reset(text) IS
  'Forget a rate-limit key''s bucket (it starts full again); false when there was none.';

REVOKE ALL ON FUNCTION
  pgext.rate_limit(text, integer, double precision, integer),
  pgext.rate_limit_reset(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.rate_limit(text, integer, double precision, integer),
  pgext.rate_limit_reset(text)
  TO pgext_app, pgext_admin;
------------------------------------------------------------------------------
-- Closing: a safety net after every capability
------------------------------------------------------------------------------

-- Each file above revokes and grants its own objects; this catches anything
-- a later change forgets.  Grants to pgext's roles are kept (REVOKE ... FROM
-- PUBLIC only touches the PUBLIC entry).
REVOKE ALL ON ALL TABLES IN SCHEMA pgext FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pgext FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgext FROM PUBLIC;
