-- Benchmark data: 1000 accounts with deterministic ids, one secret each,
-- and the same values encrypted with pgcrypto's pgp_sym_encrypt.
CREATE EXTENSION IF NOT EXISTS pgext CASCADE;
CREATE FUNCTION bench_id(n integer) RETURNS uuid IMMUTABLE LANGUAGE sql
  AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;
INSERT INTO pgext.accounts (id, external_id)
  SELECT bench_id(n), 'bench-' || n FROM generate_series(1, 1000) n;
CREATE TABLE bench_values AS
  SELECT n, bench_id(n) AS account, 'sk-ant-api03-' || md5(n::text) || '-benchAA' AS value
    FROM generate_series(1, 1000) n;
SELECT count(pgext.secret_set('anthropic.api_key', value, account)) FROM bench_values;
CREATE TABLE bench_pgp (account uuid PRIMARY KEY, ct bytea NOT NULL);
INSERT INTO bench_pgp SELECT account, pgp_sym_encrypt(value, 'bench-passphrase') FROM bench_values;
-- sanity: both decrypt to the same values
DO $$
BEGIN
  IF EXISTS (SELECT FROM bench_values v JOIN bench_pgp p USING (account)
              WHERE pgext.secret_get('anthropic.api_key', v.account) <> v.value
                 OR pgp_sym_decrypt(p.ct, 'bench-passphrase') <> v.value) THEN
    RAISE EXCEPTION 'benchmark data does not round-trip';
  END IF;
END $$;
VACUUM ANALYZE;
SELECT pgext.secret_audit_flush();
