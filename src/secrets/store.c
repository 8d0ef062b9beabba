/*
 * store.c — the stored form of secrets: the (account_id, name) index lookup
 * that secret_get and SecretLookup read through directly, the checks before
 * decrypting (expiry, key version), opening and sealing with box.c, writing
 * a sealed value, rewrapping one row, and the plaintext buffers of the
 * current call (SensitiveTrack / SensitiveWipe).
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "accounts.h"
#include "common/errcodes.h"
#include "common/spi.h"
#include "secrets/keyring.h"
#include "secrets/salts.h"
#include "secrets/secrets.h"
#include "secrets/store.h"

#define SENSITIVE_MAX 8
#define MASK_MIN_CHARS 16		/* shorter values are masked completely */
#define MASK_SHOWN_CHARS 4

/* Plaintext buffers to wipe when the current call ends, however it ends. */
static struct
{
	void	   *ptr;
	Size		len;
}			sensitive[SENSITIVE_MAX];
static int	nsensitive = 0;

static PgextPlan plan_lock_account_secret = {
	"SELECT id FROM pgext.secrets WHERE account_id = $1 AND name = $2 FOR UPDATE",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_lock_platform_secret = {
	"SELECT id FROM pgext.secrets WHERE account_id IS NULL AND name = $1 FOR UPDATE",
	1, {TEXTOID}
};
static PgextPlan plan_account_exists = {
	"SELECT 1 FROM pgext.accounts WHERE id = $1 FOR KEY SHARE",
	1, {UUIDOID}
};
/*
 * The account's salt and whether it was forgotten, read after the account
 * row is locked (FOR KEY SHARE, plan_account_exists) in a statement of its
 * own, so it sees a forget that committed while we waited for that lock.
 */
static PgextPlan plan_account_salt = {
	"SELECT k.salt, EXISTS (SELECT 1 FROM pgext.account_forgets f WHERE f.account_id = $1) "
	"FROM (SELECT 1) one LEFT JOIN pgext.secret_account_keys k ON k.account_id = $1",
	1, {UUIDOID}
};
static PgextPlan plan_salt_insert = {
	"INSERT INTO pgext.secret_account_keys (account_id, salt) VALUES ($1, $2) "
	"ON CONFLICT (account_id) DO NOTHING",
	2, {UUIDOID, BYTEAOID}
};
static PgextPlan plan_insert = {
	"INSERT INTO pgext.secrets (id, account_id, name, key_version, sealed, expires_at, last4) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT ON CONSTRAINT secrets_name_unique DO NOTHING",
	7, {UUIDOID, UUIDOID, TEXTOID, INT4OID, BYTEAOID, TIMESTAMPTZOID, TEXTOID}
};
static PgextPlan plan_update = {
	"UPDATE pgext.secrets SET key_version = $2, sealed = $3, expires_at = $4, last4 = $5, "
	"updated_at = pg_catalog.now() WHERE id = $1",
	5, {UUIDOID, INT4OID, BYTEAOID, TIMESTAMPTZOID, TEXTOID}
};
static PgextPlan plan_rewrap_update = {
	"UPDATE pgext.secrets SET key_version = $2, sealed = $3 WHERE id = $1",
	3, {UUIDOID, INT4OID, BYTEAOID}
};

/* Forget the tracked buffers (start of an SQL call; nothing to wipe yet). */
void
SensitiveReset(void)
{
	nsensitive = 0;
}

/* Remember a plaintext buffer so SensitiveWipe() clears it. */
void
SensitiveTrack(void *ptr, Size len)
{
	if (ptr == NULL || len == 0)
		return;
	if (nsensitive >= SENSITIVE_MAX)
	{
		OPENSSL_cleanse(ptr, len);
		elog(ERROR, "pgext: too many plaintext buffers in one call");
	}
	sensitive[nsensitive].ptr = ptr;
	sensitive[nsensitive].len = len;
	nsensitive++;
}

/* Wipe every tracked plaintext buffer. */
void
SensitiveWipe(void)
{
	while (nsensitive > 0)
	{
		nsensitive--;
		OPENSSL_cleanse(sensitive[nsensitive].ptr, sensitive[nsensitive].len);
	}
}

/* Fill the name/account part of a binding. */
void
SecretBindingInit(SecretBinding *b, const text *name, const pg_uuid_t *account)
{
	memset(b, 0, sizeof(*b));
	b->name = VARDATA_ANY(name);
	b->name_len = VARSIZE_ANY_EXHDR(name);
	if (account != NULL)
	{
		b->has_account = true;
		b->account = *account;
	}
}

/* Describe whose secret it is, for messages. */
char *
SecretOwner(const SecretBinding *b)
{
	if (!b->has_account)
		return pstrdup("the platform (account NULL)");
	return psprintf("account %s",
					DatumGetCString(DirectFunctionCall1(uuid_out,
														UUIDPGetDatum((pg_uuid_t *) &b->account))));
}

/* Error: the named secret does not exist (or its account does not). */
void
SecretNotFound(const SecretBinding *b, SecretAuditOp op)
{
	SecretAuditCount(op, SECRET_OUTCOME_NOT_FOUND, NULL,
					 b->has_account ? &b->account : NULL, b->name, b->name_len);
	if (b->has_account &&
		PgextExec(&plan_account_exists, (Datum[]) {UUIDPGetDatum((pg_uuid_t *) &b->account)},
				  NULL, 1) == 0)
		AccountNotFound(UUIDPGetDatum((pg_uuid_t *) &b->account));
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("secret \"%.*s\" does not exist for %s", b->name_len, b->name, SecretOwner(b)),
			 errhint("Store it first with pgext.secret_set().")));
}

/*
 * Where pgext.secrets and its (account_id, name) index are, resolved once per
 * backend and forgotten on any relcache invalidation of either (DROP/CREATE
 * EXTENSION, ALTER TABLE, ANALYZE).  secret_get reads through the index
 * directly instead of through SPI: it is the hot path.
 */
typedef struct SecretsRel
{
	bool		valid;
	Oid			relid;
	Oid			indexid;
	AttrNumber	att_id;
	AttrNumber	att_account;
	AttrNumber	att_name;
	AttrNumber	att_version;
	AttrNumber	att_sealed;
	AttrNumber	att_expires;
} SecretsRel;

static SecretsRel secrets_rel;

/* Relcache invalidation callback: forget the resolved relation. */
static void
SecretsRelInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == secrets_rel.relid || relid == secrets_rel.indexid)
		secrets_rel.valid = false;
}

/* Attribute number of a pgext.secrets column; errors when it is missing. */
static AttrNumber
SecretsAttnum(const char *column)
{
	AttrNumber	attno = get_attnum(secrets_rel.relid, column);

	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of pgext.secrets is missing", column),
				 errhint("The table was altered outside pgext; reinstall the extension.")));
	return attno;
}

/* Resolve pgext.secrets, its index and columns (once per backend). */
static void
SecretsRelResolve(void)
{
	static bool callback_registered = false;
	Oid			nsp;
	Relation	irel;

	if (secrets_rel.valid)
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(SecretsRelInvalidate, (Datum) 0);
		callback_registered = true;
	}
	nsp = get_namespace_oid("pgext", false);
	secrets_rel.relid = get_relname_relid("secrets", nsp);
	secrets_rel.indexid = get_relname_relid("secrets_name_unique", nsp);
	if (!OidIsValid(secrets_rel.relid) || !OidIsValid(secrets_rel.indexid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("pgext.secrets or its index secrets_name_unique is missing"),
				 errhint("Reinstall the extension (DROP EXTENSION pgext; CREATE EXTENSION pgext).")));
	secrets_rel.att_id = SecretsAttnum("id");
	secrets_rel.att_account = SecretsAttnum("account_id");
	secrets_rel.att_name = SecretsAttnum("name");
	secrets_rel.att_version = SecretsAttnum("key_version");
	secrets_rel.att_sealed = SecretsAttnum("sealed");
	secrets_rel.att_expires = SecretsAttnum("expires_at");
	/* SecretFindRow scans it with keys on its columns 1 and 2 */
	irel = index_open(secrets_rel.indexid, AccessShareLock);
	if (irel->rd_index->indnkeyatts != 2 ||
		irel->rd_index->indkey.values[0] != secrets_rel.att_account ||
		irel->rd_index->indkey.values[1] != secrets_rel.att_name)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("index pgext.secrets_name_unique is not on (account_id, name)"),
				 errhint("The table was altered outside pgext; reinstall the extension.")));
	index_close(irel, NoLock);
	secrets_rel.valid = true;
}

/*
 * Find a secret row through the (account_id, name) index under the active
 * snapshot (see store.h).  The sealed value is copied (detoasted) into the
 * current memory context.  Returns false when there is none.  Scans the
 * index directly (not systable_beginscan, which releases the index lock at
 * every end of scan): like the executor, it keeps both locks to the end of
 * the transaction, so later reads in it find them held.
 */
bool
SecretFindRow(const text *name, const pg_uuid_t *account, SecretRow *row)
{
	Relation	rel;
	Relation	irel;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	bool		isnull;
	bool		found = false;

	SecretBindingInit(&row->b, name, account);
	SecretsRelResolve();
	/* index columns: 1 account_id, 2 name (checked by SecretsRelResolve) */
	if (account != NULL)
		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber,
					F_UUID_EQ, UUIDPGetDatum((pg_uuid_t *) account));
	else
		ScanKeyEntryInitialize(&keys[0], SK_ISNULL | SK_SEARCHNULL, 1,
							   InvalidStrategy, InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber,
						   InvalidOid, DEFAULT_COLLATION_OID, F_TEXTEQ, PointerGetDatum(name));

	rel = table_open(secrets_rel.relid, AccessShareLock);
	irel = index_open(secrets_rel.indexid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, irel, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		Datum		d;

		found = true;
		row->b.id = *DatumGetUUIDP(slot_getattr(slot, secrets_rel.att_id, &isnull));
		row->b.key_version = DatumGetInt32(slot_getattr(slot, secrets_rel.att_version, &isnull));
		row->sealed = DatumGetByteaPCopy(slot_getattr(slot, secrets_rel.att_sealed, &isnull));
		d = slot_getattr(slot, secrets_rel.att_expires, &isnull);
		row->b.has_expires = !isnull;
		row->b.expires_at = isnull ? 0 : DatumGetTimestampTz(d);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(irel, NoLock);	/* keep the locks to the end of the transaction */
	table_close(rel, NoLock);
	if (found && account != NULL && SecretBoxFormat(row->sealed) == SECRET_BOX_FORMAT_ACCOUNT)
		row->b.salt = SecretSaltFind(account);
	return found;
}

/* Refuse an expired secret (checked before decrypting). */
static void
CheckNotExpired(const SecretBinding *b, SecretAuditOp op)
{
	if (b->has_expires && b->expires_at <= GetCurrentTimestamp())
	{
		SecretAuditCount(op, SECRET_OUTCOME_EXPIRED, &b->id,
						 b->has_account ? &b->account : NULL, b->name, b->name_len);
		ereport(ERROR,
				(errcode(PGEXT_ERRCODE_SECRET_EXPIRED),
				 errmsg("secret \"%.*s\" of %s has expired", b->name_len, b->name, SecretOwner(b)),
				 errhint("Store a new value with pgext.secret_set(); an expired secret is never returned.")));
	}
}

/*
 * Decrypt a row; errors (and audits) when its key version is not loaded or
 * authentication fails.  The result is tracked for wiping.
 */
static char *
OpenSecret(const SecretRow *row, SecretAuditOp op, int *len)
{
	const SecretBinding *b = &row->b;
	char	   *plain;

	if (!KeyringHasVersion(b->key_version))
	{
		SecretAuditCount(op, SECRET_OUTCOME_KEY_MISSING, &b->id,
						 b->has_account ? &b->account : NULL, b->name, b->name_len);
		ereport(ERROR,
				(errcode(PGEXT_ERRCODE_SECRET_KEY_MISSING),
				 errmsg("secret \"%.*s\" of %s is encrypted with master key version %d, which pgext.master_key_command did not provide",
						b->name_len, b->name, SecretOwner(b), (int) b->key_version),
				 errhint("Make the command print key version %d again and restart the server; keep every old version until pgext.secret_rewrap() returns 0.",
						 (int) b->key_version)));
	}
	plain = SecretBoxOpen(b, row->sealed, len);
	if (plain == NULL)
	{
		SecretAuditCount(op, SECRET_OUTCOME_DECRYPT_FAILED, &b->id,
						 b->has_account ? &b->account : NULL, b->name, b->name_len);
		if (SecretBoxFormat(row->sealed) == SECRET_BOX_FORMAT_ACCOUNT && b->salt == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("secret \"%.*s\" of %s cannot be decrypted: the account's key material was destroyed",
							b->name_len, b->name, SecretOwner(b)),
					 errdetail("The account has no row in pgext.secret_account_keys (pgext.account_forget removes it)."),
					 errhint("Delete the row; a forgotten account's secrets cannot be recovered.")));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("secret \"%.*s\" of %s cannot be decrypted: its ciphertext does not belong to this row or was altered",
						b->name_len, b->name, SecretOwner(b)),
				 errdetail("AES-256-GCM authentication failed with master key version %d.",
						   (int) b->key_version),
				 errhint("The row was copied or changed outside pgext, or the command prints a different key for version %d. Store the secret again with pgext.secret_set().",
						 (int) b->key_version)));
	}
	SensitiveTrack(plain, *len + 1);
	return plain;
}

/*
 * Find, check and decrypt (name, account) into a buffer in the caller's
 * context.  Returns NULL only when missing_ok and it does not exist.
 */
char *
SecretLookupAndOpen(const text *name, const pg_uuid_t *account, SecretAuditOp op,
			  bool missing_ok, bool allow_expired, int *len)
{
	SecretRow	row;
	char	   *plain;
	bool		pushed = false;

	KeyringRequire();
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	if (!SecretFindRow(name, account, &row))
	{
		if (pushed)
			PopActiveSnapshot();
		if (missing_ok)
			return NULL;
		SPI_connect();
		SecretNotFound(&row.b, op);
	}
	if (pushed)
		PopActiveSnapshot();
	if (!allow_expired)
		CheckNotExpired(&row.b, op);
	plain = OpenSecret(&row, op, len);
	SecretAuditCount(op, SECRET_OUTCOME_OK, &row.b.id,
					 row.b.has_account ? &row.b.account : NULL, row.b.name, row.b.name_len);
	return plain;
}

/*
 * The characters a mask may show: the last 4 of a value of at least 16
 * characters, nothing of a shorter one (last4 is stored in clear beside the
 * ciphertext: 4 characters of a 12-character value would be a third of it).
 * Stored in pgext.secrets.last4, so masking needs neither a key nor the
 * right to decrypt.
 */
static char *
Last4(const char *plain, int len)
{
	int			nchars = pg_mbstrlen_with_len(plain, len);
	const char *tail = plain;
	int			skip;

	if (nchars < MASK_MIN_CHARS)
		return pstrdup("");
	for (skip = nchars - MASK_SHOWN_CHARS; skip > 0; skip--)
		tail += pg_mblen(tail);
	return pnstrdup(tail, len - (tail - plain));
}

/* A fresh random (version 4) uuid. */
static void
RandomUuid(pg_uuid_t *id)
{
	if (!pg_strong_random(id->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random secret id")));
	id->data[6] = (id->data[6] & 0x0f) | 0x40;
	id->data[8] = (id->data[8] & 0x3f) | 0x80;
}

/*
 * The salt of an account (KEYRING_SALT_BYTES, palloc'd), created with
 * RAND_bytes on its first secret.  The account row must already be locked
 * FOR KEY SHARE (account_forget locks it FOR UPDATE, so the two never
 * interleave).  A forgotten account gets no new salt: 55000.  NULL on a 1.0
 * schema not yet updated (no pgext.secret_account_keys: seal as 0x01, which
 * secret_rewrap upgrades later).  SPI connected.
 */
uint8 *
SecretAccountSalt(const pg_uuid_t *account)
{
	Datum		acc = UUIDPGetDatum((pg_uuid_t *) account);
	int			attempt;

	if (!AccountDataRightsInstalled())
		return NULL;

	for (attempt = 0; attempt < 2; attempt++)
	{
		bool		isnull;
		bool		forgotten;
		Datum		d;
		bytea	   *salt;
		uint8		fresh[KEYRING_SALT_BYTES];
		bytea	   *fresh_bytea;

		PgextExec(&plan_account_salt, &acc, NULL, 1);
		d = PgextGetDatum(0, 1, &isnull);
		forgotten = DatumGetBool(PgextGetDatum(0, 2, &isnull));
		if (!PgextColIsNull(0, 1))
		{
			uint8	   *out = palloc(KEYRING_SALT_BYTES);

			salt = DatumGetByteaPP(d);
			if (VARSIZE_ANY_EXHDR(salt) != KEYRING_SALT_BYTES)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("the key salt of account %s is malformed",
								DatumGetCString(DirectFunctionCall1(uuid_out, acc))),
						 errhint("The row of pgext.secret_account_keys was changed outside pgext.")));
			memcpy(out, VARDATA_ANY(salt), KEYRING_SALT_BYTES);
			return out;
		}
		if (forgotten)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("account %s was forgotten (pgext.account_forget): it stores no secrets",
							DatumGetCString(DirectFunctionCall1(uuid_out, acc))),
					 errhint("Create a new account for a returning customer.")));
		if (RAND_bytes(fresh, KEYRING_SALT_BYTES) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("OpenSSL could not generate a random key salt")));
		fresh_bytea = palloc(VARHDRSZ + KEYRING_SALT_BYTES);
		SET_VARSIZE(fresh_bytea, VARHDRSZ + KEYRING_SALT_BYTES);
		memcpy(VARDATA(fresh_bytea), fresh, KEYRING_SALT_BYTES);
		PgextExec(&plan_salt_insert, (Datum[]) {acc, PointerGetDatum(fresh_bytea)}, NULL, 0);
		/* read it back: a concurrent first secret_set may have won */
	}
	elog(ERROR, "pgext: could not create the key salt of an account");
	return NULL;				/* keep the compiler quiet */
}

/*
 * Seal and store a value for (name, account) under the newest key: update
 * the existing row (keeping its id) or insert a new one.  SPI connected.
 */
void
SecretStore(const text *name, const pg_uuid_t *account, bool has_expires,
			TimestampTz expires_at, const char *plain, int len, pg_uuid_t *id_out)
{
	SecretBinding b;
	int			attempt;
	Datum		last4 = CStringGetTextDatum(Last4(plain, len));

	SecretBindingInit(&b, name, account);
	b.key_version = KeyringEncryptVersion();
	b.has_expires = has_expires;
	b.expires_at = has_expires ? expires_at : 0;

	if (account != NULL &&
		PgextExec(&plan_account_exists, (Datum[]) {UUIDPGetDatum((pg_uuid_t *) account)},
				  NULL, 1) == 0)
		AccountNotFound(UUIDPGetDatum((pg_uuid_t *) account));
	if (account != NULL)
		b.salt = SecretAccountSalt(account);

	/* Two rounds suffice: an insert loses a race only to a committed row. */
	for (attempt = 0; attempt < 3; attempt++)
	{
		uint64		n;
		bytea	   *sealed;
		Datum		expires = TimestampTzGetDatum(expires_at);
		char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		if (account != NULL)
			n = PgextExec(&plan_lock_account_secret,
						  (Datum[]) {UUIDPGetDatum((pg_uuid_t *) account), PointerGetDatum(name)},
						  NULL, 1);
		else
			n = PgextExec(&plan_lock_platform_secret, (Datum[]) {PointerGetDatum(name)}, NULL, 1);
		if (n == 1)
		{
			bool		isnull;

			b.id = *DatumGetUUIDP(PgextGetDatum(0, 1, &isnull));
			sealed = SecretBoxSeal(&b, plain, len);
			PgextExec(&plan_update,
					  (Datum[]) {UUIDPGetDatum(&b.id), Int32GetDatum(b.key_version),
					  PointerGetDatum(sealed), expires, last4},
					  has_expires ? "     " : "   n ", 0);
			*id_out = b.id;
			return;
		}
		RandomUuid(&b.id);
		sealed = SecretBoxSeal(&b, plain, len);
		if (account == NULL)
			nulls[1] = 'n';
		if (!has_expires)
			nulls[5] = 'n';
		n = PgextExec(&plan_insert,
					  (Datum[]) {UUIDPGetDatum(&b.id),
					  account ? UUIDPGetDatum((pg_uuid_t *) account) : (Datum) 0,
					  PointerGetDatum(name), Int32GetDatum(b.key_version),
					  PointerGetDatum(sealed), expires, last4},
					  nulls, 0);
		if (n == 1)
		{
			*id_out = b.id;
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not store secret \"%.*s\": it is being created and deleted concurrently",
					b.name_len, b.name),
			 errhint("Retry the call.")));
}

/* Refuse a value over the size limit. */
void
SecretCheckValueSize(Size len)
{
	if (len > SECRET_VALUE_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("secret value is %zu bytes; the limit is %d bytes", len, SECRET_VALUE_MAX_BYTES),
				 errhint("Store large material (certificates, files) elsewhere and keep only its key here.")));
}

/* Validate a value to store; returns its length. */
int
SecretCheckValue(const char *plain, int len)
{
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret value must not be empty"),
				 errhint("Use pgext.secret_delete() to remove a secret.")));
	SecretCheckValueSize(len);
	if (memchr(plain, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("secret value must not contain NUL bytes")));
	return len;
}

/* Read row i of the current chunk into *row (sealed value left toasted). */
void
SecretRewrapReadRow(SPITupleTable *rows, uint64 i, SecretRow *row, Datum *sealed)
{
	TupleDesc	desc = rows->tupdesc;
	HeapTuple	tup = rows->vals[i];
	bool		isnull;
	text	   *name;
	Datum		d;

	memset(row, 0, sizeof(*row));
	row->b.id = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	if (!isnull)
	{
		row->b.has_account = true;
		row->b.account = *DatumGetUUIDP(d);
	}
	name = DatumGetTextPP(SPI_getbinval(tup, desc, 3, &isnull));
	row->b.name = VARDATA_ANY(name);
	row->b.name_len = VARSIZE_ANY_EXHDR(name);
	row->b.key_version = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
	*sealed = SPI_getbinval(tup, desc, 5, &isnull);
	d = SPI_getbinval(tup, desc, 6, &isnull);
	row->b.has_expires = !isnull;
	row->b.expires_at = isnull ? 0 : DatumGetTimestampTz(d);
	/* column 7: the account's salt, joined in the chunk query */
	d = SPI_getbinval(tup, desc, 7, &isnull);
	if (!isnull && VARSIZE_ANY_EXHDR(DatumGetByteaPP(d)) == KEYRING_SALT_BYTES)
	{
		uint8	   *salt = palloc(KEYRING_SALT_BYTES);

		memcpy(salt, VARDATA_ANY(DatumGetByteaPP(d)), KEYRING_SALT_BYTES);
		row->b.salt = salt;
	}
}

/*
 * Rewrap one locked row to version target (and an account's 0x01 row to
 * 0x02, under the same version too).  Returns SECRET_OUTCOME_OK, or
 * why it cannot be decrypted (KEY_MISSING, DECRYPT_FAILED) without raising:
 * one bad row must not abort the batch.  The plaintext is wiped before
 * returning; the caller frees everything by resetting the row context.
 */
SecretAuditOutcome
SecretRewrapRow(SecretRow *row, Datum sealed_datum, int32 target)
{
	char	   *plain;
	int			len;
	bytea	   *sealed;

	if (!KeyringHasVersion(row->b.key_version))
		return SECRET_OUTCOME_KEY_MISSING;	/* not even detoasted */
	row->sealed = DatumGetByteaPP(sealed_datum);
	if (!SecretBoxWellFormed(row->sealed))
		return SECRET_OUTCOME_DECRYPT_FAILED;
	plain = SecretBoxOpen(&row->b, row->sealed, &len);
	if (plain == NULL)
		return SECRET_OUTCOME_DECRYPT_FAILED;
	SensitiveTrack(plain, len + 1);
	row->b.key_version = target;
	/* account rows are (re)sealed as 0x02, with a salt created if need be */
	if (row->b.has_account && row->b.salt == NULL)
	{
		if (PgextExec(&plan_account_exists, (Datum[]) {UUIDPGetDatum(&row->b.account)},
					  NULL, 1) == 0)
			AccountNotFound(UUIDPGetDatum(&row->b.account));
		row->b.salt = SecretAccountSalt(&row->b.account);
	}
	sealed = SecretBoxSeal(&row->b, plain, len);
	SensitiveWipe();
	PgextExec(&plan_rewrap_update,
			  (Datum[]) {UUIDPGetDatum(&row->b.id), Int32GetDatum(target), PointerGetDatum(sealed)},
			  NULL, 0);
	return SECRET_OUTCOME_OK;
}
