/*
 * subxact.c — run work in a subtransaction, keeping expected errors as results.
 *
 * PostgreSQL 15 has no soft input errors, so "is this body valid JSON" or
 * "apply this event, and record its failure if it fails" need a
 * subtransaction.  Callers say which errors they expect; a query cancel, an
 * out-of-memory or anything else they did not expect still aborts the call.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "subxact.h"

/* See subxact.h. */
bool
PgextTryInSubxact(PgextSubxactBody body, void *arg, PgextErrorFilter accept, char **message)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	if (message)
		*message = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		body(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!accept(edata->sqlerrcode))
			ReThrowError(edata);
		if (message && edata->message)
			*message = pstrdup(edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
