/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How big a qcow2 image gets, as `qemu-img measure -O qcow2` computes
 * it: the size arithmetic of the metadata (header, L1 and L2 tables,
 * refcount table and blocks) for given creation options, and the space
 * persistent bitmaps of a source image would take.
 */
#ifndef VS_COW_QCOW2_MEASURE_H
#define VS_COW_QCOW2_MEASURE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct vbd;
struct qcow2;
struct json_object;

/* The creation options that change the result. */
struct qcow2_measure_opts {
	uint32_t cluster_size;
	unsigned refcount_order; /* log2 of refcount_bits */
	unsigned version;	 /* 2 or 3 */
	bool extended_l2;
	bool prealloc_full; /* preallocation=full or falloc: data counts */
	bool has_backing;   /* backing_file given: every cluster counts */
};

/*
 * Parse qemu-img's -o text for qcow2 (NULL: the defaults), checking the
 * values as `qemu-img create` would.  Options that do not change the
 * size (lazy_refcounts, compression_type, backing_fmt, size, nocow,
 * extent_size_hint) are accepted; unknown ones are an error naming
 * them; encryption and external data files are refused as unsupported.
 */
int qcow2_measure_parse(const char *options, struct qcow2_measure_opts *o,
			struct vs_error **errp);

/*
 * The file size of an image of `virtual_size` with every cluster
 * allocated: qemu's "fully allocated size".  Fails with -EFBIG (*errp
 * set) when the L1 table would be too large for the cluster size.
 */
int qcow2_measure_full(const struct qcow2_measure_opts *o,
		       uint64_t virtual_size, uint64_t *out,
		       struct vs_error **errp);

/*
 * The L1 table that a disk of `size` needs fits QEMU's limit (32 MiB)
 * with these options; -EFBIG and *errp if not.
 */
int qcow2_measure_check_size(const struct qcow2_measure_opts *o, uint64_t size,
			     struct vs_error **errp);

/*
 * Whether `src` can carry persistent bitmaps (a qcow2 v3 image) and, if
 * so, the bytes its persistent bitmaps take in an image of
 * `cluster_size`: data, bitmap tables and the directory, each rounded to
 * clusters, as qemu-img measure adds them.  Returns 0 (*supported false
 * for other formats), or -errno with *errp naming the field of the
 * source's bitmap directory that is bad.
 */
int qcow2_measure_bitmaps(struct vbd *src, uint32_t cluster_size,
			  bool *supported, uint64_t *out,
			  struct vs_error **errp);

/*
 * The persistent bitmaps of an open image as qemu-img info lists them
 * ("bitmaps" of the format-specific data: flags, name, granularity), or
 * *out NULL when it has none.  Returns 0 or -errno with *errp naming
 * the bad field of the bitmap directory.
 */
int qcow2_bitmaps_info(struct qcow2 *s, const char *filename,
		       struct json_object **out, struct vs_error **errp);

/*
 * Whether the image looks preallocated with metadata only (its tables
 * map clusters that the host file never stored: holes), by QEMU's rule:
 * the clusters with a refcount outnumber those the file allocates by a
 * ninth, or by two.  Block status then asks the file whether data
 * clusters are holes, as qemu-img map does for such images.  Any error
 * reading the refcounts gives false.
 */
int qcow2_detect_metadata_prealloc(struct qcow2 *s);

#endif
