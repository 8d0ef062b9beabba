/*
 * ratelimit.h — a token-bucket rate limiter in shared memory (ratelimit.c):
 * pgext.rate_limit() and pgext.rate_limit_reset().  Every app instance that
 * talks to the same server shares the same buckets.
 */
#ifndef PGEXT_RATELIMIT_RATELIMIT_H
#define PGEXT_RATELIMIT_RATELIMIT_H

#include "postgres.h"

/* Longest key accepted, in bytes. */
#define RATE_LIMIT_MAX_KEY_BYTES 1024

/*
 * When preloaded: define pgext.rate_limit_max_keys and reserve the shared
 * memory of the buckets; called from _PG_init.
 */
extern void RateLimitInit(void);

#endif							/* PGEXT_RATELIMIT_RATELIMIT_H */
