/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device side of a split virtqueue (virtio 1.x, 2.7): popping
 * descriptor chains from the available ring and returning them on the
 * used ring.  Nothing here knows vhost-user or virtio-blk, so that the
 * walker can be fuzzed over memory built from bytes.
 *
 * The rings live in guest memory that the guest writes at any time:
 * every field is read once into a local before it is checked and used,
 * and every address is translated through struct blkback_guest_mem.
 * A chain that breaks the rules either becomes a request with an error
 * (when its status byte can still be found) or marks the queue broken:
 * a broken queue pops nothing more until it is set up again.
 *
 * Locking: pop and the avail-event update belong to the one thread that
 * processes the queue; push and need_signal to whoever holds the
 * queue's completion lock.  They touch disjoint fields.
 */
#ifndef VS_BLKBACK_VIRTQUEUE_H
#define VS_BLKBACK_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/error.h"
#include "guest-mem.h"

#define BLKBACK_VQ_MAX_SIZE 32768u
/* Entries of one indirect table (Linux uses at most seg_max + 2). */
#define BLKBACK_VQ_MAX_INDIRECT 4096u

/* Ring layouts, little-endian (we run on little-endian hosts only). */
enum {
	BLKBACK_VRING_DESC_F_NEXT = 1,
	BLKBACK_VRING_DESC_F_WRITE = 2,
	BLKBACK_VRING_DESC_F_INDIRECT = 4,
	BLKBACK_VRING_AVAIL_F_NO_INTERRUPT = 1,
};

struct blkback_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct blkback_vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* num entries, then used_event */
};

struct blkback_vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct blkback_vring_used {
	uint16_t flags;
	uint16_t idx;
	struct blkback_vring_used_elem ring[]; /* num, then avail_event */
};

/* Bytes each ring takes for a queue of `num` entries (with the event
 * fields, which we always account for). */
uint64_t blkback_vring_desc_size(unsigned num);
uint64_t blkback_vring_avail_size(unsigned num);
uint64_t blkback_vring_used_size(unsigned num);

struct blkback_vq {
	unsigned num; /* power of 2, 1..BLKBACK_VQ_MAX_SIZE */
	const struct blkback_guest_mem *mem;
	struct blkback_vring_desc *desc;
	struct blkback_vring_avail *avail;
	struct blkback_vring_used *used;
	bool event_idx;	  /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	const char *name; /* for the one log line when it breaks */

	/* The popping thread's. */
	uint16_t last_avail;
	bool broken;

	/* Under the completion lock. */
	uint16_t used_idx;
	uint16_t signalled_used;
	bool signalled_used_valid;
};

/*
 * Set up a queue over rings at the front-end's virtual addresses
 * (vhost-user's SET_VRING_ADDR).  Checks the size, each ring's
 * alignment and that each ring lies inside one region.  The used index
 * continues from what the used ring holds.
 */
int blkback_vq_init(struct blkback_vq *vq, const struct blkback_guest_mem *mem,
		    unsigned num, uint64_t desc_uva, uint64_t avail_uva,
		    uint64_t used_uva, uint16_t last_avail, const char *name,
		    struct vs_error **errp);

/*
 * One popped chain.  The device-readable buffers come first in iov
 * (n_out entries), then the device-writable ones (n_in).  The iovecs
 * point into guest memory.
 */
struct blkback_vq_chain {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len; /* bytes; what iov holds when !error */
	/* The last byte of the last non-empty writable buffer (the
	 * virtio-blk status), or NULL. */
	uint8_t *status;
	/*
	 * 0, or why the chain cannot be served though its status byte was
	 * found: -EFAULT (a buffer outside guest memory), -EINVAL (a
	 * readable buffer after a writable one), -ENOBUFS (more buffers
	 * than iov has room for).
	 */
	int error;
};

/*
 * Pop the next available chain into *c, using iov[0..cap).  Returns 1
 * (a chain; look at c->error), 0 (none available) or -EIO (the queue is
 * broken, now or earlier: logged once).
 */
int blkback_vq_pop(struct blkback_vq *vq, struct blkback_vq_chain *c,
		   struct iovec *iov, unsigned cap);

/*
 * After pop returned 0: with EVENT_IDX, ask the driver to kick when it
 * adds beyond what we took.  Returns true if chains arrived meanwhile
 * (pop again before sleeping).
 */
bool blkback_vq_enable_notify(struct blkback_vq *vq);

/* Return a chain with `len` bytes written into its writable buffers. */
void blkback_vq_push(struct blkback_vq *vq, uint16_t head, uint32_t len);

/* After one or more pushes: should the driver be interrupted?  (Honours
 * NO_INTERRUPT, or used_event with EVENT_IDX.) */
bool blkback_vq_need_signal(struct blkback_vq *vq);

/* Mark the queue broken and log `why` once. */
void blkback_vq_break(struct blkback_vq *vq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
