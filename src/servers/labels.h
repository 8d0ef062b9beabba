/*
 * labels.h — Hetzner's name and label rules (labels.c), and pgext's own
 * labels.  PG-free, so test/fuzz/labels_fuzz.c can fuzz them; the server
 * spec check (spec.c) calls them and words the errors.
 *
 * Every server pgext creates carries these labels; a spec cannot set them
 * (nor any other unprefixed key starting with PGEXT_LABEL_RESERVED_PREFIX),
 * so the fleet can always be found and attributed by label selector:
 *   managed-by=pgext, pgext-account=<account uuid>, pgext-server=<server id>
 */
#ifndef PGEXT_SERVERS_LABELS_H
#define PGEXT_SERVERS_LABELS_H

#include <stdbool.h>

#define PGEXT_LABEL_MANAGED_BY			"managed-by"
#define PGEXT_LABEL_MANAGED_BY_VALUE	"pgext"
#define PGEXT_LABEL_ACCOUNT				"pgext-account"
#define PGEXT_LABEL_SERVER				"pgext-server"
#define PGEXT_LABEL_RESERVED_PREFIX		"pgext-"

/* Longest name Hetzner takes for a server type, image, location or label part. */
#define HETZNER_NAME_MAX_LEN 63
/* Longest label key prefix (a DNS subdomain). */
#define HETZNER_LABEL_PREFIX_MAX_LEN 253

/* Why a Hetzner name is not valid (HETZNER_NAME_OK when it is). */
typedef enum HetznerNameStatus
{
	HETZNER_NAME_OK,
	HETZNER_NAME_EMPTY,
	HETZNER_NAME_TOO_LONG,		/* more than HETZNER_NAME_MAX_LEN */
	HETZNER_NAME_BAD_CHAR		/* *badpos: the 0-based offset */
} HetznerNameStatus;

/* Why a label key is not valid (LABEL_KEY_OK when it is). */
typedef enum LabelKeyStatus
{
	LABEL_KEY_OK,
	LABEL_KEY_BAD_PREFIX,		/* the part before '/' is not a DNS subdomain */
	LABEL_KEY_BAD_NAME,			/* the name (after any '/') breaks the rules */
	LABEL_KEY_RESERVED			/* managed-by or pgext-*, unprefixed */
} LabelKeyStatus;

/*
 * A Hetzner name (server type, image, location): 1..63 characters of
 * [a-z0-9._-], starting with a letter or digit.  s need not be NUL-terminated.
 */
extern HetznerNameStatus hetzner_name_check(const char *s, int len, int *badpos);

/*
 * Label name or value part: at most 63 characters of [a-zA-Z0-9._-],
 * starting and ending with a letter or digit (a value may be empty).
 */
extern bool label_part_valid(const char *s, int len, bool allow_empty);

/*
 * Label key prefix: a DNS subdomain of at most 253 characters, labels of
 * 1..63 lowercase letters, digits and '-', each starting and ending with a
 * letter or digit, separated by dots.
 */
extern bool label_prefix_valid(const char *s, int len);

/* A label key: [prefix '/'] name, and not one pgext reserves. */
extern LabelKeyStatus label_key_check(const char *key, int klen);

#endif							/* PGEXT_SERVERS_LABELS_H */
