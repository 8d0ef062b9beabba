/*
 * accounts.c — tenant accounts: creation, credit mode, Stripe customer link.
 *
 * An account is the unit that owns credits, secrets, subscriptions and
 * servers.  Apps know it by their own external_id; everything inside pgext
 * refers to it by uuid.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"

#include "accounts.h"
#include "accounts_scope.h"
#include "data_rights.h"

#include "common/args.h"
#include "common/errcodes.h"
#include "common/spi.h"
#include "common/subxact.h"

PG_FUNCTION_INFO_V1(account_create);
PG_FUNCTION_INFO_V1(account_set_credit_mode);
PG_FUNCTION_INFO_V1(account_set_stripe_customer);

static PgextPlan plan_insert = {
	"INSERT INTO pgext.accounts (external_id, credit_mode) VALUES ($1, $2) "
	"ON CONFLICT (external_id) DO NOTHING RETURNING id",
	2, {TEXTOID, TEXTOID}
};
static PgextPlan plan_by_external = {
	"SELECT id, credit_mode FROM pgext.accounts WHERE external_id = $1",
	1, {TEXTOID}
};
static PgextPlan plan_set_mode = {
	"UPDATE pgext.accounts SET credit_mode = $2 WHERE id = $1",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_lock = {
	"SELECT stripe_customer_id, external_id FROM pgext.accounts WHERE id = $1 FOR UPDATE",
	1, {UUIDOID}
};
static PgextPlan plan_customer_owner = {
	"SELECT external_id FROM pgext.accounts WHERE stripe_customer_id = $1 AND id <> $2",
	2, {TEXTOID, UUIDOID}
};
/* An account (by external_id) other than $2 holding Stripe state recorded under customer $1. */
static PgextPlan plan_customer_history = {
	"SELECT a.external_id FROM ("
	"    SELECT account_id FROM pgext.stripe_subscriptions WHERE customer_id = $1 AND account_id <> $2 "
	"    UNION ALL "
	"    SELECT account_id FROM pgext.stripe_purchases WHERE customer_id = $1 AND account_id <> $2 "
	"    LIMIT 1) h JOIN pgext.accounts a ON a.id = h.account_id",
	2, {TEXTOID, UUIDOID}
};
/* Whether the account has Stripe state: subscriptions or purchases. */
static PgextPlan plan_account_stripe_state = {
	"SELECT EXISTS (SELECT FROM pgext.stripe_subscriptions WHERE account_id = $1) "
	"    OR EXISTS (SELECT FROM pgext.stripe_purchases WHERE account_id = $1)",
	1, {UUIDOID}
};
static PgextPlan plan_set_customer = {
	"UPDATE pgext.accounts SET stripe_customer_id = $2 WHERE id = $1",
	2, {UUIDOID, TEXTOID}
};

/*
 * Fetch a required account uuid argument (errors on NULL), checked against
 * the account the transaction acts for (AccountScopeCheck): every function
 * that takes an account this way is account-scoped.
 */
Datum
AccountArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("account must not be NULL"),
				 errhint("Pass the uuid returned by pgext.account_create().")));
	AccountScopeCheck(PG_GETARG_DATUM(argno));
	return PG_GETARG_DATUM(argno);
}

/*
 * Whether the installed schema has the data rights tables (1.1:
 * pgext.account_forgets and pgext.secret_account_keys).  The library is
 * shared by every installed version: between installing a new library and
 * ALTER EXTENSION pgext UPDATE, a 1.0 schema runs this code, and statements
 * naming the new tables must not be used then.  Two syscache lookups.
 */
bool
AccountDataRightsInstalled(void)
{
	Oid			nsp = get_namespace_oid("pgext", true);

	return OidIsValid(nsp) &&
		OidIsValid(get_relname_relid("account_forgets", nsp)) &&
		OidIsValid(get_relname_relid("secret_account_keys", nsp));
}

/* Raise the "account does not exist" error. */
void
AccountNotFound(Datum account)
{
	ereport(ERROR,
			(errcode(PGEXT_ERRCODE_ACCOUNT_NOT_FOUND),
			 errmsg("account %s does not exist",
					DatumGetCString(DirectFunctionCall1(uuid_out, account))),
			 errhint("Create it first with pgext.account_create().")));
}

/* Validate a credit_mode argument; returns it as a C string. */
static char *
CheckCreditMode(FunctionCallInfo fcinfo, int argno)
{
	char	   *mode;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("credit_mode must not be NULL"),
				 errhint("Use 'metered' or 'unlimited'.")));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(mode, "metered") != 0 && strcmp(mode, "unlimited") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid credit_mode \"%s\"", PgextShownValue(mode)),
				 errhint("Use 'metered' (credits enforced) or 'unlimited' (usage recorded, balance untouched).")));
	return mode;
}

/*
 * Raise the retryable error for an account_create that lost a race it cannot
 * resolve inside its own transaction: the account was committed by another
 * transaction after this one's snapshot (REPEATABLE READ, SERIALIZABLE), or
 * deleted between the INSERT and the lookup (READ COMMITTED).
 */
static void
AccountRaceLost(text *external_id, bool snapshot)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("account \"%s\" was %s by a concurrent transaction",
					text_to_cstring(external_id), snapshot ? "created" : "deleted"),
			 snapshot ?
			 errdetail("It was committed after this %s transaction took its snapshot, so this transaction can neither see it nor create it again.",
					   IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ") :
			 errdetail("It existed when the insert was tried and was gone when it was read back."),
			 errhint("Retry the transaction: account_create then returns the existing account (or creates it).")));
}

/* The INSERT of account_create, and what it returned. */
typedef struct AccountInsert
{
	Datum	   *values;
	bool		inserted;
	pg_uuid_t	id;
} AccountInsert;

/*
 * An external_id must not be only blanks nor hold control characters (it
 * shows in messages and logs).
 */
static void
ExternalIdCheck(text *external_id)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(external_id);
	int			len = VARSIZE_ANY_EXHDR(external_id);
	bool		blank = true;

	for (int i = 0; i < len; i++)
	{
		if (p[i] < 0x20 || p[i] == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("external_id must not contain control characters"),
					 errhint("Pass your application's own identifier for the tenant.")));
		if (p[i] != ' ')
			blank = false;
	}
	if (blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("external_id must not be blank"),
				 errhint("Pass your application's own identifier for the tenant.")));
}

/* Insert the account unless its external_id exists; keep the new id. */
static void
AccountInsertBody(void *arg)
{
	AccountInsert *a = (AccountInsert *) arg;
	bool		isnull;

	a->inserted = PgextExec(&plan_insert, a->values, NULL, 1) == 1;
	if (a->inserted)
		memcpy(&a->id, DatumGetUUIDP(PgextGetDatum(0, 1, &isnull)), sizeof(pg_uuid_t));
}

/* Look the account up by external_id; checks the mode.  False if not visible. */
static bool
AccountByExternalId(Datum *values, text *external_id, const char *mode, pg_uuid_t *id)
{
	bool		isnull;
	char	   *existing_mode;

	if (PgextExec(&plan_by_external, values, NULL, 1) != 1)
		return false;
	memcpy(id, DatumGetUUIDP(PgextGetDatum(0, 1, &isnull)), sizeof(pg_uuid_t));
	existing_mode = PgextGetText(0, 2);
	if (strcmp(existing_mode, mode) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("account \"%s\" already exists with credit_mode '%s'",
						text_to_cstring(external_id), existing_mode),
				 errhint("Use pgext.account_set_credit_mode() to change the mode of an existing account.")));
	return true;
}

/*
 * account_create(external_id, credit_mode): idempotent on external_id.
 *
 * Racing itself for one external_id, it creates one account: a second
 * caller waits for the first one's transaction, then returns the same id (or
 * creates the account if the first rolled back).  Under REPEATABLE READ or
 * SERIALIZABLE an account committed after the caller's snapshot cannot be
 * returned (the caller's transaction could not see or lock it), so the call
 * fails with a retryable serialization failure (40001) instead; there the
 * INSERT runs in a subtransaction only to turn PostgreSQL's generic 40001
 * into one that says what happened, and only after a lookup has not found
 * the account (the usual case of an existing account needs no subtransaction).
 */
Datum
account_create(PG_FUNCTION_ARGS)
{
	text	   *external_id;
	char	   *mode;
	Datum		values[2];
	AccountInsert a;
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	bool		snapshot = IsolationUsesXactSnapshot();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("external_id must not be NULL"),
				 errhint("Pass your application's own identifier for the tenant.")));
	external_id = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(external_id) == 0 || VARSIZE_ANY_EXHDR(external_id) > 255)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("external_id must be 1 to 255 bytes long")));
	ExternalIdCheck(external_id);

	/* the mark of a forgotten account (pgext.account_forget), see accounts.h */
	if (VARSIZE_ANY_EXHDR(external_id) >= (int) strlen(ACCOUNT_FORGOTTEN_PREFIX) &&
		memcmp(VARDATA_ANY(external_id), ACCOUNT_FORGOTTEN_PREFIX,
			   strlen(ACCOUNT_FORGOTTEN_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("external_id must not start with \"%s\"", ACCOUNT_FORGOTTEN_PREFIX),
				 errhint("That prefix marks accounts erased by pgext.account_forget().")));
	mode = CheckCreditMode(fcinfo, 1);

	values[0] = PointerGetDatum(external_id);
	values[1] = CStringGetTextDatum(mode);
	a.values = values;
	a.inserted = false;

	SPI_connect();
	if (AccountScopeCurrent() != NULL)
	{
		/* bound: only the bound account itself may be "created" (found) */
		if (!AccountByExternalId(values, external_id, mode, id) ||
			memcmp(id, AccountScopeCurrent(), sizeof(pg_uuid_t)) != 0)
			AccountScopePlatform("account_create of another account");
		SPI_finish();
		PG_RETURN_UUID_P(id);
	}
	if (snapshot)
	{
		if (!AccountByExternalId(values, external_id, mode, id))
		{
			if (!PgextTryInSubxact(AccountInsertBody, &a, PgextIsSerializationFailure, NULL))
				AccountRaceLost(external_id, true);
			if (!a.inserted && !AccountByExternalId(values, external_id, mode, id))
				AccountRaceLost(external_id, true);
		}
	}
	else
	{
		AccountInsertBody(&a);
		if (!a.inserted && !AccountByExternalId(values, external_id, mode, id))
			AccountRaceLost(external_id, false);
	}
	if (a.inserted)
		memcpy(id, &a.id, sizeof(pg_uuid_t));
	SPI_finish();

	PG_RETURN_UUID_P(id);
}

/* account_set_credit_mode(account, credit_mode): switch metered/unlimited. */
Datum
account_set_credit_mode(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char	   *mode;

	values[0] = AccountArg(fcinfo, 0);
	mode = CheckCreditMode(fcinfo, 1);
	values[1] = CStringGetTextDatum(mode);

	SPI_connect();
	if (PgextExec(&plan_set_mode, values, NULL, 0) != 1)
		AccountNotFound(values[0]);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Whether the role calling is a billing administrator: pgext_admin (or a
 * superuser).  This function runs as its owner, so the caller is the role at
 * SET ROLE level (GetOuterUserId), not the current user.
 */
static bool
CallerIsBillingAdmin(void)
{
	return AccountScopeCallerIsAdmin();
}

/* Refuse changing the link of an account with Stripe state unless the caller is pgext_admin. */
static void
RequireAdminIfStripeState(Datum account, const char *what)
{
	bool		isnull;

	PgextExec(&plan_account_stripe_state, &account, NULL, 1);
	if (DatumGetBool(PgextGetDatum(0, 1, &isnull)) && !CallerIsBillingAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only pgext_admin may %s an account that has Stripe subscriptions or purchases", what),
				 errhint("Its Stripe events find it by this link; ask an operator (pgext_admin) to change it.")));
}

/*
 * account_set_stripe_customer(account, customer_id): link the account to a
 * Stripe customer (unique).  NULL unlinks.  Relinking to another customer is
 * refused: unlink first, so a stray webhook cannot move a customer silently.
 * Billing history stays with its account unless an operator moves it:
 *  - pgext_app may link and unlink an account that has no Stripe
 *    subscriptions or purchases, to a customer that has none recorded for
 *    another account;
 *  - everything else (unlinking or linking an account that has Stripe
 *    state, linking a customer whose subscriptions or purchases are recorded
 *    for another account) needs pgext_admin (or a superuser).
 */
Datum
account_set_stripe_customer(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	   *customer = NULL;
	char	   *current;
	char	   *external_id;

	values[0] = AccountArg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	else
	{
		customer = text_to_cstring(PG_GETARG_TEXT_PP(1));
		if (strncmp(customer, "cus_", 4) != 0 || strlen(customer) < 5 || strlen(customer) > 255)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid Stripe customer id \"%s\"", PgextShownValue(customer)),
					 errhint("Stripe customer ids look like 'cus_...'; pass NULL to unlink.")));
		values[1] = CStringGetTextDatum(customer);
	}

	SPI_connect();
	if (PgextExec(&plan_lock, values, NULL, 1) != 1)
		AccountNotFound(values[0]);
	current = PgextGetText(0, 1);
	external_id = PgextGetText(0, 2);
	if (customer == NULL)
	{
		if (current == NULL)
		{
			SPI_finish();
			PG_RETURN_VOID();
		}
		RequireAdminIfStripeState(values[0], "unlink");
	}
	else
	{
		if (current != NULL && strcmp(current, customer) == 0)
		{
			SPI_finish();
			PG_RETURN_VOID();
		}
		if (current != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("account is already linked to Stripe customer \"%s\"", current),
					 errhint("Unlink it first with pgext.account_set_stripe_customer(account, NULL).")));
		if (PgextExec(&plan_customer_owner, (Datum[]) {values[1], values[0]}, NULL, 1) == 1)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("Stripe customer \"%s\" is already linked to account \"%s\"",
							customer, PgextGetText(0, 1)),
					 errhint("A Stripe customer belongs to exactly one account.")));
		if (PgextExec(&plan_customer_history, (Datum[]) {values[1], values[0]}, NULL, 1) == 1 &&
			!CallerIsBillingAdmin())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("Stripe customer \"%s\" has subscriptions or purchases recorded for account \"%s\"",
							customer, PgextGetText(0, 1)),
					 errhint("A customer's billing history stays with its account: create a new Stripe customer "
							 "for this account, or ask an operator (pgext_admin) to move the customer deliberately.")));
		RequireAdminIfStripeState(values[0], "link");
	}
	PgextExec(&plan_set_customer, values, nulls, 0);
	/* a forgotten account's customer: its events' personal fields are dropped (data_rights.c) */
	if (external_id != NULL && strncmp(external_id, ACCOUNT_FORGOTTEN_PREFIX,
									   strlen(ACCOUNT_FORGOTTEN_PREFIX)) == 0)
		DataRightsForgottenChanged();
	SPI_finish();
	PG_RETURN_VOID();
}
