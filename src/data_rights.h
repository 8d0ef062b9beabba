/*
 * data_rights.h — the C side of data rights (sql/install/data_rights.sql):
 * which Stripe customers belong to forgotten accounts (data_rights.c).
 *
 * The stored form of a Stripe event (webhooks/payload.c) drops the personal
 * fields of data.object (client_reference_id, metadata) when its customer
 * belongs to an account pgext.account_forget has erased.  Each backend keeps
 * the set of those customers, loaded lazily with one query and dropped by a
 * relcache invalidation of pgext.account_forgets, which every change to
 * that table sends (a statement trigger), and so does every change to the
 * Stripe customer of a forgotten account (DataRightsForgottenChanged).
 */
#ifndef PGEXT_DATA_RIGHTS_H
#define PGEXT_DATA_RIGHTS_H

#include "postgres.h"

/*
 * Whether any account with a Stripe customer is forgotten: false costs one
 * branch once the set is loaded (the common case, no lookup at all).
 */
extern bool DataRightsAnyForgotten(void);

/* Whether the Stripe customer id (len bytes, not NUL-terminated) is a forgotten account's. */
extern bool DataRightsCustomerForgotten(const char *customer, int len);

/*
 * Tell every backend (at its next transaction or lock) and this one (at its
 * next command) that the forgotten customers may have changed: for writers
 * of pgext.accounts.stripe_customer_id on a forgotten account.  Sent at
 * commit; nothing on a schema without pgext.account_forgets (1.0).
 */
extern void DataRightsForgottenChanged(void);

#endif							/* PGEXT_DATA_RIGHTS_H */
