/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The split virtqueue's descriptor walker and used ring. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "virtqueue.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the virtqueue code reads guest rings as little-endian"
#endif

_Static_assert(sizeof(struct blkback_vring_desc) == 16, "virtq_desc");
_Static_assert(sizeof(struct blkback_vring_used_elem) == 8, "virtq_used_elem");

uint64_t blkback_vring_desc_size(unsigned num)
{
	return 16ull * num;
}

uint64_t blkback_vring_avail_size(unsigned num)
{
	return 4 + 2ull * num + 2;
}

uint64_t blkback_vring_used_size(unsigned num)
{
	return 4 + 8ull * num + 2;
}

/* Guest-shared fields: each read and written exactly once, atomically, so
 * that a guest changing them under us cannot make a check and a use see
 * two values. */
static inline uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

void blkback_vq_break(struct blkback_vq *vq, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (vq->broken)
		return;
	vq->broken = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vs_log(VS_LOG_ERROR, "vhost",
	       "%s: the driver broke the virtqueue (%s); it is stopped until "
	       "the device is reset",
	       vq->name ? vq->name : "virtqueue", why);
}

int blkback_vq_init(struct blkback_vq *vq, const struct blkback_guest_mem *mem,
		    unsigned num, uint64_t desc_uva, uint64_t avail_uva,
		    uint64_t used_uva, uint16_t last_avail, const char *name,
		    struct vs_error **errp)
{
	const char *what = name ? name : "virtqueue";

	memset(vq, 0, sizeof(*vq));
	if (num == 0 || num > BLKBACK_VQ_MAX_SIZE || (num & (num - 1)))
		return vs_error_set(errp, EINVAL,
				    "%s: size %u is not a power of 2 up to %u",
				    what, num, BLKBACK_VQ_MAX_SIZE);
	vq->desc = blkback_guest_mem_uva(mem, desc_uva,
					 blkback_vring_desc_size(num));
	vq->avail = blkback_guest_mem_uva(mem, avail_uva,
					  blkback_vring_avail_size(num));
	vq->used = blkback_guest_mem_uva(mem, used_uva,
					 blkback_vring_used_size(num));
	if (!vq->desc || !vq->avail || !vq->used)
		return vs_error_set(errp, EFAULT,
				    "%s: the %s ring at 0x%" PRIx64
				    " (size %u) is not inside guest memory",
				    what,
				    !vq->desc	 ? "descriptor"
				    : !vq->avail ? "available"
						 : "used",
				    !vq->desc	 ? desc_uva
				    : !vq->avail ? avail_uva
						 : used_uva,
				    num);
	/* Checked on our addresses: those are what we dereference. */
	if ((uintptr_t)vq->desc % 16 || (uintptr_t)vq->avail % 2 ||
	    (uintptr_t)vq->used % 4)
		return vs_error_set(
			errp, EINVAL,
			"%s: misaligned rings (descriptors 0x%" PRIx64
			", available 0x%" PRIx64 ", used 0x%" PRIx64 ")",
			what, desc_uva, avail_uva, used_uva);
	vq->num = num;
	vq->mem = mem;
	vq->name = name;
	vq->last_avail = last_avail;
	vq->used_idx = load16(&vq->used->idx);
	return 0;
}

/* The walk's state: where buffers go and what went wrong. */
struct walk {
	struct blkback_vq_chain *c;
	struct iovec *iov;
	unsigned cap, n;
	bool seen_write;
};

static void add_buffer(struct blkback_vq *vq, struct walk *w,
		       const struct blkback_vring_desc *d)
{
	bool write = d->flags & BLKBACK_VRING_DESC_F_WRITE;
	struct blkback_vq_chain *c = w->c;
	unsigned before = w->n;
	int ret;

	if (d->len == 0)
		return;
	if (write) {
		/* A later writable buffer that cannot be mapped hides the
		 * status byte: forget the earlier one. */
		c->status = blkback_guest_mem_gpa(vq->mem,
						  d->addr + (d->len - 1), 1);
		if (d->addr > UINT64_MAX - (d->len - 1))
			c->status = NULL;
		w->seen_write = true;
	} else if (w->seen_write && !c->error) {
		/* virtio 2.7.4.2: writable buffers follow readable ones. */
		c->error = -EINVAL;
	}
	if (c->error)
		return; /* keep walking only to find the status byte */
	ret = blkback_guest_mem_iov(vq->mem, d->addr, d->len, w->iov, w->cap,
				    &w->n);
	if (ret < 0) {
		c->error = ret;
		return;
	}
	if (write) {
		c->n_in += w->n - before;
		c->in_len += d->len;
	} else {
		c->n_out += w->n - before;
		c->out_len += d->len;
	}
}

/* Follow the chain from `head`; 0, or -EIO when it cannot be walked. */
static int walk_chain(struct blkback_vq *vq, struct walk *w, uint16_t head)
{
	/* Bytes, not descriptors: an indirect table may be misaligned. */
	const uint8_t *table = (const uint8_t *)vq->desc;
	unsigned table_len = vq->num, steps = 0, idx = head;
	bool indirect = false;

	for (;;) {
		struct blkback_vring_desc d;

		/* More steps than entries means a loop. */
		if (++steps > table_len) {
			blkback_vq_break(vq, "chain from head %u loops", head);
			return -EIO;
		}
		memcpy(&d, table + (size_t)idx * sizeof(d), sizeof(d));
		if (d.flags & BLKBACK_VRING_DESC_F_INDIRECT) {
			if (!vq->indirect || indirect ||
			    (d.flags & BLKBACK_VRING_DESC_F_NEXT)) {
				blkback_vq_break(
					vq,
					"head %u: indirect descriptor %u %s",
					head, idx,
					!vq->indirect ? "without INDIRECT_DESC"
					: indirect ? "inside an indirect table"
						   : "with NEXT set");
				return -EIO;
			}
			if (d.len == 0 || d.len % 16 ||
			    d.len / 16 > BLKBACK_VQ_MAX_INDIRECT) {
				blkback_vq_break(vq,
						 "head %u: indirect table of "
						 "%" PRIu32 " bytes",
						 head, d.len);
				return -EIO;
			}
			table = blkback_guest_mem_gpa(vq->mem, d.addr, d.len);
			if (!table) {
				blkback_vq_break(vq,
						 "head %u: indirect table at "
						 "0x%" PRIx64 " outside memory",
						 head, d.addr);
				return -EIO;
			}
			table_len = d.len / 16;
			indirect = true;
			steps = 0;
			idx = 0;
			continue;
		}
		add_buffer(vq, w, &d);
		if (!(d.flags & BLKBACK_VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= table_len) {
			blkback_vq_break(vq,
					 "head %u: next %u past a table of %u",
					 head, d.next, table_len);
			return -EIO;
		}
		idx = d.next;
	}
}

int blkback_vq_pop(struct blkback_vq *vq, struct blkback_vq_chain *c,
		   struct iovec *iov, unsigned cap)
{
	struct walk w = {.c = c, .iov = iov, .cap = cap};
	uint16_t avail_idx, head;

	if (vq->broken)
		return -EIO;
	/* Acquire: the ring entries were written before the index. */
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num) {
		blkback_vq_break(
			vq, "available index %u is %u ahead of %u", avail_idx,
			(uint16_t)(avail_idx - vq->last_avail), vq->last_avail);
		return -EIO;
	}
	head = load16(&vq->avail->ring[vq->last_avail & (vq->num - 1)]);
	if (head >= vq->num) {
		blkback_vq_break(vq, "head %u past a queue of %u", head,
				 vq->num);
		return -EIO;
	}
	vq->last_avail++;
	memset(c, 0, sizeof(*c));
	c->head = head;
	if (walk_chain(vq, &w, head) < 0)
		return -EIO;
	if (c->error && !c->status) {
		blkback_vq_break(vq,
				 "head %u: bad buffers (%s) and no status byte",
				 head, strerror(-c->error));
		return -EIO;
	}
	return 1;
}

bool blkback_vq_enable_notify(struct blkback_vq *vq)
{
	if (vq->broken)
		return false;
	if (vq->event_idx)
		store16((uint16_t *)&vq->used->ring[vq->num], vq->last_avail);
	/* The event index must be visible before we look again, or a
	 * driver that checked it just before would never kick. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) !=
	       vq->last_avail;
}

void blkback_vq_push(struct blkback_vq *vq, uint16_t head, uint32_t len)
{
	struct blkback_vring_used_elem *e =
		&vq->used->ring[vq->used_idx & (vq->num - 1)];

	store32(&e->id, head);
	store32(&e->len, len);
	vq->used_idx++;
	/* Release: the element is written before the index shows it. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

bool blkback_vq_need_signal(struct blkback_vq *vq)
{
	uint16_t old, now, event;
	bool valid;

	/* The used index is visible before we read what the driver wants. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&vq->avail->flags) &
			 BLKBACK_VRING_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_used_valid;
	now = vq->used_idx;
	vq->signalled_used = now;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	event = load16(&vq->avail->ring[vq->num]);
	/* virtio 2.7.10: interrupt when used_event lies in (old, now]. */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}
