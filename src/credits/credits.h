/*
 * credits.h — what the credit entry points (credits.c) share with
 * reservations (reservations.c): argument checks and the result.
 */
#ifndef PGEXT_CREDITS_CREDITS_H
#define PGEXT_CREDITS_CREDITS_H

#include "postgres.h"
#include "fmgr.h"

#include "credits/ledger.h"

/* A required, strictly positive amount of credits. */
extern int64 CreditAmountArg(FunctionCallInfo fcinfo, int argno, const char *what);

/* An idempotency key or other short label: NULL allowed unless required. */
extern text *CreditLabelArg(FunctionCallInfo fcinfo, int argno, const char *what, bool required,
							int maxlen);

/* Build pgext.credit_result in the caller's memory context. */
extern Datum CreditMakeResult(FunctionCallInfo fcinfo, const CreditResult *r);

/* Fill a CreditResult that carries a balance. */
extern void CreditSetResult(CreditResult *r, bool ok, const char *status, int64 balance,
							bool has_id, int64 id);

/*
 * Release one held reservation whose ttl has passed (credit_sweep); false
 * when it is no longer held or not yet due.  Adds the lots it expired to
 * *lots_expired.
 */
extern bool ReservationExpire(int64 res_id, TimestampTz now, int *lots_expired);

#endif							/* PGEXT_CREDITS_CREDITS_H */
