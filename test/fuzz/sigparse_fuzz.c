/*
 * sigparse_fuzz.c — libFuzzer harness for src/webhooks/sigparse.c.
 *
 * Feeds arbitrary bytes to every parser entry point and checks the output
 * invariants; AddressSanitizer catches any out-of-bounds read or write.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhooks/sigparse.h"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* Invariants every parse result must satisfy. */
static void
CheckHeader(SigParseStatus st, const SigHeader *h)
{
	int			i;

	Check(h->nsigs >= 0 && h->nsigs <= SIGPARSE_MAX_SIGS);
	Check(h->ignored >= 0);
	for (i = 0; i < h->nsigs; i++)
		Check(h->siglen[i] > 0 && h->siglen[i] <= SIGPARSE_MAX_SIG_BYTES);
	if (st == SIGPARSE_OK)
		Check(h->nsigs > 0);
	if (h->has_timestamp)
		Check(h->timestamp > 0 && h->timestamp < 1000000000000LL);
	Check(sigparse_status_name(st) != NULL);
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Copy into an exact-size heap buffer so ASan sees any over-read. */
	char	   *buf = malloc(size ? size : 1);
	SigHeader	h;
	SigParseStatus st;
	uint8_t		out[SIGPARSE_MAX_SIG_BYTES];
	int			n;

	memcpy(buf, data, size);
	st = sigparse_kv(buf, size, "v1", SIG_ENCODING_HEX, true, &h);
	CheckHeader(st, &h);
	st = sigparse_kv(buf, size, "sig", SIG_ENCODING_BASE64, false, &h);
	CheckHeader(st, &h);
	st = sigparse_plain(buf, size, "sha256=", SIG_ENCODING_HEX, &h);
	CheckHeader(st, &h);
	st = sigparse_plain(buf, size, "", SIG_ENCODING_BASE64, &h);
	CheckHeader(st, &h);
	n = sigparse_decode(buf, size, SIG_ENCODING_BASE64, out, sizeof(out));
	Check(n >= -1 && n <= (int) sizeof(out));
	n = sigparse_decode(buf, size, SIG_ENCODING_HEX, out, sizeof(out));
	Check(n == -1 || (size_t) n * 2 == size);
	free(buf);
	return 0;
}
