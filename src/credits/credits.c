/*
 * credits.c — the credit ledger's entry points: grant, allocate, deduct,
 * balance and the expiry sweep (reservations: reservations.c; the primitives
 * all of them share: ledger.c).
 *
 * Model (see sql/install/credits.sql for the tables):
 *   accounts.balance      every unspent, unreserved credit (= sum of ledger deltas)
 *   accounts.lot_credits  the part of balance held in credit_lots; the rest is
 *                         the account's non-expiring pool
 *   credit_lots           expiring grants and plan allocations, one row each
 *
 * Spending takes the credits most at risk of being lost first: lots with an
 * expiry (soonest first, then oldest), then non-expiring plan allocations
 * (oldest first), then the pool.  Credits of a lot whose expiry has passed are
 * never spendable, whether or not credit_sweep has recorded the expiry yet.
 * Settling a reservation records at once the expiry of any expired lot it
 * gives credits back to, so a sweep leaves no expired credit in a balance.
 *
 * Concurrency: every call that changes an account first takes that account's
 * row lock (an UPDATE, SELECT ... FOR UPDATE, or the fast path's tuple lock),
 * then its reservation, then its lots.  No call locks two accounts, so there
 * is no lock-order cycle.  The check and the decrement of the balance happen
 * on the locked latest version of the row: in fastpath.c (READ COMMITTED,
 * the common case, no SQL statement), in one UPDATE ... WHERE balance >=
 * amount (other isolation levels), or under the row lock (general path); a
 * CHECK constraint (balance >= 0) is the last line of defence of all three.
 *
 * Idempotency: keys are unique per account across every money call (a unique
 * index on the ledger).  The same key with the same parameters returns the
 * first result with status 'duplicate'; with other parameters it is an error.
 * A refused call ('insufficient') records nothing, so a retry after a top-up
 * can succeed.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "accounts.h"
#include "accounts_scope.h"
#include "common/args.h"
#include "common/errcodes.h"
#include "common/result.h"
#include "common/searchpath.h"
#include "common/spi.h"
#include "credits/credits.h"
#include "credits/fastpath.h"

PG_FUNCTION_INFO_V1(credit_grant);
PG_FUNCTION_INFO_V1(credit_deduct);
PG_FUNCTION_INFO_V1(credit_allocate);
PG_FUNCTION_INFO_V1(credit_balance);
PG_FUNCTION_INFO_V1(credit_sweep);

static Datum CreditDeductBody(FunctionCallInfo fcinfo);

/* ---- statements ---------------------------------------------------------- */

/*
 * The fast path in one statement: check-and-decrement (taking the row lock)
 * and the ledger row that claims the idempotency key.  One row back when the
 * decrement happened (id NULL if the key was already taken), none when the
 * account needs the general path.
 */
static PgextPlan plan_deduct_fast = {
	"WITH d AS ("
	" UPDATE pgext.accounts SET balance = balance - $2"
	" WHERE id = $1 AND credit_mode = 'metered' AND lot_credits = 0 AND balance >= $2"
	" AND NOT pg_catalog.starts_with(external_id, 'forgotten:')"
	" RETURNING balance),"
	" i AS ("
	" INSERT INTO pgext.credit_ledger"
	" (account_id, op, amount, delta, balance_after, idempotency_key, reason)"
	" SELECT $1, 'deduct', $2, -$2, d.balance, $3, $4 FROM d"
	" ON CONFLICT (account_id, idempotency_key) DO NOTHING RETURNING id)"
	" SELECT d.balance, i.id FROM d LEFT JOIN i ON true",
	4, {UUIDOID, INT8OID, TEXTOID, TEXTOID}
};
static PgextPlan plan_lot_insert = {
	"INSERT INTO pgext.credit_lots (account_id, kind, amount, remaining, expires_at, "
	"period_key, rollover_cap) VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING id",
	6, {UUIDOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID, INT8OID}
};
static PgextPlan plan_lot_by_period = {
	"SELECT l.amount, l.expires_at, l.rollover_cap, g.id, g.balance_after "
	"FROM pgext.credit_lots l JOIN pgext.credit_ledger g "
	"ON g.account_id = l.account_id AND g.lot_id = l.id AND g.op = 'allocate' "
	"WHERE l.account_id = $1 AND l.period_key = $2",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_sweep_lot_accounts = {
	"SELECT DISTINCT account_id FROM pgext.credit_lots "
	"WHERE remaining > 0 AND expires_at <= $1 LIMIT $2",
	2, {TIMESTAMPTZOID, INT4OID}
};
static PgextPlan plan_expired_lots = {
	"SELECT id, remaining FROM pgext.credit_lots "
	"WHERE account_id = $1 AND remaining > 0 AND expires_at <= $2 "
	"ORDER BY expires_at, id FOR UPDATE",
	2, {UUIDOID, TIMESTAMPTZOID}
};
static PgextPlan plan_sweep_reservations = {
	"SELECT id FROM pgext.credit_reservations "
	"WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
	2, {TIMESTAMPTZOID, INT4OID}
};

/* ---- argument checks and result ----------------------------------------- */

/* A required, strictly positive amount of credits. */
int64
CreditAmountArg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int64		amount;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	amount = PG_GETARG_INT64(argno);
	if (amount <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a positive number of credits, got " INT64_FORMAT, what, amount)));
	return amount;
}

/* An idempotency key or other short label: NULL allowed unless required. */
text *
CreditLabelArg(FunctionCallInfo fcinfo, int argno, const char *what, bool required, int maxlen)
{
	text	   *t;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", what),
					 errhint("Pass a key that is unique for this request, so retries cannot apply it twice.")));
		return NULL;
	}
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) == 0 || VARSIZE_ANY_EXHDR(t) > (Size) maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be 1 to %d bytes long", what, maxlen)));
	return t;
}

/* A grant kind: lowercase identifier, not the one credit_allocate uses. */
static char *
KindArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *kind;
	const char *p;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind must not be NULL"),
				 errhint("Use a label such as 'bonus', 'purchase' or 'refund'.")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (p = kind; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			break;
	if (*kind == '\0' || *p != '\0' || strlen(kind) > MAX_KIND_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid grant kind \"%s\"", PgextShownValue(kind)),
				 errhint("A kind is 1 to %d characters of a-z, 0-9 and _, such as 'bonus' or 'purchase'.",
						 MAX_KIND_LEN)));
	if (strcmp(kind, "allocation") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kind 'allocation' is reserved for plan allocations"),
				 errhint("Use pgext.credit_allocate() for periodic plan credits.")));
	return kind;
}

/* An optional expiry (credit_grant, credit_allocate): NULL never expires. */
static bool
ExpiryArg(FunctionCallInfo fcinfo, int argno, TimestampTz now, TimestampTz *expires)
{
	return PgextExpiryArg(fcinfo, argno, now, true, "Pass NULL for credits that never expire.",
						  expires);
}

/* A text argument as a C string, or NULL. */
static const char *
TextOrNull(text *t)
{
	return t ? text_to_cstring(t) : NULL;
}

/* Build pgext.credit_result in the caller's memory context. */
Datum
CreditMakeResult(FunctionCallInfo fcinfo, const CreditResult *r)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, !r->has_balance, !r->has_id};

	values[0] = BoolGetDatum(r->ok);
	values[1] = CStringGetTextDatum(r->status);
	values[2] = Int64GetDatum(r->balance);
	values[3] = Int64GetDatum(r->id);
	return PgextCompositeResult(fcinfo, values, nulls);
}

/* Fill a CreditResult that carries a balance. */
void
CreditSetResult(CreditResult *r, bool ok, const char *status, int64 balance, bool has_id, int64 id)
{
	r->ok = ok;
	r->status = status;
	r->has_balance = true;
	r->balance = balance;
	r->has_id = has_id;
	r->id = id;
}

/* ---- grant and allocate -------------------------------------------------- */

/* credit_grant(account, amount, idempotency_key, kind, expires_at) */
Datum
credit_grant(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTimestamp();
	Datum		account = AccountArg(fcinfo, 0);
	int64		amount = CreditAmountArg(fcinfo, 1, "amount");
	text	   *key = CreditLabelArg(fcinfo, 2, "idempotency_key", true, MAX_KEY_LEN);
	char	   *kind = KindArg(fcinfo, 3);
	TimestampTz expires = 0;
	bool		has_expires = ExpiryArg(fcinfo, 4, now, &expires);
	AccountState st;
	PriorEntry	prior;
	CreditResult r;
	int64		lot_id = 0;
	int64		expired;

	SPI_connect();
	LedgerLockAccount(account, &st);
	LedgerRefuseForgotten(&st);
	if (LedgerFindPrior(account, key, &prior))
		LedgerPriorResult(key, &prior, "grant", kind, amount, NULL, has_expires, expires, &r);
	else
	{
		LedgerEntry e = {"grant", kind, amount, amount, 0, key, NULL, 0, 0, has_expires, expires, NULL};

		LedgerCheckNoOverflow(&st, amount);
		expired = LedgerExpiredCredits(&st, now);
		if (has_expires)
		{
			Datum		v[6] = {account, CStringGetTextDatum(kind), Int64GetDatum(amount),
			TimestampTzGetDatum(expires), 0, 0};

			PgextExec(&plan_lot_insert, v, "    nn", 1);
			lot_id = PgextGetInt64(0, 1, 0);
		}
		LedgerAccountAdd(&st, amount, has_expires ? amount : 0);
		e.balance_after = st.balance;
		e.lot_id = lot_id;
		CreditSetResult(&r, true, "granted", st.balance - expired, true, LedgerAppend(&st, &e));
	}
	SPI_finish();
	PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
}

/*
 * Forfeit what earlier allocations left beyond rollover_cap, in spending
 * order (the credits that would have been spent first go first).
 */
static void
ApplyRolloverCap(AccountState *st, TimestampTz now, int64 cap, const char *period)
{
	Parts		parts;
	int64		carried = LedgerPlanDebit(st, now, PG_INT64_MAX, "allocation", true, &parts);
	int64		excess = carried - cap;
	LedgerEntry e = {"forfeit", "allocation", 0, 0, 0, NULL, NULL, 0, 0, false, 0, &parts};
	char	   *reason;

	if (excess <= 0)
		return;
	/* PlanDebit took everything; keep only the first 'excess' credits. */
	LedgerPlanDebit(st, now, excess, "allocation", true, &parts);
	LedgerApplyDebit(st, &parts);
	reason = psprintf("rollover cap " INT64_FORMAT " at allocation for period %s", cap, period);
	e.amount = excess;
	e.delta = -excess;
	e.balance_after = st->balance;
	e.reason = reason;
	LedgerAppend(st, &e);
}

/* credit_allocate(account, amount, period_key, rollover_cap, expires_at) */
Datum
credit_allocate(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTimestamp();
	Datum		account = AccountArg(fcinfo, 0);
	int64		amount = CreditAmountArg(fcinfo, 1, "amount");
	text	   *period = CreditLabelArg(fcinfo, 2, "period_key", true, MAX_KEY_LEN);
	bool		has_cap = !PG_ARGISNULL(3);
	int64		cap = has_cap ? PG_GETARG_INT64(3) : 0;
	TimestampTz expires = 0;
	bool		has_expires = ExpiryArg(fcinfo, 4, now, &expires);
	char	   *period_str = text_to_cstring(period);
	AccountState st;
	CreditResult r;
	Datum		values[2] = {account, PointerGetDatum(period)};

	if (has_cap && cap < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rollover_cap must be zero or positive, got " INT64_FORMAT, cap),
				 errhint("Pass NULL to carry over all unspent allocation credits.")));

	SPI_connect();
	LedgerLockAccount(account, &st);
	LedgerRefuseForgotten(&st);
	if (PgextExec(&plan_lot_by_period, values, NULL, 1) == 1)
	{
		bool		isnull;
		int64		old_amount = PgextGetInt64(0, 1, 0);
		TimestampTz old_exp = DatumGetTimestampTz(PgextGetDatum(0, 2, &isnull));
		bool		old_has_exp = !isnull;
		bool		old_has_cap = !PgextColIsNull(0, 3);
		int64		old_cap = PgextGetInt64(0, 3, 0);

		if (old_amount != amount || old_has_exp != has_expires ||
			(has_expires && old_exp != expires) || old_has_cap != has_cap ||
			(has_cap && old_cap != cap))
			ereport(ERROR,
					(errcode(PGEXT_ERRCODE_IDEMPOTENCY_CONFLICT),
					 errmsg("period \"%s\" was already allocated with different parameters", period_str),
					 errdetail("The first allocation for this period was " INT64_FORMAT " credits.", old_amount),
					 errhint("An allocation happens once per (account, period_key); use a new period_key for a new period.")));
		CreditSetResult(&r, true, "duplicate", PgextGetInt64(0, 5, 0), true, PgextGetInt64(0, 4, 0));
	}
	else
	{
		LedgerEntry e = {"allocate", "allocation", amount, amount, 0, NULL, period_str, 0, 0,
		has_expires, expires, NULL};
		Datum		v[6] = {account, CStringGetTextDatum("allocation"), Int64GetDatum(amount),
		TimestampTzGetDatum(expires), PointerGetDatum(period), Int64GetDatum(cap)};
		char		n[6] = {' ', ' ', ' ', has_expires ? ' ' : 'n', ' ', has_cap ? ' ' : 'n'};

		if (has_cap)
			ApplyRolloverCap(&st, now, cap, period_str);
		LedgerCheckNoOverflow(&st, amount);
		PgextExec(&plan_lot_insert, v, n, 1);
		e.lot_id = PgextGetInt64(0, 1, 0);
		LedgerAccountAdd(&st, amount, amount);
		e.balance_after = st.balance;
		CreditSetResult(&r, true, "allocated", 0, true, LedgerAppend(&st, &e));
		r.balance = st.balance - LedgerExpiredCredits(&st, now);
	}
	SPI_finish();
	PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
}

/* ---- deduct -------------------------------------------------------------- */

/*
 * General deduct under the account lock: duplicates, unlimited accounts,
 * lots and expiry.  Also the fallback when the fast path matched no row.
 */
static void
DeductLocked(Datum account, int64 amount, text *key, const char *reason, TimestampTz now,
			 CreditResult *r)
{
	AccountState st;
	PriorEntry	prior;
	Parts		parts;
	int64		spendable;
	LedgerEntry e = {"deduct", NULL, amount, -amount, 0, key, reason, 0, 0, false, 0, NULL};

	LedgerLockAccount(account, &st);
	LedgerRefuseForgotten(&st);
	if (LedgerFindPrior(account, key, &prior))
	{
		LedgerPriorResult(key, &prior, "deduct", NULL, amount, reason, false, 0, r);
		return;
	}
	if (st.unlimited)
	{
		e.kind = "unlimited";
		e.delta = 0;
		e.balance_after = st.balance;
		CreditSetResult(r, true, "unlimited", st.balance - LedgerExpiredCredits(&st, now), true,
				  LedgerAppend(&st, &e));
		return;
	}
	spendable = LedgerPlanDebit(&st, now, amount, NULL, false, &parts);
	if (spendable < amount)
	{
		CreditSetResult(r, false, "insufficient", spendable, false, 0);
		return;
	}
	LedgerApplyDebit(&st, &parts);
	e.balance_after = st.balance;
	e.lot_id = parts.nlots == 1 ? parts.lot_ids[0] : 0;
	e.parts = &parts;
	CreditSetResult(r, true, "deducted", spendable - amount, true, LedgerAppend(&st, &e));
}

/*
 * A deduct decremented the balance (to `balance`) and then found its key
 * already taken (a retry): give the credits back and answer from the first
 * entry ('duplicate', or an error for other parameters).  SPI connected,
 * under the account's row lock.
 */
static void
UndoAndAnswerRetry(Datum account, int64 amount, text *key, text *reason, int64 balance,
				   CreditResult *r)
{
	AccountState st = {account, false, balance, 0, false};
	PriorEntry	prior;

	LedgerAccountAdd(&st, amount, 0);
	if (!LedgerFindPrior(account, key, &prior))
		elog(ERROR, "pgext: idempotency key conflict without a ledger entry");
	LedgerPriorResult(key, &prior, "deduct", NULL, amount, TextOrNull(reason), false, 0, r);
}

/*
 * credit_deduct(account, amount, idempotency_key, reason).  Declared without
 * SET search_path (the hot path, issue 14): the path is pinned here instead
 * (common/searchpath.h), before any argument is looked at.
 */
Datum
credit_deduct(PG_FUNCTION_ARGS)
{
	Datum		result;

	PgextPinSearchPath(fcinfo);
	result = CreditDeductBody(fcinfo);
	PgextUnpinSearchPath();
	return result;
}

/* Body of credit_deduct. */
static Datum
CreditDeductBody(FunctionCallInfo fcinfo)
{
	Datum		account = AccountArg(fcinfo, 0);
	int64		amount = CreditAmountArg(fcinfo, 1, "amount");
	text	   *key = CreditLabelArg(fcinfo, 2, "idempotency_key", false, MAX_KEY_LEN);
	text	   *reason = CreditLabelArg(fcinfo, 3, "reason", false, MAX_REASON_LEN);
	Datum		values[4];
	char		nulls[4] = {' ', ' ', key ? ' ' : 'n', reason ? ' ' : 'n'};
	CreditResult r;

	values[0] = account;
	values[1] = Int64GetDatum(amount);
	values[2] = PointerGetDatum(key);
	values[3] = PointerGetDatum(reason);

	/* The common case without a SQL statement (fastpath.c). */
	switch (CreditDeductFast(account, amount, key, reason, &r))
	{
		case DEDUCT_FAST_DONE:
			PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
		case DEDUCT_FAST_KEY_TAKEN:
			SPI_connect();
			UndoAndAnswerRetry(account, amount, key, reason, r.balance, &r);
			SPI_finish();
			PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
		case DEDUCT_FAST_DECLINED:
			SPI_connect();
			DeductLocked(account, amount, key, TextOrNull(reason), GetCurrentTimestamp(), &r);
			SPI_finish();
			PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
		case DEDUCT_FAST_UNAVAILABLE:
			break;
	}

	SPI_connect();

	/*
	 * Fast path: a metered account whose credits are all in the pool.  A key
	 * that is already taken (a retry) undoes the decrement and answers from
	 * the first entry.
	 */
	if (PgextExec(&plan_deduct_fast, values, nulls, 1) == 1)
	{
		int64		balance = PgextGetInt64(0, 1, 0);

		if (!PgextColIsNull(0, 2))
			CreditSetResult(&r, true, "deducted", balance, true, PgextGetInt64(0, 2, 0));
		else
			UndoAndAnswerRetry(account, amount, key, reason, balance, &r);
	}
	else
		DeductLocked(account, amount, key, TextOrNull(reason), GetCurrentTimestamp(), &r);

	SPI_finish();
	PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
}

/* ---- balance and sweep --------------------------------------------------- */

/* credit_balance(account): spendable now, expired and reserved excluded. */
Datum
credit_balance(PG_FUNCTION_ARGS)
{
	Datum		account = AccountArg(fcinfo, 0);
	AccountState st;
	int64		spendable;

	SPI_connect();
	if (!LedgerReadAccount(account, &st))
		AccountNotFound(account);
	spendable = st.balance - LedgerExpiredCredits(&st, GetCurrentTimestamp());
	SPI_finish();
	PG_RETURN_INT64(spendable);
}

/* Record the expiry of every expired lot of one account. */
static int
ExpireAccountLots(Datum account, TimestampTz now)
{
	AccountState st;
	Datum		values[2] = {account, TimestampTzGetDatum(now)};

	LedgerLockAccount(account, &st);
	PgextExec(&plan_expired_lots, values, NULL, 0);
	return LedgerRecordLotExpiry(&st);
}

/*
 * credit_sweep(batch): release reservations whose ttl has passed (up to
 * 'batch'), then record expired lots (up to 'batch' accounts).  Holds go
 * first so that the lot pass sees every credit they gave back; a release
 * also records the expiry of the expired lots it refilled (see
 * SettleReservation), so one sweep leaves no expired credit in any balance
 * it touched.  expired_lots counts the lots expired either way.
 */
Datum
credit_sweep(PG_FUNCTION_ARGS)
{
	int32		batch = PG_ARGISNULL(0) ? 1000 : PG_GETARG_INT32(0);
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[2] = {TimestampTzGetDatum(now), Int32GetDatum(batch)};
	int			lots = 0,
				reservations = 0;
	uint64		n,
				i;
	Datum	   *ids;
	Datum		out[2];

	AccountScopePlatform("credit_sweep");
	if (batch <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be positive, got %d", batch)));

	SPI_connect();
	n = PgextExec(&plan_sweep_reservations, values, NULL, 0);
	{
		int64	   *rids = palloc(sizeof(int64) * Max(n, 1));

		for (i = 0; i < n; i++)
			rids[i] = PgextGetInt64(i, 1, 0);
		for (i = 0; i < n; i++)
		{
			if (ReservationExpire(rids[i], now, &lots))
				reservations++;
		}
	}

	n = PgextExec(&plan_sweep_lot_accounts, values, NULL, 0);
	ids = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

		memcpy(u, DatumGetUUIDP(PgextGetDatum(i, 1, &isnull)), sizeof(pg_uuid_t));
		ids[i] = UUIDPGetDatum(u);
	}
	for (i = 0; i < n; i++)
		lots += ExpireAccountLots(ids[i], now);
	SPI_finish();

	out[0] = Int32GetDatum(lots);
	out[1] = Int32GetDatum(reservations);
	PG_RETURN_DATUM(PgextCompositeResult(fcinfo, out, NULL));
}
