/*
 * poller.c — the health poller: the fleet's health checks on the worker's
 * event loop.
 *
 * The worker moves bytes, SQL decides: the poller keeps the schedule in
 * memory, sends each check as a GET over the worker's HTTP engine (new
 * connection, own timeout, 64 KB at most, no Authorization) and writes the
 * results in batches with ONE call of pgext.health_record per batch (one
 * short transaction).  States, thresholds, grace, events and recovery are
 * SQL's.
 *
 * The schedule: the checks (pgext.health_worker_load) live in an array in a
 * memory context of their own, rebuilt on every reload, with a hash by id (a
 * reload keeps the schedule of the checks that stay) and a binary min-heap
 * on the next due time.  A check is in the heap, or busy (in flight, or its
 * result not yet written): one result per check at a time, so a batch never
 * holds two for one check.  Its next run is scheduled when its result is
 * written: previous due + interval × (1 ± jitter), never earlier than that
 * moment.  New checks (at start, after a reload) start at a uniformly random
 * point of [0, every).  A check SQL calls unhealthy (at the last load: a
 * batch that changed states reloads them) is probed at doubling intervals,
 * per consecutive failure past pgext.health_unhealthy_after, up to
 * pgext.health_unhealthy_max_interval.
 *
 * The version (pgext.health_config_version) is looked at on every worker
 * wake-up and at most once a second otherwise; the checks are loaded again
 * when it changed.
 *
 * Memory: nothing grows per check.  The check table is replaced as a whole;
 * results wait in a fixed array; each request is one malloc'd block (plus
 * its URL and method strings) freed when it completes; a batch's arrays live
 * in its transaction.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "health/health.h"
#include "health/poller.h"
#include "health/stats.h"
#include "worker/txn.h"

#define POLL_MAX_RESPONSE	(64 * 1024)	/* a larger answer fails: "too_large" */
#define POLL_VERSION_MS		1000	/* longest between two looks at the version */
#define POLL_RATE_SLOTS		11		/* one sample a second: checks_per_second over ~10 s */
#define POLL_FLUSH_ATTEMPTS	3		/* a batch that loses a deadlock is written again */
#define POLL_LOG_REPEAT_MS	60000	/* the same failure is logged again after this */

/* One check of the schedule. */
typedef struct PollCheck
{
	int64		id;
	char	   *url;
	int			every_ms;
	int			timeout_ms;
	int			failures;		/* consecutive failures, kept locally */
	bool		unhealthy;		/* SQL's state at the last load (doubling only then) */
	bool		busy;			/* in flight or its result unwritten: not in the heap */
	TimestampTz due;			/* next run (the last one while busy) */
} PollCheck;

/* The hash entry: a check's index by id. */
typedef struct PollEntry
{
	int64		id;				/* key */
	int			idx;
} PollEntry;

/* The loaded checks (everything in cxt). */
typedef struct PollTable
{
	MemoryContext cxt;			/* NULL before the first load */
	PollCheck  *checks;
	int			n;
	HTAB	   *by_id;
	int		   *heap;			/* indexes into checks, min-heap on due */
	int			heap_n;
	int64		version;
} PollTable;

/* A check on the wire: the request first, so that freeing it frees the block. */
typedef struct PollRequest
{
	HttpRequest req;
	int64		id;
} PollRequest;

/* One result waiting for its batch. */
typedef struct PollResult
{
	int64		id;
	bool		ok;
	int			status;			/* 0 = no HTTP response */
	int			latency_ms;
	const char *error;			/* static error kind; NULL when ok or an HTTP status */
} PollResult;

static char poll_owner;			/* r->user of the poller's requests */
static MemoryContext poller_cxt = NULL;
static PollTable table;
static bool reload_full = true;	/* load even when the version did not change */
static bool version_check_now = true;
static TimestampTz next_version_check = 0;
static int	in_flight = 0;
static PollResult *results = NULL;
static int	nresults = 0;
static int	results_cap = 0;
static TimestampTz oldest_result_at = 0;
static HealthPollerStats stats;
static int64 rate_completed[POLL_RATE_SLOTS];
static TimestampTz rate_at[POLL_RATE_SLOTS];
static int	rate_n = 0;
static char last_failure[256];
static TimestampTz last_failure_at = 0;

/* Log a failure, but the same message at most once a minute. */
static void
PollLogFailure(const char *what, const char *error)
{
	char		msg[sizeof(last_failure)];
	TimestampTz now = GetCurrentTimestamp();

	snprintf(msg, sizeof(msg), "%s: %s", what, error);
	if (strcmp(msg, last_failure) == 0 &&
		!TimestampDifferenceExceeds(last_failure_at, now, POLL_LOG_REPEAT_MS))
		return;
	strlcpy(last_failure, msg, sizeof(last_failure));
	last_failure_at = now;
	ereport(LOG,
			(errmsg("pgext worker: %s failed: %s", what, error),
			 errhint("Health checks go on; pgext.health_poller() shows the counters.")));
}

/* Whether check a is due before check b. */
static inline bool
HeapLess(int a, int b)
{
	return table.checks[a].due < table.checks[b].due;
}

/* Put check idx into the heap. */
static void
HeapPush(int idx)
{
	int			i = table.heap_n++;

	table.heap[i] = idx;
	while (i > 0)
	{
		int			parent = (i - 1) / 2;

		if (!HeapLess(table.heap[i], table.heap[parent]))
			break;
		table.heap[i] = table.heap[parent];
		table.heap[parent] = idx;
		i = parent;
	}
}

/* Take the check due first out of the heap (heap_n > 0). */
static int
HeapPop(void)
{
	int			top = table.heap[0];
	int			i = 0;

	table.heap[0] = table.heap[--table.heap_n];
	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			m = i;
		int			tmp;

		if (l < table.heap_n && HeapLess(table.heap[l], table.heap[m]))
			m = l;
		if (r < table.heap_n && HeapLess(table.heap[r], table.heap[m]))
			m = r;
		if (m == i)
			break;
		tmp = table.heap[i];
		table.heap[i] = table.heap[m];
		table.heap[m] = tmp;
		i = m;
	}
	return top;
}

/* The check of that id in the current table, or NULL. */
static PollCheck *
PollFind(int64 id)
{
	PollEntry  *e;

	if (table.by_id == NULL)
		return NULL;
	e = (PollEntry *) hash_search(table.by_id, &id, HASH_FIND, NULL);
	return e ? &table.checks[e->idx] : NULL;
}

/* The check's interval in ms: every, doubled per failure past the threshold, capped. */
static double
PollIntervalMs(const PollCheck *c)
{
	double		ms = c->every_ms;

	if (c->unhealthy && c->failures >= pgext_health_unhealthy_after)
	{
		int			shift = Min(c->failures - pgext_health_unhealthy_after + 1, 30);
		double		cap = (double) pgext_health_unhealthy_max_interval * 1000.0;

		ms = Max(Min(ms * ldexp(1.0, shift), cap), (double) c->every_ms);
	}
	return ms;
}

/* The check's result is written (or dropped): schedule its next run, not before now. */
static void
PollReschedule(int64 id, TimestampTz now)
{
	PollCheck  *c = PollFind(id);
	double		factor;
	TimestampTz next;

	if (c == NULL || !c->busy)
		return;
	c->busy = false;
	factor = 1.0 + pgext_health_jitter * (2.0 * pg_prng_double(&pg_global_prng_state) - 1.0);
	next = c->due + (TimestampTz) (PollIntervalMs(c) * factor * 1000.0);
	c->due = Max(next, now);
	HeapPush((int) (c - table.checks));
}

/* Loading: what a reload's transaction hands back. */
typedef struct PollLoad
{
	bool		full;			/* load even when the version is the same */
	int64		known;			/* the loaded version */
	MemoryContext cxt;			/* the new table's context */
	int64		version;
	bool		loaded;			/* rows were read into checks */
	PollCheck  *checks;
	int			n;
} PollLoad;

/* An int4 column of the current SPI row (0 when NULL). */
static int
SpiInt4(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* WorkerTransaction step: the version, and the checks when it changed. */
static void
PollLoadStep(void *arg)
{
	PollLoad   *a = (PollLoad *) arg;
	bool		isnull;
	Datum		d;
	MemoryContext old;
	uint64		n;

	if (SPI_execute("SELECT pgext.health_config_version()", false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "pgext.health_config_version() returned no row");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	a->version = isnull ? 0 : DatumGetInt64(d);
	if (!a->full && a->version == a->known)
		return;
	if (SPI_execute("SELECT id, url, every_ms, timeout_ms, consecutive_failures,"
					" state = 'unhealthy' FROM pgext.health_worker_load()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pgext.health_worker_load() failed");
	n = SPI_processed;
	if (n > (uint64) (MaxAllocSize / sizeof(PollCheck)))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many health checks: " UINT64_FORMAT, n),
				 errhint("Disable or remove checks.")));
	old = MemoryContextSwitchTo(a->cxt);
	a->checks = palloc0(sizeof(PollCheck) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		PollCheck  *c = &a->checks[a->n];

		d = SPI_getbinval(tup, desc, 1, &isnull);
		if (isnull)
			continue;
		c->id = DatumGetInt64(d);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (isnull)
			continue;
		c->url = TextDatumGetCString(d);
		c->every_ms = Max(SpiInt4(tup, desc, 3), 1);
		c->timeout_ms = Max(SpiInt4(tup, desc, 4), 1);
		c->failures = Max(SpiInt4(tup, desc, 5), 0);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		c->unhealthy = !isnull && DatumGetBool(d);
		a->n++;
	}
	MemoryContextSwitchTo(old);
	a->loaded = true;
}

/*
 * Look at the version; load the checks when it changed.  A check that stays
 * keeps its schedule (and whether it is busy); a new one starts at a random
 * point of [0, every).  Consecutive failures come from the table (at most
 * the one unwritten result behind, which is counted when it arrives).
 */
static void
PollReload(void)
{
	PollLoad	a;
	char		error[256];
	TimestampTz now;
	HASHCTL		ctl;
	PollTable	nt;

	memset(&a, 0, sizeof(a));
	a.full = reload_full || table.cxt == NULL;
	a.known = table.version;
	a.cxt = AllocSetContextCreate(poller_cxt, "pgext health checks", ALLOCSET_DEFAULT_SIZES);
	if (!WorkerTransaction("pgext health: loading the checks", PollLoadStep, &a, error, sizeof(error)))
	{
		MemoryContextDelete(a.cxt);
		PollLogFailure("loading the health checks", error);
		return;
	}
	if (!a.loaded)
	{
		MemoryContextDelete(a.cxt);
		return;
	}

	now = GetCurrentTimestamp();
	memset(&nt, 0, sizeof(nt));
	nt.cxt = a.cxt;
	nt.checks = a.checks;
	nt.n = a.n;
	nt.version = a.version;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(PollEntry);
	ctl.hcxt = a.cxt;
	nt.by_id = hash_create("pgext health checks by id", Max(a.n, 16), &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	nt.heap = MemoryContextAlloc(a.cxt, sizeof(int) * Max(a.n, 1));
	for (int i = 0; i < a.n; i++)
	{
		PollCheck  *c = &nt.checks[i];
		PollCheck  *old = PollFind(c->id);
		bool		found;
		PollEntry  *e = (PollEntry *) hash_search(nt.by_id, &c->id, HASH_ENTER, &found);

		e->idx = i;
		if (old != NULL)
			c->busy = old->busy;
		if (old != NULL && (old->busy || old->every_ms == c->every_ms))
			c->due = old->due;
		else
			c->due = now + (TimestampTz) (pg_prng_double(&pg_global_prng_state) * c->every_ms * 1000.0);
	}
	if (table.cxt != NULL)
		MemoryContextDelete(table.cxt);
	table = nt;
	for (int i = 0; i < table.n; i++)
		if (!table.checks[i].busy)
			HeapPush(i);
	reload_full = false;
	stats.loaded_at = now;
	stats.version = table.version;
	stats.checks_loaded = table.n;
}

/* Results waiting: room for a full batch plus every check in flight. */
static void
PollEnsureCapacity(void)
{
	int			want = pgext_health_batch_size + pgext_health_concurrency;

	want = Max(want, nresults);
	if (want == results_cap)
		return;
	if (results == NULL)
		results = MemoryContextAlloc(poller_cxt, sizeof(PollResult) * want);
	else
		results = repalloc(results, sizeof(PollResult) * want);
	results_cap = want;
}

/* A batch's write: what the transaction hands back. */
typedef struct PollFlush
{
	int			n;
	int			changed;
} PollFlush;

/* WorkerTransaction step: one call of pgext.health_record with the first n results. */
static void
PollFlushStep(void *arg)
{
	PollFlush  *a = (PollFlush *) arg;
	int			n = a->n;
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *oks = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	Datum	   *latencies = palloc(sizeof(Datum) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	bool	   *error_nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Oid			types[5] = {INT8ARRAYOID, BOOLARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID};
	Datum		args[5];
	bool		isnull;
	Datum		d;

	for (int i = 0; i < n; i++)
	{
		PollResult *r = &results[i];

		ids[i] = Int64GetDatum(r->id);
		oks[i] = BoolGetDatum(r->ok);
		statuses[i] = Int32GetDatum(r->status);
		latencies[i] = Int32GetDatum(r->latency_ms);
		error_nulls[i] = r->ok;
		if (r->ok)
			errors[i] = (Datum) 0;
		else if (r->error != NULL)
			errors[i] = CStringGetTextDatum(r->error);
		else
			errors[i] = CStringGetTextDatum(psprintf("HTTP %d", r->status));
	}
	args[0] = PointerGetDatum(construct_array(ids, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(oks, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	args[2] = PointerGetDatum(construct_array(statuses, n, INT4OID, 4, true, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(latencies, n, INT4OID, 4, true, TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs,
												 TEXTOID, -1, false, TYPALIGN_INT));
	if (SPI_execute_with_args("SELECT pgext.health_record($1, $2, $3, $4, $5)",
							  5, types, args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "pgext.health_record returned no row");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	a->changed = isnull ? 0 : DatumGetInt32(d);
}

/*
 * Write the waiting results (one transaction).  A failed write is logged and
 * its results dropped: the next checks report again.  Either way each
 * check's next run is scheduled.  True when some check changed state.
 */
static bool
PollFlushResults(void)
{
	PollFlush	a = {nresults, 0};
	char		error[256];
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz end;
	bool		ok;

	/*
	 * A batch can lose a deadlock against a concurrent change of the same
	 * checks or servers (an operator's health_check_remove, a server state
	 * change by the main worker): the results are still true, so write them
	 * again, a few times, before dropping them.
	 */
	for (int attempt = 1;; attempt++)
	{
		ok = WorkerTransaction("pgext health: recording results", PollFlushStep, &a, error, sizeof(error));
		if (ok || attempt >= POLL_FLUSH_ATTEMPTS || !WorkerTransactionTransient())
			break;
		ereport(LOG,
				(errmsg("pgext health: writing %d check results lost a race (%s); writing them again",
						nresults, error)));
	}
	end = GetCurrentTimestamp();
	if (ok)
		stats.recorded += nresults;
	else
	{
		stats.record_errors += nresults;
		PollLogFailure("writing health check results (they are dropped; the next checks report again)", error);
	}
	stats.last_flush_at = end;
	stats.last_flush_ms = (double) (end - start) / 1000.0;
	for (int i = 0; i < nresults; i++)
		PollReschedule(results[i].id, end);
	nresults = 0;
	if (ok && a.changed > 0)
	{
		/*
		 * States changed: load them (and SQL's counts) before the next sends,
		 * so that only checks SQL calls unhealthy are probed at doubling
		 * intervals (failures in grace or while configuring do not count).
		 */
		reload_full = true;
		version_check_now = true;
	}
	return ok && a.changed > 0;
}

/* Send the checks that are due while slots are free. */
static void
PollSend(HttpEngine *engine)
{
	TimestampTz now = GetCurrentTimestamp();

	while (in_flight < pgext_health_concurrency && table.heap_n > 0 &&
		   table.checks[table.heap[0]].due <= now)
	{
		int			idx = HeapPop();
		PollCheck  *c = &table.checks[idx];
		PollRequest *pr = calloc(1, sizeof(PollRequest));
		HttpRequest *r = &pr->req;

		if (pr == NULL || (r->method = strdup("GET")) == NULL || (r->url = strdup(c->url)) == NULL)
		{
			/* out of memory: try this one again in a second */
			if (pr != NULL)
				HttpRequestFree(r);
			c->due = TimestampTzPlusMilliseconds(now, 1000);
			HeapPush(idx);
			PollLogFailure("sending a health check", "out of memory");
			return;
		}
		pr->id = c->id;
		r->timeout_ms = c->timeout_ms;
		r->max_response = POLL_MAX_RESPONSE;
		r->fresh_connection = true;
		r->status_only = true;
		r->user = &poll_owner;
		c->busy = true;
		in_flight++;
		stats.sent++;
		if (HttpEngineSubmit(engine, r) != 0)
			HealthPollerFinished(r);	/* done at once: "network" */
	}
}

/* Set up the poller's memory and counters (the worker, once at start). */
void
HealthPollerStart(void)
{
	poller_cxt = AllocSetContextCreate(TopMemoryContext, "pgext health poller",
									   ALLOCSET_DEFAULT_SIZES);
	memset(&table, 0, sizeof(table));
	memset(&stats, 0, sizeof(stats));
	PollEnsureCapacity();
	HealthStatsPublish(&stats);
}

/* A worker wake-up: look at health_config_version on the next pump. */
void
HealthPollerWake(void)
{
	version_check_now = true;
}

/* Load the checks on the next pump even if the version is the same (a new epoch). */
void
HealthPollerReload(void)
{
	reload_full = true;
	version_check_now = true;
}

/* Reload if due, write the results that are due, send the checks that are due. */
bool
HealthPollerPump(HttpEngine *engine)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		changed = false;

	PollEnsureCapacity();
	if (version_check_now || now >= next_version_check)
	{
		version_check_now = false;
		next_version_check = TimestampTzPlusMilliseconds(now, POLL_VERSION_MS);
		PollReload();
		now = GetCurrentTimestamp();
	}
	if (nresults > 0 &&
		(nresults >= pgext_health_batch_size ||
		 TimestampDifferenceExceeds(oldest_result_at, now, pgext_health_flush_interval)))
		changed = PollFlushResults();
	PollSend(engine);
	return changed;
}

/* Whether a finished request is a health check. */
bool
HealthPollerOwns(HttpRequest *r)
{
	return r->user == &poll_owner;
}

/* Take a finished health check (its result waits for the next batch); frees r. */
void
HealthPollerFinished(HttpRequest *r)
{
	PollRequest *pr = (PollRequest *) r;
	PollCheck  *c = PollFind(pr->id);
	PollResult *res;
	bool		ok = r->error_code == NULL && r->http_status >= 200 && r->http_status <= 299;

	if (in_flight > 0)
		in_flight--;
	stats.completed++;
	if (c == NULL || !c->busy)
	{
		/* removed (or reloaded as new) while on the wire */
		HttpRequestFree(r);
		return;
	}
	c->failures = ok ? 0 : c->failures + 1;
	if (nresults >= results_cap)
	{
		/* cannot happen while the worker acts (see PollEnsureCapacity) */
		stats.record_errors++;
		PollReschedule(pr->id, GetCurrentTimestamp());
		HttpRequestFree(r);
		return;
	}
	if (nresults == 0)
		oldest_result_at = GetCurrentTimestamp();
	res = &results[nresults++];
	res->id = pr->id;
	res->ok = ok;
	res->status = r->error_code == NULL ? (int) r->http_status : 0;
	res->latency_ms = (int) Min(lround(r->duration_ms), (long) PG_INT32_MAX);
	res->error = ok || r->error_code == NULL ? NULL : r->error_kind;
	HttpRequestFree(r);
}

/* Milliseconds until the poller has something to do (-1: nothing scheduled). */
long
HealthPollerWaitMs(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms;

	if (version_check_now)
		return 0;
	wait_ms = TimestampDifferenceMilliseconds(now, next_version_check);
	if (nresults > 0)
	{
		if (nresults >= pgext_health_batch_size)
			return 0;
		wait_ms = Min(wait_ms, TimestampDifferenceMilliseconds(now,
															   TimestampTzPlusMilliseconds(oldest_result_at, pgext_health_flush_interval)));
	}
	if (in_flight < pgext_health_concurrency && table.heap_n > 0)
		wait_ms = Min(wait_ms, TimestampDifferenceMilliseconds(now, table.checks[table.heap[0]].due));
	return wait_ms;
}

/*
 * Copy the counters to shared memory (after each loop turn); polling: the
 * worker acts (else pid 0: health_poller() shows no rate).
 */
void
HealthPollerPublish(bool polling)
{
	TimestampTz now = GetCurrentTimestamp();
	int			last = (rate_n - 1 + POLL_RATE_SLOTS) % POLL_RATE_SLOTS;

	if (rate_n == 0 || TimestampDifferenceExceeds(rate_at[last], now, 1000))
	{
		int			slot = rate_n % POLL_RATE_SLOTS;
		int			oldest = rate_n < POLL_RATE_SLOTS ? 0 : (rate_n + 1) % POLL_RATE_SLOTS;

		rate_at[slot] = now;
		rate_completed[slot] = stats.completed;
		rate_n++;
		if (rate_n > 1 && rate_at[slot] > rate_at[oldest])
			stats.checks_per_second = (double) (rate_completed[slot] - rate_completed[oldest]) /
				((double) (rate_at[slot] - rate_at[oldest]) / 1e6);
	}
	stats.pid = polling ? MyProcPid : 0;
	stats.in_flight = in_flight;
	HealthStatsPublish(&stats);
}

/* The worker exits: publish that nobody polls (pid 0). */
void
HealthPollerStop(void)
{
	stats.pid = 0;
	stats.checks_loaded = 0;
	stats.in_flight = 0;
	stats.checks_per_second = 0;
	HealthStatsPublish(&stats);
}
