/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The convert plan: the concatenated sources cut into work items by
 * block status.  Private to imgtools/convert*.c.
 *
 * An item is a guest range of the target with one status: DATA (read it
 * from the source), ZERO (reads as zeros in the source's whole chain:
 * never read) or BACKING (convert -B: not decided by the source's top
 * layer, left to the target's backing file).  Item boundaries fall on
 * multiples of `align` (the target's cluster) except where a source or
 * the disk ends, so that each target cluster is written by one item; a
 * zero run shorter than a cluster is copied with the data around it.
 * DATA items end at multiples of `chunk` too, the unit a worker reads.
 */
#ifndef VS_IMGTOOLS_CONVERT_PLAN_H
#define VS_IMGTOOLS_CONVERT_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "../vbd/vbd.h"

enum cv_status {
	CV_DATA,
	CV_ZERO,
	CV_BACKING,
};

struct cv_item {
	uint64_t off, len; /* in the target */
	enum cv_status st;
	int src;	  /* DATA: which source, -1 past the last one */
	uint64_t src_off; /* DATA: where in it */
	uint64_t seq;	  /* 0, 1, 2...: the write order */
};

struct cv_plan {
	/* Set by the caller. */
	struct vbd **src;
	int nsrc;
	uint64_t total;	   /* target bytes to fill (>= the sources' sum) */
	uint64_t align;	   /* > 0 */
	uint64_t chunk;	   /* a multiple of align */
	bool backing;	   /* convert -B: classify by the top layer */
	uint64_t max_zero; /* longest ZERO/BACKING item */

	/* Private. */
	uint64_t *start; /* where each source begins in the target */
	uint64_t pos, seq;
	int c_src; /* the last status answer, cached */
	uint64_t c_start, c_end;
	enum cv_status c_st;
};

/* Fill the private part; the sources' sum must fit (checked): -EFBIG. */
int cv_plan_init(struct cv_plan *p, struct vs_error **errp);
void cv_plan_free(struct cv_plan *p);

/* The sources' total size, or -EFBIG with *errp when it overflows. */
int cv_sources_size(struct vbd **src, int nsrc, uint64_t *out,
		    struct vs_error **errp);

/* The next item: 1 with *it set, 0 at the end, -errno with *errp. */
int cv_plan_next(struct cv_plan *p, struct cv_item *it, struct vs_error **errp);

#endif
