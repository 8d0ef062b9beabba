"""Writes sql/webhooks.sql: signature verification, rejections, generic sources.
Run from the repository root: python3 test/vectors/gen_webhooks_sql.py"""
from stripe_sig import hmac_hex, hmac_b64, stripe_header, event, q, ingest

CUR, OLD, WRONG = "whsec_test_current", "whsec_test_previous", "whsec_wrong"
T = 1767225600  # 2026-01-01 00:00:00 UTC
out = []
w = out.append


def ingest_now(body, received=None):
    """SQL ingesting body signed at now() (as a role that may not pass another received_at):
    the signature is computed in SQL by pgcrypto's hmac(), independently of pgext."""
    return ("""SELECT w.status, w.event_id FROM (SELECT extract(epoch FROM pg_catalog.now())::bigint AS t) n,
  pgext.webhook_ingest('stripe', %s,
    't=' || n.t || ',v1=' || pg_catalog.encode(public.hmac(n.t || '.' || %s, '%s', 'sha256'), 'hex')%s) w;"""
            % (q(body), q(body), CUR, "" if received is None else ",\n    " + received))

w("""-- Webhook intake: signatures, rejections, dedup, generic HMAC sources.
-- Every signature literal below was computed at authoring time with the
-- openssl command line, independently of pgext, e.g.
--   printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret"
-- (helper: test/vectors/stripe_sig.py, generator: test/vectors/gen_webhooks_sql.py).
\\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
""")
w("""SELECT pgext.secret_set('webhook:stripe', '%s') IS NOT NULL AS stored;
SELECT pgext.secret_delete('webhook:stripe:previous') IS NOT NULL AS cleared;
""" % CUR)

body = event("evt_sig_1", "customer.created", T, {"id": "cus_sig_1", "object": "customer"})
w("-- valid signature: accepted, then the same delivery again is a duplicate")
w(ingest(CUR, T, body))
w(ingest(CUR, T, body))
w("-- tampered body (one byte changed after signing)")
w(ingest(CUR, T, body, header=stripe_header(CUR, T, body)).replace('"customer.created"', '"customer.deleted"', 1))
w("-- tampered header: timestamp changed, signature kept")
sig = hmac_hex(CUR, "%d.%s" % (T, body))
w(ingest(CUR, T, body, header="t=%d,v1=%s" % (T + 1, sig)))
w("-- tampered header: signature changed in one hex digit")
bad = sig[:-1] + ("0" if sig[-1] != "0" else "1")
w(ingest(CUR, T, body, header="t=%d,v1=%s" % (T, bad)))
b2 = event("evt_sig_2", "customer.created", T, {"id": "cus_sig_2", "object": "customer"})
w("-- wrong secret")
w(ingest(WRONG, T, b2, header=stripe_header(WRONG, T, b2)))
w("-- v0 only (test-mode decoy scheme, even with the right HMAC): never accepted")
w(ingest(CUR, T, b2, header="t=%d,v0=%s" % (T, hmac_hex(CUR, "%d.%s" % (T, b2)))))
w("-- v0 next to a valid v1 is ignored; unknown schemes too")
w(ingest(CUR, T, b2, header="t=%d,v0=%s,v1=%s,v9=zz" % (T, "00" * 32, hmac_hex(CUR, "%d.%s" % (T, b2)))))

w("\n-- rotation: two v1 signatures (new secret and old one), either may match")
b3 = event("evt_sig_3", "customer.created", T, {"id": "cus_sig_3", "object": "customer"})
w(ingest(CUR, T, b3, header="t=%d,v1=%s,v1=%s" % (T, hmac_hex(OLD, "%d.%s" % (T, b3)), hmac_hex(CUR, "%d.%s" % (T, b3)))))
w("-- rotation: a delivery signed only with the previous secret is accepted while it is stored")
b4 = event("evt_sig_4", "customer.created", T, {"id": "cus_sig_4", "object": "customer"})
w(ingest(OLD, T, b4, header=stripe_header(OLD, T, b4)))
w("SELECT pgext.secret_set('webhook:stripe:previous', '%s') IS NOT NULL AS stored;" % OLD)
w(ingest(OLD, T, b4, header=stripe_header(OLD, T, b4)))
w("SELECT pgext.secret_delete('webhook:stripe:previous') AS removed;")
b5 = event("evt_sig_5", "customer.created", T, {"id": "cus_sig_5", "object": "customer"})
w(ingest(OLD, T, b5, header=stripe_header(OLD, T, b5)))

w("\n-- tolerance (default 300 s) applies to old and to future timestamps")
b6 = event("evt_sig_6", "customer.created", T, {"id": "cus_sig_6", "object": "customer"})
w(ingest(CUR, T, b6, received=T + 301))
w(ingest(CUR, T, b6, received=T - 301))
w(ingest(CUR, T, b6, received=T + 300))
b7 = event("evt_sig_7", "customer.created", T, {"id": "cus_sig_7", "object": "customer"})
w(ingest(CUR, T, b7, received=T - 300))
w("SET pgext.webhook_tolerance = '10s';")
b8 = event("evt_sig_8", "customer.created", T, {"id": "cus_sig_8", "object": "customer"})
w(ingest(CUR, T, b8, received=T + 11))
w("RESET pgext.webhook_tolerance;")

w("\n-- received_at: only a superuser (tests) may pass an arbitrary arrival time; an app role")
w("-- only one within 5 s of now(), so it cannot switch the replay window off or shorten retention")
b_epoch = event("evt_epoch_1", "customer.created", 5, {"id": "cus_epoch", "object": "customer"})
h_epoch = stripe_header(CUR, 5, b_epoch)
w("SET ROLE pgext_app;")
w("-- a delivery signed at t=5 (1970) with received_at = epoch + 5 s: refused, nothing written")
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s', pg_catalog.to_timestamp(5));" % (q(b_epoch), h_epoch))
w("-- the same delivery measured against the server clock is stale")
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s');" % (q(b_epoch), h_epoch))
w("-- an earlier received_at would make retention forget the dedup row early: refused")
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s', pg_catalog.now() - interval '40 days');"
  % (q(b_epoch), h_epoch))
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s', 'infinity');" % (q(b_epoch), h_epoch))
w("-- within 5 s of now() is taken as given (this delivery is signed now, with pgcrypto's hmac())")
b_now = event("evt_now_1", "customer.created", T, {"id": "cus_now", "object": "customer"})
w("BEGIN;")
w(ingest_now(b_now, "pg_catalog.now() + interval '3 seconds'"))
w("RESET ROLE;")
w("""SELECT event_id, received_at - pg_catalog.now() AS received_after_now FROM pgext.webhook_events
 WHERE event_id IN ('evt_epoch_1', 'evt_now_1') ORDER BY 1;""")
w("COMMIT;")
w("SELECT reason, detail FROM pgext.webhook_rejections WHERE received_at > pg_catalog.now() - interval '1 day';")
w("-- a superuser may pass any finite time (that is how these tests replay 2026-01-01); never infinity")
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s', '-infinity');" % (q(b_epoch), h_epoch))
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s', 'infinity');" % (q(b_epoch), h_epoch))
w("SELECT count(*) AS infinite_rows FROM pgext.webhook_events WHERE NOT pg_catalog.isfinite(received_at);")

w("\n-- missing parts and garbage: bad_signature, never an exception")
b9 = event("evt_sig_9", "customer.created", T, {"id": "cus_sig_9", "object": "customer"})
s9 = hmac_hex(CUR, "%d.%s" % (T, b9))
for hdr in ["v1=" + s9, "t=%d" % T, "t=%d,v1=" % T, "", "t=,v1=" + s9, "t=abc,v1=" + s9,
            "t=%d,t=%d,v1=%s" % (T, T, s9), "t=%d,v1=%s" % (T, s9[:-2]), "t=%d;v1=%s" % (T, s9),
            "garbage", "t=%d,v1=%s" % (T, "zz" * 32), ",,,", "==="]:
    w(ingest(CUR, T, b9, header=hdr))
w("SELECT status, event_id FROM pgext.webhook_ingest('stripe', %s, NULL, pg_catalog.to_timestamp(%d));" % (q(b9), T))
w("SELECT status FROM pgext.webhook_ingest('stripe', %s, '%s', pg_catalog.to_timestamp(%d));"
  % (q(b9), "t=%d,v1=%s" % (T, s9) + ",v1=" + "ab" * 5000, T))
w("-- the header is not case- or space-sensitive beyond Stripe's format: spaces are trimmed")
w(ingest(CUR, T, b9, header="t=%d, v1=%s" % (T, s9.upper())))

w("\n-- malformed bodies (correctly signed): status malformed, no event id")
w("-- nested deeper than the parser allows (class 54, not 22): still malformed, not an exception;")
w("-- signature: printf '%s.%s' 1767225600 \"$body\" | openssl dgst -sha256 -hmac whsec_test_current")
deep = "[" * 100000 + "]" * 100000
w("SELECT status, event_id FROM pgext.webhook_ingest('stripe', repeat('[', 100000) || repeat(']', 100000), '%s', pg_catalog.to_timestamp(%d));"
  % (stripe_header(CUR, T, deep), T))
for mb in ["not json", "[1,2,3]", '{"id":"evt_m1","created":%d,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"type":"ping","created":%d,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_m2","type":"ping","livemode":false,"data":{"object":{"id":"x"}}}',
           '{"id":"evt_m3","type":"ping","created":%d,"livemode":"no","data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_m4","type":"ping","created":%d,"livemode":false}' % T,
           '{"id":"evt_m5","type":"ping","created":%d,"livemode":false,"data":{"object":{"id":"x","n":1e999999}}}' % T,
           '{"id":"evt_m6","type":"ping","created":%d,"livemode":false,"data":{"object":{"id":"\\u0000"}}}' % T,
           '{"id":"","type":"ping","created":%d,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_m7","type":"ping","created":%d,"livemode":false' % T]:
    w(ingest(CUR, T, mb))
w("-- Stripe's envelope is typed: livemode a JSON boolean, id and type JSON strings,")
w("-- created a JSON integer (unix seconds, 1970 to 9999); anything else is malformed")
for mb in ['{"id":"evt_t1","type":"ping","created":%d,"livemode":"false","data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t2","type":"ping","created":%d,"livemode":0,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t3","type":"ping","created":%d,"livemode":null,"data":{"object":{"id":"x"}}}' % T,
           '{"id":12345,"type":"ping","created":%d,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t5","type":7,"created":%d,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t6","type":"ping","created":"%d","livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t7","type":"ping","created":%d.5,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t8","type":"ping","created":0,"livemode":false,"data":{"object":{"id":"x"}}}',
           '{"id":"evt_t9","type":"ping","created":-%d,"livemode":false,"data":{"object":{"id":"x"}}}' % T,
           '{"id":"evt_t10","type":"ping","created":1e20,"livemode":false,"data":{"object":{"id":"x"}}}',
           '{"id":"evt_t11","type":"ping","created":253402300800,"livemode":false,"data":{"object":{"id":"x"}}}']:
    w(ingest(CUR, T, mb))
w("-- an integral number written with a zero fraction is the same integer")
w(ingest(CUR, T, '{"id":"evt_typed_1","type":"ping","created":%d.000,"livemode":false,"data":{"object":{"id":"obj_typed_1"}}}' % T))
w("SELECT status FROM pgext.webhook_ingest('stripe', NULL, '%s', pg_catalog.to_timestamp(%d));" % (stripe_header(CUR, T, ""), T))
w("-- bodies over 1 MB are refused before any HMAC or parsing work")
w("SELECT status FROM pgext.webhook_ingest('stripe', pg_catalog.repeat('x', 1048577), '%s', pg_catalog.to_timestamp(%d));" % (stripe_header(CUR, T, "x"), T))

w("\n-- livemode: a live event in test mode (pgext.stripe_livemode = off) never lands")
bl = event("evt_live_1", "invoice.paid", T, {"id": "in_live_1", "object": "invoice", "customer": "cus_x"}, livemode=True)
w(ingest(CUR, T, bl))
w("SELECT count(*) AS live_events FROM pgext.webhook_events WHERE event_id = 'evt_live_1';")

w("\n-- rejections are recorded without payload, signature or secret")
w("SELECT reason, detail, count(*) FROM pgext.webhook_rejections GROUP BY 1, 2 ORDER BY 1, 2;")
w("SELECT count(*) AS leaked FROM pgext.webhook_rejections r WHERE r::text LIKE '%%%s%%' OR r::text LIKE '%%whsec%%' OR r::text LIKE '%%cus_sig%%';" % s9[:16])
w("SELECT source, reason, rejections FROM pgext.webhook_rejection_counts('100 years');")

w("\n-- only what processing needs is stored: no card data, emails or addresses")
cs = {"id": "cs_strip_1", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
      "customer": "cus_strip", "client_reference_id": "strip-acct",
      "customer_details": {"email": "jane@example.com", "address": {"line1": "1 Main St"}, "name": "Jane"},
      "payment_method_details": {"card": {"last4": "4242", "exp_month": 12, "fingerprint": "Xt5EWLLDS7FJjR1c"}},
      "metadata": {"price_id": "price_pack"}, "amount_total": 1000}
bs = event("evt_strip_1", "checkout.session.completed", T, cs)
w(ingest(CUR, T, bs))
w("""SELECT payload #>> '{data,object,client_reference_id}' AS ref, payload #>> '{data,object,metadata,price_id}' AS price,
       payload::text LIKE '%4242%' AS has_card, payload::text LIKE '%@%' AS has_email,
       payload::text LIKE '%Main St%' AS has_address, payload::text LIKE '%Jane%' AS has_name
  FROM pgext.webhook_events WHERE event_id = 'evt_strip_1';""")
w("SELECT event_id, type, object_id, status, created = pg_catalog.to_timestamp(%d) AS created_ok FROM pgext.webhook_events WHERE source = 'stripe' ORDER BY event_id;" % T)

w("\n-- a missing signing secret is a configuration error (answer 5xx so Stripe retries)")
w("SELECT pgext.secret_delete('webhook:stripe') AS removed;")
w(ingest(CUR, T, b9))
w("SELECT pgext.secret_set('webhook:stripe', '%s') IS NOT NULL AS stored;" % CUR)
w("-- unknown source and NULL source are errors too")
w(ingest(CUR, T, b9, source="nope"))
w("SELECT * FROM pgext.webhook_ingest(NULL, '{}', 'x');")

w("\n-- generic HMAC sources: plain hex with a prefix (GitHub/n8n style)")
w("SELECT pgext.secret_set('webhook:n8n', 'n8n-signing-key') IS NOT NULL AS stored;")
w("SELECT pgext.webhook_source_set('n8n', 'webhook:n8n', prefix => 'sha256=');")
g1 = '{"id":"run_1","type":"workflow.finished","result":{"ok":true}}'
w(ingest(None, T, g1, source="n8n", header="sha256=" + hmac_hex("n8n-signing-key", g1)))
w(ingest(None, T, g1, source="n8n", header="sha256=" + hmac_hex("n8n-signing-key", g1)))
w(ingest(None, T, g1, source="n8n", header=hmac_hex("n8n-signing-key", g1)))
w(ingest(None, T, g1, source="n8n", header="sha256=" + hmac_hex("other-key", g1)))
w("-- sha512, base64, custom id/type keys")
w("SELECT pgext.secret_set('webhook:chat', 'chat-key') IS NOT NULL AS stored;")
w("SELECT pgext.webhook_source_set('chat', 'webhook:chat', encoding => 'base64', algorithm => 'sha512', id_key => 'message_id', type_key => 'kind');")
g2 = '{"message_id":"m-17","kind":"message.received","text":"hi"}'
w(ingest(None, T, g2, source="chat", header=hmac_b64("chat-key", g2, "sha512")))
w(ingest(None, T, g2, source="chat", header=hmac_b64("chat-key", g2 + " ", "sha512")))
w("-- timestamped layout with its own scheme name and tolerance")
w("SELECT pgext.secret_set('webhook:sms', 'sms-key') IS NOT NULL AS stored;")
w("SELECT pgext.webhook_source_set('sms', 'webhook:sms', layout => 'timestamped', encoding => 'base64', scheme => 'sig', tolerance => '60 seconds');")
g3 = '{"id":"sms_1","type":"sms.delivered"}'
hs = "t=%d,sig=%s" % (T, hmac_b64("sms-key", "%d.%s" % (T, g3)))
w(ingest(None, T, g3, source="sms", header=hs, received=T + 61))
w(ingest(None, T, g3, source="sms", header=hs, received=T + 60))
w(ingest(None, T, g3, source="sms", header="sig=" + hmac_b64("sms-key", "%d.%s" % (T, g3)), received=T))
w("SELECT source, event_id, type, status FROM pgext.webhook_events WHERE source <> 'stripe' ORDER BY 1, 2;")
w("-- apps claim their events once")
w("SELECT event_id, type, payload -> 'result' AS result FROM pgext.webhook_claim('n8n');")
w("SELECT count(*) AS again FROM pgext.webhook_claim('n8n');")
w("-- configuration errors")
w("SELECT pgext.webhook_source_set('stripe', 'webhook:x');")
w("SELECT pgext.webhook_source_set('Bad Name', 'webhook:x');")
w("SELECT pgext.webhook_source_set('x', '');")
w("SELECT pgext.webhook_source_set('x', 'webhook:x', layout => 'json');")
w("SELECT pgext.webhook_source_set('x', 'webhook:x', encoding => 'base32');")
w("SELECT pgext.webhook_source_set('x', 'webhook:x', algorithm => 'md5');")
w("SELECT pgext.webhook_source_set('x', 'webhook:x', tolerance => '5 minutes');")
w("SELECT pgext.webhook_source_remove('sms') AS removed, pgext.webhook_source_remove('sms') AS again;")
w(ingest(None, T, g3, source="sms", header=hs))

w("\n-- permissions: applications (pgext_app) ingest and apply; nobody else can call in")
w("CREATE ROLE webhook_outsider;")
w("SET ROLE webhook_outsider;")
w(ingest(CUR, T, b9))
w("RESET ROLE;")
w("SET ROLE pgext_app;")
bp = event("evt_role_1", "customer.created", T, {"id": "cus_role_1", "object": "customer"})
w(ingest_now(bp))
w("SELECT count(*) AS rows_visible FROM pgext.webhook_events;")
w("SELECT pgext.webhook_replay_dead();")
w("RESET ROLE;")
w("DROP ROLE webhook_outsider;")

w("\n-- retention: payloads of settled events go after pgext.webhook_payload_retention,")
w("-- event ids after pgext.webhook_dedup_retention (at least 4 days)")
w("SET pgext.webhook_dedup_retention = '1 day';")
w("SELECT * FROM pgext.webhook_apply(1000);")
w("SET pgext.webhook_payload_retention = '1h';")
w("SELECT * FROM pgext.webhook_retention(pg_catalog.to_timestamp(%d));" % (T + 3600 + 301))
w("SELECT status, count(*) FILTER (WHERE payload IS NULL) AS dropped, count(*) FILTER (WHERE payload IS NOT NULL) AS kept FROM pgext.webhook_events GROUP BY 1 ORDER BY 1;")
w("SELECT * FROM pgext.webhook_retention(pg_catalog.to_timestamp(%d));" % (T + 3600 + 301))
w("-- the event id is still remembered: a late retry stays a duplicate")
w(ingest(CUR, T, body))
w("RESET pgext.webhook_payload_retention;")
w("SELECT * FROM pgext.webhook_retention(pg_catalog.to_timestamp(%d));" % (T + 30 * 86400 + 301))
w("SELECT status, count(*) FROM pgext.webhook_events GROUP BY 1 ORDER BY 1;")
w("SELECT count(*) AS rejections_left FROM pgext.webhook_rejections;")

open("sql/webhooks.sql", "w").write("\n".join(out) + "\n")
