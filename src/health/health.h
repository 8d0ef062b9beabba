/*
 * health.h — the fleet health settings (health.c).  The poller that runs the
 * checks on the worker's event loop is poller.c; the state machine, the
 * recovery policy and the breaker are SQL (sql/install/health.sql): the
 * worker moves bytes, SQL decides.
 */
#ifndef PGEXT_HEALTH_H
#define PGEXT_HEALTH_H

#include "postgres.h"

/* read by the worker (poller.c) */
extern int	pgext_health_concurrency;
extern int	pgext_health_batch_size;
extern int	pgext_health_flush_interval;	/* ms */
extern double pgext_health_jitter;
extern int	pgext_health_unhealthy_max_interval;	/* s */

/* read by SQL (current_setting) and by the worker for scheduling */
extern int	pgext_health_unhealthy_after;
extern int	pgext_health_healthy_after;
extern int	pgext_health_grace;		/* s */
extern int	pgext_health_recovery_backoff_base;	/* s */
extern int	pgext_health_recovery_backoff_max;	/* s */
extern int	pgext_health_recovery_per_minute;
extern double pgext_health_breaker_share;
extern int	pgext_health_breaker_min_servers;
extern double pgext_health_breaker_location_share;
extern int	pgext_health_breaker_window;	/* s */
extern int	pgext_health_breaker_quiet;	/* s */
extern int	pgext_health_history_retention;	/* s */

/* Define the health settings; called from _PG_init. */
extern void HealthInit(void);

#endif							/* PGEXT_HEALTH_H */
