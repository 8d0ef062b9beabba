-- Secrets: a tenant hands us their Anthropic API key; we store only
-- ciphertext, show only a mask, and let only the reader role decrypt.
\pset footer off
\echo '--- a tenant account'
SELECT pgext.account_create('acme-corp') AS acme \gset

\echo '--- the app stores the tenant''s API key (apps pass it as a bind parameter; a literal here for the demo)'
SELECT pgext.secret_set('anthropic:api_key', 'sk-ant-api03-demo-0000-1111-2222-7f3a', :'acme') IS NOT NULL AS stored;

\echo '--- the settings page shows only the mask: no key and no decrypt right needed'
SELECT pgext.secret_masked('anthropic:api_key', :'acme') AS shown_to_the_user;

\echo '--- the catalog: everything but the ciphertext'
SELECT name, last4, key_version, expires_at, expired FROM pgext.secret_catalog WHERE account_id = :'acme';

\echo '--- on disk it is AES-256-GCM ciphertext bound to this row: the key is nowhere in the table'
SELECT name, key_version, octet_length(sealed) AS sealed_bytes,
       position(convert_to('sk-ant-api03', 'UTF8') IN sealed) = 0 AS plaintext_absent
  FROM pgext.secrets WHERE account_id = :'acme';

\echo '--- a role that may only store and mask cannot read it back'
CREATE ROLE demo_settings_page IN ROLE pgext_secret_writer;
SET ROLE demo_settings_page;
\set ON_ERROR_STOP 0
SELECT pgext.secret_get('anthropic:api_key', :'acme');
\set ON_ERROR_STOP 1
SELECT pgext.secret_masked('anthropic:api_key', :'acme') AS writer_sees;
RESET ROLE;

\echo '--- a ciphertext copied to another tenant does not decrypt there'
SELECT pgext.account_create('other-corp') AS other \gset
SELECT pgext.secret_set('anthropic:api_key', 'sk-ant-api03-other-tenant-9999-abcd', :'other') IS NOT NULL AS stored;
UPDATE pgext.secrets SET sealed = (SELECT sealed FROM pgext.secrets WHERE account_id = :'acme')
 WHERE account_id = :'other';
\set ON_ERROR_STOP 0
SELECT pgext.secret_get('anthropic:api_key', :'other');
\set ON_ERROR_STOP 1

\echo '--- the audit: who used which secret how often (counted in shared memory, flushed in batches)'
SELECT pgext.secret_audit_flush() AS rows_flushed;
SELECT role_name, op, outcome, name, count FROM pgext.secret_audit
 WHERE account_id = :'acme' ORDER BY role_name, op, outcome;
DROP ROLE demo_settings_page;
