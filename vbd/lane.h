/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A write lane: one vbd's buffered writes in a FIFO drained by one pool
 * job (vbd/lane.c), for files whose writes cannot be tried without
 * waiting (ext4 refuses RWF_NOWAIT buffered writes).  For drivers.
 */
#ifndef VS_VBD_LANE_H
#define VS_VBD_LANE_H

#include <pthread.h>
#include <stdbool.h>

#include "driver.h"
#include "pool.h"

struct vbd_lane {
	pthread_mutex_t lock;
	struct vbd_req *head, *tail; /* linked through req->priv */
	bool running; /* `job` is on the pool, or a submitter writes */
	bool ready;   /* initialised */
	struct vbd_pool_job job;
	/* The work of one request, done synchronously on the lane's
	 * job: 0 or -errno, which completes the request. */
	int (*run)(struct vbd_req *req);
};

int vbd_lane_init(struct vbd_lane *l, int (*run)(struct vbd_req *req));
/* Only once nothing is queued (the vbd is idle).  A lane never
 * initialised, or destroyed already, is fine. */
void vbd_lane_destroy(struct vbd_lane *l);
/* Write req now, in this thread, if the lane is idle; else queue it
 * (its `priv` becomes the lane's): it completes from the lane's job. */
void vbd_lane_push(struct vbd_lane *l, struct vbd_req *req);

#endif
