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

int qcow2_l2_cache_init(struct qcow2 *s, uint64_t bytes)
{
	uint64_t want = bytes ? bytes : (uint64_t)s->l1_size * s->cluster_size;
	uint64_t n =
		VS_MIN(want, (uint64_t)QCOW2_L2_CACHE_MAX) >> s->cluster_bits;

	/* Slot buffers are allocated as they are first used: a large
	 * cache costs nothing until the tables are read. */
	return qcow2_cache_init(&s->l2c,
				(uint32_t)VS_MAX(n, (uint64_t)QCOW2_L2_MIN),
				s->cluster_size, true);
}

void qcow2_l2_cache_free(struct qcow2 *s)
{
	qcow2_cache_free(&s->l2c);
	pthread_mutex_destroy(&s->l2_lock);
}

static bool ranges_meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

const char *qcow2_overlap(const struct qcow2 *s, uint64_t off, uint64_t len)
{
	const struct qcow2_header *h = &s->m.h;

	if (ranges_meet(off, len, 0, s->cluster_size))
		return "the header";
	if (ranges_meet(off, len, h->l1_table_offset, (uint64_t)s->l1_size * 8))
		return "the L1 table";
	if (ranges_meet(off, len, h->refcount_table_offset,
			(uint64_t)h->refcount_table_clusters
				<< s->cluster_bits))
		return "the refcount table";
	if (h->nb_snapshots &&
	    ranges_meet(off, len, h->snapshots_offset,
			(uint64_t)h->nb_snapshots * QCOW2_SNAPSHOT_MIN_BYTES))
		return "the snapshot table";
	return NULL;
}

/*
 * An image open for writing is marked corrupt in its header too (version
 * 3), as QEMU marks it: the next open refuses to write it until a check
 * has looked at it.  Only the first finding writes the header.
 */
static void mark_corrupt(struct qcow2 *s)
{
	uint64_t be;

	if (!s->writable || s->m.h.version < 3 ||
	    __atomic_exchange_n(&s->corrupt, true, __ATOMIC_ACQ_REL))
		return;
	be = htobe64(__atomic_load_n(&s->m.h.incompatible, __ATOMIC_RELAXED) |
		     QCOW2_INCOMPAT_CORRUPT);
	if (vbd_pwrite(s->file, 72, &be, 8) < 0 || vbd_flush(s->file) < 0)
		vs_log(VS_LOG_ERROR, "qcow2",
		       "%s: cannot mark the image corrupt in its header",
		       s->filename);
	else
		vs_log(VS_LOG_ERROR, "qcow2",
		       "%s: marked corrupt; further writes are refused until "
		       "'vstor img check -r all' repairs it",
		       s->filename);
}

int qcow2_corrupt(struct qcow2 *s, const char *filename, const char *fmt,
		  uint64_t table, uint64_t index, uint64_t entry)
{
	vs_log(VS_LOG_ERROR, "qcow2",
	       "%s: corrupt image: %s table at offset 0x%" PRIx64
	       ", index %" PRIu64 ": entry 0x%016" PRIx64,
	       filename, fmt, table, index, entry);
	mark_corrupt(s);
	__atomic_store_n(&s->corrupt, true, __ATOMIC_RELAXED);
	return -EIO;
}

/*
 * Copy up to `max` L2 entries (of l2_words words each) from index `idx`
 * of the table at `l2off` into `out`.  Returns how many, or -errno.
 */
static int l2_entries(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		      uint32_t max, uint64_t *out)
{
	struct qcow2_meta_slot *slot;
	uint32_t n = VS_MIN(max, (1u << s->l2_bits) - idx);
	int ret;

	pthread_mutex_lock(&s->l2_lock);
	ret = qcow2_cache_get(&s->l2c, s->file, l2off, &slot);
	if (ret >= 0)
		memcpy(out, slot->table + (size_t)idx * s->l2_words,
		       (size_t)n * s->l2_words * sizeof(uint64_t));
	pthread_mutex_unlock(&s->l2_lock);
	return ret < 0 ? ret : (int)n;
}

int qcow2_l2_read(struct qcow2 *s, uint64_t l2off, uint64_t *table)
{
	int ret = l2_entries(s, l2off, 0, 1u << s->l2_bits, table);

	return ret < 0 ? ret : 0;
}

int qcow2_l2_get(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		 struct qcow2_l2e *e)
{
	uint64_t w[2] = {0, 0};
	int ret = l2_entries(s, l2off, idx, 1, w);

	e->e = w[0];
	e->bm = s->l2_words > 1 ? w[1] : 0;
	return ret < 0 ? ret : 0;
}

int qcow2_l2_set(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		 const struct qcow2_l2e *e)
{
	struct qcow2_meta_slot *slot;
	int ret;

	pthread_mutex_lock(&s->l2_lock);
	ret = qcow2_cache_get(&s->l2c, s->file, l2off, &slot);
	if (ret >= 0) {
		uint64_t *w = slot->table + (size_t)idx * s->l2_words;

		__atomic_store_n(&w[0], e->e, __ATOMIC_RELAXED);
		if (s->l2_words > 1)
			w[1] = e->bm;
		qcow2_cache_dirty(&s->l2c, slot);
	}
	pthread_mutex_unlock(&s->l2_lock);
	return ret < 0 ? ret : 0;
}

int qcow2_l2_new(struct qcow2 *s, uint64_t l2off, uint64_t from)
{
	size_t bytes = s->cluster_size;
	autofree uint64_t *copy = from ? malloc(bytes) : NULL;
	struct qcow2_meta_slot *slot;
	int ret = 0;

	if (from && !copy)
		return -ENOMEM;
	if (from)
		ret = qcow2_l2_read(s, from, copy);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->l2_lock);
	ret = qcow2_cache_new(&s->l2c, l2off, &slot);
	if (ret == 0 && copy)
		memcpy(slot->table, copy, bytes);
	pthread_mutex_unlock(&s->l2_lock);
	return ret;
}

void qcow2_l2_drop(struct qcow2 *s, uint64_t l2off)
{
	pthread_mutex_lock(&s->l2_lock);
	qcow2_cache_drop(&s->l2c, l2off);
	pthread_mutex_unlock(&s->l2_lock);
}

bool qcow2_l2_crowded(struct qcow2 *s)
{
	bool ret;

	pthread_mutex_lock(&s->l2_lock);
	ret = qcow2_cache_crowded(&s->l2c);
	pthread_mutex_unlock(&s->l2_lock);
	return ret;
}

int qcow2_l2_writeback(struct qcow2 *s)
{
	autofree uint64_t *buf = malloc(s->cluster_size);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	/* Writers are kept out by w_lock: a slot copied here does not
	 * change before it is marked clean.  Readers only need the slot
	 * to stay dirty (unevictable) until its cluster is on disk. */
	for (uint32_t i = 0; i < s->l2c.n && ret == 0; i++) {
		struct qcow2_meta_slot *sl = &s->l2c.slots[i];
		uint64_t off;

		pthread_mutex_lock(&s->l2_lock);
		off = sl->dirty ? sl->offset : 0;
		if (off)
			qcow2_cache_encode(&s->l2c, sl, buf);
		pthread_mutex_unlock(&s->l2_lock);
		if (!off)
			continue;
		ret = qcow2_file_pwrite(s, off, buf, s->cluster_size);
		if (ret == 0) {
			pthread_mutex_lock(&s->l2_lock);
			qcow2_cache_clean(&s->l2c, sl);
			pthread_mutex_unlock(&s->l2_lock);
		}
	}
	return ret;
}

bool qcow2_l2_dirty(struct qcow2 *s)
{
	bool ret;

	pthread_mutex_lock(&s->l2_lock);
	ret = s->l2c.ndirty > 0;
	pthread_mutex_unlock(&s->l2_lock);
	return ret;
}

/* The host cluster of an entry that points at one (not compressed). */
static uint64_t entry_host(uint64_t e)
{
	return e & QCOW2_OFFSET_MASK;
}

static int classify_compressed(struct qcow2 *s, const char *fn, uint64_t l2off,
			       uint32_t idx, uint64_t e, struct qcow2_run *r)
{
	uint64_t host, nsect;

	qcow2_compressed_loc(s->cluster_bits, e, &host, &nsect);
	r->type = QCOW2_COMPRESSED;
	r->host = host;
	r->csize =
		nsect * QCOW2_COMPRESSED_SECT - (host % QCOW2_COMPRESSED_SECT);
	if (host == 0 ||
	    host >= __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE))
		return qcow2_corrupt(s, fn,
				     "compressed cluster past the end of the "
				     "file: L2",
				     l2off, idx, e);
	if (qcow2_overlap(s, host, r->csize))
		return qcow2_corrupt(s, fn,
				     "compressed cluster over the image's own "
				     "metadata: L2",
				     l2off, idx, e);
	return 0;
}

static int check_data(struct qcow2 *s, const char *fn, uint64_t l2off,
		      uint32_t idx, uint64_t e)
{
	uint64_t host = entry_host(e);

	if (!VS_IS_ALIGNED(host, (uint64_t)s->cluster_size))
		return qcow2_corrupt(s, fn, "data cluster not aligned: L2",
				     l2off, idx, e);
	if (host >= __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE))
		return qcow2_corrupt(
			s, fn, "data cluster past the end of the file: L2",
			l2off, idx, e);
	if (qcow2_overlap(s, host, s->cluster_size))
		return qcow2_corrupt(s, fn,
				     "data cluster over the image's own "
				     "metadata: L2",
				     l2off, idx, e);
	return 0;
}

/*
 * Classify subcluster `sc` of L2 entry `idx` (whole cluster without
 * extended entries, where sc is 0).  r->host is the host offset of the
 * unit's first byte for NORMAL.
 */
static int classify(struct qcow2 *s, const char *fn, uint64_t l2off,
		    uint32_t idx, const struct qcow2_l2e *le, uint32_t sc,
		    struct qcow2_run *r)
{
	uint64_t e = le->e, host = entry_host(e);

	*r = (struct qcow2_run){.type = QCOW2_UNALLOCATED};
	if (e & QCOW2_L2E_COMPRESSED)
		return classify_compressed(s, fn, l2off, idx, e, r);
	if (s->l2_words > 1) {
		bool alloc = le->bm >> sc & 1, zero = le->bm >> (32 + sc) & 1;

		if (alloc && (zero || !host))
			return qcow2_corrupt(
				s, fn,
				zero ? "subcluster both allocated and zero: "
				       "L2"
				     : "allocated subcluster in an "
				       "unallocated cluster: L2",
				l2off, idx, le->bm);
		if (zero)
			r->type = QCOW2_ZERO;
		if (!alloc) {
			/* Block status reports where such a subcluster
			 * lives, as qemu-img map does. */
			if (host &&
			    VS_IS_ALIGNED(host, (uint64_t)s->cluster_size))
				r->host = host + ((uint64_t)sc << s->sc_bits);
			return 0;
		}
		if (check_data(s, fn, l2off, idx, e) < 0)
			return -EIO;
		r->type = QCOW2_NORMAL;
		r->host = host + ((uint64_t)sc << s->sc_bits);
		return 0;
	}
	if (e & QCOW2_L2E_ZERO) {
		if (s->m.h.version < 3)
			return qcow2_corrupt(
				s, fn, "zero flag in a version 2 image: L2",
				l2off, idx, e);
		r->type = QCOW2_ZERO;
		/* A preallocated zero cluster keeps its host cluster. */
		if (VS_IS_ALIGNED(host, (uint64_t)s->cluster_size))
			r->host = host;
		return 0;
	}
	if (!host)
		return 0;
	if (check_data(s, fn, l2off, idx, e) < 0)
		return -EIO;
	r->type = QCOW2_NORMAL;
	r->host = host;
	return 0;
}

int qcow2_l2_classify(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		      const struct qcow2_l2e *e, uint32_t sc,
		      struct qcow2_run *r)
{
	return classify(s, s->filename, l2off, idx, e, sc, r);
}

int qcow2_l2_table_of(struct qcow2 *s, const char *fn, uint64_t offset,
		      uint64_t *l2off, bool *owned)
{
	uint64_t i = offset >> (s->cluster_bits + s->l2_bits);
	uint64_t e, end;

	*l2off = 0;
	if (owned)
		*owned = false;
	if (i >= s->l1_size)
		return 0;
	e = __atomic_load_n(&s->l1[i], __ATOMIC_ACQUIRE);
	*l2off = e & QCOW2_OFFSET_MASK;
	if (owned)
		*owned = *l2off && (e & QCOW2_L2E_COPIED);
	if (!*l2off)
		return 0;
	end = VS_MAX(__atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE),
		     __atomic_load_n(&s->alloc_end, __ATOMIC_ACQUIRE));
	if (!VS_IS_ALIGNED(*l2off, (uint64_t)s->cluster_size) || *l2off > end ||
	    end - *l2off < s->cluster_size)
		return qcow2_corrupt(s, fn,
				     "L2 table not cluster-aligned inside the "
				     "file: L1",
				     s->m.h.l1_table_offset, i, e);
	if (qcow2_overlap(s, *l2off, s->cluster_size))
		return qcow2_corrupt(s, fn,
				     "L2 table over the image's own metadata: "
				     "L1",
				     s->m.h.l1_table_offset, i, e);
	return 0;
}

uint32_t qcow2_l2_index(const struct qcow2 *s, uint64_t offset)
{
	return (uint32_t)((offset >> s->cluster_bits) &
			  ((1ull << s->l2_bits) - 1));
}

int qcow2_l2_lookup(struct qcow2 *s, uint64_t offset, struct qcow2_l2e *e,
		    bool *owned)
{
	uint64_t l2off;
	int ret = qcow2_l2_table_of(s, s->filename, offset, &l2off, owned);

	*e = (struct qcow2_l2e){0};
	if (ret < 0 || !l2off)
		return ret;
	return qcow2_l2_get(s, l2off, qcow2_l2_index(s, offset), e);
}

#define MAP_BATCH 64

/*
 * Extend *run over `n` L2 entries from index `idx` (copied into `ents`),
 * starting at guest *pos (the run starts at `offset`).  Returns 1 when
 * every entry continued the run, 0 when it ended, or -errno when the
 * first unit is bad.
 */
static int map_entries(struct qcow2 *s, const char *filename, uint64_t l2off,
		       uint32_t idx, int n, const uint64_t *ents,
		       uint64_t offset, uint64_t *pos, uint64_t end,
		       struct qcow2_run *run)
{
	uint64_t usize = 1ull << s->sc_bits; /* the unit of mapping */
	uint64_t csize = s->cluster_size;

	for (int i = 0; i < n && *pos < end; i++) {
		struct qcow2_l2e le = {
			.e = ents[(size_t)i * s->l2_words],
			.bm = s->l2_words > 1 ? ents[(size_t)i * 2 + 1] : 0,
		};
		uint64_t cend = VS_ALIGN_DOWN(*pos, csize) + csize;

		while (*pos < cend && *pos < end) {
			uint64_t p = *pos, in = p & (usize - 1);
			uint32_t sc =
				(uint32_t)((p & (csize - 1)) >> s->sc_bits);
			struct qcow2_run r;
			int ret = classify(s, filename, l2off,
					   idx + (uint32_t)i, &le, sc, &r);

			if (ret < 0)
				/* Past the first unit the error comes when
				 * the caller gets there. */
				return p == offset ? ret : 0;
			if (r.type == QCOW2_COMPRESSED) {
				if (p != offset)
					return 0;
				*run = r;
				run->len = VS_MIN(cend - p, end - p);
				return 0;
			}
			if (r.host)
				r.host += in;
			if (p == offset) {
				*run = r;
				run->len = 0;
			} else if (r.type != run->type ||
				   !r.host != !run->host ||
				   (r.host && r.host != run->host + run->len)) {
				/* Zero and unallocated units that keep a host
				 * cluster form runs as data does, so that block
				 * status can name their host offset. */
				return 0;
			}
			run->len += VS_MIN(usize - in, end - p);
			*pos += VS_MIN(usize - in, end - p);
		}
	}
	return 1;
}

/*
 * Runs end at the end of the L2 table, as QEMU's do: block status
 * callers that compare extents (img compare -s) see the same ones.
 */
int qcow2_map(struct qcow2 *s, const char *filename, uint64_t offset,
	      uint64_t len, struct qcow2_run *run)
{
	uint64_t csize = s->cluster_size;
	uint64_t l2off, ents[MAP_BATCH * 2];
	uint32_t idx = qcow2_l2_index(s, offset);
	uint64_t want =
		((offset & (csize - 1)) + len + csize - 1) >> s->cluster_bits;
	uint64_t pos = offset, end = offset + len;
	int n, ret;

	ret = qcow2_l2_table_of(s, filename, offset, &l2off, NULL);
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
	while (want > 0 && idx < (1u << s->l2_bits)) {
		n = l2_entries(s, l2off, idx,
			       (uint32_t)VS_MIN(want, (uint64_t)MAP_BATCH),
			       ents);
		if (n < 0 && pos != offset)
			return 0; /* the error comes when the caller gets
				   * there */
		if (n < 0) {
			vs_log(VS_LOG_ERROR, "qcow2",
			       "%s: cannot read the L2 table at offset "
			       "0x%" PRIx64 ": %s",
			       filename, l2off, strerror(-n));
			return n;
		}
		ret = map_entries(s, filename, l2off, idx, n, ents, offset,
				  &pos, end, run);
		if (ret <= 0)
			return ret;
		idx += (uint32_t)n;
		want -= (uint64_t)n;
	}
	return 0;
}
