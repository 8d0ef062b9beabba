/*
 * drop_guard.h — refuse to drop pgext while it holds money or keys.
 */
#ifndef PGEXT_DROP_GUARD_H
#define PGEXT_DROP_GUARD_H

/* Define pgext.confirm_drop and install the utility hook; called from _PG_init. */
extern void DropGuardInit(void);

#endif							/* PGEXT_DROP_GUARD_H */
