/*
 * worker.h — the pgext background worker (worker.c): one static worker that
 * runs the housekeeping tasks, each in its own short transaction, from an
 * event loop built on a WaitEventSet (latch, postmaster death; curl's epoll
 * fd joins it when the HTTP engine lands).
 */
#ifndef PGEXT_WORKER_WORKER_H
#define PGEXT_WORKER_WORKER_H

/* Define the worker's settings, request its shared memory, register it. */
extern void WorkerInit(void);

#endif							/* PGEXT_WORKER_WORKER_H */
