/*
 * poller.h — the health poller (poller.c): runs the fleet's health checks on
 * the worker's event loop and HTTP engine, and writes their results to SQL in
 * batches (pgext.health_record).  The worker calls it; SQL decides what a
 * result means.
 *
 * Per loop turn the worker: hands every finished request the poller owns to
 * HealthPollerFinished (also while it does not act), calls HealthPollerPump
 * while it acts (reload, flush, send), merges HealthPollerWaitMs into its
 * wait, and publishes the counters with HealthPollerPublish.
 */
#ifndef PGEXT_HEALTH_POLLER_H
#define PGEXT_HEALTH_POLLER_H

#include "postgres.h"

#include "worker/http.h"

/* Set up the poller's memory and counters (the worker, once at start). */
extern void HealthPollerStart(void);

/* A worker wake-up: look at health_config_version on the next pump. */
extern void HealthPollerWake(void);

/* Load the checks on the next pump even if the version is the same (a new epoch). */
extern void HealthPollerReload(void);

/*
 * Reload the checks when their version changed, write the results that are
 * due, send the checks that are due (each step its own short transaction).
 * Returns true when a written batch changed some check's state (the caller
 * then makes the health_recover task due).
 */
extern bool HealthPollerPump(HttpEngine *engine);

/* Whether a finished request is a health check. */
extern bool HealthPollerOwns(HttpRequest *r);

/* Take a finished health check (its result waits for the next batch); frees r. */
extern void HealthPollerFinished(HttpRequest *r);

/* Milliseconds until the poller has something to do (-1: nothing scheduled). */
extern long HealthPollerWaitMs(void);

/* Copy the counters to shared memory (after each loop turn); polling: the worker acts. */
extern void HealthPollerPublish(bool polling);

/* The worker exits: publish that nobody polls (pid 0). */
extern void HealthPollerStop(void);

#endif							/* PGEXT_HEALTH_POLLER_H */
