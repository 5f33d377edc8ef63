/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor backup: snapshot, read, write the image and its manifest, drop
 * the snapshot (backup.h).  The order of the end matters: the image is
 * flushed and renamed into place, the sums written, and only then the
 * manifest, so that a backup that dies anywhere before leaves nothing
 * that claims to be complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/progress.h"
#include "backup-priv.h"
#include "backup-walk.h"
#include "backup.h"
#include "checksum.h"
#include "lvm-priv.h"
#include "lvm.h"
#include "manifest.h"

#define LOCK_NAME ".vstor-backup.lock"

struct bk {
	const struct lvm_backup_opts *o;
	struct lvm_shell *sh; /* lvcreate and lvremove; NULL: processes */
	struct lvm_lv lv;
	uint64_t nclusters;

	/* The last backup of this LV in the folder, and its checksums when
	 * this one is incremental. */
	struct lvm_manifest last;
	bool have_last, incremental;
	uint64_t *prev_sums;

	/* The snapshot. */
	char *snap_name;
	bool snap_tried; /* lvcreate ran: it may exist, success or not */
	struct lvm_lv snap;

	struct lvm_manifest m; /* the new backup */
	uint64_t *sums;
	uint8_t *want;
	struct vbd *src, *dst;
	char *part, *image, *sums_path;
	bool renamed, sums_written, committed;
	uint64_t changed, zeroed;
};

uint64_t lvm_backup_cow_size(uint64_t size, uint64_t vg_free, uint64_t extent)
{
	uint64_t need, cap, cow;

	if (!extent)
		return 0;
	need = size + size / 32;
	if (need < size || need > UINT64_MAX - extent)
		return 0;
	need = (need + extent - 1) / extent * extent;
	cap = vg_free / 2 / extent * extent;
	cow = VS_MIN(need, cap);
	if (!cow || cow < size / 8)
		return 0;
	return cow;
}

void lvm_backup_result_clear(struct lvm_backup_result *res)
{
	free(res->manifest);
	memset(res, 0, sizeof(*res));
}

/* --- the per-cluster decisions ------------------------------------ */

static int bk_work(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct bk *b = w->opaque;

	for (unsigned k = 0; k < c->n; k++) {
		uint64_t i = c->first + k;
		uint8_t *p = c->buf + (size_t)k * w->cluster;
		int ret;

		if (!c->want[k])
			continue;
		if (b->prev_sums && w->sums[i] == b->prev_sums[i])
			continue; /* unchanged since the last backup */
		if (c->zero[k]) {
			/* A new image reads zeros; an overlay must say so
			 * over its backing file. */
			c->act[k] = b->prev_sums ? LVM_ACT_ZERO : LVM_ACT_SKIP;
			continue;
		}
		if (c->len[k] != w->cluster) {
			c->act[k] = LVM_ACT_PLAIN;
			continue;
		}
		ret = vbd_compress(b->dst, p, c->len[k],
				   c->comp + (size_t)k * c->comp_cap,
				   c->comp_cap, &c->clen[k]);
		if (ret == -ENOSPC) {
			c->act[k] = LVM_ACT_PLAIN; /* does not shrink */
		} else if (ret < 0) {
			return lvm_walk_fail(w, ret,
					     "%s: compressing cluster %" PRIu64
					     ": %s",
					     b->part, i, strerror(-ret));
		} else {
			c->act[k] = LVM_ACT_COMP;
		}
	}
	return 0;
}

static int bk_store(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct bk *b = w->opaque;

	for (unsigned k = 0; k < c->n; k++) {
		uint64_t off = c->off + (uint64_t)k * w->cluster;
		uint8_t *p = c->buf + (size_t)k * w->cluster;
		int ret = 0;

		switch (c->act[k]) {
		case LVM_ACT_SKIP: continue;
		case LVM_ACT_PLAIN:
			ret = vbd_pwrite(b->dst, off, p, c->len[k]);
			break;
		case LVM_ACT_COMP:
			ret = vbd_pwrite_compressed(
				b->dst, off, c->comp + (size_t)k * c->comp_cap,
				c->clen[k]);
			break;
		case LVM_ACT_ZERO:
			ret = vbd_write_zeroes(b->dst, off, c->len[k], 0);
			b->zeroed++;
			break;
		}
		if (ret < 0)
			return lvm_walk_fail(
				w, ret,
				"%s: write error at offset 0x%" PRIx64 ": %s",
				b->part, off, strerror(-ret));
		b->changed++;
	}
	return 0;
}

/* --- setup --------------------------------------------------------- */

static int lock_dest(const char *dest, int *fd, struct vs_error **errp)
{
	autofree char *path = NULL;
	struct stat st;

	if (stat(dest, &st) < 0)
		return vs_error_set_errno(errp, errno, "%s", dest);
	if (!S_ISDIR(st.st_mode))
		return vs_error_set(errp, ENOTDIR,
				    "%s: the destination must be a folder",
				    dest);
	if (asprintf(&path, "%s/" LOCK_NAME, dest) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0)
		return vs_error_set_errno(errp, errno, "%s", path);
	/* Two backups writing one folder could both extend the same
	 * chain; one at a time. */
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0)
		return vs_error_set(errp, EBUSY,
				    "%s: another backup is writing to this "
				    "folder",
				    dest);
	return 0;
}

static bool exists(const char *dir, const char *stem, const char *ext)
{
	autofree char *p = NULL;

	if (asprintf(&p, "%s/%s%s", dir, stem, ext) < 0)
		return true;
	return access(p, F_OK) == 0;
}

/* NAME-STAMP for the files and LV.vsbk-STAMP for the snapshot; a second
 * backup within the same second gets "-2", "-3"... */
static int choose_names(struct bk *b, struct vs_error **errp)
{
	const char *dest = b->o->dest;
	char stamp[32];
	time_t secs = (time_t)(b->m.time_ns / 1000000000u);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 1; n < 100; n++) {
		char sfx[8] = "";

		if (n > 1)
			snprintf(sfx, sizeof(sfx), "-%d", n);
		free(b->m.name);
		free(b->snap_name);
		b->snap_name = NULL;
		if (asprintf(&b->m.name, "%s-%s-%s%s", b->lv.vg, b->lv.name,
			     stamp, sfx) < 0 ||
		    asprintf(&b->snap_name, "%s.vsbk-%s%s", b->lv.name, stamp,
			     sfx) < 0) {
			b->m.name = NULL;
			return vs_error_set(errp, ENOMEM, "out of memory");
		}
		if (!lvm_manifest_name_ok(b->m.name))
			return vs_error_set(
				errp, ENAMETOOLONG,
				"%s/%s: the backup's name is too long",
				b->lv.vg, b->lv.name);
		if (exists(dest, b->m.name, ".json") ||
		    exists(dest, b->m.name, ".qcow2") ||
		    exists(dest, b->m.name, ".qcow2.part") ||
		    exists(dest, b->m.name, ".sums"))
			continue;
		/* A snapshot of that name could only be one left by a
		 * backup killed in this very second: lvcreate then fails
		 * and says so. */
		return lvm_name_check(b->snap_name, "snapshot name", errp);
	}
	return vs_error_set(errp, EEXIST,
			    "%s: too many backups of %s/%s in one second", dest,
			    b->lv.vg, b->lv.name);
}

static void set_time(struct bk *b)
{
	struct timespec ts;
	char buf[64];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	b->m.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	if (asprintf(&b->m.time, "%s.%09ldZ", buf, ts.tv_nsec) < 0)
		b->m.time = NULL;
}

static int find_last(struct bk *b, struct vs_error **errp)
{
	int ret = lvm_manifest_latest(b->o->dest, b->lv.uuid, &b->last, errp);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	b->have_last = true;
	if (!b->o->incremental)
		return 0;
	if (b->last.size != b->lv.size)
		return vs_error_set(errp, EINVAL,
				    "%s/%s is %" PRIu64
				    " bytes, but was %" PRIu64
				    " at its last backup %s/%s.json: take a "
				    "full backup (without --incremental)",
				    b->lv.vg, b->lv.name, b->lv.size,
				    b->last.size, b->last.dir, b->last.name);
	if (b->last.cluster_size != LVM_BACKUP_CLUSTER)
		return vs_error_set(errp, ENOTSUP,
				    "%s/%s.json: cluster size %" PRIu32
				    " (only %u is written): take a full backup",
				    b->last.dir, b->last.name,
				    b->last.cluster_size, LVM_BACKUP_CLUSTER);
	if (b->last.seq + 1 > LVM_CHAIN_MAX)
		return vs_error_set(errp, EMLINK,
				    "%s/%s.json: the chain has %u points "
				    "already: take a full backup",
				    b->last.dir, b->last.name, LVM_CHAIN_MAX);
	b->incremental = true;
	return lvm_sums_read(&b->last, &b->prev_sums, errp);
}

static int take_snapshot(struct bk *b, struct vs_error **errp)
{
	uint64_t cow = 0;
	int ret;

	if (!b->lv.thin && b->o->snapshot_size) {
		cow = b->o->snapshot_size;
	} else if (!b->lv.thin) {
		struct lvm_vg vg = {0};

		ret = lvm_vg_get(b->lv.vg, &vg, errp);
		if (ret < 0)
			return ret;
		cow = lvm_backup_cow_size(b->lv.size, vg.free, vg.extent_size);
		if (!cow) {
			ret = vs_error_set(
				errp, ENOSPC,
				"VG %s has %" PRIu64
				" bytes free: too little for a snapshot of "
				"%s (%" PRIu64
				" bytes), which needs at least 1/8 of it in "
				"half the free space (or --snapshot-size)",
				vg.name, vg.free, b->lv.name, b->lv.size);
			lvm_vg_clear(&vg);
			return ret;
		}
		lvm_vg_clear(&vg);
	}
	b->snap_tried = true;
	return lvm_backup_snap_take(b->sh, &b->lv, b->snap_name, cow, &b->snap,
				    errp);
}

/* Thin: the clusters thin_delta names since the last backup's snapshot,
 * when that snapshot is still there and still the same LV. */
static int plan_thin(struct bk *b, const char **method)
{
	struct vs_error *err = NULL;
	size_t bytes = (size_t)(b->nclusters / 8 + 1);
	int ret;

	if (!b->lv.thin || !b->last.thin_snapshot)
		return 0;
	b->want = calloc(1, bytes);
	if (!b->want)
		return -ENOMEM;
	ret = lvm_thin_changed(&b->lv, b->last.thin_snapshot,
			       b->last.thin_snapshot_uuid, b->snap_name,
			       b->nclusters, b->want, &err);
	if (ret < 0) {
		vs_warn("%s: comparing checksums instead", vs_error_msg(err));
		vs_error_free(err);
		free(b->want);
		b->want = NULL;
		return 0;
	}
	/* Clusters thin_delta does not name keep the last checksums. */
	memcpy(b->sums, b->prev_sums, (size_t)b->nclusters * sizeof(uint64_t));
	*method = "thin-delta";
	return 0;
}

static int open_source(struct bk *b, struct vs_error **errp)
{
	int ret;

	ret = vbd_open_file(b->snap.path, "raw", VBD_O_RDONLY | VBD_O_SHARE,
			    &b->src, errp);
	if (ret < 0)
		return ret;
	if (vbd_size(b->src) != b->lv.size)
		return vs_error_set(errp, EIO,
				    "%s: the snapshot is %" PRIu64
				    " bytes, its origin %" PRIu64,
				    b->snap.path, vbd_size(b->src), b->lv.size);
	return 0;
}

/* The new image (NAME.qcow2.part), over the last one for an
 * incremental.  Made before the snapshot: meanwhile the lvm shell starts
 * up, and the chain of backing files is opened while nothing waits. */
static int open_dest(struct bk *b, struct vs_error **errp)
{
	autofree char *opts = NULL;
	int ret;

	if (asprintf(&opts, "cluster_size=%u,compression_type=zstd%s%s%s",
		     LVM_BACKUP_CLUSTER,
		     b->incremental ? ",backing_fmt=qcow2,backing_file=" : "",
		     b->incremental ? b->last.name : "",
		     b->incremental ? ".qcow2" : "") < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_create(b->part, "qcow2", b->lv.size, opts, errp);
	if (ret < 0)
		return ret;
	/* Not VBD_O_COMPRESS: the workers compress (bk_work), and a
	 * cluster that did not shrink there must not be compressed again
	 * under the image's lock when bk_store writes it plainly (random
	 * data, most of a small incremental, paid that twice). */
	return vbd_open_file(b->part, "qcow2", VBD_O_UNSAFE, &b->dst, errp);
}

static int copy(struct bk *b, struct vs_error **errp)
{
	struct lvm_walk w = {
		.src = b->src,
		.size = b->lv.size,
		.cluster = LVM_BACKUP_CLUSTER,
		.want = b->want,
		.sums = b->sums,
		.threads = b->o->threads ? b->o->threads
					 : lvm_walk_default_threads(),
		.need_comp = true,
		.work = bk_work,
		.store = bk_store,
		.opaque = b,
		.cancel = b->o->cancel,
		.what = b->snap.path,
	};
	int ret;

	w.progress = vs_progress_new(b->o->progress, -1);
	ret = lvm_walk_run(&w, errp);
	vs_progress_end(w.progress, ret == 0);
	if (ret < 0)
		return ret;
	ret = vbd_flush(b->dst);
	if (ret < 0)
		return vs_error_set_errno(errp, -ret, "%s: flush", b->part);
	return 0;
}

/* A classic snapshot that overflowed is invalid: its reads may have
 * failed or, worse, stopped reflecting the point in time. */
static int check_snapshot(struct bk *b, struct vs_error **errp)
{
	return b->lv.thin ? 0 : lvm_backup_snap_valid(&b->snap, errp);
}

static int commit(struct bk *b, const char *method, struct vs_error **errp)
{
	struct lvm_manifest *m = &b->m;
	int ret;

	m->vg = strdup(b->lv.vg);
	m->lv = strdup(b->lv.name);
	m->uuid = strdup(b->lv.uuid);
	m->lv_type = strdup(b->lv.thin ? "thin" : "linear");
	m->domain = b->o->domain ? strdup(b->o->domain) : NULL;
	m->method = strdup(method);
	m->backing = b->incremental ? strdup(b->last.name) : NULL;
	if (b->lv.thin) {
		m->thin_snapshot = strdup(b->snap_name);
		m->thin_snapshot_uuid = strdup(b->snap.uuid);
	}
	if (!m->vg || !m->lv || !m->uuid || !m->lv_type || !m->method ||
	    !m->time || (b->o->domain && !m->domain) ||
	    (b->incremental && !m->backing) ||
	    (b->lv.thin && (!m->thin_snapshot || !m->thin_snapshot_uuid)))
		return vs_error_set(errp, ENOMEM, "out of memory");
	m->size = b->lv.size;
	m->seq = b->incremental ? b->last.seq + 1 : 0;
	m->cluster_size = LVM_BACKUP_CLUSTER;
	m->clusters = b->nclusters;
	m->image_sum = lvm_sum_image(b->sums, b->nclusters);
	m->changed = b->changed;
	m->zeroed = b->zeroed;

	ret = lvm_sums_write(m, b->sums, errp);
	if (ret < 0)
		return ret;
	b->sums_written = true;
	if (rename(b->part, b->image) < 0)
		return vs_error_set_errno(errp, errno, "%s: rename to %s",
					  b->part, b->image);
	b->renamed = true;
	ret = lvm_manifest_write(m, errp);
	if (ret < 0)
		return ret;
	b->committed = true;
	return 0;
}

/* Everything but the committed backup goes; returns `ret`, or an error
 * from the cleanup itself when ret was 0. */
static int finish(struct bk *b, int ret, struct vs_error **errp)
{
	struct vs_error *err = NULL;

	vbd_close(b->src);
	b->src = NULL;
	vbd_close(b->dst);
	b->dst = NULL;
	if (!b->committed) {
		if (b->part)
			unlink(b->part);
		if (b->renamed)
			unlink(b->image);
		if (b->sums_written)
			unlink(b->sums_path);
	}
	/* The new snapshot goes unless it is a thin backup's new base. */
	if (b->snap_tried && !(b->committed && b->lv.thin) &&
	    lvm_backup_snap_drop(b->sh, b->lv.vg, b->snap_name, b->snap.uuid,
				 &err) < 0) {
		if (ret == 0)
			ret = vs_error_set(errp, err->code,
					   "%s/%s.json is complete, but %s",
					   b->m.dir, b->m.name,
					   vs_error_msg(err));
		else
			vs_warn("%s", vs_error_msg(err));
		vs_error_free(err);
		err = NULL;
	}
	/* A thin backup's new snapshot replaces the last one as the base
	 * of the next thin_delta. */
	if (b->committed && b->lv.thin && b->have_last &&
	    b->last.thin_snapshot &&
	    strcmp(b->last.thin_snapshot, b->snap_name) &&
	    lvm_backup_snap_drop(b->sh, b->lv.vg, b->last.thin_snapshot,
				 b->last.thin_snapshot_uuid, &err) < 0) {
		vs_warn("the previous backup's snapshot %s/%s stays: %s",
			b->lv.vg, b->last.thin_snapshot, vs_error_msg(err));
		vs_error_free(err);
	}
	return ret;
}

static int check_source(struct bk *b, struct vs_error **errp)
{
	const char *type = lvm_lv_type(&b->lv);

	if (strcmp(type, "linear") && strcmp(type, "thin"))
		return vs_error_set(errp, ENOTSUP,
				    "%s/%s is a %s LV: only linear and thin "
				    "LVs can be backed up",
				    b->lv.vg, b->lv.name, type);
	if (!b->lv.active)
		return vs_error_set(errp, EINVAL,
				    "%s/%s is not active: activate it "
				    "(lvchange -ay) or copy it with vstor img "
				    "convert",
				    b->lv.vg, b->lv.name);
	if (!b->lv.size)
		return vs_error_set(errp, EINVAL, "%s/%s is empty", b->lv.vg,
				    b->lv.name);
	b->nclusters = b->lv.size / LVM_BACKUP_CLUSTER +
		       (b->lv.size % LVM_BACKUP_CLUSTER != 0);
	if (b->nclusters > SIZE_MAX / sizeof(uint64_t))
		return vs_error_set(errp, EFBIG, "%s/%s is too large", b->lv.vg,
				    b->lv.name);
	return 0;
}

/* The source: an active thin LV from its dm device (an lvs run costs
 * about a second on a busy or emulated host, which is most of a small
 * incremental backup's time), anything else, or a device that does not
 * look exactly as LVM makes it, from lvs. */
static int find_source(struct bk *b, struct vs_error **errp)
{
	autofree char *vg = NULL, *lv = NULL;
	int ret = lvm_name_split(b->o->source, &vg, &lv, errp);

	if (ret < 0)
		return ret;
	ret = lvm_thin_lv_from_dm(vg, lv, &b->lv);
	if (ret == -ENOMEM)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (ret == 0) {
		vs_debug("lvm", "%s/%s: described from its dm device", vg, lv);
		return 0;
	}
	return lvm_lv_find(b->o->source, &b->lv, errp);
}

static int run(struct bk *b, struct lvm_backup_result *res,
	       struct vs_error **errp)
{
	const char *method = "full";
	int ret;

	if ((ret = find_source(b, errp)) < 0 ||
	    (ret = check_source(b, errp)) < 0 || (ret = find_last(b, errp)) < 0)
		return ret;
	if (b->o->incremental && !b->incremental)
		vs_info("no earlier backup of %s/%s in %s: taking a full one",
			b->lv.vg, b->lv.name, b->o->dest);
	b->sums = calloc(b->nclusters, sizeof(uint64_t));
	if (!b->sums)
		return vs_error_set(errp, ENOMEM, "out of memory");
	set_time(b);
	b->m.dir = strdup(b->o->dest);
	if (!b->m.dir)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if ((ret = choose_names(b, errp)) < 0)
		return ret;
	b->part = lvm_manifest_file(&b->m, "qcow2.part");
	b->image = lvm_manifest_file(&b->m, "qcow2");
	b->sums_path = lvm_manifest_file(&b->m, "sums");
	if (!b->part || !b->image || !b->sums_path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (b->o->cancel && *b->o->cancel)
		return vs_error_set(errp, EINTR, "interrupted by a signal");
	if ((ret = open_dest(b, errp)) < 0 ||
	    (ret = take_snapshot(b, errp)) < 0)
		return ret;
	if (b->o->cancel && *b->o->cancel)
		return vs_error_set(errp, EINTR, "interrupted by a signal");
	if (b->incremental) {
		method = "checksums";
		ret = plan_thin(b, &method);
		if (ret < 0)
			return vs_error_set(errp, -ret, "out of memory");
	}
	if ((ret = open_source(b, errp)) < 0 || (ret = copy(b, errp)) < 0)
		return ret;
	vbd_close(b->src);
	b->src = NULL;
	vbd_close(b->dst);
	b->dst = NULL;
	if ((ret = check_snapshot(b, errp)) < 0 ||
	    (ret = commit(b, method, errp)) < 0)
		return ret;
	res->manifest = lvm_manifest_file(&b->m, "json");
	res->kind = b->incremental ? "incremental" : "full";
	res->method = b->incremental ? (b->want ? "thin-delta" : "checksums")
				     : "full";
	res->clusters = b->nclusters;
	res->changed = b->changed;
	res->zeroed = b->zeroed;
	return 0;
}

int lvm_backup(const struct lvm_backup_opts *o, struct lvm_backup_result *res,
	       struct vs_error **errp)
{
	struct bk b = {.o = o};
	autoclose int lockfd = -1;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = lock_dest(o->dest, &lockfd, errp);
	if (ret < 0)
		return ret;
	/* First: lvm starts up (about a second on a busy or emulated host)
	 * while the source and the last manifest are read. */
	b.sh = lvm_shell_start();
	ret = run(&b, res, errp);
	ret = finish(&b, ret, errp);
	lvm_shell_end(b.sh);
	if (ret < 0)
		lvm_backup_result_clear(res);
	lvm_lv_clear(&b.lv);
	lvm_lv_clear(&b.snap);
	lvm_manifest_clear(&b.last);
	lvm_manifest_clear(&b.m);
	free(b.prev_sums);
	free(b.snap_name);
	free(b.sums);
	free(b.want);
	free(b.part);
	free(b.image);
	free(b.sums_path);
	return ret;
}
