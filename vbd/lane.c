/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The write lane.  A buffered write to a file system that cannot say
 * whether it would wait (ext4 refuses RWF_NOWAIT writes) must leave the
 * submitting thread, and every way out has a cost:
 *
 *   - io_uring tries the write without waiting, is refused, and hands
 *     it to one kernel worker per file, one after the other, plus a hop
 *     to the engine's reaper and back;
 *   - the pool wakes a worker per request, and with 32 of them in
 *     flight they queue on the file's inode lock (spinning, sleeping,
 *     waking each other);
 *   - writing in the submitting thread serializes the writes with
 *     everything else that thread does (an NBD connection's reader, a
 *     virtqueue).
 *
 * The file system runs one buffered write to a file at a time anyway
 * (ext4 holds the inode lock across the copy).  So a write that finds
 * the lane idle (no job, nothing queued) is done right away in the
 * submitting thread: the cheapest way when the client waits for its
 * replies before it sends more.  One that finds the lane busy waits in
 * the vbd's own FIFO, and one pool job drains it: it goes on without
 * sleeping while requests are queued, so a busy file costs no wake-up
 * per request, and it writes up to LANE_BATCH of them before it
 * completes them together, in one completion batch (vbd_batch_defer),
 * so that their replies leave in one burst (a client wakes once for
 * several).  Only what is already queued is batched.
 *
 * Measured through `vstor serve --nbd` (fio, 4 KiB random writes at
 * depth 32 on an allocated qcow2 on ext4, the image cached in 4 KiB
 * pages, 2 CPUs shared with other work): the lane's job alone, 11-19 us
 * of server CPU per write and 42-51k writes/s; with idle-lane writes
 * done in the submitting thread, 5-8 us and 80-110k.  With the image in
 * large folios (read in by readahead) the kernel's walk of each folio
 * dominates, and both make 13-18k.  The cost of the inline write: a
 * write that the kernel throttles (too much dirty data) holds up the
 * submitting thread, and whatever else it would have read or queued
 * meanwhile.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "lane.h"

#define LANE_BATCH 8

int vbd_lane_init(struct vbd_lane *l, int (*run)(struct vbd_req *req))
{
	memset(l, 0, sizeof(*l));
	if (pthread_mutex_init(&l->lock, NULL))
		return -ENOMEM;
	l->run = run;
	l->ready = true;
	return 0;
}

void vbd_lane_destroy(struct vbd_lane *l)
{
	if (!l->ready)
		return;
	pthread_mutex_destroy(&l->lock);
	l->ready = false;
}

/* The next queued request, or NULL: then the job is over, and must not
 * touch the lane once the requests it holds are complete (the vbd may
 * be closed as soon as nothing is in flight). */
static struct vbd_req *lane_next(struct vbd_lane *l)
{
	struct vbd_req *req;

	pthread_mutex_lock(&l->lock);
	req = l->head;
	if (req) {
		l->head = req->priv;
		if (!l->head)
			l->tail = NULL;
	} else {
		l->running = false;
	}
	pthread_mutex_unlock(&l->lock);
	return req;
}

static void lane_run(struct vbd_pool_job *job)
{
	struct vbd_lane *l =
		(struct vbd_lane *)((char *)job -
				    offsetof(struct vbd_lane, job));
	struct vbd_req *req = lane_next(l), *batch[LANE_BATCH];
	int (*run)(struct vbd_req * req) = l->run;
	int ret[LANE_BATCH];

	while (req) {
		int n = 0;

		/* `req`, taken before the batch completes, keeps the vbd
		 * open under this job. */
		do {
			batch[n] = req;
			ret[n] = run(req);
			n++;
			req = lane_next(l);
		} while (req && n < LANE_BATCH);
		vbd_batch_begin();
		for (int i = 0; i < n; i++)
			vbd_req_complete(batch[i], ret[i]);
		vbd_batch_end();
	}
}

void vbd_lane_push(struct vbd_lane *l, struct vbd_req *req)
{
	bool start;
	int ret;

	req->priv = NULL;
	pthread_mutex_lock(&l->lock);
	if (!l->running) {
		/* Idle: write it here.  `running` keeps others to the
		 * queue meanwhile, so that nothing overtakes what they
		 * queue; what they queued gets a job before req completes
		 * (completing it may let the vbd close). */
		l->running = true;
		pthread_mutex_unlock(&l->lock);
		ret = l->run(req);
		pthread_mutex_lock(&l->lock);
		start = l->head != NULL;
		l->running = start;
		pthread_mutex_unlock(&l->lock);
		if (start) {
			l->job.fn = lane_run;
			vbd_pool_run(&l->job);
		}
		vbd_req_complete(req, ret);
		return;
	}
	/* Busy: the job, or the thread writing in place, takes it. */
	if (l->tail)
		l->tail->priv = req;
	else
		l->head = req;
	l->tail = req;
	pthread_mutex_unlock(&l->lock);
}
