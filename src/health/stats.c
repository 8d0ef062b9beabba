/*
 * stats.c — the health poller's counters in shared memory, and
 * pgext.health_poller() that shows them.
 *
 * The worker copies its counters here after each turn of its loop (a
 * spinlock, a memcpy); any backend reads a consistent copy.  Without
 * preloading (or before the worker polled) the function returns one row of
 * zeros and NULLs rather than an error, so the health_fleet view always works.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "common/preload.h"
#include "health/stats.h"

PG_FUNCTION_INFO_V1(health_poller);

/* The shared copy and its lock. */
typedef struct HealthStatsShared
{
	slock_t		mutex;
	HealthPollerStats stats;
} HealthStatsShared;

static HealthStatsShared *hshared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Ask for the shared memory of the counters. */
static void
HealthStatsShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HealthStatsShared)));
}

/* Create (or attach to) the shared counters. */
static void
HealthStatsShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hshared = ShmemInitStruct("pgext health poller", sizeof(HealthStatsShared), &found);
	if (!found)
	{
		memset(hshared, 0, sizeof(HealthStatsShared));
		SpinLockInit(&hshared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Reserve the shared memory (preloaded only); called from HealthInit. */
void
HealthStatsInit(void)
{
	if (!pgext_preloaded)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = HealthStatsShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = HealthStatsShmemStartup;
}

/* Copy the poller's counters to shared memory (the worker). */
void
HealthStatsPublish(const HealthPollerStats *stats)
{
	if (hshared == NULL)
		return;
	SpinLockAcquire(&hshared->mutex);
	memcpy(&hshared->stats, stats, sizeof(HealthPollerStats));
	SpinLockRelease(&hshared->mutex);
}

/*
 * health_poller(): one row with the poller's counters; zeros and NULLs when
 * the worker does not poll (not preloaded, not running).
 */
Datum
health_poller(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	HealthPollerStats s;
	Datum		v[11];
	bool		n[11] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("health_poller must be called in a context that accepts a record")));
	memset(&s, 0, sizeof(s));
	if (hshared != NULL)
	{
		SpinLockAcquire(&hshared->mutex);
		memcpy(&s, &hshared->stats, sizeof(s));
		SpinLockRelease(&hshared->mutex);
	}
	v[0] = Int32GetDatum(s.checks_loaded);
	v[1] = Int32GetDatum(s.in_flight);
	v[2] = Int64GetDatum(s.sent);
	v[3] = Int64GetDatum(s.completed);
	v[4] = Int64GetDatum(s.recorded);
	v[5] = Int64GetDatum(s.record_errors);
	v[6] = Float8GetDatum(s.checks_per_second);
	n[6] = s.pid == 0;
	v[7] = TimestampTzGetDatum(s.last_flush_at);
	n[7] = s.last_flush_at == 0;
	v[8] = Float8GetDatum(s.last_flush_ms);
	n[8] = s.last_flush_at == 0;
	v[9] = TimestampTzGetDatum(s.loaded_at);
	n[9] = s.loaded_at == 0;
	v[10] = Int64GetDatum(s.version);
	n[10] = s.loaded_at == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n)));
}
