/*
 * credits.h — the credit ledger (credits.c) and helpers shared with accounts.c.
 */
#ifndef PGEXT_CREDITS_H
#define PGEXT_CREDITS_H

#include "postgres.h"
#include "fmgr.h"

/* Fetch a required account uuid argument (errors on NULL). */
extern Datum CreditsAccountArg(FunctionCallInfo fcinfo, int argno);

/* Raise the "account does not exist" error. */
extern void CreditsAccountNotFound(Datum account) pg_attribute_noreturn();

#endif							/* PGEXT_CREDITS_H */
