/*
 * pgext.c — module entry point: _PG_init calls each module's Init, which
 * defines that module's settings and installs its hooks.
 *
 * pgext is meant to be loaded through shared_preload_libraries (see
 * common/preload.h); modules that need the postmaster do their load-time
 * work only then and otherwise refuse with PgextRequirePreload.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "accounts_scope.h"
#include "billing/billing.h"
#include "common/preload.h"
#include "drop_guard.h"
#include "health/health.h"
#include "ratelimit/ratelimit.h"
#include "secrets/secrets.h"
#include "servers/servers.h"
#include "settings.h"
#include "webhooks/webhooks.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Module load: every module's Init in order, then reserve the prefix. */
void
_PG_init(void)
{
	PgextPreloadInit();			/* first: the others ask whether we were preloaded */
	SettingsInit();				/* worker and API settings, no module yet */
	AccountScopeInit();			/* pgext.require_account, the binding's end */
	BillingInit();
	WebhooksInit();
	ServersInit();
	HealthInit();
	RateLimitInit();			/* preloaded only: the buckets' shared memory */
	DropGuardInit();			/* refuse DROP EXTENSION while pgext holds data */
	SecretsInit();				/* preloaded only: audit memory, keys, log warning */
	WorkerInit();				/* task settings; preloaded: shared memory, the worker */

	MarkGUCPrefixReserved("pgext");
}
