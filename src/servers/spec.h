/*
 * spec.h — the server spec check (spec.c) and pgext's own Hetzner labels.
 *
 * Every server pgext creates carries these labels; a spec cannot set them
 * (nor any other unprefixed key starting with PGEXT_LABEL_RESERVED_PREFIX),
 * so the fleet can always be found and attributed by label selector:
 *   managed-by=pgext, pgext-account=<account uuid>, pgext-server=<server id>
 */
#ifndef PGEXT_SERVERS_SPEC_H
#define PGEXT_SERVERS_SPEC_H

#include "postgres.h"
#include "utils/jsonb.h"

#define PGEXT_LABEL_MANAGED_BY			"managed-by"
#define PGEXT_LABEL_MANAGED_BY_VALUE	"pgext"
#define PGEXT_LABEL_ACCOUNT				"pgext-account"
#define PGEXT_LABEL_SERVER				"pgext-server"
#define PGEXT_LABEL_RESERVED_PREFIX		"pgext-"

/* Most locations a spec may list (the capacity fallback order). */
#define PGEXT_SPEC_MAX_LOCATIONS		10

/*
 * Check a whole server spec (see server_spec_check in
 * sql/install/servers_spec.sql); raises 22023 naming the field on the first
 * problem, returns when the spec is valid.
 */
extern void PgextServerSpecCheck(Jsonb *spec);

/* Check raw user_data bytes (UTF-8) with the cloud-init rules; raises 22023. */
extern void PgextUserDataCheck(const char *data, size_t len);

#endif							/* PGEXT_SERVERS_SPEC_H */
