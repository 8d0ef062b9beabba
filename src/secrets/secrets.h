/*
 * secrets.h — encrypted secret storage: the pgext.secret_* SQL functions and
 * a C entry point for other pgext modules (webhook verification reads its
 * signing secrets through it).
 */
#ifndef PGEXT_SECRETS_H
#define PGEXT_SECRETS_H

#include "postgres.h"
#include "utils/uuid.h"

#define SECRET_NAME_MAX_BYTES 255
#define SECRET_VALUE_MAX_BYTES 65536

/* Module load (_PG_init); when preloaded: audit shared memory, master keys, logging warning. */
extern void SecretsInit(void);

/*
 * Decrypt the secret (name, account) into a palloc'd, NUL-terminated buffer
 * in the current memory context and set *len.  account NULL means a platform
 * secret.  When it does not exist returns NULL if missing_ok, else errors;
 * errors when it has expired or cannot be decrypted.  The caller must wipe
 * the buffer (explicit_bzero) as soon as it is done with it.  Counts as a
 * "get" in the audit, like pgext.secret_get().
 */
extern char *SecretLookup(const char *name, const pg_uuid_t *account,
						  bool missing_ok, int *len);

#endif							/* PGEXT_SECRETS_H */
