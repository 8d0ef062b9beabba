-- Webhook intake: signatures, rejections, dedup, generic HMAC sources.
-- Every signature literal below was computed at authoring time with the
-- openssl command line, independently of pgext, e.g.
--   printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret"
-- (helper: test/vectors/stripe_sig.py, generator: test/vectors/gen_webhooks_sql.py).
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;

SELECT pgext.secret_set('webhook:stripe', 'whsec_test_current') IS NOT NULL AS stored;
SELECT pgext.secret_delete('webhook:stripe:previous') IS NOT NULL AS cleared;

-- valid signature: accepted, then the same delivery again is a duplicate
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_1","object":"customer"}}}$b$, 't=1767225600,v1=a5a12a996a176d9b1ef87a16e658894d6d6b5ad4a8bd474f35418782a2213832', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_1","object":"customer"}}}$b$, 't=1767225600,v1=a5a12a996a176d9b1ef87a16e658894d6d6b5ad4a8bd474f35418782a2213832', pg_catalog.to_timestamp(1767225600));
-- tampered body (one byte changed after signing)
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.deleted","data":{"object":{"id":"cus_sig_1","object":"customer"}}}$b$, 't=1767225600,v1=a5a12a996a176d9b1ef87a16e658894d6d6b5ad4a8bd474f35418782a2213832', pg_catalog.to_timestamp(1767225600));
-- tampered header: timestamp changed, signature kept
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_1","object":"customer"}}}$b$, 't=1767225601,v1=a5a12a996a176d9b1ef87a16e658894d6d6b5ad4a8bd474f35418782a2213832', pg_catalog.to_timestamp(1767225600));
-- tampered header: signature changed in one hex digit
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_1","object":"customer"}}}$b$, 't=1767225600,v1=a5a12a996a176d9b1ef87a16e658894d6d6b5ad4a8bd474f35418782a2213830', pg_catalog.to_timestamp(1767225600));
-- wrong secret
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_2","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_2","object":"customer"}}}$b$, 't=1767225600,v1=49e5d43c2df52e46703f4df74c694ee5a463d74fd36e64e7fb7eacdb3a3db8ea', pg_catalog.to_timestamp(1767225600));
-- v0 only (test-mode decoy scheme, even with the right HMAC): never accepted
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_2","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_2","object":"customer"}}}$b$, 't=1767225600,v0=6ac3f089f2fd079305342a998aebff6d7498742e15246a6f64e367459abcdaa7', pg_catalog.to_timestamp(1767225600));
-- v0 next to a valid v1 is ignored; unknown schemes too
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_2","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_2","object":"customer"}}}$b$, 't=1767225600,v0=0000000000000000000000000000000000000000000000000000000000000000,v1=6ac3f089f2fd079305342a998aebff6d7498742e15246a6f64e367459abcdaa7,v9=zz', pg_catalog.to_timestamp(1767225600));

-- rotation: two v1 signatures (new secret and old one), either may match
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_3","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_3","object":"customer"}}}$b$, 't=1767225600,v1=1166d14e2a67ef9bf48cae27976f7b958538a630b21ed98d7e1750102ee96d71,v1=b7a970d3011c426b83e9d7b9b7c51922f78f0a9a7617f31ff03bddcdff9a8a7e', pg_catalog.to_timestamp(1767225600));
-- rotation: a delivery signed only with the previous secret is accepted while it is stored
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_4","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_4","object":"customer"}}}$b$, 't=1767225600,v1=76756ec4d90f10e27ee7e48f95b82a21c8f31d8cdbbcf07f2d3699adec441553', pg_catalog.to_timestamp(1767225600));
SELECT pgext.secret_set('webhook:stripe:previous', 'whsec_test_previous') IS NOT NULL AS stored;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_4","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_4","object":"customer"}}}$b$, 't=1767225600,v1=76756ec4d90f10e27ee7e48f95b82a21c8f31d8cdbbcf07f2d3699adec441553', pg_catalog.to_timestamp(1767225600));
SELECT pgext.secret_delete('webhook:stripe:previous') AS removed;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_5","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_5","object":"customer"}}}$b$, 't=1767225600,v1=6f23fd95e332e6324b364d98268e4a0f5aa2e2afc993c19ddc262a1b0b995917', pg_catalog.to_timestamp(1767225600));

-- tolerance (default 300 s) applies to old and to future timestamps
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_6","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_6","object":"customer"}}}$b$, 't=1767225600,v1=46e3c3f90fbca6452f912aff54d52daa3d4cf09bf4c721514a014ac4bb90cdd0', pg_catalog.to_timestamp(1767225901));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_6","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_6","object":"customer"}}}$b$, 't=1767225600,v1=46e3c3f90fbca6452f912aff54d52daa3d4cf09bf4c721514a014ac4bb90cdd0', pg_catalog.to_timestamp(1767225299));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_6","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_6","object":"customer"}}}$b$, 't=1767225600,v1=46e3c3f90fbca6452f912aff54d52daa3d4cf09bf4c721514a014ac4bb90cdd0', pg_catalog.to_timestamp(1767225900));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_7","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_7","object":"customer"}}}$b$, 't=1767225600,v1=086f729c3c25d37a7a309dee9b818c1be9fdd28f7e9cf3b6b4ca906c322362be', pg_catalog.to_timestamp(1767225300));
SET pgext.webhook_tolerance = '10s';
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_8","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_8","object":"customer"}}}$b$, 't=1767225600,v1=0fb0e8ef2df123beec5b81409aed37c6a4b95524d02d6bf170ddf52ee678e8c6', pg_catalog.to_timestamp(1767225611));
RESET pgext.webhook_tolerance;

-- received_at: only a superuser (tests) may pass an arbitrary arrival time; an app role
-- only one within 5 s of now(), so it cannot switch the replay window off or shorten retention
SET ROLE pgext_app;
-- a delivery signed at t=5 (1970) with received_at = epoch + 5 s: refused, nothing written
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_epoch_1","object":"event","api_version":"2025-03-31.basil","created":5,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_epoch","object":"customer"}}}$b$, 't=5,v1=8aa8e7036b8c0f09637e44abe377d202ad8bf9b74ab5d0667de399155e9cc029', pg_catalog.to_timestamp(5));
-- the same delivery measured against the server clock is stale
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_epoch_1","object":"event","api_version":"2025-03-31.basil","created":5,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_epoch","object":"customer"}}}$b$, 't=5,v1=8aa8e7036b8c0f09637e44abe377d202ad8bf9b74ab5d0667de399155e9cc029');
-- an earlier received_at would make retention forget the dedup row early: refused
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_epoch_1","object":"event","api_version":"2025-03-31.basil","created":5,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_epoch","object":"customer"}}}$b$, 't=5,v1=8aa8e7036b8c0f09637e44abe377d202ad8bf9b74ab5d0667de399155e9cc029', pg_catalog.now() - interval '40 days');
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_epoch_1","object":"event","api_version":"2025-03-31.basil","created":5,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_epoch","object":"customer"}}}$b$, 't=5,v1=8aa8e7036b8c0f09637e44abe377d202ad8bf9b74ab5d0667de399155e9cc029', 'infinity');
-- within 5 s of now() is taken as given (this delivery is signed now, with pgcrypto's hmac())
BEGIN;
SELECT w.status, w.event_id FROM (SELECT extract(epoch FROM pg_catalog.now())::bigint AS t) n,
  pgext.webhook_ingest('stripe', $b${"id":"evt_now_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_now","object":"customer"}}}$b$,
    't=' || n.t || ',v1=' || pg_catalog.encode(public.hmac(n.t || '.' || $b${"id":"evt_now_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_now","object":"customer"}}}$b$, 'whsec_test_current', 'sha256'), 'hex'),
    pg_catalog.now() + interval '3 seconds') w;
RESET ROLE;
SELECT event_id, received_at - pg_catalog.now() AS received_after_now FROM pgext.webhook_events
 WHERE event_id IN ('evt_epoch_1', 'evt_now_1') ORDER BY 1;
COMMIT;
SELECT reason, detail FROM pgext.webhook_rejections WHERE received_at > pg_catalog.now() - interval '1 day';
-- a superuser may pass any finite time (that is how these tests replay 2026-01-01); never infinity
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_epoch_1","object":"event","api_version":"2025-03-31.basil","created":5,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_epoch","object":"customer"}}}$b$, 't=5,v1=8aa8e7036b8c0f09637e44abe377d202ad8bf9b74ab5d0667de399155e9cc029', '-infinity');
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_epoch_1","object":"event","api_version":"2025-03-31.basil","created":5,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_epoch","object":"customer"}}}$b$, 't=5,v1=8aa8e7036b8c0f09637e44abe377d202ad8bf9b74ab5d0667de399155e9cc029', 'infinity');
SELECT count(*) AS infinite_rows FROM pgext.webhook_events WHERE NOT pg_catalog.isfinite(received_at);

-- missing parts and garbage: bad_signature, never an exception
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 'v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, '', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=abc,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,t=1767225600,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439d', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600;v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 'garbage', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, ',,,', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, '===', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, NULL, pg_catalog.to_timestamp(1767225600));
SELECT status FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5,v1=abababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab', pg_catalog.to_timestamp(1767225600));
-- the header is not case- or space-sensitive beyond Stripe's format: spaces are trimmed
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600, v1=CA20C9797954C269E90762C5C4694B8F3E4F3DA5FD2960C8287CF8E678439DB5', pg_catalog.to_timestamp(1767225600));

-- malformed bodies (correctly signed): status malformed, no event id
-- nested deeper than the parser allows (class 54, not 22): still malformed, not an exception;
-- signature: printf '%s.%s' 1767225600 "$body" | openssl dgst -sha256 -hmac whsec_test_current
SELECT status, event_id FROM pgext.webhook_ingest('stripe', repeat('[', 100000) || repeat(']', 100000), 't=1767225600,v1=f8bd89160eb29616c54e72f27c7baf8fd33066640a0bb453630530545c2c8a4c', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b$not json$b$, 't=1767225600,v1=baba513b3256316477ceb90f83209971e46267db43e01c02ec012e6fb3d85339', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b$[1,2,3]$b$, 't=1767225600,v1=7effe6ee67e1e079275782c48758dca0c2cf83c8dfed84de5df5f1679a2d370c', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m1","created":1767225600,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=9512a80de842b7f2c21c5fbedc3688f7fd1b60b221f60998c5293a1fb8b6eb0b', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"type":"ping","created":1767225600,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=f43f4e91e64810d45797c504c6de4abef5bae8c9066c1a90d8eb6d40ded76014', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m2","type":"ping","livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=7eb14e5d6f2e8e4d42892d5d04a0abbd39840b711ccd9b6d84b4a5a29bad8fbd', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m3","type":"ping","created":1767225600,"livemode":"no","data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=1ac22f75b6f36c4f1aa53084b02557dfb607491804a50a2acba5b02922913a4f', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m4","type":"ping","created":1767225600,"livemode":false}$b$, 't=1767225600,v1=03bb9c38a6744a29ba5e7b3dd9f19e65430215c3c019f0f168497d7fdcf16339', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m5","type":"ping","created":1767225600,"livemode":false,"data":{"object":{"id":"x","n":1e999999}}}$b$, 't=1767225600,v1=50d7cbb63ab2a9caf725f8d66c3a63450ef8383a2c0b07b488d8190e17ddce3d', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m6","type":"ping","created":1767225600,"livemode":false,"data":{"object":{"id":"\u0000"}}}$b$, 't=1767225600,v1=01b9700b4838aa527a042581ce6283feb09c9afeff034fdda2638064fa0d907b', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"","type":"ping","created":1767225600,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=e989db286b3ebdf5ad2e250e4c9dd18a76009f5597c4072bac7476d90ac00c81', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_m7","type":"ping","created":1767225600,"livemode":false$b$, 't=1767225600,v1=20b290068fc308b13d09c7e838337912919df0a0169d8583259e28289c4214a6', pg_catalog.to_timestamp(1767225600));
-- Stripe's envelope is typed: livemode a JSON boolean, id and type JSON strings,
-- created a JSON integer (unix seconds, 1970 to 9999); anything else is malformed
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t1","type":"ping","created":1767225600,"livemode":"false","data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=84b2d625f13141bf9cdc71ef5213c5df128e821e9626cc421c40cdecda46ff53', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t2","type":"ping","created":1767225600,"livemode":0,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=3e901d7bbc72758133976506c02577f9816e2de04746bcd1d3142aa7a16732a2', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t3","type":"ping","created":1767225600,"livemode":null,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=7fc1fe01cbde33da6979b362938dd157690bbfaf1acc6e55da5abcaf7a35adc2', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":12345,"type":"ping","created":1767225600,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=03db54c304a6bc8797133e09e0607fdc4e46705d7401ec70f40eb70124f2ab86', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t5","type":7,"created":1767225600,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=df033a998885e54e6629e019ab84d5c176ce8f83d25dc6da21a9809f4b385efa', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t6","type":"ping","created":"1767225600","livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=66b8eed88e9038ce073ec035236073238a9d870688e75577381d73e85b3ccbaa', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t7","type":"ping","created":1767225600.5,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=15b3f0766e863f4be0090aa43fbaf522d28472d2dbd735efa3cfe326efbac0e7', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t8","type":"ping","created":0,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=0f3d4e7d0c82e3ab7f8131dbffdcd57ac33316078061bd979f8545f3fd71d0d8', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t9","type":"ping","created":-1767225600,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=24b03ee593ea35f00c3d5fc66a531f1aa83583a0e85402d064575cec7f6ac13c', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t10","type":"ping","created":1e20,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=45fda8ea5a9e29d1e033a53f372893523d145271f86ee1efc7ce90b179fe6a9a', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_t11","type":"ping","created":253402300800,"livemode":false,"data":{"object":{"id":"x"}}}$b$, 't=1767225600,v1=9d8d772ca9eb2264f22472cc24a8c6837d28f44be092c55fac6db6b86000d5e4', pg_catalog.to_timestamp(1767225600));
-- an integral number written with a zero fraction is the same integer
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_typed_1","type":"ping","created":1767225600.000,"livemode":false,"data":{"object":{"id":"obj_typed_1"}}}$b$, 't=1767225600,v1=5eb7cdcccad2ce52ab715e3213e21e3ff2b3e12954ae2d7fa3aec7327b7d088a', pg_catalog.to_timestamp(1767225600));
SELECT status FROM pgext.webhook_ingest('stripe', NULL, 't=1767225600,v1=1cbfd755df7448357c940b49cc7888e8734ab5cece3b50022120f25eedca8174', pg_catalog.to_timestamp(1767225600));
-- bodies over 1 MB are refused before any HMAC or parsing work
SELECT status FROM pgext.webhook_ingest('stripe', pg_catalog.repeat('x', 1048577), 't=1767225600,v1=3a83fe653c0cd54b48d0101205280d19429b1bcca460e0ac10667cf6fddb4dfa', pg_catalog.to_timestamp(1767225600));

-- livemode: a live event in test mode (pgext.stripe_livemode = off) never lands
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_live_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":true,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":{"id":"in_live_1","object":"invoice","customer":"cus_x"}}}$b$, 't=1767225600,v1=3cf68711c80da08bf25ec99ef7925722848f45ecda26b70d48fd24c116b2325e', pg_catalog.to_timestamp(1767225600));
SELECT count(*) AS live_events FROM pgext.webhook_events WHERE event_id = 'evt_live_1';

-- rejections are recorded without payload, signature or secret
SELECT reason, detail, count(*) FROM pgext.webhook_rejections GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS leaked FROM pgext.webhook_rejections r WHERE r::text LIKE '%ca20c9797954c269%' OR r::text LIKE '%whsec%' OR r::text LIKE '%cus_sig%';
SELECT source, reason, rejections FROM pgext.webhook_rejection_counts('100 years');

-- only what processing needs is stored: no card data, emails or addresses
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_strip_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed","data":{"object":{"id":"cs_strip_1","object":"checkout.session","mode":"payment","payment_status":"paid","customer":"cus_strip","client_reference_id":"strip-acct","customer_details":{"email":"jane@example.com","address":{"line1":"1 Main St"},"name":"Jane"},"payment_method_details":{"card":{"last4":"4242","exp_month":12,"fingerprint":"Xt5EWLLDS7FJjR1c"}},"metadata":{"price_id":"price_pack"},"amount_total":1000}}}$b$, 't=1767225600,v1=bba92acbce5e79f5264b6d2afdce039741ad6005b93c8ea8354dcb43cd71233d', pg_catalog.to_timestamp(1767225600));
SELECT payload #>> '{data,object,client_reference_id}' AS ref, payload #>> '{data,object,metadata,price_id}' AS price,
       payload::text LIKE '%4242%' AS has_card, payload::text LIKE '%@%' AS has_email,
       payload::text LIKE '%Main St%' AS has_address, payload::text LIKE '%Jane%' AS has_name
  FROM pgext.webhook_events WHERE event_id = 'evt_strip_1';
SELECT event_id, type, object_id, status, created = pg_catalog.to_timestamp(1767225600) AS created_ok FROM pgext.webhook_events WHERE source = 'stripe' ORDER BY event_id;

-- a missing signing secret is a configuration error (answer 5xx so Stripe retries)
SELECT pgext.secret_delete('webhook:stripe') AS removed;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT pgext.secret_set('webhook:stripe', 'whsec_test_current') IS NOT NULL AS stored;
-- unknown source and NULL source are errors too
SELECT status, event_id FROM pgext.webhook_ingest('nope', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
SELECT * FROM pgext.webhook_ingest(NULL, '{}', 'x');

-- generic HMAC sources: plain hex with a prefix (GitHub/n8n style)
SELECT pgext.secret_set('webhook:n8n', 'n8n-signing-key') IS NOT NULL AS stored;
SELECT pgext.webhook_source_set('n8n', 'webhook:n8n', prefix => 'sha256=');
SELECT status, event_id FROM pgext.webhook_ingest('n8n', $b${"id":"run_1","type":"workflow.finished","result":{"ok":true}}$b$, 'sha256=e7c79627664472d781ea769ba2cc49b7e9902b40ccda8015c8ea255824a18b06', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('n8n', $b${"id":"run_1","type":"workflow.finished","result":{"ok":true}}$b$, 'sha256=e7c79627664472d781ea769ba2cc49b7e9902b40ccda8015c8ea255824a18b06', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('n8n', $b${"id":"run_1","type":"workflow.finished","result":{"ok":true}}$b$, 'e7c79627664472d781ea769ba2cc49b7e9902b40ccda8015c8ea255824a18b06', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('n8n', $b${"id":"run_1","type":"workflow.finished","result":{"ok":true}}$b$, 'sha256=11752fb4e68e57abbba586421be7c17bc4322394cf4a803a1eba728b385f0be3', pg_catalog.to_timestamp(1767225600));
-- sha512, base64, custom id/type keys
SELECT pgext.secret_set('webhook:chat', 'chat-key') IS NOT NULL AS stored;
SELECT pgext.webhook_source_set('chat', 'webhook:chat', encoding => 'base64', algorithm => 'sha512', id_key => 'message_id', type_key => 'kind');
SELECT status, event_id FROM pgext.webhook_ingest('chat', $b${"message_id":"m-17","kind":"message.received","text":"hi"}$b$, 'NC7Lu0lp2ZRX7WzJdCpKvVgiDPIFR4G90cRYjQ0+KHkgyk9y0JyoAZ6L/zQgxaL7L8QRAP/fe2P7Oh8H5fCvxg==', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('chat', $b${"message_id":"m-17","kind":"message.received","text":"hi"}$b$, '7JLcIz9yz+7y6d1Rv2SySMcAUq9U8hgNpFJhwd98l95Sn9yC5B4cNk6vZZ2kaXZQNnSoFa+PTdwx7NC41+MpYw==', pg_catalog.to_timestamp(1767225600));
-- timestamped layout with its own scheme name and tolerance
SELECT pgext.secret_set('webhook:sms', 'sms-key') IS NOT NULL AS stored;
SELECT pgext.webhook_source_set('sms', 'webhook:sms', layout => 'timestamped', encoding => 'base64', scheme => 'sig', tolerance => '60 seconds');
SELECT status, event_id FROM pgext.webhook_ingest('sms', $b${"id":"sms_1","type":"sms.delivered"}$b$, 't=1767225600,sig=xtaM2e7SxLBylxxgwiAFWu6r9VOvsFWjiXm8/nvmCV0=', pg_catalog.to_timestamp(1767225661));
SELECT status, event_id FROM pgext.webhook_ingest('sms', $b${"id":"sms_1","type":"sms.delivered"}$b$, 't=1767225600,sig=xtaM2e7SxLBylxxgwiAFWu6r9VOvsFWjiXm8/nvmCV0=', pg_catalog.to_timestamp(1767225660));
SELECT status, event_id FROM pgext.webhook_ingest('sms', $b${"id":"sms_1","type":"sms.delivered"}$b$, 'sig=xtaM2e7SxLBylxxgwiAFWu6r9VOvsFWjiXm8/nvmCV0=', pg_catalog.to_timestamp(1767225600));
SELECT source, event_id, type, status FROM pgext.webhook_events WHERE source <> 'stripe' ORDER BY 1, 2;
-- apps claim their events once
SELECT event_id, type, payload -> 'result' AS result FROM pgext.webhook_claim('n8n');
SELECT count(*) AS again FROM pgext.webhook_claim('n8n');
-- configuration errors
SELECT pgext.webhook_source_set('stripe', 'webhook:x');
SELECT pgext.webhook_source_set('Bad Name', 'webhook:x');
SELECT pgext.webhook_source_set('x', '');
SELECT pgext.webhook_source_set('x', 'webhook:x', layout => 'json');
SELECT pgext.webhook_source_set('x', 'webhook:x', encoding => 'base32');
SELECT pgext.webhook_source_set('x', 'webhook:x', algorithm => 'md5');
SELECT pgext.webhook_source_set('x', 'webhook:x', tolerance => '5 minutes');
-- bad inputs (issue 13): no huge or control-character settings; a message
-- shows at most 64 characters of a rejected value
SELECT pgext.webhook_source_set('x', repeat('s', 256));
SELECT pgext.webhook_source_set('x', E'webhook:x\n');
SELECT pgext.webhook_source_set('x', 'webhook:x', prefix => repeat('p', 65));
SELECT pgext.webhook_source_set('x', 'webhook:x', id_key => '');
SELECT pgext.webhook_source_set('x', 'webhook:x', type_key => repeat('t', 256));
SELECT pgext.webhook_source_set('x', 'webhook:x', scheme => 'v 1');
SELECT pgext.webhook_source_set('x', 'webhook:x', layout => 'timestamped', tolerance => '0');
SELECT pgext.webhook_source_set('x', 'webhook:x', layout => 'timestamped', tolerance => '178000000 years');
SELECT pgext.webhook_source_set(repeat('N', 100000), 'webhook:x');
SELECT pgext.webhook_source_set('x', 'webhook:x', layout => repeat('l', 100000));
SELECT pgext.webhook_replay('stripe', repeat('e', 100000));
SELECT pgext.webhook_ingest(repeat('s', 100000), '{}', 'sig');
SELECT count(*) AS stored FROM pgext.webhook_sources WHERE name = 'x';
SELECT pgext.webhook_source_remove('sms') AS removed, pgext.webhook_source_remove('sms') AS again;
SELECT status, event_id FROM pgext.webhook_ingest('sms', $b${"id":"sms_1","type":"sms.delivered"}$b$, 't=1767225600,sig=xtaM2e7SxLBylxxgwiAFWu6r9VOvsFWjiXm8/nvmCV0=', pg_catalog.to_timestamp(1767225600));

-- permissions: applications (pgext_app) ingest and apply; nobody else can call in
CREATE ROLE webhook_outsider;
SET ROLE webhook_outsider;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_9","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_9","object":"customer"}}}$b$, 't=1767225600,v1=ca20c9797954c269e90762c5c4694b8f3e4f3da5fd2960c8287cf8e678439db5', pg_catalog.to_timestamp(1767225600));
RESET ROLE;
SET ROLE pgext_app;
SELECT w.status, w.event_id FROM (SELECT extract(epoch FROM pg_catalog.now())::bigint AS t) n,
  pgext.webhook_ingest('stripe', $b${"id":"evt_role_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_role_1","object":"customer"}}}$b$,
    't=' || n.t || ',v1=' || pg_catalog.encode(public.hmac(n.t || '.' || $b${"id":"evt_role_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_role_1","object":"customer"}}}$b$, 'whsec_test_current', 'sha256'), 'hex')) w;
SELECT count(*) AS rows_visible FROM pgext.webhook_events;
SELECT pgext.webhook_replay_dead();
RESET ROLE;
DROP ROLE webhook_outsider;

-- retention: payloads of settled events go after pgext.webhook_payload_retention,
-- event ids after pgext.webhook_dedup_retention (at least 4 days)
SET pgext.webhook_dedup_retention = '1 day';
SELECT * FROM pgext.webhook_apply(1000);
SET pgext.webhook_payload_retention = '1h';
SELECT * FROM pgext.webhook_retention(pg_catalog.to_timestamp(1767229501));
SELECT status, count(*) FILTER (WHERE payload IS NULL) AS dropped, count(*) FILTER (WHERE payload IS NOT NULL) AS kept FROM pgext.webhook_events GROUP BY 1 ORDER BY 1;
SELECT * FROM pgext.webhook_retention(pg_catalog.to_timestamp(1767229501));
-- the event id is still remembered: a late retry stays a duplicate
SELECT status, event_id FROM pgext.webhook_ingest('stripe', $b${"id":"evt_sig_1","object":"event","api_version":"2025-03-31.basil","created":1767225600,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created","data":{"object":{"id":"cus_sig_1","object":"customer"}}}$b$, 't=1767225600,v1=a5a12a996a176d9b1ef87a16e658894d6d6b5ad4a8bd474f35418782a2213832', pg_catalog.to_timestamp(1767225600));
RESET pgext.webhook_payload_retention;
SELECT * FROM pgext.webhook_retention(pg_catalog.to_timestamp(1769817901));
SELECT status, count(*) FROM pgext.webhook_events GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rejections_left FROM pgext.webhook_rejections;

-- Signing key cache (src/webhooks/signing.c, issue 14): each backend keeps the
-- HMAC keyed with the current secret, and must never serve it once the
-- secret's row changed (set, rotation, rewrap, delete, a rollback).
-- Signatures made here with pgcrypto's hmac().
SELECT pgext.secret_set('webhook:stripe', 'whsec_cache_one') IS NOT NULL AS stored;
\set cbody1 '{"id":"evt_cache_1","object":"event","created":1767225600,"livemode":false,"type":"customer.created","data":{"object":{"id":"cus_cache_1","object":"customer"}}}'
\set cbody2 '{"id":"evt_cache_2","object":"event","created":1767225600,"livemode":false,"type":"customer.created","data":{"object":{"id":"cus_cache_2","object":"customer"}}}'
SELECT 't=1767225600,v1=' || pg_catalog.encode(public.hmac('1767225600.' || :'cbody1', 'whsec_cache_one', 'sha256'), 'hex') AS c1_one,
       't=1767225600,v1=' || pg_catalog.encode(public.hmac('1767225600.' || :'cbody2', 'whsec_cache_one', 'sha256'), 'hex') AS c2_one,
       't=1767225600,v1=' || pg_catalog.encode(public.hmac('1767225600.' || :'cbody2', 'whsec_cache_two', 'sha256'), 'hex') AS c2_two \gset
-- ingest ok (the key is now cached), then a new secret: the old signature is refused
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody1', :'c1_one', pg_catalog.to_timestamp(1767225600));
SELECT pgext.secret_set('webhook:stripe', 'whsec_cache_two') IS NOT NULL AS stored;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_one', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
-- inside one transaction, then rolled back: the old secret is back in force
BEGIN;
SELECT pgext.secret_set('webhook:stripe', 'whsec_cache_one') IS NOT NULL AS stored;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_one', pg_catalog.to_timestamp(1767225600));
ROLLBACK;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_one', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
-- deleted: a configuration error, not a stale key
SELECT pgext.secret_delete('webhook:stripe') AS removed;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
-- expired: the store's error, not a stale key
SELECT pgext.secret_set('webhook:stripe', 'whsec_cache_two', expires_at => pg_catalog.now() + '1 hour') IS NOT NULL AS stored;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
UPDATE pgext.secrets SET expires_at = pg_catalog.now() - interval '1 second' WHERE name = 'webhook:stripe' AND account_id IS NULL;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
-- a new session: the same
\c
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT pgext.secret_set('webhook:stripe', 'whsec_cache_one') IS NOT NULL AS stored;
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_two', pg_catalog.to_timestamp(1767225600));
SELECT status, event_id FROM pgext.webhook_ingest('stripe', :'cbody2', :'c2_one', pg_catalog.to_timestamp(1767225600));
SELECT pgext.secret_set('webhook:stripe', 'whsec_test_current') IS NOT NULL AS stored;
-- settle the two events (tests after this one share the database)
SELECT applied, ignored FROM pgext.webhook_apply(1000);

-- Bodies are parsed without a subtransaction (src/webhooks/jsonparse.c) into
-- the very jsonb jsonb_in makes; what only jsonb_in can decide (deep nesting,
-- numbers beyond numeric's range) goes through jsonb_in in a subtransaction.
-- A generic source stores the whole body: compare it with jsonb_in's value.
CREATE TEMP TABLE jp_bodies (n int, body text);
INSERT INTO jp_bodies VALUES
  (1, '{"id":"jp_1","type":"t","a":[1,2.50,-0.0,1e3,1E-7,true,false,null,"\u00e9\n\"x\""],"dup":1,"dup":2,"nested":{"b":{"c":[{},[]]}},"big":123456789012345678901234567890}'),
  (2, '{"id":"jp_2","type":"t","n":1e5000}'),
  (3, '{"id":"jp_3","type":"t","n":-1.5e-999,"m":9e999}'),
  (4, '{"id":"jp_4","type":"t","d":' || pg_catalog.repeat('[', 1200) || pg_catalog.repeat(']', 1200) || '}'),
  (5, '{"id":"jp_5","type":"t","s":"\u0000"}'),
  (6, '{"id":"jp_6","type":"t",}'),
  (7, '"jp_7"'),
  (8, '{"id":"jp_8","type":"t","x":"\ud83d\ude00","y":"\ud83d"}'),
  (9, '{"id":"jp_9","type":"t","x":"\ud83d\ude00 {[ ", "e":{}}'),
  (10, ' [1, {"id":"jp_10"}] ');
SELECT j.n, w.status, w.event_id
  FROM jp_bodies j,
       LATERAL pgext.webhook_ingest('n8n', j.body, 'sha256=' || pg_catalog.encode(public.hmac(j.body, 'n8n-signing-key', 'sha256'), 'hex'),
                                    pg_catalog.to_timestamp(1767225600)) w
 ORDER BY j.n;
SELECT j.n, e.payload = j.body::jsonb AS same_as_jsonb_in
  FROM jp_bodies j JOIN pgext.webhook_events e ON e.source = 'n8n' AND e.event_id = 'jp_' || j.n
 ORDER BY j.n;
