/*
 * labels.c — Hetzner's name and label rules (see labels.h).  PG-free;
 * input is length-delimited and never assumed NUL-terminated.
 */
#include <string.h>

#include "servers/labels.h"

/* Whether c is an ASCII letter or digit. */
static bool
IsAlnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Check a Hetzner name; see labels.h. */
HetznerNameStatus
hetzner_name_check(const char *s, int len, int *badpos)
{
	int			i;

	*badpos = -1;
	if (len == 0)
		return HETZNER_NAME_EMPTY;
	if (len > HETZNER_NAME_MAX_LEN)
		return HETZNER_NAME_TOO_LONG;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '.' || c == '_' || c == '-'))))
		{
			*badpos = i;
			return HETZNER_NAME_BAD_CHAR;
		}
	}
	return HETZNER_NAME_OK;
}

/* Check a label name or value; see labels.h. */
bool
label_part_valid(const char *s, int len, bool allow_empty)
{
	int			i;

	if (len == 0)
		return allow_empty;
	if (len > HETZNER_NAME_MAX_LEN || !IsAlnum(s[0]) || !IsAlnum(s[len - 1]))
		return false;
	for (i = 0; i < len; i++)
		if (!IsAlnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* Check a label key prefix; see labels.h. */
bool
label_prefix_valid(const char *s, int len)
{
	int			start = 0;
	int			i;

	if (len == 0 || len > HETZNER_LABEL_PREFIX_MAX_LEN)
		return false;
	for (i = 0; i <= len; i++)
	{
		if (i == len || s[i] == '.')
		{
			int			n = i - start;

			if (n == 0 || n > HETZNER_NAME_MAX_LEN)
				return false;
			if (s[start] == '-' || s[i - 1] == '-')
				return false;
			start = i + 1;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	}
	return true;
}

/* Check a label key; see labels.h. */
LabelKeyStatus
label_key_check(const char *key, int klen)
{
	const char *slash = memchr(key, '/', klen);
	const char *name = slash ? slash + 1 : key;
	int			nlen = klen - (int) (name - key);

	if (slash && !label_prefix_valid(key, (int) (slash - key)))
		return LABEL_KEY_BAD_PREFIX;
	if (!label_part_valid(name, nlen, false))
		return LABEL_KEY_BAD_NAME;
	if (!slash &&
		((nlen == (int) strlen(PGEXT_LABEL_MANAGED_BY) &&
		  memcmp(name, PGEXT_LABEL_MANAGED_BY, nlen) == 0) ||
		 (nlen >= (int) strlen(PGEXT_LABEL_RESERVED_PREFIX) &&
		  memcmp(name, PGEXT_LABEL_RESERVED_PREFIX, strlen(PGEXT_LABEL_RESERVED_PREFIX)) == 0)))
		return LABEL_KEY_RESERVED;
	return LABEL_KEY_OK;
}
