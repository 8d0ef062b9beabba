/*
 * ratelimit.c — token buckets in shared memory: pgext.rate_limit() and
 * pgext.rate_limit_reset().
 *
 * A bucket holds up to `capacity` tokens and gains `refill_per_second` tokens
 * a second; a call costing `cost` tokens is allowed when the bucket holds at
 * least that many, and then takes them.  The parameters come with every call
 * (the caller's, not the first caller's): elapsed time is credited at the
 * current call's rate and the tokens are clamped to its capacity.  A key seen
 * for the first time (or again after eviction, reset or restart) starts full.
 *
 * Layout.  The buckets live in RL_PARTITIONS partitions, each with its own
 * LWLock, hash chains, LRU list and a fixed pool of
 * pgext.rate_limit_max_keys / RL_PARTITIONS buckets, so concurrent callers
 * with different keys rarely meet on a lock.  A key is identified by the
 * SHA-256 digest of its bytes: the memory per key is fixed whatever the key's
 * length, the key text itself is not kept, and two keys cannot share a
 * bucket unless they collide in SHA-256.  Time is CLOCK_MONOTONIC, read under
 * the partition's lock, so a bucket's clock never runs backwards.
 *
 * When a partition is full, a new key takes the bucket of another: among the
 * RL_EVICT_SCAN least recently used buckets of that partition, the least
 * recently used one that has refilled to full (lossless: a full bucket is
 * the same as a new one); when none of those is full, the least recently used
 * bucket of the partition, whose key then starts full again on its next call
 * (it may get up to `capacity` more calls through than the limit allows).
 *
 * Peeking (cost 0) takes the lock in shared mode and writes nothing, so it
 * neither creates a bucket nor counts as a use for the LRU order.
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include <openssl/evp.h>

#include "fmgr.h"
#include "funcapi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "common/preload.h"
#include "ratelimit/ratelimit.h"

PG_FUNCTION_INFO_V1(rate_limit);
PG_FUNCTION_INFO_V1(rate_limit_reset);

#define RL_PARTITIONS	64		/* a power of two */
#define RL_EVICT_SCAN	128		/* LRU buckets examined for a full one */
#define RL_DIGEST_LEN	32		/* SHA-256 */

/* One key's bucket; all fields are guarded by its partition's lock. */
typedef struct RateBucket
{
	dlist_node	lru;			/* the partition's LRU list, or its free list */
	struct RateBucket *chain;	/* next in the same hash chain */
	uint8		digest[RL_DIGEST_LEN];	/* SHA-256 of the key */
	double		tokens;			/* as of updated_ns */
	double		refill;			/* per second, of the last use */
	int64		updated_ns;		/* CLOCK_MONOTONIC */
	int32		capacity;		/* of the last use */
} RateBucket;

/* A partition: its lock and everything it guards. */
typedef struct RatePartition
{
	LWLock	   *lock;
	dlist_head	lru;			/* used buckets, most recently used first */
	dlist_head	free;			/* unused buckets */
	RateBucket **heads;			/* hash chains, mask + 1 of them */
	uint32		mask;
} RatePartition;

typedef struct RateShared
{
	int			per_partition;	/* buckets in each partition's pool */
	RatePartition parts[RL_PARTITIONS];
} RateShared;

static int	rate_limit_max_keys = 100000;
static RateShared *rl = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This process's SHA-256 (fetched once) and its reusable context. */
static EVP_MD *rl_md = NULL;
static EVP_MD_CTX *rl_ctx = NULL;

/* Buckets in each partition's pool. */
static int
RatePerPartition(void)
{
	return Max(rate_limit_max_keys / RL_PARTITIONS, 1);
}

/* Hash chains in each partition (a power of two, at least one per bucket). */
static uint32
RateChains(void)
{
	return pg_nextpower2_32((uint32) RatePerPartition());
}

/* Shared memory needed for every partition's chains and buckets. */
static Size
RateShmemSize(void)
{
	Size		per;

	per = add_size(MAXALIGN(mul_size(RateChains(), sizeof(RateBucket *))),
				   MAXALIGN(mul_size(RatePerPartition(), sizeof(RateBucket))));
	return add_size(MAXALIGN(sizeof(RateShared)), mul_size(per, RL_PARTITIONS));
}

/* shmem_request_hook: reserve the memory and one lock per partition. */
static void
RateShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(RateShmemSize());
	RequestNamedLWLockTranche("pgext_rate_limit", RL_PARTITIONS);
}

/* shmem_startup_hook: create (or attach to) the partitions. */
static void
RateShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rl = ShmemInitStruct("pgext rate limiter", RateShmemSize(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("pgext_rate_limit");
		char	   *p = (char *) rl + MAXALIGN(sizeof(RateShared));
		uint32		nchains = RateChains();
		int			per = RatePerPartition();

		rl->per_partition = per;
		for (int i = 0; i < RL_PARTITIONS; i++)
		{
			RatePartition *part = &rl->parts[i];
			RateBucket *pool;

			part->lock = &locks[i].lock;
			part->mask = nchains - 1;
			part->heads = (RateBucket **) p;
			memset(part->heads, 0, nchains * sizeof(RateBucket *));
			p += MAXALIGN(nchains * sizeof(RateBucket *));
			pool = (RateBucket *) p;
			p += MAXALIGN(per * sizeof(RateBucket));
			dlist_init(&part->lru);
			dlist_init(&part->free);
			for (int j = 0; j < per; j++)
				dlist_push_tail(&part->free, &pool[j].lru);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Define pgext.rate_limit_max_keys and, when preloaded, reserve the shared
 * memory of the buckets; called from _PG_init.
 */
void
RateLimitInit(void)
{
	/* A PGC_POSTMASTER setting can only be defined while preloading. */
	if (!pgext_preloaded)
		return;
	DefineCustomIntVariable("pgext.rate_limit_max_keys",
							"Most rate-limit keys kept in shared memory (about 100 bytes each).",
							"When full, a new key takes the bucket of a key that has refilled "
							"to full, else of the least recently used key.",
							&rate_limit_max_keys, 100000, RL_PARTITIONS, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RateShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = RateShmemStartup;
}

/* CLOCK_MONOTONIC in nanoseconds (the same clock in every process). */
static int64
RateNowNs(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		elog(ERROR, "clock_gettime(CLOCK_MONOTONIC) failed: %m");
	return (int64) ts.tv_sec * INT64CONST(1000000000) + ts.tv_nsec;
}

/* SHA-256 of the key's bytes, with this process's cached digest context. */
static void
RateDigest(const char *key, int len, uint8 *digest)
{
	if (rl_md == NULL)
	{
		rl_md = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (rl_md == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("pgext rate_limit could not load SHA-256 from OpenSSL")));
	}
	if (rl_ctx == NULL)
	{
		rl_ctx = EVP_MD_CTX_new();
		if (rl_ctx == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
	if (EVP_DigestInit_ex2(rl_ctx, rl_md, NULL) != 1 ||
		EVP_DigestUpdate(rl_ctx, key, len) != 1 ||
		EVP_DigestFinal_ex(rl_ctx, digest, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("pgext rate_limit could not hash the key (OpenSSL SHA-256 failed)")));
}

/* The key argument, checked: not NULL, 1 to RATE_LIMIT_MAX_KEY_BYTES bytes. */
static text *
RateKeyArg(FunctionCallInfo fcinfo, const char *fn)
{
	text	   *key;
	int			len;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: key must not be NULL", fn),
				 errhint("Pass the name of what is limited, e.g. 'signup:' || client_ip.")));
	key = PG_GETARG_TEXT_PP(0);
	len = VARSIZE_ANY_EXHDR(key);
	if (len == 0 || len > RATE_LIMIT_MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: key must be 1 to %d bytes long, not %d",
						fn, RATE_LIMIT_MAX_KEY_BYTES, len)));
	return key;
}

/* The partition of a digest, and its hash chain there. */
static RatePartition *
RatePartitionOf(const uint8 *digest, RateBucket ***chain)
{
	uint32		h1;
	uint32		h2;
	RatePartition *part;

	memcpy(&h1, digest, sizeof(h1));
	memcpy(&h2, digest + sizeof(h1), sizeof(h2));
	part = &rl->parts[h1 & (RL_PARTITIONS - 1)];
	*chain = &part->heads[h2 & part->mask];
	return part;
}

/* The bucket of a digest in its chain, or NULL (partition lock held). */
static RateBucket *
RateLookup(RateBucket **chain, const uint8 *digest)
{
	for (RateBucket *b = *chain; b != NULL; b = b->chain)
		if (memcmp(b->digest, digest, RL_DIGEST_LEN) == 0)
			return b;
	return NULL;
}

/* Take a bucket out of its hash chain (partition lock held exclusively). */
static void
RateUnchain(RatePartition *part, RateBucket *b)
{
	uint32		h2;
	RateBucket **link;

	memcpy(&h2, b->digest + sizeof(uint32), sizeof(h2));
	for (link = &part->heads[h2 & part->mask]; *link != NULL; link = &(*link)->chain)
	{
		if (*link == b)
		{
			*link = b->chain;
			return;
		}
	}
	elog(ERROR, "pgext rate_limit: bucket missing from its hash chain");
}

/* A bucket's tokens at `now` with its own (last used) parameters. */
static double
RateTokensAt(const RateBucket *b, int64 now, double refill, int32 capacity)
{
	double		tokens = b->tokens;

	if (now > b->updated_ns && refill > 0)
		tokens += (double) (now - b->updated_ns) / 1e9 * refill;
	if (tokens > capacity)
		tokens = capacity;
	return tokens;
}

/*
 * A bucket for a new digest (partition lock held exclusively): a free one,
 * else one taken from another key (see the top of the file for the policy).
 * The caller fills in tokens and parameters.
 */
static RateBucket *
RateInsert(RatePartition *part, RateBucket **chain, const uint8 *digest, int64 now)
{
	RateBucket *b = NULL;

	if (!dlist_is_empty(&part->free))
		b = dlist_container(RateBucket, lru, dlist_pop_head_node(&part->free));
	else
	{
		dlist_iter	it;
		int			seen = 0;

		dlist_reverse_foreach(it, &part->lru)
		{
			RateBucket *cand = dlist_container(RateBucket, lru, it.cur);

			if (RateTokensAt(cand, now, cand->refill, cand->capacity) >= cand->capacity)
			{
				b = cand;
				break;
			}
			if (++seen >= RL_EVICT_SCAN)
				break;
		}
		if (b == NULL)
			b = dlist_container(RateBucket, lru, dlist_tail_node(&part->lru));
		RateUnchain(part, b);
		dlist_delete(&b->lru);
	}
	memcpy(b->digest, digest, RL_DIGEST_LEN);
	b->chain = *chain;
	*chain = b;
	dlist_push_head(&part->lru, &b->lru);
	return b;
}

/* The composite result type, blessed once per call site. */
static TupleDesc
RateResultDesc(FunctionCallInfo fcinfo)
{
	TupleDesc	desc = (TupleDesc) fcinfo->flinfo->fn_extra;

	if (desc == NULL)
	{
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("rate_limit must be called in a context that accepts a record")));
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = desc;
	}
	return desc;
}

/*
 * rate_limit(key, capacity, refill_per_second, cost DEFAULT 1)
 *   -> (allowed, remaining, retry_after_ms)
 * Takes `cost` tokens from key's bucket when it holds that many.  remaining
 * is the whole tokens left; retry_after_ms is 0 when allowed, else how long
 * until the bucket holds `cost` tokens at this rate (NULL: never, rate 0).
 */
Datum
rate_limit(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"key", "capacity", "refill_per_second", "cost"};
	text	   *key;
	int32		capacity;
	double		refill;
	int32		cost;
	uint8		digest[RL_DIGEST_LEN];
	RatePartition *part;
	RateBucket **chain;
	RateBucket *b;
	int64		now;
	double		tokens;
	bool		allowed;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	TupleDesc	desc;

	for (int i = 1; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rate_limit: %s must not be NULL", names[i])));
	key = RateKeyArg(fcinfo, "rate_limit");
	capacity = PG_GETARG_INT32(1);
	refill = PG_GETARG_FLOAT8(2);
	cost = PG_GETARG_INT32(3);
	if (capacity < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit: capacity must be at least 1, not %d", capacity)));
	if (isnan(refill) || isinf(refill) || refill < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit: refill_per_second must be a finite number >= 0, not %g", refill)));
	if (cost < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit: cost must be >= 0, not %d", cost)));
	if (cost > capacity)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit: cost %d exceeds capacity %d, so the request could never be allowed",
						cost, capacity),
				 errhint("Raise the capacity or split the request.")));
	PgextRequirePreload("rate_limit");
	desc = RateResultDesc(fcinfo);
	RateDigest(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), digest);
	part = RatePartitionOf(digest, &chain);

	/* A peek writes nothing: shared mode. */
	LWLockAcquire(part->lock, cost == 0 ? LW_SHARED : LW_EXCLUSIVE);
	now = RateNowNs();
	b = RateLookup(chain, digest);
	if (b == NULL && cost > 0)
	{
		b = RateInsert(part, chain, digest, now);
		b->tokens = capacity;
		b->updated_ns = now;
	}
	tokens = b ? RateTokensAt(b, now, refill, capacity) : capacity;
	allowed = tokens >= cost;
	if (allowed)
		tokens -= cost;
	if (cost > 0)
	{
		b->tokens = tokens;
		if (now > b->updated_ns)
			b->updated_ns = now;
		b->capacity = capacity;
		b->refill = refill;
		dlist_move_head(&part->lru, &b->lru);
	}
	LWLockRelease(part->lock);

	values[0] = BoolGetDatum(allowed);
	values[1] = Int32GetDatum((int32) floor(tokens));
	if (allowed)
		values[2] = Int32GetDatum(0);
	else if (refill > 0)
	{
		double		ms = ceil((cost - tokens) / refill * 1000.0);

		values[2] = Int32GetDatum(ms >= PG_INT32_MAX ? PG_INT32_MAX : Max((int32) ms, 1));
	}
	else
		nulls[2] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * rate_limit_reset(key) -> boolean: forget key's bucket (its next call starts
 * full); false when there was none.
 */
Datum
rate_limit_reset(PG_FUNCTION_ARGS)
{
	text	   *key = RateKeyArg(fcinfo, "rate_limit_reset");
	uint8		digest[RL_DIGEST_LEN];
	RatePartition *part;
	RateBucket **chain;
	RateBucket *b;

	PgextRequirePreload("rate_limit_reset");
	RateDigest(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), digest);
	part = RatePartitionOf(digest, &chain);
	LWLockAcquire(part->lock, LW_EXCLUSIVE);
	b = RateLookup(chain, digest);
	if (b != NULL)
	{
		RateUnchain(part, b);
		dlist_delete(&b->lru);
		dlist_push_head(&part->free, &b->lru);
	}
	LWLockRelease(part->lock);
	PG_RETURN_BOOL(b != NULL);
}
