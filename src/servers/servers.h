/*
 * servers.h — the provisioning state machine's settings (servers.c).  The
 * state machine itself, the work queue and the policy are SQL
 * (sql/install/servers.sql): the worker moves bytes, SQL decides.
 */
#ifndef PGEXT_SERVERS_H
#define PGEXT_SERVERS_H

#include "postgres.h"

extern int	pgext_server_limit_per_account;
extern int	pgext_server_requested_timeout;
extern int	pgext_server_creating_timeout;
extern int	pgext_server_configuring_timeout;
extern int	pgext_server_create_retries;
extern int	pgext_api_calls_retention;
extern int	pgext_orphan_delete_after;
extern int	pgext_hetzner_cold_for;
extern int	pgext_hetzner_claim_lease;

/* Define the server settings; called from _PG_init. */
extern void ServersInit(void);

#endif							/* PGEXT_SERVERS_H */
