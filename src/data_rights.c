/*
 * data_rights.c — the Stripe customers of forgotten accounts, per backend.
 *
 * A Stripe event stored after its account was forgotten (a late delivery,
 * an event fetched by the sync) must not keep data.object's personal fields
 * (webhooks/payload.c).  Asking the database on every ingest cost ~5 us (a
 * trigger with a WHEN clause prepared at every executor start, a jsonb path
 * per row, a join); the set of forgotten customers changes only when an
 * account is forgotten.  So each backend keeps it here:
 *
 *  - loaded lazily, with one query, under the latest snapshot (never the
 *    transaction's: a REPEATABLE READ transaction that processed the
 *    invalidation of a newer forget would otherwise cache a set without it)
 *    and as the owner of pgext.account_forgets (row level security must not
 *    hide rows from the set every role in the backend then shares);
 *  - held in a child of CacheMemoryContext as a hash set, or no set at all
 *    when no forgotten account has a customer: then the check is a branch;
 *  - dropped by a relcache invalidation of pgext.account_forgets (or a
 *    relcache reset, relid InvalidOid).  A statement trigger on that table
 *    sends one for every change (account_forget, a restore, an operator's
 *    edit: account_forgets_changed below), and the writers of a forgotten
 *    account's pgext.accounts.stripe_customer_id call
 *    DataRightsForgottenChanged.  Other backends process it at their next
 *    transaction start (or lock), this one at its next command; a forget
 *    that aborts is undone locally by the same message.  An invalidation
 *    that arrives while the set loads makes the load start again.
 *
 * The callback only clears flags: it never errors and never frees memory a
 * load in progress may be using.  Concurrency: an ingest whose transaction
 * starts after a forget's commit has returned sees the forget; one running
 * while the forget commits may not (as with the trigger, whose statement
 * snapshot could not see an uncommitted forget either).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "data_rights.h"

PG_FUNCTION_INFO_V1(account_forgets_changed);

/* Loads that an invalidation interrupted before one is kept for this call only. */
#define FORGOTTEN_LOAD_TRIES 4

/* One forgotten customer id: its bytes (in forgotten_cxt) and length. */
typedef struct ForgottenKey
{
	const char *id;
	int			len;
} ForgottenKey;

static bool forgotten_callback_registered = false;
static bool forgotten_valid = false;	/* the set below matches the tables */
static uint64 forgotten_inval_count = 0;	/* invalidations seen, for loads */
static Oid	forgotten_relid = InvalidOid;	/* pgext.account_forgets when loaded */
static MemoryContext forgotten_cxt = NULL;	/* holds the set; NULL when empty */
static HTAB *forgotten_set = NULL;	/* NULL when no forgotten customer */

/* Relcache callback: drop the set on an invalidation of account_forgets or a reset. */
static void
ForgottenRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == forgotten_relid)
	{
		forgotten_valid = false;
		forgotten_inval_count++;
	}
}

/* Hash of a ForgottenKey: its bytes. */
static uint32
ForgottenKeyHash(const void *key, Size keysize)
{
	const ForgottenKey *k = (const ForgottenKey *) key;

	return hash_bytes((const unsigned char *) k->id, k->len);
}

/* Match two ForgottenKeys (0 = equal). */
static int
ForgottenKeyMatch(const void *key1, const void *key2, Size keysize)
{
	const ForgottenKey *a = (const ForgottenKey *) key1;
	const ForgottenKey *b = (const ForgottenKey *) key2;

	return a->len == b->len && memcmp(a->id, b->id, a->len) == 0 ? 0 : 1;
}

/*
 * pgext.account_forgets, its schema and owner, through the pgext extension's
 * schema (InvalidOid when the extension or the table is absent: not
 * installed in this database, or a 1.0 schema not yet updated).
 */
static Oid
ForgetsRelation(Oid *nsp, Oid *owner)
{
	Oid			ext = get_extension_oid("pgext", true);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			relid;

	*nsp = *owner = InvalidOid;
	if (!OidIsValid(ext))
		return InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		*nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(*nsp))
		return InvalidOid;
	relid = get_relname_relid("account_forgets", *nsp);
	if (OidIsValid(relid))
	{
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tup))
			return InvalidOid;
		*owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	return relid;
}

/*
 * Read the forgotten customers into a new context (a child of the current
 * one until the caller keeps it; NULL when there are none), as the owner of
 * account_forgets, under the latest snapshot.
 */
static MemoryContext
ForgottenQuery(Oid nsp, Oid owner, HTAB **set)
{
	const char *schema = quote_identifier(get_namespace_name(nsp));
	char	   *sql = psprintf("SELECT a.stripe_customer_id FROM %1$s.accounts a"
							   " JOIN %1$s.account_forgets f ON f.account_id OPERATOR(pg_catalog.=) a.id"
							   " WHERE a.stripe_customer_id IS NOT NULL", schema);
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt = NULL;
	Oid			save_userid;
	int			save_sec_context;
	SPIPlanPtr	plan;
	uint64		i;

	*set = NULL;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "pgext: preparing the forgotten customers query failed: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pgext: the forgotten customers query failed");
	if (SPI_processed > 0)
	{
		HASHCTL		ctl;

		cxt = AllocSetContextCreate(caller, "pgext forgotten customers", ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(ForgottenKey);
		ctl.entrysize = sizeof(ForgottenKey);
		ctl.hash = ForgottenKeyHash;
		ctl.match = ForgottenKeyMatch;
		ctl.hcxt = cxt;
		*set = hash_create("pgext forgotten customers", (long) SPI_processed, &ctl,
						   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			text	   *t;
			ForgottenKey k;

			if (isnull)
				continue;
			t = DatumGetTextPP(d);
			k.len = VARSIZE_ANY_EXHDR(t);
			k.id = MemoryContextAlloc(cxt, k.len + 1);
			memcpy((char *) k.id, VARDATA_ANY(t), k.len);
			((char *) k.id)[k.len] = '\0';
			(void) hash_search(*set, &k, HASH_ENTER, NULL);
		}
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return cxt;
}

/*
 * Make the set current: load it unless valid.  When account_forgets is
 * absent there is nothing to strip and nothing is cached (the next call
 * looks again: a 1.0 schema until ALTER EXTENSION UPDATE).
 */
static void
ForgottenEnsure(void)
{
	int			tries;

	if (forgotten_valid)
		return;
	if (!forgotten_callback_registered)
	{
		CacheRegisterRelcacheCallback(ForgottenRelcacheCallback, (Datum) 0);
		forgotten_callback_registered = true;
	}
	for (tries = 1;; tries++)
	{
		uint64		seen = forgotten_inval_count;
		Oid			nsp;
		Oid			owner;
		Oid			relid = ForgetsRelation(&nsp, &owner);
		MemoryContext cxt = NULL;
		HTAB	   *set = NULL;

		/* first, so that an invalidation during the query counts */
		forgotten_relid = relid;
		if (OidIsValid(relid))
			cxt = ForgottenQuery(nsp, owner, &set);
		if (forgotten_cxt != NULL)
			MemoryContextDelete(forgotten_cxt);
		if (cxt != NULL)
			MemoryContextSetParent(cxt, CacheMemoryContext);
		forgotten_cxt = cxt;
		forgotten_set = set;
		if (!OidIsValid(relid))
			return;
		if (seen == forgotten_inval_count)
		{
			forgotten_valid = true;
			return;
		}
		/* invalidated while loading: load again, or use this one for this call only */
		if (tries >= FORGOTTEN_LOAD_TRIES)
			return;
	}
}

/* Whether any account with a Stripe customer is forgotten (see data_rights.h). */
bool
DataRightsAnyForgotten(void)
{
	if (!forgotten_valid)
		ForgottenEnsure();
	return forgotten_set != NULL;
}

/* Whether the Stripe customer id is a forgotten account's (see data_rights.h). */
bool
DataRightsCustomerForgotten(const char *customer, int len)
{
	ForgottenKey k;

	if (!forgotten_valid)
		ForgottenEnsure();
	if (forgotten_set == NULL)
		return false;
	k.id = customer;
	k.len = len;
	return hash_search(forgotten_set, &k, HASH_FIND, NULL) != NULL;
}

/* Invalidate every backend's set (see data_rights.h). */
void
DataRightsForgottenChanged(void)
{
	Oid			nsp;
	Oid			owner;
	Oid			relid = ForgetsRelation(&nsp, &owner);

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

/*
 * account_forgets_changed(): statement trigger on pgext.account_forgets
 * (insert, update of account_id, delete, truncate): every backend drops
 * its set of forgotten customers (see the file comment).
 */
Datum
account_forgets_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgext.account_forgets_changed() must be called as a trigger"),
				 errhint("It is the statement trigger of pgext.account_forgets; do not call it directly.")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
