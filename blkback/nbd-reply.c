/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NBD replies: building them (simple, or structured chunks once the
 * client negotiated them) and sending them.
 *
 * A finished request is sent at once by the thread that finished it
 * (an engine thread, mostly) when nothing else is being sent: one
 * nonblocking sendmsg, no thread hand-off.  If the socket is full, or
 * another reply is on its way out, the slot joins the queue and the
 * writer thread sends it, blocking as long as the client takes.  So an
 * engine thread never waits for a client, and the `sending` flag keeps
 * two replies from interleaving on the wire.
 *
 * The cork.  A client with many requests in flight sends them in
 * bursts, and the reader finds several in one socket read; most reads
 * of cached data then finish inline, in the reader itself.  Sent one
 * by one, each reply would cost a sendmsg and could wake the client
 * for just one reply.  So while the reader has received requests to
 * work through, small replies (whoever finishes them) are held, and
 * the reader sends them with one sendmsg before it next reads the
 * socket or waits for a slot or memory, or once it holds NBD_CORK_MAX
 * of them or NBD_CORK_BYTES.  A reply is held at most as long as the
 * reader takes to submit the requests that came with it.  Large
 * replies are not held: their copy to the socket overlaps the reader's
 * next read.  Measured with fio's nbd engine (4 KiB random reads at
 * depth 32 of a cached qcow2, 2 CPUs shared with other work, the same
 * load for both): server CPU per request 7-13 us -> 6-11 us, system
 * calls per request 2.1-2.6 -> 1.3-2.2, IOPS 10-25% higher.
 *
 * The same list holds the small replies that a completion batch
 * finishes (vbd_batch_defer: the io_uring reaper's batch of CQEs, a
 * write lane's batch of writes) while the reader is not corked:
 * the batch's thread sends them with one sendmsg when the batch ends,
 * instead of one per reply, each waking the client, whose wake-up
 * then preempts the thread that should go on writing.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/cleanup.h"
#include "nbd-conn.h"

/* Replies per sendmsg from the writer. */
#define WRITER_BATCH 64

static int nbd_errno(int err)
{
	switch (-err) {
	case 0: return 0;
	case EPERM:
	case EROFS:
	case EACCES: return NBD_EPERM;
	case ENOMEM: return NBD_ENOMEM;
	case EINVAL: return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG: return NBD_ENOSPC;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}

static const char *cmd_name(uint16_t type)
{
	static const char *const names[] = {
		[NBD_CMD_READ] = "read",
		[NBD_CMD_WRITE] = "write",
		[NBD_CMD_DISC] = "disconnect",
		[NBD_CMD_FLUSH] = "flush",
		[NBD_CMD_TRIM] = "trim",
		[NBD_CMD_CACHE] = "cache",
		[NBD_CMD_WRITE_ZEROES] = "write zeroes",
		[NBD_CMD_BLOCK_STATUS] = "block status",
	};

	return type < VS_ARRAY_SIZE(names) ? names[type] : "command";
}

/* An error chunk, with a message a person can read. */
static void build_error_chunk(struct nbd_slot *s,
			      struct nbd_structured_reply *r)
{
	struct nbd_chunk_error e = {.error = htobe32(nbd_errno(s->err))};
	char msg[sizeof(s->hdr) - sizeof(*r) - sizeof(e)];
	const char *why = strerrordesc_np(-s->err);
	int n = snprintf(msg, sizeof(msg), "%s: %s", cmd_name(s->type),
			 why ? why : "error");

	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	e.msg_len = htobe16((uint16_t)n);
	r->type = htobe16(NBD_REPLY_TYPE_ERROR);
	r->length = htobe32(sizeof(e) + (uint32_t)n);
	memcpy(s->hdr, r, sizeof(*r));
	memcpy(s->hdr + sizeof(*r), &e, sizeof(e));
	memcpy(s->hdr + sizeof(*r) + sizeof(e), msg, (size_t)n);
	s->hdr_len = sizeof(*r) + sizeof(e) + (size_t)n;
}

/* Build the reply of a finished slot: the header in s->hdr, and in
 * s->data_len the payload bytes (of s->buf) that follow it. */
static void build_reply(const struct nbd_conn *c, struct nbd_slot *s)
{
	bool is_read = s->type == NBD_CMD_READ;

	if (s->err == 0 && is_read)
		s->data_len = s->len;
	if (!c->structured || (s->err == 0 && !s->data_len)) {
		/* Simple replies also serve structured clients for
		 * everything that carries no payload. */
		struct nbd_simple_reply r = {
			.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
			.error = htobe32((uint32_t)nbd_errno(s->err)),
			.handle = htobe64(s->handle),
		};

		memcpy(s->hdr, &r, sizeof(r));
		s->hdr_len = sizeof(r);
		if (s->err)
			s->data_len = 0;
		return;
	}
	struct nbd_structured_reply r = {
		.magic = htobe32(NBD_STRUCTURED_REPLY_MAGIC),
		.flags = htobe16(NBD_REPLY_FLAG_DONE),
		.handle = htobe64(s->handle),
	};
	if (s->err) {
		s->data_len = 0;
		build_error_chunk(s, &r);
	} else if (is_read) {
		/* One data chunk: the data was read whole before the reply,
		 * so it may carry DONE (and DF is always honoured). */
		uint64_t off = htobe64(s->offset);

		r.type = htobe16(NBD_REPLY_TYPE_OFFSET_DATA);
		r.length = htobe32(8 + s->len);
		memcpy(s->hdr, &r, sizeof(r));
		memcpy(s->hdr + sizeof(r), &off, 8);
		s->hdr_len = sizeof(r) + 8;
	} else {
		r.type = htobe16(NBD_REPLY_TYPE_BLOCK_STATUS);
		r.length = htobe32((uint32_t)s->data_len);
		memcpy(s->hdr, &r, sizeof(r));
		s->hdr_len = sizeof(r);
	}
}

/* The iovecs of a slot's reply, past the `sent` bytes already sent. */
static int slot_iov(const struct nbd_slot *s, struct iovec *iov)
{
	size_t skip = s->sent;
	int n = 0;

	if (skip < s->hdr_len)
		iov[n++] = (struct iovec){(uint8_t *)s->hdr + skip,
					  s->hdr_len - skip};
	skip = skip > s->hdr_len ? skip - s->hdr_len : 0;
	if (s->data_len > skip)
		iov[n++] = (struct iovec){s->buf + skip, s->data_len - skip};
	return n;
}

void nbd_slot_put_locked(struct nbd_conn *c, struct nbd_slot *s)
{
	if (s->temp && s->buf) {
		free(s->buf);
		c->mem -= s->cap;
		s->buf = NULL;
		s->cap = 0;
	}
	s->temp = false;
	s->next = c->free_slots;
	c->free_slots = s;
	c->in_flight--;
}

/*
 * Send a list of finished slots from this thread, with one nonblocking
 * sendmsg; the caller has set c->sending and does not hold the lock.
 * What the socket does not take (a reply cut in the middle, the rest of
 * the list) goes to the front of the writer's queue: replies queued
 * meanwhile came later, and a partly sent one must go on first.
 */
static void send_list(struct nbd_conn *c, struct nbd_slot *list)
{
	struct iovec iov[2 * WRITER_BATCH];
	struct msghdr msg = {.msg_iov = iov};
	struct nbd_slot *s, *next, *rest, *last;
	size_t cnt = 0, left;
	ssize_t n;
	int k = 0;

	for (s = list; s && k < WRITER_BATCH; s = s->next, k++) {
		build_reply(c, s);
		s->sent = 0;
		s->built = true;
		cnt += (size_t)slot_iov(s, iov + cnt);
	}
	rest = s;
	msg.msg_iovlen = cnt;
	do {
		n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		n = 0;

	pthread_mutex_lock(&c->lock);
	c->sending = false;
	if (n < 0 && !c->dead) {
		c->dead = true;
		nbd_conn_kick(c);
	}
	left = n < 0 ? 0 : (size_t)n;
	for (s = list; s != rest; s = next) {
		size_t whole = s->hdr_len + s->data_len;

		if (n >= 0 && left < whole)
			break;
		if (n >= 0)
			left -= whole;
		next = s->next;
		nbd_slot_put_locked(c, s);
	}
	if (n >= 0 && s) {
		/* s was sent in part (or not at all); it and the rest go
		 * first, from the writer. */
		if (s != rest)
			s->sent = left;
		for (last = s; last->next; last = last->next)
			;
		last->next = c->queue_head;
		if (!c->queue_head)
			c->queue_tail = &last->next;
		c->queue_head = s;
	} else {
		/* The socket failed: the replies not sent are dropped. */
		for (; s; s = next) {
			next = s->next;
			nbd_slot_put_locked(c, s);
		}
	}
	pthread_cond_broadcast(&c->reader_cond);
	/* The writer may be waiting for the queue, or for the last
	 * request of a closing connection. */
	if (c->queue_head || c->closing)
		pthread_cond_signal(&c->writer_cond);
	pthread_mutex_unlock(&c->lock);
}

/* Payload bytes of a finished slot's reply, before it is built. */
static size_t reply_payload(const struct nbd_slot *s)
{
	if (s->err)
		return 0;
	return s->type == NBD_CMD_READ ? s->len : s->data_len;
}

/* The end of a completion batch that held replies of c. */
static void batch_flush(void *arg)
{
	struct nbd_conn *c = arg;

	nbd_reply_flush(c, false);
	pthread_mutex_lock(&c->lock);
	c->batch_holds--;
	if (c->closing)
		pthread_cond_signal(&c->writer_cond);
	pthread_mutex_unlock(&c->lock);
}

void nbd_reply_queue(struct nbd_slot *s)
{
	struct nbd_conn *c = s->c;

	s->next = NULL;
	s->built = false;
	pthread_mutex_lock(&c->lock);
	if (s->err == -ESHUTDOWN)
		c->shutdown = true;
	if (!c->dead && reply_payload(s) <= NBD_CORK_SMALL) {
		/* The reader sends it with the others before it waits, or
		 * this thread's completion batch does when it ends. */
		if (!c->corked) {
			int r = vbd_batch_defer(batch_flush, c);

			if (r < 0)
				goto send;
			c->batch_holds += (unsigned)r;
		}
		*c->cork_tail = s;
		c->cork_tail = &s->next;
		__atomic_store_n(&c->cork_bytes,
				 c->cork_bytes + reply_payload(s),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&c->cork_n, c->cork_n + 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->lock);
		return;
	}
send:
	if (c->sending || c->queue_head || c->dead) {
		*c->queue_tail = s;
		c->queue_tail = &s->next;
		pthread_cond_signal(&c->writer_cond);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->sending = true;
	pthread_mutex_unlock(&c->lock);
	send_list(c, s);
}

void nbd_reply_cork(struct nbd_conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->corked = true;
	pthread_mutex_unlock(&c->lock);
}

bool nbd_reply_cork_full(struct nbd_conn *c)
{
	/* Written under the lock by any thread, read here by the reader
	 * without it: an old value only moves the flush by a request. */
	return __atomic_load_n(&c->cork_n, __ATOMIC_RELAXED) >= NBD_CORK_MAX ||
	       __atomic_load_n(&c->cork_bytes, __ATOMIC_RELAXED) >=
		       NBD_CORK_BYTES;
}

void nbd_reply_flush(struct nbd_conn *c, bool uncork)
{
	struct nbd_slot *list, **tail;

	pthread_mutex_lock(&c->lock);
	if (uncork)
		c->corked = false;
	list = c->cork_head;
	if (!list) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	tail = c->cork_tail;
	c->cork_head = NULL;
	c->cork_tail = &c->cork_head;
	__atomic_store_n(&c->cork_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->cork_n, 0, __ATOMIC_RELAXED);
	if (c->sending || c->queue_head || c->dead) {
		*c->queue_tail = list;
		c->queue_tail = tail;
		pthread_cond_signal(&c->writer_cond);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->sending = true;
	pthread_mutex_unlock(&c->lock);
	send_list(c, list);
}

void *nbd_writer_main(void *opaque)
{
	struct nbd_conn *c = opaque;
	struct iovec iov[2 * WRITER_BATCH];

	pthread_setname_np(pthread_self(), "nbd-writer");
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct nbd_slot *list, *s, *next;
		bool dead;

		while ((!c->queue_head || c->sending) &&
		       !(c->closing && c->in_flight == 0 && !c->sending &&
			 c->batch_holds == 0))
			pthread_cond_wait(&c->writer_cond, &c->lock);
		if (!c->queue_head)
			break;
		list = c->queue_head;
		c->queue_head = NULL;
		c->queue_tail = &c->queue_head;
		c->sending = true;
		dead = c->dead;
		pthread_mutex_unlock(&c->lock);

		for (s = list; s && !dead;) {
			int n = 0;

			for (int k = 0; s && k < WRITER_BATCH;
			     s = s->next, k++) {
				if (!s->built) {
					build_reply(c, s);
					s->sent = 0;
				}
				n += slot_iov(s, iov + n);
			}
			if (n && nbd_conn_writev(c, iov, n) < 0) {
				dead = true;
				nbd_conn_kick(c);
			}
		}

		pthread_mutex_lock(&c->lock);
		c->sending = false;
		if (dead)
			c->dead = true;
		for (s = list; s; s = next) {
			next = s->next;
			nbd_slot_put_locked(c, s);
		}
		pthread_cond_broadcast(&c->reader_cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}
