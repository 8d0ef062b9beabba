/*
 * webhooks.h — webhook intake (intake.c), Stripe payload stripping
 * (payload.c) and the apply queue (apply.c): settings and what the files share.
 */
#ifndef PGEXT_WEBHOOKS_H
#define PGEXT_WEBHOOKS_H

#include "postgres.h"
#include "utils/jsonb.h"

/* GUC values, defined in intake.c (see WebhooksInit for meanings). */
extern int	pgext_webhook_tolerance;
extern int	pgext_webhook_payload_retention;
extern int	pgext_webhook_dedup_retention;
extern int	pgext_webhook_max_attempts;
extern bool pgext_stripe_livemode;

/* Define the webhook settings; called from _PG_init. */
extern void WebhooksInit(void);

/* The stored form of a Stripe event: only what processing needs (payload.c). */
extern Jsonb *StripeEventMinimal(Jsonb *event);

/*
 * Parse a NUL-terminated body of len bytes into jsonb as jsonb_in would,
 * without raising for a body jsonb_in refuses (returns NULL).  Sets
 * *fallback (and returns NULL) when only jsonb_in can decide: deep nesting,
 * numbers numeric_in might refuse (jsonparse.c).
 */
extern Jsonb *WebhookParseJsonb(char *cstr, int len, bool *fallback);

#endif							/* PGEXT_WEBHOOKS_H */
