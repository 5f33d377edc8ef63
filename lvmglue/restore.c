/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor restore (backup.h): one point of a backup chain, checked cluster
 * by cluster against its manifest, written into an LV, a block device or
 * a new image file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "backup-priv.h"
#include "backup-walk.h"
#include "backup.h"
#include "checksum.h"
#include "lvm.h"
#include "manifest.h"

struct rs {
	const struct lvm_manifest *m;
	const uint64_t *expect;
	const char *image, *target;
	struct vbd *dst;
	bool fresh; /* a new file: it reads zeros already */
};

static int rs_work(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct rs *r = w->opaque;

	for (unsigned k = 0; k < c->n; k++) {
		uint64_t i = c->first + k;

		if (w->sums[i] != r->expect[i])
			return lvm_walk_fail(
				w, EIO,
				"%s: cluster %" PRIu64 " (offset 0x%" PRIx64
				") reads with checksum 0x%016" PRIx64
				", but %s.sums says 0x%016" PRIx64
				": the backup is damaged",
				r->image, i, i * w->cluster, w->sums[i],
				r->m->name, r->expect[i]);
		c->act[k] = c->zero[k]
				    ? (r->fresh ? LVM_ACT_SKIP : LVM_ACT_ZERO)
				    : LVM_ACT_PLAIN;
	}
	return 0;
}

/* Runs of clusters with the same action go down as one request. */
static int rs_store(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct rs *r = w->opaque;
	unsigned k = 0;

	while (k < c->n) {
		unsigned j = k;
		uint64_t off = c->off + (uint64_t)k * w->cluster, len = 0;
		int ret = 0;

		while (j < c->n && c->act[j] == c->act[k])
			len += c->len[j++];
		if (c->act[k] == LVM_ACT_PLAIN)
			ret = vbd_pwrite(r->dst, off,
					 c->buf + (size_t)k * w->cluster,
					 (size_t)len);
		else if (c->act[k] == LVM_ACT_ZERO)
			ret = vbd_write_zeroes(r->dst, off, len, 0);
		if (ret < 0)
			return lvm_walk_fail(
				w, ret,
				"%s: write error at offset 0x%" PRIx64 ": %s",
				r->target, off, strerror(-ret));
		k = j;
	}
	return 0;
}

/* The manifest's path for BACKUP given as NAME.json or NAME.qcow2. */
static int manifest_path(const char *backup, char **out, struct vs_error **errp)
{
	size_t len = strlen(backup);

	if (len > 6 && !strcmp(backup + len - 6, ".qcow2")) {
		if (asprintf(out, "%.*s.json", (int)(len - 6), backup) < 0)
			return vs_error_set(errp, ENOMEM, "out of memory");
		return 0;
	}
	if (len > 5 && !strcmp(backup + len - 5, ".json")) {
		*out = strdup(backup);
		return *out ? 0 : vs_error_set(errp, ENOMEM, "out of memory");
	}
	return vs_error_set(errp, EINVAL,
			    "%s: name a backup by its .json manifest (or its "
			    ".qcow2 image)",
			    backup);
}

/*
 * Open the target.  A block device (an LV named as VG/LV too) must be
 * large enough and unused; an image file must be new and is created.
 */
static int open_target(const struct lvm_restore_opts *o,
		       const struct lvm_manifest *m, struct rs *r,
		       bool *created, struct vs_error **errp)
{
	const char *fmt = o->format ? o->format : "raw";
	const char *path = o->target;
	struct lvm_lv lv = {0};
	struct vs_error *err = NULL;
	struct stat st;
	int ret, fd;

	*created = false;
	if (stat(path, &st) < 0 && errno == ENOENT && strchr(path, '/') &&
	    path[0] != '/' && path[0] != '.' &&
	    lvm_lv_find(path, &lv, &err) == 0) {
		/* "VG/LV" */
	} else {
		vs_error_free(err);
		err = NULL;
		if (stat(path, &st) == 0 && S_ISBLK(st.st_mode) &&
		    lvm_lv_probe(path, &lv, &err) < 0) {
			vs_error_free(err);
			memset(&lv, 0, sizeof(lv));
		}
	}
	if (lv.path) {
		if (lv.open) {
			ret = vs_error_set(
				errp, EBUSY,
				"%s/%s is open (a running domain or a "
				"mount?): stop its user first",
				lv.vg, lv.name);
			lvm_lv_clear(&lv);
			return ret;
		}
		if (!lv.active) {
			ret = vs_error_set(errp, EINVAL, "%s/%s is not active",
					   lv.vg, lv.name);
			lvm_lv_clear(&lv);
			return ret;
		}
		r->target = strdup(lv.path);
		lvm_lv_clear(&lv);
		if (!r->target)
			return vs_error_set(errp, ENOMEM, "out of memory");
		path = r->target;
	}
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		if (strcmp(fmt, "raw"))
			return vs_error_set(errp, EINVAL,
					    "%s: a block device takes raw data "
					    "only, not -O %s",
					    path, fmt);
		/* O_EXCL on a block device fails while a file system or a
		 * device-mapper table holds it. */
		fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0)
			return vs_error_set_errno(errp, errno,
						  "%s: cannot have it to "
						  "ourselves",
						  path);
		close(fd);
		ret = vbd_open_file(path, "raw", 0, &r->dst, errp);
		if (ret < 0)
			return ret;
		if (vbd_size(r->dst) < m->size)
			return vs_error_set(
				errp, ENOSPC,
				"%s: %" PRIu64
				" bytes, too small for the backup's "
				"%" PRIu64,
				path, vbd_size(r->dst), m->size);
		if (vbd_size(r->dst) > m->size)
			vs_warn("%s is larger than the backup (%" PRIu64
				" > %" PRIu64
				" bytes): its tail is left as it is",
				path, vbd_size(r->dst), m->size);
		if (!r->target)
			r->target = strdup(path);
		return r->target ? 0
				 : vs_error_set(errp, ENOMEM, "out of memory");
	}
	if (strcmp(fmt, "raw") && strcmp(fmt, "qcow2"))
		return vs_error_set(errp, EINVAL,
				    "-O %s: restore writes raw or qcow2 images",
				    fmt);
	if (lstat(path, &st) == 0)
		return vs_error_set(errp, EEXIST,
				    "%s exists: restore makes a new image file "
				    "(or writes a block device)",
				    path);
	r->target = strdup(path);
	if (!r->target)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_create(path, fmt, m->size,
			 strcmp(fmt, "qcow2") ? NULL : "cluster_size=65536",
			 errp);
	if (ret < 0)
		return ret;
	*created = true;
	r->fresh = true;
	return vbd_open_file(path, fmt, VBD_O_UNSAFE, &r->dst, errp);
}

int lvm_restore(const struct lvm_restore_opts *o, struct vs_error **errp)
{
	autofree char *mpath = NULL, *image = NULL;
	autofree uint64_t *sums = NULL, *got = NULL;
	struct lvm_manifest *chain = NULL;
	struct lvm_manifest *m;
	struct vbd *src = NULL;
	struct rs r = {0};
	bool created = false;
	size_t n = 0;
	int ret;

	if ((ret = manifest_path(o->backup, &mpath, errp)) < 0 ||
	    (ret = lvm_manifest_chain(mpath, &chain, &n, errp)) < 0)
		return ret;
	m = &chain[n - 1];
	image = lvm_manifest_file(m, "qcow2");
	got = calloc(m->clusters, sizeof(uint64_t));
	if (!image || !got) {
		ret = vs_error_set(errp, ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = lvm_sums_read(m, &sums, errp)) < 0 ||
	    (ret = vbd_open_file(image, "qcow2", VBD_O_RDONLY | VBD_O_SHARE,
				 &src, errp)) < 0 ||
	    (ret = lvm_backup_check_image(
		     src, image, m, n > 1 ? &chain[n - 2] : NULL, errp)) < 0 ||
	    (ret = open_target(o, m, &r, &created, errp)) < 0)
		goto out;
	r.m = m;
	r.expect = sums;
	r.image = image;
	{
		struct lvm_walk w = {
			.src = src,
			.size = m->size,
			.cluster = m->cluster_size,
			.sums = got,
			.threads = o->threads ? o->threads
					      : lvm_walk_default_threads(),
			.work = rs_work,
			.store = rs_store,
			.opaque = &r,
			.cancel = o->cancel,
			.what = image,
		};

		w.progress = vs_progress_new(o->progress, -1);
		ret = lvm_walk_run(&w, errp);
		vs_progress_end(w.progress, ret == 0);
	}
	if (ret == 0) {
		ret = vbd_flush(r.dst);
		if (ret < 0)
			vs_error_set_errno(errp, -ret, "%s: flush", r.target);
	}
out:
	vbd_close(src);
	vbd_close(r.dst);
	if (ret < 0 && created)
		unlink(r.target);
	free((char *)r.target);
	lvm_manifest_free_array(chain, n);
	return ret;
}
