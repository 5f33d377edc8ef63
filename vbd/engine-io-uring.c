/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio=io_uring: one ring per engine and one reaper thread that hands
 * requests to the kernel, waits for completions and calls done().
 *
 * Only the reaper ever calls io_uring_enter to submit.  The kernel ties a
 * request to the task that submitted it: work it punts to io-wq (buffered
 * writes, in particular) runs on workers of that task and is cancelled
 * with -ECANCELED when the task exits.  Any thread may call submit() and
 * then end, but the reaper lives as long as the engine.  Nothing ties
 * the ring to the thread that creates it: that thread submits nothing,
 * and the ring is set up without SINGLE_ISSUER or DEFER_TASKRUN (which
 * bind it to one task), so create() may run on a thread that exits too.
 *
 * The SQ side of the ring is shared by every thread and is guarded by
 * e->lock; the CQ side belongs to the reaper alone, which waits on it
 * without the lock.
 *
 * Most requests of a busy disk are submitted from inside done(), i.e. on
 * the reaper (a benchmark or a guest queue keeps its depth that way).
 * They are only queued in the SQ; the reaper hands the whole batch to the
 * kernel with one io_uring_enter after running the callbacks.  Other
 * threads queue their requests the same way, and wake the reaper if it
 * sleeps in the kernel: a poll request on the ring watches an eventfd,
 * and a write to the eventfd completes it.  The write is skipped while
 * the reaper is awake, as it looks at the SQ before it sleeps again.
 *
 * At most one CQ's worth of CQEs can be due (requests, and KICK_CQES for
 * the poll), so the CQ can never overflow; the requests beyond that wait
 * in e->waiting (FIFO) until completions make room.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "driver.h"
#include "engine.h"

#define MIN_ENTRIES 16
#define MAX_ENTRIES 4096
#define REAP_BATCH  64
/*
 * Callbacks run between two submissions of what they queued.  A device
 * keeps busier with a steady trickle than with bursts of up to
 * REAP_BATCH, and batching still saves system calls where the CPU is the
 * limit.  Measured on a virtio disk, 4 KiB reads at depth 32: O_DIRECT
 * went from about 0.9 of qemu-img's IOPS (bursts of 64) to about 1.0;
 * page-cache reads stay 2.5 to 3 times qemu-img's.  Submitting after
 * every callback (as QEMU does) measured no better on the disk.
 */
#define SUBMIT_EVERY 4

/* user_data of the poll request on the eventfd. */
#define KICK_DATA UINT64_MAX
/*
 * The CQ entries the poll may hold at once.  A multishot poll posts one
 * CQE per write to the eventfd, and there is one write at most until the
 * reaper has reaped its CQE (see uring_kick_locked); the request may also
 * end (an error, or the kernel refusing multishot) with a final CQE.  A
 * one-shot poll posts one CQE and is re-armed only after it is reaped.
 */
#define KICK_CQES 2
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
	int kick_fd;	       /* the eventfd that wakes the reaper */
	pthread_mutex_t lock;  /* the SQ, and the fields below */
	unsigned inflight;     /* SQEs prepared and not yet completed */
	unsigned max_inflight; /* the CQ's size less KICK_CQES */
	struct eio_fifo waiting;
	/*
	 * The reaper may be blocked in the kernel and will look at the SQ
	 * only after a CQE: another thread that queues work must write to
	 * kick_fd (and clear this).
	 */
	bool asleep;
	bool kicked;	   /* kick_fd written, and no poll CQE reaped since */
	bool poll_armed;   /* a poll on kick_fd is in the SQ or the kernel */
	bool multishot;	   /* false once the kernel refused it */
	bool stop;	   /* destroy() from another thread */
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
 * Wake the reaper if it may be blocked in the kernel, after another
 * thread queued work for it.  The write is made under the lock, so that
 * no write lands after the reaper reaped a poll CQE that was not its own
 * (the end of a poll, say): at most one write is unreaped at any time,
 * which is what KICK_CQES counts on.
 */
static void uring_kick_locked(struct uring_engine *e)
{
	uint64_t one = 1;

	if (!e->asleep)
		return;
	e->asleep = false;
	e->kicked = true;
	/* Cannot fail but for EINTR: the count never nears its limit. */
	while (write(e->kick_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Reaper only: put a poll on kick_fd in the SQ, if there is room. */
static void uring_arm_kick_locked(struct uring_engine *e)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	uint64_t count;

	if (!sqe)
		return;
	/*
	 * A count left from earlier writes would complete the new poll at
	 * once; those writes were for a reaper that is awake now, and that
	 * will look at the SQ before it sleeps.
	 */
	while (read(e->kick_fd, &count, sizeof(count)) < 0 && errno == EINTR)
		;
	e->kicked = false;
	if (e->multishot)
		io_uring_prep_poll_multishot(sqe, e->kick_fd, POLLIN);
	else
		io_uring_prep_poll_add(sqe, e->kick_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, KICK_DATA);
	e->poll_armed = true;
}

/*
 * Reaper only: give every prepared SQE to the kernel.  A refusal for
 * lack of resources (EAGAIN, or EBUSY while the kernel holds back
 * completions) leaves the SQEs in the ring; if some requests are already
 * in the kernel the reaper retries after their completions, otherwise
 * nothing would wake it, so retry here.
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

/*
 * Put eio in an SQE; false if the SQ is full.  The reaper (enter) first
 * makes room by submitting what the SQ holds.
 */
static bool uring_queue_sqe(struct uring_engine *e, struct vbd_eio *eio,
			    bool enter)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

	if (!sqe) {
		if (!enter)
			return false;
		io_uring_submit(&e->ring);
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe)
			return false;
	}
	uring_prep(sqe, eio);
	e->inflight++;
	return true;
}

/* Reaper only: move waiting requests into the SQ while the CQ has room
 * for them. */
static void uring_drain_waiting_locked(struct uring_engine *e)
{
	struct vbd_eio *eio;

	while (e->inflight < e->max_inflight &&
	       (eio = fifo_peek(&e->waiting)) && uring_queue_sqe(e, eio, true))
		fifo_pop(&e->waiting);
}

static void uring_submit(struct vbd_engine *ve, struct vbd_eio *eio)
{
	struct uring_engine *e = (struct uring_engine *)ve;
	bool reaper = reaper_of == e;

	pthread_mutex_lock(&e->lock);
	/* Requests already waiting go first. */
	while (e->waiting.len || e->inflight >= e->max_inflight ||
	       !uring_queue_sqe(e, eio, reaper)) {
		if (fifo_push(&e->waiting, eio) == 0)
			break;
		/*
		 * Out of memory for the queue: done() cannot be called
		 * from here, so go past the CQ's size (the kernel keeps
		 * overflowing completions, IORING_FEAT_NODROP) or wait for
		 * the kernel to take SQEs.
		 */
		if (uring_queue_sqe(e, eio, reaper))
			break;
		if (reaper)
			uring_flush_locked(e);
		else
			uring_kick_locked(e);
		unlock_sleep_lock(e);
	}
	/* The reaper submits its own batch after the callbacks. */
	if (!reaper)
		uring_kick_locked(e);
	pthread_mutex_unlock(&e->lock);
}

/*
 * Reaper only: hand the kernel what the FIFO and the SQ hold, and say
 * whether the reaper may block until the next CQE.  The flush and the
 * decision happen under one hold of the lock, so every submitter either
 * queued its work before the flush or finds e->asleep set and wakes the
 * reaper: no wake-up is lost.
 */
static bool uring_submit_all_locked(struct uring_engine *e)
{
	bool block;

	if (!e->poll_armed)
		uring_arm_kick_locked(e);
	uring_drain_waiting_locked(e);
	uring_flush_locked(e);
	if (!e->poll_armed) {
		uring_arm_kick_locked(e);
		uring_flush_locked(e);
	}
	/* The flush may have dropped the lock while a submitter put its
	 * request in the FIFO without waking anyone. */
	block = !(e->waiting.len && e->inflight < e->max_inflight &&
		  io_uring_sq_space_left(&e->ring));
	/*
	 * Without a poll (the SQ still full) nothing could be woken, but
	 * requests are in the kernel then and their CQEs will come.
	 */
	e->asleep = block && e->poll_armed && !e->kicked &&
		    !io_uring_cq_ready(&e->ring);
	return block;
}

struct uring_done {
	struct vbd_eio *eio;
	ssize_t ret;
};

struct uring_reaped {
	unsigned n;	 /* completed requests */
	bool kick;	 /* a CQE of the poll on kick_fd */
	bool kick_ended; /* ... the poll's last */
	int kick_res;	 /* ... and its result */
};

/* Take up to REAP_BATCH completions off the CQ, waiting for one if none is
 * there and block allows. */
static void uring_reap(struct uring_engine *e, bool block,
		       struct uring_done *out, struct uring_reaped *r)
{
	struct io_uring_cqe *cqes[REAP_BATCH], *cqe;
	unsigned n;

	*r = (struct uring_reaped){0};
	n = io_uring_peek_batch_cqe(&e->ring, cqes, REAP_BATCH);
	if (n == 0) {
		if (!block || io_uring_wait_cqe(&e->ring, &cqe) < 0)
			return;
		n = io_uring_peek_batch_cqe(&e->ring, cqes, REAP_BATCH);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t data = cqes[i]->user_data;

		if (data == KICK_DATA) {
			r->kick = true;
			if (!(cqes[i]->flags & IORING_CQE_F_MORE)) {
				r->kick_ended = true;
				r->kick_res = cqes[i]->res;
			}
			continue;
		}
		out[r->n].eio =
			(struct vbd_eio *)(uintptr_t)(data &
						      ~(uint64_t)INVALID_TAG);
		out[r->n].ret = data & INVALID_TAG ? -EINVAL : cqes[i]->res;
		r->n++;
	}
	io_uring_cq_advance(&e->ring, n);
}

static void uring_free(struct uring_engine *e)
{
	io_uring_queue_exit(&e->ring);
	close(e->kick_fd);
	pthread_mutex_destroy(&e->lock);
	free(e->waiting.v);
	free(e);
}

static void *uring_reaper(void *arg)
{
	struct uring_engine *e = arg;
	struct uring_done done[REAP_BATCH];
	struct uring_reaped r;

	reaper_of = e;
	for (;;) {
		bool block;

		pthread_mutex_lock(&e->lock);
		if (e->stop) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		block = uring_submit_all_locked(e);
		pthread_mutex_unlock(&e->lock);

		uring_reap(e, block, done, &r);
		/* Before the callbacks, so that what they submit finds
		 * room; the lock also orders the submitters' writes to each
		 * eio before our reads of it. */
		pthread_mutex_lock(&e->lock);
		e->asleep = false;
		e->inflight -= r.n;
		if (r.kick)
			e->kicked = false;
		if (r.kick_ended) {
			/* A kernel older than 5.13 refuses multishot. */
			if (r.kick_res == -EINVAL)
				e->multishot = false;
			e->poll_armed = false;
		}
		pthread_mutex_unlock(&e->lock);
		vbd_batch_begin();
		for (unsigned i = 0; i < r.n; i++) {
			done[i].eio->done(done[i].eio, done[i].ret);
			/* Hand what the callbacks queued to the kernel every
			 * SUBMIT_EVERY of them, not after the whole batch. */
			/* The submission queue is read under the lock: other
			 * threads queue to it. */
			if ((i + 1) % SUBMIT_EVERY == 0 && i + 1 < r.n) {
				pthread_mutex_lock(&e->lock);
				uring_flush_locked(e);
				pthread_mutex_unlock(&e->lock);
			}
		}
		vbd_batch_end();
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

static int uring_setup_error(int ret, unsigned entries, struct vs_error **errp)
{
	if (ret == -ENOSYS)
		return vs_error_set(errp, ret,
				    "aio=io_uring: this kernel has no io_uring "
				    "(io_uring_setup: %s); use aio=threads",
				    strerror(-ret));
	if (ret == -EPERM)
		return vs_error_set(errp, ret,
				    "aio=io_uring: io_uring is forbidden here "
				    "(io_uring_setup: %s; see the sysctl "
				    "kernel.io_uring_disabled, or a seccomp "
				    "filter); use aio=threads",
				    strerror(-ret));
	return vs_error_set_errno(errp, ret,
				  "aio=io_uring: cannot set up a ring "
				  "of %u entries",
				  entries);
}

static int uring_create(struct vbd_engine **out, unsigned depth, bool direct,
			struct vs_error **errp)
{
	struct uring_engine *e = calloc(1, sizeof(*e));
	unsigned entries = ring_entries(depth);
	struct io_uring_params p;
	int ret;

	if (!e)
		return vs_error_set(errp, ENOMEM,
				    "aio=io_uring: out of memory");
	e->base.ops = &vbd_engine_io_uring;
	e->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->kick_fd < 0) {
		ret = -errno;
		free(e);
		return vs_error_set_errno(errp, ret,
					  "aio=io_uring: cannot create an "
					  "eventfd");
	}
	/* SUBMIT_ALL (Linux 5.18) keeps one bad request from holding back
	 * the ones behind it in the same io_uring_enter. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL;
	ret = io_uring_queue_init_params(entries, &e->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(entries, &e->ring, &p);
	}
	if (ret < 0) {
		close(e->kick_fd);
		free(e);
		return uring_setup_error(ret, entries, errp);
	}
	/* The CQ is twice the SQ, and the SQ at least MIN_ENTRIES. */
	e->max_inflight = e->ring.cq.ring_entries - KICK_CQES;
	e->multishot = true;
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

	/* From a done(): the reaper cannot join itself, so it cleans up
	 * once the callback returns. */
	if (reaper_of == e) {
		e->self_destroy = true;
		return;
	}
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	uring_kick_locked(e);
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
