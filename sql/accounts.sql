-- Accounts: creation (idempotent), credit mode, Stripe customer link, bad inputs.
SELECT pgext.account_create('acct-a') = pgext.account_create('acct-a') AS same_id;
SELECT credit_mode, balance, lot_credits FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_create('acct-u', 'unlimited') IS NOT NULL AS created;
SELECT credit_mode FROM pgext.accounts WHERE external_id = 'acct-u';
-- same external_id, other mode: refused, says how to change it
SELECT pgext.account_create('acct-a', 'unlimited');
SELECT pgext.account_set_credit_mode(id, 'unlimited') FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT credit_mode FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_credit_mode(id, 'metered') FROM pgext.accounts WHERE external_id = 'acct-a';
-- REPEATABLE READ: an existing account is returned, a new one created (once), the mode checked
-- (concurrent creation under each isolation level: test/specs/account_create_race.spec)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pgext.account_create('acct-a') = (SELECT id FROM pgext.accounts WHERE external_id = 'acct-a') AS same_id;
SELECT pgext.account_create('acct-rr') = pgext.account_create('acct-rr') AS same_id;
SELECT count(*) FROM pgext.accounts WHERE external_id = 'acct-rr';
SELECT pgext.account_create('acct-rr', 'unlimited');
ROLLBACK;
-- bad inputs
SELECT pgext.account_create(NULL);
SELECT pgext.account_create('');
SELECT pgext.account_create(repeat('x', 256));
SELECT pgext.account_create('acct-b', 'free');
SELECT pgext.account_create('acct-b', NULL);
-- bad inputs (issue 13): no blank external_id, no control characters; a
-- message shows at most 64 bytes of a rejected value
SELECT pgext.account_create('   ');
SELECT pgext.account_create(E'acct-b\n');
SELECT pgext.account_create('acct-b', repeat('m', 100000));
SELECT pgext.account_set_stripe_customer(id, repeat('c', 100000)) FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_credit_mode('00000000-0000-0000-0000-000000000000', 'metered');
SELECT pgext.account_set_credit_mode(NULL, 'metered');
SELECT count(*) FROM pgext.accounts WHERE external_id = 'acct-b';
-- Stripe customer: link, idempotent relink, unique, refuse silent move, unlink
SELECT pgext.account_set_stripe_customer(id, 'cus_A1') FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_stripe_customer(id, 'cus_A1') FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_stripe_customer(id, 'cus_A1') FROM pgext.accounts WHERE external_id = 'acct-u';
SELECT pgext.account_set_stripe_customer(id, 'cus_B2') FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_stripe_customer(id, 'sub_123') FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_stripe_customer('00000000-0000-0000-0000-000000000000', 'cus_Z');
SELECT pgext.account_set_stripe_customer(id, NULL) FROM pgext.accounts WHERE external_id = 'acct-a';
SELECT pgext.account_set_stripe_customer(id, 'cus_A1') FROM pgext.accounts WHERE external_id = 'acct-u';
SELECT external_id, stripe_customer_id FROM pgext.accounts ORDER BY external_id;
-- privileges: nothing for PUBLIC
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'pgext' AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'pgext' AND c.relkind = 'r'
   AND has_table_privilege('public', c.oid, 'SELECT,INSERT,UPDATE,DELETE') ORDER BY 1;
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'pgext' AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
   AND NOT (p.prosecdef AND p.proconfig IS NOT NULL) ORDER BY 1;
