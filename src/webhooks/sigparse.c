/*
 * sigparse.c — webhook signature header parsing (PG-free, fuzzable).
 *
 * Input is untrusted and length-delimited (never assumed NUL-terminated).
 * Nothing here allocates: results go into a caller-supplied SigHeader.
 */
#include <string.h>

#include "common/digits.h"
#include "webhooks/sigparse.h"

/* Whether c is optional whitespace around items. */
static bool
IsSpace(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim blanks from both ends of [*s, *s + *len). */
static void
Trim(const char **s, size_t *len)
{
	while (*len > 0 && IsSpace(**s))
	{
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && IsSpace((*s)[*len - 1]))
		(*len)--;
}

/* Value of one base64 (standard or URL-safe alphabet) character, or -1. */
static int
Base64Value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode base64, padded or not, into out; trailing bits must be zero. */
static int
DecodeBase64(const char *s, size_t len, uint8_t *out, size_t outmax)
{
	size_t		n = 0;
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		i;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len == 0 || len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++)
	{
		int			v = Base64Value(s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (n >= outmax)
				return -1;
			out[n++] = (uint8_t) ((acc >> bits) & 0xFF);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (int) n;
}

/* Decode a signature value in the given encoding. */
int
sigparse_decode(const char *s, size_t len, SigEncoding enc, uint8_t *out, size_t outmax)
{
	if (s == NULL || out == NULL)
		return -1;
	if (enc == SIG_ENCODING_HEX)
		return pgext_hex_decode(s, len, out, outmax);
	return DecodeBase64(s, len, out, outmax);
}

/* Parse 1..12 decimal digits into a positive unix time. */
static bool
ParseTimestamp(const char *s, size_t len, int64_t *out)
{
	int64_t		v;

	if (!pgext_parse_digits(s, len, 12, &v) || v <= 0)
		return false;
	*out = v;
	return true;
}

/* Keep one decoded signature if there is room; otherwise count it ignored. */
static void
AddSignature(SigHeader *out, const char *v, size_t vlen, SigEncoding enc)
{
	int			n;

	if (out->nsigs >= SIGPARSE_MAX_SIGS)
	{
		out->ignored++;
		return;
	}
	n = sigparse_decode(v, vlen, enc, out->sig[out->nsigs], SIGPARSE_MAX_SIG_BYTES);
	if (n <= 0)
	{
		out->ignored++;
		return;
	}
	out->siglen[out->nsigs++] = (size_t) n;
}

/* Common start: reset the result and check the overall length. */
static SigParseStatus
Begin(const char *hdr, size_t len, SigHeader *out)
{
	memset(out, 0, sizeof(*out));
	if (hdr == NULL || len == 0)
		return SIGPARSE_EMPTY;
	if (len > SIGPARSE_MAX_HEADER)
		return SIGPARSE_TOO_LONG;
	return SIGPARSE_OK;
}

/* Parse "t=<unix>,<scheme>=<sig>,..."; see sigparse.h. */
SigParseStatus
sigparse_kv(const char *hdr, size_t len, const char *scheme, SigEncoding enc,
			bool need_timestamp, SigHeader *out)
{
	SigParseStatus st = Begin(hdr, len, out);
	size_t		scheme_len = scheme ? strlen(scheme) : 0;
	size_t		pos = 0;

	if (st != SIGPARSE_OK)
		return st;
	while (pos <= len)
	{
		const char *item = hdr + pos;
		const char *comma = memchr(item, ',', len - pos);
		size_t		ilen = comma ? (size_t) (comma - item) : len - pos;
		const char *eq;
		const char *key;
		const char *val;
		size_t		klen;
		size_t		vlen;

		pos += ilen + 1;
		Trim(&item, &ilen);
		if (ilen == 0)
		{
			if (comma == NULL)
				break;
			continue;			/* tolerate empty items such as a trailing comma */
		}
		eq = memchr(item, '=', ilen);
		if (eq == NULL)
			return SIGPARSE_SYNTAX;
		key = item;
		klen = (size_t) (eq - item);
		val = eq + 1;
		vlen = ilen - klen - 1;
		Trim(&key, &klen);
		Trim(&val, &vlen);
		if (klen == 0)
			return SIGPARSE_SYNTAX;
		if (klen == 1 && key[0] == 't')
		{
			if (out->has_timestamp)
				return SIGPARSE_SYNTAX;
			if (!ParseTimestamp(val, vlen, &out->timestamp))
				return SIGPARSE_BAD_TIMESTAMP;
			out->has_timestamp = true;
		}
		else if (klen == scheme_len && memcmp(key, scheme, klen) == 0)
			AddSignature(out, val, vlen, enc);
		else
			out->ignored++;
		if (comma == NULL)
			break;
	}
	if (need_timestamp && !out->has_timestamp)
		return SIGPARSE_NO_TIMESTAMP;
	if (out->nsigs == 0)
		return SIGPARSE_NO_SIGNATURE;
	return SIGPARSE_OK;
}

/* Parse "<prefix><sig>"; see sigparse.h. */
SigParseStatus
sigparse_plain(const char *hdr, size_t len, const char *prefix, SigEncoding enc, SigHeader *out)
{
	SigParseStatus st = Begin(hdr, len, out);
	size_t		plen = prefix ? strlen(prefix) : 0;

	if (st != SIGPARSE_OK)
		return st;
	Trim(&hdr, &len);
	if (len < plen || (plen > 0 && memcmp(hdr, prefix, plen) != 0))
		return SIGPARSE_SYNTAX;
	AddSignature(out, hdr + plen, len - plen, enc);
	if (out->nsigs == 0)
		return SIGPARSE_NO_SIGNATURE;
	return SIGPARSE_OK;
}

/* A short, fixed description of a status (never echoes input). */
const char *
sigparse_status_name(SigParseStatus st)
{
	switch (st)
	{
		case SIGPARSE_OK:
			return "ok";
		case SIGPARSE_EMPTY:
			return "empty header";
		case SIGPARSE_TOO_LONG:
			return "header too long";
		case SIGPARSE_SYNTAX:
			return "malformed header";
		case SIGPARSE_BAD_TIMESTAMP:
			return "invalid timestamp";
		case SIGPARSE_NO_TIMESTAMP:
			return "missing timestamp";
		case SIGPARSE_NO_SIGNATURE:
			return "no signature of the expected scheme";
	}
	return "unknown";
}
