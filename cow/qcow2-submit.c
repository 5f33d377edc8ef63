/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The asynchronous path for guest I/O (the driver's .submit), and the
 * gate that keeps a freed cluster from being handed out while I/O
 * aimed at it may still be in flight.
 *
 * Without .submit every request would hop to the vbd worker pool and
 * run the synchronous callbacks there.  Most guest requests need no
 * metadata I/O at all: a read of data clusters whose L2 table is
 * cached, or a write in place to a cluster the image owns alone.  Those
 * are translated here, in the submitting thread, and go straight to the
 * image file's own asynchronous path (the raw vbd: io_uring), one child
 * request per run of contiguous host bytes; the last child to finish
 * completes the guest's request.  Ranges that read as zeros are filled
 * here.  Writes in place to the page cache of a file system without
 * RWF_NOWAIT writes (ext4) go to the image's lane instead (below).
 * Anything else (an L2 table not in the cache, compressed clusters, the
 * backing file, allocating or copying writes, discard, write_zeroes,
 * flush) goes to the pool as before: the translation looks at the whole
 * request before any I/O starts, so the fallback takes the request
 * whole.
 *
 * The gate.  A cluster a write or discard stops using is released at
 * the next metadata flush (qcow2-flush.c, apply_frees) and may then be
 * allocated again for other data.  A request that translated its range
 * before the table changed may still read or write the old cluster: it
 * must be done before the cluster is released.  A read-write lock held
 * for the request cannot do that for requests that finish on another
 * thread, so every request that translates without the writers' lock
 * (reads, and writes in place, synchronous or not) counts itself in
 * the gate's current epoch until its I/O is done.  Releasing starts a
 * new epoch and waits until the old one's count reaches zero; requests
 * that come meanwhile count in the new epoch, so a steady stream of
 * them cannot starve the flush, and they translated after the tables
 * changed.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "qcow2.h"

/* The gate. */

int qcow2_gate_init(struct qcow2_gate *g)
{
	memset(g, 0, sizeof(*g));
	if (pthread_mutex_init(&g->lock, NULL))
		return -ENOMEM;
	if (pthread_cond_init(&g->drained, NULL)) {
		pthread_mutex_destroy(&g->lock);
		return -ENOMEM;
	}
	g->ready = true;
	return 0;
}

void qcow2_gate_destroy(struct qcow2_gate *g)
{
	if (!g->ready)
		return;
	pthread_cond_destroy(&g->drained);
	pthread_mutex_destroy(&g->lock);
	g->ready = false;
}

/*
 * The epoch is read again after counting in: a drain that started in
 * between may already have seen the old count at zero, and would not
 * wait for this request.  Everything is sequentially consistent, so
 * that "counted, then saw the epoch unchanged" orders this request's
 * translation after every earlier drain and its count before every
 * later one.
 */
unsigned qcow2_gate_enter(struct qcow2_gate *g)
{
	for (;;) {
		unsigned e = __atomic_load_n(&g->epoch, __ATOMIC_SEQ_CST) & 1;

		__atomic_add_fetch(&g->count[e], 1, __ATOMIC_SEQ_CST);
		if ((__atomic_load_n(&g->epoch, __ATOMIC_SEQ_CST) & 1) == e)
			return e;
		qcow2_gate_leave(g, e);
	}
}

void qcow2_gate_leave(struct qcow2_gate *g, unsigned e)
{
	/* The drainer sets `waiting` before it looks at the count, and
	 * this side looks at `waiting` after the count went down: one of
	 * the two sees the other.  The broadcast takes the mutex, so it
	 * cannot fall between the drainer's look and its wait. */
	if (__atomic_sub_fetch(&g->count[e], 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&g->waiting, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&g->lock);
		pthread_cond_broadcast(&g->drained);
		pthread_mutex_unlock(&g->lock);
	}
}

/* Only one drainer at a time: callers hold w_lock. */
void qcow2_gate_drain(struct qcow2_gate *g)
{
	unsigned old = __atomic_fetch_add(&g->epoch, 1, __ATOMIC_SEQ_CST) & 1;

	if (!__atomic_load_n(&g->count[old], __ATOMIC_SEQ_CST))
		return;
	pthread_mutex_lock(&g->lock);
	__atomic_store_n(&g->waiting, true, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&g->count[old], __ATOMIC_SEQ_CST))
		pthread_cond_wait(&g->drained, &g->lock);
	__atomic_store_n(&g->waiting, false, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&g->lock);
}

/* Translation. */

/*
 * More pieces than this and the request is not the common case: the
 * pool takes it (its cost no longer dominates such a request).
 */
#define FAST_MAX_PIECES 32
/* L2 entries copied at once from a cached table. */
#define FAST_BATCH 64

enum piece_kind {
	PIECE_HOST, /* bytes at `host` in the image file */
	PIECE_ZERO, /* reads as zeros */
};

struct piece {
	enum piece_kind kind;
	uint64_t host;
	size_t skip; /* where it starts in the request */
	size_t len;
};

struct plan {
	struct piece p[FAST_MAX_PIECES];
	int n;
};

/* Outcomes of translating a request (besides -errno). */
enum {
	PLAN_OK = 0,
	PLAN_SLOW = 1, /* not the common case: the pool takes it */
	SENT_DONE = 2, /* fast_send: transferred already */
};

/* Add bytes to the plan, joined to the last piece when they follow it. */
static int plan_add(struct plan *pl, enum piece_kind kind, uint64_t host,
		    size_t skip, size_t len)
{
	struct piece *last = pl->n ? &pl->p[pl->n - 1] : NULL;

	if (last && last->kind == kind && last->skip + last->len == skip &&
	    (kind == PIECE_ZERO || last->host + last->len == host)) {
		last->len += len;
		return PLAN_OK;
	}
	if (pl->n == FAST_MAX_PIECES)
		return PLAN_SLOW;
	pl->p[pl->n++] = (struct piece){kind, host, skip, len};
	return PLAN_OK;
}

/*
 * Copy `n` entries from index `idx` of the table at `l2off`, only if
 * the table is in the cache: reading it would block the submitter.
 * The lock is only ever held for memory work or by a pool thread's
 * metadata read, never across anything that waits for this thread.
 */
static bool cached_entries(struct qcow2 *s, uint64_t l2off, uint32_t idx,
			   uint32_t n, uint64_t *out)
{
	struct qcow2_meta_slot *sl;

	pthread_mutex_lock(&s->l2_lock);
	sl = qcow2_cache_find(&s->l2c, l2off);
	if (sl)
		memcpy(out, sl->table + (size_t)idx * s->l2_words,
		       (size_t)n * s->l2_words * sizeof(uint64_t));
	pthread_mutex_unlock(&s->l2_lock);
	return sl != NULL;
}

/*
 * Plan the read of guest bytes [pos, pos+len) of one cluster, whose
 * entry is `le` (in table `l2off` at `idx`, 0 for no table), unit by
 * unit (subclusters with extended L2 entries).
 */
static int plan_read_cluster(struct qcow2 *s, struct plan *pl, uint64_t l2off,
			     uint32_t idx, const struct qcow2_l2e *le,
			     uint64_t pos, size_t len, size_t skip)
{
	uint64_t usize = 1ull << s->sc_bits;
	uint64_t fsize = __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE);
	size_t done = 0;

	while (done < len) {
		uint64_t p = pos + done, in = p & (usize - 1);
		size_t m = (size_t)VS_MIN((uint64_t)(len - done), usize - in);
		uint32_t sc =
			(uint32_t)((p & (s->cluster_size - 1)) >> s->sc_bits);
		struct qcow2_run r = {.type = QCOW2_UNALLOCATED};
		uint64_t h;
		size_t avail;
		int ret;

		if (l2off) {
			ret = qcow2_l2_classify(s, l2off, idx, le, sc, &r);
			if (ret < 0)
				return ret;
		}
		switch (r.type) {
		case QCOW2_COMPRESSED: return PLAN_SLOW;
		case QCOW2_UNALLOCATED:
			if (s->backing)
				return PLAN_SLOW;
			/* fall through */
		case QCOW2_ZERO:
			ret = plan_add(pl, PIECE_ZERO, 0, skip + done, m);
			break;
		case QCOW2_NORMAL:
			/* Bytes past the end of the file read as zeros. */
			h = r.host + in;
			avail = h < fsize
					? (size_t)VS_MIN((uint64_t)m, fsize - h)
					: 0;
			ret = avail ? plan_add(pl, PIECE_HOST, h, skip + done,
					       avail)
				    : PLAN_OK;
			if (ret == PLAN_OK && avail < m)
				ret = plan_add(pl, PIECE_ZERO, 0,
					       skip + done + avail, m - avail);
			break;
		default: return PLAN_SLOW;
		}
		if (ret)
			return ret;
		done += m;
	}
	return PLAN_OK;
}

/* Plan the write in place of guest bytes [pos, pos+len) of one cluster. */
static int plan_write_cluster(struct qcow2 *s, struct plan *pl, bool owned,
			      const struct qcow2_l2e *le, uint64_t pos,
			      size_t len, size_t skip)
{
	uint64_t host = qcow2_inplace_host(s, le, owned, pos, len);

	/* The image file's range check must not refuse it either (a
	 * cluster cut short by the end of the file is the locked path's
	 * to grow). */
	if (!host || host + len > vbd_size(s->file))
		return PLAN_SLOW;
	return plan_add(pl, PIECE_HOST, host, skip, len);
}

/*
 * Translate the whole request [offset, offset+len) from cached tables
 * only.  PLAN_SLOW when any of it needs the pool, -errno for bad
 * metadata (logged and marked by the classification, as the
 * synchronous path would).
 */
static int plan_request(struct qcow2 *s, bool write, uint64_t offset,
			size_t len, struct plan *pl)
{
	uint64_t cs = s->cluster_size, ents[FAST_BATCH * 2];
	uint32_t have = 0, first = 0;
	uint64_t cur_l2 = UINT64_MAX;
	size_t done = 0;

	pl->n = 0;
	while (done < len) {
		uint64_t pos = offset + done, l2off;
		size_t m = (size_t)VS_MIN((uint64_t)(len - done),
					  cs - (pos & (cs - 1)));
		uint32_t idx = qcow2_l2_index(s, pos);
		struct qcow2_l2e le = {0};
		bool owned;
		int ret =
			qcow2_l2_table_of(s, s->filename, pos, &l2off, &owned);

		if (ret < 0)
			return ret;
		if (!l2off && write)
			return PLAN_SLOW;
		if (l2off) {
			/* Entries come in batches from one table. */
			if (l2off != cur_l2 || idx < first ||
			    idx >= first + have) {
				uint64_t left = len - done;
				uint32_t want = (uint32_t)VS_MIN(
					(left + (pos & (cs - 1)) + cs - 1) / cs,
					(uint64_t)FAST_BATCH);

				want = VS_MIN(want, (1u << s->l2_bits) - idx);
				if (!cached_entries(s, l2off, idx, want, ents))
					return PLAN_SLOW;
				cur_l2 = l2off;
				first = idx;
				have = want;
			}
			le.e = ents[(size_t)(idx - first) * s->l2_words];
			if (s->l2_words > 1)
				le.bm = ents[(size_t)(idx - first) * 2 + 1];
		}
		ret = write ? plan_write_cluster(s, pl, owned, &le, pos, m,
						 done)
			    : plan_read_cluster(s, pl, l2off, idx, &le, pos, m,
						done);
		if (ret)
			return ret;
		done += m;
	}
	return PLAN_OK;
}

/* Submission. */

/*
 * One guest request on its way: the children that carry its pieces to
 * the image file, and their iovec slices.  `pending` counts the
 * children not yet done plus one for the submitter, so that the
 * request cannot complete while children are still being sent.
 */
struct fast_io {
	struct vbd_req *req;
	struct qcow2_gate *gate;
	unsigned epoch;
	int pending;
	int err; /* the first error, 0 if none */
	struct vbd_req *child;
	struct iovec *iov;
};

/*
 * Drop one reference; the last completes the guest's request.  The
 * gate is left first: the request's callback may do anything, even a
 * synchronous flush that drains the gate.
 */
static void fast_put(struct fast_io *f)
{
	struct vbd_req *req;
	int err;

	if (__atomic_sub_fetch(&f->pending, 1, __ATOMIC_ACQ_REL))
		return;
	req = f->req;
	err = __atomic_load_n(&f->err, __ATOMIC_ACQUIRE);
	qcow2_gate_leave(f->gate, f->epoch);
	free(f);
	vbd_req_complete(req, err);
}

static void fast_fail(struct fast_io *f, int ret)
{
	int zero = 0;

	__atomic_compare_exchange_n(&f->err, &zero, ret, false,
				    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

static void child_done(struct vbd_req *child, int ret)
{
	struct fast_io *f = child->opaque;

	if (ret < 0)
		fast_fail(f, ret);
	fast_put(f);
}

/* Children and iovec room for `n` pieces of a request of `iovcnt`
 * entries: each piece boundary splits at most one entry. */
static struct fast_io *fast_alloc(int n, int iovcnt)
{
	size_t niov = (size_t)iovcnt + (size_t)n;
	size_t bytes = sizeof(struct fast_io) + sizeof(struct vbd_req) * n +
		       sizeof(struct iovec) * niov;
	struct fast_io *f = malloc(bytes);

	if (!f)
		return NULL;
	f->child = (struct vbd_req *)(f + 1);
	f->iov = (struct iovec *)(f->child + n);
	return f;
}

/*
 * A request of one piece, tried right here when the host file's pages
 * are in the page cache: preadv2/pwritev2 with RWF_NOWAIT copy them
 * without waiting for any I/O, or refuse (EAGAIN) when they would wait.
 * A hit costs no thread hop at all, where the engine's reaper (or a
 * pool worker) would add one.  Returns true when the whole piece was
 * transferred.  A short transfer, a refusal or an error leaves it to the
 * asynchronous path, which does it again whole: the same bytes to the
 * same place.
 */
static bool try_nowait(struct qcow2 *s, struct vbd_req *req,
		       const struct piece *p)
{
	bool write = req->op == VBD_OP_WRITE;
	unsigned kind = write ? QCOW2_NOWAIT_WRITE : QCOW2_NOWAIT_READ;
	uint64_t off;
	ssize_t n;
	int fd;

	if ((__atomic_load_n(&s->nowait_off, __ATOMIC_RELAXED) & kind) ||
	    p->host > INT64_MAX ||
	    vbd_host_fd(s->file, p->host, p->len, &fd, &off) < 0)
		return false;
	n = write ? pwritev2(fd, req->iov, req->iovcnt, (off_t)off, RWF_NOWAIT)
		  : preadv2(fd, req->iov, req->iovcnt, (off_t)off, RWF_NOWAIT);
	if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
		/* This file system (or kernel) has no such I/O: never
		 * again for this image. */
		__atomic_or_fetch(&s->nowait_off, kind, __ATOMIC_RELAXED);
	return n >= 0 && (size_t)n == p->len;
}

/*
 * Send the planned pieces: zeros filled now, host pieces as children.
 * Returns -errno when nothing was sent (the caller completes the
 * request), SENT_DONE when it is done already (the caller completes it),
 * else 0.
 */
static int fast_send(struct qcow2 *s, struct vbd_req *req,
		     const struct plan *pl, unsigned epoch)
{
	int nhost = 0, used = 0, k = 0;
	struct fast_io *f;

	for (int i = 0; i < pl->n; i++)
		nhost += pl->p[i].kind == PIECE_HOST;
	for (int i = 0; i < pl->n; i++)
		if (pl->p[i].kind == PIECE_ZERO)
			vs_iov_memset(req->iov, req->iovcnt, pl->p[i].skip, 0,
				      pl->p[i].len);
	if (nhost == 0 || (pl->n == 1 && try_nowait(s, req, &pl->p[0])))
		return SENT_DONE;
	f = fast_alloc(nhost, req->iovcnt);
	if (!f)
		return -ENOMEM;
	*f = (struct fast_io){
		.req = req,
		.gate = &s->gate,
		.epoch = epoch,
		.pending = nhost + 1,
		.child = f->child,
		.iov = f->iov,
	};
	/* Slice every piece before sending any: a slice that does not fit
	 * fails the request before anything was done. */
	for (int i = 0; i < pl->n; i++) {
		const struct piece *p = &pl->p[i];
		struct vbd_req *c;
		int cnt;

		if (p->kind != PIECE_HOST)
			continue;
		c = &f->child[k++];
		if (pl->n == 1) {
			/* The common case: the guest's list as it is. */
			c->iov = req->iov;
			c->iovcnt = req->iovcnt;
		} else {
			cnt = vs_iov_slice(f->iov + used,
					   req->iovcnt + nhost - used, req->iov,
					   req->iovcnt, p->skip, p->len);
			if (cnt < 0) {
				free(f);
				return -EIO;
			}
			c->iov = f->iov + used;
			c->iovcnt = cnt;
			used += cnt;
		}
		c->op = req->op;
		c->offset = p->host;
		c->len = p->len;
		c->flags = 0;
		c->cb = child_done;
		c->opaque = f;
	}
	for (int i = 0; i < nhost; i++)
		vbd_submit(s->file, &f->child[i]);
	fast_put(f);
	return 0;
}

/*
 * The lane (vbd/lane.c): in-place writes to the page cache of a file
 * system without RWF_NOWAIT writes (ext4) wait in the image's FIFO, and
 * one pool job writes them one after the other, as the file system
 * would anyway, and completes them in batches.
 *
 * The job translates again, under the gate, through the synchronous
 * path (qcow2_pwritev): the submitter's translation only chose the lane,
 * and a request waiting in the FIFO holds nothing, so a flush that
 * drains the gate never waits for a pool worker.
 */
static int lane_write(struct vbd_req *req)
{
	return qcow2_pwritev(req->vbd, req->offset, req->iov, req->iovcnt);
}

int qcow2_lane_init(struct qcow2 *s)
{
	return vbd_lane_init(&s->lane, lane_write);
}

void qcow2_lane_destroy(struct qcow2 *s)
{
	vbd_lane_destroy(&s->lane);
}

static void to_pool(struct vbd_req *req)
{
	int ret = vbd_req_run_on_pool(req);

	if (ret < 0)
		vbd_req_complete(req, ret);
}

void qcow2_submit(struct vbd *vbd, struct vbd_req *req)
{
	struct qcow2 *s = vbd->opaque;
	bool write = req->op == VBD_OP_WRITE;
	/* Buffered writes the file system cannot take without waiting
	 * (ext4 has no RWF_NOWAIT writes): in place, they go to the lane. */
	bool lane = write && !(s->file->flags & VBD_O_DIRECT) &&
		    (__atomic_load_n(&s->nowait_off, __ATOMIC_RELAXED) &
		     QCOW2_NOWAIT_WRITE);
	struct plan pl;
	unsigned epoch;
	int ret;

	if ((req->op != VBD_OP_READ && !write) || req->iovcnt > IOV_MAX ||
	    req->len > SIZE_MAX || (write && (vbd->flags & VBD_O_COMPRESS)))
		return to_pool(req);
	if (write && __atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return vbd_req_complete(req, -EIO);
	/* Counted in before the translation: a cluster it finds stays
	 * this image's until the I/O is done. */
	epoch = qcow2_gate_enter(&s->gate);
	ret = plan_request(s, write, req->offset, (size_t)req->len, &pl);
	if (ret == PLAN_OK && lane) {
		qcow2_gate_leave(&s->gate, epoch);
		return vbd_lane_push(&s->lane, req);
	}
	if (ret == PLAN_OK)
		ret = fast_send(s, req, &pl, epoch);
	if (ret == 0)
		return;
	if (ret == SENT_DONE) {
		qcow2_gate_leave(&s->gate, epoch);
		return vbd_req_complete(req, 0);
	}
	/* Out before the pool path: it may take w_lock and drain. */
	qcow2_gate_leave(&s->gate, epoch);
	if (ret == PLAN_SLOW)
		return to_pool(req);
	vbd_req_complete(req, ret);
}
