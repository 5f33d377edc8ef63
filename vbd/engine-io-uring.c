/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio=io_uring: one ring per engine and one reaper thread that waits for
 * completions and calls done().
 *
 * The SQ side of the ring is shared by every submitting thread and is
 * guarded by e->lock; the CQ side belongs to the reaper alone, which
 * waits on it without the lock.
 *
 * Most requests of a busy disk are submitted from inside done(), i.e. on
 * the reaper (a benchmark or a guest queue keeps its depth that way).
 * Those are only queued in the SQ; the reaper hands the whole batch to
 * the kernel with one io_uring_enter after running the callbacks.  Other
 * threads submit at once, since nobody else would.
 *
 * At most one CQ's worth of requests is given to the kernel, so the CQ
 * can never overflow; the rest wait in e->waiting (FIFO) until
 * completions make room.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "engine.h"

#define MIN_ENTRIES 16
#define MAX_ENTRIES 4096
#define REAP_BATCH  64

/* user_data of the NOP that tells the reaper to exit. */
#define STOP_DATA UINT64_MAX
/* An eio pointer tagged with this bit was refused before reaching the
 * kernel; it rides on a NOP and completes with -EINVAL. */
#define INVALID_TAG 1u
_Static_assert(_Alignof(struct vbd_eio) > INVALID_TAG,
	       "the tag bit must be free in an eio pointer");

struct eio_fifo {
	struct vbd_eio **v;
	unsigned cap; /* a power of two, or 0 */
	unsigned head;
	unsigned len;
};

struct uring_engine {
	struct vbd_engine_base base;
	struct io_uring ring;
	pthread_t reaper;
	pthread_mutex_t lock;  /* the SQ, and the fields below */
	unsigned inflight;     /* SQEs prepared and not yet completed */
	unsigned max_inflight; /* the CQ's size */
	struct eio_fifo waiting;
	bool self_destroy; /* destroy() was called by a done() */
};

/* The engine whose reaper is the current thread, if any. */
static __thread struct uring_engine *reaper_of;

static int fifo_push(struct eio_fifo *f, struct vbd_eio *eio)
{
	if (f->len == f->cap) {
		unsigned cap = f->cap ? f->cap * 2 : 64;
		struct vbd_eio **v;

		if (cap < f->cap || !(v = malloc(sizeof(*v) * cap)))
			return -ENOMEM;
		for (unsigned i = 0; i < f->len; i++)
			v[i] = f->v[(f->head + i) & (f->cap - 1)];
		free(f->v);
		f->v = v;
		f->cap = cap;
		f->head = 0;
	}
	f->v[(f->head + f->len) & (f->cap - 1)] = eio;
	f->len++;
	return 0;
}

static struct vbd_eio *fifo_peek(const struct eio_fifo *f)
{
	return f->len ? f->v[f->head] : NULL;
}

static void fifo_pop(struct eio_fifo *f)
{
	f->head = (f->head + 1) & (f->cap - 1);
	f->len--;
}

static void uring_prep(struct io_uring_sqe *sqe, struct vbd_eio *eio)
{
	uint64_t data = (uint64_t)(uintptr_t)eio;

	/* The kernel would read at the file position for offset -1. */
	if (eio->op != VBD_EIO_FDATASYNC && eio->offset > (uint64_t)INT64_MAX) {
		io_uring_prep_nop(sqe);
		data |= INVALID_TAG;
	} else if (eio->op == VBD_EIO_READ) {
		io_uring_prep_readv(sqe, eio->fd, eio->iov,
				    (unsigned)eio->iovcnt, eio->offset);
	} else if (eio->op == VBD_EIO_WRITE) {
		io_uring_prep_writev(sqe, eio->fd, eio->iov,
				     (unsigned)eio->iovcnt, eio->offset);
	} else if (eio->op == VBD_EIO_FDATASYNC) {
		io_uring_prep_fsync(sqe, eio->fd, IORING_FSYNC_DATASYNC);
	} else {
		io_uring_prep_nop(sqe);
		data |= INVALID_TAG;
	}
	io_uring_sqe_set_data64(sqe, data);
}

static void unlock_sleep_lock(struct uring_engine *e)
{
	pthread_mutex_unlock(&e->lock);
	usleep(100);
	pthread_mutex_lock(&e->lock);
}

/*
 * Give every prepared SQE to the kernel.  A refusal for lack of
 * resources (EAGAIN, or EBUSY while the kernel holds back completions)
 * leaves the SQEs in the ring; if some requests are already in the
 * kernel the reaper retries after their completions, otherwise nobody
 * would, so retry here.
 */
static void uring_flush_locked(struct uring_engine *e)
{
	unsigned ready;

	while ((ready = io_uring_sq_ready(&e->ring)) > 0) {
		int ret = io_uring_submit(&e->ring);

		if (ret > 0 || ret == -EINTR)
			continue;
		if (e->inflight > ready)
			return;
		unlock_sleep_lock(e);
	}
}

/* Put eio in an SQE; false if the SQ is full even after a flush. */
static bool uring_queue_sqe(struct uring_engine *e, struct vbd_eio *eio)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

	if (!sqe) {
		io_uring_submit(&e->ring);
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe)
			return false;
	}
	uring_prep(sqe, eio);
	e->inflight++;
	return true;
}

/* Move waiting requests into the SQ while the CQ has room for them. */
static void uring_drain_waiting_locked(struct uring_engine *e)
{
	struct vbd_eio *eio;

	while (e->inflight < e->max_inflight &&
	       (eio = fifo_peek(&e->waiting)) && uring_queue_sqe(e, eio))
		fifo_pop(&e->waiting);
}

static void uring_submit(struct vbd_engine *ve, struct vbd_eio *eio)
{
	struct uring_engine *e = (struct uring_engine *)ve;

	pthread_mutex_lock(&e->lock);
	/* Requests already waiting go first. */
	while (e->waiting.len || e->inflight >= e->max_inflight ||
	       !uring_queue_sqe(e, eio)) {
		if (fifo_push(&e->waiting, eio) == 0)
			break;
		/*
		 * Out of memory for the queue: done() cannot be called
		 * from here, so go past the CQ's size (the kernel keeps
		 * overflowing completions, IORING_FEAT_NODROP) or wait for
		 * the kernel to take SQEs.
		 */
		if (uring_queue_sqe(e, eio))
			break;
		uring_flush_locked(e);
		unlock_sleep_lock(e);
	}
	if (reaper_of != e)
		uring_flush_locked(e);
	pthread_mutex_unlock(&e->lock);
}

struct uring_done {
	struct vbd_eio *eio;
	ssize_t ret;
};

/* Take up to REAP_BATCH completions off the CQ, waiting for one if none
 * is there.  Sets *stop when the stop NOP is among them. */
static unsigned uring_reap(struct uring_engine *e, struct uring_done *out,
			   bool *stop)
{
	struct io_uring_cqe *cqes[REAP_BATCH], *cqe;
	unsigned n, ndone = 0;

	n = io_uring_peek_batch_cqe(&e->ring, cqes, REAP_BATCH);
	if (n == 0) {
		if (io_uring_wait_cqe(&e->ring, &cqe) < 0)
			return 0;
		n = io_uring_peek_batch_cqe(&e->ring, cqes, REAP_BATCH);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t data = cqes[i]->user_data;

		if (data == STOP_DATA) {
			*stop = true;
			continue;
		}
		out[ndone].eio =
			(struct vbd_eio *)(uintptr_t)(data &
						      ~(uint64_t)INVALID_TAG);
		out[ndone].ret = data & INVALID_TAG ? -EINVAL : cqes[i]->res;
		ndone++;
	}
	io_uring_cq_advance(&e->ring, n);
	return ndone;
}

static void uring_free(struct uring_engine *e)
{
	io_uring_queue_exit(&e->ring);
	pthread_mutex_destroy(&e->lock);
	free(e->waiting.v);
	free(e);
}

static void *uring_reaper(void *arg)
{
	struct uring_engine *e = arg;
	struct uring_done done[REAP_BATCH];
	bool stop = false;

	reaper_of = e;
	while (!stop) {
		unsigned n;

		pthread_mutex_lock(&e->lock);
		uring_drain_waiting_locked(e);
		uring_flush_locked(e);
		pthread_mutex_unlock(&e->lock);

		n = uring_reap(e, done, &stop);
		if (n == 0)
			continue;
		/* Before the callbacks, so that what they submit finds
		 * room; the lock also orders the submitters' writes to each
		 * eio before our reads of it. */
		pthread_mutex_lock(&e->lock);
		e->inflight -= n;
		pthread_mutex_unlock(&e->lock);
		for (unsigned i = 0; i < n; i++)
			done[i].eio->done(done[i].eio, done[i].ret);
		if (e->self_destroy)
			break;
	}
	reaper_of = NULL;
	if (e->self_destroy) {
		pthread_detach(pthread_self());
		uring_free(e);
	}
	return NULL;
}

static int uring_start_reaper(struct uring_engine *e)
{
	sigset_t all, old;
	int ret;

	/* Signals are for the main thread; the reaper has none to handle. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&e->reaper, NULL, uring_reaper, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == 0)
		pthread_setname_np(e->reaper, "vbd-io_uring");
	return -ret;
}

static unsigned ring_entries(unsigned depth)
{
	unsigned n = MIN_ENTRIES;

	while (n < depth && n < MAX_ENTRIES)
		n *= 2;
	return n;
}

static int uring_create(struct vbd_engine **out, unsigned depth, bool direct,
			struct vs_error **errp)
{
	struct uring_engine *e = calloc(1, sizeof(*e));
	struct io_uring_params p;
	int ret;

	(void)direct;
	if (!e)
		return vs_error_set(errp, ENOMEM,
				    "aio=io_uring: out of memory");
	e->base.ops = &vbd_engine_io_uring;
	/* SUBMIT_ALL (Linux 5.18) keeps one bad request from holding back
	 * the ones behind it in the same io_uring_enter. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL;
	ret = io_uring_queue_init_params(ring_entries(depth), &e->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(ring_entries(depth), &e->ring,
						 &p);
	}
	if (ret < 0) {
		free(e);
		if (ret == -ENOSYS)
			return vs_error_set(
				errp, ret,
				"aio=io_uring: this kernel has no io_uring "
				"(io_uring_setup: %s); use aio=threads",
				strerror(-ret));
		if (ret == -EPERM)
			return vs_error_set(
				errp, ret,
				"aio=io_uring: io_uring is forbidden here "
				"(io_uring_setup: %s; see the sysctl "
				"kernel.io_uring_disabled, or a seccomp "
				"filter); use aio=threads",
				strerror(-ret));
		return vs_error_set_errno(errp, ret,
					  "aio=io_uring: cannot set up a ring "
					  "of %u entries",
					  ring_entries(depth));
	}
	e->max_inflight = e->ring.cq.ring_entries;
	pthread_mutex_init(&e->lock, NULL);
	ret = uring_start_reaper(e);
	if (ret < 0) {
		uring_free(e);
		return vs_error_set_errno(
			errp, ret,
			"aio=io_uring: cannot start the reaper thread");
	}
	*out = (struct vbd_engine *)e;
	return 0;
}

static void uring_destroy(struct vbd_engine *ve)
{
	struct uring_engine *e = (struct uring_engine *)ve;
	struct io_uring_sqe *sqe;

	/* From a done(): the reaper cannot join itself, so it cleans up
	 * once the callback returns. */
	if (reaper_of == e) {
		e->self_destroy = true;
		return;
	}
	pthread_mutex_lock(&e->lock);
	while (!(sqe = io_uring_get_sqe(&e->ring))) {
		uring_flush_locked(e);
		unlock_sleep_lock(e);
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, STOP_DATA);
	/* With nothing in flight, a refused submission is retried here:
	 * the reaper has nothing else to wake it. */
	uring_flush_locked(e);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->reaper, NULL);
	uring_free(e);
}

const struct vbd_engine_ops vbd_engine_io_uring = {
	.name = "io_uring",
	.aio = VBD_AIO_IO_URING,
	.create = uring_create,
	.submit = uring_submit,
	.destroy = uring_destroy,
};
