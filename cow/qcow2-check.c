/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checking and repairing qcow2 metadata, with the semantics and the
 * numbers of `qemu-img check`.
 *
 * The check reads every table from the file itself, never from the
 * driver's caches, and counts what the refcount of every host cluster
 * must be: the header, the active L1 table and each snapshot's, every L2
 * table they name, data clusters (normal and zero with an offset),
 * compressed clusters (one reference per host cluster the compressed
 * bytes touch), the snapshot table, the refcount table and its blocks.
 * Then it compares with the refcounts on disk: more on disk is a leak,
 * fewer is an error.  In the active tables OFLAG_COPIED must be set
 * exactly when the refcount on disk is 1.  A reference to a cluster
 * wholly past the end of the file is an error and is not counted.
 *
 * Repair writes the computed refcounts into the refcount blocks.  Blocks
 * that are missing are added at the end of the file, with a larger
 * refcount table if the old one is too small.  A refcount table that
 * cannot be trusted (reserved bits, a block outside the file or shared
 * with other metadata) is never written through: new blocks and a new
 * table for the whole image go to the end of the file and the header
 * then points at them.  Entries of the active tables that point past
 * the end of the file become what they read as: zeros (v3) or
 * unallocated (an L2 table, or data of a v2 image without a backing
 * file).  COPIED flags are set from the repaired refcounts last, and a
 * clean result clears the dirty and corrupt bits.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "qcow2-check.h"
#include "qcow2-snapshot.h"

/* Bits that must be zero, as the spec reserves them. */
#define L1E_RESERVED 0x7f000000000001ffull
#define L2E_RESERVED 0x3f000000000001feull
#define RTE_RESERVED 0x1ffull

/* The two halves of an extended L2 entry's subcluster bitmap. */
#define L2_BITMAP_ALLOC 0x00000000ffffffffull
#define L2_BITMAP_ZERO	0xffffffff00000000ull

/* Header fields written by a repair. */
#define REFTABLE_OFF 48		/* refcount_table_offset, then _clusters */
#define INCOMPAT_OFF 72		/* incompatible_features */
#define MAX_REFTABLE (8u << 20) /* what the header parser accepts */

/* Bytes of a snapshot table entry before its variable parts. */
#define SNAP_FIXED 40

/* Persistent bitmaps: the header extension, its autoclear bit (the
 * bitmaps are consistent), the fixed part of a directory entry, and the
 * largest directory and table the check reads. */
#define EXT_BITMAPS	  0x23852875u
#define AUTOCLEAR_BITMAPS 1ull
#define BM_ENTRY_FIXED	  24
#define MAX_BM_DIR	  (64u << 20)
#define MAX_BM_TABLE	  (64u << 20)

enum etype { E_UNALLOC, E_ZERO_PLAIN, E_ZERO_ALLOC, E_NORMAL, E_COMPRESSED };

/* One check run. */
struct ck {
	struct qcow2 *s;
	const char *fn;
	unsigned fix;
	struct vbd_check *res;
	struct vs_error **errp;

	uint32_t cbits, order; /* cluster and refcount width, log2 */
	uint64_t cs, rmax;     /* cluster size, largest refcount */
	uint64_t rbe;	       /* refcounts per refcount block */
	uint32_t esize;	       /* bytes per L2 entry: 8, 16 extended */
	uint64_t l2_n;	       /* entries per L2 table */
	bool ext_l2;

	uint64_t fsize; /* bytes of the file as found */
	uint64_t nb;	/* clusters of the file as found */
	uint8_t *ref;	/* computed refcounts, packed as on disk */
	uint64_t ref_n; /* clusters `ref` has room for */
	uint64_t used;	/* 1 + the highest cluster of file or counts */
	uint8_t *dsk;	/* refcounts on disk for [0, used) */
	uint64_t highest;
	bool quiet; /* findings are debug messages (repair on open) */

	uint64_t *rt; /* the refcount table as found */
	uint64_t rt_n;
	uint8_t *rt_counted; /* rt_n flags: its block was counted */
	bool rebuild;	     /* the refcount table cannot be trusted */

	uint64_t *l1; /* the active L1 table as found */
	uint32_t l1_n;
	uint8_t *buf; /* one cluster: an L2 table or a refcount block */
	bool wrote;   /* the file changed: the driver reloads */
};

/* Raw access to the file. */

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

/* Read [off, off+len): bytes past the end of the file read as zeros,
 * as they do for QEMU. */
static int rd(struct ck *c, uint64_t off, void *buf, size_t len,
	      const char *what)
{
	uint64_t fsize = vbd_size(c->s->file);
	size_t n = off < fsize ? (size_t)VS_MIN((uint64_t)len, fsize - off) : 0;
	int ret = n ? vbd_pread(c->s->file, off, buf, n) : 0;

	if (ret < 0)
		return vs_error_set_errno(c->errp, ret,
					  "%s: cannot read the %s at offset "
					  "%" PRIu64,
					  c->fn, what, off);
	memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

static int wr(struct ck *c, uint64_t off, const void *buf, size_t len,
	      const char *what)
{
	int ret = qcow2_file_pwrite(c->s, off, buf, len);

	c->wrote = true;
	if (ret < 0)
		return vs_error_set_errno(c->errp, ret,
					  "%s: cannot write the %s at offset "
					  "%" PRIu64,
					  c->fn, what, off);
	return 0;
}

static int sync_file(struct ck *c)
{
	int ret = vbd_flush(c->s->file);

	if (ret < 0)
		return vs_error_set_errno(c->errp, ret, "%s: cannot flush",
					  c->fn);
	return 0;
}

/* Findings: one line each on stderr, worded as qemu-img words them. */
static void say(struct ck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct ck *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->quiet)
		vs_debug("qcow2", "%s: %s", c->fn, line);
	else
		vs_log(VS_LOG_INFO, "qcow2", "%s: %s", c->fn, line);
}

static void corruption(struct ck *c, bool fixed)
{
	c->res->corruptions++;
	if (fixed)
		c->res->corruptions_fixed++;
}

static const char *verb(bool fixing)
{
	return fixing ? "Repairing" : "ERROR";
}

/* Computed refcounts. */

static size_t packed_bytes(const struct ck *c, uint64_t clusters)
{
	return (size_t)(((clusters << c->order) + 7) / 8);
}

static int ref_grow(struct ck *c, uint64_t want)
{
	uint64_t n = VS_MAX(want, 2 * c->ref_n);
	size_t old = packed_bytes(c, c->ref_n), sz = packed_bytes(c, n);
	uint8_t *p;

	if (want <= c->ref_n)
		return 0;
	p = realloc(c->ref, sz);
	if (!p)
		return vs_error_set(c->errp, ENOMEM,
				    "%s: out of memory for the refcounts of "
				    "%" PRIu64 " clusters",
				    c->fn, n);
	memset(p + old, 0, sz - old);
	c->ref = p;
	c->ref_n = n;
	return 0;
}

static uint64_t ref_get(const struct ck *c, uint64_t k)
{
	return k < c->ref_n ? qcow2_rc_get(c->ref, k, c->order) : 0;
}

static uint64_t dsk_get(const struct ck *c, uint64_t k)
{
	return k < c->used ? qcow2_rc_get(c->dsk, k, c->order) : 0;
}

/*
 * [off, off+len) reaches a whole cluster or more past the end of the
 * file.  Less is allowed: the last cluster may be cut short.
 */
static bool past_end(const struct ck *c, uint64_t off, uint64_t len)
{
	return off + len >= c->fsize + c->cs;
}

static void say_past_end(struct ck *c, uint64_t off, uint64_t len, bool fixing)
{
	say(c,
	    "%s: counting reference for region exceeding the end of the file "
	    "by one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64 "%s",
	    verb(fixing), off, len,
	    fixing ? " (the entry now reads as it did)" : "");
	corruption(c, fixing);
}

/* One more reference to every cluster [off, off+len) touches.  The
 * callers keep offsets below 2^56 and lengths small: no overflow. */
static int inc(struct ck *c, uint64_t off, uint64_t len)
{
	uint64_t first = off >> c->cbits, last;

	if (!len)
		return 0;
	if (past_end(c, off, len)) {
		say_past_end(c, off, len, false);
		return 0;
	}
	last = (off + len - 1) >> c->cbits;
	for (uint64_t k = first; k <= last; k++) {
		uint64_t v;
		int ret = ref_grow(c, k + 1);

		if (ret < 0)
			return ret;
		v = qcow2_rc_get(c->ref, k, c->order);
		if (v == c->rmax) {
			say(c, "ERROR: overflow cluster offset=0x%" PRIx64,
			    k << c->cbits);
			corruption(c, false);
			continue;
		}
		qcow2_rc_set(c->ref, k, c->order, v + 1);
		c->used = VS_MAX(c->used, k + 1);
	}
	return 0;
}

/* The reverse, for structures a repair replaces. */
static void dec(struct ck *c, uint64_t off, uint64_t len)
{
	for (uint64_t k = off >> c->cbits;
	     len && k <= (off + len - 1) >> c->cbits; k++) {
		uint64_t v = ref_get(c, k);

		if (v)
			qcow2_rc_set(c->ref, k, c->order, v - 1);
	}
}

/* Tables: what each L2 entry references. */

static enum etype etype(const struct ck *c, uint64_t e)
{
	if (e & QCOW2_L2E_COMPRESSED)
		return E_COMPRESSED;
	/* With subclusters, zeros are in the bitmap and bit 0 is unused. */
	if ((e & QCOW2_L2E_ZERO) && !c->ext_l2)
		return e & QCOW2_OFFSET_MASK ? E_ZERO_ALLOC : E_ZERO_PLAIN;
	return e & QCOW2_OFFSET_MASK ? E_NORMAL : E_UNALLOC;
}

/*
 * An entry of the active tables that points past the end of the file
 * reads as zeros there: it becomes a zero cluster, or unallocated where
 * that reads the same.  False when no entry could say the same.
 */
static bool past_end_fix(const struct ck *c, uint64_t *e, uint64_t *bm,
			 bool active)
{
	const struct qcow2_meta *m = &c->s->m;

	if (!active || !(c->fix & VBD_CHECK_FIX_ERRORS))
		return false;
	if (c->ext_l2) {
		*e = 0;
		*bm = L2_BITMAP_ZERO;
	} else if (m->h.version >= 3) {
		*e = QCOW2_L2E_ZERO;
	} else if (!m->backing_file) {
		*e = 0;
	} else {
		return false;
	}
	return true;
}

static int check_compressed(struct ck *c, uint64_t *e, uint64_t *bm,
			    bool active)
{
	uint64_t host, nsect, len;
	bool fixing = active && (c->fix & VBD_CHECK_FIX_ERRORS);

	qcow2_compressed_loc(c->cbits, *e, &host, &nsect);
	if (*e & QCOW2_L2E_COPIED) {
		say(c,
		    "%s: coffset=0x%" PRIx64 ": copied flag must never be "
		    "set for compressed clusters",
		    verb(fixing), host);
		corruption(c, fixing);
		if (fixing)
			*e &= ~QCOW2_L2E_COPIED;
	}
	if (active) {
		/* Compressed data shares sectors with its neighbours: it
		 * always counts as fragmented, as QEMU counts it. */
		c->res->allocated_clusters++;
		c->res->compressed_clusters++;
		c->res->fragmented_clusters++;
	}
	len = nsect * QCOW2_COMPRESSED_SECT - host % 512;
	if (past_end(c, host, len)) {
		say_past_end(c, host, len, past_end_fix(c, e, bm, active));
		return 0;
	}
	return inc(c, host, len);
}

/* A normal or preallocated zero cluster; `*next` is where a contiguous
 * one would start. */
static int check_data(struct ck *c, uint64_t *e, uint64_t *bm, bool active,
		      uint64_t *next)
{
	uint64_t off = *e & QCOW2_OFFSET_MASK;
	bool data, fixing;

	if (active) {
		c->res->allocated_clusters++;
		if (*next && off != *next)
			c->res->fragmented_clusters++;
		*next = off + c->cs;
	}
	if (past_end(c, off, c->cs)) {
		say_past_end(c, off, c->cs, past_end_fix(c, e, bm, active));
		return 0;
	}
	if (VS_IS_ALIGNED(off, c->cs))
		return inc(c, off, c->cs);
	data = c->ext_l2 ? (*bm & L2_BITMAP_ALLOC) : !(*e & QCOW2_L2E_ZERO);
	if (data) {
		say(c,
		    "ERROR offset=%" PRIx64 ": Data cluster is not properly "
		    "aligned; L2 entry corrupted.",
		    off);
		corruption(c, false);
		return inc(c, off, c->cs);
	}
	/* Only zeros were there: the entry can become a plain zero. */
	fixing = active && (c->fix & VBD_CHECK_FIX_ERRORS);
	say(c,
	    "%s offset=%" PRIx64 ": Preallocated cluster is not properly "
	    "aligned; L2 entry corrupted.",
	    verb(fixing), off);
	corruption(c, fixing);
	if (!fixing)
		return inc(c, off, c->cs);
	*e = c->ext_l2 ? 0 : QCOW2_L2E_ZERO;
	if (c->ext_l2)
		*bm = L2_BITMAP_ZERO;
	return 0;
}

static int check_entry(struct ck *c, uint64_t *e, uint64_t *bm, bool active,
		       uint64_t *next)
{
	enum etype t = etype(c, *e);

	if (t != E_COMPRESSED && (*e & L2E_RESERVED)) {
		say(c, "ERROR found l2 entry with reserved bits set: %" PRIx64,
		    *e);
		corruption(c, false);
	}
	switch (t) {
	case E_COMPRESSED: return check_compressed(c, e, bm, active);
	case E_NORMAL:
	case E_ZERO_ALLOC: return check_data(c, e, bm, active, next);
	case E_UNALLOC:
		if (*bm & L2_BITMAP_ALLOC) {
			say(c, "ERROR: Unallocated cluster has non-zero "
			       "subcluster allocation map");
			corruption(c, false);
		}
		return 0;
	case E_ZERO_PLAIN: return 0;
	}
	return 0;
}

/* Every entry of the L2 table at `l2off`; repairs of the active tables
 * are written back at once. */
static int walk_l2(struct ck *c, uint64_t l2off, bool active)
{
	uint64_t next = 0;
	bool dirty = false;
	int ret = rd(c, l2off, c->buf, c->cs, "L2 table");

	for (uint64_t j = 0; ret == 0 && j < c->l2_n; j++) {
		uint8_t *p = c->buf + j * c->esize;
		uint64_t e = get64(p), bm = c->ext_l2 ? get64(p + 8) : 0;
		uint64_t e0 = e, bm0 = bm;

		ret = check_entry(c, &e, &bm, active, &next);
		if (e != e0 || bm != bm0) {
			put64(p, e);
			if (c->ext_l2)
				put64(p + 8, bm);
			dirty = true;
		}
	}
	if (ret == 0 && dirty)
		ret = wr(c, l2off, c->buf, c->cs, "L2 table");
	return ret;
}

/* An L2 table past the end of the file reads as zeros: unallocated,
 * which is what an empty L1 entry says. */
static int l2_past_end(struct ck *c, uint64_t *l1, uint32_t i, uint64_t off,
		       bool active)
{
	bool fixing = active && (c->fix & VBD_CHECK_FIX_ERRORS);
	uint8_t be[8] = {0};

	say_past_end(c, l1[i] & QCOW2_OFFSET_MASK, c->cs, fixing);
	if (!fixing)
		return 0;
	l1[i] = 0;
	return wr(c, off + (uint64_t)i * 8, be, 8, "L1 table");
}

/* An L1 table of `n` entries at `off` and everything it references. */
static int walk_l1(struct ck *c, uint64_t off, uint32_t n, bool active)
{
	size_t bytes = (size_t)n * 8;
	autofree uint64_t *l1 = malloc(bytes ? bytes : 1);
	int ret;

	if (!l1)
		return vs_error_set(c->errp, ENOMEM,
				    "%s: out of memory for an L1 table of "
				    "%zu bytes",
				    c->fn, bytes);
	ret = inc(c, off, bytes);
	if (ret == 0)
		ret = rd(c, off, l1, bytes, "L1 table");
	for (uint32_t i = 0; ret == 0 && i < n; i++) {
		uint64_t e = l1[i] = be64toh(l1[i]);
		uint64_t l2 = e & QCOW2_OFFSET_MASK;

		if (!e)
			continue;
		if (e & L1E_RESERVED) {
			say(c,
			    "ERROR found L1 entry with reserved bits set: "
			    "%" PRIx64,
			    e);
			corruption(c, false);
		}
		if (!l2)
			continue;
		if (past_end(c, l2, c->cs)) {
			ret = l2_past_end(c, l1, i, off, active);
			continue;
		}
		ret = inc(c, l2, c->cs);
		if (ret < 0)
			break;
		if (!VS_IS_ALIGNED(l2, c->cs)) {
			say(c,
			    "ERROR l2_offset=%" PRIx64 ": Table is not cluster "
			    "aligned; L1 entry corrupted",
			    l2);
			corruption(c, false);
			continue;
		}
		ret = walk_l2(c, l2, active);
	}
	if (ret == 0 && active) {
		c->l1 = vs_steal(&l1);
		c->l1_n = n;
	}
	return ret;
}

/* Each snapshot's tables, and the snapshot table itself. */
static int scan_snapshots(struct ck *c)
{
	const struct qcow2_header *h = &c->s->m.h;
	struct qcow2_snap *sn = NULL;
	uint64_t bytes = 0;
	uint32_t n = 0;
	int ret;

	if (!h->nb_snapshots)
		return 0;
	ret = qcow2_snaps_read(c->s, c->fn, &sn, &n, c->errp);
	if (ret < 0) {
		vs_error_prefix(c->errp, "cannot check the snapshots");
		return ret;
	}
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		/* The entry's size as stored, padded to 8 bytes. */
		bytes += VS_ALIGN_UP(SNAP_FIXED + (uint64_t)sn[i].extra_size +
					     strlen(sn[i].id) +
					     strlen(sn[i].name),
				     8ull);
		ret = walk_l1(c, sn[i].l1_offset, sn[i].l1_size, false);
	}
	qcow2_snaps_free(sn, n);
	if (ret == 0)
		ret = inc(c, h->snapshots_offset, bytes);
	return ret;
}

/* Persistent dirty bitmaps: the directory, each bitmap's table and the
 * data clusters the tables name.  Malformed metadata stops the check,
 * so that no repair frees what a bitmap still uses. */

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static int bad_bitmaps(struct ck *c, const char *what, uint64_t v)
{
	return vs_error_set(c->errp, EINVAL,
			    "%s: persistent bitmaps: %s (0x%" PRIx64 ")", c->fn,
			    what, v);
}

/* The bitmaps extension in the first cluster: 1 and its fields when
 * there is one. */
static int find_bitmaps(struct ck *c, uint32_t *nb, uint64_t *dsize,
			uint64_t *doff)
{
	const struct qcow2_header *h = &c->s->m.h;
	uint64_t end = VS_MIN(c->cs, c->fsize);
	int ret = rd(c, 0, c->buf, c->cs, "header");

	for (uint64_t p = h->header_length; ret == 0 && p + 8 <= end;) {
		uint32_t type = get32(c->buf + p), len = get32(c->buf + p + 4);

		if (type == 0)
			break;
		if (len > end - p - 8)
			return bad_bitmaps(c,
					   "a header extension overruns the "
					   "first cluster",
					   p);
		if (type == EXT_BITMAPS) {
			if (len < 24)
				return bad_bitmaps(c, "extension too short",
						   len);
			*nb = get32(c->buf + p + 8);
			*dsize = get64(c->buf + p + 16);
			*doff = get64(c->buf + p + 24);
			return 1;
		}
		p += 8 + VS_ALIGN_UP((uint64_t)len, 8ull);
	}
	return ret;
}

/* A table of `n` entries at `off`: itself and the clusters it names. */
static int bitmap_table(struct ck *c, uint64_t off, uint32_t n)
{
	size_t bytes = (size_t)n * 8;
	autofree uint8_t *t = NULL;
	int ret;

	if (bytes > MAX_BM_TABLE || !VS_IS_ALIGNED(off, c->cs) ||
	    off >= c->fsize || bytes > c->fsize - off)
		return bad_bitmaps(c, "bitmap table not inside the file", off);
	t = malloc(bytes ? bytes : 1);
	if (!t)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	ret = inc(c, off, bytes);
	if (ret == 0)
		ret = rd(c, off, t, bytes, "bitmap table");
	for (uint32_t i = 0; ret == 0 && i < n; i++) {
		uint64_t data = get64(t + (size_t)i * 8) & QCOW2_OFFSET_MASK;

		if (data && !VS_IS_ALIGNED(data, c->cs))
			return bad_bitmaps(c, "unaligned bitmap data", data);
		ret = inc(c, data, data ? c->cs : 0);
	}
	return ret;
}

static int scan_bitmaps(struct ck *c)
{
	const struct qcow2_header *h = &c->s->m.h;
	uint64_t dsize = 0, doff = 0, pos = 0;
	autofree uint8_t *dir = NULL;
	uint32_t nb = 0;
	int ret;

	/* Without the autoclear bit the bitmaps are stale and QEMU ignores
	 * them: so does the check. */
	if (h->version < 3 || !(h->autoclear & AUTOCLEAR_BITMAPS))
		return 0;
	ret = find_bitmaps(c, &nb, &dsize, &doff);
	if (ret <= 0)
		return ret;
	if (dsize > MAX_BM_DIR || !VS_IS_ALIGNED(doff, c->cs) ||
	    doff >= c->fsize || dsize > c->fsize - doff)
		return bad_bitmaps(c, "directory not inside the file", doff);
	dir = malloc(dsize ? dsize : 1);
	if (!dir)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	ret = inc(c, doff, dsize);
	if (ret == 0)
		ret = rd(c, doff, dir, dsize, "bitmap directory");
	for (uint32_t i = 0; ret == 0 && i < nb; i++) {
		const uint8_t *e = dir + pos;
		uint64_t len;

		if (dsize - pos < BM_ENTRY_FIXED)
			return bad_bitmaps(c, "directory too short", dsize);
		/* Extra data, then the name, padded to 8 bytes. */
		len = VS_ALIGN_UP(BM_ENTRY_FIXED + (uint64_t)get32(e + 20) +
					  (uint64_t)(e[18] << 8 | e[19]),
				  8ull);
		if (len > dsize - pos)
			return bad_bitmaps(c, "directory entry overruns it",
					   pos);
		ret = bitmap_table(c, get64(e), get32(e + 8));
		pos += len;
	}
	return ret;
}

/* The refcount table and its blocks; an entry that cannot be trusted
 * means the whole structure must be rebuilt. */
static int scan_refcounts(struct ck *c)
{
	const struct qcow2_header *h = &c->s->m.h;
	size_t bytes = (size_t)h->refcount_table_clusters << c->cbits;
	int ret;

	c->rt_n = bytes / 8;
	c->rt = malloc(bytes);
	c->rt_counted = calloc(c->rt_n, 1);
	if (!c->rt || !c->rt_counted)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	ret = rd(c, h->refcount_table_offset, c->rt, bytes, "refcount table");
	if (ret == 0)
		ret = inc(c, h->refcount_table_offset, bytes);
	for (uint64_t t = 0; ret == 0 && t < c->rt_n; t++) {
		uint64_t e = c->rt[t] = be64toh(c->rt[t]);
		uint64_t off = e & ~RTE_RESERVED;
		const char *bad = NULL;

		if (!e)
			continue;
		if (e & RTE_RESERVED)
			say(c,
			    "ERROR refcount table entry %" PRIu64
			    " has reserved bits set",
			    t);
		else if (!VS_IS_ALIGNED(off, c->cs))
			bad = "is not cluster aligned; refcount table entry "
			      "corrupted";
		else if ((off >> c->cbits) >= c->nb)
			bad = "is outside image";
		if (bad)
			say(c, "ERROR refcount block %" PRIu64 " %s", t, bad);
		if (bad || (e & RTE_RESERVED)) {
			corruption(c, c->fix & VBD_CHECK_FIX_ERRORS);
			c->rebuild = true;
			continue;
		}
		ret = inc(c, off, c->cs);
		c->rt_counted[t] = 1;
		if (ret == 0 && ref_get(c, off >> c->cbits) != 1) {
			/* Shared with other metadata or data. */
			say(c,
			    "ERROR refcount block %" PRIu64
			    " refcount=%" PRIu64,
			    t, ref_get(c, off >> c->cbits));
			corruption(c, c->fix & VBD_CHECK_FIX_ERRORS);
			c->rebuild = true;
		}
	}
	return ret;
}

/* The block of table entry `t` as it reads, zeros when there is none.
 * An entry with reserved bits still names its block, as QEMU reads it. */
static int read_block(struct ck *c, uint64_t t)
{
	uint64_t off = t < c->rt_n ? c->rt[t] & ~RTE_RESERVED : 0;

	if (!off || !VS_IS_ALIGNED(off, c->cs)) {
		memset(c->buf, 0, c->cs);
		return 0;
	}
	return rd(c, off, c->buf, c->cs, "refcount block");
}

/* Refcounts on disk against the counts. */

static bool leak_fixable(const struct ck *c)
{
	/* A table that cannot be trusted is only written by a rebuild. */
	return (c->fix & VBD_CHECK_FIX_LEAKS) &&
	       (!c->rebuild || (c->fix & VBD_CHECK_FIX_ERRORS));
}

/* What cluster `k` (below c->used) will have on disk after repair. */
static uint64_t repaired(const struct ck *c, uint64_t k)
{
	uint64_t d = dsk_get(c, k), r = ref_get(c, k);

	if (d > r)
		return leak_fixable(c) ? r : d;
	if (d < r)
		return (c->fix & VBD_CHECK_FIX_ERRORS) ? r : d;
	return r;
}

static void mismatch(struct ck *c, uint64_t k, uint64_t d, uint64_t r)
{
	bool leak = d > r;
	bool fixing =
		leak ? leak_fixable(c) : (c->fix & VBD_CHECK_FIX_ERRORS) != 0;

	say(c, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64,
	    fixing ? "Repairing"
	    : leak ? "Leaked"
		   : "ERROR",
	    k, d, r);
	if (!leak) {
		corruption(c, fixing);
		return;
	}
	c->res->leaks++;
	if (fixing)
		c->res->leaks_fixed++;
}

static int compare(struct ck *c)
{
	c->used = VS_MAX(c->used, c->nb);
	c->dsk = calloc(1, packed_bytes(c, c->used) + 1);
	if (!c->dsk)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	for (uint64_t t = 0; t * c->rbe < c->used; t++) {
		uint64_t base = t * c->rbe;
		uint64_t end = VS_MIN(c->used, base + c->rbe);
		int ret = read_block(c, t);

		if (ret < 0)
			return ret;
		for (uint64_t k = base; k < end; k++) {
			uint64_t d = qcow2_rc_get(c->buf, k - base, c->order);
			uint64_t r = ref_get(c, k);

			qcow2_rc_set(c->dsk, k, c->order, d);
			if (d || r)
				c->highest = k;
			if (d != r)
				mismatch(c, k, d, r);
		}
	}
	return 0;
}

/* Repair of the refcounts. */

/* Where new refcount structures go: from c->used on, blocks first,
 * then (if the table is replaced) the table. */
struct layout {
	uint64_t start;	  /* first new cluster (= c->used) */
	uint64_t nblocks; /* new blocks */
	uint64_t nrt;	  /* clusters of a new table, or 0 */
	uint64_t nt;	  /* table entries the repair covers */
	const bool *need; /* per entry below c->used: a new block must
			   * hold repaired refcounts */
	uint64_t *pos;	  /* per entry: the new block's cluster, or 0 */
};

static uint64_t layout_end(const struct layout *l)
{
	return l->start + l->nblocks + l->nrt;
}

/* The block of entry `t` is kept and written in place. */
static bool kept(const struct ck *c, uint64_t t)
{
	return !c->rebuild && t < c->rt_n && c->rt_counted[t];
}

/* Entry `t` gets a new block: it has refcounts to hold and no block
 * that is kept, or it covers some of the new structures. */
static bool new_block(const struct ck *c, const struct layout *l, uint64_t t)
{
	uint64_t lo = t * c->rbe, hi = lo + c->rbe, end = layout_end(l);

	if (kept(c, t))
		return false;
	if (lo < c->used && l->need[t])
		return true;
	return lo < end && hi > l->start;
}

/* Any cluster of block `t` (below c->used) has a refcount after repair. */
static bool block_needed(const struct ck *c, uint64_t t)
{
	uint64_t end = VS_MIN(c->used, (t + 1) * c->rbe);

	for (uint64_t k = t * c->rbe; k < end; k++)
		if (repaired(c, k))
			return true;
	return false;
}

/*
 * Size the new structures.  They describe themselves too, so iterate
 * until the layout covers its own end, as growing the table does when
 * writing.
 */
static int plan(struct ck *c, struct layout *l)
{
	uint64_t tpc = c->cs / 8, old = c->rt_n / tpc;

	for (;;) {
		uint64_t nt = (layout_end(l) + c->rbe - 1) / c->rbe;
		uint64_t k = 0, top = 0, rtc = 0;

		for (uint64_t t = 0; t < nt; t++) {
			if (new_block(c, l, t))
				k++;
			if (kept(c, t) || new_block(c, l, t))
				top = t + 1;
		}
		if (c->rebuild || top > c->rt_n)
			rtc = VS_MAX((top + tpc - 1) / tpc,
				     c->rebuild ? 1 : old);
		l->nt = nt;
		if (k <= l->nblocks && rtc <= l->nrt)
			break;
		l->nblocks = VS_MAX(k, l->nblocks);
		l->nrt = VS_MAX(rtc, l->nrt);
	}
	if (l->nrt * c->cs > MAX_REFTABLE)
		return vs_error_set(c->errp, EFBIG,
				    "%s: a refcount table of %" PRIu64
				    " clusters would exceed 8 MiB",
				    c->fn, l->nrt);
	return 0;
}

/* The refcount cluster `k` gets: repaired counts, 1 for the new
 * structures, 0 past them. */
static uint64_t target(const struct ck *c, const struct layout *l, uint64_t k)
{
	if (k < c->used)
		return repaired(c, k);
	return k < layout_end(l) ? 1 : 0;
}

static void fill_block(const struct ck *c, const struct layout *l, uint64_t t,
		       uint8_t *blk)
{
	uint64_t base = t * c->rbe;
	uint64_t end = VS_MIN(layout_end(l), base + c->rbe);

	memset(blk, 0, c->cs);
	for (uint64_t k = base; k < end; k++)
		qcow2_rc_set(blk, k - base, c->order, target(c, l, k));
}

static int write_table(struct ck *c, const struct layout *l)
{
	size_t bytes = (size_t)(l->nrt << c->cbits);
	autofree uint8_t *tab = calloc(1, bytes);

	if (!tab)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	for (uint64_t t = 0; t < l->nt && t < bytes / 8; t++)
		put64(tab + t * 8, l->pos[t]	? l->pos[t] << c->cbits
				   : kept(c, t) ? c->rt[t]
						: 0);
	return wr(c, (layout_end(l) - l->nrt) << c->cbits, tab, bytes,
		  "new refcount table");
}

/* Step 1: the new blocks and table at the end of the file, stable. */
static int write_new(struct ck *c, struct layout *l)
{
	uint64_t next = l->start;
	int ret = 0;

	l->pos = calloc(l->nt + 1, sizeof(*l->pos));
	if (!l->pos)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	for (uint64_t t = 0; t < l->nt && ret == 0; t++) {
		if (!new_block(c, l, t))
			continue;
		l->pos[t] = next++;
		fill_block(c, l, t, c->buf);
		ret = wr(c, l->pos[t] << c->cbits, c->buf, c->cs,
			 "new refcount block");
	}
	if (ret == 0 && next != l->start + l->nblocks)
		ret = vs_error_set(c->errp, EIO,
				   "%s: internal error: %" PRIu64
				   " new refcount blocks planned, %" PRIu64
				   " written",
				   c->fn, l->nblocks, next - l->start);
	if (ret == 0 && l->nrt)
		ret = write_table(c, l);
	return ret ? ret : sync_file(c);
}

/* Step 2: the header, or the old table, points at them. */
static int link_new(struct ck *c, const struct layout *l)
{
	uint8_t hdr[12];
	int ret = 0;

	if (l->nrt) {
		put64(hdr, (layout_end(l) - l->nrt) << c->cbits);
		for (int i = 0; i < 4; i++)
			hdr[8 + i] = (uint8_t)(l->nrt >> (24 - 8 * i));
		ret = wr(c, REFTABLE_OFF, hdr, sizeof(hdr), "header");
		return ret ? ret : sync_file(c);
	}
	for (uint64_t t = 0; t < l->nt && ret == 0; t++) {
		if (!l->pos[t])
			continue;
		put64(hdr, l->pos[t] << c->cbits);
		ret = wr(c, c->s->m.h.refcount_table_offset + t * 8, hdr, 8,
			 "refcount table");
	}
	return ret ? ret : sync_file(c);
}

/* Step 3: the blocks kept in place get the repaired counts. */
static int write_kept(struct ck *c, const struct layout *l)
{
	for (uint64_t t = 0; t < l->nt && t < c->rt_n; t++) {
		uint64_t base = t * c->rbe;
		uint64_t end = VS_MIN(layout_end(l), base + c->rbe);
		bool changed = false;
		int ret;

		if (!kept(c, t))
			continue;
		ret = read_block(c, t);
		for (uint64_t k = base; ret == 0 && k < end; k++) {
			uint64_t v = target(c, l, k);

			if (qcow2_rc_get(c->buf, k - base, c->order) != v) {
				qcow2_rc_set(c->buf, k - base, c->order, v);
				changed = true;
			}
		}
		if (ret == 0 && changed)
			ret = wr(c, c->rt[t], c->buf, c->cs, "refcount block");
		if (ret < 0)
			return ret;
	}
	return sync_file(c);
}

/* Which entries need a new block; true if any does. */
static bool find_needs(struct ck *c, bool *need, uint64_t nt)
{
	bool any = false;

	if (!(c->fix & VBD_CHECK_FIX_ERRORS))
		return false;
	for (uint64_t t = 0; t < nt; t++) {
		need[t] = !kept(c, t) && block_needed(c, t);
		any |= need[t];
	}
	return any;
}

static int repair_refcounts(struct ck *c)
{
	const struct qcow2_header *h = &c->s->m.h;
	uint64_t nt = (c->used + c->rbe - 1) / c->rbe;
	autofree bool *need = calloc(nt + 1, sizeof(bool));
	struct layout l = {.start = c->used, .nt = nt, .need = need};
	int ret = 0;

	if (!c->fix)
		return 0;
	if (c->rebuild && !(c->fix & VBD_CHECK_FIX_ERRORS)) {
		say(c, "ERROR need to rebuild refcount structures (-r all)");
		return 0;
	}
	if (!need)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	if (c->rebuild) {
		/* The old structure is replaced: it holds no references. */
		dec(c, h->refcount_table_offset, c->rt_n * 8);
		for (uint64_t t = 0; t < c->rt_n; t++)
			if (c->rt_counted[t])
				dec(c, c->rt[t], c->cs);
	}
	if (find_needs(c, need, nt) || c->rebuild)
		ret = plan(c, &l);
	/* A new table replaces the old one, which is freed. */
	if (ret == 0 && l.nrt && !c->rebuild)
		dec(c, h->refcount_table_offset, c->rt_n * 8);
	if (ret == 0 && (l.nblocks || l.nrt)) {
		ret = write_new(c, &l);
		if (ret == 0)
			ret = link_new(c, &l);
	}
	if (ret == 0 && !c->rebuild)
		ret = write_kept(c, &l);
	/* From now on the counts on disk are the repaired ones. */
	for (uint64_t k = 0; ret == 0 && k < c->used; k++)
		qcow2_rc_set(c->dsk, k, c->order, repaired(c, k));
	free(l.pos);
	return ret;
}

/* OFLAG_COPIED in the active tables. */

static bool copied_repair(const struct ck *c)
{
	const struct vbd_check *r = c->res;

	if (c->fix & VBD_CHECK_FIX_ERRORS)
		return true;
	/* With leaks fixed only: when the refcounts are known good. */
	return (c->fix & VBD_CHECK_FIX_LEAKS) && !r->check_errors &&
	       r->corruptions == r->corruptions_fixed &&
	       r->leaks == r->leaks_fixed;
}

static uint64_t copied_as(uint64_t e, uint64_t rc)
{
	return rc == 1 ? e | QCOW2_L2E_COPIED : e & ~QCOW2_L2E_COPIED;
}

static int copied_l2(struct ck *c, uint64_t l2off, bool repair)
{
	bool dirty = false;
	int ret = rd(c, l2off, c->buf, c->cs, "L2 table");

	for (uint64_t j = 0; ret == 0 && j < c->l2_n; j++) {
		uint8_t *p = c->buf + j * c->esize;
		uint64_t e = get64(p), rc;
		enum etype t = etype(c, e);

		if (t != E_NORMAL && t != E_ZERO_ALLOC)
			continue;
		rc = dsk_get(c, (e & QCOW2_OFFSET_MASK) >> c->cbits);
		if ((rc == 1) == !!(e & QCOW2_L2E_COPIED))
			continue;
		say(c,
		    "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
		    " refcount=%" PRIu64,
		    verb(repair), e, rc);
		corruption(c, repair);
		if (repair) {
			put64(p, copied_as(e, rc));
			dirty = true;
		}
	}
	if (ret == 0 && dirty)
		ret = wr(c, l2off, c->buf, c->cs, "L2 table");
	return ret;
}

static int check_copied(struct ck *c)
{
	uint64_t l1off = c->s->m.h.l1_table_offset;
	bool repair = copied_repair(c);
	int ret = 0;

	for (uint32_t i = 0; i < c->l1_n && ret == 0; i++) {
		uint64_t e = c->l1[i], l2 = e & QCOW2_OFFSET_MASK, rc;
		uint8_t be[8];

		if (!l2)
			continue;
		rc = dsk_get(c, l2 >> c->cbits);
		if ((rc == 1) != !!(e & QCOW2_L2E_COPIED)) {
			say(c,
			    "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32
			    " l1_entry=%" PRIx64 " refcount=%" PRIu64,
			    verb(repair), i, e, rc);
			corruption(c, repair);
			if (repair) {
				c->l1[i] = copied_as(e, rc);
				put64(be, c->l1[i]);
				ret = wr(c, l1off + (uint64_t)i * 8, be, 8,
					 "L1 table");
			}
		}
		if (ret == 0 && VS_IS_ALIGNED(l2, c->cs))
			ret = copied_l2(c, l2, repair);
	}
	return ret;
}

/* After a repair that left nothing wrong: clear the dirty and corrupt
 * bits, which only version 3 headers have. */
static int mark_clean(struct ck *c)
{
	const struct vbd_check *r = c->res;
	uint8_t be[8];
	uint64_t v;
	int ret;

	if (!c->fix || r->check_errors ||
	    r->corruptions != r->corruptions_fixed || c->s->m.h.version < 3)
		return 0;
	ret = rd(c, INCOMPAT_OFF, be, 8, "header");
	if (ret < 0)
		return ret;
	v = get64(be);
	if (!(v & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)))
		return 0;
	ret = sync_file(c); /* the repairs first */
	put64(be, v & ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT));
	if (ret == 0)
		ret = wr(c, INCOMPAT_OFF, be, 8, "header");
	return ret;
}

/* Setup and the whole run. */

static int setup(struct ck *c)
{
	const struct qcow2_header *h = &c->s->m.h;
	uint64_t fsize = vbd_size(c->s->file);

	c->cbits = h->cluster_bits;
	c->cs = 1ull << c->cbits;
	c->order = h->refcount_order;
	c->rmax = c->order == 6 ? UINT64_MAX : (1ull << (1u << c->order)) - 1;
	c->rbe = (c->cs * 8) >> c->order;
	c->ext_l2 = h->incompatible & QCOW2_INCOMPAT_EXTENDED_L2;
	c->esize = c->ext_l2 ? 16 : 8;
	c->l2_n = c->cs / c->esize;
	c->fsize = fsize;
	c->nb = (fsize + c->cs - 1) >> c->cbits;
	c->res->total_clusters = (h->size + c->cs - 1) >> c->cbits;
	c->buf = malloc(c->cs);
	if (!c->buf)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	return ref_grow(c, c->nb + 1);
}

static int run(struct ck *c)
{
	int ret = setup(c);

	if (ret == 0)
		ret = inc(c, 0, c->cs); /* the header */
	if (ret == 0)
		ret = walk_l1(c, c->s->m.h.l1_table_offset, c->s->m.h.l1_size,
			      true);
	if (ret == 0)
		ret = scan_snapshots(c);
	if (ret == 0)
		ret = scan_bitmaps(c);
	if (ret == 0)
		ret = scan_refcounts(c);
	if (ret == 0)
		ret = compare(c);
	if (ret == 0)
		ret = repair_refcounts(c);
	if (ret == 0)
		ret = check_copied(c);
	if (ret == 0)
		ret = mark_clean(c);
	if (ret == 0 && c->wrote)
		ret = sync_file(c);
	c->res->image_end_offset = (c->highest + 1) << c->cbits;
	return ret;
}

static void ck_free(struct ck *c)
{
	free(c->ref);
	free(c->dsk);
	free(c->rt);
	free(c->rt_counted);
	free(c->l1);
	free(c->buf);
}

/* The check on `s`; the caller holds w_lock or the image is not in use
 * yet. */
static int check_locked(struct vbd *vbd, struct qcow2 *s, unsigned fix,
			bool quiet, struct vbd_check *res,
			struct vs_error **errp)
{
	struct ck c = {
		.s = s,
		.fn = vbd->filename,
		.fix = fix,
		.res = res,
		.errp = errp,
		.quiet = quiet,
	};
	int ret = 0;

	memset(res, 0, sizeof(*res));
	/* Metadata still in the driver's caches goes to the file first. */
	if (s->writable)
		ret = qcow2_meta_flush(s);
	if (ret < 0)
		return vs_error_set_errno(errp, ret, "%s: cannot flush",
					  vbd->filename);
	ret = run(&c);
	/* The tables in the file changed under the driver's caches. */
	if (c.wrote) {
		struct vs_error *err = NULL;
		int r2 = qcow2_meta_reload(vbd, s, ret < 0 ? &err : errp);

		vs_error_free(err);
		if (ret == 0)
			ret = r2;
	}
	ck_free(&c);
	return ret;
}

int qcow2_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
		struct vs_error **errp)
{
	struct qcow2 *s = vbd->opaque;
	int ret;

	if (!s->writable) {
		ret = check_locked(vbd, s, 0, false, res, errp);
	} else {
		pthread_mutex_lock(&s->w_lock);
		ret = check_locked(vbd, s, fix, false, res, errp);
		pthread_mutex_unlock(&s->w_lock);
	}
	/* -ENOTSUP from vbd_check means "this format has no check". */
	return ret == -ENOTSUP ? -EIO : ret;
}

int qcow2_repair_dirty(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp)
{
	struct vbd_check res;
	/* Each finding is a debug message: a crash can leave thousands,
	 * and the summary below says what was done. */
	int ret =
		check_locked(vbd, s, VBD_CHECK_FIX_LEAKS | VBD_CHECK_FIX_ERRORS,
			     true, &res, errp);

	if (ret < 0) {
		vs_error_prefix(errp, "cannot repair the refcounts after an "
				      "unclean shutdown (dirty bit)");
		return ret;
	}
	if (res.check_errors || res.corruptions != res.corruptions_fixed)
		return vs_error_set(errp, EIO,
				    "%s: the image was not closed cleanly and "
				    "%" PRIu64 " of its errors cannot be "
				    "repaired; see 'vstor img check'",
				    vbd->filename,
				    res.corruptions - res.corruptions_fixed);
	if (res.leaks_fixed || res.corruptions_fixed)
		vs_log(VS_LOG_INFO, "qcow2",
		       "%s: repaired the refcounts after an unclean shutdown "
		       "(%" PRIu64 " leaked clusters, %" PRIu64 " errors)",
		       vbd->filename, res.leaks_fixed, res.corruptions_fixed);
	return 0;
}

int qcow2_open_repair(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp)
{
	struct vs_error *err = NULL;
	int ret = qcow2_refcount_load(s, vbd->filename, &err);

	if (ret == -ENOMEM) {
		vs_error_set(errp, ENOMEM, "%s", vs_error_msg(err));
		vs_error_free(err);
		return ret;
	}
	/*
	 * A table with bad entries is what check -r is for: the check reads
	 * every table from the file itself and never allocates through the
	 * driver, and a repair reloads the table (qcow2_meta_reload).  What
	 * the failed load set up is freed at close as usual.
	 */
	if (ret < 0) {
		vs_debug("qcow2", "%s: opened for repair: %s", vbd->filename,
			 vs_error_msg(err));
		vs_error_free(err);
	}
	return 0;
}
