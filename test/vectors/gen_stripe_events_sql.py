"""Writes sql/stripe_events.sql: what each Stripe event does, out-of-order
deliveries, lifetime vs subscription, retries, dead letters and replay.
Run from the repository root: python3 test/vectors/gen_stripe_events_sql.py"""
from stripe_sig import event, ingest

SEC = "whsec_events_test"
T = 1767225600          # 2026-01-01 00:00:00 UTC: events are created from here on
P1 = T                  # first billing period [P1, P2)
P2 = T + 31 * 86400     # 2026-02-01
P3 = P2 + 28 * 86400    # 2026-03-01
DAY = 86400
out = []
w = out.append


def deliver(evt_id, typ, created, obj, received=None):
    w(ingest(SEC, created, event(evt_id, typ, created, obj), received=received))


def apply_():
    w("SELECT * FROM pgext.webhook_apply();")


def sub_obj(sub, cus, status, cape=False, price="price_pro", start=P1, end=P2, items_period=True, **kw):
    item = {"id": "si_" + sub[4:], "object": "subscription_item", "price": {"id": price, "object": "price"},
            "quantity": 1}
    o = {"id": sub, "object": "subscription", "customer": cus, "status": status,
         "cancel_at_period_end": cape, "items": {"object": "list", "data": [item]}}
    if items_period:   # newer API versions: period dates on the items
        item.update(current_period_start=start, current_period_end=end)
    else:              # older API versions: on the subscription
        o.update(current_period_start=start, current_period_end=end)
    o.update(kw)
    return o


def invoice(inv, cus, sub, price="price_pro", start=P1, end=P2, new_api=True, proration=False):
    line = {"id": "il_" + inv[3:], "object": "line_item", "period": {"start": start, "end": end}, "quantity": 1}
    o = {"id": inv, "object": "invoice", "customer": cus, "billing_reason": "subscription_cycle",
         "customer_email": "someone@example.com", "lines": {"object": "list", "data": [line]}}
    if new_api:
        line["pricing"] = {"type": "price_details", "price_details": {"price": price, "product": "prod_x"}}
        line["parent"] = {"type": "subscription_item_details",
                          "subscription_item_details": {"subscription": sub, "proration": proration}}
        o["parent"] = {"type": "subscription_details", "subscription_details": {"subscription": sub}}
    else:
        line["price"] = {"id": price, "object": "price"}
        line["subscription"] = sub
        line["proration"] = proration
        o["subscription"] = sub
    return o


def state(acct):
    w("""SELECT s.id, s.status, s.price_id, s.cancel_at_period_end AS cape,
       extract(epoch FROM s.current_period_start)::bigint - %d AS start_off,
       extract(epoch FROM s.current_period_end)::bigint - %d AS end_off,
       extract(epoch FROM s.grace_until)::bigint - %d AS grace_off,
       s.ended_at IS NOT NULL AS ended
  FROM pgext.stripe_subscriptions s JOIN pgext.accounts a ON a.id = s.account_id
 WHERE a.external_id = '%s' ORDER BY s.id;""" % (T, T, T, acct))


def access(acct, at):
    w("""SELECT access, extract(epoch FROM until)::bigint - %d AS until_off
  FROM pgext.billing_access((SELECT id FROM pgext.accounts WHERE external_id = '%s'), pg_catalog.to_timestamp(%d));"""
      % (T, acct, at))


def balance(acct):
    w("SELECT pgext.credit_balance(id) AS balance FROM pgext.accounts WHERE external_id = '%s';" % acct)


def outbox(acct):
    w("""SELECT o.kind, o.subscription_id, extract(epoch FROM o.until)::bigint - %d AS until_off, o.event_id
  FROM pgext.billing_outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE a.external_id = '%s' ORDER BY o.id;""" % (T, acct))


w("""-- Stripe events applied to billing state: checkout, subscriptions, invoices,
-- out-of-order deliveries, lifetime vs subscription, retries, dead letters.
-- Signatures were computed with the openssl command line at authoring time
-- (test/vectors/stripe_sig.py; generator test/vectors/gen_stripe_events_sql.py).
-- Times are offsets in seconds from 2026-01-01 00:00 UTC (created of the first event).
\\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
""")
w("SELECT pgext.secret_set('webhook:stripe', '%s') IS NOT NULL AS stored;" % SEC)
w("""SELECT pgext.stripe_price_set('price_pro', 'subscription', 1000, 500);
SELECT pgext.stripe_price_set('price_life', 'lifetime', 5000);
SELECT pgext.stripe_price_set('price_pack', 'credit_pack', 250);
SELECT pgext.stripe_price_set('price_free', 'subscription', 0);
SELECT count(*) AS accounts FROM (SELECT pgext.account_create(x) FROM (VALUES ('acme'), ('lifer'), ('ghost'), ('packer')) v(x)) s;
""")

w("-- 1. acme subscribes: checkout (mode subscription) links the customer by client_reference_id")
deliver("evt_a01", "checkout.session.completed", T,
        {"id": "cs_a1", "object": "checkout.session", "mode": "subscription", "payment_status": "paid",
         "client_reference_id": "acme", "customer": "cus_acme", "subscription": "sub_acme",
         "customer_details": {"email": "ceo@acme.example"}})
deliver("evt_a02", "customer.subscription.created", T + 1, sub_obj("sub_acme", "cus_acme", "active"))
deliver("evt_a03", "invoice.paid", T + 2, invoice("in_a1", "cus_acme", "sub_acme"))
w("-- Stripe delivers invoice.paid twice: the second is a duplicate at intake")
deliver("evt_a03", "invoice.paid", T + 2, invoice("in_a1", "cus_acme", "sub_acme"))
w("-- invoice.payment_succeeded for the same invoice: credits are keyed by period, never granted twice")
deliver("evt_a04", "invoice.payment_succeeded", T + 2, invoice("in_a1", "cus_acme", "sub_acme"))
apply_()
w("SELECT stripe_customer_id FROM pgext.accounts WHERE external_id = 'acme';")
state("acme")
balance("acme")
access("acme", T + DAY)
w("SELECT event_id, type, status, attempts FROM pgext.webhook_events WHERE event_id LIKE 'evt_a%' ORDER BY event_id;")

w("\n-- 2. out of order: a newer update (cancel at period end) arrives before an older one (past_due)")
deliver("evt_a06", "customer.subscription.updated", T + 20, sub_obj("sub_acme", "cus_acme", "active", cape=True))
apply_()
deliver("evt_a05", "customer.subscription.updated", T + 10, sub_obj("sub_acme", "cus_acme", "past_due"))
apply_()
w("SELECT event_id, status FROM pgext.webhook_events WHERE event_id IN ('evt_a05', 'evt_a06') ORDER BY 1;")
state("acme")
w("-- canceling keeps access until the period ends, then none")
access("acme", P2 - 1)
access("acme", P2 + 1)
w("-- the same delivered in one batch, older last in arrival: order by created decides")
deliver("evt_a08", "customer.subscription.updated", T + 40, sub_obj("sub_acme", "cus_acme", "active", cape=False))
deliver("evt_a07", "customer.subscription.updated", T + 30, sub_obj("sub_acme", "cus_acme", "active", cape=True))
apply_()
w("SELECT event_id, status FROM pgext.webhook_events WHERE event_id IN ('evt_a07', 'evt_a08') ORDER BY 1;")
state("acme")

w("\n-- 3. payment fails: grace period (pgext.grace_period, 7 days) and an outbox row")
deliver("evt_a09", "invoice.payment_failed", P2 + 60, invoice("in_a2", "cus_acme", "sub_acme", start=P2, end=P3))
deliver("evt_a10", "customer.subscription.updated", P2 + 61,
        sub_obj("sub_acme", "cus_acme", "past_due", start=P2, end=P3))
w("-- a second failure (retry of the invoice) does not extend the grace period")
deliver("evt_a11", "invoice.payment_failed", P2 + 3 * DAY, invoice("in_a2", "cus_acme", "sub_acme", start=P2, end=P3))
apply_()
state("acme")
access("acme", P2 + 2 * DAY)
access("acme", P2 + 8 * DAY)
w("-- the worker expires grace periods: one grace_expired per subscription")
w("SELECT pgext.billing_expire_grace(pg_catalog.to_timestamp(%d)) AS expired;" % (P2 + 8 * DAY))
w("SELECT pgext.billing_expire_grace(pg_catalog.to_timestamp(%d)) AS expired_again;" % (P2 + 9 * DAY))
w("-- payment recovers: the period's credits arrive (rollover capped at 500), grace ends")
deliver("evt_a12", "invoice.paid", P2 + 9 * DAY, invoice("in_a2", "cus_acme", "sub_acme", start=P2, end=P3, new_api=False))
deliver("evt_a13", "customer.subscription.updated", P2 + 9 * DAY + 1,
        sub_obj("sub_acme", "cus_acme", "active", start=P2, end=P3, items_period=False))
apply_()
state("acme")
balance("acme")
access("acme", P2 + 10 * DAY)
w("-- proration lines and zero-credit prices allocate nothing")
deliver("evt_a14", "invoice.paid", P2 + 10 * DAY, invoice("in_a3", "cus_acme", "sub_acme", start=P2, end=P3, proration=True))
deliver("evt_a15", "invoice.paid", P2 + 10 * DAY + 1, invoice("in_a4", "cus_acme", "sub_acme", price="price_free", start=P2, end=P3))
apply_()
balance("acme")

w("\n-- 4. deleted ends access; an older update arriving afterwards is superseded")
deliver("evt_a17", "customer.subscription.deleted", P3 - 5,
        sub_obj("sub_acme", "cus_acme", "canceled", start=P2, end=P3, ended_at=P3 - 5))
deliver("evt_a16", "customer.subscription.updated", P3 - 10, sub_obj("sub_acme", "cus_acme", "active", start=P2, end=P3))
apply_()
w("SELECT event_id, status FROM pgext.webhook_events WHERE event_id IN ('evt_a16', 'evt_a17') ORDER BY 1;")
state("acme")
access("acme", P3 - 1)
outbox("acme")

w("\n-- 5. lifetime: a one-time checkout (price from metadata) grants lifetime access and its credits")
deliver("evt_l01", "checkout.session.completed", T + 100,
        {"id": "cs_l1", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
         "client_reference_id": "lifer", "customer": "cus_lifer", "metadata": {"price_id": "price_life"},
         "payment_method_details": {"card": {"last4": "4242"}}})
w("-- ... and subscription events never downgrade it")
deliver("evt_l02", "customer.subscription.created", T + 101, sub_obj("sub_lifer", "cus_lifer", "active", cape=True))
deliver("evt_l03", "invoice.payment_failed", T + 102, invoice("in_l1", "cus_lifer", "sub_lifer"))
deliver("evt_l04", "customer.subscription.deleted", T + 103, sub_obj("sub_lifer", "cus_lifer", "canceled"))
apply_()
access("lifer", T + 365 * DAY)
balance("lifer")
state("lifer")
outbox("lifer")
w("SELECT pgext.billing_expire_grace(pg_catalog.to_timestamp(%d)) AS expired;" % (T + 30 * DAY))
w("SELECT price_id, kind, credits FROM pgext.stripe_purchases ORDER BY 1;")

w("\n-- 6. credit pack with expanded line_items; an unpaid (async) checkout waits for async_payment_succeeded")
deliver("evt_p01", "checkout.session.completed", T + 200,
        {"id": "cs_p1", "object": "checkout.session", "mode": "payment", "payment_status": "unpaid",
         "client_reference_id": "packer", "customer": "cus_packer",
         "line_items": {"object": "list", "data": [{"price": {"id": "price_pack"}, "quantity": 1}]}})
apply_()
balance("packer")
deliver("evt_p02", "checkout.session.async_payment_succeeded", T + 300,
        {"id": "cs_p1", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
         "client_reference_id": "packer", "customer": "cus_packer",
         "line_items": {"object": "list", "data": [{"price": {"id": "price_pack"}, "quantity": 1}]}})
apply_()
balance("packer")
w("-- a second checkout with a new Stripe customer still credits the account found by client_reference_id")
deliver("evt_p03", "checkout.session.completed", T + 400,
        {"id": "cs_p2", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
         "client_reference_id": "packer", "customer": "cus_packer_2", "metadata": {"price_id": "price_pack"}})
apply_()
balance("packer")
w("SELECT external_id, stripe_customer_id FROM pgext.accounts WHERE external_id = 'packer';")

w("\n-- 7. failures retry with backoff, then become dead letters; an operator replays them")
w("-- invoice for a customer no account is linked to yet (email is never used to find one)")
deliver("evt_g01", "invoice.paid", T + 500, invoice("in_g1", "cus_ghost", "sub_ghost"))
apply_()
w("""SELECT status, attempts, next_attempt_at > pg_catalog.now() AS backing_off, last_error
  FROM pgext.webhook_events WHERE event_id = 'evt_g01';""")
w("-- not due yet: nothing is taken")
apply_()
w("SET pgext.webhook_max_attempts = 2;")
w("UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id = 'evt_g01';")
apply_()
w("SELECT status, attempts, last_error IS NOT NULL AS has_error FROM pgext.webhook_events WHERE event_id = 'evt_g01';")
w("RESET pgext.webhook_max_attempts;")
w("-- an unmapped price fails too")
deliver("evt_g02", "checkout.session.completed", T + 600,
        {"id": "cs_g2", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
         "client_reference_id": "ghost", "customer": "cus_ghost", "metadata": {"price_id": "price_mystery"}})
apply_()
w("SELECT status, last_error FROM pgext.webhook_events WHERE event_id = 'evt_g02';")
w("-- the operator fixes the cause and replays")
w("SELECT pgext.stripe_price_set('price_mystery', 'credit_pack', 42);")
w("SELECT pgext.webhook_replay('stripe', 'evt_g01') AS requeued, pgext.webhook_replay('stripe', 'evt_g02') AS due_now,")
w("       pgext.webhook_replay('stripe', 'evt_a01') AS settled;")
apply_()
w("SELECT event_id, status, attempts FROM pgext.webhook_events WHERE event_id LIKE 'evt_g%' ORDER BY 1;")
w("-- evt_g01 came first and failed again (the checkout linking cus_ghost was applied after it); its retry succeeds")
w("UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id = 'evt_g01';")
apply_()
w("SELECT event_id, status, attempts FROM pgext.webhook_events WHERE event_id LIKE 'evt_g%' ORDER BY 1;")
balance("ghost")
w("SELECT pgext.webhook_replay('stripe', 'evt_nope');")
w("SELECT pgext.webhook_replay_dead() AS none_left;")

w("\n-- 8. past_due without (or before) invoice.payment_failed also starts the grace period, once")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('late'), 'cus_late');")
deliver("evt_d01", "customer.subscription.created", T + 800, sub_obj("sub_late", "cus_late", "active"))
deliver("evt_d02", "customer.subscription.updated", T + 900, sub_obj("sub_late", "cus_late", "past_due"))
apply_()
access("late", T + 900 + DAY)
deliver("evt_d03", "invoice.payment_failed", T + 1000, invoice("in_late", "cus_late", "sub_late"))
apply_()
state("late")
outbox("late")

w("\n-- 9. newer API versions schedule an end with cancel_at instead of cancel_at_period_end")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('sched'), 'cus_sched');")
deliver("evt_s01", "customer.subscription.created", T + 1100, sub_obj("sub_sched", "cus_sched", "active"))
deliver("evt_s02", "customer.subscription.updated", T + 1200, sub_obj("sub_sched", "cus_sched", "active", cancel_at=P2 - DAY))
apply_()
access("sched", T + DAY)
access("sched", P2 - DAY + 1)
outbox("sched")

w("\n-- 10. events we do not act on are ignored; bad inputs")
deliver("evt_x01", "customer.subscription.trial_will_end", T + 700, sub_obj("sub_acme", "cus_acme", "trialing"))
deliver("evt_x02", "payment_intent.succeeded", T + 701, {"id": "pi_1", "object": "payment_intent"})
apply_()
w("SELECT * FROM pgext.webhook_apply(0);")
w("SELECT pgext.stripe_price_set('prod_x', 'subscription', 1);")
w("SELECT pgext.stripe_price_set('price_y', 'gift', 1);")
w("SELECT pgext.stripe_price_set('price_y', 'credit_pack', 0);")
w("SELECT pgext.billing_access(NULL);")
w("SELECT pgext.stripe_price_remove('price_free') AS removed, pgext.stripe_price_remove('price_free') AS again;")

w("\n-- the ledger stays consistent and every change was announced")
w("SELECT count(*) AS audit_rows FROM pgext.credit_audit();")
w("SELECT count(*) AS verify_rows FROM pgext.credit_verify();")
w("SELECT kind, count(*) FROM pgext.billing_outbox GROUP BY 1 ORDER BY 1;")

open("sql/stripe_events.sql", "w").write("\n".join(out) + "\n")
