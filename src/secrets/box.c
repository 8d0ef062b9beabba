/*
 * box.c — AES-256-GCM sealing of secret values, bound to their row.
 *
 * See box.h for the byte layout of sealed values and of the AAD.
 * Every buffer is allocated before the OpenSSL context is created and no
 * PostgreSQL error can be raised while the context exists, so the context is
 * freed on every path (EVP_CIPHER_CTX_free also cleanses the key schedule)
 * and the account key copied onto the stack is wiped right after.
 * Nonces are 96 random bits from pg_strong_random(): one data key seals far
 * fewer than the 2^32 values NIST SP 800-38D allows with random nonces.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/hashfn.h"
#include "port/pg_bswap.h"

#include "secrets/box.h"
#include "secrets/keyring.h"

#define AAD_LABEL "pgext.secret.v1"

/* Build the AAD for a binding into a palloc'd buffer; returns its length. */
static int
BuildAad(const SecretBinding *b, unsigned char **out)
{
	int			len = (sizeof(AAD_LABEL) - 1) + 4 + 16 + 1 + 16 + 1 + 8 + 4 + b->name_len;
	unsigned char *buf = palloc0(len);
	unsigned char *p = buf;
	uint32		u32;
	uint64		u64;

	memcpy(p, AAD_LABEL, sizeof(AAD_LABEL) - 1);
	p += sizeof(AAD_LABEL) - 1;
	u32 = pg_hton32((uint32) b->key_version);
	memcpy(p, &u32, 4);
	p += 4;
	memcpy(p, b->id.data, 16);
	p += 16;
	*p++ = b->has_account ? 1 : 0;
	if (b->has_account)
		memcpy(p, b->account.data, 16);
	p += 16;
	*p++ = b->has_expires ? 1 : 0;
	u64 = pg_hton64(b->has_expires ? (uint64) b->expires_at : 0);
	memcpy(p, &u64, 8);
	p += 8;
	u32 = pg_hton32((uint32) b->name_len);
	memcpy(p, &u32, 4);
	p += 4;
	memcpy(p, b->name, b->name_len);
	*out = buf;
	return len;
}

/* AES-256-GCM, fetched once per process (fetching is slow in OpenSSL 3). */
static const EVP_CIPHER *
AesGcm(void)
{
	static EVP_CIPHER *cipher = NULL;

	if (cipher == NULL)
	{
		cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
		/*
		 * Key and nonce are set in one init, relying on GCM's default IV
		 * length (12 bytes, our nonce): a second init and an IV-length ctrl
		 * cost a third of the decrypt.  Checked once here, fail closed.
		 */
		if (cipher != NULL && EVP_CIPHER_get_iv_length(cipher) != SECRET_BOX_NONCE_BYTES)
		{
			EVP_CIPHER_free(cipher);
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("OpenSSL's AES-256-GCM does not default to a %d-byte nonce",
							SECRET_BOX_NONCE_BYTES),
					 errhint("Check the OpenSSL configuration (providers) of the server.")));
		}
		if (cipher == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("OpenSSL does not provide AES-256-GCM"),
					 errhint("Check the OpenSSL configuration (providers) of the server.")));
	}
	return cipher;
}

/*
 * The key for a binding and format into key[]; errors if its version is not
 * loaded.
 */
static void
BindingKey(const SecretBinding *b, int format, uint8 *key)
{
	const uint8 *salt = format == SECRET_BOX_FORMAT_ACCOUNT ? b->salt : NULL;

	if (!KeyringAccountKey(b->key_version, b->has_account ? &b->account : NULL, salt, key))
		elog(ERROR, "pgext: master key version %d is not loaded", (int) b->key_version);
}

/* Seal plaintext for a row; returns a palloc'd bytea. */
bytea *
SecretBoxSeal(const SecretBinding *b, const char *plain, int plain_len)
{
	uint8		key[KEYRING_KEY_BYTES];
	unsigned char *aad;
	int			aad_len = BuildAad(b, &aad);
	bytea	   *sealed = palloc(VARHDRSZ + SECRET_BOX_OVERHEAD + plain_len);
	unsigned char *out = (unsigned char *) VARDATA(sealed);
	unsigned char *nonce = out + 1;
	unsigned char *ct = nonce + SECRET_BOX_NONCE_BYTES;
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *ctx;
	int			n = 0;
	int			fin = 0;
	bool		ok;
	int			format = (b->has_account && b->salt != NULL) ?
		SECRET_BOX_FORMAT_ACCOUNT : SECRET_BOX_FORMAT_MASTER;

	SET_VARSIZE(sealed, VARHDRSZ + SECRET_BOX_OVERHEAD + plain_len);
	out[0] = (unsigned char) format;
	if (!pg_strong_random(nonce, SECRET_BOX_NONCE_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce for a secret"),
				 errhidestmt(true)));
	cipher = AesGcm();
	BindingKey(b, format, key);

	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL &&
		EVP_EncryptInit_ex(ctx, cipher, NULL, key, nonce) == 1 &&
		EVP_EncryptUpdate(ctx, NULL, &fin, aad, aad_len) == 1 &&
		(plain_len == 0 ||
		 EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *) plain, plain_len) == 1) &&
		EVP_EncryptFinal_ex(ctx, ct + n, &fin) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRET_BOX_TAG_BYTES,
							ct + plain_len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	pfree(aad);
	if (!ok)
	{
		OPENSSL_cleanse(sealed, VARSIZE(sealed));
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("OpenSSL could not encrypt a secret with AES-256-GCM"),
				 errhidestmt(true)));
	}
	return sealed;
}

/* Whether a sealed value has one of our format bytes and room for nonce and tag. */
bool
SecretBoxWellFormed(const bytea *sealed)
{
	return VARSIZE_ANY_EXHDR(sealed) >= SECRET_BOX_OVERHEAD &&
		(SecretBoxFormat(sealed) == SECRET_BOX_FORMAT_MASTER ||
		 SecretBoxFormat(sealed) == SECRET_BOX_FORMAT_ACCOUNT);
}

/* The format byte of a sealed value (at least one byte long). */
int
SecretBoxFormat(const bytea *sealed)
{
	if (VARSIZE_ANY_EXHDR(sealed) < 1)
		return 0;
	return ((const unsigned char *) VARDATA_ANY(sealed))[0];
}

/* Open a sealed value; NULL when authentication fails.  See header. */
char *
SecretBoxOpen(const SecretBinding *b, const bytea *sealed, int *plain_len)
{
	uint8		key[KEYRING_KEY_BYTES];
	int			sealed_len = VARSIZE_ANY_EXHDR(sealed);
	const unsigned char *in = (const unsigned char *) VARDATA_ANY(sealed);
	const unsigned char *nonce = in + 1;
	const unsigned char *ct = nonce + SECRET_BOX_NONCE_BYTES;
	int			ct_len = sealed_len - SECRET_BOX_OVERHEAD;
	unsigned char *aad;
	int			aad_len;
	char	   *plain;
	unsigned char tag[SECRET_BOX_TAG_BYTES];
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *ctx;
	int			n = 0;
	int			fin = 0;
	int			format;
	bool		ok;

	if (!SecretBoxWellFormed(sealed))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored ciphertext of secret \"%.*s\" is malformed", b->name_len, b->name),
				 errhint("The row was changed outside pgext; store the secret again with pgext.secret_set()."),
				 errhidestmt(true)));
	format = in[0];
	/* 0x02 needs the account's salt; without it the key cannot exist */
	if (format == SECRET_BOX_FORMAT_ACCOUNT && (!b->has_account || b->salt == NULL))
		return NULL;
	aad_len = BuildAad(b, &aad);
	plain = palloc(ct_len + 1);
	memcpy(tag, ct + ct_len, SECRET_BOX_TAG_BYTES);
	cipher = AesGcm();
	BindingKey(b, format, key);

	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL &&
		EVP_DecryptInit_ex(ctx, cipher, NULL, key, nonce) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &fin, aad, aad_len) == 1 &&
		(ct_len == 0 ||
		 EVP_DecryptUpdate(ctx, (unsigned char *) plain, &n, ct, ct_len) == 1) &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRET_BOX_TAG_BYTES, tag) == 1 &&
		EVP_DecryptFinal_ex(ctx, (unsigned char *) plain + n, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	pfree(aad);
	if (!ok)
	{
		/* never hand out unauthenticated bytes */
		OPENSSL_cleanse(plain, ct_len + 1);
		pfree(plain);
		return NULL;
	}
	plain[ct_len] = '\0';
	*plain_len = ct_len;
	return plain;
}
