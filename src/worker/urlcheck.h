/*
 * urlcheck.h — whether a URL may be an API base URL (urlcheck.c): http(s)
 * only, https and not this machine unless insecure URLs are allowed (the
 * tests' fakes: pgext.allow_insecure_urls).  PG-free (libcurl's URL parser),
 * so test/fuzz/urlcheck_fuzz.c can fuzz it; config.c calls it.
 */
#ifndef PGEXT_WORKER_URLCHECK_H
#define PGEXT_WORKER_URLCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Whether host names this machine (localhost, *.localhost, 127/8, 0.0.0.0, ::1, ::, [..]). */
extern bool url_host_is_loopback(const char *host);

/*
 * Why url may not be used as an API base URL, in reason (len bytes, always
 * NUL-terminated; it may quote the URL); reason "" when it may.
 */
extern void url_check_api(const char *url, bool allow_insecure, char *reason, size_t len);

#endif							/* PGEXT_WORKER_URLCHECK_H */
