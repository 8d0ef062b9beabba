/*
 * guard.h — taking an error over in PG_CATCH (guard.c): the one place that
 * copies the error out of ErrorContext, so every catcher does it in the same
 * order (switch to the caller's context, copy, flush).
 */
#ifndef PGEXT_COMMON_GUARD_H
#define PGEXT_COMMON_GUARD_H

#include "postgres.h"

/*
 * In PG_CATCH: switch to cxt (a context of the caller that outlives the
 * error), copy the error there and clear the error state.  The caller then
 * handles or re-throws (ReThrowError) the copy.
 */
extern ErrorData *PgextCatchError(MemoryContext cxt);

/*
 * In PG_CATCH: re-throw the error with the statement text hidden from the
 * server log (the statement may carry a secret as a literal).
 */
extern void PgextRethrowHidingStatement(MemoryContext cxt) pg_attribute_noreturn();

#endif							/* PGEXT_COMMON_GUARD_H */
