/*
 * pgext.h — settings and shared declarations for the pgext extension.
 *
 * Each capability (credits, secrets, webhooks, provisioning, worker) keeps its
 * own header; this one carries only what every file may need: the GUC values
 * defined in pgext.c and whether the library was preloaded.
 */
#ifndef PGEXT_H
#define PGEXT_H

#include "postgres.h"

/* GUC values (see pgext.c for meanings and defaults). */
extern char *pgext_database;
extern char *pgext_hetzner_api_url;
extern char *pgext_stripe_api_url;
extern bool pgext_allow_insecure_urls;
extern bool pgext_stripe_livemode;
extern char *pgext_master_key_command;

/* true when loaded through shared_preload_libraries (postmaster start). */
extern bool pgext_preloaded;

/* Raise a clear error when a capability needs shared_preload_libraries. */
extern void PgextRequirePreload(const char *capability);

#endif							/* PGEXT_H */
