"""Writes test/specs/webhook_duplicate_delivery.spec and webhook_concurrent_apply.spec.
Signatures from the openssl command line (stripe_sig.py).  Run from the repository root."""
import base64
from stripe_sig import event, stripe_header, q


def b64(body):
    """Spec files cannot hold braces inside SQL: pass the exact bytes base64-encoded."""
    return "pg_catalog.convert_from(pg_catalog.decode('%s', 'base64'), 'UTF8')" % base64.b64encode(body.encode()).decode()

SEC = "whsec_iso_test"
T = 1767225600


def ing(evt_id, typ, created, obj):
    body = event(evt_id, typ, created, obj)
    return ("SELECT status, event_id FROM pgext.webhook_ingest('stripe', %s, '%s', pg_catalog.to_timestamp(%d));"
            % (b64(body), stripe_header(SEC, created, body), created))


common_setup = """setup
{
  SET LOCAL pgext.confirm_drop = on;
  DROP EXTENSION IF EXISTS pgext CASCADE;
  CREATE EXTENSION pgext;
}
setup
{
  SELECT pgext.secret_set('webhook:stripe', '%s') IS NOT NULL AS stored;
}
""" % SEC

body = event("evt_dup_1", "invoice.paid", T, {"id": "in_dup", "object": "invoice", "customer": "cus_dup"})
dup_setup = """setup
{
  DROP TABLE IF EXISTS iso_delivery;
  CREATE TABLE iso_delivery (body text, sig text, t bigint);
  INSERT INTO iso_delivery VALUES (%s, '%s', %d);
}
""" % (b64(body), stripe_header(SEC, T, body), T)
dup = ("SELECT status, event_id FROM iso_delivery d, "
       "pgext.webhook_ingest('stripe', d.body, d.sig, pg_catalog.to_timestamp(d.t));")
open("test/specs/webhook_duplicate_delivery.spec", "w").write("""# Stripe delivers the same event twice at once (two HTTP handlers, two
# sessions): exactly one 'accepted', the other 'duplicate' once the first
# commits, or 'accepted' if the first rolled back (its dedup record is gone,
# so the retry must be processed).  Signature computed with openssl
# (test/vectors/gen_specs.py).
%s
%s
teardown
{
  SELECT event_id, status FROM pgext.webhook_events ORDER BY 1;
}

session s1
setup		{ BEGIN; }
step s1_ingest	{ %s }
step s1_commit	{ COMMIT; }
step s1_rollback	{ ROLLBACK; }

session s2
setup		{ BEGIN; }
step s2_ingest	{ %s }
step s2_commit	{ COMMIT; }

permutation s1_ingest s2_ingest s1_commit s2_commit
permutation s2_ingest s1_ingest s2_commit s1_commit
permutation s1_ingest s2_ingest s1_rollback s2_commit
""" % (common_setup, dup_setup, dup, dup))

P1, P2 = T, T + 31 * 86400


def inv(i, typ="invoice.paid", created=None):
    line = {"id": "il_%d" % i, "object": "line_item", "period": {"start": P1 + i * 86400, "end": P2},
            "price": {"id": "price_pro"}, "subscription": "sub_iso_%d" % i}
    return ing("evt_iso_%d" % i, typ, created or T + i,
               {"id": "in_iso_%d" % i, "object": "invoice", "customer": "cus_iso", "subscription": "sub_iso_%d" % i,
                "lines": {"object": "list", "data": [line]}})


events = "\n  ".join([inv(1), inv(2), inv(3), inv(4, "invoice.payment_failed")])
open("test/specs/webhook_concurrent_apply.spec", "w").write("""# Two webhook_apply calls at once never apply one event twice (FOR UPDATE
# SKIP LOCKED): the second skips what the first holds, or waits on the
# account it also credits, and every event ends applied exactly once.  A
# listener sees the outbox NOTIFY only when the applying transaction commits.
%s
setup
{
  SELECT pgext.stripe_price_set('price_pro', 'subscription', 100);
  SELECT pgext.account_set_stripe_customer(pgext.account_create('iso-acct'), 'cus_iso');
  %s
}
teardown
{
  SELECT (SELECT pg_catalog.string_agg(event_id || ' ' || status || ' ' || attempts, ', ' ORDER BY event_id)
            FROM pgext.webhook_events) AS events,
         (SELECT pgext.credit_balance(id) FROM pgext.accounts WHERE external_id = 'iso-acct') AS balance,
         (SELECT count(*) FROM pgext.credit_lots) AS allocations,
         (SELECT count(*) FROM pgext.outbox) AS outbox_rows;
}

session s1
setup		{ BEGIN; }
step s1_apply1	{ SELECT * FROM pgext.webhook_apply(1); }
step s1_apply_all	{ SELECT * FROM pgext.webhook_apply(10); }
step s1_commit	{ COMMIT; }

session s2
step s2_apply_all	{ SELECT * FROM pgext.webhook_apply(10); }

session s3
setup		{ LISTEN pgext_outbox; }
step s3_poll	{ SELECT 1 AS polled; }

permutation s1_apply1 s2_apply_all s1_commit s3_poll
permutation s1_apply_all s2_apply_all s1_commit s3_poll s2_apply_all
""" % (common_setup, events))
