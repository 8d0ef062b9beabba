/*
 * reservations.c — holds on credits for work in progress: credit_reserve
 * takes credits out of the balance (as a deduct would, keeping where they
 * came from), credit_commit spends all or part of them, credit_release and
 * the ttl (credit_sweep) give them back where they came from.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "accounts.h"
#include "accounts_scope.h"
#include "common/spi.h"
#include "credits/credits.h"

PG_FUNCTION_INFO_V1(credit_reserve);
PG_FUNCTION_INFO_V1(credit_commit);
PG_FUNCTION_INFO_V1(credit_release);

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
/* Expired lots among those a settled reservation gave credits back to. */
static PgextPlan plan_expired_lots_of = {
	"SELECT id, remaining FROM pgext.credit_lots "
	"WHERE id = ANY ($1) AND account_id = $2 AND remaining > 0 AND expires_at <= $3 "
	"ORDER BY expires_at, id FOR UPDATE",
	3, {INT8ARRAYOID, UUIDOID, TIMESTAMPTZOID}
};

/* credit_reserve(account, amount, idempotency_key, ttl) */
Datum
credit_reserve(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTimestamp();
	Datum		account = AccountArg(fcinfo, 0);
	int64		amount = CreditAmountArg(fcinfo, 1, "amount");
	text	   *key = CreditLabelArg(fcinfo, 2, "idempotency_key", true, MAX_KEY_LEN);
	Interval   *ttl;
	Interval	bound;
	bool		far_out;
	TimestampTz expires = 0;
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
	/* a ttl far outside the bounds is refused before now + ttl can overflow */
	bound.time = 0;
	bound.day = 8;
	bound.month = 0;
	far_out = DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(ttl),
												IntervalPGetDatum(&bound))) > 0;
	bound.day = -8;
	far_out = far_out || DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(ttl),
														   IntervalPGetDatum(&bound))) < 0;
	if (!far_out)
		expires = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														  TimestampTzGetDatum(now),
														  IntervalPGetDatum(ttl)));
	if (far_out || expires <= now || expires > now + 7 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive and at most 7 days"),
				 errhint("A reservation is a short hold for work in progress; commit or release it.")));

	SPI_connect();
	LedgerLockAccount(account, &st);
	LedgerRefuseForgotten(&st);
	if (LedgerFindPrior(account, key, &prior))
		LedgerPriorResult(key, &prior, "reserve", NULL, amount, NULL, false, 0, &r);
	else
	{
		LedgerEntry e = {"reserve", NULL, amount, 0, 0, key, NULL, 0, 0, false, 0, NULL};
		const char *status = "reserved";
		Datum		v[9];

		memset(&parts, 0, sizeof(parts));
		spendable = LedgerPlanDebit(&st, now, st.unlimited ? 0 : amount, NULL, false, &parts);
		if (!st.unlimited && spendable < amount)
		{
			CreditSetResult(&r, false, "insufficient", spendable, false, 0);
			SPI_finish();
			PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
		}
		if (st.unlimited)
		{
			status = "unlimited";
			e.kind = "unlimited";
		}
		else
		{
			LedgerApplyDebit(&st, &parts);
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
		v[7] = LedgerInt64Array(parts.lot_ids, parts.nlots);
		v[8] = LedgerInt64Array(parts.lot_parts, parts.nlots);
		PgextExec(&plan_res_insert, v, NULL, 1);
		e.reservation_id = PgextGetInt64(0, 1, 0);
		e.balance_after = st.balance;
		e.parts = &parts;
		LedgerAppend(&st, &e);
		CreditSetResult(&r, true, status, spendable, true, e.reservation_id);
	}
	SPI_finish();
	PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
}

/* What settling a reservation does. */
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
	if (mode != SETTLE_EXPIRE)
		AccountScopeCheck(account);
	LedgerLockAccount(account, &st);
	PgextExec(&plan_res_lock, &rid, NULL, 1);
	amount = PgextGetInt64(0, 1, 0);
	held = PgextGetInt64(0, 2, 0);
	committed = PgextGetInt64(0, 3, 0);
	status = PgextGetText(0, 4);
	expires = DatumGetTimestampTz(PgextGetDatum(0, 5, &isnull));
	pool_part = PgextGetInt64(0, 6, 0);
	nlots = LedgerReadInt64Array(PgextGetDatum(0, 7, &isnull), &lot_ids);
	(void) LedgerReadInt64Array(PgextGetDatum(0, 8, &isnull), &lot_parts);
	kind = (held == 0) ? "unlimited" : NULL;
	if (commit_all)
		commit_amount = amount;

	if (strcmp(status, "held") != 0)
	{
		if (mode == SETTLE_EXPIRE)
			return false;
		if (mode == SETTLE_COMMIT && strcmp(status, "committed") == 0 && committed == commit_amount)
			CreditSetResult(r, true, "duplicate", st.balance - LedgerExpiredCredits(&st, now), true, res_id);
		else if (mode == SETTLE_RELEASE && strcmp(status, "committed") != 0)
			CreditSetResult(r, true, "duplicate", st.balance - LedgerExpiredCredits(&st, now), true, res_id);
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
		LedgerReturnCredits(&st, give_back, pool_part, nlots, lot_ids, lot_parts);
		e.balance_after = st.balance;
		LedgerAppend(&st, &e);
		if (nlots > 0)
		{
			Datum		v[3] = {LedgerInt64Array(lot_ids, nlots), st.id, TimestampTzGetDatum(now)};
			int			expired;

			PgextExec(&plan_expired_lots_of, v, NULL, 0);
			expired = LedgerRecordLotExpiry(&st);
			if (lots_expired)
				*lots_expired += expired;
		}
	}
	{
		Datum		v[4] = {rid, CStringGetTextDatum(new_status), Int64GetDatum(commit_amount),
		TimestampTzGetDatum(now)};

		PgextExec(&plan_res_settle, v, mode == SETTLE_COMMIT ? NULL : "  n ", 0);
	}
	CreditSetResult(r, true, new_status, st.balance - LedgerExpiredCredits(&st, now), true, res_id);
	return true;
}

/* Release a held reservation whose ttl has passed (see credits.h). */
bool
ReservationExpire(int64 res_id, TimestampTz now, int *lots_expired)
{
	CreditResult r;

	return SettleReservation(res_id, SETTLE_EXPIRE, 0, false, now, &r, lots_expired);
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
	int64		amount = commit_all ? 0 : CreditAmountArg(fcinfo, 1, "amount");
	CreditResult r;

	SPI_connect();
	SettleReservation(res_id, SETTLE_COMMIT, amount, commit_all, GetCurrentTimestamp(), &r, NULL);
	SPI_finish();
	PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
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
	PG_RETURN_DATUM(CreditMakeResult(fcinfo, &r));
}
