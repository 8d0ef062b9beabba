/*
 * engine_test.c — drives the HTTP engine (src/worker/http.c) against the fake
 * Hetzner API (test/fake/hetzner.py), the way the worker does: wait on
 * HttpEngineFd with HttpEngineTimeoutMs as the timeout, then HttpEngineDrive.
 *
 * Usage: engine_test BASE_URL TOKEN COUNT [TLS_URL]
 *   BASE_URL  the fake, e.g. http://127.0.0.1:PORT (its control API is below /__fake)
 *   TOKEN     the fake's token (never printed)
 *   COUNT     concurrent requests for the load and destroy checks (1000)
 *   TLS_URL   an https URL whose certificate is self-signed (must fail: "tls")
 * Prints one line per check; exits 1 if any failed, else prints
 * "pgext: http engine test passed".
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "worker/http.h"

static const char *base_url;
static const char *token;
static int	failures = 0;
static int	checks = 0;

/* Record one check; print it (never with the token). */
static void
Check(int ok, const char *fmt,...)
{
	va_list		ap;

	checks++;
	if (!ok)
		failures++;
	printf("%s - ", ok ? "ok" : "FAILED");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* CLOCK_MONOTONIC in milliseconds. */
static double
NowMs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* strdup that never returns NULL (the test aborts on out of memory). */
static char *
Dup(const char *s)
{
	char	   *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

/* A new request: path is below BASE_URL when it starts with '/', else a full URL. */
static HttpRequest *
NewRequest(const char *method, const char *path, const char *body,
		   const char *bearer, long timeout_ms, size_t max_response)
{
	HttpRequest *r = calloc(1, sizeof(HttpRequest));
	char	   *url;

	if (r == NULL)
		abort();
	if (path[0] == '/')
	{
		url = malloc(strlen(base_url) + strlen(path) + 1);
		if (url == NULL)
			abort();
		strcpy(url, base_url);
		strcat(url, path);
	}
	else
		url = Dup(path);
	r->method = Dup(method);
	r->url = url;
	r->body = body ? Dup(body) : NULL;
	r->bearer = bearer ? Dup(bearer) : NULL;
	r->timeout_ms = timeout_ms;
	r->max_response = max_response;
	return r;
}

/*
 * Wait and drive until `want` requests are done or limit_ms passed, as the
 * worker's loop does; collected requests go to out[] (room for cap).
 * *wakeups counts the waits.  Returns how many were collected.
 */
static int
RunUntil(HttpEngine *e, HttpRequest **out, int cap, int want, double limit_ms, int *wakeups)
{
	int			got = 0;
	double		end = NowMs() + limit_ms;
	struct pollfd pfd;

	pfd.fd = HttpEngineFd(e);
	pfd.events = POLLIN;
	while (got < want)
	{
		long		t = HttpEngineTimeoutMs(e);
		double		left = end - NowMs();
		HttpRequest *r;

		if (left <= 0)
			break;
		if (t < 0 || t > (long) left)
			t = (long) left + 1;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int) t) < 0 && errno != EINTR)
		{
			perror("poll");
			exit(2);
		}
		if (wakeups)
			(*wakeups)++;
		HttpEngineDrive(e);
		while (got < cap && (r = HttpEngineNextDone(e)) != NULL)
			out[got++] = r;
	}
	return got;
}

/* Submit one request and wait for it (up to limit_ms); NULL if it never finished. */
static HttpRequest *
RunOne(HttpEngine *e, HttpRequest *r, double limit_ms, int *wakeups)
{
	HttpRequest *done = NULL;

	if (HttpEngineSubmit(e, r) != 0)
		return r;
	if (RunUntil(e, &done, 1, 1, limit_ms, wakeups) != 1)
		return NULL;
	return done;
}

/* Growable buffer for the control client. */
typedef struct
{
	char	   *data;
	size_t		len;
} Buf;

/* curl write callback of the control client. */
static size_t
BufWrite(char *p, size_t size, size_t n, void *userp)
{
	Buf		   *b = userp;
	char	   *nd = realloc(b->data, b->len + size * n + 1);

	if (nd == NULL)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, p, size * n);
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

/* A blocking call to the fake's control API; returns the status, *out the body (or NULL). */
static long
Control(const char *method, const char *path, const char *json, char **out)
{
	CURL	   *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char		url[512];
	Buf			b = {NULL, 0};
	long		status = 0;

	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, BufWrite);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (out)
		*out = b.data;
	else
		free(b.data);
	if (status != 200)
	{
		fprintf(stderr, "control %s %s failed: %ld\n", method, path, status);
		exit(2);
	}
	return status;
}

/* The fake's request counter (from /__fake/state). */
static long
FakeRequests(void)
{
	char	   *state;
	char	   *p;
	long		n = -1;

	Control("GET", "/__fake/state?servers=0&actions=0&calls=0", NULL, &state);
	p = state ? strstr(state, "\"requests\": ") : NULL;
	if (p)
		n = atol(p + strlen("\"requests\": "));
	free(state);
	return n;
}

/* Open file descriptors of this process. */
static int
OpenFds(void)
{
	DIR		   *d = opendir("/proc/self/fd");
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;				/* the directory's own fd */
}

/* Whether r's error text is clean: no token, no URL. */
static int
ErrorClean(const HttpRequest *r)
{
	return strstr(r->error, token) == NULL && (r->url == NULL || strstr(r->error, r->url) == NULL);
}

/* Whether s is n lowercase hex digits. */
static int
IsHex(const char *s, size_t n)
{
	size_t		i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Whether an error ended r with code (no response, a clean message). */
static int
FailedWith(const HttpRequest *r, const char *code)
{
	return r != NULL && r->error_code != NULL && strcmp(r->error_code, code) == 0 &&
		r->http_status == 0 && r->response == NULL && r->error[0] != '\0' && ErrorClean(r);
}

/* A port on 127.0.0.1 that nothing listens on. */
static int
ClosedPort(void)
{
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	socklen_t	len = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof(a)) != 0 ||
		getsockname(s, (struct sockaddr *) &a, &len) != 0)
	{
		perror("socket");
		exit(2);
	}
	close(s);
	return ntohs(a.sin_port);
}

/* A listening socket on 127.0.0.1 (a free port), its port in *port. */
static int
Listen(int *port)
{
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	socklen_t	len = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof(a)) != 0 || listen(s, 4) != 0 ||
		getsockname(s, (struct sockaddr *) &a, &len) != 0)
	{
		perror("listen");
		exit(2);
	}
	*port = ntohs(a.sin_port);
	return s;
}

/*
 * A canned answer the fake does not give: 503, Request-Id (no
 * x-correlation-id), Retry-After as a date, a garbled RateLimit-Limit, a body
 * ended by closing the connection.  Serves one connection.
 */
static void *
CannedServer(void *arg)
{
	int			ls = *(int *) arg;
	int			c = accept(ls, NULL, NULL);
	char		req[4096];
	size_t		got = 0;
	static const char answer[] =
		"HTTP/1.1 503 Service Unavailable\r\n"
		"Request-Id: req-42\r\n"
		"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
		"RATELIMIT-LIMIT: 12abc\r\n"
		"ratelimit-remaining:7\r\n"
		"Connection: close\r\n"
		"\r\n"
		"{\"unavailable\": true}";

	if (c < 0)
		return NULL;
	while (got < sizeof(req) - 1)
	{
		ssize_t		n = read(c, req + got, sizeof(req) - 1 - got);

		if (n <= 0)
			break;
		got += n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (write(c, answer, sizeof(answer) - 1) < 0)
		perror("write");
	close(c);
	return NULL;
}

/* Header parsing on an answer the fake does not give. */
static void
TestCanned(HttpEngine *e)
{
	int			port;
	int			ls = Listen(&port);
	pthread_t	th;
	char		url[128];
	HttpRequest *r;

	pthread_create(&th, NULL, CannedServer, &ls);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	r = RunOne(e, NewRequest("GET", url, NULL, token, 10000, 1 << 20), 10000, NULL);
	pthread_join(th, NULL);
	close(ls);
	Check(r && r->http_status == 503 && r->error_code == NULL && r->response &&
		  strcmp(r->response, "{\"unavailable\": true}") == 0,
		  "503 with a body ended by close: a response");
	Check(r && strcmp(r->correlation_id, "req-42") == 0, "Request-Id when no x-correlation-id (%s)",
		  r ? r->correlation_id : "");
	Check(r && r->retry_after == -1, "Retry-After as an HTTP date: -1");
	Check(r && r->rl_limit == -1 && r->rl_remaining == 7 && r->rl_reset == -1,
		  "a garbled RateLimit-Limit: -1; remaining without a blank: 7; no reset: -1");
	HttpRequestFree(r);
}

/* Basic calls: GET with the bearer, headers seen by the fake, POST, DELETE, 401. */
static void
TestBasics(HttpEngine *e)
{
	HttpRequest *r;
	char	   *state = NULL;
	time_t		now = time(NULL);

	Check(HttpEngineTimeoutMs(e) == -1 && HttpEngineInFlight(e) == 0,
		  "an idle engine has no timer and nothing in flight");

	r = NewRequest("GET", "/v1/servers?per_page=5", NULL, token, 10000, 1 << 20);
	Check(HttpEngineSubmit(e, r) == 0 && HttpEngineInFlight(e) == 1 && HttpEngineTimeoutMs(e) >= 0,
		  "submit: one in flight, curl's timer set");
	{
		HttpRequest *done = NULL;

		RunUntil(e, &done, 1, 1, 10000, NULL);
		r = done;
	}
	Check(r != NULL && r->http_status == 200 && r->error_code == NULL,
		  "GET with the bearer: 200 (got %ld)", r ? r->http_status : -1);
	if (r == NULL)
		return;
	Check(HttpEngineInFlight(e) == 0 && HttpEngineNextDone(e) == NULL, "done: nothing left in flight");
	Check(r->response != NULL && strstr(r->response, "\"servers\"") != NULL &&
		  r->response_len == strlen(r->response), "response body kept (%zu bytes)", r->response_len);
	Check(r->rl_limit == 3600 && r->rl_remaining >= 0 && r->rl_remaining < 3600,
		  "ratelimit-limit %ld, ratelimit-remaining %ld", r->rl_limit, r->rl_remaining);
	Check(r->rl_reset >= (long long) now - 5 && r->rl_reset < (long long) now + 7200,
		  "ratelimit-reset is a unix time (%+lld s from now)", r->rl_reset - (long long) now);
	Check(IsHex(r->correlation_id, 32), "x-correlation-id captured (%s)", r->correlation_id);
	Check(r->retry_after == -1, "no retry-after: -1");
	Check(r->duration_ms > 0 && r->duration_ms < 10000, "duration %.2f ms", r->duration_ms);
	HttpRequestFree(r);

	Control("GET", "/__fake/state?servers=0&actions=0", NULL, &state);
	Check(state && strstr(state, "\"user-agent\": \"pgext/1.0\"") != NULL, "User-Agent: pgext/1.0");
	Check(state && strstr(state, "\"accept\": \"application/json\"") != NULL, "Accept: application/json");
	Check(state && strstr(state, "\"content-type\"") == NULL, "no Content-Type without a body");
	Check(state && strstr(state, token) == NULL, "the fake never saw the token outside Authorization");
	free(state);

	r = RunOne(e, NewRequest("POST", "/v1/servers",
							 "{\"name\": \"engine-test\", \"server_type\": \"cx22\", "
							 "\"image\": \"debian-12\", \"location\": \"fsn1\"}",
							 token, 10000, 1 << 20), 10000, NULL);
	Check(r && r->http_status == 201 && r->error_code == NULL && strstr(r->response, "\"engine-test\""),
		  "POST with a JSON body: 201 (got %ld)", r ? r->http_status : -1);
	HttpRequestFree(r);
	Control("GET", "/__fake/state?servers=0&actions=0", NULL, &state);
	Check(state && strstr(state, "\"content-type\": \"application/json\"") != NULL &&
		  strstr(state, "\"method\": \"POST\"") != NULL, "POST sent with Content-Type: application/json");
	free(state);

	r = RunOne(e, NewRequest("DELETE", "/v1/servers/987654", NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(r && r->http_status == 404 && r->error_code == NULL && strstr(r->response, "not_found"),
		  "DELETE: 404 not_found is a response, not an error (got %ld)", r ? r->http_status : -1);
	HttpRequestFree(r);

	r = RunOne(e, NewRequest("GET", "/v1/servers", NULL, "wrong-token", 10000, 1 << 20), 10000, NULL);
	Check(r && r->http_status == 401 && r->error_code == NULL, "a wrong token: 401 (got %ld)",
		  r ? r->http_status : -1);
	HttpRequestFree(r);

	r = RunOne(e, NewRequest("GET", "/v1/servers", NULL, NULL, 10000, 1 << 20), 10000, NULL);
	Check(r && r->http_status == 401, "no bearer: no Authorization header, 401");
	HttpRequestFree(r);
}

/* COUNT concurrent GETs all complete with 200. */
static void
TestConcurrent(HttpEngine *e, int count)
{
	HttpRequest **out = calloc(count, sizeof(HttpRequest *));
	int			i;
	int			submitted = 0;
	int			got;
	int			ok = 0;
	int			with_corr = 0;
	int			wakeups = 0;
	double		t0 = NowMs();

	Control("POST", "/__fake/config", "{\"rate_limit\": 1000000}", NULL);
	for (i = 0; i < count; i++)
		submitted += HttpEngineSubmit(e, NewRequest("GET", "/v1/servers?per_page=1", NULL, token,
													60000, 1 << 20)) == 0;
	Check(submitted == count && HttpEngineInFlight(e) == count, "%d GETs submitted, all in flight", count);
	got = RunUntil(e, out, count, count, 90000, &wakeups);
	for (i = 0; i < got; i++)
	{
		ok += out[i]->http_status == 200 && out[i]->error_code == NULL;
		with_corr += IsHex(out[i]->correlation_id, 32);
		if (out[i]->error_code && i < 5)
			printf("#   %s: %s\n", out[i]->error_code, out[i]->error);
		HttpRequestFree(out[i]);
	}
	Check(got == count && ok == count && with_corr == count,
		  "%d concurrent GETs: %d done, %d with 200 and a correlation id (%.0f ms, %d wakeups)",
		  count, got, ok, NowMs() - t0, wakeups);
	Check(HttpEngineInFlight(e) == 0, "nothing left in flight");
	free(out);
	Control("POST", "/__fake/config", "{\"rate_limit\": 3600}", NULL);
}

/* Timeout, reset, too large, 429, malformed, refused, TLS, protocols, bad requests. */
static void
TestFailures(HttpEngine *e, const char *tls_url)
{
	HttpRequest *r;
	int			wakeups = 0;
	char		url[128];
	size_t		len;
	long		n0;

	Control("POST", "/__fake/faults", "{\"kind\": \"slow\", \"seconds\": 3, \"count\": 1}", NULL);
	r = RunOne(e, NewRequest("GET", "/v1/servers", NULL, token, 500, 1 << 20), 10000, &wakeups);
	Check(FailedWith(r, "timeout") && strcmp(r->error_kind, "timeout") == 0 &&
		  r->duration_ms >= 450 && r->duration_ms < 2500,
		  "a slow answer past timeout_ms: timeout after %.0f ms (%s)", r ? r->duration_ms : -1.0,
		  r ? r->error : "never finished");
	Check(wakeups < 30, "no busy polling while waiting: %d wakeups in 500 ms", wakeups);
	HttpRequestFree(r);

	/* curl resends a GET that died on a reused connection (up to 5 times) */
	Control("POST", "/__fake/faults", "{\"kind\": \"reset\", \"count\": 10}", NULL);
	r = RunOne(e, NewRequest("GET", "/v1/servers", NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(FailedWith(r, "network"), "a connection reset: network (%s)", r ? r->error : "never finished");
	HttpRequestFree(r);
	Control("DELETE", "/__fake/faults", NULL, NULL);

	/* a POST is never resent (it may have been carried out) */
	Control("POST", "/__fake/faults", "{\"kind\": \"reset\", \"count\": 1}", NULL);
	n0 = FakeRequests();
	r = RunOne(e, NewRequest("POST", "/v1/servers/1/actions/poweron", "{}", token, 10000, 1 << 20),
			   10000, NULL);
	Check(FailedWith(r, "network") && FakeRequests() - n0 == 1,
		  "a POST whose connection is reset: network, sent once (%s)", r ? r->error : "never finished");
	HttpRequestFree(r);
	Control("DELETE", "/__fake/faults", NULL, NULL);

	/* a stable body: the same empty list each time */
	r = RunOne(e, NewRequest("GET", "/v1/servers?name=none", NULL, token, 10000, 1 << 20), 10000, NULL);
	len = r && r->response ? r->response_len : 0;
	Check(r && r->http_status == 200 && len > 20, "a %zu-byte body", len);
	HttpRequestFree(r);
	r = RunOne(e, NewRequest("GET", "/v1/servers?name=none", NULL, token, 10000, len), 10000, NULL);
	Check(r && r->http_status == 200 && r->response_len == len, "max_response = body size: 200");
	HttpRequestFree(r);
	r = RunOne(e, NewRequest("GET", "/v1/servers?name=none", NULL, token, 10000, len - 1), 10000, NULL);
	Check(FailedWith(r, "too_large"), "max_response = body size - 1: too_large (%s)",
		  r ? r->error : "never finished");
	HttpRequestFree(r);

	/* a body that arrives in many pieces: refused part-way (the part is freed) */
	Control("POST", "/__fake/seed", "{\"count\": 50}", NULL);
	r = RunOne(e, NewRequest("GET", "/v1/servers?per_page=50", NULL, token, 10000, 1 << 20), 10000, NULL);
	len = r && r->response ? r->response_len : 0;
	Check(r && r->http_status == 200 && len > 30000, "a %zu-byte body", len);
	HttpRequestFree(r);
	r = RunOne(e, NewRequest("GET", "/v1/servers?per_page=50", NULL, token, 10000, SIZE_MAX), 10000, NULL);
	Check(r && r->http_status == 200 && r->response_len == len, "max_response SIZE_MAX: no limit");
	HttpRequestFree(r);
	r = RunOne(e, NewRequest("GET", "/v1/servers?per_page=50", NULL, token, 10000, 20000), 10000, NULL);
	Check(FailedWith(r, "too_large"), "a %zu-byte body, max_response 20000: too_large", len);
	HttpRequestFree(r);

	Control("POST", "/__fake/faults", "{\"kind\": \"rate_limit\", \"retry_after\": 3, \"count\": 1}", NULL);
	r = RunOne(e, NewRequest("GET", "/v1/servers", NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(r && r->http_status == 429 && r->error_code == NULL && r->retry_after == 3 &&
		  r->rl_remaining == 0 && strstr(r->response, "rate_limit_exceeded"),
		  "429: retry_after %.1f, remaining %ld", r ? r->retry_after : -2.0, r ? r->rl_remaining : -2);
	HttpRequestFree(r);

	Control("POST", "/__fake/faults", "{\"kind\": \"malformed\", \"count\": 1}", NULL);
	r = RunOne(e, NewRequest("GET", "/v1/servers", NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(r && r->http_status == 200 && r->error_code == NULL && r->response &&
		  strncmp(r->response, "{\"server\": {\"id\": 12", 20) == 0,
		  "a malformed body is handed back as it came (SQL judges it)");
	HttpRequestFree(r);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/servers", ClosedPort());
	r = RunOne(e, NewRequest("GET", url, NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(FailedWith(r, "network") && strcmp(r->error_kind, "refused") == 0,
		  "connection refused: network, kind refused (%s)", r ? r->error : "never finished");
	HttpRequestFree(r);

	/* a health check's request: new connection, status only */
	r = NewRequest("GET", "/v1/servers", NULL, token, 10000, 1 << 20);
	r->fresh_connection = true;
	r->status_only = true;
	r = RunOne(e, r, 10000, NULL);
	Check(r && r->http_status == 200 && r->error_code == NULL && r->error_kind == NULL &&
		  r->response == NULL && r->response_len > 0 && r->rl_limit == -1,
		  "status only: the status and the body's length, no body kept, no headers parsed");
	HttpRequestFree(r);
	r = NewRequest("GET", "/v1/servers", NULL, token, 10000, 16);
	r->status_only = true;
	r = RunOne(e, r, 10000, NULL);
	Check(FailedWith(r, "too_large") && strcmp(r->error_kind, "too_large") == 0,
		  "status only: a body past max_response is too_large (%s)", r ? r->error : "never finished");
	HttpRequestFree(r);

	snprintf(url, sizeof(url), "https://%s/v1/servers", base_url + strlen("http://"));
	r = RunOne(e, NewRequest("GET", url, NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(FailedWith(r, "tls"), "https to a plain HTTP server: tls (%s)", r ? r->error : "never finished");
	HttpRequestFree(r);

	if (tls_url)
	{
		r = RunOne(e, NewRequest("GET", tls_url, NULL, token, 10000, 1 << 20), 10000, NULL);
		Check(FailedWith(r, "tls"), "a self-signed certificate is refused: tls (%s)",
			  r ? r->error : "never finished");
		HttpRequestFree(r);
	}

	r = RunOne(e, NewRequest("GET", "file:///etc/hostname", NULL, token, 10000, 1 << 20), 10000, NULL);
	Check(FailedWith(r, "network"), "file:// is refused: network (%s)", r ? r->error : "never finished");
	HttpRequestFree(r);

	r = NewRequest("HEAD", "/v1/servers", NULL, token, 10000, 1 << 20);
	Check(HttpEngineSubmit(e, r) == -1 && FailedWith(r, "network") && HttpEngineInFlight(e) == 0 &&
		  HttpEngineNextDone(e) == NULL, "an unsupported method: submit -1, network (%s)", r->error);
	HttpRequestFree(r);
	r = NewRequest("GET", "/v1/servers", NULL, token, 0, 1 << 20);
	Check(HttpEngineSubmit(e, r) == -1 && FailedWith(r, "network"), "timeout_ms 0: submit -1 (%s)", r->error);
	HttpRequestFree(r);
	r = NewRequest("GET", "/v1/servers", NULL, "abc\r\nX-Evil: 1", 10000, 1 << 20);
	Check(HttpEngineSubmit(e, r) == -1 && FailedWith(r, "network") && strstr(r->error, "abc") == NULL,
		  "a bearer with CR LF: submit -1, not echoed (%s)", r->error);
	HttpRequestFree(r);
	r = NewRequest("GET", "/v1/ser vers", NULL, token, 10000, 1 << 20);
	if (HttpEngineSubmit(e, r) == 0)
	{
		HttpRequest *done = NULL;

		RunUntil(e, &done, 1, 1, 10000, NULL);
		r = done;
	}
	Check(r == NULL || FailedWith(r, "network") || r->http_status == 400,
		  "a URL with a blank: refused or 400 (%s)", r ? (r->error_code ? r->error : "response") : "never finished");
	HttpRequestFree(r);
}

/* Destroying an engine with `count` requests in flight (and one done, uncollected) is quick and leaves no fd. */
static void
TestDestroy(int count)
{
	char		err[256];
	int			fds_before = OpenFds();
	HttpEngine *e = HttpEngineCreate(err, sizeof(err));
	int			i;
	int			submitted = 0;
	long		base;
	long		seen = 0;
	double		t0;
	double		ms;
	double		wait_end;

	if (e == NULL)
	{
		Check(0, "HttpEngineCreate: %s", err);
		return;
	}
	/* one finished request nobody collects */
	HttpEngineSubmit(e, NewRequest("GET", "/v1/servers?per_page=1", NULL, token, 10000, 1 << 20));
	wait_end = NowMs() + 10000;
	while (HttpEngineInFlight(e) > 0 && NowMs() < wait_end)
	{
		struct pollfd pfd = {HttpEngineFd(e), POLLIN, 0};
		long		t = HttpEngineTimeoutMs(e);

		poll(&pfd, 1, t < 0 || t > 100 ? 100 : (int) t);
		HttpEngineDrive(e);
	}
	Check(HttpEngineInFlight(e) == 0, "one request done, left in the done queue");

	Control("POST", "/__fake/config", "{\"rate_limit\": 1000000}", NULL);
	Control("POST", "/__fake/faults", "{\"kind\": \"slow\", \"seconds\": 20}", NULL);
	base = FakeRequests();
	for (i = 0; i < count; i++)
		submitted += HttpEngineSubmit(e, NewRequest(i % 2 ? "GET" : "POST", i % 2 ? "/v1/servers" : "/v1/servers/1/actions/poweron",
													i % 2 ? NULL : "{}", token, 60000, 1 << 20)) == 0;
	/* drive until the fake holds every one of them (sent, waiting for an answer) */
	wait_end = NowMs() + 30000;
	while (NowMs() < wait_end)
	{
		HttpRequest *none[1];

		RunUntil(e, none, 0, 1, 250, NULL);
		seen = FakeRequests() - base;
		if (seen >= count)
			break;
	}
	Check(submitted == count && HttpEngineInFlight(e) == count && seen >= count,
		  "%d requests in flight, the fake holds %ld of them", count, seen);
	t0 = NowMs();
	HttpEngineDestroy(e);
	ms = NowMs() - t0;
	printf("# HttpEngineDestroy with %d in flight: %.1f ms\n", count, ms);
	Check(ms < 2000, "HttpEngineDestroy with %d in flight returns quickly (%.1f ms)", count, ms);
	Check(OpenFds() == fds_before, "no file descriptor left open (%d before, %d after)", fds_before, OpenFds());
	Control("DELETE", "/__fake/faults", NULL, NULL);
	Control("POST", "/__fake/config", "{\"rate_limit\": 3600}", NULL);
}

/* Raise the soft fd limit so that COUNT sockets fit. */
static void
RaiseFdLimit(int count)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t) count + 256)
	{
		rl.rlim_cur = rl.rlim_max < (rlim_t) count + 256 ? rl.rlim_max : (rlim_t) count + 256;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	HttpEngine *e;
	char		err[256];
	int			count;
	int			fds_before;

	if (argc < 4)
	{
		fprintf(stderr, "usage: %s BASE_URL TOKEN COUNT [TLS_URL]\n", argv[0]);
		return 2;
	}
	base_url = argv[1];
	token = argv[2];
	count = atoi(argv[3]);
	if (strncmp(base_url, "http://", 7) != 0 || count < 1)
	{
		fprintf(stderr, "engine_test: BASE_URL must be http://..., COUNT positive\n");
		return 2;
	}
	RaiseFdLimit(count);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	Control("POST", "/__fake/reset", NULL, NULL);

	fds_before = OpenFds();
	e = HttpEngineCreate(err, sizeof(err));
	if (e == NULL)
	{
		fprintf(stderr, "HttpEngineCreate: %s\n", err);
		return 1;
	}
	TestBasics(e);
	TestCanned(e);
	TestConcurrent(e, count);
	TestFailures(e, argc > 4 ? argv[4] : NULL);
	HttpEngineDestroy(e);
	Check(OpenFds() == fds_before, "an idle engine destroyed: no file descriptor left open");

	TestDestroy(count);
	curl_global_cleanup();

	printf("%d checks, %d failed\n", checks, failures);
	if (failures > 0)
	{
		printf("pgext: http engine test FAILED\n");
		return 1;
	}
	printf("pgext: http engine test passed\n");
	return 0;
}
