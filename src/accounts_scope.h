/*
 * accounts_scope.h — binding a transaction to one account (accounts_scope.c)
 * and the checks every account-scoped function makes against it.
 *
 * pgext.set_account(uuid) binds the current transaction to an account; the
 * binding lives in backend memory (not a setting a caller could SET) and
 * ends with the transaction, so it is safe behind transaction-mode poolers.
 * Row-level security policies read it through pgext.current_account().
 * Functions run as their owner (SECURITY DEFINER) and bypass those
 * policies, so they enforce the account line themselves with these checks.
 */
#ifndef PGEXT_ACCOUNTS_SCOPE_H
#define PGEXT_ACCOUNTS_SCOPE_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/uuid.h"

/* Define pgext.require_account and install the transaction callback. */
extern void AccountScopeInit(void);

/* The account this transaction acts for, or NULL when it is not bound. */
extern const pg_uuid_t *AccountScopeCurrent(void);

/*
 * An account-scoped call for `account` (a uuid Datum): refused (42501) when
 * the transaction is bound to another account, or when it is not bound,
 * pgext.require_account is on and the caller is not an administrator.
 */
extern void AccountScopeCheck(Datum account);

/* A platform-level call (all accounts, or none): refused (42501) while bound. */
extern void AccountScopePlatform(const char *what);

/*
 * Whether the caller (the role outside SECURITY DEFINER functions) is a
 * superuser or has the privileges of pgext_admin.
 */
extern bool AccountScopeCallerIsAdmin(void);

#endif							/* PGEXT_ACCOUNTS_SCOPE_H */
