/*
 * billing.h — Stripe billing: subscriptions, purchases, grace periods and
 * their notices in pgext.outbox.  effects.c applies one Stripe event to billing state
 * (called by webhook_apply); billing.c owns the billing settings.
 */
#ifndef PGEXT_BILLING_H
#define PGEXT_BILLING_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* pgext.grace_period (seconds), defined in billing.c. */
extern int	pgext_grace_period;

/* pgext.server_delete_after, pgext.server_paused_retention (seconds). */
extern int	pgext_server_delete_after;
extern int	pgext_server_paused_retention;

/* Stripe sync settings (seconds, except max_attempts), read by stripe_sync.sql. */
extern int	pgext_stripe_events_overlap;
extern int	pgext_stripe_events_max_lag;
extern int	pgext_stripe_claim_lease;
extern int	pgext_stripe_max_attempts;

/* Define the billing settings; called from _PG_init. */
extern void BillingInit(void);

/* Apply one Stripe event (effects.c); returns the event's new status. */
extern const char *StripeApplyEvent(const char *event_id, const char *type, const char *object_id,
									TimestampTz created, Jsonb *payload);

#endif							/* PGEXT_BILLING_H */
