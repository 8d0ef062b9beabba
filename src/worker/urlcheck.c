/*
 * urlcheck.c — the API base URL rules (see urlcheck.h).  PG-free.
 */
#include <arpa/inet.h>
#include <string.h>
#include <stdio.h>
#include <curl/curl.h>

#include "worker/urlcheck.h"

/* ASCII case-insensitive equality of NUL-terminated a and b. */
static bool
AsciiCaseEq(const char *a, const char *b)
{
	for (;; a++, b++)
	{
		unsigned char ca = (unsigned char) *a;
		unsigned char cb = (unsigned char) *b;

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return false;
		if (ca == '\0')
			return true;
	}
}

/* Whether host names this machine; see urlcheck.h. */
bool
url_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char		buf[256];
	size_t		n = strlen(host);

	if (AsciiCaseEq(host, "localhost") ||
		(n > 10 && AsciiCaseEq(host + n - 10, ".localhost")))
		return true;
	/* curl gives IPv6 hosts in brackets */
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf))
	{
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	if (inet_pton(AF_INET, host, &a4) == 1)
	{
		uint32_t	h = ntohl(a4.s_addr);

		return (h >> 24) == 127 || h == 0;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) ||
			(IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

/* Why url may not be an API base URL; see urlcheck.h. */
void
url_check_api(const char *url, bool allow_insecure, char *reason, size_t len)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;

	reason[0] = '\0';
	if (u == NULL)
	{
		snprintf(reason, len, "out of memory checking the URL");
		return;
	}
	if (url == NULL || url[0] == '\0')
		snprintf(reason, len, "the URL is empty");
	else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
			 curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
			 curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		snprintf(reason, len, "\"%s\" is not a URL", url);
	else if (!AsciiCaseEq(scheme, "https") && !AsciiCaseEq(scheme, "http"))
		snprintf(reason, len, "\"%s\" is not an http(s) URL", url);
	else if (!allow_insecure && !AsciiCaseEq(scheme, "https"))
		snprintf(reason, len, "\"%s\" is not https (set pgext.allow_insecure_urls only for test fakes)", url);
	else if (!allow_insecure && url_host_is_loopback(host))
		snprintf(reason, len, "\"%s\" points at this machine (set pgext.allow_insecure_urls only for test fakes)", url);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
}
