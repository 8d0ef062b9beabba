/*
 * config.h — what the worker needs to talk to an external API, read and
 * checked at start and on every reload (config.c).  A bad configuration does
 * not stop the worker: that API's work is refused, and `refusing` says why
 * (pgext.worker_api_status and the server log).
 */
#ifndef PGEXT_WORKER_CONFIG_H
#define PGEXT_WORKER_CONFIG_H

#include "postgres.h"

#define WORKER_API_REASON_LEN 256

/* One API's connection settings (memory in TopMemoryContext). */
typedef struct WorkerApiConfig
{
	const char *name;			/* "hetzner", "stripe" */
	const char *secret_name;	/* "hetzner:api_token", "stripe:api_key" */
	char	   *base_url;		/* without a trailing slash; NULL until loaded */
	char	   *token;			/* NULL when refused; wiped when replaced */
	char		refusing[WORKER_API_REASON_LEN];	/* "" = usable */
} WorkerApiConfig;

/*
 * Read the API's URL setting and its token from the secret store and check
 * them.  Must run inside a transaction (the secret is read through SPI);
 * errors reading the secret are caught and become the refusal reason.
 */
extern void WorkerConfigLoad(WorkerApiConfig *cfg, const char *url_setting);

/* Why a URL may not be used ("" when it may), for url_setting's value. */
extern void WorkerConfigCheckUrl(const char *url, char *reason, size_t len);

/* Why a Stripe key does not match pgext.stripe_livemode ("" when it does). */
extern void WorkerConfigCheckStripeKey(const char *key, bool livemode, char *reason, size_t len);

#endif							/* PGEXT_WORKER_CONFIG_H */
