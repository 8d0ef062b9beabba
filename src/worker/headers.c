/*
 * headers.c — the response header lines the worker reads (see headers.h).
 * PG-free; input is length-delimited and never assumed NUL-terminated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/headers.h"

/* Whether header name [name, name + len) is want (ASCII case-insensitive). */
static int
HeaderIs(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* A non-negative decimal integer, or -1; see headers.h. */
long long
http_parse_count(const char *s)
{
	char	   *end;
	long long	v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return v;
}

/* Retry-After in seconds (digits, optional fraction), or -1; see headers.h. */
double
http_parse_seconds(const char *s)
{
	char	   *end;
	double		v;
	const char *p;

	for (p = s; *p != '\0'; p++)
		if ((*p < '0' || *p > '9') && *p != '.')
			return -1;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || v < 0)
		return -1;
	return v;
}

/* Copy header value src into a correlation id: printable ASCII, truncated. */
static void
SetCorrelation(char *dst, size_t dstlen, const char *src)
{
	size_t		o = 0;

	for (; *src != '\0' && o < dstlen - 1; src++)
	{
		unsigned char c = (unsigned char) *src;

		dst[o++] = (c < 0x21 || c > 0x7e) ? '?' : (char) c;
	}
	dst[o] = '\0';
}

/* Parse one header line; see headers.h. */
HttpHeaderKind
http_header_parse(const char *data, size_t n, HttpHeader *h)
{
	const char *colon;
	const char *v;
	const char *end;
	size_t		namelen;
	size_t		vlen;
	char		val[128];

	h->count = -1;
	h->seconds = -1;
	h->id[0] = '\0';
	h->kind = HTTP_HEADER_OTHER;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		return h->kind = HTTP_HEADER_STATUS;
	colon = memchr(data, ':', n);
	if (colon == NULL)
		return h->kind;
	namelen = (size_t) (colon - data);
	v = colon + 1;
	end = data + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	vlen = (size_t) (end - v);
	if (vlen >= sizeof(val))
	{
		/* too long for any header we want but an id: keep its start */
		if (!HeaderIs(data, namelen, "x-correlation-id") &&
			!HeaderIs(data, namelen, "request-id"))
			return h->kind;
		vlen = sizeof(val) - 1;
	}
	memcpy(val, v, vlen);
	val[vlen] = '\0';

	if (HeaderIs(data, namelen, "ratelimit-limit"))
		h->kind = HTTP_HEADER_RL_LIMIT;
	else if (HeaderIs(data, namelen, "ratelimit-remaining"))
		h->kind = HTTP_HEADER_RL_REMAINING;
	else if (HeaderIs(data, namelen, "ratelimit-reset"))
		h->kind = HTTP_HEADER_RL_RESET;
	else if (HeaderIs(data, namelen, "retry-after"))
	{
		h->seconds = http_parse_seconds(val);
		return h->kind = HTTP_HEADER_RETRY_AFTER;
	}
	else if (HeaderIs(data, namelen, "x-correlation-id"))
		h->kind = HTTP_HEADER_X_CORRELATION_ID;
	else if (HeaderIs(data, namelen, "request-id"))
		h->kind = HTTP_HEADER_REQUEST_ID;
	else
		return h->kind;
	if (h->kind == HTTP_HEADER_X_CORRELATION_ID || h->kind == HTTP_HEADER_REQUEST_ID)
		SetCorrelation(h->id, sizeof(h->id), val);
	else
		h->count = http_parse_count(val);
	return h->kind;
}
