/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Resizing qcow2 images (vbd_truncate) and emptying them
 * (vbd_make_empty), with qemu-img's semantics.
 *
 * Growing: when the L1 table is too small for the new size, a larger one
 * is written to new clusters and made stable with its refcounts before
 * the header switches to it (size, l1_size and l1_table_offset in one
 * 24-byte write); the old table is freed only after that.  A crash
 * leaves the old image or the new one, at most with a leaked table.  The
 * new bytes read as zeros: where a longer backing file would show
 * through, they become zero clusters, as QEMU makes them (version 2
 * images have no zero clusters and are refused there, as QEMU refuses).
 *
 * Shrinking (and emptying): the clusters past the new end are discarded
 * with the backing file hidden, so that their entries become plain
 * unallocated ones (QEMU's full discard); the L2 tables wholly past the
 * end are dropped from L1 (l1_size stays, as QEMU keeps it), then the
 * header takes the new size, and the file is cut after the last cluster
 * still in use.  Internal snapshots keep their own L1 tables and sizes,
 * so version 3 images with snapshots resize; version 2 ones cannot
 * record a snapshot's size and are refused, as QEMU refuses them.
 *
 * These are control-plane operations: the caller quiesces guest I/O
 * (writes in place run outside w_lock and trust the tables).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "qcow2.h"

static struct qcow2 *qcow2_of(struct vbd *vbd)
{
	return vbd->opaque;
}

/* L1 entries a disk of `size` bytes needs. */
static uint64_t l1_need(const struct qcow2 *s, uint64_t size)
{
	uint64_t per_l2 = 1ull << (s->cluster_bits + s->l2_bits);

	return size / per_l2 + (size % per_l2 != 0);
}

static int header_set_size(struct qcow2 *s, uint64_t size)
{
	uint64_t be = htobe64(size);
	int ret = qcow2_file_pwrite(s, 24, &be, 8);

	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret == 0)
		s->m.h.size = size;
	return ret;
}

/* Table indices in [t0, t1) without a refcount block. */
static uint64_t missing_blocks(const struct qcow2 *s, uint64_t t0, uint64_t t1)
{
	uint64_t k = 0;

	for (uint64_t t = t0; t < t1; t++)
		if (t >= s->rt_size || !s->rt[t])
			k++;
	return k;
}

/*
 * A run of `n` clusters from cluster `c0` on (the end of the image):
 * clusters [c0, c0 + n), then *k new refcount blocks for whatever part of
 * the run and of themselves no block covers yet.  The allocator would
 * put such blocks inside the run (each describes itself from where it
 * lies), which a run longer than a block's reach (256 clusters of 512
 * bytes) would never get past; so the blocks go after the run.
 */
static void plan_run(const struct qcow2 *s, uint64_t c0, uint64_t n,
		     uint64_t *k)
{
	uint64_t nk;

	*k = 0;
	for (;;) {
		uint64_t c1 = c0 + n + *k;

		nk = missing_blocks(s, c0 / s->rb_entries,
				    (c1 + s->rb_entries - 1) / s->rb_entries);
		if (nk <= *k)
			return;
		*k = nk;
	}
}

/*
 * A refcount table large enough for clusters [0, end): the allocator
 * grows it (with its own blocks and table) past `end`, when it must.
 */
static int reach(struct qcow2 *s, uint64_t end)
{
	uint64_t tend = (end + s->rb_entries - 1) / s->rb_entries, spare;
	uint64_t save = s->alloc_end, save_free = s->free_next;
	int ret;

	if (tend <= s->rt_size)
		return 0;
	/* Nothing below `end` may be handed out: the run goes there. */
	__atomic_store_n(&s->alloc_end, end << s->cluster_bits,
			 __ATOMIC_RELEASE);
	s->free_next = end;
	ret = qcow2_alloc_cluster(s, &spare);
	s->free_next = save_free;
	if (ret < 0) {
		__atomic_store_n(&s->alloc_end, VS_MAX(save, s->alloc_end),
				 __ATOMIC_RELEASE);
		return ret;
	}
	/* The cluster handed out stays free (its refcount is 0). */
	return tend <= s->rt_size ? 0 : -EFBIG;
}

/*
 * Put `len` bytes (`buf`) in `n` new contiguous clusters at the end of
 * the image: written and stable with their refcounts (new blocks after
 * the run, linked into the table only once written), so that the header
 * may point at them next.  *off is where they start.
 */
static int write_run(struct qcow2 *s, const void *buf, uint64_t len, uint64_t n,
		     uint64_t *off)
{
	uint64_t cs = s->cluster_size, rb = s->rb_entries, c0, k, t0, t1;
	autofree uint8_t *blk = malloc(cs);
	int ret;

	if (!blk)
		return -ENOMEM;
	c0 = s->alloc_end >> s->cluster_bits;
	plan_run(s, c0, n, &k);
	ret = reach(s, c0 + n + k);
	if (ret < 0)
		return ret;
	/* A larger table was built past the run; its blocks may cover the
	 * run's last part already. */
	plan_run(s, c0, n, &k);
	if ((c0 + n + k + rb - 1) / rb > s->rt_size)
		return -EFBIG;
	ret = qcow2_file_pwrite(s, c0 * cs, buf, (size_t)len);
	t0 = c0 / rb;
	t1 = (c0 + n + k + rb - 1) / rb;
	/* New blocks first (each says 1 for the run and the blocks it
	 * covers), then counts in the blocks that exist (cached). */
	for (uint64_t t = t0, pos = c0 + n; t < t1 && ret == 0; t++) {
		uint64_t a = VS_MAX(c0, t * rb),
			 b = VS_MIN(c0 + n + k, (t + 1) * rb);

		if (t < s->rt_size && s->rt[t]) {
			ret = qcow2_refcount_update(s, a * cs, (b - a) * cs, 1);
			continue;
		}
		memset(blk, 0, cs);
		for (uint64_t c = a; c < b; c++)
			qcow2_rc_set(blk, c - t * rb, s->rc_order, 1);
		ret = qcow2_file_pwrite(s, pos * cs, blk, cs);
		pos++;
	}
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	for (uint64_t t = t0, pos = c0 + n; t < t1 && ret == 0; t++) {
		uint64_t be;

		if (s->rt[t])
			continue;
		be = htobe64(pos * cs);
		ret = qcow2_file_pwrite(s, s->m.h.refcount_table_offset + t * 8,
					&be, 8);
		if (ret == 0)
			s->rt[t] = pos * cs;
		pos++;
	}
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret < 0)
		return ret;
	if (s->alloc_end < (c0 + n + k) * cs)
		__atomic_store_n(&s->alloc_end, (c0 + n + k) * cs,
				 __ATOMIC_RELEASE);
	*off = c0 * cs;
	return 0;
}

/*
 * A new L1 table of `need` entries (the current ones, then zeros) for a
 * disk of `size` bytes: written and stable with its refcounts, then the
 * header switches to it in one write, then the old table is freed.
 * Under w_lock, with no metadata change pending.
 */
static int l1_move(struct qcow2 *s, uint32_t need, uint64_t size)
{
	uint64_t cs = s->cluster_size;
	uint64_t bytes = VS_ALIGN_UP((uint64_t)need * 8, cs);
	uint64_t old_off = s->m.h.l1_table_offset, off;
	uint64_t old_bytes = VS_ALIGN_UP((uint64_t)s->l1_size * 8, cs);
	autofree uint64_t *nl1 = calloc(need, 8);
	autofree uint64_t *be = calloc(1, (size_t)bytes);
	uint8_t hdr[24];
	int ret;

	if (!nl1 || !be)
		return -ENOMEM;
	if (s->l1_size)
		memcpy(nl1, s->l1, (size_t)s->l1_size * 8);
	for (uint32_t i = 0; i < need; i++)
		be[i] = htobe64(nl1[i]);
	/* Written and counted, stable, before anything points at it. */
	ret = write_run(s, be, bytes, bytes / cs, &off);
	if (ret < 0)
		return ret;
	for (int i = 0; i < 8; i++) {
		hdr[i] = (uint8_t)(size >> (56 - 8 * i));
		hdr[16 + i] = (uint8_t)(off >> (56 - 8 * i));
	}
	for (int i = 0; i < 4; i++) {
		hdr[8 + i] = (uint8_t)(s->m.h.crypt_method >> (24 - 8 * i));
		hdr[12 + i] = (uint8_t)(need >> (24 - 8 * i));
	}
	ret = qcow2_file_pwrite(s, 24, hdr, sizeof(hdr));
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret < 0)
		return ret;
	free(s->l1);
	s->l1 = vs_steal(&nl1);
	s->l1_size = need;
	s->m.h.size = size;
	s->m.h.l1_size = need;
	s->m.h.l1_table_offset = off;
	if (old_bytes && old_off)
		ret = qcow2_free_later(s, old_off, old_bytes);
	return ret < 0 ? ret : qcow2_meta_flush(s);
}

/* Whether an L2 entry's host cluster may be released: a bad offset is
 * reported, never used to change a refcount. */
static int entry_sane(struct qcow2 *s, uint64_t l2off, uint32_t idx, uint64_t e)
{
	uint64_t host, nsect;

	if (e & QCOW2_L2E_COMPRESSED) {
		qcow2_compressed_loc(s->cluster_bits, e, &host, &nsect);
		if (host < s->file_size &&
		    !qcow2_overlap(s, VS_ALIGN_DOWN(host, 512ull),
				   nsect * QCOW2_COMPRESSED_SECT))
			return 0;
	} else {
		host = e & QCOW2_OFFSET_MASK;
		if (!host || (VS_IS_ALIGNED(host, (uint64_t)s->cluster_size) &&
			      host < s->file_size &&
			      !qcow2_overlap(s, host, s->cluster_size)))
			return 0;
	}
	return qcow2_corrupt(s, s->filename, "L2", l2off, idx, e);
}

/*
 * Drop the L2 tables of L1 entries [from, l1_size): the references of
 * every entry they hold and their own go (after the L1 entries are
 * stable: qcow2_meta_flush).  A refcount counts the L1 tables that reach
 * a cluster, so this is right for tables shared with snapshots too.
 * Under w_lock, after qcow2_meta_flush.
 */
static int drop_tables(struct qcow2 *s, uint32_t from)
{
	uint64_t cs = s->cluster_size;
	uint32_t n = 1u << s->l2_bits;
	autofree uint64_t *tab = malloc(cs);
	int ret = 0;

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = from; i < s->l1_size && ret == 0; i++) {
		uint64_t l2off = s->l1[i] & QCOW2_OFFSET_MASK;

		if (!l2off)
			continue;
		if (!VS_IS_ALIGNED(l2off, cs) || l2off >= s->file_size ||
		    cs > s->file_size - l2off || qcow2_overlap(s, l2off, cs))
			return qcow2_corrupt(s, s->filename, "L1",
					     s->m.h.l1_table_offset, i,
					     s->l1[i]);
		ret = qcow2_l2_read(s, l2off, tab);
		for (uint32_t j = 0; j < n && ret == 0; j++) {
			uint64_t e = tab[(size_t)j * s->l2_words];

			ret = entry_sane(s, l2off, j, e);
			if (ret == 0)
				ret = qcow2_release_later(s, e);
		}
		if (ret == 0)
			ret = qcow2_free_later(s, l2off, cs);
		if (ret == 0) {
			qcow2_l2_drop(s, l2off);
			__atomic_store_n(&s->l1[i], 0, __ATOMIC_RELEASE);
			qcow2_l1_dirty(s, i);
		}
		if (ret == 0 && s->nfrees > 4096)
			ret = qcow2_meta_flush(s);
	}
	return ret;
}

/*
 * Cut the file after the last cluster with a reference, as QEMU does
 * after a shrink.  Under w_lock, after qcow2_meta_flush.
 */
static int trim_file(struct qcow2 *s)
{
	uint64_t c = VS_ALIGN_UP(s->file_size, (uint64_t)s->cluster_size) >>
		     s->cluster_bits;
	uint64_t end;
	int ret;

	while (c > 1) {
		uint64_t rc;

		ret = qcow2_refcount_get(s, (c - 1) << s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		if (rc)
			break;
		c--;
	}
	end = c << s->cluster_bits;
	if (end >= s->file_size)
		return 0;
	ret = vbd_truncate(s->file, end, VBD_TRUNC_SHRINK, NULL);
	if (ret < 0)
		return ret;
	__atomic_store_n(&s->file_size, end, __ATOMIC_RELEASE);
	__atomic_store_n(&s->alloc_end, end, __ATOMIC_RELEASE);
	s->free_next = VS_MIN(s->free_next, c);
	if (s->comp_next >= end)
		s->comp_next = 0;
	return 0;
}

/*
 * Discard guest bytes [start, end) so that their entries become
 * unallocated: the backing file is hidden meanwhile, or discard would
 * leave zero clusters (keeping the backing file out) and, in version 2
 * images with a backing file, nothing at all.
 */
static int discard_full(struct vbd *vbd, struct qcow2 *s, uint64_t start,
			uint64_t end)
{
	struct vbd *backing = s->backing;
	int ret;

	if (start >= end)
		return 0;
	s->backing = NULL;
	ret = qcow2_discard(vbd, start, end - start);
	s->backing = backing;
	return ret;
}

/* Release everything from guest byte `from` (cluster-aligned) on: the
 * common part of shrinking and emptying. */
static int release_from(struct vbd *vbd, struct qcow2 *s, uint64_t from,
			uint64_t new_size)
{
	int ret = discard_full(vbd, s, from, vbd->size);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->w_lock);
	ret = qcow2_meta_flush(s);
	if (ret == 0)
		ret = drop_tables(s, (uint32_t)l1_need(s, from));
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	if (ret == 0 && new_size != s->m.h.size)
		ret = header_set_size(s, new_size);
	if (ret == 0)
		ret = trim_file(s);
	pthread_mutex_unlock(&s->w_lock);
	if (ret == 0)
		vbd->size = new_size;
	return ret;
}

/* Make [start, end) read as zeros after growing. */
static int zero_new(struct vbd *vbd, uint64_t start, uint64_t end)
{
	int ret = vbd_write_zeroes(vbd, start, end - start, 0);

	return ret < 0 ? ret : vbd_flush(vbd);
}

/*
 * The bytes of the old last cluster past the old end may hold data (an
 * earlier shrink keeps a partial cluster whole): growing must not show
 * them.
 */
static int zero_tail(struct vbd *vbd, struct qcow2 *s, uint64_t old)
{
	uint64_t cend = VS_ALIGN_UP(old, (uint64_t)s->cluster_size);
	struct qcow2_run r;
	int ret;

	if (cend == old)
		return 0;
	cend = VS_MIN(cend, vbd->size);
	ret = qcow2_map(s, vbd->filename, old, cend - old, &r);
	if (ret < 0 || r.type == QCOW2_UNALLOCATED || r.type == QCOW2_ZERO)
		return ret;
	return zero_new(vbd, old, cend);
}

/*
 * Preallocation (falloc, full): every new cluster allocated and written
 * with zeros, so that later writes find their space and touch no
 * metadata.  (QEMU's falloc reserves the data clusters without writing
 * them; here both modes write, which reads the same.)
 */
static int preallocate(struct vbd *vbd, uint64_t start, uint64_t end)
{
	const size_t chunk = 1u << 20;
	autofree uint8_t *zero = calloc(1, chunk);
	int ret = 0;

	if (!zero)
		return -ENOMEM;
	for (uint64_t off = start; off < end && ret == 0; off += chunk) {
		size_t n = (size_t)VS_MIN((uint64_t)chunk, end - off);

		ret = vbd_pwrite(vbd, off, zero, n);
	}
	return ret < 0 ? ret : vbd_flush(vbd);
}

static int grow(struct vbd *vbd, struct qcow2 *s, uint64_t size, unsigned flags,
		struct vs_error **errp)
{
	uint64_t old = vbd->size, need = l1_need(s, size);
	bool shows = s->backing && vbd_size(s->backing) > old;
	int ret;

	if (need * 8 > QCOW2_MAX_L1_BYTES)
		return vs_error_set(errp, EFBIG,
				    "%s: failed to grow the L1 table: %" PRIu64
				    " bytes need %" PRIu64
				    " entries, more than a 32 MiB table holds",
				    vbd->filename, size, need);
	/* Checked before anything changes: the backing file would show
	 * through the new bytes, and only zero clusters can hide it. */
	if (shows && s->m.h.version < 3)
		return vs_error_set(errp, ENOTSUP,
				    "%s: failed to zero out new clusters: a "
				    "version 2 image has no zero clusters to "
				    "hide its longer backing file with",
				    vbd->filename);
	pthread_mutex_lock(&s->w_lock);
	ret = qcow2_meta_flush(s);
	if (ret == 0)
		ret = need > s->l1_size ? l1_move(s, (uint32_t)need, size)
					: header_set_size(s, size);
	pthread_mutex_unlock(&s->w_lock);
	if (ret < 0)
		return vs_error_set_errno(
			errp, ret, "%s: cannot grow to %" PRIu64 " bytes",
			vbd->filename, size);
	vbd->size = size;
	if (flags & (VBD_TRUNC_PREALLOC_FALLOC | VBD_TRUNC_PREALLOC_FULL))
		ret = preallocate(vbd, old, size);
	else
		ret = shows ? zero_new(vbd, old, size) : zero_tail(vbd, s, old);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: failed to zero out new clusters "
					  "from offset %" PRIu64,
					  vbd->filename, old);
	return 0;
}

static int check_resizable(struct vbd *vbd, struct qcow2 *s, uint64_t size,
			   unsigned flags, struct vs_error **errp)
{
	if (!s->writable)
		return vs_error_set(errp, EROFS, "%s: opened read-only",
				    vbd->filename);
	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED) ||
	    (s->m.h.incompatible & QCOW2_INCOMPAT_CORRUPT))
		return vs_error_set(errp, EIO,
				    "%s: the image is corrupt; run 'vstor img "
				    "check -r all' before resizing it",
				    vbd->filename);
	if (size % 512)
		return vs_error_set(errp, EINVAL,
				    "%s: the new size must be a multiple of "
				    "512 (%" PRIu64 " is not)",
				    vbd->filename, size);
	if (s->m.h.nb_snapshots && s->m.h.version < 3 && size != vbd->size)
		return vs_error_set(errp, ENOTSUP,
				    "%s: can't resize a v2 image which has "
				    "snapshots",
				    vbd->filename);
	return 0;
}

int qcow2_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
		   struct vs_error **errp)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret = check_resizable(vbd, s, size, flags, errp);

	if (ret < 0 || size == vbd->size)
		return ret;
	if (size > vbd->size)
		return grow(vbd, s, size, flags, errp);
	ret = release_from(vbd, s, VS_ALIGN_UP(size, (uint64_t)s->cluster_size),
			   size);
	if (ret < 0)
		return vs_error_set_errno(
			errp, ret, "%s: cannot shrink to %" PRIu64 " bytes",
			vbd->filename, size);
	return 0;
}

int qcow2_make_empty(struct vbd *vbd, struct vs_error **errp)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret;

	if (!s->writable)
		return vs_error_set(errp, EROFS, "%s: opened read-only",
				    vbd->filename);
	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return vs_error_set(errp, EIO, "%s: the image is corrupt",
				    vbd->filename);
	ret = release_from(vbd, s, 0, vbd->size);
	if (ret < 0)
		return vs_error_set_errno(
			errp, ret, "%s: cannot empty the image", vbd->filename);
	return 0;
}
