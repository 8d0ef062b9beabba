/*
 * audit.h — who used which secret how often: counters in shared
 * memory, written to pgext.secret_audit in batches by secret_audit_flush().
 */
#ifndef PGEXT_SECRET_AUDIT_H
#define PGEXT_SECRET_AUDIT_H

#include "postgres.h"
#include "utils/uuid.h"

typedef enum SecretAuditOp
{
	SECRET_OP_SET = 0,
	SECRET_OP_GET,
	SECRET_OP_MASKED,
	SECRET_OP_DELETE,
	SECRET_OP_REWRAP,
	SECRET_OP_IMPORT,
	SECRET_OP_COUNT_
} SecretAuditOp;

typedef enum SecretAuditOutcome
{
	SECRET_OUTCOME_OK = 0,
	SECRET_OUTCOME_NOT_FOUND,
	SECRET_OUTCOME_EXPIRED,
	SECRET_OUTCOME_DECRYPT_FAILED,
	SECRET_OUTCOME_KEY_MISSING,
	SECRET_OUTCOME_DENIED,		/* a platform secret changed without pgext_admin */
	SECRET_OUTCOME_COUNT_
} SecretAuditOutcome;

/* Define pgext.secret_audit_slots and chain the shared-memory hooks (_PG_init). */
extern void SecretAuditInit(void);

/*
 * Count one use of a secret by the calling role (the role outside any
 * SECURITY DEFINER function).  id may be NULL (secret not found); account
 * NULL for platform secrets.  A no-op when pgext is not preloaded.
 */
extern void SecretAuditCount(SecretAuditOp op, SecretAuditOutcome outcome,
							 const pg_uuid_t *id, const pg_uuid_t *account,
							 const char *name, int name_len);

#endif							/* PGEXT_SECRET_AUDIT_H */
