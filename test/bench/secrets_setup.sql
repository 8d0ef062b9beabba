-- Benchmark data: 1000 accounts with deterministic ids, one 77-byte secret
-- each, the same values in a plain table (the floor: same unique index on
-- (account, name)) and encrypted with pgcrypto's pgp_sym_encrypt.
CREATE EXTENSION IF NOT EXISTS pgext CASCADE;
CREATE FUNCTION bench_id(n integer) RETURNS uuid IMMUTABLE LANGUAGE sql
  AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;
INSERT INTO pgext.accounts (id, external_id)
  SELECT bench_id(n), 'bench-' || n FROM generate_series(1, 1000) n;
CREATE TABLE bench_values AS
  SELECT n, bench_id(n) AS account, 'sk-ant-api03-' || md5(n::text) || md5((-n)::text) AS value
    FROM generate_series(1, 1000) n;
SELECT count(pgext.secret_set('anthropic.api_key', value, account)) FROM bench_values;
CREATE TABLE bench_plain (account uuid NOT NULL, name text NOT NULL, value text NOT NULL,
                          UNIQUE (account, name));
INSERT INTO bench_plain SELECT account, 'anthropic.api_key', value FROM bench_values;
CREATE TABLE bench_pgp (account uuid PRIMARY KEY, ct bytea NOT NULL);
INSERT INTO bench_pgp SELECT account, pgp_sym_encrypt(value, 'bench-passphrase') FROM bench_values;
-- sanity: both decrypt to the same values
DO $$
BEGIN
  IF EXISTS (SELECT FROM bench_values v JOIN bench_pgp p USING (account)
              WHERE pgext.secret_get('anthropic.api_key', v.account) <> v.value
                 OR (SELECT value FROM bench_plain b WHERE b.account = v.account) <> v.value
                 OR pgp_sym_decrypt(p.ct, 'bench-passphrase') <> v.value) THEN
    RAISE EXCEPTION 'benchmark data does not round-trip';
  END IF;
  IF (SELECT min(length(value)) <> 77 OR max(length(value)) <> 77 FROM bench_values) THEN
    RAISE EXCEPTION 'benchmark values are not 77 bytes';
  END IF;
END $$;
VACUUM ANALYZE;
SELECT pgext.secret_audit_flush();
