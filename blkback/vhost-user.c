/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user-blk transport: a unix socket that one front-end (QEMU)
 * at a time connects to, and the vhost-user messages that set up guest
 * memory and the virtqueues of a virtio-blk device (vhost-blk.c runs
 * them).
 *
 * One thread per export reads the front-end's messages; each running
 * queue has its own thread.  The front-end is trusted no more than the
 * guest: every message's size, index and fd count is checked, and a
 * message that fails is answered with a failure (REPLY_ACK) or ends the
 * connection, never the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../common/opts.h"
#include "blkback.h"
#include "vhost-blk.h"
#include "unix-socket.h"
#include "vhost-user.h"

#define VU_MODULE "vhost"

struct vu_export {
	struct blkback_export *ex;
	char *path;
	struct blkback_unix_listener listener;
	int stop_fd;
	pthread_t thread;
	unsigned nqueues;

	/* The connection: the export thread's alone. */
	int conn_fd;
	unsigned errors_logged; /* a front-end cannot flood the log */
	uint64_t protocol_features;
	struct blkback_vblk_dev dev;

	/* For describe (atomics). */
	bool connected;
	uint64_t connections;
};

struct vu_msg {
	struct blkback_vu_hdr hdr;
	union blkback_vu_payload p;
	int fds[BLKBACK_VU_MAX_FDS];
	unsigned nfds;
};

static uint64_t offered_features(struct vu_export *vu)
{
	return blkback_vblk_features(vu->ex->disk) |
	       1ull << BLKBACK_VU_F_PROTOCOL_FEATURES;
}

static uint64_t offered_protocol_features(void)
{
	return 1ull << BLKBACK_VU_PROTOCOL_F_MQ |
	       1ull << BLKBACK_VU_PROTOCOL_F_REPLY_ACK |
	       1ull << BLKBACK_VU_PROTOCOL_F_CONFIG;
}

static void close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

/* Take fd i out of the message (the caller owns it now). */
static int take_fd(struct vu_msg *m, unsigned i)
{
	int fd = m->fds[i];

	m->fds[i] = -1;
	return fd;
}

/* Wait until fd is readable or the export stops; false on stop. */
static bool wait_readable(struct vu_export *vu, int fd)
{
	for (;;) {
		struct pollfd p[2] = {
			{.fd = vu->stop_fd, .events = POLLIN},
			{.fd = fd, .events = POLLIN},
		};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (p[0].revents)
			return false;
		if (p[1].revents)
			return true;
	}
}

/* Read exactly len bytes; the first read may carry fds. */
static int read_full(struct vu_export *vu, void *buf, size_t len,
		     struct vu_msg *fds_to)
{
	size_t got = 0;

	while (got < len) {
		char cbuf[CMSG_SPACE(BLKBACK_VU_MAX_FDS * sizeof(int))];
		struct iovec iov = {(char *)buf + got, len - got};
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = fds_to ? cbuf : NULL,
			.msg_controllen = fds_to ? sizeof(cbuf) : 0,
		};
		struct cmsghdr *cm;
		ssize_t n;

		if (!wait_readable(vu, vu->conn_fd))
			return -ECANCELED;
		n = recvmsg(vu->conn_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		for (cm = fds_to ? CMSG_FIRSTHDR(&mh) : NULL; cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			size_t nfd;

			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(fd));
				if (fds_to->nfds < BLKBACK_VU_MAX_FDS)
					fds_to->fds[fds_to->nfds++] = fd;
				else
					close(fd);
			}
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			vs_log(VS_LOG_ERROR, VU_MODULE,
			       "%s: a message carried more than %d fds",
			       vu->ex->id, BLKBACK_VU_MAX_FDS);
			return -EMSGSIZE;
		}
		got += (size_t)n;
		/* fds arrive with a message's first byte only. */
		fds_to = NULL;
	}
	return 0;
}

static int read_msg(struct vu_export *vu, struct vu_msg *m)
{
	int ret;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->nfds = 0;
	ret = read_full(vu, &m->hdr, sizeof(m->hdr), m);
	if (ret < 0)
		return ret;
	if ((m->hdr.flags & BLKBACK_VU_FLAG_VERSION_MASK) !=
	    BLKBACK_VU_VERSION) {
		vs_log(VS_LOG_ERROR, VU_MODULE,
		       "%s: message %" PRIu32 " has version %" PRIu32
		       ", expected %d",
		       vu->ex->id, m->hdr.request,
		       m->hdr.flags & BLKBACK_VU_FLAG_VERSION_MASK,
		       BLKBACK_VU_VERSION);
		return -EPROTO;
	}
	if (m->hdr.size > sizeof(m->p)) {
		vs_log(VS_LOG_ERROR, VU_MODULE,
		       "%s: message %" PRIu32 " has a %" PRIu32
		       "-byte payload, at most %zu expected",
		       vu->ex->id, m->hdr.request, m->hdr.size, sizeof(m->p));
		return -EPROTO;
	}
	memset(&m->p, 0, sizeof(m->p));
	return read_full(vu, &m->p, m->hdr.size, NULL);
}

static int send_reply(struct vu_export *vu, const struct vu_msg *req,
		      const void *payload, uint32_t size)
{
	struct blkback_vu_hdr hdr = {req->hdr.request,
				     BLKBACK_VU_VERSION | BLKBACK_VU_FLAG_REPLY,
				     size};
	/* The payload follows the header without padding. */
	uint8_t r[sizeof(hdr) + sizeof(union blkback_vu_payload)];
	size_t len = sizeof(hdr) + size, sent = 0;

	memcpy(r, &hdr, sizeof(hdr));
	memcpy(r + sizeof(hdr), payload, size);
	while (sent < len) {
		/* Never wait on a front-end that does not read: replies
		 * are small, a full socket means it is not listening. */
		ssize_t n = send(vu->conn_fd, r + sent, len - sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		sent += (size_t)n;
	}
	return 0;
}

static int send_u64(struct vu_export *vu, const struct vu_msg *req, uint64_t v)
{
	return send_reply(vu, req, &v, sizeof(v));
}

static int bad_size(struct vu_export *vu, const struct vu_msg *m, size_t want,
		    struct vs_error **errp)
{
	return vs_error_set(errp, EPROTO,
			    "%s: message %" PRIu32 " has a %" PRIu32
			    "-byte payload, expected %zu",
			    vu->ex->id, m->hdr.request, m->hdr.size, want);
}

static struct blkback_vblk_queue *queue_at(struct vu_export *vu, uint32_t index,
					   struct vs_error **errp)
{
	if (index >= vu->nqueues) {
		vs_error_set(errp, EINVAL, "%s: queue %" PRIu32 " of %u",
			     vu->ex->id, index, vu->nqueues);
		return NULL;
	}
	return &vu->dev.q[index];
}

static void stop_all(struct vu_export *vu, bool was_running[])
{
	for (unsigned i = 0; i < vu->nqueues; i++) {
		was_running[i] = vu->dev.q[i].running;
		blkback_vblk_queue_stop(&vu->dev.q[i]);
	}
}

static int start_all(struct vu_export *vu, struct vs_error **errp)
{
	int ret = 0;

	for (unsigned i = 0; i < vu->nqueues; i++) {
		int r = blkback_vblk_queue_start(&vu->dev.q[i], errp);

		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

static int set_features(struct vu_export *vu, uint64_t f,
			struct vs_error **errp)
{
	bool running[BLKBACK_VBLK_MAX_QUEUES];

	if (f & ~offered_features(vu))
		return vs_error_set(errp, EINVAL,
				    "%s: features 0x%" PRIx64
				    " include some not offered (0x%" PRIx64 ")",
				    vu->ex->id, f, offered_features(vu));
	/* Queues take EVENT_IDX and INDIRECT_DESC when they start. */
	stop_all(vu, running);
	vu->dev.features = f & ~(1ull << BLKBACK_VU_F_PROTOCOL_FEATURES);
	/* Without protocol features a ring is enabled from the start
	 * (there is no SET_VRING_ENABLE). */
	if (!(f & 1ull << BLKBACK_VU_F_PROTOCOL_FEATURES))
		for (unsigned i = 0; i < vu->nqueues; i++)
			vu->dev.q[i].enabled = true;
	return start_all(vu, errp);
}

static int set_mem_table(struct vu_export *vu, struct vu_msg *m,
			 struct vs_error **errp)
{
	const struct blkback_vu_mem *mt = &m->p.mem;
	bool running[BLKBACK_VBLK_MAX_QUEUES];
	size_t want;
	int ret;

	if (m->hdr.size < 8)
		return bad_size(vu, m, 8, errp);
	if (mt->nregions == 0 || mt->nregions > BLKBACK_GUEST_MEM_MAX_REGIONS)
		return vs_error_set(errp, EINVAL,
				    "%s: memory table of %" PRIu32
				    " regions (1 to %d)",
				    vu->ex->id, mt->nregions,
				    BLKBACK_GUEST_MEM_MAX_REGIONS);
	want = 8 + mt->nregions * sizeof(mt->r[0]);
	if (m->hdr.size < want)
		return bad_size(vu, m, want, errp);
	if (m->nfds != mt->nregions)
		return vs_error_set(errp, EINVAL,
				    "%s: memory table of %" PRIu32
				    " regions came with %u fds",
				    vu->ex->id, mt->nregions, m->nfds);
	/* Requests in flight point into the old mapping. */
	stop_all(vu, running);
	blkback_guest_mem_clear(&vu->dev.mem);
	for (unsigned i = 0; i < mt->nregions; i++) {
		const struct blkback_vu_region *r = &mt->r[i];

		ret = blkback_guest_mem_map(&vu->dev.mem, m->fds[i], r->gpa,
					    r->size, r->uva, r->mmap_offset,
					    errp);
		if (ret < 0) {
			blkback_guest_mem_clear(&vu->dev.mem);
			vs_error_prefix(errp, "%s", vu->ex->id);
			return ret;
		}
		vs_debug(VU_MODULE,
			 "%s: region %u: guest 0x%" PRIx64 " size 0x%" PRIx64
			 " front-end 0x%" PRIx64,
			 vu->ex->id, i, r->gpa, r->size, r->uva);
	}
	/* Restart what ran: its ring addresses are translated anew. */
	ret = 0;
	for (unsigned i = 0; i < vu->nqueues; i++)
		if (running[i]) {
			int r = blkback_vblk_queue_start(&vu->dev.q[i], errp);

			if (r < 0 && ret == 0)
				ret = r;
		}
	return ret;
}

/* SET_VRING_KICK, CALL, ERR. */
static int set_vring_fd(struct vu_export *vu, struct vu_msg *m,
			struct vs_error **errp)
{
	uint64_t v = m->p.u64;
	struct blkback_vblk_queue *q;
	bool nofd = v & BLKBACK_VU_VRING_NOFD;
	int fd = -1;

	if (m->hdr.size != sizeof(uint64_t))
		return bad_size(vu, m, sizeof(uint64_t), errp);
	if (v & ~(uint64_t)(BLKBACK_VU_VRING_IDX_MASK | BLKBACK_VU_VRING_NOFD))
		return vs_error_set(errp, EINVAL,
				    "%s: ring fd message with value 0x%" PRIx64,
				    vu->ex->id, v);
	q = queue_at(vu, (uint32_t)(v & BLKBACK_VU_VRING_IDX_MASK), errp);
	if (!q)
		return -EINVAL;
	if (nofd != (m->nfds == 0))
		return vs_error_set(
			errp, EINVAL,
			"%s: ring fd message %s but carries %u fds", vu->ex->id,
			nofd ? "says no fd" : "needs one fd", m->nfds);
	if (!nofd) {
		if (m->nfds != 1)
			return vs_error_set(errp, EINVAL,
					    "%s: ring fd message carries %u "
					    "fds",
					    vu->ex->id, m->nfds);
		fd = take_fd(m, 0);
		/* We never wait on these: a full or odd fd must not hang a
		 * queue thread. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	switch (m->hdr.request) {
	case BLKBACK_VU_SET_VRING_KICK:
		if (nofd)
			return vs_error_set(errp, ENOTSUP,
					    "%s: polling a ring without a kick "
					    "fd is not supported",
					    vu->ex->id);
		blkback_vblk_queue_stop(q);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = fd;
		return blkback_vblk_queue_start(q, errp);
	case BLKBACK_VU_SET_VRING_CALL:
		blkback_vblk_queue_set_call(q, fd);
		return 0;
	default:
		/* The error fd is written only by the queue thread. */
		blkback_vblk_queue_stop(q);
		if (q->err_fd >= 0)
			close(q->err_fd);
		q->err_fd = fd;
		return blkback_vblk_queue_start(q, errp);
	}
}

static int vring_msg(struct vu_export *vu, struct vu_msg *m, bool *replied,
		     struct vs_error **errp)
{
	struct blkback_vblk_queue *q;
	size_t want = m->hdr.request == BLKBACK_VU_SET_VRING_ADDR
			      ? sizeof(struct blkback_vu_addr)
			      : sizeof(struct blkback_vu_state);

	if (m->hdr.size != want)
		return bad_size(vu, m, want, errp);
	/* index is the first field of both payloads. */
	q = queue_at(vu, m->p.state.index, errp);
	if (!q)
		return -EINVAL;
	blkback_vblk_queue_stop(q);
	if (m->hdr.request != BLKBACK_VU_GET_VRING_BASE &&
	    m->hdr.request != BLKBACK_VU_SET_VRING_ENABLE) {
		/* Set up anew: a ring the driver broke gets a new chance. */
		q->broken = false;
		q->err_signalled = false;
	}
	switch (m->hdr.request) {
	case BLKBACK_VU_SET_VRING_NUM: {
		uint32_t num = m->p.state.num;

		if (num == 0 || num > BLKBACK_VQ_MAX_SIZE || (num & (num - 1)))
			return vs_error_set(errp, EINVAL,
					    "%s: queue size %" PRIu32
					    " is not a power of 2 up to %u",
					    q->name, num, BLKBACK_VQ_MAX_SIZE);
		q->num = num;
		break;
	}
	case BLKBACK_VU_SET_VRING_ADDR:
		/* Flag bit 0 asks for dirty logging, which we never
		 * offered (no VHOST_F_LOG_ALL). */
		if (m->p.addr.flags)
			return vs_error_set(errp, ENOTSUP,
					    "%s: ring logging (flags 0x%" PRIx32
					    ") is not supported",
					    q->name, m->p.addr.flags);
		q->desc_uva = m->p.addr.desc;
		q->avail_uva = m->p.addr.avail;
		q->used_uva = m->p.addr.used;
		q->addr_set = true;
		break;
	case BLKBACK_VU_SET_VRING_BASE:
		if (m->p.state.num > UINT16_MAX)
			return vs_error_set(errp, EINVAL,
					    "%s: ring base %" PRIu32, q->name,
					    m->p.state.num);
		q->base = (uint16_t)m->p.state.num;
		break;
	case BLKBACK_VU_GET_VRING_BASE: {
		struct blkback_vu_state st = {q->index, q->base};

		/* The ring stays stopped until a new kick fd starts it. */
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = -1;
		*replied = true;
		return send_reply(vu, m, &st, sizeof(st));
	}
	case BLKBACK_VU_SET_VRING_ENABLE:
		if (m->p.state.num > 1)
			return vs_error_set(errp, EINVAL, "%s: enable %" PRIu32,
					    q->name, m->p.state.num);
		q->enabled = m->p.state.num;
		break;
	}
	return blkback_vblk_queue_start(q, errp);
}

static int config_msg(struct vu_export *vu, struct vu_msg *m, bool *replied,
		      struct vs_error **errp)
{
	struct blkback_vu_config *c = &m->p.config;
	const size_t hdr = offsetof(struct blkback_vu_config, data);
	uint8_t cfg[BLKBACK_VBLK_CONFIG_SIZE];

	if (m->hdr.size < hdr)
		return bad_size(vu, m, hdr, errp);
	if (c->size > BLKBACK_VU_CONFIG_MAX || c->size > m->hdr.size - hdr ||
	    c->offset > BLKBACK_VU_CONFIG_MAX - c->size)
		return vs_error_set(errp, EINVAL,
				    "%s: config bytes %" PRIu32 "..+%" PRIu32
				    " in a %" PRIu32 "-byte message",
				    vu->ex->id, c->offset, c->size,
				    m->hdr.size);
	if (m->hdr.request == BLKBACK_VU_SET_CONFIG)
		return blkback_vblk_set_config(&vu->dev, c->offset, c->data,
					       c->size, errp);
	/* Bytes past our struct read as zeros (fields of later virtio
	 * versions that we do not offer). */
	blkback_vblk_config(&vu->dev, cfg);
	memset(c->data, 0, sizeof(c->data));
	if (c->offset < sizeof(cfg))
		memcpy(c->data, cfg + c->offset,
		       VS_MIN(sizeof(cfg) - c->offset, (size_t)c->size));
	*replied = true;
	return send_reply(vu, m, c, (uint32_t)(hdr + c->size));
}

/* Reset everything a connection set up. */
static void reset_conn_state(struct vu_export *vu)
{
	blkback_vblk_dev_reset(&vu->dev);
	vu->protocol_features = 0;
}

static bool no_payload(struct vu_export *vu, struct vu_msg *m,
		       struct vs_error **errp)
{
	if (m->hdr.size == 0)
		return true;
	bad_size(vu, m, 0, errp);
	return false;
}

/* Handle one message; *replied when it sent its own reply. */
static int dispatch(struct vu_export *vu, struct vu_msg *m, bool *replied,
		    struct vs_error **errp)
{
	uint64_t v;

	switch (m->hdr.request) {
	case BLKBACK_VU_GET_FEATURES:
		if (!no_payload(vu, m, errp))
			return -EPROTO;
		*replied = true;
		return send_u64(vu, m, offered_features(vu));
	case BLKBACK_VU_SET_FEATURES:
		if (m->hdr.size != sizeof(uint64_t))
			return bad_size(vu, m, sizeof(uint64_t), errp);
		return set_features(vu, m->p.u64, errp);
	case BLKBACK_VU_GET_PROTOCOL_FEATURES:
		if (!no_payload(vu, m, errp))
			return -EPROTO;
		*replied = true;
		return send_u64(vu, m, offered_protocol_features());
	case BLKBACK_VU_SET_PROTOCOL_FEATURES:
		if (m->hdr.size != sizeof(uint64_t))
			return bad_size(vu, m, sizeof(uint64_t), errp);
		v = m->p.u64;
		if (v & ~offered_protocol_features())
			return vs_error_set(errp, EINVAL,
					    "%s: protocol features 0x%" PRIx64
					    " include some not offered",
					    vu->ex->id, v);
		vu->protocol_features = v;
		return 0;
	case BLKBACK_VU_GET_QUEUE_NUM:
		if (!no_payload(vu, m, errp))
			return -EPROTO;
		*replied = true;
		return send_u64(vu, m, vu->nqueues);
	case BLKBACK_VU_SET_OWNER: return no_payload(vu, m, errp) ? 0 : -EPROTO;
	case BLKBACK_VU_RESET_OWNER:
		if (!no_payload(vu, m, errp))
			return -EPROTO;
		reset_conn_state(vu);
		return 0;
	case BLKBACK_VU_SET_MEM_TABLE: return set_mem_table(vu, m, errp);
	case BLKBACK_VU_SET_VRING_NUM:
	case BLKBACK_VU_SET_VRING_ADDR:
	case BLKBACK_VU_SET_VRING_BASE:
	case BLKBACK_VU_GET_VRING_BASE:
	case BLKBACK_VU_SET_VRING_ENABLE:
		return vring_msg(vu, m, replied, errp);
	case BLKBACK_VU_SET_VRING_KICK:
	case BLKBACK_VU_SET_VRING_CALL:
	case BLKBACK_VU_SET_VRING_ERR: return set_vring_fd(vu, m, errp);
	case BLKBACK_VU_GET_CONFIG:
	case BLKBACK_VU_SET_CONFIG: return config_msg(vu, m, replied, errp);
	default:
		return vs_error_set(errp, ENOTSUP,
				    "%s: vhost-user request %" PRIu32
				    " is not supported",
				    vu->ex->id, m->hdr.request);
	}
}

/* Read and handle one message: <0 ends the connection. */
static int serve_one(struct vu_export *vu)
{
	struct vs_error *err = NULL;
	bool replied = false, ack;
	struct vu_msg m;
	int ret;

	ret = read_msg(vu, &m);
	if (ret < 0) {
		close_fds(&m);
		return ret;
	}
	vs_debug(VU_MODULE,
		 "%s: request %" PRIu32 ", %" PRIu32 " bytes, %u fds",
		 vu->ex->id, m.hdr.request, m.hdr.size, m.nfds);
	ret = dispatch(vu, &m, &replied, &err);
	/* Whatever the handler did not take. */
	close_fds(&m);
	ack = !replied && (m.hdr.flags & BLKBACK_VU_FLAG_NEED_REPLY) &&
	      (vu->protocol_features & 1ull << BLKBACK_VU_PROTOCOL_F_REPLY_ACK);
	if (ret < 0) {
		if (vu->errors_logged < 20)
			vs_log(VS_LOG_ERROR, VU_MODULE, "%s%s",
			       err ? vs_error_msg(err) : strerror(-ret),
			       ++vu->errors_logged == 20
				       ? " (later errors of this front-end "
					 "are not logged)"
				       : "");
		vs_error_free(err);
		/* A failure the front-end asked to hear about keeps the
		 * connection; any other would leave it out of step. */
		if (!ack)
			return ret;
		return send_u64(vu, &m, 1);
	}
	if (ack)
		return send_u64(vu, &m, 0);
	return 0;
}

static void disconnect(struct vu_export *vu)
{
	reset_conn_state(vu);
	close(vu->conn_fd);
	vu->conn_fd = -1;
	__atomic_store_n(&vu->connected, false, __ATOMIC_RELAXED);
	vs_debug(VU_MODULE, "%s: front-end disconnected", vu->ex->id);
}

static void accept_one(struct vu_export *vu)
{
	int fd = accept4(vu->listener.fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			vs_log(VS_LOG_ERROR, VU_MODULE, "%s: accept: %s",
			       vu->ex->id, strerror(errno));
		return;
	}
	if (vu->conn_fd >= 0) {
		/* One front-end drives the device: a second one would
		 * fight it for the rings. */
		vs_log(VS_LOG_WARN, VU_MODULE,
		       "%s: refused a second front-end while one is connected",
		       vu->ex->id);
		close(fd);
		return;
	}
	vu->conn_fd = fd;
	vu->errors_logged = 0;
	__atomic_store_n(&vu->connected, true, __ATOMIC_RELAXED);
	__atomic_add_fetch(&vu->connections, 1, __ATOMIC_RELAXED);
	vs_debug(VU_MODULE, "%s: front-end connected", vu->ex->id);
}

static void *export_thread(void *arg)
{
	struct vu_export *vu = arg;

	for (;;) {
		struct pollfd p[3] = {
			{.fd = vu->stop_fd, .events = POLLIN},
			{.fd = vu->listener.fd, .events = POLLIN},
			{.fd = vu->conn_fd, .events = POLLIN},
		};

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			vs_log(VS_LOG_ERROR, VU_MODULE, "%s: poll: %s",
			       vu->ex->id, strerror(errno));
			break;
		}
		if (p[0].revents)
			break;
		if (p[2].revents && serve_one(vu) < 0)
			disconnect(vu);
		if (p[1].revents)
			accept_one(vu);
	}
	if (vu->conn_fd >= 0)
		disconnect(vu);
	return NULL;
}

static int parse_opts(struct blkback_export *ex, unsigned *nqueues,
		      struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	uint64_t n = 1;
	int ret;

	ret = vs_opts_parse(ex->opts, "vhost-user export option", &opts, errp);
	if (ret < 0)
		return ret;
	ret = vs_opts_get_size(opts, "num-queues", &n, errp);
	if (ret == 0)
		ret = vs_opts_check_used(opts, errp);
	vs_opts_free(opts);
	if (ret < 0)
		return ret;
	if (n < 1 || n > BLKBACK_VBLK_MAX_QUEUES)
		return vs_error_set(errp, EINVAL,
				    "vhost-user export %s: num-queues=%" PRIu64
				    " (1 to %d)",
				    ex->id, n, BLKBACK_VBLK_MAX_QUEUES);
	*nqueues = (unsigned)n;
	return 0;
}

static void vu_free(struct vu_export *vu)
{
	blkback_unix_unlisten(&vu->listener);
	if (vu->stop_fd >= 0)
		close(vu->stop_fd);
	blkback_vblk_dev_destroy(&vu->dev);
	free(vu->path);
	free(vu);
}

static int vu_start(struct blkback_export *ex, struct vs_error **errp)
{
	struct vu_export *vu;
	const char *path = ex->addr;
	int ret;

	if (!ex->disk)
		return vs_error_set(errp, EINVAL,
				    "vhost-user export %s: no disk", ex->id);
	if (!path || !*path)
		return vs_error_set(errp, EINVAL,
				    "vhost-user export %s: no socket path",
				    ex->id);
	if (strncmp(path, "unix:", 5) == 0)
		path += 5;
	vu = calloc(1, sizeof(*vu));
	if (!vu)
		return vs_error_set(errp, ENOMEM, "vhost-user export %s",
				    ex->id);
	vu->ex = ex;
	vu->listener.fd = vu->stop_fd = vu->conn_fd = -1;
	ret = parse_opts(ex, &vu->nqueues, errp);
	if (ret < 0) {
		free(vu);
		return ret;
	}
	blkback_vblk_dev_init(&vu->dev, ex->disk, ex->id, vu->nqueues);
	vu->path = strdup(path);
	vu->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!vu->path || vu->stop_fd < 0) {
		ret = vs_error_set_errno(errp, vu->path ? errno : ENOMEM,
					 "vhost-user export %s", ex->id);
		vu_free(vu);
		return ret;
	}
	/* Nonblocking: the export thread polls it with the connection. */
	ret = blkback_unix_listen(&vu->listener, vu->path, 4, SOCK_NONBLOCK,
				  "vhost-user socket", errp);
	if (ret < 0) {
		vu_free(vu);
		return ret;
	}
	ret = pthread_create(&vu->thread, NULL, export_thread, vu);
	if (ret) {
		vu_free(vu);
		return vs_error_set_errno(
			errp, ret, "vhost-user export %s: thread", ex->id);
	}
	ex->priv = vu;
	return 0;
}

static void vu_stop(struct blkback_export *ex)
{
	struct vu_export *vu = ex->priv;
	uint64_t one = 1;

	if (!vu)
		return;
	if (write(vu->stop_fd, &one, sizeof(one)) < 0)
		vs_log(VS_LOG_ERROR, VU_MODULE, "%s: stop: %s", ex->id,
		       strerror(errno));
	pthread_join(vu->thread, NULL);
	vu_free(vu);
	ex->priv = NULL;
}

static void vu_describe(struct blkback_export *ex, struct json_object *obj)
{
	struct vu_export *vu = ex->priv;

	if (!vu)
		return;
	json_object_object_add(obj, "num-queues",
			       json_object_new_int((int)vu->nqueues));
	json_object_object_add(obj, "connected",
			       json_object_new_boolean(__atomic_load_n(
				       &vu->connected, __ATOMIC_RELAXED)));
	json_object_object_add(obj, "connections",
			       json_object_new_int64((int64_t)__atomic_load_n(
				       &vu->connections, __ATOMIC_RELAXED)));
}

const struct blkback_transport blkback_transport_vhost_user = {
	.name = "vhost-user",
	.per_disk = true,
	.start = vu_start,
	.stop = vu_stop,
	.describe = vu_describe,
};
