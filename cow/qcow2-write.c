/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing qcow2 images: opening for writing (dirty and corrupt bits),
 * guest writes with cluster allocation and copy-on-write, zero clusters,
 * flush and a clean close.
 *
 * Metadata never points at something before that something is stable:
 *
 *   1. data (whole new clusters, old content filled in) and new L2
 *      tables are written, then fdatasync;
 *   2. refcounts of the new clusters go up, then fdatasync;
 *   3. the L2 entries (or the L1 entry of a new L2 table) are written;
 *   4. only then, after another fdatasync, do the refcounts of what was
 *      replaced go down.
 *
 * A crash at any point leaves at most leaked clusters (refcount above
 * the references), which `qemu-img check -r leaks` reclaims.  Refcounts
 * are kept exact even with lazy_refcounts; such images only carry the
 * dirty bit while open, as the spec asks.  Metadata is written through,
 * so a flush is just an fdatasync of the file.  One lock (w_lock)
 * serialises allocating writers; writes to clusters the image owns alone
 * go straight to their place in parallel, and readers only share the L2
 * cache with writers.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "../common/log.h"
#include "qcow2-check.h"
#include "qcow2.h"

static struct qcow2 *qcow2_of(struct vbd *vbd)
{
	return vbd->opaque;
}

static int write_be64(struct qcow2 *s, uint64_t off, uint64_t v)
{
	uint64_t be = htobe64(v);

	return qcow2_file_pwrite(s, off, &be, 8);
}

/* The header's incompatible features, as one stable 8-byte write. */
static int set_incompatible(struct qcow2 *s, uint64_t bits)
{
	int ret = write_be64(s, 72, bits);

	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret == 0)
		s->m.h.incompatible = bits;
	return ret;
}

int qcow2_open_write(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp)
{
	const struct qcow2_header *h = &s->m.h;
	int ret;

	if (h->incompatible & QCOW2_INCOMPAT_CORRUPT &&
	    !(vbd->flags & VBD_O_REPAIR))
		return vs_error_set(errp, EIO,
				    "%s: the image is marked corrupt; run "
				    "'vstor img check -r all' before writing "
				    "it (it opens read-only)",
				    vbd->filename);
	if (pthread_mutex_init(&s->w_lock, NULL))
		return vs_error_set(errp, ENOMEM, "out of memory");
	s->writable = true;
	/* For check -r: the refcount structures may be broken; the
	 * check loads what it can itself. */
	if (vbd->flags & VBD_O_REPAIR)
		return qcow2_open_repair(vbd, s, errp);
	ret = qcow2_refcount_load(s, vbd->filename, errp);
	if (ret < 0)
		return ret;
	/* A crash while open with lazy refcounts: repaired now, as QEMU
	 * repairs it on open. */
	if (h->incompatible & QCOW2_INCOMPAT_DIRTY) {
		ret = qcow2_repair_dirty(vbd, s, errp);
		if (ret < 0)
			return ret;
	}
	s->lazy = h->version >= 3 &&
		  (h->compatible & QCOW2_COMPAT_LAZY_REFCOUNTS);
	/* Autoclear features (bitmaps...) are not kept up to date by this
	 * driver: clearing them tells their readers so. */
	if (h->version >= 3 && h->autoclear) {
		ret = write_be64(s, 88, 0);
		if (ret == 0)
			ret = vbd_flush(s->file);
		if (ret == 0)
			s->m.h.autoclear = 0;
	}
	if (ret == 0 && s->lazy)
		ret = set_incompatible(s,
				       h->incompatible | QCOW2_INCOMPAT_DIRTY);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot update the header",
					  vbd->filename);
	return 0;
}

void qcow2_close_write(struct vbd *vbd, struct qcow2 *s)
{
	int ret;

	if (!s->writable)
		return;
	ret = vbd_flush(s->file);
	/* A failed flush or a corrupt image keeps the dirty bit: check
	 * will have to look at it. */
	if (ret == 0 && s->lazy &&
	    !__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		ret = set_incompatible(s, s->m.h.incompatible &
						  ~QCOW2_INCOMPAT_DIRTY);
	if (ret < 0)
		vs_log(VS_LOG_ERROR, "qcow2", "%s: cannot close cleanly: %s",
		       vbd->filename, strerror(-ret));
}

int qcow2_meta_flush(struct qcow2 *s)
{
	return vbd_flush(s->file);
}

int qcow2_flush(struct vbd *vbd)
{
	return qcow2_meta_flush(qcow2_of(vbd));
}

/* One L2 table's worth of changes, committed in the crash-safe order. */
struct chunk {
	uint64_t l1i;
	uint64_t l2off;	 /* current table, 0 if none */
	bool l2_own;	 /* table exists with COPIED set in L1: update it */
	uint64_t *tab;	 /* the table, host byte order, being changed */
	uint32_t lo, hi; /* changed entries [lo, hi) */
	uint64_t *newc;	 /* clusters whose refcount goes up */
	uint32_t nnew;
	uint64_t *oldc; /* replaced entries whose references go down */
	uint32_t nold;
	bool wrote; /* something to make stable before refcounts */
};

static void chunk_free(struct chunk *c)
{
	free(c->tab);
	free(c->newc);
	free(c->oldc);
}

static int chunk_init(struct qcow2 *s, struct chunk *c, uint64_t off,
		      uint32_t nclusters)
{
	uint64_t e;

	memset(c, 0, sizeof(*c));
	c->l1i = off >> (s->cluster_bits + s->l2_bits);
	c->tab = calloc(1, s->cluster_size);
	c->newc = calloc(nclusters + 1, sizeof(uint64_t));
	c->oldc = calloc(nclusters, sizeof(uint64_t));
	if (!c->tab || !c->newc || !c->oldc)
		return -ENOMEM;
	c->lo = UINT32_MAX;
	e = s->l1[c->l1i];
	c->l2off = e & QCOW2_OFFSET_MASK;
	c->l2_own = c->l2off && (e & QCOW2_L2E_COPIED);
	if (!c->l2off)
		return 0;
	if (!VS_IS_ALIGNED(c->l2off, (uint64_t)s->cluster_size) ||
	    c->l2off + s->cluster_size > s->file_size)
		return qcow2_corrupt(s, s->filename,
				     "L2 table not cluster-aligned inside the "
				     "file: L1",
				     s->m.h.l1_table_offset, c->l1i, e);
	return qcow2_l2_read(s, c->l2off, c->tab);
}

/* Set entry `idx`; `old` is released after the new entry is stable. */
static void chunk_set(struct chunk *c, uint32_t idx, uint64_t e, bool release)
{
	if (release)
		c->oldc[c->nold++] = c->tab[idx];
	c->tab[idx] = e;
	c->lo = VS_MIN(c->lo, idx);
	c->hi = VS_MAX(c->hi, idx + 1);
}

/* True when an L2 entry holds a reference to host clusters. */
static bool holds_ref(uint64_t e)
{
	return (e & QCOW2_L2E_COMPRESSED) || (e & QCOW2_OFFSET_MASK);
}

static int release(struct qcow2 *s, uint64_t e)
{
	if (e & QCOW2_L2E_COMPRESSED) {
		unsigned x = 62 - (s->cluster_bits - 8);
		uint64_t nsect = ((e >> x) & ((1ull << (62 - x)) - 1)) + 1;
		uint64_t host = e & ((1ull << x) - 1);

		return qcow2_refcount_update(s, VS_ALIGN_DOWN(host, 512ull),
					     nsect * QCOW2_COMPRESSED_SECT, -1);
	}
	return qcow2_refcount_update(s, e & QCOW2_OFFSET_MASK, s->cluster_size,
				     -1);
}

static int be_write_table(struct qcow2 *s, uint64_t off, const uint64_t *tab,
			  uint32_t lo, uint32_t hi)
{
	autofree uint64_t *be = malloc((size_t)(hi - lo) * 8);

	if (!be)
		return -ENOMEM;
	for (uint32_t i = lo; i < hi; i++)
		be[i - lo] = htobe64(tab[i]);
	return qcow2_file_pwrite(s, off + (uint64_t)lo * 8, be,
				 (size_t)(hi - lo) * 8);
}

static int chunk_commit(struct qcow2 *s, struct chunk *c)
{
	uint64_t n2 = 0;
	int ret = 0;

	if (c->lo >= c->hi)
		return 0;
	if (!c->l2_own) {
		/* A new table: a copy of the shared one, or empty. */
		ret = qcow2_alloc_cluster(s, &n2);
		if (ret == 0)
			ret = be_write_table(s, n2, c->tab, 0,
					     s->cluster_size / 8);
		if (ret < 0)
			return ret;
		c->newc[c->nnew++] = n2;
		c->wrote = true;
	}
	if (c->wrote)
		ret = vbd_flush(s->file);
	for (uint32_t i = 0; i < c->nnew && ret == 0; i++)
		ret = qcow2_refcount_update(s, c->newc[i], s->cluster_size, 1);
	if (ret == 0 && c->nnew)
		ret = vbd_flush(s->file);
	if (ret < 0)
		return ret;
	if (n2) {
		ret = write_be64(s, s->m.h.l1_table_offset + c->l1i * 8,
				 n2 | QCOW2_L2E_COPIED);
		if (ret < 0)
			return ret;
		__atomic_store_n(&s->l1[c->l1i], n2 | QCOW2_L2E_COPIED,
				 __ATOMIC_RELEASE);
	} else {
		ret = be_write_table(s, c->l2off, c->tab, c->lo, c->hi);
	}
	if (c->l2off)
		qcow2_l2_drop(s, c->l2off);
	if (ret < 0 || (!c->nold && !(n2 && c->l2off)))
		return ret;
	ret = vbd_flush(s->file);
	for (uint32_t i = 0; i < c->nold && ret == 0; i++)
		ret = release(s, c->oldc[i]);
	/* The shared table it replaced has one reference less. */
	if (ret == 0 && n2 && c->l2off)
		ret = qcow2_refcount_update(s, c->l2off, s->cluster_size, -1);
	return ret;
}

/* Check a normal entry's offset before writing through it. */
static int check_host(struct qcow2 *s, struct chunk *c, uint32_t idx)
{
	uint64_t e = c->tab[idx], host = e & QCOW2_OFFSET_MASK;

	if (e & QCOW2_L2E_COMPRESSED)
		return 0;
	if (host && (!VS_IS_ALIGNED(host, (uint64_t)s->cluster_size) ||
		     host >= s->file_size))
		return qcow2_corrupt(s, s->filename,
				     "data cluster not cluster-aligned inside "
				     "the file: L2",
				     c->l2off, idx, e);
	if ((e & QCOW2_L2E_ZERO) && s->m.h.version < 3)
		return qcow2_corrupt(s, s->filename,
				     "zero flag in a version 2 image: L2",
				     c->l2off, idx, e);
	return 0;
}

static bool in_place(const struct chunk *c, uint64_t e)
{
	return c->l2_own && (e & QCOW2_L2E_COPIED) &&
	       !(e & (QCOW2_L2E_COMPRESSED | QCOW2_L2E_ZERO)) &&
	       (e & QCOW2_OFFSET_MASK);
}

/*
 * Write guest bytes [off, off+len), inside one cluster, from the list at
 * `skip`, into a new cluster: the rest of it comes from what the guest
 * reads there now, and the whole cluster goes out in one write.
 */
static int write_new_cluster(struct vbd *vbd, struct qcow2 *s, uint64_t off,
			     uint64_t len, const struct iovec *iov, int iovcnt,
			     size_t skip, uint64_t host, struct iovec *part)
{
	uint64_t cs = s->cluster_size, start = VS_ALIGN_DOWN(off, cs);
	uint64_t avail = VS_MIN(cs, vbd->size - start);
	int cnt, ret;

	if (len == cs) {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, skip, len);
		if (cnt < 0)
			return -EIO;
		return qcow2_file_pwritev(s, host, part, cnt);
	}
	memset(s->cbuf, 0, cs);
	if (len < avail) {
		struct iovec b = {.iov_base = s->cbuf, .iov_len = avail};

		ret = qcow2_preadv(vbd, start, &b, 1);
		if (ret < 0)
			return ret;
	}
	vs_iov_to_buf(iov, iovcnt, skip, s->cbuf + (off - start), len);
	return qcow2_file_pwrite(s, host, s->cbuf, cs);
}

/* A guest write inside one L2 table's range. */
static int write_chunk(struct vbd *vbd, struct qcow2 *s, uint64_t off,
		       uint64_t len, const struct iovec *iov, int iovcnt,
		       size_t skip, struct iovec *part)
{
	uint64_t cs = s->cluster_size;
	uint32_t n = (uint32_t)((VS_ALIGN_UP(off + len, cs) -
				 VS_ALIGN_DOWN(off, cs)) >>
				s->cluster_bits);
	struct chunk c;
	uint64_t done = 0;
	int ret = chunk_init(s, &c, off, n);

	while (ret == 0 && done < len) {
		uint64_t pos = off + done;
		uint64_t m = VS_MIN(len - done, cs - (pos & (cs - 1)));
		uint32_t idx = (uint32_t)((pos >> s->cluster_bits) &
					  ((1ull << s->l2_bits) - 1));
		uint64_t e = c.tab[idx], host;
		int cnt;

		ret = check_host(s, &c, idx);
		if (ret < 0)
			break;
		if (in_place(&c, e)) {
			cnt = vs_iov_slice(part, iovcnt, iov, iovcnt,
					   skip + done, m);
			ret = cnt < 0 ? -EIO
				      : qcow2_file_pwritev(
						s,
						(e & QCOW2_OFFSET_MASK) +
							(pos & (cs - 1)),
						part, cnt);
		} else {
			ret = qcow2_alloc_cluster(s, &host);
			if (ret == 0)
				ret = write_new_cluster(vbd, s, pos, m, iov,
							iovcnt, skip + done,
							host, part);
			if (ret == 0) {
				c.newc[c.nnew++] = host;
				c.wrote = true;
				chunk_set(&c, idx, host | QCOW2_L2E_COPIED,
					  holds_ref(e));
			}
		}
		done += m;
	}
	if (ret == 0)
		ret = chunk_commit(s, &c);
	chunk_free(&c);
	return ret;
}

/* The guest bytes of one L2 table from `off`, at most `left`. */
static uint64_t chunk_len(const struct qcow2 *s, uint64_t off, uint64_t left)
{
	uint64_t span = 1ull << (s->cluster_bits + s->l2_bits);

	return VS_MIN(left, span - (off & (span - 1)));
}

static int write_locked(struct vbd *vbd, struct qcow2 *s, uint64_t offset,
			const struct iovec *iov, int iovcnt)
{
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	int ret = 0;

	if (!part)
		return -ENOMEM;
	while (done < len && ret == 0) {
		uint64_t n = chunk_len(s, offset + done, len - done);

		ret = write_chunk(vbd, s, offset + done, n, iov, iovcnt, done,
				  part);
		done += n;
	}
	return ret;
}

/*
 * Write the clusters from `offset` on that the image owns alone straight
 * to their place, without the writers' lock: no writer moves such a
 * cluster (copy-on-write never touches it, and freed clusters are never
 * handed out again).  Returns the bytes written, stopping at the first
 * cluster that needs the locked path, or -errno.
 */
static ssize_t write_in_place(struct qcow2 *s, uint64_t offset,
			      const struct iovec *iov, int iovcnt, size_t len,
			      struct iovec *part)
{
	uint64_t cs = s->cluster_size;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = offset + done, e, host;
		size_t m = (size_t)VS_MIN((uint64_t)(len - done),
					  cs - (pos & (cs - 1)));
		bool owned;
		int cnt, ret = qcow2_l2_lookup(s, pos, &e, &owned);

		if (ret < 0)
			return ret;
		host = e & QCOW2_OFFSET_MASK;
		if (!owned || !(e & QCOW2_L2E_COPIED) ||
		    (e & (QCOW2_L2E_COMPRESSED | QCOW2_L2E_ZERO)) || !host ||
		    !VS_IS_ALIGNED(host, cs) ||
		    host >= __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE))
			break; /* the locked path decides (and checks) */
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, done, m);
		if (cnt < 0)
			return -EIO;
		ret = qcow2_file_pwritev(s, host + (pos & (cs - 1)), part, cnt);
		if (ret < 0)
			return ret;
		done += m;
	}
	return (ssize_t)done;
}

int qcow2_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		  int iovcnt)
{
	struct qcow2 *s = qcow2_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt);
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	struct iovec *rest;
	ssize_t done;
	int cnt, ret;

	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return -EIO;
	if (!part)
		return -ENOMEM;
	done = write_in_place(s, offset, iov, iovcnt, len, part);
	if (done < 0 || (size_t)done == len)
		return done < 0 ? (int)done : 0;
	rest = malloc(sizeof(*rest) * (size_t)iovcnt);
	if (!rest)
		return -ENOMEM;
	cnt = vs_iov_slice(rest, iovcnt, iov, iovcnt, (size_t)done,
			   len - (size_t)done);
	pthread_mutex_lock(&s->w_lock);
	ret = cnt < 0 ? -EIO
		      : write_locked(vbd, s, offset + (uint64_t)done, rest,
				     cnt);
	pthread_mutex_unlock(&s->w_lock);
	free(rest);
	return ret;
}

/* Whole clusters [off, off+len) of one L2 table become zero clusters. */
static int zero_chunk(struct vbd *vbd, struct qcow2 *s, uint64_t off,
		      uint64_t len, unsigned flags)
{
	uint64_t cs = s->cluster_size;
	uint32_t n = (uint32_t)((len + cs - 1) >> s->cluster_bits);
	struct chunk c;
	int ret = chunk_init(s, &c, off, n);

	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint32_t idx = (uint32_t)(((off >> s->cluster_bits) + i) &
					  ((1ull << s->l2_bits) - 1));
		uint64_t e = c.tab[idx];

		ret = check_host(s, &c, idx);
		if (ret < 0)
			break;
		if ((e & QCOW2_L2E_ZERO) && !(e & QCOW2_L2E_COMPRESSED))
			continue; /* reads as zeros already */
		if (!holds_ref(e) && !s->backing)
			continue; /* unallocated without a backing file */
		if (!(flags & VBD_ZERO_MAY_UNMAP) && in_place(&c, e))
			chunk_set(&c, idx, e | QCOW2_L2E_ZERO, false);
		else
			chunk_set(&c, idx, QCOW2_L2E_ZERO, holds_ref(e));
	}
	if (ret == 0)
		ret = chunk_commit(s, &c);
	chunk_free(&c);
	return ret;
}

static int zero_locked(struct vbd *vbd, struct qcow2 *s, uint64_t offset,
		       uint64_t len, unsigned flags)
{
	uint64_t cs = s->cluster_size, end = offset + len;
	/* A last cluster cut short by the disk's end counts as whole. */
	uint64_t a = VS_ALIGN_UP(offset, cs);
	uint64_t b = end == vbd->size ? VS_ALIGN_UP(end, cs)
				      : VS_ALIGN_DOWN(end, cs);
	autofree uint8_t *zero = calloc(2, cs);
	struct iovec iov = {.iov_base = zero};
	int ret = 0;

	if (!zero)
		return -ENOMEM;
	if (b <= a) {
		/* No whole cluster: at most two partial ones, as data. */
		iov.iov_len = (size_t)len;
		return write_locked(vbd, s, offset, &iov, 1);
	}
	if (offset < a) {
		iov.iov_len = (size_t)(a - offset);
		ret = write_locked(vbd, s, offset, &iov, 1);
	}
	for (uint64_t pos = a; ret == 0 && pos < VS_MIN(b, end);) {
		uint64_t n = chunk_len(s, pos, VS_MIN(b, end) - pos);

		ret = zero_chunk(vbd, s, pos, n, flags);
		pos += n;
	}
	if (ret == 0 && b < end) {
		iov.iov_len = (size_t)(end - b);
		ret = write_locked(vbd, s, b, &iov, 1);
	}
	return ret;
}

int qcow2_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		       unsigned flags)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret;

	if (s->m.h.version < 3)
		return -ENOTSUP; /* no zero flag: the core writes zeros */
	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return -EIO;
	pthread_mutex_lock(&s->w_lock);
	ret = zero_locked(vbd, s, offset, len, flags);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}
