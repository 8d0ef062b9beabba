/*
 * billing.c — the billing settings.  What Stripe events do to billing state
 * is effects.c; billing_access() and the outbox (pgext.outbox) are SQL.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "billing/billing.h"

int			pgext_grace_period = 7 * 86400;

/* Define the billing settings; called from _PG_init. */
void
BillingInit(void)
{
	DefineCustomIntVariable("pgext.grace_period",
							"How long access continues after a failed subscription payment.",
							NULL, &pgext_grace_period, 7 * 86400, 0, 366 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
}
