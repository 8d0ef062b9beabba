/*
 * pgext.c — module entry point: GUCs and load-time checks.
 *
 * pgext is meant to be loaded through shared_preload_libraries: the secret
 * keyring and the background worker need the postmaster.  When it is instead
 * loaded on first use (CREATE EXTENSION without preloading), the credit ledger
 * works as usual and every capability that needs the postmaster raises a clear
 * error that says how to fix the configuration (PgextRequirePreload).
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "billing/billing.h"
#include "drop_guard.h"
#include "pgext.h"
#include "secrets/secrets.h"
#include "webhooks/webhooks.h"

PG_MODULE_MAGIC;

char	   *pgext_database = NULL;
char	   *pgext_hetzner_api_url = NULL;
char	   *pgext_stripe_api_url = NULL;
bool		pgext_allow_insecure_urls = false;
bool		pgext_stripe_livemode = false;
char	   *pgext_master_key_command = NULL;
bool		pgext_preloaded = false;

void		_PG_init(void);

/* Define the settings every capability shares. */
static void
DefineCoreGucs(void)
{
	DefineCustomStringVariable("pgext.hetzner_api_url",
							   "Base URL of the Hetzner Cloud API.",
							   NULL, &pgext_hetzner_api_url,
							   "https://api.hetzner.cloud/v1",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pgext.stripe_api_url",
							   "Base URL of the Stripe API.",
							   NULL, &pgext_stripe_api_url,
							   "https://api.stripe.com",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("pgext.allow_insecure_urls",
							 "Allow plain http:// API URLs (for loopback test fakes only).",
							 NULL, &pgext_allow_insecure_urls, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("pgext.stripe_livemode",
							 "Accept only live-mode Stripe events (off = test mode).",
							 NULL, &pgext_stripe_livemode, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * Define the postmaster-only settings.  PostgreSQL refuses (FATAL) to create
 * them after startup, so they exist only when pgext is preloaded.
 */
static void
DefinePostmasterGucs(void)
{
	DefineCustomStringVariable("pgext.database",
							   "Database the pgext background worker connects to.",
							   NULL, &pgext_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pgext.master_key_command",
							   "Command run at server start that prints master key lines \"<version>:<64 hex>\".",
							   "The key material never enters a GUC or the database; only this command line does.",
							   &pgext_master_key_command, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
}

/* Module load: define GUCs, reserve the prefix, note how we were loaded. */
void
_PG_init(void)
{
	pgext_preloaded = process_shared_preload_libraries_in_progress;

	DefineCoreGucs();
	BillingInit();
	WebhooksDefineGucs();
	DropGuardInit();			/* refuse DROP EXTENSION while pgext holds data */
	if (pgext_preloaded)
	{
		DefinePostmasterGucs();
		SecretsPreloadInit();	/* keys, audit shared memory, log warning */
	}

	MarkGUCPrefixReserved("pgext");
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
