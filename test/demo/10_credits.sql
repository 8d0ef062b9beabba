-- Credits: signup, grant, reserve/commit, a refused overdraft, and the ledger.
\pset footer off
\echo '--- signup: the app creates an account for its user "alice"'
SELECT pgext.account_create('alice') AS alice \gset
\echo 'alice =' :alice

\echo '--- welcome bonus: 100 credits, granted with an idempotency key'
SELECT * FROM pgext.credit_grant(:'alice', 100, 'signup-bonus:alice');
\echo '--- the app retries the same grant (network blip): nothing is granted twice'
SELECT * FROM pgext.credit_grant(:'alice', 100, 'signup-bonus:alice');

\echo '--- a trial top-up that expires in 7 days is spent first'
SELECT * FROM pgext.credit_grant(:'alice', 20, 'trial:alice', 'trial', now() + interval '7 days');

\echo '--- an agent run reserves 50 credits before it starts...'
SELECT * FROM pgext.credit_reserve(:'alice', 50, 'run-1:reserve') \gset res_
\echo '--- ...and commits the 35 it actually used; the other 15 come back'
SELECT * FROM pgext.credit_commit(:res_id, 35);

\echo '--- a 200-credit job is refused: the balance never goes below zero'
SELECT * FROM pgext.credit_deduct(:'alice', 200, 'job-2', 'large batch job');

\echo '--- a small deduction succeeds'
SELECT * FROM pgext.credit_deduct(:'alice', 5, 'job-3', 'chat message');

\echo '--- the monthly plan allocation, once per period (a retry is a duplicate)'
SELECT * FROM pgext.credit_allocate(:'alice', 500, '2026-11', 100);
SELECT * FROM pgext.credit_allocate(:'alice', 500, '2026-11', 100);

\echo '--- an unlimited (demo) account: usage is recorded, balance untouched'
SELECT pgext.account_create('demo-bob', 'unlimited') AS bob \gset
SELECT * FROM pgext.credit_deduct(:'bob', 1000, 'bob-1', 'demo usage');

\echo '--- spendable balance and the append-only ledger'
SELECT pgext.credit_balance(:'alice') AS alice_spendable;
SELECT id, op, kind, amount, delta, balance_after, idempotency_key, reason
  FROM pgext.credit_ledger WHERE account_id = :'alice' ORDER BY id;
\echo '--- audit: accounts whose balance disagrees with their ledger (none)'
SELECT * FROM pgext.credit_audit();
\echo '--- history cannot be edited'
\set ON_ERROR_STOP 0
UPDATE pgext.credit_ledger SET delta = 1000000 WHERE account_id = :'alice';
\set ON_ERROR_STOP 1
