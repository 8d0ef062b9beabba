/*
 * keyline.h — one key line of pgext.master_key_command, "<version>:<64 hex>"
 * (keyline.c).  PG-free, so test/fuzz/keyline_fuzz.c can fuzz it; the
 * keyring (keyring.c) calls it for every line and words the messages.
 */
#ifndef PGEXT_SECRETS_KEYLINE_H
#define PGEXT_SECRETS_KEYLINE_H

#include <stdint.h>

#define KEYLINE_KEY_BYTES 32	/* AES-256 master key */

/* Why a line is not a key line (KEYLINE_OK when it is). */
typedef enum KeyLineStatus
{
	KEYLINE_OK,
	KEYLINE_NO_COLON,			/* no "<version>:" prefix */
	KEYLINE_NO_VERSION,			/* nothing before ':' */
	KEYLINE_VERSION_NOT_NUMBER, /* a non-digit before ':' */
	KEYLINE_VERSION_RANGE,		/* more than INT32_MAX */
	KEYLINE_VERSION_ZERO,		/* versions start at 1 */
	KEYLINE_BAD_KEY				/* not exactly 64 hex digits after ':' */
} KeyLineStatus;

/*
 * Parse NUL-terminated line (already trimmed) into *version and master
 * (KEYLINE_KEY_BYTES).  *version is also set with KEYLINE_BAD_KEY (for the
 * message); master may hold key bytes on any return: the caller wipes it.
 */
extern KeyLineStatus keyline_parse(const char *line, int32_t *version, uint8_t *master);

/* Strip trailing newline, carriage return and blanks of line in place. */
extern void keyline_trim(char *line);

#endif							/* PGEXT_SECRETS_KEYLINE_H */
