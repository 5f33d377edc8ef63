/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request path: every transport's wire request reaches the vbd
 * through blkback_submit.  Whatever a guest or client put in the request
 * is checked here before any driver sees it, so that each transport only
 * needs to get its own framing right.
 */
#include <errno.h>
#include <limits.h>

#include "../common/atomic.h"
#include "disk-priv.h"

#define KNOWN_FLAGS \
	(BLKBACK_F_FUA | BLKBACK_F_MAY_UNMAP | BLKBACK_F_NO_FALLBACK)

static bool op_writes(enum blkback_op op)
{
	return op == BLKBACK_OP_WRITE || op == BLKBACK_OP_DISCARD ||
	       op == BLKBACK_OP_WRITE_ZEROES;
}

/*
 * The request leaves the path: account it, hand it back, and only then
 * count it out, so that a drain (and the close after it) cannot run while
 * done() still works on something the disk owns.
 */
static void finish(struct blkback_req *req, int ret)
{
	struct blkback_disk *d = req->disk;
	struct blkback_op_stats *s = &d->stats[req->op];
	uint64_t lat = blkback_now_ns() - req->start_ns;

	__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
	if (ret < 0)
		__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
	else if (req->op != BLKBACK_OP_FLUSH)
		__atomic_add_fetch(&s->bytes, req->len, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->lat_ns, lat, __ATOMIC_RELAXED);
	vs_atomic_max(&s->max_lat_ns, lat);
	req->done(req, ret);
	blkback_disk_put_in_flight(d);
}

/* The iov's size, or SIZE_MAX if it is malformed or larger than `cap`
 * (so that hostile lengths cannot wrap the sum). */
static size_t iov_size_capped(const struct iovec *iov, int iovcnt, size_t cap)
{
	size_t total = 0;

	if (!iov || iovcnt < 1 || iovcnt > IOV_MAX)
		return SIZE_MAX;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > cap - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

static int check(const struct blkback_disk *d, const struct blkback_req *req)
{
	enum blkback_op op = req->op;

	if (__atomic_load_n(&d->retired, __ATOMIC_SEQ_CST))
		return -ESHUTDOWN;
	if (req->flags & ~KNOWN_FLAGS)
		return -EINVAL;
	/* FUA is accepted on every operation (NBD requires a server to
	 * take it even where it means nothing); the zeroing flags only
	 * make sense on WRITE_ZEROES. */
	if (op != BLKBACK_OP_WRITE_ZEROES &&
	    (req->flags & (BLKBACK_F_MAY_UNMAP | BLKBACK_F_NO_FALLBACK)))
		return -EINVAL;
	if (op == BLKBACK_OP_FLUSH)
		return 0;
	if (op_writes(op) && d->readonly)
		return -EROFS;
	if (op == BLKBACK_OP_READ || op == BLKBACK_OP_WRITE) {
		if (req->len == 0 || req->len > BLKBACK_MAX_IO)
			return -EINVAL;
		if (iov_size_capped(req->iov, req->iovcnt, BLKBACK_MAX_IO) !=
		    req->len)
			return -EINVAL;
	}
	if (req->len > UINT64_MAX - req->offset)
		return -EINVAL;
	if (req->offset > d->size || req->len > d->size - req->offset)
		return op == BLKBACK_OP_WRITE || op == BLKBACK_OP_WRITE_ZEROES
			       ? -ENOSPC
			       : -EINVAL;
	return 0;
}

static void vreq_done(struct vbd_req *vreq, int ret)
{
	struct blkback_req *req = vreq->opaque;

	/* FUA: the data is written; a flush makes it stable before the
	 * reply.  vreq is free again, so it carries the flush. */
	if (ret == 0 && (req->flags & BLKBACK_F_FUA) && op_writes(req->op) &&
	    vreq->op != VBD_OP_FLUSH) {
		vreq->op = VBD_OP_FLUSH;
		vreq->offset = 0;
		vreq->len = 0;
		vreq->flags = 0;
		vreq->iov = NULL;
		vreq->iovcnt = 0;
		vbd_submit(req->disk->vbd, vreq);
		return;
	}
	finish(req, ret);
}

static const enum vbd_op vbd_ops[BLKBACK_OP_COUNT] = {
	[BLKBACK_OP_READ] = VBD_OP_READ,
	[BLKBACK_OP_WRITE] = VBD_OP_WRITE,
	[BLKBACK_OP_FLUSH] = VBD_OP_FLUSH,
	[BLKBACK_OP_DISCARD] = VBD_OP_DISCARD,
	[BLKBACK_OP_WRITE_ZEROES] = VBD_OP_WRITE_ZEROES,
};

void blkback_submit(struct blkback_disk *d, struct blkback_req *req)
{
	struct vbd_req *vreq = &req->vreq;
	int ret;

	req->disk = d;
	req->start_ns = blkback_now_ns();
	if ((unsigned)req->op >= BLKBACK_OP_COUNT) {
		/* No statistics slot to account it in. */
		req->done(req, -EINVAL);
		return;
	}
	/* Counted in before the retired check (both sequentially
	 * consistent): see blkback_disk_retire. */
	__atomic_add_fetch(&d->in_flight, 1, __ATOMIC_SEQ_CST);
	ret = check(d, req);
	if (ret < 0) {
		finish(req, ret);
		return;
	}
	/* Discard is advisory: a disk whose spec says no-discard keeps its
	 * data and reports success. */
	if (req->op == BLKBACK_OP_DISCARD && !d->discard) {
		finish(req, 0);
		return;
	}
	*vreq = (struct vbd_req){
		.op = vbd_ops[req->op],
		.offset = req->offset,
		.len = req->len,
		.cb = vreq_done,
		.opaque = req,
	};
	if (req->op == BLKBACK_OP_READ || req->op == BLKBACK_OP_WRITE) {
		vreq->iov = req->iov;
		vreq->iovcnt = req->iovcnt;
	}
	if (req->op == BLKBACK_OP_WRITE_ZEROES) {
		if (req->flags & BLKBACK_F_MAY_UNMAP)
			vreq->flags |= VBD_ZERO_MAY_UNMAP;
		if (req->flags & BLKBACK_F_NO_FALLBACK)
			vreq->flags |= VBD_ZERO_NO_FALLBACK;
	}
	if (req->op == BLKBACK_OP_FLUSH)
		vreq->offset = vreq->len = 0;
	vbd_submit(d->vbd, vreq);
}
