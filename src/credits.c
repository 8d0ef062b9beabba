/*
 * credits.c — the credit ledger: grant, deduct, reserve/commit/release,
 * allocate, balance and the expiry sweep.
 *
 * Model (see sql/pgext--1.0.sql for the tables):
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
 * row lock (an UPDATE or SELECT ... FOR UPDATE), then its reservation, then
 * its lots.  No call locks two accounts, so there is no lock-order cycle.
 * The check and the decrement of the balance happen in one UPDATE ... WHERE
 * balance >= amount (fast path) or under the row lock (general path); a CHECK
 * constraint (balance >= 0) is the last line of defence.
 *
 * Idempotency: keys are unique per account across every money call (a unique
 * index on the ledger).  The same key with the same parameters returns the
 * first result with status 'duplicate'; with other parameters it is an error.
 * A refused call ('insufficient') records nothing, so a retry after a top-up
 * can succeed.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "accounts.h"
#include "common/spi.h"

PG_FUNCTION_INFO_V1(credit_grant);
PG_FUNCTION_INFO_V1(credit_deduct);
PG_FUNCTION_INFO_V1(credit_reserve);
PG_FUNCTION_INFO_V1(credit_commit);
PG_FUNCTION_INFO_V1(credit_release);
PG_FUNCTION_INFO_V1(credit_allocate);
PG_FUNCTION_INFO_V1(credit_balance);
PG_FUNCTION_INFO_V1(credit_sweep);

#define MAX_KEY_LEN		255
#define MAX_REASON_LEN	1000
#define MAX_KIND_LEN	32

/* What a credit call returns: pgext.credit_result. */
typedef struct CreditResult
{
	bool		ok;
	const char *status;
	bool		has_balance;
	int64		balance;
	bool		has_id;
	int64		id;
} CreditResult;

/* An account row, locked or read. */
typedef struct AccountState
{
	Datum		id;
	bool		unlimited;
	int64		balance;
	int64		lot_credits;
} AccountState;

/* Where a debit came from: parts of lots (in spending order) and the pool. */
typedef struct Parts
{
	int			nlots;
	int64	   *lot_ids;
	int64	   *lot_parts;
	int64		from_lots;
	int64		pool_part;
} Parts;

/* One ledger row to append. Zero ids and has_expires=false mean NULL. */
typedef struct LedgerEntry
{
	const char *op;
	const char *kind;
	int64		amount;
	int64		delta;
	int64		balance_after;
	text	   *key;
	const char *reason;
	int64		lot_id;
	int64		reservation_id;
	bool		has_expires;
	TimestampTz expires_at;
	const Parts *parts;
} LedgerEntry;

/* The ledger row an idempotency key already points at. */
typedef struct PriorEntry
{
	int64		id;
	char	   *op;
	char	   *kind;
	int64		amount;
	int64		balance_after;
	char	   *reason;
	bool		has_expires;
	TimestampTz expires_at;
	int64		reservation_id;
} PriorEntry;

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
	" RETURNING balance),"
	" i AS ("
	" INSERT INTO pgext.credit_ledger"
	" (account_id, op, amount, delta, balance_after, idempotency_key, reason)"
	" SELECT $1, 'deduct', $2, -$2, d.balance, $3, $4 FROM d"
	" ON CONFLICT (account_id, idempotency_key) DO NOTHING RETURNING id)"
	" SELECT d.balance, i.id FROM d LEFT JOIN i ON true",
	4, {UUIDOID, INT8OID, TEXTOID, TEXTOID}
};
static PgextPlan plan_lock_account = {
	"SELECT credit_mode, balance, lot_credits FROM pgext.accounts WHERE id = $1 FOR UPDATE",
	1, {UUIDOID}
};
static PgextPlan plan_read_account = {
	"SELECT credit_mode, balance, lot_credits FROM pgext.accounts WHERE id = $1",
	1, {UUIDOID}
};
static PgextPlan plan_account_add = {
	"UPDATE pgext.accounts SET balance = balance + $2, lot_credits = lot_credits + $3 "
	"WHERE id = $1 RETURNING balance",
	3, {UUIDOID, INT8OID, INT8OID}
};
static PgextPlan plan_ledger_insert = {
	"INSERT INTO pgext.credit_ledger (account_id, op, kind, amount, delta, balance_after, "
	"idempotency_key, reason, lot_id, reservation_id, expires_at, lot_ids, lot_parts) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
	"ON CONFLICT (account_id, idempotency_key) DO NOTHING RETURNING id",
	13, {UUIDOID, TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID,
	INT8OID, INT8OID, TIMESTAMPTZOID, INT8ARRAYOID, INT8ARRAYOID}
};
static PgextPlan plan_ledger_by_key = {
	"SELECT id, op, kind, amount, balance_after, reason, expires_at, reservation_id "
	"FROM pgext.credit_ledger WHERE account_id = $1 AND idempotency_key = $2",
	2, {UUIDOID, TEXTOID}
};
static PgextPlan plan_lots_spendable = {
	"SELECT id, remaining FROM pgext.credit_lots "
	"WHERE account_id = $1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2) "
	"AND ($3 IS NULL OR kind = $3) "
	"ORDER BY expires_at NULLS LAST, id FOR UPDATE",
	3, {UUIDOID, TIMESTAMPTZOID, TEXTOID}
};
static PgextPlan plan_lots_expired_sum = {
	"SELECT COALESCE(sum(remaining), 0)::bigint FROM pgext.credit_lots "
	"WHERE account_id = $1 AND remaining > 0 AND expires_at <= $2",
	2, {UUIDOID, TIMESTAMPTZOID}
};
static PgextPlan plan_lot_adjust = {
	"UPDATE pgext.credit_lots SET remaining = remaining + $2 WHERE id = $1",
	2, {INT8OID, INT8OID}
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
static PgextPlan plan_res_insert = {
	"INSERT INTO pgext.credit_reservations (account_id, amount, held, idempotency_key, ttl, "
	"expires_at, pool_part, lot_ids, lot_parts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
	"RETURNING id",
	9, {UUIDOID, INT8OID, INT8OID, TEXTOID, INTERVALOID, TIMESTAMPTZOID, INT8OID,
	INT8ARRAYOID, INT8ARRAYOID}
};
static PgextPlan plan_res_account = {
	"SELECT account_id FROM pgext.credit_reservations WHERE id = $1",
	1, {INT8OID}
};
static PgextPlan plan_res_lock = {
	"SELECT amount, held, committed, status, expires_at, pool_part, lot_ids, lot_parts "
	"FROM pgext.credit_reservations WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};
static PgextPlan plan_res_settle = {
	"UPDATE pgext.credit_reservations SET status = $2, committed = $3, settled_at = $4 "
	"WHERE id = $1",
	4, {INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID}
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
/* Expired lots among those a settled reservation gave credits back to. */
static PgextPlan plan_expired_lots_of = {
	"SELECT id, remaining FROM pgext.credit_lots "
	"WHERE id = ANY ($1) AND account_id = $2 AND remaining > 0 AND expires_at <= $3 "
	"ORDER BY expires_at, id FOR UPDATE",
	3, {INT8ARRAYOID, UUIDOID, TIMESTAMPTZOID}
};
static PgextPlan plan_sweep_reservations = {
	"SELECT id FROM pgext.credit_reservations "
	"WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
	2, {TIMESTAMPTZOID, INT4OID}
};

/* ---- argument checks ----------------------------------------------------- */

/* A required, strictly positive amount of credits. */
static int64
AmountArg(FunctionCallInfo fcinfo, int argno, const char *what)
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
static text *
LabelArg(FunctionCallInfo fcinfo, int argno, const char *what, bool required, int maxlen)
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
	if (VARSIZE_ANY_EXHDR(t) == 0 || VARSIZE_ANY_EXHDR(t) > maxlen)
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
				 errmsg("invalid grant kind \"%s\"", kind),
				 errhint("A kind is 1 to %d characters of a-z, 0-9 and _, such as 'bonus' or 'purchase'.",
						 MAX_KIND_LEN)));
	if (strcmp(kind, "allocation") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kind 'allocation' is reserved for plan allocations"),
				 errhint("Use pgext.credit_allocate() for periodic plan credits.")));
	return kind;
}

/* An optional expiry that, when given, must lie in the future. */
static bool
ExpiryArg(FunctionCallInfo fcinfo, int argno, TimestampTz now, TimestampTz *expires)
{
	if (PG_ARGISNULL(argno))
		return false;
	*expires = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(*expires) || *expires <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expires_at must be a finite time in the future, got %s",
						timestamptz_to_str(*expires)),
				 errhint("Pass NULL for credits that never expire.")));
	return true;
}

static const char *
TextOrNull(text *t)
{
	return t ? text_to_cstring(t) : NULL;
}

/* ---- account, lots and ledger primitives (inside SPI) -------------------- */

/* Fill an AccountState from row 0 of the current result. */
static void
ReadAccountRow(Datum account, AccountState *st)
{
	char	   *mode = PgextGetText(0, 1);

	st->id = account;
	st->unlimited = (strcmp(mode, "unlimited") == 0);
	st->balance = PgextGetInt64(0, 2, 0);
	st->lot_credits = PgextGetInt64(0, 3, 0);
}

/* Lock the account row (first lock of every change); errors if missing. */
static void
LockAccount(Datum account, AccountState *st)
{
	if (PgextExec(&plan_lock_account, &account, NULL, 1) != 1)
		AccountNotFound(account);
	ReadAccountRow(account, st);
}

/* Add to balance and lot_credits; keeps st in step. */
static void
AccountAdd(AccountState *st, int64 delta, int64 lot_delta)
{
	Datum		values[3] = {st->id, Int64GetDatum(delta), Int64GetDatum(lot_delta)};

	if (delta == 0 && lot_delta == 0)
		return;
	if (PgextExec(&plan_account_add, values, NULL, 1) != 1)
		AccountNotFound(st->id);
	st->balance = PgextGetInt64(0, 1, 0);
	st->lot_credits += lot_delta;
}

/* Credits still in lots whose expiry has passed (not spendable). */
static int64
ExpiredCredits(const AccountState *st, TimestampTz now)
{
	Datum		values[2] = {st->id, TimestampTzGetDatum(now)};

	if (st->lot_credits == 0)
		return 0;
	PgextExec(&plan_lots_expired_sum, values, NULL, 1);
	return PgextGetInt64(0, 1, 0);
}

/* Build a bigint[] Datum from a C array (in the current context). */
static Datum
Int64Array(const int64 *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* Read a bigint[] Datum into a palloc'd C array; returns its length. */
static int
ReadInt64Array(Datum arr, int64 **out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(DatumGetArrayTypeP(arr), INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	*out = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
		(*out)[i] = DatumGetInt64(elems[i]);
	return n;
}

/* Append a ledger row; returns its id.  Keys were checked under the lock. */
static int64
LedgerAppend(const AccountState *st, const LedgerEntry *e)
{
	Datum		v[13];
	char		n[13];

	memset(n, ' ', sizeof(n));
	v[0] = st->id;
	v[1] = CStringGetTextDatum(e->op);
	if (e->kind)
		v[2] = CStringGetTextDatum(e->kind);
	else
		n[2] = 'n';
	v[3] = Int64GetDatum(e->amount);
	v[4] = Int64GetDatum(e->delta);
	v[5] = Int64GetDatum(e->balance_after);
	if (e->key)
		v[6] = PointerGetDatum(e->key);
	else
		n[6] = 'n';
	if (e->reason)
		v[7] = CStringGetTextDatum(e->reason);
	else
		n[7] = 'n';
	v[8] = Int64GetDatum(e->lot_id);
	n[8] = e->lot_id ? ' ' : 'n';
	v[9] = Int64GetDatum(e->reservation_id);
	n[9] = e->reservation_id ? ' ' : 'n';
	v[10] = TimestampTzGetDatum(e->expires_at);
	n[10] = e->has_expires ? ' ' : 'n';
	if (e->parts && e->parts->nlots > 0)
	{
		v[11] = Int64Array(e->parts->lot_ids, e->parts->nlots);
		v[12] = Int64Array(e->parts->lot_parts, e->parts->nlots);
	}
	else
		n[11] = n[12] = 'n';

	if (PgextExec(&plan_ledger_insert, v, n, 1) != 1)
		elog(ERROR, "pgext: idempotency key collided while the account was locked");
	return PgextGetInt64(0, 1, 0);
}

/* Look up the ledger row an idempotency key already names. */
static bool
FindPrior(Datum account, text *key, PriorEntry *p)
{
	Datum		values[2] = {account, PointerGetDatum(key)};
	bool		isnull;

	if (key == NULL || PgextExec(&plan_ledger_by_key, values, NULL, 1) != 1)
		return false;
	p->id = PgextGetInt64(0, 1, 0);
	p->op = PgextGetText(0, 2);
	p->kind = PgextGetText(0, 3);
	p->amount = PgextGetInt64(0, 4, 0);
	p->balance_after = PgextGetInt64(0, 5, 0);
	p->reason = PgextGetText(0, 6);
	p->expires_at = DatumGetTimestampTz(PgextGetDatum(0, 7, &isnull));
	p->has_expires = !isnull;
	p->reservation_id = PgextGetInt64(0, 8, 0);
	return true;
}

static bool
StrEq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Compare a retried request with the ledger row its key names: identical
 * requests get the first result back as 'duplicate', others are an error.
 */
static void
PriorResult(text *key, const PriorEntry *p, const char *op, const char *kind, int64 amount,
			const char *reason, bool has_expires, TimestampTz expires_at, CreditResult *r)
{
	bool		same = StrEq(p->op, op) && p->amount == amount;

	if (strcmp(op, "grant") == 0)
		same = same && StrEq(p->kind, kind) && p->has_expires == has_expires &&
			(!has_expires || p->expires_at == expires_at);
	if (strcmp(op, "deduct") == 0)
		same = same && StrEq(p->reason, reason);
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key \"%s\" was already used for a different request",
						text_to_cstring(key)),
				 errdetail("The first request with this key was a %s of " INT64_FORMAT " credits (ledger entry " INT64_FORMAT ").",
						   p->op, p->amount, p->id),
				 errhint("Use a new key for a new request; reuse a key only to retry the very same request.")));
	r->ok = true;
	r->status = "duplicate";
	r->has_balance = true;
	r->balance = p->balance_after;
	r->has_id = true;
	r->id = (strcmp(op, "reserve") == 0) ? p->reservation_id : p->id;
}

/*
 * Lock the account's spendable lots (optionally of one kind) in spending
 * order and plan taking 'want' credits: lots first, then (unless lots_only)
 * the pool.  Returns what is spendable; parts is filled only when enough.
 */
static int64
PlanDebit(const AccountState *st, TimestampTz now, int64 want, const char *only_kind,
		  bool lots_only, Parts *parts)
{
	Datum		values[3] = {st->id, TimestampTzGetDatum(now), (Datum) 0};
	char		nulls[3] = {' ', ' ', 'n'};
	int64		pool = lots_only ? 0 : st->balance - st->lot_credits;
	int64		spendable = pool;
	int64		left = want;
	uint64		n = 0,
				i;

	memset(parts, 0, sizeof(Parts));
	if (st->lot_credits > 0)
	{
		if (only_kind)
		{
			values[2] = CStringGetTextDatum(only_kind);
			nulls[2] = ' ';
		}
		n = PgextExec(&plan_lots_spendable, values, nulls, 0);
		parts->lot_ids = palloc(sizeof(int64) * Max(n, 1));
		parts->lot_parts = palloc(sizeof(int64) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			int64		id = PgextGetInt64(i, 1, 0);
			int64		rem = PgextGetInt64(i, 2, 0);

			spendable += rem;
			if (left > 0)
			{
				int64		take = Min(rem, left);

				parts->lot_ids[parts->nlots] = id;
				parts->lot_parts[parts->nlots] = take;
				parts->nlots++;
				parts->from_lots += take;
				left -= take;
			}
		}
	}
	parts->pool_part = Min(left, pool);
	return spendable;
}

/* Apply a planned debit to the lots and the account. */
static void
ApplyDebit(AccountState *st, const Parts *parts)
{
	int			i;

	for (i = 0; i < parts->nlots; i++)
	{
		Datum		values[2] = {Int64GetDatum(parts->lot_ids[i]),
		Int64GetDatum(-parts->lot_parts[i])};

		PgextExec(&plan_lot_adjust, values, NULL, 0);
	}
	AccountAdd(st, -(parts->from_lots + parts->pool_part), -parts->from_lots);
}

/*
 * Give 'amount' of a debit back where it came from, last-taken first: the
 * pool, then the lots in reverse spending order (an expiring credit goes back
 * to its lot and keeps its expiry).
 */
static void
ReturnCredits(AccountState *st, int64 amount, int64 pool_part, int nlots,
			  const int64 *lot_ids, const int64 *lot_parts)
{
	int64		to_pool = Min(amount, pool_part);
	int64		to_lots = 0;
	int			i;

	amount -= to_pool;
	for (i = nlots - 1; i >= 0 && amount > 0; i--)
	{
		int64		give = Min(amount, lot_parts[i]);
		Datum		values[2] = {Int64GetDatum(lot_ids[i]), Int64GetDatum(give)};

		PgextExec(&plan_lot_adjust, values, NULL, 0);
		to_lots += give;
		amount -= give;
	}
	if (amount != 0)
		elog(ERROR, "pgext: reservation parts do not cover the amount returned");
	AccountAdd(st, to_pool + to_lots, to_lots);
}

/* Fail unless balance + amount fits in a bigint. */
static void
CheckNoOverflow(const AccountState *st, int64 amount)
{
	int64		sum;

	if (pg_add_s64_overflow(st->balance, amount, &sum))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("granting " INT64_FORMAT " credits would overflow the account balance of " INT64_FORMAT,
						amount, st->balance),
				 errhint("Balances are limited to 9223372036854775807 credits.")));
}

/* Build pgext.credit_result in the caller's memory context. */
static Datum
MakeResult(FunctionCallInfo fcinfo, const CreditResult *r)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, !r->has_balance, !r->has_id};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pgext: credit function must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = BoolGetDatum(r->ok);
	values[1] = CStringGetTextDatum(r->status);
	values[2] = Int64GetDatum(r->balance);
	values[3] = Int64GetDatum(r->id);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

static void
SetResult(CreditResult *r, bool ok, const char *status, int64 balance, bool has_id, int64 id)
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
	int64		amount = AmountArg(fcinfo, 1, "amount");
	text	   *key = LabelArg(fcinfo, 2, "idempotency_key", true, MAX_KEY_LEN);
	char	   *kind = KindArg(fcinfo, 3);
	TimestampTz expires = 0;
	bool		has_expires = ExpiryArg(fcinfo, 4, now, &expires);
	AccountState st;
	PriorEntry	prior;
	CreditResult r;
	int64		lot_id = 0;
	int64		expired;

	SPI_connect();
	LockAccount(account, &st);
	if (FindPrior(account, key, &prior))
		PriorResult(key, &prior, "grant", kind, amount, NULL, has_expires, expires, &r);
	else
	{
		LedgerEntry e = {"grant", kind, amount, amount, 0, key, NULL, 0, 0, has_expires, expires, NULL};

		CheckNoOverflow(&st, amount);
		expired = ExpiredCredits(&st, now);
		if (has_expires)
		{
			Datum		v[6] = {account, CStringGetTextDatum(kind), Int64GetDatum(amount),
			TimestampTzGetDatum(expires), 0, 0};

			PgextExec(&plan_lot_insert, v, "    nn", 1);
			lot_id = PgextGetInt64(0, 1, 0);
		}
		AccountAdd(&st, amount, has_expires ? amount : 0);
		e.balance_after = st.balance;
		e.lot_id = lot_id;
		SetResult(&r, true, "granted", st.balance - expired, true, LedgerAppend(&st, &e));
	}
	SPI_finish();
	PG_RETURN_DATUM(MakeResult(fcinfo, &r));
}

/*
 * Forfeit what earlier allocations left beyond rollover_cap, in spending
 * order (the credits that would have been spent first go first).
 */
static void
ApplyRolloverCap(AccountState *st, TimestampTz now, int64 cap, const char *period)
{
	Parts		parts;
	int64		carried = PlanDebit(st, now, PG_INT64_MAX, "allocation", true, &parts);
	int64		excess = carried - cap;
	LedgerEntry e = {"forfeit", "allocation", 0, 0, 0, NULL, NULL, 0, 0, false, 0, &parts};
	char	   *reason;

	if (excess <= 0)
		return;
	/* PlanDebit took everything; keep only the first 'excess' credits. */
	PlanDebit(st, now, excess, "allocation", true, &parts);
	ApplyDebit(st, &parts);
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
	int64		amount = AmountArg(fcinfo, 1, "amount");
	text	   *period = LabelArg(fcinfo, 2, "period_key", true, MAX_KEY_LEN);
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
	LockAccount(account, &st);
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
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("period \"%s\" was already allocated with different parameters", period_str),
					 errdetail("The first allocation for this period was " INT64_FORMAT " credits.", old_amount),
					 errhint("An allocation happens once per (account, period_key); use a new period_key for a new period.")));
		SetResult(&r, true, "duplicate", PgextGetInt64(0, 5, 0), true, PgextGetInt64(0, 4, 0));
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
		CheckNoOverflow(&st, amount);
		PgextExec(&plan_lot_insert, v, n, 1);
		e.lot_id = PgextGetInt64(0, 1, 0);
		AccountAdd(&st, amount, amount);
		e.balance_after = st.balance;
		SetResult(&r, true, "allocated", 0, true, LedgerAppend(&st, &e));
		r.balance = st.balance - ExpiredCredits(&st, now);
	}
	SPI_finish();
	PG_RETURN_DATUM(MakeResult(fcinfo, &r));
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

	LockAccount(account, &st);
	if (FindPrior(account, key, &prior))
	{
		PriorResult(key, &prior, "deduct", NULL, amount, reason, false, 0, r);
		return;
	}
	if (st.unlimited)
	{
		e.kind = "unlimited";
		e.delta = 0;
		e.balance_after = st.balance;
		SetResult(r, true, "unlimited", st.balance - ExpiredCredits(&st, now), true,
				  LedgerAppend(&st, &e));
		return;
	}
	spendable = PlanDebit(&st, now, amount, NULL, false, &parts);
	if (spendable < amount)
	{
		SetResult(r, false, "insufficient", spendable, false, 0);
		return;
	}
	ApplyDebit(&st, &parts);
	e.balance_after = st.balance;
	e.lot_id = parts.nlots == 1 ? parts.lot_ids[0] : 0;
	e.parts = &parts;
	SetResult(r, true, "deducted", spendable - amount, true, LedgerAppend(&st, &e));
}

/* credit_deduct(account, amount, idempotency_key, reason) */
Datum
credit_deduct(PG_FUNCTION_ARGS)
{
	Datum		account = AccountArg(fcinfo, 0);
	int64		amount = AmountArg(fcinfo, 1, "amount");
	text	   *key = LabelArg(fcinfo, 2, "idempotency_key", false, MAX_KEY_LEN);
	text	   *reason = LabelArg(fcinfo, 3, "reason", false, MAX_REASON_LEN);
	Datum		values[4];
	char		nulls[4] = {' ', ' ', key ? ' ' : 'n', reason ? ' ' : 'n'};
	CreditResult r;

	values[0] = account;
	values[1] = Int64GetDatum(amount);
	values[2] = PointerGetDatum(key);
	values[3] = PointerGetDatum(reason);

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
			SetResult(&r, true, "deducted", balance, true, PgextGetInt64(0, 2, 0));
		else
		{
			AccountState st = {account, false, balance, 0};
			PriorEntry	prior;

			AccountAdd(&st, amount, 0);
			if (!FindPrior(account, key, &prior))
				elog(ERROR, "pgext: idempotency key conflict without a ledger entry");
			PriorResult(key, &prior, "deduct", NULL, amount, TextOrNull(reason), false, 0, &r);
		}
	}
	else
		DeductLocked(account, amount, key, TextOrNull(reason), GetCurrentTimestamp(), &r);

	SPI_finish();
	PG_RETURN_DATUM(MakeResult(fcinfo, &r));
}

/* ---- reservations -------------------------------------------------------- */

/* credit_reserve(account, amount, idempotency_key, ttl) */
Datum
credit_reserve(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTimestamp();
	Datum		account = AccountArg(fcinfo, 0);
	int64		amount = AmountArg(fcinfo, 1, "amount");
	text	   *key = LabelArg(fcinfo, 2, "idempotency_key", true, MAX_KEY_LEN);
	Interval   *ttl;
	TimestampTz expires;
	AccountState st;
	PriorEntry	prior;
	Parts		parts;
	CreditResult r;
	int64		spendable;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ttl must not be NULL"),
				 errhint("Pass how long the hold may last, e.g. '15 minutes'.")));
	ttl = PG_GETARG_INTERVAL_P(3);
	expires = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													  TimestampTzGetDatum(now),
													  IntervalPGetDatum(ttl)));
	if (expires <= now || expires > now + 7 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive and at most 7 days"),
				 errhint("A reservation is a short hold for work in progress; commit or release it.")));

	SPI_connect();
	LockAccount(account, &st);
	if (FindPrior(account, key, &prior))
		PriorResult(key, &prior, "reserve", NULL, amount, NULL, false, 0, &r);
	else
	{
		LedgerEntry e = {"reserve", NULL, amount, 0, 0, key, NULL, 0, 0, false, 0, NULL};
		const char *status = "reserved";
		Datum		v[9];

		memset(&parts, 0, sizeof(parts));
		spendable = PlanDebit(&st, now, st.unlimited ? 0 : amount, NULL, false, &parts);
		if (!st.unlimited && spendable < amount)
		{
			SetResult(&r, false, "insufficient", spendable, false, 0);
			SPI_finish();
			PG_RETURN_DATUM(MakeResult(fcinfo, &r));
		}
		if (st.unlimited)
		{
			status = "unlimited";
			e.kind = "unlimited";
		}
		else
		{
			ApplyDebit(&st, &parts);
			e.delta = -amount;
			spendable -= amount;
		}
		v[0] = account;
		v[1] = Int64GetDatum(amount);
		v[2] = Int64GetDatum(st.unlimited ? 0 : amount);
		v[3] = PointerGetDatum(key);
		v[4] = IntervalPGetDatum(ttl);
		v[5] = TimestampTzGetDatum(expires);
		v[6] = Int64GetDatum(parts.pool_part);
		v[7] = Int64Array(parts.lot_ids, parts.nlots);
		v[8] = Int64Array(parts.lot_parts, parts.nlots);
		PgextExec(&plan_res_insert, v, NULL, 1);
		e.reservation_id = PgextGetInt64(0, 1, 0);
		e.balance_after = st.balance;
		e.parts = &parts;
		LedgerAppend(&st, &e);
		SetResult(&r, true, status, spendable, true, e.reservation_id);
	}
	SPI_finish();
	PG_RETURN_DATUM(MakeResult(fcinfo, &r));
}

/*
 * Record the expiry of the lots in the current SPI result (id, remaining),
 * all of the locked account st: each lot's remaining credits leave the
 * balance with an 'expire' ledger entry.  Returns how many lots.
 */
static int
RecordLotExpiry(AccountState *st)
{
	uint64		n = SPI_processed,
				i;
	int64	   *ids = palloc(sizeof(int64) * Max(n, 1));
	int64	   *rems = palloc(sizeof(int64) * Max(n, 1));

	for (i = 0; i < n; i++)
	{
		ids[i] = PgextGetInt64(i, 1, 0);
		rems[i] = PgextGetInt64(i, 2, 0);
	}
	for (i = 0; i < n; i++)
	{
		LedgerEntry e = {"expire", NULL, rems[i], -rems[i], 0, NULL, "expired", ids[i], 0, false, 0, NULL};
		Datum		v[2] = {Int64GetDatum(ids[i]), Int64GetDatum(-rems[i])};

		PgextExec(&plan_lot_adjust, v, NULL, 0);
		AccountAdd(st, -rems[i], -rems[i]);
		e.balance_after = st->balance;
		LedgerAppend(st, &e);
	}
	return (int) n;
}

typedef enum SettleMode
{
	SETTLE_COMMIT,
	SETTLE_RELEASE,
	SETTLE_EXPIRE
} SettleMode;

/*
 * Commit, release or expire one reservation.  Locks the account, then the
 * reservation.  Returns false (nothing done) only for SETTLE_EXPIRE on a
 * reservation that is no longer held or not yet past its ttl.
 *
 * Credits given back go to where they were taken from.  A lot whose expiry
 * passed while the credits were held gets them back expired: its expiry is
 * recorded here, in the same transaction, as credit_sweep would, so the
 * recorded balance never holds dead credits (and a sweep needs no second
 * pass).  The number of lots so expired is added to *lots_expired.
 */
static bool
SettleReservation(int64 res_id, SettleMode mode, int64 commit_amount, bool commit_all,
				  TimestampTz now, CreditResult *r, int *lots_expired)
{
	Datum		rid = Int64GetDatum(res_id);
	AccountState st;
	Datum		account;
	bool		isnull;
	int64		amount,
				held,
				committed,
				pool_part,
				give_back;
	char	   *status;
	TimestampTz expires;
	int64	   *lot_ids,
			   *lot_parts;
	int			nlots;
	const char *kind;
	const char *new_status;

	if (PgextExec(&plan_res_account, &rid, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("reservation " INT64_FORMAT " does not exist", res_id),
				 errhint("Pass the id returned by pgext.credit_reserve().")));
	account = PgextGetDatum(0, 1, &isnull);
	LockAccount(account, &st);
	PgextExec(&plan_res_lock, &rid, NULL, 1);
	amount = PgextGetInt64(0, 1, 0);
	held = PgextGetInt64(0, 2, 0);
	committed = PgextGetInt64(0, 3, 0);
	status = PgextGetText(0, 4);
	expires = DatumGetTimestampTz(PgextGetDatum(0, 5, &isnull));
	pool_part = PgextGetInt64(0, 6, 0);
	nlots = ReadInt64Array(PgextGetDatum(0, 7, &isnull), &lot_ids);
	(void) ReadInt64Array(PgextGetDatum(0, 8, &isnull), &lot_parts);
	kind = (held == 0) ? "unlimited" : NULL;
	if (commit_all)
		commit_amount = amount;

	if (strcmp(status, "held") != 0)
	{
		if (mode == SETTLE_EXPIRE)
			return false;
		if (mode == SETTLE_COMMIT && strcmp(status, "committed") == 0 && committed == commit_amount)
			SetResult(r, true, "duplicate", st.balance - ExpiredCredits(&st, now), true, res_id);
		else if (mode == SETTLE_RELEASE && strcmp(status, "committed") != 0)
			SetResult(r, true, "duplicate", st.balance - ExpiredCredits(&st, now), true, res_id);
		else
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("reservation " INT64_FORMAT " is already %s", res_id,
							strcmp(status, "expired") == 0 ? "released (its ttl passed)" : status),
					 strcmp(status, "committed") == 0 ?
					 errdetail("It was committed for " INT64_FORMAT " of " INT64_FORMAT " reserved credits.",
							   committed, amount) : 0,
					 errhint(mode == SETTLE_COMMIT ?
							 "Reserve again (with a new idempotency key) to spend these credits." :
							 "A committed reservation cannot be released; grant credits back instead.")));
		return true;
	}
	if (expires <= now)
	{
		if (mode == SETTLE_COMMIT)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("reservation " INT64_FORMAT " expired at %s and can no longer be committed",
							res_id, timestamptz_to_str(expires)),
					 errhint("Reserve again with a longer ttl; expired holds are released by pgext.credit_sweep().")));
	}
	else if (mode == SETTLE_EXPIRE)
		return false;

	if (mode == SETTLE_COMMIT)
	{
		LedgerEntry e = {"commit", kind, commit_amount, 0, st.balance, NULL, NULL, 0, res_id, false, 0, NULL};

		if (commit_amount > amount)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot commit " INT64_FORMAT " credits: reservation " INT64_FORMAT " holds only " INT64_FORMAT,
							commit_amount, res_id, amount),
					 errhint("Commit at most the reserved amount; deduct the rest separately.")));
		LedgerAppend(&st, &e);
		give_back = held - Min(held, commit_amount);
		new_status = "committed";
	}
	else
	{
		give_back = held;
		new_status = (mode == SETTLE_EXPIRE) ? "expired" : "released";
	}

	if (give_back > 0 || mode != SETTLE_COMMIT)
	{
		LedgerEntry e = {"release", kind, mode == SETTLE_COMMIT ? give_back : amount, give_back, 0,
			NULL, NULL, 0, res_id, false, 0, NULL};

		e.reason = mode == SETTLE_COMMIT ? "rest of a partial commit" :
			mode == SETTLE_EXPIRE ? "ttl passed" : "released";
		ReturnCredits(&st, give_back, pool_part, nlots, lot_ids, lot_parts);
		e.balance_after = st.balance;
		LedgerAppend(&st, &e);
		if (nlots > 0)
		{
			Datum		v[3] = {Int64Array(lot_ids, nlots), st.id, TimestampTzGetDatum(now)};
			int			expired;

			PgextExec(&plan_expired_lots_of, v, NULL, 0);
			expired = RecordLotExpiry(&st);
			if (lots_expired)
				*lots_expired += expired;
		}
	}
	{
		Datum		v[4] = {rid, CStringGetTextDatum(new_status), Int64GetDatum(commit_amount),
		TimestampTzGetDatum(now)};

		PgextExec(&plan_res_settle, v, mode == SETTLE_COMMIT ? NULL : "  n ", 0);
	}
	SetResult(r, true, new_status, st.balance - ExpiredCredits(&st, now), true, res_id);
	return true;
}

/* Fetch a required reservation id argument. */
static int64
ReservationArg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("reservation must not be NULL"),
				 errhint("Pass the id returned by pgext.credit_reserve().")));
	return PG_GETARG_INT64(0);
}

/* credit_commit(reservation, amount): spend all or part; the rest goes back. */
Datum
credit_commit(PG_FUNCTION_ARGS)
{
	int64		res_id = ReservationArg(fcinfo);
	bool		commit_all = PG_ARGISNULL(1);
	int64		amount = commit_all ? 0 : AmountArg(fcinfo, 1, "amount");
	CreditResult r;

	SPI_connect();
	SettleReservation(res_id, SETTLE_COMMIT, amount, commit_all, GetCurrentTimestamp(), &r, NULL);
	SPI_finish();
	PG_RETURN_DATUM(MakeResult(fcinfo, &r));
}

/* credit_release(reservation): give the whole hold back. */
Datum
credit_release(PG_FUNCTION_ARGS)
{
	int64		res_id = ReservationArg(fcinfo);
	CreditResult r;

	SPI_connect();
	SettleReservation(res_id, SETTLE_RELEASE, 0, false, GetCurrentTimestamp(), &r, NULL);
	SPI_finish();
	PG_RETURN_DATUM(MakeResult(fcinfo, &r));
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
	if (PgextExec(&plan_read_account, &account, NULL, 1) != 1)
		AccountNotFound(account);
	ReadAccountRow(account, &st);
	spendable = st.balance - ExpiredCredits(&st, GetCurrentTimestamp());
	SPI_finish();
	PG_RETURN_INT64(spendable);
}

/* Record the expiry of every expired lot of one account. */
static int
ExpireAccountLots(Datum account, TimestampTz now)
{
	AccountState st;
	Datum		values[2] = {account, TimestampTzGetDatum(now)};

	LockAccount(account, &st);
	PgextExec(&plan_expired_lots, values, NULL, 0);
	return RecordLotExpiry(&st);
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
	TupleDesc	tupdesc;
	Datum		out[2];
	bool		nulls[2] = {false, false};

	if (batch <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be positive, got %d", batch)));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pgext: credit_sweep must return a composite type");

	SPI_connect();
	n = PgextExec(&plan_sweep_reservations, values, NULL, 0);
	{
		int64	   *rids = palloc(sizeof(int64) * Max(n, 1));

		for (i = 0; i < n; i++)
			rids[i] = PgextGetInt64(i, 1, 0);
		for (i = 0; i < n; i++)
		{
			CreditResult r;

			if (SettleReservation(rids[i], SETTLE_EXPIRE, 0, false, now, &r, &lots))
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
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), out, nulls)));
}
