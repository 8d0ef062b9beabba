\set n random(1, :naccounts)
\set k random(1, 9223372036854775806)
WITH d AS (UPDATE bench.bare_accounts SET balance = balance - 1
            WHERE id = :n AND balance >= 1 RETURNING id, balance)
INSERT INTO bench.bare_ledger (account_id, op, amount, delta, balance_after, idempotency_key)
SELECT id, 'deduct', 1, -1, balance, 'k' || :k FROM d;
