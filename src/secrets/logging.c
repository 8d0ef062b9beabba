/*
 * logging.c — settings that would write secret values to the log.
 *
 * pgext never logs a secret itself, and every error a secret function raises
 * while a plaintext is in scope hides the statement text (errhidestmt).  But
 * `SELECT pgext.secret_set('stripe:api_key', 'sk_live_...')` is still a
 * statement, and the server logs statement texts (and, for the extended
 * protocol, bind parameter values) when asked to.  This file lists the
 * settings that do so; the postmaster warns about them at start and
 * CREATE EXTENSION warns again through pgext.secret_logging_risks().
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "secrets/logging.h"

PG_FUNCTION_INFO_V1(secret_logging_risks);

/* Current value of a setting as a string ("" when it does not exist). */
static const char *
Setting(const char *name)
{
	const char *v = GetConfigOption(name, true, false);

	return v ? v : "";
}

/* Integer value of a setting, or dflt when unset. */
static long
SettingInt(const char *name, long dflt)
{
	const char *v = GetConfigOption(name, true, false);

	return (v && *v) ? strtol(v, NULL, 10) : dflt;
}

/* Whether a comma-separated library list setting names auto_explain. */
static bool
ListsAutoExplain(const char *setting)
{
	char	   *raw = pstrdup(Setting(setting));
	List	   *names = NIL;
	ListCell   *lc;
	bool		found = false;

	if (!SplitDirectoriesString(raw, ',', &names))
		return strstr(Setting(setting), "auto_explain") != NULL;
	foreach(lc, names)
	{
		const char *n = (const char *) lfirst(lc);
		const char *base = strrchr(n, '/');

		base = base ? base + 1 : n;
		if (strncmp(base, "auto_explain", 12) == 0)
			found = true;
	}
	return found;
}

/* One sentence per risky setting; see file header. */
List *
SecretLoggingRisks(void)
{
	List	   *risks = NIL;
	bool		statements_logged = false;
	long		min_duration = SettingInt("log_min_duration_statement", -1);
	long		min_sample = SettingInt("log_min_duration_sample", -1);
	double		sample_rate = strtod(Setting("log_statement_sample_rate"), NULL);
	double		xact_rate = strtod(Setting("log_transaction_sample_rate"), NULL);
	long		param_len = SettingInt("log_parameter_max_length", -1);
	long		param_err_len = SettingInt("log_parameter_max_length_on_error", 0);
	const char *lib_settings[] = {"shared_preload_libraries", "session_preload_libraries",
	"local_preload_libraries"};
	const char *debug_settings[] = {"debug_print_parse", "debug_print_rewritten",
	"debug_print_plan"};
	int			i;

	if (pg_strcasecmp(Setting("log_statement"), "all") == 0)
	{
		statements_logged = true;
		risks = lappend(risks, pstrdup("log_statement = 'all' logs the text of every statement, including secret values written as literals"));
	}
	if (min_duration >= 0)
	{
		statements_logged = true;
		risks = lappend(risks, psprintf("log_min_duration_statement = %ld logs the text of every statement that runs %ld ms or longer",
										min_duration, min_duration));
	}
	if (min_sample >= 0 && sample_rate > 0)
	{
		statements_logged = true;
		risks = lappend(risks, psprintf("log_min_duration_sample = %ld with log_statement_sample_rate = %g logs the text of sampled statements",
										min_sample, sample_rate));
	}
	if (xact_rate > 0)
	{
		statements_logged = true;
		risks = lappend(risks, psprintf("log_transaction_sample_rate = %g logs the text of every statement in sampled transactions",
										xact_rate));
	}
	if (statements_logged && param_len != 0)
		risks = lappend(risks, psprintf("log_parameter_max_length = %ld logs bind parameter values along with those statements (set it to 0)",
										param_len));
	if (param_err_len != 0)
		risks = lappend(risks, psprintf("log_parameter_max_length_on_error = %ld logs bind parameter values of failing statements (set it to 0)",
										param_err_len));
	for (i = 0; i < (int) lengthof(lib_settings); i++)
		if (ListsAutoExplain(lib_settings[i]))
			risks = lappend(risks, psprintf("auto_explain (in %s) logs statement texts and, with auto_explain.log_parameter_max_length, their parameters",
											lib_settings[i]));
	for (i = 0; i < (int) lengthof(debug_settings); i++)
		if (pg_strcasecmp(Setting(debug_settings[i]), "on") == 0)
			risks = lappend(risks, psprintf("%s = on logs query trees, including their constants",
											debug_settings[i]));
	return risks;
}

/* Join risks into one string for an error detail. */
static char *
JoinRisks(List *risks)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, risks)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, "; ");
		appendStringInfoString(&buf, (const char *) lfirst(lc));
	}
	return buf.data;
}

/* Log one WARNING listing every risk, if any. */
void
SecretLoggingWarn(void)
{
	List	   *risks = SecretLoggingRisks();

	if (risks == NIL)
		return;
	ereport(WARNING,
			(errmsg("pgext: the server's logging settings can write secret values to the server log"),
			 errdetail("%s.", JoinRisks(risks)),
			 errhint("Set log_statement to 'none' or 'ddl', keep log_min_duration_statement = -1 and log_parameter_max_length_on_error = 0 (or set log_parameter_max_length = 0), and pass secret values to pgext.secret_set() as bind parameters.")));
	list_free_deep(risks);
}

/* secret_logging_risks(): the risky settings, one sentence each. */
Datum
secret_logging_risks(PG_FUNCTION_ARGS)
{
	List	   *risks = SecretLoggingRisks();
	Datum	   *elems;
	ListCell   *lc;
	int			n = 0;

	elems = palloc(sizeof(Datum) * Max(list_length(risks), 1));
	foreach(lc, risks)
		elems[n++] = CStringGetTextDatum((const char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
