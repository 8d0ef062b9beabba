/*
 * store.h — the stored form of secrets (store.c): finding a row through the
 * (account_id, name) index, checking and decrypting it, sealing and writing
 * a value, and the plaintext buffers of the current call that must be wiped
 * however the call ends.  Used by the SQL entry points in secrets.c.
 */
#ifndef PGEXT_SECRETS_STORE_H
#define PGEXT_SECRETS_STORE_H

#include "postgres.h"
#include "executor/spi.h"
#include "utils/uuid.h"

#include "secrets/audit.h"
#include "secrets/box.h"

/* A stored row, as read for decryption. */
typedef struct SecretRow
{
	SecretBinding b;
	bytea	   *sealed;
} SecretRow;

/*
 * Find the row of secret (account, name) through its unique index under the
 * active snapshot, without decrypting or auditing it: its binding (id, key
 * version, expiry, and the account's salt for a per-account row) and its
 * sealed bytes, copied into the current memory context.  False when there
 * is no such row.
 */
extern bool SecretFindRow(const text *name, const pg_uuid_t *account, SecretRow *row);

/* Forget the tracked buffers (start of an SQL call; nothing to wipe yet). */
extern void SensitiveReset(void);

/* Remember a plaintext buffer so SensitiveWipe() clears it. */
extern void SensitiveTrack(void *ptr, Size len);

/* Wipe every tracked plaintext buffer. */
extern void SensitiveWipe(void);

/* Fill the name/account part of a binding. */
extern void SecretBindingInit(SecretBinding *b, const text *name, const pg_uuid_t *account);

/* Describe whose secret it is, for messages. */
extern char *SecretOwner(const SecretBinding *b);

/* Error (audited as not_found): the named secret does not exist (or its account does not). */
extern void SecretNotFound(const SecretBinding *b, SecretAuditOp op) pg_attribute_noreturn();

/*
 * Find, check and decrypt (name, account) into a buffer in the caller's
 * context (tracked for wiping).  Returns NULL only when missing_ok and it
 * does not exist.
 */
extern char *SecretLookupAndOpen(const text *name, const pg_uuid_t *account, SecretAuditOp op,
								 bool missing_ok, bool allow_expired, int *len);

/* Seal and store a value for (name, account) under the encrypting key; SPI connected. */
extern void SecretStore(const text *name, const pg_uuid_t *account, bool has_expires,
						TimestampTz expires_at, const char *plain, int len, pg_uuid_t *id_out);

/*
 * The account's key salt, created on first use (account row locked FOR KEY
 * SHARE first); 55000 for a forgotten account.  SPI connected.
 */
extern uint8 *SecretAccountSalt(const pg_uuid_t *account);

/* Refuse a value over the size limit. */
extern void SecretCheckValueSize(Size len);

/* Validate a value to store; returns its length. */
extern int	SecretCheckValue(const char *plain, int len);

/* Read row i of a secret_rewrap chunk into *row (sealed value left toasted). */
extern void SecretRewrapReadRow(SPITupleTable *rows, uint64 i, SecretRow *row, Datum *sealed);

/* Rewrap one locked row to version target; an outcome, never an error for a bad row. */
extern SecretAuditOutcome SecretRewrapRow(SecretRow *row, Datum sealed_datum, int32 target);

#endif							/* PGEXT_SECRETS_STORE_H */
