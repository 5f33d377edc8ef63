/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img rebase.
 *
 * Safe mode reads the image itself where it is unallocated (which is
 * what its old chain shows) and the new backing file at the same place,
 * unit by unit (the image's cluster), and writes the units that differ
 * into the image; a unit the image only partly lacks gets only the
 * lacking part written, and copy-on-write fills the rest from the old
 * chain, which is still attached.  Ranges where both sides read as zeros
 * by block status are not read at all.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../vbd/vbd.h"
#include "commit.h"
#include "rebase.h"

#define CHUNK	     (4u << 20)
#define DEFAULT_UNIT 65536u

struct rebase {
	const struct img_rebase_opts *o;
	struct vbd *img;
	struct vbd *nb; /* the new backing file, NULL for none */
	uint64_t unit;
	uint8_t *old, *new;
};

/* Whether [off, off+len) of `vbd` reads as zeros, by block status only
 * (no read); bytes past its end read as zeros. */
static bool zero_by_status(struct vbd *vbd, uint64_t off, uint64_t len)
{
	uint64_t size = vbd ? vbd_size(vbd) : 0, end = off + len;

	while (off < VS_MIN(end, size)) {
		struct vbd_extent ext;

		if (vbd_block_status(vbd, off, VS_MIN(end, size) - off, &ext) <
			    0 ||
		    !(ext.flags & VBD_STATUS_ZERO))
			return false;
		off += ext.length;
	}
	return true;
}

/* The new backing file's bytes [off, off+len) into c->new. */
static int read_new(struct rebase *c, uint64_t off, uint64_t len)
{
	uint64_t size = c->nb ? vbd_size(c->nb) : 0;
	uint64_t avail = off < size ? VS_MIN(len, size - off) : 0;

	memset(c->new + avail, 0, (size_t)(len - avail));
	return avail ? vbd_pread(c->nb, off, c->new, (size_t)avail) : 0;
}

/* [off, off+len), unallocated in the image: write what differs. */
static int fix_range(struct rebase *c, uint64_t off, uint64_t len,
		     struct vs_error **errp)
{
	int ret;

	if (zero_by_status(c->img, off, len) && zero_by_status(c->nb, off, len))
		return 0;
	ret = vbd_pread(c->img, off, c->old, (size_t)len);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read at offset %" PRIu64,
					  vbd_filename(c->img), off);
	ret = read_new(c, off, len);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read at offset %" PRIu64,
					  vbd_filename(c->nb), off);
	for (uint64_t p = off; p < off + len;) {
		uint64_t e =
			VS_MIN(VS_ALIGN_DOWN(p, c->unit) + c->unit, off + len);

		if (memcmp(c->old + (p - off), c->new + (p - off),
			   (size_t)(e - p))) {
			ret = vbd_pwrite(c->img, p, c->old + (p - off),
					 (size_t)(e - p));
			if (ret < 0)
				return vs_error_set_errno(
					errp, ret,
					"%s: cannot write at offset %" PRIu64,
					vbd_filename(c->img), p);
		}
		p = e;
	}
	return 0;
}

static int copy_differences(struct rebase *c, struct vs_error **errp)
{
	uint64_t size = vbd_size(c->img), off = 0;

	while (off < size) {
		struct vbd_extent ext;
		/* Chunks end on unit boundaries, so a unit is compared
		 * whole whenever the image lacks all of it. */
		uint64_t n = VS_MIN(size - off, CHUNK - (off % c->unit));
		int ret = vbd_block_status(c->img, off, n, &ext);

		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot get the block "
						  "status at offset %" PRIu64,
						  vbd_filename(c->img), off);
		n = ext.length;
		/* Decided here: data or zeros of the image's own. */
		if (ext.depth > 0 || !(ext.flags & VBD_STATUS_ALLOCATED)) {
			ret = fix_range(c, off, n, errp);
			if (ret < 0)
				return ret;
		}
		off += n;
		if (c->o->progress)
			c->o->progress(off, size, c->o->opaque);
	}
	return 0;
}

static int open_new_backing(struct rebase *c, const char *path,
			    struct vs_error **errp)
{
	autofree char *full = NULL;
	unsigned flags = VBD_O_RDONLY | (c->o->force_share ? VBD_O_SHARE : 0);

	if (!*c->o->backing)
		return 0;
	full = img_backing_path(path, c->o->backing);
	if (!full)
		return vs_error_set(errp, ENOMEM, "out of memory");
	return vbd_open_file(full, c->o->backing_format, flags, &c->nb, errp);
}

static int rebase_safe(const char *path, const struct img_rebase_opts *o,
		       struct vs_error **errp)
{
	struct rebase c = {.o = o};
	/* -U shares the new backing file only: the image is written. */
	int ret = vbd_open_file(path, o->format, 0, &c.img, errp);

	if (ret < 0)
		return ret;
	ret = open_new_backing(&c, path, errp);
	c.unit = vbd_cluster_size(c.img) ? vbd_cluster_size(c.img)
					 : DEFAULT_UNIT;
	c.old = malloc(CHUNK);
	c.new = malloc(CHUNK);
	if (ret == 0 && (!c.old || !c.new))
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	if (ret == 0 && o->progress)
		o->progress(0, vbd_size(c.img), o->opaque);
	if (ret == 0)
		ret = copy_differences(&c, errp);
	/* The data is stable before the image names the new file. */
	if (ret == 0 && !o->unsafe_cache && (ret = vbd_flush(c.img)) < 0)
		vs_error_set_errno(errp, ret, "%s: flush failed", path);
	if (ret == 0)
		ret = vbd_change_backing(c.img, o->backing, o->backing_format,
					 errp);
	free(c.old);
	free(c.new);
	vbd_close(c.nb);
	vbd_close(c.img);
	return ret;
}

int img_rebase(const char *path, const struct img_rebase_opts *o,
	       struct vs_error **errp)
{
	struct vbd *img;
	int ret;

	if (*o->backing && !o->backing_format)
		return vs_error_set(errp, EINVAL,
				    "Could not change the backing file to "
				    "'%s': backing format must be specified",
				    o->backing);
	if (!o->unsafe)
		return rebase_safe(path, o, errp);
	/* The old backing file may be gone: the image is opened alone. */
	ret = vbd_open_file(path, o->format, VBD_O_NO_BACKING, &img, errp);
	if (ret < 0)
		return ret;
	ret = vbd_change_backing(img, o->backing, o->backing_format, errp);
	vbd_close(img);
	return ret;
}
