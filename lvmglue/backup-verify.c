/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor backup verify (backup.h): each point of a chain checked against
 * its manifest, the base first, reading each stored cluster once.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "backup-priv.h"
#include "backup-walk.h"
#include "backup.h"
#include "checksum.h"
#include "manifest.h"

struct vf {
	const struct lvm_manifest *m;
	const uint64_t *expect; /* the point's recorded checksums */
	const char *image;
};

static int vf_work(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct vf *v = w->opaque;

	for (unsigned k = 0; k < c->n; k++) {
		uint64_t i = c->first + k;

		if (c->want[k] && w->sums[i] != v->expect[i])
			return lvm_walk_fail(
				w, EIO,
				"%s: cluster %" PRIu64 " (offset 0x%" PRIx64
				") reads with checksum 0x%016" PRIx64
				", but %s.sums says 0x%016" PRIx64,
				v->image, i, i * w->cluster, w->sums[i],
				v->m->name, v->expect[i]);
	}
	return 0;
}

int lvm_backup_check_image(struct vbd *img, const char *image,
			   const struct lvm_manifest *m,
			   const struct lvm_manifest *below,
			   struct vs_error **errp)
{
	struct vbd_info info = {0};
	autofree char *want = NULL;
	int ret = vbd_get_info(img, &info, errp);

	if (ret < 0)
		return ret;
	if (below && asprintf(&want, "%s.qcow2", below->name) < 0)
		want = NULL;
	if (strcmp(vbd_format(img), "qcow2"))
		ret = vs_error_set(errp, EINVAL, "%s: not a qcow2 image",
				   image);
	else if (info.virtual_size != m->size)
		ret = vs_error_set(errp, EINVAL,
				   "%s: %" PRIu64
				   " bytes, but the manifest says %" PRIu64,
				   image, info.virtual_size, m->size);
	else if (info.cluster_size != m->cluster_size)
		ret = vs_error_set(errp, EINVAL,
				   "%s: clusters of %" PRIu32
				   " bytes, but the manifest says %" PRIu32,
				   image, info.cluster_size, m->cluster_size);
	else if (!below && info.backing_file)
		ret = vs_error_set(errp, EINVAL,
				   "%s: a full backup with a backing file (%s)",
				   image, info.backing_file);
	else if (below && (!info.backing_file || !want ||
			   strcmp(info.backing_file, want)))
		ret = vs_error_set(errp, EINVAL,
				   "%s: backing file '%s', but the manifest's "
				   "chain says '%s'",
				   image,
				   info.backing_file ? info.backing_file : "",
				   want ? want : "?");
	json_object_put(info.specific);
	return ret;
}

/*
 * Which clusters point k stores itself (to be read) and, for the others,
 * that its checksum is the one below it (or that of zeros for a full
 * backup).
 */
static int plan_point(struct vbd *img, const char *image,
		      const struct lvm_manifest *m, const uint64_t *sums,
		      const uint64_t *below, uint8_t *want, uint64_t *nwant,
		      struct vs_error **errp)
{
	uint64_t cs = m->cluster_size, off = 0;

	*nwant = 0;
	while (off < m->size) {
		struct vbd_extent ext;
		uint64_t end, first, last;
		bool here;
		int ret = vbd_block_status(img, off, m->size - off, &ext);

		if (ret < 0)
			return vs_error_set_errno(
				errp, -ret, "%s: block status at 0x%" PRIx64,
				image, off);
		if (!ext.length || ext.length > m->size - off)
			return vs_error_set(
				errp, EIO, "%s: bad block status at 0x%" PRIx64,
				image, off);
		end = off + ext.length;
		here = ext.depth == 0 && (ext.flags & VBD_STATUS_ALLOCATED);
		first = off / cs;
		last = (end - 1) / cs;
		for (uint64_t i = first; i <= last; i++) {
			uint64_t len = VS_MIN(cs, m->size - i * cs);
			uint64_t expect = below ? below[i] : lvm_sum_zero(len);
			bool whole = i * cs >= off && i * cs + len <= end;

			if (lvm_bit(want, i))
				continue;
			if (here || !whole) {
				lvm_bit_set(want, i);
				(*nwant)++;
			} else if (sums[i] != expect) {
				return vs_error_set(
					errp, EIO,
					"%s: cluster %" PRIu64
					" (offset 0x%" PRIx64
					") is not stored in this point, so it "
					"must equal the point below, but "
					"%s.sums "
					"says 0x%016" PRIx64
					" and the point below 0x%016" PRIx64,
					image, i, i * cs, m->name, sums[i],
					expect);
			}
		}
		off = end;
	}
	return 0;
}

static int verify_point(const struct lvm_manifest *m,
			const struct lvm_manifest *below_m,
			const uint64_t *below, uint64_t **sums_out,
			unsigned threads, bool progress,
			volatile sig_atomic_t *cancel,
			struct lvm_verify_result *res, struct vs_error **errp)
{
	autofree char *image = lvm_manifest_file(m, "qcow2");
	autofree uint64_t *sums = NULL, *got = NULL;
	autofree uint8_t *want = NULL;
	struct vbd *img = NULL;
	struct vbd_check chk = {0};
	uint64_t nwant;
	struct vf v = {.m = m};
	int ret;

	if (!image)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = lvm_sums_read(m, &sums, errp);
	if (ret < 0)
		return ret;
	got = calloc(m->clusters, sizeof(uint64_t));
	want = calloc(1, (size_t)(m->clusters / 8 + 1));
	if (!got || !want)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_open_file(image, "qcow2", VBD_O_RDONLY | VBD_O_SHARE, &img,
			    errp);
	if (ret < 0)
		return ret;
	ret = lvm_backup_check_image(img, image, m, below_m, errp);
	if (ret == 0) {
		ret = vbd_check(img, 0, &chk, errp);
		if (ret == 0 && (chk.corruptions || chk.check_errors))
			ret = vs_error_set(errp, EIO,
					   "%s: the qcow2 check found %" PRIu64
					   " corruptions and %" PRIu64
					   " unreadable metadata",
					   image, chk.corruptions,
					   chk.check_errors);
	}
	if (ret == 0)
		ret = plan_point(img, image, m, sums, below, want, &nwant,
				 errp);
	if (ret == 0) {
		struct lvm_walk w = {
			.src = img,
			.size = m->size,
			.cluster = m->cluster_size,
			.want = want,
			.sums = got,
			.threads =
				threads ? threads : lvm_walk_default_threads(),
			.work = vf_work,
			.opaque = &v,
			.cancel = cancel,
			.what = image,
		};

		v.expect = sums;
		v.image = image;
		w.progress = vs_progress_new(progress, -1);
		ret = lvm_walk_run(&w, errp);
		vs_progress_end(w.progress, ret == 0);
		res->clusters_read += nwant;
	}
	vbd_close(img);
	if (ret == 0)
		*sums_out = vs_steal(&sums);
	return ret;
}

int lvm_backup_verify(const char *path, unsigned threads, bool progress,
		      volatile sig_atomic_t *cancel,
		      struct lvm_verify_result *res, struct vs_error **errp)
{
	struct lvm_manifest *chain = NULL;
	uint64_t *below = NULL;
	size_t n = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = lvm_manifest_chain(path, &chain, &n, errp);
	if (ret < 0)
		return ret;
	for (size_t k = 0; k < n && ret == 0; k++) {
		uint64_t *sums = NULL;

		ret = verify_point(&chain[k], k ? &chain[k - 1] : NULL, below,
				   &sums, threads, progress, cancel, res, errp);
		free(below);
		below = sums;
		if (ret == 0)
			res->points++;
	}
	free(below);
	lvm_manifest_free_array(chain, n);
	return ret;
}
