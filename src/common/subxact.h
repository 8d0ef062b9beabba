/*
 * subxact.h — run a piece of work in a subtransaction and turn the errors a
 * caller expects into a result instead of an exception; and the one place
 * that says what kind of failure a SQLSTATE is.
 */
#ifndef PGEXT_SUBXACT_H
#define PGEXT_SUBXACT_H

#include "postgres.h"

typedef void (*PgextSubxactBody) (void *arg);
typedef bool (*PgextErrorFilter) (int sqlerrcode);

/*
 * What an error means to a caller that could keep it as a result.
 *
 *   PGEXT_ERROR_RETHROW    never swallowed: a query cancel or statement
 *                          timeout (57014), an administrator's shutdown or any
 *                          other operator intervention (class 57), a call
 *                          made where it cannot work (class 25, e.g. a
 *                          read-only transaction), data or index corruption
 *                          (XX001, XX002).
 *   PGEXT_ERROR_TRANSIENT  nothing is wrong with the work; trying it again
 *                          later can succeed: transaction rollbacks (class 40:
 *                          serialization failure 40001, deadlock 40P01, ...,
 *                          except the integrity violation 40002), a lock not
 *                          obtained in time (55P03) or an object in use
 *                          (55006), insufficient resources (class 53: out of
 *                          memory, disk full, ...), system errors (class 58:
 *                          I/O) and connection errors (class 08).
 *   PGEXT_ERROR_BAD_INPUT  the input was refused: data exceptions (class 22)
 *                          and program limits (class 54, e.g. nesting depth).
 *   PGEXT_ERROR_PERMANENT  anything else: the work fails the same way when
 *                          tried again (a missing row, a constraint, a bug).
 */
typedef enum PgextErrorKind
{
	PGEXT_ERROR_RETHROW,
	PGEXT_ERROR_TRANSIENT,
	PGEXT_ERROR_BAD_INPUT,
	PGEXT_ERROR_PERMANENT
} PgextErrorKind;

/* Classify a SQLSTATE (see PgextErrorKind). */
extern PgextErrorKind PgextClassifyError(int sqlerrcode);

/* Filter: bad input only (what a parser such as jsonb_in raises for input it refuses). */
extern bool PgextIsBadInputError(int sqlerrcode);

/*
 * Filter: a serialization failure (40001) and nothing else, such as the one
 * an INSERT ... ON CONFLICT raises under a transaction snapshot
 * (account_create); a deadlock or a lock timeout is re-thrown.
 */
extern bool PgextIsSerializationFailure(int sqlerrcode);

/*
 * Filter: an expired secret (PX002) and nothing else; a lock timeout or a
 * missing key version is re-thrown (webhook intake's previous signing secret).
 */
extern bool PgextIsSecretExpiredError(int sqlerrcode);

/*
 * Filter: an external routine refused its input.  pgcrypto (px.c
 * px_THROW_ERROR, pgp-pgsql.c decrypt_internal) raises 39000 (external
 * routine invocation exception) for a wrong key, corrupt or unsupported data
 * ("Wrong key or corrupt data", "Not text data", ...), and the text
 * conversion of its result raises class 22 (invalid byte sequence).
 * Everything else (a query cancel, out of memory, a lock or serialization
 * failure) is not about the input and is re-thrown (secret_import_pgp).
 */
extern bool PgextIsRoutineRejection(int sqlerrcode);

/* Filter: every error a caller may keep as a result (all but PGEXT_ERROR_RETHROW). */
extern bool PgextIsCatchableError(int sqlerrcode);

/*
 * Run body(arg) in a subtransaction; true when it completed.  An error that
 * accept(sqlerrcode) allows rolls the subtransaction back and returns false
 * (its message in *message, palloc'd in the caller's context, when message is
 * not NULL).  Any other error is re-thrown.
 */
extern bool PgextTryInSubxact(PgextSubxactBody body, void *arg, PgextErrorFilter accept,
							  char **message);

/* PgextTryInSubxact that also returns the caught error's SQLSTATE (0 when it completed). */
extern bool PgextTryInSubxactCode(PgextSubxactBody body, void *arg, PgextErrorFilter accept,
								  char **message, int *sqlerrcode);

#endif							/* PGEXT_SUBXACT_H */
