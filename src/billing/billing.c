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
int			pgext_stripe_events_overlap = 3600;
int			pgext_stripe_events_max_lag = 72 * 3600;
int			pgext_stripe_claim_lease = 120;
int			pgext_stripe_max_attempts = 8;

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

	/* Stripe sync (sql/install/stripe_sync.sql reads these with current_setting). */
	DefineCustomIntVariable("pgext.stripe_events_overlap",
							"How far before the newest event seen a missed-event run starts listing GET /v1/events.",
							"Covers events that became visible late and clock differences; ids already recorded are skipped.",
							&pgext_stripe_events_overlap, 3600, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.stripe_events_max_lag",
							"How far the missed-event cursor may fall behind before an alert (stripe_events_behind).",
							"Stripe retries a webhook for 3 days; an event older than that that was missed is only found by this.",
							&pgext_stripe_events_max_lag, 72 * 3600, 3600, 30 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.stripe_claim_lease",
							"How long a request handed out by pgext.stripe_claim is the worker's before it is taken back.",
							"Must exceed the worker's HTTP timeout.",
							&pgext_stripe_claim_lease, 120, 10, 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.stripe_max_attempts",
							"Tries of one Stripe page (429, 5xx, no response, malformed) before its sync run fails.",
							NULL, &pgext_stripe_max_attempts, 8, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
}
