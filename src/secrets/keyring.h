/*
 * keyring.h — master keys from pgext.master_key_command, held in process
 * memory only, and the per-account AES-256 keys derived from them with HKDF.
 */
#ifndef PGEXT_KEYRING_H
#define PGEXT_KEYRING_H

#include "postgres.h"
#include "utils/uuid.h"

#define KEYRING_KEY_BYTES 32	/* AES-256 */
#define KEYRING_MAX_KEYS 64		/* key lines the command may print */
#define KEYRING_SALT_BYTES 32	/* pgext.secret_account_keys.salt */

/*
 * Run pgext.master_key_command and derive one root key per version.  Called
 * once, from KeyringInit in the postmaster; backends inherit the result through
 * fork().  Never raises an ERROR: a missing or broken command is logged as a
 * WARNING that names the setting, and the secret functions then refuse.
 */
extern void KeyringLoad(void);

/* Raise a clear ERROR unless the keys are loaded. */
extern void KeyringRequire(void);

/* Whether a master key version was loaded. */
extern bool KeyringHasVersion(int32 version);

/*
 * Copy the AES-256 key of (version, account, salt) into out
 * (KEYRING_KEY_BYTES); account NULL for platform secrets; salt NULL for the
 * unsalted format 0x01, else the account's KEYRING_SALT_BYTES salt (format
 * 0x02).  Returns false when that version was not loaded.  The caller wipes
 * out when done.
 */
extern bool KeyringAccountKey(int32 version, const pg_uuid_t *account, const uint8 *salt,
							  uint8 *out);

/* Define the key settings and load the keys (KeyringLoad); postmaster start only. */
extern void KeyringInit(void);

/*
 * Map zeroed memory for key material: private, excluded from core dumps,
 * locked in RAM when the memlock limit allows (see keyring.c); NULL when it
 * cannot be mapped.  The caller wipes it.
 */
extern void *KeyringMapKeyMemory(Size size);

/*
 * Wipe this backend's cached keys derived with an account's salt (after a
 * salt changed or was deleted: salts.c).
 */
extern void KeyringForgetSaltedKeys(void);

/* The version that seals: pgext.secret_encrypt_version, 0 = the newest. */
extern int32 KeyringEncryptVersion(void);

/* The newest (highest) loaded version; KeyringRequire() first. */
extern int32 KeyringNewestVersion(void);

/* Loaded versions in ascending order; returns how many (<= max). */
extern int	KeyringVersions(int32 *versions, int max);

#endif							/* PGEXT_KEYRING_H */
