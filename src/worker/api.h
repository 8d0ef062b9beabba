/*
 * api.h — one external API as the worker drives it (api.c): SQL hands out
 * HTTP requests (a claim function), the HTTP engine sends them, and every
 * response goes back to SQL (a response function).  The worker adds only
 * scheduling: how many at once, and a rate-limit budget read from the API's
 * RateLimit headers with reserves per class of request.
 */
#ifndef PGEXT_WORKER_API_H
#define PGEXT_WORKER_API_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "worker/config.h"
#include "worker/http.h"

/* Request classes, in the order they are served. */
#define API_CLASS_URGENT 0		/* deletes, power off: never starved */
#define API_CLASS_RECONCILE 1
#define API_CLASS_NORMAL 2
#define API_NUM_CLASSES 3

/* What an API's status row shows (copied to shared memory by the worker). */
typedef struct WorkerApiStatus
{
	char		refusing[WORKER_API_REASON_LEN];
	char		base_url[128];
	int			concurrency;
	int			in_flight;
	int64		sent;
	int64		no_response;	/* network, timeout, tls, too large */
	int64		rate_limited;	/* 429s */
	int64		reported;		/* responses handed to SQL */
	int64		report_errors;	/* responses SQL could not take */
	long		rl_limit;		/* -1 unknown */
	double		rl_estimate;	/* requests the budget allows now */
	TimestampTz rl_reset;		/* 0 unknown */
	TimestampTz paused_until;	/* after a 429; 0 = not paused */
	TimestampTz next_claim_at;	/* 0 = as soon as a slot is free */
	TimestampTz last_error_at;
	char		last_error[WORKER_API_REASON_LEN];
} WorkerApiStatus;

typedef struct WorkerApi
{
	WorkerApiConfig cfg;
	const char *url_setting;	/* e.g. "pgext.hetzner_api_url" */
	const char *claim_sql;		/* $1 epoch, $2 limit, $3 classes text[]; columns ref,
								 * class, method, path, body[, idempotency_key] */
	const char *response_sql;	/* $1 ref jsonb, $2 status int, $3 body text, $4 meta jsonb */
	const char *next_due_sql;	/* no arguments; one timestamptz (NULL: nothing queued) */
	int		   *concurrency;	/* the setting */
	double		(*max_rps) (void);	/* self-imposed requests per second (NULL/0: none) */
	int			timeout_ms;
	size_t		max_response;
	/* budget */
	long		rl_limit;
	double		rl_remaining;
	double		rl_rate;		/* refill per second */
	TimestampTz rl_seen;
	TimestampTz rl_reset;
	int			sent_since;
	TimestampTz paused_until;
	double		rate_tokens;	/* requests the self-imposed rate allows now */
	TimestampTz rate_at;
	/* scheduling */
	int			in_flight;
	TimestampTz next_claim_at;	/* 0: claim now */
	/* finished requests waiting to be reported to SQL */
	HttpRequest **done;
	int			ndone;
	int			done_cap;
	WorkerApiStatus status;
} WorkerApi;

/* Read the configuration (inside a transaction); logs a change of refusal. */
extern void WorkerApiConfigure(WorkerApi *api);

/* Claim and send what the budget and free slots allow (own transaction). */
extern void WorkerApiPump(WorkerApi *api, HttpEngine *engine, int64 epoch);

/* Take a finished request of this API (updates the budget). */
extern void WorkerApiFinished(WorkerApi *api, HttpRequest *r);

/* Hand every finished request to SQL (one transaction, one subtransaction each). */
extern void WorkerApiReport(WorkerApi *api);

/* Milliseconds until this API wants to claim again (-1: only when woken). */
extern long WorkerApiWaitMs(WorkerApi *api);

/* Refresh api->status for the status view. */
extern void WorkerApiUpdateStatus(WorkerApi *api);

/* Whether a finished request belongs to this API. */
extern bool WorkerApiOwns(WorkerApi *api, HttpRequest *r);

#endif							/* PGEXT_WORKER_API_H */
