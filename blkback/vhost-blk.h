/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A virtio-blk device served over vhost-user: its feature bits and
 * config space, its queues, and the per-queue threads that turn
 * virtio-blk requests into blkback_reqs.
 *
 * The vhost-user side (vhost-user.c) owns the device and sets up each
 * queue's fields from the front-end's messages; it changes a queue only
 * while that queue is stopped (blkback_vblk_queue_stop), and the memory
 * table only while every queue is stopped.
 */
#ifndef VS_BLKBACK_VHOST_BLK_H
#define VS_BLKBACK_VHOST_BLK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blkback.h"
#include "guest-mem.h"
#include "virtqueue.h"

#define BLKBACK_VBLK_MAX_QUEUES 16

/* Virtio feature bits (virtio 1.x 6, 5.2.3). */
enum {
	BLKBACK_VIRTIO_BLK_F_SIZE_MAX = 1,
	BLKBACK_VIRTIO_BLK_F_SEG_MAX = 2,
	BLKBACK_VIRTIO_BLK_F_RO = 5,
	BLKBACK_VIRTIO_BLK_F_BLK_SIZE = 6,
	BLKBACK_VIRTIO_BLK_F_FLUSH = 9,
	BLKBACK_VIRTIO_BLK_F_TOPOLOGY = 10,
	BLKBACK_VIRTIO_BLK_F_CONFIG_WCE = 11,
	BLKBACK_VIRTIO_BLK_F_MQ = 12,
	BLKBACK_VIRTIO_BLK_F_DISCARD = 13,
	BLKBACK_VIRTIO_BLK_F_WRITE_ZEROES = 14,
	BLKBACK_VIRTIO_RING_F_INDIRECT_DESC = 28,
	BLKBACK_VIRTIO_RING_F_EVENT_IDX = 29,
	BLKBACK_VIRTIO_F_VERSION_1 = 32,
};

struct blkback_vblk_dev;
struct blkback_vblk_req;

struct blkback_vblk_queue {
	struct blkback_vblk_dev *dev;
	unsigned index;
	char name[96]; /* "EXPORT queue N", for logs */

	/* From the front-end; changed only while stopped. */
	unsigned num; /* 0: not set */
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	uint16_t base; /* the next available index to take */
	int kick_fd;
	int err_fd;
	bool enabled;
	/* The driver broke the ring: it stays stopped across our own
	 * restarts (a new memory table) until the front-end sets it up
	 * again (SET_VRING_NUM, ADDR or BASE). */
	bool broken;

	/* The running queue. */
	bool running;
	pthread_t thread;
	int stop_fd; /* eventfd: the thread exits */
	int wake_fd; /* eventfd: a completion made room */
	struct blkback_vq vq;

	/* Completions: the used ring, the call fd and what follows. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int call_fd;
	unsigned inflight;
	bool batching;	     /* the thread is popping: it signals at the end */
	bool pending_signal; /* pushed while batching */
	bool throttled;	     /* the thread waits for room (wake_fd) */
	bool err_signalled;
	struct blkback_vblk_req *free_reqs;
};

struct blkback_vblk_dev {
	struct blkback_disk *disk; /* the export's reference */
	const char *name;	   /* the export's id */
	struct blkback_guest_mem mem;
	uint64_t features; /* acknowledged by the driver */
	bool writeback;	   /* config space WCE: false means write-through */
	unsigned nqueues;
	struct blkback_vblk_queue q[BLKBACK_VBLK_MAX_QUEUES];
};

void blkback_vblk_dev_init(struct blkback_vblk_dev *dev,
			   struct blkback_disk *disk, const char *name,
			   unsigned nqueues);
/* Back to the state of a fresh connection: stop every queue (waiting
 * for its requests), close the fds, unmap guest memory. */
void blkback_vblk_dev_reset(struct blkback_vblk_dev *dev);
void blkback_vblk_dev_destroy(struct blkback_vblk_dev *dev);

/* The virtio feature bits this disk offers (without vhost-user's). */
uint64_t blkback_vblk_features(const struct blkback_disk *disk);

/* struct virtio_blk_config (60 bytes) into buf; returns its size. */
#define BLKBACK_VBLK_CONFIG_SIZE 60
void blkback_vblk_config(const struct blkback_vblk_dev *dev,
			 uint8_t buf[BLKBACK_VBLK_CONFIG_SIZE]);
/* The driver writes config space: only `writeback` may change. */
int blkback_vblk_set_config(struct blkback_vblk_dev *dev, uint32_t offset,
			    const uint8_t *buf, uint32_t len,
			    struct vs_error **errp);

/*
 * Start the queue's thread if it has everything (size, addresses,
 * kick, memory, enabled) and is not running.  Returns 0 (started or
 * not ready yet) or -errno when the rings are not in guest memory.
 */
int blkback_vblk_queue_start(struct blkback_vblk_queue *q,
			     struct vs_error **errp);
/* Stop the thread and wait for the queue's requests; q->base then
 * holds the next available index.  No-op when not running. */
void blkback_vblk_queue_stop(struct blkback_vblk_queue *q);
/* Replace the call fd (may run while the queue runs); takes fd. */
void blkback_vblk_queue_set_call(struct blkback_vblk_queue *q, int fd);

#endif
