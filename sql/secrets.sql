-- Secrets: store/read/mask/delete, bad inputs, ciphertext bound to its row,
-- key versions, expiry, roles, rewrap, pgcrypto import, audit counters.
-- The cluster runs with test/keys.sh: master key versions 1 and 2.
-- Accounts get fixed ids so that messages naming them are stable.
INSERT INTO pgext.accounts (id, external_id) VALUES
  ('11111111-1111-4111-8111-111111111111', 'tenant-a'),
  ('22222222-2222-4222-8222-222222222222', 'tenant-b');
\set a '11111111-1111-4111-8111-111111111111'
\set b '22222222-2222-4222-8222-222222222222'
SELECT pgext.secret_key_versions();
SELECT pgext.secret_logging_risks();
-- start the audit from zero (counts live in shared memory across tests)
SELECT pgext.secret_audit_flush() >= 0 AS drained;
TRUNCATE pgext.secret_audit;

-- store, read, mask
SELECT pgext.secret_set('openai:api_key', 'sk-tenant-a-0123456789abcdef', :'a') IS NOT NULL AS stored;
SELECT pgext.secret_get('openai:api_key', :'a');
SELECT pgext.secret_masked('openai:api_key', :'a');
SELECT pgext.secret_set('openai:api_key', 'sk-tenant-b-aaaabbbbccccdddd', :'b') IS NOT NULL AS stored;
SELECT pgext.secret_get('openai:api_key', :'b');
-- a platform secret (account NULL) of the same name is another secret
SELECT pgext.secret_set('openai:api_key', 'sk-platform-fedcba9876543210') IS NOT NULL AS stored;
SELECT pgext.secret_get('openai:api_key');
SELECT pgext.secret_get('openai:api_key', NULL);
-- replacing a value keeps the id
SELECT pgext.secret_set('stripe:api_key', 'sk_test_first_value_0001') AS first_id \gset
SELECT pgext.secret_set('stripe:api_key', 'sk_test_second_value_0002') = :'first_id' AS same_id;
SELECT pgext.secret_get('stripe:api_key');
SELECT count(*) FROM pgext.secrets WHERE name = 'stripe:api_key';
-- masks: last 4 characters from 16 characters on, nothing below (last4 is
-- stored in clear: 4 of 12 characters would be a third of the secret); multibyte-safe
SELECT pgext.secret_set('short', 'abc') IS NOT NULL AS stored;
SELECT pgext.secret_masked('short');
SELECT pgext.secret_set('eleven', '12345678901') IS NOT NULL AS stored;
SELECT pgext.secret_masked('eleven');
SELECT pgext.secret_set('twelve', '123456789012') IS NOT NULL AS stored;
SELECT pgext.secret_masked('twelve');
SELECT pgext.secret_set('fifteen', '123456789012345') IS NOT NULL AS stored;
SELECT pgext.secret_masked('fifteen');
SELECT pgext.secret_set('sixteen', '1234567890123456') IS NOT NULL AS stored;
SELECT pgext.secret_masked('sixteen');
SELECT pgext.secret_set('sixteen-chars', 'äöüäöüäöüäöüäöüä') IS NOT NULL AS stored;
SELECT pgext.secret_masked('sixteen-chars');
SELECT last4 FROM pgext.secrets WHERE name IN ('twelve', 'fifteen') GROUP BY 1;
SELECT pgext.secret_set('unicode', 'pässwörd-ÄÖÜ-ßéèø') IS NOT NULL AS stored;
SELECT pgext.secret_masked('unicode'), pgext.secret_get('unicode');
-- the table holds only ciphertext, sealed under the newest key version
SELECT name, account_id IS NULL AS platform, key_version,
       octet_length(sealed) - octet_length(pgext.secret_get(name, account_id)) AS overhead,
       position(convert_to(pgext.secret_get(name, account_id), 'UTF8') IN sealed) = 0 AS no_plaintext
  FROM pgext.secrets ORDER BY name, account_id NULLS FIRST;
-- the catalog shows everything but the ciphertext
SELECT name, account_id IS NULL AS platform, last4, key_version, last_used IS NOT NULL AS used,
       expires_at, expired, created_at <= updated_at AS times_ok
  FROM pgext.secret_catalog ORDER BY name, account_id NULLS FIRST;
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'pgext' AND table_name = 'secret_catalog' ORDER BY ordinal_position;
-- the same value stored twice seals differently (random nonce)
SELECT pgext.secret_set('dup1', 'same-value-for-both-rows') IS NOT NULL AS s1,
       pgext.secret_set('dup2', 'same-value-for-both-rows') IS NOT NULL AS s2;
SELECT count(DISTINCT sealed) FROM pgext.secrets WHERE name IN ('dup1', 'dup2');
-- the size limit is 65536 bytes, inclusive
SELECT pgext.secret_set('big', repeat('v', 65536)) IS NOT NULL AS stored;
SELECT length(pgext.secret_get('big'));
SELECT pgext.secret_set('big', repeat('v', 65537));
SELECT pgext.secret_set('big', repeat('é', 32769));
SELECT length(pgext.secret_get('big'));

-- bad inputs: clear errors, nothing stored
SELECT pgext.secret_set(NULL, 'value');
SELECT pgext.secret_set('', 'value');
SELECT pgext.secret_set(repeat('n', 256), 'value');
-- bad inputs (issue 13): no blank names, no control characters
SELECT pgext.secret_set('   ', 'value');
SELECT pgext.secret_set(E'openai:api_key\n', 'value');
SELECT pgext.secret_get(E'\x1b[31mred');
SELECT pgext.secret_set('x', NULL);
SELECT pgext.secret_set('x', '');
SELECT pgext.secret_set('x', 'value', '00000000-0000-0000-0000-000000000000');
SELECT pgext.secret_set('x', 'value', NULL, now() - interval '1 minute');
SELECT pgext.secret_set('x', 'value', NULL, 'infinity');
SELECT pgext.secret_get(NULL);
SELECT pgext.secret_get('');
SELECT pgext.secret_get('x');
SELECT pgext.secret_get('x', :'a');
SELECT pgext.secret_get('x', '00000000-0000-0000-0000-000000000000');
SELECT pgext.secret_masked('x');
SELECT pgext.secret_masked(NULL, :'a');
SELECT pgext.secret_delete(NULL);
SELECT pgext.secret_rewrap(0);
SELECT pgext.secret_rewrap(100001);
SELECT pgext.secret_rewrap(NULL);
SELECT count(*) FROM pgext.secrets WHERE name = 'x';
SELECT pgext.secret_set(repeat('n', 255), 'longest name') IS NOT NULL AS stored;
SELECT pgext.secret_get(repeat('n', 255));

-- delete
SELECT pgext.secret_delete('short');
SELECT pgext.secret_delete('short');
SELECT pgext.secret_delete('openai:api_key', '00000000-0000-0000-0000-000000000000');
SELECT pgext.secret_get('short');

-- ciphertext is bound to its row: copies to another account, name or row fail
UPDATE pgext.secrets SET sealed = (SELECT sealed FROM pgext.secrets
                                    WHERE account_id = :'a' AND name = 'openai:api_key')
 WHERE account_id = :'b' AND name = 'openai:api_key';
SELECT pgext.secret_get('openai:api_key', :'b');
SELECT pgext.secret_masked('openai:api_key', :'b');
UPDATE pgext.secrets SET sealed = (SELECT sealed FROM pgext.secrets WHERE name = 'dup1')
 WHERE name = 'dup2';
SELECT pgext.secret_get('dup2');
-- swapping names between two rows
UPDATE pgext.secrets SET name = 'swap' WHERE name = 'eleven';
UPDATE pgext.secrets SET name = 'eleven' WHERE name = 'twelve';
UPDATE pgext.secrets SET name = 'twelve' WHERE name = 'swap';
SELECT pgext.secret_get('eleven');
-- extending an expiry outside pgext
UPDATE pgext.secrets SET expires_at = now() + interval '1 year' WHERE name = 'unicode';
SELECT pgext.secret_get('unicode');
-- one flipped bit
UPDATE pgext.secrets SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1) WHERE name = 'dup1';
SELECT pgext.secret_get('dup1');
-- failed authentications between good reads with the same key (every
-- platform secret of this version): the good reads stay right, many times over
DO $$
DECLARE
  good text := pgext.secret_get('sixteen');
  fails int := 0;
BEGIN
  FOR i IN 1..50 LOOP
    BEGIN
      PERFORM pgext.secret_get('dup1');
    EXCEPTION WHEN data_corrupted THEN
      fails := fails + 1;
    END;
    IF pgext.secret_get('sixteen') IS DISTINCT FROM good THEN
      RAISE EXCEPTION 'a read after a failed one returned another value';
    END IF;
  END LOOP;
  RAISE NOTICE 'failed authentications: %, the good reads all the same', fails;
END $$;
-- a sealed value of an unknown format
UPDATE pgext.secrets SET sealed = overlay(sealed PLACING '\x03'::bytea FROM 1 FOR 1)
 WHERE name = 'twelve';
SELECT pgext.secret_get('twelve');
-- wrong key version: another loaded version fails authentication, an unknown one says so
UPDATE pgext.secrets SET key_version = 1 WHERE name = 'stripe:api_key';
SELECT pgext.secret_get('stripe:api_key');
UPDATE pgext.secrets SET key_version = 7 WHERE name = 'stripe:api_key';
SELECT pgext.secret_get('stripe:api_key');
SELECT pgext.secret_rewrap();
UPDATE pgext.secrets SET key_version = 2 WHERE name = 'stripe:api_key';
SELECT pgext.secret_get('stripe:api_key');
-- storing again repairs a damaged secret
SELECT pgext.secret_set('openai:api_key', 'sk-tenant-b-repaired-000000', :'b') IS NOT NULL AS stored;
SELECT pgext.secret_get('openai:api_key', :'b');
SELECT pgext.secret_delete(name) FROM pgext.secrets
 WHERE name IN ('dup1', 'dup2', 'eleven', 'twelve', 'fifteen', 'sixteen', 'sixteen-chars', 'unicode')
 ORDER BY name;

-- expiry: readable until expires_at, refused afterwards (polled, not slept)
SELECT pgext.secret_set('short-lived', 'temporary-token-123456', NULL,
                        clock_timestamp() + interval '3 seconds') IS NOT NULL AS stored;
SELECT pgext.secret_get('short-lived');
DO $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '60 seconds';
BEGIN
  LOOP
    BEGIN
      PERFORM pgext.secret_get('short-lived');
    EXCEPTION WHEN SQLSTATE 'PX002' THEN  -- secret expired
      EXIT;
    END;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'secret did not expire';
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
END
$$;
SELECT pgext.secret_get('short-lived');
SELECT pgext.secret_masked('short-lived');
-- storing it again with a new expiry revives it
SELECT pgext.secret_set('short-lived', 'temporary-token-654321', NULL,
                        now() + interval '1 hour') IS NOT NULL AS stored;
SELECT pgext.secret_get('short-lived');

-- key versions: pin version 1, then rewrap everything to the newest (2)
SET pgext.secret_encrypt_version = 1;
SELECT pgext.secret_set('old-1', 'sealed-under-version-one-1') IS NOT NULL AS stored;
SELECT pgext.secret_set('old-2', 'sealed-under-version-one-2', :'a') IS NOT NULL AS stored;
SELECT pgext.secret_set('old-3', 'sealed-under-version-one-3', :'b') IS NOT NULL AS stored;
SELECT key_version, count(*) FROM pgext.secrets GROUP BY 1 ORDER BY 1;
SELECT pgext.secret_get('old-2', :'a');
-- while pinned, rewrap moves everything to version 1
SELECT pgext.secret_rewrap() > 0 AS rewrapped;
SELECT key_version, count(*) FROM pgext.secrets GROUP BY 1 ORDER BY 1;
SET pgext.secret_encrypt_version = 3;
SELECT pgext.secret_set('x', 'value');
SELECT pgext.secret_rewrap();
RESET pgext.secret_encrypt_version;
SELECT pgext.secret_rewrap(2);
SELECT key_version, count(*) FROM pgext.secrets GROUP BY 1 ORDER BY 1;
SELECT pgext.secret_rewrap(1000) > 0 AS rewrapped;
SELECT pgext.secret_rewrap();
SELECT key_version, count(*) FROM pgext.secrets GROUP BY 1 ORDER BY 1;
SELECT pgext.secret_get('old-1'), pgext.secret_get('old-2', :'a'), pgext.secret_get('old-3', :'b');
SELECT pgext.secret_get('openai:api_key', :'a');

-- rewrap skips rows it cannot decrypt (WARNING naming them, counted in the
-- audit) and rewraps the rest; such rows never block later calls
SET pgext.secret_encrypt_version = 1;
SELECT count(pgext.secret_set('rw-' || i, 'rewrap-skip-value-' || i)) FROM generate_series(1, 4) i;
SELECT pgext.secret_set('rw-tampered', 'rewrap-skip-value-tampered', :'a') IS NOT NULL AS stored;
SELECT pgext.secret_set('rw-missing', 'rewrap-skip-value-missing') IS NOT NULL AS stored;
RESET pgext.secret_encrypt_version;
-- a ciphertext moved to the smallest id (sorts first) and one under a key version not loaded
UPDATE pgext.secrets SET id = '00000000-0000-4000-8000-000000000001' WHERE name = 'rw-tampered';
UPDATE pgext.secrets SET key_version = 7 WHERE name = 'rw-missing';
SELECT pgext.secret_audit_flush() >= 0 AS drained;
-- batch 1: the tampered row is skipped, one good row is rewrapped
SELECT pgext.secret_rewrap(1);
SELECT pgext.secret_rewrap();
SELECT pgext.secret_rewrap();
SELECT name, key_version FROM pgext.secrets WHERE name LIKE 'rw-%' ORDER BY name;
SELECT pgext.secret_get('rw-1'), pgext.secret_get('rw-4');
SELECT pgext.secret_audit_flush() > 0 AS flushed;
SELECT name, account_id IS NOT NULL AS acct, outcome, sum(count) AS uses
  FROM pgext.secret_audit WHERE op = 'rewrap' AND name LIKE 'rw-%'
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT count(pgext.secret_delete(name, account_id)) FROM pgext.secrets WHERE name LIKE 'rw-%';
SELECT pgext.secret_rewrap();

-- migration from pgcrypto's pgp_sym_encrypt
SELECT pgext.secret_import_pgp('legacy:token', pgp_sym_encrypt('legacy-token-value-42', 'old-pass'),
                               'old-pass', :'a') IS NOT NULL AS imported;
SELECT pgext.secret_get('legacy:token', :'a');
SELECT pgext.secret_import_pgp('legacy:bad', pgp_sym_encrypt('legacy-token-value-43', 'old-pass'),
                               'wrong-pass');
SELECT pgext.secret_import_pgp('legacy:bad', NULL, 'old-pass');
SELECT pgext.secret_import_pgp('legacy:bad', pgp_sym_encrypt('', 'old-pass'), 'old-pass');
SELECT pgext.secret_import_pgp('legacy:bad', pgp_sym_encrypt('v', 'p'), 'p', NULL, now() - interval '1 day');
SELECT count(*) FROM pgext.secrets WHERE name = 'legacy:bad';
-- only what a wrong passphrase or damaged ciphertext raises (39000, class 22)
-- is a decrypt failure; a cancel, out of memory or a serialization failure
-- surfaces with its own SQLSTATE.  A stand-in pgp_sym_decrypt (rolled back
-- afterwards) raises the SQLSTATE passed as the passphrase.
BEGIN;
ALTER EXTENSION pgcrypto DROP FUNCTION pgp_sym_decrypt(bytea, text);
DROP FUNCTION pgp_sym_decrypt(bytea, text);
CREATE FUNCTION pgp_sym_decrypt(bytea, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stand-in failure: 0xc3 0x28' USING ERRCODE = $2;
END
$$;
ALTER EXTENSION pgcrypto ADD FUNCTION pgp_sym_decrypt(bytea, text);
CREATE FUNCTION pg_temp.import_outcome(code text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pgext.secret_import_pgp('legacy:standin', '\x00'::bytea, code);
  RETURN 'imported';
EXCEPTION WHEN OTHERS OR query_canceled THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;
SELECT code, pg_temp.import_outcome(code)
  FROM (VALUES ('57014'), ('53200'), ('40001'), ('39000'), ('22021')) v(code);
ROLLBACK;
SELECT pgext.secret_import_pgp('legacy:bad', pgp_sym_encrypt('legacy-token-value-44', 'old-pass'),
                               'wrong-pass');

-- roles: readers decrypt; writers store, mask and delete but never read plaintext
CREATE ROLE regress_secret_reader IN ROLE pgext_secret_reader;
CREATE ROLE regress_secret_writer IN ROLE pgext_secret_writer;
CREATE ROLE regress_secret_admin IN ROLE pgext_admin;
CREATE ROLE regress_secret_platform IN ROLE pgext_admin, pgext_secret_writer;
CREATE ROLE regress_secret_nobody;
SELECT pgext.secret_set('webhook:stripe', 'whsec_platform_signing_secret_0001') IS NOT NULL AS stored;
SET ROLE regress_secret_writer;
SELECT pgext.secret_set('anthropic:api_key', 'sk-ant-writer-stored-9f3a', :'a') IS NOT NULL AS stored;
SELECT pgext.secret_masked('anthropic:api_key', :'a');
-- the catalog lists the secrets of the account the transaction acts for
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT name, last4, key_version FROM pgext.secret_catalog WHERE name = 'anthropic:api_key';
COMMIT;
SELECT count(*) AS unbound_sees FROM pgext.secret_catalog;
SELECT pgext.secret_get('anthropic:api_key', :'a');
SELECT count(*) FROM pgext.secrets;
SELECT pgext.secret_rewrap();
SELECT pgext.secret_import_pgp('legacy:writer', pgp_sym_encrypt('writer-imported-value', 'p'), 'p', :'a') IS NOT NULL AS imported;
-- writers change tenant secrets only: platform secrets (account NULL) need pgext_admin
SELECT pgext.secret_set('webhook:stripe', 'whsec_attacker_chosen_secret_0002');
SELECT pgext.secret_set('stripe:api_key', 'sk_test_attacker_chosen_key_0003', NULL);
SELECT pgext.secret_set('brand-new-platform-secret', 'value-of-at-least-16');
SELECT pgext.secret_import_pgp('webhook:stripe', pgp_sym_encrypt('whsec_attacker_chosen_0004', 'p'), 'p');
SELECT pgext.secret_delete('webhook:stripe');
SELECT pgext.secret_delete('no-such-platform-secret');
SELECT pgext.secret_masked('webhook:stripe');
RESET ROLE;
-- nor through a SECURITY DEFINER function owned by a superuser: the session's role counts
CREATE FUNCTION regress_set_platform_secret(v text) RETURNS uuid
  LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$ SELECT pgext.secret_set('webhook:stripe', v) $$;
GRANT EXECUTE ON FUNCTION regress_set_platform_secret(text) TO regress_secret_writer;
SET ROLE regress_secret_writer;
SELECT regress_set_platform_secret('whsec_attacker_chosen_secret_0005');
RESET ROLE;
DROP FUNCTION regress_set_platform_secret(text);
SELECT pgext.secret_get('webhook:stripe'), pgext.secret_get('stripe:api_key');
SELECT count(*) FROM pgext.secrets WHERE name = 'brand-new-platform-secret';
-- a member of pgext_admin (with the writer's functions) may change them
SET ROLE regress_secret_platform;
SELECT pgext.secret_set('webhook:stripe', 'whsec_platform_signing_secret_0006') IS NOT NULL AS stored;
SELECT pgext.secret_import_pgp('webhook:stripe:previous', pgp_sym_encrypt('whsec_platform_signing_secret_0001', 'p'), 'p') IS NOT NULL AS imported;
SELECT pgext.secret_set('openai:api_key', 'sk-tenant-a-by-platform-admin', :'a') IS NOT NULL AS stored;
SELECT pgext.secret_delete('webhook:stripe:previous');
RESET ROLE;
SELECT pgext.secret_get('webhook:stripe');
SELECT pgext.secret_set('openai:api_key', 'sk-tenant-a-0123456789abcdef', :'a') IS NOT NULL AS stored;
SELECT pgext.secret_delete('webhook:stripe');
-- an operator (pgext_admin alone, no writer role) stores and removes platform secrets
SET ROLE regress_secret_admin;
SELECT pgext.secret_set('webhook:stripe', 'whsec_platform_signing_secret_0007') IS NOT NULL AS stored;
SELECT pgext.secret_set('stripe:api_key', 'sk_test_platform_key_by_operator_08') IS NOT NULL AS stored;
SELECT pgext.secret_masked('stripe:api_key');
RESET ROLE;
-- a reader may read the platform's API keys, but never its webhook signing secrets
SET ROLE regress_secret_reader;
SELECT pgext.secret_get('stripe:api_key');
SELECT pgext.secret_get('webhook:stripe');
SELECT pgext.secret_masked('webhook:stripe');
RESET ROLE;
SELECT pgext.secret_delete('webhook:stripe');
SET ROLE regress_secret_reader;
SELECT pgext.secret_get('anthropic:api_key', :'a');
SELECT pgext.secret_masked('anthropic:api_key', :'a');
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT name, last4, last_used IS NOT NULL AS used FROM pgext.secret_catalog WHERE name = 'anthropic:api_key';
COMMIT;
SELECT pgext.secret_set('anthropic:api_key', 'overwrite', :'a');
SELECT pgext.secret_delete('anthropic:api_key', :'a');
SELECT sealed FROM pgext.secrets LIMIT 1;
RESET ROLE;
SET ROLE regress_secret_admin;
SELECT pgext.secret_rewrap();
SELECT pgext.secret_key_versions();
SELECT count(*) > 0 AS admin_sees_ciphertext FROM pgext.secrets;
SELECT pgext.secret_get('anthropic:api_key', :'a');
RESET ROLE;
SET ROLE regress_secret_nobody;
SELECT pgext.secret_get('anthropic:api_key', :'a');
SELECT pgext.secret_masked('anthropic:api_key', :'a');
SELECT count(*) FROM pgext.secret_catalog;
SELECT pgext.secret_audit_flush();
RESET ROLE;

-- audit: batched counts per role, operation and outcome
SELECT count(*) > 0 AS pending FROM pgext.secret_audit_pending();
BEGIN;
SELECT pgext.secret_audit_flush() > 0 AS flushed;
SELECT pgext.secret_audit_flush() AS second_flush_in_same_transaction;
ROLLBACK;
BEGIN;
SAVEPOINT sp;
SELECT pgext.secret_audit_flush() > 0 AS flushed;
ROLLBACK TO sp;
SELECT pgext.secret_audit_flush() > 0 AS flushed_again;
COMMIT;
SELECT pgext.secret_audit_flush() AS nothing_left;
SELECT count(*) AS still_pending FROM pgext.secret_audit_pending();
SELECT CASE WHEN role_name = current_user THEN '(superuser)' ELSE role_name END AS role,
       op, outcome, sum(count) AS uses, count(DISTINCT secret_id) AS secrets
  FROM pgext.secret_audit
 WHERE name IS DISTINCT FROM 'short-lived'
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT role_name, op, outcome, name, account_id IS NOT NULL AS acct, count
  FROM pgext.secret_audit WHERE role_name LIKE 'regress_secret_%' ORDER BY 1, 2, 3, 4;
SELECT op, outcome, bool_and(secret_id IS NOT NULL) AS has_id
  FROM pgext.secret_audit WHERE name = 'short-lived' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT pgext.secret_get('openai:api_key', :'a') IS NOT NULL AS read_once_more;
SELECT pgext.secret_audit_flush();
SELECT role_name = current_user AS me, op, outcome, count FROM pgext.secret_audit
 WHERE id = (SELECT max(id) FROM pgext.secret_audit);

-- logging settings that would put secret values in the server log
SET log_statement = 'all';
SET log_parameter_max_length_on_error = 64;
SELECT unnest(pgext.secret_logging_risks());
RESET log_statement;
RESET log_parameter_max_length_on_error;
SELECT pgext.secret_logging_risks();

DROP ROLE regress_secret_reader, regress_secret_writer, regress_secret_admin,
  regress_secret_platform, regress_secret_nobody;

-- secret_get / secret_masked pin their search path in C (issue 14): a
-- caller's path is back as it was after a call, after an error caught by a
-- subtransaction, and a missing secret is still a clean P0002.
SET search_path = public, pg_temp;
SELECT pg_catalog.current_setting('search_path') AS path_before;
DO $$
BEGIN
  PERFORM pgext.secret_get('no-such-secret-sp', NULL);
EXCEPTION WHEN no_data_found THEN
  RAISE NOTICE 'caught: %', SQLSTATE;
END $$;
SELECT pg_catalog.current_setting('search_path') AS path_after,
       pg_catalog.current_schemas(false) AS schemas_after;
RESET search_path;
