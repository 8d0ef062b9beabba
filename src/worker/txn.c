/*
 * txn.c — one short transaction for one step of the worker.
 *
 * The step runs with SPI connected and an active snapshot.  An error is
 * caught here: the transaction is aborted, its message handed back, and the
 * worker's loop goes on (the work is level-triggered: a failed step is taken
 * again later, never lost).  After it the worker's table statistics are
 * flushed (at most once a second) so autovacuum sees its writes.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "worker/txn.h"

/* The SQLSTATE of the last WorkerTransaction that failed (0 after a success). */
static int	last_sqlerrcode = 0;

/* Run step(arg) as one transaction; false with the message on an error. */
bool
WorkerTransaction(const char *activity, WorkerTxnStep step, void *arg, char *error, size_t errlen)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	if (error && errlen > 0)
		error[0] = '\0';
	last_sqlerrcode = 0;
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (activity)
			pgstat_report_activity(STATE_RUNNING, activity);
		step(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (error && errlen > 0)
			strlcpy(error, edata->message ? edata->message : "unknown error", errlen);
		last_sqlerrcode = edata->sqlerrcode;
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	if (activity)
		pgstat_report_activity(STATE_IDLE, NULL);
	/*
	 * A background worker never goes idle through PostgresMain, which is
	 * where backends flush their table statistics: without this the
	 * worker's updates and deletes would stay invisible to autovacuum and
	 * the tables it writes (health_checks above all) would bloat.  At most
	 * once a second; never inside a transaction.
	 */
	pgstat_report_stat(false);
	MemoryContextSwitchTo(cxt);
	return ok;
}

/*
 * Whether the last WorkerTransaction failed only because it lost a race
 * (deadlock or serialization failure, SQLSTATE class 40): the same step may
 * simply be run again.
 */
bool
WorkerTransactionTransient(void)
{
	return last_sqlerrcode != 0 &&
		ERRCODE_TO_CATEGORY(last_sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK;
}
