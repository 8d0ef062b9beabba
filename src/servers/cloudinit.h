/*
 * cloudinit.h — validation of cloud-init user_data (cloudinit.c).
 *
 * PG-free (libyaml only) so that a libFuzzer harness can drive it
 * (test/fuzz/cloudinit_fuzz.c).  Input is untrusted and length-delimited.
 *
 * Accepted: a "#cloud-config" document (valid YAML whose top level is a
 * mapping of cloud-init's keys, or empty) or a "#!" script; at most
 * CLOUDINIT_MAX_BYTES bytes of strict UTF-8 without NUL bytes.  A refusal
 * fills a CloudInitError whose line and column (1-based, columns counted in
 * characters like libyaml's marks) point at the offending spot.
 */
#ifndef PGEXT_SERVERS_CLOUDINIT_H
#define PGEXT_SERVERS_CLOUDINIT_H

#include <stdbool.h>
#include <stddef.h>

/* Hetzner's limit on user_data. */
#define CLOUDINIT_MAX_BYTES 32768

typedef struct CloudInitError
{
	int			line;			/* 1-based */
	int			column;			/* 1-based, in characters */
	char		message[256];	/* what is wrong, naming the key or byte */
	char		hint[256];		/* what to do about it */
} CloudInitError;

/*
 * Check user_data; true when it is acceptable.  On false, *err says where
 * and why.  Never reads past data + len; data need not be NUL-terminated.
 */
extern bool pgext_cloudinit_check(const char *data, size_t len, CloudInitError *err);

/*
 * Length of the longest prefix of data that is strict UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF); len when all of
 * it is.
 */
extern size_t pgext_utf8_valid_prefix(const char *data, size_t len);

/* Whether key is a top-level cloud-config key cloud-init knows. */
extern bool pgext_cloudinit_known_key(const char *key, size_t len);

#endif							/* PGEXT_SERVERS_CLOUDINIT_H */
