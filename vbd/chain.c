/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guard against backing chains that loop or never end, shared by
 * every format that names a parent (qcow2, VHD, VMDK): a chain is opened
 * recursively on one thread, each image entering before it opens its
 * parent and leaving after, so one thread-local list sees a loop through
 * any mix of formats (a qcow2 over a VMDK over the same qcow2).
 */
#include <errno.h>
#include <sys/stat.h>

#include "driver.h"

struct chain_link {
	dev_t dev;
	ino_t ino;
};
static __thread struct chain_link chain[VBD_MAX_CHAIN];
static __thread unsigned chain_depth;

int vbd_chain_enter(const char *filename, struct vs_error **errp)
{
	struct stat st;

	if (chain_depth >= VBD_MAX_CHAIN)
		return vs_error_set(errp, ELOOP,
				    "%s: backing chain deeper than %d images",
				    filename, VBD_MAX_CHAIN);
	if (stat(filename, &st) < 0)
		return vs_error_set_errno(errp, errno, "%s: cannot stat",
					  filename);
	for (unsigned i = 0; i < chain_depth; i++)
		if (chain[i].dev == st.st_dev && chain[i].ino == st.st_ino)
			return vs_error_set(errp, ELOOP,
					    "%s: the backing chain loops back "
					    "to this image",
					    filename);
	chain[chain_depth].dev = st.st_dev;
	chain[chain_depth].ino = st.st_ino;
	chain_depth++;
	return 0;
}

void vbd_chain_leave(void)
{
	if (chain_depth)
		chain_depth--;
}

unsigned vbd_chain_depth(void)
{
	return chain_depth;
}
