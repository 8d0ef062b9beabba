/*
 * billing.c — the billing settings.  What Stripe events do to billing state
 * is effects.c; billing_access(), access grants, the outbox (pgext.outbox)
 * and the desired-state policy for servers (server_desired_state) are SQL.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "billing/billing.h"

int			pgext_grace_period = 7 * 86400;
int			pgext_server_delete_after = 86400;
int			pgext_server_paused_retention = 14 * 86400;

/* Define the billing settings; called from _PG_init. */
void
BillingInit(void)
{
	DefineCustomIntVariable("pgext.grace_period",
							"How long access continues after a failed subscription payment.",
							NULL, &pgext_grace_period, 7 * 86400, 0, 366 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	/*
	 * The server policy's windows are read by pgext.server_desired_state()
	 * (SQL, current_setting).  PGC_SIGHUP: every session (apps, operators,
	 * the worker) must reach the same decision, so no session may SET its
	 * own value.
	 */
	DefineCustomIntVariable("pgext.server_delete_after",
							"How long a server is kept (paused) after its account's access ended, before it is deleted.",
							"A customer who comes back within this window keeps the server.",
							&pgext_server_delete_after, 86400, 0, 366 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.server_paused_retention",
							"How long a server may stay paused (powered off, still billed by Hetzner) before it is deleted.",
							NULL, &pgext_server_paused_retention, 14 * 86400, 3600, 366 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}
