/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "../common/opts.h"
#include "../cow/qcow2-measure.h"
#include "../vbd/vbd.h"
#include "measure.h"

static uint64_t round_up(uint64_t a, uint64_t b)
{
	return (a / b + (a % b != 0)) * b;
}

/* A raw image is its disk: every byte is in the file. */
static int measure_raw(struct vbd *src, uint64_t size, const char *options,
		       struct img_measure *m, struct vs_error **errp)
{
	static const char *const known[] = {"size", "preallocation", "nocow",
					    "extent_size_hint"};
	struct vs_opts *opts;
	int ret = vs_opts_parse(options, "raw format option", &opts, errp);

	if (ret < 0)
		return ret;
	/* qemu-img does not look at their values for raw either. */
	for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
		(void)vs_opts_get(opts, known[i]);
	ret = vs_opts_check_used(opts, errp);
	vs_opts_free(opts);
	if (ret < 0)
		return ret;
	m->required = src ? vbd_size(src) : round_up(size, 512);
	m->fully_allocated = m->required;
	return 0;
}

/*
 * The clusters of a qcow2 image of cluster size `cs` that hold data of
 * `src`: every cluster with at least one byte that is neither zeros nor
 * left to a backing file (the whole chain is read through).
 */
static int data_clusters(struct vbd *src, uint32_t cs, uint64_t *bytes,
			 struct vs_error **errp)
{
	uint64_t size = vbd_size(src), off = 0, n;

	*bytes = 0;
	while (off < size) {
		struct vbd_extent ext;
		int ret = vbd_block_status(src, off, size - off, &ext);

		if (ret < 0)
			return vs_error_set_errno(
				errp, -ret,
				"%s: unable to get block status at "
				"offset %" PRIu64,
				vbd_filename(src), off);
		n = ext.length;
		if (!(ext.flags & VBD_STATUS_ZERO) &&
		    (ext.flags & VBD_STATUS_DATA) &&
		    (ext.flags & VBD_STATUS_ALLOCATED)) {
			/* Count from the start of the first cluster to the
			 * end of the last, and go on after it. */
			n = round_up(off + n, cs) - off;
			*bytes += off % cs + n;
		}
		off += n;
	}
	return 0;
}

static int measure_qcow2(struct vbd *src, uint64_t size, const char *options,
			 struct img_measure *m, struct vs_error **errp)
{
	struct qcow2_measure_opts o;
	uint64_t vsize, required = 0;
	int ret = qcow2_measure_parse(options, &o, errp);

	if (ret < 0)
		return ret;
	/* qemu-img checks the L1 limit against the size it was given,
	 * not against a source's: so do we, to print what it prints. */
	if (!src) {
		ret = qcow2_measure_check_size(&o, size, errp);
		if (ret < 0)
			return ret;
	}
	vsize = round_up(src ? vbd_size(src) : size, o.cluster_size);
	if (src && o.has_backing) {
		/* The new backing file may share nothing with the source:
		 * assume every cluster is written. */
		required = vsize;
	} else if (src) {
		ret = data_clusters(src, o.cluster_size, &required, errp);
		if (ret < 0)
			return ret;
	}
	if (o.prealloc_full)
		required = vsize;
	ret = qcow2_measure_full(&o, vsize, &m->fully_allocated, errp);
	if (ret < 0)
		return ret;
	/* The metadata of a full image, and only the data needed. */
	m->required = m->fully_allocated - vsize + required;
	if (src && o.version >= 3)
		return qcow2_measure_bitmaps(src, o.cluster_size,
					     &m->has_bitmaps, &m->bitmaps,
					     errp);
	return 0;
}

int img_measure(struct vbd *src, uint64_t size, const char *out_fmt,
		const char *options, struct img_measure *m,
		struct vs_error **errp)
{
	const char *const *names = vbd_driver_names();
	bool known = false;

	memset(m, 0, sizeof(*m));
	if (!strcmp(out_fmt, "raw"))
		return measure_raw(src, size, options, m, errp);
	if (!strcmp(out_fmt, "qcow2"))
		return measure_qcow2(src, size, options, m, errp);
	for (; *names && !known; names++)
		known = !strcmp(*names, out_fmt);
	if (!known)
		return vs_error_set(errp, EINVAL, "Unknown file format '%s'",
				    out_fmt);
	return vs_error_set(errp, ENOTSUP,
			    "Block driver '%s' does not support size "
			    "measurement",
			    out_fmt);
}
