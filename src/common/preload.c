/*
 * preload.c — whether pgext was preloaded, and the error for capabilities
 * that need it (see preload.h).
 */
#include "postgres.h"

#include "miscadmin.h"

#include "common/preload.h"

bool		pgext_preloaded = false;

/* Note how pgext is being loaded; called first in _PG_init. */
void
PgextPreloadInit(void)
{
	pgext_preloaded = process_shared_preload_libraries_in_progress;
}

/* Error out, with the fix in the hint, when pgext was not preloaded. */
void
PgextRequirePreload(const char *capability)
{
	if (!pgext_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgext %s requires pgext in shared_preload_libraries", capability),
				 errhint("Add pgext to shared_preload_libraries in postgresql.conf and restart the server.")));
}
