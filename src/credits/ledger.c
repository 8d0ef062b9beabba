/*
 * ledger.c — the credit ledger's primitives: the account row lock, lots,
 * the debit plan (which credits a debit takes), ledger rows and idempotency.
 * The model, spending order, lock order and idempotency rules are described
 * in credits.c.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "accounts.h"
#include "common/errcodes.h"
#include "common/spi.h"
#include "credits/ledger.h"

/* forgotten: the mark pgext.account_forget leaves in the row (accounts.h) */
static PgextPlan plan_lock_account = {
	"SELECT credit_mode, balance, lot_credits, pg_catalog.starts_with(external_id, 'forgotten:') "
	"FROM pgext.accounts WHERE id = $1 FOR UPDATE",
	1, {UUIDOID}
};
static PgextPlan plan_read_account = {
	"SELECT credit_mode, balance, lot_credits, pg_catalog.starts_with(external_id, 'forgotten:') "
	"FROM pgext.accounts WHERE id = $1",
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

/* Fill an AccountState from row 0 of the current result. */
static void
ReadAccountRow(Datum account, AccountState *st)
{
	char	   *mode = PgextGetText(0, 1);
	bool		isnull;

	st->id = account;
	st->unlimited = (strcmp(mode, "unlimited") == 0);
	st->balance = PgextGetInt64(0, 2, 0);
	st->lot_credits = PgextGetInt64(0, 3, 0);
	st->forgotten = DatumGetBool(PgextGetDatum(0, 4, &isnull));
}

/*
 * Refuse a new credit operation (grant, allocate, deduct, reserve) on an
 * account that was forgotten (pgext.account_forget): its money rows are kept
 * for the books, but it takes no new business.  Settling holds made before
 * (commit, release) and the sweep still work.
 */
void
LedgerRefuseForgotten(const AccountState *st)
{
	if (st->forgotten)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("account %s was forgotten (pgext.account_forget): it takes no new credit operations",
						DatumGetCString(DirectFunctionCall1(uuid_out, st->id))),
				 errhint("Create a new account for a returning customer.")));
}

/* Lock the account row (first lock of every change); errors if missing. */
void
LedgerLockAccount(Datum account, AccountState *st)
{
	if (PgextExec(&plan_lock_account, &account, NULL, 1) != 1)
		AccountNotFound(account);
	ReadAccountRow(account, st);
}

/* Read the account row without locking it; false if it does not exist. */
bool
LedgerReadAccount(Datum account, AccountState *st)
{
	if (PgextExec(&plan_read_account, &account, NULL, 1) != 1)
		return false;
	ReadAccountRow(account, st);
	return true;
}

/* Add to balance and lot_credits; keeps st in step. */
void
LedgerAccountAdd(AccountState *st, int64 delta, int64 lot_delta)
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
int64
LedgerExpiredCredits(const AccountState *st, TimestampTz now)
{
	Datum		values[2] = {st->id, TimestampTzGetDatum(now)};

	if (st->lot_credits == 0)
		return 0;
	PgextExec(&plan_lots_expired_sum, values, NULL, 1);
	return PgextGetInt64(0, 1, 0);
}

/* Build a bigint[] Datum from a C array (in the current context). */
Datum
LedgerInt64Array(const int64 *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* Read a bigint[] Datum into a palloc'd C array; returns its length. */
int
LedgerReadInt64Array(Datum arr, int64 **out)
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
int64
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
		v[11] = LedgerInt64Array(e->parts->lot_ids, e->parts->nlots);
		v[12] = LedgerInt64Array(e->parts->lot_parts, e->parts->nlots);
	}
	else
		n[11] = n[12] = 'n';

	if (PgextExec(&plan_ledger_insert, v, n, 1) != 1)
		elog(ERROR, "pgext: idempotency key collided while the account was locked");
	return PgextGetInt64(0, 1, 0);
}

/* Look up the ledger row an idempotency key already names. */
bool
LedgerFindPrior(Datum account, text *key, PriorEntry *p)
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

/* Equal C strings, NULL equal only to NULL. */
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
void
LedgerPriorResult(text *key, const PriorEntry *p, const char *op, const char *kind, int64 amount,
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
				(errcode(PGEXT_ERRCODE_IDEMPOTENCY_CONFLICT),
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
int64
LedgerPlanDebit(const AccountState *st, TimestampTz now, int64 want, const char *only_kind,
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
void
LedgerApplyDebit(AccountState *st, const Parts *parts)
{
	int			i;

	for (i = 0; i < parts->nlots; i++)
	{
		Datum		values[2] = {Int64GetDatum(parts->lot_ids[i]),
		Int64GetDatum(-parts->lot_parts[i])};

		PgextExec(&plan_lot_adjust, values, NULL, 0);
	}
	LedgerAccountAdd(st, -(parts->from_lots + parts->pool_part), -parts->from_lots);
}

/*
 * Give 'amount' of a debit back where it came from, last-taken first: the
 * pool, then the lots in reverse spending order (an expiring credit goes back
 * to its lot and keeps its expiry).
 */
void
LedgerReturnCredits(AccountState *st, int64 amount, int64 pool_part, int nlots,
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
	LedgerAccountAdd(st, to_pool + to_lots, to_lots);
}

/* Fail unless balance + amount fits in a bigint. */
void
LedgerCheckNoOverflow(const AccountState *st, int64 amount)
{
	int64		sum;

	if (pg_add_s64_overflow(st->balance, amount, &sum))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("granting " INT64_FORMAT " credits would overflow the account balance of " INT64_FORMAT,
						amount, st->balance),
				 errhint("Balances are limited to 9223372036854775807 credits.")));
}

/*
 * Record the expiry of the lots in the current SPI result (id, remaining),
 * all of the locked account st: each lot's remaining credits leave the
 * balance with an 'expire' ledger entry.  Returns how many lots.
 */
int
LedgerRecordLotExpiry(AccountState *st)
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
		LedgerAccountAdd(st, -rems[i], -rems[i]);
		e.balance_after = st->balance;
		LedgerAppend(st, &e);
	}
	return (int) n;
}
