/*
 * payload.c — what of a Stripe event is stored.
 *
 * webhook_ingest keeps only what applying the event needs: ids, times,
 * statuses, prices, periods and metadata.  Card data, addresses, emails,
 * names and everything else never reach a table.  The copy is built
 * directly on the parsed jsonb (pushJsonbValue), a whitelist walked once.
 */
#include "postgres.h"

#include "utils/jsonb.h"

#include "webhooks/webhooks.h"

/* One kept key: its value whole (children NULL) or filtered by children. */
typedef struct KeepSpec
{
	const char *key;
	const struct KeepSpec *children;	/* for an object, or for each element of an array */
} KeepSpec;

#define KEEP_END {NULL, NULL}

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
	{"id", NULL}, {"object", NULL}, {"customer", NULL}, {"client_reference_id", NULL},
	{"mode", NULL}, {"payment_status", NULL}, {"status", NULL}, {"subscription", NULL},
	{"cancel_at_period_end", NULL}, {"cancel_at", NULL}, {"canceled_at", NULL},
	{"ended_at", NULL}, {"current_period_start", NULL}, {"current_period_end", NULL},
	{"billing_reason", NULL}, {"metadata", NULL}, {"parent", NULL},
	{"items", keep_items}, {"lines", keep_lines}, {"line_items", keep_line_items}, KEEP_END
};
static const KeepSpec keep_data[] = {{"object", keep_object}, KEEP_END};
static const KeepSpec keep_event[] = {
	{"id", NULL}, {"type", NULL}, {"created", NULL}, {"livemode", NULL},
	{"api_version", NULL}, {"data", keep_data}, KEEP_END
};

static JsonbValue *KeepObject(JsonbParseState **st, JsonbContainer *src, const KeepSpec *spec);

/* Push one kept value: whole, or filtered when it has children. */
static void
KeepValue(JsonbParseState **st, JsonbValue *v, const KeepSpec *children, JsonbIteratorToken tok)
{
	if (children == NULL || v->type != jbvBinary)
	{
		pushJsonbValue(st, tok, v);
		return;
	}
	if (JsonContainerIsObject(v->val.binary.data))
		KeepObject(st, v->val.binary.data, children);
	else if (JsonContainerIsArray(v->val.binary.data))
	{
		uint32		n = JsonContainerSize(v->val.binary.data);
		uint32		i;

		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

			if (e != NULL && e->type == jbvBinary && JsonContainerIsObject(e->val.binary.data))
				KeepObject(st, e->val.binary.data, children);
		}
		pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	else
		pushJsonbValue(st, tok, v);
}

/* Push an object holding only the whitelisted, non-null keys of src; returns the result at top level. */
static JsonbValue *
KeepObject(JsonbParseState **st, JsonbContainer *src, const KeepSpec *spec)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	for (; spec->key != NULL; spec++)
	{
		JsonbValue	buf;
		JsonbValue *v = getKeyJsonValueFromContainer(src, spec->key, strlen(spec->key), &buf);
		JsonbValue	k;

		if (v == NULL || v->type == jbvNull)
			continue;
		k.type = jbvString;
		k.val.string.val = (char *) spec->key;
		k.val.string.len = strlen(spec->key);
		pushJsonbValue(st, WJB_KEY, &k);
		KeepValue(st, v, spec->children, WJB_VALUE);
	}
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* The stored form of a Stripe event (see the file comment). */
Jsonb *
StripeEventMinimal(Jsonb *event)
{
	JsonbParseState *st = NULL;

	return JsonbValueToJsonb(KeepObject(&st, &event->root, keep_event));
}
