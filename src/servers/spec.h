/*
 * spec.h — the server spec check (spec.c); pgext's own Hetzner labels are
 * in labels.h (included here for the modules that set them).
 */
#ifndef PGEXT_SERVERS_SPEC_H
#define PGEXT_SERVERS_SPEC_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "servers/labels.h"

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
