/*
 * salts.c — the key salts of accounts, read for every format 0x02 secret.
 *
 * An account's salt (pgext.secret_account_keys, box.h) is created with its
 * first secret and never changes; pgext.account_forget deletes it (with the
 * account's secrets, in one transaction), which destroys the account's keys.
 * Probing its primary key on every read cost a quarter of secret_get
 * (issue 14), so each backend caches account -> salt:
 *
 *  - in key memory (keyring.c: locked when the memlock limit allows, never
 *    in a core dump), a fixed table of SALT_CACHE_SETS sets of
 *    SALT_CACHE_WAYS slots, wiped at exit;
 *  - only salts that both the reading statement's snapshot and the latest
 *    snapshot see, inserted by a committed transaction (not the reader's
 *    own: it may still abort), and only when no invalidation arrived
 *    meanwhile: a repeatable-read transaction older than a forget may still
 *    read the forgotten salt (as before), but never puts it in the cache;
 *  - wiped whole (with every salted key the keyring cached) by any relcache
 *    invalidation of pgext.secret_account_keys or its key, or a relcache
 *    reset.  The triggers secret_account_keys_changed (for each row updated
 *    or deleted) and secret_account_keys_truncated (truncate) send one,
 *    committed with the change (and replayed on hot standbys); they are
 *    ENABLE ALWAYS, and a row trigger because logical replication's apply
 *    fires row triggers (in replica role) but no statement triggers.
 *    Inserts send none: a committed new salt makes no cached one stale, so
 *    an account's first secret does not make every backend re-read its
 *    salts.  Each read first processes pending invalidations
 *    (AcceptInvalidationMessages: a few loads when there are none), so a
 *    read whose statement starts after the deleting transaction's COMMIT
 *    returned never uses the deleted salt, even inside a transaction that
 *    holds its locks already.  Without those triggers (dropped or not
 *    enabled always) nothing is cached and every read probes the table.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "storage/ipc.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "secrets/keyring.h"
#include "secrets/salts.h"

PG_FUNCTION_INFO_V1(secret_account_keys_changed);

#define SALT_CACHE_SETS 512
#define SALT_CACHE_WAYS 8
#define SALT_CACHE_SIZE (SALT_CACHE_SETS * SALT_CACHE_WAYS)
#define SALTS_ROW_TRIGGER "secret_account_keys_changed"
#define SALTS_TRUNCATE_TRIGGER "secret_account_keys_truncated"

/* One cached salt. */
typedef struct SaltSlot
{
	bool		valid;
	uint32		hash;			/* of the account: compared first */
	pg_uuid_t	account;
	uint8		salt[KEYRING_SALT_BYTES];
} SaltSlot;

/*
 * Where pgext.secret_account_keys and its primary key are, resolved once per
 * backend (again after an invalidation of either), and whether its
 * invalidating trigger is in place (else nothing is cached).
 */
static struct
{
	bool		valid;
	Oid			relid;
	Oid			indexid;
	AttrNumber	att_account;
	AttrNumber	att_salt;
	bool		cacheable;
}			salts_rel;

static bool callback_registered = false;
static uint64 salts_inval_count = 0;	/* invalidations seen */
static SaltSlot *salt_cache = NULL; /* SALT_CACHE_SIZE slots, or NULL */
static bool salt_cache_failed = false;	/* mapping it failed: do not retry */
static bool salt_cache_dirty = false;	/* a slot may be valid */
static uint8 salt_cache_victim[SALT_CACHE_SETS];	/* round-robin per set */

/* Bytes of key memory the cache maps; see salts.h. */
Size
SecretSaltCacheBytes(void)
{
	return sizeof(SaltSlot) * SALT_CACHE_SIZE;
}

/* Wipe every cached salt (never errors: called from the callback below). */
static void
SaltCacheWipe(void)
{
	if (salt_cache != NULL && salt_cache_dirty)
		OPENSSL_cleanse(salt_cache, SecretSaltCacheBytes());
	salt_cache_dirty = false;
}

/* At exit: wipe the cache. */
static void
SaltCacheWipeAtExit(int code, Datum arg)
{
	SaltCacheWipe();
}

/*
 * Relcache callback: on an invalidation of secret_account_keys, its primary
 * key, or all relations, forget the resolved relation and wipe the salts and
 * the keyring's salted keys.
 */
static void
SaltsRelcacheCallback(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != salts_rel.relid && relid != salts_rel.indexid)
		return;
	salts_rel.valid = false;
	salts_inval_count++;
	SaltCacheWipe();
	KeyringForgetSaltedKeys();
}

/*
 * Whether the relation has the triggers that invalidate the cache, firing
 * always (in replica sessions too): one for each row updated or deleted, one
 * for truncate.
 */
static bool
SaltsTriggersInPlace(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;
	bool		row = false;
	bool		truncate = false;
	int			i;

	if (td == NULL)
		return false;
	for (i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgenabled != TRIGGER_FIRES_ALWAYS || t->tgnattr != 0 || t->tgqual != NULL)
			continue;
		if (strcmp(t->tgname, SALTS_ROW_TRIGGER) == 0 && TRIGGER_FOR_ROW(t->tgtype) &&
			TRIGGER_FOR_UPDATE(t->tgtype) && TRIGGER_FOR_DELETE(t->tgtype))
			row = true;
		if (strcmp(t->tgname, SALTS_TRUNCATE_TRIGGER) == 0 && TRIGGER_FOR_TRUNCATE(t->tgtype))
			truncate = true;
	}
	return row && truncate;
}

/* Resolve pgext.secret_account_keys, its primary key and triggers. */
static void
SaltsRelResolve(void)
{
	uint64		seen = salts_inval_count;
	Oid			nsp;
	Relation	rel;

	if (salts_rel.valid)
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(SaltsRelcacheCallback, (Datum) 0);
		callback_registered = true;
	}
	nsp = get_namespace_oid("pgext", false);
	salts_rel.relid = get_relname_relid("secret_account_keys", nsp);
	salts_rel.indexid = get_relname_relid("secret_account_keys_pkey", nsp);
	if (!OidIsValid(salts_rel.relid) || !OidIsValid(salts_rel.indexid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("pgext.secret_account_keys or its primary key is missing"),
				 errhint("Update the extension (ALTER EXTENSION pgext UPDATE).")));
	salts_rel.att_account = get_attnum(salts_rel.relid, "account_id");
	salts_rel.att_salt = get_attnum(salts_rel.relid, "salt");
	if (salts_rel.att_account == InvalidAttrNumber || salts_rel.att_salt == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("pgext.secret_account_keys lacks its account_id or salt column"),
				 errhint("The table was altered outside pgext; reinstall the extension.")));
	rel = table_open(salts_rel.relid, AccessShareLock);
	salts_rel.cacheable = SaltsTriggersInPlace(rel);
	table_close(rel, NoLock);
	/* an invalidation while resolving: resolve again next time */
	salts_rel.valid = seen == salts_inval_count;
}

/*
 * Read the salt of an account through the primary key under snapshot into
 * out; false when there is none (or it is malformed, which no key can use).
 * *own: whether this transaction inserted it (may be NULL).
 */
static bool
ReadSalt(const pg_uuid_t *account, Snapshot snapshot, uint8 *out, bool *own)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, salts_rel.att_account, BTEqualStrategyNumber,
				F_UUID_EQ, UUIDPGetDatum((pg_uuid_t *) account));
	rel = table_open(salts_rel.relid, AccessShareLock);
	scan = systable_beginscan(rel, salts_rel.indexid, true, snapshot, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, salts_rel.att_salt, RelationGetDescr(rel), &isnull);
		bytea	   *b = isnull ? NULL : DatumGetByteaPP(d);

		if (b != NULL && VARSIZE_ANY_EXHDR(b) == KEYRING_SALT_BYTES)
		{
			memcpy(out, VARDATA_ANY(b), KEYRING_SALT_BYTES);
			found = true;
			if (own != NULL)
				*own = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tup->t_data));
		}
	}
	systable_endscan(scan);
	table_close(rel, NoLock);
	return found;
}

/* Copy the cached salt of an account (hashed h) into out; false when not cached. */
static bool
SaltCacheGet(const pg_uuid_t *account, uint32 h, uint8 *out)
{
	SaltSlot   *set;
	int			way;

	if (salt_cache == NULL || !salt_cache_dirty)
		return false;
	set = &salt_cache[(h % SALT_CACHE_SETS) * SALT_CACHE_WAYS];
	for (way = 0; way < SALT_CACHE_WAYS; way++)
		if (set[way].valid && set[way].hash == h &&
			memcmp(set[way].account.data, account->data, UUID_LEN) == 0)
		{
			memcpy(out, set[way].salt, KEYRING_SALT_BYTES);
			return true;
		}
	return false;
}

/* Cache the salt of an account (hashed h): a free slot, or evict one (wiped). */
static void
SaltCachePut(const pg_uuid_t *account, uint32 h, const uint8 *salt)
{
	SaltSlot   *set;
	SaltSlot   *slot = NULL;
	int			way;

	if (salt_cache == NULL && !salt_cache_failed)
	{
		salt_cache = KeyringMapKeyMemory(SecretSaltCacheBytes());
		if (salt_cache == NULL)
			salt_cache_failed = true;
		else
			on_proc_exit(SaltCacheWipeAtExit, (Datum) 0);
	}
	if (salt_cache == NULL)
		return;
	set = &salt_cache[(h % SALT_CACHE_SETS) * SALT_CACHE_WAYS];
	for (way = 0; way < SALT_CACHE_WAYS && slot == NULL; way++)
		if (!set[way].valid)
			slot = &set[way];
	if (slot == NULL)
		slot = &set[salt_cache_victim[h % SALT_CACHE_SETS]++ % SALT_CACHE_WAYS];
	OPENSSL_cleanse(slot, sizeof(*slot));
	slot->hash = h;
	slot->account = *account;
	memcpy(slot->salt, salt, KEYRING_SALT_BYTES);
	slot->valid = true;
	salt_cache_dirty = true;
}

/* See salts.h. */
uint8 *
SecretSaltFind(const pg_uuid_t *account)
{
	uint8		salt[KEYRING_SALT_BYTES];
	uint8	   *out;
	uint32		h = hash_bytes(account->data, UUID_LEN);
	bool		found;

	/* changes committed before this call are seen (see the file comment) */
	AcceptInvalidationMessages();
	SaltsRelResolve();
	found = salts_rel.cacheable && SaltCacheGet(account, h, salt);
	if (!found)
	{
		found = ReadSalt(account, GetActiveSnapshot(), salt, NULL);
		/* cache it only if it is current, and nothing changed meanwhile */
		if (found && salts_rel.cacheable && salts_rel.valid && !salt_cache_failed)
		{
			uint64		seen = salts_inval_count;
			uint8		latest[KEYRING_SALT_BYTES];
			bool		own = false;
			Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
			bool		current = ReadSalt(account, snap, latest, &own);

			UnregisterSnapshot(snap);
			if (current && !own && seen == salts_inval_count &&
				memcmp(salt, latest, KEYRING_SALT_BYTES) == 0)
				SaltCachePut(account, h, salt);
			OPENSSL_cleanse(latest, sizeof(latest));
		}
	}
	if (!found)
		return NULL;
	out = palloc(KEYRING_SALT_BYTES);
	memcpy(out, salt, KEYRING_SALT_BYTES);
	OPENSSL_cleanse(salt, sizeof(salt));
	return out;
}

/*
 * secret_account_keys_changed(): trigger on pgext.secret_account_keys, for
 * each row updated or deleted and for truncate: every backend wipes its
 * cached salts (see the file comment).  Repeated calls in one command add
 * one message.
 */
Datum
secret_account_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgext.secret_account_keys_changed() must be called as a trigger"),
				 errhint("It is the trigger of pgext.secret_account_keys; do not call it directly.")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
