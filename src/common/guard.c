/*
 * guard.c — taking an error over in PG_CATCH (see guard.h).
 */
#include "postgres.h"

#include "common/guard.h"

/* Copy the current error into cxt and clear the error state. */
ErrorData *
PgextCatchError(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	return edata;
}

/* Re-throw the current error with its statement hidden from the log. */
void
PgextRethrowHidingStatement(MemoryContext cxt)
{
	ErrorData  *edata = PgextCatchError(cxt);

	edata->hide_stmt = true;
	ReThrowError(edata);
}
