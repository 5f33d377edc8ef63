/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing qcow2 images: opening for writing (dirty and corrupt bits),
 * guest writes with cluster allocation and copy-on-write, subclusters,
 * zero clusters, discard, flush and a clean close.
 *
 * Data goes to its cluster at once; metadata changes (L2 entries, L1
 * entries, refcounts) are made in the caches and written back in a safe
 * order by qcow2-flush.c, at the guest's flush or when a cache fills up.
 * References that a write drops (a cluster replaced by its copy, a
 * discarded one) are only released after that write-back, so a cluster
 * is never reused while a stable table still points at it.
 *
 * One lock (w_lock) serialises writers that change metadata; writes to
 * clusters (or allocated subclusters) that the image owns alone go
 * straight to their place in parallel, and readers only share the L2
 * cache with writers.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/atomic.h"
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
	s->unsafe = vbd->flags & VBD_O_UNSAFE;
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
	ret = qcow2_meta_flush(s);
	if (ret == 0 && s->unsafe)
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

int qcow2_flush(struct vbd *vbd)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret;

	pthread_mutex_lock(&s->w_lock);
	ret = qcow2_meta_flush(s);
	/* Unordered write-back synced nothing: this is the one sync. */
	if (ret == 0 && s->unsafe)
		ret = vbd_flush(s->file);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}

/* Bits [a, b) of a 32-bit subcluster mask. */
static uint64_t sc_mask(uint32_t a, uint32_t b)
{
	return (b >= 32 ? 0xffffffffull : (1ull << b) - 1) & ~((1ull << a) - 1);
}

#define SC_ALL 0xffffffffull

/* A cluster the image owns alone, stored plainly at its host offset. */
static bool owned_data(const struct qcow2_l2e *le)
{
	return (le->e & QCOW2_L2E_COPIED) && !(le->e & QCOW2_L2E_COMPRESSED) &&
	       (le->e & QCOW2_OFFSET_MASK);
}

/* Subclusters [a, b) of the unit at `pos` (a = b - 1 = 0 without
 * extended L2 entries, where the unit is the cluster). */
static void sc_range(const struct qcow2 *s, uint64_t pos, uint64_t len,
		     uint32_t *a, uint32_t *b)
{
	uint64_t in = pos & (s->cluster_size - 1);

	*a = (uint32_t)(in >> s->sc_bits);
	*b = (uint32_t)((in + len - 1) >> s->sc_bits) + 1;
}

/* Whether guest bytes [pos, pos+len) of one cluster can be written
 * where they are, with no metadata change. */
static bool writable_in_place(const struct qcow2 *s, const struct qcow2_l2e *le,
			      uint64_t pos, uint64_t len)
{
	uint32_t a, b;

	if (!owned_data(le))
		return false;
	if (s->l2_words == 1)
		return !(le->e & QCOW2_L2E_ZERO);
	sc_range(s, pos, len, &a, &b);
	return (le->bm & sc_mask(a, b)) == sc_mask(a, b);
}

/* Whether guest bytes [start, start+len) read as zeros now, as far as
 * this image's tables say (a backing file underneath: assume not). */
static bool reads_zero(struct vbd *vbd, struct qcow2 *s, uint64_t start,
		       uint64_t len)
{
	uint64_t end = VS_MIN(start + len, vbd->size);

	while (start < end) {
		struct qcow2_run r;

		if (qcow2_map(s, s->filename, start, end - start, &r) < 0)
			return false;
		if (r.type == QCOW2_UNALLOCATED && s->backing &&
		    start < vbd_size(s->backing))
			return false;
		if (r.type != QCOW2_ZERO && r.type != QCOW2_UNALLOCATED)
			return false;
		start += r.len;
	}
	return true;
}

/*
 * Write guest bytes [pos, pos+len), from the list at `skip`, into the
 * host unit at `host` that holds guest bytes [ustart, ustart+ulen): the
 * rest of the unit is filled with what the guest reads there now, and
 * the unit goes out in one write.  A unit past the end of the file that
 * should read as zeros needs no filling: the file reads zeros there.
 */
static int fill_write(struct vbd *vbd, struct qcow2 *s, uint64_t ustart,
		      uint64_t ulen, uint64_t host, uint64_t pos, uint64_t len,
		      const struct iovec *iov, int iovcnt, size_t skip,
		      struct iovec *part)
{
	uint64_t avail =
		ustart < vbd->size ? VS_MIN(ulen, vbd->size - ustart) : 0;
	int cnt, ret;

	if ((pos == ustart && len == ulen) ||
	    (host >= __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE) &&
	     reads_zero(vbd, s, ustart, ulen))) {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, skip, len);
		if (cnt < 0)
			return -EIO;
		return qcow2_file_pwritev(s, host + (pos - ustart), part, cnt);
	}
	memset(s->cbuf, 0, ulen);
	if (len < avail) {
		struct iovec b = {.iov_base = s->cbuf, .iov_len = avail};

		ret = qcow2_preadv(vbd, ustart, &b, 1);
		if (ret < 0)
			return ret;
	}
	vs_iov_to_buf(iov, iovcnt, skip, s->cbuf + (pos - ustart), len);
	return qcow2_file_pwrite(s, host, s->cbuf, ulen);
}

/*
 * The L2 table for guest `pos`, owned by this image alone: a new one
 * (empty, or a copy of the shared table it replaces) if need be.
 */
static int l2_for_write(struct qcow2 *s, uint64_t pos, uint64_t *l2off)
{
	uint32_t i = (uint32_t)(pos >> (s->cluster_bits + s->l2_bits));
	uint64_t old, n2;
	bool owned;
	int ret = qcow2_l2_table_of(s, s->filename, pos, &old, &owned);

	*l2off = old;
	if (ret < 0 || owned)
		return ret;
	ret = qcow2_alloc_cluster(s, &n2);
	if (ret == 0)
		ret = qcow2_refcount_update(s, n2, s->cluster_size, 1);
	if (ret == 0)
		ret = qcow2_l2_new(s, n2, old);
	/* A shared table keeps its other references; this one goes. */
	if (ret == 0 && old)
		ret = qcow2_free_later(s, old, s->cluster_size);
	if (ret < 0)
		return ret;
	__atomic_store_n(&s->l1[i], n2 | QCOW2_L2E_COPIED, __ATOMIC_RELEASE);
	qcow2_l1_dirty(s, i);
	*l2off = n2;
	return 0;
}

/* A fresh cluster, counted. */
static int new_cluster(struct qcow2 *s, uint64_t *host)
{
	int ret = qcow2_alloc_cluster(s, host);

	return ret < 0 ? ret
		       : qcow2_refcount_update(s, *host, s->cluster_size, 1);
}

/* Check every unit of the entry the write touches before using it. */
static int check_entry(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		       const struct qcow2_l2e *le, uint32_t a, uint32_t b)
{
	struct qcow2_run r;

	for (uint32_t sc = a; sc < b; sc++) {
		int ret = qcow2_l2_classify(s, l2off, idx, le, sc, &r);

		if (ret < 0)
			return ret;
		if (le->e & QCOW2_L2E_COMPRESSED)
			break;
	}
	return 0;
}

/* Subclusters of a cluster owned alone: allocated ones are written in
 * place, the others filled and then marked allocated. */
static int write_owned_sc(struct vbd *vbd, struct qcow2 *s, uint64_t pos,
			  uint64_t len, const struct iovec *iov, int iovcnt,
			  size_t skip, struct iovec *part, struct qcow2_l2e *le)
{
	uint64_t usize = 1ull << s->sc_bits,
		 cstart = VS_ALIGN_DOWN(pos, (uint64_t)s->cluster_size);
	uint64_t host = le->e & QCOW2_OFFSET_MASK, done = 0;
	int ret = 0;

	while (done < len && ret == 0) {
		uint64_t p = pos + done, ustart = VS_ALIGN_DOWN(p, usize);
		uint64_t m = VS_MIN(len - done, ustart + usize - p);
		uint32_t sc = (uint32_t)((ustart - cstart) >> s->sc_bits);
		uint64_t h = host + (ustart - cstart);

		if (le->bm >> sc & 1)
			ret = fill_write(vbd, s, p, m, h + (p - ustart), p, m,
					 iov, iovcnt, skip + done, part);
		else
			ret = fill_write(vbd, s, ustart, usize, h, p, m, iov,
					 iovcnt, skip + done, part);
		done += m;
	}
	return ret;
}

/* A guest write inside one cluster. */
static int write_cluster(struct vbd *vbd, struct qcow2 *s, uint64_t pos,
			 uint64_t len, const struct iovec *iov, int iovcnt,
			 size_t skip, struct iovec *part)
{
	uint64_t cs = s->cluster_size, cstart = VS_ALIGN_DOWN(pos, cs), l2off;
	uint32_t idx = qcow2_l2_index(s, pos), a, b;
	struct qcow2_l2e le, old;
	uint64_t host;
	int ret = l2_for_write(s, pos, &l2off);

	if (ret == 0)
		ret = qcow2_l2_get(s, l2off, idx, &le);
	sc_range(s, pos, len, &a, &b);
	if (ret == 0)
		ret = check_entry(s, l2off, idx, &le, a, b);
	if (ret < 0)
		return ret;
	old = le;
	if (writable_in_place(s, &le, pos, len)) {
		host = (le.e & QCOW2_OFFSET_MASK) + (pos - cstart);
		return fill_write(vbd, s, pos, len, host, pos, len, iov, iovcnt,
				  skip, part);
	}
	if (owned_data(&le)) {
		/* Here already: a preallocated zero cluster, or some
		 * subclusters still to fill in. */
		host = le.e & QCOW2_OFFSET_MASK;
		if (s->l2_words == 1) {
			ret = fill_write(vbd, s, cstart, cs, host, pos, len,
					 iov, iovcnt, skip, part);
			le.e &= ~QCOW2_L2E_ZERO;
		} else {
			ret = write_owned_sc(vbd, s, pos, len, iov, iovcnt,
					     skip, part, &le);
			le.bm = (le.bm | sc_mask(a, b)) &
				~(sc_mask(a, b) << 32);
		}
		return ret < 0 ? ret : qcow2_l2_set(s, l2off, idx, &le);
	}
	ret = new_cluster(s, &host);
	if (ret < 0)
		return ret;
	if (s->l2_words > 1 && !(le.e & QCOW2_L2E_COMPRESSED) &&
	    !(le.e & QCOW2_OFFSET_MASK)) {
		/* Nothing here yet: only the touched subclusters are
		 * written, the others keep reading what they read. */
		uint64_t ustart = cstart + ((uint64_t)a << s->sc_bits);

		ret = fill_write(vbd, s, ustart,
				 (uint64_t)(b - a) << s->sc_bits,
				 host + (ustart - cstart), pos, len, iov,
				 iovcnt, skip, part);
		le.bm = sc_mask(a, b) |
			(le.bm & ~(sc_mask(a, b) << 32) & (SC_ALL << 32));
	} else {
		/* A copy of the whole cluster with the new bytes in. */
		ret = fill_write(vbd, s, cstart, cs, host, pos, len, iov,
				 iovcnt, skip, part);
		if (le.e & QCOW2_L2E_COMPRESSED)
			le.bm = SC_ALL;
		else
			le.bm = ((le.bm | sc_mask(a, b)) & SC_ALL) |
				(le.bm & ~(sc_mask(a, b) << 32) &
				 (SC_ALL << 32));
	}
	le.e = host | QCOW2_L2E_COPIED;
	if (s->l2_words == 1)
		le.bm = 0;
	if (ret == 0)
		ret = qcow2_l2_set(s, l2off, idx, &le);
	if (ret == 0)
		ret = qcow2_release_later(s, old.e);
	return ret;
}

/*
 * Whole clusters that were empty, given fresh host clusters that follow
 * each other (a sequential write to a new image: convert), are written
 * with one request; their L2 entries are set once the data is written,
 * so no table ever points at a cluster still waiting for its data.
 */
struct fresh_run {
	uint64_t pos;  /* guest offset of the first cluster */
	uint64_t host; /* where it goes */
	uint64_t len;  /* bytes so far, 0 for none */
	size_t skip;   /* where its data starts in the request */
	/* The request's data: iov, or (fd >= 0) the bytes of fd from
	 * fd_off on (vbd_copy_from_fd). */
	int fd;
	uint64_t fd_off;
};

/*
 * Bytes [fd_off, fd_off+len) of `fd` to host offset `host`: copied by the
 * kernel where the host file allows it, or else through a buffer (bytes
 * past the end of fd read as zeros, as the host file's own do).
 */
static int file_copy_from_fd(struct qcow2 *s, uint64_t host, uint64_t len,
			     int fd, uint64_t fd_off)
{
	size_t bsize = (size_t)VS_MIN(len, (uint64_t)(1u << 20));
	autofree uint8_t *buf = NULL;
	uint64_t done = 0;
	int ret;

	vs_atomic_max(&s->file->size, host + len);
	ret = vbd_copy_from_fd(s->file, host, len, fd, fd_off);
	if (ret == 0)
		vs_atomic_max(&s->file_size, host + len);
	if (ret != -ENOTSUP)
		return ret;
	buf = malloc(bsize);
	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t m = (size_t)VS_MIN(len - done, (uint64_t)bsize), got = 0;

		while (got < m) {
			ssize_t n = pread(fd, buf + got, m - got,
					  (off_t)(fd_off + done + got));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0) {
				memset(buf + got, 0, m - got);
				break;
			}
			got += (size_t)n;
		}
		ret = qcow2_file_pwrite(s, host + done, buf, m);
		if (ret < 0)
			return ret;
		done += m;
	}
	return 0;
}

static int fresh_flush(struct qcow2 *s, struct fresh_run *r,
		       const struct iovec *iov, int iovcnt, struct iovec *part)
{
	uint64_t cs = s->cluster_size;
	int cnt, ret = 0;

	if (!r->len)
		return 0;
	if (r->fd >= 0) {
		ret = file_copy_from_fd(s, r->host, r->len, r->fd,
					r->fd_off + r->skip);
	} else {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, r->skip,
				   (size_t)r->len);
		ret = cnt < 0 ? -EIO
			      : qcow2_file_pwritev(s, r->host, part, cnt);
	}
	for (uint64_t o = 0; o < r->len && ret == 0; o += cs) {
		struct qcow2_l2e le = {.e = (r->host + o) | QCOW2_L2E_COPIED};
		uint64_t l2off;

		ret = l2_for_write(s, r->pos + o, &l2off);
		if (ret == 0)
			ret = qcow2_l2_set(s, l2off,
					   qcow2_l2_index(s, r->pos + o), &le);
	}
	r->len = 0;
	return ret;
}

/*
 * The whole cluster at `pos` is empty (nothing to copy, check or
 * release): give it a fresh cluster and add it to the run, or start a
 * new run.  1 when the cluster is not empty (the caller writes it the
 * ordinary way).
 */
static int fresh_add(struct qcow2 *s, struct fresh_run *r, uint64_t pos,
		     size_t skip, const struct iovec *iov, int iovcnt,
		     struct iovec *part)
{
	uint64_t cs = s->cluster_size, l2off, host;
	struct qcow2_l2e le;
	int ret;

	if (s->l2_words != 1)
		return 1;
	ret = l2_for_write(s, pos, &l2off);
	if (ret == 0)
		ret = qcow2_l2_get(s, l2off, qcow2_l2_index(s, pos), &le);
	if (ret < 0)
		return ret;
	if (le.e)
		return 1;
	ret = new_cluster(s, &host);
	if (ret < 0)
		return ret;
	if (r->len && host == r->host + r->len && pos == r->pos + r->len) {
		r->len += cs;
		return 0;
	}
	ret = fresh_flush(s, r, iov, iovcnt, part);
	*r = (struct fresh_run){.pos = pos,
				.host = host,
				.len = cs,
				.skip = skip,
				.fd = r->fd,
				.fd_off = r->fd_off};
	return ret;
}

static int write_locked(struct vbd *vbd, struct qcow2 *s, uint64_t offset,
			const struct iovec *iov, int iovcnt)
{
	uint64_t cs = s->cluster_size;
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	struct fresh_run run = {.fd = -1};
	int ret = 0;

	if (!part)
		return -ENOMEM;
	while (done < len && ret == 0) {
		uint64_t pos = offset + done;
		uint64_t m =
			VS_MIN((uint64_t)(len - done), cs - (pos & (cs - 1)));

		ret = m == cs ? fresh_add(s, &run, pos, done, iov, iovcnt, part)
			      : 1;
		if (ret > 0) {
			ret = fresh_flush(s, &run, iov, iovcnt, part);
			if (ret == 0)
				ret = write_cluster(vbd, s, pos, m, iov, iovcnt,
						    done, part);
		}
		/* A run's clusters are counted but not yet in any table:
		 * writing metadata back now can at most leak them. */
		if (ret == 0)
			ret = qcow2_meta_maybe_flush(s);
		done += m;
	}
	if (ret == 0)
		ret = fresh_flush(s, &run, iov, iovcnt, part);
	return ret;
}

uint64_t qcow2_inplace_host(struct qcow2 *s, const struct qcow2_l2e *le,
			    bool owned, uint64_t pos, uint64_t len)
{
	uint64_t cs = s->cluster_size, host = le->e & QCOW2_OFFSET_MASK;

	if (!owned || !writable_in_place(s, le, pos, len) ||
	    !VS_IS_ALIGNED(host, cs) ||
	    host >= __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE) ||
	    qcow2_overlap(s, host, cs))
		return 0; /* the locked path decides (and checks) */
	return host + (pos & (cs - 1));
}

/*
 * Write the clusters from `offset` on that can be written in place,
 * without the writers' lock: no writer moves such a cluster, and one
 * that a discard drops is not handed out again before this write is
 * done (the caller is in the gate).  Returns the bytes written, stopping
 * at the first cluster that needs the locked path, or -errno.
 */
static ssize_t write_in_place(struct qcow2 *s, uint64_t offset,
			      const struct iovec *iov, int iovcnt, size_t len,
			      struct iovec *part)
{
	uint64_t cs = s->cluster_size;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = offset + done, host;
		size_t m = (size_t)VS_MIN((uint64_t)(len - done),
					  cs - (pos & (cs - 1)));
		struct qcow2_l2e le;
		bool owned;
		int cnt, ret = qcow2_l2_lookup(s, pos, &le, &owned);

		if (ret < 0)
			return ret;
		host = qcow2_inplace_host(s, &le, owned, pos, m);
		if (!host)
			break;
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, done, m);
		if (cnt < 0)
			return -EIO;
		ret = qcow2_file_pwritev(s, host, part, cnt);
		if (ret < 0)
			return ret;
		done += m;
	}
	return (ssize_t)done;
}

/*
 * Store compressed data for the whole cluster at `pos`, dropping what its
 * entry held (checked first: a bad entry is not released).  Under w_lock.
 */
static int store_compressed(struct qcow2 *s, uint64_t pos, const uint8_t *buf,
			    size_t len)
{
	uint32_t idx = qcow2_l2_index(s, pos);
	struct qcow2_l2e le;
	uint64_t l2off;
	int ret = l2_for_write(s, pos, &l2off);

	if (ret == 0)
		ret = qcow2_l2_get(s, l2off, idx, &le);
	if (ret == 0)
		ret = check_entry(s, l2off, idx, &le, 0,
				  1u << (s->cluster_bits - s->sc_bits));
	if (ret == 0)
		ret = qcow2_write_compressed(s, l2off, idx, buf, len);
	return ret;
}

/*
 * Compressed writes (VBD_O_COMPRESS): each whole cluster (a last one cut
 * short by the disk's end counts as whole, padded with zeros) is
 * compressed outside the lock and stored compressed; one that does not
 * shrink is written plainly.  Partial clusters take the ordinary path.
 */
static int write_compressed(struct vbd *vbd, struct qcow2 *s, uint64_t offset,
			    const struct iovec *iov, int iovcnt)
{
	uint64_t cs = s->cluster_size;
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree uint8_t *in = malloc(cs);
	autofree uint8_t *out = malloc(cs);
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	int ret = 0;

	if (!in || !out || !part)
		return -ENOMEM;
	while (done < len && ret == 0) {
		uint64_t pos = offset + done;
		uint64_t m =
			VS_MIN((uint64_t)(len - done), cs - (pos & (cs - 1)));
		bool whole =
			!(pos & (cs - 1)) && (m == cs || pos + m == vbd->size);
		size_t clen = 0;
		int c = -ENOSPC;

		if (whole) {
			memset(in, 0, cs);
			vs_iov_to_buf(iov, iovcnt, done, in, m);
			c = qcow2_compress(s, in, out, &clen);
		}
		pthread_mutex_lock(&s->w_lock);
		if (c == 0)
			ret = store_compressed(s, pos, out, clen);
		else
			ret = write_cluster(vbd, s, pos, m, iov, iovcnt, done,
					    part);
		if (ret == 0)
			ret = qcow2_meta_maybe_flush(s);
		pthread_mutex_unlock(&s->w_lock);
		done += m;
	}
	return ret;
}

/*
 * vbd_compress: pure, so image tools run it on many threads.  A short
 * last cluster is padded with zeros, as write_compressed pads it: a
 * compressed cluster always inflates to a whole cluster.
 */
int qcow2_drv_compress(struct vbd *vbd, const void *in, size_t len, void *out,
		       size_t out_cap, size_t *out_len)
{
	struct qcow2 *s = qcow2_of(vbd);
	autofree uint8_t *padded = NULL;
	autofree uint8_t *tmp = NULL;
	uint8_t *dst = out;
	size_t clen = 0;
	int ret;

	if (len < s->cluster_size) {
		padded = calloc(1, s->cluster_size);
		if (!padded)
			return -ENOMEM;
		memcpy(padded, in, len);
		in = padded;
	}
	/* qcow2_compress fills at most a cluster less a sector. */
	if (out_cap < s->cluster_size) {
		tmp = malloc(s->cluster_size);
		if (!tmp)
			return -ENOMEM;
		dst = tmp;
	}
	ret = qcow2_compress(s, in, dst, &clen);
	if (ret < 0)
		return ret;
	if (clen > out_cap)
		return -ENOSPC;
	if (tmp)
		memcpy(out, tmp, clen);
	*out_len = clen;
	return 0;
}

/* vbd_pwrite_compressed: what qcow2_drv_compress made, stored in place
 * of the cluster at `offset` (cluster-aligned, checked by the core). */
int qcow2_pwrite_compressed(struct vbd *vbd, uint64_t offset, const void *buf,
			    size_t len)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret;

	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return -EIO;
	/* An entry holds at most a cluster's worth of sectors (and the
	 * data could not be read back as a cluster if it were bigger). */
	if (len > s->cluster_size - QCOW2_COMPRESSED_SECT)
		return -EINVAL;
	pthread_mutex_lock(&s->w_lock);
	ret = store_compressed(s, offset, buf, len);
	if (ret == 0)
		ret = qcow2_meta_maybe_flush(s);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}

int qcow2_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		  int iovcnt)
{
	struct qcow2 *s = qcow2_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt);
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	autofree struct iovec *rest = NULL;
	unsigned epoch;
	ssize_t done;
	int cnt, ret;

	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return -EIO;
	if (!part)
		return -ENOMEM;
	if (vbd->flags & VBD_O_COMPRESS)
		return write_compressed(vbd, s, offset, iov, iovcnt);
	epoch = qcow2_gate_enter(&s->gate);
	done = write_in_place(s, offset, iov, iovcnt, len, part);
	qcow2_gate_leave(&s->gate, epoch);
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
	return ret;
}

/*
 * vbd_copy_from_fd: whole clusters that hold nothing yet get fresh host
 * clusters, filled by the kernel straight from `fd` (convert from a raw
 * file: no copy through our buffers).  Anything else (a cluster with
 * data, a zero or compressed cluster, a partial one, subclusters) is
 * -ENOTSUP before anything changes, and the caller writes it the
 * ordinary way.  The whole range is looked at under w_lock, so that
 * nothing can change between the look and the writes.
 */
int qcow2_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int fd,
		       uint64_t fd_off)
{
	struct qcow2 *s = qcow2_of(vbd);
	uint64_t cs = s->cluster_size, done;
	struct fresh_run run = {.fd = fd, .fd_off = fd_off};
	int ret = 0;

	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return -EIO;
	/* A host file opened O_DIRECT is better written from the
	 * caller's aligned buffers. */
	if ((vbd->flags & VBD_O_COMPRESS) || (s->file->flags & VBD_O_DIRECT) ||
	    s->l2_words != 1 || offset % cs || len % cs)
		return -ENOTSUP;
	pthread_mutex_lock(&s->w_lock);
	for (done = 0; done < len && ret == 0; done += cs) {
		struct qcow2_l2e le;

		ret = qcow2_l2_lookup(s, offset + done, &le, NULL);
		if (ret == 0 && le.e)
			ret = -ENOTSUP;
	}
	for (done = 0; done < len && ret == 0; done += cs) {
		ret = fresh_add(s, &run, offset + done, (size_t)done, NULL, 0,
				NULL);
		/* Seen empty under this same lock just now. */
		if (ret > 0)
			ret = -EIO;
		if (ret == 0)
			ret = qcow2_meta_maybe_flush(s);
	}
	if (ret == 0)
		ret = fresh_flush(s, &run, NULL, 0, NULL);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}

/* Zeroing and discarding whole units. */

enum clear_how {
	CLEAR_ZERO,	  /* reads as zeros; the cluster may stay */
	CLEAR_ZERO_UNMAP, /* reads as zeros; the cluster may go */
	CLEAR_DISCARD,	  /* anything may be read; the cluster goes */
};

/* Whether guest bytes here read as zeros without any table: no L2 table
 * and no backing file. */
static bool zero_without_table(struct qcow2 *s, uint64_t pos)
{
	uint64_t l2off;

	return !s->backing &&
	       qcow2_l2_table_of(s, s->filename, pos, &l2off, NULL) == 0 &&
	       !l2off;
}

/* The new entry for a whole cluster that is cleared. */
static struct qcow2_l2e cleared(struct qcow2 *s, const struct qcow2_l2e *le,
				enum clear_how how, bool *release)
{
	bool keep = how == CLEAR_ZERO && owned_data(le) && s->l2_words == 1;
	bool zero = how != CLEAR_DISCARD || s->backing;

	*release = !keep;
	if (keep)
		return (struct qcow2_l2e){.e = le->e | QCOW2_L2E_ZERO};
	if (s->l2_words > 1)
		return (struct qcow2_l2e){.bm = zero ? SC_ALL << 32 : 0};
	return (struct qcow2_l2e){.e = zero ? QCOW2_L2E_ZERO : 0};
}

/* Clear whole cluster at `pos` (its last one may end at the disk's end). */
static int clear_cluster(struct qcow2 *s, uint64_t pos, enum clear_how how)
{
	uint64_t l2off;
	uint32_t idx = qcow2_l2_index(s, pos);
	struct qcow2_l2e le, ne;
	bool release;
	int ret;

	if (zero_without_table(s, pos))
		return 0;
	ret = l2_for_write(s, pos, &l2off);
	if (ret == 0)
		ret = qcow2_l2_get(s, l2off, idx, &le);
	if (ret == 0)
		ret = check_entry(s, l2off, idx, &le, 0,
				  s->l2_words > 1 ? QCOW2_SC_PER_CLUSTER : 1);
	if (ret < 0)
		return ret;
	ne = cleared(s, &le, how, &release);
	if (ne.e == le.e && ne.bm == le.bm)
		return 0;
	ret = qcow2_l2_set(s, l2off, idx, &ne);
	if (ret == 0 && release)
		ret = qcow2_release_later(s, le.e);
	return ret;
}

/*
 * Whole subclusters [a, b) of one cluster read as zeros, when the
 * cluster is owned alone or not there at all; 1 when the cluster must be
 * written with zero data instead.
 */
static int zero_subclusters(struct qcow2 *s, uint64_t pos, uint32_t a,
			    uint32_t b)
{
	uint64_t l2off, m = sc_mask(a, b);
	uint32_t idx = qcow2_l2_index(s, pos);
	struct qcow2_l2e le;
	int ret;

	if (zero_without_table(s, pos))
		return 0;
	ret = l2_for_write(s, pos, &l2off);
	if (ret == 0)
		ret = qcow2_l2_get(s, l2off, idx, &le);
	if (ret == 0)
		ret = check_entry(s, l2off, idx, &le, a, b);
	if (ret < 0)
		return ret;
	if ((le.e & QCOW2_L2E_COMPRESSED) ||
	    ((le.e & QCOW2_OFFSET_MASK) && !(le.e & QCOW2_L2E_COPIED)))
		return 1;
	le.bm = (le.bm & ~m) | (m << 32);
	return qcow2_l2_set(s, l2off, idx, &le);
}

/*
 * Zero [pos, cend), part of one cluster: whole subclusters [a, b) by
 * their zero bits where the cluster allows it, the rest as zero data.
 */
static int zero_partial(struct vbd *vbd, struct qcow2 *s, uint64_t pos,
			uint64_t cend, uint64_t a, uint64_t b,
			struct iovec *iov)
{
	uint64_t cs = s->cluster_size;
	int ret = 1;

	if (a < b && s->l2_words > 1)
		ret = zero_subclusters(
			s, pos, (uint32_t)((a & (cs - 1)) >> s->sc_bits),
			(uint32_t)(((b - 1) & (cs - 1)) >> s->sc_bits) + 1);
	if (ret < 0)
		return ret;
	if (ret == 1) {
		iov->iov_len = (size_t)(cend - pos);
		return write_locked(vbd, s, pos, iov, 1);
	}
	if (pos < a) {
		iov->iov_len = (size_t)(a - pos);
		ret = write_locked(vbd, s, pos, iov, 1);
	}
	if (ret == 0 && b < cend) {
		iov->iov_len = (size_t)(cend - b);
		ret = write_locked(vbd, s, b, iov, 1);
	}
	return ret;
}

/* Zero or discard [offset, offset+len): whole units by their entries,
 * the rest as data (zeroing) or not at all (discard). */
static int clear_locked(struct vbd *vbd, struct qcow2 *s, uint64_t offset,
			uint64_t len, enum clear_how how)
{
	uint64_t cs = s->cluster_size, end = offset + len, pos = offset;
	uint64_t usize = how == CLEAR_DISCARD ? cs : 1ull << s->sc_bits;
	autofree uint8_t *zero = calloc(1, cs);
	int ret = 0;

	if (!zero)
		return -ENOMEM;
	while (pos < end && ret == 0) {
		uint64_t cend = VS_MIN(VS_ALIGN_DOWN(pos, cs) + cs, end);
		/* A last cluster cut short by the disk's end counts as
		 * whole. */
		uint64_t lim =
			cend == vbd->size ? VS_ALIGN_UP(cend, usize) : cend;
		uint64_t a = VS_ALIGN_UP(pos, usize);
		uint64_t b = VS_ALIGN_DOWN(lim, usize);
		struct iovec iov = {.iov_base = zero};

		if (pos == VS_ALIGN_DOWN(pos, cs) && b - pos >= cs) {
			ret = clear_cluster(s, pos, how);
		} else if (how == CLEAR_DISCARD) {
			ret = 0; /* discard is advisory: partial clusters stay */
		} else {
			ret = zero_partial(vbd, s, pos, cend, a, b, &iov);
		}
		if (ret == 0)
			ret = qcow2_meta_maybe_flush(s);
		pos = cend;
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
	ret = clear_locked(vbd, s, offset, len,
			   flags & VBD_ZERO_MAY_UNMAP ? CLEAR_ZERO_UNMAP
						      : CLEAR_ZERO);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}

int qcow2_discard(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret;

	/* Without a zero flag, a discarded cluster would show the backing
	 * file: version 2 images with one keep their clusters. */
	if (s->m.h.version < 3 && s->backing)
		return 0;
	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED))
		return -EIO;
	pthread_mutex_lock(&s->w_lock);
	ret = clear_locked(vbd, s, offset, len, CLEAR_DISCARD);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}
