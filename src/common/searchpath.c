/*
 * searchpath.c — the pinned search path of a call (see searchpath.h).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "nodes/pg_list.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "common/searchpath.h"

/*
 * The schema of the last function pinned, by function oid: one syscache
 * lookup per function per backend, forgotten when any pg_proc row changes
 * (ALTER FUNCTION ... SET SCHEMA, DROP/CREATE EXTENSION).
 */
static Oid	cached_fn = InvalidOid;
static Oid	cached_nsp = InvalidOid;
static bool callback_registered = false;

/* Syscache callback on pg_proc: forget the cached schema. */
static void
ForgetFunctionSchema(Datum arg, int cacheid, uint32 hashvalue)
{
	cached_fn = InvalidOid;
	cached_nsp = InvalidOid;
}

/* The schema of the called function (errors if it has none). */
static Oid
FunctionSchema(FunctionCallInfo fcinfo)
{
	Oid			fn = fcinfo->flinfo->fn_oid;

	if (!callback_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, ForgetFunctionSchema, (Datum) 0);
		callback_registered = true;
	}
	if (fn != cached_fn || !OidIsValid(cached_nsp))
	{
		Oid			nsp = get_func_namespace(fn);

		if (!OidIsValid(nsp))
			elog(ERROR, "pgext: function %u has no schema", fn);
		cached_nsp = nsp;
		cached_fn = fn;
	}
	return cached_nsp;
}

/* See searchpath.h. */
void
PgextPinSearchPath(FunctionCallInfo fcinfo)
{
	OverrideSearchPath path;

	path.schemas = list_make2_oid(PG_CATALOG_NAMESPACE, FunctionSchema(fcinfo));
	path.addCatalog = false;	/* listed first already */
	path.addTemp = false;		/* the temporary schema is never searched */
	path.generation = 0;
	PushOverrideSearchPath(&path);	/* copies the list */
	list_free(path.schemas);
}

/* See searchpath.h. */
void
PgextUnpinSearchPath(void)
{
	PopOverrideSearchPath();
}
