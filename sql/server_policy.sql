-- Billing drives a server's desired state (issue 9).
-- 1. the settings; 2. the pure policy server_desired_state over its whole
-- table; 3. operator access grants (access_grant, access_revoke,
-- access_expire, 'granted' in billing_access); 4. account_server_desired over
-- real billing states built from signed Stripe events (signed here with
-- pgcrypto's hmac, the same HMAC-SHA256 scheme as test/vectors/stripe_sig.py);
-- 5. refusals.  Time is driven through `at`: T = 2026-11-01 00:00 UTC.
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
-- Dates in reasons are UTC whatever the session's time zone (23:00 on
-- 2026-10-31 in New York is 2026-11-01 in UTC).
SET timezone = 'America/New_York';

-- T + seconds
CREATE FUNCTION pg_temp.t(off bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.to_timestamp(1793491200 + off) $$;
-- hours after T
CREATE FUNCTION pg_temp.h(ts timestamptz) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT round((extract(epoch FROM ts) - 1793491200) / 3600, 4) $$;

-- 1. settings: seconds, reloaded with the server configuration (no session may SET them)
SELECT name, setting, unit, context, min_val, max_val FROM pg_settings
 WHERE name IN ('pgext.server_delete_after', 'pgext.server_paused_retention') ORDER BY name;
SET pgext.server_delete_after = '1h';

-- 2. the pure policy.  Any access gives 'active' whatever else is passed
-- (lapse, a pause long past the retention, any time): one row per kind.
SELECT a.access, r.desired_state, r.reason, count(*) AS combinations
  FROM (VALUES ('lifetime'), ('active'), ('trialing'), ('canceling'), ('granted'), ('grace')) a(access)
 CROSS JOIN (VALUES (NULL), ('unpaid'), ('ended')) l(lapse)
 CROSS JOIN (VALUES (NULL::timestamptz), (pg_temp.t(0))) la(lapsed_at)
 CROSS JOIN (VALUES (NULL::timestamptz), (pg_temp.t(0)), (pg_temp.t(-30 * 86400))) p(paused_since)
 CROSS JOIN (VALUES (pg_temp.t(3600)), (pg_temp.t(86400)), (pg_temp.t(60 * 86400))) t(at)
 CROSS JOIN LATERAL pgext.server_desired_state(a.access, l.lapse, la.lapsed_at, p.paused_since, t.at,
                                               pg_temp.t(7 * 86400)) r
 GROUP BY 1, 2, 3 ORDER BY 1;
-- without until, the reason has no date
SELECT a.access, r.desired_state, r.reason
  FROM (VALUES ('trialing'), ('canceling'), ('granted'), ('grace')) a(access)
 CROSS JOIN LATERAL pgext.server_desired_state(a.access, NULL, NULL, NULL, pg_temp.t(0)) r ORDER BY 1;
-- no access: every lapse x lapsed_at x paused_since x time, around both windows
-- (delete_after 1 day from lapsed_at = T; retention 14 days from paused_since)
-- (times in hours after T; T is the night New York leaves DST: windows are
-- exact seconds, not calendar days)
SELECT l.lapse, pg_temp.h(la.lapsed_at) AS lapsed_h, pg_temp.h(p.paused_since) AS paused_h,
       pg_temp.h(t.at) AS at_h, r.desired_state, r.reason
  FROM (VALUES (NULL), ('unpaid'), ('ended')) l(lapse)
 CROSS JOIN (VALUES (NULL::timestamptz), (pg_temp.t(0))) la(lapsed_at)
 CROSS JOIN (VALUES (NULL::timestamptz), (pg_temp.t(3600)), (pg_temp.t(-14 * 86400 + 7200))) p(paused_since)
 CROSS JOIN (VALUES (pg_temp.t(7200 - 1)), (pg_temp.t(7200)), (pg_temp.t(86400 - 1)), (pg_temp.t(86400)),
                    (pg_temp.t(14 * 86400 + 3600 - 1)), (pg_temp.t(14 * 86400 + 3600))) t(at)
 CROSS JOIN LATERAL pgext.server_desired_state('none', l.lapse, la.lapsed_at, p.paused_since, t.at) r
 ORDER BY l.lapse NULLS FIRST, la.lapsed_at NULLS FIRST, p.paused_since NULLS FIRST, t.at;
-- bad input: clear errors
SELECT * FROM pgext.server_desired_state('paid', NULL, NULL, NULL, pg_temp.t(0));
SELECT * FROM pgext.server_desired_state(NULL, NULL, NULL, NULL, pg_temp.t(0));
SELECT * FROM pgext.server_desired_state('none', 'gone', NULL, NULL, pg_temp.t(0));
SELECT * FROM pgext.server_desired_state('none', 'ended', pg_temp.t(0), NULL, NULL);

-- 3. access granted by an operator.  In one transaction, so that now() is
-- one time and the outputs can be compared with it.
SELECT pgext.account_create('pol-grant') AS acct_grant \gset
SELECT pgext.account_create('pol-grant-2') AS acct_grant2 \gset
SELECT pgext.account_create('pol-grant-3') AS acct_grant3 \gset
BEGIN;
SELECT access, until FROM pgext.billing_access(:'acct_grant');
SELECT pgext.access_grant(:'acct_grant', now() + '30 days', 'partner demo') AS g1 \gset
-- a second, shorter grant: the latest until counts
SELECT pgext.access_grant(:'acct_grant', now() + '10 days', 'support extension') AS g2 \gset
SELECT :g2 > :g1 AS new_grant_per_call;
SELECT access, until = now() + '30 days' AS latest_until, subscription_id
  FROM pgext.billing_access(:'acct_grant', now() + '1 day');
SELECT access, until = now() + '30 days' AS latest_until FROM pgext.billing_access(:'acct_grant', now() + '15 days');
-- it ends by itself
SELECT access, until FROM pgext.billing_access(:'acct_grant', now() + '30 days');
SELECT account_id = :'acct_grant' AS account, until - created_at AS lasts, reason, granted_by = session_user AS by_session_user,
       revoked_at, revoked_by, revoke_reason, ended_announced_at
  FROM pgext.access_grants WHERE account_id = :'acct_grant' ORDER BY id;
-- desired state: active while granted, then paused for a day after it ran out, then deleting
SELECT desired_state, reason = 'active: access granted by an operator until '
                               || to_char((now() + '30 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS reason_ok
  FROM pgext.account_server_desired(:'acct_grant', NULL, now() + '1 day');
SELECT desired_state, reason = 'paused: access ended on ' || to_char((now() + '30 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                               || ', deleting from ' || to_char((now() + '31 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                               || ' UTC' AS reason_ok
  FROM pgext.account_server_desired(:'acct_grant', now() + '30 days', now() + '30 days 23 hours');
SELECT desired_state, reason = 'deleting: access ended on ' || to_char((now() + '30 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS reason_ok
  FROM pgext.account_server_desired(:'acct_grant', now() + '30 days', now() + '31 days');
-- the outbox: one access_granted per grant, with its end
SELECT kind, until - now() AS until, detail = 'grant ' || :g1 || ': partner demo' OR detail = 'grant ' || :g2 || ': support extension' AS detail_ok
  FROM pgext.outbox WHERE account_id = :'acct_grant' ORDER BY id;
-- access_expire announces each grant that ran out, once
SELECT pgext.access_expire(now() + '9 days') AS announced;
SELECT pgext.access_expire(now() + '10 days') AS announced;
SELECT pgext.access_expire(now() + '10 days') AS announced;
SELECT pgext.access_expire(now() + '40 days') AS announced;
SELECT pgext.access_expire(now() + '40 days') AS announced;
SELECT kind, until - now() AS until, detail = 'grant ' || :g2 || ' ran out' OR detail = 'grant ' || :g1 || ' ran out' AS detail_ok
  FROM pgext.outbox WHERE account_id = :'acct_grant' AND kind = 'access_grant_ended' ORDER BY id;
SELECT id = :g1 AS g1, ended_announced_at - now() AS announced_at FROM pgext.access_grants
 WHERE account_id = :'acct_grant' ORDER BY id;
-- revoke: access ends now, announced at once, recorded with who and why
SELECT pgext.access_grant(:'acct_grant2', now() + '1 year', 'conference demo') AS g3 \gset
SELECT access FROM pgext.billing_access(:'acct_grant2');
SELECT pgext.access_revoke(:g3, 'demo over');
SELECT pgext.access_revoke(:g3, 'demo over');
SELECT access FROM pgext.billing_access(:'acct_grant2');
SELECT revoked_at = now() AS revoked_now, revoked_by = session_user AS by_session_user, revoke_reason,
       ended_announced_at = now() AS announced
  FROM pgext.access_grants WHERE id = :g3;
SELECT kind, until - now() AS until, regexp_replace(detail, '^grant [0-9]+', 'grant <g3>') AS detail
  FROM pgext.outbox WHERE account_id = :'acct_grant2' ORDER BY id;
-- a revoked grant is never announced again
SELECT pgext.access_expire(now() + '2 years') AS announced;
SELECT desired_state, reason = 'paused: access ended on ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                               || ', deleting from ' || to_char((now() + '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                               || ' UTC' AS reason_ok
  FROM pgext.account_server_desired(:'acct_grant2');
-- a grant that already ran out cannot be revoked (nothing to end); made by
-- moving its until into the past directly, as superuser (test setup only)
SELECT pgext.access_grant(:'acct_grant3', now() + '1 day', 'short') AS g4 \gset
UPDATE pgext.access_grants SET until = now() - interval '1 minute' WHERE id = :g4;
SELECT pgext.access_revoke(:g4, 'too late') AS revoked_ran_out_grant;
SELECT access FROM pgext.billing_access(:'acct_grant3');
SELECT pgext.access_expire() AS announced;
COMMIT;
-- refusals, nothing written
SELECT count(*) AS grants_before FROM pgext.access_grants \gset
SELECT pgext.access_grant(:'acct_grant', now() - interval '1 second', 'in the past');
SELECT pgext.access_grant(:'acct_grant', now(), 'now');
SELECT pgext.access_grant(:'acct_grant', NULL, 'no end');
SELECT pgext.access_grant(:'acct_grant', now() + '10 years 1 day', 'too long');
SELECT pgext.access_grant(:'acct_grant', now() + '1 day', '');
SELECT pgext.access_grant(:'acct_grant', now() + '1 day', '   ');
SELECT pgext.access_grant(:'acct_grant', now() + '1 day', NULL);
SELECT pgext.access_grant(:'acct_grant', now() + '1 day', repeat('x', 1001));
SELECT pgext.access_grant('00000000-0000-0000-0000-000000000000', now() + '1 day', 'nobody');
SELECT pgext.access_grant(NULL, now() + '1 day', 'nobody');
SELECT pgext.access_revoke(:g1, '');
SELECT pgext.access_revoke(:g1, NULL);
SELECT pgext.access_revoke(-1, 'no such grant');
SELECT pgext.access_revoke(NULL, 'no such grant');
SELECT pgext.access_expire(NULL);
SELECT count(*) = :grants_before AS nothing_written FROM pgext.access_grants;
SELECT count(*) AS grant_outbox_rows FROM pgext.outbox WHERE kind IN ('access_granted', 'access_grant_ended');
-- roles: grants, revokes, the sweep and the account wrapper are for operators;
-- the pure policy is for anyone with pgext_app
CREATE ROLE pol_app NOLOGIN IN ROLE pgext_app;
CREATE ROLE pol_admin NOLOGIN IN ROLE pgext_admin;
SET ROLE pol_app;
SELECT pgext.access_grant(:'acct_grant', now() + '1 day', 'app tries');
SELECT pgext.access_revoke(:g1, 'app tries');
SELECT pgext.access_expire();
SELECT * FROM pgext.account_server_desired(:'acct_grant');
SELECT * FROM pgext.server_desired_state('grace', NULL, NULL, NULL, pg_temp.t(0), pg_temp.t(86400));
SELECT access FROM pgext.billing_access(:'acct_grant2');
-- the table shows an app only its bound account's grants (unbound: none)
SELECT count(*) FROM pgext.access_grants;
SET ROLE pol_admin;
SELECT pgext.access_grant(:'acct_grant2', now() + '1 day', 'operator gives a day') > :g3 AS granted;
SELECT access FROM pgext.billing_access(:'acct_grant2');
SELECT desired_state FROM pgext.account_server_desired(:'acct_grant2');
SELECT granted_by = session_user AS by_session_user FROM pgext.access_grants WHERE reason = 'operator gives a day';
SELECT pgext.access_expire(now() + '2 days') AS announced;
RESET ROLE;
SELECT * FROM pgext.account_server_desired(NULL);
SELECT * FROM pgext.account_server_desired('00000000-0000-0000-0000-000000000000');
SELECT * FROM pgext.account_server_desired(:'acct_grant', NULL, NULL);

-- 4. real billing states from signed Stripe events (received at their own
-- `created`, so the replay window holds), through webhook_apply
SELECT pgext.secret_set('webhook:stripe', 'whsec_policy_test') IS NOT NULL AS stored;
SELECT pgext.stripe_price_set('price_pol', 'subscription', 100);
SELECT pgext.stripe_price_set('price_pol_life', 'lifetime', 0);
CREATE FUNCTION pg_temp.ev(id text, off bigint, type text, obj text) RETURNS text
LANGUAGE sql AS $$
  SELECT (pgext.webhook_ingest('stripe', x.p,
            pg_catalog.format('t=%s,v1=%s', 1793491200 + off,
              pg_catalog.encode(public.hmac(pg_catalog.convert_to((1793491200 + off) || '.' || x.p, 'UTF8'),
                                            pg_catalog.convert_to('whsec_policy_test', 'UTF8'), 'sha256'), 'hex')),
            pg_temp.t(off))).status
    FROM (SELECT pg_catalog.format('{"id":"%s","object":"event","api_version":"2025-03-31.basil","created":%s,"livemode":false,"pending_webhooks":1,"type":"%s","data":{"object":%s}}',
                                   id, 1793491200 + off, type, obj) AS p) x
$$;
-- a subscription object; period T+start .. T+end (days)
CREATE FUNCTION pg_temp.sub(id text, cus text, status text, cape boolean, start_d int, end_d int) RETURNS text
LANGUAGE sql AS $$
  SELECT pg_catalog.format('{"id":"%s","object":"subscription","customer":"%s","status":"%s","cancel_at_period_end":%s,"items":{"object":"list","data":[{"id":"si_%s","object":"subscription_item","price":{"id":"price_pol","object":"price"},"quantity":1,"current_period_start":%s,"current_period_end":%s}]}}',
                           id, cus, status, CASE WHEN cape THEN 'true' ELSE 'false' END, id, 1793491200 + start_d * 86400, 1793491200 + end_d * 86400)
$$;
-- a failed renewal invoice of a subscription
CREATE FUNCTION pg_temp.inv(id text, cus text, sub text) RETURNS text
LANGUAGE sql AS $$
  SELECT pg_catalog.format('{"id":"%s","object":"invoice","customer":"%s","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_%s","object":"line_item","period":{"start":%s,"end":%s},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pol","product":"prod_pol"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"%s","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"%s"}}}',
                           id, cus, id, 1793491200 + 30 * 86400, 1793491200 + 60 * 86400, sub, sub)
$$;
-- access and desired state of an account at T + days (paused since T + days)
CREATE FUNCTION pg_temp.desired(ext text, at_d numeric, paused_d numeric DEFAULT NULL)
RETURNS TABLE (at_day numeric, access text, desired_state text, reason text)
LANGUAGE sql AS $$
  SELECT at_d, b.access, r.desired_state, r.reason
    FROM pgext.accounts a,
         pgext.billing_access(a.id, pg_temp.t((at_d * 86400)::bigint)) b,
         pgext.account_server_desired(a.id, pg_temp.t((paused_d * 86400)::bigint), pg_temp.t((at_d * 86400)::bigint)) r
   WHERE a.external_id = ext
$$;
SELECT count(*) AS accounts FROM (
  SELECT pgext.account_set_stripe_customer(pgext.account_create(x), 'cus_' || replace(x, '-', '_'))
    FROM (VALUES ('pol-active'), ('pol-trial'), ('pol-cancel'), ('pol-grace'), ('pol-ended'),
                 ('pol-life'), ('pol-none'), ('pol-both')) v(x)) s;

SELECT pg_temp.ev('evt_pol_01', 0, 'customer.subscription.created', pg_temp.sub('sub_pol_active', 'cus_pol_active', 'active', false, 0, 30));
SELECT pg_temp.ev('evt_pol_02', 0, 'customer.subscription.created', pg_temp.sub('sub_pol_trial', 'cus_pol_trial', 'trialing', false, 0, 14));
SELECT pg_temp.ev('evt_pol_03', 0, 'customer.subscription.created', pg_temp.sub('sub_pol_cancel', 'cus_pol_cancel', 'active', false, 0, 30));
SELECT pg_temp.ev('evt_pol_04', 86400, 'customer.subscription.updated', pg_temp.sub('sub_pol_cancel', 'cus_pol_cancel', 'active', true, 0, 30));
SELECT pg_temp.ev('evt_pol_05', 0, 'customer.subscription.created', pg_temp.sub('sub_pol_grace', 'cus_pol_grace', 'active', false, 0, 30));
-- the renewal fails on day 30: grace for 7 days, then Stripe marks it past_due
SELECT pg_temp.ev('evt_pol_06', 30 * 86400, 'invoice.payment_failed', pg_temp.inv('in_pol_grace', 'cus_pol_grace', 'sub_pol_grace'));
SELECT pg_temp.ev('evt_pol_07', 30 * 86400 + 60, 'customer.subscription.updated', pg_temp.sub('sub_pol_grace', 'cus_pol_grace', 'past_due', false, 30, 60));
SELECT pg_temp.ev('evt_pol_08', 0, 'customer.subscription.created', pg_temp.sub('sub_pol_ended', 'cus_pol_ended', 'active', false, 0, 30));
SELECT pg_temp.ev('evt_pol_09', 5 * 86400, 'customer.subscription.deleted', pg_temp.sub('sub_pol_ended', 'cus_pol_ended', 'canceled', false, 0, 30));
SELECT pg_temp.ev('evt_pol_10', 0, 'checkout.session.completed',
  '{"id":"cs_pol_life","object":"checkout.session","mode":"payment","payment_status":"paid","customer":"cus_pol_life","client_reference_id":"pol-life","metadata":{"price_id":"price_pol_life"}}');
SELECT pg_temp.ev('evt_pol_11', 60, 'customer.subscription.created', pg_temp.sub('sub_pol_life', 'cus_pol_life', 'active', false, 0, 30));
SELECT pg_temp.ev('evt_pol_12', 2 * 86400, 'customer.subscription.deleted', pg_temp.sub('sub_pol_life', 'cus_pol_life', 'canceled', false, 0, 30));
-- pol-both: a subscription canceled on day 2, then a renewal of a second one fails on day 30
SELECT pg_temp.ev('evt_pol_13', 0, 'customer.subscription.created', pg_temp.sub('sub_pol_both_1', 'cus_pol_both', 'active', false, 0, 30));
SELECT pg_temp.ev('evt_pol_14', 2 * 86400, 'customer.subscription.deleted', pg_temp.sub('sub_pol_both_1', 'cus_pol_both', 'canceled', false, 0, 30));
SELECT pg_temp.ev('evt_pol_15', 3 * 86400, 'customer.subscription.created', pg_temp.sub('sub_pol_both_2', 'cus_pol_both', 'active', false, 3, 30));
SELECT pg_temp.ev('evt_pol_16', 30 * 86400, 'invoice.payment_failed', pg_temp.inv('in_pol_both', 'cus_pol_both', 'sub_pol_both_2'));
SELECT pg_temp.ev('evt_pol_17', 30 * 86400 + 60, 'customer.subscription.updated', pg_temp.sub('sub_pol_both_2', 'cus_pol_both', 'past_due', false, 30, 60));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status FROM pgext.webhook_events WHERE event_id LIKE 'evt_pol_%' AND status <> 'applied' ORDER BY 1;

-- active, trialing: active
SELECT * FROM pg_temp.desired('pol-active', 1);
SELECT * FROM pg_temp.desired('pol-trial', 1);
-- canceling until period end (day 30), then paused for a day, then deleting
SELECT * FROM pg_temp.desired('pol-cancel', 29);
SELECT * FROM pg_temp.desired('pol-cancel', 30.5, 30);
SELECT * FROM pg_temp.desired('pol-cancel', 31, 30);
-- payment failed on day 30: grace (active, with the warning) until day 37,
-- then paused; deleting once paused for 14 days
SELECT * FROM pg_temp.desired('pol-grace', 31);
SELECT * FROM pg_temp.desired('pol-grace', 38, 37);
SELECT * FROM pg_temp.desired('pol-grace', 50.9, 37);
SELECT * FROM pg_temp.desired('pol-grace', 51, 37);
SELECT pgext.billing_expire_grace(pg_temp.t(38 * 86400)) AS grace_expired;
-- ended on day 5 (subscription deleted): paused that day, deleting from the next
SELECT * FROM pg_temp.desired('pol-ended', 5.5, 5);
SELECT * FROM pg_temp.desired('pol-ended', 6, 5);
-- lifetime outlives its canceled subscription
SELECT * FROM pg_temp.desired('pol-life', 400, 20);
-- never paid (no billing on record): paused, not deleted at once; deleting after the retention
SELECT * FROM pg_temp.desired('pol-none', 1);
SELECT * FROM pg_temp.desired('pol-none', 15, 1);
-- the most recent lapse counts: the failed renewal (day 37), not the cancellation (day 2)
SELECT * FROM pg_temp.desired('pol-both', 40, 37);
-- an operator grant covers the failed payment: granted outranks grace
-- (until is fixed at T + 45 days by moving it directly, as superuser:
-- access_grant only takes a future time, and T is a fixed date)
SELECT pgext.access_grant(id, now() + '1 day', 'customer fixing their card') AS g5
  FROM pgext.accounts WHERE external_id = 'pol-grace' \gset
UPDATE pgext.access_grants SET until = pg_temp.t(45 * 86400) WHERE id = :g5;
SELECT * FROM pg_temp.desired('pol-grace', 31);
SELECT * FROM pg_temp.desired('pol-grace', 40, 37);
-- ... and once it runs out (day 45) the lapse is the grant's end, so the
-- paused server is deleted a day later (or by the retention, whichever is first)
SELECT * FROM pg_temp.desired('pol-grace', 45.5, 37);
SELECT * FROM pg_temp.desired('pol-grace', 46, 37);
-- paying again (the subscription active again) resumes it, even one paused
-- past the retention: a server is never deleted while it is paid for
SELECT pg_temp.ev('evt_pol_18', 60 * 86400, 'customer.subscription.updated', pg_temp.sub('sub_pol_grace', 'cus_pol_grace', 'active', false, 60, 90));
SELECT * FROM pgext.webhook_apply();
SELECT * FROM pg_temp.desired('pol-grace', 61, 37);
-- an active subscription wins over a grant (the app sees what it bills)
SELECT pgext.access_grant(id, now() + '1 day', 'partner') AS g6
  FROM pgext.accounts WHERE external_id = 'pol-active' \gset
UPDATE pgext.access_grants SET until = pg_temp.t(45 * 86400) WHERE id = :g6;
SELECT * FROM pg_temp.desired('pol-active', 1);
-- the subscription rows behind these answers
SELECT a.external_id, s.status, s.cancel_at_period_end AS cape,
       s.current_period_end - pg_temp.t(0) AS period_end, s.grace_until - pg_temp.t(0) AS grace_until,
       s.ended_at - pg_temp.t(0) AS ended_at
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id LIKE 'pol-%' ORDER BY 1, s.id;

-- the outbox kinds a grant writes, in order, for the whole file
SELECT a.external_id, o.kind FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE o.kind LIKE 'access_grant%' ORDER BY o.id;

DROP ROLE pol_app;
DROP ROLE pol_admin;
