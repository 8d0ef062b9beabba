/*
 * drop_guard.c — refuse to drop pgext while it holds money or keys.
 *
 * DROP EXTENSION pgext deletes every table of the extension in one statement:
 * balances, the ledger, the encrypted secrets and the billing state.  A
 * ProcessUtility hook refuses the statements that would drop the extension
 * while it holds any of
 *   - an account with a nonzero balance, or any credit_ledger row,
 *   - a secret,
 *   - a Stripe subscription or purchase (paid access is recorded only here),
 *   - a webhook event not yet processed (pending, dead, or received and not
 *     yet claimed): its effect would be lost,
 *   - a server not deleted: it may still run (and cost money) at Hetzner, and
 *     pgext's record is the only link to it.
 * Settled webhook events (applied, superseded, ignored, claimed), rejections,
 * prices, sources, the outbox and the secret audit do not block on their own:
 * they are dedup records, configuration or history whose effects live in the
 * tables above.  An empty install drops without ceremony.
 *
 * The statements guarded: DROP EXTENSION pgext; DROP EXTENSION <one pgext
 * requires> CASCADE; DROP SCHEMA <pgext's schema, or that of an extension
 * pgext requires> CASCADE; DROP OWNED BY <pgext's owner> (and, with CASCADE,
 * by the owner of such a schema or extension).  DROP DATABASE is not guarded.
 *
 * To drop deliberately, set pgext.confirm_drop in the same transaction:
 *   BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext; COMMIT;
 * A value set in an earlier transaction (a session SET, postgresql.conf,
 * ALTER ROLE ... SET) does not count, so the guard cannot be switched off
 * for good by accident.
 *
 * Any other statement costs one node-tag test; no catalog access and no SPI
 * unless the statement is one of the DROPs above and pgext is installed in
 * the current database.  The hook is installed when the library is loaded,
 * so it is always active when pgext is preloaded (the supported setup).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "drop_guard.h"

#define PGEXT_EXTENSION_NAME "pgext"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* pgext.confirm_drop, and the local transaction in which it was turned on. */
static bool confirm_drop = false;
static LocalTransactionId confirm_lxid = InvalidLocalTransactionId;

/*
 * Remember in which transaction pgext.confirm_drop was turned on.  Values
 * assigned outside a running transaction (configuration file, reload) and
 * values that survive into a later transaction never match the current one.
 */
static void
ConfirmDropAssign(bool newval, void *extra)
{
	if (newval && MyProc != NULL && IsTransactionState())
		confirm_lxid = MyProc->lxid;
	else
		confirm_lxid = InvalidLocalTransactionId;
}

/* Whether the drop was confirmed in the current transaction. */
static bool
DropConfirmed(void)
{
	return confirm_drop && MyProc != NULL &&
		confirm_lxid != InvalidLocalTransactionId && confirm_lxid == MyProc->lxid;
}

/* Owner and schema of an extension (InvalidOid for both if it vanished). */
static void
ExtensionInfo(Oid ext, Oid *owner, Oid *nsp)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	*owner = *nsp = InvalidOid;
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
		*nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* Owner of an extension (InvalidOid if it vanished). */
static Oid
ExtensionOwner(Oid ext)
{
	Oid			owner,
				nsp;

	ExtensionInfo(ext, &owner, &nsp);
	return owner;
}

/* Schema of an extension (InvalidOid if it vanished). */
static Oid
ExtensionSchema(Oid ext)
{
	Oid			owner,
				nsp;

	ExtensionInfo(ext, &owner, &nsp);
	return nsp;
}

/* Owner of a schema (InvalidOid if it vanished). */
static Oid
NamespaceOwner(Oid nsp)
{
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner = InvalidOid;

	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	return owner;
}

/* The extensions pgext requires (pg_depend rows from pgext to an extension). */
static List *
RequiredExtensions(Oid ext)
{
	Relation	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, DependDependerIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->refclassid == ExtensionRelationId)
			result = lappend_oid(result, dep->refobjid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/* Whether schema nsp holds pgext or an extension pgext requires. */
static bool
SchemaHoldsPgext(Oid nsp, Oid ext, List *required)
{
	ListCell   *lc;

	if (!OidIsValid(nsp))
		return false;
	if (nsp == ExtensionSchema(ext))
		return true;
	foreach(lc, required)
	{
		if (nsp == ExtensionSchema(lfirst_oid(lc)))
			return true;
	}
	return false;
}

/* Whether role owns pgext, or (cascade) a schema or extension it depends on. */
static bool
RoleOwnsPgext(Oid role, Oid ext, List *required, bool cascade)
{
	ListCell   *lc;

	if (!OidIsValid(role))
		return false;
	if (role == ExtensionOwner(ext))
		return true;
	if (!cascade)
		return false;
	if (role == NamespaceOwner(ExtensionSchema(ext)))
		return true;
	foreach(lc, required)
	{
		Oid			req = lfirst_oid(lc);

		if (role == ExtensionOwner(req) || role == NamespaceOwner(ExtensionSchema(req)))
			return true;
	}
	return false;
}

/*
 * Whether the statement would drop pgext; sets *ext to its oid.  Only the
 * node tag is looked at unless the statement is a DROP that could.
 */
static bool
DropsPgext(Node *parsetree, Oid *ext)
{
	List	   *required;
	ListCell   *lc;

	if (IsA(parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) parsetree;

		if (stmt->removeType != OBJECT_EXTENSION &&
			!(stmt->removeType == OBJECT_SCHEMA && stmt->behavior == DROP_CASCADE))
			return false;
	}
	else if (!IsA(parsetree, DropOwnedStmt))
		return false;

	*ext = get_extension_oid(PGEXT_EXTENSION_NAME, true);
	if (!OidIsValid(*ext))
		return false;
	required = RequiredExtensions(*ext);

	if (IsA(parsetree, DropOwnedStmt))
	{
		DropOwnedStmt *stmt = (DropOwnedStmt *) parsetree;

		foreach(lc, stmt->roles)
		{
			if (RoleOwnsPgext(get_rolespec_oid(lfirst(lc), true), *ext, required,
							  stmt->behavior == DROP_CASCADE))
				return true;
		}
		return false;
	}

	foreach(lc, ((DropStmt *) parsetree)->objects)
	{
		DropStmt   *stmt = (DropStmt *) parsetree;
		const char *name = strVal(lfirst(lc));

		if (stmt->removeType == OBJECT_EXTENSION)
		{
			if (strcmp(name, PGEXT_EXTENSION_NAME) == 0)
				return true;
			if (stmt->behavior == DROP_CASCADE &&
				list_member_oid(required, get_extension_oid(name, true)))
				return true;
		}
		else if (SchemaHoldsPgext(get_namespace_oid(name, true), *ext, required))
			return true;
	}
	return false;
}

/*
 * Count what a drop would delete, as the extension's owner with a pinned
 * search_path; refuse with the counts unless confirmed.
 */
static void
CheckDropAllowed(Oid ext, Node *parsetree)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	const char *schema;
	char	   *sql;
	char	   *n[8];
	bool		holds = false;
	MemoryContext caller_cxt = CurrentMemoryContext;

	schema = quote_identifier(get_namespace_name(ExtensionSchema(ext)));
	sql = psprintf("SELECT (SELECT pg_catalog.count(*) FROM %1$s.accounts"
				   "         WHERE balance OPERATOR(pg_catalog.<>) 0),"
				   "       (SELECT COALESCE(pg_catalog.sum(balance), 0) FROM %1$s.accounts),"
				   "       (SELECT pg_catalog.count(*) FROM %1$s.credit_ledger),"
				   "       (SELECT pg_catalog.count(*) FROM %1$s.secrets),"
				   "       (SELECT pg_catalog.count(*) FROM %1$s.stripe_subscriptions),"
				   "       (SELECT pg_catalog.count(*) FROM %1$s.stripe_purchases),"
				   "       (SELECT pg_catalog.count(*) FROM %1$s.webhook_events"
				   "         WHERE status OPERATOR(pg_catalog.=) ANY"
				   "               ('{pending,dead,received}'::pg_catalog.text[])),"
				   "       (SELECT pg_catalog.count(*) FROM %1$s.servers"
				   "         WHERE state OPERATOR(pg_catalog.<>) 'deleted')",
				   schema);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(ExtensionOwner(ext),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pgext drop guard: counting query failed");
	for (int i = 0; i < 8; i++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);

		/* copied to the caller's context: SPI_finish frees the SPI one */
		n[i] = MemoryContextStrdup(caller_cxt, v ? v : "0");
		/* column 2 is the credits' sum, implied by column 1 */
		if (i != 1 && strcmp(n[i], "0") != 0)
			holds = true;
	}
	SPI_finish();

	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (!holds)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 strcmp(n[7], "0") == 0 ?
			 errmsg("%s would drop extension pgext, which still holds credits, secrets or billing state",
					GetCommandTagName(CreateCommandTag(parsetree))) :
			 errmsg("%s would drop extension pgext, which still holds credits, secrets, billing state or servers",
					GetCommandTagName(CreateCommandTag(parsetree))),
			 strcmp(n[7], "0") == 0 ?
			 errdetail("It would delete %s accounts with a nonzero balance (%s credits in all), "
					   "%s ledger entries, %s secrets, %s subscriptions, %s purchases "
					   "and %s webhook events not yet processed.",
					   n[0], n[1], n[2], n[3], n[4], n[5], n[6]) :
			 errdetail("It would delete %s accounts with a nonzero balance (%s credits in all), "
					   "%s ledger entries, %s secrets, %s subscriptions, %s purchases, "
					   "%s webhook events not yet processed, and the record of %s servers "
					   "not deleted, which may still run at Hetzner.",
					   n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]),
			 errhint("Back up first (pg_dump, and the master keys separately). To drop it anyway, "
					 "confirm in the same transaction: BEGIN; SET LOCAL pgext.confirm_drop = on; "
					 "DROP EXTENSION pgext; COMMIT;")));
}

/* ProcessUtility hook: guard the drops of pgext, then run the statement. */
static void
DropGuardProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Oid			ext;

	if (DropsPgext(pstmt->utilityStmt, &ext) && !DropConfirmed())
		CheckDropAllowed(ext, pstmt->utilityStmt);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/* Define pgext.confirm_drop and chain the utility hook. */
void
DropGuardInit(void)
{
	DefineCustomBoolVariable("pgext.confirm_drop",
							 "Confirms, for the current transaction only, dropping pgext while it holds data.",
							 "Set it with SET LOCAL in the transaction that runs DROP EXTENSION pgext; "
							 "a value set in an earlier transaction does not count.",
							 &confirm_drop, false,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, ConfirmDropAssign, NULL);
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = DropGuardProcessUtility;
}
