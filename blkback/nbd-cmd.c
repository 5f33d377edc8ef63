/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD transmission phase: requests in (the connection's thread),
 * replies out (the writer thread), and between them the request path
 * (blkback_submit), whose completions only queue the slot.
 *
 * What the client controls and how it is bounded: requests in flight
 * (NBD_SLOTS: when all are taken, no more requests are read), payload
 * memory (NBD_CONN_MEM), a READ or WRITE length (BLKBACK_MAX_IO: a larger
 * READ gets EINVAL; a larger WRITE gets EINVAL and the connection closes,
 * since skipping its payload would let a client make us read 4 GiB), the
 * extents of one BLOCK_STATUS reply (NBD_MAX_EXTENTS).  Offsets and
 * lengths are checked by the request path, or here for the commands
 * that do not go through it.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "nbd-conn.h"

/* The CACHE walk's hand-off between submitter and completion. */
enum {
	CACHE_IDLE,	  /* the completion drives the next step */
	CACHE_SUBMITTING, /* the submitter is inside blkback_submit */
	CACHE_CALLED,	  /* the completion ran during the submit */
};

/* Slot buffers are aligned for O_DIRECT engines. */
#define BUF_ALIGN 4096
#define BUF_MIN	  (64u << 10)

#define container_of(p, type, member) \
	((type *)((char *)(p)-offsetof(type, member)))

static void finish(struct nbd_slot *s, int err)
{
	s->err = err;
	nbd_reply_queue(s);
}

/*
 * The reader is about to wait for what replies give back (a slot,
 * memory): send the held ones first, and hold no more until it reads
 * again, or completions would pile up behind the wait.  Under c->lock;
 * true when it dropped the lock (look again).
 */
static bool uncork_locked(struct nbd_conn *c)
{
	if (!c->corked)
		return false;
	pthread_mutex_unlock(&c->lock);
	nbd_reply_flush(c, true);
	pthread_mutex_lock(&c->lock);
	return true;
}

/* Free the buffers of idle slots (memory pressure).  Under c->lock. */
static void trim_idle_buffers(struct nbd_conn *c)
{
	for (struct nbd_slot *s = c->free_slots; s; s = s->next) {
		if (s->buf) {
			free(s->buf);
			c->mem -= s->cap;
			s->buf = NULL;
			s->cap = 0;
		}
	}
}

/*
 * Give the slot a buffer of at least `need` bytes.  Waits while the
 * connection's payload memory is at its limit and other requests may
 * still give some back.
 */
static int slot_buffer(struct nbd_conn *c, struct nbd_slot *s, size_t need)
{
	bool keep = need <= NBD_SLOT_KEEP;
	size_t size;
	void *p;

	if (s->cap >= need)
		return 0;
	if (keep) {
		size = BUF_MIN;
		while (size < need)
			size *= 2;
	} else {
		size = (need + BUF_ALIGN - 1) & ~(size_t)(BUF_ALIGN - 1);
	}
	pthread_mutex_lock(&c->lock);
	if (c->mem - s->cap + size > NBD_CONN_MEM)
		trim_idle_buffers(c);
	while (c->mem - s->cap + size > NBD_CONN_MEM && c->in_flight > 1 &&
	       !c->dead) {
		if (uncork_locked(c))
			continue;
		pthread_cond_wait(&c->reader_cond, &c->lock);
	}
	c->mem = c->mem - s->cap + size;
	pthread_mutex_unlock(&c->lock);

	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
	if (posix_memalign(&p, BUF_ALIGN, size)) {
		pthread_mutex_lock(&c->lock);
		c->mem -= size;
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	s->buf = p;
	s->cap = size;
	s->temp = !keep;
	return 0;
}

/* A free slot, or NULL once the connection is dead. */
static struct nbd_slot *get_slot(struct nbd_conn *c)
{
	struct nbd_slot *s = NULL;

	pthread_mutex_lock(&c->lock);
	while (!c->free_slots && !c->dead) {
		if (uncork_locked(c))
			continue;
		pthread_cond_wait(&c->reader_cond, &c->lock);
	}
	if (!c->dead) {
		s = c->free_slots;
		c->free_slots = s->next;
		c->in_flight++;
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* Completions. */

static void req_done(struct blkback_req *req, int ret)
{
	finish(container_of(req, struct nbd_slot, req), ret);
}

static void cache_step(struct nbd_slot *s);

static void cache_done(struct blkback_req *req, int ret)
{
	struct nbd_slot *s = container_of(req, struct nbd_slot, req);
	bool last;

	if (ret == 0)
		s->cache_pos += req->len;
	last = ret < 0 || s->cache_pos == s->cache_end;
	s->err = ret;
	/* If the submitter is still inside blkback_submit, it drives the
	 * next step (no recursion, and it touches the slot last). */
	if (__atomic_exchange_n(&s->cache_state, CACHE_CALLED,
				__ATOMIC_ACQ_REL) == CACHE_SUBMITTING)
		return;
	if (last)
		nbd_reply_queue(s);
	else
		cache_step(s);
}

/*
 * CACHE reads its range through the slot's buffer, piece by piece, so
 * that the data is in the host's cache (and the format's metadata in
 * its own) when the client comes for it.
 */
static void cache_step(struct nbd_slot *s)
{
	struct nbd_conn *c = s->c;

	for (;;) {
		uint64_t piece = s->cache_end - s->cache_pos;

		if (s->err < 0 || piece == 0) {
			nbd_reply_queue(s);
			return;
		}
		if (piece > s->cap)
			piece = s->cap;
		s->iov = (struct iovec){s->buf, (size_t)piece};
		s->req = (struct blkback_req){
			.op = BLKBACK_OP_READ,
			.offset = s->cache_pos,
			.len = piece,
			.iov = &s->iov,
			.iovcnt = 1,
			.done = cache_done,
		};
		__atomic_store_n(&s->cache_state, CACHE_SUBMITTING,
				 __ATOMIC_RELEASE);
		blkback_submit(c->disk, &s->req);
		if (__atomic_exchange_n(&s->cache_state, CACHE_IDLE,
					__ATOMIC_ACQ_REL) != CACHE_CALLED)
			return;
	}
}

static void do_cache(struct nbd_conn *c, struct nbd_slot *s)
{
	uint64_t size = blkback_disk_size(c->disk);
	uint64_t len = s->len;
	int ret;

	if (s->offset > size || len > size - s->offset) {
		finish(s, -EINVAL);
		return;
	}
	if (len == 0) {
		finish(s, 0);
		return;
	}
	ret = slot_buffer(c, s, len < NBD_SLOT_KEEP ? len : NBD_SLOT_KEEP);
	if (ret < 0) {
		finish(s, ret);
		return;
	}
	s->err = 0;
	s->cache_pos = s->offset;
	s->cache_end = s->offset + len;
	cache_step(s);
}

/* BLOCK_STATUS, answered here from vbd_block_status: the payload is the
 * context id and the descriptors, built in the slot's buffer. */
static void do_block_status(struct nbd_conn *c, struct nbd_slot *s)
{
	struct vbd *vbd = blkback_disk_vbd(c->disk);
	uint64_t size = blkback_disk_size(c->disk);
	uint64_t pos = s->offset, end;
	unsigned max = (s->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_MAX_EXTENTS;
	struct nbd_block_descriptor *desc;
	uint32_t id = htobe32(NBD_META_ID_BASE);
	unsigned n = 0;
	int ret;

	if (!c->meta_base || s->len == 0 || s->offset > size ||
	    s->len > size - s->offset) {
		finish(s, -EINVAL);
		return;
	}
	/* The walk runs here and may read metadata from the disk: the
	 * replies held so far should not wait for it. */
	nbd_reply_flush(c, false);
	ret = slot_buffer(c, s, 4 + NBD_MAX_EXTENTS * sizeof(*desc));
	if (ret < 0) {
		finish(s, ret);
		return;
	}
	memcpy(s->buf, &id, 4);
	desc = (struct nbd_block_descriptor *)(s->buf + 4);
	end = s->offset + s->len;
	/* Bounded work per request, whatever the image's layout: the
	 * client asks again from where the reply ends. */
	for (unsigned calls = 0; pos < end && calls < NBD_MAX_STATUS_CALLS;
	     calls++) {
		struct vbd_extent e;
		uint32_t flags;

		ret = vbd_block_status(vbd, pos, end - pos, &e);
		if (ret < 0)
			break;
		if (e.length == 0) {
			/* A driver must make progress; guard the loop. */
			ret = -EIO;
			break;
		}
		if (e.length > end - pos)
			e.length = end - pos;
		flags = (e.flags & VBD_STATUS_DATA ? 0 : NBD_STATE_HOLE) |
			(e.flags & VBD_STATUS_ZERO ? NBD_STATE_ZERO : 0);
		/* Lengths fit 32 bits: they add up to at most s->len. */
		if (n > 0 && be32toh(desc[n - 1].flags) == flags) {
			desc[n - 1].length =
				htobe32(be32toh(desc[n - 1].length) +
					(uint32_t)e.length);
		} else {
			if (n == max)
				break;
			desc[n].length = htobe32((uint32_t)e.length);
			desc[n].flags = htobe32(flags);
			n++;
		}
		pos += e.length;
	}
	/* An error after some extents still leaves a valid (shorter)
	 * reply: the client asks again from where it ends. */
	if (n == 0) {
		finish(s, ret < 0 ? ret : -EIO);
		return;
	}
	s->data_len = 4 + n * sizeof(*desc);
	finish(s, 0);
}

/* Which command flags each command takes. */
static uint16_t allowed_flags(const struct nbd_conn *c, uint16_t type)
{
	/* FUA is valid on every command once SEND_FUA is advertised. */
	switch (type) {
	case NBD_CMD_READ:
		return NBD_CMD_FLAG_FUA | (c->structured ? NBD_CMD_FLAG_DF : 0);
	case NBD_CMD_WRITE_ZEROES:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE |
		       NBD_CMD_FLAG_FAST_ZERO;
	case NBD_CMD_BLOCK_STATUS:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
	default: return NBD_CMD_FLAG_FUA;
	}
}

static void submit(struct nbd_conn *c, struct nbd_slot *s, enum blkback_op op,
		   unsigned flags)
{
	s->req = (struct blkback_req){
		.op = op,
		.offset = s->offset,
		.len = s->len,
		.flags = flags,
		.done = req_done,
	};
	if (op == BLKBACK_OP_READ || op == BLKBACK_OP_WRITE) {
		s->iov = (struct iovec){s->buf, s->len};
		s->req.iov = &s->iov;
		s->req.iovcnt = 1;
	}
	if (op == BLKBACK_OP_FLUSH)
		s->req.offset = s->req.len = 0;
	blkback_submit(c->disk, &s->req);
}

/* Run one request whose payload (WRITE) is in the slot. */
static void dispatch(struct nbd_conn *c, struct nbd_slot *s)
{
	unsigned fua = s->flags & NBD_CMD_FLAG_FUA ? BLKBACK_F_FUA : 0;
	unsigned zf;
	int ret;

	if (s->flags & ~allowed_flags(c, s->type)) {
		finish(s, -EINVAL);
		return;
	}
	if (blkback_disk_retired(c->disk)) {
		finish(s, -ESHUTDOWN);
		return;
	}
	switch (s->type) {
	case NBD_CMD_READ:
		if (s->len == 0 || s->len > BLKBACK_MAX_IO) {
			finish(s, -EINVAL);
			return;
		}
		ret = slot_buffer(c, s, s->len);
		if (ret < 0) {
			finish(s, ret);
			return;
		}
		submit(c, s, BLKBACK_OP_READ, 0);
		return;
	case NBD_CMD_WRITE: submit(c, s, BLKBACK_OP_WRITE, fua); return;
	case NBD_CMD_FLUSH: submit(c, s, BLKBACK_OP_FLUSH, 0); return;
	case NBD_CMD_TRIM: submit(c, s, BLKBACK_OP_DISCARD, fua); return;
	case NBD_CMD_WRITE_ZEROES:
		zf = fua;
		if (!(s->flags & NBD_CMD_FLAG_NO_HOLE))
			zf |= BLKBACK_F_MAY_UNMAP;
		if (s->flags & NBD_CMD_FLAG_FAST_ZERO)
			zf |= BLKBACK_F_NO_FALLBACK;
		submit(c, s, BLKBACK_OP_WRITE_ZEROES, zf);
		return;
	case NBD_CMD_CACHE: do_cache(c, s); return;
	case NBD_CMD_BLOCK_STATUS: do_block_status(c, s); return;
	default:
		/* Unknown: EINVAL, as the spec asks.  If it had a payload,
		 * the next header will not have the magic and the
		 * connection ends there. */
		finish(s, -EINVAL);
		return;
	}
}

/* The reader. */

/* Read one request and its payload into a slot and run it.  Returns 0 to
 * go on, 1 when the client disconnected cleanly, -errno to hang up. */
static int one_request(struct nbd_conn *c)
{
	struct nbd_request rq;
	struct nbd_slot *s;
	int ret;

	ret = nbd_conn_read(c, &rq, sizeof(rq), true);
	if (ret < 0)
		return ret;
	if (be32toh(rq.magic) != NBD_REQUEST_MAGIC) {
		vs_debug("nbd", "%s: %s: bad request magic 0x%08x",
			 nbd_server_id(c->srv), c->peer, be32toh(rq.magic));
		return -EPROTO;
	}
	if (be16toh(rq.type) == NBD_CMD_DISC)
		return 1;
	s = get_slot(c);
	if (!s)
		return -EPIPE;
	s->handle = be64toh(rq.handle);
	s->offset = be64toh(rq.offset);
	s->len = be32toh(rq.length);
	s->type = be16toh(rq.type);
	s->flags = be16toh(rq.flags);
	s->err = 0;
	s->data_len = 0;

	if (s->type == NBD_CMD_WRITE) {
		if (s->len > BLKBACK_MAX_IO) {
			/* The payload cannot be skipped at a reasonable
			 * cost: answer, then hang up. */
			finish(s, -EINVAL);
			return -EMSGSIZE;
		}
		if (s->len == 0) {
			finish(s, -EINVAL);
			return 0;
		}
		ret = slot_buffer(c, s, s->len);
		if (ret < 0) {
			/* The payload must still be consumed to stay in
			 * step with the client. */
			int r = nbd_conn_skip(c, s->len);

			finish(s, ret);
			return r;
		}
		ret = nbd_conn_read(c, s->buf, s->len, false);
		if (ret < 0) {
			/* Mid-payload disconnect: nothing to answer. */
			pthread_mutex_lock(&c->lock);
			nbd_slot_put_locked(c, s);
			pthread_mutex_unlock(&c->lock);
			return ret;
		}
	}
	dispatch(c, s);
	return 0;
}

void nbd_transmission(struct nbd_conn *c)
{
	int ret;

	c->free_slots = NULL;
	for (int i = NBD_SLOTS - 1; i >= 0; i--) {
		c->slots[i].c = c;
		c->slots[i].next = c->free_slots;
		c->free_slots = &c->slots[i];
	}
	ret = -pthread_create(&c->writer, NULL, nbd_writer_main, c);
	if (ret < 0) {
		vs_log(VS_LOG_ERROR, "nbd", "%s: %s: cannot start a thread: %s",
		       nbd_server_id(c->srv), c->peer, strerror(-ret));
		return;
	}
	vs_debug("nbd", "%s: %s: serving %s", nbd_server_id(c->srv), c->peer,
		 blkback_disk_name(c->disk));
	c->cork_ok = true;
	for (;;) {
		bool stop;

		ret = one_request(c);
		if (ret != 0)
			break;
		if (nbd_reply_cork_full(c))
			nbd_reply_flush(c, false);
		pthread_mutex_lock(&c->lock);
		stop = c->shutdown || c->dead;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
	}
	if (ret < 0 && ret != -ECONNRESET)
		vs_debug("nbd", "%s: %s: stopped reading: %s",
			 nbd_server_id(c->srv), c->peer, strerror(-ret));

	c->cork_ok = false;
	nbd_reply_flush(c, true);
	/* The writer sends what is still in flight, then ends. */
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	pthread_cond_signal(&c->writer_cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->writer, NULL);

	for (int i = 0; i < NBD_SLOTS; i++) {
		free(c->slots[i].buf);
		c->slots[i].buf = NULL;
		c->slots[i].cap = 0;
	}
	c->mem = 0;
}
