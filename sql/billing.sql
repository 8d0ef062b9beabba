-- Stripe events applied to billing state: checkout, subscriptions, invoices,
-- out-of-order deliveries, lifetime vs subscription, retries, dead letters.
-- Signatures were computed with the openssl command line at authoring time
-- (test/vectors/stripe_sig.py; generator test/vectors/gen_billing_sql.py).
-- Times are offsets in seconds from 2026-01-01 00:00 UTC (created of the first event).
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;

SELECT pgext.secret_set('webhook:stripe', 'whsec_events_test') IS NOT NULL AS stored;
SELECT pgext.stripe_price_set('price_pro', 'subscription', 1000, 500);
SELECT pgext.stripe_price_set('price_life', 'lifetime', 5000);
SELECT pgext.stripe_price_set('price_pack', 'credit_pack', 250);
-- bad inputs (issue 13): a message shows at most 64 characters of a rejected value
SELECT pgext.stripe_price_set(repeat('p', 100000), 'subscription');
SELECT pgext.stripe_price_set('price_x', repeat('k', 100000));
SELECT * FROM pgext.server_desired_state(repeat('a', 100000), NULL, NULL, NULL, now());
SELECT pgext.stripe_price_set('price_free', 'subscription', 0);
SELECT count(*) AS accounts FROM (SELECT pgext.account_create(x) FROM (VALUES ('acme'), ('lifer'), ('ghost'), ('packer')) v(x)) s;

-- 1. acme subscribes: checkout (mode subscription) links the customer by client_reference_id
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a01","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_a1","object":"checkout.session","mode":"subscription","payment_status":"paid","client_reference_id":"acme","customer":"cus_acme","subscription":"sub_acme","customer_details":{"email":"ceo@acme.example"}}}}$b$, 't=1767225600,v1=58e83db901cdd56037882da2beb9384c6534fd307a4bb558b58eb37dfeb30743', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a02","object":"event","api_version":"2025-03-31.basil","created":1767225601,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.created","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225601,v1=1a65880dd20dcfdcc3a7b22e5062804bc29d77f00aaf89b0dabbdfb4d1441be8', pg_catalog.to_timestamp(1767225601));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a03","object":"event","api_version":"2025-03-31.basil","created":1767225602,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_a1","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a1","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1767225602,v1=5f4efd034834eb5d0108067196cccf588a2b4fe1e2a7761f406b7d0e7cb4594b', pg_catalog.to_timestamp(1767225602));
-- Stripe delivers invoice.paid twice: the second is a duplicate at intake
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a03","object":"event","api_version":"2025-03-31.basil","created":1767225602,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_a1","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a1","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1767225602,v1=5f4efd034834eb5d0108067196cccf588a2b4fe1e2a7761f406b7d0e7cb4594b', pg_catalog.to_timestamp(1767225602));
-- invoice.payment_succeeded for the same invoice: credits are keyed by period, never granted twice
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a04","object":"event","api_version":"2025-03-31.basil","created":1767225602,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.payment_succeeded","data":{"object":{"id":"in_a1","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a1","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1767225602,v1=40e41e4f0b5bc5df82722b8841926d9a89af6ff84d366b04ceada5ac9df07682', pg_catalog.to_timestamp(1767225602));
SELECT * FROM pgext.webhook_apply();
SELECT stripe_customer_id FROM pgext.accounts WHERE external_id = 'acme';
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'acme' ORDER BY s.id;
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'acme';
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1767312000));
SELECT event_id, type, status, attempts FROM pgext.webhook_events WHERE event_id LIKE 'evt_a%' ORDER BY event_id;

-- 2. out of order: a newer update (cancel at period end) arrives before an older one (past_due)
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a06","object":"event","api_version":"2025-03-31.basil","created":1767225620,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":true,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225620,v1=5fc51166e78c0a5efd65aca127783506b627ad53b2df8755ae3c0c7eccb1a1a4', pg_catalog.to_timestamp(1767225620));
SELECT * FROM pgext.webhook_apply();
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a05","object":"event","api_version":"2025-03-31.basil","created":1767225610,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"past_due","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225610,v1=4ac3ef3ac21d71b7690e2d731cab388cbe8a3bf9aa8637a620ef50b00e92306a', pg_catalog.to_timestamp(1767225610));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status FROM pgext.webhook_events WHERE event_id IN ('evt_a05', 'evt_a06') ORDER BY 1;
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'acme' ORDER BY s.id;
-- canceling keeps access until the period ends, then none
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1769903999));
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1769904001));
-- the same delivered in one batch, older last in arrival: order by created decides
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a08","object":"event","api_version":"2025-03-31.basil","created":1767225640,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225640,v1=3972561d7a05ffa87de92651c05b16a4ecf4c0f11fee3a565d01f7c01bf9a5e8', pg_catalog.to_timestamp(1767225640));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a07","object":"event","api_version":"2025-03-31.basil","created":1767225630,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":true,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225630,v1=7b8cc17022746a7bbc6e5bf1c5d801636e9eb716b4269d9a8583c8a94b23e747', pg_catalog.to_timestamp(1767225630));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status FROM pgext.webhook_events WHERE event_id IN ('evt_a07', 'evt_a08') ORDER BY 1;
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'acme' ORDER BY s.id;

-- 3. payment fails: grace period (pgext.grace_period, 7 days) and an outbox row
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a09","object":"event","api_version":"2025-03-31.basil","created":1769904060,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.payment_failed","data":{"object":{"id":"in_a2","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a2","object":"line_item","period":{"start":1769904000,"end":1772323200},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1769904060,v1=dd3032acdb77d0d5f13629ed92e75c4a46b4a193c0e7f2a4546546ad98f6de48', pg_catalog.to_timestamp(1769904060));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a10","object":"event","api_version":"2025-03-31.basil","created":1769904061,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"past_due","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1769904000,"current_period_end":1772323200}]}}}}$b$, 't=1769904061,v1=931aa34cfc90f2aef8f02b15c02134aa8bfa96e5f99456e81071f16996e106e2', pg_catalog.to_timestamp(1769904061));
-- a second failure (retry of the invoice) does not extend the grace period
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a11","object":"event","api_version":"2025-03-31.basil","created":1770163200,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.payment_failed","data":{"object":{"id":"in_a2","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a2","object":"line_item","period":{"start":1769904000,"end":1772323200},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1770163200,v1=037a4fb069f9248364f319c807027446995439024af805fc7f3f9fd5387d3fa3', pg_catalog.to_timestamp(1770163200));
SELECT * FROM pgext.webhook_apply();
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'acme' ORDER BY s.id;
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1770076800));
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1770595200));
-- the worker expires grace periods: one grace_expired per subscription
SELECT pgext.billing_expire_grace(pg_catalog.to_timestamp(1770595200)) AS expired;
SELECT pgext.billing_expire_grace(pg_catalog.to_timestamp(1770681600)) AS expired_again;
-- payment recovers: the period's credits arrive (rollover capped at 500), grace ends
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a12","object":"event","api_version":"2025-03-31.basil","created":1770681600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_a2","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a2","object":"line_item","period":{"start":1769904000,"end":1772323200},"quantity":1,"price":{"id":"price_pro","object":"price"},"subscription":"sub_acme","proration":false}]},"subscription":"sub_acme"}}}$b$, 't=1770681600,v1=be82236544f74d76a5460c721d2795936b279733717296416729c3b79b92fbd7', pg_catalog.to_timestamp(1770681600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a13","object":"event","api_version":"2025-03-31.basil","created":1770681601,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1}]},"current_period_start":1769904000,"current_period_end":1772323200}}}$b$, 't=1770681601,v1=ebdd7da1df643a3143261e8d1584ccebbc230cf552cb26d6ed4a43edc4e32385', pg_catalog.to_timestamp(1770681601));
SELECT * FROM pgext.webhook_apply();
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'acme' ORDER BY s.id;
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'acme';
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1770768000));
-- proration lines and zero-credit prices allocate nothing
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a14","object":"event","api_version":"2025-03-31.basil","created":1770768000,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_a3","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a3","object":"line_item","period":{"start":1769904000,"end":1772323200},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":true}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1770768000,v1=2cb540f4bc1bae2b7ce903525f6d752babf21f84afde2d231aa865debaa39017', pg_catalog.to_timestamp(1770768000));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a15","object":"event","api_version":"2025-03-31.basil","created":1770768001,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_a4","object":"invoice","customer":"cus_acme","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_a4","object":"line_item","period":{"start":1769904000,"end":1772323200},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_free","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_acme","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_acme"}}}}}$b$, 't=1770768001,v1=9e1968d497ed04cc34c52d48c602c01ab8afa915e23b1829a5513f29d078909b', pg_catalog.to_timestamp(1770768001));
SELECT * FROM pgext.webhook_apply();
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'acme';

-- 4. deleted ends access; an older update arriving afterwards is superseded
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a17","object":"event","api_version":"2025-03-31.basil","created":1772323195,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.deleted","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"canceled","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1769904000,"current_period_end":1772323200}]},"ended_at":1772323195}}}$b$, 't=1772323195,v1=f40e29ae3a7399af78004685dc9f01dde98bdcbcd9a3493b327550e90597f533', pg_catalog.to_timestamp(1772323195));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_a16","object":"event","api_version":"2025-03-31.basil","created":1772323190,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1769904000,"current_period_end":1772323200}]}}}}$b$, 't=1772323190,v1=748f63c27c34d5a4513090d54c11cf73b50661516fa48c26b4257ba08be9192b', pg_catalog.to_timestamp(1772323190));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status FROM pgext.webhook_events WHERE event_id IN ('evt_a16', 'evt_a17') ORDER BY 1;
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'acme' ORDER BY s.id;
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'acme'), pg_catalog.to_timestamp(1772323199));
SELECT o.kind, o.subscription_id, extract(epoch FROM o.until)::bigint - 1767225600 AS until_off, o.event_id
  FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE a.external_id = 'acme' ORDER BY o.id;

-- 5. lifetime: a one-time checkout (price from metadata) grants lifetime access and its credits
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_l01","object":"event","api_version":"2025-03-31.basil","created":1767225700,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_l1","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"lifer","customer":"cus_lifer","metadata":{"price_id":"price_life"},"payment_method_details":{"card":{"last4":"4242"}}}}}$b$, 't=1767225700,v1=108146b0f497e93d88193576130f81e71f65837f69b857617b3794d6584adc4e', pg_catalog.to_timestamp(1767225700));
-- ... and subscription events never downgrade it
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_l02","object":"event","api_version":"2025-03-31.basil","created":1767225701,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.created","data":{"object":{"id":"sub_lifer","object":"subscription","customer":"cus_lifer","status":"active","cancel_at_period_end":true,"items":{"object":"list","data":[{"id":"si_lifer","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225701,v1=7f5e52ae754b252de254a812112d2b27341e64c12c0602f6a6f085e5851fb023', pg_catalog.to_timestamp(1767225701));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_l03","object":"event","api_version":"2025-03-31.basil","created":1767225702,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.payment_failed","data":{"object":{"id":"in_l1","object":"invoice","customer":"cus_lifer","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_l1","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_lifer","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_lifer"}}}}}$b$, 't=1767225702,v1=05097cf83687d39c9b6b174e5c466e8d20d7970a2f3145d247199b2dc120ede4', pg_catalog.to_timestamp(1767225702));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_l04","object":"event","api_version":"2025-03-31.basil","created":1767225703,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.deleted","data":{"object":{"id":"sub_lifer","object":"subscription","customer":"cus_lifer","status":"canceled","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_lifer","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767225703,v1=c87ee4af3ccde2a2063181a055bd0c6630cc4c15ed33bb15e294cdcc73cb0092', pg_catalog.to_timestamp(1767225703));
SELECT * FROM pgext.webhook_apply();
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'lifer'), pg_catalog.to_timestamp(1798761600));
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'lifer';
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'lifer' ORDER BY s.id;
SELECT o.kind, o.subscription_id, extract(epoch FROM o.until)::bigint - 1767225600 AS until_off, o.event_id
  FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE a.external_id = 'lifer' ORDER BY o.id;
SELECT pgext.billing_expire_grace(pg_catalog.to_timestamp(1769817600)) AS expired;
SELECT price_id, kind, credits FROM pgext.stripe_purchases ORDER BY 1;

-- 6. credit pack with expanded line_items; an unpaid (async) checkout waits for async_payment_succeeded
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_p01","object":"event","api_version":"2025-03-31.basil","created":1767225800,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_p1","object":"checkout.session","mode":"payment","payment_status":"unpaid","client_reference_id":"packer","customer":"cus_packer","line_items":{"object":"list","data":[{"price":{"id":"price_pack"},"quantity":1}]}}}}$b$, 't=1767225800,v1=e7854f323de250fbbf36bbd1e2c695eea457e361482adf8f1a1f95f731b8aea9', pg_catalog.to_timestamp(1767225800));
SELECT * FROM pgext.webhook_apply();
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'packer';
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_p02","object":"event","api_version":"2025-03-31.basil","created":1767225900,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.async_payment_succeeded","data":{"object":{"id":"cs_p1","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"packer","customer":"cus_packer","line_items":{"object":"list","data":[{"price":{"id":"price_pack"},"quantity":1}]}}}}$b$, 't=1767225900,v1=53e3fa8c389d7d9f9ca0e9f8f6126fd8ff8b7327e0c961901c8cced0cbb69bb5', pg_catalog.to_timestamp(1767225900));
SELECT * FROM pgext.webhook_apply();
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'packer';
-- a second checkout with a new Stripe customer still credits the account found by client_reference_id
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_p03","object":"event","api_version":"2025-03-31.basil","created":1767226000,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_p2","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"packer","customer":"cus_packer_2","metadata":{"price_id":"price_pack"}}}}$b$, 't=1767226000,v1=694a3cd2f4926604bb39bc44f39093c2f6a794a7a15556739dc67b47e9df4f92', pg_catalog.to_timestamp(1767226000));
SELECT * FROM pgext.webhook_apply();
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'packer';
SELECT external_id, stripe_customer_id FROM pgext.accounts WHERE external_id = 'packer';

-- 7. failures retry with backoff, then become dead letters; an operator replays them
-- invoice for a customer no account is linked to yet (email is never used to find one)
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_g01","object":"event","api_version":"2025-03-31.basil","created":1767226100,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_g1","object":"invoice","customer":"cus_ghost","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_g1","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_ghost","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_ghost"}}}}}$b$, 't=1767226100,v1=13f0bdd41c884cfdeec85dd4354e682eba361dc6db0bb5aabfc925ebb7dc848a', pg_catalog.to_timestamp(1767226100));
SELECT * FROM pgext.webhook_apply();
SELECT status, attempts, next_attempt_at > pg_catalog.now() AS backing_off, last_error
  FROM pgext.webhook_events WHERE event_id = 'evt_g01';
-- not due yet: nothing is taken
SELECT * FROM pgext.webhook_apply();
SET pgext.webhook_max_attempts = 2;
UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id = 'evt_g01';
SELECT * FROM pgext.webhook_apply();
SELECT status, attempts, last_error IS NOT NULL AS has_error FROM pgext.webhook_events WHERE event_id = 'evt_g01';
RESET pgext.webhook_max_attempts;
-- an unmapped price fails too
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_g02","object":"event","api_version":"2025-03-31.basil","created":1767226200,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_g2","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"ghost","customer":"cus_ghost","metadata":{"price_id":"price_mystery"}}}}$b$, 't=1767226200,v1=0768d93acf672573fac2875b998a9fcc4e0de3a8d94d29175e7c04543d223edf', pg_catalog.to_timestamp(1767226200));
SELECT * FROM pgext.webhook_apply();
SELECT status, last_error FROM pgext.webhook_events WHERE event_id = 'evt_g02';
-- the operator fixes the cause and replays
SELECT pgext.stripe_price_set('price_mystery', 'credit_pack', 42);
SELECT pgext.webhook_replay('stripe', 'evt_g01') AS requeued, pgext.webhook_replay('stripe', 'evt_g02') AS due_now,
       pgext.webhook_replay('stripe', 'evt_a01') AS settled;
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts FROM pgext.webhook_events WHERE event_id LIKE 'evt_g%' ORDER BY 1;
-- evt_g01 came first and failed again (the checkout linking cus_ghost was applied after it); its retry succeeds
UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id = 'evt_g01';
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts FROM pgext.webhook_events WHERE event_id LIKE 'evt_g%' ORDER BY 1;
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'ghost';
SELECT pgext.webhook_replay('stripe', 'evt_nope');
SELECT pgext.webhook_replay_dead() AS none_left;

-- 8. past_due without (or before) invoice.payment_failed also starts the grace period, once
SELECT pgext.account_set_stripe_customer(pgext.account_create('late'), 'cus_late');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_d01","object":"event","api_version":"2025-03-31.basil","created":1767226400,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.created","data":{"object":{"id":"sub_late","object":"subscription","customer":"cus_late","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_late","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767226400,v1=3f852fd6a4d9fb75bf3d0e32776ee4c85ea40563db2a733caf411b4c92a33daa', pg_catalog.to_timestamp(1767226400));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_d02","object":"event","api_version":"2025-03-31.basil","created":1767226500,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_late","object":"subscription","customer":"cus_late","status":"past_due","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_late","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767226500,v1=3bb92ccce603b21701ee11f4faf3d0364f2865f8c9831610539abcbdf35c07cb', pg_catalog.to_timestamp(1767226500));
SELECT * FROM pgext.webhook_apply();
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'late'), pg_catalog.to_timestamp(1767312900));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_d03","object":"event","api_version":"2025-03-31.basil","created":1767226600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.payment_failed","data":{"object":{"id":"in_late","object":"invoice","customer":"cus_late","billing_reason":"subscription_cycle","customer_email":"someone@example.com","lines":{"object":"list","data":[{"id":"il_late","object":"line_item","period":{"start":1767225600,"end":1769904000},"quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_late","proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_late"}}}}}$b$, 't=1767226600,v1=b9d5e20173c9d86094e043d64a50aff4dddabf2cb3dc62d85e96f0870279e91b', pg_catalog.to_timestamp(1767226600));
SELECT * FROM pgext.webhook_apply();
SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - 1767225600 AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - 1767225600 AS end_off,
       extract(epoch FROM s.grace_until)::bigint - 1767225600 AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = 'late' ORDER BY s.id;
SELECT o.kind, o.subscription_id, extract(epoch FROM o.until)::bigint - 1767225600 AS until_off, o.event_id
  FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE a.external_id = 'late' ORDER BY o.id;

-- 9. newer API versions schedule an end with cancel_at instead of cancel_at_period_end
SELECT pgext.account_set_stripe_customer(pgext.account_create('sched'), 'cus_sched');
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_s01","object":"event","api_version":"2025-03-31.basil","created":1767226700,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.created","data":{"object":{"id":"sub_sched","object":"subscription","customer":"cus_sched","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_sched","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767226700,v1=779be4a924b87810a2c143392f4b3f92b092b09e5dd537e30456ee21a7520fe6', pg_catalog.to_timestamp(1767226700));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_s02","object":"event","api_version":"2025-03-31.basil","created":1767226800,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_sched","object":"subscription","customer":"cus_sched","status":"active","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_sched","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]},"cancel_at":1769817600}}}$b$, 't=1767226800,v1=f2b2da12b2c3365b52dade0a6ac1b68a615814d4f79addc9179cfded483948cd', pg_catalog.to_timestamp(1767226800));
SELECT * FROM pgext.webhook_apply();
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'sched'), pg_catalog.to_timestamp(1767312000));
SELECT access, extract(epoch FROM until)::bigint - 1767225600 AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = 'sched'), pg_catalog.to_timestamp(1769817601));
SELECT o.kind, o.subscription_id, extract(epoch FROM o.until)::bigint - 1767225600 AS until_off, o.event_id
  FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE a.external_id = 'sched' ORDER BY o.id;

-- 10. events we do not act on are ignored; bad inputs
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_x01","object":"event","api_version":"2025-03-31.basil","created":1767226300,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.trial_will_end","data":{"object":{"id":"sub_acme","object":"subscription","customer":"cus_acme","status":"trialing","cancel_at_period_end":false,"items":{"object":"list","data":[{"id":"si_acme","object":"subscription_item","price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":1767225600,"current_period_end":1769904000}]}}}}$b$, 't=1767226300,v1=aedb17fd2767011e73651e7e7ddd4c1f88fa6eda7840424558bdadf0e1891f3d', pg_catalog.to_timestamp(1767226300));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_x02","object":"event","api_version":"2025-03-31.basil","created":1767226301,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent"}}}$b$, 't=1767226301,v1=d75bc7f767ece4469d9678f62cc52a936af135705f474d4a2a1247f88be37352', pg_catalog.to_timestamp(1767226301));
SELECT * FROM pgext.webhook_apply();
SELECT * FROM pgext.webhook_apply(0);
SELECT pgext.stripe_price_set('prod_x', 'subscription', 1);
SELECT pgext.stripe_price_set('price_y', 'gift', 1);
SELECT pgext.stripe_price_set('price_y', 'credit_pack', 0);
SELECT pgext.billing_access(NULL);
SELECT pgext.stripe_price_remove('price_free') AS removed, pgext.stripe_price_remove('price_free') AS again;

-- 11. invoice credits are keyed by subscription, price and period start, and nothing else
SELECT pgext.account_set_stripe_customer(pgext.account_create('keyed'), 'cus_keyed');
-- period.start written 1767225600.0 in one invoice and 1767225600 in another is one period: allocated once
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k01","object":"event","api_version":"2025-03-31.basil","created":1767227600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k1","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k1","object":"line_item","quantity":1,"period":{"start":1767225600.0,"end":1769904000},"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false,"subscription":"sub_keyed"}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_keyed"}}}}}$b$, 't=1767227600,v1=c447881acaf675165b6efaa0b04cb3afa1a071873d2ed682b2e96e7bf968cfa1', pg_catalog.to_timestamp(1767227600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k02","object":"event","api_version":"2025-03-31.basil","created":1767227601,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k2","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k2","object":"line_item","quantity":1,"period":{"start":1767225600,"end":1769904000},"price":{"id":"price_pro","object":"price"},"proration":false,"subscription":"sub_keyed"}]},"subscription":"sub_keyed"}}}$b$, 't=1767227601,v1=70320e6a632c24685b21f0fd71f86db4c51a8fa4b474cae20893a5bb76e926ea', pg_catalog.to_timestamp(1767227601));
-- a line naming another subscription is not this invoice's to allocate
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k03","object":"event","api_version":"2025-03-31.basil","created":1767227602,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k3","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k3a","object":"line_item","quantity":1,"period":{"start":1769904000,"end":1772323200},"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false,"subscription":"sub_keyed"}}},{"id":"il_k3b","object":"line_item","quantity":1,"period":{"start":1769904000,"end":1772323200},"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false,"subscription":"sub_elsewhere"}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_keyed"}}}}}$b$, 't=1767227602,v1=a564c03d034d9159c4b88b7e24af44df005d52979cafd86d9c0a4a893365400f', pg_catalog.to_timestamp(1767227602));
SELECT * FROM pgext.webhook_apply();
SELECT l.period_key, l.amount FROM pgext.credit_lots l JOIN pgext.accounts a ON a.id = l.account_id
 WHERE a.external_id = 'keyed' ORDER BY l.id;
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'keyed';
-- a line that would allocate but names no subscription or no integer period start fails the event;
-- no other key is made up (two such invoices for one period would both allocate)
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k04","object":"event","api_version":"2025-03-31.basil","created":1767227603,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k4","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k4","object":"line_item","quantity":1,"period":{"start":1772323200,"end":1775001600},"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_keyed"}}}}}$b$, 't=1767227603,v1=adb7a5c1b8f2ba01f0d110a1196ff42c57faca6d0723f0340abc17c534965023', pg_catalog.to_timestamp(1767227603));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k05","object":"event","api_version":"2025-03-31.basil","created":1767227604,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k5","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k5","object":"line_item","quantity":1,"period":{"start":1772323200,"end":1775001600},"price":{"id":"price_pro","object":"price"},"proration":false}]},"subscription":"sub_keyed"}}}$b$, 't=1767227604,v1=cd1bd7b777d53a2696c3b2a3c6495476129f7e7f877a6bedd3901d292a8d4297', pg_catalog.to_timestamp(1767227604));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k06","object":"event","api_version":"2025-03-31.basil","created":1767227605,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k6","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k6","object":"line_item","quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false,"subscription":"sub_keyed"}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_keyed"}}}}}$b$, 't=1767227605,v1=2c39a54e0eb470997a041a38f12bdc921482b7d8482c446f763b87293f47ae17', pg_catalog.to_timestamp(1767227605));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k07","object":"event","api_version":"2025-03-31.basil","created":1767227606,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k7","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k7","object":"line_item","quantity":1,"period":{"start":1772323200.5,"end":1769904000},"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false,"subscription":"sub_keyed"}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_keyed"}}}}}$b$, 't=1767227606,v1=98e38b2ddd4e0503c1e01c001fc71db1aab48c1d4a303a9364b7bbe290e714c0', pg_catalog.to_timestamp(1767227606));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_k08","object":"event","api_version":"2025-03-31.basil","created":1767227607,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_k8","object":"invoice","customer":"cus_keyed","billing_reason":"subscription_cycle","lines":{"object":"list","data":[{"id":"il_k8","object":"line_item","quantity":1,"period":{"start":"1772323200","end":1769904000},"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},"parent":{"type":"subscription_item_details","subscription_item_details":{"proration":false,"subscription":"sub_keyed"}}}]},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_keyed"}}}}}$b$, 't=1767227607,v1=c2cab57430c50ca0aed6a2c0dbe3e08a4a66213dfa6106cb30e39bc01f60ceb3', pg_catalog.to_timestamp(1767227607));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts, last_error FROM pgext.webhook_events
 WHERE event_id BETWEEN 'evt_k04' AND 'evt_k08' ORDER BY 1;
-- after its retries each is a dead letter (last_error says why), and nothing was allocated
SET pgext.webhook_max_attempts = 2;
UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id BETWEEN 'evt_k04' AND 'evt_k08';
SELECT * FROM pgext.webhook_apply();
RESET pgext.webhook_max_attempts;
SELECT event_id, status, attempts, last_error IS NOT NULL AS has_error FROM pgext.webhook_events
 WHERE event_id BETWEEN 'evt_k04' AND 'evt_k08' ORDER BY 1;
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'keyed';

-- 12. errors while applying: transient ones (contention, resources, I/O) leave the event pending,
-- attempts unchanged, due again in 5 s; other errors count an attempt (backoff 30 s, then more);
-- a cancel, statement timeout or shutdown is re-thrown and the whole call rolls back
CREATE FUNCTION public.inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- an event settling (applied/ignored/...) raises the SQLSTATE named in its id
  IF NEW.event_id LIKE 'evt_fault_%' AND NEW.status NOT IN ('pending', 'dead') THEN
    RAISE EXCEPTION 'injected fault %', pg_catalog.split_part(NEW.event_id, '_', 3)
      USING ERRCODE = pg_catalog.split_part(NEW.event_id, '_', 3);
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER inject_fault BEFORE UPDATE ON pgext.webhook_events FOR EACH ROW EXECUTE FUNCTION public.inject_fault();
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_40001","object":"event","api_version":"2025-03-31.basil","created":1767227700,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_40001","object":"payment_intent"}}}$b$, 't=1767227700,v1=1ffcdd57ee53a68c15159f481c96a9703286d91f41fc22c2e7e10d320d5b37d6', pg_catalog.to_timestamp(1767227700));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_40P01","object":"event","api_version":"2025-03-31.basil","created":1767227701,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_40P01","object":"payment_intent"}}}$b$, 't=1767227701,v1=cb679add8c5965ff02962455bace7206c3cc438ccb62994d0f474fb7ed72e74a', pg_catalog.to_timestamp(1767227701));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_55P03","object":"event","api_version":"2025-03-31.basil","created":1767227702,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_55P03","object":"payment_intent"}}}$b$, 't=1767227702,v1=a5e1656cd64535e784f3896bc01ffc5ce93c98bb2a75007a209250e480aa5051', pg_catalog.to_timestamp(1767227702));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_53200","object":"event","api_version":"2025-03-31.basil","created":1767227703,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_53200","object":"payment_intent"}}}$b$, 't=1767227703,v1=a130fe32edc2ccab226fd1b0cf207f3f49fbcb87da2caa75691f7bde919bd27b', pg_catalog.to_timestamp(1767227703));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_53100","object":"event","api_version":"2025-03-31.basil","created":1767227704,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_53100","object":"payment_intent"}}}$b$, 't=1767227704,v1=527f2babbaf775678f9ec2ea87d215caf16f09bf95f1e71bba17939fc72954b4', pg_catalog.to_timestamp(1767227704));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_58030","object":"event","api_version":"2025-03-31.basil","created":1767227705,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_58030","object":"payment_intent"}}}$b$, 't=1767227705,v1=ea5fe23d32cba52ccbafb446769e034867442018d55d9c940be160454f922da4', pg_catalog.to_timestamp(1767227705));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_08006","object":"event","api_version":"2025-03-31.basil","created":1767227706,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_08006","object":"payment_intent"}}}$b$, 't=1767227706,v1=94bf71b67f9ca0471a60ee13c530292257826fa456db8cc72515d2e72561ee11', pg_catalog.to_timestamp(1767227706));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_22023","object":"event","api_version":"2025-03-31.basil","created":1767227707,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_22023","object":"payment_intent"}}}$b$, 't=1767227707,v1=484580cb1fa93b309d58aefa12b884833d8b50f6648326ad7ed2b09494a7ef2c', pg_catalog.to_timestamp(1767227707));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_23505","object":"event","api_version":"2025-03-31.basil","created":1767227708,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_23505","object":"payment_intent"}}}$b$, 't=1767227708,v1=08a522349e00dc8b4d7ad2e2b91eed8f7e3004cf79fb5c498d2571d1bde4dcac', pg_catalog.to_timestamp(1767227708));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_42501","object":"event","api_version":"2025-03-31.basil","created":1767227709,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_42501","object":"payment_intent"}}}$b$, 't=1767227709,v1=162cd3c8e6ca1c3822ccca9aa3fc66e5b2dc8e365a350478118912003b3b8a03', pg_catalog.to_timestamp(1767227709));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_P0002","object":"event","api_version":"2025-03-31.basil","created":1767227710,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_P0002","object":"payment_intent"}}}$b$, 't=1767227710,v1=cd8b7efb0ed1b4bc584ca738058b11dc7a8fa589c1f0a77f8ba30955fe70eff2', pg_catalog.to_timestamp(1767227710));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_XX000","object":"event","api_version":"2025-03-31.basil","created":1767227711,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_XX000","object":"payment_intent"}}}$b$, 't=1767227711,v1=1c96f3b04c82881b2b219b88f1d7dda44fd9929c4c38309e3cd56cb3ab4f6fd8', pg_catalog.to_timestamp(1767227711));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_40002","object":"event","api_version":"2025-03-31.basil","created":1767227712,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_40002","object":"payment_intent"}}}$b$, 't=1767227712,v1=d362cf6436b3d1a66e29f05c4b38a69651d5d5b64b3d0d09848c003035136d76', pg_catalog.to_timestamp(1767227712));
BEGIN;
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts, (extract(epoch FROM next_attempt_at - pg_catalog.now()))::integer AS retry_in_s,
       last_error
  FROM pgext.webhook_events WHERE event_id LIKE 'evt_fault_%' ORDER BY attempts, event_id;
COMMIT;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fz_57014","object":"event","api_version":"2025-03-31.basil","created":1767227800,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fz_57014","object":"payment_intent"}}}$b$, 't=1767227800,v1=442847e4efff9dff9363edf67b0668c1b2d505f7e19cc0c5686284046aa082c7', pg_catalog.to_timestamp(1767227800));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_57014","object":"event","api_version":"2025-03-31.basil","created":1767227801,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_57014","object":"payment_intent"}}}$b$, 't=1767227801,v1=fcdf3ecf2e1e9f3ec46fe1ddf66e36db3d3969689f7220536ed4076fe15b13da', pg_catalog.to_timestamp(1767227801));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts, last_error FROM pgext.webhook_events
 WHERE event_id IN ('evt_fz_57014', 'evt_fault_57014') ORDER BY 1;
UPDATE pgext.webhook_events SET next_attempt_at = 'infinity' WHERE event_id = 'evt_fault_57014';
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fz_57P01","object":"event","api_version":"2025-03-31.basil","created":1767227800,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fz_57P01","object":"payment_intent"}}}$b$, 't=1767227800,v1=c03d2eec5611d989fe29629323688821af1fe8e570e6e9be3727dabedae6d004', pg_catalog.to_timestamp(1767227800));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_57P01","object":"event","api_version":"2025-03-31.basil","created":1767227801,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_57P01","object":"payment_intent"}}}$b$, 't=1767227801,v1=ca92296249bddb3e0ad2b8f62164f1b997ade3b11d79f5bed302fc5cf7231133', pg_catalog.to_timestamp(1767227801));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts, last_error FROM pgext.webhook_events
 WHERE event_id IN ('evt_fz_57P01', 'evt_fault_57P01') ORDER BY 1;
UPDATE pgext.webhook_events SET next_attempt_at = 'infinity' WHERE event_id = 'evt_fault_57P01';
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fz_XX001","object":"event","api_version":"2025-03-31.basil","created":1767227800,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fz_XX001","object":"payment_intent"}}}$b$, 't=1767227800,v1=122dca5d2267264f0283203e976464c39255e397392a7a34e0fb5808fb62971a', pg_catalog.to_timestamp(1767227800));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_fault_XX001","object":"event","api_version":"2025-03-31.basil","created":1767227801,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded","data":{"object":{"id":"pi_fault_XX001","object":"payment_intent"}}}$b$, 't=1767227801,v1=15ff1ae55c854c755dc1eaba897be7e3cf4389678c291091bb2450832ce34609', pg_catalog.to_timestamp(1767227801));
SELECT * FROM pgext.webhook_apply();
SELECT event_id, status, attempts, last_error FROM pgext.webhook_events
 WHERE event_id IN ('evt_fz_XX001', 'evt_fault_XX001') ORDER BY 1;
UPDATE pgext.webhook_events SET next_attempt_at = 'infinity' WHERE event_id = 'evt_fault_XX001';
-- once the cause is gone every one of them applies
DROP TRIGGER inject_fault ON pgext.webhook_events;
DROP FUNCTION public.inject_fault();
UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id LIKE 'evt_fault_%' OR event_id LIKE 'evt_fz_%';
SELECT * FROM pgext.webhook_apply();
SELECT status, attempts, count(*) FROM pgext.webhook_events
 WHERE event_id LIKE 'evt_fault_%' OR event_id LIKE 'evt_fz_%' GROUP BY 1, 2 ORDER BY 1, 2;

-- 13. one call applies thousands of events in the memory of one: each event's memory and SPI
-- results are released after it (pg_backend_memory_contexts sampled at the 500th and the 3000th)
SELECT pgext.account_set_stripe_customer(pgext.account_create('bulk'), 'cus_bulk');
INSERT INTO pgext.webhook_events (source, event_id, type, object_id, created, livemode, payload, received_at, status)
SELECT 'stripe', 'evt_bulk_' || pg_catalog.lpad(i::text, 5, '0'), 'customer.subscription.created', 'sub_bulk_' || i,
       pg_catalog.to_timestamp(1767228600 + i), false,
       pg_catalog.jsonb_build_object('data', pg_catalog.jsonb_build_object('object', pg_catalog.jsonb_build_object(
         'id', 'sub_bulk_' || i, 'object', 'subscription', 'customer', 'cus_bulk', 'status', 'active',
         'current_period_start', 1767225600, 'current_period_end', 1769904000))),
       pg_catalog.now(), 'pending'
  FROM pg_catalog.generate_series(1, 3000) i;
CREATE TABLE public.apply_memory (event_id text, bytes bigint);
CREATE FUNCTION public.probe_memory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.event_id IN ('evt_bulk_00500', 'evt_bulk_03000') AND NEW.status = 'applied' THEN
    INSERT INTO public.apply_memory
    SELECT NEW.event_id, pg_catalog.sum(total_bytes) FROM pg_catalog.pg_backend_memory_contexts;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER probe_memory BEFORE UPDATE ON pgext.webhook_events FOR EACH ROW EXECUTE FUNCTION public.probe_memory();
SELECT * FROM pgext.webhook_apply(10000);
-- (one SPI connection for the whole call kept every result set: about 40 KB per event here)
SELECT count(*) AS samples,
       (pg_catalog.max(bytes) FILTER (WHERE event_id = 'evt_bulk_03000')
        - pg_catalog.max(bytes) FILTER (WHERE event_id = 'evt_bulk_00500')) / 2500 < 1024 AS under_1kb_per_event
  FROM public.apply_memory;
DROP TRIGGER probe_memory ON pgext.webhook_events;
DROP FUNCTION public.probe_memory();
DROP TABLE public.apply_memory;
SELECT count(*) AS bulk_subscriptions FROM pgext.stripe_subscriptions WHERE customer_id = 'cus_bulk';

-- 14. who may link which Stripe customer (account_set_stripe_customer): a customer's billing
-- history stays with its account; once an account has Stripe state only pgext_admin changes its link
SET ROLE pgext_app;
-- the app cannot unlink an account that has subscriptions or purchases, nor relink it
SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), NULL);
SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), 'cus_other');
-- an account without Stripe state: the app links, unlinks and relinks it
SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_newbie');
SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), NULL);
SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_newbie_2');
SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), NULL);
RESET ROLE;
-- an operator (pgext_admin) may unlink acme
SET ROLE pgext_admin;
SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), NULL);
SELECT pgext.account_set_stripe_customer(pgext.account_create('lifer'), NULL);
RESET ROLE;
SET ROLE pgext_app;
-- cus_acme's subscriptions and cus_lifer's purchase are recorded for acme and lifer: not linkable elsewhere
SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_acme');
SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_lifer');
-- and the app may not link acme again (it has Stripe state)
SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), 'cus_acme');
RESET ROLE;
-- a checkout for newbie paid by cus_lifer (unlinked, but its purchase is lifer's) credits newbie
-- and does not link cus_lifer to newbie
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_n01","object":"event","api_version":"2025-03-31.basil","created":1767227900,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_n1","object":"checkout.session","mode":"payment","payment_status":"paid","client_reference_id":"newbie","customer":"cus_lifer","metadata":{"price_id":"price_pack"}}}}$b$, 't=1767227900,v1=674b6e1181ce7ac7afa8881f02a9c812fc2f414033d213f815b0cd1fcbcbff65', pg_catalog.to_timestamp(1767227900));
SELECT * FROM pgext.webhook_apply();
SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = 'newbie';
-- cus_lifer now has purchases for lifer and for newbie: the app can link it to neither;
-- an operator (pgext_admin) links accounts with Stripe state, deliberately
SET ROLE pgext_app;
SELECT pgext.account_set_stripe_customer(pgext.account_create('lifer'), 'cus_lifer');
RESET ROLE;
SET ROLE pgext_admin;
SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), 'cus_acme');
SELECT pgext.account_set_stripe_customer(pgext.account_create('lifer'), 'cus_lifer');
RESET ROLE;
SELECT external_id, stripe_customer_id FROM pgext.accounts WHERE external_id IN ('acme', 'lifer', 'newbie') ORDER BY 1;

-- the ledger stays consistent and every change was announced
SELECT count(*) AS audit_rows FROM pgext.credit_audit();
SELECT count(*) AS verify_rows FROM pgext.credit_verify();
SELECT kind, count(*) FROM pgext.outbox GROUP BY 1 ORDER BY 1;
-- Leave a fresh extension behind: the tests that run after this one (in
-- alphabetical order) count ids from 1.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
