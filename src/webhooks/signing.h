/*
 * signing.h — webhook signing keys (signing.c): a per-backend cache of keyed
 * HMAC contexts over the secret store, checked against the stored row on
 * every use, and the HMAC computation itself.
 */
#ifndef PGEXT_WEBHOOKS_SIGNING_H
#define PGEXT_WEBHOOKS_SIGNING_H

#include "postgres.h"

#include "webhooks/sigparse.h"

/*
 * Whether any signature of h equals HMAC(secret, prefix || body) under the
 * secret secret_name (current value, then secret_name || ':previous'),
 * digest one of "SHA256", "SHA512", "SHA1".  Errors when the current secret
 * is not set, has expired or cannot be decrypted.
 */
extern bool SigningVerify(const char *secret_name, const char *digest,
						  const char *prefix, size_t prefixlen,
						  const char *body, size_t bodylen, const SigHeader *h);

#endif							/* PGEXT_WEBHOOKS_SIGNING_H */
