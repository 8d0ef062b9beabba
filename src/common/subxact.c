/*
 * subxact.c — run work in a subtransaction, keeping expected errors as
 * results, and the one classification of SQLSTATEs every such caller uses.
 *
 * PostgreSQL 15 has no soft input errors, so "is this body valid JSON" or
 * "apply this event, and record its failure if it fails" need a
 * subtransaction.  Callers say which errors they expect, through the
 * classification below; a query cancel, a shutdown or anything else they did
 * not expect still aborts the call.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "common/errcodes.h"
#include "common/guard.h"
#include "common/subxact.h"

/* Whether sqlerrcode belongs to the class of the SQLSTATE `of`. */
#define IN_CLASS(sqlerrcode, of) \
	(ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(of))

/* See subxact.h for what each kind holds and why. */
PgextErrorKind
PgextClassifyError(int sqlerrcode)
{
	/* Operator intervention (cancel, statement timeout, shutdown), misplaced calls, corruption. */
	if (IN_CLASS(sqlerrcode, ERRCODE_OPERATOR_INTERVENTION) ||
		IN_CLASS(sqlerrcode, ERRCODE_INVALID_TRANSACTION_STATE) ||
		sqlerrcode == ERRCODE_DATA_CORRUPTED || sqlerrcode == ERRCODE_INDEX_CORRUPTED)
		return PGEXT_ERROR_RETHROW;

	/* Contention and resources: the same work can succeed later. */
	if ((IN_CLASS(sqlerrcode, ERRCODE_TRANSACTION_ROLLBACK) &&
		 sqlerrcode != ERRCODE_T_R_INTEGRITY_CONSTRAINT_VIOLATION) ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE || sqlerrcode == ERRCODE_OBJECT_IN_USE ||
		IN_CLASS(sqlerrcode, ERRCODE_INSUFFICIENT_RESOURCES) ||
		IN_CLASS(sqlerrcode, ERRCODE_SYSTEM_ERROR) ||
		IN_CLASS(sqlerrcode, ERRCODE_CONNECTION_EXCEPTION))
		return PGEXT_ERROR_TRANSIENT;

	/* Refused input: data exceptions, and program limits such as nesting depth. */
	if (IN_CLASS(sqlerrcode, ERRCODE_DATA_EXCEPTION) ||
		IN_CLASS(sqlerrcode, ERRCODE_PROGRAM_LIMIT_EXCEEDED))
		return PGEXT_ERROR_BAD_INPUT;

	return PGEXT_ERROR_PERMANENT;
}

/* See subxact.h. */
bool
PgextIsBadInputError(int sqlerrcode)
{
	return PgextClassifyError(sqlerrcode) == PGEXT_ERROR_BAD_INPUT;
}

/* See subxact.h. */
bool
PgextIsSerializationFailure(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}

/* See subxact.h. */
bool
PgextIsSecretExpiredError(int sqlerrcode)
{
	return sqlerrcode == PGEXT_ERRCODE_SECRET_EXPIRED;
}

/* See subxact.h. */
bool
PgextIsRoutineRejection(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION ||
		IN_CLASS(sqlerrcode, ERRCODE_DATA_EXCEPTION);
}

/* See subxact.h. */
bool
PgextIsCatchableError(int sqlerrcode)
{
	return PgextClassifyError(sqlerrcode) != PGEXT_ERROR_RETHROW;
}

/* See subxact.h. */
bool
PgextTryInSubxact(PgextSubxactBody body, void *arg, PgextErrorFilter accept, char **message)
{
	return PgextTryInSubxactCode(body, arg, accept, message, NULL);
}

/* See subxact.h. */
bool
PgextTryInSubxactCode(PgextSubxactBody body, void *arg, PgextErrorFilter accept,
					  char **message, int *sqlerrcode)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	if (message)
		*message = NULL;
	if (sqlerrcode)
		*sqlerrcode = 0;
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
		ErrorData  *edata = PgextCatchError(cxt);

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!accept(edata->sqlerrcode))
			ReThrowError(edata);
		if (message && edata->message)
			*message = pstrdup(edata->message);
		if (sqlerrcode)
			*sqlerrcode = edata->sqlerrcode;
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
