-- Security of the SQL surface (issue 7, section 2).
-- (a) Catalog checks: every SECURITY DEFINER function pins a search_path that
--     ends in pg_temp, nothing in schema pgext (functions, tables, views,
--     sequences) is granted to PUBLIC beyond an intended list, and the
--     functions and relations granted to each pgext role are listed (a new
--     grant shows here).
-- (b) The pg_temp attack replayed: roles holding only pgext_app,
--     pgext_secret_writer or pgext_secret_reader shadow type names (temp
--     domains whose CHECK runs attacker code), operators and functions, in
--     pg_temp and in a schema of their own first on their search_path, then
--     call every function their role may call.  The attacker's code logs
--     current_user; it must never run as anyone but the attacker.
-- Other tests share this database: everything here uses its own names.
\set VERBOSITY terse
SET client_min_messages = warning;

-- (a) SECURITY DEFINER functions whose search_path is not pinned with pg_temp last
-- Functions that pin it in C instead (src/common/searchpath.c: pg_catalog,
-- pgext, the temporary schema not searched at all), each with its reason; the attack replay in (b) calls
-- each of them, on its success and on its error paths (which run SQL):
--   secret_get      the hot read path: the SET clause cost ~22% of a read (issue 14)
--   secret_masked   same declaration as secret_get, same cost
--   webhook_ingest  the intake hot path: a GUC save/restore per delivery (issue 14)
--   credit_deduct   the spend hot path: ~7% of its throughput (issue 14)
CREATE TEMP TABLE sec_pinned_in_c (fn regprocedure);
INSERT INTO sec_pinned_in_c VALUES
  ('pgext.secret_get(text,uuid)'), ('pgext.secret_masked(text,uuid)'),
  ('pgext.webhook_ingest(text,text,text,timestamptz)'),
  ('pgext.credit_deduct(uuid,bigint,text,text)');
SELECT p.oid::regprocedure AS unpinned
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pgext'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
                    WHERE c ~ '^search_path=pg_catalog, *pgext, *pg_temp$')
   AND p.oid NOT IN (SELECT fn FROM sec_pinned_in_c)
 ORDER BY p.oid::regprocedure::text;
-- the C-pinned ones: definers with no SET clause at all
SELECT p.oid::regprocedure AS pinned_in_c, p.prosecdef AS definer, p.proconfig
  FROM pg_catalog.pg_proc p JOIN sec_pinned_in_c c ON c.fn = p.oid
 ORDER BY p.oid::regprocedure::text;
-- every function of the schema, definer or not, with its search_path setting
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer,
       (SELECT c FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS path
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pgext'::regnamespace
   AND NOT (p.prosecdef OR p.prorettype = 'trigger'::regtype)
 ORDER BY p.oid::regprocedure::text;
-- trigger functions pin the path too
SELECT p.oid::regprocedure AS trigger_function,
       (SELECT c FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS path
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pgext'::regnamespace AND p.prorettype = 'trigger'::regtype
 ORDER BY p.oid::regprocedure::text;
-- What PUBLIC may do on every function, table, view and sequence of schema
-- pgext (grantee 0; a NULL proacl means the default, which includes EXECUTE
-- for PUBLIC; a NULL relacl grants PUBLIC nothing), against the intended
-- list below: any difference is printed.  Intended today: nothing at all
-- (a trigger function would be harmless, it cannot be called directly, but
-- none is granted either).
CREATE TEMP TABLE sec_public_intended (kind text, object text, privileges text);
-- INSERT INTO sec_public_intended VALUES ('function', 'pgext.x()', 'EXECUTE');  -- the form of an entry
WITH objects AS (
  SELECT 'function' AS kind, p.oid::regprocedure::text AS object,
         CASE WHEN p.proacl IS NULL THEN 'EXECUTE'
              ELSE (SELECT pg_catalog.string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)
                      FROM pg_catalog.aclexplode(p.proacl) a WHERE a.grantee = 0) END AS privileges
    FROM pg_catalog.pg_proc p
   WHERE p.pronamespace = 'pgext'::regnamespace
  UNION ALL
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END,
         c.oid::regclass::text,
         (SELECT pg_catalog.string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)
            FROM pg_catalog.aclexplode(c.relacl) a WHERE a.grantee = 0)
    FROM pg_catalog.pg_class c
   WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'm', 'p', 'f'))
SELECT o.kind, o.object, o.privileges AS public_may, i.privileges AS intended
  FROM objects o FULL JOIN sec_public_intended i USING (kind, object)
 WHERE o.privileges IS DISTINCT FROM i.privileges
 ORDER BY 1, 2;
-- how many objects that covered, per kind
SELECT kind, pg_catalog.count(*) AS checked FROM (
  SELECT 'function' AS kind FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'pgext'::regnamespace
  UNION ALL
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END
    FROM pg_catalog.pg_class c
   WHERE c.relnamespace = 'pgext'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'm', 'p', 'f')) k
 GROUP BY kind ORDER BY kind;
DROP TABLE sec_public_intended;
-- who may do what on the schema itself (no CREATE for anyone but the owner)
SELECT a.grantee::regrole AS grantee, a.privilege_type
  FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
 WHERE n.nspname = 'pgext' AND a.grantee <> n.nspowner
 ORDER BY a.grantee::regrole::text, a.privilege_type;
-- functions granted to each pgext role
SELECT a.grantee::regrole AS role, p.oid::regprocedure AS function
  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
 WHERE p.pronamespace = 'pgext'::regnamespace AND a.privilege_type = 'EXECUTE'
   AND a.grantee::regrole::text IN ('pgext_app', 'pgext_admin', 'pgext_support',
                                    'pgext_secret_reader', 'pgext_secret_writer')
 ORDER BY a.grantee::regrole::text, p.oid::regprocedure::text;
-- and relations
SELECT a.grantee::regrole AS role, c.oid::regclass AS relation,
       pg_catalog.string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) AS privileges
  FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
 WHERE c.relnamespace = 'pgext'::regnamespace
   AND a.grantee::regrole::text IN ('pgext_app', 'pgext_admin', 'pgext_support',
                                    'pgext_secret_reader', 'pgext_secret_writer')
 GROUP BY 1, 2 ORDER BY a.grantee::regrole::text, c.oid::regclass::text;

-- (b) the attack.  Setup as the DBA: the roles, the log the attacker's code
-- writes to, test data the calls need (a price, signing secrets, a generic
-- source, a pgcrypto ciphertext).
CREATE ROLE sec_atk_app NOLOGIN IN ROLE pgext_app;
CREATE ROLE sec_atk_writer NOLOGIN IN ROLE pgext_secret_writer;
CREATE ROLE sec_atk_reader NOLOGIN IN ROLE pgext_secret_reader;
CREATE SCHEMA sec_atk AUTHORIZATION sec_atk_app;
GRANT USAGE ON SCHEMA sec_atk TO sec_atk_writer, sec_atk_reader;
CREATE TABLE public.sec_pwned (who text NOT NULL, what text NOT NULL);
GRANT INSERT, SELECT ON public.sec_pwned TO PUBLIC;
SELECT pgext.stripe_price_set('price_sec_pro', 'subscription', 100, 50);
SELECT pgext.stripe_price_set('price_sec_life', 'lifetime', 7);
SELECT pgext.secret_set('webhook:stripe', 'whsec_security_test') IS NOT NULL AS stored;
SELECT pgext.secret_set('webhook:sec_src', 'sec-src-signing-secret') IS NOT NULL AS stored;
SELECT pgext.webhook_source_set('sec_src', 'webhook:sec_src');
-- Stripe events signed now (webhook_ingest checks the time against the clock)
SELECT extract(epoch FROM pg_catalog.date_trunc('second', pg_catalog.now()))::bigint AS t \gset
SELECT pg_catalog.format('{"id":"evt_sec_01","object":"event","created":%s,"livemode":false,"type":"checkout.session.completed","data":{"object":{"id":"cs_sec_1","object":"checkout.session","mode":"subscription","payment_status":"paid","client_reference_id":"sec-acct","customer":"cus_sec","subscription":"sub_sec"}}}', :t) AS e1,
       pg_catalog.format('{"id":"evt_sec_02","object":"event","created":%s,"livemode":false,"type":"customer.subscription.created","data":{"object":{"id":"sub_sec","object":"subscription","customer":"cus_sec","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_sec","object":"subscription_item","price":{"id":"price_sec_pro","object":"price"},"quantity":1,"current_period_start":%s,"current_period_end":4102444800}]}}}}', :t + 1, :t) AS e2,
       pg_catalog.format('{"id":"evt_sec_03","object":"event","created":%s,"livemode":false,"type":"invoice.paid","data":{"object":{"id":"in_sec_1","object":"invoice","customer":"cus_sec","billing_reason":"subscription_create","lines":{"object":"list","data":[{"id":"il_sec_1","object":"line_item","period":{"start":%s,"end":4102444800},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_sec_pro","product":"prod_sec"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_sec","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_sec"}}}}}', :t + 2, :t) AS e3,
       pg_catalog.format('{"id":"evt_sec_04","object":"event","created":%s,"livemode":false,"type":"invoice.payment_failed","data":{"object":{"id":"in_sec_2","object":"invoice","customer":"cus_sec","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_sec_2","object":"line_item","period":{"start":%s,"end":4102444800},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_sec_pro","product":"prod_sec"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_sec","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_sec"}}}}}', :t + 3, :t) AS e4,
       pg_catalog.format('{"id":"evt_sec_05","object":"event","created":%s,"livemode":false,"type":"checkout.session.completed","data":{"object":{"id":"cs_sec_life","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"sec-life","customer":"cus_sec_life","metadata":{"price_id":"price_sec_life"}}}}', :t + 4) AS e5,
       '{"id":"gen_sec_1","type":"sec.ping"}' AS g1
\gset
SELECT pg_catalog.format('t=%s,v1=%s', :t, pg_catalog.encode(public.hmac(pg_catalog.convert_to(:t || '.' || :'e1', 'UTF8'), pg_catalog.convert_to('whsec_security_test', 'UTF8'), 'sha256'), 'hex')) AS s1,
       pg_catalog.format('t=%s,v1=%s', :t + 1, pg_catalog.encode(public.hmac(pg_catalog.convert_to((:t + 1) || '.' || :'e2', 'UTF8'), pg_catalog.convert_to('whsec_security_test', 'UTF8'), 'sha256'), 'hex')) AS s2,
       pg_catalog.format('t=%s,v1=%s', :t + 2, pg_catalog.encode(public.hmac(pg_catalog.convert_to((:t + 2) || '.' || :'e3', 'UTF8'), pg_catalog.convert_to('whsec_security_test', 'UTF8'), 'sha256'), 'hex')) AS s3,
       pg_catalog.format('t=%s,v1=%s', :t + 3, pg_catalog.encode(public.hmac(pg_catalog.convert_to((:t + 3) || '.' || :'e4', 'UTF8'), pg_catalog.convert_to('whsec_security_test', 'UTF8'), 'sha256'), 'hex')) AS s4,
       pg_catalog.format('t=%s,v1=%s', :t + 4, pg_catalog.encode(public.hmac(pg_catalog.convert_to((:t + 4) || '.' || :'e5', 'UTF8'), pg_catalog.convert_to('whsec_security_test', 'UTF8'), 'sha256'), 'hex')) AS s5,
       pg_catalog.encode(public.hmac(pg_catalog.convert_to(:'g1', 'UTF8'), pg_catalog.convert_to('sec-src-signing-secret', 'UTF8'), 'sha256'), 'hex') AS sg1,
       pg_catalog.encode(public.pgp_sym_encrypt('imported-secret-value-0123456789', 'sec-pass'), 'hex') AS pgp
\gset

-- The attacker's payload: records who ran it, loudly.
SET ROLE sec_atk_app;
CREATE FUNCTION pg_temp.evil(what pg_catalog.text) RETURNS pg_catalog.bool
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.sec_pwned VALUES (pg_catalog.current_user(), coalesce(what, '?'));
  IF pg_catalog.current_user() NOT LIKE 'sec\_atk\_%' THEN
    RAISE WARNING 'PWNED as a role other than the attacker (%)', what;
  END IF;
  RETURN true;
END
$$;
-- Type names shadowed in pg_temp by domains that run evil() on every cast.
-- (Keyword types like bigint, integer, boolean, numeric, interval always
-- mean pg_catalog's; their quoted names are shadowed here anyway.)
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['text', 'float8', 'float4', 'int2', 'int4', 'int8', 'bool', 'jsonb', 'json',
                           'uuid', 'bytea', 'timestamptz', 'timestamp', 'date', 'name', 'oid',
                           'numeric', 'interval', 'bigint', 'integer', 'boolean', 'varchar',
                           'regclass', 'regnamespace', 'regtype', 'record']
  LOOP
    EXECUTE pg_catalog.format('CREATE DOMAIN pg_temp.%I AS pg_catalog.%I CHECK (pg_temp.evil(%L || '':'' || VALUE::pg_catalog.text))',
                              t, CASE t WHEN 'bigint' THEN 'int8' WHEN 'integer' THEN 'int4'
                                        WHEN 'boolean' THEN 'bool' WHEN 'record' THEN 'text' ELSE t END,
                              'pg_temp.' || t);
    EXECUTE pg_catalog.format('CREATE DOMAIN sec_atk.%I AS pg_catalog.%I CHECK (pg_temp.evil(%L || '':'' || VALUE::pg_catalog.text))',
                              t, CASE t WHEN 'bigint' THEN 'int8' WHEN 'integer' THEN 'int4'
                                        WHEN 'boolean' THEN 'bool' WHEN 'record' THEN 'text' ELSE t END,
                              'sec_atk.' || t);
  END LOOP;
END
$$;
-- Functions shadowing names pgext calls, in pg_temp and in sec_atk.
DO $$
DECLARE
  s text;
  f text[];
BEGIN
  FOREACH s IN ARRAY ARRAY['pg_temp', 'sec_atk']
  LOOP
    FOREACH f SLICE 1 IN ARRAY ARRAY[
        -- name, arguments, result, body expression
        ['now', '', 'pg_catalog.timestamptz', 'pg_catalog.now()'],
        ['clock_timestamp', '', 'pg_catalog.timestamptz', 'pg_catalog.clock_timestamp()'],
        ['gen_random_uuid', '', 'pg_catalog.uuid', 'pg_catalog.gen_random_uuid()'],
        ['pg_notify', 'pg_catalog.text, pg_catalog.text', 'void', 'pg_catalog.pg_notify($1, $2)'],
        ['length', 'pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.length($1)'],
        ['octet_length', 'pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.octet_length($1)'],
        ['octet_length', 'pg_catalog.bytea', 'pg_catalog.int4', 'pg_catalog.octet_length($1)'],
        ['string_to_array', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text[]', 'pg_catalog.string_to_array($1, $2)'],
        ['replace', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', 'pg_catalog.replace($1, $2, $3)'],
        ['current_setting', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.current_setting($1)'],
        ['quote_nullable', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.quote_nullable($1)'],
        ['array_to_string', 'pg_catalog.text[], pg_catalog.text', 'pg_catalog.text', 'pg_catalog.array_to_string($1, $2)'],
        ['cardinality', 'pg_catalog.text[]', 'pg_catalog.int4', 'pg_catalog.cardinality($1)'],
        ['unnest', 'pg_catalog.int8[]', 'SETOF pg_catalog.int8', 'pg_catalog.unnest($1)'],
        ['to_timestamp', 'pg_catalog.float8', 'pg_catalog.timestamptz', 'pg_catalog.to_timestamp($1)'],
        ['make_interval', 'secs pg_catalog.float8', 'pg_catalog.interval', 'pg_catalog.make_interval(secs => $1)'],
        ['textcat', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text', 'pg_catalog.textcat($1, $2)']]
    LOOP
      EXECUTE pg_catalog.format(
        'CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql AS %L',
        s, f[1], f[2], f[3],
        pg_catalog.format('SELECT %s FROM (SELECT pg_temp.evil(%L)) x', f[4], s || '.' || f[1]));
    END LOOP;
    -- aggregates pgext uses: count(*), sum(bigint), max(timestamptz)
    EXECUTE pg_catalog.format('CREATE FUNCTION %I.evil_sfunc(pg_catalog.int8) RETURNS pg_catalog.int8 LANGUAGE sql AS %L',
                              s, pg_catalog.format('SELECT $1 + 1 FROM (SELECT pg_temp.evil(%L)) x', s || '.count'));
    EXECUTE pg_catalog.format('CREATE AGGREGATE %I.count(*) (SFUNC = %I.evil_sfunc, STYPE = pg_catalog.int8, INITCOND = 0)', s, s);
    EXECUTE pg_catalog.format('CREATE FUNCTION %I.evil_sum(pg_catalog.int8, pg_catalog.int8) RETURNS pg_catalog.int8 LANGUAGE sql AS %L',
                              s, pg_catalog.format('SELECT coalesce($1, 0) + $2 FROM (SELECT pg_temp.evil(%L)) x', s || '.sum'));
    EXECUTE pg_catalog.format('CREATE AGGREGATE %I.sum(pg_catalog.int8) (SFUNC = %I.evil_sum, STYPE = pg_catalog.int8)', s, s);
    EXECUTE pg_catalog.format('CREATE FUNCTION %I.evil_max(pg_catalog.timestamptz, pg_catalog.timestamptz) RETURNS pg_catalog.timestamptz LANGUAGE sql AS %L',
                              s, pg_catalog.format('SELECT GREATEST($1, $2) FROM (SELECT pg_temp.evil(%L)) x', s || '.max'));
    EXECUTE pg_catalog.format('CREATE AGGREGATE %I.max(pg_catalog.timestamptz) (SFUNC = %I.evil_max, STYPE = pg_catalog.timestamptz)', s, s);
    -- operators pgext's SQL uses, on exact argument types
    EXECUTE pg_catalog.format('CREATE FUNCTION %I.evil_cat(a pg_catalog.text, b pg_catalog.int8) RETURNS pg_catalog.text LANGUAGE sql AS %L',
                              s, pg_catalog.format('SELECT $1 FROM (SELECT pg_temp.evil(%L)) x', s || '.||'));
    EXECUTE pg_catalog.format('CREATE OPERATOR %I.|| (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.int8, FUNCTION = %I.evil_cat)', s, s);
    FOREACH f SLICE 1 IN ARRAY ARRAY[['=', 'uuid'], ['=', 'text'], ['<>', 'text'], ['>', 'int8'],
                                     ['<=', 'timestamptz'], ['~', 'text']]
    LOOP
      EXECUTE pg_catalog.format('CREATE FUNCTION %I.%I(pg_catalog.%I, pg_catalog.%I) RETURNS pg_catalog.bool LANGUAGE sql AS %L',
                                s, 'evil_op_' || f[2] || pg_catalog.md5(f[1]), f[2], f[2],
                                pg_catalog.format('SELECT pg_temp.evil(%L)', s || '.' || f[1]));
      EXECUTE pg_catalog.format('CREATE OPERATOR %I.%s (LEFTARG = pg_catalog.%I, RIGHTARG = pg_catalog.%I, FUNCTION = %I.%I)',
                                s, f[1], f[2], f[2], s, 'evil_op_' || f[2] || pg_catalog.md5(f[1]));
    END LOOP;
  END LOOP;
END
$$;
-- The attacker's own schema goes first; pg_temp stays implicit (searched
-- first for types), as for any session that does not list it.
SET search_path = sec_atk, pg_catalog, public;
-- Positive control: the shadows work for the attacker's own queries.
SELECT 'x'::text IS NOT NULL AS temp_domain_fires, now() IS NOT NULL AS schema_function_fires;
SELECT pg_catalog.count(*) > 0 AS shadows_fired_for_attacker,
       pg_catalog.bool_and(who = 'sec_atk_app') AS only_as_attacker
  FROM public.sec_pwned;

-- Every function pgext_app may call, with arguments that reach the casts.
SELECT pgext.account_create('sec-acct') AS acct \gset
SELECT pgext.account_create('sec-acct') OPERATOR(pg_catalog.=) :'acct' AS idempotent;
SELECT pgext.account_create('sec-acct-2', 'unlimited') AS acct2 \gset
SELECT pgext.account_set_stripe_customer(pgext.account_create('sec-acct-2', 'unlimited'), 'cus_sec_2');
SELECT ok, status, balance FROM pgext.credit_grant(:'acct', 50, 'sec-g1');
SELECT ok, status, balance FROM pgext.credit_grant(:'acct', 30, 'sec-g2', 'promo', pg_catalog.now() + '1 day');
SELECT ok, status, balance FROM pgext.credit_grant(:'acct', 50, 'sec-g1');
SELECT ok, status, balance FROM pgext.credit_deduct(:'acct', 5, 'sec-d1', 'attack test');
SELECT ok, status, balance FROM pgext.credit_deduct(:'acct', 5, 'sec-d1', 'attack test');
SELECT ok, status, balance FROM pgext.credit_deduct(:'acct', 6, 'sec-d1', 'attack test'); -- error path: key reused
SELECT ok, status, balance FROM pgext.credit_deduct(:'acct', 100000, 'sec-d2');
SELECT ok, status, balance FROM pgext.credit_deduct(pgext.account_create('sec-acct-2', 'unlimited'), 7);
SELECT ok, status, balance, id AS res1 FROM pgext.credit_reserve(:'acct', 20, 'sec-r1') \gset
SELECT :'ok', :'status', :'balance';
SELECT ok, status, balance FROM pgext.credit_reserve(:'acct', 20, 'sec-r1', '1 hour');
SELECT ok, status, balance FROM pgext.credit_commit(:res1, 12);
SELECT ok, status, balance, id AS res2 FROM pgext.credit_reserve(:'acct', 10, 'sec-r2', '5 minutes') \gset
SELECT ok, status, balance FROM pgext.credit_release(:res2);
SELECT ok, status, balance FROM pgext.credit_allocate(:'acct', 40, 'sec-2026-01', 10, pg_catalog.now() + '30 days');
SELECT ok, status, balance FROM pgext.credit_allocate(:'acct', 40, 'sec-2026-02', 10);
SELECT pgext.credit_balance(:'acct');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e1', :'s1');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e2', :'s2');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e3', :'s3');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e4', :'s4');
SELECT pgext.account_create('sec-life') AS acct_life \gset
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e5', :'s5');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e1', :'s1');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'e1', 't=1,v1=00');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', '{"id":', :'s1');
SELECT status, event_id FROM pgext.webhook_ingest('sec_src', :'g1', :'sg1');
SELECT * FROM pgext.webhook_apply();
SELECT event_id, type FROM pgext.webhook_claim('sec_src');
SELECT access, subscription_id FROM pgext.billing_access(:'acct');
SELECT access, subscription_id FROM pgext.billing_access(:'acct', pg_catalog.now() + '1 year');
SELECT access FROM pgext.billing_access(pgext.account_create('sec-acct-2', 'unlimited'));
-- the server policy (not a definer: it runs as the caller, with its path pinned)
SELECT * FROM pgext.server_desired_state('grace', NULL, NULL, NULL, '2026-11-01 00:00+00', '2026-11-08 00:00+00');
SELECT * FROM pgext.server_desired_state('none', 'ended', '2026-11-01 00:00+00', '2026-11-01 00:00+00', '2026-11-03 00:00+00');
-- a lifetime purchase: the branch whose casts ('lifetime'::text) the issue's attack hit
SELECT access, until, subscription_id FROM pgext.billing_access(:'acct_life');
SELECT pgext.credit_balance(:'acct_life');
SELECT o.kind, o.subscription_id, o.event_id
  FROM pgext.outbox_since(0, 1000) o WHERE o.account_id OPERATOR(pg_catalog.=) :'acct';
-- the account binding, and a table read through its policy
BEGIN;
SELECT pgext.set_account(:'acct') OPERATOR(pg_catalog.=) :'acct' AS bound,
       pgext.current_account() OPERATOR(pg_catalog.=) :'acct' AS current;
SELECT pg_catalog.count(*) AS own_account_rows FROM pgext.accounts;
COMMIT;
-- servers: a request (and its replay), the status, the name, a delete
SELECT pgext.server_request(:'acct', 'sec-agent', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"user_data":"#cloud-config\npackages: [nginx]\n","labels":{"app":"sec"}}') AS srv \gset
SELECT pgext.server_request(:'acct', 'sec-agent', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"user_data":"#cloud-config\npackages: [nginx]\n","labels":{"app":"sec"}}') OPERATOR(pg_catalog.=) :srv AS idempotent;
SELECT state, desired_state, why, next_action FROM pgext.server_status_of(:'acct');
SELECT pgext.server_name('sec-agent') IS NOT NULL AS named;
SELECT pgext.server_delete(:srv, 'attack test');
SELECT pgext.credit_balance(:'acct');

-- Every function pgext_secret_writer may call.
SET ROLE sec_atk_writer;
SELECT pgext.secret_set('sec:api_key', 'sk-security-test-0123456789', :'acct') IS NOT NULL AS stored;
SELECT pgext.secret_set('sec:short', 'abc', :'acct', pg_catalog.now() + '1 day') IS NOT NULL AS stored;
SELECT pgext.secret_masked('sec:api_key', :'acct');
SELECT pgext.secret_import_pgp('sec:imported', pg_catalog.decode(:'pgp', 'hex'), 'sec-pass', :'acct') IS NOT NULL AS imported;
SELECT pgext.secret_import_pgp('sec:imported', pg_catalog.decode(:'pgp', 'hex'), 'wrong-pass', :'acct') IS NOT NULL AS imported;
-- the listings show the secrets of the account the transaction acts for
BEGIN;
SELECT pgext.set_account(:'acct') OPERATOR(pg_catalog.=) :'acct' AS bound,
       pgext.current_account() OPERATOR(pg_catalog.=) :'acct' AS current;
SELECT name, last4, expires_at IS NOT NULL AS expires, expired
  FROM pgext.secret_list() WHERE account_id OPERATOR(pg_catalog.=) :'acct' ORDER BY name;
SELECT name, last4 FROM pgext.secret_catalog WHERE account_id OPERATOR(pg_catalog.=) :'acct' ORDER BY name;
COMMIT;

-- Every function pgext_secret_reader may call.
SET ROLE sec_atk_reader;
SELECT pgext.secret_get('sec:api_key', :'acct');
SELECT pgext.secret_get('sec:imported', :'acct');
SELECT pgext.secret_masked('sec:imported', :'acct');
-- their error paths run SQL (the audit, the account check) under the pinned
-- path (SQLSTATEs only: the messages name the random account)
\set VERBOSITY sqlstate
SELECT pgext.secret_get('sec:missing', :'acct');
SELECT pgext.secret_get('sec:missing', '00000000-0000-4000-8000-00000000dead');
SELECT pgext.secret_masked('sec:missing', :'acct');
SELECT pgext.secret_masked('sec:missing', '00000000-0000-4000-8000-00000000dead');
\set VERBOSITY terse
BEGIN;
SELECT pgext.set_account(:'acct') OPERATOR(pg_catalog.=) :'acct' AS bound;
SELECT name, last4, expired FROM pgext.secret_list() WHERE account_id OPERATOR(pg_catalog.=) :'acct' ORDER BY name;
SELECT name FROM pgext.secret_catalog WHERE account_id OPERATOR(pg_catalog.=) :'acct' ORDER BY name;
COMMIT;
SET ROLE sec_atk_writer;
SELECT pgext.secret_delete('sec:short', :'acct');
SELECT pgext.secret_delete('sec:short', :'acct');

-- Verdict: the attacker's code ran (the controls above), but never as
-- anyone other than the attacker.
SET ROLE sec_atk_app;
SELECT pg_catalog.count(*) FILTER (WHERE who LIKE 'sec\_atk\_%') > 0 AS ran_as_attacker,
       pg_catalog.count(*) FILTER (WHERE who NOT LIKE 'sec\_atk\_%') AS ran_as_someone_else
  FROM public.sec_pwned;
SELECT DISTINCT what AS ran_as_someone_else
  FROM public.sec_pwned WHERE who NOT LIKE 'sec\_atk\_%' ORDER BY 1;
DISCARD TEMP;
RESET ROLE;
RESET search_path;

-- Clean up: the roles are cluster-wide; the test data stays in pgext.
DROP TABLE public.sec_pwned;
DROP SCHEMA sec_atk CASCADE;
DROP OWNED BY sec_atk_app, sec_atk_writer, sec_atk_reader;
DROP ROLE sec_atk_app, sec_atk_writer, sec_atk_reader;
