/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio=threads: every request runs synchronously on a worker of the
 * process-wide pool (vbd/pool.c).  It works on every file and kernel,
 * which makes it the fallback when io_uring is unavailable.
 *
 * The engine itself holds no state that a request needs, so a worker
 * never touches the engine: destroy has nothing to wait for.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "pool.h"

struct threads_engine {
	struct vbd_engine_base base;
};

struct threads_job {
	struct vbd_pool_job job;
	struct vbd_eio *eio;
};

static void threads_job_fn(struct vbd_pool_job *job)
{
	struct threads_job *tj = (struct threads_job *)job;
	struct vbd_eio *eio = tj->eio;

	free(tj);
	eio->done(eio, vbd_eio_run_sync(eio));
}

static void threads_submit(struct vbd_engine *e, struct vbd_eio *eio)
{
	struct threads_job *tj;

	(void)e;
	/*
	 * done() must come from an engine thread, never from inside
	 * submit (the caller may hold a lock its callback takes), so an
	 * allocation failure can only be waited out.
	 */
	while (!(tj = malloc(sizeof(*tj))))
		usleep(1000);
	tj->job.fn = threads_job_fn;
	tj->eio = eio;
	vbd_pool_run(&tj->job);
}

static int threads_create(struct vbd_engine **out, unsigned depth, bool direct,
			  struct vs_error **errp)
{
	struct threads_engine *e = malloc(sizeof(*e));

	(void)depth;
	(void)direct;
	if (!e)
		return vs_error_set(errp, ENOMEM, "aio=threads: out of memory");
	e->base.ops = &vbd_engine_threads;
	*out = (struct vbd_engine *)e;
	return 0;
}

static void threads_destroy(struct vbd_engine *e)
{
	free(e);
}

const struct vbd_engine_ops vbd_engine_threads = {
	.name = "threads",
	.aio = VBD_AIO_THREADS,
	.create = threads_create,
	.submit = threads_submit,
	.destroy = threads_destroy,
};
