/*
 * salts.h — the key salts of accounts (pgext.secret_account_keys), read for
 * every format 0x02 secret and cached per backend (see salts.c).
 */
#ifndef PGEXT_SECRET_SALTS_H
#define PGEXT_SECRET_SALTS_H

#include "postgres.h"
#include "utils/uuid.h"

/*
 * The salt of an account (KEYRING_SALT_BYTES, palloc'd), as the active
 * snapshot sees it, or NULL when the account has none (forgotten, or a 1.0
 * row's account).  Served from the per-backend cache when it holds the
 * account.
 */
extern uint8 *SecretSaltFind(const pg_uuid_t *account);

/* Bytes of locked key memory the salt cache maps in each backend. */
extern Size SecretSaltCacheBytes(void);

#endif							/* PGEXT_SECRET_SALTS_H */
