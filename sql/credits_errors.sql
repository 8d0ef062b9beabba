-- Credits: every bad input gets a clear error with a real SQLSTATE and changes nothing.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT pgext.account_create('err-a') AS a \gset
SELECT pgext.credit_grant(:'a', 10, 'seed');
SELECT id AS res FROM pgext.credit_reserve(:'a', 4, 'seed-res') \gset
SELECT id AS gone FROM pgext.credit_reserve(:'a', 1, 'seed-gone') \gset
SELECT status FROM pgext.credit_release(:gone);
SELECT id AS done FROM pgext.credit_reserve(:'a', 1, 'seed-done') \gset
SELECT status FROM pgext.credit_commit(:done);
SELECT count(*) AS ledger_rows_before FROM pgext.credit_ledger \gset
SELECT balance AS balance_before FROM pgext.accounts WHERE id = :'a' \gset
\set A '''' :a ''''
\set NOBODY '''00000000-0000-0000-0000-000000000000'''

-- A is the account, NOBODY an unknown account, RES a held reservation of 4 credits.
SELECT call, pg_temp.try(stmt) AS result FROM (VALUES
  -- grant
  ('SELECT pgext.credit_grant(NULL, 1, ''k'')', 'SELECT pgext.credit_grant(NULL, 1, ''k'')'),
  ('SELECT pgext.credit_grant(A, 0, ''k'')', 'SELECT pgext.credit_grant(' || :'A' || ', 0, ''k'')'),
  ('SELECT pgext.credit_grant(A, -5, ''k'')', 'SELECT pgext.credit_grant(' || :'A' || ', -5, ''k'')'),
  ('SELECT pgext.credit_grant(A, NULL, ''k'')', 'SELECT pgext.credit_grant(' || :'A' || ', NULL, ''k'')'),
  ('SELECT pgext.credit_grant(A, 1, NULL)', 'SELECT pgext.credit_grant(' || :'A' || ', 1, NULL)'),
  ('SELECT pgext.credit_grant(A, 1, '''')', 'SELECT pgext.credit_grant(' || :'A' || ', 1, '''')'),
  ('SELECT pgext.credit_grant(A, 1, repeat(''k'', 256))', 'SELECT pgext.credit_grant(' || :'A' || ', 1, repeat(''k'', 256))'),
  ('SELECT pgext.credit_grant(A, 1, ''k'', NULL)', 'SELECT pgext.credit_grant(' || :'A' || ', 1, ''k'', NULL)'),
  ('SELECT pgext.credit_grant(A, 1, ''k'', ''Bonus!'')', 'SELECT pgext.credit_grant(' || :'A' || ', 1, ''k'', ''Bonus!'')'),
  ('SELECT pgext.credit_grant(A, 1, ''k'', ''allocation'')', 'SELECT pgext.credit_grant(' || :'A' || ', 1, ''k'', ''allocation'')'),
  ('SELECT pgext.credit_grant(A, 1, ''k'', repeat(''x'', 100000))', 'SELECT pgext.credit_grant(' || :'A' || ', 1, ''k'', repeat(''x'', 100000))'),
  ('SELECT pgext.credit_grant(A, 1, ''k'', ''bonus'', ''2000-01-01 00:00:00+00'')', 'SELECT pgext.credit_grant(' || :'A' || ', 1, ''k'', ''bonus'', ''2000-01-01 00:00:00+00'')'),
  ('SELECT pgext.credit_grant(A, 1, ''k'', ''bonus'', ''infinity'')', 'SELECT pgext.credit_grant(' || :'A' || ', 1, ''k'', ''bonus'', ''infinity'')'),
  ('SELECT pgext.credit_grant(NOBODY, 1, ''k'')', 'SELECT pgext.credit_grant(' || :'NOBODY' || ', 1, ''k'')'),
  ('SELECT pgext.credit_grant(A, 9223372036854775807, ''k'')', 'SELECT pgext.credit_grant(' || :'A' || ', 9223372036854775807, ''k'')'),
  ('SELECT pgext.credit_grant(A, 99999999999999999999, ''k'')', 'SELECT pgext.credit_grant(' || :'A' || ', 99999999999999999999, ''k'')'),
  ('SELECT pgext.credit_grant(A, 11, ''seed'')', 'SELECT pgext.credit_grant(' || :'A' || ', 11, ''seed'')'),
  ('SELECT pgext.credit_grant(A, 10, ''seed'', ''promo'')', 'SELECT pgext.credit_grant(' || :'A' || ', 10, ''seed'', ''promo'')'),
  ('SELECT pgext.credit_grant(A, 10, ''seed-res'')', 'SELECT pgext.credit_grant(' || :'A' || ', 10, ''seed-res'')'),
  -- deduct
  ('SELECT pgext.credit_deduct(NULL, 1)', 'SELECT pgext.credit_deduct(NULL, 1)'),
  ('SELECT pgext.credit_deduct(A, 0)', 'SELECT pgext.credit_deduct(' || :'A' || ', 0)'),
  ('SELECT pgext.credit_deduct(A, -1)', 'SELECT pgext.credit_deduct(' || :'A' || ', -1)'),
  ('SELECT pgext.credit_deduct(A, NULL)', 'SELECT pgext.credit_deduct(' || :'A' || ', NULL)'),
  ('SELECT pgext.credit_deduct(A, 1, '''')', 'SELECT pgext.credit_deduct(' || :'A' || ', 1, '''')'),
  ('SELECT pgext.credit_deduct(A, 1, ''k'', repeat(''r'', 1001))', 'SELECT pgext.credit_deduct(' || :'A' || ', 1, ''k'', repeat(''r'', 1001))'),
  ('SELECT pgext.credit_deduct(NOBODY, 1, ''k'')', 'SELECT pgext.credit_deduct(' || :'NOBODY' || ', 1, ''k'')'),
  ('SELECT pgext.credit_deduct(A, 1, ''seed'')', 'SELECT pgext.credit_deduct(' || :'A' || ', 1, ''seed'')'),
  ('SELECT pgext.credit_deduct(A, 2, ''seed-done'')', 'SELECT pgext.credit_deduct(' || :'A' || ', 2, ''seed-done'')'),
  -- reserve
  ('SELECT pgext.credit_reserve(NULL, 1, ''k'')', 'SELECT pgext.credit_reserve(NULL, 1, ''k'')'),
  ('SELECT pgext.credit_reserve(A, 0, ''k'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 0, ''k'')'),
  ('SELECT pgext.credit_reserve(A, 1, NULL)', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, NULL)'),
  ('SELECT pgext.credit_reserve(A, 1, ''k'', NULL)', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''k'', NULL)'),
  ('SELECT pgext.credit_reserve(A, 1, ''k'', ''0 seconds'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''k'', ''0 seconds'')'),
  ('SELECT pgext.credit_reserve(A, 1, ''k'', ''-1 minute'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''k'', ''-1 minute'')'),
  ('SELECT pgext.credit_reserve(A, 1, ''k'', ''8 days'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''k'', ''8 days'')'),
  ('SELECT pgext.credit_reserve(A, 1, ''k'', ''178000000 years'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''k'', ''178000000 years'')'),
  ('SELECT pgext.credit_reserve(A, 1, ''k'', ''-178000000 years'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''k'', ''-178000000 years'')'),
  ('SELECT pgext.credit_reserve(NOBODY, 1, ''k'')', 'SELECT pgext.credit_reserve(' || :'NOBODY' || ', 1, ''k'')'),
  ('SELECT pgext.credit_reserve(A, 5, ''seed-res'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 5, ''seed-res'')'),
  ('SELECT pgext.credit_reserve(A, 1, ''seed'')', 'SELECT pgext.credit_reserve(' || :'A' || ', 1, ''seed'')'),
  -- commit / release
  ('SELECT pgext.credit_commit(NULL)', 'SELECT pgext.credit_commit(NULL)'),
  ('SELECT pgext.credit_commit(-1)', 'SELECT pgext.credit_commit(-1)'),
  ('SELECT pgext.credit_commit(RES, 0)', 'SELECT pgext.credit_commit(' || :res || ', 0)'),
  ('SELECT pgext.credit_commit(RES, -3)', 'SELECT pgext.credit_commit(' || :res || ', -3)'),
  ('SELECT pgext.credit_commit(RES, 5)', 'SELECT pgext.credit_commit(' || :res || ', 5)'),
  ('SELECT pgext.credit_commit(RELEASED_RES)', 'SELECT pgext.credit_commit(' || :gone || ')'),
  ('SELECT pgext.credit_commit(COMMITTED_RES, 2)', 'SELECT pgext.credit_commit(' || :done || ', 2)'),
  ('SELECT pgext.credit_release(NULL)', 'SELECT pgext.credit_release(NULL)'),
  ('SELECT pgext.credit_release(424242)', 'SELECT pgext.credit_release(424242)'),
  ('SELECT pgext.credit_release(COMMITTED_RES)', 'SELECT pgext.credit_release(' || :done || ')'),
  -- allocate
  ('SELECT pgext.credit_allocate(NULL, 1, ''p'')', 'SELECT pgext.credit_allocate(NULL, 1, ''p'')'),
  ('SELECT pgext.credit_allocate(A, 0, ''p'')', 'SELECT pgext.credit_allocate(' || :'A' || ', 0, ''p'')'),
  ('SELECT pgext.credit_allocate(A, 1, NULL)', 'SELECT pgext.credit_allocate(' || :'A' || ', 1, NULL)'),
  ('SELECT pgext.credit_allocate(A, 1, '''')', 'SELECT pgext.credit_allocate(' || :'A' || ', 1, '''')'),
  ('SELECT pgext.credit_allocate(A, 1, ''p'', -1)', 'SELECT pgext.credit_allocate(' || :'A' || ', 1, ''p'', -1)'),
  ('SELECT pgext.credit_allocate(A, 1, ''p'', NULL, ''2000-01-01 00:00:00+00'')', 'SELECT pgext.credit_allocate(' || :'A' || ', 1, ''p'', NULL, ''2000-01-01 00:00:00+00'')'),
  ('SELECT pgext.credit_allocate(NOBODY, 1, ''p'')', 'SELECT pgext.credit_allocate(' || :'NOBODY' || ', 1, ''p'')'),
  ('SELECT pgext.credit_allocate(A, 9223372036854775807, ''p'')', 'SELECT pgext.credit_allocate(' || :'A' || ', 9223372036854775807, ''p'')'),
  -- balance, sweep
  ('SELECT pgext.credit_balance(NULL)', 'SELECT pgext.credit_balance(NULL)'),
  ('SELECT pgext.credit_balance(NOBODY)', 'SELECT pgext.credit_balance(' || :'NOBODY' || ')'),
  ('SELECT pgext.credit_sweep(0)', 'SELECT pgext.credit_sweep(0)'),
  ('SELECT pgext.credit_sweep(-1)', 'SELECT pgext.credit_sweep(-1)')
) AS t(call, stmt);

-- an allocation repeated with different parameters
SELECT status FROM pgext.credit_allocate(:'a', 5, 'period-x');
SELECT pg_temp.try('SELECT pgext.credit_allocate(' || :'A' || ', 6, ''period-x'')');
SELECT pg_temp.try('SELECT pgext.credit_allocate(' || :'A' || ', 5, ''period-x'', 3)');
SELECT status FROM pgext.credit_allocate(:'a', 5, 'period-x');

-- nothing changed by any of the failures: the one new ledger row is the allocation above
SELECT count(*) - :ledger_rows_before AS new_ledger_rows FROM pgext.credit_ledger;
SELECT balance - :balance_before AS balance_change FROM pgext.accounts WHERE id = :'a';
SELECT status, count(*) FROM pgext.credit_reservations WHERE account_id = :'a' GROUP BY 1 ORDER BY 1;
SELECT * FROM pgext.credit_audit();
SELECT * FROM pgext.credit_verify();

-- The ledger has no CHECKs (issue 14: only pgext's code writes it, with op a
-- literal and balance_after read back from accounts); credit_verify() reports
-- a row that breaks either rule.  Written here by hand as the superuser (no
-- role of pgext's may insert), inside a transaction rolled back.
BEGIN;
INSERT INTO pgext.credit_ledger (account_id, op, amount, delta, balance_after)
VALUES (:'a', 'bogus', 1, 0, (SELECT balance FROM pgext.accounts WHERE id = :'a'));
INSERT INTO pgext.credit_ledger (account_id, op, amount, delta, balance_after)
VALUES (:'a', 'deduct', 1, 0, -1);
SELECT account = :'a' AS this_account, regexp_replace(problem, 'entry \d+', 'entry N') AS problem
  FROM pgext.credit_verify() ORDER BY 2;
ROLLBACK;
-- lot_credits outside 0 .. balance (once a CHECK; now verified off the hot path)
BEGIN;
UPDATE pgext.accounts SET lot_credits = balance + 1 WHERE id = :'a';
SELECT account = :'a' AS this_account, problem FROM pgext.credit_verify() ORDER BY 2;
ROLLBACK;
-- The accounts' profile checks are domains: still refused on every write.
SELECT pg_temp.try($$INSERT INTO pgext.accounts (external_id) VALUES ('')$$);
SELECT pg_temp.try($$INSERT INTO pgext.accounts (external_id, credit_mode) VALUES ('x-mode', 'free')$$);
SELECT pg_temp.try('UPDATE pgext.accounts SET credit_mode = ''free'' WHERE id = ' || quote_literal(:'a'));
SELECT pg_temp.try('UPDATE pgext.accounts SET external_id = repeat(''x'', 256) WHERE id = ' || quote_literal(:'a'));
SELECT pg_temp.try('UPDATE pgext.accounts SET balance = -1, lot_credits = 0 WHERE id = ' || quote_literal(:'a'));
