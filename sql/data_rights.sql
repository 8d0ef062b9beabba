-- Data rights: per-account key salts (secret format 0x02), account_export,
-- account_forget (refusal with live servers, force, what is deleted and
-- stripped, the books still balance, exactly-once webhooks survive,
-- idempotent), a forgotten account refused, its copied ciphertext
-- undecryptable; a 1.0-style 0x01 account secret still reads and
-- secret_rewrap reseals it.  The cluster runs with test/keys.sh (versions 1, 2).
-- Stripe events and signatures are those of sql/billing.sql (account 'acme').
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
SET TIME ZONE 'UTC';

SELECT pgext.secret_set('webhook:stripe', 'whsec_events_test') IS NOT NULL AS stored;
SELECT pgext.stripe_price_set('price_pro', 'subscription', 1000, 500);
SELECT pgext.account_create('acme') AS acme, pgext.account_create('bystander') AS other \gset
\set legacy '0ddba11a-0000-4000-8000-000000000001'
INSERT INTO pgext.accounts (id, external_id) VALUES (:'legacy', 'legacy-tenant');
-- run a statement; show its SQLSTATE, message and hint with account uuids named
CREATE TEMP TABLE names (id uuid, label text);
INSERT INTO names VALUES (:'acme', '<acme>'), (:'other', '<other>');
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m text; h text; n record;
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
  m := SQLSTATE || ': ' || SQLERRM || CASE WHEN h <> '' THEN ' (HINT: ' || h || ')' ELSE '' END;
  FOR n IN SELECT * FROM names LOOP
    m := replace(m, n.id::text, n.label);
  END LOOP;
  RETURN m;
END $$;

-- 1. Secrets: account secrets are sealed in format 0x02 with a salt created
-- on the account's first secret_set; platform secrets stay 0x01
SELECT pgext.secret_set('openai:api_key', 'sk-acme-plaintext-0123456789abcdef', :'acme') IS NOT NULL AS stored;
SELECT pgext.secret_set('mail:password', 'acme-mail-password-value', :'acme') IS NOT NULL AS stored;
SELECT pgext.secret_set('openai:api_key', 'sk-bystander-plaintext-0123456789', :'other') IS NOT NULL AS stored;
SELECT CASE account_id WHEN :'acme' THEN 'acme' WHEN :'other' THEN 'other' ELSE 'platform' END AS owner,
       name, get_byte(sealed, 0) AS format, key_version
  FROM pgext.secrets ORDER BY owner, name;
SELECT CASE account_id WHEN :'acme' THEN 'acme' ELSE 'other' END AS owner, octet_length(salt) AS salt_bytes
  FROM pgext.secret_account_keys ORDER BY 1;
SELECT pgext.secret_get('openai:api_key', :'acme'), pgext.secret_get('openai:api_key', :'other');
-- replacing a value keeps the salt
SELECT salt AS acme_salt FROM pgext.secret_account_keys WHERE account_id = :'acme' \gset
SELECT pgext.secret_set('mail:password', 'acme-mail-password-value', :'acme') IS NOT NULL AS stored;
SELECT salt = :'acme_salt' AS same_salt FROM pgext.secret_account_keys WHERE account_id = :'acme';
-- the salt is part of the key: another salt, and the value no longer opens
UPDATE pgext.secret_account_keys SET salt = '\x00'::bytea || substr(salt, 2) WHERE account_id = :'other';
SELECT pg_temp.try(format('SELECT pgext.secret_get(%L, %L)', 'openai:api_key', :'other'));
-- storing the value again seals it with the salt as it is now
SELECT pgext.secret_delete('openai:api_key', :'other');
SELECT pgext.secret_set('openai:api_key', 'sk-bystander-plaintext-0123456789', :'other') IS NOT NULL AS stored;
SELECT pgext.secret_get('openai:api_key', :'other');

-- 2. A secret written by 1.0 (format 0x01, no salt; sealed offline by
-- test/vectors/gen_legacy_secret.py with the test key version 2) still
-- reads; secret_rewrap reseals it as 0x02 under a new salt
INSERT INTO pgext.secrets (id, account_id, name, key_version, sealed, last4)
VALUES ('5ec2e7a1-0000-4000-8000-000000000001', :'legacy', 'legacy:api_key', 2,
        '\x01000102030405060708090a0b4c6243f8a64b3749a94f9ea4bb2ec632b42b430ccf12c108b380ff4cc4b43d6e32f6c005ef06fda02259df8bb75f',
        '6789');
SELECT pgext.secret_get('legacy:api_key', :'legacy');
SELECT count(*) AS legacy_salts FROM pgext.secret_account_keys WHERE account_id = :'legacy';
SELECT pgext.secret_rewrap();
SELECT get_byte(sealed, 0) AS format, key_version FROM pgext.secrets WHERE account_id = :'legacy';
SELECT count(*) AS legacy_salts FROM pgext.secret_account_keys WHERE account_id = :'legacy';
SELECT pgext.secret_get('legacy:api_key', :'legacy');
SELECT pgext.secret_rewrap() AS nothing_left;

-- 3. Everything else an account accumulates: Stripe (checkout, subscription,
-- invoice), credits with caller-chosen strings, a server, health and API rows
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a01","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_a1","object":"checkout.session","mode":"subscription","payment_status":"paid","client_reference_id":"acme","customer":"cus_acme","subscription":"sub_acme","customer_details":{"email":"ceo@acme.example"}}}}$b$, 't=1767225600,v1=58e83db901cdd56037882da2beb9384c6534fd307a4bb558b58eb37dfeb30743', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a02","object":"event","api_version":"2025-03-31.basil","created":1767225601,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.created","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225601,v1=1a65880dd20dcfdcc3a7b22e5062804bc29d77f00aaf89b0dabbdfb4d1441be8', pg_catalog.to_timestamp(1767225601));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a03","object":"event","api_version":"2025-03-31.basil","created":1767225602,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_a1","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a1","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1767225602,v1=5f4efd034834eb5d0108067196cccf588a2b4fe1e2a7761f406b7d0e7cb4594b', pg_catalog.to_timestamp(1767225602));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, payload #>> '{data,object,client_reference_id}' AS client_ref
  FROM pgext.webhook_events ORDER BY event_id;
UPDATE pgext.stripe_subscriptions SET current_period_end = '2099-01-01' WHERE id = 'sub_acme';
SELECT (pgext.credit_grant(:'acme', 500, 'signup-bonus-for-alice@example.com')).status;
SELECT (pgext.credit_deduct(:'acme', 30, 'chat-42', 'answer to alice@example.com')).status;
SELECT (pgext.credit_reserve(:'acme', 20, 'job-alice-1')).id AS res \gset
SELECT (pgext.credit_grant(:'other', 10, 'other-grant')).status;
SELECT (pgext.credit_deduct(:'other', 1, 'other-1')).status;
SELECT pgext.credit_balance(:'acme') AS balance;
SELECT pgext.server_request(:'acme', 'acme-agent-1', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"user_data":"#!/bin/sh\necho alice\n"}') AS srv \gset
INSERT INTO pgext.health_events (at, kind, server_id, account_id, from_state, to_state, detail)
VALUES ('2026-01-02', 'agent', :srv, :'acme', 'unknown', 'healthy', 'agent of alice up');
INSERT INTO pgext.api_calls (at, api, method, path, http_status, server_id)
VALUES ('2026-01-02', 'hetzner', 'POST', '/v1/servers', 201, :srv);
INSERT INTO pgext.outbox (account_id, kind, server_id, detail)
VALUES (:'acme', 'server_active', :srv, 'hello alice');
SELECT pgext.access_grant(:'acme', now() + interval '30 days', 'support ticket of alice') IS NOT NULL AS granted;
SELECT pgext.secret_audit_flush() > 0 AS flushed;

-- 4. account_export: everything, in one document with stable keys
SELECT pgext.account_export(:'acme') AS doc \gset
SELECT k FROM jsonb_object_keys(:'doc'::jsonb) k ORDER BY k;
SELECT k FROM jsonb_object_keys((:'doc'::jsonb)->'credits') k ORDER BY k;
SELECT k FROM jsonb_object_keys((:'doc'::jsonb)->'stripe') k ORDER BY k;
SELECT k FROM jsonb_object_keys((:'doc'::jsonb)->'health') k ORDER BY k;
SELECT d->>'format' AS format, d#>>'{account,external_id}' AS external_id,
       d#>>'{stripe,customer_id}' AS customer, d#>>'{credits,balance}' AS balance,
       jsonb_array_length(d#>'{credits,ledger}') AS ledger_rows,
       jsonb_array_length(d#>'{credits,lots}') AS lots,
       jsonb_array_length(d#>'{credits,reservations}') AS reservations,
       jsonb_array_length(d#>'{stripe,subscriptions}') AS subscriptions,
       jsonb_array_length(d#>'{stripe,access_grants}') AS grants,
       jsonb_array_length(d->'servers') AS servers,
       jsonb_array_length(d->'server_history') > 0 AS history,
       jsonb_array_length(d#>'{health,events}') AS health_events,
       jsonb_array_length(d->'api_calls') AS api_calls,
       jsonb_array_length(d->'outbox') > 0 AS outbox,
       jsonb_array_length(d->'secret_audit') > 0 AS audit,
       d->'forgotten' AS forgotten
  FROM (SELECT :'doc'::jsonb AS d) x;
SELECT e->>'event_id' AS event_id FROM jsonb_array_elements((:'doc'::jsonb)->'webhook_events') e ORDER BY 1;
SELECT e->>'name' AS name, e->>'masked' AS masked, e->>'key_version' AS v,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e) k) AS keys
  FROM jsonb_array_elements((:'doc'::jsonb)->'secrets') e ORDER BY 1;
-- no plaintext and no ciphertext anywhere in the document
SELECT position('sk-acme-plaintext' IN :'doc') = 0 AS no_plaintext_1,
       position('acme-mail-password' IN :'doc') = 0 AS no_plaintext_2,
       bool_and(position(encode(sealed, 'hex') IN :'doc') = 0) AS no_ciphertext_hex,
       bool_and(position(encode(sealed, 'base64') IN :'doc') = 0) AS no_ciphertext_base64,
       bool_and(position(encode(substr(sealed, 14, 16), 'hex') IN :'doc') = 0) AS no_ciphertext_part
  FROM pgext.secrets WHERE account_id = :'acme';
SELECT position('bystander' IN :'doc') = 0 AS nothing_of_others;
-- bad inputs
SELECT pgext.account_export(NULL);
SELECT pgext.account_export('00000000-0000-4000-8000-000000000000');

-- 5. account_forget: bad inputs, then refused while the server is live
SELECT pgext.account_forget(NULL);
SELECT pgext.account_forget(:'acme', NULL);
SELECT pgext.account_forget('00000000-0000-4000-8000-000000000000');
SELECT pg_temp.try(format('SELECT pgext.account_forget(%L)', :'acme'));
SELECT count(*) AS forgets, (SELECT external_id FROM pgext.accounts WHERE id = :'acme') AS still
  FROM pgext.account_forgets;
-- keep a copy of a sealed value and of the ledger sum, to check after
CREATE TEMP TABLE copied AS SELECT * FROM pgext.secrets WHERE account_id = :'acme' AND name = 'openai:api_key';
SELECT sum(delta) AS ledger_sum_before FROM pgext.credit_ledger WHERE account_id = :'acme' \gset

-- 6. forced: the server goes through server_delete (the state machine)
SELECT pgext.account_forget(:'acme', force => true);
SELECT state, desired_state, desired_reason FROM pgext.servers WHERE id = :srv;
SELECT from_state, to_state, reason FROM pgext.server_history WHERE server_id = :srv ORDER BY id;
-- what is left, seen as superuser
SELECT external_id = 'forgotten:' || encode(sha256('acme'), 'hex') AS hashed, stripe_customer_id, balance
  FROM pgext.accounts WHERE id = :'acme';
SELECT forgotten_by = session_user AS by_me, external_id_hash = 'forgotten:' || encode(sha256('acme'), 'hex') AS hash,
       summary->>'secrets_deleted' AS secrets
  FROM pgext.account_forgets WHERE account_id = :'acme';
SELECT (SELECT count(*) FROM pgext.secrets WHERE account_id = :'acme') AS secrets,
       (SELECT count(*) FROM pgext.secret_account_keys WHERE account_id = :'acme') AS salts,
       (SELECT count(*) FROM pgext.secret_audit WHERE account_id = :'acme') > 0 AS audit_rows_kept,
       (SELECT count(*) FROM pgext.secret_audit WHERE account_id = :'acme' AND name IS NOT NULL) AS audit_names,
       (SELECT count(*) FROM pgext.health_events WHERE account_id = :'acme' OR server_id = :srv) AS health_events,
       (SELECT count(*) FROM pgext.api_calls WHERE server_id = :srv) AS api_calls,
       (SELECT count(*) FROM pgext.outbox WHERE account_id = :'acme' AND detail IS NOT NULL) AS outbox_details,
       (SELECT count(*) FROM pgext.credit_ledger WHERE account_id = :'acme') AS ledger_rows,
       (SELECT count(*) FROM pgext.credit_ledger WHERE account_id = :'acme' AND reason IS NOT NULL) AS ledger_reasons,
       (SELECT count(*) FROM pgext.credit_ledger WHERE account_id = :'acme'
         AND idempotency_key NOT LIKE 'forgotten:%') AS clear_keys,
       (SELECT count(*) FROM pgext.credit_reservations WHERE account_id = :'acme'
         AND idempotency_key NOT LIKE 'forgotten:%') AS clear_res_keys,
       (SELECT count(*) FROM pgext.credit_lots WHERE account_id = :'acme') AS lots,
       (SELECT count(*) FROM pgext.stripe_subscriptions WHERE account_id = :'acme') AS subscriptions,
       (SELECT count(*) FROM pgext.access_grants WHERE account_id = :'acme' AND reason <> 'forgotten') AS grant_reasons;
SELECT event_id, status, payload IS NULL AS stripped FROM pgext.webhook_events ORDER BY event_id;
-- an auditor holding a key finds its row by hashing it
SELECT op, amount, delta FROM pgext.credit_ledger
 WHERE account_id = :'acme' AND idempotency_key = 'forgotten:' || encode(sha256('chat-42'), 'hex');
-- the books still add up
SELECT sum(delta) = :ledger_sum_before AS same_sum FROM pgext.credit_ledger WHERE account_id = :'acme';
SELECT * FROM pgext.credit_audit();
SELECT pgext.credit_balance(:'acme') AS balance;
-- the ledger is still append-only for everything else
UPDATE pgext.credit_ledger SET amount = amount + 1 WHERE account_id = :'acme' AND op = 'deduct';
UPDATE pgext.credit_ledger SET reason = 'x' WHERE account_id = :'acme' AND op = 'deduct';
UPDATE pgext.credit_ledger SET idempotency_key = 'other' WHERE account_id = :'acme' AND op = 'deduct';
DELETE FROM pgext.credit_ledger WHERE account_id = :'acme';
-- a redelivered event is still a duplicate
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a01","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_a1","object":"checkout.session","mode":"subscription","payment_status":"paid","client_reference_id":"acme","customer":"cus_acme","subscription":"sub_acme","customer_details":{"email":"ceo@acme.example"}}}}$b$, 't=1767225600,v1=58e83db901cdd56037882da2beb9384c6534fd307a4bb558b58eb37dfeb30743', pg_catalog.to_timestamp(1767225600));
-- a late event for the forgotten customer is stored without its personal
-- fields (webhook_ingest strips them where it builds the payload), another
-- customer's event keeps them; the Stripe sync stores a fetched event
-- through the same strip (stripe_event_minimal)
SELECT pgext.account_set_stripe_customer(:'other', 'cus_bystander');
CREATE FUNCTION pg_temp.ingest(body text) RETURNS text LANGUAGE sql AS $$
  SELECT w.status || ' ' || w.event_id
    FROM pgext.webhook_ingest('stripe', $1,
           't=' || ($1::jsonb ->> 'created') || ',v1=' ||
           encode(public.hmac(($1::jsonb ->> 'created') || '.' || $1, 'whsec_events_test', 'sha256'), 'hex'),
           to_timestamp(($1::jsonb ->> 'created')::bigint)) w
$$;
SELECT pg_temp.ingest('{"id":"evt_late","object":"event","created":1769904000,"livemode":false,"type":"checkout.session.completed","data":{"object":{"id":"cs_late","object":"checkout.session","mode":"payment","customer":"cus_acme","client_reference_id":"acme","metadata":{"email":"alice@example.com"}}}}') AS late;
SELECT pg_temp.ingest('{"id":"evt_other","object":"event","created":1769904000,"livemode":false,"type":"checkout.session.completed","data":{"object":{"id":"cs_other","object":"checkout.session","mode":"payment","customer":"cus_bystander","client_reference_id":"bystander","metadata":{"note":"kept"}}}}') AS other;
SELECT pgext.stripe_event_fetched(0, '{"id":"evt_late_fetched","object":"event","created":1769904001,"livemode":false,"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","metadata":{"email":"alice@example.com"}}}}', '2026-02-01') AS fetched;
-- customer.* events: data.object is the customer itself (its id, no customer field)
SELECT pg_temp.ingest('{"id":"evt_late_customer","object":"event","created":1769904002,"livemode":false,"type":"customer.updated","data":{"object":{"id":"cus_acme","object":"customer","metadata":{"email":"alice@example.com"}}}}') AS late_customer;
SELECT pg_temp.ingest('{"id":"evt_other_customer","object":"event","created":1769904002,"livemode":false,"type":"customer.updated","data":{"object":{"id":"cus_bystander","object":"customer","metadata":{"note":"kept"}}}}') AS other_customer;
SELECT pgext.stripe_event_fetched(0, '{"id":"evt_other_fetched","object":"event","created":1769904001,"livemode":false,"type":"customer.subscription.updated","data":{"object":{"id":"sub_other","object":"subscription","customer":"cus_bystander","status":"active","metadata":{"note":"kept"}}}}', '2026-02-01') AS fetched;
SELECT event_id, payload #> '{data,object}' AS object FROM pgext.webhook_events
 WHERE event_id IN ('evt_late', 'evt_other', 'evt_late_fetched', 'evt_other_fetched',
                    'evt_late_customer', 'evt_other_customer') ORDER BY event_id;
DELETE FROM pgext.webhook_events WHERE event_id IN ('evt_late', 'evt_other', 'evt_late_fetched', 'evt_other_fetched',
                                                    'evt_late_customer', 'evt_other_customer');
SELECT pgext.account_set_stripe_customer(:'other', NULL);

-- 7. crypto-shred: the copied ciphertext, put back, no longer decrypts
INSERT INTO pgext.secrets SELECT * FROM copied;
SELECT pg_temp.try(format('SELECT pgext.secret_get(%L, %L)', 'openai:api_key', :'acme'));
DELETE FROM pgext.secrets WHERE account_id = :'acme';
-- and the bystander is untouched
SELECT pgext.secret_get('openai:api_key', :'other');

-- 8. a second call changes nothing and returns the first summary
SELECT pgext.account_forget(:'acme', true) = (SELECT summary || '{"already": true}' FROM pgext.account_forgets
                                               WHERE account_id = :'acme') AS same_summary;
SELECT pgext.account_forget(:'acme') ->> 'already' AS already;
SELECT count(*) AS forgets FROM pgext.account_forgets;

-- 9. export after forget: the stripped state
SELECT pgext.account_export(:'acme') AS doc \gset
SELECT d#>>'{account,external_id}' LIKE 'forgotten:%' AS hashed,
       d#>>'{forgotten,summary,already}' AS already,
       jsonb_array_length(d->'secrets') AS secrets,
       jsonb_array_length(d#>'{credits,ledger}') AS ledger_rows,
       jsonb_array_length(d#>'{health,events}') AS health_events,
       jsonb_array_length(d->'api_calls') AS api_calls,
       position('alice' IN :'doc') = 0 AS no_alice,
       position('"acme"' IN :'doc') = 0 AS no_external_id
  FROM (SELECT :'doc'::jsonb AS d) x;

-- 10. a forgotten account takes no new business (55000)
SELECT pg_temp.try(stmt) FROM (VALUES
  (format('SELECT pgext.credit_grant(%L, 1, %L)', :'acme', 'again')),
  (format('SELECT pgext.credit_deduct(%L, 1, %L)', :'acme', 'again')),
  (format('SELECT pgext.credit_deduct(%L, 1)', :'acme')),
  (format('SELECT pgext.credit_reserve(%L, 1, %L)', :'acme', 'again')),
  (format('SELECT pgext.credit_allocate(%L, 1, %L)', :'acme', 'period-x')),
  (format('SELECT pgext.server_request(%L, %L, %L)', :'acme', 'acme-agent-2',
          '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}')),
  (format('SELECT pgext.secret_set(%L, %L, %L)', 'new', 'value-after-forget', :'acme')),
  -- the prefix is the mark of a forgotten account: no new account may carry it
  ('SELECT pgext.account_create(''forgotten:x'')')) v(stmt);
-- settling a hold made before still works
SELECT (pgext.credit_release(:res)).status;
SELECT * FROM pgext.credit_audit();
-- the others still work
SELECT (pgext.credit_deduct(:'other', 1, 'other-2')).status;

-- 11. roles: export for apps and operators, forget for operators only
SELECT has_function_privilege('pgext_app', 'pgext.account_export(uuid)', 'EXECUTE') AS app_export,
       has_function_privilege('pgext_admin', 'pgext.account_export(uuid)', 'EXECUTE') AS admin_export,
       has_function_privilege('pgext_app', 'pgext.account_forget(uuid, boolean)', 'EXECUTE') AS app_forget,
       has_function_privilege('pgext_admin', 'pgext.account_forget(uuid, boolean)', 'EXECUTE') AS admin_forget,
       has_function_privilege('public', 'pgext.account_export(uuid)', 'EXECUTE') AS public_export;

-- leave a fresh extension behind for the tests that follow
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
