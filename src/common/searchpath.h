/*
 * searchpath.h — pin the search path of a C function for the duration of one
 * call (searchpath.c), instead of a function-level SET search_path clause.
 *
 * PgextPinSearchPath(fcinfo) pushes an override search path of pg_catalog,
 * then the schema of the called function (pgext), with the temporary schema
 * not searched at all: the same protection as
 *   SET search_path = pg_catalog, pgext, pg_temp
 * (a caller's search_path never changes what an operator, function, type or
 * table named by pgext's SQL resolves to) without the GUC save, parse and
 * restore that such a clause costs on every call.  PgextUnpinSearchPath()
 * pops it before the function returns normally; when an error escapes, the
 * (sub)transaction abort pops it (namespace.c, AtEOSubXact_Namespace).
 * Calls nest.
 */
#ifndef PGEXT_COMMON_SEARCHPATH_H
#define PGEXT_COMMON_SEARCHPATH_H

#include "fmgr.h"

extern void PgextPinSearchPath(FunctionCallInfo fcinfo);
extern void PgextUnpinSearchPath(void);

#endif							/* PGEXT_COMMON_SEARCHPATH_H */
