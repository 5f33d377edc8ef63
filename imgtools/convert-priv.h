/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state of one convert, shared by its setup (convert.c) and its
 * copy pipeline (convert-copy.c).  Private to imgtools/convert*.c.
 */
#ifndef VS_IMGTOOLS_CONVERT_PRIV_H
#define VS_IMGTOOLS_CONVERT_PRIV_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "convert-plan.h"
#include "convert.h"

struct cv {
	const struct img_convert_opts *o;
	struct vbd **src;
	int nsrc;
	struct vbd *dst;
	uint64_t total; /* bytes of the target to fill */

	/* How to write. */
	bool zero_init;	  /* the target reads as zeros: skip zero writes */
	bool compress;	  /* whole clusters through vbd_compress */
	bool zero_data;	  /* -S 0: zeros are written as data */
	bool sync_writes; /* writethrough/directsync: flush after each */
	uint64_t cluster; /* the target's cluster size, 0 if none */
	uint64_t granule; /* zero detection unit; 0 = none */
	/* DATA may be copied by the kernel from a source file the page
	 * cache serves (vbd_host_fd) to the target (vbd_copy_from_fd). */
	bool fd_copy;

	struct cv_plan plan;

	/*
	 * Written bytes are pushed towards the disk as the copy goes
	 * (sync_file_range on this read-only descriptor of the target's
	 * file, -1 if none), so that the final flush finds little left to
	 * write and the disk works while the workers copy.
	 */
	int kick_fd;
	uint64_t unkicked; /* bytes written since the last push (atomic) */
	/* For `-D convert`: pushes made, and the time the workers spent in
	 * them (atomic). */
	unsigned kicks;
	uint64_t kick_ns;
	/* A target file written in order drops what it pushed two pushes
	 * ago from the page cache (convert-copy.c): kick_lock serialises
	 * the marks, offsets in the target's file; drop_raw when those are
	 * the guest's offsets. */
	bool drop_behind, drop_raw;
	pthread_mutex_t kick_lock;
	uint64_t push_mark[2], dropped_to;

	/* Under lock: the plan, the write turn, errors and progress.  A
	 * worker waiting for item seq's turn waits on turns[seq % nturns]
	 * (one per worker, set up by cv_copy): the items in hand are the
	 * nturns or fewer from next_write on, so each waits on its own,
	 * and a turn wakes one worker, not all. */
	pthread_mutex_t lock;
	pthread_cond_t *turns;
	unsigned nturns;
	uint64_t next_write; /* the seq whose turn it is */
	int ret;	     /* the first error, 0 while all goes well */
	struct vs_error *err;
	uint64_t done;
};

/* The monotonic clock in nanoseconds, for `-D convert`'s timings. */
static inline uint64_t cv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Run the workers until the plan is done or an error stopped them.
 * Returns 0 or the first error (with cv->err set). */
int cv_copy(struct cv *cv);

#endif
