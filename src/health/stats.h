/*
 * stats.h — the health poller's counters in shared memory (stats.c): the
 * worker publishes them, pgext.health_poller() reads them for the
 * health_fleet view.
 */
#ifndef PGEXT_HEALTH_STATS_H
#define PGEXT_HEALTH_STATS_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* What the poller publishes (a copy lives in shared memory). */
typedef struct HealthPollerStats
{
	pid_t		pid;			/* the worker's, 0 when not polling */
	int			checks_loaded;	/* checks in the schedule */
	int			in_flight;		/* checks on the wire */
	int64		sent;			/* since the worker started */
	int64		completed;		/* answered or failed */
	int64		recorded;		/* results written by health_record */
	int64		record_errors;	/* results lost with a failed batch */
	double		checks_per_second;	/* completed, over the last ~10 s */
	TimestampTz last_flush_at;	/* 0 = never */
	double		last_flush_ms;
	TimestampTz loaded_at;		/* 0 = never */
	int64		version;		/* health_config version of the schedule */
} HealthPollerStats;

/* Reserve the shared memory (preloaded only); called from HealthInit. */
extern void HealthStatsInit(void);

/* Copy the poller's counters to shared memory (the worker). */
extern void HealthStatsPublish(const HealthPollerStats *stats);

#endif							/* PGEXT_HEALTH_STATS_H */
