/*
 * txn.h — the worker's short transactions (txn.c): every step the worker
 * takes in the database (a task, a claim, a batch of responses, reading its
 * configuration) is one transaction of its own, never open while a request
 * is on the wire.
 */
#ifndef PGEXT_WORKER_TXN_H
#define PGEXT_WORKER_TXN_H

#include "postgres.h"

/* A step run inside a transaction, SPI connected, with a snapshot. */
typedef void (*WorkerTxnStep) (void *arg);

/*
 * Run step(arg) as one transaction; commit when it returns.  On an error the
 * transaction is aborted, the message copied into error (error[0] = '\0' on
 * success) and false returned.  `activity` is shown in pg_stat_activity.
 * The caller's memory context is current again afterwards.
 */
extern bool WorkerTransaction(const char *activity, WorkerTxnStep step, void *arg,
							  char *error, size_t errlen);

/*
 * After a WorkerTransaction returned false: whether it failed only because it
 * lost a race with another transaction (deadlock detected, serialization
 * failure), so running the same step again is the right answer.
 */
extern bool WorkerTransactionTransient(void);

#endif							/* PGEXT_WORKER_TXN_H */
