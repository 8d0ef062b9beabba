"""Writes test/specs/webhook_apply_transient.spec: a lock timeout while applying
an event is transient.  Signature from the openssl command line (stripe_sig.py).
Run from the repository root: python3 test/vectors/gen_apply_transient_spec.py"""
import base64
from stripe_sig import event, stripe_header

SEC = "whsec_iso_test"
T = 1767225600
P1, P2 = T, T + 31 * 86400


def b64(body):
    """Spec files cannot hold braces inside SQL: pass the exact bytes base64-encoded."""
    return "pg_catalog.convert_from(pg_catalog.decode('%s', 'base64'), 'UTF8')" % base64.b64encode(body.encode()).decode()


line = {"id": "il_tr_1", "object": "line_item", "period": {"start": P1, "end": P2},
        "price": {"id": "price_pro"}, "subscription": "sub_tr"}
body = event("evt_tr_1", "invoice.paid", T + 1,
             {"id": "in_tr_1", "object": "invoice", "customer": "cus_tr", "subscription": "sub_tr",
              "lines": {"object": "list", "data": [line]}})
ingest = ("SELECT status, event_id FROM pgext.webhook_ingest('stripe', %s, '%s', pg_catalog.to_timestamp(%d));"
          % (b64(body), stripe_header(SEC, T + 1, body), T + 1))

open("test/specs/webhook_apply_transient.spec", "w").write("""# A lock the effect of an event needs is held by another session, and the
# applier runs with a lock_timeout: the timeout (55P03) is transient.  The
# event stays pending with attempts 0 (not counted toward dead-lettering),
# the partial effect (the allocation made before the wait) is rolled back,
# and once the lock is free the event applies.  (*) marks b_apply as waiting
# even if the timeout fires before the tester notices the wait.
setup
{
  SET LOCAL pgext.confirm_drop = on;
  DROP EXTENSION IF EXISTS pgext CASCADE;
  CREATE EXTENSION pgext;
}
setup
{
  SELECT pgext.secret_set('webhook:stripe', '%s') IS NOT NULL AS stored;
}
setup
{
  SELECT pgext.stripe_price_set('price_pro', 'subscription', 100);
  SELECT pgext.account_set_stripe_customer(pgext.account_create('tr-acct'), 'cus_tr');
  INSERT INTO pgext.stripe_subscriptions (id, account_id, customer_id, status, grace_until, grace_event_created)
  SELECT 'sub_tr', id, 'cus_tr', 'past_due', pg_catalog.to_timestamp(%d), pg_catalog.to_timestamp(%d)
    FROM pgext.accounts WHERE external_id = 'tr-acct';
  %s
}
teardown
{
  SELECT e.status, e.attempts, pgext.credit_balance(a.id) AS balance,
         (SELECT grace_until IS NULL FROM pgext.stripe_subscriptions WHERE id = 'sub_tr') AS grace_cleared
    FROM pgext.webhook_events e, pgext.accounts a
   WHERE e.event_id = 'evt_tr_1' AND a.external_id = 'tr-acct';
}

session a
step a_lock_account	{ BEGIN; SELECT external_id FROM pgext.accounts WHERE external_id = 'tr-acct' FOR UPDATE; }
step a_lock_subscription	{ BEGIN; SELECT id FROM pgext.stripe_subscriptions WHERE id = 'sub_tr' FOR UPDATE; }
step a_commit	{ COMMIT; }

session b
setup		{ SET lock_timeout = '100ms'; }
step b_apply	{ SELECT * FROM pgext.webhook_apply(); }
step b_show	{
  SELECT e.status, e.attempts, e.next_attempt_at > pg_catalog.now() AS backing_off, e.last_error,
         pgext.credit_balance(a.id) AS balance
    FROM pgext.webhook_events e, pgext.accounts a
   WHERE e.event_id = 'evt_tr_1' AND a.external_id = 'tr-acct';
}
# The transient retry is due 5 s later; make it due now instead of sleeping.
step b_due	{ UPDATE pgext.webhook_events SET next_attempt_at = '-infinity' WHERE event_id = 'evt_tr_1'; }

# credit_allocate waits for the account row lock
permutation a_lock_account b_apply(*) b_show a_commit b_due b_apply b_show
# the allocation succeeds, then ending the grace period waits for the subscription row
permutation a_lock_subscription b_apply(*) b_show a_commit b_due b_apply b_show
""" % (SEC, T + 10 * 86400, T, ingest))
