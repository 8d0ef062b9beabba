/*
 * digits.c — hex and decimal digits, PG-free (see digits.h).  Input is
 * length-delimited and never assumed NUL-terminated.
 */
#include "common/digits.h"

/* Value of one hex digit, or -1. */
int
pgext_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex (even length) into out; see digits.h. */
int
pgext_hex_decode(const char *s, size_t len, uint8_t *out, size_t outmax)
{
	size_t		i;

	if (len == 0 || len % 2 != 0 || len / 2 > outmax)
		return -1;
	for (i = 0; i < len; i += 2)
	{
		int			hi = pgext_hex_value(s[i]);
		int			lo = pgext_hex_value(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t) ((hi << 4) | lo);
	}
	return (int) (len / 2);
}

/* Read exactly len decimal digits; see digits.h. */
bool
pgext_parse_digits(const char *s, size_t len, int max_digits, int64_t *out)
{
	int64_t		v = 0;
	size_t		i;

	if (len == 0 || len > (size_t) max_digits || max_digits > 18)
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}
