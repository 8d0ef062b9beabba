/*
 * urlcheck_fuzz.c — libFuzzer harness for src/worker/urlcheck.c (the API
 * base URL rules behind pgext.hetzner_api_url / pgext.stripe_api_url and
 * pgext.allow_insecure_urls).
 *
 * Checks, for any input: the reason is always NUL-terminated within its
 * buffer (also a tiny one); a URL accepted in strict mode is https, parsed
 * by curl, and its host is not this machine (checked again with curl's own
 * parse); a URL accepted strictly is accepted with insecure URLs allowed;
 * the loopback test agrees for an IPv6-looking host and its bracketed form.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "worker/urlcheck.h"

/* Abort (a fuzzer finding) when an invariant does not hold. */
static void
Check(int cond)
{
	if (!cond)
		abort();
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		len = size > 4096 ? 4096 : size;
	char	   *url = malloc(len + 1);
	char	   *bracketed = malloc(len + 3);
	char		strict[512];
	char		loose[512];
	char		tiny[8];

	memcpy(url, data, len);
	url[len] = '\0';

	memset(tiny, 'x', sizeof(tiny));
	url_check_api(url, false, tiny, sizeof(tiny));
	Check(memchr(tiny, '\0', sizeof(tiny)) != NULL);
	url_check_api(url, false, strict, sizeof(strict));
	url_check_api(url, true, loose, sizeof(loose));
	Check(strlen(strict) < sizeof(strict) && strlen(loose) < sizeof(loose));
	Check((tiny[0] == '\0') == (strict[0] == '\0'));
	if (strict[0] == '\0')
	{
		CURLU	   *u = curl_url();
		char	   *scheme = NULL;
		char	   *host = NULL;

		Check(loose[0] == '\0');
		Check(u != NULL);
		Check(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK);
		Check(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK);
		Check(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK);
		Check(strcasecmp(scheme, "https") == 0);
		Check(strcasecmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0 &&
			  strcmp(host, "[::1]") != 0 && strcmp(host, "0.0.0.0") != 0);
		Check(!url_host_is_loopback(host));
		curl_free(scheme);
		curl_free(host);
		curl_url_cleanup(u);
	}

	/* the input as a host name, bare and bracketed */
	bracketed[0] = '[';
	memcpy(bracketed + 1, url, len + 1);
	if (strchr(url, ':') != NULL && strlen(url) < 250 &&
		strspn(url, "0123456789abcdefABCDEF:.") == strlen(url))
	{
		strcat(bracketed, "]");
		Check(url_host_is_loopback(url) == url_host_is_loopback(bracketed));
	}
	if (strcasecmp(url, "localhost") == 0 || strcmp(url, "127.0.0.1") == 0 || strcmp(url, "::1") == 0)
		Check(url_host_is_loopback(url));
	free(url);
	free(bracketed);
	return 0;
}
