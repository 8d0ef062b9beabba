/*
 * servers.c — the server settings: the per-account limit, how long a server
 * may stay requested / creating / configuring, how often a failed create is
 * retried, and the two transaction-local notes (reason, actor) that pgext's
 * functions leave for the state trigger, which records them in
 * pgext.server_history.  Everything else about servers is SQL.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "servers/servers.h"

int			pgext_server_limit_per_account = 3;
int			pgext_server_requested_timeout = 5 * 60;
int			pgext_server_creating_timeout = 10 * 60;
int			pgext_server_configuring_timeout = 15 * 60;
int			pgext_server_create_retries = 3;
static char *transition_reason = NULL;
static char *transition_actor = NULL;

/* Define the server settings; called from _PG_init. */
void
ServersInit(void)
{
	DefineCustomIntVariable("pgext.server_limit_per_account",
							"Live servers an account may have at once (server_request refuses more).",
							NULL, &pgext_server_limit_per_account, 3, 0, 10000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.server_requested_timeout",
							"How long a server may stay 'requested' before it fails.",
							NULL, &pgext_server_requested_timeout, 5 * 60, 1, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.server_creating_timeout",
							"How long a server may stay 'creating' before it fails.",
							NULL, &pgext_server_creating_timeout, 10 * 60, 1, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.server_configuring_timeout",
							"How long a server may stay 'configuring' before it fails.",
							NULL, &pgext_server_configuring_timeout, 15 * 60, 1, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.server_create_retries",
							"How many times a failed create is retried (with backoff) before the server stays failed.",
							NULL, &pgext_server_create_retries, 3, 0, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pgext.transition_reason",
							   "Reason recorded for the next server state change in this transaction.",
							   "Set transaction-locally by pgext's functions; an operator's direct UPDATE may set it too (SET LOCAL).",
							   &transition_reason, "",
							   PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomStringVariable("pgext.transition_actor",
							   "Actor recorded for the next server state change in this transaction (default: the current role).",
							   "Set transaction-locally by pgext's functions ('worker', 'policy' or the calling role).",
							   &transition_actor, "",
							   PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
}
