/*
 * result.c — building the composite result of a C function (see result.h).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/lsyscache.h"

#include "common/result.h"

/* Form the calling function's composite result; see result.h. */
Datum
PgextCompositeResult(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pgext: %s must return a composite type",
			 get_func_name(fcinfo->flinfo->fn_oid));
	tupdesc = BlessTupleDesc(tupdesc);
	if (nulls == NULL)
		nulls = palloc0(sizeof(bool) * tupdesc->natts);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}
