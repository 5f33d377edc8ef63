/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img bench: DEPTH request slots, each carrying one request at a
 * time.  A slot's completion callback (on an engine thread) takes the next
 * position under b->lock and resubmits the same slot, so the queue stays
 * full without the main thread, which only starts the slots and sleeps on
 * a condition variable until the last completion.
 *
 * The lock is held for bookkeeping only, never across vbd_submit: with
 * io_uring every callback runs on the one reaper thread and the lock is
 * never contended; with aio=threads it orders the workers.
 *
 * Flushes.  cache=writethrough/directsync chain a flush behind every
 * write in the same slot (the request counts as done when its flush is).
 * --flush-interval adds flushes at the points where the requests still to
 * send are a multiple of the interval: by default the slots park until
 * everything in flight is done, one flush runs, and the slots restart;
 * with no_drain the flush rides along on a slot of its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/cleanup.h"
#include "../vbd/diskspec.h"
#include "bench.h"

struct bench;

struct slot {
	struct vbd_req req; /* first: the callback's req is the slot */
	struct iovec iov;
	struct bench *b;
	struct slot *next;  /* on a to-submit list or b->parked */
	struct slot *tnext; /* on this thread's trampoline */
};

struct bench {
	struct vbd *vbd;
	uint64_t size;
	uint64_t step;
	unsigned count;
	unsigned interval;
	enum vbd_op op;
	bool drain;
	bool flush_each; /* writethrough, directsync */
	bool flush_real; /* false for cache=unsafe */

	pthread_mutex_t lock;
	pthread_cond_t finished_cond;
	/* Everything below is under lock. */
	uint64_t next_off;
	unsigned issued; /* read/write requests handed to slots */
	unsigned completed;
	/* Submitted and not completed, plus one held by the main thread
	 * while it starts the slots. */
	unsigned inflight;
	unsigned last_flush_point; /* `issued` at the last flush point */
	bool draining;		   /* slots park until the flush is done */
	bool flush_busy;	   /* flush_slot is in flight */
	/* no_drain: a flush point passed while flush_slot was busy. */
	bool flush_owed;
	struct slot *parked;
	uint64_t flushes;
	int err; /* first failure, -errno */
	enum vbd_op err_op;
	uint64_t err_off;
	bool finished;
	struct timespec end;

	struct slot flush_slot;
	struct slot *slots; /* [depth] */
};

static const char *const cache_names[] = {
	[IMG_BENCH_CACHE_WRITEBACK] = "writeback",
	[IMG_BENCH_CACHE_NONE] = "none",
	[IMG_BENCH_CACHE_WRITETHROUGH] = "writethrough",
	[IMG_BENCH_CACHE_DIRECTSYNC] = "directsync",
	[IMG_BENCH_CACHE_UNSAFE] = "unsafe",
};

void img_bench_opts_init(struct img_bench_opts *opts)
{
	*opts = (struct img_bench_opts){
		.count = 75000,
		.depth = 64,
		.bufsize = 4096,
		.cache = IMG_BENCH_CACHE_WRITEBACK,
		.aio = VBD_AIO_DEFAULT,
	};
}

int img_bench_cache_from_name(const char *name, enum img_bench_cache *out,
			      struct vs_error **errp)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(cache_names); i++) {
		if (!strcmp(name, cache_names[i])) {
			*out = (enum img_bench_cache)i;
			return 0;
		}
	}
	return vs_error_set(errp, EINVAL,
			    "invalid cache mode '%s': expected none, "
			    "writeback, writethrough, directsync or unsafe",
			    name);
}

const char *img_bench_cache_name(enum img_bench_cache cache)
{
	if ((size_t)cache < VS_ARRAY_SIZE(cache_names))
		return cache_names[cache];
	return "unknown";
}

static bool cache_direct(enum img_bench_cache cache)
{
	return cache == IMG_BENCH_CACHE_NONE ||
	       cache == IMG_BENCH_CACHE_DIRECTSYNC;
}

/*
 * Requests that the vbd completes inside vbd_submit (a zero-length
 * request, one refused by its checks) call back on the submitting thread,
 * and the callback submits again: without this trampoline a run of such
 * requests would recurse COUNT deep.  A submission made from inside
 * another on the same thread is queued here and made by the outer one.
 */
static __thread struct slot *tramp_head;
static __thread bool tramp_busy;

static void submit_slot(struct slot *s)
{
	if (tramp_busy) {
		s->tnext = tramp_head;
		tramp_head = s;
		return;
	}
	tramp_busy = true;
	while (s) {
		vbd_submit(s->b->vbd, &s->req);
		s = tramp_head;
		if (s)
			tramp_head = s->tnext;
	}
	tramp_busy = false;
}

static void submit_list(struct slot *list)
{
	while (list) {
		struct slot *s = list;

		/* Read the link first: once submitted, s may complete and be
		 * linked elsewhere by another thread. */
		list = s->next;
		submit_slot(s);
	}
}

static void push(struct slot **list, struct slot *s)
{
	s->next = *list;
	*list = s;
}

static void flush_done_locked(struct bench *b, struct slot **list);

/* Send a flush for a flush point (or, for cache=unsafe, pretend to). */
static void start_flush_locked(struct bench *b, struct slot **list)
{
	if (!b->flush_real) {
		flush_done_locked(b, list);
		return;
	}
	b->flush_busy = true;
	b->flushes++;
	b->inflight++;
	push(list, &b->flush_slot);
}

/*
 * Give slot s its next read or write, or park it while a drain is on.
 * Returns with s on *list if it is to be submitted (after the lock is
 * dropped).
 */
static void next_request_locked(struct bench *b, struct slot *s,
				struct slot **list)
{
	if (b->err || b->issued == b->count)
		return;
	if (b->interval && b->issued != b->last_flush_point &&
	    (b->count - b->issued) % b->interval == 0) {
		b->last_flush_point = b->issued;
		if (b->drain)
			b->draining = true;
		else if (b->flush_busy)
			b->flush_owed = true;
		else
			start_flush_locked(b, list);
	}
	if (b->draining) {
		push(&b->parked, s);
		return;
	}
	s->req.op = b->op;
	s->req.offset = b->next_off;
	/* Wrap modulo the image size, as qemu-img bench does; the step is
	 * usually below the size, so the division is rare. */
	b->next_off += b->step;
	if (b->next_off >= b->size)
		b->next_off = b->size ? b->next_off % b->size : 0;
	b->issued++;
	b->inflight++;
	push(list, s);
}

static void flush_done_locked(struct bench *b, struct slot **list)
{
	b->flush_busy = false;
	if (b->draining) {
		b->draining = false;
		while (b->parked) {
			struct slot *s = b->parked;

			b->parked = s->next;
			next_request_locked(b, s, list);
		}
	}
	if (b->flush_owed && !b->err) {
		b->flush_owed = false;
		start_flush_locked(b, list);
	}
}

/* After inflight went down: start a drained flush, or end the run. */
static void settle_locked(struct bench *b, struct slot **list)
{
	if (b->inflight == 0 && b->draining && !b->err)
		start_flush_locked(b, list);
	if (b->inflight == 0 && !b->finished) {
		clock_gettime(CLOCK_MONOTONIC, &b->end);
		b->finished = true;
		pthread_cond_signal(&b->finished_cond);
	}
}

static void bench_cb(struct vbd_req *req, int ret)
{
	struct slot *s = (struct slot *)req;
	struct bench *b = s->b;
	struct slot *list = NULL;

	if (ret == 0 && b->flush_each && req->op == VBD_OP_WRITE) {
		req->op = VBD_OP_FLUSH;
		submit_slot(s);
		return;
	}
	pthread_mutex_lock(&b->lock);
	b->inflight--;
	if (ret < 0 && !b->err) {
		b->err = ret;
		b->err_op = req->op;
		b->err_off = req->offset;
	}
	if (s == &b->flush_slot) {
		flush_done_locked(b, &list);
	} else {
		if (ret == 0)
			b->completed++;
		next_request_locked(b, s, &list);
	}
	settle_locked(b, &list);
	pthread_mutex_unlock(&b->lock);
	submit_list(list);
}

static int check_opts(const struct img_bench_opts *o, struct vs_error **errp)
{
	if (o->depth < 1 || o->depth > IMG_BENCH_MAX_DEPTH)
		return vs_error_set(errp, EINVAL,
				    "queue depth %u is out of range (1 to %u)",
				    o->depth, IMG_BENCH_MAX_DEPTH);
	if (o->count > IMG_BENCH_MAX_COUNT)
		return vs_error_set(errp, EINVAL,
				    "request count %u is out of range (0 to "
				    "%u)",
				    o->count, IMG_BENCH_MAX_COUNT);
	if (o->bufsize > IMG_BENCH_MAX_BUFSIZE || o->step > IMG_BENCH_MAX_STEP)
		return vs_error_set(errp, EINVAL,
				    "buffer and step size must be at most %u "
				    "bytes",
				    IMG_BENCH_MAX_BUFSIZE);
	if (o->flush_interval && !o->write)
		return vs_error_set(errp, EINVAL,
				    "a flush interval is only possible in a "
				    "write test");
	if (o->flush_interval && o->flush_interval < o->depth)
		return vs_error_set(errp, EINVAL,
				    "the flush interval (%u) cannot be smaller "
				    "than the queue depth (%u)",
				    o->flush_interval, o->depth);
	if (o->force_share && o->write)
		return vs_error_set(errp, EINVAL,
				    "%s: force-share is only possible in a "
				    "read test (it would let others write "
				    "while we do)",
				    o->filename);
	if (o->aio == VBD_AIO_NATIVE && !cache_direct(o->cache))
		return vs_error_set(errp, EINVAL,
				    "%s: aio=native needs O_DIRECT: use cache "
				    "mode none or directsync",
				    o->filename);
	if ((size_t)o->cache >= VS_ARRAY_SIZE(cache_names))
		return vs_error_set(errp, EINVAL, "unknown cache mode %d",
				    (int)o->cache);
	return 0;
}

static int open_image(const struct img_bench_opts *o, struct vbd **out,
		      struct vs_error **errp)
{
	struct vbd_spec spec = {
		.target = (char *)o->filename,
		.format = (char *)o->format,
		.readonly = !o->write,
		.devnum = -1,
		.discard = VBD_UNSET,
		.trusted = VBD_UNSET,
	};
	unsigned flags = 0;

	if (!o->write)
		flags |= VBD_O_RDONLY;
	if (cache_direct(o->cache))
		flags |= VBD_O_DIRECT;
	if (o->force_share)
		flags |= VBD_O_SHARE;
	if (!o->format)
		flags |= VBD_O_PROBE;
	return vbd_open(&spec, flags, o->aio, out, errp);
}

/* One buffer of bufsize per slot, aligned for O_DIRECT; filled now so
 * that no page fault lands inside the timed run. */
static int alloc_buffers(struct bench *b, const struct img_bench_opts *o,
			 void **bufp, struct vs_error **errp)
{
	size_t align = 4096, total;
	uint32_t ra = vbd_request_align(b->vbd);
	char *buf;

	if (ra > align && (ra & (ra - 1)) == 0)
		align = ra;
	if (__builtin_mul_overflow((size_t)o->bufsize, (size_t)o->depth,
				   &total))
		total = SIZE_MAX;
	if (total == SIZE_MAX ||
	    posix_memalign((void **)&buf, align, total ? total : align))
		return vs_error_set(errp, ENOMEM,
				    "cannot allocate %u buffers of %u bytes",
				    o->depth, o->bufsize);
	memset(buf, o->write ? o->pattern : 0, total);
	*bufp = buf;

	b->slots = calloc(o->depth, sizeof(*b->slots));
	if (!b->slots)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (unsigned i = 0; i < o->depth; i++) {
		struct slot *s = &b->slots[i];

		s->b = b;
		s->iov.iov_base = buf + (size_t)i * o->bufsize;
		s->iov.iov_len = o->bufsize;
		s->req.iov = &s->iov;
		s->req.iovcnt = 1;
		s->req.cb = bench_cb;
	}
	b->flush_slot.b = b;
	b->flush_slot.req.op = VBD_OP_FLUSH;
	b->flush_slot.req.cb = bench_cb;
	return 0;
}

static uint64_t ts_diff_ns(const struct timespec *a, const struct timespec *b)
{
	return (uint64_t)(b->tv_sec - a->tv_sec) * 1000000000u +
	       (uint64_t)b->tv_nsec - (uint64_t)a->tv_nsec;
}

/* Start every slot, then sleep until the last request is done. */
static void run(struct bench *b, unsigned depth, struct timespec *start)
{
	struct slot *list = NULL;

	clock_gettime(CLOCK_MONOTONIC, start);
	/* The main thread's hold on inflight keeps a fast first completion
	 * from declaring the run over before every slot has started. */
	b->inflight = 1;
	for (unsigned i = 0; i < depth; i++) {
		pthread_mutex_lock(&b->lock);
		next_request_locked(b, &b->slots[i], &list);
		pthread_mutex_unlock(&b->lock);
		submit_list(list);
		list = NULL;
	}
	pthread_mutex_lock(&b->lock);
	b->inflight--;
	settle_locked(b, &list);
	pthread_mutex_unlock(&b->lock);
	submit_list(list);

	pthread_mutex_lock(&b->lock);
	while (!b->finished)
		pthread_cond_wait(&b->finished_cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

static int request_error(const struct bench *b, const struct img_bench_opts *o,
			 struct vs_error **errp)
{
	const char *what = b->err_op == VBD_OP_READ    ? "read"
			   : b->err_op == VBD_OP_WRITE ? "write"
						       : "flush";

	if (b->err_op == VBD_OP_FLUSH)
		return vs_error_set_errno(errp, b->err, "%s: flush failed",
					  o->filename);
	if (b->err == -EINVAL &&
	    (b->err_off > b->size || o->bufsize > b->size - b->err_off))
		return vs_error_set(errp, EINVAL,
				    "%s: %s of %u bytes at offset %llu runs "
				    "past the end of the image (%llu bytes): "
				    "choose an offset and step size that keep "
				    "the requests inside it",
				    o->filename, what, o->bufsize,
				    (unsigned long long)b->err_off,
				    (unsigned long long)b->size);
	return vs_error_set_errno(
		errp, b->err, "%s: %s of %u bytes at offset %llu failed",
		o->filename, what, o->bufsize, (unsigned long long)b->err_off);
}

int img_bench_run(const struct img_bench_opts *o,
		  struct img_bench_result *result, struct vs_error **errp)
{
	struct bench b = {
		.count = o->count,
		.step = o->step ? o->step : o->bufsize,
		.interval = o->write ? o->flush_interval : 0,
		.op = o->write ? VBD_OP_WRITE : VBD_OP_READ,
		.drain = !o->no_drain,
		.flush_each =
			o->write && (o->cache == IMG_BENCH_CACHE_WRITETHROUGH ||
				     o->cache == IMG_BENCH_CACHE_DIRECTSYNC),
		.flush_real = o->cache != IMG_BENCH_CACHE_UNSAFE,
		.next_off = o->offset,
	};
	autofree void *buf = NULL;
	struct timespec start;
	int ret;

	ret = check_opts(o, errp);
	if (ret < 0)
		return ret;
	ret = open_image(o, &b.vbd, errp);
	if (ret < 0)
		return ret;
	b.size = vbd_size(b.vbd);
	if (o->count &&
	    (o->offset > b.size || o->bufsize > b.size - o->offset)) {
		ret = vs_error_set(errp, EINVAL,
				   "%s: the first request (%u bytes at offset "
				   "%llu) runs past the end of the image "
				   "(%llu bytes)",
				   o->filename, o->bufsize,
				   (unsigned long long)o->offset,
				   (unsigned long long)b.size);
		goto out_close;
	}
	ret = alloc_buffers(&b, o, &buf, errp);
	if (ret < 0)
		goto out_close;
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.finished_cond, NULL);

	if (o->on_start)
		o->on_start(o, b.size, o->opaque);
	run(&b, o->depth < o->count ? o->depth : o->count, &start);

	if (b.err) {
		ret = request_error(&b, o, errp);
	} else if (o->write && b.flush_real && !b.flush_each) {
		/* Outside the timing, as qemu-img does when it closes the
		 * image: the data written must reach the disk.  (With a
		 * flush after every write there is nothing left.) */
		ret = vbd_flush(b.vbd);
		if (ret < 0)
			vs_error_set_errno(errp, ret, "%s: flush failed",
					   o->filename);
	}
	if (ret == 0) {
		*result = (struct img_bench_result){
			.requests = b.completed,
			.flushes = b.flushes + (b.flush_each ? b.completed : 0),
			.elapsed_ns = ts_diff_ns(&start, &b.end),
		};
	}
	/* Close first: it waits until every callback has returned, and only
	 * then are the lock and the slots free to go. */
	vbd_close(b.vbd);
	b.vbd = NULL;
	pthread_cond_destroy(&b.finished_cond);
	pthread_mutex_destroy(&b.lock);
	free(b.slots);
	return ret;
out_close:
	vbd_close(b.vbd);
	free(b.slots);
	return ret;
}
