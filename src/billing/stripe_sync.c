/*
 * stripe_sync.c — the C pieces of Stripe sync (sql/install/stripe_sync.sql):
 * the webhook effects (effects.c) and the stored form of an event
 * (webhooks/payload.c) made callable from SQL, so a subscription fetched
 * from GET /v1/subscriptions and an event fetched from GET /v1/events go
 * through exactly the code a signed webhook goes through.  Both are
 * internal: only pgext's SECURITY DEFINER functions call them.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "billing/billing.h"
#include "webhooks/webhooks.h"

PG_FUNCTION_INFO_V1(stripe_event_effects);
PG_FUNCTION_INFO_V1(stripe_event_minimal);

/*
 * stripe_event_effects(event_id, type, object_id, created, payload) RETURNS
 * text: apply one event's effects as webhook_apply does (StripeApplyEvent,
 * including the per-object ordering of pgext.stripe_object_versions);
 * returns 'applied', 'superseded' or 'ignored'.  Errors propagate (the
 * caller decides: a missing account is SQLSTATE P0002).
 */
Datum
stripe_event_effects(PG_FUNCTION_ARGS)
{
	char	   *event_id;
	char	   *type;
	char	   *object_id;
	TimestampTz created;
	Jsonb	   *payload;
	const char *status;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event_id, type, object_id, created and payload must not be NULL")));
	event_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	object_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	created = PG_GETARG_TIMESTAMPTZ(3);
	payload = PG_GETARG_JSONB_P(4);
	if (TIMESTAMP_NOT_FINITE(created))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("created must be a finite time")));
	if (!JB_ROOT_IS_OBJECT(payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload must be a JSON object holding data.object")));

	SPI_connect();
	status = StripeApplyEvent(event_id, type, object_id, created, payload);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(status));
}

/*
 * stripe_event_minimal(event jsonb) RETURNS jsonb: what of a Stripe event
 * is stored in pgext.webhook_events.payload (the same whitelist as
 * webhook_ingest, without data.object's personal fields when its customer
 * belongs to a forgotten account).
 */
Datum
stripe_event_minimal(PG_FUNCTION_ARGS)
{
	Jsonb	   *event = PG_GETARG_JSONB_P(0);

	if (!JB_ROOT_IS_OBJECT(event))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a Stripe event must be a JSON object")));
	PG_RETURN_JSONB_P(StripeEventMinimal(event));
}
