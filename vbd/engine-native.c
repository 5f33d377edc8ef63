/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio=native: Linux AIO through libaio, with a reaper thread.
 *
 * Linux AIO is asynchronous only for O_DIRECT; on buffered files
 * io_submit does the I/O itself and blocks the submitter, so create()
 * refuses direct=false as QEMU does.  Its fsync is not asynchronous on
 * most file systems either, so FDATASYNC runs on the worker pool.
 *
 * Every iocb signals an eventfd; the reaper sleeps on it, collects the
 * events and calls done().  Requests submitted from inside done() (on
 * the reaper) are batched into one io_submit after the callbacks.  The
 * context holds `nr` requests; more wait in a FIFO, and so do requests
 * the kernel refused with EAGAIN.  Requests that io_submit rejects
 * outright (EBADF, EINVAL) are completed by the reaper, because done()
 * must never run inside submit().
 */
#include <errno.h>
#include <libaio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine.h"
#include "pool.h"

#define MIN_EVENTS 64
#define MAX_EVENTS 1024

struct native_engine;

/* One per request while the engine owns it. */
struct native_slot {
	struct iocb iocb;
	struct vbd_pool_job job; /* FDATASYNC */
	struct native_engine *e;
	struct vbd_eio *eio;
	ssize_t err; /* refused by io_submit */
	struct native_slot *next;
};

struct native_done {
	struct vbd_eio *eio;
	ssize_t ret;
};

struct native_engine {
	struct vbd_engine_base base;
	io_context_t ctx;
	int efd;
	unsigned nr; /* requests the context holds */
	pthread_t reaper;

	/* The reaper's own. */
	struct io_event *events;  /* nr */
	struct native_done *done; /* nr */
	struct iocb **batch;	  /* nr: submitted after the callbacks */
	unsigned nbatch;

	pthread_mutex_t lock; /* everything below */
	unsigned inflight;    /* in the kernel, or in batch */
	struct native_slot *free_slots;
	struct native_slot *wait_head, *wait_tail;
	struct native_slot *failed;
	/* Requests wait with nothing in flight whose completion would
	 * wake the reaper to retry them. */
	bool retry;
	bool stop;
	bool self_destroy; /* destroy() was called by a done() */
};

static __thread struct native_engine *reaper_of;

static void native_wake(struct native_engine *e)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow, and then the reaper
	 * is awake anyway. */
	if (write(e->efd, &one, sizeof(one)) < 0)
		return;
}

static struct native_slot *slot_get(struct native_engine *e)
{
	struct native_slot *slot;

	for (;;) {
		pthread_mutex_lock(&e->lock);
		slot = e->free_slots;
		if (slot)
			e->free_slots = slot->next;
		pthread_mutex_unlock(&e->lock);
		if (!slot)
			slot = malloc(sizeof(*slot));
		if (slot)
			break;
		/* done() cannot be called from inside submit, so an
		 * allocation failure can only be waited out. */
		usleep(1000);
	}
	memset(slot, 0, sizeof(*slot));
	slot->e = e;
	return slot;
}

static void slot_put_locked(struct native_engine *e, struct native_slot *slot)
{
	slot->next = e->free_slots;
	e->free_slots = slot;
}

static void wait_append_locked(struct native_engine *e,
			       struct native_slot *slot)
{
	slot->next = NULL;
	if (e->wait_tail)
		e->wait_tail->next = slot;
	else
		e->wait_head = slot;
	e->wait_tail = slot;
}

static void wait_prepend_locked(struct native_engine *e,
				struct native_slot *slot)
{
	slot->next = e->wait_head;
	e->wait_head = slot;
	if (!e->wait_tail)
		e->wait_tail = slot;
}

static void fail_locked(struct native_engine *e, struct native_slot *slot,
			ssize_t err)
{
	slot->err = err;
	slot->next = e->failed;
	e->failed = slot;
}

static void native_sync_job(struct vbd_pool_job *job)
{
	struct native_slot *slot =
		(struct native_slot *)((char *)job -
				       offsetof(struct native_slot, job));
	struct native_engine *e = slot->e;
	struct vbd_eio *eio = slot->eio;
	ssize_t ret = vbd_eio_run_sync(eio);

	/* The engine may be destroyed as soon as done() has run. */
	pthread_mutex_lock(&e->lock);
	slot_put_locked(e, slot);
	pthread_mutex_unlock(&e->lock);
	eio->done(eio, ret);
}

static bool native_prep(struct native_slot *slot, struct vbd_eio *eio)
{
	if (eio->op == VBD_EIO_READ)
		io_prep_preadv(&slot->iocb, eio->fd, eio->iov, eio->iovcnt,
			       (long long)eio->offset);
	else if (eio->op == VBD_EIO_WRITE)
		io_prep_pwritev(&slot->iocb, eio->fd, eio->iov, eio->iovcnt,
				(long long)eio->offset);
	else
		return false;
	io_set_eventfd(&slot->iocb, slot->e->efd);
	slot->iocb.data = slot;
	return true;
}

static void native_submit(struct vbd_engine *ve, struct vbd_eio *eio)
{
	struct native_engine *e = (struct native_engine *)ve;
	struct native_slot *slot = slot_get(e);
	struct iocb *iocb = &slot->iocb;
	io_context_t ctx;
	int ret;

	slot->eio = eio;
	if (eio->op == VBD_EIO_FDATASYNC) {
		slot->job.fn = native_sync_job;
		vbd_pool_run(&slot->job);
		return;
	}
	if (!native_prep(slot, eio)) {
		pthread_mutex_lock(&e->lock);
		fail_locked(e, slot, -EINVAL);
		pthread_mutex_unlock(&e->lock);
		native_wake(e);
		return;
	}
	pthread_mutex_lock(&e->lock);
	if (e->wait_head || e->inflight >= e->nr) {
		wait_append_locked(e, slot);
		pthread_mutex_unlock(&e->lock);
		return;
	}
	e->inflight++;
	if (reaper_of == e) {
		e->batch[e->nbatch++] = iocb;
		pthread_mutex_unlock(&e->lock);
		return;
	}
	/* Read under the lock: once io_submit succeeds, done() may run
	 * and destroy the engine before this thread looks again. */
	ctx = e->ctx;
	pthread_mutex_unlock(&e->lock);

	/* Outside the lock: submitters on several threads proceed in
	 * parallel, and the reaper is not held up. */
	ret = io_submit(ctx, 1, &iocb);
	if (ret == 1)
		return;
	pthread_mutex_lock(&e->lock);
	e->inflight--;
	if (ret == -EAGAIN || ret == 0) {
		wait_append_locked(e, slot);
		if (e->inflight == 0)
			e->retry = true;
	} else {
		fail_locked(e, slot, ret < 0 ? ret : -EIO);
	}
	pthread_mutex_unlock(&e->lock);
	native_wake(e);
}

/* Submit the batch, after moving waiting requests into the room left. */
static void native_flush(struct native_engine *e)
{
	unsigned sent = 0;
	int ret;

	pthread_mutex_lock(&e->lock);
	while (e->wait_head && e->inflight < e->nr) {
		struct native_slot *slot = e->wait_head;

		e->wait_head = slot->next;
		if (!e->wait_head)
			e->wait_tail = NULL;
		e->batch[e->nbatch++] = &slot->iocb;
		e->inflight++;
	}
	e->retry = false;
	pthread_mutex_unlock(&e->lock);

	while (sent < e->nbatch) {
		ret = io_submit(e->ctx, e->nbatch - sent, e->batch + sent);
		if (ret > 0) {
			sent += (unsigned)ret;
			continue;
		}
		pthread_mutex_lock(&e->lock);
		if (ret == -EAGAIN || ret == 0) {
			/* Back to the front of the queue, in order. */
			for (unsigned i = e->nbatch; i > sent; i--)
				wait_prepend_locked(e, e->batch[i - 1]->data);
			e->inflight -= e->nbatch - sent;
			if (e->inflight == 0)
				e->retry = true;
			sent = e->nbatch;
		} else {
			/* The first one is bad; the rest may be fine. */
			fail_locked(e, e->batch[sent]->data, ret);
			e->inflight--;
			sent++;
		}
		pthread_mutex_unlock(&e->lock);
	}
	e->nbatch = 0;
}

/* Call done() for what io_submit refused, at most nr per pass. */
static void native_complete_failed(struct native_engine *e)
{
	struct native_done *d = e->done;
	struct native_slot *slot;
	unsigned n = 0;

	pthread_mutex_lock(&e->lock);
	while ((slot = e->failed) && n < e->nr) {
		e->failed = slot->next;
		d[n].eio = slot->eio;
		d[n].ret = slot->err;
		n++;
		/* done() may submit again and reuse the slot. */
		slot_put_locked(e, slot);
	}
	pthread_mutex_unlock(&e->lock);
	for (unsigned i = 0; i < n; i++)
		d[i].eio->done(d[i].eio, d[i].ret);
}

/* Collect finished requests; the number of done() calls to make. */
static unsigned native_reap(struct native_engine *e)
{
	struct timespec zero = {0, 0};
	int n;

	do {
		n = io_getevents(e->ctx, 0, e->nr, e->events, &zero);
	} while (n == -EINTR);
	if (n <= 0)
		return 0;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < n; i++) {
		struct native_slot *slot = e->events[i].data;

		e->done[i].eio = slot->eio;
		e->done[i].ret = (ssize_t)(long)e->events[i].res;
		slot_put_locked(e, slot);
	}
	e->inflight -= (unsigned)n;
	pthread_mutex_unlock(&e->lock);
	return (unsigned)n;
}

/* Sleep until the eventfd fires, unless there is work already; false
 * when it is time to exit. */
static bool native_sleep(struct native_engine *e)
{
	struct pollfd pfd = {.fd = e->efd, .events = POLLIN};
	bool stop, retry, work;
	uint64_t cnt;

	pthread_mutex_lock(&e->lock);
	stop = e->stop;
	retry = e->retry;
	work = e->failed || (e->wait_head && e->inflight < e->nr);
	pthread_mutex_unlock(&e->lock);
	if (stop)
		return false;
	/* After a refusal with nothing in flight, no event will come to
	 * say that the kernel has room again: look again soon. */
	if (retry) {
		if (poll(&pfd, 1, 1) <= 0)
			return true;
	} else if (work) {
		return true;
	}
	/* Blocking read: resets the counter that every completion (and
	 * native_wake) raises, so no wakeup between two reaps is lost. */
	if (read(e->efd, &cnt, sizeof(cnt)) < 0)
		return true;
	return true;
}

static void native_free(struct native_engine *e)
{
	struct native_slot *slot;

	while ((slot = e->free_slots)) {
		e->free_slots = slot->next;
		free(slot);
	}
	if (e->ctx)
		io_destroy(e->ctx);
	if (e->efd >= 0)
		close(e->efd);
	pthread_mutex_destroy(&e->lock);
	free(e->events);
	free(e->done);
	free(e->batch);
	free(e);
}

static void *native_reaper(void *arg)
{
	struct native_engine *e = arg;

	reaper_of = e;
	while (!e->self_destroy) {
		unsigned n;

		native_flush(e);
		native_complete_failed(e);
		if (e->self_destroy)
			break;
		n = native_reap(e);
		if (n == 0) {
			if (!native_sleep(e))
				break;
			continue;
		}
		for (unsigned i = 0; i < n; i++)
			e->done[i].eio->done(e->done[i].eio, e->done[i].ret);
	}
	reaper_of = NULL;
	if (e->self_destroy) {
		pthread_detach(pthread_self());
		native_free(e);
	}
	return NULL;
}

static int native_start_reaper(struct native_engine *e)
{
	sigset_t all, old;
	int ret;

	/* Signals are for the main thread; the reaper has none to handle. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&e->reaper, NULL, native_reaper, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == 0)
		pthread_setname_np(e->reaper, "vbd-native");
	return -ret;
}

/*
 * The context's size counts against the system-wide fs.aio-max-nr
 * (65536 by default, and the kernel reserves about twice what is asked),
 * so ask for what the depth needs and settle for less if refused.
 */
static int native_setup_ctx(struct native_engine *e, unsigned depth,
			    struct vs_error **errp)
{
	unsigned nr = MIN_EVENTS;
	int ret;

	while (nr < depth && nr < MAX_EVENTS)
		nr *= 2;
	for (;;) {
		ret = io_setup((int)nr, &e->ctx);
		if (ret != -EAGAIN || nr <= 16)
			break;
		nr /= 2;
	}
	if (ret == 0) {
		e->nr = nr;
		return 0;
	}
	e->ctx = 0;
	if (ret == -EAGAIN)
		return vs_error_set(
			errp, EAGAIN,
			"aio=native: cannot set up a Linux AIO context: the "
			"system-wide limit fs.aio-max-nr is reached (see "
			"/proc/sys/fs/aio-nr)");
	if (ret == -ENOSYS)
		return vs_error_set(
			errp, ENOSYS,
			"aio=native: this kernel has no Linux AIO (io_setup: "
			"%s); use aio=io_uring or aio=threads",
			strerror(ENOSYS));
	return vs_error_set_errno(
		errp, ret,
		"aio=native: cannot set up a Linux AIO context of %u "
		"requests",
		nr);
}

static int native_create(struct vbd_engine **out, unsigned depth, bool direct,
			 struct vs_error **errp)
{
	struct native_engine *e;
	int ret;

	if (!direct)
		return vs_error_set(
			errp, EINVAL,
			"aio=native was specified, but it requires "
			"cache.direct=on (O_DIRECT): without it Linux AIO "
			"blocks in io_submit; use aio=io_uring or "
			"aio=threads");
	e = calloc(1, sizeof(*e));
	if (!e)
		return vs_error_set(errp, ENOMEM, "aio=native: out of memory");
	e->base.ops = &vbd_engine_native;
	e->efd = -1;
	pthread_mutex_init(&e->lock, NULL);
	ret = native_setup_ctx(e, depth, errp);
	if (ret < 0)
		goto fail;
	e->efd = eventfd(0, EFD_CLOEXEC);
	if (e->efd < 0) {
		ret = vs_error_set_errno(
			errp, errno, "aio=native: cannot create an eventfd");
		goto fail;
	}
	e->events = calloc(e->nr, sizeof(*e->events));
	e->done = calloc(e->nr, sizeof(*e->done));
	e->batch = calloc(e->nr, sizeof(*e->batch));
	if (!e->events || !e->done || !e->batch) {
		ret = vs_error_set(errp, ENOMEM, "aio=native: out of memory");
		goto fail;
	}
	ret = native_start_reaper(e);
	if (ret < 0) {
		vs_error_set_errno(
			errp, ret,
			"aio=native: cannot start the reaper thread");
		goto fail;
	}
	*out = (struct vbd_engine *)e;
	return 0;
fail:
	native_free(e);
	return ret;
}

static void native_destroy(struct vbd_engine *ve)
{
	struct native_engine *e = (struct native_engine *)ve;

	/* From a done() on the reaper: it cannot join itself, so it cleans
	 * up once the callback returns. */
	if (reaper_of == e) {
		e->self_destroy = true;
		return;
	}
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_mutex_unlock(&e->lock);
	native_wake(e);
	pthread_join(e->reaper, NULL);
	native_free(e);
}

const struct vbd_engine_ops vbd_engine_native = {
	.name = "native",
	.aio = VBD_AIO_NATIVE,
	.create = native_create,
	.submit = native_submit,
	.destroy = native_destroy,
};
