/*
 * settings.c — settings of capabilities that have no module yet: the
 * background worker's database and the Hetzner and Stripe API endpoints.
 * Nothing reads them today; the worker module takes them over (and this file
 * goes) when it arrives.  Each other module defines its own settings in its
 * Init function.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "common/preload.h"
#include "settings.h"

char	   *pgext_database = NULL;
char	   *pgext_hetzner_api_url = NULL;
char	   *pgext_stripe_api_url = NULL;
bool		pgext_allow_insecure_urls = false;

/*
 * Define the settings.  pgext.database is postmaster-only: PostgreSQL refuses
 * (FATAL) to create such a setting after startup, so it exists only when
 * pgext is preloaded.
 */
void
SettingsInit(void)
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
	if (pgext_preloaded)
		DefineCustomStringVariable("pgext.database",
								   "Database the pgext background worker connects to.",
								   NULL, &pgext_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
}
