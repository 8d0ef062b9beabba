/*
 * preload.h — how pgext was loaded (preload.c).  pgext is meant to be loaded
 * through shared_preload_libraries: the secret keyring, the audit's shared
 * memory and the background worker need the postmaster.  Loaded on first use
 * instead (CREATE EXTENSION without preloading), the credit ledger works as
 * usual and every capability that needs the postmaster calls
 * PgextRequirePreload, which raises an error that says how to fix the
 * configuration.
 */
#ifndef PGEXT_COMMON_PRELOAD_H
#define PGEXT_COMMON_PRELOAD_H

#include "postgres.h"

/* true when loaded through shared_preload_libraries (postmaster start). */
extern bool pgext_preloaded;

/* Note how pgext is being loaded; called first in _PG_init. */
extern void PgextPreloadInit(void);

/* Raise a clear error when a capability needs shared_preload_libraries. */
extern void PgextRequirePreload(const char *capability);

#endif							/* PGEXT_COMMON_PRELOAD_H */
