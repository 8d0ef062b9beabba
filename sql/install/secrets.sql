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
-- sealed = format || nonce || ciphertext || tag (format 0x02 for account
-- secrets, keyed with the account's salt; 0x01 for platform secrets and rows
-- written by 1.0, which secret_rewrap turns into 0x02), bound (AAD) to id, account_id,
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

-- Per-account key material: each account's secrets are sealed (format 0x02)
-- with a key derived by HKDF-SHA256 from the master key version and this
-- random salt (src/secrets/keyring.c), created on the account's first
-- secret_set.  pgext.account_forget deletes the row: from then on no key
-- exists for those ciphertexts, wherever copies of them are (WAL, replicas,
-- later dumps).  Backups taken before the forget hold both the salt and the
-- ciphertexts: expire them, or rotate the master key and destroy the old
-- version, to shred those copies too.
CREATE TABLE pgext.secret_account_keys (
  account_id uuid PRIMARY KEY REFERENCES pgext.accounts (id) ON DELETE CASCADE,
  salt       bytea NOT NULL CHECK (pg_catalog.octet_length(salt) = 32),
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Every backend caches the salts it read (src/secrets/salts.c, issue 14:
-- probing this table cost a quarter of secret_get); every update, delete or
-- truncate wipes those caches: these triggers send the invalidation (an
-- insert makes no cached salt stale).  ENABLE ALWAYS and, for updates and
-- deletes, FOR EACH ROW: logical replication's apply (replica role) fires
-- row triggers only.  Without both, enabled always, nothing is cached.
CREATE FUNCTION pgext.secret_account_keys_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'secret_account_keys_changed'
LANGUAGE C SET search_path = pg_catalog, pgext, pg_temp;
CREATE TRIGGER secret_account_keys_changed
  AFTER UPDATE OR DELETE ON pgext.secret_account_keys
  FOR EACH ROW EXECUTE FUNCTION pgext.secret_account_keys_changed();
CREATE TRIGGER secret_account_keys_truncated
  AFTER TRUNCATE ON pgext.secret_account_keys
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.secret_account_keys_changed();
ALTER TABLE pgext.secret_account_keys ENABLE ALWAYS TRIGGER secret_account_keys_changed;
ALTER TABLE pgext.secret_account_keys ENABLE ALWAYS TRIGGER secret_account_keys_truncated;

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

-- secret_get and secret_masked pin their search path in C (pg_catalog, pgext;
-- the temporary schema not searched: src/common/searchpath.c) instead of a
-- SET search_path clause, which cost a fifth of a read (issue 14).
CREATE FUNCTION pgext.secret_get(name text, account uuid DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'secret_get'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION pgext.secret_masked(name text, account uuid DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'secret_masked'
LANGUAGE C VOLATILE SECURITY DEFINER;

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

-- Every secret without its ciphertext: while the transaction acts for an
-- account (pgext.set_account), that account's only; otherwise all of them
-- for superusers, pgext_admin and pgext_support, none for anyone else.  last_used is the latest successful
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
   WHERE pgext.account_scope_visible(s.account_id)
$$;
CREATE VIEW pgext.secret_catalog WITH (security_invoker = true) AS SELECT * FROM pgext.secret_list();

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

REVOKE ALL ON pgext.secrets, pgext.secret_audit, pgext.secret_account_keys FROM PUBLIC;
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
  pgext.secret_logging_risks(),
  pgext.secret_account_keys_changed()
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
SELECT pg_catalog.pg_extension_config_dump('pgext.secret_account_keys', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.secret_audit', 'id'), '');
