/*
 * audit.c — who used which secret how often.
 *
 * Every secret function counts its call in a shared-memory hash keyed by
 * (calling role, operation, outcome, secret id, account, name).  Bumping an
 * existing counter takes the lock in shared mode and updates atomics, so
 * concurrent readers of secrets do not serialize on the audit.  Writing a row
 * per read would put a heap insert (and WAL) on the hottest path, so counts
 * are kept in memory and pgext.secret_audit_flush() writes them to
 * pgext.secret_audit in one batch; a background worker is meant to call it
 * every minute or so.
 *
 * Flushing is exactly-once as long as the server does not crash: the flush
 * copies the counters and inserts rows, and only when its transaction commits
 * (XACT_EVENT_COMMIT) are the copied amounts subtracted from shared memory.
 * If the transaction (or the subtransaction that flushed) aborts, nothing is
 * subtracted.  Concurrent flushes are serialized by a SHARE ROW EXCLUSIVE
 * lock on pgext.secret_audit held to the end of the transaction.  When the
 * table of counters is full, further distinct keys are only counted in a
 * "dropped" total, which the next flush writes as its own row.  A crash
 * (or immediate shutdown) loses counts that were not yet flushed.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "mb/pg_wchar.h"
#include "common/preload.h"
#include "common/spi.h"
#include "secrets/audit.h"

PG_FUNCTION_INFO_V1(secret_audit_flush);
PG_FUNCTION_INFO_V1(secret_audit_pending);

typedef struct AuditKey
{
	Oid			roleid;
	uint8		op;
	uint8		outcome;
	bool		has_id;
	bool		has_account;
	pg_uuid_t	id;
	pg_uuid_t	account;
	char		name[NAMEDATALEN];	/* truncated to NAMEDATALEN - 1, zero padded */
} AuditKey;

/*
 * A counter in shared memory.  Existing entries are bumped under the shared
 * lock (count and last_at are atomics); creating or removing an entry takes
 * the lock exclusively.
 */
typedef struct AuditEntry
{
	AuditKey	key;			/* hash key: must be first */
	pg_atomic_uint64 count;
	TimestampTz first_at;		/* set once, under the exclusive lock */
	pg_atomic_uint64 last_at;	/* a TimestampTz */
} AuditEntry;

/* A counter copied out of shared memory. */
typedef struct AuditCopy
{
	AuditKey	key;
	int64		count;
	TimestampTz first_at;
	TimestampTz last_at;
} AuditCopy;

typedef struct AuditShared
{
	LWLock	   *lock;
	int			nentries;		/* changed under the exclusive lock */
	int64		dropped;		/* uses not counted (table full); exclusive lock */
	TimestampTz dropped_first;
	TimestampTz dropped_last;
} AuditShared;

static const char *const op_names[SECRET_OP_COUNT_] = {
	"set", "get", "masked", "delete", "rewrap", "import"
};
static const char *const outcome_names[SECRET_OUTCOME_COUNT_] = {
	"ok", "not_found", "expired", "decrypt_failed", "key_missing", "denied"
};

static int	audit_slots = 1024;
static AuditShared *audit = NULL;
static HTAB *audit_hash = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The counts this transaction has flushed, subtracted at commit. */
static AuditCopy *pending = NULL;
static int	npending = 0;
static int64 pending_dropped = 0;
static SubTransactionId pending_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

static PgextPlan plan_lock = {
	"LOCK TABLE pgext.secret_audit IN SHARE ROW EXCLUSIVE MODE", 0, {0}
};
static PgextPlan plan_insert = {
	"INSERT INTO pgext.secret_audit (role_oid, role_name, op, outcome, secret_id, "
	"account_id, name, count, first_at, last_at) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	10, {OIDOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID, UUIDOID, TEXTOID, INT8OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/* Shared memory needed for the counters. */
static Size
AuditShmemSize(void)
{
	return add_size(MAXALIGN(sizeof(AuditShared)),
					hash_estimate_size(audit_slots, sizeof(AuditEntry)));
}

/* shmem_request_hook: reserve the memory and the lock. */
static void
AuditShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(AuditShmemSize());
	RequestNamedLWLockTranche("pgext_secret_audit", 1);
}

/* shmem_startup_hook: create (or attach to) the counters. */
static void
AuditShmemStartup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	audit = ShmemInitStruct("pgext secret audit", sizeof(AuditShared), &found);
	if (!found)
	{
		audit->lock = &(GetNamedLWLockTranche("pgext_secret_audit"))->lock;
		audit->nentries = 0;
		audit->dropped = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(AuditKey);
	info.entrysize = sizeof(AuditEntry);
	audit_hash = ShmemInitHash("pgext secret audit counts", audit_slots, audit_slots,
							   &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* Define pgext.secret_audit_slots and chain the shared-memory hooks. */
void
SecretAuditInit(void)
{
	DefineCustomIntVariable("pgext.secret_audit_slots",
							"Distinct (role, operation, outcome, secret) counters kept between audit flushes.",
							"Uses beyond this are counted only as a total, written as op 'dropped'.",
							&audit_slots, 1024, 16, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = AuditShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = AuditShmemStartup;
}

/* Add one use to a counter (lock held, shared or exclusive). */
static void
AuditBump(AuditEntry *e, TimestampTz now)
{
	uint64		last = pg_atomic_read_u64(&e->last_at);

	pg_atomic_fetch_add_u64(&e->count, 1);
	while ((TimestampTz) last < now &&
		   !pg_atomic_compare_exchange_u64(&e->last_at, &last, (uint64) now))
		;
}

/* Copy a counter out of shared memory (lock held). */
static void
AuditCopyEntry(AuditEntry *e, AuditCopy *c)
{
	c->key = e->key;
	c->count = (int64) pg_atomic_read_u64(&e->count);
	c->first_at = e->first_at;
	c->last_at = (TimestampTz) pg_atomic_read_u64(&e->last_at);
}

/* Count one use of a secret by the calling role; see header. */
void
SecretAuditCount(SecretAuditOp op, SecretAuditOutcome outcome,
				 const pg_uuid_t *id, const pg_uuid_t *account,
				 const char *name, int name_len)
{
	AuditKey	key;
	AuditEntry *e;
	bool		found;
	TimestampTz now;

	if (audit == NULL || audit_hash == NULL)
		return;

	memset(&key, 0, sizeof(key));
	key.roleid = GetOuterUserId();
	key.op = (uint8) op;
	key.outcome = (uint8) outcome;
	if (id != NULL)
	{
		key.has_id = true;
		key.id = *id;
	}
	if (account != NULL)
	{
		key.has_account = true;
		key.account = *account;
	}
	if (name != NULL)
		memcpy(key.name, name, pg_mbcliplen(name, name_len, NAMEDATALEN - 1));
	now = GetCurrentTimestamp();

	/* Common case: the counter exists; a shared lock and two atomics. */
	LWLockAcquire(audit->lock, LW_SHARED);
	e = hash_search(audit_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		AuditBump(e, now);
		LWLockRelease(audit->lock);
		return;
	}
	LWLockRelease(audit->lock);

	LWLockAcquire(audit->lock, LW_EXCLUSIVE);
	e = hash_search(audit_hash, &key, HASH_FIND, NULL);
	if (e == NULL && audit->nentries < audit_slots)
	{
		e = hash_search(audit_hash, &key, HASH_ENTER_NULL, &found);
		if (e != NULL)
		{
			pg_atomic_init_u64(&e->count, 0);
			e->first_at = now;
			pg_atomic_init_u64(&e->last_at, (uint64) now);
			audit->nentries++;
		}
	}
	if (e != NULL)
		AuditBump(e, now);
	else
	{
		if (audit->dropped == 0)
			audit->dropped_first = now;
		audit->dropped++;
		audit->dropped_last = now;
	}
	LWLockRelease(audit->lock);
}

/* At commit, subtract what this transaction flushed; forget it on abort. */
static void
AuditXactCallback(XactEvent event, void *arg)
{
	int			i;

	if (pending == NULL && pending_dropped == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that ran pgext.secret_audit_flush()"),
					 errhint("Call pgext.secret_audit_flush() in an ordinary transaction.")));
			break;
		case XACT_EVENT_COMMIT:
			LWLockAcquire(audit->lock, LW_EXCLUSIVE);
			for (i = 0; i < npending; i++)
			{
				AuditEntry *e = hash_search(audit_hash, &pending[i].key, HASH_FIND, NULL);

				if (e == NULL)
					continue;
				if ((int64) pg_atomic_sub_fetch_u64(&e->count, (uint64) pending[i].count) <= 0)
				{
					hash_search(audit_hash, &pending[i].key, HASH_REMOVE, NULL);
					audit->nentries--;
				}
			}
			audit->dropped -= Min(pending_dropped, audit->dropped);
			LWLockRelease(audit->lock);
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* memory lives in TopTransactionContext and goes with it */
			pending = NULL;
			npending = 0;
			pending_dropped = 0;
			pending_subid = InvalidSubTransactionId;
			break;
		default:
			break;
	}
}

/* A subtransaction that flushed and then aborted flushed nothing. */
static void
AuditSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (pending_subid == InvalidSubTransactionId || mySubid != pending_subid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		pending = NULL;
		npending = 0;
		pending_dropped = 0;
		pending_subid = InvalidSubTransactionId;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		pending_subid = parentSubid;
}

/* Insert one audit row from a copied entry. */
static void
InsertAuditRow(const AuditCopy *e, const char *op, const char *outcome)
{
	Datum		values[10];
	char		nulls[10];
	char	   *role = NULL;

	memset(nulls, ' ', sizeof(nulls));
	if (OidIsValid(e->key.roleid))
		role = GetUserNameFromId(e->key.roleid, true);
	values[0] = ObjectIdGetDatum(e->key.roleid);
	if (!OidIsValid(e->key.roleid))
		nulls[0] = 'n';
	values[1] = role ? CStringGetTextDatum(role) : (Datum) 0;
	if (role == NULL)
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(op);
	values[3] = CStringGetTextDatum(outcome);
	values[4] = UUIDPGetDatum((pg_uuid_t *) &e->key.id);
	if (!e->key.has_id)
		nulls[4] = 'n';
	values[5] = UUIDPGetDatum((pg_uuid_t *) &e->key.account);
	if (!e->key.has_account)
		nulls[5] = 'n';
	values[6] = CStringGetTextDatum(e->key.name);
	if (e->key.name[0] == '\0')
		nulls[6] = 'n';
	values[7] = Int64GetDatum(e->count);
	values[8] = TimestampTzGetDatum(e->first_at);
	values[9] = TimestampTzGetDatum(e->last_at);
	PgextExec(&plan_insert, values, nulls, 0);
}

/*
 * secret_audit_flush(): write the counters gathered since the last flush to
 * pgext.secret_audit; returns the number of rows written.  A second call in
 * the same transaction writes nothing (the first one's counts are still
 * waiting for the commit).
 */
Datum
secret_audit_flush(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	AuditEntry *e;
	AuditCopy  *copy;
	int			ncopy = 0;
	int64		dropped;
	TimestampTz dropped_first = 0;
	TimestampTz dropped_last = 0;
	int			i;

	PgextRequirePreload("secret audit");
	if (audit == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgext secret audit counters are not in shared memory")));
	if (pending != NULL || pending_dropped != 0)
		PG_RETURN_INT32(0);

	if (!callbacks_registered)
	{
		RegisterXactCallback(AuditXactCallback, NULL);
		RegisterSubXactCallback(AuditSubXactCallback, NULL);
		callbacks_registered = true;
	}

	SPI_connect();
	PgextExec(&plan_lock, NULL, NULL, 0);

	copy = MemoryContextAlloc(TopTransactionContext,
							  sizeof(AuditCopy) * Max(audit_slots, 1));
	LWLockAcquire(audit->lock, LW_SHARED);
	hash_seq_init(&seq, audit_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (ncopy < audit_slots && pg_atomic_read_u64(&e->count) > 0)
			AuditCopyEntry(e, &copy[ncopy++]);
	}
	dropped = audit->dropped;
	if (dropped > 0)
	{
		dropped_first = audit->dropped_first;
		dropped_last = audit->dropped_last;
	}
	LWLockRelease(audit->lock);

	for (i = 0; i < ncopy; i++)
		InsertAuditRow(&copy[i], op_names[copy[i].key.op], outcome_names[copy[i].key.outcome]);
	if (dropped > 0)
	{
		AuditCopy	d;

		memset(&d, 0, sizeof(d));
		d.count = dropped;
		d.first_at = dropped_first;
		d.last_at = dropped_last;
		InsertAuditRow(&d, "dropped", "ok");
	}
	SPI_finish();

	pending = copy;
	npending = ncopy;
	pending_dropped = dropped;
	pending_subid = GetCurrentSubTransactionId();
	PG_RETURN_INT32(ncopy + (dropped > 0 ? 1 : 0));
}

/*
 * secret_audit_pending(): the counters not yet flushed, as rows shaped like
 * pgext.secret_audit (without id and flushed_at).  Reads shared memory only.
 */
Datum
secret_audit_pending(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	AuditEntry *e;
	AuditCopy  *copy;
	int			ncopy = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (audit == NULL || audit_hash == NULL)
		return (Datum) 0;

	copy = palloc(sizeof(AuditCopy) * Max(audit_slots, 1));
	LWLockAcquire(audit->lock, LW_SHARED);
	hash_seq_init(&seq, audit_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (ncopy < audit_slots && pg_atomic_read_u64(&e->count) > 0)
			AuditCopyEntry(e, &copy[ncopy++]);
	}
	LWLockRelease(audit->lock);

	for (i = 0; i < ncopy; i++)
	{
		Datum		values[9];
		bool		nulls[9];
		char	   *role = GetUserNameFromId(copy[i].key.roleid, true);

		memset(nulls, 0, sizeof(nulls));
		values[0] = role ? CStringGetTextDatum(role) : (Datum) 0;
		nulls[0] = (role == NULL);
		values[1] = CStringGetTextDatum(op_names[copy[i].key.op]);
		values[2] = CStringGetTextDatum(outcome_names[copy[i].key.outcome]);
		values[3] = UUIDPGetDatum(&copy[i].key.id);
		nulls[3] = !copy[i].key.has_id;
		values[4] = UUIDPGetDatum(&copy[i].key.account);
		nulls[4] = !copy[i].key.has_account;
		values[5] = CStringGetTextDatum(copy[i].key.name);
		nulls[5] = (copy[i].key.name[0] == '\0');
		values[6] = Int64GetDatum(copy[i].count);
		values[7] = TimestampTzGetDatum(copy[i].first_at);
		values[8] = TimestampTzGetDatum(copy[i].last_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
