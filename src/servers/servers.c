/*
 * servers.c — the server settings: the per-account limit, how long a server
 * may stay requested / creating / configuring, how often a failed create is
 * retried, the Hetzner settings read by sql/install/hetzner.sql (how long
 * API calls are kept, when orphans are deleted, how long a full location is
 * skipped, the worker's claim lease), and the two transaction-local notes (reason, actor) that pgext's
 * functions leave for the state trigger, which records them in
 * pgext.server_history.  Everything else about servers is SQL.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "servers/servers.h"

int			pgext_server_limit_per_account = 3;
int			pgext_server_requested_timeout = 5 * 60;
int			pgext_server_creating_timeout = 10 * 60;
int			pgext_server_configuring_timeout = 15 * 60;
int			pgext_server_create_retries = 3;
int			pgext_api_calls_retention = 30 * 86400;
int			pgext_orphan_delete_after = 7 * 86400;
int			pgext_hetzner_cold_for = 10 * 60;
int			pgext_hetzner_claim_lease = 60;
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
	DefineCustomIntVariable("pgext.api_calls_retention",
							"How long rows of pgext.api_calls are kept (pgext.api_calls_retention deletes older ones).",
							"An interval in seconds (units accepted, e.g. '30d'); the worker's api_calls_retention task applies it.",
							&pgext_api_calls_retention, 30 * 86400, 3600, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.orphan_delete_after",
							"How long a managed server unknown to pgext.servers (an orphan) is listed before it is deleted; 0 = never.",
							"Counted from its first sighting; it must also have been seen twice at least 5 minutes apart, be at "
							"least 15 minutes old at Hetzner and not kept (pgext.server_orphan_keep).  At most 5 deletions and "
							"10% of the listed fleet per reconcile run.",
							&pgext_orphan_delete_after, 7 * 86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.hetzner_cold_for",
							"How long a (location, server type) that answered 'no capacity' is skipped by creates.",
							"Jittered by +-20%; recorded in pgext.hetzner_cold.",
							&pgext_hetzner_cold_for, 10 * 60, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.hetzner_claim_lease",
							"How long a request handed out by pgext.hetzner_claim is the worker's before it is taken back.",
							"Must exceed the worker's HTTP timeout; a create taken back is looked up by name before any new create.",
							&pgext_hetzner_claim_lease, 60, 10, 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
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
