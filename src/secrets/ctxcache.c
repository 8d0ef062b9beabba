/*
 * ctxcache.c — initialised AES-256-GCM decryption contexts per data key
 * (see ctxcache.h).
 *
 * 1024 sets of 4 slots (4096 keys, as many as the keyring's key cache),
 * keyed by a hash of (version, account, salt): 512 sets left ~13% of 1000
 * uniformly read accounts in overfull sets, missing on every pass.  The slot
 * array (256 KB) lives in TopMemoryContext, each context (about 1 KB) in
 * OpenSSL's heap, so a backend that reads 4096 accounts' secrets holds
 * about 4 MB of them.  An evicted context is freed with EVP_CIPHER_CTX_free,
 * which cleanses its key schedule; all of them are freed at process exit.
 * Master keys change only on a server restart (pgext.master_key_command is
 * postmaster-only), so there is no reload to invalidate on.  A forgotten
 * account's salt is never looked up again (the caller reads it with the
 * row), so its context is unreachable and freed on eviction or exit, like
 * the keyring's cached account key.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "secrets/ctxcache.h"
#include "secrets/keyring.h"

#define CTX_CACHE_SETS 1024
#define CTX_CACHE_WAYS 4

typedef struct CtxSlot
{
	EVP_CIPHER_CTX *ctx;		/* NULL: the slot is empty */
	int32		version;
	bool		has_account;
	bool		salted;
	pg_uuid_t	account;
	uint8		salt[KEYRING_SALT_BYTES];
} CtxSlot;

static CtxSlot *ctx_cache = NULL;	/* CTX_CACHE_SETS * CTX_CACHE_WAYS slots */
static uint8 ctx_cache_victim[CTX_CACHE_SETS];	/* round-robin per set */

/* At process exit: free (and so cleanse) every cached context. */
static void
CtxCacheFreeAtExit(int code, Datum arg)
{
	int			i;

	if (ctx_cache == NULL)
		return;
	for (i = 0; i < CTX_CACHE_SETS * CTX_CACHE_WAYS; i++)
	{
		EVP_CIPHER_CTX_free(ctx_cache[i].ctx);
		ctx_cache[i].ctx = NULL;
	}
}

/* The first slot of the set of (version, account, salt). */
static CtxSlot *
CtxSet(int32 version, const pg_uuid_t *account, const uint8 *salt, uint32 *set_no)
{
	uint32		h = (uint32) version * 2654435761U;

	if (account != NULL)
		h ^= hash_bytes(account->data, UUID_LEN);
	if (salt != NULL)
		h ^= hash_bytes(salt, KEYRING_SALT_BYTES);
	*set_no = h % CTX_CACHE_SETS;
	return &ctx_cache[*set_no * CTX_CACHE_WAYS];
}

/* Whether a slot holds the context of (version, account, salt). */
static bool
CtxSlotMatches(const CtxSlot *slot, int32 version, const pg_uuid_t *account,
			   const uint8 *salt)
{
	return slot->ctx != NULL && slot->version == version &&
		slot->has_account == (account != NULL) &&
		(account == NULL || memcmp(slot->account.data, account->data, UUID_LEN) == 0) &&
		slot->salted == (salt != NULL) &&
		(salt == NULL || memcmp(slot->salt, salt, KEYRING_SALT_BYTES) == 0);
}

/* The slot holding the context of the key, or NULL. */
static CtxSlot *
CtxFind(int32 version, const pg_uuid_t *account, const uint8 *salt)
{
	CtxSlot    *set;
	uint32		set_no;
	int			way;

	if (ctx_cache == NULL)
		return NULL;
	set = CtxSet(version, account, salt, &set_no);
	for (way = 0; way < CTX_CACHE_WAYS; way++)
		if (CtxSlotMatches(&set[way], version, account, salt))
			return &set[way];
	return NULL;
}

/* See ctxcache.h. */
EVP_CIPHER_CTX *
SecretCtxLookup(int32 version, const pg_uuid_t *account, const uint8 *salt)
{
	CtxSlot    *slot;

	if (ctx_cache == NULL)
	{
		ctx_cache = MemoryContextAllocZero(TopMemoryContext,
										   sizeof(CtxSlot) * CTX_CACHE_SETS * CTX_CACHE_WAYS);
		on_proc_exit(CtxCacheFreeAtExit, (Datum) 0);
	}
	slot = CtxFind(version, account, salt);
	return slot != NULL ? slot->ctx : NULL;
}

/* See ctxcache.h. */
void
SecretCtxStore(int32 version, const pg_uuid_t *account, const uint8 *salt,
			   EVP_CIPHER_CTX *ctx)
{
	CtxSlot    *set;
	CtxSlot    *slot = NULL;
	uint32		set_no;
	int			way;

	Assert(ctx_cache != NULL);	/* SecretCtxLookup came first */
	set = CtxSet(version, account, salt, &set_no);
	for (way = 0; way < CTX_CACHE_WAYS && slot == NULL; way++)
		if (set[way].ctx == NULL || CtxSlotMatches(&set[way], version, account, salt))
			slot = &set[way];
	if (slot == NULL)
		slot = &set[ctx_cache_victim[set_no]++ % CTX_CACHE_WAYS];
	EVP_CIPHER_CTX_free(slot->ctx);	/* evict: frees and cleanses; NULL is a no-op */
	memset(slot, 0, sizeof(*slot));
	slot->ctx = ctx;
	slot->version = version;
	slot->has_account = account != NULL;
	if (account != NULL)
		slot->account = *account;
	slot->salted = salt != NULL;
	if (salt != NULL)
		memcpy(slot->salt, salt, KEYRING_SALT_BYTES);
}

/* See ctxcache.h. */
void
SecretCtxDrop(int32 version, const pg_uuid_t *account, const uint8 *salt)
{
	CtxSlot    *slot = CtxFind(version, account, salt);

	if (slot == NULL)
		return;
	EVP_CIPHER_CTX_free(slot->ctx);
	memset(slot, 0, sizeof(*slot));
}
