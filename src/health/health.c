/*
 * health.c — the settings of fleet health polling and auto-recovery.
 *
 * The worker's own (concurrency, batching, jitter, the probe cap) are
 * PGC_SIGHUP; the ones SQL reads with current_setting (thresholds, grace,
 * recovery pacing, the breaker, retention) are PGC_SUSET so an operator can
 * try a value in a session and tests can pin them.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "health/health.h"
#include "health/stats.h"

int			pgext_health_concurrency = 100;
int			pgext_health_batch_size = 1000;
int			pgext_health_flush_interval = 100;
double		pgext_health_jitter = 0.1;
int			pgext_health_unhealthy_max_interval = 300;
int			pgext_health_unhealthy_after = 3;
int			pgext_health_healthy_after = 2;
int			pgext_health_grace = 300;
int			pgext_health_recovery_backoff_base = 60;
int			pgext_health_recovery_backoff_max = 3600;
int			pgext_health_recovery_per_minute = 100;
double		pgext_health_breaker_share = 0.10;
int			pgext_health_breaker_min_servers = 3;
double		pgext_health_breaker_location_share = 0.5;
int			pgext_health_breaker_window = 300;
int			pgext_health_breaker_quiet = 600;
int			pgext_health_history_retention = 30 * 86400;

/* Define the health settings and reserve the poller's shared counters; called from _PG_init. */
void
HealthInit(void)
{
	DefineCustomIntVariable("pgext.health_concurrency",
							"Most health checks the worker has in flight at once.",
							NULL, &pgext_health_concurrency, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_batch_size",
							"Most health check results written in one transaction.",
							NULL, &pgext_health_batch_size, 1000, 1, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_flush_interval",
							"Longest a health check result waits before it is written.",
							"Results are written in batches: when pgext.health_batch_size are waiting or the oldest has waited this long.",
							&pgext_health_flush_interval, 100, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("pgext.health_jitter",
							 "Random spread of each health check's interval, as a fraction of it (0.1 = plus or minus 10%).",
							 NULL, &pgext_health_jitter, 0.1, 0.0, 0.5,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_unhealthy_max_interval",
							"Longest interval between checks of an unhealthy server (its interval doubles up to this).",
							NULL, &pgext_health_unhealthy_max_interval, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_unhealthy_after",
							"Consecutive failed checks after which a check is unhealthy.",
							NULL, &pgext_health_unhealthy_after, 3, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_healthy_after",
							"Consecutive passed checks after which an unhealthy check is healthy again.",
							NULL, &pgext_health_healthy_after, 2, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_grace",
							"Grace period after a server becomes active (or a check is added) in which failed checks do not count.",
							NULL, &pgext_health_grace, 300, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_recovery_backoff_base",
							"Wait after a server's first recovery action before the next one; it doubles with each action.",
							NULL, &pgext_health_recovery_backoff_base, 60, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_recovery_backoff_max",
							"Longest wait between two recovery actions on one server.",
							NULL, &pgext_health_recovery_backoff_max, 3600, 1, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_recovery_per_minute",
							"Most recovery actions (reboots, resets) queued per minute across the fleet (0 = none).",
							NULL, &pgext_health_recovery_per_minute, 100, 0, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("pgext.health_breaker_share",
							 "Share of the fleet turning unhealthy within pgext.health_breaker_window that opens the recovery breaker.",
							 "While the breaker is open no server is restarted and an alert is raised: a correlated failure is not the servers' fault.",
							 &pgext_health_breaker_share, 0.10, 0.0, 1.0,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_breaker_min_servers",
							"Fewest servers turning unhealthy (fleet-wide or in one location) that can open the breaker.",
							"Keeps one failure in a small fleet from counting as a correlated failure.",
							&pgext_health_breaker_min_servers, 3, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("pgext.health_breaker_location_share",
							 "Share of one location's servers unhealthy at once that opens the breaker.",
							 NULL, &pgext_health_breaker_location_share, 0.5, 0.0, 1.0,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_breaker_window",
							"Window in which servers turning unhealthy are counted for the breaker.",
							NULL, &pgext_health_breaker_window, 300, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_breaker_quiet",
							"Quiet period (no server turning unhealthy) after which an open breaker closes by itself.",
							NULL, &pgext_health_breaker_quiet, 600, 1, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.health_history_retention",
							"How long health events (state changes, recoveries, breaker) are kept.",
							NULL, &pgext_health_history_retention, 30 * 86400, 3600, 3650 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	HealthStatsInit();
}
