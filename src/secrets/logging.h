/*
 * logging.h — server settings that would write secret values (passed
 * as SQL literals or bind parameters) to the server log.
 */
#ifndef PGEXT_SECRET_LOGGING_H
#define PGEXT_SECRET_LOGGING_H

#include "postgres.h"
#include "nodes/pg_list.h"

/* One palloc'd sentence per risky setting, in the current memory context. */
extern List *SecretLoggingRisks(void);

/* Log one WARNING listing every risk, if any (at postmaster start). */
extern void SecretLoggingWarn(void);

#endif							/* PGEXT_SECRET_LOGGING_H */
