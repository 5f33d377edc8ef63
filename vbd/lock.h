/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image locking with open file description (OFD) locks, in the same byte
 * layout QEMU uses, so that vstor and QEMU's tools keep each other out:
 * a shared lock on byte 100+i means "I use permission i", one on byte
 * 200+i means "I do not let others use permission i".  The locks belong
 * to the open file description and vanish when it is closed, also when
 * the process dies.
 */
#ifndef VS_VBD_LOCK_H
#define VS_VBD_LOCK_H

#include "../common/error.h"

enum {
	VBD_PERM_CONSISTENT_READ = 1u << 0,
	VBD_PERM_WRITE = 1u << 1,
	VBD_PERM_WRITE_UNCHANGED = 1u << 2,
	VBD_PERM_RESIZE = 1u << 3,
	VBD_PERM_ALL = 0xfu,
};

/*
 * Take the locks for `perm` (what we use) and `shared` (what we let
 * others use) on fd, then check that nobody else holds a conflicting
 * lock.  On conflict returns -EBUSY with *errp naming `filename` and the
 * permission.  The locks stay until fd is closed.
 */
int vbd_lock_apply(int fd, const char *filename, unsigned perm, unsigned shared,
		   struct vs_error **errp);

/* The permissions an open mode needs and shares (VBD_O_* flags). */
void vbd_lock_perms(unsigned vbd_flags, bool readonly, unsigned *perm,
		    unsigned *shared);

#endif
