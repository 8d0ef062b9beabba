/*
 * fastpath.c — credit_deduct's common case without a SQL statement.
 *
 * Most deducts are on a metered account whose credits are all in the
 * non-expiring pool, with a fresh idempotency key.  Run as a SPI statement
 * (check-and-decrement plus the ledger row), about half of the call's CPU
 * went to executor setup and teardown of a plan whose work is one index
 * probe, one row update and one row insert (docs/benchmarks.md, issue 14).
 * This file does that work through the executor's own row-level entry
 * points, the ones logical replication's apply worker uses
 * (ExecSimpleRelationUpdate / ExecSimpleRelationInsert): the table's CHECK
 * constraints (balance >= 0, the last line of defence), NOT NULLs, index
 * entries with their uniqueness checks, row triggers (the foreign keys that
 * reference accounts) and WAL are exactly as for an UPDATE and an INSERT, so
 * crash recovery, physical replication and logical decoding see ordinary
 * row changes.
 *
 * What it takes on, and what it leaves to the SQL path (credits.c):
 *  - READ COMMITTED only.  Under REPEATABLE READ or SERIALIZABLE the SQL
 *    path runs: a row updated after the transaction's snapshot must raise a
 *    serialization failure, and SERIALIZABLE needs predicate locks.
 *  - The account row is found through its primary key under a fresh
 *    snapshot, its conditions checked, and updated as an UPDATE updates it
 *    (the heap update waits for a concurrent writer and takes the row lock;
 *    no separate lock record).  When a concurrent transaction updated the
 *    row and committed meanwhile, its latest version is locked (FOR NO KEY
 *    UPDATE), the conditions re-checked there and that version updated: the
 *    loop of ExecUpdate and EvalPlanQual under READ COMMITTED.
 *  - Only a metered account, not forgotten, with no credits in lots and
 *    enough in its balance; anything else is declined and the general path
 *    (DeductLocked) answers under the row lock it takes.
 *  - The key is probed after the update, in the ledger's unique
 *    (account_id, idempotency_key) index with a dirty snapshot: every ledger
 *    writer of an account holds its row lock until commit, so under our
 *    lock a matching entry is either committed or our own.  A taken key (a
 *    retry, rare) is handed back to the caller, which undoes the decrement
 *    and answers from the first entry, as the SQL path does.  The insert's
 *    own uniqueness check stays as the last line of defence.
 *  - Triggers the row-level entry points would not run as a statement does
 *    turn the fast path off (the SQL path runs them): on accounts, BEFORE
 *    UPDATE row triggers, statement-level UPDATE triggers and transition
 *    tables, and stored generated columns; on the ledger, statement-level
 *    INSERT triggers and transition tables.  Row triggers run as usual.
 *  - The tables' shape is checked when first resolved (every column of the
 *    ledger known, with its type): after a schema change the fast path
 *    turns itself off rather than write a row the SQL would have written
 *    differently (a new column's default, say).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "accounts.h"
#include "credits/credits.h"
#include "credits/fastpath.h"

/* The ledger's columns, in the order of the table (checked at resolve time). */
enum
{
	L_ID, L_ACCOUNT, L_OP, L_KIND, L_AMOUNT, L_DELTA, L_BALANCE_AFTER, L_KEY, L_REASON,
	L_LOT_ID, L_RESERVATION_ID, L_EXPIRES_AT, L_LOT_IDS, L_LOT_PARTS, L_CREATED_AT,
	L_NCOLS
};
static const struct
{
	const char *name;
	Oid			type;
}			ledger_cols[L_NCOLS] = {
	{"id", INT8OID}, {"account_id", UUIDOID}, {"op", TEXTOID}, {"kind", TEXTOID},
	{"amount", INT8OID}, {"delta", INT8OID}, {"balance_after", INT8OID},
	{"idempotency_key", TEXTOID}, {"reason", TEXTOID}, {"lot_id", INT8OID},
	{"reservation_id", INT8OID}, {"expires_at", TIMESTAMPTZOID}, {"lot_ids", INT8ARRAYOID},
	{"lot_parts", INT8ARRAYOID}, {"created_at", TIMESTAMPTZOID}
};

/* The accounts columns the fast path reads or writes. */
enum
{
	A_ID, A_EXTERNAL_ID, A_CREDIT_MODE, A_BALANCE, A_LOT_CREDITS, A_NCOLS
};
static const struct
{
	const char *name;
	Oid			type;			/* of the column, or of its domain's base */
}			account_cols[A_NCOLS] = {
	{"id", UUIDOID}, {"external_id", TEXTOID}, {"credit_mode", TEXTOID},
	{"balance", INT8OID}, {"lot_credits", INT8OID}
};

/* What the fast path resolved once per backend (see FastRelsResolve). */
static struct
{
	bool		resolved;		/* the fields below are current */
	bool		usable;			/* the shape is the known one */
	Oid			accounts;
	Oid			accounts_pkey;
	Oid			ledger;
	Oid			ledger_key_index;
	Oid			ledger_seq;
	AttrNumber	acc_att[A_NCOLS];
	AttrNumber	led_att[L_NCOLS];
}			fast;

static bool fast_callback_registered = false;

/* Relcache callback: forget the resolved relations on any change to them. */
static void
FastRelsInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == fast.accounts || relid == fast.accounts_pkey ||
		relid == fast.ledger || relid == fast.ledger_key_index || relid == fast.ledger_seq)
		fast.resolved = false;
}

/* The base type of a column's type (a domain's base; else the type itself). */
static Oid
ColumnBaseType(Relation rel, AttrNumber att)
{
	return getBaseType(TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid);
}

/* Whether index `indexid` is a valid btree on exactly the given columns of its table. */
static bool
IndexIsOn(Oid indexid, int ncols, const AttrNumber *cols)
{
	Relation	idx;
	bool		ok;
	int			i;

	if (!OidIsValid(indexid))
		return false;
	idx = index_open(indexid, AccessShareLock);
	ok = idx->rd_index->indisvalid && idx->rd_index->indisunique &&
		idx->rd_rel->relam == BTREE_AM_OID &&
		idx->rd_index->indnkeyatts == ncols && RelationGetIndexExpressions(idx) == NIL &&
		RelationGetIndexPredicate(idx) == NIL;
	for (i = 0; ok && i < ncols; i++)
		ok = idx->rd_index->indkey.values[i] == cols[i];
	index_close(idx, AccessShareLock);
	return ok;
}

/*
 * Resolve the relations, columns and the ledger's id sequence, and decide
 * whether their shape is the one this file writes.  One catalog pass per
 * backend, again after a relcache invalidation of any of them.
 */
static void
FastRelsResolve(void)
{
	Oid			nsp;
	Relation	rel;
	TupleDesc	desc;
	int			i;
	bool		ok = true;

	if (fast.resolved)
		return;
	if (!fast_callback_registered)
	{
		CacheRegisterRelcacheCallback(FastRelsInvalidate, (Datum) 0);
		fast_callback_registered = true;
	}
	memset(&fast, 0, sizeof(fast));
	nsp = get_namespace_oid("pgext", false);
	fast.accounts = get_relname_relid("accounts", nsp);
	fast.accounts_pkey = get_relname_relid("accounts_pkey", nsp);
	fast.ledger = get_relname_relid("credit_ledger", nsp);
	fast.ledger_key_index = get_relname_relid("credit_ledger_key_unique", nsp);
	if (!OidIsValid(fast.accounts) || !OidIsValid(fast.ledger))
		ok = false;

	if (ok)
	{
		rel = table_open(fast.accounts, AccessShareLock);
		for (i = 0; i < A_NCOLS; i++)
		{
			fast.acc_att[i] = get_attnum(fast.accounts, account_cols[i].name);
			ok = ok && fast.acc_att[i] > 0 &&
				ColumnBaseType(rel, fast.acc_att[i]) == account_cols[i].type;
		}
		ok = ok && rel->rd_rel->relkind == RELKIND_RELATION &&
			!(rel->trigdesc && (rel->trigdesc->trig_update_before_row ||
								rel->trigdesc->trig_update_before_statement ||
								rel->trigdesc->trig_update_after_statement ||
								rel->trigdesc->trig_update_old_table ||
								rel->trigdesc->trig_update_new_table)) &&
			!(rel->rd_att->constr && rel->rd_att->constr->has_generated_stored);
		table_close(rel, AccessShareLock);
	}
	if (ok)
	{
		rel = table_open(fast.ledger, AccessShareLock);
		desc = RelationGetDescr(rel);
		for (i = 0; i < L_NCOLS; i++)
		{
			fast.led_att[i] = get_attnum(fast.ledger, ledger_cols[i].name);
			ok = ok && fast.led_att[i] > 0 &&
				TupleDescAttr(desc, fast.led_att[i] - 1)->atttypid == ledger_cols[i].type;
		}
		/* every live column is one of ours: no default this file would skip */
		for (i = 0; ok && i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);
			int			j;

			if (a->attisdropped)
				continue;
			for (j = 0; j < L_NCOLS && fast.led_att[j] != a->attnum; j++)
				;
			ok = j < L_NCOLS && a->attgenerated == '\0';
		}
		ok = ok && rel->rd_rel->relkind == RELKIND_RELATION &&
			!(rel->trigdesc && (rel->trigdesc->trig_insert_before_statement ||
								rel->trigdesc->trig_insert_after_statement ||
								rel->trigdesc->trig_insert_new_table));
		table_close(rel, AccessShareLock);
	}
	if (ok)
	{
		AttrNumber	pk[1] = {fast.acc_att[A_ID]};
		AttrNumber	key[2] = {fast.led_att[L_ACCOUNT], fast.led_att[L_KEY]};

		ok = IndexIsOn(fast.accounts_pkey, 1, pk) && IndexIsOn(fast.ledger_key_index, 2, key);
	}
	if (ok)
	{
		fast.ledger_seq = getIdentitySequence(fast.ledger, fast.led_att[L_ID], true);
		ok = OidIsValid(fast.ledger_seq);
	}
	fast.usable = ok;
	fast.resolved = true;
}

/* Whether text datum `d` starts with the C string `prefix`. */
static bool
TextStartsWith(Datum d, const char *prefix)
{
	text	   *t = DatumGetTextPP(d);
	size_t		n = strlen(prefix);

	return VARSIZE_ANY_EXHDR(t) >= n && memcmp(VARDATA_ANY(t), prefix, n) == 0;
}

/* Whether text datum `d` equals the C string `s`. */
static bool
TextEquals(Datum d, const char *s)
{
	text	   *t = DatumGetTextPP(d);

	return VARSIZE_ANY_EXHDR(t) == strlen(s) && memcmp(VARDATA_ANY(t), s, strlen(s)) == 0;
}

/*
 * Find the account's row through the primary key under `snap` (no lock yet:
 * UpdateBalance takes it, as an UPDATE does).  False when there is none.
 */
static bool
FindAccountRow(Relation rel, Datum account, Snapshot snap, TupleTableSlot *slot)
{
	Relation	idx = index_open(fast.accounts_pkey, RowExclusiveLock);
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		found;

	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_UUID_EQ, account);
	scan = index_beginscan(rel, idx, snap, 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(idx, NoLock);
	return found;
}

/*
 * Whether the account version in `slot` takes the fast path for `amount`:
 * metered, not forgotten, no credits in lots, enough balance (into *balance).
 */
static bool
RowQualifies(TupleTableSlot *slot, int64 amount, int64 *balance)
{
	bool		n1,
				n2,
				n3,
				n4;
	Datum		mode = slot_getattr(slot, fast.acc_att[A_CREDIT_MODE], &n1);
	Datum		lots = slot_getattr(slot, fast.acc_att[A_LOT_CREDITS], &n2);
	Datum		bal = slot_getattr(slot, fast.acc_att[A_BALANCE], &n3);
	Datum		ext = slot_getattr(slot, fast.acc_att[A_EXTERNAL_ID], &n4);

	if (n1 || n2 || n3 || n4)
		return false;
	*balance = DatumGetInt64(bal);
	return TextEquals(mode, "metered") && DatumGetInt64(lots) == 0 && *balance >= amount &&
		!TextStartsWith(ext, ACCOUNT_FORGOTTEN_PREFIX);
}

/*
 * Update the account version in `oldslot` to `balance` (built in `newslot`):
 * the table's CHECKs first, then the heap update, which waits for a
 * concurrent writer and takes the row lock as an UPDATE's does.  On TM_Ok
 * the new version's index entries (when not HOT) and the AFTER ROW triggers
 * (the referencing foreign keys' checks) follow, as in ExecUpdate.
 */
static TM_Result
UpdateBalance(EState *estate, ResultRelInfo *rri, TupleTableSlot *oldslot,
			  TupleTableSlot *newslot, int64 balance, TM_FailureData *tmfd)
{
	Relation	rel = rri->ri_RelationDesc;
	int			natts = newslot->tts_tupleDescriptor->natts;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	res;
	List	   *recheck = NIL;

	slot_getallattrs(oldslot);
	ExecClearTuple(newslot);
	memcpy(newslot->tts_values, oldslot->tts_values, sizeof(Datum) * natts);
	memcpy(newslot->tts_isnull, oldslot->tts_isnull, sizeof(bool) * natts);
	newslot->tts_values[fast.acc_att[A_BALANCE] - 1] = Int64GetDatum(balance);
	ExecStoreVirtualTuple(newslot);
	if (rel->rd_att->constr)
		ExecConstraints(rri, newslot, estate);
	res = table_tuple_update(rel, &oldslot->tts_tid, newslot, estate->es_output_cid,
							 estate->es_snapshot, InvalidSnapshot, true, tmfd, &lockmode,
							 &update_indexes);
	if (res != TM_Ok)
		return res;
	if (rri->ri_NumIndices > 0 && update_indexes)
		recheck = ExecInsertIndexTuples(rri, newslot, estate, true, false, NULL, NIL);
	ExecARUpdateTriggers(estate, rri, NULL, NULL, &oldslot->tts_tid, NULL, newslot, recheck,
						 NULL, false);
	list_free(recheck);
	return TM_Ok;
}

/* Whether the ledger already holds an entry for (account, key): dirty snapshot. */
static bool
KeyTaken(Relation ledger, Datum account, text *key)
{
	Relation	idx = index_open(fast.ledger_key_index, RowExclusiveLock);
	SnapshotData dirty;
	IndexScanDesc scan;
	ScanKeyData skey[2];
	TupleTableSlot *slot = table_slot_create(ledger, NULL);
	bool		found;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_UUID_EQ, account);
	ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[1], F_TEXTEQ, PointerGetDatum(key));
	scan = index_beginscan(ledger, idx, &dirty, 2, 0);
	index_rescan(scan, skey, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(idx, NoLock);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * See fastpath.h.  Runs outside SPI; the caller has checked the arguments
 * and the account binding.
 */
DeductFast
CreditDeductFast(Datum account, int64 amount, text *key, text *reason, CreditResult *r)
{
	Relation	acc_rel;
	Relation	led_rel;
	EState	   *estate;
	ResultRelInfo *acc_rri;
	ResultRelInfo *led_rri;
	RangeTblEntry *rte_acc;
	RangeTblEntry *rte_led;
	TupleTableSlot *oldslot;
	TupleTableSlot *newslot;
	TupleTableSlot *ledslot;
	Snapshot	snap;
	DeductFast	outcome = DEDUCT_FAST_UNAVAILABLE;
	int64		balance;
	int64		id = 0;

	if (IsolationUsesXactSnapshot())
		return DEDUCT_FAST_UNAVAILABLE;
	FastRelsResolve();
	if (!fast.usable)
		return DEDUCT_FAST_UNAVAILABLE;

	/* what a new statement would see, ours included (as SPI does) */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	PushActiveSnapshot(snap);

	acc_rel = table_open(fast.accounts, RowExclusiveLock);
	led_rel = table_open(fast.ledger, RowExclusiveLock);

	estate = CreateExecutorState();
	rte_acc = makeNode(RangeTblEntry);
	rte_acc->rtekind = RTE_RELATION;
	rte_acc->relid = fast.accounts;
	rte_acc->relkind = RELKIND_RELATION;
	rte_acc->rellockmode = RowExclusiveLock;
	rte_led = copyObject(rte_acc);
	rte_led->relid = fast.ledger;
	ExecInitRangeTable(estate, list_make2(rte_acc, rte_led));
	estate->es_output_cid = GetCurrentCommandId(true);
	estate->es_snapshot = snap;
	acc_rri = makeNode(ResultRelInfo);
	InitResultRelInfo(acc_rri, acc_rel, 1, NULL, 0);
	led_rri = makeNode(ResultRelInfo);
	InitResultRelInfo(led_rri, led_rel, 2, NULL, 0);
	AfterTriggerBeginQuery();

	oldslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(acc_rel), table_slot_callbacks(acc_rel));
	newslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(acc_rel), table_slot_callbacks(acc_rel));
	ledslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(led_rel), table_slot_callbacks(led_rel));

	if (FindAccountRow(acc_rel, account, snap, oldslot))
	{
		TM_FailureData tmfd;
		TM_Result	res = TM_Invisible;
		int			tries;

		CheckCmdReplicaIdentity(acc_rel, CMD_UPDATE);
		ExecOpenIndices(acc_rri, false);

		/*
		 * READ COMMITTED's update loop (ExecUpdate and EvalPlanQual): when a
		 * concurrent transaction updated the row and committed, lock its
		 * latest version, re-check the conditions there and update that.
		 */
		for (tries = 0; tries < 100; tries++)
		{
			if (!RowQualifies(oldslot, amount, &balance))
			{
				res = TM_Invisible;
				outcome = DEDUCT_FAST_DECLINED;
				break;
			}
			res = UpdateBalance(estate, acc_rri, oldslot, newslot, balance - amount, &tmfd);
			if (res != TM_Updated)
				break;
			if (table_tuple_lock(acc_rel, &oldslot->tts_tid, snap, oldslot,
								 estate->es_output_cid, LockTupleNoKeyExclusive, LockWaitBlock,
								 TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd) != TM_Ok)
				break;
		}
		if (res == TM_Ok)
		{
			balance -= amount;
			/* under the row lock now: a ledger entry with this key is committed or ours */
			if (key != NULL && KeyTaken(led_rel, account, key))
				outcome = DEDUCT_FAST_KEY_TAKEN;
			else
			{
				Datum	   *lv = ledslot->tts_values;
				bool	   *ln = ledslot->tts_isnull;
				int			i;

				ExecOpenIndices(led_rri, false);
				ExecClearTuple(ledslot);
				for (i = 0; i < ledslot->tts_tupleDescriptor->natts; i++)
				{
					lv[i] = (Datum) 0;
					ln[i] = true;
				}
				id = nextval_internal(fast.ledger_seq, false);
#define SET(col, v) (lv[fast.led_att[col] - 1] = (v), ln[fast.led_att[col] - 1] = false)
				SET(L_ID, Int64GetDatum(id));
				SET(L_ACCOUNT, account);
				SET(L_OP, CStringGetTextDatum("deduct"));
				SET(L_AMOUNT, Int64GetDatum(amount));
				SET(L_DELTA, Int64GetDatum(-amount));
				SET(L_BALANCE_AFTER, Int64GetDatum(balance));
				if (key != NULL)
					SET(L_KEY, PointerGetDatum(key));
				if (reason != NULL)
					SET(L_REASON, PointerGetDatum(reason));
				SET(L_CREATED_AT, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
#undef SET
				ExecStoreVirtualTuple(ledslot);
				ExecSimpleRelationInsert(led_rri, estate, ledslot);
				ExecCloseIndices(led_rri);
				outcome = DEDUCT_FAST_DONE;
			}
		}
		ExecCloseIndices(acc_rri);
	}

	AfterTriggerEndQuery(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(led_rel, NoLock);
	table_close(acc_rel, NoLock);
	PopActiveSnapshot();
	UnregisterSnapshot(snap);
	/* later statements of this transaction (and calls of this one) see the change */
	CommandCounterIncrement();

	if (outcome == DEDUCT_FAST_DONE)
		CreditSetResult(r, true, "deducted", balance, true, id);
	else if (outcome == DEDUCT_FAST_KEY_TAKEN)
		CreditSetResult(r, true, "deducted", balance, false, 0);
	return outcome;
}
