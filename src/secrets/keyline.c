/*
 * keyline.c — one key line of pgext.master_key_command (see keyline.h).
 * PG-free.
 */
#include <string.h>

#include "common/digits.h"
#include "secrets/keyline.h"

/* Parse "<version>:<64 hex>"; see keyline.h. */
KeyLineStatus
keyline_parse(const char *line, int32_t *version, uint8_t *master)
{
	const char *p = line;
	const char *colon = strchr(line, ':');
	int64_t		v = 0;

	*version = 0;
	if (colon == NULL)
		return KEYLINE_NO_COLON;
	if (p == colon)
		return KEYLINE_NO_VERSION;
	for (; p < colon; p++)
	{
		if (*p < '0' || *p > '9')
			return KEYLINE_VERSION_NOT_NUMBER;
		v = v * 10 + (*p - '0');
		if (v > INT32_MAX)
			return KEYLINE_VERSION_RANGE;
	}
	if (v < 1)
		return KEYLINE_VERSION_ZERO;
	*version = (int32_t) v;
	p++;
	if (strlen(p) != 2 * KEYLINE_KEY_BYTES ||
		pgext_hex_decode(p, 2 * KEYLINE_KEY_BYTES, master, KEYLINE_KEY_BYTES) != KEYLINE_KEY_BYTES)
		return KEYLINE_BAD_KEY;
	return KEYLINE_OK;
}

/* Strip trailing line end and blanks; see keyline.h. */
void
keyline_trim(char *line)
{
	size_t		n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
					 line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
}
