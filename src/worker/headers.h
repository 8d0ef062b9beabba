/*
 * headers.h — the HTTP response header lines the worker reads (headers.c):
 * RateLimit-Limit/-Remaining/-Reset, Retry-After and the correlation id
 * (x-correlation-id, Request-Id).  PG-free, so test/fuzz/headers_fuzz.c
 * can fuzz it; http.c's header callback calls it for every line.
 */
#ifndef PGEXT_WORKER_HEADERS_H
#define PGEXT_WORKER_HEADERS_H

#include <stddef.h>

/* Longest correlation id kept, with its NUL (HttpRequest.correlation_id). */
#define HTTP_CORRELATION_ID_SIZE 128

/* What one header line is. */
typedef enum HttpHeaderKind
{
	HTTP_HEADER_OTHER,			/* any other line (or no colon): ignored */
	HTTP_HEADER_STATUS,			/* "HTTP/..." status line: a new response */
	HTTP_HEADER_RL_LIMIT,		/* count */
	HTTP_HEADER_RL_REMAINING,	/* count */
	HTTP_HEADER_RL_RESET,		/* count (unix seconds) */
	HTTP_HEADER_RETRY_AFTER,	/* seconds */
	HTTP_HEADER_X_CORRELATION_ID,	/* id */
	HTTP_HEADER_REQUEST_ID		/* id */
} HttpHeaderKind;

/* One parsed header line. */
typedef struct HttpHeader
{
	HttpHeaderKind kind;
	long long	count;			/* the RateLimit-* value, -1 when not a number */
	double		seconds;		/* Retry-After in seconds, -1 when not (a date...) */
	char		id[HTTP_CORRELATION_ID_SIZE];	/* printable ASCII ('?' for the
												 * rest), truncated */
} HttpHeader;

/*
 * Parse one header line [data, data + n) as curl hands it (not
 * NUL-terminated, with its CRLF) into *h; returns h->kind.
 */
extern HttpHeaderKind http_header_parse(const char *data, size_t n, HttpHeader *h);

/* A non-negative decimal integer from NUL-terminated s, or -1 (garbage, overflow). */
extern long long http_parse_count(const char *s);

/* Seconds (digits, optional fraction) from NUL-terminated s, or -1 (a date, garbage). */
extern double http_parse_seconds(const char *s);

#endif							/* PGEXT_WORKER_HEADERS_H */
