/*
 * hkdf.h — HKDF-SHA256 (RFC 5869) for 32-byte keys.
 */
#ifndef PGEXT_SECRETS_HKDF_H
#define PGEXT_SECRETS_HKDF_H

#define HKDF_SHA256_BYTES 32

extern bool HkdfSha256(const uint8 *ikm, int ikm_len, const uint8 *salt, int salt_len,
					   const unsigned char *info, int info_len, uint8 *out);

#endif
