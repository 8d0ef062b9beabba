/*
 * api.c — driving one external API: claim requests from SQL, send them
 * through the HTTP engine, hand the responses back to SQL.
 *
 * Each step is its own short transaction and no transaction is open while a
 * request is on the wire: a claim commits (the rows say what is about to be
 * sent: durable intent) before anything is sent; responses are reported
 * together after they arrive, one subtransaction each, so one bad response
 * cannot lose the others.
 *
 * The budget: every response's RateLimit-Limit / -Remaining / -Reset headers
 * give what is left and how fast it refills; the worker estimates the budget
 * between responses (refill since the last header minus what it sent since)
 * and never spends past it.  Classes keep reserves: 'normal' requests
 * (creates, lookups, polls) only while more than 30% of the limit is left,
 * 'reconcile' (list pages) while more than 20%, 'urgent' (deletes, power
 * off: the calls that save money) down to the last request.  A 429 stops
 * every request until its Retry-After has passed.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker/api.h"
#include "worker/txn.h"

/* How far ahead the worker looks for due work when nothing is queued. */
#define API_IDLE_MS 60000L
/* After an error claiming work, wait this long before claiming again. */
#define API_ERROR_MS 5000L

static const char *const class_names[API_NUM_CLASSES] = {"urgent", "reconcile", "normal"};
/* Share of the limit each class must leave untouched. */
static const double class_reserve[API_NUM_CLASSES] = {0.0, 0.2, 0.3};

/* What the worker keeps with a request in flight (HttpRequest.user). */
typedef struct ApiTag
{
	WorkerApi  *api;
	char	   *ref;			/* the claim's ref (jsonb text) */
	int			cls;
} ApiTag;

/* Note an error of the API for the status view and the log. */
static void
ApiNoteError(WorkerApi *api, const char *what, const char *message)
{
	snprintf(api->status.last_error, sizeof(api->status.last_error), "%s: %s", what, message);
	api->status.last_error_at = GetCurrentTimestamp();
	ereport(LOG, (errmsg("pgext worker: %s API %s: %s", api->cfg.name, what, message)));
}

/* Read the API's configuration; log when the refusal reason changes. */
void
WorkerApiConfigure(WorkerApi *api)
{
	char		before[WORKER_API_REASON_LEN];
	bool		had_url = api->cfg.base_url != NULL;

	strlcpy(before, api->cfg.refusing, sizeof(before));
	WorkerConfigLoad(&api->cfg, api->url_setting);
	if (api->cfg.refusing[0] != '\0' && strcmp(before, api->cfg.refusing) != 0)
		ereport(LOG,
				(errmsg("pgext worker refuses to call the %s API: %s", api->cfg.name, api->cfg.refusing),
				 errhint("Fix the configuration and reload (SELECT pg_reload_conf()); the worker keeps running.")));
	else if (api->cfg.refusing[0] == '\0' && (before[0] != '\0' || !had_url))
		ereport(LOG, (errmsg("pgext worker calls the %s API at %s", api->cfg.name, api->cfg.base_url)));
	api->next_claim_at = 0;
}

/* The requests the budget allows now (a large number while it is unknown). */
static double
ApiBudgetEstimate(WorkerApi *api, TimestampTz now)
{
	double		est;

	if (api->rl_limit <= 0)
		return 1e9;
	est = api->rl_remaining + api->rl_rate * (double) (now - api->rl_seen) / USECS_PER_SEC;
	if (est > api->rl_limit)
		est = api->rl_limit;
	return est - api->sent_since;
}

/*
 * Refill the self-imposed request rate (APIs that send no RateLimit
 * headers, e.g. Stripe): up to one second's worth of requests in the bucket.
 */
static void
ApiRefillRate(WorkerApi *api, TimestampTz now)
{
	double		rps = api->max_rps ? api->max_rps() : 0;

	if (rps <= 0)
		return;
	if (api->rate_at != 0)
		api->rate_tokens += rps * (double) (now - api->rate_at) / USECS_PER_SEC;
	if (api->rate_at == 0 || api->rate_tokens > rps)
		api->rate_tokens = rps;
	api->rate_at = now;
}

/* How many requests of class c the budget allows now. */
static double
ApiClassAllowance(WorkerApi *api, int c, double est)
{
	if (api->rl_limit <= 0)
		return est;
	return floor(est - class_reserve[c] * api->rl_limit);
}

/* One claimed request, copied out of SPI memory with malloc for the engine. */
static HttpRequest *
ApiNewRequest(WorkerApi *api, int cls, const char *ref, const char *method,
			  const char *path, const char *body, const char *idem)
{
	HttpRequest *r = calloc(1, sizeof(HttpRequest));
	ApiTag	   *tag = calloc(1, sizeof(ApiTag));
	size_t		ulen = strlen(api->cfg.base_url) + strlen(path) + 1;

	if (r == NULL || tag == NULL)
	{
		free(r);
		free(tag);
		return NULL;
	}
	r->method = strdup(method);
	r->url = malloc(ulen);
	if (r->url)
		snprintf(r->url, ulen, "%s%s", api->cfg.base_url, path);
	r->body = body ? strdup(body) : NULL;
	r->bearer = strdup(api->cfg.token);
	r->idempotency_key = idem ? strdup(idem) : NULL;
	r->timeout_ms = api->timeout_ms;
	r->max_response = api->max_response;
	tag->api = api;
	tag->cls = cls;
	tag->ref = strdup(ref);
	r->user = tag;
	if (r->method == NULL || r->url == NULL || (body && r->body == NULL) || r->bearer == NULL ||
		(idem && r->idempotency_key == NULL) || tag->ref == NULL)
	{
		free(tag->ref);
		free(tag);
		r->user = NULL;
		HttpRequestFree(r);
		return NULL;
	}
	return r;
}

/* Free a request and its tag. */
static void
ApiFreeRequest(HttpRequest *r)
{
	ApiTag	   *tag = (ApiTag *) r->user;

	if (tag)
	{
		free(tag->ref);
		free(tag);
		r->user = NULL;
	}
	HttpRequestFree(r);
}

/* Whether a finished request belongs to this API. */
bool
WorkerApiOwns(WorkerApi *api, HttpRequest *r)
{
	return r->user != NULL && ((ApiTag *) r->user)->api == api;
}

/*
 * Claim up to `want` requests of each allowed class (in the pump's
 * transaction) into out (malloc'd); next_due: when queued work falls due.
 */
typedef struct ApiClaimArgs
{
	WorkerApi  *api;
	int64		epoch;
	int			free_slots;
	double	   *allow;
	HttpRequest **out;
	int			n;				/* requests in out, also when a claim fails midway */
	TimestampTz next_due;
} ApiClaimArgs;

/* WorkerTransaction step: the claims of one pump. */
static void
ApiClaim(void *argp)
{
	ApiClaimArgs *a = (ApiClaimArgs *) argp;
	WorkerApi  *api = a->api;
	int64		epoch = a->epoch;
	int			free_slots = a->free_slots;
	double	   *allow = a->allow;
	HttpRequest **out = a->out;
	Oid			argtypes[3] = {INT8OID, INT4OID, TEXTARRAYOID};

	a->next_due = 0;
	for (int c = 0; c < API_NUM_CLASSES && free_slots - a->n > 0; c++)
	{
		int			want = (int) Min((double) (free_slots - a->n), allow[c]);
		Datum		args[3];
		Datum		cls = CStringGetTextDatum(class_names[c]);

		if (want <= 0)
			continue;
		args[0] = Int64GetDatum(epoch);
		args[1] = Int32GetDatum(want);
		args[2] = PointerGetDatum(construct_array(&cls, 1, TEXTOID, -1, false, TYPALIGN_INT));
		if (SPI_execute_with_args(api->claim_sql, 3, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "claiming %s requests failed", api->cfg.name);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *ref = SPI_getvalue(tup, desc, 1);
			char	   *method = SPI_getvalue(tup, desc, 3);
			char	   *path = SPI_getvalue(tup, desc, 4);
			char	   *body = SPI_getvalue(tup, desc, 5);
			/* an optional sixth column: the Idempotency-Key of a POST */
			char	   *idem = desc->natts >= 6 ? SPI_getvalue(tup, desc, 6) : NULL;
			HttpRequest *r;

			if (ref == NULL || method == NULL || path == NULL)
				elog(ERROR, "%s claim returned a request without ref, method or path", api->cfg.name);
			r = ApiNewRequest(api, c, ref, method, path, body, idem);
			if (r == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			out[a->n++] = r;
		}
	}
	if (api->next_due_sql &&
		SPI_execute(api->next_due_sql, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			a->next_due = DatumGetTimestampTz(d);
	}
}

/* Claim and send what the budget and the free slots allow. */
void
WorkerApiPump(WorkerApi *api, HttpEngine *engine, int64 epoch)
{
	TimestampTz now = GetCurrentTimestamp();
	int			free_slots = *api->concurrency - api->in_flight;
	double		est;
	double		allow[API_NUM_CLASSES];
	bool		any = false;
	HttpRequest **claimed;
	int			nclaimed;
	TimestampTz next_due;

	if (api->claim_sql == NULL || api->cfg.refusing[0] != '\0' || api->cfg.token == NULL)
		return;
	if (api->paused_until > now || (api->next_claim_at != 0 && api->next_claim_at > now))
		return;
	if (free_slots <= 0)
	{
		api->next_claim_at = 0;	/* a finished request frees a slot */
		return;
	}
	est = ApiBudgetEstimate(api, now);
	ApiRefillRate(api, now);
	for (int c = 0; c < API_NUM_CLASSES; c++)
	{
		allow[c] = ApiClassAllowance(api, c, est);
		if (api->max_rps && api->max_rps() > 0)
			allow[c] = Min(allow[c], floor(api->rate_tokens));
		any |= allow[c] >= 1;
	}
	if (!any && api->max_rps && api->max_rps() > 0 && api->rate_tokens < 1)
	{
		/* the self-imposed rate: wait for the next token */
		api->next_claim_at = TimestampTzPlusMilliseconds(now,
														 (int64) Max((1.0 - api->rate_tokens) / api->max_rps() * 1000, 1));
		return;
	}
	if (!any)
	{
		/* wait until the urgent class may spend one request */
		double		secs = api->rl_rate > 0 ? (1.0 - est) / api->rl_rate : 1.0;

		api->next_claim_at = TimestampTzPlusMilliseconds(now, (int64) (Max(secs, 0.05) * 1000));
		return;
	}

	claimed = palloc(sizeof(HttpRequest *) * free_slots);
	{
		ApiClaimArgs a = {api, epoch, free_slots, allow, claimed, 0, 0};
		char		error[WORKER_API_REASON_LEN];

		if (!WorkerTransaction(NULL, ApiClaim, &a, error, sizeof(error)))
		{
			for (int i = 0; i < a.n; i++)
				ApiFreeRequest(claimed[i]);
			ApiNoteError(api, "claiming work failed", error);
			api->next_claim_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), API_ERROR_MS);
			return;
		}
		nclaimed = a.n;
		next_due = a.next_due;
	}

	/* committed: now the requests may go out */
	for (int i = 0; i < nclaimed; i++)
	{
		api->in_flight++;
		if (HttpEngineSubmit(engine, claimed[i]) != 0)
		{
			/* done at once with error "network": reported like any other */
			WorkerApiFinished(api, claimed[i]);
			continue;
		}
		api->sent_since++;
		api->rate_tokens -= 1;
		api->status.sent++;
	}

	now = GetCurrentTimestamp();
	if (nclaimed >= free_slots)
		api->next_claim_at = 0;
	else if (next_due != 0 && next_due <= now)
	{
		/* due work remains that the budget held back: wait for the refill */
		double		secs = api->rl_rate > 0 ? 1.0 / api->rl_rate : 1.0;

		api->next_claim_at = TimestampTzPlusMilliseconds(now, (int64) (secs * 1000));
	}
	else if (next_due != 0)
		api->next_claim_at = Min(next_due, TimestampTzPlusMilliseconds(now, API_IDLE_MS));
	else
		api->next_claim_at = TimestampTzPlusMilliseconds(now, API_IDLE_MS);
}

/* Take a finished request: update the budget, queue it for reporting. */
void
WorkerApiFinished(WorkerApi *api, HttpRequest *r)
{
	TimestampTz now = GetCurrentTimestamp();

	if (api->in_flight > 0)
		api->in_flight--;
	if (r->error_code == NULL && r->rl_limit > 0 && r->rl_remaining >= 0)
	{
		long long	now_unix = (long long) time(NULL);

		api->rl_limit = r->rl_limit;
		api->rl_remaining = r->rl_remaining;
		api->rl_seen = now;
		api->sent_since = api->in_flight;
		if (r->rl_reset > 0)
		{
			api->rl_reset = time_t_to_timestamptz((pg_time_t) r->rl_reset);
			if (r->rl_remaining < r->rl_limit && r->rl_reset > now_unix)
				api->rl_rate = (double) (r->rl_limit - r->rl_remaining) / (double) (r->rl_reset - now_unix);
		}
	}
	if (r->error_code == NULL && r->http_status == 429)
	{
		double		secs = r->retry_after > 0 ? r->retry_after : 1.0;

		api->paused_until = TimestampTzPlusMilliseconds(now, (int64) (secs * 1000));
		api->rl_remaining = 0;
		api->rl_seen = now;
		api->sent_since = 0;
		api->status.rate_limited++;
	}
	if (r->error_code != NULL)
		api->status.no_response++;
	if (api->ndone == api->done_cap)
	{
		int			cap = api->done_cap ? api->done_cap * 2 : 64;

		api->done = api->done ? repalloc(api->done, sizeof(HttpRequest *) * cap) :
			MemoryContextAlloc(TopMemoryContext, sizeof(HttpRequest *) * cap);
		api->done_cap = cap;
	}
	api->done[api->ndone++] = r;
	if (api->next_claim_at > now)
		api->next_claim_at = 0;
}

/* The meta argument of the response function, as JSON text. */
static char *
ApiMeta(HttpRequest *r)
{
	StringInfoData m;

	initStringInfo(&m);
	appendStringInfo(&m, "{\"duration_ms\": %.3f", r->duration_ms);
	appendStringInfoString(&m, ", \"correlation_id\": ");
	if (r->correlation_id[0])
		escape_json(&m, r->correlation_id);
	else
		appendStringInfoString(&m, "null");
	if (r->retry_after >= 0)
		appendStringInfo(&m, ", \"retry_after\": %.3f", r->retry_after);
	else
		appendStringInfoString(&m, ", \"retry_after\": null");
	if (r->rl_limit >= 0 && r->rl_remaining >= 0)
		appendStringInfo(&m, ", \"ratelimit\": {\"limit\": %ld, \"remaining\": %ld, \"reset\": %lld}",
						 r->rl_limit, r->rl_remaining, r->rl_reset);
	else
		appendStringInfoString(&m, ", \"ratelimit\": null");
	if (r->error_code)
	{
		appendStringInfoString(&m, ", \"error\": {\"code\": ");
		escape_json(&m, r->error_code);
		appendStringInfoString(&m, ", \"message\": ");
		escape_json(&m, r->error);
		appendStringInfoChar(&m, '}');
	}
	else
		appendStringInfoString(&m, ", \"error\": null");
	appendStringInfoChar(&m, '}');
	return m.data;
}

/* Hand one finished request to the response function (inside a subtransaction). */
static void
ApiReportOne(WorkerApi *api, HttpRequest *r)
{
	ApiTag	   *tag = (ApiTag *) r->user;
	Oid			argtypes[4] = {JSONBOID, INT4OID, TEXTOID, JSONBOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	const char *body = r->response ? r->response : "";

	args[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(tag->ref));
	if (r->error_code)
	{
		nulls[1] = 'n';
		nulls[2] = 'n';
		args[1] = args[2] = (Datum) 0;
	}
	else
	{
		args[1] = Int32GetDatum((int32) r->http_status);
		/* a body that is not valid text is handed over empty: SQL calls it malformed */
		if (strlen(body) != r->response_len ||
			!pg_verifymbstr(body, (int) r->response_len, true))
			body = "";
		args[2] = CStringGetTextDatum(body);
	}
	args[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(ApiMeta(r)));
	if (SPI_execute_with_args(api->response_sql, 4, argtypes, args, nulls, false, 0) < 0)
		elog(ERROR, "reporting a %s response failed", api->cfg.name);
}

/* Report one response in a subtransaction: an error loses only this one. */
static void
ApiReportGuarded(WorkerApi *api, HttpRequest *r, MemoryContext cxt)
{
	ResourceOwner owner = CurrentResourceOwner;
	MemoryContext inner = CurrentMemoryContext;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		ApiReportOne(api, r);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(inner);
		CurrentResourceOwner = owner;
		api->status.reported++;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(inner);
		CurrentResourceOwner = owner;
		api->status.report_errors++;
		ApiNoteError(api, "a response could not be applied (the claim is rescued when its lease ends)",
					 edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

typedef struct ApiReportArgs
{
	WorkerApi  *api;
	MemoryContext cxt;			/* outside the transaction, for error data */
} ApiReportArgs;

/* WorkerTransaction step: every finished request, one subtransaction each. */
static void
ApiReportAll(void *argp)
{
	ApiReportArgs *a = (ApiReportArgs *) argp;

	for (int i = 0; i < a->api->ndone; i++)
	{
		ApiReportGuarded(a->api, a->api->done[i], a->cxt);
		/* the snapshot must see what the previous response changed */
		PopActiveSnapshot();
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
}

/* Hand every finished request to SQL: one transaction, one subtransaction each. */
void
WorkerApiReport(WorkerApi *api)
{
	ApiReportArgs a = {api, CurrentMemoryContext};
	char		error[WORKER_API_REASON_LEN];

	if (api->ndone == 0)
		return;
	if (!WorkerTransaction(NULL, ApiReportAll, &a, error, sizeof(error)))
		ApiNoteError(api, "reporting responses failed (their claims are rescued when their leases end)",
					 error);
	for (int i = 0; i < api->ndone; i++)
		ApiFreeRequest(api->done[i]);
	api->ndone = 0;
}

/* Milliseconds until this API wants to claim again (-1: only when woken). */
long
WorkerApiWaitMs(WorkerApi *api)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz at;

	if (api->claim_sql == NULL || api->cfg.refusing[0] != '\0' || api->cfg.token == NULL)
		return api->ndone > 0 ? 0 : -1;
	if (api->ndone > 0)
		return 0;
	at = Max(api->next_claim_at, api->paused_until);
	if (at == 0 && api->in_flight >= *api->concurrency)
		return -1;				/* a finished request wakes the engine fd */
	if (at <= now)
		return 0;
	return TimestampDifferenceMilliseconds(now, at);
}

/* Refresh api->status for the status view. */
void
WorkerApiUpdateStatus(WorkerApi *api)
{
	TimestampTz now = GetCurrentTimestamp();

	strlcpy(api->status.refusing, api->cfg.refusing, sizeof(api->status.refusing));
	strlcpy(api->status.base_url, api->cfg.base_url ? api->cfg.base_url : "", sizeof(api->status.base_url));
	api->status.concurrency = *api->concurrency;
	api->status.in_flight = api->in_flight;
	api->status.rl_limit = api->rl_limit > 0 ? api->rl_limit : -1;
	api->status.rl_estimate = api->rl_limit > 0 ? Max(ApiBudgetEstimate(api, now), 0) : -1;
	api->status.rl_reset = api->rl_reset;
	api->status.paused_until = api->paused_until > now ? api->paused_until : 0;
	api->status.next_claim_at = api->next_claim_at;
}
