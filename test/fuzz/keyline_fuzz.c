/*
 * keyline_fuzz.c — libFuzzer harness for src/secrets/keyline.c (the key
 * lines "<version>:<64 hex>" pgext.master_key_command prints).
 *
 * Trims and parses the input (as the keyring does a line), compares the
 * status with a reference written differently, and round-trips every
 * accepted line through its canonical form.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/keyline.h"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* Reference status of a trimmed line. */
static KeyLineStatus
Reference(const char *line, int32_t *version)
{
	const char *colon = strchr(line, ':');
	const char *p;
	size_t		ndig;
	long long	v;

	if (colon == NULL)
		return KEYLINE_NO_COLON;
	if (colon == line)
		return KEYLINE_NO_VERSION;
	ndig = strspn(line, "0123456789");
	/* the first non-digit before ':' decides, unless the number overflowed before it */
	p = line;
	while (*p == '0' && p < line + ndig)
		p++;
	if ((size_t) (line + ndig - p) > 10 ||
		((size_t) (line + ndig - p) == 10 && strncmp(p, "2147483647", 10) > 0))
		return KEYLINE_VERSION_RANGE;
	if (line + ndig != colon)
		return KEYLINE_VERSION_NOT_NUMBER;
	v = strtoll(line, NULL, 10);
	if (v < 1)
		return KEYLINE_VERSION_ZERO;
	*version = (int32_t) v;
	if (strlen(colon + 1) != 64 || strspn(colon + 1, "0123456789abcdefABCDEF") != 64)
		return KEYLINE_BAD_KEY;
	return KEYLINE_OK;
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *line = malloc(size + 1);
	char		canon[16 + 2 * KEYLINE_KEY_BYTES];
	uint8_t		master[KEYLINE_KEY_BYTES];
	uint8_t		again[KEYLINE_KEY_BYTES];
	int32_t		version;
	int32_t		v2;
	int32_t		ref_version = 0;
	KeyLineStatus st;
	KeyLineStatus ref;
	size_t		before;
	int			i;

	memcpy(line, data, size);
	line[size] = '\0';
	before = strlen(line);
	keyline_trim(line);
	/* trimming only cuts trailing blanks and line ends */
	Check(strlen(line) <= before);
	Check(strlen(line) == 0 || strchr("\r\n \t", line[strlen(line) - 1]) == NULL);

	st = keyline_parse(line, &version, master);
	ref = Reference(line, &ref_version);
	/* a non-digit and an overflow both fail; which is reported first may differ */
	if (!((st == KEYLINE_VERSION_RANGE || st == KEYLINE_VERSION_NOT_NUMBER) &&
		  (ref == KEYLINE_VERSION_RANGE || ref == KEYLINE_VERSION_NOT_NUMBER)))
		Check(st == ref);
	if (st == KEYLINE_OK || st == KEYLINE_BAD_KEY)
		Check(version == ref_version && version >= 1);
	if (st == KEYLINE_OK)
	{
		int			o = snprintf(canon, sizeof(canon), "%d:", (int) version);

		for (i = 0; i < KEYLINE_KEY_BYTES; i++)
			o += snprintf(canon + o, sizeof(canon) - (size_t) o, "%02x", master[i]);
		Check(keyline_parse(canon, &v2, again) == KEYLINE_OK);
		Check(v2 == version && memcmp(again, master, sizeof(master)) == 0);
	}
	free(line);
	return 0;
}
