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
 * The loop waits on a WaitEventSet holding the latch and postmaster death;
 * the HTTP engine will add one more fd (a private epoll set holding curl's
 * sockets) so that signals are answered at once with requests in flight.
 *
 * Shared memory holds the worker's latch (so worker_wake can set it from any
 * backend) and the per-task status (read by worker_status).
 */
#include "postgres.h"

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

#include "common/preload.h"
#include "settings.h"
#include "worker/worker.h"

PGDLLEXPORT void pgext_worker_main(Datum arg);

PG_FUNCTION_INFO_V1(worker_wake);
PG_FUNCTION_INFO_V1(worker_run_now);
PG_FUNCTION_INFO_V1(worker_tasks);

#define WORKER_ERROR_LEN 256
#define WORKER_REASON_LEN 128
/* How long to wait when refusing to act (extension absent, disabled). */
#define WORKER_IDLE_MS 10000L
/* How often to look again while in recovery (no query, just a flag). */
#define WORKER_RECOVERY_MS 1000L

/* One task: its name, the SQL it runs, and its interval setting. */
typedef struct WorkerTask
{
	const char *name;
	const char *sql;
	const char *guc;
	const char *desc;
	int			default_s;
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
};

#define NUM_TASKS ((int) lengthof(tasks))

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
	WorkerTaskState task[NUM_TASKS];
} WorkerShared;

static WorkerShared *wshared = NULL;
static bool worker_enabled = true;

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
}

/* Forget the worker's latch on exit, so nobody sets a stale one. */
static void
WorkerDetach(int code, Datum arg)
{
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	wshared->pid = 0;
	wshared->latch = NULL;
	LWLockRelease(wshared->lock);
}

/* Publish why the worker refuses to act ("" = it acts); log each new reason once. */
static void
WorkerSetRefusing(const char *reason)
{
	bool		changed;

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

/*
 * Run one task as its own transaction.  An error is caught: the transaction
 * is aborted, the message logged and kept in the task's status row.
 */
static void
WorkerRunTask(int i, MemoryContext cycle_cxt)
{
	volatile bool ok = true;
	char		error[WORKER_ERROR_LEN] = "";
	TimestampTz now;
	WorkerTaskState *st = &wshared->task[i];

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, tasks[i].sql);
		if (SPI_execute(tasks[i].sql, false, 0) < 0)
			elog(ERROR, "SPI_execute failed for task %s", tasks[i].name);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cycle_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
		strlcpy(error, edata->message ? edata->message : "unknown error", sizeof(error));
		ereport(LOG,
				(errmsg("pgext worker task %s failed: %s", tasks[i].name, error),
				 errhint("The task runs again at its next interval; pgext.worker_status shows its last error.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(cycle_cxt);

	now = GetCurrentTimestamp();
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	st->runs++;
	st->last_run_at = now;
	st->last_ok = ok;
	strlcpy(st->last_error, error, WORKER_ERROR_LEN);
	st->next_run_at = tasks[i].interval_s == 0 ? 0 :
		TimestampTzPlusMilliseconds(now, (int64) tasks[i].interval_s * 1000);
	LWLockRelease(wshared->lock);
}

/*
 * Run every task that is due; return the milliseconds until the next one is
 * (-1: none scheduled).
 */
static long
WorkerRunDue(MemoryContext cycle_cxt)
{
	long		wait_ms = -1;

	for (int i = 0; i < NUM_TASKS; i++)
	{
		bool		due;
		TimestampTz now = GetCurrentTimestamp();

		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		due = wshared->task[i].due_now ||
			(wshared->task[i].next_run_at != 0 && wshared->task[i].next_run_at <= now);
		wshared->task[i].due_now = false;
		LWLockRelease(wshared->lock);
		if (due)
			WorkerRunTask(i, cycle_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	for (int i = 0; i < NUM_TASKS; i++)
	{
		TimestampTz next;
		long		ms;

		LWLockAcquire(wshared->lock, LW_SHARED);
		next = wshared->task[i].next_run_at;
		LWLockRelease(wshared->lock);
		if (next == 0)
			continue;
		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next);
		if (wait_ms < 0 || ms < wait_ms)
			wait_ms = ms;
	}
	return wait_ms;
}

/* The worker's entry point: connect, then loop until told to stop. */
void
pgext_worker_main(Datum arg)
{
	MemoryContext cycle_cxt;
	WaitEventSet *events;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(pgext_database, NULL, 0);
	pgstat_report_appname("pgext worker");

	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	wshared->pid = MyProcPid;
	wshared->latch = MyLatch;
	wshared->refusing[0] = '\0';
	LWLockRelease(wshared->lock);
	before_shmem_exit(WorkerDetach, (Datum) 0);

	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "pgext worker cycle",
									  ALLOCSET_DEFAULT_SIZES);
	/* Latch and postmaster death; the HTTP engine adds its epoll fd here. */
	events = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);

	WorkerPublishIntervals(GetCurrentTimestamp());
	for (;;)
	{
		long		wait_ms;
		WaitEvent	ev;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			WorkerPublishIntervals(GetCurrentTimestamp());
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
		else if (!WorkerExtensionPresent())
		{
			char		reason[WORKER_REASON_LEN];

			snprintf(reason, sizeof(reason),
					 "extension pgext is not installed in database \"%s\" (pgext.database)",
					 pgext_database);
			WorkerSetRefusing(reason);
			wait_ms = WORKER_IDLE_MS;
		}
		else
		{
			WorkerSetRefusing("");
			wait_ms = WorkerRunDue(cycle_cxt);
		}
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

/* worker_wake(): wake the worker now; false when it is not running. */
Datum
worker_wake(PG_FUNCTION_ARGS)
{
	PgextRequirePreload("the background worker");
	PG_RETURN_BOOL(WorkerSetLatch());
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
		appendStringInfo(&known, "%s%s", i ? ", " : "", tasks[i].name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown worker task \"%s\"", name),
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
		n[4] = st->last_run_at == 0 || st->last_ok;
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
