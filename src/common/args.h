/*
 * args.h — argument checks that more than one module's SQL functions share
 * (args.c).  The account argument lives with accounts (accounts.h).
 */
#ifndef PGEXT_COMMON_ARGS_H
#define PGEXT_COMMON_ARGS_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "fmgr.h"

/*
 * An optional expires_at argument: false when it is absent or NULL.  When
 * given it must be a finite time after now; otherwise an error (22023) with
 * the given hint, and with the value in the message when show_value.
 */
extern bool PgextExpiryArg(FunctionCallInfo fcinfo, int argno, TimestampTz now, bool show_value,
						   const char *hint, TimestampTz *expires);

/*
 * A caller's value as an error message may show it: at most
 * PGEXT_SHOWN_VALUE_MAX bytes (cut at a character boundary) with "..." after
 * a cut, so that a message never echoes a huge argument.
 */
#define PGEXT_SHOWN_VALUE_MAX 64
extern char *PgextShownValue(const char *value);

#endif							/* PGEXT_COMMON_ARGS_H */
