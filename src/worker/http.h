/*
 * http.h — the worker's HTTP engine (http.c): PG-free C on libcurl's multi
 * *socket* interface.  curl's sockets live in a private epoll set whose fd
 * the caller waits on (with HttpEngineTimeoutMs as the timeout), then calls
 * HttpEngineDrive and collects finished requests with HttpEngineNextDone.
 * One multi handle: connections to a host are reused.  Single-threaded.
 *
 * Ownership: the caller allocates an HttpRequest and its strings with
 * malloc/strdup; HttpEngineSubmit hands it to the engine (when it returns 0);
 * HttpEngineNextDone hands it back, and the caller frees it with
 * HttpRequestFree.  When HttpEngineSubmit returns -1 the caller keeps r,
 * already completed with error_code "network" (nothing is queued).
 * HttpEngineDestroy frees every request still in flight or not yet collected.
 */
#ifndef PGEXT_WORKER_HTTP_H
#define PGEXT_WORKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "worker/headers.h"

typedef struct HttpEngine HttpEngine;

typedef struct HttpRequest
{
	/* filled by the caller before HttpEngineSubmit (malloc'd; freed by HttpRequestFree) */
	char	   *method;			/* "GET", "POST", "DELETE" (A-Z only) */
	char	   *url;			/* full URL: http or https only */
	char	   *body;			/* request body or NULL; sent as application/json */
	char	   *bearer;			/* "Authorization: Bearer" token or NULL; wiped on free */
	char	   *idempotency_key;	/* "Idempotency-Key" header (Stripe POSTs) or NULL */
	long		timeout_ms;		/* whole-request timeout (> 0) */
	size_t		max_response;	/* bytes; a larger body ends the transfer: "too_large" */
	bool		fresh_connection;	/* a new connection, closed afterwards (health
									 * checks: a cached one would hide a dead
									 * listener) */
	bool		status_only;	/* only the status matters: headers are not parsed
								 * and the body is counted against max_response
								 * but not kept (response stays NULL,
								 * response_len its length) */
	void	   *user;			/* the caller's */

	/* filled by the engine (reset by HttpEngineSubmit, final when done) */
	long		http_status;	/* 0 = no (complete) HTTP response */
	const char *error_code;		/* NULL when an HTTP response arrived (any status);
								 * else "timeout", "network", "too_large" or "tls"
								 * (static strings) */
	const char *error_kind;		/* NULL with a response; else error_code, but
								 * "refused" (connection refused) and "dns"
								 * (host not resolved) in place of "network"
								 * (static strings) */
	char		error[256];		/* curl's message when error_code != NULL (never the
								 * URL, the token or the body) */
	char	   *response;		/* body (NUL-terminated) or NULL; NULL on error */
	size_t		response_len;
	long		rl_limit,		/* RateLimit-Limit, -1 when absent */
				rl_remaining;	/* RateLimit-Remaining, -1 when absent */
	long long	rl_reset;		/* RateLimit-Reset (unix seconds), -1 when absent */
	double		retry_after;	/* Retry-After seconds, -1 when absent (or a date) */
	char		correlation_id[HTTP_CORRELATION_ID_SIZE];	/* x-correlation-id, else Request-Id, else "" */
	double		duration_ms;	/* submit to completion, CLOCK_MONOTONIC */
} HttpRequest;

/* A new engine, or NULL with a message in errbuf. */
extern HttpEngine *HttpEngineCreate(char *errbuf, size_t errlen);

/* The private epoll fd: readable when one of curl's sockets is ready. */
extern int	HttpEngineFd(HttpEngine *e);

/* Start r; 0 ok; -1: r is done at once with error_code "network" and stays the caller's. */
extern int	HttpEngineSubmit(HttpEngine *e, HttpRequest *r);

/* Milliseconds until curl's timer is due (0 if due now), -1 when none is set. */
extern long HttpEngineTimeoutMs(HttpEngine *e);

/* Service ready sockets (epoll_wait with timeout 0) and a due timer; queue finished requests. */
extern void HttpEngineDrive(HttpEngine *e);

/* A finished request (the caller then owns it) or NULL. */
extern HttpRequest *HttpEngineNextDone(HttpEngine *e);

/* Requests submitted and not finished yet (finished, uncollected ones not counted). */
extern int	HttpEngineInFlight(HttpEngine *e);

/* Free r and all its strings (the bearer and the body are wiped first); NULL is a no-op. */
extern void HttpRequestFree(HttpRequest *r);

/* Abort every request in flight and free them, the uncollected ones and the engine. */
extern void HttpEngineDestroy(HttpEngine *e);

#endif							/* PGEXT_WORKER_HTTP_H */
