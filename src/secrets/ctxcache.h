/*
 * ctxcache.h — per-backend cache of initialised AES-256-GCM decryption
 * contexts (ctxcache.c), one per data key: (key version, account or NULL,
 * salt or NULL), the same identity as the keyring's account key cache.
 *
 * Building an EVP_CIPHER_CTX and its key schedule (and GHASH table) was most
 * of the cost of opening a secret (issue 14); a cached context is reused
 * with a new IV per call (EVP_DecryptInit_ex with NULL cipher and key).
 * box.c is the only user: it looks a context up, stores a fresh one it has
 * initialised with the key, and drops it after any failure, so a context
 * left half-used by an error is never reused.
 */
#ifndef PGEXT_SECRETS_CTXCACHE_H
#define PGEXT_SECRETS_CTXCACHE_H

#include "postgres.h"

#include <openssl/evp.h>

#include "utils/uuid.h"

/*
 * The cached context of the key, or NULL.  Allocates the (empty) cache on
 * first use, so it may raise an error: call it before creating a context.
 */
extern EVP_CIPHER_CTX *SecretCtxLookup(int32 version, const pg_uuid_t *account,
									   const uint8 *salt);

/*
 * Keep ctx (initialised with the key of (version, account, salt)) for later
 * calls; the cache owns it from now on.  The slot's previous context, if
 * any, is freed (which wipes its key schedule).  Raises no error.
 */
extern void SecretCtxStore(int32 version, const pg_uuid_t *account, const uint8 *salt,
						   EVP_CIPHER_CTX *ctx);

/* Free and forget the cached context of the key, if any.  Raises no error. */
extern void SecretCtxDrop(int32 version, const pg_uuid_t *account, const uint8 *salt);

#endif							/* PGEXT_SECRETS_CTXCACHE_H */
