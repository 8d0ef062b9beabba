/*
 * secrets.c — encrypted secret storage: pgext.secret_* SQL functions.
 *
 * A secret is (account or NULL for the platform, name) -> value.  The value
 * is sealed with AES-256-GCM (secret_box.c) under the newest master key
 * version (keyring.c) before anything is written, so pgext.secrets, WAL and
 * backups only ever hold ciphertext.  The sealed value is bound to its row
 * (id, account, name, expiry, key version) through the AAD, so copying it to
 * another row fails loudly instead of decrypting.
 *
 * Every SQL entry point runs its body inside PG_TRY: whatever error is raised
 * underneath (ours, SPI's, a constraint's, a query cancel) is re-thrown with
 * the statement text hidden from the log (errhidestmt), because that text may
 * carry the plaintext as a literal, and every plaintext buffer pgext holds is
 * wiped on the way out (SensitiveTrack / SensitiveWipe).
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "access/detoast.h"
#include "access/xact.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#include "accounts.h"
#include "common/errcodes.h"
#include "pgext.h"
#include "keyring.h"
#include "secret_audit.h"
#include "secret_box.h"
#include "secret_logging.h"
#include "secrets.h"
#include "common/spi.h"
#include "common/subxact.h"

PG_FUNCTION_INFO_V1(secret_set);
PG_FUNCTION_INFO_V1(secret_get);
PG_FUNCTION_INFO_V1(secret_masked);
PG_FUNCTION_INFO_V1(secret_delete);
PG_FUNCTION_INFO_V1(secret_rewrap);
PG_FUNCTION_INFO_V1(secret_import_pgp);
PG_FUNCTION_INFO_V1(secret_key_versions);

#define SENSITIVE_MAX 8
#define MASK_MIN_CHARS 16		/* shorter values are masked completely */
#define MASK_SHOWN_CHARS 4
#define REWRAP_BATCH_MAX 100000	/* rows one secret_rewrap call may rewrap */
#define REWRAP_CHUNK 64			/* rows fetched (and held) at a time */
#define REWRAP_WARN_MAX 10		/* skipped rows warned about one by one */

/* Plaintext buffers to wipe when the current call ends, however it ends. */
static struct
{
	void	   *ptr;
	Size		len;
}			sensitive[SENSITIVE_MAX];
static int	nsensitive = 0;

/* A stored row, as read for decryption. */
typedef struct SecretRow
{
	SecretBinding b;
	bytea	   *sealed;
} SecretRow;

static PgextPlan plan_last4_account = {
	"SELECT id, last4 FROM pgext.secrets WHERE account_id = $1 AND name = $2",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_last4_platform = {
	"SELECT id, last4 FROM pgext.secrets WHERE account_id IS NULL AND name = $1",
	1, {TEXTOID}
};
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
static PgextPlan plan_delete_account = {
	"DELETE FROM pgext.secrets WHERE account_id = $1 AND name = $2 RETURNING id",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_delete_platform = {
	"DELETE FROM pgext.secrets WHERE account_id IS NULL AND name = $1 RETURNING id",
	1, {TEXTOID}
};
/*
 * The next rows to rewrap: keyset-paginated by (key_version, id) inside one
 * version range (below or above the encrypting version), so rows that were
 * skipped never come back within a call, and the index on (key_version, id)
 * is used for both bounds.
 */
static PgextPlan plan_rewrap_chunk = {
	"SELECT id, account_id, name, key_version, sealed, expires_at FROM pgext.secrets "
	"WHERE key_version >= $1 AND key_version <= $2 AND (key_version, id) > ($3, $4) "
	"ORDER BY key_version, id LIMIT $5 FOR UPDATE SKIP LOCKED",
	5, {INT4OID, INT4OID, INT4OID, UUIDOID, INT4OID}
};
static PgextPlan plan_pgcrypto_schema = {
	"SELECT n.nspname::text FROM pg_catalog.pg_extension e "
	"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'",
	0, {0}
};

/* Remember a plaintext buffer so SensitiveWipe() clears it. */
static void
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
static void
SensitiveWipe(void)
{
	while (nsensitive > 0)
	{
		nsensitive--;
		OPENSSL_cleanse(sensitive[nsensitive].ptr, sensitive[nsensitive].len);
	}
}

/*
 * In PG_CATCH: wipe plaintexts, then re-throw the error with the statement
 * text hidden from the server log.
 */
static void
RethrowHidingStatement(MemoryContext cxt)
{
	ErrorData  *edata;

	SensitiveWipe();
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	edata->hide_stmt = true;
	ReThrowError(edata);
}

/* Run a function body with the protections above. */
static Datum
RunGuarded(Datum (*body) (FunctionCallInfo), FunctionCallInfo fcinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum result = (Datum) 0;

	nsensitive = 0;
	PG_TRY();
	{
		result = body(fcinfo);
	}
	PG_CATCH();
	{
		RethrowHidingStatement(cxt);
	}
	PG_END_TRY();
	SensitiveWipe();
	return result;
}

/* The ellipsis that starts a mask (ASCII outside UTF-8 databases). */
static const char *
MaskPrefix(void)
{
	return GetDatabaseEncoding() == PG_UTF8 ? "\xe2\x80\xa6" : "...";
}

/* Validate and return the name argument (1..255 bytes). */
static text *
NameArg(FunctionCallInfo fcinfo, int argno)
{
	text	   *name;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("secret name must not be NULL"),
				 errhint("Name secrets like 'stripe:api_key' or 'openai:api_key'.")));
	name = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(name);
	if (len == 0 || len > SECRET_NAME_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret name must be 1 to %d bytes long, got %d",
						SECRET_NAME_MAX_BYTES, len),
				 errhint("Name secrets like 'stripe:api_key' or 'openai:api_key'.")));
	return name;
}

/* The optional account argument, or NULL for a platform secret. */
static pg_uuid_t *
OptionalAccountArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_UUID_P(argno);
}

/* Fill the name/account part of a binding. */
static void
BindingInit(SecretBinding *b, const text *name, const pg_uuid_t *account)
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
static char *
Owner(const SecretBinding *b)
{
	if (!b->has_account)
		return pstrdup("the platform (account NULL)");
	return psprintf("account %s",
					DatumGetCString(DirectFunctionCall1(uuid_out,
														UUIDPGetDatum((pg_uuid_t *) &b->account))));
}

/*
 * Refuse to change a platform secret (account NULL) unless the caller may:
 * a superuser or a role with the privileges of pgext_admin.  Platform secrets
 * (webhook:stripe, stripe:api_key, hetzner:api_token, ...) sign and pay for
 * the whole platform; pgext_secret_writer alone may change only tenant
 * secrets.  Checked before anything else happens (no decrypt, no lookup, so
 * a refusal says nothing about whether the secret exists) and audited as
 * outcome "denied".
 *
 * Who is the caller?  These functions are SECURITY DEFINER, so GetUserId()
 * here is the extension owner.  We use GetOuterUserId(): the session's
 * current role (SET ROLE moves it; RESET ROLE moves it back), which is not
 * changed by entering any SECURITY DEFINER function, and which no function
 * can raise: SET ROLE is refused inside a SECURITY DEFINER function, and a
 * "SET role" function option may only name roles the session user already
 * belongs to.  The secret audit records the same role.  Consequence when
 * called from inside another SECURITY DEFINER function: the right comes from
 * the session's role, never from that function's owner, so a wrapper owned
 * by an admin does not lend pgext_admin to whoever may call it (delegating
 * platform writes must be a visible GRANT pgext_admin), and a function owned
 * by a mere writer cannot write platform secrets except when an admin
 * session runs it (as with any code an admin chooses to run).  The
 * alternative, the role in effect at the call site (current_user there),
 * would need these functions to be SECURITY INVOKER and switch to the owner
 * by hand; not worth the risk for the wrapper case alone.
 */
static void
RequirePlatformRight(const text *name, const pg_uuid_t *account, SecretAuditOp op)
{
	Oid			caller = GetOuterUserId();
	Oid			admin;

	if (account != NULL || superuser_arg(caller))
		return;
	admin = get_role_oid("pgext_admin", true);
	if (OidIsValid(admin) && has_privs_of_role(caller, admin))
		return;
	SecretAuditCount(op, SECRET_OUTCOME_DENIED, NULL, NULL, VARDATA_ANY(name),
					 VARSIZE_ANY_EXHDR(name));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s platform secret \"%.*s\"",
					op == SECRET_OP_DELETE ? "delete" : op == SECRET_OP_IMPORT ? "import" :
					op == SECRET_OP_GET ? "read" : "set",
					(int) VARSIZE_ANY_EXHDR(name), VARDATA_ANY(name)),
			 op == SECRET_OP_GET ?
			 errdetail("Webhook signing secrets of the platform (\"webhook:...\") are read only by pgext itself and by members of pgext_admin; role \"%s\" may not read them.",
					   GetUserNameFromId(caller, false)) :
			 errdetail("Platform secrets (account NULL) may be changed only by members of pgext_admin; role \"%s\" may change tenant secrets only.",
					   GetUserNameFromId(caller, false)),
			 errhint("Run it as a member of pgext_admin (GRANT pgext_admin TO ...), or pass the tenant's account.")));
}

/*
 * A webhook signing secret ("webhook:..." of the platform)?  pgext verifies
 * signatures itself, so nobody outside needs to read these; a reader who
 * could would be able to sign its own deliveries (and mint credits).
 */
static bool
IsSigningSecretName(const text *name)
{
	return VARSIZE_ANY_EXHDR(name) >= 8 && memcmp(VARDATA_ANY(name), "webhook:", 8) == 0;
}

/* Error: the named secret does not exist (or its account does not). */
static void
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
			 errmsg("secret \"%.*s\" does not exist for %s", b->name_len, b->name, Owner(b)),
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
	secrets_rel.valid = true;
}

/*
 * Find a secret row through the (account_id, name) index under the active
 * snapshot.  The sealed value is copied (detoasted) into the current memory
 * context.  Returns false when there is none.
 */
static bool
FindSecret(const text *name, const pg_uuid_t *account, SecretRow *row)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		found = false;

	BindingInit(&row->b, name, account);
	SecretsRelResolve();
	if (account != NULL)
		ScanKeyInit(&keys[0], secrets_rel.att_account, BTEqualStrategyNumber,
					F_UUID_EQ, UUIDPGetDatum((pg_uuid_t *) account));
	else
		ScanKeyEntryInitialize(&keys[0], SK_ISNULL | SK_SEARCHNULL, secrets_rel.att_account,
							   InvalidStrategy, InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	ScanKeyEntryInitialize(&keys[1], 0, secrets_rel.att_name, BTEqualStrategyNumber,
						   InvalidOid, DEFAULT_COLLATION_OID, F_TEXTEQ, PointerGetDatum(name));

	rel = table_open(secrets_rel.relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, secrets_rel.indexid, true, GetActiveSnapshot(), 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Datum		d;

		found = true;
		row->b.id = *DatumGetUUIDP(heap_getattr(tup, secrets_rel.att_id, desc, &isnull));
		row->b.key_version = DatumGetInt32(heap_getattr(tup, secrets_rel.att_version, desc, &isnull));
		row->sealed = DatumGetByteaPCopy(heap_getattr(tup, secrets_rel.att_sealed, desc, &isnull));
		d = heap_getattr(tup, secrets_rel.att_expires, desc, &isnull);
		row->b.has_expires = !isnull;
		row->b.expires_at = isnull ? 0 : DatumGetTimestampTz(d);
	}
	systable_endscan(scan);
	table_close(rel, NoLock);	/* keep the lock to the end of the transaction */
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
				 errmsg("secret \"%.*s\" of %s has expired", b->name_len, b->name, Owner(b)),
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
						b->name_len, b->name, Owner(b), (int) b->key_version),
				 errhint("Make the command print key version %d again and restart the server; keep every old version until pgext.secret_rewrap() returns 0.",
						 (int) b->key_version)));
	}
	plain = SecretBoxOpen(b, row->sealed, len);
	if (plain == NULL)
	{
		SecretAuditCount(op, SECRET_OUTCOME_DECRYPT_FAILED, &b->id,
						 b->has_account ? &b->account : NULL, b->name, b->name_len);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("secret \"%.*s\" of %s cannot be decrypted: its ciphertext does not belong to this row or was altered",
						b->name_len, b->name, Owner(b)),
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
static char *
LookupAndOpen(const text *name, const pg_uuid_t *account, SecretAuditOp op,
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
	if (!FindSecret(name, account, &row))
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
 * Seal and store a value for (name, account) under the newest key: update
 * the existing row (keeping its id) or insert a new one.  SPI connected.
 */
static void
StoreSecret(const text *name, const pg_uuid_t *account, bool has_expires,
			TimestampTz expires_at, const char *plain, int len, pg_uuid_t *id_out)
{
	SecretBinding b;
	int			attempt;
	Datum		last4 = CStringGetTextDatum(Last4(plain, len));

	BindingInit(&b, name, account);
	b.key_version = KeyringEncryptVersion();
	b.has_expires = has_expires;
	b.expires_at = has_expires ? expires_at : 0;

	if (account != NULL &&
		PgextExec(&plan_account_exists, (Datum[]) {UUIDPGetDatum((pg_uuid_t *) account)},
				  NULL, 1) == 0)
		AccountNotFound(UUIDPGetDatum((pg_uuid_t *) account));

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
static void
CheckValueSize(Size len)
{
	if (len > SECRET_VALUE_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("secret value is %zu bytes; the limit is %d bytes", len, SECRET_VALUE_MAX_BYTES),
				 errhint("Store large material (certificates, files) elsewhere and keep only its key here.")));
}

/* Validate a value to store; returns its length. */
static int
CheckValue(const char *plain, int len)
{
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret value must not be empty"),
				 errhint("Use pgext.secret_delete() to remove a secret.")));
	CheckValueSize(len);
	if (memchr(plain, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("secret value must not contain NUL bytes")));
	return len;
}

/* Validate expires_at: must lie in the future. */
static void
CheckExpiresAt(FunctionCallInfo fcinfo, int argno, bool *has, TimestampTz *at)
{
	*has = false;
	*at = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return;
	*at = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(*at) || *at <= GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expires_at must be a finite time in the future"),
				 errhint("Pass NULL for a secret that never expires.")));
	*has = true;
}

/* Store a checked plaintext and audit it; returns the secret's id. */
static Datum
SetCommon(FunctionCallInfo fcinfo, const text *name, const pg_uuid_t *account,
		  const char *plain, int len, int expires_argno, SecretAuditOp op)
{
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	bool		has_expires;
	TimestampTz expires_at;

	CheckValue(plain, len);
	CheckExpiresAt(fcinfo, expires_argno, &has_expires, &expires_at);
	SPI_connect();
	StoreSecret(name, account, has_expires, expires_at, plain, len, id);
	SPI_finish();
	SecretAuditCount(op, SECRET_OUTCOME_OK, id, account, VARDATA_ANY(name),
					 VARSIZE_ANY_EXHDR(name));
	return UUIDPGetDatum(id);
}

/* Body of secret_set(name, value, account, expires_at). */
static Datum
SecretSetBody(FunctionCallInfo fcinfo)
{
	text	   *name;
	text	   *value;

	KeyringRequire();
	name = NameArg(fcinfo, 0);
	RequirePlatformRight(name, OptionalAccountArg(fcinfo, 2), SECRET_OP_SET);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("secret value must not be NULL"),
				 errhint("Use pgext.secret_delete() to remove a secret.")));
	/* refuse an oversize value before detoasting (and copying) all of it */
	if (toast_raw_datum_size(PG_GETARG_DATUM(1)) - VARHDRSZ > SECRET_VALUE_MAX_BYTES)
		CheckValueSize(toast_raw_datum_size(PG_GETARG_DATUM(1)) - VARHDRSZ);
	value = PG_GETARG_TEXT_PP(1);
	if ((Pointer) value != DatumGetPointer(PG_GETARG_DATUM(1)))
		SensitiveTrack(value, VARSIZE_ANY(value));	/* our detoasted copy */
	return SetCommon(fcinfo, name, OptionalAccountArg(fcinfo, 2), VARDATA_ANY(value),
					 VARSIZE_ANY_EXHDR(value), 3, SECRET_OP_SET);
}

/*
 * secret_set(name, value, account DEFAULT NULL, expires_at DEFAULT NULL)
 * RETURNS uuid: encrypt and store (insert or replace); returns the secret id,
 * which stays the same when a value is replaced.
 */
Datum
secret_set(PG_FUNCTION_ARGS)
{
	return RunGuarded(SecretSetBody, fcinfo);
}

/* Body of secret_get(name, account). */
static Datum
SecretGetBody(FunctionCallInfo fcinfo)
{
	text	   *name = NameArg(fcinfo, 0);
	pg_uuid_t  *account = OptionalAccountArg(fcinfo, 1);
	int			len;
	char	   *plain;

	if (account == NULL && IsSigningSecretName(name))
		RequirePlatformRight(name, account, SECRET_OP_GET);
	plain = LookupAndOpen(name, account, SECRET_OP_GET, false, false, &len);

	return PointerGetDatum(cstring_to_text_with_len(plain, len));
}

/*
 * secret_get(name, account DEFAULT NULL) RETURNS text: the decrypted value;
 * errors when it does not exist, has expired or cannot be decrypted.
 */
Datum
secret_get(PG_FUNCTION_ARGS)
{
	return RunGuarded(SecretGetBody, fcinfo);
}

/* Body of secret_masked(name, account). */
static Datum
SecretMaskedBody(FunctionCallInfo fcinfo)
{
	text	   *name = NameArg(fcinfo, 0);
	pg_uuid_t  *account = OptionalAccountArg(fcinfo, 1);
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext spi_cxt;
	SecretBinding b;
	char	   *last4;
	text	   *mask;
	bool		isnull;
	uint64		n;

	BindingInit(&b, name, account);
	SPI_connect();
	if (account != NULL)
		n = PgextExec(&plan_last4_account,
					  (Datum[]) {UUIDPGetDatum(account), PointerGetDatum(name)}, NULL, 1);
	else
		n = PgextExec(&plan_last4_platform, (Datum[]) {PointerGetDatum(name)}, NULL, 1);
	if (n == 0)
		SecretNotFound(&b, SECRET_OP_MASKED);
	b.id = *DatumGetUUIDP(PgextGetDatum(0, 1, &isnull));
	last4 = PgextGetText(0, 2);
	spi_cxt = MemoryContextSwitchTo(outer);
	mask = cstring_to_text(psprintf("%s%s", MaskPrefix(), last4));
	MemoryContextSwitchTo(spi_cxt);
	SPI_finish();
	SecretAuditCount(SECRET_OP_MASKED, SECRET_OUTCOME_OK, &b.id, account, b.name, b.name_len);
	return PointerGetDatum(mask);
}

/*
 * secret_masked(name, account DEFAULT NULL) RETURNS text: '…' plus the last
 * 4 characters of the value ('…7f3a'), or only '…' when the value is shorter
 * than 16 characters.  Decrypts nothing (see Last4), so writers may call it,
 * and it works on expired secrets too (to show which one expired).
 */
Datum
secret_masked(PG_FUNCTION_ARGS)
{
	return RunGuarded(SecretMaskedBody, fcinfo);
}

/* Body of secret_delete(name, account). */
static Datum
SecretDeleteBody(FunctionCallInfo fcinfo)
{
	text	   *name = NameArg(fcinfo, 0);
	pg_uuid_t  *account = OptionalAccountArg(fcinfo, 1);
	uint64		n;
	pg_uuid_t	id;
	bool		isnull;

	PgextRequirePreload("secrets");
	RequirePlatformRight(name, account, SECRET_OP_DELETE);
	SPI_connect();
	if (account != NULL)
		n = PgextExec(&plan_delete_account,
					  (Datum[]) {UUIDPGetDatum(account), PointerGetDatum(name)}, NULL, 0);
	else
		n = PgextExec(&plan_delete_platform, (Datum[]) {PointerGetDatum(name)}, NULL, 0);
	if (n > 0)
		id = *DatumGetUUIDP(PgextGetDatum(0, 1, &isnull));
	SPI_finish();
	SecretAuditCount(SECRET_OP_DELETE, n > 0 ? SECRET_OUTCOME_OK : SECRET_OUTCOME_NOT_FOUND,
					 n > 0 ? &id : NULL, account, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	return BoolGetDatum(n > 0);
}

/*
 * secret_delete(name, account DEFAULT NULL) RETURNS boolean: true when a
 * secret was deleted, false when there was none.  Needs no key.
 */
Datum
secret_delete(PG_FUNCTION_ARGS)
{
	return RunGuarded(SecretDeleteBody, fcinfo);
}

/* Read row i of the current chunk into *row (sealed value left toasted). */
static void
RewrapReadRow(SPITupleTable *rows, uint64 i, SecretRow *row, Datum *sealed)
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
}

/*
 * Rewrap one locked row to version target.  Returns SECRET_OUTCOME_OK, or
 * why it cannot be decrypted (KEY_MISSING, DECRYPT_FAILED) without raising:
 * one bad row must not abort the batch.  The plaintext is wiped before
 * returning; the caller frees everything by resetting the row context.
 */
static SecretAuditOutcome
RewrapRow(SecretRow *row, Datum sealed_datum, int32 target)
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
	sealed = SecretBoxSeal(&row->b, plain, len);
	SensitiveWipe();
	PgextExec(&plan_rewrap_update,
			  (Datum[]) {UUIDPGetDatum(&row->b.id), Int32GetDatum(target), PointerGetDatum(sealed)},
			  NULL, 0);
	return SECRET_OUTCOME_OK;
}

/* WARNING about a row secret_rewrap skipped; names it, never its value. */
static void
RewrapWarnSkipped(const SecretRow *row, SecretAuditOutcome outcome)
{
	const SecretBinding *b = &row->b;

	if (outcome == SECRET_OUTCOME_KEY_MISSING)
		ereport(WARNING,
				(errcode(PGEXT_ERRCODE_SECRET_KEY_MISSING),
				 errmsg("secret_rewrap skipped secret \"%.*s\" of %s: it is encrypted with master key version %d, which pgext.master_key_command did not provide",
						b->name_len, b->name, Owner(b), (int) b->key_version),
				 errhint("Make the command print key version %d again and restart the server, or store the secret again with pgext.secret_set().",
						 (int) b->key_version)));
	else
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("secret_rewrap skipped secret \"%.*s\" of %s: its ciphertext cannot be decrypted with master key version %d",
						b->name_len, b->name, Owner(b), (int) b->key_version),
				 errdetail("The row was altered or copied outside pgext, or the command prints a different key for that version."),
				 errhint("Store the secret again with pgext.secret_set(), or delete it with pgext.secret_delete().")));
}

/*
 * Body of secret_rewrap(batch).  Walks the rows under other versions in
 * (key_version, id) order, below the encrypting version first, then above
 * it, REWRAP_CHUNK rows at a time, until batch rows are rewrapped or none is
 * left.  A row that cannot be decrypted is skipped (WARNING, audited as
 * decrypt_failed or key_missing) and the walk goes on past it, so bad rows
 * never block the others, in this call or a later one.  Each row's
 * ciphertexts and plaintext live in a context reset after the row (the
 * plaintext wiped first); a chunk's fetched rows are freed after the chunk.
 */
static Datum
SecretRewrapBody(FunctionCallInfo fcinfo)
{
	int32		batch;
	int32		target;
	int32		done = 0;
	int32		skipped = 0;
	int			range;
	MemoryContext row_cxt;

	KeyringRequire();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("batch must not be NULL"),
				 errhint("Call pgext.secret_rewrap() (1000 rows) until it returns 0.")));
	batch = PG_GETARG_INT32(0);
	if (batch < 1 || batch > REWRAP_BATCH_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be between 1 and %d secrets, got %d", REWRAP_BATCH_MAX, batch),
				 errhint("Call pgext.secret_rewrap() (1000 rows) repeatedly until it returns 0; each call is one transaction.")));
	target = KeyringEncryptVersion();

	SPI_connect();
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgext secret_rewrap row",
									ALLOCSET_DEFAULT_SIZES);
	for (range = 0; range < 2 && done < batch; range++)
	{
		int32		lo = range == 0 ? 1 : target + 1;
		int32		hi = range == 0 ? target - 1 : PG_INT32_MAX;
		int32		last_version = 0;
		pg_uuid_t	last_id;

		if (lo > hi)
			continue;
		memset(&last_id, 0, sizeof(last_id));
		while (done < batch)
		{
			int32		want = Min(REWRAP_CHUNK, batch - done);
			uint64		n;
			uint64		i;
			SPITupleTable *rows;

			n = PgextExec(&plan_rewrap_chunk,
						  (Datum[]) {Int32GetDatum(lo), Int32GetDatum(hi),
						  Int32GetDatum(last_version), UUIDPGetDatum(&last_id),
						  Int32GetDatum(want)},
						  NULL, 0);
			rows = SPI_tuptable;
			for (i = 0; i < n; i++)
			{
				MemoryContext outer = MemoryContextSwitchTo(row_cxt);
				SecretRow	row;
				Datum		sealed;
				SecretAuditOutcome outcome;

				RewrapReadRow(rows, i, &row, &sealed);
				last_version = row.b.key_version;
				last_id = row.b.id;
				outcome = RewrapRow(&row, sealed, target);
				SecretAuditCount(SECRET_OP_REWRAP, outcome, &row.b.id,
								 row.b.has_account ? &row.b.account : NULL,
								 row.b.name, row.b.name_len);
				if (outcome == SECRET_OUTCOME_OK)
					done++;
				else if (++skipped <= REWRAP_WARN_MAX)
					RewrapWarnSkipped(&row, outcome);
				MemoryContextSwitchTo(outer);
				MemoryContextReset(row_cxt);
			}
			SPI_freetuptable(rows);
			if (n < (uint64) want)
				break;
		}
	}
	SPI_finish();
	if (skipped > REWRAP_WARN_MAX)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("secret_rewrap skipped %d more secrets that cannot be decrypted",
						skipped - REWRAP_WARN_MAX),
				 errhint("pgext.secret_audit (after pgext.secret_audit_flush()) lists each with op 'rewrap' and outcome 'decrypt_failed' or 'key_missing'.")));
	return Int32GetDatum(done);
}

/*
 * secret_rewrap(batch DEFAULT 1000) RETURNS integer: re-encrypt up to batch
 * secrets sealed under another key version with the encrypting one (the
 * newest, or pgext.secret_encrypt_version); returns how many.  Call until it
 * returns 0; then the other versions may be retired.  Rows
 * locked by concurrent writers are skipped (they get the newest key anyway);
 * readers are never blocked.  Rows that cannot be decrypted are skipped with
 * a WARNING each call and never counted, so 0 means "nothing more can be
 * rewrapped".  batch is 1..100000.
 */
Datum
secret_rewrap(PG_FUNCTION_ARGS)
{
	return RunGuarded(SecretRewrapBody, fcinfo);
}

/* Oid of pgcrypto's pgp_sym_decrypt(bytea, text), wherever it is installed. */
static Oid
PgcryptoDecryptFunction(void)
{
	char	   *schema;
	Oid			argtypes[2] = {BYTEAOID, TEXTOID};

	if (PgextExec(&plan_pgcrypto_schema, NULL, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pgcrypto is not installed in this database"),
				 errhint("Run CREATE EXTENSION pgcrypto.")));
	schema = PgextGetText(0, 1);
	return LookupFuncName(list_make2(makeString(schema), makeString("pgp_sym_decrypt")),
						  2, argtypes, false);
}

/* One pgp_sym_decrypt(ciphertext, passphrase) call, run in a subtransaction. */
typedef struct PgpDecryptCall
{
	Oid			fn;
	Datum		ciphertext;
	Datum		passphrase;
	Datum		result;
} PgpDecryptCall;

/* The SQLSTATE of the last error PgpDecryptRejected accepted. */
static int	pgp_rejected_code = 0;

/* Body for PgextTryInSubxact: call pgcrypto's pgp_sym_decrypt. */
static void
PgpDecryptRun(void *arg)
{
	PgpDecryptCall *call = (PgpDecryptCall *) arg;

	call->result = OidFunctionCall2Coll(call->fn, DEFAULT_COLLATION_OID,
										call->ciphertext, call->passphrase);
}

/*
 * Whether an error from pgp_sym_decrypt means "this ciphertext does not open
 * with this passphrase".  pgcrypto (contrib/pgcrypto/px.c px_THROW_ERROR,
 * pgp-pgsql.c decrypt_internal) raises 39000 (external routine invocation
 * exception) for a wrong key, corrupt or unsupported data ("Wrong key or
 * corrupt data", "Not text data", ...), and the text conversion of the result
 * raises class 22 (invalid byte sequence).  Everything else (a query cancel,
 * out of memory, a lock or serialization failure) is not about the
 * ciphertext and is re-thrown unchanged.  This filter is local for now; it
 * moves to the common classifier (src/common/subxact.c) when the lead consolidates.
 */
static bool
PgpDecryptRejected(int sqlerrcode)
{
	if (sqlerrcode == ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION)
	{
		pgp_rejected_code = sqlerrcode;
		return true;
	}
	return false;
}

/* Body of secret_import_pgp(name, ciphertext, passphrase, account, expires_at). */
static Datum
SecretImportPgpBody(FunctionCallInfo fcinfo)
{
	text	   *name;
	PgpDecryptCall call;
	char	   *reason;
	text	   *plain;

	KeyringRequire();
	name = NameArg(fcinfo, 0);
	RequirePlatformRight(name, OptionalAccountArg(fcinfo, 3), SECRET_OP_IMPORT);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ciphertext and passphrase must not be NULL")));
	SPI_connect();
	call.fn = PgcryptoDecryptFunction();
	SPI_finish();

	call.ciphertext = PG_GETARG_DATUM(1);
	call.passphrase = PG_GETARG_DATUM(2);
	call.result = (Datum) 0;
	pgp_rejected_code = 0;
	if (!PgextTryInSubxact(PgpDecryptRun, &call, PgpDecryptRejected, &reason))
	{
		/*
		 * pgcrypto's own messages (39000) are fixed strings; a class 22
		 * message may quote bytes of the decrypted value, so it is dropped.
		 */
		if (pgp_rejected_code != ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION)
			reason = "the decrypted value is not valid text in the database encoding";
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("could not decrypt the pgcrypto ciphertext for secret \"%s\": %s",
						text_to_cstring(name), reason ? reason : "decryption failed"),
				 errhint("Pass the passphrase the value was encrypted with by pgp_sym_encrypt().")));
	}
	plain = DatumGetTextPP(call.result);
	SensitiveTrack(plain, VARSIZE_ANY(plain));
	if ((Pointer) plain != DatumGetPointer(call.result))
		SensitiveTrack(DatumGetPointer(call.result), VARSIZE_ANY(DatumGetPointer(call.result)));
	return SetCommon(fcinfo, name, OptionalAccountArg(fcinfo, 3), VARDATA_ANY(plain),
					 VARSIZE_ANY_EXHDR(plain), 4, SECRET_OP_IMPORT);
}

/*
 * secret_import_pgp(name, ciphertext bytea, passphrase, account DEFAULT NULL,
 * expires_at DEFAULT NULL) RETURNS uuid: migrate a value encrypted with
 * pgcrypto's pgp_sym_encrypt(): decrypt it in memory and store it like
 * secret_set().  The plaintext never leaves this function.
 */
Datum
secret_import_pgp(PG_FUNCTION_ARGS)
{
	return RunGuarded(SecretImportPgpBody, fcinfo);
}

/* secret_key_versions() RETURNS integer[]: the loaded master key versions. */
Datum
secret_key_versions(PG_FUNCTION_ARGS)
{
	int32		versions[KEYRING_MAX_KEYS];
	Datum		elems[KEYRING_MAX_KEYS];
	int			n;
	int			i;

	KeyringRequire();
	n = KeyringVersions(versions, KEYRING_MAX_KEYS);
	for (i = 0; i < n; i++)
		elems[i] = Int32GetDatum(versions[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

/*
 * At postmaster start (shared_preload_libraries): shared memory for the
 * audit, the master keys, and the logging-settings warning.
 */
void
SecretsPreloadInit(void)
{
	SecretAuditInit();
	KeyringDefineGucs();
	KeyringLoad();
	SecretLoggingWarn();
}

/* Decrypt a secret for other pgext modules; see secrets.h. */
char *
SecretLookup(const char *name, const pg_uuid_t *account, bool missing_ok, int *len)
{
	text	   *name_text = cstring_to_text(name);
	char	   *plain;
	char	   *copy;

	if (strlen(name) == 0 || strlen(name) > SECRET_NAME_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret name must be 1 to %d bytes long", SECRET_NAME_MAX_BYTES)));
	nsensitive = 0;
	plain = LookupAndOpen(name_text, account, SECRET_OP_GET, missing_ok, false, len);
	if (plain == NULL)
		return NULL;
	/* hand the caller its own buffer; forget ours (the caller wipes it) */
	copy = palloc(*len + 1);
	memcpy(copy, plain, *len + 1);
	SensitiveWipe();
	return copy;
}
