/*
 * spi.h — prepared-statement cache and result helpers over SPI.
 *
 * Every module keeps its statements as static PgextPlan structs; the first
 * execution prepares and keeps the plan for the life of the backend (the plan
 * cache revalidates it after DDL).  All statements name schema-qualified
 * objects, and callers are SECURITY DEFINER functions with a pinned
 * search_path, so a caller's search_path cannot redirect them.
 */
#ifndef PGEXT_COMMON_SPI_H
#define PGEXT_COMMON_SPI_H

#include "postgres.h"
#include "executor/spi.h"

#define PGEXT_PLAN_MAX_ARGS 16

typedef struct PgextPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[PGEXT_PLAN_MAX_ARGS];
	SPIPlanPtr	plan;
} PgextPlan;

/* Execute a cached plan; returns SPI_processed. nulls: NULL or 'n'/' ' per arg. */
extern uint64 PgextExec(PgextPlan *plan, Datum *values, const char *nulls, long tcount);

/* Column accessors on SPI_tuptable (1-based column numbers, 0-based rows). */
extern Datum PgextGetDatum(uint64 row, int col, bool *isnull);
extern int64 PgextGetInt64(uint64 row, int col, int64 if_null);
extern bool PgextColIsNull(uint64 row, int col);
/* Returns a palloc'd copy in the current context (NULL if the value is NULL). */
extern char *PgextGetText(uint64 row, int col);

#endif							/* PGEXT_COMMON_SPI_H */
