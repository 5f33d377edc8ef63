/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parent disks (linked clones, snapshots, qemu-img create -b): a disk
 * whose descriptor has a parentFileNameHint reads its unallocated
 * grains from that disk, another VMDK opened read-only, named relative
 * to the child's directory.  A chain that loops or is deeper than
 * VBD_MAX_CHAIN is refused (vbd/chain.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/cleanup.h"
#include "../../common/iov.h"
#include "vmdk.h"

char *vmdk_relative_path(const char *base, const char *name)
{
	const char *slash = strrchr(base, '/');
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - base), base, name) < 0)
		return NULL;
	return p;
}

int vmdk_parent_open(struct vbd *vbd, struct vmdk *s, struct vs_error **errp)
{
	const char *hint = s->desc.parent_hint;
	autofree char *path = NULL;
	unsigned flags;
	int ret;

	if (!hint)
		return vs_error_set(errp, EINVAL,
				    "%s: parentCID is %08x but the descriptor "
				    "names no parentFileNameHint",
				    vbd->filename, s->desc.parent_cid);
	if (!*hint || strstr(hint, "://"))
		return vs_error_set(errp, ENOTSUP,
				    "%s: parent '%.256s' is not a plain file "
				    "name (not supported)",
				    vbd->filename, hint);
	path = vmdk_relative_path(vbd->filename, hint);
	if (!path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	/* Read-only and locked as readers lock, so that nobody changes
	 * what this disk reads through it (-U shares it, as it shares
	 * this disk). */
	flags = VBD_O_RDONLY | (vbd->flags & (VBD_O_SHARE | VBD_O_NOLOCK));
	ret = vbd_open_file(path, "vmdk", flags, &s->parent, errp);
	if (ret < 0 && (ret != -ELOOP || vbd_chain_depth() == 1))
		vs_error_prefix(errp, "%s: cannot open its parent",
				vbd->filename);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < s->next; i++)
		if (s->ext[i].sp) {
			s->ext[i].sp->parent = s->parent;
			s->ext[i].sp->vstart = s->ext[i].start;
		}
	return 0;
}

int vmdk_parent_read(struct vbd *parent, uint64_t pos, const struct iovec *iov,
		     int iovcnt, size_t skip, size_t n, struct iovec *part)
{
	uint64_t psize = vbd_size(parent);
	size_t avail =
		pos < psize ? (size_t)VS_MIN((uint64_t)n, psize - pos) : 0;
	int cnt, ret;

	if (avail) {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, skip, avail);
		if (cnt < 0)
			return -EIO;
		ret = vbd_preadv(parent, pos, part, cnt);
		if (ret < 0)
			return ret;
	}
	/* Past the end of a smaller parent: zeros. */
	if (avail < n)
		vs_iov_memset(iov, iovcnt, skip + avail, 0, n - avail);
	return 0;
}

int vmdk_parent_fill(struct vbd *parent, uint64_t pos, uint8_t *buf, size_t n)
{
	struct iovec iov = {.iov_base = buf, .iov_len = n}, part;

	return vmdk_parent_read(parent, pos, &iov, 1, 0, n, &part);
}

int vmdk_parent_cid(const char *path, uint32_t *cid, struct vs_error **errp)
{
	struct vbd *p = NULL;
	int ret = vbd_open_file(path, "vmdk", VBD_O_RDONLY | VBD_O_SHARE, &p,
				errp);

	if (ret < 0) {
		vs_error_prefix(errp, "parent disk");
		return ret;
	}
	*cid = ((struct vmdk *)p->opaque)->desc.cid;
	vbd_close(p);
	return 0;
}
