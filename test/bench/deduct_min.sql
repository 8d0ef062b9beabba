\set n random(1, :naccounts)
\set k random(1, 9223372036854775806)
WITH d AS (UPDATE bench.min_accounts SET balance = balance - 1
            WHERE id = ('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid AND balance >= 1
            RETURNING id, balance)
INSERT INTO bench.min_ledger (account_id, op, amount, delta, balance_after, idempotency_key)
SELECT id, 'deduct', 1, -1, balance, 'k' || :k FROM d;
