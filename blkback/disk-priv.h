/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inside of struct blkback_disk, shared by disk.c (life cycle),
 * request.c (the request path) and disks.c (the table).  Transports use
 * blkback.h only.
 */
#ifndef VS_BLKBACK_DISK_PRIV_H
#define VS_BLKBACK_DISK_PRIV_H

#include <pthread.h>

#include "blkback.h"

struct blkback_disk {
	char *name; /* the spec's vdev */
	struct vbd *vbd;
	uint64_t size;
	bool readonly;
	bool discard;

	/* Under `lock`: the reference count (unref wakes waiters of
	 * blkback_disk_wait_unused) and the transition of in_flight to
	 * zero (drain waits on `idle`). */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	pthread_cond_t unused;
	unsigned refs;

	/* Atomics: the request path touches them without the lock. */
	uint64_t in_flight;
	bool retired;
	struct blkback_op_stats stats[BLKBACK_OP_COUNT];
};

/* Called by the request path when a request leaves it. */
void blkback_disk_put_in_flight(struct blkback_disk *d);

#endif
