/*
 * settings.h — settings defined now for capabilities that have no module yet
 * (settings.c): the provisioning worker, Hetzner and Stripe API access.  The
 * worker module takes them over when it arrives.
 */
#ifndef PGEXT_SETTINGS_H
#define PGEXT_SETTINGS_H

#include "postgres.h"

extern char *pgext_database;
extern char *pgext_hetzner_api_url;
extern char *pgext_stripe_api_url;
extern bool pgext_allow_insecure_urls;

/* Define these settings; called from _PG_init (after PgextPreloadInit). */
extern void SettingsInit(void);

#endif							/* PGEXT_SETTINGS_H */
