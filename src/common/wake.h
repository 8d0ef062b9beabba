/*
 * wake.h — wake the background worker when the current transaction commits
 * (wake.c).  Capabilities that queue work for the worker (webhook intake,
 * server requests) call PgextWakeAtCommit; the worker module installs the
 * function that sets its latch.  This keeps dependencies pointing downward:
 * nothing below the worker includes the worker's headers.
 */
#ifndef PGEXT_COMMON_WAKE_H
#define PGEXT_COMMON_WAKE_H

/* Sets the worker's latch; returns false when no worker runs. */
typedef bool (*PgextWakeFunction) (void);

/* Installed by the worker module (NULL when pgext is not preloaded). */
extern PgextWakeFunction pgext_wake_function;

/* Wake the worker once the current transaction commits (nothing on abort). */
extern void PgextWakeAtCommit(void);

#endif							/* PGEXT_COMMON_WAKE_H */
