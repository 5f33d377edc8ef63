/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img measure: how large an image file of a format would be, for
 * a disk of a given size or for the content of an existing disk, as
 * `qemu-img measure` computes it.
 */
#ifndef VS_IMGTOOLS_MEASURE_H
#define VS_IMGTOOLS_MEASURE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct vbd;

struct img_measure {
	uint64_t required;	  /* a new image holding the content */
	uint64_t fully_allocated; /* every cluster allocated */
	bool has_bitmaps;	  /* the source can carry persistent
				   * bitmaps and the output keeps them */
	uint64_t bitmaps;	  /* bytes the source's bitmaps take */
};

/*
 * Measure an image of format `out_fmt` ("raw" or "qcow2"; any other is
 * -ENOTSUP, "does not support size measurement", as qemu-img says)
 * created with -o `options` (may be NULL).  With `src`, for a copy of
 * its content (allocation read through its backing chain); without, for
 * an empty disk of `size` bytes.  Returns 0 or -errno with *errp.
 */
int img_measure(struct vbd *src, uint64_t size, const char *out_fmt,
		const char *options, struct img_measure *m,
		struct vs_error **errp);

#endif
