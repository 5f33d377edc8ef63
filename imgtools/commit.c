/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img commit.
 *
 * Three handles: the top image alone (no backing file) for writing, so
 * that its lock keeps other writers out and it can be emptied; the base,
 * opened for writing by its path; and the whole chain, read-only and
 * sharing writes (its own handle on the base must not keep our writer
 * out).  The chain is only read where the ranges are decided above the
 * base, so what it caches of the base never matters.
 */
#include <errno.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../vbd/vbd.h"
#include "commit.h"

#define COPY_CHUNK (4u << 20)

char *img_backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - image), image, name) < 0)
		return NULL;
	return p;
}

/* One image of the chain below the top: where to open it. */
struct layer {
	char *name; /* as the image above records it */
	char *path;
	char *format; /* as the image above records it; NULL: probe */
	unsigned depth;
};

static void layer_free(struct layer *l)
{
	free(l->name);
	free(l->path);
	free(l->format);
}

/* The backing file `img` records, as a layer one deeper. */
static int next_layer(const char *img, const char *fmt, unsigned depth,
		      struct layer *out, bool *none, struct vs_error **errp)
{
	struct vbd *vbd;
	struct vbd_info info;
	int ret = vbd_open_file(img, fmt,
				VBD_O_RDONLY | VBD_O_NO_BACKING | VBD_O_SHARE,
				&vbd, errp);

	if (ret < 0)
		return ret;
	ret = vbd_get_info(vbd, &info, errp);
	*none = ret == 0 && !info.backing_file;
	if (ret == 0 && info.backing_file) {
		*out = (struct layer){
			.name = strdup(info.backing_file),
			.path = img_backing_path(img, info.backing_file),
			.format = info.backing_format
					  ? strdup(info.backing_format)
					  : NULL,
			.depth = depth,
		};
		if (!out->name || !out->path ||
		    (info.backing_format && !out->format)) {
			layer_free(out);
			ret = vs_error_set(errp, ENOMEM, "out of memory");
		}
	}
	if (info.specific)
		json_object_put(info.specific);
	vbd_close(vbd);
	return ret;
}

/* Whether `want` (as the user typed it) names the layer: the name the
 * chain records, the path it is opened by, or the same file. */
static bool same_image(const char *want, const struct layer *l)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!strcmp(want, l->name) || !strcmp(want, l->path))
		return true;
	return realpath(want, a) && realpath(l->path, b) && !strcmp(a, b);
}

/* Walk the chain below `path` to the base: the backing file, or the
 * image `want` names. */
static int find_base(const char *path, const char *fmt, const char *want,
		     struct layer *base, struct vs_error **errp)
{
	struct layer cur = {.path = strdup(path),
			    .format = fmt ? strdup(fmt) : NULL};
	int ret = 0;

	if (!cur.path || (fmt && !cur.format)) {
		layer_free(&cur);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	for (unsigned depth = 1; depth <= IMG_CHAIN_MAX; depth++) {
		struct layer next;
		bool none = false;

		ret = next_layer(cur.path, cur.format, depth, &next, &none,
				 errp);
		if (ret == 0 && none) {
			ret = depth == 1 ? vs_error_set(errp, EINVAL,
							"Image does not have a "
							"backing file")
					 : vs_error_set(errp, ENOENT,
							"Did not find '%s' in "
							"the backing chain of "
							"'%s'",
							want, path);
		}
		layer_free(&cur);
		if (ret < 0)
			return ret;
		if (!want || same_image(want, &next)) {
			*base = next;
			return 0;
		}
		cur = next;
	}
	return vs_error_set(errp, ELOOP,
			    "%s: backing chain deeper than %d images", path,
			    IMG_CHAIN_MAX);
}

struct commit {
	const struct img_commit_opts *o;
	struct vbd *src;  /* the whole chain, read-only */
	struct vbd *base; /* written */
	unsigned depth;	  /* of the base in src's chain */
	uint8_t *buf;
};

/* Copy [off, off+len) of the chain into the base. */
static int copy_range(struct commit *c, uint64_t off, uint64_t len, bool zero,
		      struct vs_error **errp)
{
	int ret;

	if (zero) {
		ret = vbd_write_zeroes(c->base, off, len, 0);
		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot write zeros at "
						  "offset %" PRIu64,
						  vbd_filename(c->base), off);
		return 0;
	}
	ret = vbd_pread(c->src, off, c->buf, (size_t)len);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read at offset %" PRIu64,
					  vbd_filename(c->src), off);
	ret = vbd_pwrite(c->base, off, c->buf, (size_t)len);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot write at offset %" PRIu64,
					  vbd_filename(c->base), off);
	return 0;
}

/*
 * Every range whose content is decided above the base (depth smaller
 * than the base's: data, zero clusters, or zeros past the end of a
 * shorter image in between) goes into the base.
 */
static int copy_chain(struct commit *c, struct vs_error **errp)
{
	uint64_t size = vbd_size(c->src), off = 0;

	while (off < size) {
		struct vbd_extent ext;
		uint64_t n = VS_MIN(size - off, (uint64_t)COPY_CHUNK);
		int ret = vbd_block_status(c->src, off, n, &ext);

		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot get the block "
						  "status at offset %" PRIu64,
						  vbd_filename(c->src), off);
		n = ext.length;
		if (ext.depth < c->depth) {
			ret = copy_range(c, off, n,
					 (ext.flags & VBD_STATUS_ZERO) &&
						 !(ext.flags & VBD_STATUS_DATA),
					 errp);
			if (ret < 0)
				return ret;
		}
		off += n;
		if (c->o->progress)
			c->o->progress(off, size, c->o->opaque);
	}
	return 0;
}

static int commit_into(struct commit *c, const char *path,
		       struct vs_error **errp)
{
	uint64_t size = vbd_size(c->src);
	int ret;

	if (c->o->progress)
		c->o->progress(0, size, c->o->opaque);
	/* A smaller base grows, as qemu-img grows it. */
	if (vbd_size(c->base) < size) {
		ret = vbd_truncate(c->base, size, 0, errp);
		if (ret < 0)
			return ret;
	}
	ret = copy_chain(c, errp);
	if (ret == 0 && !c->o->unsafe) {
		ret = vbd_flush(c->base);
		if (ret < 0)
			vs_error_set_errno(errp, ret, "%s: flush failed",
					   vbd_filename(c->base));
	}
	return ret;
}

int img_commit(const char *path, const struct img_commit_opts *o,
	       struct vs_error **errp)
{
	struct commit c = {.o = o};
	struct layer base = {0};
	struct vbd *top = NULL;
	bool keep = o->keep || o->base;
	unsigned share = o->force_share ? VBD_O_SHARE : 0;
	int ret;

	/* Locked first: an image in use is refused before anything. */
	ret = vbd_open_file(path, o->format,
			    VBD_O_NO_BACKING |
				    (keep ? VBD_O_RDONLY | share : 0),
			    &top, errp);
	if (ret == 0)
		ret = find_base(path, o->format, o->base, &base, errp);
	if (ret == 0)
		ret = vbd_open_file(base.path, base.format, 0, &c.base, errp);
	if (ret == 0)
		ret = vbd_open_file(path, o->format, VBD_O_RDONLY | VBD_O_SHARE,
				    &c.src, errp);
	c.depth = base.depth;
	c.buf = ret == 0 ? malloc(COPY_CHUNK) : NULL;
	if (ret == 0 && !c.buf)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	if (ret == 0)
		ret = commit_into(&c, path, errp);
	free(c.buf);
	vbd_close(c.src);
	vbd_close(c.base);
	if (ret == 0 && !keep) {
		ret = vbd_make_empty(top, errp);
		if (ret == 0 && !o->unsafe && vbd_flush(top) < 0)
			ret = vs_error_set(errp, EIO, "%s: flush failed", path);
	}
	vbd_close(top);
	layer_free(&base);
	return ret;
}
