/*
 * fastpath.h — credit_deduct's common case through the executor's row-level
 * entry points instead of a SQL statement (fastpath.c).
 */
#ifndef PGEXT_CREDITS_FASTPATH_H
#define PGEXT_CREDITS_FASTPATH_H

#include "postgres.h"

#include "credits/ledger.h"

/* What CreditDeductFast did. */
typedef enum DeductFast
{
	DEDUCT_FAST_DONE,			/* deducted: the result is filled in */
	DEDUCT_FAST_KEY_TAKEN,		/* the balance was decremented (r->balance) and the key is
								 * taken: the caller undoes it and answers the retry */
	DEDUCT_FAST_DECLINED,		/* not a fast-path account: the general path answers */
	DEDUCT_FAST_UNAVAILABLE		/* nothing done (isolation level, schema shape, no row) */
} DeductFast;

/*
 * Deduct `amount` from a metered account whose credits are all in the pool,
 * recording the ledger row that claims `key` (NULL: none).  Runs outside SPI,
 * after the arguments and the account binding were checked.
 */
extern DeductFast CreditDeductFast(Datum account, int64 amount, text *key, text *reason,
								   CreditResult *r);

#endif							/* PGEXT_CREDITS_FASTPATH_H */
