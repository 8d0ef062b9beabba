-- The outbox: one table for every change apps react to (billing, servers,
-- access grants), its kinds, and the reader outbox_since (paging, limits,
-- roles).  The NOTIFY payload is checked by test/specs/outbox_notify.spec
-- (psql prints the notifying backend's PID, so it cannot be compared here).
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
RESET client_min_messages;
SET TimeZone = 'UTC';

SELECT pgext.account_create('ob-a') AS a \gset
SELECT pgext.account_create('ob-b') AS b \gset

-- A billing notice through its public path: a grace period that ran out
-- (billing_expire_grace writes 'grace_expired').
INSERT INTO pgext.stripe_subscriptions (id, account_id, customer_id, status, grace_until)
VALUES ('sub_ob', :'a', 'cus_ob', 'past_due', '2026-01-08 00:00+00');
SELECT pgext.billing_expire_grace('2026-01-09 00:00+00') AS announced;
SELECT account_id = :'a' AS is_a, kind, subscription_id, server_id, until, event_id, detail
  FROM pgext.outbox ORDER BY id;

-- Every kind the servers and access-grant code write is accepted, with its columns.
INSERT INTO pgext.outbox (account_id, kind, server_id, detail)
SELECT :'b', k, 7, 'test ' || k
  FROM unnest(ARRAY['server_active', 'server_failed', 'server_paused', 'server_resumed',
                    'server_deleting', 'server_deleted']) k;
INSERT INTO pgext.outbox (account_id, kind, until, detail)
VALUES (:'a', 'access_granted', '2026-02-01 00:00+00', 'partner demo'),
       (:'a', 'access_grant_ended', '2026-02-01 00:00+00', 'partner demo');
-- and the billing ones the Stripe effects write
INSERT INTO pgext.outbox (account_id, kind, subscription_id, until, event_id)
SELECT :'b', k, 'sub_x', '2026-03-01 00:00+00', 'evt_' || k
  FROM unnest(ARRAY['payment_failed', 'access_ending', 'access_ended']) k;
SELECT count(*) AS rows, count(DISTINCT kind) AS kinds FROM pgext.outbox;

-- An unknown kind is refused and nothing is written (the whole statement).
\set VERBOSITY terse
INSERT INTO pgext.outbox (account_id, kind) VALUES (:'a', 'server_active'), (:'a', 'server_exploded');
INSERT INTO pgext.outbox (account_id, kind) VALUES (:'a', NULL);
INSERT INTO pgext.outbox (kind) VALUES ('server_active');
\set VERBOSITY default
SELECT count(*) AS rows FROM pgext.outbox;

-- Reader: oldest first, after the last id processed, at most "limit" rows.
SELECT min(id) AS first_id FROM pgext.outbox \gset
SELECT id - :first_id AS n, kind FROM pgext.outbox_since() ORDER BY id;
SELECT id - :first_id AS n, kind FROM pgext.outbox_since(0, 3);
SELECT id - :first_id AS n, kind FROM pgext.outbox_since(:first_id + 2, 3);
SELECT id - :first_id AS n, kind FROM pgext.outbox_since(:first_id + 11, 100);
SELECT count(*) AS after_last FROM pgext.outbox_since((SELECT max(id) FROM pgext.outbox));
SELECT count(*) AS null_after FROM pgext.outbox_since(NULL, 10);
-- paging through everything in pages of 5 sees every row once, in order
WITH RECURSIVE page(last_id, seen, n) AS (
  SELECT 0::bigint, ARRAY[]::bigint[], 0
  UNION ALL
  SELECT (SELECT max(o.id) FROM pgext.outbox_since(p.last_id, 5) o),
         p.seen || ARRAY(SELECT o.id FROM pgext.outbox_since(p.last_id, 5) o),
         p.n + 1
    FROM page p
   WHERE EXISTS (SELECT FROM pgext.outbox_since(p.last_id, 1)))
SELECT max(n) AS pages,
       (SELECT seen FROM page ORDER BY n DESC LIMIT 1)
         = ARRAY(SELECT id FROM pgext.outbox ORDER BY id) AS every_row_once
  FROM page;

-- Limits outside 1..10000 are refused (22023) with a hint.
SELECT * FROM pgext.outbox_since(0, 0);
\set VERBOSITY terse
SELECT * FROM pgext.outbox_since(0, NULL);
\set VERBOSITY sqlstate
SELECT * FROM pgext.outbox_since(0, 10001);
SELECT * FROM pgext.outbox_since(0, -1);
SELECT * FROM pgext.outbox_since(0, NULL);
\set VERBOSITY default
SELECT count(*) AS max_limit FROM pgext.outbox_since(0, 10000);

-- Roles: apps read through outbox_since; the table shows an app only the rows
-- of the account its transaction acts for (pgext.set_account; none unbound,
-- sql/tenant.sql); operators read it all; nobody but pgext writes it.
SET ROLE pgext_app;
SELECT count(*) AS app_reads FROM pgext.outbox_since(0, 10000);
\set VERBOSITY terse
SELECT count(*) FROM pgext.outbox;
INSERT INTO pgext.outbox (account_id, kind) VALUES (:'a', 'server_active');
\set VERBOSITY default
RESET ROLE;
SET ROLE pgext_admin;
SELECT count(*) AS admin_reads FROM pgext.outbox_since(0, 10000);
SELECT count(*) AS admin_table FROM pgext.outbox;
\set VERBOSITY terse
DELETE FROM pgext.outbox;
\set VERBOSITY default
RESET ROLE;

-- The trigger that announces each row is in place on the table.
SELECT tgname, tgenabled, pg_get_triggerdef(oid) ~ 'AFTER INSERT .* FOR EACH ROW' AS after_insert_per_row
  FROM pg_trigger WHERE tgrelid = 'pgext.outbox'::regclass AND NOT tgisinternal;
