/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img convert: copy one or more images (concatenated) into a new
 * or existing image of any registered format, as qemu-img convert does.
 *
 * The pipeline (convert.c): the sources are walked by block status
 * (convert-plan.c), so ranges that read as zeros in the whole chain are
 * never read; data is read in chunks of whole target clusters by up to
 * `parallel` worker threads, zero-detected at `min_sparse` granularity,
 * compressed in parallel (vbd_compress) and written in guest order (or
 * as soon as ready with `out_of_order`).  A target that reads as zeros
 * gets no write at all for zero ranges.
 */
#ifndef VS_IMGTOOLS_CONVERT_H
#define VS_IMGTOOLS_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "bench.h" /* enum img_bench_cache: qemu-img's -t/-T modes */

/* qemu-img's limits: -m 1..16, -S a multiple of 512 up to 16 MiB. */
#define IMG_CONVERT_MAX_PARALLEL   16u
#define IMG_CONVERT_MAX_SPARSE	   (16u << 20)
#define IMG_CONVERT_DEFAULT_SPARSE 4096u

struct img_convert_opts {
	const char *const *sources; /* nsources >= 1 names */
	int nsources;
	const char *source_format; /* -f; NULL: probe each */
	const char *target;
	const char *target_format;  /* -O; "raw" if NULL */
	const char *options;	    /* -o, NULL for none */
	const char *backing;	    /* -B: the target is an overlay of this */
	const char *backing_format; /* -F */
	bool compress;		    /* -c */
	/* -S: zero runs at least this long (multiple of 512) are left
	 * unwritten; 0 writes everything, zeros included. */
	uint64_t min_sparse;
	unsigned parallel;   /* -m: workers, 1..16 */
	bool out_of_order;   /* -W */
	bool no_create;	     /* -n: the target exists */
	bool target_is_zero; /* --target-is-zero (with -n) */
	bool force_share;    /* -U: sources opened sharing with writers */
	enum img_bench_cache cache;	/* -t, target (unsafe) */
	enum img_bench_cache src_cache; /* -T, sources (writeback) */

	/* Guest bytes processed (zero and unallocated ranges count), from
	 * any one thread at a time; may be NULL. */
	void (*progress)(uint64_t done, uint64_t total, void *opaque);
	void *opaque;
};

/* qemu-img's defaults: raw target, -S 4k, -m 8, in order, -t unsafe. */
void img_convert_opts_init(struct img_convert_opts *o);

/*
 * Convert.  Returns 0 when every byte is written and the target is
 * flushed to stable storage, or -errno with *errp naming the file, the
 * offset and the problem.  A target this call created is removed on
 * failure; one given with no_create never is.
 */
int img_convert(const struct img_convert_opts *o, struct vs_error **errp);

#endif
