/*
 * webhooks.h — webhook intake (webhooks.c) and application (webhook_apply.c,
 * stripe_events.c): settings and the helpers the files share.
 */
#ifndef PGEXT_WEBHOOKS_H
#define PGEXT_WEBHOOKS_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* GUC values, defined in webhooks.c (see WebhooksDefineGucs for meanings). */
extern int	pgext_webhook_tolerance;
extern int	pgext_grace_period;
extern int	pgext_webhook_payload_retention;
extern int	pgext_webhook_dedup_retention;
extern int	pgext_webhook_max_attempts;

/* Define the webhook settings; called from _PG_init. */
extern void WebhooksDefineGucs(void);

/* Text value of key in a jsonb object container (string, number or bool), or NULL. */
extern char *WebhookJsonText(JsonbContainer *obj, const char *key);

/* The string under key, or NULL if absent or not a JSON string. */
extern char *WebhookJsonString(JsonbContainer *obj, const char *key);

/*
 * The text of a JSON number (numeric_out form) as an integer: false for a
 * fractional value or more than 18 digits; 1700000000.0 is 1700000000.
 */
extern bool WebhookIntegerText(const char *s, int64 *out);

/* The object container stored under key, or NULL if absent or not an object. */
extern JsonbContainer *WebhookJsonObject(JsonbContainer *obj, const char *key);

/* Follow a path of keys through nested objects and return the final value as text. */
extern char *WebhookJsonPathText(JsonbContainer *obj, const char *const *path, int npath);

/* The stored form of a Stripe event: only what processing needs (stripe_payload.c). */
extern Jsonb *StripeEventMinimal(Jsonb *event);

/* Apply one Stripe event (stripe_events.c); returns the event's new status. */
extern const char *StripeApplyEvent(const char *event_id, const char *type, const char *object_id,
									TimestampTz created, Jsonb *payload);

#endif							/* PGEXT_WEBHOOKS_H */
