/*
 * box.h — AES-256-GCM sealing of secret values, bound to their row.
 *
 * A sealed value is  format || nonce (12 bytes) || ciphertext || tag (16 bytes).
 * Format 0x01: the key is derived from the master key version (and the
 * account id) alone; platform secrets and secrets written by 1.0.  Format
 * 0x02 (account secrets since 1.1): the key is derived with the account's
 * random salt too (pgext.secret_account_keys, keyring.c), so deleting that
 * salt row (account_forget) makes every 0x02 value of the account
 * undecryptable, even with the master key.
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

#define SECRET_BOX_FORMAT_MASTER 0x01
#define SECRET_BOX_FORMAT_ACCOUNT 0x02
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
	const uint8 *salt;			/* the account's salt (KEYRING_SALT_BYTES), or
								 * NULL: none (platform, 1.0 rows, forgotten) */
} SecretBinding;

/*
 * Seal plaintext with the data key of b->key_version; returns a palloc'd
 * bytea in the current memory context.  Format 0x02 when b has an account
 * and a salt, else 0x01.
 */
extern bytea *SecretBoxSeal(const SecretBinding *b, const char *plain, int plain_len);

/* Whether a sealed value has a known format and the minimum length above. */
extern bool SecretBoxWellFormed(const bytea *sealed);

/* The format byte of a well-formed sealed value. */
extern int	SecretBoxFormat(const bytea *sealed);

/*
 * Open a sealed value.  On success returns a palloc'd buffer of *plain_len
 * bytes (plus a terminating NUL) that the caller must wipe when done.
 * Returns NULL when authentication fails (wrong row, altered bytes or a
 * different key) or when a 0x02 value comes without its salt (the account's
 * key material is gone); errors only on malformed input or OpenSSL failure.
 */
extern char *SecretBoxOpen(const SecretBinding *b, const bytea *sealed, int *plain_len);

#endif							/* PGEXT_SECRET_BOX_H */
