/*
 * spi.c — prepared-statement cache and result helpers over SPI.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

#include "common/spi.h"

/* Prepare (once per backend) and run a statement; errors on SPI failure. */
uint64
PgextExec(PgextPlan *plan, Datum *values, const char *nulls, long tcount)
{
	int			rc;

	if (plan->plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(plan->sql, plan->nargs, plan->argtypes);

		if (p == NULL)
			elog(ERROR, "pgext: SPI_prepare failed (%s) for: %s",
				 SPI_result_code_string(SPI_result), plan->sql);
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "pgext: SPI_keepplan failed");
		plan->plan = p;
	}
	rc = SPI_execute_plan(plan->plan, values, nulls, false, tcount);
	if (rc < 0)
		elog(ERROR, "pgext: SPI_execute_plan failed (%s) for: %s",
			 SPI_result_code_string(rc), plan->sql);
	return SPI_processed;
}

/* Fetch one column of one result row as a Datum. */
Datum
PgextGetDatum(uint64 row, int col, bool *isnull)
{
	Assert(SPI_tuptable != NULL && row < SPI_processed);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* Fetch a bigint (or int) column, with a default for NULL. */
int64
PgextGetInt64(uint64 row, int col, int64 if_null)
{
	bool		isnull;
	Datum		d = PgextGetDatum(row, col, &isnull);
	Oid			typid = SPI_gettypeid(SPI_tuptable->tupdesc, col);

	if (isnull)
		return if_null;
	if (typid == INT4OID)
		return (int64) DatumGetInt32(d);
	return DatumGetInt64(d);
}

/* Whether a column of a result row is NULL. */
bool
PgextColIsNull(uint64 row, int col)
{
	bool		isnull;

	(void) PgextGetDatum(row, col, &isnull);
	return isnull;
}

/* Fetch a text column as a C string in the current memory context. */
char *
PgextGetText(uint64 row, int col)
{
	bool		isnull;
	Datum		d = PgextGetDatum(row, col, &isnull);

	if (isnull)
		return NULL;
	return TextDatumGetCString(d);
}
