/*
 * errcodes.h — pgext's own SQLSTATEs (class PX), for conditions that no
 * PostgreSQL condition names exactly.  Callers and error filters match on
 * these instead of borrowing a whole standard class.
 *
 *   PX001  account not found
 *   PX002  secret expired
 *   PX003  idempotency key reused with different parameters
 *   PX004  secret encrypted under a master key version that is not loaded
 */
#ifndef PGEXT_ERRCODES_H
#define PGEXT_ERRCODES_H

#include "utils/elog.h"

#define PGEXT_ERRCODE_ACCOUNT_NOT_FOUND		MAKE_SQLSTATE('P','X','0','0','1')
#define PGEXT_ERRCODE_SECRET_EXPIRED		MAKE_SQLSTATE('P','X','0','0','2')
#define PGEXT_ERRCODE_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('P','X','0','0','3')
#define PGEXT_ERRCODE_SECRET_KEY_MISSING	MAKE_SQLSTATE('P','X','0','0','4')

#endif							/* PGEXT_ERRCODES_H */
