/*
 * effects.c — what each Stripe event does to billing state.
 *
 * Called by webhook_apply (webhooks/apply.c) inside a subtransaction per
 * event, so any error here rolls back this event's effects only and the
 * event is retried.  Rules:
 *  - Out of order: per Stripe object only the newest event (created, rank,
 *    id) is applied; an older one is 'superseded' and changes nothing.
 *  - Accounts are found by Stripe customer id, then (checkout, subscription
 *    metadata) by client_reference_id = accounts.external_id; never by email.
 *  - Lifetime accounts are never downgraded: subscription events update the
 *    subscription row, but billing_access() ranks lifetime first and no
 *    access_ending / access_ended / grace_expired is announced for them.
 *  - Credits: invoice.paid -> credit_allocate once per (subscription, price,
 *    period start), only for lines of the invoice's own subscription; a line
 *    that would allocate but names no subscription or period fails the event
 *    (no per-invoice fallback key: two invoices of one period would both
 *    allocate).  checkout (mode payment) -> credit_grant keyed by the
 *    checkout session.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "billing/billing.h"
#include "data_rights.h"
#include "common/json.h"
#include "common/spi.h"

/* The billing facts of one subscription event. */
typedef struct SubscriptionFacts
{
	char	   *id;
	char	   *customer;
	char	   *status;
	char	   *price;
	bool		cancel_at_period_end;
	char	   *cancel_at;		/* unix seconds as text, or NULL */
	char	   *period_start;	/* unix seconds as text, or NULL */
	char	   *period_end;
	char	   *ended_at;
} SubscriptionFacts;

static PgextPlan plan_version = {
	"INSERT INTO pgext.stripe_object_versions AS v (object_id, event_created, event_rank, event_id) "
	"VALUES ($1, $2, $3, $4) "
	"ON CONFLICT (object_id) DO UPDATE "
	"   SET event_created = EXCLUDED.event_created, event_rank = EXCLUDED.event_rank, "
	"       event_id = EXCLUDED.event_id "
	" WHERE (v.event_created, v.event_rank, v.event_id) "
	"     < (EXCLUDED.event_created, EXCLUDED.event_rank, EXCLUDED.event_id) "
	"RETURNING 1",
	4, {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID}
};
static PgextPlan plan_account_by_customer = {
	"SELECT id FROM pgext.accounts WHERE stripe_customer_id = $1",
	1, {TEXTOID}
};
static PgextPlan plan_account_by_external = {
	"SELECT id, stripe_customer_id FROM pgext.accounts WHERE external_id = $1",
	1, {TEXTOID}
};
static PgextPlan plan_account_by_subscription = {
	"SELECT account_id FROM pgext.stripe_subscriptions WHERE id = $1",
	1, {TEXTOID}
};
/*
 * Record an account's first customer, unless the customer is linked to
 * another account or has subscriptions or purchases recorded for one (the
 * rules of account_set_stripe_customer; Stripe's signed event is the
 * authority here, so the caller's role does not matter).  Returns whether
 * the account is forgotten (its customer's events then lose their personal
 * fields: data_rights.c).
 */
static PgextPlan plan_link_customer = {
	"UPDATE pgext.accounts SET stripe_customer_id = $2 "
	" WHERE id = $1 AND stripe_customer_id IS NULL "
	"   AND NOT EXISTS (SELECT FROM pgext.accounts WHERE stripe_customer_id = $2) "
	"   AND NOT EXISTS (SELECT FROM pgext.stripe_subscriptions WHERE customer_id = $2 AND account_id <> $1) "
	"   AND NOT EXISTS (SELECT FROM pgext.stripe_purchases WHERE customer_id = $2 AND account_id <> $1) "
	"RETURNING pg_catalog.starts_with(external_id, 'forgotten:')",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_price = {
	"SELECT kind, credits, rollover_cap FROM pgext.stripe_prices WHERE price_id = $1",
	1, {TEXTOID}
};
static PgextPlan plan_purchase = {
	"INSERT INTO pgext.stripe_purchases (checkout_session_id, account_id, price_id, kind, credits, event_id, "
	"    customer_id) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (checkout_session_id) DO NOTHING",
	7, {TEXTOID, UUIDOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID}
};
/*
 * Credits for a forgotten account (pgext.account_forget) are skipped: a late
 * event still records the purchase or subscription (money state), but the
 * account takes no new credit operations.
 */
static PgextPlan plan_grant = {
	"SELECT (r).status FROM (SELECT pgext.credit_grant($1, $2, $3, 'purchase') AS r "
	"WHERE NOT EXISTS (SELECT 1 FROM pgext.accounts a WHERE a.id = $1 "
	"AND pg_catalog.starts_with(a.external_id, 'forgotten:'))) s",
	3, {UUIDOID, INT8OID, TEXTOID}
};
static PgextPlan plan_allocate = {
	"SELECT (r).status FROM (SELECT pgext.credit_allocate($1, $2, $3, $4, NULL) AS r "
	"WHERE NOT EXISTS (SELECT 1 FROM pgext.accounts a WHERE a.id = $1 "
	"AND pg_catalog.starts_with(a.external_id, 'forgotten:'))) s",
	4, {UUIDOID, INT8OID, TEXTOID, INT8OID}
};
static PgextPlan plan_sub_stub = {
	"INSERT INTO pgext.stripe_subscriptions (id, account_id, customer_id) VALUES ($1, $2, $3) "
	"ON CONFLICT (id) DO NOTHING",
	3, {TEXTOID, UUIDOID, TEXTOID}
};
static PgextPlan plan_sub_lock = {
	"SELECT status, cancel_at_period_end OR cancel_at IS NOT NULL "
	"  FROM pgext.stripe_subscriptions WHERE id = $1 FOR UPDATE",
	1, {TEXTOID}
};
/*
 * Upsert a subscription's state.  Back to active/trialing ends any grace
 * period; past_due/unpaid starts one (from the event's time) if none has
 * started yet, so access does not hinge on invoice.payment_failed arriving.
 */
static PgextPlan plan_sub_upsert = {
	"INSERT INTO pgext.stripe_subscriptions AS s (id, account_id, customer_id, status, price_id, "
	"    cancel_at_period_end, current_period_start, current_period_end, ended_at, "
	"    grace_until, grace_event_created, cancel_at) "
	"VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.to_timestamp($7::pg_catalog.float8), "
	"        pg_catalog.to_timestamp($8::pg_catalog.float8), pg_catalog.to_timestamp($9::pg_catalog.float8), "
	"        CASE WHEN $4 IN ('past_due', 'unpaid') THEN $10 + pg_catalog.make_interval(secs => $11) END, "
	"        CASE WHEN $4 IN ('past_due', 'unpaid') THEN $10 END, "
	"        pg_catalog.to_timestamp($12::pg_catalog.float8)) "
	"ON CONFLICT (id) DO UPDATE SET account_id = EXCLUDED.account_id, "
	"    customer_id = COALESCE(EXCLUDED.customer_id, s.customer_id), status = EXCLUDED.status, "
	"    price_id = COALESCE(EXCLUDED.price_id, s.price_id), "
	"    cancel_at_period_end = EXCLUDED.cancel_at_period_end, cancel_at = EXCLUDED.cancel_at, "
	"    current_period_start = COALESCE(EXCLUDED.current_period_start, s.current_period_start), "
	"    current_period_end = COALESCE(EXCLUDED.current_period_end, s.current_period_end), "
	"    ended_at = EXCLUDED.ended_at, "
	"    grace_until = CASE WHEN EXCLUDED.status IN ('active', 'trialing') THEN NULL "
	"                       WHEN s.grace_until IS NULL THEN EXCLUDED.grace_until "
	"                       ELSE s.grace_until END, "
	"    grace_event_created = CASE WHEN EXCLUDED.status IN ('active', 'trialing') THEN NULL "
	"                               WHEN s.grace_until IS NULL THEN EXCLUDED.grace_event_created "
	"                               ELSE s.grace_event_created END, "
	"    grace_expired_at = CASE WHEN EXCLUDED.status IN ('active', 'trialing') THEN NULL "
	"                            ELSE s.grace_expired_at END, "
	"    updated_at = pg_catalog.now() "
	"RETURNING LEAST(CASE WHEN cancel_at_period_end THEN current_period_end END, cancel_at)",
	12, {TEXTOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, FLOAT8OID, TEXTOID}
};
static PgextPlan plan_is_lifetime = {
	"SELECT 1 FROM pgext.stripe_purchases WHERE account_id = $1 AND kind = 'lifetime' LIMIT 1",
	1, {UUIDOID}
};
static PgextPlan plan_outbox = {
	"INSERT INTO pgext.outbox (account_id, kind, subscription_id, until, event_id) "
	"VALUES ($1, $2, $3, $4, $5)",
	5, {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID}
};
static PgextPlan plan_invoice_lines = {
	"SELECT x.price, p.kind, p.credits, p.rollover_cap, x.sub, x.pstart, "
	"       pg_catalog.jsonb_typeof(l#>'{period,start}'), l->>'id' "
	"  FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof($1) = 'array' "
	"                                            THEN $1 ELSE '[]' END) l "
	" CROSS JOIN LATERAL (SELECT "
	"     COALESCE(l#>>'{price,id}', l#>>'{pricing,price_details,price}') AS price, "
	"     COALESCE(l->>'subscription', l#>>'{parent,subscription_item_details,subscription}') AS sub, "
	"     l#>>'{period,start}' AS pstart, "
	"     COALESCE((l->>'proration')::boolean, "
	"              (l#>>'{parent,subscription_item_details,proration}')::boolean, false) AS proration) x "
	"  LEFT JOIN pgext.stripe_prices p ON p.price_id = x.price "
	" WHERE NOT x.proration AND x.price IS NOT NULL",
	1, {JSONBOID}
};
static PgextPlan plan_clear_grace = {
	"UPDATE pgext.stripe_subscriptions "
	"   SET grace_until = NULL, grace_event_created = NULL, grace_expired_at = NULL, updated_at = pg_catalog.now() "
	" WHERE id = $1 AND grace_until IS NOT NULL AND grace_event_created <= $2",
	2, {TEXTOID, TIMESTAMPTZOID}
};
static PgextPlan plan_start_grace = {
	"UPDATE pgext.stripe_subscriptions "
	"   SET grace_until = $2 + pg_catalog.make_interval(secs => $3), grace_event_created = $2, "
	"       grace_expired_at = NULL, updated_at = pg_catalog.now() "
	" WHERE id = $1 AND grace_until IS NULL",
	3, {TEXTOID, TIMESTAMPTZOID, FLOAT8OID}
};
static PgextPlan plan_grace_until = {
	"SELECT grace_until FROM pgext.stripe_subscriptions WHERE id = $1",
	1, {TEXTOID}
};

/* ---- helpers -------------------------------------------------------------- */

/* Order of events created in the same second: creation first, endings last. */
static int
EventRank(const char *type)
{
	size_t		len = strlen(type);

	if (len > 8 && strcmp(type + len - 8, ".created") == 0)
		return 0;
	if ((len > 8 && strcmp(type + len - 8, ".deleted") == 0) ||
		strcmp(type, "invoice.paid") == 0 || strcmp(type, "invoice.payment_succeeded") == 0)
		return 2;
	return 1;
}

/* Claim the object's version; false when a newer event was already applied. */
static bool
ClaimNewest(const char *object_id, const char *event_id, const char *type, TimestampTz created)
{
	Datum		v[4] = {CStringGetTextDatum(object_id), TimestampTzGetDatum(created),
	Int32GetDatum(EventRank(type)), CStringGetTextDatum(event_id)};

	return PgextExec(&plan_version, v, NULL, 0) == 1;
}

/* Copy a uuid result column so it survives the next SPI call. */
static Datum
CopyUuid(uint64 row, int col)
{
	bool		isnull;
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	memcpy(u, DatumGetUUIDP(PgextGetDatum(row, col, &isnull)), sizeof(pg_uuid_t));
	return UUIDPGetDatum(u);
}

/* Account linked to a Stripe customer id. */
static bool
AccountByCustomer(const char *customer, Datum *account)
{
	Datum		arg;

	if (customer == NULL)
		return false;
	arg = CStringGetTextDatum(customer);
	if (PgextExec(&plan_account_by_customer, &arg, NULL, 1) != 1)
		return false;
	*account = CopyUuid(0, 1);
	return true;
}

/* Account known from an earlier event of the same subscription. */
static bool
AccountBySubscription(const char *sub, Datum *account)
{
	Datum		arg;

	if (sub == NULL)
		return false;
	arg = CStringGetTextDatum(sub);
	if (PgextExec(&plan_account_by_subscription, &arg, NULL, 1) != 1)
		return false;
	*account = CopyUuid(0, 1);
	return true;
}

/* Account whose external_id is the client_reference_id; *linked gets its customer. */
static bool
AccountByReference(const char *ref, Datum *account, char **linked)
{
	Datum		arg;

	if (ref == NULL || *ref == '\0')
		return false;
	arg = CStringGetTextDatum(ref);
	if (PgextExec(&plan_account_by_external, &arg, NULL, 1) != 1)
		return false;
	*account = CopyUuid(0, 1);
	if (linked)
		*linked = PgextGetText(0, 2);
	return true;
}

/* Raise "no account" so the event is retried (its account may arrive later). */
static void
NoAccount(const char *what, const char *customer)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("no account for Stripe %s (customer %s)", what, customer ? customer : "none"),
			 errhint("Link the customer with pgext.account_set_stripe_customer(), or pass the account's "
					 "external_id as client_reference_id at checkout; then replay the event.")));
}

/* Whether the account holds lifetime access. */
static bool
IsLifetime(Datum account)
{
	return PgextExec(&plan_is_lifetime, &account, NULL, 1) == 1;
}

/* Write one outbox row (its trigger sends the NOTIFY). */
static void
Outbox(Datum account, const char *kind, const char *sub, bool has_until, TimestampTz until,
	   const char *event_id)
{
	Datum		v[5] = {account, CStringGetTextDatum(kind), sub ? CStringGetTextDatum(sub) : (Datum) 0,
	TimestampTzGetDatum(until), CStringGetTextDatum(event_id)};
	char		n[6] = "     ";

	if (sub == NULL)
		n[2] = 'n';
	if (!has_until)
		n[3] = 'n';
	PgextExec(&plan_outbox, v, n, 0);
}

/* Subscription id of an invoice (old API: subscription; new: parent.subscription_details). */
static char *
InvoiceSubscription(JsonbContainer *inv)
{
	static const char *const path[] = {"parent", "subscription_details", "subscription"};
	char	   *sub = PgextJsonText(inv, "subscription");

	return sub ? sub : PgextJsonPathText(inv, path, 3);
}

/* ---- checkout ------------------------------------------------------------- */

/* The price a one-time checkout bought: expanded line_items, else metadata.price_id. */
static char *
CheckoutPrice(JsonbContainer *cs)
{
	static const char *const meta[] = {"metadata", "price_id"};
	JsonbContainer *li = PgextJsonObject(cs, "line_items");
	JsonbValue	buf;
	JsonbValue *data = li ? getKeyJsonValueFromContainer(li, "data", 4, &buf) : NULL;

	if (data != NULL && data->type == jbvBinary && JsonContainerIsArray(data->val.binary.data) &&
		JsonContainerSize(data->val.binary.data) > 0)
	{
		JsonbValue *first = getIthJsonbValueFromContainer(data->val.binary.data, 0);

		if (first != NULL && first->type == jbvBinary)
		{
			static const char *const p[] = {"price", "id"};
			char	   *price = PgextJsonPathText(first->val.binary.data, p, 2);

			if (price != NULL)
				return price;
		}
	}
	return PgextJsonPathText(cs, meta, 2);
}

/* checkout.session.completed / async_payment_succeeded. */
static const char *
ApplyCheckout(const char *event_id, JsonbContainer *cs)
{
	char	   *id = PgextJsonText(cs, "id");
	char	   *customer = PgextJsonText(cs, "customer");
	char	   *ref = PgextJsonText(cs, "client_reference_id");
	char	   *mode = PgextJsonText(cs, "mode");
	char	   *paid = PgextJsonText(cs, "payment_status");
	char	   *sub = PgextJsonText(cs, "subscription");
	char	   *linked = NULL;
	Datum		account;
	char	   *price;
	char	   *kind;
	int64		credits;

	if (id == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("checkout session without an id")));
	if (!AccountByCustomer(customer, &account))
	{
		if (!AccountByReference(ref, &account, &linked))
			NoAccount("checkout session", customer);
		/* Record the customer; an account keeps its first customer (see plan_link_customer). */
		if (customer != NULL && linked == NULL &&
			PgextExec(&plan_link_customer, (Datum[]) {account, CStringGetTextDatum(customer)}, NULL, 0) == 1)
		{
			bool		isnull;

			if (DatumGetBool(PgextGetDatum(0, 1, &isnull)) && !isnull)
				DataRightsForgottenChanged();
		}
	}
	if (mode != NULL && strcmp(mode, "subscription") == 0 && sub != NULL)
	{
		PgextExec(&plan_sub_stub, (Datum[]) {CStringGetTextDatum(sub), account,
					  customer ? CStringGetTextDatum(customer) : (Datum) 0},
				  customer ? NULL : "  n", 0);
		return "applied";
	}
	if (mode == NULL || strcmp(mode, "payment") != 0)
		return "applied";
	/* Delayed payment methods: the async_payment_succeeded event will follow. */
	if (paid == NULL || (strcmp(paid, "paid") != 0 && strcmp(paid, "no_payment_required") != 0))
		return "ignored";

	price = CheckoutPrice(cs);
	if (price == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("checkout session %s names no price", id),
				 errhint("Create one-time checkouts with metadata[price_id] set to the Stripe price.")));
	if (PgextExec(&plan_price, (Datum[]) {CStringGetTextDatum(price)}, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("Stripe price %s is not in pgext.stripe_prices", price),
				 errhint("Map it with pgext.stripe_price_set(), then replay the event with pgext.webhook_replay().")));
	kind = PgextGetText(0, 1);
	credits = PgextGetInt64(0, 2, 0);
	if (strcmp(kind, "subscription") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("price %s is a subscription price but was bought in a one-time checkout", price),
				 errhint("Map one-time prices as 'lifetime' or 'credit_pack' with pgext.stripe_price_set().")));
	PgextExec(&plan_purchase, (Datum[]) {CStringGetTextDatum(id), account, CStringGetTextDatum(price),
				  CStringGetTextDatum(kind), Int64GetDatum(credits), CStringGetTextDatum(event_id),
				  customer ? CStringGetTextDatum(customer) : (Datum) 0},
			  customer ? NULL : "      n", 0);
	if (credits > 0)
		PgextExec(&plan_grant, (Datum[]) {account, Int64GetDatum(credits),
					  CStringGetTextDatum(psprintf("stripe:%s", id))}, NULL, 0);
	return "applied";
}

/* ---- subscriptions ------------------------------------------------------- */

/* Read status, price, flags and period dates (subscription level or its items). */
static void
ReadSubscription(JsonbContainer *s, SubscriptionFacts *f)
{
	JsonbContainer *items = PgextJsonObject(s, "items");
	JsonbValue	buf;
	JsonbValue *data = items ? getKeyJsonValueFromContainer(items, "data", 4, &buf) : NULL;
	char	   *cape = PgextJsonText(s, "cancel_at_period_end");

	memset(f, 0, sizeof(*f));
	f->id = PgextJsonText(s, "id");
	f->customer = PgextJsonText(s, "customer");
	f->status = PgextJsonText(s, "status");
	f->cancel_at_period_end = cape != NULL && strcmp(cape, "true") == 0;
	f->cancel_at = PgextJsonText(s, "cancel_at");
	f->period_start = PgextJsonText(s, "current_period_start");
	f->period_end = PgextJsonText(s, "current_period_end");
	f->ended_at = PgextJsonText(s, "ended_at");
	if (data != NULL && data->type == jbvBinary && JsonContainerIsArray(data->val.binary.data))
	{
		uint32		i;
		uint32		n = JsonContainerSize(data->val.binary.data);

		/* Newer API versions carry the period on each item: take the latest end. */
		for (i = 0; i < n; i++)
		{
			JsonbValue *it = getIthJsonbValueFromContainer(data->val.binary.data, i);
			static const char *const p[] = {"price", "id"};
			char	   *ps;
			char	   *pe;

			if (it == NULL || it->type != jbvBinary)
				continue;
			if (f->price == NULL)
				f->price = PgextJsonPathText(it->val.binary.data, p, 2);
			ps = PgextJsonText(it->val.binary.data, "current_period_start");
			pe = PgextJsonText(it->val.binary.data, "current_period_end");
			if (pe != NULL && (f->period_end == NULL || atof(pe) > atof(f->period_end)) &&
				(f->period_start == NULL || PgextJsonText(s, "current_period_end") == NULL))
			{
				f->period_end = pe;
				f->period_start = ps;
			}
		}
	}
}

/* customer.subscription.created / updated / deleted / paused / resumed. */
static const char *
ApplySubscription(const char *event_id, const char *type, TimestampTz created, JsonbContainer *s)
{
	static const char *const ref_path[] = {"metadata", "client_reference_id"};
	SubscriptionFacts f;
	Datum		account;
	bool		deleted = strcmp(type, "customer.subscription.deleted") == 0;
	bool		had_row;
	char	   *old_status = NULL;
	bool		old_scheduled = false;
	bool		isnull;
	TimestampTz ends = 0;
	bool		has_ends;
	Datum		v[12];
	char		n[13] = "            ";
	bool		active;
	bool		was_ended;

	ReadSubscription(s, &f);
	if (f.id == NULL || f.status == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("subscription event %s lacks id or status", event_id)));
	if (!AccountByCustomer(f.customer, &account) &&
		!AccountBySubscription(f.id, &account) &&
		!AccountByReference(PgextJsonPathText(s, ref_path, 2), &account, NULL))
		NoAccount("subscription", f.customer);

	had_row = PgextExec(&plan_sub_lock, (Datum[]) {CStringGetTextDatum(f.id)}, NULL, 1) == 1;
	if (had_row)
	{
		old_status = PgextGetText(0, 1);
		old_scheduled = DatumGetBool(PgextGetDatum(0, 2, &isnull));
	}
	if (deleted)
	{
		f.status = "canceled";
		if (f.ended_at == NULL)
			f.ended_at = psprintf(INT64_FORMAT, (int64) timestamptz_to_time_t(created));
	}

	v[0] = CStringGetTextDatum(f.id);
	v[1] = account;
	v[2] = f.customer ? CStringGetTextDatum(f.customer) : (n[2] = 'n', (Datum) 0);
	v[3] = CStringGetTextDatum(f.status);
	v[4] = f.price ? CStringGetTextDatum(f.price) : (n[4] = 'n', (Datum) 0);
	v[5] = BoolGetDatum(f.cancel_at_period_end);
	v[6] = f.period_start ? CStringGetTextDatum(f.period_start) : (n[6] = 'n', (Datum) 0);
	v[7] = f.period_end ? CStringGetTextDatum(f.period_end) : (n[7] = 'n', (Datum) 0);
	v[8] = f.ended_at ? CStringGetTextDatum(f.ended_at) : (n[8] = 'n', (Datum) 0);
	v[9] = TimestampTzGetDatum(created);
	v[10] = Float8GetDatum((double) pgext_grace_period);
	v[11] = f.cancel_at ? CStringGetTextDatum(f.cancel_at) : (n[11] = 'n', (Datum) 0);
	PgextExec(&plan_sub_upsert, v, n, 1);
	/* When access is scheduled to end: period end (cancel_at_period_end) or cancel_at. */
	ends = DatumGetTimestampTz(PgextGetDatum(0, 1, &isnull));
	has_ends = !isnull;

	if (IsLifetime(account))
		return "applied";
	active = strcmp(f.status, "active") == 0 || strcmp(f.status, "trialing") == 0;
	was_ended = old_status != NULL &&
		(strcmp(old_status, "canceled") == 0 || strcmp(old_status, "incomplete_expired") == 0);
	if (active && (f.cancel_at_period_end || f.cancel_at != NULL) && !old_scheduled)
		Outbox(account, "access_ending", f.id, has_ends, ends, event_id);
	else if ((deleted || strcmp(f.status, "canceled") == 0 ||
			  strcmp(f.status, "incomplete_expired") == 0) && !was_ended)
		Outbox(account, "access_ended", f.id, true, created, event_id);
	return "applied";
}

/* ---- invoices ------------------------------------------------------------ */

/* Account of an invoice: by customer, then by its subscription's earlier events. */
static Datum
InvoiceAccount(JsonbContainer *inv, const char *sub)
{
	char	   *customer = PgextJsonText(inv, "customer");
	Datum		account;

	if (!AccountByCustomer(customer, &account) && !AccountBySubscription(sub, &account))
		NoAccount("invoice", customer);
	return account;
}

/*
 * The allocation key of one invoice line of a mapped subscription price:
 * stripe:<subscription>:<price>:<period start as an integer>.  Errors (the
 * event fails, is retried and becomes a dead letter) when the line names no
 * subscription or has no integer period start: allocating under any other key
 * could allocate the same period twice.
 */
static char *
InvoiceLineKey(const char *inv, const char *line, const char *sub, const char *price,
			   const char *pstart, const char *pstart_type)
{
	int64		start;

	if (line == NULL)
		line = "(no id)";
	if (sub == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invoice %s line %s has subscription price %s but names no subscription",
						inv, line, price),
				 errhint("Credits are allocated once per subscription and period, so a line without its "
						 "subscription is not allocated under any other key; after its retries the event is a "
						 "dead letter. Allocate the period with pgext.credit_allocate() if credits are due.")));
	if (pstart == NULL || pstart_type == NULL || strcmp(pstart_type, "number") != 0 ||
		!PgextJsonIntegerText(pstart, &start) || start <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invoice %s line %s has no valid period.start (an integer unix time)", inv, line),
				 errhint("Credits are allocated once per subscription and period, so a line without its "
						 "period is not allocated under any other key; after its retries the event is a "
						 "dead letter. Allocate the period with pgext.credit_allocate() if credits are due.")));
	return psprintf("stripe:%s:%s:" INT64_FORMAT, sub, price, start);
}

/* invoice.paid / invoice.payment_succeeded: allocate the period's credits. */
static const char *
ApplyInvoicePaid(const char *event_id, TimestampTz created, JsonbContainer *inv)
{
	char	   *id = PgextJsonText(inv, "id");
	char	   *sub = InvoiceSubscription(inv);
	Datum		account = InvoiceAccount(inv, sub);
	JsonbContainer *lines = PgextJsonObject(inv, "lines");
	JsonbValue	buf;
	JsonbValue *data = lines ? getKeyJsonValueFromContainer(lines, "data", 4, &buf) : NULL;
	uint64		nrows = 0;
	uint64		i;
	char	  **keys;
	int64	   *credits;
	int64	   *caps;
	bool	   *has_cap;

	if (data != NULL && data->type == jbvBinary)
	{
		Datum		arg = JsonbPGetDatum(JsonbValueToJsonb(data));

		nrows = PgextExec(&plan_invoice_lines, &arg, NULL, 0);
	}
	keys = palloc0(sizeof(char *) * (nrows + 1));
	credits = palloc0(sizeof(int64) * (nrows + 1));
	caps = palloc0(sizeof(int64) * (nrows + 1));
	has_cap = palloc0(sizeof(bool) * (nrows + 1));
	for (i = 0; i < nrows; i++)
	{
		char	   *price = PgextGetText(i, 1);
		char	   *kind = PgextGetText(i, 2);
		char	   *line_sub = PgextGetText(i, 5);

		/* A line of another subscription is that subscription's business, not this invoice's. */
		if (line_sub != NULL && (sub == NULL || strcmp(line_sub, sub) != 0))
			continue;
		if (kind == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("Stripe price %s on invoice %s is not in pgext.stripe_prices", price, id),
					 errhint("Map it with pgext.stripe_price_set(), then replay the event with pgext.webhook_replay().")));
		credits[i] = PgextGetInt64(i, 3, 0);
		if (strcmp(kind, "subscription") != 0 || credits[i] <= 0)
			continue;
		has_cap[i] = !PgextColIsNull(i, 4);
		caps[i] = PgextGetInt64(i, 4, 0);
		keys[i] = InvoiceLineKey(id, PgextGetText(i, 8), line_sub, price, PgextGetText(i, 6),
								 PgextGetText(i, 7));
	}
	for (i = 0; i < nrows; i++)
	{
		Datum		v[4];

		if (keys[i] == NULL)
			continue;
		v[0] = account;
		v[1] = Int64GetDatum(credits[i]);
		v[2] = CStringGetTextDatum(keys[i]);
		v[3] = Int64GetDatum(caps[i]);
		PgextExec(&plan_allocate, v, has_cap[i] ? NULL : "   n", 0);
	}
	if (sub != NULL)
		PgextExec(&plan_clear_grace, (Datum[]) {CStringGetTextDatum(sub), TimestampTzGetDatum(created)},
				  NULL, 0);
	return "applied";
}

/* invoice.payment_failed: start the grace period (once) and announce it. */
static const char *
ApplyInvoiceFailed(const char *event_id, TimestampTz created, JsonbContainer *inv)
{
	char	   *sub = InvoiceSubscription(inv);
	Datum		account = InvoiceAccount(inv, sub);
	char	   *customer = PgextJsonText(inv, "customer");
	TimestampTz until = 0;
	bool		has_until = false;

	if (sub != NULL)
	{
		bool		isnull;

		PgextExec(&plan_sub_stub, (Datum[]) {CStringGetTextDatum(sub), account,
					  customer ? CStringGetTextDatum(customer) : (Datum) 0},
				  customer ? NULL : "  n", 0);
		PgextExec(&plan_start_grace, (Datum[]) {CStringGetTextDatum(sub), TimestampTzGetDatum(created),
					  Float8GetDatum((double) pgext_grace_period)}, NULL, 0);
		PgextExec(&plan_grace_until, (Datum[]) {CStringGetTextDatum(sub)}, NULL, 1);
		until = DatumGetTimestampTz(PgextGetDatum(0, 1, &isnull));
		has_until = !isnull;
	}
	Outbox(account, "payment_failed", sub, has_until, until, event_id);
	return "applied";
}

/* ---- dispatch ------------------------------------------------------------ */

/* Apply one Stripe event; returns 'applied', 'superseded' or 'ignored'. */
const char *
StripeApplyEvent(const char *event_id, const char *type, const char *object_id,
				 TimestampTz created, Jsonb *payload)
{
	static const char *const path[] = {"data", "object"};
	JsonbContainer *data = PgextJsonObject(&payload->root, path[0]);
	JsonbContainer *obj = data ? PgextJsonObject(data, path[1]) : NULL;
	bool		checkout = strcmp(type, "checkout.session.completed") == 0 ||
		strcmp(type, "checkout.session.async_payment_succeeded") == 0;
	bool		subscription = strncmp(type, "customer.subscription.", 22) == 0 &&
		strcmp(type, "customer.subscription.trial_will_end") != 0;
	bool		paid = strcmp(type, "invoice.paid") == 0 || strcmp(type, "invoice.payment_succeeded") == 0;
	bool		failed = strcmp(type, "invoice.payment_failed") == 0;

	if (!(checkout || subscription || paid || failed))
		return "ignored";
	if (obj == NULL || object_id == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("Stripe event %s has no data.object id", event_id)));
	if (!ClaimNewest(object_id, event_id, type, created))
		return "superseded";
	if (checkout)
		return ApplyCheckout(event_id, obj);
	if (subscription)
		return ApplySubscription(event_id, type, created, obj);
	if (paid)
		return ApplyInvoicePaid(event_id, created, obj);
	return ApplyInvoiceFailed(event_id, created, obj);
}
