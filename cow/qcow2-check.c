/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checking and repairing qcow2 metadata: being written (see README). */
#include <errno.h>

#include "qcow2-check.h"

int qcow2_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
		struct vs_error **errp)
{
	(void)fix;
	(void)res;
	return vs_error_set(errp, ENOTSUP, "%s: check is not supported yet",
			    vbd->filename);
}

int qcow2_repair_dirty(struct vbd *vbd, struct qcow2 *s,
		       struct vs_error **errp)
{
	(void)s;
	return vs_error_set(errp, EIO,
			    "%s: the image was not closed cleanly (dirty bit "
			    "set) and its refcounts may be wrong; run "
			    "'qemu-img check -r all' before writing it (it "
			    "opens read-only)",
			    vbd->filename);
}

int qcow2_open_repair(struct vbd *vbd, struct qcow2 *s,
		      struct vs_error **errp)
{
	return qcow2_refcount_load(s, vbd->filename, errp);
}
