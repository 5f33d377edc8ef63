/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A process-wide pool of worker threads for blocking work: the threads
 * engine, and requests of drivers that have no asynchronous path.
 * Workers are started on demand up to a limit and stay for reuse.
 */
#ifndef VS_VBD_POOL_H
#define VS_VBD_POOL_H

struct vbd_pool_job {
	void (*fn)(struct vbd_pool_job *job); /* runs on a worker */
	struct vbd_pool_job *next;	      /* private to the pool */
};

/* Queue a job.  Never fails: if no new worker can be started, the job
 * waits for a running one. */
void vbd_pool_run(struct vbd_pool_job *job);

/* The number of workers the pool may start (default 64). */
void vbd_pool_set_max_workers(unsigned n);

#endif
