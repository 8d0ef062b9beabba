/*
 * ledger.h — the credit ledger's primitives (ledger.c): the account lock,
 * lots, the debit plan, ledger rows and idempotency.  Shared by the credit
 * entry points (credits.c) and reservations (reservations.c); every function
 * runs inside SPI, on an account whose row lock the caller holds (except
 * LedgerLockAccount and LedgerReadAccount, which take or read it).
 */
#ifndef PGEXT_CREDITS_LEDGER_H
#define PGEXT_CREDITS_LEDGER_H

#include "postgres.h"
#include "datatype/timestamp.h"

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
	bool		forgotten;		/* in pgext.account_forgets */
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

/* Lock the account row (first lock of every change); errors if missing. */
extern void LedgerLockAccount(Datum account, AccountState *st);

/* Refuse a new credit operation on a forgotten account (55000). */
extern void LedgerRefuseForgotten(const AccountState *st);

/* Read the account row without locking it; false if it does not exist. */
extern bool LedgerReadAccount(Datum account, AccountState *st);

/* Add to balance and lot_credits; keeps st in step. */
extern void LedgerAccountAdd(AccountState *st, int64 delta, int64 lot_delta);

/* Credits still in lots whose expiry has passed (not spendable). */
extern int64 LedgerExpiredCredits(const AccountState *st, TimestampTz now);

/* Build a bigint[] Datum from a C array (in the current context). */
extern Datum LedgerInt64Array(const int64 *vals, int n);

/* Read a bigint[] Datum into a palloc'd C array; returns its length. */
extern int	LedgerReadInt64Array(Datum arr, int64 **out);

/* Append a ledger row; returns its id.  Keys were checked under the lock. */
extern int64 LedgerAppend(const AccountState *st, const LedgerEntry *e);

/* Look up the ledger row an idempotency key already names. */
extern bool LedgerFindPrior(Datum account, text *key, PriorEntry *p);

/* Compare a retried request with its key's ledger row: 'duplicate' or an error. */
extern void LedgerPriorResult(text *key, const PriorEntry *p, const char *op, const char *kind,
							  int64 amount, const char *reason, bool has_expires,
							  TimestampTz expires_at, CreditResult *r);

/* Lock spendable lots and plan taking 'want' credits; returns what is spendable. */
extern int64 LedgerPlanDebit(const AccountState *st, TimestampTz now, int64 want,
							 const char *only_kind, bool lots_only, Parts *parts);

/* Apply a planned debit to the lots and the account. */
extern void LedgerApplyDebit(AccountState *st, const Parts *parts);

/* Give 'amount' of a debit back where it came from, last-taken first. */
extern void LedgerReturnCredits(AccountState *st, int64 amount, int64 pool_part, int nlots,
								const int64 *lot_ids, const int64 *lot_parts);

/* Fail unless balance + amount fits in a bigint. */
extern void LedgerCheckNoOverflow(const AccountState *st, int64 amount);

/* Record the expiry of the lots (id, remaining) in the current SPI result. */
extern int	LedgerRecordLotExpiry(AccountState *st);

#endif							/* PGEXT_CREDITS_LEDGER_H */
