/*
 * subxact.h — run a piece of work in a subtransaction and turn the errors a
 * caller expects into a result instead of an exception.
 */
#ifndef PGEXT_SUBXACT_H
#define PGEXT_SUBXACT_H

#include "postgres.h"

typedef void (*PgextSubxactBody) (void *arg);
typedef bool (*PgextErrorFilter) (int sqlerrcode);

/*
 * Run body(arg) in a subtransaction; true when it completed.  An error that
 * accept(sqlerrcode) allows rolls the subtransaction back and returns false
 * (its message in *message, palloc'd in the caller's context, when message is
 * not NULL).  Any other error is re-thrown.
 */
extern bool PgextTryInSubxact(PgextSubxactBody body, void *arg, PgextErrorFilter accept,
							  char **message);

#endif							/* PGEXT_SUBXACT_H */
