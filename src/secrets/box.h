/*
 * box.h — AES-256-GCM sealing of secret values, bound to their row.
 *
 * A sealed value is  0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes).
 * The additional authenticated data (AAD) names the row the value belongs to,
 * so a sealed value copied to another row, account, name, expiry or key
 * version fails authentication instead of decrypting:
 *
 *   "pgext.secret.v1"            15 bytes
 *   key version                  4 bytes, big-endian
 *   secret id                    16 bytes (uuid)
 *   account present              1 byte: 0 platform secret, 1 account secret
 *   account id                   16 bytes (zeros for a platform secret)
 *   expires present              1 byte
 *   expires_at                   8 bytes, big-endian microseconds since 2000 (0 if none)
 *   name length                  4 bytes, big-endian
 *   name                         the name's bytes
 */
#ifndef PGEXT_SECRET_BOX_H
#define PGEXT_SECRET_BOX_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

#define SECRET_BOX_FORMAT 0x01
#define SECRET_BOX_NONCE_BYTES 12
#define SECRET_BOX_TAG_BYTES 16
#define SECRET_BOX_OVERHEAD (1 + SECRET_BOX_NONCE_BYTES + SECRET_BOX_TAG_BYTES)

/* Everything a sealed value is bound to (the AAD fields). */
typedef struct SecretBinding
{
	int32		key_version;
	pg_uuid_t	id;
	bool		has_account;
	pg_uuid_t	account;
	bool		has_expires;
	TimestampTz expires_at;
	const char *name;
	int			name_len;
} SecretBinding;

/*
 * Seal plaintext with the data key of b->key_version; returns a palloc'd
 * bytea in the current memory context.
 */
extern bytea *SecretBoxSeal(const SecretBinding *b, const char *plain, int plain_len);

/* Whether a sealed value has the format and minimum length above. */
extern bool SecretBoxWellFormed(const bytea *sealed);

/*
 * Open a sealed value.  On success returns a palloc'd buffer of *plain_len
 * bytes (plus a terminating NUL) that the caller must wipe when done.
 * Returns NULL when authentication fails (wrong row, altered bytes or a
 * different key); errors only on malformed input or OpenSSL failure.
 */
extern char *SecretBoxOpen(const SecretBinding *b, const bytea *sealed, int *plain_len);

#endif							/* PGEXT_SECRET_BOX_H */
