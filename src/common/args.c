/*
 * args.c — argument checks shared by modules (see args.h).
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/timestamp.h"

#include "common/args.h"

/* An optional expiry that, when given, must lie in the future. */
bool
PgextExpiryArg(FunctionCallInfo fcinfo, int argno, TimestampTz now, bool show_value,
			   const char *hint, TimestampTz *expires)
{
	TimestampTz at;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return false;
	at = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(at) || at <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 show_value ?
				 errmsg("expires_at must be a finite time in the future, got %s",
						timestamptz_to_str(at)) :
				 errmsg("expires_at must be a finite time in the future"),
				 errhint("%s", hint)));
	*expires = at;
	return true;
}

/* A value clipped for an error message (see args.h); palloc'd. */
char *
PgextShownValue(const char *value)
{
	int			len = strlen(value);
	int			cut;

	if (len <= PGEXT_SHOWN_VALUE_MAX)
		return pstrdup(value);
	cut = pg_mbcliplen(value, len, PGEXT_SHOWN_VALUE_MAX);
	return psprintf("%.*s...", cut, value);
}
