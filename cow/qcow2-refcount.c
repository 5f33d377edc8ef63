/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Refcounts: the refcount table (in memory while the image is open for
 * writing), refcount blocks (a write-back cache) and cluster allocation.
 *
 * The cached blocks only ever run ahead of the disk by increments, which
 * are safe to write at any moment (a crash then leaks, never frees, a
 * cluster): decrements wait in qcow2-flush.c until the tables that
 * dropped the reference are stable.  So a free cluster (refcount 0 here)
 * is free on disk too, and allocation may hand it out again.
 *
 * Everything here runs under the writers' lock (w_lock), except
 * qcow2_file_pwritev, which in-place writes also use.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/atomic.h"
#include "../common/cleanup.h"
#include "../common/iov.h"
#include "../common/log.h"
#include "qcow2.h"

uint64_t qcow2_rc_get(const uint8_t *block, uint64_t i, uint32_t order)
{
	unsigned bits = 1u << order;
	uint64_t v = 0;

	if (bits < 8) {
		unsigned per = 8 / bits;

		return (block[i / per] >> (bits * (i % per))) &
		       ((1u << bits) - 1);
	}
	for (unsigned b = 0; b < bits / 8; b++)
		v = v << 8 | block[i * (bits / 8) + b];
	return v;
}

void qcow2_rc_set(uint8_t *block, uint64_t i, uint32_t order, uint64_t v)
{
	unsigned bits = 1u << order;

	if (bits < 8) {
		unsigned per = 8 / bits, shift = bits * (unsigned)(i % per);
		unsigned mask = ((1u << bits) - 1) << shift;

		block[i / per] = (uint8_t)((block[i / per] & ~mask) |
					   ((unsigned)v << shift & mask));
		return;
	}
	for (unsigned b = bits / 8; b-- > 0; v >>= 8)
		block[i * (bits / 8) + b] = (uint8_t)v;
}

uint64_t qcow2_refcount_max(const struct qcow2 *s)
{
	return s->rc_order == 6 ? UINT64_MAX
				: (1ull << (1u << s->rc_order)) - 1;
}

int qcow2_refcount_load(struct qcow2 *s, const char *filename,
			struct vs_error **errp)
{
	const struct qcow2_header *h = &s->m.h;
	size_t bytes = (size_t)h->refcount_table_clusters << s->cluster_bits;
	int ret;

	s->rc_order = h->refcount_order;
	s->rb_entries = ((uint64_t)s->cluster_size * 8) >> s->rc_order;
	s->rt_size = bytes / 8;
	s->rt = malloc(bytes ? bytes : 1);
	s->cbuf = malloc(s->cluster_size);
	if (!s->rt || !s->cbuf ||
	    qcow2_cache_init(&s->rbc, QCOW2_RB_CACHE, s->cluster_size, false))
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = bytes ? vbd_pread(s->file, h->refcount_table_offset, s->rt, bytes)
		    : 0;
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the refcount table "
					  "at offset %" PRIu64,
					  filename, h->refcount_table_offset);
	for (uint64_t i = 0; i < s->rt_size; i++) {
		s->rt[i] = be64toh(s->rt[i]);
		if (s->rt[i] & ~QCOW2_OFFSET_MASK ||
		    !VS_IS_ALIGNED(s->rt[i], (uint64_t)s->cluster_size) ||
		    s->rt[i] >= s->file_size ||
		    (s->rt[i] && qcow2_overlap(s, s->rt[i], s->cluster_size)))
			return vs_error_set(
				errp, EIO,
				"%s: corrupt image: refcount table "
				"entry %" PRIu64 " is 0x%" PRIx64
				" (not a cluster inside the file, clear "
				"of the header and tables); "
				"run 'qemu-img check -r all'",
				filename, i, s->rt[i]);
	}
	s->alloc_end = VS_ALIGN_UP(s->file_size, (uint64_t)s->cluster_size);
	s->free_next = 0;
	return 0;
}

int qcow2_refcount_reload(struct qcow2 *s, const char *filename,
			  struct vs_error **errp)
{
	qcow2_cache_free(&s->rbc);
	free(s->rt);
	free(s->cbuf);
	s->rt = NULL;
	s->cbuf = NULL;
	return qcow2_refcount_load(s, filename, errp);
}

void qcow2_refcount_free(struct qcow2 *s)
{
	qcow2_cache_free(&s->rbc);
	free(s->rt);
	free(s->cbuf);
	free(s->frees);
}

int qcow2_file_pwritev(struct qcow2 *s, uint64_t off, const struct iovec *iov,
		       int iovcnt)
{
	uint64_t end = off + vs_iov_size(iov, iovcnt);
	int ret;

	/* In-place writes run outside the writers' lock: both sizes only
	 * grow, atomically. */
	ret = vbd_pwritev_grow(s->file, off, iov, iovcnt);
	if (ret == 0)
		vs_atomic_max(&s->file_size, end);
	return ret;
}

int qcow2_file_pwrite(struct qcow2 *s, uint64_t off, const void *buf,
		      size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return qcow2_file_pwritev(s, off, &iov, 1);
}

/* The cached refcount block at `off`, read if needed. */
static int rb_slot(struct qcow2 *s, uint64_t off, struct qcow2_meta_slot **out)
{
	int ret = qcow2_cache_get(&s->rbc, s->file, off, out);

	/* Every slot dirty: write them back (increments only, always
	 * safe) and try again. */
	if (ret == -EBUSY) {
		ret = qcow2_refcount_writeback(s);
		if (ret == 0)
			ret = qcow2_cache_get(&s->rbc, s->file, off, out);
	}
	return ret < 0 ? ret : 0;
}

/* The block holding the refcount of cluster number `c`, and the index in
 * it; *out = NULL when no block covers it. */
static int rb_of(struct qcow2 *s, uint64_t c, struct qcow2_meta_slot **out,
		 uint64_t *idx)
{
	uint64_t t = c / s->rb_entries;

	*out = NULL;
	*idx = c % s->rb_entries;
	if (t >= s->rt_size || !s->rt[t])
		return 0;
	return rb_slot(s, s->rt[t], out);
}

int qcow2_refcount_get(struct qcow2 *s, uint64_t host, uint64_t *val)
{
	struct qcow2_meta_slot *rb;
	uint64_t idx;
	int ret = rb_of(s, host >> s->cluster_bits, &rb, &idx);

	*val = rb && ret == 0 ? qcow2_rc_get(rb->data, idx, s->rc_order) : 0;
	return ret;
}

int qcow2_refcount_writeback(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->rbc.n; i++) {
		struct qcow2_meta_slot *sl = &s->rbc.slots[i];
		int ret;

		if (!sl->dirty)
			continue;
		ret = qcow2_file_pwrite(s, sl->offset, sl->data,
					s->cluster_size);
		if (ret < 0)
			return ret;
		qcow2_cache_clean(&s->rbc, sl);
	}
	return 0;
}

bool qcow2_refcount_dirty(const struct qcow2 *s)
{
	return s->rbc.ndirty > 0;
}

bool qcow2_refcount_crowded(const struct qcow2 *s)
{
	return qcow2_cache_crowded(&s->rbc);
}

int qcow2_refcount_update(struct qcow2 *s, uint64_t host, uint64_t len,
			  int delta)
{
	uint64_t c = host >> s->cluster_bits;
	uint64_t last = (host + len - 1) >> s->cluster_bits;

	while (c <= last) {
		struct qcow2_meta_slot *rb;
		uint64_t idx;
		int ret = rb_of(s, c, &rb, &idx);

		if (ret < 0)
			return ret;
		if (!rb)
			return qcow2_corrupt(s, s->filename,
					     "no refcount block for a cluster "
					     "in use: refcount",
					     s->m.h.refcount_table_offset,
					     c / s->rb_entries, 0);
		for (; c <= last && idx < s->rb_entries; c++, idx++) {
			uint64_t v = qcow2_rc_get(rb->data, idx, s->rc_order);

			if ((delta > 0 && v == qcow2_refcount_max(s)) ||
			    (delta < 0 && v == 0))
				return qcow2_corrupt(
					s, s->filename,
					delta > 0 ? "refcount overflow: "
						    "refcount block"
						  : "refcount below zero: "
						    "refcount block",
					rb->offset, idx, v);
			qcow2_rc_set(rb->data, idx, s->rc_order,
				     delta > 0 ? v + 1 : v - 1);
		}
		qcow2_cache_dirty(&s->rbc, rb);
	}
	return 0;
}

/*
 * New refcount blocks (and a larger table when the table is full) for
 * clusters from number `start` on, none of which is covered yet.  They
 * are laid out at `start`: K blocks, then N clusters of a new table, each
 * describing itself.  Iterate until the layout covers its own end.
 */
static int grow(struct qcow2 *s, uint64_t start)
{
	uint64_t tpc = s->cluster_size / 8; /* table entries per cluster */
	uint64_t old_clusters = s->m.h.refcount_table_clusters;
	uint64_t k = 0, n = 0, e, tend, t0 = start / s->rb_entries;
	uint64_t csize = s->cluster_size;
	autofree uint64_t *nt = NULL;
	autofree uint8_t *blk = malloc(csize);
	int ret;

	if (!blk)
		return -ENOMEM;
	for (;;) {
		uint64_t nk = 0, nn = 0;

		/* At least `start` itself must end up covered. */
		e = start + VS_MAX(k + n, 1);
		tend = (e + s->rb_entries - 1) / s->rb_entries;
		for (uint64_t t = t0; t < tend; t++)
			if (t >= s->rt_size || !s->rt[t])
				nk++;
		if (tend > s->rt_size)
			nn = VS_MAX((tend + tpc - 1) / tpc, 2 * old_clusters);
		if (nk == k && nn == n)
			break;
		k = VS_MAX(k, nk);
		n = VS_MAX(n, nn);
	}
	if (n > UINT32_MAX || (n && n * csize > QCOW2_MAX_REFTABLE_BYTES))
		return -EFBIG;
	/* Blocks: each says 1 for every cluster of [start, e) it covers. */
	uint64_t pos = start;
	uint64_t newent[64];
	uint64_t nnew = 0;

	for (uint64_t t = t0; t < tend; t++) {
		if (t < s->rt_size && s->rt[t])
			continue;
		memset(blk, 0, csize);
		for (uint64_t c = VS_MAX(start, t * s->rb_entries);
		     c < VS_MIN(e, (t + 1) * s->rb_entries); c++)
			qcow2_rc_set(blk, c - t * s->rb_entries, s->rc_order,
				     1);
		ret = qcow2_file_pwrite(s, pos * csize, blk, csize);
		if (ret < 0)
			return ret;
		if (nnew == VS_ARRAY_SIZE(newent))
			return -EFBIG;
		newent[nnew++] = t << 32 | (pos - start);
		pos++;
	}
	/* Clusters of [start, e) that an existing block covers. */
	for (uint64_t t = t0; t < tend; t++) {
		uint64_t a = VS_MAX(start, t * s->rb_entries);
		uint64_t b = VS_MIN(e, (t + 1) * s->rb_entries);

		if (t < s->rt_size && s->rt[t] && a < b) {
			ret = qcow2_refcount_update(s, a * csize,
						    (b - a) * csize, 1);
			if (ret < 0)
				return ret;
		}
	}
	/* Those increments must be on disk before the blocks they count
	 * are linked in. */
	ret = qcow2_refcount_writeback(s);
	if (ret < 0)
		return ret;
	if (n == 0) {
		ret = qcow2_order(s);
		for (uint64_t i = 0; i < nnew && ret == 0; i++) {
			uint64_t t = newent[i] >> 32;
			uint64_t be = htobe64(
				(start + (newent[i] & 0xffffffffu)) * csize);

			ret = qcow2_file_pwrite(
				s, s->m.h.refcount_table_offset + t * 8, &be,
				8);
			if (ret == 0)
				s->rt[t] = be64toh(be);
		}
		if (ret == 0)
			ret = qcow2_order(s);
		__atomic_store_n(&s->alloc_end, e * csize, __ATOMIC_RELEASE);
		return ret;
	}
	/* A new table: the old entries and the new ones, then the header
	 * switches to it with one write, then the old table is freed. */
	uint64_t nsize = n * tpc, toff = (start + k) * csize;
	uint8_t hdr[12];

	nt = calloc(nsize, 8);
	if (!nt)
		return -ENOMEM;
	memcpy(nt, s->rt, s->rt_size * 8);
	for (uint64_t i = 0; i < nnew; i++)
		nt[newent[i] >> 32] =
			(start + (newent[i] & 0xffffffffu)) * csize;
	for (uint64_t i = 0; i < nsize; i++)
		nt[i] = htobe64(nt[i]);
	ret = qcow2_file_pwrite(s, toff, nt, nsize * 8);
	if (ret == 0)
		ret = qcow2_order(s);
	if (ret < 0)
		return ret;
	for (int i = 0; i < 8; i++)
		hdr[i] = (uint8_t)(toff >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = (uint8_t)(n >> (24 - 8 * i));
	ret = qcow2_file_pwrite(s, 48, hdr, sizeof(hdr));
	if (ret == 0)
		ret = qcow2_order(s);
	if (ret < 0)
		return ret;
	uint64_t old_off = s->m.h.refcount_table_offset;

	for (uint64_t i = 0; i < nsize; i++)
		nt[i] = be64toh(nt[i]);
	free(s->rt);
	s->rt = vs_steal(&nt);
	s->rt_size = nsize;
	s->m.h.refcount_table_offset = toff;
	s->m.h.refcount_table_clusters = (uint32_t)n;
	__atomic_store_n(&s->alloc_end, e * csize, __ATOMIC_RELEASE);
	vs_debug("qcow2",
		 "refcount table moved to 0x%" PRIx64 " (%" PRIu64 " clusters)",
		 toff, n);
	return qcow2_refcount_update(s, old_off, old_clusters * csize, -1);
}

/*
 * The first cluster from free_next on, below the end, whose refcount is
 * 0: *host = 0 when there is none.
 */
static int find_free(struct qcow2 *s, uint64_t *host)
{
	uint64_t end = s->alloc_end >> s->cluster_bits;

	*host = 0;
	while (s->free_next < end) {
		uint64_t c = s->free_next;
		struct qcow2_meta_slot *rb;
		uint64_t idx;
		int ret = rb_of(s, c, &rb, &idx);

		if (ret < 0)
			return ret;
		if (!rb) {
			/* No block: nothing here is in use, and nothing
			 * can be allocated without one. */
			s->free_next = VS_MIN(end, (c / s->rb_entries + 1) *
							   s->rb_entries);
			continue;
		}
		for (; idx < s->rb_entries && c < end; idx++, c++)
			if (!qcow2_rc_get(rb->data, idx, s->rc_order)) {
				s->free_next = c + 1;
				*host = c << s->cluster_bits;
				return 0;
			}
		s->free_next = c;
	}
	return 0;
}

int qcow2_alloc_cluster(struct qcow2 *s, uint64_t *host)
{
	int ret = find_free(s, host);

	if (ret < 0 || *host)
		return ret;
	for (;;) {
		uint64_t c = s->alloc_end >> s->cluster_bits, v;
		struct qcow2_meta_slot *rb;
		uint64_t idx;

		ret = rb_of(s, c, &rb, &idx);
		if (ret < 0)
			return ret;
		if (!rb) {
			ret = grow(s, c);
			if (ret < 0)
				return ret;
			continue;
		}
		v = qcow2_rc_get(rb->data, idx, s->rc_order);
		__atomic_store_n(&s->alloc_end, s->alloc_end + s->cluster_size,
				 __ATOMIC_RELEASE);
		if (v == 0) {
			*host = c << s->cluster_bits;
			s->free_next = c + 1;
			return 0;
		}
	}
}
