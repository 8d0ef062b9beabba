-- Benchmark fixtures: N accounts for pgext and an equivalent plain schema for
-- the baselines.  Account n has uuid 00000000-0000-0000-0000-<n, 12 digits>.
\set n :naccounts
CREATE EXTENSION IF NOT EXISTS pgext CASCADE;
CREATE OR REPLACE FUNCTION pg_temp.acct(n int) RETURNS uuid LANGUAGE sql IMMUTABLE
  AS $$ SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid $$;

INSERT INTO pgext.accounts (id, external_id)
SELECT pg_temp.acct(i), 'bench-' || i FROM generate_series(1, :n) i;
SELECT count(*) AS granted FROM generate_series(1, :n) i,
  LATERAL pgext.credit_grant(pg_temp.acct(i), 1000000000000, 'bench-seed') g WHERE g.ok;

-- The baseline schema: same columns, constraints and indexes as pgext's, no extension code.
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TABLE bench.accounts (LIKE pgext.accounts INCLUDING ALL);
CREATE TABLE bench.credit_ledger (LIKE pgext.credit_ledger INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                  INCLUDING INDEXES INCLUDING IDENTITY);
INSERT INTO bench.accounts SELECT * FROM pgext.accounts;

-- (c) the common plpgsql pattern: lock, check, update, insert.
CREATE FUNCTION bench.deduct_plpgsql(p_account uuid, p_amount bigint, p_key text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_balance bigint;
BEGIN
  SELECT balance INTO v_balance FROM bench.accounts WHERE id = p_account FOR UPDATE;
  IF v_balance IS NULL THEN
    RAISE EXCEPTION 'no account %', p_account;
  END IF;
  IF v_balance < p_amount THEN
    RETURN NULL;
  END IF;
  UPDATE bench.accounts SET balance = balance - p_amount WHERE id = p_account;
  INSERT INTO bench.credit_ledger (account_id, op, amount, delta, balance_after, idempotency_key)
  VALUES (p_account, 'deduct', p_amount, -p_amount, v_balance - p_amount, p_key);
  RETURN v_balance - p_amount;
END
$$;
VACUUM ANALYZE;

-- (d) the bare floor: bigint ids, primary keys only, no other constraint or index.
CREATE TABLE bench.bare_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE bench.bare_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL, op text NOT NULL, amount bigint NOT NULL, delta bigint NOT NULL,
  balance_after bigint NOT NULL, idempotency_key text);
INSERT INTO bench.bare_accounts SELECT i, 1000000000000 FROM generate_series(1, :n) i;

-- (e) the contract floor: the least any deduct keeping pgext's promises writes.
-- The bare floor plus uuid account ids, the last-line CHECK (balance >= 0) and
-- one unique (account_id, idempotency_key) index for idempotency; without
-- pgext's per-account history index (account_id, id) and the profile columns.
CREATE TABLE bench.min_accounts (id uuid PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE bench.min_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id uuid NOT NULL, op text NOT NULL, amount bigint NOT NULL, delta bigint NOT NULL,
  balance_after bigint NOT NULL, idempotency_key text, UNIQUE (account_id, idempotency_key));
INSERT INTO bench.min_accounts SELECT id, balance FROM pgext.accounts;
VACUUM ANALYZE;

-- CPU per call: one backend runs n calls, each in its own transaction (COMMIT
-- per call, as pgbench does), with no client round trip; the same plpgsql
-- driver for every variant (static SQL: planned once, like pgbench -M prepared).
CREATE PROCEDURE bench.cpu_loop(variant text, n int, naccounts int)
LANGUAGE plpgsql AS $$
DECLARE
  p text := 'c' || (random() * 1e15)::bigint || '-';
  a int;
  u uuid;
BEGIN
  FOR i IN 1 .. n LOOP
    a := 1 + (random() * (naccounts - 1))::int;
    u := ('00000000-0000-0000-0000-' || lpad(a::text, 12, '0'))::uuid;
    IF variant = 'pgext' THEN
      PERFORM pgext.credit_deduct(u, 1, p || i);
    ELSIF variant = 'same' THEN
      WITH d AS (UPDATE bench.accounts SET balance = balance - 1
                  WHERE id = u AND balance >= 1 RETURNING id, balance)
      INSERT INTO bench.credit_ledger (account_id, op, amount, delta, balance_after, idempotency_key)
      SELECT id, 'deduct', 1, -1, balance, p || i FROM d;
    ELSIF variant = 'bare' THEN
      WITH d AS (UPDATE bench.bare_accounts SET balance = balance - 1
                  WHERE id = a AND balance >= 1 RETURNING id, balance)
      INSERT INTO bench.bare_ledger (account_id, op, amount, delta, balance_after, idempotency_key)
      SELECT id, 'deduct', 1, -1, balance, p || i FROM d;
    ELSIF variant = 'min' THEN
      WITH d AS (UPDATE bench.min_accounts SET balance = balance - 1
                  WHERE id = u AND balance >= 1 RETURNING id, balance)
      INSERT INTO bench.min_ledger (account_id, op, amount, delta, balance_after, idempotency_key)
      SELECT id, 'deduct', 1, -1, balance, p || i FROM d;
    ELSIF variant = 'plpgsql' THEN
      PERFORM bench.deduct_plpgsql(u, 1, p || i);
    ELSIF variant = 'driver' THEN
      PERFORM u, p || i;   -- the driver alone: subtracted from the others
    END IF;
    COMMIT;
  END LOOP;
END
$$;
