/*
 * payload.c — what of a Stripe event is stored.
 *
 * webhook_ingest keeps only what applying the event needs: ids, times,
 * statuses, prices, periods and metadata.  Card data, addresses, emails,
 * names and everything else never reach a table.  The copy is built
 * directly on the parsed jsonb (pushJsonbValue), a whitelist walked once.
 *
 * When data.object.customer (or data.object itself, a customer) belongs to a
 * forgotten account (pgext.account_forget), the personal fields of data.object
 * (client_reference_id, metadata) are dropped too: a late delivery or an
 * event the sync fetches keeps only the money state.  Every Stripe payload
 * pgext stores goes through here (webhook_ingest, and stripe_event_minimal
 * for the sync); the set of forgotten customers is a per-backend cache
 * (data_rights.c), so no query runs for the common case.
 */
#include "postgres.h"

#include "utils/jsonb.h"

#include "data_rights.h"
#include "webhooks/webhooks.h"

/* One kept key: its value whole (children NULL) or filtered by children. */
typedef struct KeepSpec
{
	const char *key;
	const struct KeepSpec *children;	/* for an object, or for each element of an array */
	bool		personal;		/* dropped when the customer is forgotten */
} KeepSpec;

#define KEEP_END {NULL, NULL, false}

static const KeepSpec keep_price[] = {{"id", NULL}, KEEP_END};
static const KeepSpec keep_price_details[] = {{"price", NULL}, KEEP_END};
static const KeepSpec keep_pricing[] = {{"price_details", keep_price_details}, KEEP_END};
static const KeepSpec keep_item[] = {
	{"id", NULL}, {"price", keep_price}, {"current_period_start", NULL},
	{"current_period_end", NULL}, {"quantity", NULL}, KEEP_END
};
static const KeepSpec keep_line[] = {
	{"id", NULL}, {"price", keep_price}, {"pricing", keep_pricing}, {"subscription", NULL},
	{"parent", NULL}, {"period", NULL}, {"quantity", NULL}, {"proration", NULL}, KEEP_END
};
static const KeepSpec keep_line_item[] = {{"price", keep_price}, {"quantity", NULL}, KEEP_END};
static const KeepSpec keep_items[] = {{"data", keep_item}, KEEP_END};
static const KeepSpec keep_lines[] = {{"data", keep_line}, KEEP_END};
static const KeepSpec keep_line_items[] = {{"data", keep_line_item}, KEEP_END};
static const KeepSpec keep_object[] = {
	{"id", NULL}, {"object", NULL}, {"customer", NULL}, {"client_reference_id", NULL, true},
	{"mode", NULL}, {"payment_status", NULL}, {"status", NULL}, {"subscription", NULL},
	{"cancel_at_period_end", NULL}, {"cancel_at", NULL}, {"canceled_at", NULL},
	{"ended_at", NULL}, {"current_period_start", NULL}, {"current_period_end", NULL},
	{"billing_reason", NULL}, {"metadata", NULL, true}, {"parent", NULL},
	{"items", keep_items}, {"lines", keep_lines}, {"line_items", keep_line_items}, KEEP_END
};
static const KeepSpec keep_data[] = {{"object", keep_object}, KEEP_END};
static const KeepSpec keep_event[] = {
	{"id", NULL}, {"type", NULL}, {"created", NULL}, {"livemode", NULL},
	{"api_version", NULL}, {"data", keep_data}, KEEP_END
};

static JsonbValue *KeepObject(JsonbParseState **st, JsonbContainer *src, const KeepSpec *spec,
							  bool forgotten);

/* Push one kept value: whole, or filtered when it has children. */
static void
KeepValue(JsonbParseState **st, JsonbValue *v, const KeepSpec *children, JsonbIteratorToken tok,
		  bool forgotten)
{
	if (children == NULL || v->type != jbvBinary)
	{
		pushJsonbValue(st, tok, v);
		return;
	}
	if (JsonContainerIsObject(v->val.binary.data))
		KeepObject(st, v->val.binary.data, children, forgotten);
	else if (JsonContainerIsArray(v->val.binary.data))
	{
		uint32		n = JsonContainerSize(v->val.binary.data);
		uint32		i;

		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

			if (e != NULL && e->type == jbvBinary && JsonContainerIsObject(e->val.binary.data))
				KeepObject(st, e->val.binary.data, children, forgotten);
		}
		pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	else
		pushJsonbValue(st, tok, v);
}

/*
 * Push an object holding only the whitelisted, non-null keys of src (not
 * the personal ones when forgotten); returns the result at top level.
 */
static JsonbValue *
KeepObject(JsonbParseState **st, JsonbContainer *src, const KeepSpec *spec, bool forgotten)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	for (; spec->key != NULL; spec++)
	{
		JsonbValue	buf;
		JsonbValue *v;
		JsonbValue	k;

		if (forgotten && spec->personal)
			continue;
		v = getKeyJsonValueFromContainer(src, spec->key, strlen(spec->key), &buf);
		if (v == NULL || v->type == jbvNull)
			continue;
		k.type = jbvString;
		k.val.string.val = (char *) spec->key;
		k.val.string.len = strlen(spec->key);
		pushJsonbValue(st, WJB_KEY, &k);
		KeepValue(st, v, spec->children, WJB_VALUE, forgotten);
	}
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* The value of key in an object container, when it is an object; else NULL. */
static JsonbContainer *
ChildObject(JsonbContainer *c, const char *key, JsonbValue *buf)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), buf);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/* Whether a jsonb value is the string `s`. */
static bool
IsString(const JsonbValue *v, const char *s)
{
	return v != NULL && v->type == jbvString && v->val.string.len == (int) strlen(s) &&
		memcmp(v->val.string.val, s, v->val.string.len) == 0;
}

/*
 * Whether the event's object belongs to a forgotten account's customer: its
 * data.object.customer (a string), or, when data.object is the customer
 * itself (customer.* events: "object": "customer"), its id.  A branch when
 * no account is forgotten.
 */
static bool
CustomerForgotten(Jsonb *event)
{
	JsonbValue	buf;
	JsonbValue	kind_buf;
	JsonbContainer *obj;
	JsonbValue *customer;

	if (!DataRightsAnyForgotten() || !JB_ROOT_IS_OBJECT(event))
		return false;
	obj = ChildObject(&event->root, "data", &buf);
	obj = obj ? ChildObject(obj, "object", &buf) : NULL;
	if (obj == NULL)
		return false;
	if (IsString(getKeyJsonValueFromContainer(obj, "object", strlen("object"), &kind_buf), "customer"))
		customer = getKeyJsonValueFromContainer(obj, "id", strlen("id"), &buf);
	else
		customer = getKeyJsonValueFromContainer(obj, "customer", strlen("customer"), &buf);
	return customer != NULL && customer->type == jbvString &&
		DataRightsCustomerForgotten(customer->val.string.val, customer->val.string.len);
}

/* The stored form of a Stripe event (see the file comment). */
Jsonb *
StripeEventMinimal(Jsonb *event)
{
	JsonbParseState *st = NULL;

	return JsonbValueToJsonb(KeepObject(&st, &event->root, keep_event, CustomerForgotten(event)));
}
