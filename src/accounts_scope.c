/*
 * accounts_scope.c — tenant isolation: a transaction bound to one account.
 *
 * pgext.set_account(account) binds the current transaction to an account.
 * The binding is kept in backend memory together with the transaction's
 * local id and is cleared by a transaction callback at commit, abort and
 * prepare: there is no setting a caller could SET, and no binding outlives
 * its transaction, so a connection handed to the next client by a
 * transaction-mode pooler (PgBouncer) never carries it over.
 *
 * pgext.current_account() returns the binding; the row-level security
 * policies of the account tables compare their account column with it, so
 * an application role sees only the bound account's rows (none unbound).
 * pgext's functions run as their owner and bypass those policies, so every
 * account-scoped function checks its account against the binding here
 * (AccountScopeCheck) and every platform-level one refuses to run while
 * bound (AccountScopePlatform).  The caller is GetOuterUserId(): the role
 * outside every SECURITY DEFINER function (see secrets.c for why).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"

#include "accounts.h"
#include "accounts_scope.h"
#include "common/spi.h"

PG_FUNCTION_INFO_V1(set_account);
PG_FUNCTION_INFO_V1(current_account);
PG_FUNCTION_INFO_V1(account_scope_check);
PG_FUNCTION_INFO_V1(account_scope_platform);
PG_FUNCTION_INFO_V1(account_scope_visible);

/* The binding: valid while bound and bound_lxid is this transaction's. */
static bool bound = false;
static pg_uuid_t bound_account;
static LocalTransactionId bound_lxid = InvalidLocalTransactionId;

/* pgext.require_account: refuse unbound account-scoped calls (non-admins). */
static bool require_account = false;

/*
 * Platform-level functions without an account argument, refused while bound
 * by the function manager hook below (every pgext function pins its
 * search_path, so every call of one passes the hook): operators' and the
 * worker's entry points that change or sweep data of every account.  Not
 * listed: read-only status functions (worker_tasks, health_poller, ...) and
 * functions the account-scoped ones call internally.  Sorted (bsearch).
 */
static const char *const platform_functions[] = {
	"access_expire",
	"api_calls_retention",
	"billing_expire_grace",
	"credit_sweep",
	"credit_verify",
	"health_record",
	"health_recover",
	"health_recovery_pause",
	"health_recovery_resume",
	"health_retention",
	"health_worker_load",
	"hetzner_claim",
	"hetzner_reconcile_start",
	"hetzner_response",
	"secret_audit_flush",
	"secret_rewrap",
	"server_claim",
	"server_orphan_keep",
	"server_reconcile",
	"server_report",
	"server_transition",
	"stripe_claim",
	"stripe_events_start",
	"stripe_price_remove",
	"stripe_price_set",
	"stripe_reconcile_start",
	"stripe_response",
	"webhook_apply",
	"webhook_claim",
	"webhook_ingest",
	"webhook_replay",
	"webhook_replay_dead",
	"webhook_retention",
	"webhook_source_remove",
	"webhook_source_set",
	"worker_begin",
	"worker_heartbeat",
	"worker_run_now",
};

static fmgr_hook_type prev_fmgr_hook = NULL;

static PgextPlan plan_account_exists = {
	"SELECT 1 FROM pgext.accounts WHERE id = $1",
	1, {UUIDOID}
};

/* Forget the binding when its transaction ends, however it ends. */
static void
AccountScopeXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			bound = false;
			bound_lxid = InvalidLocalTransactionId;
			break;
		default:
			break;
	}
}

/* bsearch comparator over platform_functions. */
static int
PlatformNameCmp(const void *key, const void *elem)
{
	return strcmp((const char *) key, *(const char *const *) elem);
}

/*
 * Function manager hook: while the transaction is bound, refuse a call of a
 * platform-level pgext function before its body runs.  Only bound
 * transactions pay for the two catalog cache lookups.
 */
static void
AccountScopeFmgrHook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	/* the policies call current_account() for every row: skip it cheaply */
	if (event == FHET_START && AccountScopeCurrent() != NULL &&
		flinfo->fn_addr != current_account)
	{
		Oid			nsp = get_namespace_oid("pgext", true);

		if (OidIsValid(nsp) && get_func_namespace(flinfo->fn_oid) == nsp)
		{
			char	   *name = get_func_name(flinfo->fn_oid);

			if (name != NULL &&
				bsearch(name, platform_functions, lengthof(platform_functions),
						sizeof(platform_functions[0]), PlatformNameCmp) != NULL)
				AccountScopePlatform(psprintf("pgext.%s", name));
		}
	}
	if (prev_fmgr_hook)
		(*prev_fmgr_hook) (event, flinfo, arg);
}

/*
 * Define pgext.require_account and install the callback and the hook.  Runs
 * from _PG_init whether or not pgext is preloaded: the setting must exist in
 * every backend that loads the module.
 */
void
AccountScopeInit(void)
{
	DefineCustomBoolVariable("pgext.require_account",
							 "Refuse account-scoped pgext calls made without pgext.set_account() first.",
							 "Applies to roles that are neither superusers nor members of pgext_admin; "
							 "set it per login role: ALTER ROLE app_login SET pgext.require_account = on.",
							 &require_account, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	RegisterXactCallback(AccountScopeXactCallback, NULL);
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = AccountScopeFmgrHook;
}

/* The account this transaction acts for, or NULL when it is not bound. */
const pg_uuid_t *
AccountScopeCurrent(void)
{
	if (!bound || MyProc == NULL || bound_lxid != MyProc->lxid)
		return NULL;
	return &bound_account;
}

/* Whether the caller has the privileges of role `name` (false if it does not exist). */
static bool
CallerHasRole(const char *name)
{
	Oid			role = get_role_oid(name, true);

	return OidIsValid(role) && has_privs_of_role(GetOuterUserId(), role);
}

/* Whether the caller is a superuser or has the privileges of pgext_admin. */
bool
AccountScopeCallerIsAdmin(void)
{
	return superuser_arg(GetOuterUserId()) || CallerHasRole("pgext_admin");
}

/* The text form of a uuid, for messages. */
static char *
UuidText(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) u)));
}

/* See accounts_scope.h. */
void
AccountScopeCheck(Datum account)
{
	const pg_uuid_t *cur = AccountScopeCurrent();
	pg_uuid_t  *want = DatumGetUUIDP(account);

	if (cur == NULL)
	{
		if (require_account && !AccountScopeCallerIsAdmin())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("this role must call pgext.set_account() first"),
					 errdetail("pgext.require_account is on for role \"%s\".",
							   GetUserNameFromId(GetOuterUserId(), false)),
					 errhint("Bind the transaction to the account it acts for: "
							 "BEGIN; SELECT pgext.set_account($1); ...; COMMIT;")));
		return;
	}
	if (memcmp(cur->data, want->data, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("this transaction acts for another account"),
				 errdetail("The call is for account %s; pgext.set_account() bound the transaction to account %s.",
						   UuidText(want), UuidText(cur)),
				 errhint("A transaction acts for one account: use a new transaction for another one.")));
}

/* See accounts_scope.h. */
void
AccountScopePlatform(const char *what)
{
	const pg_uuid_t *cur = AccountScopeCurrent();

	if (cur != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is a platform-level call, refused while the transaction acts for an account", what),
				 errdetail("The transaction is bound to account %s by pgext.set_account().", UuidText(cur)),
				 errhint("Call it in a transaction that does not call pgext.set_account().")));
}

/*
 * set_account(account): bind this transaction to the account.  NULL 22004;
 * an unknown account PX001; binding again to the same account is a no-op,
 * to another one 42501.  Outside a transaction block the binding lasts for
 * the statement's own transaction only.  A subtransaction's abort (ROLLBACK
 * TO SAVEPOINT) keeps it: it ends with the top-level transaction only.
 */
Datum
set_account(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *account;
	const pg_uuid_t *cur = AccountScopeCurrent();
	Datum		arg;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("account must not be NULL"),
				 errhint("Pass the uuid returned by pgext.account_create(); a binding ends with its transaction.")));
	arg = PG_GETARG_DATUM(0);
	account = DatumGetUUIDP(arg);
	if (cur != NULL && memcmp(cur->data, account->data, UUID_LEN) == 0)
		PG_RETURN_UUID_P(account);

	/* an unknown account is PX001 whether or not the transaction is bound */
	SPI_connect();
	if (PgextExec(&plan_account_exists, &arg, NULL, 1) != 1)
		AccountNotFound(arg);
	SPI_finish();

	if (cur != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a transaction acts for one account"),
				 errdetail("This transaction is already bound to account %s.", UuidText(cur)),
				 errhint("Commit or roll back, then bind the next transaction to account %s.",
						 UuidText(account))));

	memcpy(bound_account.data, account->data, UUID_LEN);
	bound_lxid = MyProc->lxid;
	bound = true;
	PG_RETURN_UUID_P(account);
}

/* current_account(): the account this transaction acts for, or NULL. */
Datum
current_account(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *cur = AccountScopeCurrent();
	pg_uuid_t  *result;

	if (cur == NULL)
		PG_RETURN_NULL();
	result = palloc(sizeof(pg_uuid_t));
	memcpy(result, cur, sizeof(pg_uuid_t));
	PG_RETURN_UUID_P(result);
}

/*
 * account_scope_check(account): AccountScopeCheck for SQL and PL/pgSQL
 * functions; NULL (no account: all accounts or the platform) is checked as a
 * platform-level call.
 */
Datum
account_scope_check(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		AccountScopePlatform("a call without an account");
	else
		AccountScopeCheck(PG_GETARG_DATUM(0));
	PG_RETURN_VOID();
}

/* account_scope_platform(what): AccountScopePlatform for SQL and PL/pgSQL functions. */
Datum
account_scope_platform(PG_FUNCTION_ARGS)
{
	AccountScopePlatform(PG_ARGISNULL(0) ? "this function" : text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * account_scope_visible(account): whether a listing may show a row of this
 * account (NULL: a platform row) to the caller.  Bound: only the bound
 * account's rows.  Unbound: every row for superusers and members of
 * pgext_admin or pgext_support, none for anyone else.
 */
Datum
account_scope_visible(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *cur = AccountScopeCurrent();

	if (cur != NULL)
		PG_RETURN_BOOL(!PG_ARGISNULL(0) &&
					   memcmp(cur->data, PG_GETARG_UUID_P(0)->data, UUID_LEN) == 0);
	PG_RETURN_BOOL(AccountScopeCallerIsAdmin() || CallerHasRole("pgext_support"));
}
