/*
 * cloudinit_fuzz.c — libFuzzer harness for src/servers/cloudinit.c.
 *
 * Feeds arbitrary bytes to the user_data check (twice: as given, and behind
 * a "#cloud-config" header so the YAML path is always reached) and checks
 * the result's invariants; AddressSanitizer catches any out-of-bounds
 * access, LeakSanitizer any libyaml parser or document left unfreed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servers/cloudinit.h"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* A reference UTF-8 check written differently: decode, then range-check. */
static int
Utf8Reference(const uint8_t *p, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		uint32_t	cp;
		size_t		n;
		size_t		k;

		if (p[i] < 0x80)
		{
			i++;
			continue;
		}
		if ((p[i] & 0xE0) == 0xC0)
			n = 1, cp = p[i] & 0x1F;
		else if ((p[i] & 0xF0) == 0xE0)
			n = 2, cp = p[i] & 0x0F;
		else if ((p[i] & 0xF8) == 0xF0)
			n = 3, cp = p[i] & 0x07;
		else
			return 0;
		if (i + n >= len)
			return 0;
		for (k = 1; k <= n; k++)
		{
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Invariants of one check. */
static void
CheckOne(const char *buf, size_t size)
{
	CloudInitError err;
	bool		ok = pgext_cloudinit_check(buf, size, &err);

	if (!ok)
	{
		Check(err.line >= 1 && err.column >= 1);
		Check(err.message[0] != '\0' && err.hint[0] != '\0');
		Check(memchr(err.message, '\0', sizeof(err.message)) != NULL);
		Check(memchr(err.hint, '\0', sizeof(err.hint)) != NULL);
	}
	else
	{
		Check(size <= CLOUDINIT_MAX_BYTES);
		Check(pgext_utf8_valid_prefix(buf, size) == size);
		Check(size >= 2 && buf[0] == '#');
	}
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char header[] = "#cloud-config\n";
	size_t		hlen = sizeof(header) - 1;
	/* exact-size heap buffers so ASan sees any over-read */
	char	   *buf = malloc(size ? size : 1);
	char	   *cfg = malloc(size + hlen);

	memcpy(buf, data, size);
	Check((pgext_utf8_valid_prefix(buf, size) == size) == Utf8Reference(data, size));
	CheckOne(buf, size);
	memcpy(cfg, header, hlen);
	memcpy(cfg + hlen, data, size);
	CheckOne(cfg, size + hlen);
	free(cfg);
	free(buf);
	return 0;
}
