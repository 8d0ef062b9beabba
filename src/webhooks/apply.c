/*
 * apply.c — applying recorded Stripe events: queue, retries, dead letters.
 *
 * webhook_apply(limit) takes pending events in event order (created, id)
 * with FOR UPDATE SKIP LOCKED, so concurrent callers never take the same
 * event, and applies each one in its own subtransaction: the event's effects
 * and its new status commit together, and a failing event is rolled back
 * alone.  What happens next depends on the error (PgextClassifyError in
 * common/subxact.c): a transient one (lock timeout, deadlock, serialization
 * failure, out of memory, I/O) leaves the event pending, attempts unchanged,
 * due again after a short pause; any other failure counts an attempt, is
 * retried with exponential backoff, and after pgext.webhook_max_attempts
 * makes the event a dead letter (webhook_replay requeues it); a cancel,
 * statement timeout or shutdown is re-thrown and aborts the call.
 *
 * Memory: each event runs in its own memory context and SPI connection,
 * both reset after the event, so a call of 10,000 events holds one event's
 * worth of memory (plus the queue) at a time.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "accounts_scope.h"
#include "billing/billing.h"
#include "common/result.h"
#include "common/spi.h"
#include "common/subxact.h"
#include "webhooks/webhooks.h"

PG_FUNCTION_INFO_V1(webhook_apply);

/* First retry after this many seconds; doubles per attempt up to the cap. */
#define BACKOFF_BASE_S 30
#define BACKOFF_CAP_S (6 * 3600)
/* After a transient error the event is due again after this many seconds. */
#define TRANSIENT_RETRY_S 5
/* Stored error text is cut to this many bytes. */
#define MAX_ERROR_LEN 1000

/* One event taken from the queue. */
typedef struct QueuedEvent
{
	char	   *event_id;
	char	   *type;
	char	   *object_id;
	TimestampTz created;
	Jsonb	   *payload;		/* NULL if retention already dropped it */
	int			attempts;
} QueuedEvent;

typedef struct ApplyCounts
{
	int			applied;
	int			superseded;
	int			ignored;
	int			failed;
	int			dead;
} ApplyCounts;

static PgextPlan plan_take = {
	"SELECT event_id, type, object_id, created, payload, attempts "
	"  FROM pgext.webhook_events "
	" WHERE source = 'stripe' AND status = 'pending' AND next_attempt_at <= pg_catalog.now() "
	" ORDER BY created, event_id LIMIT $1 FOR UPDATE SKIP LOCKED",
	1, {INT4OID}
};
static PgextPlan plan_done = {
	"UPDATE pgext.webhook_events "
	"   SET status = $2, attempts = attempts + 1, last_error = NULL, applied_at = pg_catalog.now() "
	" WHERE source = 'stripe' AND event_id = $1",
	2, {TEXTOID, TEXTOID}
};
static PgextPlan plan_failed = {
	"UPDATE pgext.webhook_events "
	"   SET status = $2, attempts = $3, last_error = $4, "
	"       next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => $5) "
	" WHERE source = 'stripe' AND event_id = $1",
	5, {TEXTOID, TEXTOID, INT4OID, TEXTOID, FLOAT8OID}
};

static PgextPlan plan_transient = {
	"UPDATE pgext.webhook_events "
	"   SET last_error = $2, next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => $3) "
	" WHERE source = 'stripe' AND event_id = $1",
	3, {TEXTOID, TEXTOID, FLOAT8OID}
};

/* Lock due events (FOR UPDATE, held to the end of the transaction) and copy them into cxt. */
static QueuedEvent *
TakeEvents(int limit, MemoryContext cxt, int *n)
{
	Datum		arg = Int32GetDatum(limit);
	uint64		rows;
	QueuedEvent *evs;
	MemoryContext old;
	uint64		i;

	SPI_connect();
	rows = PgextExec(&plan_take, &arg, NULL, 0);
	evs = MemoryContextAllocZero(cxt, sizeof(QueuedEvent) * (rows + 1));
	old = MemoryContextSwitchTo(cxt);

	for (i = 0; i < rows; i++)
	{
		bool		isnull;
		Datum		d;

		evs[i].event_id = PgextGetText(i, 1);
		evs[i].type = PgextGetText(i, 2);
		evs[i].object_id = PgextGetText(i, 3);
		evs[i].created = DatumGetTimestampTz(PgextGetDatum(i, 4, &isnull));
		d = PgextGetDatum(i, 5, &isnull);
		evs[i].payload = isnull ? NULL : DatumGetJsonbPCopy(d);
		evs[i].attempts = (int) PgextGetInt64(i, 6, 0);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	*n = (int) rows;
	return evs;
}

/* Seconds until the next attempt after `attempts` failures. */
static double
BackoffSeconds(int attempts)
{
	double		s = BACKOFF_BASE_S;
	int			i;

	for (i = 1; i < attempts && s < BACKOFF_CAP_S; i++)
		s *= 2;
	return s > BACKOFF_CAP_S ? BACKOFF_CAP_S : s;
}

/*
 * A transient failure: the event stays pending with its attempts unchanged,
 * due again after TRANSIENT_RETRY_S; last_error says why it waits.
 */
static void
RecordTransient(const QueuedEvent *ev, const char *message, ApplyCounts *c)
{
	char	   *msg = psprintf("transient, not counted as an attempt: %s",
							   message ? message : "unknown error");
	Datum		v[3] = {CStringGetTextDatum(ev->event_id), CStringGetTextDatum(pnstrdup(msg, MAX_ERROR_LEN)),
	Float8GetDatum((double) TRANSIENT_RETRY_S)};

	PgextExec(&plan_transient, v, NULL, 0);
	c->failed++;
}

/* Record a failed attempt: back to pending later, or dead. */
static void
RecordFailure(const QueuedEvent *ev, const char *message, ApplyCounts *c)
{
	int			attempts = ev->attempts + 1;
	bool		dead = attempts >= pgext_webhook_max_attempts;
	char	   *msg = pnstrdup(message ? message : "unknown error", MAX_ERROR_LEN);
	Datum		v[5] = {CStringGetTextDatum(ev->event_id), CStringGetTextDatum(dead ? "dead" : "pending"),
		Int32GetDatum(attempts), CStringGetTextDatum(msg),
	Float8GetDatum(dead ? 0 : BackoffSeconds(attempts))};

	PgextExec(&plan_failed, v, NULL, 0);
	if (dead)
		c->dead++;
	else
		c->failed++;
}

typedef struct ApplyArgs
{
	const QueuedEvent *ev;
	const char *status;
} ApplyArgs;

/* PgextTryInSubxact body: apply the event and mark it done. */
static void
ApplyBody(void *arg)
{
	ApplyArgs  *a = (ApplyArgs *) arg;
	const QueuedEvent *ev = a->ev;
	Datum		v[2];

	if (ev->payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("webhook event %s has no payload left (dropped by retention)", ev->event_id),
				 errhint("Raise pgext.webhook_payload_retention, or let Stripe resend the event.")));
	a->status = StripeApplyEvent(ev->event_id, ev->type, ev->object_id, ev->created, ev->payload);
	v[0] = CStringGetTextDatum(ev->event_id);
	v[1] = CStringGetTextDatum(a->status);
	PgextExec(&plan_done, v, NULL, 0);
}

/*
 * Apply one event inside a subtransaction; records a failure and returns.
 * What PgextClassifyError calls RETHROW (cancel, statement timeout,
 * shutdown, ...) is re-thrown by PgextTryInSubxactCode.
 */
static void
ApplyInSubtransaction(const QueuedEvent *ev, ApplyCounts *c)
{
	ApplyArgs	a = {ev, NULL};
	char	   *message = NULL;
	int			sqlerrcode = 0;
	const char *status = NULL;

	if (PgextTryInSubxactCode(ApplyBody, &a, PgextIsCatchableError, &message, &sqlerrcode))
		status = a.status;

	if (status == NULL && PgextClassifyError(sqlerrcode) == PGEXT_ERROR_TRANSIENT)
		RecordTransient(ev, message, c);
	else if (status == NULL)
		RecordFailure(ev, message, c);
	else if (strcmp(status, "applied") == 0)
		c->applied++;
	else if (strcmp(status, "superseded") == 0)
		c->superseded++;
	else
		c->ignored++;
}

/*
 * webhook_apply(limit) RETURNS (applied, superseded, ignored, failed, dead):
 * apply up to `limit` due Stripe events.
 */
Datum
webhook_apply(PG_FUNCTION_ARGS)
{
	int			limit = PG_ARGISNULL(0) ? 100 : PG_GETARG_INT32(0);
	ApplyCounts c = {0, 0, 0, 0, 0};
	MemoryContext work;
	MemoryContext evcxt;
	MemoryContext old;
	QueuedEvent *evs;
	Datum		values[5];
	int			n;
	int			i;

	AccountScopePlatform("webhook_apply");
	if (limit < 1 || limit > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("limit must be between 1 and 10000, got %d", limit),
				 errhint("Call webhook_apply repeatedly to work through a longer queue.")));

	work = AllocSetContextCreate(CurrentMemoryContext, "pgext webhook_apply", ALLOCSET_DEFAULT_SIZES);
	evcxt = AllocSetContextCreate(work, "pgext webhook_apply event", ALLOCSET_DEFAULT_SIZES);
	evs = TakeEvents(limit, work, &n);
	for (i = 0; i < n; i++)
	{
		/*
		 * One SPI connection per event: SPI keeps the result set of every
		 * query of a committed subtransaction until SPI_finish, so one
		 * connection for the whole batch would grow with every event.
		 */
		SPI_connect();
		old = MemoryContextSwitchTo(evcxt);
		ApplyInSubtransaction(&evs[i], &c);
		MemoryContextSwitchTo(old);
		SPI_finish();
		MemoryContextReset(evcxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(work);

	values[0] = Int32GetDatum(c.applied);
	values[1] = Int32GetDatum(c.superseded);
	values[2] = Int32GetDatum(c.ignored);
	values[3] = Int32GetDatum(c.failed);
	values[4] = Int32GetDatum(c.dead);
	PG_RETURN_DATUM(PgextCompositeResult(fcinfo, values, NULL));
}
