-- Webhooks: Stripe sends a checkout and an invoice.paid; pgext verifies,
-- dedups and applies them, and the credits land in the ledger.
-- In this demo psql plays Stripe: it signs each body with the endpoint
-- secret (HMAC-SHA256 over "<t>.<body>", pgcrypto); your HTTP handler would
-- pass Stripe's raw body and Stripe-Signature header through unchanged.
\pset footer off
\echo '--- the operator stores the endpoint signing secret and maps prices to what they buy'
SELECT pgext.secret_set('webhook:stripe', 'whsec_demo_5f2b9c0e7a4d4e1f8a3b6c9d0e1f2a3b') IS NOT NULL AS stored;
SELECT pgext.stripe_price_set('price_pro_monthly', 'subscription', 1000, 500);
SELECT pgext.stripe_price_set('price_credits_250', 'credit_pack', 250);
SELECT pgext.account_create('bob') AS bob \gset

\echo '--- bob buys a 250-credit pack: checkout.session.completed (client_reference_id = his external_id)'
SELECT extract(epoch FROM now())::bigint AS t, extract(epoch FROM now() + interval '1 month')::bigint AS t_end \gset
\set body '{"id":"evt_demo_checkout","object":"event","type":"checkout.session.completed","created":' :t ',"livemode":false,"data":{"object":{"id":"cs_demo_1","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"bob","customer":"cus_demo_bob","metadata":{"price_id":"price_credits_250"},"customer_details":{"email":"bob@example.com"}}}}'
SELECT 't=' || :t || ',v1=' || encode(hmac(:t || '.' || :'body', 'whsec_demo_5f2b9c0e7a4d4e1f8a3b6c9d0e1f2a3b', 'sha256'), 'hex') AS sig \gset
SELECT * FROM pgext.webhook_ingest('stripe', :'body', :'sig');
\echo '--- Stripe retries the same delivery: a duplicate, never applied twice'
SELECT * FROM pgext.webhook_ingest('stripe', :'body', :'sig');
\echo '--- a forged copy (body changed, signature kept) is rejected with a status, not an exception'
SELECT * FROM pgext.webhook_ingest('stripe', replace(:'body', 'price_credits_250', 'price_pro_monthly'), :'sig');

\echo '--- bob subscribes; his first invoice is paid: customer.subscription.created + invoice.paid'
\set sub '{"id":"evt_demo_sub","object":"event","type":"customer.subscription.created","created":' :t ',"livemode":false,"data":{"object":{"id":"sub_demo_bob","object":"subscription","customer":"cus_demo_bob","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_demo","price":{"id":"price_pro_monthly"},"current_period_start":' :t ',"current_period_end":' :t_end '}]}}}}'
SELECT 't=' || :t || ',v1=' || encode(hmac(:t || '.' || :'sub', 'whsec_demo_5f2b9c0e7a4d4e1f8a3b6c9d0e1f2a3b', 'sha256'), 'hex') AS sub_sig \gset
SELECT * FROM pgext.webhook_ingest('stripe', :'sub', :'sub_sig');
\set inv '{"id":"evt_demo_invoice","object":"event","type":"invoice.paid","created":' :t ',"livemode":false,"data":{"object":{"id":"in_demo_1","object":"invoice","customer":"cus_demo_bob","subscription":"sub_demo_bob","lines":{"object":"list","data":[{"id":"il_demo","price":{"id":"price_pro_monthly"},"subscription":"sub_demo_bob","period":{"start":' :t ',"end":' :t_end '}}]}}}}'
SELECT 't=' || :t || ',v1=' || encode(hmac(:t || '.' || :'inv', 'whsec_demo_5f2b9c0e7a4d4e1f8a3b6c9d0e1f2a3b', 'sha256'), 'hex') AS inv_sig \gset
SELECT * FROM pgext.webhook_ingest('stripe', :'inv', :'inv_sig');

\echo '--- intake only recorded them; webhook_apply (the worker calls it) applies them in event order'
SELECT * FROM pgext.webhook_apply();
SELECT event_id, type, status FROM pgext.webhook_events ORDER BY event_id;

\echo '--- what they granted: 250 from the pack + 1000 for the billing period'
SELECT op, kind, amount, balance_after, coalesce(idempotency_key, reason) AS key_or_reason
  FROM pgext.credit_ledger WHERE account_id = :'bob' ORDER BY id;
SELECT pgext.credit_balance(:'bob') AS balance;
SELECT access FROM pgext.billing_access(:'bob');
\echo '--- the next renewal fails: invoice.payment_failed starts a grace period and writes an outbox row;'
\echo '    an app LISTENs on pgext_outbox and is woken when webhook_apply commits (psql prints it below)'
LISTEN pgext_outbox;
SELECT :t + 60 AS t2, extract(epoch FROM now() + interval '2 months')::bigint AS t_end2 \gset
\set failed '{"id":"evt_demo_failed","object":"event","type":"invoice.payment_failed","created":' :t2 ',"livemode":false,"data":{"object":{"id":"in_demo_2","object":"invoice","customer":"cus_demo_bob","subscription":"sub_demo_bob","lines":{"object":"list","data":[{"id":"il_demo_2","price":{"id":"price_pro_monthly"},"subscription":"sub_demo_bob","period":{"start":' :t_end ',"end":' :t_end2 '}}]}}}}'
SELECT 't=' || :t2 || ',v1=' || encode(hmac(:t2 || '.' || :'failed', 'whsec_demo_5f2b9c0e7a4d4e1f8a3b6c9d0e1f2a3b', 'sha256'), 'hex') AS failed_sig \gset
SELECT * FROM pgext.webhook_ingest('stripe', :'failed', :'failed_sig');
SELECT * FROM pgext.webhook_apply();
\echo '--- the app reads what came after the last id it processed (here: from the start)'
SELECT id, kind, subscription_id, until - now() > interval '6 days' AS grace_about_a_week
  FROM pgext.outbox_since(0, 100) WHERE account_id = :'bob';
UNLISTEN pgext_outbox;
\echo '--- rejections are counted for alerting (no payload, signature or secret stored)'
SELECT * FROM pgext.webhook_rejection_counts();
