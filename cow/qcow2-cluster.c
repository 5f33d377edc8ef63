/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest offset to host offset: the L1 table (in memory from open), the L2
 * tables (read on demand into a small LRU cache) and the meaning of each
 * L2 entry.  Every offset read from a table is checked before use; a bad
 * one fails the request with -EIO, is logged with the table and index,
 * and marks the image corrupt for this open.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "qcow2.h"

int qcow2_l1_load(struct qcow2 *s, const char *filename, struct vs_error **errp)
{
	size_t bytes = (size_t)s->l1_size * sizeof(uint64_t);
	int ret;

	if (!s->l1_size)
		return 0;
	s->l1 = malloc(bytes);
	if (!s->l1)
		return vs_error_set(errp, ENOMEM,
				    "%s: out of memory for an L1 table of %zu "
				    "bytes",
				    filename, bytes);
	ret = vbd_pread(s->file, s->m.h.l1_table_offset, s->l1, bytes);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the L1 table at "
					  "offset %" PRIu64,
					  filename, s->m.h.l1_table_offset);
	for (uint32_t i = 0; i < s->l1_size; i++)
		s->l1[i] = be64toh(s->l1[i]);
	return 0;
}

int qcow2_l2_cache_init(struct qcow2 *s)
{
	for (int i = 0; i < QCOW2_L2_CACHE; i++) {
		s->l2[i].table = malloc(s->cluster_size);
		if (!s->l2[i].table)
			return -ENOMEM;
	}
	return 0;
}

void qcow2_l2_cache_free(struct qcow2 *s)
{
	for (int i = 0; i < QCOW2_L2_CACHE; i++)
		free(s->l2[i].table);
	pthread_mutex_destroy(&s->l2_lock);
}

int qcow2_corrupt(struct qcow2 *s, const char *filename, const char *fmt,
		  uint64_t table, uint64_t index, uint64_t entry)
{
	__atomic_store_n(&s->corrupt, true, __ATOMIC_RELAXED);
	vs_log(VS_LOG_ERROR, "qcow2",
	       "%s: corrupt image: %s table at offset 0x%" PRIx64
	       ", index %" PRIu64 ": entry 0x%016" PRIx64,
	       filename, fmt, table, index, entry);
	return -EIO;
}

int qcow2_cache_get(struct qcow2 *s, struct qcow2_meta_slot *slots, int n,
		    uint64_t *clock, uint64_t off, struct qcow2_meta_slot **out)
{
	struct qcow2_meta_slot *victim = &slots[0];
	int ret;

	for (int i = 0; i < n; i++) {
		if (slots[i].offset == off) {
			slots[i].used = ++*clock;
			*out = &slots[i];
			return 0;
		}
		if (slots[i].used < victim->used)
			victim = &slots[i];
	}
	victim->offset = 0;
	ret = vbd_pread(s->file, off, victim->data, s->cluster_size);
	if (ret < 0)
		return ret;
	victim->offset = off;
	victim->used = ++*clock;
	*out = victim;
	return 1;
}

/* The cache slot holding the L2 table at `off`, loaded if needed.
 * Called with l2_lock held. */
static int l2_slot(struct qcow2 *s, uint64_t off, struct qcow2_meta_slot **out)
{
	int ret = qcow2_cache_get(s, s->l2, QCOW2_L2_CACHE, &s->l2_clock, off,
				  out);

	if (ret == 1) /* just read: entries to host byte order */
		for (uint32_t i = 0; i < s->cluster_size / 8; i++)
			(*out)->table[i] = be64toh((*out)->table[i]);
	return ret < 0 ? ret : 0;
}

/*
 * Copy up to `max` L2 entries from index `idx` of the table at `l2off`
 * into `out`.  Returns how many, or -errno.
 */
static int l2_entries(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		      uint32_t max, uint64_t *out)
{
	struct qcow2_meta_slot *slot;
	uint32_t n = VS_MIN(max, (uint32_t)(s->cluster_size / 8) - idx);
	int ret;

	pthread_mutex_lock(&s->l2_lock);
	ret = l2_slot(s, l2off, &slot);
	if (ret == 0)
		memcpy(out, slot->table + idx, n * sizeof(uint64_t));
	pthread_mutex_unlock(&s->l2_lock);
	return ret < 0 ? ret : (int)n;
}

int qcow2_l2_read(struct qcow2 *s, uint64_t l2off, uint64_t *table)
{
	struct qcow2_meta_slot *slot;
	int ret;

	pthread_mutex_lock(&s->l2_lock);
	ret = l2_slot(s, l2off, &slot);
	if (ret == 0)
		memcpy(table, slot->table, s->cluster_size);
	pthread_mutex_unlock(&s->l2_lock);
	return ret;
}

void qcow2_l2_drop(struct qcow2 *s, uint64_t l2off)
{
	pthread_mutex_lock(&s->l2_lock);
	for (int i = 0; i < QCOW2_L2_CACHE; i++)
		if (s->l2[i].offset == l2off)
			s->l2[i].offset = 0;
	pthread_mutex_unlock(&s->l2_lock);
}

/* Classify L2 entry `idx` of the table at `l2off`. */
static int classify(struct qcow2 *s, const char *fn, uint64_t l2off,
		    uint32_t idx, uint64_t e, struct qcow2_run *r)
{
	uint64_t host;

	*r = (struct qcow2_run){.type = QCOW2_UNALLOCATED};
	if (e & QCOW2_L2E_COMPRESSED) {
		/* Offset in the low x bits, then the count of 512-byte
		 * sectors after the first one. */
		unsigned x = 62 - (s->cluster_bits - 8);
		uint64_t nsect = ((e >> x) & ((1ull << (62 - x)) - 1)) + 1;

		host = e & ((1ull << x) - 1);
		r->type = QCOW2_COMPRESSED;
		r->host = host;
		r->csize = nsect * QCOW2_COMPRESSED_SECT -
			   (host % QCOW2_COMPRESSED_SECT);
		if (host == 0 || host >= s->file_size)
			return qcow2_corrupt(
				s, fn,
				"compressed cluster past the end of "
				"the file: L2",
				l2off, idx, e);
		return 0;
	}
	host = e & QCOW2_OFFSET_MASK;
	if (e & QCOW2_L2E_ZERO) {
		if (s->m.h.version < 3)
			return qcow2_corrupt(
				s, fn, "zero flag in a version 2 image: L2",
				l2off, idx, e);
		r->type = QCOW2_ZERO;
		return 0;
	}
	if (!host)
		return 0;
	if (!VS_IS_ALIGNED(host, (uint64_t)s->cluster_size))
		return qcow2_corrupt(s, fn, "data cluster not aligned: L2",
				     l2off, idx, e);
	if (host >= s->file_size)
		return qcow2_corrupt(
			s, fn, "data cluster past the end of the file: L2",
			l2off, idx, e);
	r->type = QCOW2_NORMAL;
	r->host = host;
	return 0;
}

/* The L2 table for guest offset `offset`: 0 if none is allocated. */
static int l2_table_of(struct qcow2 *s, const char *fn, uint64_t offset,
		       uint64_t *l2off)
{
	uint64_t i = offset >> (s->cluster_bits + s->l2_bits);
	uint64_t e;

	*l2off = 0;
	if (i >= s->l1_size)
		return 0;
	e = __atomic_load_n(&s->l1[i], __ATOMIC_ACQUIRE);
	*l2off = e & QCOW2_OFFSET_MASK;
	if (!*l2off)
		return 0;
	if (!VS_IS_ALIGNED(*l2off, (uint64_t)s->cluster_size) ||
	    *l2off > s->file_size || s->file_size - *l2off < s->cluster_size)
		return qcow2_corrupt(s, fn,
				     "L2 table not cluster-aligned inside the "
				     "file: L1",
				     s->m.h.l1_table_offset, i, e);
	return 0;
}

int qcow2_l2_lookup(struct qcow2 *s, uint64_t offset, uint64_t *e, bool *owned)
{
	uint64_t l2off;
	uint32_t idx = (uint32_t)((offset >> s->cluster_bits) &
				  ((1ull << s->l2_bits) - 1));
	int ret = l2_table_of(s, s->filename, offset, &l2off);

	*e = 0;
	*owned = false;
	if (ret < 0 || !l2off)
		return ret;
	*owned = __atomic_load_n(
			 &s->l1[offset >> (s->cluster_bits + s->l2_bits)],
			 __ATOMIC_ACQUIRE) &
		 QCOW2_L2E_COPIED;
	ret = l2_entries(s, l2off, idx, 1, e);
	return ret < 0 ? ret : 0;
}

#define MAP_BATCH 64

int qcow2_map(struct qcow2 *s, const char *filename, uint64_t offset,
	      uint64_t len, struct qcow2_run *run)
{
	uint64_t csize = s->cluster_size;
	uint64_t in = offset & (csize - 1);
	uint64_t l2off, ents[MAP_BATCH];
	uint32_t idx = (uint32_t)((offset >> s->cluster_bits) &
				  ((1ull << s->l2_bits) - 1));
	uint64_t want = (in + len + csize - 1) >> s->cluster_bits;
	int n, ret;

	ret = l2_table_of(s, filename, offset, &l2off);
	if (ret < 0)
		return ret;
	if (!l2off) {
		/* The whole L2 range is unallocated. */
		uint64_t span = (uint64_t)1 << (s->cluster_bits + s->l2_bits);
		uint64_t left = span - (offset & (span - 1));

		*run = (struct qcow2_run){.type = QCOW2_UNALLOCATED,
					  .len = VS_MIN(len, left)};
		return 0;
	}
	n = l2_entries(s, l2off, idx,
		       (uint32_t)VS_MIN(want, (uint64_t)MAP_BATCH), ents);
	if (n < 0) {
		vs_log(VS_LOG_ERROR, "qcow2",
		       "%s: cannot read the L2 table at offset 0x%" PRIx64
		       ": %s",
		       filename, l2off, strerror(-n));
		return n;
	}
	ret = classify(s, filename, l2off, idx, ents[0], run);
	if (ret < 0)
		return ret;
	if (run->type == QCOW2_NORMAL)
		run->host += in;
	run->len = csize - in;
	if (run->type == QCOW2_COMPRESSED)
		goto out;
	for (int i = 1; i < n && run->len < len; i++) {
		struct qcow2_run next;

		ret = classify(s, filename, l2off, idx + (uint32_t)i, ents[i],
			       &next);
		if (ret < 0 || next.type != run->type)
			break; /* the error comes when the caller gets there */
		if (run->type == QCOW2_NORMAL &&
		    next.host != run->host + run->len)
			break;
		run->len += csize;
	}
out:
	run->len = VS_MIN(run->len, len);
	return 0;
}
