-- Credits: the happy paths of every call, idempotency, spending order,
-- reservations, allocation, unlimited accounts, and the ledger invariants.
SELECT pgext.account_create('cr-a') AS a \gset
SELECT pgext.account_create('cr-u', 'unlimited') AS u \gset

-- grant, and its retry
SELECT * FROM pgext.credit_grant(:'a', 100, 'g1');
SELECT * FROM pgext.credit_grant(:'a', 100, 'g1');
SELECT pgext.credit_balance(:'a');

-- deduct (fast path), its retry, a retry after more spending still answers the first result
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 30, 'd1', 'job');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 30, 'd1', 'job');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 10);
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 30, 'd1', 'job');
SELECT pgext.credit_balance(:'a');
-- the duplicate did not touch the balance
SELECT balance, lot_credits FROM pgext.accounts WHERE id = :'a';

-- insufficient records nothing; the same key works after a top-up
SELECT ok, status, balance, id FROM pgext.credit_deduct(:'a', 61, 'd2');
SELECT count(*) FROM pgext.credit_ledger WHERE idempotency_key = 'd2';
SELECT ok, status, balance FROM pgext.credit_grant(:'a', 1, 'g2');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 61, 'd2');
-- exactly everything can be spent; then nothing
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 1, 'd3');
SELECT ok, status, balance FROM pgext.credit_grant(:'a', 5, 'g3');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 5, 'd4');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 1, 'd5');

-- spending order: expiring first (soonest first), then plan allocations, then the pool
SELECT pgext.account_create('cr-order') AS o \gset
SELECT status FROM pgext.credit_grant(:'o', 10, 'pool-1');
SELECT status FROM pgext.credit_grant(:'o', 10, 'late', 'promo', now() + interval '30 days');
SELECT status FROM pgext.credit_grant(:'o', 10, 'soon', 'promo', now() + interval '1 day');
SELECT status FROM pgext.credit_allocate(:'o', 10, 'p1');
SELECT ok, status, balance FROM pgext.credit_deduct(:'o', 15, 'o1');
SELECT kind, amount, remaining, expires_at > now() + interval '2 days' AS later
  FROM pgext.credit_lots WHERE account_id = :'o' ORDER BY id;
SELECT ok, status, balance FROM pgext.credit_deduct(:'o', 10, 'o2');
SELECT kind, remaining FROM pgext.credit_lots WHERE account_id = :'o' ORDER BY id;
SELECT ok, status, balance FROM pgext.credit_deduct(:'o', 8, 'o3');
SELECT kind, remaining FROM pgext.credit_lots WHERE account_id = :'o' ORDER BY id;
SELECT balance, lot_credits FROM pgext.accounts WHERE id = :'o';
-- the ledger names the lots a deduction came from
SELECT op, amount, delta, balance_after, lot_ids IS NOT NULL AS from_lots,
       array_length(lot_ids, 1) AS nlots, lot_parts
  FROM pgext.credit_ledger WHERE account_id = :'o' ORDER BY id;

-- reservations: reserve, partial commit gives the rest back, retries are duplicates
SELECT pgext.account_create('cr-r') AS r \gset
SELECT status FROM pgext.credit_grant(:'r', 100, 'rg');
SELECT ok, status, balance FROM pgext.credit_reserve(:'r', 40, 'res-1');
SELECT id AS res1 FROM pgext.credit_reservations WHERE account_id = :'r' AND idempotency_key = 'res-1' \gset
SELECT ok, status, balance, id = :res1 AS same FROM pgext.credit_reserve(:'r', 40, 'res-1');
SELECT pgext.credit_balance(:'r');
SELECT ok, status, balance FROM pgext.credit_commit(:res1, 25);
SELECT ok, status, balance FROM pgext.credit_commit(:res1, 25);
SELECT status, amount, held, committed FROM pgext.credit_reservations WHERE id = :res1;
-- full commit (NULL amount), release, release retry
SELECT id AS res2 FROM pgext.credit_reserve(:'r', 10, 'res-2') \gset
SELECT ok, status, balance FROM pgext.credit_commit(:res2);
SELECT id AS res3 FROM pgext.credit_reserve(:'r', 20, 'res-3') \gset
SELECT ok, status, balance FROM pgext.credit_release(:res3);
SELECT ok, status, balance FROM pgext.credit_release(:res3);
SELECT id, status, committed FROM pgext.credit_reservations WHERE account_id = :'r' ORDER BY id;
-- a reservation larger than the balance is refused and records nothing
SELECT ok, status, balance, id FROM pgext.credit_reserve(:'r', 1000, 'res-4');
SELECT count(*) FROM pgext.credit_reservations WHERE idempotency_key = 'res-4';
-- reserved credits are not spendable; released ones are again
SELECT id AS res5 FROM pgext.credit_reserve(:'r', 65, 'res-5') \gset
SELECT ok, status FROM pgext.credit_deduct(:'r', 1, 'rd1');
SELECT ok, status FROM pgext.credit_release(:res5);
SELECT ok, status, balance FROM pgext.credit_deduct(:'r', 1, 'rd1');
-- a partial commit returns expiring credits to their lot (they keep their expiry)
SELECT status FROM pgext.credit_grant(:'r', 10, 'rexp', 'promo', now() + interval '1 day');
SELECT id AS res6 FROM pgext.credit_reserve(:'r', 20, 'res-6') \gset
SELECT pool_part, lot_parts FROM pgext.credit_reservations WHERE id = :res6;
SELECT ok, status, balance FROM pgext.credit_commit(:res6, 5);
SELECT kind, amount, remaining FROM pgext.credit_lots WHERE account_id = :'r';
SELECT balance, lot_credits FROM pgext.accounts WHERE id = :'r';

-- allocation: once per period; rollover cap forfeits what earlier allocations left beyond it
SELECT pgext.account_create('cr-plan') AS p \gset
SELECT ok, status, balance FROM pgext.credit_allocate(:'p', 500, '2026-10', 100);
SELECT ok, status, balance FROM pgext.credit_allocate(:'p', 500, '2026-10', 100);
SELECT ok, status, balance FROM pgext.credit_deduct(:'p', 350, 'p1');
SELECT status FROM pgext.credit_grant(:'p', 40, 'p-bonus');
SELECT ok, status, balance FROM pgext.credit_allocate(:'p', 500, '2026-11', 100);
SELECT op, kind, amount, delta, balance_after, reason FROM pgext.credit_ledger
 WHERE account_id = :'p' ORDER BY id;
SELECT period_key, amount, remaining FROM pgext.credit_lots WHERE account_id = :'p' ORDER BY id;
-- no cap: everything carries over
SELECT ok, status, balance FROM pgext.credit_allocate(:'p', 500, '2026-12');
SELECT pgext.credit_balance(:'p');

-- unlimited accounts: usage recorded, balance untouched
SELECT ok, status, balance FROM pgext.credit_deduct(:'u', 1000, 'u1', 'demo');
SELECT ok, status, balance FROM pgext.credit_deduct(:'u', 1000, 'u1', 'demo');
SELECT ok, status, balance FROM pgext.credit_reserve(:'u', 50, 'u2');
SELECT ok, status, balance FROM pgext.credit_commit((SELECT id FROM pgext.credit_reservations WHERE account_id = :'u'), 20);
SELECT op, kind, amount, delta, balance_after FROM pgext.credit_ledger WHERE account_id = :'u' ORDER BY id;
-- switching a metered account to unlimited and back
SELECT pgext.account_set_credit_mode(:'a', 'unlimited');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 5000, 'a-unl');
SELECT pgext.account_set_credit_mode(:'a', 'metered');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 1, 'a-met');

-- the ledger is append-only
UPDATE pgext.credit_ledger SET delta = 0;
DELETE FROM pgext.credit_ledger;
TRUNCATE pgext.credit_ledger;
-- the CHECK constraint is the last line of defence
\set VERBOSITY terse
UPDATE pgext.accounts SET balance = -1 WHERE id = :'a';
\set VERBOSITY default

-- every balance equals its ledger, every running balance adds up
SELECT * FROM pgext.credit_audit();
SELECT * FROM pgext.credit_audit(:'p');
SELECT * FROM pgext.credit_verify();

-- credit_deduct's fast path (src/credits/fastpath.c: READ COMMITTED, a metered
-- account with all its credits in the pool) writes what the SQL path writes.
SELECT pgext.account_create('fast-path') AS f \gset
SELECT status FROM pgext.credit_grant(:'f', 100, 'fp-seed');
-- two deducts in one statement, then three in one transaction with a savepoint rolled back
SELECT (pgext.credit_deduct(:'f', 1, 'fp-1')).balance AS first, (pgext.credit_deduct(:'f', 2, 'fp-2')).balance AS second;
BEGIN;
SELECT status, balance FROM pgext.credit_deduct(:'f', 3, 'fp-3', 'kept');
SAVEPOINT s;
SELECT status, balance FROM pgext.credit_deduct(:'f', 4, 'fp-4');
ROLLBACK TO SAVEPOINT s;
SELECT status, balance FROM pgext.credit_deduct(:'f', 5, 'fp-5');
SELECT status, balance FROM pgext.credit_deduct(:'f', 5, 'fp-5');   -- retried in the same transaction
COMMIT;
-- the same deduct through the SQL path (REPEATABLE READ) and the fast path: the same row
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT status, balance FROM pgext.credit_deduct(:'f', 6, 'fp-rr', 'same row');
COMMIT;
SELECT status, balance FROM pgext.credit_deduct(:'f', 6, 'fp-rc', 'same row');
SELECT idempotency_key, op, kind, amount, delta, balance_after, reason, lot_id, reservation_id,
       expires_at, lot_ids, lot_parts, created_at IS NOT NULL AS has_created_at
  FROM pgext.credit_ledger WHERE account_id = :'f' ORDER BY id;
-- a key that is taken is answered by the general path under the lock
SELECT status, balance FROM pgext.credit_deduct(:'f', 6, 'fp-rc', 'same row');
-- after a schema change the fast path turns itself off: a new ledger column's default is
-- written (by the SQL path), not skipped
BEGIN;
ALTER TABLE pgext.credit_ledger ADD COLUMN fp_extra int DEFAULT 7;
SELECT status, balance FROM pgext.credit_deduct(:'f', 1, 'fp-shape');
SELECT fp_extra FROM pgext.credit_ledger WHERE idempotency_key = 'fp-shape';
ROLLBACK;
-- a statement-level trigger on accounts is run: the fast path steps aside for the SQL path
BEGIN;
CREATE FUNCTION pg_temp.fp_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'statement trigger on % ran', TG_TABLE_NAME; RETURN NULL; END $$;
CREATE TRIGGER fp_stmt AFTER UPDATE ON pgext.accounts FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.fp_note();
SELECT status, balance FROM pgext.credit_deduct(:'f', 1, 'fp-trigger');
ROLLBACK;
SELECT status, balance FROM pgext.credit_deduct(:'f', 1, 'fp-after');
SELECT * FROM pgext.credit_audit(:'f');
SELECT count(*) AS verify_rows FROM pgext.credit_verify() WHERE account = :'f';
