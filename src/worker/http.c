/*
 * http.c — the worker's HTTP engine (PG-free: malloc, libcurl, epoll).
 *
 * libcurl's multi *socket* interface: curl tells us which sockets to watch
 * (SocketCallback keeps them in a private epoll set) and when to call it back
 * (TimerCallback records a deadline).  The caller waits on the epoll fd with
 * HttpEngineTimeoutMs as the timeout (a WaitEventSet in the worker), then
 * calls HttpEngineDrive, which hands each ready socket and a due timer to
 * curl_multi_socket_action and moves finished transfers to the done queue.
 * Nothing here blocks or polls in a loop.
 *
 * One multi handle serves every request, so connections to a host are kept
 * (up to MAX_CONNECTIONS) and reused.  Callbacks only record into their
 * Transfer; they never longjmp.  The engine is single-threaded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "worker/headers.h"
#include "worker/http.h"

#define MAX_CONNECTIONS		64		/* kept in the multi handle's cache */
#define MAX_CONNECT_MS		10000	/* cap of the connect phase */
#define EPOLL_BATCH			64		/* events taken per epoll_wait */
#define DRIVE_ROUNDS		16		/* bound on batches / timer runs per Drive */
#define USER_AGENT			"pgext/1.0"
#define POOL_MAX			256		/* idle easy handles and transfers kept for reuse */

/* One request in flight (or finished and not yet collected). */
typedef struct Transfer
{
	HttpRequest *req;
	CURL	   *easy;			/* NULL once finished */
	struct curl_slist *headers;
	char	   *buf;			/* response body so far, NUL-terminated */
	size_t		len;
	size_t		cap;
	int			too_large;		/* the write callback refused more */
	int			out_of_memory;	/* the write callback could not grow buf */
	int			corr_is_x;		/* correlation_id came from x-correlation-id */
	int64_t		start_ns;
	char		errbuf[CURL_ERROR_SIZE];
	struct Transfer *prev;
	struct Transfer *next;
} Transfer;

struct HttpEngine
{
	CURLM	   *multi;
	int			epfd;
	int			timer_set;		/* curl asked for a call at deadline_ns */
	int64_t		deadline_ns;
	Transfer   *active;			/* doubly linked, in flight */
	int			n_active;
	Transfer   *done_head;		/* FIFO, finished */
	Transfer   *done_tail;
	/* reuse instead of a malloc/free of curl's handle per request */
	CURL	   *easy_pool[POOL_MAX];	/* reset, idle */
	int			n_easy_pool;
	Transfer   *free_transfers;	/* singly linked through next */
	int			n_free_transfers;
	struct curl_slist *plain_headers;	/* of a request with no body, key or token */
};

static int	curl_initialized = 0;

static struct curl_slist *BuildHeaders(const HttpRequest *r);

/* CLOCK_MONOTONIC in nanoseconds. */
static int64_t
NowNs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Overwrite s (when not NULL) with zeros. */
static void
Wipe(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
}

/* Reset the engine-filled fields of r. */
static void
ResetResult(HttpRequest *r)
{
	r->http_status = 0;
	r->error_code = NULL;
	r->error_kind = NULL;
	r->error[0] = '\0';
	r->response = NULL;
	r->response_len = 0;
	r->rl_limit = -1;
	r->rl_remaining = -1;
	r->rl_reset = -1;
	r->retry_after = -1;
	r->correlation_id[0] = '\0';
	r->duration_ms = 0;
}

/*
 * Record error code and message on r.  The message must never carry the URL
 * (it may hold names) or the token: the URL is replaced by "<url>", and if
 * the token still shows, the message falls back to fallback (static text).
 */
static void
SetError(HttpRequest *r, const char *code, const char *msg, const char *fallback)
{
	size_t		ulen = r->url ? strlen(r->url) : 0;
	size_t		o = 0;
	const char *p = msg;

	r->http_status = 0;
	r->error_code = code;
	r->error_kind = code;
	while (*p != '\0' && o < sizeof(r->error) - 1)
	{
		if (ulen > 0 && strncmp(p, r->url, ulen) == 0)
		{
			const char *rep = "<url>";

			while (*rep != '\0' && o < sizeof(r->error) - 1)
				r->error[o++] = *rep++;
			p += ulen;
		}
		else
		{
			unsigned char c = (unsigned char) *p++;

			/* one line of printable text */
			r->error[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char) c;
		}
	}
	/* curl's messages often end in a newline, now a blank */
	while (o > 0 && r->error[o - 1] == ' ')
		o--;
	r->error[o] = '\0';
	if (r->bearer != NULL && r->bearer[0] != '\0' && strstr(r->error, r->bearer) != NULL)
		snprintf(r->error, sizeof(r->error), "%s", fallback);
}

/* The error code for a transfer that ended with res and no response. */
static const char *
ErrorCode(CURLcode res, const Transfer *t)
{
	if (res == CURLE_WRITE_ERROR && t->too_large)
		return "too_large";
	switch (res)
	{
		case CURLE_OPERATION_TIMEDOUT:
			return "timeout";
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
		case CURLE_SSL_SHUTDOWN_FAILED:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_SSL_CLIENTCERT:
		case CURLE_USE_SSL_FAILED:
			return "tls";
		default:
			return "network";
	}
}

/* CURLOPT_WRITEFUNCTION: append to t->buf; 0 (ends the transfer) past max_response. */
static size_t
WriteCallback(char *data, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = (Transfer *) userp;
	size_t		n = size * nmemb;
	size_t		max = t->req->max_response;

	/* t->len <= max always holds */
	if (n > max - t->len)
	{
		t->too_large = 1;
		return 0;
	}
	if (t->req->status_only)
	{
		/* counted, not kept */
		t->len += n;
		return n;
	}
	if (t->len + n + 1 > t->cap)
	{
		/* need <= max + 1; it wraps only when max is SIZE_MAX ("no limit") */
		size_t		need = t->len + n + 1;
		size_t		cap = t->cap > 0 ? t->cap : 4096;
		char	   *nb;

		if (need < n)
		{
			t->out_of_memory = 1;
			return 0;
		}
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		if (max < SIZE_MAX && cap > max + 1)
			cap = max + 1;
		nb = realloc(t->buf, cap);
		if (nb == NULL)
		{
			t->out_of_memory = 1;
			return 0;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return n;
}

/*
 * CURLOPT_HEADERFUNCTION: one header line (not NUL-terminated), parsed by
 * http_header_parse (headers.c).  Records the rate-limit headers,
 * Retry-After and the correlation id; a status line (a new response, e.g.
 * after 100 Continue) clears what was recorded.
 */
static size_t
HeaderCallback(char *data, size_t size, size_t nitems, void *userp)
{
	Transfer   *t = (Transfer *) userp;
	HttpRequest *r = t->req;
	size_t		n = size * nitems;
	HttpHeader	h;

	switch (http_header_parse(data, n, &h))
	{
		case HTTP_HEADER_STATUS:
			r->rl_limit = -1;
			r->rl_remaining = -1;
			r->rl_reset = -1;
			r->retry_after = -1;
			r->correlation_id[0] = '\0';
			t->corr_is_x = 0;
			break;
		case HTTP_HEADER_RL_LIMIT:
			r->rl_limit = (long) h.count;
			break;
		case HTTP_HEADER_RL_REMAINING:
			r->rl_remaining = (long) h.count;
			break;
		case HTTP_HEADER_RL_RESET:
			r->rl_reset = h.count;
			break;
		case HTTP_HEADER_RETRY_AFTER:
			r->retry_after = h.seconds;
			break;
		case HTTP_HEADER_X_CORRELATION_ID:
			memcpy(r->correlation_id, h.id, sizeof(r->correlation_id));
			t->corr_is_x = 1;
			break;
		case HTTP_HEADER_REQUEST_ID:
			if (!t->corr_is_x)
				memcpy(r->correlation_id, h.id, sizeof(r->correlation_id));
			break;
		case HTTP_HEADER_OTHER:
			break;
	}
	return n;
}

/* curl_multi_assign's mark of a socket that is in the epoll set */
static char in_epoll_set;

/*
 * CURLMOPT_SOCKETFUNCTION: keep curl's socket s in the epoll set with the
 * events it wants, or take it out.  A socket once added carries a mark
 * (curl_multi_assign; curl drops it with the socket), so each change is one
 * epoll_ctl.  A failed epoll_ctl is not reported to curl (that would abort
 * every transfer): the transfer then ends by its timeout.
 */
static int
SocketCallback(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	HttpEngine *e = (HttpEngine *) userp;
	struct epoll_event ev;

	(void) easy;
	if (what == CURL_POLL_REMOVE)
	{
		/* may already be gone (closed sockets leave the set by themselves) */
		(void) epoll_ctl(e->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
		((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	ev.data.fd = s;
	if (socketp == &in_epoll_set)
	{
		if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
			(void) epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev);
	}
	else if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev) == 0 ||
			 (errno == EEXIST && epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev) == 0))
		curl_multi_assign(e->multi, s, &in_epoll_set);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: record when curl wants CURL_SOCKET_TIMEOUT (-1: never). */
static int
TimerCallback(CURLM *multi, long timeout_ms, void *userp)
{
	HttpEngine *e = (HttpEngine *) userp;

	(void) multi;
	if (timeout_ms < 0)
		e->timer_set = 0;
	else
	{
		e->timer_set = 1;
		e->deadline_ns = NowNs() + (int64_t) timeout_ms * 1000000;
	}
	return 0;
}

/* Wipe and free a header list (it may hold the Authorization header). */
static void
FreeHeaders(struct curl_slist *headers)
{
	struct curl_slist *s;

	for (s = headers; s != NULL; s = s->next)
		Wipe(s->data);
	curl_slist_free_all(headers);
}

/*
 * Release t's curl handle (reset into the pool while there is room) and
 * buffers; t must no longer be in the multi handle.
 */
static void
ReleaseTransfer(HttpEngine *e, Transfer *t)
{
	if (t->easy != NULL)
	{
		if (e->n_easy_pool < POOL_MAX)
		{
			curl_easy_reset(t->easy);
			e->easy_pool[e->n_easy_pool++] = t->easy;
		}
		else
			curl_easy_cleanup(t->easy);
	}
	t->easy = NULL;
	FreeHeaders(t->headers);
	t->headers = NULL;
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

/* Take t out of the active list. */
static void
Unlink(HttpEngine *e, Transfer *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		e->active = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	e->n_active--;
}

/* Keep t (released) for reuse, or free it when enough are kept. */
static void
FreeTransfer(HttpEngine *e, Transfer *t)
{
	if (e->n_free_transfers < POOL_MAX)
	{
		t->next = e->free_transfers;
		e->free_transfers = t;
		e->n_free_transfers++;
	}
	else
		free(t);
}

/* A zeroed transfer with an easy handle (reused when one is kept), or NULL. */
static Transfer *
NewTransfer(HttpEngine *e)
{
	Transfer   *t = e->free_transfers;

	if (t != NULL)
	{
		e->free_transfers = t->next;
		e->n_free_transfers--;
		memset(t, 0, offsetof(Transfer, errbuf));
		t->errbuf[0] = '\0';
		t->prev = t->next = NULL;
	}
	else if ((t = calloc(1, sizeof(Transfer))) == NULL)
		return NULL;
	t->easy = e->n_easy_pool > 0 ? e->easy_pool[--e->n_easy_pool] : curl_easy_init();
	return t;
}

/* A transfer ended with res: fill its request, free curl's side, queue it as done. */
static void
FinishTransfer(HttpEngine *e, Transfer *t, CURLcode res)
{
	HttpRequest *r = t->req;
	long		status = 0;

	r->duration_ms = (double) (NowNs() - t->start_ns) / 1e6;
	if (res == CURLE_OK)
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK && status > 0)
	{
		r->http_status = status;
		r->error_code = NULL;
		r->error_kind = NULL;
		r->response = t->buf;
		r->response_len = t->len;
		t->buf = NULL;
	}
	else if (res == CURLE_OK)
		SetError(r, "network", "no HTTP response", "no HTTP response");
	else if (res == CURLE_WRITE_ERROR && t->too_large)
	{
		char		msg[96];

		snprintf(msg, sizeof(msg), "response body larger than %zu bytes",
				 r->max_response);
		SetError(r, "too_large", msg, msg);
	}
	else if (res == CURLE_WRITE_ERROR && t->out_of_memory)
		SetError(r, "network", "out of memory for the response body", "out of memory");
	else
	{
		SetError(r, ErrorCode(res, t),
				 t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(res),
				 curl_easy_strerror(res));
		if (res == CURLE_COULDNT_CONNECT)
			r->error_kind = "refused";
		else if (res == CURLE_COULDNT_RESOLVE_HOST)
			r->error_kind = "dns";
	}

	curl_multi_remove_handle(e->multi, t->easy);
	ReleaseTransfer(e, t);
	Unlink(e, t);
	if (e->done_tail != NULL)
		e->done_tail->next = t;
	else
		e->done_head = t;
	e->done_tail = t;
}

/* Move every transfer curl reports finished to the done queue. */
static void
CollectDone(HttpEngine *e)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(e->multi, &left)) != NULL)
	{
		Transfer   *t = NULL;
		CURLcode	res;

		if (msg->msg != CURLMSG_DONE)
			continue;
		res = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		if (t != NULL)
			FinishTransfer(e, t, res);
	}
}

/* A new engine, or NULL with a message in errbuf. */
HttpEngine *
HttpEngineCreate(char *errbuf, size_t errlen)
{
	HttpEngine *e;
	const curl_version_info_data *vi;

	if (!curl_initialized)
	{
		CURLcode	rc = curl_global_init(CURL_GLOBAL_DEFAULT);

		if (rc != CURLE_OK)
		{
			snprintf(errbuf, errlen, "curl_global_init failed: %s", curl_easy_strerror(rc));
			return NULL;
		}
		curl_initialized = 1;
	}
	vi = curl_version_info(CURLVERSION_NOW);
	if (vi->version_num < 0x075500)
	{
		snprintf(errbuf, errlen, "libcurl %s is too old (7.85 or later is needed)", vi->version);
		return NULL;
	}
	e = calloc(1, sizeof(HttpEngine));
	if (e == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0)
	{
		snprintf(errbuf, errlen, "epoll_create1 failed: %s", strerror(errno));
		free(e);
		return NULL;
	}
	e->multi = curl_multi_init();
	if (e->multi == NULL)
	{
		snprintf(errbuf, errlen, "curl_multi_init failed");
		close(e->epfd);
		free(e);
		return NULL;
	}
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, SocketCallback);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, TimerCallback);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long) MAX_CONNECTIONS);
	/* NULL (out of memory) is reported by the first plain request */
	e->plain_headers = BuildHeaders(&(HttpRequest) {0});
	return e;
}

/* The private epoll fd: readable when one of curl's sockets is ready. */
int
HttpEngineFd(HttpEngine *e)
{
	return e->epfd;
}

/* Whether method is one the engine sends. */
static int
MethodAllowed(const char *m)
{
	return m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 ||
						 strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
						 strcmp(m, "DELETE") == 0);
}

/* Whether the bearer token fits in a header line (no control characters). */
static int
BearerAllowed(const char *b)
{
	for (; *b != '\0'; b++)
		if ((unsigned char) *b < 0x20 || (unsigned char) *b == 0x7f)
			return 0;
	return 1;
}

/* Append line to *headers; 0 on failure (then *headers is unchanged). */
static int
AddHeader(struct curl_slist **headers, const char *line)
{
	struct curl_slist *n = curl_slist_append(*headers, line);

	if (n == NULL)
		return 0;
	*headers = n;
	return 1;
}

/* The request headers of r, or NULL (out of memory). */
static struct curl_slist *
BuildHeaders(const HttpRequest *r)
{
	struct curl_slist *h = NULL;

	if (!AddHeader(&h, "Accept: application/json") ||
		(r->body != NULL && !AddHeader(&h, "Content-Type: application/json")) ||
		!AddHeader(&h, "Expect:"))
	{
		FreeHeaders(h);
		return NULL;
	}
	if (r->idempotency_key != NULL)
	{
		size_t		len = strlen(r->idempotency_key) + sizeof("Idempotency-Key: ");
		char	   *line = malloc(len);
		int			ok;

		if (line == NULL)
		{
			FreeHeaders(h);
			return NULL;
		}
		snprintf(line, len, "Idempotency-Key: %s", r->idempotency_key);
		ok = AddHeader(&h, line);
		free(line);
		if (!ok)
		{
			FreeHeaders(h);
			return NULL;
		}
	}
	if (r->bearer != NULL)
	{
		static const char prefix[] = "Authorization: Bearer ";
		size_t		blen = strlen(r->bearer);
		char	   *line = malloc(sizeof(prefix) + blen);
		int			ok;

		if (line == NULL)
		{
			FreeHeaders(h);
			return NULL;
		}
		memcpy(line, prefix, sizeof(prefix) - 1);
		memcpy(line + sizeof(prefix) - 1, r->bearer, blen + 1);
		ok = AddHeader(&h, line);
		explicit_bzero(line, sizeof(prefix) + blen);
		free(line);
		if (!ok)
		{
			FreeHeaders(h);
			return NULL;
		}
	}
	return h;
}

/*
 * Set up t->easy for t->req with the request headers (t->headers, or the
 * engine's shared list of a plain request); CURLE_OK or the first failing
 * option's code.
 */
static CURLcode
ConfigureEasy(Transfer *t, struct curl_slist *headers)
{
	HttpRequest *r = t->req;
	CURL	   *c = t->easy;
	CURLcode	rc = CURLE_OK;
	int			is_post = strcmp(r->method, "POST") == 0;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_PRIVATE, (void *) t);
	SET(CURLOPT_ERRORBUFFER, t->errbuf);
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms < MAX_CONNECT_MS ? r->timeout_ms : (long) MAX_CONNECT_MS);
	if (!r->fresh_connection)
	{
		/* kept connections only: three setsockopt calls a connection */
		SET(CURLOPT_TCP_KEEPALIVE, 1L);
		SET(CURLOPT_TCP_KEEPIDLE, 60L);
		SET(CURLOPT_TCP_KEEPINTVL, 30L);
	}
	SET(CURLOPT_USERAGENT, USER_AGENT);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, WriteCallback);
	SET(CURLOPT_WRITEDATA, (void *) t);
	if (!r->status_only)
	{
		SET(CURLOPT_HEADERFUNCTION, HeaderCallback);
		SET(CURLOPT_HEADERDATA, (void *) t);
	}
	if (r->body != NULL || is_post)
	{
		/* the body stays owned by r, which outlives the easy handle */
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (r->body ? strlen(r->body) : 0));
		SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
	}
	else
		SET(CURLOPT_HTTPGET, 1L);
	/*
	 * curl resends a request that got no answer on a reused connection (a
	 * stale keep-alive): harmless for GET/PUT/DELETE, but a POST the server
	 * did carry out would run twice.  Non-idempotent methods get a fresh
	 * connection, so that a dead one ends them with "network" instead.
	 */
	if (is_post || strcmp(r->method, "PATCH") == 0 || r->fresh_connection)
		SET(CURLOPT_FRESH_CONNECT, 1L);
	/* and a fresh connection asked for is not kept either */
	if (r->fresh_connection)
		SET(CURLOPT_FORBID_REUSE, 1L);
	if (!is_post && strcmp(r->method, "GET") != 0)
		SET(CURLOPT_CUSTOMREQUEST, r->method);
	else if (!is_post && r->body != NULL)
		SET(CURLOPT_CUSTOMREQUEST, "GET");
#undef SET
	return rc;
}

/* Start r; 0 ok; -1: r is done at once with error_code "network" and stays the caller's. */
int
HttpEngineSubmit(HttpEngine *e, HttpRequest *r)
{
	Transfer   *t;
	const char *fail = NULL;
	CURLcode	rc;
	CURLMcode	mc;
	int64_t		start = NowNs();
	bool		plain;

	ResetResult(r);
	if (!MethodAllowed(r->method))
		fail = "invalid request: unsupported method";
	else if (r->url == NULL || r->url[0] == '\0')
		fail = "invalid request: no URL";
	else if (r->timeout_ms <= 0)
		fail = "invalid request: timeout_ms must be positive";
	else if (r->bearer != NULL && !BearerAllowed(r->bearer))
		fail = "invalid request: the bearer token has control characters";
	else if (r->idempotency_key != NULL && !BearerAllowed(r->idempotency_key))
		fail = "invalid request: the idempotency key has control characters";
	if (fail != NULL)
	{
		SetError(r, "network", fail, fail);
		return -1;
	}

	t = NewTransfer(e);
	if (t == NULL)
	{
		SetError(r, "network", "out of memory", "out of memory");
		return -1;
	}
	t->req = r;
	t->start_ns = start;
	plain = r->body == NULL && r->idempotency_key == NULL && r->bearer == NULL;
	if (t->easy == NULL)
		fail = "curl_easy_init failed";
	else if (!plain && (t->headers = BuildHeaders(r)) == NULL)
		fail = "out of memory";
	else if (plain && e->plain_headers == NULL)
		fail = "out of memory";
	else if ((rc = ConfigureEasy(t, plain ? e->plain_headers : t->headers)) != CURLE_OK)
		fail = curl_easy_strerror(rc);
	else if ((mc = curl_multi_add_handle(e->multi, t->easy)) != CURLM_OK)
		fail = curl_multi_strerror(mc);
	if (fail != NULL)
	{
		ReleaseTransfer(e, t);
		FreeTransfer(e, t);
		SetError(r, "network", fail, fail);
		r->duration_ms = (double) (NowNs() - start) / 1e6;
		return -1;
	}
	t->next = e->active;
	if (e->active != NULL)
		e->active->prev = t;
	e->active = t;
	e->n_active++;
	return 0;
}

/* Milliseconds until curl's timer is due (0 if due now), -1 when none is set. */
long
HttpEngineTimeoutMs(HttpEngine *e)
{
	int64_t		left;

	if (!e->timer_set)
		return -1;
	left = e->deadline_ns - NowNs();
	if (left <= 0)
		return 0;
	return (long) ((left + 999999) / 1000000);
}

/* Service ready sockets (epoll_wait with timeout 0) and a due timer; queue finished requests. */
void
HttpEngineDrive(HttpEngine *e)
{
	struct epoll_event evs[EPOLL_BATCH];
	int			round;
	int			running;

	for (round = 0; round < DRIVE_ROUNDS; round++)
	{
		int			n = epoll_wait(e->epfd, evs, EPOLL_BATCH, 0);
		int			i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
		{
			uint32_t	ev = evs[i].events;
			int			bits = 0;

			if (ev & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
				bits |= CURL_CSELECT_IN;
			if (ev & EPOLLOUT)
				bits |= CURL_CSELECT_OUT;
			if (ev & EPOLLERR)
				bits |= CURL_CSELECT_ERR;
			curl_multi_socket_action(e->multi, evs[i].data.fd, bits, &running);
		}
		if (n < EPOLL_BATCH)
			break;
	}
	for (round = 0; round < DRIVE_ROUNDS && e->timer_set && NowNs() >= e->deadline_ns; round++)
	{
		/* one-shot: curl sets the next deadline from inside the call */
		e->timer_set = 0;
		curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	CollectDone(e);
}

/* A finished request (the caller then owns it) or NULL. */
HttpRequest *
HttpEngineNextDone(HttpEngine *e)
{
	Transfer   *t = e->done_head;
	HttpRequest *r;

	if (t == NULL)
		return NULL;
	e->done_head = t->next;
	if (e->done_head == NULL)
		e->done_tail = NULL;
	r = t->req;
	FreeTransfer(e, t);
	return r;
}

/* Requests submitted and not finished yet (finished, uncollected ones not counted). */
int
HttpEngineInFlight(HttpEngine *e)
{
	return e->n_active;
}

/* Free r and all its strings (the bearer and the body are wiped first); NULL is a no-op. */
void
HttpRequestFree(HttpRequest *r)
{
	if (r == NULL)
		return;
	Wipe(r->bearer);
	Wipe(r->body);
	free(r->method);
	free(r->url);
	free(r->body);
	free(r->bearer);
	free(r->idempotency_key);
	free(r->response);
	free(r);
}

/* Abort every request in flight and free them, the uncollected ones and the engine. */
void
HttpEngineDestroy(HttpEngine *e)
{
	HttpRequest *r;

	if (e == NULL)
		return;
	while (e->active != NULL)
	{
		Transfer   *t = e->active;

		curl_multi_remove_handle(e->multi, t->easy);
		ReleaseTransfer(e, t);
		Unlink(e, t);
		HttpRequestFree(t->req);
		free(t);
	}
	while ((r = HttpEngineNextDone(e)) != NULL)
		HttpRequestFree(r);
	while (e->free_transfers != NULL)
	{
		Transfer   *t = e->free_transfers;

		e->free_transfers = t->next;
		free(t);
	}
	for (int i = 0; i < e->n_easy_pool; i++)
		curl_easy_cleanup(e->easy_pool[i]);
	e->n_easy_pool = 0;
	curl_slist_free_all(e->plain_headers);
	/* curl closes its cached connections (and says so to SocketCallback) */
	curl_multi_cleanup(e->multi);
	close(e->epfd);
	free(e);
}
