/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-blk over vhost-user: config space, and the queue threads that
 * pop requests, hand them to blkback_submit and return them on the used
 * ring when they complete (virtio 1.x 5.2).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "../common/log.h"
#include "vhost-blk.h"

/* Request types and status values (virtio 5.2.6). */
enum {
	VIRTIO_BLK_T_IN = 0,
	VIRTIO_BLK_T_OUT = 1,
	VIRTIO_BLK_T_FLUSH = 4,
	VIRTIO_BLK_T_GET_ID = 8,
	VIRTIO_BLK_T_DISCARD = 11,
	VIRTIO_BLK_T_WRITE_ZEROES = 13,
};

enum {
	VIRTIO_BLK_S_OK = 0,
	VIRTIO_BLK_S_IOERR = 1,
	VIRTIO_BLK_S_UNSUPP = 2,
};

#define VIRTIO_BLK_ID_BYTES		20
#define VIRTIO_BLK_WRITE_ZEROES_F_UNMAP 1u
#define SECTOR				512u

/*
 * What we advertise.  seg_max * size_max stays under BLKBACK_MAX_IO, so
 * that a request the driver builds within the limits is never refused
 * for its size.  Chains may hold a few more iovecs than seg_max + 2: a
 * buffer that crosses a memory region boundary becomes two.
 */
#define VBLK_SEG_MAX	   126u
#define VBLK_SIZE_MAX	   (256u << 10)
#define VBLK_IOV_CAP	   (VBLK_SEG_MAX + 2 + 16)
#define VBLK_MAX_RANGE_SEG 16u
/* QEMU's bound for one discard or zeroing range (INT_MAX bytes). */
#define VBLK_MAX_RANGE_SECTORS 4194303u

_Static_assert((uint64_t)VBLK_SEG_MAX *VBLK_SIZE_MAX <= BLKBACK_MAX_IO,
	       "a request within seg_max and size_max fits BLKBACK_MAX_IO");

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_blk_config) == BLKBACK_VBLK_CONFIG_SIZE,
	       "virtio_blk_config");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32,
	       "virtio_blk_config.writeback");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34,
	       "virtio_blk_config.num_queues");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "virtio_blk_config.write_zeroes_may_unmap");

struct blkback_vblk_req {
	struct blkback_vblk_queue *q;
	struct blkback_vblk_req *next_free;
	struct blkback_vq_chain chain;
	/* One blkback_req per range of DISCARD/WRITE_ZEROES; one for the
	 * others. */
	struct blkback_req sub[VBLK_MAX_RANGE_SEG];
	unsigned pending;      /* sub-requests not yet done (atomic) */
	int error;	       /* the first one's error (atomic) */
	uint32_t data_written; /* bytes of data for the driver on success */
	struct iovec iov[VBLK_IOV_CAP];
};

uint64_t blkback_vblk_features(const struct blkback_disk *disk)
{
	uint64_t f = 1ull << BLKBACK_VIRTIO_F_VERSION_1 |
		     1ull << BLKBACK_VIRTIO_RING_F_INDIRECT_DESC |
		     1ull << BLKBACK_VIRTIO_RING_F_EVENT_IDX |
		     1ull << BLKBACK_VIRTIO_BLK_F_SIZE_MAX |
		     1ull << BLKBACK_VIRTIO_BLK_F_SEG_MAX |
		     1ull << BLKBACK_VIRTIO_BLK_F_BLK_SIZE |
		     1ull << BLKBACK_VIRTIO_BLK_F_TOPOLOGY |
		     1ull << BLKBACK_VIRTIO_BLK_F_FLUSH |
		     1ull << BLKBACK_VIRTIO_BLK_F_CONFIG_WCE |
		     1ull << BLKBACK_VIRTIO_BLK_F_MQ;

	if (blkback_disk_readonly(disk))
		return f | 1ull << BLKBACK_VIRTIO_BLK_F_RO;
	f |= 1ull << BLKBACK_VIRTIO_BLK_F_WRITE_ZEROES;
	if (blkback_disk_discard(disk))
		f |= 1ull << BLKBACK_VIRTIO_BLK_F_DISCARD;
	return f;
}

static unsigned log2_floor(uint32_t v)
{
	unsigned n = 0;

	while (v >>= 1)
		n++;
	return n;
}

void blkback_vblk_config(const struct blkback_vblk_dev *dev,
			 uint8_t buf[BLKBACK_VBLK_CONFIG_SIZE])
{
	struct vbd *vbd = blkback_disk_vbd(dev->disk);
	uint32_t align = vbd_request_align(vbd);
	uint32_t cluster = vbd_cluster_size(vbd);
	struct virtio_blk_config c = {
		/* A size that is not a multiple of 512 loses its tail:
		 * the guest addresses whole sectors only. */
		.capacity = blkback_disk_size(dev->disk) / SECTOR,
		.size_max = VBLK_SIZE_MAX,
		.seg_max = VBLK_SEG_MAX,
		.blk_size = SECTOR,
		.min_io_size = 1,
		.writeback = __atomic_load_n(&dev->writeback, __ATOMIC_RELAXED),
		.num_queues = (uint16_t)dev->nqueues,
		.max_discard_sectors = VBLK_MAX_RANGE_SECTORS,
		.max_discard_seg = VBLK_MAX_RANGE_SEG,
		.max_write_zeroes_sectors = VBLK_MAX_RANGE_SECTORS,
		.max_write_zeroes_seg = VBLK_MAX_RANGE_SEG,
		.write_zeroes_may_unmap = 1,
	};

	/* The host's block size (O_DIRECT) as the physical one, so that
	 * the guest avoids read-modify-write cycles. */
	if (align > SECTOR && align <= 65536 && !(align & (align - 1)))
		c.physical_block_exp = (uint8_t)log2_floor(align / SECTOR);
	/* Clusters as the optimal size, and as the discard unit: a
	 * discard of less than a cluster frees nothing. */
	if (cluster >= SECTOR && !(cluster & (cluster - 1))) {
		c.opt_io_size = cluster / SECTOR;
		c.discard_sector_alignment = cluster / SECTOR;
	} else {
		c.discard_sector_alignment = 1;
	}
	memcpy(buf, &c, sizeof(c));
}

int blkback_vblk_set_config(struct blkback_vblk_dev *dev, uint32_t offset,
			    const uint8_t *buf, uint32_t len,
			    struct vs_error **errp)
{
	if (offset != offsetof(struct virtio_blk_config, writeback) || len != 1)
		return vs_error_set(errp, EPERM,
				    "%s: config space bytes %" PRIu32
				    "..+%" PRIu32 " are read-only",
				    dev->name, offset, len);
	/* CONFIG_WCE is always offered; QEMU may forward the driver's
	 * write before it sends the acknowledged features again (after a
	 * reconnect), so the bit is not required here. */
	__atomic_store_n(&dev->writeback, buf[0] != 0, __ATOMIC_RELAXED);
	return 0;
}

void blkback_vblk_dev_init(struct blkback_vblk_dev *dev,
			   struct blkback_disk *disk, const char *name,
			   unsigned nqueues)
{
	memset(dev, 0, sizeof(*dev));
	dev->disk = disk;
	dev->name = name;
	dev->nqueues = nqueues;
	dev->writeback = true;
	for (unsigned i = 0; i < BLKBACK_VBLK_MAX_QUEUES; i++) {
		struct blkback_vblk_queue *q = &dev->q[i];

		q->dev = dev;
		q->index = i;
		snprintf(q->name, sizeof(q->name), "%s queue %u", name, i);
		q->kick_fd = q->call_fd = q->err_fd = -1;
		q->stop_fd = q->wake_fd = -1;
		pthread_mutex_init(&q->lock, NULL);
		pthread_cond_init(&q->idle, NULL);
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void blkback_vblk_dev_reset(struct blkback_vblk_dev *dev)
{
	for (unsigned i = 0; i < BLKBACK_VBLK_MAX_QUEUES; i++) {
		struct blkback_vblk_queue *q = &dev->q[i];

		blkback_vblk_queue_stop(q);
		close_fd(&q->kick_fd);
		close_fd(&q->err_fd);
		close_fd(&q->call_fd);
		q->num = 0;
		q->addr_set = false;
		q->base = 0;
		q->enabled = false;
		q->broken = false;
		q->err_signalled = false;
	}
	blkback_guest_mem_clear(&dev->mem);
	dev->features = 0;
	dev->writeback = true;
}

void blkback_vblk_dev_destroy(struct blkback_vblk_dev *dev)
{
	blkback_vblk_dev_reset(dev);
	for (unsigned i = 0; i < BLKBACK_VBLK_MAX_QUEUES; i++) {
		pthread_mutex_destroy(&dev->q[i].lock);
		pthread_cond_destroy(&dev->q[i].idle);
	}
}

static void eventfd_signal(int fd)
{
	uint64_t one = 1;

	/* Non-blocking: a full counter or a dead fd loses nothing that a
	 * later signal would not repeat. */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vs_debug("vhost", "eventfd %d: %s", fd, strerror(errno));
}

/* Under q->lock. */
static void maybe_signal(struct blkback_vblk_queue *q)
{
	if (blkback_vq_need_signal(&q->vq))
		eventfd_signal(q->call_fd);
}

void blkback_vblk_queue_set_call(struct blkback_vblk_queue *q, int fd)
{
	pthread_mutex_lock(&q->lock);
	close_fd(&q->call_fd);
	q->call_fd = fd;
	pthread_mutex_unlock(&q->lock);
}

/* Return a request to the used ring and its slot to the queue. */
static void complete(struct blkback_vblk_req *r, uint8_t status)
{
	struct blkback_vblk_queue *q = r->q;
	uint32_t written = 1;

	if (status == VIRTIO_BLK_S_OK)
		written += r->data_written;
	/* The status byte last: the driver reads data once it sees it.  A
	 * chain without a writable byte gets its buffers back unanswered. */
	if (r->chain.status)
		__atomic_store_n(r->chain.status, status, __ATOMIC_RELAXED);
	else
		written = 0;
	pthread_mutex_lock(&q->lock);
	blkback_vq_push(&q->vq, r->chain.head, written);
	if (q->batching)
		q->pending_signal = true;
	else
		maybe_signal(q);
	r->next_free = q->free_reqs;
	q->free_reqs = r;
	if (q->throttled) {
		q->throttled = false;
		eventfd_signal(q->wake_fd);
	}
	if (--q->inflight == 0)
		pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
}

static void sub_done(struct blkback_req *br, int ret)
{
	struct blkback_vblk_req *r = br->opaque;
	int expected = 0;

	if (ret < 0)
		__atomic_compare_exchange_n(&r->error, &expected, ret, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	if (__atomic_sub_fetch(&r->pending, 1, __ATOMIC_ACQ_REL) == 0) {
		if (r->error)
			vs_debug("vhost", "%s: request %u: %s", r->q->name,
				 r->chain.head, strerror(-r->error));
		complete(r, r->error ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
	}
}

/* Drop `skip` bytes from the front of iov[0..*cnt), in place. */
static struct iovec *iov_advance(struct iovec *iov, unsigned *cnt,
				 uint64_t skip)
{
	while (*cnt > 0 && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	return iov;
}

/* The sector in bytes, or false when it overflows. */
static bool sector_offset(uint64_t sector, uint64_t *off)
{
	if (sector > UINT64_MAX / SECTOR)
		return false;
	*off = sector * SECTOR;
	return true;
}

static unsigned write_flags(struct blkback_vblk_queue *q)
{
	/* Write-through when the driver turned the write cache off. */
	return __atomic_load_n(&q->dev->writeback, __ATOMIC_RELAXED)
		       ? 0
		       : BLKBACK_F_FUA;
}

static void submit_all(struct blkback_vblk_req *r, unsigned n)
{
	r->pending = n;
	r->error = 0;
	for (unsigned i = 0; i < n; i++) {
		r->sub[i].done = sub_done;
		r->sub[i].opaque = r;
		blkback_submit(r->q->dev->disk, &r->sub[i]);
	}
}

/* DISCARD and WRITE_ZEROES: ranges after the header.  Returns a status
 * to complete with, or -1 once submitted. */
static int handle_ranges(struct blkback_vblk_req *r, uint32_t type,
			 struct iovec *data, unsigned ndata, uint64_t len)
{
	struct virtio_blk_range ranges[VBLK_MAX_RANGE_SEG];
	bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint64_t n = len / sizeof(ranges[0]);

	if (len % sizeof(ranges[0]) || n == 0 || n > VBLK_MAX_RANGE_SEG)
		return VIRTIO_BLK_S_IOERR;
	vs_iov_to_buf(data, (int)ndata, 0, ranges, len);
	for (unsigned i = 0; i < n; i++) {
		struct blkback_req *br = &r->sub[i];
		uint32_t flags = ranges[i].flags;

		/* Unknown flags, or unmap on a discard (virtio 5.2.6.2). */
		if (flags & ~VIRTIO_BLK_WRITE_ZEROES_F_UNMAP ||
		    (!zeroes && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (ranges[i].num_sectors > VBLK_MAX_RANGE_SECTORS)
			return VIRTIO_BLK_S_IOERR;
		memset(br, 0, sizeof(*br));
		if (!sector_offset(ranges[i].sector, &br->offset))
			return VIRTIO_BLK_S_IOERR;
		br->len = (uint64_t)ranges[i].num_sectors * SECTOR;
		if (zeroes) {
			br->op = BLKBACK_OP_WRITE_ZEROES;
			br->flags = write_flags(r->q);
			if (flags & VIRTIO_BLK_WRITE_ZEROES_F_UNMAP)
				br->flags |= BLKBACK_F_MAY_UNMAP;
		} else {
			br->op = BLKBACK_OP_DISCARD;
		}
	}
	submit_all(r, (unsigned)n);
	return -1;
}

/* Turn one chain into blkback requests.  Returns a status to complete
 * with now, or -1 when submitted. */
static int handle(struct blkback_vblk_req *r)
{
	struct blkback_vq_chain *c = &r->chain;
	struct blkback_req *br = &r->sub[0];
	struct virtio_blk_outhdr hdr;
	unsigned nout = c->n_out, nin = c->n_in;
	struct iovec *out, *in = r->iov + c->n_out;
	uint64_t out_len, in_len, off;

	if (c->error || c->out_len < sizeof(hdr) || c->in_len < 1)
		return VIRTIO_BLK_S_IOERR;
	vs_iov_to_buf(r->iov, (int)nout, 0, &hdr, sizeof(hdr));
	out = iov_advance(r->iov, &nout, sizeof(hdr));
	out_len = c->out_len - sizeof(hdr);
	/* The status byte is the last byte of the last writable iovec
	 * (the walker's status): the data is what comes before it. */
	in[nin - 1].iov_len--;
	in_len = c->in_len - 1;
	if (in[nin - 1].iov_len == 0)
		nin--;

	memset(br, 0, sizeof(*br));
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool rd = hdr.type == VIRTIO_BLK_T_IN;
		uint64_t len = rd ? in_len : out_len;

		if (len == 0 || len % SECTOR ||
		    !sector_offset(hdr.sector, &off))
			return VIRTIO_BLK_S_IOERR;
		br->op = rd ? BLKBACK_OP_READ : BLKBACK_OP_WRITE;
		br->offset = off;
		br->len = len;
		br->iov = rd ? in : out;
		br->iovcnt = (int)(rd ? nin : nout);
		br->flags = rd ? 0 : write_flags(r->q);
		r->data_written = rd ? (uint32_t)len : 0;
		submit_all(r, 1);
		return -1;
	}
	case VIRTIO_BLK_T_FLUSH:
		br->op = BLKBACK_OP_FLUSH;
		submit_all(r, 1);
		return -1;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES] = {0};
		const char *name = blkback_disk_name(r->q->dev->disk);

		/* NUL-padded, not terminated when it takes all 20. */
		memcpy(id, name, VS_MIN(strlen(name), sizeof(id)));
		r->data_written = (uint32_t)vs_iov_from_buf(in, (int)nin, 0, id,
							    sizeof(id));
		return VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return handle_ranges(r, hdr.type, out, nout, out_len);
	default: return VIRTIO_BLK_S_UNSUPP;
	}
}

static struct blkback_vblk_req *get_req(struct blkback_vblk_queue *q)
{
	struct blkback_vblk_req *r;

	pthread_mutex_lock(&q->lock);
	r = q->free_reqs;
	if (r)
		q->free_reqs = r->next_free;
	pthread_mutex_unlock(&q->lock);
	if (!r) {
		r = malloc(sizeof(*r));
		if (!r)
			return NULL;
	}
	r->q = q;
	r->data_written = 0;
	return r;
}

static void put_req(struct blkback_vblk_queue *q, struct blkback_vblk_req *r)
{
	pthread_mutex_lock(&q->lock);
	r->next_free = q->free_reqs;
	q->free_reqs = r;
	pthread_mutex_unlock(&q->lock);
}

/* Pop and submit everything available, within the in-flight bound. */
static void process(struct blkback_vblk_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->batching = true;
	pthread_mutex_unlock(&q->lock);
	for (;;) {
		struct blkback_vblk_req *r;
		int ret, st;

		pthread_mutex_lock(&q->lock);
		/* At most one request per ring entry: a driver that offers
		 * heads again and again cannot make us allocate more. */
		if (q->inflight >= q->vq.num) {
			q->throttled = true;
			pthread_mutex_unlock(&q->lock);
			break;
		}
		pthread_mutex_unlock(&q->lock);
		r = get_req(q);
		if (!r) {
			vs_log(VS_LOG_ERROR, "vhost",
			       "%s: out of memory for a request", q->name);
			break;
		}
		ret = blkback_vq_pop(&q->vq, &r->chain, r->iov, VBLK_IOV_CAP);
		if (ret <= 0) {
			put_req(q, r);
			if (ret < 0) {
				if (!q->err_signalled)
					eventfd_signal(q->err_fd);
				q->err_signalled = true;
				break;
			}
			if (!blkback_vq_enable_notify(&q->vq))
				break;
			continue;
		}
		pthread_mutex_lock(&q->lock);
		q->inflight++;
		pthread_mutex_unlock(&q->lock);
		st = handle(r);
		if (st >= 0)
			complete(r, (uint8_t)st);
	}
	pthread_mutex_lock(&q->lock);
	q->batching = false;
	if (q->pending_signal) {
		q->pending_signal = false;
		maybe_signal(q);
	}
	pthread_mutex_unlock(&q->lock);
}

static void drain_eventfd(int fd, bool *dead, const char *what,
			  struct blkback_vblk_queue *q)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	/* A kick fd that is not an eventfd (EOF, an error) would make
	 * poll spin: stop watching it. */
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		vs_log(VS_LOG_ERROR, "vhost", "%s: %s fd unusable (%s)",
		       q->name, what, n == 0 ? "end of file" : strerror(errno));
		*dead = true;
	}
}

static void *queue_thread(void *arg)
{
	struct blkback_vblk_queue *q = arg;
	bool kick_dead = false, unused = false;

	/* Chains may have been added before the kick fd came. */
	process(q);
	for (;;) {
		struct pollfd p[3] = {
			{.fd = q->stop_fd, .events = POLLIN},
			{.fd = q->wake_fd, .events = POLLIN},
			{.fd = kick_dead ? -1 : q->kick_fd, .events = POLLIN},
		};

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			vs_log(VS_LOG_ERROR, "vhost", "%s: poll: %s", q->name,
			       strerror(errno));
			break;
		}
		if (p[0].revents)
			break;
		if (p[1].revents)
			drain_eventfd(q->wake_fd, &unused, "wake", q);
		if (p[2].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			vs_log(VS_LOG_ERROR, "vhost", "%s: kick fd unusable",
			       q->name);
			kick_dead = true;
		} else if (p[2].revents) {
			drain_eventfd(q->kick_fd, &kick_dead, "kick", q);
		}
		process(q);
	}
	return NULL;
}

int blkback_vblk_queue_start(struct blkback_vblk_queue *q,
			     struct vs_error **errp)
{
	struct blkback_vblk_dev *dev = q->dev;
	int ret;

	if (q->running || !q->enabled || q->num == 0 || !q->addr_set ||
	    q->kick_fd < 0 || dev->mem.nregions == 0)
		return 0;
	ret = blkback_vq_init(&q->vq, &dev->mem, q->num, q->desc_uva,
			      q->avail_uva, q->used_uva, q->base, q->name,
			      errp);
	if (ret < 0)
		return ret;
	q->vq.event_idx =
		dev->features & 1ull << BLKBACK_VIRTIO_RING_F_EVENT_IDX;
	q->vq.indirect =
		dev->features & 1ull << BLKBACK_VIRTIO_RING_F_INDIRECT_DESC;
	q->vq.broken = q->broken;
	q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->stop_fd < 0 || q->wake_fd < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: eventfd", q->name);
		goto fail;
	}
	q->inflight = 0;
	q->batching = q->pending_signal = q->throttled = false;
	ret = pthread_create(&q->thread, NULL, queue_thread, q);
	if (ret) {
		ret = vs_error_set_errno(errp, ret, "%s: cannot start a thread",
					 q->name);
		goto fail;
	}
	q->running = true;
	vs_debug("vhost", "%s: started, size %u, next available %u", q->name,
		 q->num, q->base);
	return 0;
fail:
	close_fd(&q->stop_fd);
	close_fd(&q->wake_fd);
	return ret;
}

void blkback_vblk_queue_stop(struct blkback_vblk_queue *q)
{
	struct blkback_vblk_req *r;

	if (!q->running)
		return;
	eventfd_signal(q->stop_fd);
	pthread_join(q->thread, NULL);
	/* The requests' buffers are guest memory: they must be done
	 * before anyone unmaps it. */
	pthread_mutex_lock(&q->lock);
	while (q->inflight > 0)
		pthread_cond_wait(&q->idle, &q->lock);
	r = q->free_reqs;
	q->free_reqs = NULL;
	pthread_mutex_unlock(&q->lock);
	while (r) {
		struct blkback_vblk_req *next = r->next_free;

		free(r);
		r = next;
	}
	close_fd(&q->stop_fd);
	close_fd(&q->wake_fd);
	q->base = q->vq.last_avail;
	q->broken = q->vq.broken;
	q->running = false;
	vs_debug("vhost", "%s: stopped at available index %u", q->name,
		 q->base);
}
