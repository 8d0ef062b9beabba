/*
 * labels_fuzz.c — libFuzzer harness for src/servers/labels.c (Hetzner
 * names, label keys and values, pgext's reserved label keys).
 *
 * Every entry point gets the input in an exact-size heap copy (so ASan sees
 * any over-read) and is compared with a reference written differently
 * (character classes by strchr, the prefix split with memchr).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servers/labels.h"

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* Whether byte c is in the NUL-terminated set (never for NUL itself). */
static bool
In(char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

/* Reference: a Hetzner name. */
static HetznerNameStatus
RefName(const char *s, int len, int *bad)
{
	int			i;

	*bad = -1;
	if (len == 0)
		return HETZNER_NAME_EMPTY;
	if (len > 63)
		return HETZNER_NAME_TOO_LONG;
	for (i = 0; i < len; i++)
		if (!In(s[i], i == 0 ? LOWER_DIGITS : LOWER_DIGITS "._-"))
		{
			*bad = i;
			return HETZNER_NAME_BAD_CHAR;
		}
	return HETZNER_NAME_OK;
}

/* Reference: a label name or value. */
static bool
RefPart(const char *s, int len, bool allow_empty)
{
	int			i;

	if (len == 0)
		return allow_empty;
	if (len > 63 || !In(s[0], ALNUM) || !In(s[len - 1], ALNUM))
		return false;
	for (i = 0; i < len; i++)
		if (!In(s[i], ALNUM "._-"))
			return false;
	return true;
}

/* Reference: a DNS-subdomain label key prefix, split at dots with memchr. */
static bool
RefPrefix(const char *s, int len)
{
	const char *p = s;
	const char *end = s + len;

	if (len < 1 || len > 253)
		return false;
	for (;;)
	{
		const char *dot = memchr(p, '.', (size_t) (end - p));
		const char *stop = dot ? dot : end;
		int			n = (int) (stop - p);
		int			i;

		if (n < 1 || n > 63 || p[0] == '-' || stop[-1] == '-')
			return false;
		for (i = 0; i < n; i++)
			if (!In(p[i], LOWER_DIGITS "-"))
				return false;
		if (dot == NULL)
			return true;
		p = dot + 1;
	}
}

/* Reference: a label key. */
static LabelKeyStatus
RefKey(const char *s, int len)
{
	const char *slash = memchr(s, '/', (size_t) len);

	if (slash)
	{
		if (!RefPrefix(s, (int) (slash - s)))
			return LABEL_KEY_BAD_PREFIX;
		return RefPart(slash + 1, len - (int) (slash + 1 - s), false) ? LABEL_KEY_OK : LABEL_KEY_BAD_NAME;
	}
	if (!RefPart(s, len, false))
		return LABEL_KEY_BAD_NAME;
	if ((len == 10 && memcmp(s, "managed-by", 10) == 0) ||
		(len >= 6 && memcmp(s, "pgext-", 6) == 0))
		return LABEL_KEY_RESERVED;
	return LABEL_KEY_OK;
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			len = size > 100000 ? 100000 : (int) size;
	char	   *s = malloc(len ? (size_t) len : 1);
	int			bad;
	int			refbad;

	memcpy(s, data, (size_t) len);
	Check(hetzner_name_check(s, len, &bad) == RefName(s, len, &refbad));
	Check(bad == refbad && bad < len);
	Check(label_part_valid(s, len, true) == RefPart(s, len, true));
	Check(label_part_valid(s, len, false) == RefPart(s, len, false));
	Check(label_prefix_valid(s, len) == RefPrefix(s, len));
	Check(label_key_check(s, len) == RefKey(s, len));
	/* pgext's own keys are refused, with or without a prefix they are not */
	Check(label_key_check(PGEXT_LABEL_MANAGED_BY, 10) == LABEL_KEY_RESERVED);
	Check(label_key_check(PGEXT_LABEL_ACCOUNT, (int) strlen(PGEXT_LABEL_ACCOUNT)) == LABEL_KEY_RESERVED);
	free(s);
	return 0;
}
