-- The drop guard (src/drop_guard.c): a statement that would drop pgext is
-- refused while pgext holds credits, secrets or billing state, unless
-- pgext.confirm_drop is set in the same transaction.  An empty install drops
-- without ceremony.
SET client_min_messages = warning;
-- Start from a fresh extension (earlier tests left data: the confirmed drop works).
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
CREATE EXTENSION pgext;

-- an empty install drops without confirmation
DROP EXTENSION pgext;
CREATE EXTENSION pgext;
-- so does one with accounts at zero balance and configuration only
SELECT pgext.account_create('guard-zero') IS NOT NULL AS created;
SELECT pgext.stripe_price_set('price_guard', 'credit_pack', 10);
DROP EXTENSION pgext;
CREATE EXTENSION pgext;
SELECT count(*) AS accounts FROM pgext.accounts;

-- with credits and a secret: refused, with what would be lost and how to confirm
SELECT pgext.account_create('guard-a') AS a \gset
SELECT status, balance FROM pgext.credit_grant(:'a', 100, 'g1');
SELECT pgext.secret_set('guard:key', 'guard-secret-value-0001') IS NOT NULL AS stored;
DROP EXTENSION pgext;
DROP EXTENSION IF EXISTS pgext CASCADE;
-- from inside a function too
DO $$ BEGIN EXECUTE 'DROP EXTENSION pgext'; END $$;
-- a setting from an earlier transaction does not count
SET pgext.confirm_drop = on;
DROP EXTENSION pgext;
RESET pgext.confirm_drop;
-- statements that would drop pgext along with something else
DROP SCHEMA pgext CASCADE;
DROP EXTENSION pgcrypto CASCADE;
DROP SCHEMA public CASCADE;
DROP OWNED BY CURRENT_USER;
-- without CASCADE PostgreSQL itself refuses first (nothing would be dropped)
\set VERBOSITY terse
DROP SCHEMA pgext;
\set VERBOSITY default
-- a confirmed drop that is rolled back keeps everything; the confirmation ends with it
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
ROLLBACK;
SELECT pgext.credit_balance(:'a') AS balance, pgext.secret_get('guard:key') AS secret;
DROP EXTENSION pgext;

-- ledger rows block even at balance zero; each kind of state is counted
SELECT status, balance FROM pgext.credit_deduct(:'a', 100, 'd1');
SELECT pgext.secret_delete('guard:key') AS deleted;
INSERT INTO pgext.stripe_subscriptions (id, account_id, status) VALUES ('sub_guard', :'a', 'active');
INSERT INTO pgext.stripe_purchases (checkout_session_id, account_id, price_id, kind, event_id)
  VALUES ('cs_guard', :'a', 'price_guard', 'lifetime', 'evt_guard_0');
INSERT INTO pgext.webhook_events (source, event_id, type, created, received_at, status)
  SELECT 'stripe', 'evt_guard_' || s, 'invoice.paid', now(), now(), s
    FROM unnest(ARRAY['pending', 'dead', 'received', 'applied', 'ignored', 'superseded', 'claimed']) s;
DROP EXTENSION pgext;

-- confirmed in the same transaction: dropped
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP SCHEMA pgext CASCADE;
COMMIT;
CREATE EXTENSION pgext;
SELECT (SELECT count(*) FROM pgext.accounts) AS accounts,
       (SELECT count(*) FROM pgext.credit_ledger) AS ledger,
       (SELECT count(*) FROM pgext.webhook_events) AS events;
-- and a fresh install drops again without confirmation
DROP EXTENSION pgext;
CREATE EXTENSION pgext;
