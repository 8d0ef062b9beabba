/*
 * secrets.c — encrypted secret storage: pgext.secret_* SQL functions.
 *
 * A secret is (account or NULL for the platform, name) -> value.  The value
 * is sealed with AES-256-GCM (box.c) under the newest master key
 * version (keyring.c; account secrets also with the account's salt, format
 * 0x02) before anything is written, so pgext.secrets, WAL and
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

#include "accounts_scope.h"

#include "accounts.h"
#include "common/args.h"
#include "common/errcodes.h"
#include "common/guard.h"
#include "common/preload.h"
#include "common/searchpath.h"
#include "common/spi.h"
#include "common/subxact.h"
#include "secrets/audit.h"
#include "secrets/keyring.h"
#include "secrets/logging.h"
#include "secrets/secrets.h"
#include "secrets/store.h"

PG_FUNCTION_INFO_V1(secret_set);
PG_FUNCTION_INFO_V1(secret_get);
PG_FUNCTION_INFO_V1(secret_masked);
PG_FUNCTION_INFO_V1(secret_delete);
PG_FUNCTION_INFO_V1(secret_rewrap);
PG_FUNCTION_INFO_V1(secret_import_pgp);
PG_FUNCTION_INFO_V1(secret_key_versions);

#define REWRAP_BATCH_MAX 100000	/* rows one secret_rewrap call may rewrap */
#define REWRAP_CHUNK 64			/* rows fetched (and held) at a time */
#define REWRAP_WARN_MAX 10		/* skipped rows warned about one by one */

static PgextPlan plan_last4_account = {
	"SELECT id, last4 FROM pgext.secrets WHERE account_id = $1 AND name = $2",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_last4_platform = {
	"SELECT id, last4 FROM pgext.secrets WHERE account_id IS NULL AND name = $1",
	1, {TEXTOID}
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
	"SELECT s.id, s.account_id, s.name, s.key_version, s.sealed, s.expires_at, k.salt "
	"FROM pgext.secrets s LEFT JOIN pgext.secret_account_keys k ON k.account_id = s.account_id "
	"WHERE s.key_version >= $1 AND s.key_version <= $2 AND (s.key_version, s.id) > ($3, $4) "
	"AND ($6 OR (s.account_id IS NOT NULL AND pg_catalog.get_byte(s.sealed, 0) = 1)) "
	"ORDER BY s.key_version, s.id LIMIT $5 FOR UPDATE OF s SKIP LOCKED",
	6, {INT4OID, INT4OID, INT4OID, UUIDOID, INT4OID, BOOLOID}
};
/* The same on a 1.0 schema (no salts yet: ranges 0 and 1 only). */
static PgextPlan plan_rewrap_chunk_v10 = {
	"SELECT id, account_id, name, key_version, sealed, expires_at, NULL::pg_catalog.bytea "
	"FROM pgext.secrets "
	"WHERE key_version >= $1 AND key_version <= $2 AND (key_version, id) > ($3, $4) AND $6 "
	"ORDER BY key_version, id LIMIT $5 FOR UPDATE SKIP LOCKED",
	6, {INT4OID, INT4OID, INT4OID, UUIDOID, INT4OID, BOOLOID}
};
static PgextPlan plan_pgcrypto_schema = {
	"SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_extension e "
	"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'",
	0, {0}
};

/*
 * In PG_CATCH: wipe plaintexts, then re-throw the error with the statement
 * text hidden from the server log.
 */
static void
RethrowHidingStatement(MemoryContext cxt)
{
	SensitiveWipe();
	PgextRethrowHidingStatement(cxt);
}

/* Run a function body with the protections above. */
static Datum
RunGuarded(Datum (*body) (FunctionCallInfo), FunctionCallInfo fcinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum result = (Datum) 0;

	SensitiveReset();
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

/*
 * Validate and return the name argument: 1..255 bytes, not only blanks, no
 * control characters (names show in the audit, logs and messages).
 */
static text *
NameArg(FunctionCallInfo fcinfo, int argno)
{
	text	   *name;
	int			len;
	const unsigned char *p;
	bool		blank = true;

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
	p = (const unsigned char *) VARDATA_ANY(name);
	for (int i = 0; i < len; i++)
	{
		if (p[i] < 0x20 || p[i] == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("secret name must not contain control characters"),
					 errhint("Name secrets like 'stripe:api_key' or 'openai:api_key'.")));
		if (p[i] != ' ')
			blank = false;
	}
	if (blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret name must not be blank"),
				 errhint("Name secrets like 'stripe:api_key' or 'openai:api_key'.")));
	return name;
}

/*
 * The optional account argument, or NULL for a platform secret; checked
 * against the account the transaction acts for (a platform secret is refused
 * while bound).
 */
static pg_uuid_t *
OptionalAccountArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
	{
		AccountScopePlatform("a platform secret (account NULL)");
		return NULL;
	}
	AccountScopeCheck(PG_GETARG_DATUM(argno));
	return PG_GETARG_UUID_P(argno);
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

/* Store a checked plaintext and audit it; returns the secret's id. */
static Datum
SetCommon(FunctionCallInfo fcinfo, const text *name, const pg_uuid_t *account,
		  const char *plain, int len, int expires_argno, SecretAuditOp op)
{
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	bool		has_expires;
	TimestampTz expires_at = 0;

	SecretCheckValue(plain, len);
	has_expires = PgextExpiryArg(fcinfo, expires_argno, GetCurrentTimestamp(), false,
								 "Pass NULL for a secret that never expires.", &expires_at);
	SPI_connect();
	SecretStore(name, account, has_expires, expires_at, plain, len, id);
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
		SecretCheckValueSize(toast_raw_datum_size(PG_GETARG_DATUM(1)) - VARHDRSZ);
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
	plain = SecretLookupAndOpen(name, account, SECRET_OP_GET, false, false, &len);

	return PointerGetDatum(cstring_to_text_with_len(plain, len));
}

/*
 * secret_get(name, account DEFAULT NULL) RETURNS text: the decrypted value;
 * errors when it does not exist, has expired or cannot be decrypted.
 * Declared without SET search_path (the hot path, issue 14): the path is
 * pinned here instead (common/searchpath.h).
 */
Datum
secret_get(PG_FUNCTION_ARGS)
{
	Datum		result;

	PgextPinSearchPath(fcinfo);
	result = RunGuarded(SecretGetBody, fcinfo);
	PgextUnpinSearchPath();
	return result;
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

	SecretBindingInit(&b, name, account);
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
	Datum		result;

	PgextPinSearchPath(fcinfo);	/* declared without SET search_path */
	result = RunGuarded(SecretMaskedBody, fcinfo);
	PgextUnpinSearchPath();
	return result;
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

/* WARNING about a row secret_rewrap skipped; names it, never its value. */
static void
RewrapWarnSkipped(const SecretRow *row, SecretAuditOutcome outcome)
{
	const SecretBinding *b = &row->b;

	if (outcome == SECRET_OUTCOME_KEY_MISSING)
		ereport(WARNING,
				(errcode(PGEXT_ERRCODE_SECRET_KEY_MISSING),
				 errmsg("secret_rewrap skipped secret \"%.*s\" of %s: it is encrypted with master key version %d, which pgext.master_key_command did not provide",
						b->name_len, b->name, SecretOwner(b), (int) b->key_version),
				 errhint("Make the command print key version %d again and restart the server, or store the secret again with pgext.secret_set().",
						 (int) b->key_version)));
	else
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("secret_rewrap skipped secret \"%.*s\" of %s: its ciphertext cannot be decrypted with master key version %d",
						b->name_len, b->name, SecretOwner(b), (int) b->key_version),
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
	bool		salted;
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
	salted = AccountDataRightsInstalled();

	SPI_connect();
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgext secret_rewrap row",
									ALLOCSET_DEFAULT_SIZES);
	/*
	 * Ranges: versions below the target, above it, then account rows of the
	 * target version still in format 0x01 (written by 1.0), which get a salt.
	 */
	for (range = 0; range < 3 && done < batch; range++)
	{
		int32		lo = range == 0 ? 1 : range == 1 ? target + 1 : target;
		int32		hi = range == 0 ? target - 1 : range == 1 ? PG_INT32_MAX : target;
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

			n = PgextExec(salted ? &plan_rewrap_chunk : &plan_rewrap_chunk_v10,
						  (Datum[]) {Int32GetDatum(lo), Int32GetDatum(hi),
						  Int32GetDatum(last_version), UUIDPGetDatum(&last_id),
						  Int32GetDatum(want), BoolGetDatum(range < 2)},
						  NULL, 0);
			rows = SPI_tuptable;
			for (i = 0; i < n; i++)
			{
				MemoryContext outer = MemoryContextSwitchTo(row_cxt);
				SecretRow	row;
				Datum		sealed;
				SecretAuditOutcome outcome;

				SecretRewrapReadRow(rows, i, &row, &sealed);
				last_version = row.b.key_version;
				last_id = row.b.id;
				outcome = SecretRewrapRow(&row, sealed, target);
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

/* Body for PgextTryInSubxact: call pgcrypto's pgp_sym_decrypt. */
static void
PgpDecryptRun(void *arg)
{
	PgpDecryptCall *call = (PgpDecryptCall *) arg;

	call->result = OidFunctionCall2Coll(call->fn, DEFAULT_COLLATION_OID,
										call->ciphertext, call->passphrase);
}

/* Body of secret_import_pgp(name, ciphertext, passphrase, account, expires_at). */
static Datum
SecretImportPgpBody(FunctionCallInfo fcinfo)
{
	text	   *name;
	PgpDecryptCall call;
	char	   *reason;
	int			code;
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
	/* what pgp_sym_decrypt raises for this ciphertext: see PgextIsRoutineRejection */
	if (!PgextTryInSubxactCode(PgpDecryptRun, &call, PgextIsRoutineRejection, &reason, &code))
	{
		/*
		 * pgcrypto's own messages (39000) are fixed strings; a class 22
		 * message may quote bytes of the decrypted value, so it is dropped.
		 */
		if (code != ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION)
			reason = "the decrypted value is not valid text in the database encoding";
		ereport(ERROR,
				(errcode(PGEXT_ERRCODE_PGP_DECRYPT_FAILED),
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
 * Module load.  Only at postmaster start (shared_preload_libraries): shared
 * memory for the audit, the key settings and master keys, and the
 * logging-settings warning.  Loaded later, the secret functions refuse
 * (PgextRequirePreload).
 */
void
SecretsInit(void)
{
	if (!pgext_preloaded)
		return;
	SecretAuditInit();
	KeyringInit();
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
	SensitiveReset();
	plain = SecretLookupAndOpen(name_text, account, SECRET_OP_GET, missing_ok, false, len);
	if (plain == NULL)
		return NULL;
	/* hand the caller its own buffer; forget ours (the caller wipes it) */
	copy = palloc(*len + 1);
	memcpy(copy, plain, *len + 1);
	SensitiveWipe();
	return copy;
}
