"""Writes sql/billing.sql: what each Stripe event does, out-of-order
deliveries, lifetime vs subscription, retries, dead letters and replay.
Run from the repository root: python3 test/vectors/gen_billing_sql.py"""
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


def inv_line(lid, sub, price="price_pro", start=P1, end=P2, new_api=True, period=True):
    """One subscription line; sub None = the line names no subscription, period False = no period.
    start is written as given: an int, a float (1767225600.0) or a string."""
    line = {"id": lid, "object": "line_item", "quantity": 1}
    if period:
        line["period"] = {"start": start, "end": end}
    if new_api:
        line["pricing"] = {"type": "price_details", "price_details": {"price": price, "product": "prod_x"}}
        details = {"proration": False}
        if sub is not None:
            details["subscription"] = sub
        line["parent"] = {"type": "subscription_item_details", "subscription_item_details": details}
    else:
        line["price"] = {"id": price, "object": "price"}
        line["proration"] = False
        if sub is not None:
            line["subscription"] = sub
    return line


def invoice_with(inv, cus, sub, lines, new_api=True):
    """An invoice of subscription sub holding the given lines."""
    o = {"id": inv, "object": "invoice", "customer": cus, "billing_reason": "subscription_cycle",
         "lines": {"object": "list", "data": lines}}
    if new_api:
        o["parent"] = {"type": "subscription_details", "subscription_details": {"subscription": sub}}
    else:
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
  FROM pgext.outbox o JOIN pgext.accounts a ON a.id = o.account_id
 WHERE a.external_id = '%s' ORDER BY o.id;""" % (T, acct))


w("""-- Stripe events applied to billing state: checkout, subscriptions, invoices,
-- out-of-order deliveries, lifetime vs subscription, retries, dead letters.
-- Signatures were computed with the openssl command line at authoring time
-- (test/vectors/stripe_sig.py; generator test/vectors/gen_billing_sql.py).
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

w("\n-- 11. invoice credits are keyed by subscription, price and period start, and nothing else")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('keyed'), 'cus_keyed');")
w("-- period.start written 1767225600.0 in one invoice and 1767225600 in another is one period: allocated once")
deliver("evt_k01", "invoice.paid", T + 2000,
        invoice_with("in_k1", "cus_keyed", "sub_keyed", [inv_line("il_k1", "sub_keyed", start=float(P1))]))
deliver("evt_k02", "invoice.paid", T + 2001,
        invoice_with("in_k2", "cus_keyed", "sub_keyed", [inv_line("il_k2", "sub_keyed", new_api=False)], new_api=False))
w("-- a line naming another subscription is not this invoice's to allocate")
deliver("evt_k03", "invoice.paid", T + 2002,
        invoice_with("in_k3", "cus_keyed", "sub_keyed", [inv_line("il_k3a", "sub_keyed", start=P2, end=P3),
                                                         inv_line("il_k3b", "sub_elsewhere", start=P2, end=P3)]))
apply_()
w("""SELECT l.period_key, l.amount FROM pgext.credit_lots l JOIN pgext.accounts a ON a.id = l.account_id
 WHERE a.external_id = 'keyed' ORDER BY l.id;""")
balance("keyed")
w("-- a line that would allocate but names no subscription or no integer period start fails the event;")
w("-- no other key is made up (two such invoices for one period would both allocate)")
deliver("evt_k04", "invoice.paid", T + 2003,
        invoice_with("in_k4", "cus_keyed", "sub_keyed", [inv_line("il_k4", None, start=P3, end=P3 + 31 * DAY)]))
deliver("evt_k05", "invoice.paid", T + 2004,
        invoice_with("in_k5", "cus_keyed", "sub_keyed",
                     [inv_line("il_k5", None, start=P3, end=P3 + 31 * DAY, new_api=False)], new_api=False))
deliver("evt_k06", "invoice.paid", T + 2005,
        invoice_with("in_k6", "cus_keyed", "sub_keyed", [inv_line("il_k6", "sub_keyed", period=False)]))
deliver("evt_k07", "invoice.paid", T + 2006,
        invoice_with("in_k7", "cus_keyed", "sub_keyed", [inv_line("il_k7", "sub_keyed", start=P3 + 0.5)]))
deliver("evt_k08", "invoice.paid", T + 2007,
        invoice_with("in_k8", "cus_keyed", "sub_keyed", [inv_line("il_k8", "sub_keyed", start=str(P3))]))
apply_()
w("""SELECT event_id, status, attempts, last_error FROM pgext.webhook_events
 WHERE event_id BETWEEN 'evt_k04' AND 'evt_k08' ORDER BY 1;""")
w("-- after its retries each is a dead letter (last_error says why), and nothing was allocated")
w("SET pgext.webhook_max_attempts = 2;")
w("UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id BETWEEN 'evt_k04' AND 'evt_k08';")
apply_()
w("RESET pgext.webhook_max_attempts;")
w("""SELECT event_id, status, attempts, last_error IS NOT NULL AS has_error FROM pgext.webhook_events
 WHERE event_id BETWEEN 'evt_k04' AND 'evt_k08' ORDER BY 1;""")
balance("keyed")

w("\n-- 12. errors while applying: transient ones (contention, resources, I/O) leave the event pending,")
w("-- attempts unchanged, due again in 5 s; other errors count an attempt (backoff 30 s, then more);")
w("-- a cancel, statement timeout or shutdown is re-thrown and the whole call rolls back")
w("""CREATE FUNCTION public.inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- an event settling (applied/ignored/...) raises the SQLSTATE named in its id
  IF NEW.event_id LIKE 'evt_fault_%' AND NEW.status NOT IN ('pending', 'dead') THEN
    RAISE EXCEPTION 'injected fault %', pg_catalog.split_part(NEW.event_id, '_', 3)
      USING ERRCODE = pg_catalog.split_part(NEW.event_id, '_', 3);
  END IF;
  RETURN NEW;
END
$$;""")
w("CREATE TRIGGER inject_fault BEFORE UPDATE ON pgext.webhook_events FOR EACH ROW EXECUTE FUNCTION public.inject_fault();")
FAULTS = ["40001", "40P01", "55P03", "53200", "53100", "58030", "08006",
          "22023", "23505", "42501", "P0002", "XX000", "40002"]
for i, code in enumerate(FAULTS):
    deliver("evt_fault_" + code, "payment_intent.succeeded", T + 2100 + i, {"id": "pi_fault_" + code, "object": "payment_intent"})
w("BEGIN;")
apply_()
w("""SELECT event_id, status, attempts, (extract(epoch FROM next_attempt_at - pg_catalog.now()))::integer AS retry_in_s,
       last_error
  FROM pgext.webhook_events WHERE event_id LIKE 'evt_fault_%' ORDER BY attempts, event_id;""")
w("COMMIT;")
for code in ["57014", "57P01", "XX001"]:
    deliver("evt_fz_" + code, "payment_intent.succeeded", T + 2200, {"id": "pi_fz_" + code, "object": "payment_intent"})
    deliver("evt_fault_" + code, "payment_intent.succeeded", T + 2201, {"id": "pi_fault_" + code, "object": "payment_intent"})
    apply_()
    w("""SELECT event_id, status, attempts, last_error FROM pgext.webhook_events
 WHERE event_id IN ('evt_fz_%s', 'evt_fault_%s') ORDER BY 1;""" % (code, code))
    w("UPDATE pgext.webhook_events SET next_attempt_at = 'infinity' WHERE event_id = 'evt_fault_%s';" % code)
w("-- once the cause is gone every one of them applies")
w("DROP TRIGGER inject_fault ON pgext.webhook_events;")
w("DROP FUNCTION public.inject_fault();")
w("UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id LIKE 'evt_fault_%' OR event_id LIKE 'evt_fz_%';")
apply_()
w("""SELECT status, attempts, count(*) FROM pgext.webhook_events
 WHERE event_id LIKE 'evt_fault_%' OR event_id LIKE 'evt_fz_%' GROUP BY 1, 2 ORDER BY 1, 2;""")

w("\n-- 13. one call applies thousands of events in the memory of one: each event's memory and SPI")
w("-- results are released after it (pg_backend_memory_contexts sampled at the 500th and the 3000th)")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('bulk'), 'cus_bulk');")
w("""INSERT INTO pgext.webhook_events (source, event_id, type, object_id, created, livemode, payload, received_at, status)
SELECT 'stripe', 'evt_bulk_' || pg_catalog.lpad(i::text, 5, '0'), 'customer.subscription.created', 'sub_bulk_' || i,
       pg_catalog.to_timestamp(%d + i), false,
       pg_catalog.jsonb_build_object('data', pg_catalog.jsonb_build_object('object', pg_catalog.jsonb_build_object(
         'id', 'sub_bulk_' || i, 'object', 'subscription', 'customer', 'cus_bulk', 'status', 'active',
         'current_period_start', %d, 'current_period_end', %d))),
       pg_catalog.now(), 'pending'
  FROM pg_catalog.generate_series(1, 3000) i;""" % (T + 3000, P1, P2))
w("CREATE TABLE public.apply_memory (event_id text, bytes bigint);")
w("""CREATE FUNCTION public.probe_memory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.event_id IN ('evt_bulk_00500', 'evt_bulk_03000') AND NEW.status = 'applied' THEN
    INSERT INTO public.apply_memory
    SELECT NEW.event_id, pg_catalog.sum(total_bytes) FROM pg_catalog.pg_backend_memory_contexts;
  END IF;
  RETURN NEW;
END
$$;""")
w("CREATE TRIGGER probe_memory BEFORE UPDATE ON pgext.webhook_events FOR EACH ROW EXECUTE FUNCTION public.probe_memory();")
w("SELECT * FROM pgext.webhook_apply(10000);")
w("-- (one SPI connection for the whole call kept every result set: about 40 KB per event here)")
w("""SELECT count(*) AS samples,
       (pg_catalog.max(bytes) FILTER (WHERE event_id = 'evt_bulk_03000')
        - pg_catalog.max(bytes) FILTER (WHERE event_id = 'evt_bulk_00500')) / 2500 < 1024 AS under_1kb_per_event
  FROM public.apply_memory;""")
w("DROP TRIGGER probe_memory ON pgext.webhook_events;")
w("DROP FUNCTION public.probe_memory();")
w("DROP TABLE public.apply_memory;")
w("SELECT count(*) AS bulk_subscriptions FROM pgext.stripe_subscriptions WHERE customer_id = 'cus_bulk';")

w("\n-- 14. who may link which Stripe customer (account_set_stripe_customer): a customer's billing")
w("-- history stays with its account; once an account has Stripe state only pgext_admin changes its link")
w("SET ROLE pgext_app;")
w("-- the app cannot unlink an account that has subscriptions or purchases, nor relink it")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), NULL);")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), 'cus_other');")
w("-- an account without Stripe state: the app links, unlinks and relinks it")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_newbie');")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), NULL);")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_newbie_2');")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), NULL);")
w("RESET ROLE;")
w("-- an operator (pgext_admin) may unlink acme")
w("SET ROLE pgext_admin;")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), NULL);")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('lifer'), NULL);")
w("RESET ROLE;")
w("SET ROLE pgext_app;")
w("-- cus_acme's subscriptions and cus_lifer's purchase are recorded for acme and lifer: not linkable elsewhere")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_acme');")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('newbie'), 'cus_lifer');")
w("-- and the app may not link acme again (it has Stripe state)")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), 'cus_acme');")
w("RESET ROLE;")
w("-- a checkout for newbie paid by cus_lifer (unlinked, but its purchase is lifer's) credits newbie")
w("-- and does not link cus_lifer to newbie")
deliver("evt_n01", "checkout.session.completed", T + 2300,
        {"id": "cs_n1", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
         "client_reference_id": "newbie", "customer": "cus_lifer", "metadata": {"price_id": "price_pack"}})
apply_()
balance("newbie")
w("-- cus_lifer now has purchases for lifer and for newbie: the app can link it to neither;")
w("-- an operator (pgext_admin) links accounts with Stripe state, deliberately")
w("SET ROLE pgext_app;")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('lifer'), 'cus_lifer');")
w("RESET ROLE;")
w("SET ROLE pgext_admin;")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('acme'), 'cus_acme');")
w("SELECT pgext.account_set_stripe_customer(pgext.account_create('lifer'), 'cus_lifer');")
w("RESET ROLE;")
w("SELECT external_id, stripe_customer_id FROM pgext.accounts WHERE external_id IN ('acme', 'lifer', 'newbie') ORDER BY 1;")

w("\n-- the ledger stays consistent and every change was announced")
w("SELECT count(*) AS audit_rows FROM pgext.credit_audit();")
w("SELECT count(*) AS verify_rows FROM pgext.credit_verify();")
w("SELECT kind, count(*) FROM pgext.outbox GROUP BY 1 ORDER BY 1;")
w("""-- Leave a fresh extension behind: the tests that run after this one (in
-- alphabetical order) count ids from 1.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;""")

open("sql/billing.sql", "w").write("\n".join(out) + "\n")
