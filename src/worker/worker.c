/*
 * worker.c — the pgext background worker and its housekeeping tasks.
 *
 * One static worker (registered in _PG_init when pgext is preloaded) connects
 * to pgext.database and runs a small scheduler: each task has an interval
 * setting and is run as one short transaction calling one SQL function (the
 * worker schedules, SQL decides).  An error in a task is caught, logged and
 * recorded in shared memory; the loop goes on.  While the server is in
 * recovery, or the extension is absent from the database, or
 * pgext.worker_enabled is off, the worker refuses to act, says why in
 * pgext.worker_status, and waits.
 *
 * The external APIs (api.c) run on the same loop: SQL hands out HTTP
 * requests, the HTTP engine (http.c, libcurl's multi socket interface) sends
 * them, and the responses go back to SQL.  The loop waits on a WaitEventSet
 * holding the latch, postmaster death and the engine's private epoll fd (with
 * curl's timer as the timeout), so SIGTERM, SIGHUP and postmaster death are
 * answered at once even with thousands of requests in flight.  No
 * transaction is open while a request is on the wire.
 *
 * At start (and after a promotion) the worker takes a new epoch
 * (pgext.worker_begin): claims of an earlier epoch are taken back at once and
 * rescued through a lookup by name, never re-sent blindly.
 *
 * Shared memory holds the worker's latch (so worker_wake can set it from any
 * backend), the per-task status (worker_status) and the per-API status
 * (worker_api_status).
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "common/args.h"
#include "common/preload.h"
#include "common/wake.h"
#include "health/poller.h"
#include "settings.h"
#include "webhooks/webhooks.h"
#include "worker/api.h"
#include "worker/http.h"
#include "worker/txn.h"
#include "worker/worker.h"

PGDLLEXPORT void pgext_worker_main(Datum arg);

PG_FUNCTION_INFO_V1(worker_wake);
PG_FUNCTION_INFO_V1(worker_run_now);
PG_FUNCTION_INFO_V1(worker_tasks);
PG_FUNCTION_INFO_V1(worker_apis);

#define WORKER_ERROR_LEN 256
#define WORKER_REASON_LEN 128
/* How long to wait when refusing to act (extension absent, disabled). */
#define WORKER_IDLE_MS 10000L
/* How often to look again while in recovery (no query, just a flag). */
#define WORKER_RECOVERY_MS 1000L
/* While acting, how often the worker checks that the extension still exists. */
#define WORKER_EXTENSION_CHECK_MS 1000L
/* How often a refused API's configuration is read again. */
#define WORKER_CONFIG_RETRY_MS 5000L
/* How often the worker renews its epoch's heartbeat. */
#define WORKER_HEARTBEAT_MS 15000L

/* One task: its name, the SQL it runs, and its interval setting. */
typedef struct WorkerTask
{
	const char *name;
	const char *sql;
	const char *guc;
	const char *desc;
	int			default_s;
	const char *api;			/* the API the task needs ("hetzner"), or NULL */
	int			interval_s;		/* the setting (this process's value) */
} WorkerTask;

static WorkerTask tasks[] = {
	{"credit_sweep", "SELECT pgext.credit_sweep()", "pgext.credit_sweep_interval",
	"Seconds between credit sweeps (expired lots and reservations; 0 = only on demand).", 60},
	{"billing_expire_grace", "SELECT pgext.billing_expire_grace()", "pgext.billing_expire_grace_interval",
	"Seconds between ends of lapsed payment grace periods (0 = only on demand).", 60},
	{"access_expire", "SELECT pgext.access_expire()", "pgext.access_expire_interval",
	"Seconds between ends of expired access grants (0 = only on demand).", 60},
	{"webhook_apply", "SELECT pgext.webhook_apply()", "pgext.webhook_apply_interval",
	"Seconds between runs of the webhook apply queue besides wake-ups (0 = only on demand).", 5},
	{"webhook_retention", "SELECT pgext.webhook_retention()", "pgext.webhook_retention_interval",
	"Seconds between webhook retention runs (0 = only on demand).", 86400},
	{"secret_audit_flush", "SELECT pgext.secret_audit_flush()", "pgext.secret_audit_flush_interval",
	"Seconds between flushes of the secret audit counters (0 = only on demand).", 60},
	{"server_reconcile", "SELECT pgext.server_reconcile()", "pgext.server_reconcile_interval",
	"Seconds between runs of the server policy and clocks (0 = only on demand).", 60},
	{"api_calls_retention", "SELECT pgext.api_calls_retention()", "pgext.api_calls_retention_interval",
	"Seconds between deletions of api_calls rows past pgext.api_calls_retention (0 = only on demand).", 3600},
	{"hetzner_reconcile", "SELECT pgext.hetzner_reconcile_start()", "pgext.hetzner_reconcile_interval",
	"Seconds between reconciliations of Hetzner's servers with pgext.servers (0 = only on demand).", 3600,
	"hetzner"},
	{"stripe_reconcile", "SELECT pgext.stripe_reconcile_start()", "pgext.stripe_reconcile_interval",
	"Seconds between reconciliations of Stripe's subscriptions with pgext (0 = only on demand).", 86400,
	"stripe"},
	{"stripe_events", "SELECT pgext.stripe_events_start()", "pgext.stripe_events_interval",
	"Seconds between fetches of Stripe events that never arrived as webhooks (0 = only on demand).", 3600,
	"stripe"},
	{"health_recover", "SELECT pgext.health_recover()", "pgext.health_recover_interval",
	"Seconds between runs of health recovery and the breaker besides batches that changed a check (0 = only on demand).", 5},
	{"health_retention", "SELECT pgext.health_retention()", "pgext.health_retention_interval",
	"Seconds between deletions of health events past pgext.health_history_retention (0 = only on demand).", 3600},
};

#define NUM_TASKS ((int) lengthof(tasks))
/* tasks[] index of webhook_apply, which a wake-up makes due */
#define WORKER_TASK_WEBHOOK_APPLY 3
/* tasks[] index of health_recover, which a batch that changed a check makes due */
#define WORKER_TASK_HEALTH_RECOVER 11

/* A task's status, in shared memory. */
typedef struct WorkerTaskState
{
	bool		due_now;		/* worker_run_now asked for a run */
	bool		last_ok;
	int			interval_s;		/* the worker's value, -1 before it starts */
	int64		runs;
	TimestampTz last_run_at;	/* 0 = never */
	TimestampTz next_run_at;
	char		last_error[WORKER_ERROR_LEN];
} WorkerTaskState;

/* The worker's shared state; lock protects everything but latch reads. */
typedef struct WorkerShared
{
	LWLock	   *lock;
	pid_t		pid;			/* 0 when not running */
	Latch	   *latch;			/* the worker's latch, NULL when not running */
	char		refusing[WORKER_REASON_LEN];	/* "" = acting */
	uint64		wake_seq;		/* bumped by every wake-up an app asks for */
	int64		epoch;			/* the worker's epoch, 0 before it begins */
	WorkerTaskState task[NUM_TASKS];
	WorkerApiStatus api[2];		/* apis[] below: hetzner, stripe */
} WorkerShared;

static WorkerShared *wshared = NULL;
static bool worker_enabled = true;
static int	hetzner_concurrency = 5;
static int	stripe_concurrency = 4;
static int	stripe_rps = 0;
static int	http_timeout_s = 30;

/* The Hetzner API as the worker drives it (the worker process only). */
static WorkerApi hetzner = {
	.cfg = {.name = "hetzner", .secret_name = "hetzner:api_token"},
	.url_setting = "pgext.hetzner_api_url",
	.claim_sql = "SELECT ref, class, method, path, body FROM pgext.hetzner_claim($1, $2, $3)",
	.response_sql = "SELECT pgext.hetzner_response($1, $2, $3, $4)",
	.next_due_sql = "SELECT pgext.hetzner_next_due()",
	.concurrency = &hetzner_concurrency,
	.max_response = 8 * 1024 * 1024,
	.rl_rate = 1.0,
};

/*
 * Stripe's read rate: pgext.stripe_requests_per_second, or when 0 about 20
 * per second in live mode and 10 in test mode (Stripe's limits are 100 and
 * 25; the rest is left to the application's own calls).
 */
static double
StripeMaxRps(void)
{
	if (stripe_rps > 0)
		return stripe_rps;
	return pgext_stripe_livemode ? 20 : 10;
}

/*
 * The Stripe API: the key must match pgext.stripe_livemode; its lists are
 * read at a self-imposed rate (Stripe sends no budget headers).
 */
static WorkerApi stripe = {
	.cfg = {.name = "stripe", .secret_name = "stripe:api_key"},
	.url_setting = "pgext.stripe_api_url",
	.claim_sql = "SELECT ref, class, method, path, body FROM pgext.stripe_claim($1, $2, $3)",
	.response_sql = "SELECT pgext.stripe_response($1, $2, $3, $4)",
	.next_due_sql = "SELECT pgext.stripe_next_due()",
	.concurrency = &stripe_concurrency,
	.max_rps = StripeMaxRps,
	.max_response = 16 * 1024 * 1024,
	.rl_rate = 1.0,
};

/* Every API the worker drives. */
static WorkerApi *const apis[] = {&hetzner, &stripe};

#define NUM_APIS ((int) lengthof(apis))

static HttpEngine *engine = NULL;

static bool WorkerWakeFromBackend(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Shared memory needed by the worker's state. */
static void
WorkerShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
	RequestNamedLWLockTranche("pgext worker", 1);
}

/* Create (or attach to) the worker's shared state. */
static void
WorkerShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wshared = ShmemInitStruct("pgext worker", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(wshared, 0, sizeof(WorkerShared));
		wshared->lock = &(GetNamedLWLockTranche("pgext worker"))->lock;
		for (int i = 0; i < NUM_TASKS; i++)
			wshared->task[i].interval_s = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Define the settings, hook shared memory and register the worker (preloaded only). */
void
WorkerInit(void)
{
	BackgroundWorker bgw;

	DefineCustomBoolVariable("pgext.worker_enabled",
							 "Whether the pgext background worker runs its tasks.",
							 "Off: the worker stays connected, does nothing and says so in pgext.worker_status.",
							 &worker_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	for (int i = 0; i < NUM_TASKS; i++)
		DefineCustomIntVariable(tasks[i].guc, tasks[i].desc, NULL,
								&tasks[i].interval_s, tasks[i].default_s, 0, 365 * 86400,
								PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("pgext.hetzner_concurrency",
							"Most Hetzner API calls the worker has in flight at once.",
							NULL, &hetzner_concurrency, 5, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.stripe_concurrency",
							"Most Stripe API calls the worker has in flight at once.",
							NULL, &stripe_concurrency, 4, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.stripe_requests_per_second",
							"Most Stripe API calls the worker starts per second.",
							"0: 20 in live mode, 10 in test mode (Stripe allows 100 and 25; the rest is the application's).",
							&stripe_rps, 0, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.http_timeout",
							"Timeout of one API call made by the worker (connect, send, receive).",
							"A call without an answer by then counts as a network error; a create whose answer is lost is looked up by name.",
							&http_timeout_s, 30, 1, 600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	Assert(strcmp(tasks[WORKER_TASK_WEBHOOK_APPLY].name, "webhook_apply") == 0);
	Assert(strcmp(tasks[WORKER_TASK_HEALTH_RECOVER].name, "health_recover") == 0);
	if (!pgext_preloaded)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = WorkerShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = WorkerShmemStartup;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pgext");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "pgext_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "pgext worker");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pgext worker");
	RegisterBackgroundWorker(&bgw);
	pgext_wake_function = WorkerWakeFromBackend;
}

/* Wake the worker from another backend (at commit, through common/wake.c). */
static bool
WorkerWakeFromBackend(void)
{
	Latch	   *latch;

	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	wshared->wake_seq++;
	latch = wshared->latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(wshared->lock);
	return latch != NULL;
}

/* Forget the worker's latch on exit, so nobody sets a stale one. */
static void
WorkerDetach(int code, Datum arg)
{
	if (engine)
	{
		/* aborts every request in flight, health checks too */
		HttpEngineDestroy(engine);
		engine = NULL;
		HealthPollerStop();
	}
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	wshared->pid = 0;
	wshared->latch = NULL;
	wshared->epoch = 0;
	LWLockRelease(wshared->lock);
}

/* Publish why the worker refuses to act ("" = it acts); log each new reason once. */
static void
WorkerSetRefusing(const char *reason)
{
	static char published[WORKER_REASON_LEN] = "";
	bool		changed;

	/* only this process writes it: no lock on every loop turn when it did not change */
	if (strncmp(published, reason, WORKER_REASON_LEN - 1) == 0)
		return;
	strlcpy(published, reason, WORKER_REASON_LEN);
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	changed = strcmp(wshared->refusing, reason) != 0;
	if (changed)
		strlcpy(wshared->refusing, reason, WORKER_REASON_LEN);
	LWLockRelease(wshared->lock);
	if (changed && reason[0] != '\0')
		ereport(LOG, (errmsg("pgext worker is waiting: %s", reason)));
	else if (changed)
		ereport(LOG, (errmsg("pgext worker is running its tasks in database \"%s\"",
							 pgext_database)));
}

/* Publish the intervals read from the settings (at start and after a reload). */
static void
WorkerPublishIntervals(TimestampTz now)
{
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < NUM_TASKS; i++)
	{
		WorkerTaskState *st = &wshared->task[i];

		if (st->interval_s != tasks[i].interval_s)
		{
			st->interval_s = tasks[i].interval_s;
			st->next_run_at = tasks[i].interval_s == 0 ? 0 :
				(st->last_run_at == 0 ? now :
				 TimestampTzPlusMilliseconds(st->last_run_at,
											 (int64) tasks[i].interval_s * 1000));
		}
	}
	LWLockRelease(wshared->lock);
}

/* Whether extension pgext exists in this database (a short transaction). */
static bool
WorkerExtensionPresent(void)
{
	bool		present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("pgext", true));
	CommitTransactionCommand();
	return present;
}

/* The API of that name, or NULL. */
static WorkerApi *
WorkerApiByName(const char *name)
{
	if (name == NULL)
		return NULL;
	for (int i = 0; i < NUM_APIS; i++)
		if (strcmp(apis[i]->cfg.name, name) == 0)
			return apis[i];
	return NULL;
}

/* WorkerTransaction step: a task's SQL. */
static void
WorkerTaskStep(void *arg)
{
	WorkerTask *task = (WorkerTask *) arg;

	if (SPI_execute(task->sql, false, 0) < 0)
		elog(ERROR, "SPI_execute failed for task %s", task->name);
}

/*
 * Run one task as its own transaction.  An error is caught: the transaction
 * is aborted, the message logged and kept in the task's status row.
 */
static void
WorkerRunTask(int i)
{
	bool		ok;
	char		error[WORKER_ERROR_LEN];
	TimestampTz now;
	WorkerTaskState *st = &wshared->task[i];
	WorkerApi  *api = WorkerApiByName(tasks[i].api);

	if (api != NULL && (api->cfg.refusing[0] != '\0' || api->cfg.token == NULL))
	{
		/* not a run: it stays due and runs once the API may be called */
		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		snprintf(st->last_error, WORKER_ERROR_LEN, "waiting: the %s API is refused: %s",
				 tasks[i].api, api->cfg.refusing);
		st->next_run_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_CONFIG_RETRY_MS);
		LWLockRelease(wshared->lock);
		return;
	}
	ok = WorkerTransaction(tasks[i].sql, WorkerTaskStep, &tasks[i], error, sizeof(error));
	if (!ok)
		ereport(LOG,
				(errmsg("pgext worker task %s failed: %s", tasks[i].name, error),
				 errhint("The task runs again at its next interval; pgext.worker_status shows its last error.")));

	now = GetCurrentTimestamp();
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	st->runs++;
	st->last_run_at = now;
	st->last_ok = ok;
	strlcpy(st->last_error, error, WORKER_ERROR_LEN);
	st->next_run_at = tasks[i].interval_s == 0 ? 0 :
		TimestampTzPlusMilliseconds(now, (int64) tasks[i].interval_s * 1000);
	LWLockRelease(wshared->lock);
	/* a task may have queued API work (a reconciliation's first page) */
	if (ok && api)
		api->next_claim_at = 0;
}

/*
 * Run every task that is due; return the milliseconds until the next one is
 * (-1: none scheduled).
 */
static long
WorkerRunDue(void)
{
	long		wait_ms = -1;
	bool		due[NUM_TASKS];
	TimestampTz next[NUM_TASKS];
	bool		any = false;
	TimestampTz now = GetCurrentTimestamp();

	/*
	 * One look under the lock per loop turn (it runs at every completion
	 * batch): which tasks are due, and when the others are.
	 */
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < NUM_TASKS; i++)
	{
		WorkerTaskState *st = &wshared->task[i];

		due[i] = st->due_now || (st->next_run_at != 0 && st->next_run_at <= now);
		st->due_now = false;
		next[i] = st->next_run_at;
		any |= due[i];
	}
	LWLockRelease(wshared->lock);
	if (any)
	{
		for (int i = 0; i < NUM_TASKS; i++)
		{
			if (due[i])
				WorkerRunTask(i);
			CHECK_FOR_INTERRUPTS();
		}
		LWLockAcquire(wshared->lock, LW_SHARED);
		for (int i = 0; i < NUM_TASKS; i++)
			next[i] = wshared->task[i].next_run_at;
		LWLockRelease(wshared->lock);
		now = GetCurrentTimestamp();
	}
	for (int i = 0; i < NUM_TASKS; i++)
	{
		long		ms;

		if (next[i] == 0)
			continue;
		ms = TimestampDifferenceMilliseconds(now, next[i]);
		if (wait_ms < 0 || ms < wait_ms)
			wait_ms = ms;
	}
	return wait_ms;
}

/* One statement with arguments and its one bigint (or boolean) result. */
typedef struct WorkerInt8Query
{
	const char *sql;
	int			nargs;
	Oid		   *argtypes;
	Datum	   *args;
	int64		result;
	bool		isnull;
} WorkerInt8Query;

/* WorkerTransaction step: run the query, keep its value. */
static void
WorkerInt8Step(void *arg)
{
	WorkerInt8Query *q = (WorkerInt8Query *) arg;
	Datum		d;

	if (SPI_execute_with_args(q->sql, q->nargs, q->argtypes, q->args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "%s returned no row", q->sql);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &q->isnull);
	if (!q->isnull)
		q->result = SPI_gettypeid(SPI_tuptable->tupdesc, 1) == BOOLOID ?
			(int64) DatumGetBool(d) : DatumGetInt64(d);
}

/*
 * Run one SQL statement returning one bigint in its own transaction; false
 * (and the error logged) when it fails.
 */
static bool
WorkerExecInt8(const char *sql, int nargs, Oid *argtypes, Datum *args, int64 *result, bool *isnull)
{
	WorkerInt8Query q = {sql, nargs, argtypes, args, 0, true};
	char		error[WORKER_ERROR_LEN];

	*isnull = true;
	if (!WorkerTransaction(sql, WorkerInt8Step, &q, error, sizeof(error)))
	{
		ereport(LOG, (errmsg("pgext worker: %s failed: %s", sql, error)));
		return false;
	}
	*isnull = q.isnull;
	if (!q.isnull)
		*result = q.result;
	return true;
}

/*
 * Take a new epoch (pgext.worker_begin): claims of earlier epochs are taken
 * back, so work a dead worker or an old primary began is rescued at once.
 */
static bool
WorkerBegin(int64 *epoch)
{
	char		holder[64];
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	int64		e = 0;

	snprintf(holder, sizeof(holder), "pgext worker pid %d", MyProcPid);
	args[0] = CStringGetTextDatum(holder);
	if (!WorkerExecInt8("SELECT pgext.worker_begin($1)", 1, argtypes, args, &e, &isnull) || isnull)
		return false;
	*epoch = e;
	/* the extension may have been recreated: its checks are loaded anew */
	HealthPollerReload();
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	wshared->epoch = e;
	LWLockRelease(wshared->lock);
	ereport(LOG, (errmsg("pgext worker began epoch " INT64_FORMAT, e)));
	return true;
}

/* Renew the epoch's heartbeat; false when another worker took over. */
static bool
WorkerHeartbeat(int64 epoch)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(epoch)};
	bool		isnull;
	int64		alive = 1;

	if (!WorkerExecInt8("SELECT pgext.worker_heartbeat($1)", 1, argtypes, args, &alive, &isnull))
		return true;			/* logged; try again later */
	return isnull || alive != 0;
}

/* WorkerTransaction step: read the APIs' configuration (*all: every API). */
static void
WorkerConfigureStep(void *arg)
{
	bool		all = *(bool *) arg;

	for (int i = 0; i < NUM_APIS; i++)
	{
		apis[i]->timeout_ms = http_timeout_s * 1000;
		if (all || apis[i]->cfg.refusing[0] != '\0')
			WorkerApiConfigure(apis[i]);
	}
}

/*
 * Read the APIs' configuration (one transaction); errors leave them refused.
 * all = false: only the APIs that refuse now (a secret stored since).
 */
static void
WorkerConfigure(bool all)
{
	char		error[WORKER_ERROR_LEN];

	if (WorkerTransaction(NULL, WorkerConfigureStep, &all, error, sizeof(error)))
		return;
	for (int i = 0; i < NUM_APIS; i++)
		snprintf(apis[i]->cfg.refusing, sizeof(apis[i]->cfg.refusing),
				 "reading the configuration failed: %s", error);
	ereport(LOG, (errmsg("pgext worker: reading the configuration failed: %s", error)));
}

/* Publish the APIs' status for worker_api_status. */
static void
WorkerPublishApis(void)
{
	for (int i = 0; i < NUM_APIS; i++)
		WorkerApiUpdateStatus(apis[i]);
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < NUM_APIS; i++)
		memcpy(&wshared->api[i], &apis[i]->status, sizeof(WorkerApiStatus));
	LWLockRelease(wshared->lock);
}

/*
 * Move the engine: let curl do its socket work, take finished requests and
 * report them to SQL.  Runs whether or not the worker acts, so requests begun
 * before a refusal are still answered.
 */
static void
WorkerDriveEngine(bool may_report)
{
	HttpRequest *r;

	HttpEngineDrive(engine);
	while ((r = HttpEngineNextDone(engine)) != NULL)
	{
		WorkerApi  *owner = NULL;

		if (HealthPollerOwns(r))
		{
			HealthPollerFinished(r);
			continue;
		}
		for (int i = 0; i < NUM_APIS && owner == NULL; i++)
			if (WorkerApiOwns(apis[i], r))
				owner = apis[i];
		if (owner)
			WorkerApiFinished(owner, r);
		else
			HttpRequestFree(r);
	}
	if (may_report)
		for (int i = 0; i < NUM_APIS; i++)
			WorkerApiReport(apis[i]);
}

/* Whether some API refuses now (its configuration is read again soon). */
static bool
WorkerAnyApiRefused(void)
{
	for (int i = 0; i < NUM_APIS; i++)
		if (apis[i]->cfg.refusing[0] != '\0')
			return true;
	return false;
}

/* The smaller of two waits in milliseconds (-1 = forever). */
static long
WorkerMinWait(long a, long b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return Min(a, b);
}

/* The worker's entry point: connect, then loop until told to stop. */
void
pgext_worker_main(Datum arg)
{
	MemoryContext cycle_cxt;
	WaitEventSet *events;
	char		errbuf[256];
	int64		epoch = 0;
	bool		configured = false;
	uint64		seen_wake = 0;
	TimestampTz next_heartbeat = 0;
	TimestampTz next_config = 0;
	TimestampTz next_extension_check = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(pgext_database, NULL, 0);
	pgstat_report_appname("pgext worker");

	engine = HttpEngineCreate(errbuf, sizeof(errbuf));
	if (engine == NULL)
		ereport(FATAL,
				(errmsg("pgext worker cannot start its HTTP engine: %s", errbuf),
				 errhint("Check that libcurl is installed; the worker is restarted in 5 seconds.")));
	HealthPollerStart();

	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	wshared->pid = MyProcPid;
	wshared->latch = MyLatch;
	wshared->refusing[0] = '\0';
	seen_wake = wshared->wake_seq;
	LWLockRelease(wshared->lock);
	before_shmem_exit(WorkerDetach, (Datum) 0);

	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "pgext worker cycle",
									  ALLOCSET_DEFAULT_SIZES);
	/* Latch, postmaster death and the HTTP engine's epoll fd. */
	events = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(events, WL_SOCKET_READABLE, HttpEngineFd(engine), NULL, NULL);

	WorkerPublishIntervals(GetCurrentTimestamp());
	for (;;)
	{
		long		wait_ms;
		bool		acting = false;
		WaitEvent	ev;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			WorkerPublishIntervals(GetCurrentTimestamp());
			configured = false;
		}
		MemoryContextReset(cycle_cxt);
		MemoryContextSwitchTo(cycle_cxt);

		if (RecoveryInProgress())
		{
			WorkerSetRefusing("in recovery (a standby acts only after promotion)");
			wait_ms = WORKER_RECOVERY_MS;
		}
		else if (!worker_enabled)
		{
			WorkerSetRefusing("disabled by pgext.worker_enabled");
			wait_ms = -1;
		}
		else if ((epoch == 0 || GetCurrentTimestamp() >= next_extension_check) &&
				 !WorkerExtensionPresent())
		{
			char		reason[WORKER_REASON_LEN];

			snprintf(reason, sizeof(reason),
					 "extension pgext is not installed in database \"%s\" (pgext.database)",
					 pgext_database);
			WorkerSetRefusing(reason);
			epoch = 0;
			configured = false;
			wait_ms = WORKER_IDLE_MS;
		}
		else if (epoch == 0 && !WorkerBegin(&epoch))
		{
			WorkerSetRefusing("pgext.worker_begin failed (see the server log); trying again");
			wait_ms = WORKER_IDLE_MS;
		}
		else
		{
			uint64		wake;

			acting = true;
			WorkerSetRefusing("");
			/* not a transaction per loop turn: with many answers arriving it adds up */
			if (GetCurrentTimestamp() >= next_extension_check)
				next_extension_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_EXTENSION_CHECK_MS);
			if (!configured || (next_config != 0 && GetCurrentTimestamp() >= next_config))
			{
				/* all at start and reload; a refused API again every few seconds */
				WorkerConfigure(!configured);
				configured = true;
				next_config = WorkerAnyApiRefused() ?
					TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_CONFIG_RETRY_MS) : 0;
			}
			if (GetCurrentTimestamp() >= next_heartbeat)
			{
				if (!WorkerHeartbeat(epoch))
				{
					ereport(LOG, (errmsg("pgext worker lost epoch " INT64_FORMAT "; beginning a new one", epoch)));
					epoch = 0;
					continue;
				}
				next_heartbeat = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_HEARTBEAT_MS);
			}
			/* an app queued work: new webhook events, servers to create */
			LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
			wake = wshared->wake_seq;
			if (wake != seen_wake)
				wshared->task[WORKER_TASK_WEBHOOK_APPLY].due_now = true;
			LWLockRelease(wshared->lock);
			if (wake != seen_wake)
			{
				seen_wake = wake;
				for (int i = 0; i < NUM_APIS; i++)
					apis[i]->next_claim_at = 0;
				/* a check added or removed wakes the worker */
				HealthPollerWake();
			}
			wait_ms = WorkerRunDue();
			WorkerDriveEngine(true);
			for (int i = 0; i < NUM_APIS; i++)
			{
				WorkerApiPump(apis[i], engine, epoch);
				wait_ms = WorkerMinWait(wait_ms, WorkerApiWaitMs(apis[i]));
			}
			if (HealthPollerPump(engine))
			{
				/* some check changed state: recovery decides at once */
				LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
				wshared->task[WORKER_TASK_HEALTH_RECOVER].due_now = true;
				LWLockRelease(wshared->lock);
				wait_ms = 0;
			}
			wait_ms = WorkerMinWait(wait_ms, HealthPollerWaitMs());
			wait_ms = WorkerMinWait(wait_ms,
									TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_heartbeat));
			if (next_config != 0)
				wait_ms = WorkerMinWait(wait_ms,
										TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_config));
		}
		if (!acting)
			WorkerDriveEngine(!RecoveryInProgress());
		WorkerPublishApis();
		HealthPollerPublish(acting);
		wait_ms = WorkerMinWait(wait_ms, HttpEngineTimeoutMs(engine));
		MemoryContextSwitchTo(TopMemoryContext);

		(void) WaitEventSetWait(events, wait_ms, &ev, 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Set the worker's latch; false when the worker is not running. */
static bool
WorkerSetLatch(void)
{
	Latch	   *latch;

	LWLockAcquire(wshared->lock, LW_SHARED);
	latch = wshared->latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(wshared->lock);
	return latch != NULL;
}

/*
 * worker_wake(): wake the worker when this transaction commits (at once in
 * autocommit): it applies new webhook events and claims new API work then.
 * False when no worker runs now (also when pgext is not preloaded).
 */
Datum
worker_wake(PG_FUNCTION_ARGS)
{
	bool		running;

	if (!pgext_preloaded)
		PG_RETURN_BOOL(false);	/* no worker without preloading */
	LWLockAcquire(wshared->lock, LW_SHARED);
	running = wshared->latch != NULL;
	LWLockRelease(wshared->lock);
	PgextWakeAtCommit();
	PG_RETURN_BOOL(running);
}

/* worker_run_now(task): make a task due now and wake the worker. */
Datum
worker_run_now(PG_FUNCTION_ARGS)
{
	char	   *name;
	StringInfoData known;

	PgextRequirePreload("the background worker");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task must not be null"),
				 errhint("Pass one of the task names shown in pgext.worker_status.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(name, "housekeeping") == 0)
	{
		/* every task that calls no external API */
		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < NUM_TASKS; i++)
			if (tasks[i].api == NULL)
				wshared->task[i].due_now = true;
		LWLockRelease(wshared->lock);
		PG_RETURN_BOOL(WorkerSetLatch());
	}
	for (int i = 0; i < NUM_TASKS; i++)
	{
		if (strcmp(name, tasks[i].name) != 0)
			continue;
		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		wshared->task[i].due_now = true;
		LWLockRelease(wshared->lock);
		PG_RETURN_BOOL(WorkerSetLatch());
	}
	initStringInfo(&known);
	for (int i = 0; i < NUM_TASKS; i++)
		appendStringInfo(&known, "%s, ", tasks[i].name);
	appendStringInfoString(&known, "housekeeping (every task that calls no API)");
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown worker task \"%s\"", PgextShownValue(name)),
			 errhint("Known tasks: %s.", known.data)));
	PG_RETURN_NULL();
}

/* worker_tasks(): one row per task with its status (the view worker_status). */
Datum
worker_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerShared snap;

	PgextRequirePreload("the background worker");
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(wshared->lock, LW_SHARED);
	memcpy(&snap, wshared, sizeof(snap));
	LWLockRelease(wshared->lock);

	for (int i = 0; i < NUM_TASKS; i++)
	{
		Datum		v[9];
		bool		n[9] = {0};
		WorkerTaskState *st = &snap.task[i];

		v[0] = CStringGetTextDatum(tasks[i].name);
		if (st->interval_s < 0)
			n[1] = true;
		else
		{
			Interval   *iv = palloc0(sizeof(Interval));

			iv->time = (int64) st->interval_s * USECS_PER_SEC;
			v[1] = IntervalPGetDatum(iv);
		}
		v[2] = TimestampTzGetDatum(st->last_run_at);
		n[2] = st->last_run_at == 0;
		v[3] = BoolGetDatum(st->last_ok);
		n[3] = st->last_run_at == 0;
		v[4] = CStringGetTextDatum(st->last_error);
		n[4] = st->last_error[0] == '\0';
		v[5] = TimestampTzGetDatum(st->due_now ? GetCurrentTimestamp() : st->next_run_at);
		n[5] = !st->due_now && st->next_run_at == 0;
		v[6] = Int64GetDatum(st->runs);
		v[7] = Int32GetDatum(snap.pid);
		n[7] = snap.pid == 0;
		v[8] = CStringGetTextDatum(snap.pid == 0 ? "worker not running" : snap.refusing);
		n[8] = snap.pid != 0 && snap.refusing[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}

/* A timestamp column, NULL when zero. */
static void
SetTimestamp(Datum *v, bool *n, TimestampTz t)
{
	*v = TimestampTzGetDatum(t);
	*n = t == 0;
}

/* worker_apis(): one row per external API with its status (worker_api_status). */
Datum
worker_apis(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerApiStatus st[2];
	static const char *const names[2] = {"hetzner", "stripe"};
	pid_t		pid;

	PgextRequirePreload("the background worker");
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(wshared->lock, LW_SHARED);
	memcpy(st, wshared->api, sizeof(st));
	pid = wshared->pid;
	LWLockRelease(wshared->lock);

	for (int i = 0; i < 2; i++)
	{
		Datum		v[16];
		bool		n[16] = {0};
		WorkerApiStatus *a = &st[i];

		v[0] = CStringGetTextDatum(names[i]);
		v[1] = CStringGetTextDatum(a->base_url);
		n[1] = a->base_url[0] == '\0';
		v[2] = CStringGetTextDatum(pid == 0 ? "worker not running" :
								   a->refusing[0] ? a->refusing :
								   a->base_url[0] ? "" : "not configured yet");
		n[2] = pid != 0 && a->refusing[0] == '\0' && a->base_url[0] != '\0';
		v[3] = Int32GetDatum(a->concurrency);
		v[4] = Int32GetDatum(a->in_flight);
		v[5] = Int64GetDatum(a->sent);
		v[6] = Int64GetDatum(a->no_response);
		v[7] = Int64GetDatum(a->rate_limited);
		v[8] = Int64GetDatum(a->report_errors);
		v[9] = Int64GetDatum(a->rl_limit);
		n[9] = a->rl_limit < 0;
		v[10] = Int64GetDatum((int64) floor(a->rl_estimate));
		n[10] = a->rl_limit < 0;
		SetTimestamp(&v[11], &n[11], a->rl_reset);
		SetTimestamp(&v[12], &n[12], a->paused_until);
		SetTimestamp(&v[13], &n[13], a->next_claim_at);
		v[14] = CStringGetTextDatum(a->last_error);
		n[14] = a->last_error[0] == '\0';
		SetTimestamp(&v[15], &n[15], a->last_error_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
