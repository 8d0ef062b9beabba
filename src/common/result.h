/*
 * result.h — building the composite result (pgext.*_result) of a C
 * function (result.c).
 */
#ifndef PGEXT_COMMON_RESULT_H
#define PGEXT_COMMON_RESULT_H

#include "postgres.h"
#include "fmgr.h"

/*
 * The calling function's composite result from values and nulls (one per
 * column; nulls NULL = none is null), built in the current memory context.
 */
extern Datum PgextCompositeResult(FunctionCallInfo fcinfo, Datum *values, bool *nulls);

#endif							/* PGEXT_COMMON_RESULT_H */
