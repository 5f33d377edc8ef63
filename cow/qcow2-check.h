/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to cow/: checking and repairing qcow2 metadata. */
#ifndef VS_COW_QCOW2_CHECK_H
#define VS_COW_QCOW2_CHECK_H

#include "qcow2.h"

/* The driver's check callback (see vbd_check). */
int qcow2_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
		struct vs_error **errp);

/*
 * Opening for writing an image with the dirty bit set (a crash while
 * open with lazy refcounts): rebuild what the refcounts must be, repair
 * them, and clear the bit, as QEMU does on open.  Returns 0 with the bit
 * cleared, or -errno with *errp.
 */
int qcow2_repair_dirty(struct vbd *vbd, struct qcow2 *s,
		       struct vs_error **errp);

/*
 * Opening with VBD_O_REPAIR: the image opens writable even when marked
 * dirty or corrupt, and is left as it is for the caller's check.
 */
int qcow2_open_repair(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp);

#endif
