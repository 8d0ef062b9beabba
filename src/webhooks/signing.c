/*
 * signing.c — webhook signing keys and the HMAC over a delivery.
 *
 * Reading a signing secret through the store (SecretLookup: index probe,
 * AES-GCM open, audit count) and keying an HMAC with it on every delivery
 * cost more than the HMAC itself.  So each backend keeps, per (secret name,
 * digest), an OpenSSL EVP_MAC_CTX keyed with the current secret (the
 * plaintext is wiped as soon as the context holds it), together with the
 * sealed bytes of the row it was made from.  Every use first probes the
 * secret's row through the (account_id, name) index under the statement's
 * snapshot and serves the cached context only when the row's sealed value,
 * key version and expiry are the same and it has not expired: secret_set,
 * rotation and secret_rewrap all seal anew (a fresh random nonce, so new
 * bytes even for the same value) and secret_delete leaves no row, so a
 * changed secret is never served stale, in this session or any other.
 * A miss goes through SecretLookup as before (and is audited as a get);
 * hits are not counted again.
 *
 * The previous (rotated-out) secret is read only when the current one did
 * not match, through the store each time (rotations are rare and short).
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "common/subxact.h"
#include "secrets/secrets.h"
#include "secrets/store.h"
#include "webhooks/signing.h"

#define PREVIOUS_SUFFIX ":previous"
/* Distinct (secret, digest) pairs a backend keeps keyed; more are evicted in turn. */
#define SIGNING_CACHE_SIZE 8

/* One cached key: the keyed context and the row version it was made from. */
typedef struct SigningKey
{
	bool		used;			/* name/digest set and ctx allocated */
	bool		valid;			/* may be served when the row still matches */
	char		name[SECRET_NAME_MAX_BYTES + 1];
	char		digest[8];
	bytea	   *sealed;			/* in signing_cxt */
	int32		key_version;
	bool		has_expires;
	TimestampTz expires_at;
	EVP_MAC_CTX *ctx;
} SigningKey;

/* The platform secret row as probed (sealed palloc'd in the current context). */
typedef struct SigningRow
{
	bytea	   *sealed;
	int32		key_version;
	bool		has_expires;
	TimestampTz expires_at;
} SigningRow;

static SigningKey signing_keys[SIGNING_CACHE_SIZE];
static int	signing_next_victim = 0;
static MemoryContext signing_cxt = NULL;
static EVP_MAC *hmac_alg = NULL;

/*
 * Probe the platform secret row (account NULL, name) under the active
 * snapshot through the store's own lookup (no decrypt, no audit); false when
 * there is none.
 */
static bool
ProbeSecretRow(const char *name, SigningRow *row)
{
	text	   *name_text = cstring_to_text(name);
	SecretRow	found_row;
	bool		found;
	bool		pushed = false;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	found = SecretFindRow(name_text, NULL, &found_row);
	if (pushed)
		PopActiveSnapshot();
	if (found)
	{
		row->key_version = found_row.b.key_version;
		row->sealed = found_row.sealed;
		row->has_expires = found_row.b.has_expires;
		row->expires_at = found_row.b.expires_at;
	}
	pfree(name_text);
	return found;
}

/* Whether a cached key was made from exactly this row version. */
static bool
SameRow(const SigningKey *k, const SigningRow *row)
{
	return k->key_version == row->key_version &&
		k->has_expires == row->has_expires &&
		k->expires_at == row->expires_at &&
		VARSIZE_ANY_EXHDR(k->sealed) == VARSIZE_ANY_EXHDR(row->sealed) &&
		memcmp(VARDATA_ANY(k->sealed), VARDATA_ANY(row->sealed),
			   VARSIZE_ANY_EXHDR(row->sealed)) == 0;
}

/*
 * A new HMAC context keyed with (plain, len) for digest, or NULL when
 * OpenSSL fails.  Raises nothing, so the caller can wipe and free first.
 */
static EVP_MAC_CTX *
NewKeyedMac(const char *plain, int len, const char *digest)
{
	EVP_MAC_CTX *ctx;
	OSSL_PARAM	params[2];

	if (hmac_alg == NULL)
		hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (hmac_alg == NULL)
		return NULL;
	ctx = EVP_MAC_CTX_new(hmac_alg);
	if (ctx == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, (const unsigned char *) plain, (size_t) len, params) != 1)
	{
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Error for an OpenSSL failure (never shows key material). */
static void
MacFailed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR), errhidestmt(true),
			 errmsg("HMAC computation failed in OpenSSL"),
			 errhint("Check the server's OpenSSL installation.")));
}

/*
 * Whether any parsed signature equals the HMAC of prefix || body under the
 * keyed ctx (re-initialised to its key first), compared in constant time.
 * Sets *failed instead of raising when OpenSSL fails.
 */
static bool
MacMatches(EVP_MAC_CTX *ctx, const char *prefix, size_t prefixlen, const char *body,
		   size_t bodylen, const SigHeader *h, bool *failed)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t		maclen = 0;
	bool		match = false;
	int			i;

	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
		(prefixlen > 0 && EVP_MAC_update(ctx, (const unsigned char *) prefix, prefixlen) != 1) ||
		EVP_MAC_update(ctx, (const unsigned char *) body, bodylen) != 1 ||
		EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1)
	{
		*failed = true;
		OPENSSL_cleanse(mac, sizeof(mac));
		return false;
	}
	for (i = 0; i < h->nsigs; i++)
		if (h->siglen[i] == maclen && CRYPTO_memcmp(h->sig[i], mac, maclen) == 0)
			match = true;
	OPENSSL_cleanse(mac, sizeof(mac));
	return match;
}

/* Free a cache entry's context and row copy; it is unused afterwards. */
static void
ForgetKey(SigningKey *k)
{
	if (k->ctx != NULL)
		EVP_MAC_CTX_free(k->ctx);
	k->ctx = NULL;
	if (k->sealed != NULL)
		pfree(k->sealed);
	k->sealed = NULL;
	k->used = false;
	k->valid = false;
}

/* The entry for (name, digest), or a free or evicted one set to it. */
static SigningKey *
KeySlot(const char *name, const char *digest)
{
	SigningKey *k;
	int			i;

	for (i = 0; i < SIGNING_CACHE_SIZE; i++)
	{
		k = &signing_keys[i];
		if (k->used && strcmp(k->name, name) == 0 && strcmp(k->digest, digest) == 0)
			return k;
	}
	for (i = 0; i < SIGNING_CACHE_SIZE; i++)
		if (!signing_keys[i].used)
			break;
	if (i == SIGNING_CACHE_SIZE)
	{
		i = signing_next_victim;
		signing_next_victim = (signing_next_victim + 1) % SIGNING_CACHE_SIZE;
	}
	k = &signing_keys[i];
	ForgetKey(k);
	strlcpy(k->name, name, sizeof(k->name));
	strlcpy(k->digest, digest, sizeof(k->digest));
	return k;
}

/*
 * The keyed context for the current secret: the cached one when the row is
 * unchanged and not expired, else made anew from the store (which raises
 * the store's error for an expired or undecryptable secret).
 */
static EVP_MAC_CTX *
CurrentKey(const char *name, const char *digest)
{
	SigningRow	row = {NULL, 0, false, 0};
	bool		found = ProbeSecretRow(name, &row);
	SigningKey *k = KeySlot(name, digest);
	char	   *plain;
	int			len = 0;

	if (found && k->valid && SameRow(k, &row) &&
		!(row.has_expires && row.expires_at <= GetCurrentTimestamp()))
	{
		pfree(row.sealed);
		return k->ctx;
	}
	ForgetKey(k);
	plain = SecretLookup(name, NULL, true, &len);
	if (plain == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errhidestmt(true),
				 errmsg("webhook signing secret \"%s\" is not set", name),
				 errhint("Store the endpoint's signing secret with pgext.secret_set('%s', 'whsec_...').", name)));
	k->ctx = NewKeyedMac(plain, len, digest);
	explicit_bzero(plain, len);
	pfree(plain);
	if (k->ctx == NULL)
		MacFailed();
	if (signing_cxt == NULL)
		signing_cxt = AllocSetContextCreate(TopMemoryContext, "pgext webhook signing keys",
											ALLOCSET_SMALL_SIZES);
	k->used = true;
	/* the store read the same row under the same snapshot; cache only a probed row */
	if (found)
	{
		k->sealed = (bytea *) MemoryContextAlloc(signing_cxt, VARSIZE_ANY(row.sealed));
		memcpy(k->sealed, row.sealed, VARSIZE_ANY(row.sealed));
		k->key_version = row.key_version;
		k->has_expires = row.has_expires;
		k->expires_at = row.expires_at;
		k->valid = true;
		pfree(row.sealed);
	}
	return k->ctx;
}

typedef struct PreviousArgs
{
	const char *name;
	char	   *value;
	int			len;
} PreviousArgs;

/* PgextTryInSubxact body: look the previous secret up (NULL when not stored). */
static void
LookupPreviousBody(void *arg)
{
	PreviousArgs *a = (PreviousArgs *) arg;

	a->value = SecretLookup(a->name, NULL, true, &a->len);
}

/*
 * Whether the previous (rotated-out) secret, if one is stored and not
 * expired, signed the delivery.  The store raises PX002 for an expired
 * secret; that means "none" here.
 */
static bool
PreviousMatches(const char *name, const char *digest, const char *prefix, size_t prefixlen,
				const char *body, size_t bodylen, const SigHeader *h)
{
	PreviousArgs a = {psprintf("%s%s", name, PREVIOUS_SUFFIX), NULL, 0};
	EVP_MAC_CTX *ctx;
	bool		failed = false;
	bool		ok;

	if (!PgextTryInSubxact(LookupPreviousBody, &a, PgextIsSecretExpiredError, NULL) ||
		a.value == NULL)
		return false;
	ctx = NewKeyedMac(a.value, a.len, digest);
	explicit_bzero(a.value, a.len);
	pfree(a.value);
	if (ctx == NULL)
		MacFailed();
	ok = MacMatches(ctx, prefix, prefixlen, body, bodylen, h, &failed);
	EVP_MAC_CTX_free(ctx);
	if (failed)
		MacFailed();
	return ok;
}

/* See signing.h. */
bool
SigningVerify(const char *secret_name, const char *digest, const char *prefix, size_t prefixlen,
			  const char *body, size_t bodylen, const SigHeader *h)
{
	EVP_MAC_CTX *ctx = CurrentKey(secret_name, digest);
	bool		failed = false;

	if (MacMatches(ctx, prefix, prefixlen, body, bodylen, h, &failed))
		return true;
	if (failed)
		MacFailed();
	return PreviousMatches(secret_name, digest, prefix, prefixlen, body, bodylen, h);
}
