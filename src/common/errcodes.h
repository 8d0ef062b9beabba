/*
 * errcodes.h — pgext's own SQLSTATEs (class PX), for conditions that no
 * PostgreSQL condition names exactly.  Callers and error filters match on
 * these instead of borrowing a whole standard class.
 *
 *   PX001  account not found
 *   PX002  secret expired
 *   PX003  idempotency key reused with different parameters
 *   PX004  secret encrypted under a master key version that is not loaded
 *   PX005  secret_import_pgp: the pgcrypto ciphertext does not decrypt to
 *          text with the passphrase given (wrong passphrase, corrupt or
 *          non-text data)
 *
 * Where each is used, and what keeps a standard code:
 *   PX001  every "account <uuid> does not exist" (AccountNotFound: the
 *          account, credit, secret and Stripe-link functions, set_account).  A Stripe
 *          event whose customer is linked to no account yet keeps P0002
 *          (no_data_found): it names no account uuid, and the event is
 *          retried until one is linked.  So does "reservation <id> does not
 *          exist" and "secret ... does not exist" (a lookup that found no
 *          row, which is what P0002 means; an expired secret has PX002).
 *   PX003  a credit call whose idempotency key (credit_allocate: its
 *          period_key) names an earlier request with other parameters.
 *   PX005  replaces 28P01 (invalid_password), which belongs to
 *          authentication (failed logins).  pgcrypto's own 39000 is not
 *          passed through: any external routine raises it, and the refusal
 *          also covers a decrypted value that is not valid text (class 22).
 *   Servers keep standard codes: server_request for an account without
 *   billing access is 55000 (object_not_in_prerequisite_state: the account
 *   is not in the state a server needs), at its limit of live servers 53400
 *   (configuration_limit_exceeded: pgext.server_limit_per_account), an
 *   unknown account PX001; a server move not in pgext.server_transitions is
 *   55000 (sql/install/servers.sql).
 */
#ifndef PGEXT_ERRCODES_H
#define PGEXT_ERRCODES_H

#include "utils/elog.h"

#define PGEXT_ERRCODE_ACCOUNT_NOT_FOUND		MAKE_SQLSTATE('P','X','0','0','1')
#define PGEXT_ERRCODE_SECRET_EXPIRED		MAKE_SQLSTATE('P','X','0','0','2')
#define PGEXT_ERRCODE_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('P','X','0','0','3')
#define PGEXT_ERRCODE_SECRET_KEY_MISSING	MAKE_SQLSTATE('P','X','0','0','4')
#define PGEXT_ERRCODE_PGP_DECRYPT_FAILED	MAKE_SQLSTATE('P','X','0','0','5')

#endif							/* PGEXT_ERRCODES_H */
