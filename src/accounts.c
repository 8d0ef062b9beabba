/*
 * accounts.c — tenant accounts: creation, credit mode, Stripe customer link.
 *
 * An account is the unit that owns credits, secrets, subscriptions and
 * servers.  Apps know it by their own external_id; everything inside pgext
 * refers to it by uuid.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "credits.h"
#include "spi_util.h"

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
	"SELECT stripe_customer_id FROM pgext.accounts WHERE id = $1 FOR UPDATE",
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
				 errmsg("invalid credit_mode \"%s\"", mode),
				 errhint("Use 'metered' (credits enforced) or 'unlimited' (usage recorded, balance untouched).")));
	return mode;
}

/* account_create(external_id, credit_mode): idempotent on external_id. */
Datum
account_create(PG_FUNCTION_ARGS)
{
	text	   *external_id;
	char	   *mode;
	Datum		values[2];
	Datum		result = (Datum) 0;
	char	   *existing_mode = NULL;
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

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
	mode = CheckCreditMode(fcinfo, 1);

	values[0] = PointerGetDatum(external_id);
	values[1] = CStringGetTextDatum(mode);

	SPI_connect();
	if (PgextExec(&plan_insert, values, NULL, 1) == 1)
		result = PgextGetDatum(0, 1, &(bool) {false});
	else
	{
		if (PgextExec(&plan_by_external, values, NULL, 1) != 1)
			elog(ERROR, "pgext: account vanished during account_create");
		result = PgextGetDatum(0, 1, &(bool) {false});
		existing_mode = PgextGetText(0, 2);
		if (strcmp(existing_mode, mode) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("account \"%s\" already exists with credit_mode '%s'",
							text_to_cstring(external_id), existing_mode),
					 errhint("Use pgext.account_set_credit_mode() to change the mode of an existing account.")));
	}
	memcpy(id, DatumGetUUIDP(result), sizeof(pg_uuid_t));
	SPI_finish();

	PG_RETURN_UUID_P(id);
}

/* account_set_credit_mode(account, credit_mode): switch metered/unlimited. */
Datum
account_set_credit_mode(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char	   *mode;

	values[0] = CreditsAccountArg(fcinfo, 0);
	mode = CheckCreditMode(fcinfo, 1);
	values[1] = CStringGetTextDatum(mode);

	SPI_connect();
	if (PgextExec(&plan_set_mode, values, NULL, 0) != 1)
		CreditsAccountNotFound(values[0]);
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
	Oid			caller = GetOuterUserId();
	Oid			admin = get_role_oid("pgext_admin", true);

	return superuser_arg(caller) || (OidIsValid(admin) && has_privs_of_role(caller, admin));
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

	values[0] = CreditsAccountArg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	else
	{
		customer = text_to_cstring(PG_GETARG_TEXT_PP(1));
		if (strncmp(customer, "cus_", 4) != 0 || strlen(customer) < 5 || strlen(customer) > 255)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid Stripe customer id \"%s\"", customer),
					 errhint("Stripe customer ids look like 'cus_...'; pass NULL to unlink.")));
		values[1] = CStringGetTextDatum(customer);
	}

	SPI_connect();
	if (PgextExec(&plan_lock, values, NULL, 1) != 1)
		CreditsAccountNotFound(values[0]);
	current = PgextGetText(0, 1);
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
	SPI_finish();
	PG_RETURN_VOID();
}
