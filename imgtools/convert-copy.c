/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The convert pipeline: worker threads take the next item of the plan,
 * read it, find its zero runs and compress its clusters, all in
 * parallel, then store it.  Stores are made in plan order unless -W
 * (out_of_order) was given: a target written front to back is laid out
 * front to back (a qcow2's clusters in guest order, a streamOptimized
 * VMDK appended in order), as qemu-img lays it out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "convert-priv.h"

enum run_kind {
	RUN_DATA, /* write buf[rel, rel+len) */
	RUN_ZERO, /* make it read as zeros */
	RUN_COMP, /* store comp[slot] (clen bytes) compressed */
	RUN_FD,	  /* copied by the kernel from the item's source file */
};

struct run {
	uint64_t off, len; /* in the target */
	enum run_kind kind;
	size_t slot, clen;
};

/* One worker's buffers, sized once for the largest item. */
struct wk {
	struct cv *cv;
	uint8_t *buf;  /* chunk bytes */
	uint8_t *comp; /* chunk / cluster slots of comp_cap bytes */
	size_t comp_cap;
	struct run *runs;
	size_t nruns, max_runs;
	/* RUN_FD: where the current item's bytes are in its source's host
	 * file (vbd_host_fd). */
	int fd;
	uint64_t fd_off;
};

/* Bytes read at the start of each granule of a kernel-copied item to
 * tell data from zeros: a file system block. */
#define PROBE_SIZE 4096u

/* Record the first error and wake everyone: the copy stops. */
static void fail_locked(struct cv *cv, int ret, struct vs_error *err)
{
	if (!cv->ret) {
		cv->ret = ret;
		cv->err = err;
	} else {
		vs_error_free(err);
	}
	for (unsigned i = 0; i < cv->nturns; i++)
		pthread_cond_broadcast(&cv->turns[i]);
}

static void fail(struct cv *cv, int ret, struct vs_error *err)
{
	pthread_mutex_lock(&cv->lock);
	fail_locked(cv, ret, err);
	pthread_mutex_unlock(&cv->lock);
}

static int io_error(struct cv *cv, int ret, const char *what, const char *file,
		    uint64_t off)
{
	struct vs_error *err = NULL;

	vs_error_set_errno(&err, ret, "%s: error while %s at offset 0x%" PRIx64,
			   file, what, off);
	fail(cv, ret, err);
	return ret;
}

/* Add a run, merging it into the previous one when they are alike. */
static void add_run(struct wk *w, uint64_t off, uint64_t len,
		    enum run_kind kind, size_t slot, size_t clen)
{
	struct run *last = w->nruns ? &w->runs[w->nruns - 1] : NULL;

	if (last && kind != RUN_COMP && last->kind == kind &&
	    last->off + last->len == off) {
		last->len += len;
		return;
	}
	/* max_runs counts one per unit of the chunk, plus the ends. */
	if (w->nruns < w->max_runs)
		w->runs[w->nruns++] = (struct run){off, len, kind, slot, clen};
}

/* Zero runs of whole granules (aligned in the target), data between. */
static void detect_zeros(struct wk *w, const struct cv_item *it)
{
	uint64_t g = w->cv->granule, pos = it->off, end = it->off + it->len;

	while (pos < end) {
		uint64_t next = VS_MIN(end, pos - pos % g + g);
		bool zero = vs_buf_is_zero(w->buf + (pos - it->off),
					   (size_t)(next - pos));

		add_run(w, pos, next - pos, zero ? RUN_ZERO : RUN_DATA, 0, 0);
		pos = next;
	}
}

/*
 * Compress each whole cluster of the item; a zero cluster is left to the
 * zero path (unless -S 0), one that does not shrink and partial ones (a
 * source ending inside a cluster) are written plainly.
 */
static int compress_item(struct wk *w, const struct cv_item *it)
{
	struct cv *cv = w->cv;
	uint64_t cs = cv->cluster, pos = it->off, end = it->off + it->len;
	uint64_t dsize = vbd_size(cv->dst);
	size_t slot = 0;

	while (pos < end) {
		uint64_t next = VS_MIN(end, pos - pos % cs + cs);
		const uint8_t *p = w->buf + (pos - it->off);
		size_t n = (size_t)(next - pos), clen = 0;
		bool whole = pos % cs == 0 && (n == cs || next == dsize);
		int ret;

		if (!cv->zero_data && vs_buf_is_zero(p, n)) {
			add_run(w, pos, n, RUN_ZERO, 0, 0);
		} else if (!whole) {
			add_run(w, pos, n, RUN_DATA, 0, 0);
		} else {
			ret = vbd_compress(cv->dst, p, n,
					   w->comp + slot * w->comp_cap,
					   w->comp_cap, &clen);
			if (ret == -ENOSPC) {
				add_run(w, pos, n, RUN_DATA, 0, 0);
			} else if (ret < 0) {
				return io_error(cv, ret, "compressing",
						vbd_filename(cv->dst), pos);
			} else {
				add_run(w, pos, n, RUN_COMP, slot, clen);
				slot++;
			}
		}
		pos = next;
	}
	return 0;
}

/*
 * A DATA item whose bytes the kernel can copy from the source's file to
 * the target (RUN_FD): nothing goes through our buffers but the start of
 * each granule, which tells data from zeros.  A granule that starts with
 * a block of zeros is read whole and checked as the buffered path checks
 * it; if it holds data after all, it is written from the buffer.
 */
static int prepare_fd(struct wk *w, const struct cv_item *it)
{
	struct cv *cv = w->cv;
	struct vbd *src = cv->src[it->src];
	uint64_t g = cv->granule, pos = it->off, end = it->off + it->len;

	if (!g) {
		add_run(w, pos, it->len, RUN_FD, 0, 0);
		return 0;
	}
	while (pos < end) {
		uint64_t next = VS_MIN(end, pos - pos % g + g);
		uint64_t soff = it->src_off + (pos - it->off);
		uint8_t *p = w->buf + (pos - it->off);
		size_t n = (size_t)(next - pos), probe = VS_MIN(n, PROBE_SIZE);
		enum run_kind kind = RUN_FD;
		int ret = vbd_pread(src, soff, p, probe);

		if (ret == 0 && vs_buf_is_zero(p, probe)) {
			if (n > probe)
				ret = vbd_pread(src, soff + probe, p + probe,
						n - probe);
			if (ret == 0)
				kind = vs_buf_is_zero(p + probe, n - probe)
					       ? RUN_ZERO
					       : RUN_DATA;
		}
		if (ret < 0)
			return io_error(cv, ret, "reading", vbd_filename(src),
					soff);
		add_run(w, pos, n, kind, 0, 0);
		pos = next;
	}
	return 0;
}

/* Read and analyse an item: everything that can run in parallel. */
static int prepare(struct wk *w, const struct cv_item *it)
{
	struct cv *cv = w->cv;
	int ret;

	w->nruns = 0;
	if (it->st == CV_BACKING)
		return 0;
	if (it->st == CV_DATA && cv->fd_copy &&
	    vbd_host_fd(cv->src[it->src], it->src_off, it->len, &w->fd,
			&w->fd_off) == 0)
		return prepare_fd(w, it);
	if (it->st == CV_ZERO && !cv->zero_data) {
		add_run(w, it->off, it->len, RUN_ZERO, 0, 0);
		return 0;
	}
	if (it->st == CV_ZERO) {
		memset(w->buf, 0, (size_t)it->len);
	} else {
		ret = vbd_pread(cv->src[it->src], it->src_off, w->buf,
				(size_t)it->len);
		if (ret < 0)
			return io_error(cv, ret, "reading",
					vbd_filename(cv->src[it->src]),
					it->src_off);
	}
	if (cv->compress)
		return compress_item(w, it);
	if (cv->granule)
		detect_zeros(w, it);
	else
		add_run(w, it->off, it->len, RUN_DATA, 0, 0);
	return 0;
}

/* A RUN_FD run: by the kernel, or through the buffer where the target
 * cannot take the bytes as they are (an existing cluster, a partial
 * one, another format). */
static int store_fd(struct wk *w, const struct cv_item *it, const struct run *r)
{
	struct cv *cv = w->cv;
	uint64_t rel = r->off - it->off;
	int ret = vbd_copy_from_fd(cv->dst, r->off, r->len, w->fd,
				   w->fd_off + rel);

	if (ret != -ENOTSUP)
		return ret;
	ret = vbd_pread(cv->src[it->src], it->src_off + rel, w->buf + rel,
			(size_t)r->len);
	return ret < 0 ? ret
		       : vbd_pwrite(cv->dst, r->off, w->buf + rel,
				    (size_t)r->len);
}

static int store_run(struct wk *w, const struct cv_item *it,
		     const struct run *r)
{
	struct cv *cv = w->cv;

	switch (r->kind) {
	case RUN_FD: return store_fd(w, it, r);
	case RUN_DATA:
		return vbd_pwrite(cv->dst, r->off, w->buf + (r->off - it->off),
				  (size_t)r->len);
	case RUN_ZERO:
		if (cv->zero_init)
			return 0;
		return vbd_write_zeroes(cv->dst, r->off, r->len,
					VBD_ZERO_MAY_UNMAP);
	case RUN_COMP:
		return vbd_pwrite_compressed(cv->dst, r->off,
					     w->comp + r->slot * w->comp_cap,
					     r->clen);
	}
	return -EINVAL;
}

static int store(struct wk *w, const struct cv_item *it)
{
	struct cv *cv = w->cv;
	bool wrote = false;

	for (size_t i = 0; i < w->nruns; i++) {
		const struct run *r = &w->runs[i];
		int ret = store_run(w, it, r);

		if (ret < 0)
			return io_error(cv, ret, "writing",
					vbd_filename(cv->dst), r->off);
		wrote |= r->kind != RUN_ZERO || !cv->zero_init;
	}
	if (wrote && cv->sync_writes) {
		int ret = vbd_flush(cv->dst);

		if (ret < 0)
			return io_error(cv, ret, "flushing",
					vbd_filename(cv->dst), it->off);
	}
	return 0;
}

/* Wait for the item's turn; false when the copy stopped meanwhile. */
static bool wait_turn(struct cv *cv, const struct cv_item *it)
{
	bool go;

	if (cv->o->out_of_order)
		return true;
	pthread_mutex_lock(&cv->lock);
	while (!cv->ret && cv->next_write != it->seq)
		pthread_cond_wait(&cv->turns[it->seq % cv->nturns], &cv->lock);
	go = !cv->ret;
	pthread_mutex_unlock(&cv->lock);
	return go;
}

static void item_done(struct cv *cv, const struct cv_item *it)
{
	pthread_mutex_lock(&cv->lock);
	cv->next_write++;
	cv->done += it->len;
	if (cv->o->progress)
		cv->o->progress(cv->done, cv->total, cv->o->opaque);
	pthread_cond_signal(&cv->turns[cv->next_write % cv->nturns]);
	pthread_mutex_unlock(&cv->lock);
}

/*
 * A target file written in order: the pages of what was pushed two
 * pushes ago (32 MiB back) are mostly written back by now, and dropping them
 * from the page cache gives their memory straight back to the next
 * writes.  Without it a multi-GiB target fills the page cache with
 * pages nobody will read, each taken fresh from free memory; in a VM
 * whose host takes free memory back (free page reporting, a balloon)
 * every such page costs a fault in the host, which was measured at
 * four to seven times the system time of the whole copy.  Best
 * effort: POSIX_FADV_DONTNEED never drops a dirty page or one under
 * writeback, so nothing written is lost, and a failure only leaves the
 * pages cached.
 */
static void drop_behind(struct cv *cv, const struct cv_item *it)
{
	uint64_t from, to, mark = it->off + it->len;
	struct stat st;

	if (pthread_mutex_trylock(&cv->kick_lock))
		return; /* another worker is at it: the next push catches up */
	/* A raw file holds each guest byte at its offset, and in order
	 * everything before this item is stored too.  Other formats
	 * append data (and their tables) as it comes: what was written
	 * ends at the file's end.  A metadata page dropped and written
	 * again later is read back first: a few pages per run. */
	if (!cv->drop_raw)
		mark = fstat(cv->kick_fd, &st) == 0 ? (uint64_t)st.st_size
						    : cv->push_mark[1];
	from = cv->dropped_to;
	to = cv->push_mark[0];
	if (to > from) {
		posix_fadvise(cv->kick_fd, (off_t)from, (off_t)(to - from),
			      POSIX_FADV_DONTNEED);
		cv->dropped_to = to;
	}
	cv->push_mark[0] = cv->push_mark[1];
	cv->push_mark[1] = mark;
	pthread_mutex_unlock(&cv->kick_lock);
}

/* Bytes written between two pushes of the page cache to the disk.  Small
 * enough that the disk starts early and has little left at the final
 * flush, and that what is dropped two pushes back stays a few dozen MiB
 * behind the copy (64 MiB pushes left it idle for the first 64 MiB and
 * kept twice as many pages cached; measured with bench/convert.sh). */
#define KICK_EVERY (16ull << 20)

/*
 * Start the writeback of what the target's file holds dirty, without
 * waiting for it (the final flush waits).  Best effort: a failure only
 * leaves more for the final flush, which reports errors.
 */
static void kick_writeback(struct cv *cv, const struct cv_item *it)
{
	uint64_t n, t0;

	if (cv->kick_fd < 0 || it->st == CV_BACKING ||
	    (it->st == CV_ZERO && cv->zero_init))
		return;
	n = __atomic_add_fetch(&cv->unkicked, it->len, __ATOMIC_RELAXED);
	if (n < KICK_EVERY)
		return;
	__atomic_fetch_sub(&cv->unkicked, n, __ATOMIC_RELAXED);
	t0 = cv_now_ns();
	sync_file_range(cv->kick_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (cv->drop_behind)
		drop_behind(cv, it);
	__atomic_add_fetch(&cv->kick_ns, cv_now_ns() - t0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&cv->kicks, 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
	struct wk *w = arg;
	struct cv *cv = w->cv;

	for (;;) {
		struct vs_error *err = NULL;
		struct cv_item it;
		int ret;

		pthread_mutex_lock(&cv->lock);
		ret = cv->ret ? 0 : cv_plan_next(&cv->plan, &it, &err);
		if (ret < 0)
			fail_locked(cv, ret, err);
		pthread_mutex_unlock(&cv->lock);
		if (ret <= 0)
			break;
		if (prepare(w, &it) < 0 || !wait_turn(cv, &it) ||
		    store(w, &it) < 0)
			break;
		item_done(cv, &it);
		kick_writeback(cv, &it);
	}
	return NULL;
}

static void wk_free(struct wk *w)
{
	free(w->buf);
	free(w->comp);
	free(w->runs);
}

static int wk_init(struct wk *w, struct cv *cv)
{
	uint64_t chunk = cv->plan.chunk, unit = 0;

	*w = (struct wk){.cv = cv, .fd = -1};
	if (cv->compress)
		unit = cv->cluster;
	else if (cv->granule)
		unit = cv->granule;
	/* A unit per run, one more for an unaligned start and one for the
	 * end. */
	w->max_runs = (size_t)(unit ? chunk / unit + 3 : 1);
	w->runs = calloc(w->max_runs, sizeof(*w->runs));
	/* 4 KiB aligned, for targets and sources opened O_DIRECT. */
	if (!w->runs || posix_memalign((void **)&w->buf, 4096, (size_t)chunk))
		return -ENOMEM;
	if (cv->compress) {
		/* Twice a cluster always holds vbd_compress's output. */
		w->comp_cap = (size_t)cv->cluster * 2;
		w->comp =
			malloc((size_t)(chunk / cv->cluster + 2) * w->comp_cap);
		if (!w->comp)
			return -ENOMEM;
	}
	return 0;
}

int cv_copy(struct cv *cv)
{
	unsigned n = cv->o->parallel ? cv->o->parallel : 1, started = 0;
	autofree struct wk *w = calloc(n, sizeof(*w));
	autofree pthread_t *tid = calloc(n, sizeof(*tid));
	autofree pthread_cond_t *turns = calloc(n, sizeof(*turns));
	int ret = 0;

	if (!w || !tid || !turns)
		return vs_error_set(&cv->err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++)
		pthread_cond_init(&turns[i], NULL);
	cv->turns = turns;
	cv->nturns = n;
	for (unsigned i = 0; i < n && ret == 0; i++) {
		ret = wk_init(&w[i], cv);
		if (ret == 0)
			ret = -pthread_create(&tid[i], NULL, worker, &w[i]);
		if (ret == 0)
			started++;
	}
	if (ret < 0) {
		struct vs_error *err = NULL;

		vs_error_set_errno(&err, ret, "cannot start the copy");
		fail(cv, ret, err);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	for (unsigned i = 0; i < n; i++) {
		wk_free(&w[i]);
		pthread_cond_destroy(&turns[i]);
	}
	cv->turns = NULL;
	cv->nturns = 0;
	return cv->ret;
}
