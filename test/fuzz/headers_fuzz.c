/*
 * headers_fuzz.c — libFuzzer harness for src/worker/headers.c (the response
 * header lines the worker reads: RateLimit-*, Retry-After, correlation ids).
 *
 * The input is cut into lines at '\n' (each keeps its '\n', as curl hands
 * them); every line goes to http_header_parse in an exact-size heap copy
 * (so ASan sees any over-read), and the result is checked against a
 * reference written differently.  The whole input also goes to the number
 * parsers.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/headers.h"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* Lower-case ASCII letter. */
static char
Lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* Whether [s, s + n) equals lower-case want, ignoring ASCII case. */
static int
NameEq(const char *s, size_t n, const char *want)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (want[i] == '\0' || Lower(s[i]) != want[i])
			return 0;
	return want[n] == '\0';
}

/* Reference count: digits up to the first NUL, no overflow, else -1. */
static long long
RefCount(const char *s, size_t n)
{
	unsigned long long v = 0;
	size_t		i;

	if (n == 0 || s[0] < '0' || s[0] > '9')
		return -1;
	for (i = 0; i < n && s[i] != '\0'; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (9223372036854775807ULL - (unsigned) (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned) (s[i] - '0');
	}
	return (long long) v;
}

/* Check one line against the reference. */
static void
CheckLine(const uint8_t *data, size_t n)
{
	char	   *line = malloc(n ? n : 1);
	HttpHeader	h;
	HttpHeaderKind k;
	const char *colon;
	const char *v;
	const char *end;
	size_t		i;

	memcpy(line, data, n);
	k = http_header_parse(line, n, &h);
	Check(k == h.kind && k >= HTTP_HEADER_OTHER && k <= HTTP_HEADER_REQUEST_ID);
	Check(strlen(h.id) < sizeof(h.id));
	for (i = 0; h.id[i] != '\0'; i++)
		Check(h.id[i] >= 0x21 && h.id[i] <= 0x7e);
	Check(h.count >= -1);
	Check(h.seconds == -1 || (h.seconds >= 0 && isfinite(h.seconds)));
	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0)
	{
		Check(k == HTTP_HEADER_STATUS);
		free(line);
		return;
	}
	colon = memchr(line, ':', n);
	if (colon == NULL)
	{
		Check(k == HTTP_HEADER_OTHER);
		free(line);
		return;
	}
	/* the value as the parser should see it */
	v = colon + 1;
	end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && strchr("\r\n \t", end[-1]) != NULL && end[-1] != '\0')
		end--;
	if (NameEq(line, (size_t) (colon - line), "ratelimit-limit") ||
		NameEq(line, (size_t) (colon - line), "ratelimit-remaining") ||
		NameEq(line, (size_t) (colon - line), "ratelimit-reset"))
	{
		if (end - v >= 128)
			Check(k == HTTP_HEADER_OTHER);
		else
		{
			Check(k >= HTTP_HEADER_RL_LIMIT && k <= HTTP_HEADER_RL_RESET);
			Check(h.count == RefCount(v, (size_t) (end - v)));
		}
	}
	else if (NameEq(line, (size_t) (colon - line), "retry-after"))
	{
		if (end - v >= 128)
			Check(k == HTTP_HEADER_OTHER);
		else
		{
			Check(k == HTTP_HEADER_RETRY_AFTER);
			/* a number only from digits and dots, starting with a digit */
			if (h.seconds >= 0)
			{
				Check(v < end && *v >= '0' && *v <= '9');
				for (const char *p = v; p < end && *p != '\0'; p++)
					Check((*p >= '0' && *p <= '9') || *p == '.');
				/* whole seconds agree with the integer part */
				if (RefCount(v, (size_t) (end - v)) >= 0 && end - v < 16)
					Check(h.seconds == (double) RefCount(v, (size_t) (end - v)));
			}
		}
	}
	else if (NameEq(line, (size_t) (colon - line), "x-correlation-id") ||
			 NameEq(line, (size_t) (colon - line), "request-id"))
	{
		size_t		idlen = strlen(h.id);

		Check(k == HTTP_HEADER_X_CORRELATION_ID || k == HTTP_HEADER_REQUEST_ID);
		/* the id is the value's start, up to a NUL, non-printables as '?' */
		for (i = 0; i < idlen; i++)
			Check(v + i < end && (h.id[i] == v[i] || (h.id[i] == '?' && (v[i] < 0x21 || v[i] > 0x7e))));
		Check(idlen == sizeof(h.id) - 1 || v + idlen == end || v[idlen] == '\0');
	}
	else
		Check(k == HTTP_HEADER_OTHER);
	free(line);
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		start = 0;
	size_t		i;
	char	   *s;
	long long	c;
	double		secs;

	for (i = 0; i <= size; i++)
		if (i == size || data[i] == '\n')
		{
			size_t		stop = i < size ? i + 1 : i;

			if (stop > start || size == 0)
				CheckLine(data + start, stop - start);
			start = stop;
		}

	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	c = http_parse_count(s);
	Check(c == RefCount(s, size));
	secs = http_parse_seconds(s);
	Check(secs == -1 || (secs >= 0 && isfinite(secs)));
	if (secs >= 0)
		Check(s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789.") == strlen(s));
	free(s);
	return 0;
}
