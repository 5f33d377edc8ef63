/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One NBD connection: its thread (handshake, then the request reader),
 * and the socket I/O both phases use.  The client is hostile: every read
 * is bounded by what the caller asked for, a client that vanishes ends
 * only its own connection, and a socket write never raises SIGPIPE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/log.h"
#include "nbd-conn.h"

/* How often a reader waiting for a client looks whether its disk was
 * retired (remove-disk waits for connections to let go of it). */
#define IDLE_CHECK_MS 250

/* Bound the handshake (ms, 0: no bound) or, after it, lift the bound:
 * reads check c->deadline_ns, and sends time out (a client that sends
 * options and reads no replies would block the thread forever). */
static void handshake_bound(struct nbd_conn *c, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (long)(ms % 1000) * 1000};

	c->deadline_ns = ms ? blkback_now_ns() + (uint64_t)ms * 1000000 : 0;
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void *conn_main(void *opaque)
{
	struct nbd_conn *c = opaque;
	unsigned ms = nbd_server_handshake_ms(c->srv);
	int ret;

	pthread_setname_np(pthread_self(), "nbd-conn");
	if (ms)
		handshake_bound(c, ms);
	ret = nbd_handshake(c);
	if (ms)
		handshake_bound(c, 0);

	if (ret == -ETIMEDOUT || ret == -EAGAIN)
		vs_warn("%s: %s: no handshake within %u s: closed",
			nbd_server_id(c->srv), c->peer, ms / 1000);
	else if (ret < 0)
		vs_debug("nbd", "%s: %s: handshake ended: %s",
			 nbd_server_id(c->srv), c->peer, strerror(-ret));
	if (ret == 1)
		nbd_transmission(c);
	vs_debug("nbd", "%s: %s: connection closed", nbd_server_id(c->srv),
		 c->peer);
	/* Let the client see the end now, not when the server reaps us. */
	shutdown(c->fd, SHUT_RDWR);
	if (c->disk) {
		blkback_disk_unref(c->disk);
		c->disk = NULL;
	}
	free(c->rbuf);
	c->rbuf = NULL;
	__atomic_store_n(&c->finished, true, __ATOMIC_RELEASE);
	return NULL;
}

int nbd_conn_start(struct nbd_server *srv, int fd, const char *peer,
		   struct nbd_conn **out)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	struct timeval tv = {.tv_usec = IDLE_CHECK_MS * 1000};
	int ret;

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->rbuf = malloc(NBD_RBUF);
	if (!c->rbuf) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->reader_cond, NULL);
	pthread_cond_init(&c->writer_cond, NULL);
	c->queue_tail = &c->queue_head;
	c->cork_tail = &c->cork_head;
	/* Reads wake up this often while the client is silent, so that a
	 * retired disk is let go of (a blocking recv costs one system call
	 * per wake-up, where poll and a nonblocking recv cost two). */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ret = -pthread_create(&c->thread, NULL, conn_main, c);
	if (ret < 0) {
		pthread_cond_destroy(&c->writer_cond);
		pthread_cond_destroy(&c->reader_cond);
		pthread_mutex_destroy(&c->lock);
		free(c->rbuf);
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void nbd_conn_kick(struct nbd_conn *c)
{
	/* Wakes a recv, poll or send blocked on the socket; the fd stays
	 * open (and ours) until nbd_conn_free. */
	shutdown(c->fd, SHUT_RDWR);
}

void nbd_conn_free(struct nbd_conn *c)
{
	pthread_join(c->thread, NULL);
	close(c->fd);
	free(c->meta_export);
	pthread_cond_destroy(&c->writer_cond);
	pthread_cond_destroy(&c->reader_cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int nbd_conn_read(struct nbd_conn *c, void *buf, size_t len, bool idle_check)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n;

		if (c->rpos < c->rlen) {
			size_t k = c->rlen - c->rpos;

			if (k > len)
				k = len;
			memcpy(p, c->rbuf + c->rpos, k);
			c->rpos += k;
			p += k;
			len -= k;
			continue;
		}
		/* Everything received is worked through: the client may
		 * be waiting for the replies held back meanwhile. */
		if (c->corked)
			nbd_reply_flush(c, true);
		if (c->deadline_ns && blkback_now_ns() >= c->deadline_ns)
			return -ETIMEDOUT;
		/* Large payloads go straight to their buffer; small reads
		 * fill the read buffer, so that a batch of requests costs
		 * one system call. */
		if (len >= NBD_RBUF)
			n = recv(c->fd, p, len, 0);
		else
			n = recv(c->fd, c->rbuf, NBD_RBUF, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			/* The receive timeout (IDLE_CHECK_MS) passed. */
			if (idle_check && c->disk &&
			    blkback_disk_retired(c->disk))
				return -ESHUTDOWN;
			continue;
		}
		if (c->cork_ok && !c->corked)
			nbd_reply_cork(c);
		if (len >= NBD_RBUF) {
			p += n;
			len -= (size_t)n;
		} else {
			c->rpos = 0;
			c->rlen = (size_t)n;
		}
	}
	return 0;
}

int nbd_conn_skip(struct nbd_conn *c, uint64_t len)
{
	uint8_t sink[4096];

	while (len > 0) {
		size_t k = len > sizeof(sink) ? sizeof(sink) : (size_t)len;
		int ret = nbd_conn_read(c, sink, k, false);

		if (ret < 0)
			return ret;
		len -= k;
	}
	return 0;
}

int nbd_conn_writev(struct nbd_conn *c, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = iovcnt};
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int nbd_conn_write(struct nbd_conn *c, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return nbd_conn_writev(c, &iov, 1);
}
