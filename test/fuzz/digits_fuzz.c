/*
 * digits_fuzz.c — libFuzzer harness for src/common/digits.c (hex and
 * decimal digits: signature hex, key lines, Stripe timestamps).
 *
 * Decodes the input as hex into buffers of every relevant size and as
 * decimal with every digit limit, compares with references written
 * differently (sscanf / strtoll), and round-trips decoded bytes through
 * hex encoding.  Input in exact-size heap copies (ASan sees over-reads).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digits.h"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		len = size > 4096 ? 4096 : size;
	char	   *s = malloc(len ? len : 1);
	uint8_t    *out = malloc(len / 2 + 1);
	char	   *hex = malloc(len + 1);
	size_t		outmax;
	size_t		i;
	int			md;

	memcpy(s, data, len);
	for (i = 0; i < len; i++)
		Check((pgext_hex_value(s[i]) >= 0) == (strchr("0123456789abcdefABCDEF", s[i]) != NULL && s[i] != '\0'));

	for (outmax = 0; outmax <= len / 2 + 1; outmax += (outmax < 40 ? 1 : 97))
	{
		int			n = pgext_hex_decode(s, len, out, outmax);
		int			ok = len > 0 && len % 2 == 0 && len / 2 <= outmax;

		for (i = 0; ok && i < len; i++)
			ok = s[i] != '\0' && strchr("0123456789abcdefABCDEF", s[i]) != NULL;
		Check(n == (ok ? (int) (len / 2) : -1));
		if (n > 0)
		{
			for (i = 0; i < (size_t) n; i++)
			{
				unsigned int b;
				char		pair[3] = {s[2 * i], s[2 * i + 1], '\0'};

				Check(sscanf(pair, "%2x", &b) == 1 && b == out[i]);
				snprintf(hex + 2 * i, 3, "%02x", out[i]);
			}
			Check(pgext_hex_decode(hex, len, out, outmax) == n);
		}
	}

	for (md = 0; md <= 19; md++)
	{
		int64_t		v = -1;
		int			ok = len >= 1 && len <= (size_t) md && md <= 18;

		for (i = 0; ok && i < len; i++)
			ok = s[i] >= '0' && s[i] <= '9';
		Check(pgext_parse_digits(s, len, md, &v) == (ok != 0));
		if (ok)
		{
			char		buf[20];

			memcpy(buf, s, len);
			buf[len] = '\0';
			Check(v == strtoll(buf, NULL, 10) && v >= 0);
		}
	}
	free(s);
	free(out);
	free(hex);
	return 0;
}
