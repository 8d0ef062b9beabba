/*
 * engine_bench.c — how many short GETs per second the HTTP engine
 * (src/worker/http.c) completes with a new connection each (as health checks
 * do), driven the way the worker drives it.  Not a test: it prints numbers.
 *
 * Usage: engine_bench URL [TOTAL [CONCURRENCY]]   (defaults 100000, 100)
 * Prints: "engine_bench: N GETs, C concurrent, fresh connections: R/s (E errors)".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/http.h"

/* CLOCK_MONOTONIC in seconds. */
static double
Now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A health-check-like request for url. */
static HttpRequest *
NewGet(const char *url)
{
	HttpRequest *r = calloc(1, sizeof(HttpRequest));

	if (r == NULL || (r->method = strdup("GET")) == NULL || (r->url = strdup(url)) == NULL)
		abort();
	r->timeout_ms = 5000;
	r->max_response = 65536;
	r->fresh_connection = true;
	r->status_only = true;
	return r;
}

int
main(int argc, char **argv)
{
	const char *url;
	long		total;
	int			conc;
	long		sent = 0,
				done = 0,
				errors = 0;
	char		err[256];
	HttpEngine *e;
	struct pollfd pfd;
	double		t0,
				t1;

	if (argc < 2)
	{
		fprintf(stderr, "usage: engine_bench URL [TOTAL [CONCURRENCY]]\n");
		return 2;
	}
	url = argv[1];
	total = argc > 2 ? atol(argv[2]) : 100000;
	conc = argc > 3 ? atoi(argv[3]) : 100;
	if ((e = HttpEngineCreate(err, sizeof(err))) == NULL)
	{
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	pfd.fd = HttpEngineFd(e);
	pfd.events = POLLIN;
	t0 = Now();
	while (done < total)
	{
		HttpRequest *r;
		long		t;

		while (sent < total && HttpEngineInFlight(e) < conc)
		{
			r = NewGet(url);
			sent++;
			if (HttpEngineSubmit(e, r) != 0)
			{
				errors++;
				done++;
				HttpRequestFree(r);
			}
		}
		t = HttpEngineTimeoutMs(e);
		if (poll(&pfd, 1, t < 0 ? 1000 : (int) t) < 0 && errno != EINTR)
			return 2;
		HttpEngineDrive(e);
		while ((r = HttpEngineNextDone(e)) != NULL)
		{
			if (r->error_code != NULL || r->http_status < 200 || r->http_status > 299)
			{
				if (errors < 5)
					fprintf(stderr, "error: %s %ld %s\n", r->error_kind ? r->error_kind : "-",
							r->http_status, r->error);
				errors++;
			}
			done++;
			HttpRequestFree(r);
		}
	}
	t1 = Now();
	printf("engine_bench: %ld GETs, %d concurrent, fresh connections: %.0f/s (%ld errors)\n",
		   total, conc, total / (t1 - t0), errors);
	HttpEngineDestroy(e);
	return errors > 0;
}
