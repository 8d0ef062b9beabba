-- Tenant isolation (issue 13): two accounts A and B with data in every
-- account table, and a login role holding pgext_app, pgext_secret_reader and
-- pgext_secret_writer.
-- (a) unbound, every relation it may read shows no row;
-- (b) bound to A (pgext.set_account), every relation shows A's rows only;
-- (c) bound to A, every function it may execute is classified here (an
--     unclassified one is printed); every account-scoped or by-id function
--     called for B, and every platform-level one, fails 42501 and B's rows
--     do not change; the same calls for A succeed;
-- (d) the binding: one account per transaction, gone after COMMIT and
--     ROLLBACK, not a setting; pgext.require_account; pgext_support reads
--     everything and writes nothing.
-- Other tests share this database: everything here uses its own names.
\set VERBOSITY terse
SET client_min_messages = warning;
SET TIME ZONE 'UTC';

-- Setup, as the DBA.
SELECT pgext.account_create('rls-tenant-a') AS a, pgext.account_create('rls-tenant-b') AS b \gset
SELECT pgext.account_set_stripe_customer(:'a', 'cus_tenant_a'),
       pgext.account_set_stripe_customer(:'b', 'cus_tenant_b');
INSERT INTO pgext.stripe_subscriptions (id, account_id, customer_id, status, current_period_start, current_period_end)
VALUES ('sub_tenant_a', :'a', 'cus_tenant_a', 'active', '2026-01-01', '2099-01-01'),
       ('sub_tenant_b', :'b', 'cus_tenant_b', 'active', '2026-01-01', '2099-01-01');
INSERT INTO pgext.stripe_purchases (checkout_session_id, account_id, price_id, kind, event_id, customer_id)
VALUES ('cs_tenant_a', :'a', 'price_tenant', 'lifetime', 'evt_tenant_a', 'cus_tenant_a'),
       ('cs_tenant_b', :'b', 'price_tenant', 'lifetime', 'evt_tenant_b', 'cus_tenant_b');
SELECT pgext.access_grant(:'a', now() + interval '30 days', 'tenant test') IS NOT NULL AS granted,
       pgext.access_grant(:'b', now() + interval '30 days', 'tenant test') IS NOT NULL AS granted;
SELECT (pgext.credit_grant(:'a', 100, 'tenant-a-g')).ok, (pgext.credit_grant(:'b', 100, 'tenant-b-g')).ok,
       (pgext.credit_grant(:'a', 10, 'tenant-a-lot', 'promo', now() + interval '30 days')).ok,
       (pgext.credit_grant(:'b', 10, 'tenant-b-lot', 'promo', now() + interval '30 days')).ok;
SELECT (pgext.credit_reserve(:'a', 5, 'tenant-a-r1')).id AS ra1, (pgext.credit_reserve(:'a', 5, 'tenant-a-r2')).id AS ra2,
       (pgext.credit_reserve(:'b', 5, 'tenant-b-r1')).id AS rb \gset
SELECT pgext.secret_set('tenant:key', 'tenant-a-secret-0123456789', :'a') IS NOT NULL AS stored,
       pgext.secret_set('tenant:key', 'tenant-b-secret-9876543210', :'b') IS NOT NULL AS stored;
\set spec '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"user_data":"#!/bin/sh\\necho hello\\n","health":{"url":"http://{ipv4}:8080/health"}}'
SELECT pgext.server_request(:'a', 'tenant-a-agent', :'spec') AS sa,
       pgext.server_request(:'b', 'tenant-b-agent', :'spec') AS sb \gset
SELECT pgext.health_check_add(:sa, 'http://203.0.113.10:8080/health') AS ha,
       pgext.health_check_add(:sb, 'http://203.0.113.11:8080/health') AS hb \gset
SELECT pgext.health_check_add(:sa, 'http://203.0.113.10:8080/ready') AS ha2 \gset
INSERT INTO pgext.health_events (at, kind, server_id, account_id, detail)
VALUES (now(), 'agent', :sa, :'a', 'tenant test'), (now(), 'agent', :sb, :'b', 'tenant test');
INSERT INTO pgext.outbox (account_id, kind, subscription_id)
VALUES (:'a', 'payment_failed', 'sub_tenant_a'), (:'b', 'payment_failed', 'sub_tenant_b');
SELECT pgext.stripe_sync_account(:'a') AS qa, pgext.stripe_sync_account(:'b') AS qb \gset
SELECT public.pgp_sym_encrypt('tenant-imported-value-0123', 'pw') AS pgp \gset

CREATE ROLE regress_tenant_app LOGIN IN ROLE pgext_app, pgext_secret_reader, pgext_secret_writer;
CREATE ROLE regress_tenant_admin IN ROLE pgext_admin;
CREATE ROLE regress_tenant_support IN ROLE pgext_support;
-- ids as the test prints them
CREATE TEMP TABLE ids AS SELECT :'a'::uuid AS a, :'b'::uuid AS b;
CREATE FUNCTION pg_temp.names(m text) RETURNS text LANGUAGE sql AS $$
  SELECT replace(replace(m, ids.a::text, '<A>'), ids.b::text, '<B>') FROM pg_temp.ids
$$;
-- the SQLSTATE of a statement (ok when it succeeds), run in a subtransaction
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
-- the row count of a relation, and how many of its rows are not A's
CREATE FUNCTION pg_temp.counts(rel regclass, a uuid, OUT rows bigint, OUT rows_not_a bigint)
LANGUAGE plpgsql AS $$
DECLARE
  col text := CASE WHEN rel = 'pgext.accounts'::regclass THEN 'id'
                   WHEN rel = 'pgext.server_history'::regclass
                     THEN '(SELECT s.account_id FROM pgext.servers s WHERE s.id = server_id)'
                   ELSE 'account_id' END;
BEGIN
  EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %s IS DISTINCT FROM %L) FROM %s', col, a, rel)
    INTO rows, rows_not_a;
END $$;
-- a fingerprint of B's rows in every table that holds account data (as the DBA)
CREATE FUNCTION pg_temp.b_rows(b uuid) RETURNS TABLE (rel regclass, fingerprint text)
LANGUAGE plpgsql AS $$
DECLARE
  r regclass;
  f text;
BEGIN
  FOR r IN SELECT c.oid::regclass FROM pg_class c
            WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind = 'r'
              AND (EXISTS (SELECT FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'account_id')
                   OR c.relname IN ('accounts', 'server_history'))
            ORDER BY c.oid::regclass::text LOOP
    EXECUTE format('SELECT md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x WHERE %s',
                   E'\n', '', r,
                   CASE WHEN r = 'pgext.accounts'::regclass THEN format('x.id = %L', b)
                        WHEN r = 'pgext.server_history'::regclass
                          THEN format('x.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = %L)', b)
                        ELSE format('x.account_id = %L', b) END)
      INTO f;
    rel := r;
    fingerprint := f;
    RETURN NEXT;
  END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.names(text), pg_temp.try(text), pg_temp.counts(regclass, uuid)
  TO regress_tenant_app, regress_tenant_admin, regress_tenant_support;
GRANT SELECT ON ids TO regress_tenant_app, regress_tenant_admin, regress_tenant_support;
SELECT pgext.secret_audit_flush() >= 0 AS audit_flushed;
CREATE TEMP TABLE b_before AS SELECT * FROM pg_temp.b_rows(:'b');
SELECT count(*) AS b_tables, count(*) FILTER (WHERE fingerprint <> md5('')) AS b_tables_with_rows FROM b_before;

-- (a) unbound: every relation the role may read is empty to it
SET ROLE regress_tenant_app;
SELECT pgext.current_account() IS NULL AS unbound;
SELECT c.oid::regclass AS relation, (pg_temp.counts(c.oid::regclass, :'a')).rows
  FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY c.oid::regclass::text;

-- (b) bound to A: A's rows only (and some of them in each relation)
BEGIN;
SELECT pg_temp.names(pgext.set_account(:'a')::text) AS bound;
SELECT pg_temp.names(pgext.current_account()::text) AS current_account;
SELECT c.oid::regclass AS relation, (pg_temp.counts(c.oid::regclass, :'a')).*
  FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY c.oid::regclass::text;
COMMIT;
RESET ROLE;

-- (c) every function the role may execute, classified:
--   account_scoped  takes an account: B's refused, A's runs
--   by_id           takes the id of an account's object: B's refused, A's runs
--   platform        all accounts or none: refused while bound
--   filtered        a listing: bound, it shows A's rows only
--   pure            touches no account data
-- call_b and call_a are run with :B/:A (accounts), :RB/:RA/:RA2 (reservations),
-- :SB/:SA (servers), :HB/:HA/:HA2 (health checks), :QB/:QA (sync requests).
CREATE TEMP TABLE fn (signature text PRIMARY KEY, class text NOT NULL, call_b text, call_a text, ord int);
INSERT INTO fn VALUES
 ('pgext.account_export(uuid)', 'account_scoped', $$SELECT pgext.account_export(:B)$$, $$SELECT pgext.account_export(:A) ->> 'format'$$, 0),
 ('pgext.account_create(text,text)', 'platform', $$SELECT pgext.account_create('rls-tenant-b')$$, $$SELECT pgext.account_create('rls-tenant-a')$$, 1),
 ('pgext.account_set_stripe_customer(uuid,text)', 'account_scoped', $$SELECT pgext.account_set_stripe_customer(:B, 'cus_tenant_b')$$, $$SELECT pgext.account_set_stripe_customer(:A, 'cus_tenant_a')$$, 2),
 ('pgext.billing_access(uuid,timestamp with time zone)', 'account_scoped', $$SELECT pgext.billing_access(:B)$$, $$SELECT pgext.billing_access(:A)$$, 3),
 ('pgext.credit_allocate(uuid,bigint,text,bigint,timestamp with time zone)', 'account_scoped', $$SELECT pgext.credit_allocate(:B, 5, 'tenant-p1')$$, $$SELECT pgext.credit_allocate(:A, 5, 'tenant-p1')$$, 4),
 ('pgext.credit_balance(uuid)', 'account_scoped', $$SELECT pgext.credit_balance(:B)$$, $$SELECT pgext.credit_balance(:A)$$, 5),
 ('pgext.credit_commit(bigint,bigint)', 'by_id', $$SELECT pgext.credit_commit(:RB, 1)$$, $$SELECT pgext.credit_commit(:RA, 1)$$, 6),
 ('pgext.credit_deduct(uuid,bigint,text,text)', 'account_scoped', $$SELECT pgext.credit_deduct(:B, 1, 'tenant-d1')$$, $$SELECT pgext.credit_deduct(:A, 1, 'tenant-d1')$$, 7),
 ('pgext.credit_grant(uuid,bigint,text,text,timestamp with time zone)', 'account_scoped', $$SELECT pgext.credit_grant(:B, 1, 'tenant-g2')$$, $$SELECT pgext.credit_grant(:A, 1, 'tenant-g2')$$, 8),
 ('pgext.credit_release(bigint)', 'by_id', $$SELECT pgext.credit_release(:RB)$$, $$SELECT pgext.credit_release(:RA2)$$, 9),
 ('pgext.credit_reserve(uuid,bigint,text,interval)', 'account_scoped', $$SELECT pgext.credit_reserve(:B, 1, 'tenant-r3')$$, $$SELECT pgext.credit_reserve(:A, 1, 'tenant-r3')$$, 10),
 ('pgext.current_account()', 'pure', NULL, $$SELECT pgext.current_account()$$, 11),
 ('pgext.health_check_add(bigint,text,text,interval,interval)', 'by_id', $$SELECT pgext.health_check_add(:SB, 'http://203.0.113.11:8080/x')$$, $$SELECT pgext.health_check_add(:SA, 'http://203.0.113.10:8080/x')$$, 12),
 ('pgext.health_check_remove(bigint)', 'by_id', $$SELECT pgext.health_check_remove(:HB)$$, $$SELECT pgext.health_check_remove(:HA2)$$, 14),
 ('pgext.health_check_update(bigint,text,interval,interval,boolean)', 'by_id', $$SELECT pgext.health_check_update(:HB, every => '1 minute')$$, $$SELECT pgext.health_check_update(:HA, every => '1 minute')$$, 13),
 ('pgext.outbox_since(bigint,integer)', 'filtered', NULL, $$SELECT 1 / (count(*) FILTER (WHERE account_id = :A) > 0 AND count(*) FILTER (WHERE account_id <> :A) = 0)::int FROM pgext.outbox_since(0, 10000)$$, 15),
 ('pgext.rate_limit(text,integer,double precision,integer)', 'pure', NULL, $$SELECT pgext.rate_limit('tenant-test', 10, 1)$$, 16),
 ('pgext.rate_limit_reset(text)', 'pure', NULL, $$SELECT pgext.rate_limit_reset('tenant-test')$$, 17),
 ('pgext.secret_delete(text,uuid)', 'account_scoped', $$SELECT pgext.secret_delete('tenant:key', :B)$$, $$SELECT pgext.secret_delete('tenant:other', :A)$$, 18),
 ('pgext.secret_get(text,uuid)', 'account_scoped', $$SELECT pgext.secret_get('tenant:key', :B)$$, $$SELECT pgext.secret_get('tenant:key', :A)$$, 19),
 ('pgext.secret_import_pgp(text,bytea,text,uuid,timestamp with time zone)', 'account_scoped', $$SELECT pgext.secret_import_pgp('tenant:imported', :PGP, 'pw', :B)$$, $$SELECT pgext.secret_import_pgp('tenant:imported', :PGP, 'pw', :A)$$, 20),
 ('pgext.secret_list()', 'filtered', NULL, $$SELECT 1 / (count(*) FILTER (WHERE account_id = :A) > 0 AND count(*) FILTER (WHERE account_id IS DISTINCT FROM :A) = 0)::int FROM pgext.secret_list()$$, 21),
 ('pgext.secret_masked(text,uuid)', 'account_scoped', $$SELECT pgext.secret_masked('tenant:key', :B)$$, $$SELECT pgext.secret_masked('tenant:key', :A)$$, 22),
 ('pgext.secret_set(text,text,uuid,timestamp with time zone)', 'account_scoped', $$SELECT pgext.secret_set('tenant:key', 'tenant-overwrite-0123456789', :B)$$, $$SELECT pgext.secret_set('tenant:key2', 'tenant-a-second-0123456789', :A)$$, 23),
 ('pgext.server_delete(bigint,text)', 'by_id', $$SELECT pgext.server_delete(:SB, 'tenant test')$$, $$SELECT pgext.server_delete(:SA, 'tenant test')$$, 99),
 ('pgext.server_desired_state(text,text,timestamp with time zone,timestamp with time zone,timestamp with time zone,timestamp with time zone)', 'pure', NULL, $$SELECT pgext.server_desired_state('none', 'ended', '2026-11-01', '2026-11-01', '2026-11-03')$$, 24),
 ('pgext.server_name(text)', 'pure', NULL, $$SELECT pgext.server_name('tenant-x')$$, 25),
 ('pgext.server_request(uuid,text,jsonb)', 'account_scoped', $$SELECT pgext.server_request(:B, 'tenant-b-agent', :SPEC)$$, $$SELECT pgext.server_request(:A, 'tenant-a-agent', :SPEC)$$, 26),
 ('pgext.server_spec_check(jsonb)', 'pure', NULL, $$SELECT pgext.server_spec_check(:SPEC)$$, 27),
 ('pgext.server_status_of(uuid)', 'account_scoped', $$SELECT pgext.server_status_of(:B)$$, $$SELECT pgext.server_status_of(:A)$$, 28),
 ('pgext.server_user_data_check(bytea)', 'pure', NULL, $$SELECT pgext.server_user_data_check(convert_to(E'#!/bin/sh\necho hi\n', 'UTF8'))$$, 29),
 ('pgext.set_account(uuid)', 'pure', NULL, $$SELECT pgext.set_account(:A)$$, 30),
 ('pgext.stripe_sync_account(uuid)', 'account_scoped', $$SELECT pgext.stripe_sync_account(:B)$$, $$SELECT pgext.stripe_sync_account(:A)$$, 31),
 ('pgext.stripe_sync_wait(bigint,interval)', 'by_id', $$SELECT pgext.stripe_sync_wait(:QB, '0 s')$$, $$SELECT pgext.stripe_sync_wait(:QA, '0 s')$$, 32),
 ('pgext.webhook_apply(integer)', 'platform', $$SELECT pgext.webhook_apply()$$, NULL, 33),
 ('pgext.webhook_claim(text,integer)', 'platform', $$SELECT pgext.webhook_claim('tenant_src')$$, NULL, 34),
 ('pgext.webhook_ingest(text,text,text,timestamp with time zone)', 'platform', $$SELECT pgext.webhook_ingest('stripe', '{}', 't=1,v1=00')$$, NULL, 35),
 ('pgext.worker_wake()', 'pure', NULL, $$SELECT pgext.worker_wake()$$, 36);
-- platform-level calls that take an account argument: NULL means the platform
INSERT INTO fn VALUES
 ('platform secret: secret_set', 'platform', $$SELECT pgext.secret_set('tenant:platform', 'tenant-platform-0123456789')$$, NULL, 40),
 ('platform secret: secret_get', 'platform', $$SELECT pgext.secret_get('tenant:platform')$$, NULL, 41),
 ('platform secret: secret_masked', 'platform', $$SELECT pgext.secret_masked('tenant:platform')$$, NULL, 42),
 ('platform secret: secret_delete', 'platform', $$SELECT pgext.secret_delete('tenant:platform')$$, NULL, 43),
 ('platform secret: secret_import_pgp', 'platform', $$SELECT pgext.secret_import_pgp('tenant:platform', :PGP, 'pw')$$, NULL, 44),
 ('a new account: account_create', 'platform', $$SELECT pgext.account_create('rls-tenant-new')$$, NULL, 45);
CREATE TEMP TABLE calls AS
SELECT f.signature, f.class, f.ord,
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
         f.call_b, ':B', quote_literal(:'b') || '::uuid'), ':RB', :'rb'), ':SB', :'sb'), ':HB', :'hb'),
         ':QB', :'qb'), ':PGP', quote_literal(:'pgp') || '::bytea'), ':SPEC', quote_literal(:'spec') || '::jsonb'),
         ':RA2', :'ra2'), ':RA', :'ra1'), ':SA', :'sa'), ':HA2', :'ha2'), ':HA', :'ha'), ':A', quote_literal(:'a') || '::uuid') AS call_b,
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
         f.call_a, ':B', quote_literal(:'b') || '::uuid'), ':RB', :'rb'), ':SB', :'sb'), ':HB', :'hb'),
         ':QB', :'qb'), ':PGP', quote_literal(:'pgp') || '::bytea'), ':SPEC', quote_literal(:'spec') || '::jsonb'),
         ':RA2', :'ra2'), ':RA', :'ra1'), ':SA', :'sa'), ':HA2', :'ha2'), ':HA', :'ha'), ':QA', :'qa'), ':A', quote_literal(:'a') || '::uuid') AS call_a
  FROM fn f;
GRANT SELECT ON fn, calls TO regress_tenant_app;
SET ROLE regress_tenant_app;
-- granted but not classified (must be empty), and classified but not granted
SELECT p.oid::regprocedure AS unclassified
  FROM pg_proc p
 WHERE p.pronamespace = 'pgext'::regnamespace AND has_function_privilege(p.oid, 'EXECUTE')
   AND p.oid::regprocedure::text NOT IN (SELECT signature FROM fn)
 ORDER BY p.oid::regprocedure::text;
SELECT signature AS not_granted FROM fn
 WHERE signature LIKE 'pgext.%' AND NOT has_function_privilege(signature::regprocedure, 'EXECUTE')
 ORDER BY 1;
-- bound to A: for B, and platform-level, every call fails 42501
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT class, signature, pg_temp.try(call_b) AS for_b
  FROM calls WHERE call_b IS NOT NULL ORDER BY ord;
COMMIT;
RESET ROLE;
SELECT b.rel AS changed_for_b FROM b_before b JOIN pg_temp.b_rows(:'b') n USING (rel)
 WHERE b.fingerprint IS DISTINCT FROM n.fingerprint;
-- bound to A: for A, every call runs
SET ROLE regress_tenant_app;
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT class, signature, pg_temp.try(call_a) AS for_a
  FROM calls WHERE call_a IS NOT NULL ORDER BY ord;
COMMIT;
-- the listings for A again, shown
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT pg_temp.names(account_id::text) AS account, kind, subscription_id
  FROM pgext.outbox_since(0, 10000) ORDER BY id;
SELECT pg_temp.names(account_id::text) AS account, name FROM pgext.secret_catalog ORDER BY name;
COMMIT;
RESET ROLE;

-- (d) the binding
SET ROLE regress_tenant_app;
-- one account per transaction
BEGIN;
SELECT pg_temp.names(pgext.set_account(:'a')::text) AS bound;
SELECT pg_temp.names(pgext.set_account(:'a')::text) AS again_same;
SELECT pgext.set_account(:'b');
ROLLBACK;
-- NULL, an unknown account
SELECT pgext.set_account(NULL);
SELECT pgext.set_account('00000000-0000-0000-0000-000000000000');
-- gone after COMMIT and after ROLLBACK; outside BEGIN it lasts one statement
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
COMMIT;
SELECT pgext.current_account() IS NULL AS unbound_after_commit, count(*) AS accounts_seen FROM pgext.accounts;
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
ROLLBACK;
SELECT pgext.current_account() IS NULL AS unbound_after_rollback, count(*) AS accounts_seen FROM pgext.accounts;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound, (SELECT count(*) FROM pgext.accounts) AS accounts_seen;
SELECT pgext.current_account() IS NULL AS unbound_next_statement;
-- an error ends the binding with its transaction too
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT 1 / 0;
ROLLBACK;
SELECT pgext.current_account() IS NULL AS unbound_after_error;
-- not a setting: SET changes nothing
SET pgext.account = 'whatever';
SELECT set_config('pgext.account', :'b', false);
SELECT pgext.current_account() IS NULL AS still_unbound, count(*) AS accounts_seen FROM pgext.accounts;
-- pgext.require_account: only a superuser sets it (ALTER ROLE ... SET in production)
SET pgext.require_account = on;
RESET ROLE;
SET pgext.require_account = on;
SET ROLE regress_tenant_app;
SELECT pgext.credit_balance(:'a');
SELECT pgext.server_status_of(:'a');
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT pgext.credit_balance(:'a') AS balance_bound;
COMMIT;
-- pure functions are not account-scoped
SELECT pgext.server_name('tenant-x') IS NOT NULL AS named;
-- an administrator unbound is not confined; bound, it is
SET ROLE regress_tenant_admin;
SELECT pgext.credit_balance(:'a') AS admin_balance_a, pgext.credit_balance(:'b') AS admin_balance_b;
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT pgext.credit_balance(:'b');
ROLLBACK;
SELECT count(*) FILTER (WHERE id IN (:'a', :'b')) AS admin_sees FROM pgext.accounts;
-- bound, every operator-only function that works on all accounts refuses
-- (called with NULL arguments: the refusal comes first); what is left reads
-- status only, or takes an account or id and checks it
BEGIN;
SELECT pgext.set_account(:'a') IS NOT NULL AS bound;
SELECT p.proname AS admin_function,
       pg_temp.try(format('SELECT %s(%s)', p.oid::regproc,
                          (SELECT string_agg('NULL::' || t::regtype::text, ', ')
                             FROM unnest(p.proargtypes::oid[]) t))) AS bound_call
  FROM pg_proc p
 WHERE p.pronamespace = 'pgext'::regnamespace AND has_function_privilege(p.oid, 'EXECUTE')
   AND NOT has_function_privilege('regress_tenant_app', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('regress_tenant_support', p.oid, 'EXECUTE')
 ORDER BY 2, 1;
ROLLBACK;
RESET ROLE;
RESET pgext.require_account;
-- pgext_support reads every row, writes nothing, never the ciphertext
SET ROLE regress_tenant_support;
SELECT count(*) FILTER (WHERE id IN (:'a', :'b')) AS support_sees_accounts FROM pgext.accounts;
SELECT count(*) FILTER (WHERE account_id IN (:'a', :'b')) AS support_sees_servers FROM pgext.server_status;
SELECT count(*) FILTER (WHERE account_id IN (:'a', :'b')) AS support_sees_secret_names FROM pgext.secret_catalog;
SELECT pgext.credit_balance(:'b') AS support_balance_b;
SELECT count(*) FROM pgext.secrets;
SELECT pgext.credit_grant(:'b', 1, 'tenant-support');
SELECT pgext.secret_get('tenant:key', :'b');
SELECT pgext.server_delete(:sb, 'support');
-- every relation it may read, it can read (the views' functions included)
SELECT c.oid::regclass AS support_reads, pg_temp.try(format('SELECT count(*) FROM %s', c.oid::regclass)) AS result
  FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY c.oid::regclass::text;
-- every table the support role may read, and the functions it may run: none writes
SELECT string_agg(p.proname, ', ' ORDER BY p.proname) AS support_functions
  FROM pg_proc p
 WHERE p.pronamespace = 'pgext'::regnamespace AND has_function_privilege(p.oid, 'EXECUTE');
SELECT count(*) AS support_writable_relations
  FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace
   AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE');
RESET ROLE;

-- every table of the schema has row-level security (not forced: the owner's
-- functions and pg_dump keep working)
SELECT c.oid::regclass AS without_rls
  FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
 ORDER BY c.oid::regclass::text;
SELECT count(*) AS forced FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace AND c.relforcerowsecurity;
-- every view runs with the caller's rights
SELECT c.oid::regclass AS view_without_security_invoker
  FROM pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind = 'v'
   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
 ORDER BY c.oid::regclass::text;
-- the policies
SELECT tablename, policyname, roles, cmd, qual
  FROM pg_policies WHERE schemaname = 'pgext' ORDER BY tablename, policyname;

-- Clean up: the roles are cluster-wide; the test data stays in pgext.
DROP OWNED BY regress_tenant_app, regress_tenant_admin, regress_tenant_support;
DROP ROLE regress_tenant_app, regress_tenant_admin, regress_tenant_support;
