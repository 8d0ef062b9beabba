/*
 * sigparse.h — webhook signature header parsing (PG-free, fuzzable).
 *
 * This file and sigparse.c include no PostgreSQL header, so the parser can be
 * built on its own under libFuzzer (test/fuzz).  They only parse and decode:
 * the HMAC itself and every policy decision live in intake.c.  Digits are
 * read by common/digits.c, which is PG-free too.
 */
#ifndef PGEXT_SIGPARSE_H
#define PGEXT_SIGPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many signatures of the wanted scheme are kept; extras are ignored. */
#define SIGPARSE_MAX_SIGS 8
/* Largest decoded signature (SHA-512); longer values are ignored. */
#define SIGPARSE_MAX_SIG_BYTES 64
/* Headers longer than this are refused outright. */
#define SIGPARSE_MAX_HEADER 8192

typedef enum SigEncoding
{
	SIG_ENCODING_HEX,
	SIG_ENCODING_BASE64
} SigEncoding;

typedef enum SigParseStatus
{
	SIGPARSE_OK = 0,
	SIGPARSE_EMPTY,				/* empty header */
	SIGPARSE_TOO_LONG,			/* longer than SIGPARSE_MAX_HEADER */
	SIGPARSE_SYNTAX,			/* an item is not key=value, or t appears twice */
	SIGPARSE_BAD_TIMESTAMP,		/* t is not 1..12 decimal digits */
	SIGPARSE_NO_TIMESTAMP,		/* a timestamp was required and is missing */
	SIGPARSE_NO_SIGNATURE		/* no decodable signature of the wanted scheme */
} SigParseStatus;

typedef struct SigHeader
{
	bool		has_timestamp;
	int64_t		timestamp;		/* unix seconds, when has_timestamp */
	int			nsigs;			/* decoded signatures of the wanted scheme */
	size_t		siglen[SIGPARSE_MAX_SIGS];
	uint8_t		sig[SIGPARSE_MAX_SIGS][SIGPARSE_MAX_SIG_BYTES];
	int			ignored;		/* items of other schemes, undecodable or surplus values */
} SigHeader;

/*
 * Parse a "t=<unix>,<scheme>=<sig>[,<scheme>=<sig>...]" header (Stripe's
 * layout; Stripe uses scheme "v1", hex).  Items of other schemes (v0, ...) are
 * skipped.  need_timestamp makes a missing t an error.
 */
extern SigParseStatus sigparse_kv(const char *hdr, size_t len, const char *scheme,
								  SigEncoding enc, bool need_timestamp, SigHeader *out);

/* Parse "<prefix><sig>" (e.g. GitHub-style "sha256=<hex>"; prefix may be ""). */
extern SigParseStatus sigparse_plain(const char *hdr, size_t len, const char *prefix,
									 SigEncoding enc, SigHeader *out);

/* Decode hex or base64 into out; returns the byte count, or -1 if invalid or too long. */
extern int	sigparse_decode(const char *s, size_t len, SigEncoding enc,
							uint8_t *out, size_t outmax);

/* A short, fixed description of a status (never echoes input). */
extern const char *sigparse_status_name(SigParseStatus st);

#endif							/* PGEXT_SIGPARSE_H */
