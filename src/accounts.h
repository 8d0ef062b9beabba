/*
 * accounts.h — tenant accounts (accounts.c) and the account-argument helpers
 * every module that takes an account uuid uses.
 */
#ifndef PGEXT_ACCOUNTS_H
#define PGEXT_ACCOUNTS_H

#include "postgres.h"
#include "fmgr.h"

/* Fetch a required account uuid argument (errors on NULL). */
extern Datum AccountArg(FunctionCallInfo fcinfo, int argno);

/*
 * pgext.account_forget replaces a forgotten account's external_id with this
 * prefix and a hash, in the same row the credit functions lock: they read
 * the mark from the locked row itself, so a forget that commits while they
 * wait for the lock is seen (READ COMMITTED re-reads the row, not other
 * tables).  account_create refuses external ids with this prefix.
 */
#define ACCOUNT_FORGOTTEN_PREFIX "forgotten:"

/*
 * Whether the schema has the 1.1 data rights tables (account_forgets,
 * secret_account_keys); false on a 1.0 schema not yet updated.
 */
extern bool AccountDataRightsInstalled(void);

/* Raise the "account does not exist" error. */
extern void AccountNotFound(Datum account) pg_attribute_noreturn();

#endif							/* PGEXT_ACCOUNTS_H */
