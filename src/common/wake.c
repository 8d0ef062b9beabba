/*
 * wake.c — wake the background worker at commit.
 *
 * A wake-up sent before commit could make the worker look for work it cannot
 * see yet; one sent on abort wakes it for nothing.  So callers only note that
 * a wake-up is wanted, and a transaction callback sends it at commit.  The
 * worker's timer covers a lost wake-up (level-triggered: it only delays).
 */
#include "postgres.h"

#include "access/xact.h"

#include "common/wake.h"

PgextWakeFunction pgext_wake_function = NULL;

static bool wake_pending = false;
static bool wake_registered = false;

/* At commit, send the pending wake-up; at abort, forget it. */
static void
PgextWakeXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending && pgext_wake_function)
				(void) pgext_wake_function();
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_pending = false;
			break;
		default:
			break;
	}
}

/* Note that the worker should be woken when this transaction commits. */
void
PgextWakeAtCommit(void)
{
	if (pgext_wake_function == NULL)
		return;
	if (!wake_registered)
	{
		RegisterXactCallback(PgextWakeXactCallback, NULL);
		wake_registered = true;
	}
	wake_pending = true;
}
