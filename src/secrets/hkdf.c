/*
 * hkdf.c — HKDF-SHA256 (RFC 5869) for 32-byte keys, from HMAC-SHA256.
 *
 * OpenSSL 3's EVP_KDF "HKDF" costs ~32,000 instructions per 32-byte key:
 * it fetches HMAC and SHA-256 by name for every extract (EVP_Q_mac) and
 * every expand.  An account's first secret read in a backend pays that (its
 * key is cached afterwards, keyring.c), and so does every read whose key was
 * evicted from the cache, e.g. on a server with more active accounts than
 * the cache holds.  Built here from a template HMAC-SHA256 context (the
 * algorithm and digest fetched once per process, no key in it), duplicated
 * and keyed per call, it costs a fraction of that.
 *
 * For an output of one hash length (L = 32) HKDF is two HMACs:
 *   PRK = HMAC(salt, IKM)            (extract; skipped in expand-only mode,
 *                                     where IKM is already a uniform key)
 *   OKM = HMAC(PRK, info || 0x01)    (expand: T(1))
 * On first use in a process both modes are checked against RFC 5869's test
 * case 1 and against OpenSSL's own HKDF on the same inputs; a mismatch fails
 * every derivation (fail closed), so no key can come from a wrong KDF.
 *
 * Every context is freed on every path; OpenSSL cleanses HMAC key state when
 * it frees it, and the PRK is wiped here.  Raises no PostgreSQL error.
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "secrets/hkdf.h"

typedef enum HkdfState
{
	HKDF_UNTESTED,
	HKDF_OK,
	HKDF_BROKEN
} HkdfState;

static EVP_MAC_CTX *hmac_template = NULL;	/* HMAC with SHA-256, no key */
static HkdfState hkdf_state = HKDF_UNTESTED;

/* The unkeyed HMAC-SHA256 context every call copies, made once; NULL on failure. */
static EVP_MAC_CTX *
HmacTemplate(void)
{
	if (hmac_template == NULL)
	{
		EVP_MAC    *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
		EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
		OSSL_PARAM	params[2];

		EVP_MAC_free(mac);		/* the context keeps its own reference */
		if (ctx == NULL)
			return NULL;
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_MAC_CTX_set_params(ctx, params) != 1)
		{
			EVP_MAC_CTX_free(ctx);
			return NULL;
		}
		hmac_template = ctx;
	}
	return hmac_template;
}

/* HMAC-SHA256(key, d1 || d2) into out (32 bytes). */
static bool
HmacSha256(const uint8 *key, int key_len, const unsigned char *d1, int l1,
		   const unsigned char *d2, int l2, uint8 *out)
{
	EVP_MAC_CTX *template = HmacTemplate();
	EVP_MAC_CTX *ctx = template != NULL ? EVP_MAC_CTX_dup(template) : NULL;
	size_t		outl = 0;
	bool		ok;

	ok = ctx != NULL &&
		EVP_MAC_init(ctx, key, key_len, NULL) == 1 &&
		EVP_MAC_update(ctx, d1, l1) == 1 &&
		(l2 == 0 || EVP_MAC_update(ctx, d2, l2) == 1) &&
		EVP_MAC_final(ctx, out, &outl, HKDF_SHA256_BYTES) == 1 &&
		outl == HKDF_SHA256_BYTES;
	EVP_MAC_CTX_free(ctx);		/* NULL-safe; cleanses the keyed state */
	return ok;
}

/* HKDF from two HMACs (see the file comment), untested. */
static bool
HkdfFromHmac(const uint8 *ikm, int ikm_len, const uint8 *salt, int salt_len,
			 const unsigned char *info, int info_len, uint8 *out)
{
	static const unsigned char counter = 0x01;
	uint8		prk[HKDF_SHA256_BYTES];
	const uint8 *key = ikm;
	int			key_len = ikm_len;
	bool		ok = true;

	if (salt != NULL)
	{
		ok = HmacSha256(salt, salt_len, ikm, ikm_len, NULL, 0, prk);
		key = prk;
		key_len = sizeof(prk);
	}
	ok = ok && HmacSha256(key, key_len, info, info_len, &counter, 1, out);
	OPENSSL_cleanse(prk, sizeof(prk));
	return ok;
}

/* OpenSSL's HKDF on the same inputs: the reference for the self-test. */
static bool
HkdfOpenssl(const uint8 *ikm, int ikm_len, const uint8 *salt, int salt_len,
			const unsigned char *info, int info_len, uint8 *out)
{
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM	params[6];
	OSSL_PARAM *p = params;
	int			mode = salt ? EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND : EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	bool		ok;

	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return false;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	if (salt != NULL)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikm_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, info_len);
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, HKDF_SHA256_BYTES, params) > 0;
	EVP_KDF_CTX_free(kctx);
	return ok;
}

/*
 * RFC 5869 test case 1 (SHA-256), both modes, each also against OpenSSL's
 * HKDF: true when all four agree.
 */
static bool
HkdfSelfTest(void)
{
	static const uint8 ikm[22] = {
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
	static const uint8 salt[13] = {
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};
	static const unsigned char info[10] = {
		0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9};
	static const uint8 prk[HKDF_SHA256_BYTES] = {
		0x07, 0x77, 0x09, 0x36, 0x2c, 0x2e, 0x32, 0xdf, 0x0d, 0xdc, 0x3f, 0x0d,
		0xc4, 0x7b, 0xba, 0x63, 0x90, 0xb6, 0xc7, 0x3b, 0xb5, 0x0f, 0x9c, 0x31,
		0x22, 0xec, 0x84, 0x4a, 0xd7, 0xc2, 0xb3, 0xe5};
	/* the first 32 of the test's 42 output bytes */
	static const uint8 okm[HKDF_SHA256_BYTES] = {
		0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64,
		0xd0, 0x36, 0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c,
		0x5d, 0xb0, 0x2d, 0x56, 0xec, 0xc4, 0xc5, 0xbf};
	uint8		mine[HKDF_SHA256_BYTES];
	uint8		theirs[HKDF_SHA256_BYTES];

	/* extract and expand from IKM and salt */
	if (!HkdfFromHmac(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info), mine) ||
		memcmp(mine, okm, sizeof(okm)) != 0 ||
		!HkdfOpenssl(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info), theirs) ||
		memcmp(mine, theirs, sizeof(mine)) != 0)
		return false;
	/* expand only, from the PRK */
	if (!HkdfFromHmac(prk, sizeof(prk), NULL, 0, info, sizeof(info), mine) ||
		memcmp(mine, okm, sizeof(okm)) != 0 ||
		!HkdfOpenssl(prk, sizeof(prk), NULL, 0, info, sizeof(info), theirs) ||
		memcmp(mine, theirs, sizeof(mine)) != 0)
		return false;
	return true;
}

/*
 * HKDF-SHA256 into a 32-byte key: extract-and-expand with salt, or expand
 * only when salt is NULL (ikm already a uniformly random key).  False when
 * OpenSSL fails or the self-test did (then always, in this process).
 */
bool
HkdfSha256(const uint8 *ikm, int ikm_len, const uint8 *salt, int salt_len,
		   const unsigned char *info, int info_len, uint8 *out)
{
	if (hkdf_state == HKDF_UNTESTED)
		hkdf_state = HkdfSelfTest() ? HKDF_OK : HKDF_BROKEN;
	if (hkdf_state != HKDF_OK)
		return false;
	return HkdfFromHmac(ikm, ikm_len, salt, salt_len, info, info_len, out);
}
