/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal snapshots: the snapshot table (read and checked at open,
 * rewritten whole on every change) and create, list, apply (revert) and
 * delete.
 *
 * A snapshot is a copy of the active L1 table; L2 tables and data
 * clusters stay shared.  A refcount counts the L1 tables that reach a
 * cluster: a cluster that the active L1 and two snapshots reach has
 * refcount 3, and COPIED (write in place) is set in the active tables
 * exactly where the refcount is 1.
 *
 * Every operation works on the metadata in the file: under w_lock, after
 * qcow2_meta_flush, ending with qcow2_meta_reload.  Writes are ordered
 * so that a crash leaves at most leaked clusters: new tables are stable
 * before their refcounts go up, refcounts go up before anything stable
 * points at the new clusters, the header switches with one write, and
 * refcounts go down only after that.  Refcounts are checked for
 * overflow before anything is written, so that a refusal leaves the
 * image as it was.
 *
 * These are control-plane operations: callers quiesce guest I/O first
 * (writes in place run outside w_lock and trust COPIED).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "qcow2-snapshot.h"

#define SNAP_FIXED     40	   /* the fixed part of an entry */
#define SNAP_MAX_COUNT 65536	   /* QEMU's limit too */
#define SNAP_MAX_TABLE (64u << 20) /* QEMU's limit too */
#define SNAP_MAX_EXTRA 1024	   /* QEMU's limit too */
/* Extra data this driver writes: vm_state_size_large, disk_size,
 * icount (v3 readers need at least the first two). */
#define SNAP_EXTRA_LEN 24

static struct qcow2 *qcow2_of(struct vbd *vbd)
{
	return vbd->opaque;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* Bytes of one L2 entry: 16 with extended L2 entries (the descriptor
 * comes first, then the subcluster bitmap). */
static uint32_t l2_entry_size(const struct qcow2 *s)
{
	return s->m.h.incompatible & QCOW2_INCOMPAT_EXTENDED_L2 ? 16 : 8;
}

/* Reading the table. */

/* The part of the table read so far, grown as the entries need it. */
struct tbuf {
	uint8_t *p;
	size_t len;
};

/* Make the first `need` bytes of the table available; `field` names
 * what needs them, for the error. */
static int tbuf_need(struct qcow2 *s, const char *fn, struct tbuf *t,
		     uint64_t need, uint32_t i, const char *field,
		     struct vs_error **errp)
{
	uint64_t off = s->m.h.snapshots_offset, len;
	uint8_t *p;
	int ret;

	if (need <= t->len)
		return 0;
	if (need > SNAP_MAX_TABLE)
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot table at offset 0x%" PRIx64
				    ", entry %" PRIu32
				    ": %s makes the table larger than 64 MiB",
				    fn, off, i, field);
	if (off >= s->file_size || need > s->file_size - off)
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot table at offset 0x%" PRIx64
				    ", entry %" PRIu32
				    ": %s goes past the end of the file "
				    "(%" PRIu64 " bytes)",
				    fn, off, i, field, s->file_size);
	/* Read ahead: whole entries are small and many. */
	len = VS_MAX(need, VS_MAX((uint64_t)t->len * 2, (uint64_t)65536));
	len = VS_MIN(len, VS_MIN((uint64_t)SNAP_MAX_TABLE, s->file_size - off));
	p = realloc(t->p, (size_t)len);
	if (!p)
		return vs_error_set(errp, ENOMEM, "out of memory");
	t->p = p;
	ret = vbd_pread(s->file, off + t->len, p + t->len,
			(size_t)len - t->len);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the snapshot table "
					  "at offset 0x%" PRIx64,
					  fn, off);
	t->len = (size_t)len;
	return 0;
}

/* A string from the table: no NUL inside (it would cut the name). */
static int copy_str(const uint8_t *p, size_t n, char **out, const char *fn,
		    uint32_t i, const char *field, struct vs_error **errp)
{
	if (memchr(p, 0, n))
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot table entry %" PRIu32
				    ": the %s holds a NUL byte",
				    fn, i, field);
	*out = strndup((const char *)p, n);
	return *out ? 0 : vs_error_set(errp, ENOMEM, "out of memory");
}

/* The known fields of the extra data; the rest is kept as it is. */
static void parse_extra(const struct qcow2 *s, struct qcow2_snap *sn)
{
	sn->disk_size = s->m.h.size; /* older entries: the image's */
	sn->icount = UINT64_MAX;
	if (sn->extra_size >= 8)
		sn->vm_state_size = get64(sn->extra);
	if (sn->extra_size >= 16)
		sn->disk_size = get64(sn->extra + 8);
	if (sn->extra_size >= 24)
		sn->icount = get64(sn->extra + 16);
}

static int check_snap_l1(const struct qcow2 *s, const char *fn, uint32_t i,
			 const struct qcow2_snap *sn, struct vs_error **errp)
{
	uint64_t bytes = (uint64_t)sn->l1_size * 8;

	if (bytes > QCOW2_MAX_L1_BYTES)
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot table entry %" PRIu32
				    ": l1_size %" PRIu32
				    " makes an L1 table larger than 32 MiB",
				    fn, i, sn->l1_size);
	if (!VS_IS_ALIGNED(sn->l1_offset, (uint64_t)s->cluster_size))
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot table entry %" PRIu32
				    ": l1_table_offset 0x%" PRIx64
				    " is not aligned to a cluster",
				    fn, i, sn->l1_offset);
	if (bytes && (sn->l1_offset == 0 || sn->l1_offset >= s->file_size ||
		      bytes > s->file_size - sn->l1_offset))
		return vs_error_set(
			errp, EINVAL,
			"%s: snapshot table entry %" PRIu32
			": l1_table_offset 0x%" PRIx64 " with l1_size %" PRIu32
			" is not inside the file (%" PRIu64 " bytes)",
			fn, i, sn->l1_offset, sn->l1_size, s->file_size);
	return 0;
}

/* Entry `i` at byte `*pos` of the table; *pos moves past it. */
static int parse_entry(struct qcow2 *s, const char *fn, struct tbuf *t,
		       uint64_t *pos, uint32_t i, struct qcow2_snap *sn,
		       struct vs_error **errp)
{
	uint64_t p = *pos;
	uint32_t id_len, name_len;
	const uint8_t *b;
	int ret =
		tbuf_need(s, fn, t, p + SNAP_FIXED, i, "its fixed part", errp);

	if (ret < 0)
		return ret;
	b = t->p + p;
	sn->l1_offset = get64(b);
	sn->l1_size = get32(b + 8);
	id_len = get16(b + 12);
	name_len = get16(b + 14);
	sn->date_sec = get32(b + 16);
	sn->date_nsec = get32(b + 20);
	sn->vm_clock_nsec = get64(b + 24);
	sn->vm_state_size = get32(b + 32);
	sn->extra_size = get32(b + 36);
	if (sn->extra_size > SNAP_MAX_EXTRA)
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot table entry %" PRIu32
				    ": extra_data_size %" PRIu32
				    " is larger than %d",
				    fn, i, sn->extra_size, SNAP_MAX_EXTRA);
	p += SNAP_FIXED;
	ret = tbuf_need(s, fn, t, p + sn->extra_size, i, "extra_data_size",
			errp);
	if (ret == 0)
		ret = tbuf_need(s, fn, t, p + sn->extra_size + id_len, i,
				"id_str_size", errp);
	if (ret == 0)
		ret = tbuf_need(s, fn, t,
				p + sn->extra_size + id_len + name_len, i,
				"name_size", errp);
	if (ret < 0)
		return ret;
	sn->extra = malloc(VS_MAX(sn->extra_size, 1u));
	if (!sn->extra)
		return vs_error_set(errp, ENOMEM, "out of memory");
	memcpy(sn->extra, t->p + p, sn->extra_size);
	parse_extra(s, sn);
	p += sn->extra_size;
	ret = copy_str(t->p + p, id_len, &sn->id, fn, i, "id", errp);
	if (ret == 0)
		ret = copy_str(t->p + p + id_len, name_len, &sn->name, fn, i,
			       "name", errp);
	if (ret == 0)
		ret = check_snap_l1(s, fn, i, sn, errp);
	*pos = VS_ALIGN_UP(p + id_len + name_len, 8ull);
	return ret;
}

int qcow2_snaps_read(struct qcow2 *s, const char *filename,
		     struct qcow2_snap **out, uint32_t *n,
		     struct vs_error **errp)
{
	const struct qcow2_header *h = &s->m.h;
	struct tbuf t = {0};
	struct qcow2_snap *v;
	uint64_t pos = 0;
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (!h->nb_snapshots)
		return 0;
	if (h->nb_snapshots > SNAP_MAX_COUNT)
		return vs_error_set(errp, EINVAL,
				    "%s: nb_snapshots %" PRIu32
				    " is more than %d",
				    filename, h->nb_snapshots, SNAP_MAX_COUNT);
	if (!VS_IS_ALIGNED(h->snapshots_offset, (uint64_t)s->cluster_size))
		return vs_error_set(errp, EINVAL,
				    "%s: snapshots_offset 0x%" PRIx64
				    " is not aligned to a cluster",
				    filename, h->snapshots_offset);
	v = calloc(h->nb_snapshots, sizeof(*v));
	if (!v)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < h->nb_snapshots && ret == 0; i++)
		ret = parse_entry(s, filename, &t, &pos, i, &v[i], errp);
	free(t.p);
	if (ret < 0) {
		qcow2_snaps_free(v, h->nb_snapshots);
		return ret;
	}
	*out = v;
	*n = h->nb_snapshots;
	return 0;
}

void qcow2_snaps_free(struct qcow2_snap *snaps, uint32_t n)
{
	for (uint32_t i = 0; snaps && i < n; i++) {
		free(snaps[i].id);
		free(snaps[i].name);
		free(snaps[i].extra);
	}
	free(snaps);
}

int qcow2_snaps_check(struct qcow2 *s, const char *filename,
		      struct vs_error **errp)
{
	struct qcow2_snap *v;
	uint32_t n;
	int ret = qcow2_snaps_read(s, filename, &v, &n, errp);

	if (ret == 0)
		qcow2_snaps_free(v, n);
	return ret;
}

/* Writing the table. */

static uint64_t entry_len(const struct qcow2_snap *sn)
{
	return VS_ALIGN_UP(SNAP_FIXED + (uint64_t)sn->extra_size +
				   strlen(sn->id) + strlen(sn->name),
			   8ull);
}

static uint64_t table_len(const struct qcow2_snap *v, uint32_t n)
{
	uint64_t len = 0;

	for (uint32_t i = 0; i < n; i++)
		len += entry_len(&v[i]);
	return len;
}

/*
 * Entries of older writers lack the extra data v3 readers need: extend
 * it to SNAP_EXTRA_LEN bytes with what the entry means (as QEMU does
 * when it rewrites the table).
 */
static int extend_extra(struct qcow2_snap *sn)
{
	uint8_t *x;

	if (sn->extra_size >= SNAP_EXTRA_LEN)
		return 0;
	x = realloc(sn->extra, SNAP_EXTRA_LEN);
	if (!x)
		return -ENOMEM;
	put64(x, sn->vm_state_size);
	put64(x + 8, sn->disk_size);
	put64(x + 16, sn->icount);
	sn->extra = x;
	sn->extra_size = SNAP_EXTRA_LEN;
	return 0;
}

static void put_entry(uint8_t *b, const struct qcow2_snap *sn)
{
	size_t id_len = strlen(sn->id), name_len = strlen(sn->name);

	put64(b, sn->l1_offset);
	put32(b + 8, sn->l1_size);
	put16(b + 12, (uint16_t)id_len);
	put16(b + 14, (uint16_t)name_len);
	put32(b + 16, sn->date_sec);
	put32(b + 20, sn->date_nsec);
	put64(b + 24, sn->vm_clock_nsec);
	/* The 32-bit field for old readers; the extra data has it all. */
	put32(b + 32, (uint32_t)VS_MIN(sn->vm_state_size, UINT32_MAX));
	put32(b + 36, sn->extra_size);
	memcpy(b + SNAP_FIXED, sn->extra, sn->extra_size);
	memcpy(b + SNAP_FIXED + sn->extra_size, sn->id, id_len);
	memcpy(b + SNAP_FIXED + sn->extra_size + id_len, sn->name, name_len);
}

/* Cluster work. */

/*
 * Reserve `n` contiguous clusters (refcounts still 0).  A run cut short
 * (by new refcount blocks, or a free cluster amid used ones) starts
 * again after it; the clusters passed over stay free.
 */
static int alloc_run(struct qcow2 *s, uint64_t n, uint64_t *start)
{
	uint64_t first = 0, got = 0, host;

	while (got < n) {
		int ret = qcow2_alloc_cluster(s, &host);

		if (ret < 0)
			return ret;
		if (got == 0 || host != first + got * s->cluster_size) {
			first = host;
			got = 0;
		}
		got++;
	}
	*start = first;
	return 0;
}

/*
 * Put `len` bytes in new clusters: written and stable, then their
 * refcounts raised (not yet stable).  Nothing points at them yet.
 */
static int write_new(struct qcow2 *s, const void *buf, uint64_t len,
		     uint64_t *off)
{
	uint64_t n = (len + s->cluster_size - 1) >> s->cluster_bits;
	int ret;

	*off = 0;
	if (!n)
		return 0;
	ret = alloc_run(s, n, off);
	if (ret == 0)
		ret = qcow2_file_pwrite(s, *off, buf, (size_t)len);
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	if (ret == 0)
		ret = qcow2_refcount_update(s, *off, n << s->cluster_bits, 1);
	return ret;
}

/* A table of `n` entries at `off` from the file, in host byte order. */
static int l1_read(struct qcow2 *s, uint64_t off, uint32_t n, uint32_t cap,
		   uint64_t **out, struct vs_error **errp)
{
	uint64_t *l1 = calloc(VS_MAX(VS_MAX(n, cap), 1u), 8);
	int ret = 0;

	*out = NULL;
	if (!l1)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (n)
		ret = vbd_pread(s->file, off, l1, (size_t)n * 8);
	if (ret < 0) {
		free(l1);
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the L1 table at "
					  "offset 0x%" PRIx64,
					  s->filename, off);
	}
	for (uint32_t i = 0; i < n; i++)
		l1[i] = be64toh(l1[i]);
	*out = l1;
	return 0;
}

/* Write `l1` in place at `off`, or with `new_off` to new clusters (as
 * write_new). */
static int l1_write(struct qcow2 *s, uint64_t off, const uint64_t *l1,
		    uint32_t n, uint64_t *new_off)
{
	autofree uint64_t *be = malloc((size_t)VS_MAX(n, 1u) * 8);

	if (!be)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		be[i] = htobe64(l1[i]);
	if (new_off)
		return write_new(s, be, (uint64_t)n * 8, new_off);
	return qcow2_file_pwrite(s, off, be, (size_t)n * 8);
}

/* References: the clusters an L1 tree reaches, one entry per reference. */

struct refs {
	uint64_t *c; /* cluster numbers */
	size_t n, cap;
};

static int refs_add(struct refs *r, uint64_t cluster)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		uint64_t *c = realloc(r->c, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		r->c = c;
		r->cap = cap;
	}
	r->c[r->n++] = cluster;
	return 0;
}

/* Every cluster [off, off+len) touches. */
static int refs_add_range(const struct qcow2 *s, struct refs *r, uint64_t off,
			  uint64_t len)
{
	int ret = 0;

	if (!len)
		return 0;
	for (uint64_t c = off >> s->cluster_bits;
	     ret == 0 && c <= (off + len - 1) >> s->cluster_bits; c++)
		ret = refs_add(r, c);
	return ret;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void refs_sort(struct refs *r)
{
	if (r->n)
		qsort(r->c, r->n, sizeof(*r->c), cmp_u64);
}

/* The host bytes a compressed entry's sectors cover. */
static void compressed_range(const struct qcow2 *s, uint64_t e, uint64_t *off,
			     uint64_t *len)
{
	uint64_t host, nsect;

	qcow2_compressed_loc(s->cluster_bits, e, &host, &nsect);
	*off = VS_ALIGN_DOWN(host, 512ull);
	*len = nsect * QCOW2_COMPRESSED_SECT;
}

/* Which L1 table a walk starts from, for messages. */
struct walk {
	const char *what; /* "the active L1 table", "snapshot 'x'" */
	uint64_t l1_off;
};

static int bad_entry(const struct qcow2 *s, const struct walk *w,
		     const char *table, uint64_t off, uint64_t i, uint64_t e,
		     struct vs_error **errp)
{
	return vs_error_set(errp, EIO,
			    "%s: corrupt image: %s (L1 table at 0x%" PRIx64
			    "): %s at offset 0x%" PRIx64 ", entry %" PRIu64
			    " is 0x%016" PRIx64
			    " (not a cluster inside the file); run "
			    "'qemu-img check -r all'",
			    s->filename, w->what, w->l1_off, table, off, i, e);
}

static int walk_l2(struct qcow2 *s, const struct walk *w, uint64_t l2off,
		   const uint8_t *tab, struct refs *r, struct vs_error **errp)
{
	uint32_t esize = l2_entry_size(s), n = s->cluster_size / esize;
	int ret = 0;

	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = get64(tab + (size_t)i * esize), off, len;

		if (e & QCOW2_L2E_COMPRESSED) {
			compressed_range(s, e, &off, &len);
			if (off >= s->file_size)
				return bad_entry(s, w, "L2 table", l2off, i, e,
						 errp);
			ret = refs_add_range(s, r, off, len);
			continue;
		}
		off = e & QCOW2_OFFSET_MASK;
		if (!off)
			continue;
		if (!VS_IS_ALIGNED(off, (uint64_t)s->cluster_size) ||
		    off >= s->file_size)
			return bad_entry(s, w, "L2 table", l2off, i, e, errp);
		ret = refs_add(r, off >> s->cluster_bits);
	}
	return ret < 0 ? vs_error_set(errp, ENOMEM, "out of memory") : 0;
}

/* A table reached twice from one L1 table would be counted twice. */
static int check_l2_once(const struct qcow2 *s, const struct walk *w,
			 const uint64_t *l1, uint32_t n, struct vs_error **errp)
{
	autofree uint64_t *o = malloc((size_t)VS_MAX(n, 1u) * 8);
	uint32_t k = 0;

	if (!o)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++)
		if (l1[i] & QCOW2_OFFSET_MASK)
			o[k++] = l1[i] & QCOW2_OFFSET_MASK;
	if (k)
		qsort(o, k, 8, cmp_u64);
	for (uint32_t i = 1; i < k; i++)
		if (o[i] == o[i - 1])
			return vs_error_set(
				errp, EIO,
				"%s: corrupt image: %s (L1 table "
				"at 0x%" PRIx64 ") points at the L2 table at "
				"0x%" PRIx64 " twice",
				s->filename, w->what, w->l1_off, o[i]);
	return 0;
}

/* Add every cluster the L1 table `l1` reaches (its L2 tables and their
 * data) to `r`. */
static int walk_tree(struct qcow2 *s, const struct walk *w, const uint64_t *l1,
		     uint32_t n, struct refs *r, struct vs_error **errp)
{
	autofree uint8_t *tab = malloc(s->cluster_size);
	int ret = check_l2_once(s, w, l1, n, errp);

	if (!tab)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK;

		if (!l2off)
			continue;
		if (!VS_IS_ALIGNED(l2off, (uint64_t)s->cluster_size) ||
		    l2off >= s->file_size ||
		    s->cluster_size > s->file_size - l2off)
			return bad_entry(s, w, "L1 table", w->l1_off, i, l1[i],
					 errp);
		if (refs_add(r, l2off >> s->cluster_bits) < 0)
			return vs_error_set(errp, ENOMEM, "out of memory");
		ret = vbd_pread(s->file, l2off, tab, s->cluster_size);
		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot read the L2 "
						  "table at offset 0x%" PRIx64,
						  s->filename, l2off);
		ret = walk_l2(s, w, l2off, tab, r, errp);
	}
	return ret;
}

static uint64_t rc_max(const struct qcow2 *s)
{
	return s->rc_order == 6 ? UINT64_MAX
				: (1ull << (1u << s->rc_order)) - 1;
}

/*
 * Can every cluster of sorted `r` take `delta` once per occurrence?
 * Checked before anything is written, so that a refusal changes
 * nothing.
 */
static int refs_check(struct qcow2 *s, const struct refs *r, int delta,
		      struct vs_error **errp)
{
	for (size_t i = 0, j; i < r->n; i = j) {
		uint64_t host = r->c[i] << s->cluster_bits, rc, k;
		int ret;

		for (j = i + 1; j < r->n && r->c[j] == r->c[i]; j++)
			;
		k = j - i;
		ret = qcow2_refcount_get(s, host, &rc);
		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot read the "
						  "refcount of the cluster at "
						  "0x%" PRIx64,
						  s->filename, host);
		if (delta > 0 && rc > rc_max(s) - k)
			return vs_error_set(
				errp, ERANGE,
				"%s: the cluster at 0x%" PRIx64
				" has refcount %" PRIu64 ", and %" PRIu64
				" more reference%s would "
				"overflow refcount_bits=%u (the image is "
				"unchanged)",
				s->filename, host, rc, k, k > 1 ? "s" : "",
				1u << s->rc_order);
		if (delta < 0 && rc < k)
			return vs_error_set(
				errp, EIO,
				"%s: corrupt image: the cluster at "
				"0x%" PRIx64 " has refcount %" PRIu64
				" but %" PRIu64 " references to drop; run "
				"'qemu-img check -r all'",
				s->filename, host, rc, k);
	}
	return 0;
}

/*
 * Apply `delta` once per occurrence, in runs of consecutive clusters.
 * Decrements go through qcow2_free_later, so that freed clusters are
 * handled as the write path frees them (writes in place still on their
 * way, the compressed writer's open cluster); every caller drops
 * references only once no stable table points at them, so the frees
 * are applied at once.  Refcounts are written back every few blocks so
 * that a long run does not fill the refcount cache.
 */
static int refs_apply(struct qcow2 *s, const struct refs *r, int delta)
{
	uint64_t block = UINT64_MAX, blocks = 0;
	int ret = 0;

	for (size_t i = 0, j; i < r->n && ret == 0; i = j) {
		uint64_t host = r->c[i] << s->cluster_bits, len;

		for (j = i + 1; j < r->n && r->c[j] == r->c[j - 1] + 1; j++)
			;
		len = (uint64_t)(j - i) << s->cluster_bits;
		if (r->c[i] / s->rb_entries != block) {
			block = r->c[i] / s->rb_entries;
			if (++blocks % 8 == 0)
				ret = qcow2_meta_flush(s);
		}
		if (ret == 0)
			ret = delta > 0 ? qcow2_refcount_update(s, host, len, 1)
					: qcow2_free_later(s, host, len);
	}
	return ret == 0 ? qcow2_meta_flush(s) : ret;
}

/* Split sorted `a` and `b`: what `a` holds more often goes to `pos`,
 * what `b` holds more often to `neg`. */
static int refs_diff(const struct refs *a, const struct refs *b,
		     struct refs *pos, struct refs *neg)
{
	size_t i = 0, j = 0;
	int ret = 0;

	while (ret == 0 && (i < a->n || j < b->n)) {
		if (j == b->n || (i < a->n && a->c[i] < b->c[j]))
			ret = refs_add(pos, a->c[i++]);
		else if (i == a->n || b->c[j] < a->c[i])
			ret = refs_add(neg, b->c[j++]);
		else
			i++, j++;
	}
	return ret;
}

static void refs_free(struct refs *r)
{
	free(r->c);
	r->c = NULL;
	r->n = r->cap = 0;
}

/* COPIED. */

/* Set COPIED on `e` iff `want`; true when that changed it. */
static bool set_copied(uint64_t *e, bool want)
{
	uint64_t v = want ? *e | QCOW2_L2E_COPIED : *e & ~QCOW2_L2E_COPIED;
	bool changed = v != *e;

	*e = v;
	return changed;
}

/* The flags of one L2 table the active L1 reaches; written back when
 * one changes.  `owned`: the table's own refcount is 1. */
static int fix_l2(struct qcow2 *s, uint64_t l2off, bool owned, uint8_t *tab)
{
	uint32_t esize = l2_entry_size(s), n = s->cluster_size / esize;
	bool dirty = false;
	int ret = vbd_pread(s->file, l2off, tab, s->cluster_size);

	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = get64(tab + (size_t)i * esize);
		uint64_t host = e & QCOW2_OFFSET_MASK, rc = 0;
		bool comp = e & QCOW2_L2E_COMPRESSED;

		/* Compressed and unallocated entries never carry it. */
		if (!comp && host && owned)
			ret = qcow2_refcount_get(s, host, &rc);
		if (set_copied(&e, !comp && host && owned && rc == 1)) {
			put64(tab + (size_t)i * esize, e);
			dirty = true;
		}
	}
	if (ret == 0 && dirty) {
		ret = qcow2_file_pwrite(s, l2off, tab, s->cluster_size);
		qcow2_l2_drop(s, l2off);
	}
	return ret;
}

/*
 * Make COPIED in the active tree say "refcount is 1", in `l1` (host byte
 * order; *changed says whether the caller must write it) and in the L2
 * tables.  Only flags change: the guest reads the same data whenever a
 * crash comes.  The tree was walked before, so its offsets are sane.
 */
static int fix_copied(struct qcow2 *s, uint64_t *l1, uint32_t n, bool *changed)
{
	autofree uint8_t *tab = malloc(s->cluster_size);
	int ret = 0;

	*changed = false;
	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK, rc;

		if (!l2off) {
			*changed |= set_copied(&l1[i], false);
			continue;
		}
		/* Delete has not walked the active tree: check before
		 * rewriting a table. */
		if (!VS_IS_ALIGNED(l2off, (uint64_t)s->cluster_size) ||
		    l2off >= s->file_size ||
		    s->cluster_size > s->file_size - l2off)
			return -EIO;
		ret = qcow2_refcount_get(s, l2off, &rc);
		if (ret == 0) {
			*changed |= set_copied(&l1[i], rc == 1);
			ret = fix_l2(s, l2off, rc == 1, tab);
		}
	}
	return ret;
}

/* Fix the flags of the active tree in the file. */
static int fix_active(struct qcow2 *s, struct vs_error **errp)
{
	autofree uint64_t *l1 = NULL;
	bool changed;
	int ret = l1_read(s, s->m.h.l1_table_offset, s->l1_size, 0, &l1, errp);

	if (ret < 0)
		return ret;
	ret = fix_copied(s, l1, s->l1_size, &changed);
	if (ret == 0 && changed)
		ret = l1_write(s, s->m.h.l1_table_offset, l1, s->l1_size, NULL);
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	return ret < 0 ? vs_error_set_errno(errp, ret,
					    "%s: cannot update the COPIED "
					    "flags of the active tables",
					    s->filename)
		       : 0;
}

/* An operation. */

struct snap_op {
	struct vbd *vbd;
	struct qcow2 *s;
	struct qcow2_snap *v; /* the table as found */
	uint32_t n;
	uint64_t old_len; /* its bytes on disk */
};

static int op_prepare(struct snap_op *op, struct vs_error **errp)
{
	struct qcow2 *s = op->s;
	int ret = 0;

	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED) ||
	    (s->m.h.incompatible & QCOW2_INCOMPAT_CORRUPT))
		return vs_error_set(errp, EIO,
				    "%s: the image is corrupt; run 'qemu-img "
				    "check -r all' before changing its "
				    "snapshots",
				    s->filename);
	ret = qcow2_meta_flush(s);
	if (ret < 0)
		return vs_error_set_errno(errp, ret, "%s: cannot flush",
					  s->filename);
	ret = qcow2_snaps_read(s, s->filename, &op->v, &op->n, errp);
	if (ret < 0)
		return ret;
	op->old_len = table_len(op->v, op->n);
	/* The table is rewritten whole: old entries get their extra data
	 * completed once, here. */
	for (uint32_t i = 0; i < op->n && ret == 0; i++)
		ret = extend_extra(&op->v[i]);
	return ret < 0 ? vs_error_set(errp, ENOMEM, "out of memory") : 0;
}

static int op_begin(struct snap_op *op, struct vbd *vbd, struct vs_error **errp)
{
	struct qcow2 *s = qcow2_of(vbd);
	int ret;

	*op = (struct snap_op){.vbd = vbd, .s = s};
	if (!s->writable)
		return vs_error_set(errp, EROFS,
				    "%s: opened read-only, cannot change its "
				    "snapshots",
				    vbd->filename);
	pthread_mutex_lock(&s->w_lock);
	ret = op_prepare(op, errp);
	if (ret < 0) {
		qcow2_snaps_free(op->v, op->n);
		pthread_mutex_unlock(&s->w_lock);
	}
	return ret;
}

/* Make everything stable and read it back, whether the operation
 * succeeded (`ret`) or stopped half-way. */
static int op_end(struct snap_op *op, int ret, struct vs_error **errp)
{
	struct qcow2 *s = op->s;
	int r2 = qcow2_meta_flush(s);

	if (ret < 0)
		vs_error_set_errno(errp, ret, "%s: cannot update the snapshots",
				   op->vbd->filename);
	else if (r2 < 0)
		ret = vs_error_set_errno(errp, r2, "%s: cannot flush",
					 op->vbd->filename);
	r2 = qcow2_meta_reload(op->vbd, s, errp);
	if (ret == 0 && r2 < 0)
		ret = r2;
	if (r2 == 0)
		op->vbd->size = s->m.h.size;
	pthread_mutex_unlock(&s->w_lock);
	qcow2_snaps_free(op->v, op->n);
	return ret;
}

/* The entry `key` names: an id first, then a name, as qemu-img. */
static int snap_find(const struct snap_op *op, const char *key,
		     const char *verb, struct vs_error **errp)
{
	for (uint32_t i = 0; i < op->n; i++)
		if (!strcmp(op->v[i].id, key))
			return (int)i;
	for (uint32_t i = 0; i < op->n; i++)
		if (!strcmp(op->v[i].name, key))
			return (int)i;
	return vs_error_set(errp, ENOENT,
			    "%s: cannot %s snapshot '%s': no snapshot has "
			    "that id or name",
			    op->vbd->filename, verb, key);
}

/*
 * Replace the table with `v` (n entries): the new table written and
 * stable with its refcounts, then the header's nb_snapshots and
 * snapshots_offset in one write, then the old table's clusters freed.
 */
static int table_replace(struct snap_op *op, const struct qcow2_snap *v,
			 uint32_t n, struct vs_error **errp)
{
	struct qcow2 *s = op->s;
	uint64_t old_off = s->m.h.snapshots_offset, off = 0;
	uint64_t len = table_len(v, n);
	autofree uint8_t *buf = NULL;
	uint8_t hdr[12];
	int ret;

	if (len > SNAP_MAX_TABLE)
		return vs_error_set(errp, EFBIG,
				    "%s: the snapshot table would be larger "
				    "than 64 MiB",
				    s->filename);
	buf = calloc(1, (size_t)VS_MAX(len, 1ull));
	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint64_t i = 0, pos = 0; i < n; pos += entry_len(&v[i]), i++)
		put_entry(buf + pos, &v[i]);
	ret = write_new(s, buf, len, &off);
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	put32(hdr, n);
	put64(hdr + 4, off);
	if (ret == 0)
		ret = qcow2_file_pwrite(s, 60, hdr, sizeof(hdr));
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	if (ret == 0 && op->n && op->old_len)
		ret = qcow2_free_later(s, old_off, op->old_len);
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	return ret < 0 ? vs_error_set_errno(errp, ret,
					    "%s: cannot write the snapshot "
					    "table",
					    s->filename)
		       : 0;
}

/* Create. */

static char *next_id(const struct snap_op *op)
{
	unsigned long max = 0;
	char *id;

	for (uint32_t i = 0; i < op->n; i++)
		max = VS_MAX(max, strtoul(op->v[i].id, NULL, 10));
	if (asprintf(&id, "%lu", max + 1) < 0)
		return NULL;
	return id;
}

static int check_new_name(const struct snap_op *op, const char *name,
			  struct vs_error **errp)
{
	const char *fn = op->vbd->filename;

	if (!*name)
		return vs_error_set(errp, EINVAL,
				    "%s: a snapshot needs a non-empty name",
				    fn);
	if (strlen(name) > UINT16_MAX)
		return vs_error_set(errp, EINVAL,
				    "%s: snapshot name of %zu bytes is longer "
				    "than %u",
				    fn, strlen(name), UINT16_MAX);
	for (uint32_t i = 0; i < op->n; i++)
		if (!strcmp(op->v[i].name, name))
			return vs_error_set(errp, EEXIST,
					    "%s: a snapshot named '%s' exists "
					    "already (id %s)",
					    fn, name, op->v[i].id);
	if (op->n >= SNAP_MAX_COUNT)
		return vs_error_set(errp, EFBIG,
				    "%s: the image has %d snapshots already, "
				    "the most it can hold",
				    fn, SNAP_MAX_COUNT);
	return 0;
}

/* The new entry; l1_offset is filled in once the copy is written. */
static int new_entry(const struct snap_op *op, const char *name,
		     struct qcow2_snap *sn)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	*sn = (struct qcow2_snap){
		.l1_size = op->s->l1_size,
		.date_sec = (uint32_t)now.tv_sec,
		.date_nsec = (uint32_t)now.tv_nsec,
		.disk_size = op->s->m.h.size,
		/* 0, as qemu-img writes it: no VM ran. */
		.icount = 0,
	};
	sn->id = next_id(op);
	sn->name = strdup(name);
	return sn->id && sn->name && extend_extra(sn) == 0 ? 0 : -ENOMEM;
}

static void snap_clear(struct qcow2_snap *sn)
{
	free(sn->id);
	free(sn->name);
	free(sn->extra);
}

/*
 * The L1 copy and everything it reaches gain a reference (stable), the
 * active tables lose COPIED (stable), then the new table and the header
 * switch to it.  A crash before the header write leaks the copy and the
 * references.
 */
static int create_locked(struct snap_op *op, const char *name,
			 struct vs_error **errp)
{
	struct qcow2 *s = op->s;
	struct walk w = {"the active L1 table", s->m.h.l1_table_offset};
	autofree uint64_t *l1 = NULL, *copy = NULL;
	autofree struct qcow2_snap *v = NULL;
	struct qcow2_snap sn = {0};
	struct refs r = {0};
	int ret = check_new_name(op, name, errp);

	if (ret == 0)
		ret = l1_read(s, w.l1_off, s->l1_size, 0, &l1, errp);
	if (ret == 0)
		ret = walk_tree(s, &w, l1, s->l1_size, &r, errp);
	refs_sort(&r);
	if (ret == 0)
		ret = refs_check(s, &r, +1, errp);
	if (ret == 0 && new_entry(op, name, &sn) < 0)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	copy = ret == 0 ? malloc((size_t)VS_MAX(s->l1_size, 1u) * 8) : NULL;
	v = ret == 0 ? calloc(op->n + 1, sizeof(*v)) : NULL;
	if (ret == 0 && (!copy || !v))
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	if (ret < 0)
		goto out;
	/* COPIED means nothing in a snapshot's tables. */
	for (uint32_t i = 0; i < s->l1_size; i++)
		copy[i] = l1[i] & ~QCOW2_L2E_COPIED;
	ret = l1_write(s, 0, copy, s->l1_size, &sn.l1_offset);
	if (ret == 0)
		ret = refs_apply(s, &r, +1); /* stable when it returns */
	if (ret < 0) {
		vs_error_set_errno(errp, ret,
				   "%s: cannot copy the L1 table for snapshot "
				   "'%s'",
				   s->filename, name);
		goto out;
	}
	ret = fix_active(s, errp);
	if (ret == 0) {
		if (op->n) /* op->v is NULL when there are none */
			memcpy(v, op->v, op->n * sizeof(*v));
		v[op->n] = sn;
		ret = table_replace(op, v, op->n + 1, errp);
	}
out:
	snap_clear(&sn);
	refs_free(&r);
	return ret;
}

int qcow2_snapshot_create(struct vbd *vbd, const char *name,
			  struct vs_error **errp)
{
	struct snap_op op;
	int ret = op_begin(&op, vbd, errp);

	if (ret < 0)
		return ret;
	return op_end(&op, create_locked(&op, name, errp), errp);
}

/* Delete. */

/*
 * The new table without the entry goes first (header switched); then the
 * snapshot's L1 table and tree lose a reference, and COPIED is set in
 * the active tables where a refcount fell to 1.
 */
static int delete_locked(struct snap_op *op, const char *key,
			 struct vs_error **errp)
{
	struct qcow2 *s = op->s;
	int idx = snap_find(op, key, "delete", errp);
	autofree uint64_t *l1 = NULL;
	autofree struct qcow2_snap *v = NULL;
	autofree char *what = NULL;
	struct qcow2_snap *sn;
	struct refs r = {0};
	struct walk w;
	int ret;

	if (idx < 0)
		return idx;
	sn = &op->v[idx];
	if (asprintf(&what, "snapshot '%s' (id %s)", sn->name, sn->id) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	w = (struct walk){what, sn->l1_offset};
	ret = l1_read(s, sn->l1_offset, sn->l1_size, 0, &l1, errp);
	if (ret == 0)
		ret = walk_tree(s, &w, l1, sn->l1_size, &r, errp);
	if (ret == 0 &&
	    refs_add_range(s, &r, sn->l1_offset, (uint64_t)sn->l1_size * 8) < 0)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	refs_sort(&r);
	if (ret == 0)
		ret = refs_check(s, &r, -1, errp);
	v = ret == 0 ? calloc(op->n, sizeof(*v)) : NULL;
	if (ret == 0 && !v)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	if (ret == 0) {
		memcpy(v, op->v, (size_t)idx * sizeof(*v));
		memcpy(v + idx, op->v + idx + 1,
		       (op->n - (uint32_t)idx - 1) * sizeof(*v));
		ret = table_replace(op, v, op->n - 1, errp);
	}
	if (ret == 0) {
		ret = refs_apply(s, &r, -1);
		if (ret < 0)
			vs_error_set_errno(errp, ret,
					   "%s: cannot free the clusters of "
					   "%s",
					   s->filename, what);
	}
	if (ret == 0)
		ret = fix_active(s, errp);
	refs_free(&r);
	return ret;
}

int qcow2_snapshot_delete(struct vbd *vbd, const char *name_or_id,
			  struct vs_error **errp)
{
	struct snap_op op;
	int ret = op_begin(&op, vbd, errp);

	if (ret < 0)
		return ret;
	return op_end(&op, delete_locked(&op, name_or_id, errp), errp);
}

/* Apply. */

/* The L1 entries a disk of `size` bytes needs. */
static uint64_t l1_need(const struct qcow2 *s, uint64_t size)
{
	uint64_t per_l1 = 1ull << (s->cluster_bits + s->cluster_bits -
				   (l2_entry_size(s) == 16 ? 4 : 3));

	return size / per_l1 + (size % per_l1 != 0);
}

/* The references the new active tree gains and the old one loses,
 * netted so that shared clusters are not touched (nor overflow). */
static int apply_refs(struct qcow2 *s, const struct walk *w,
		      const uint64_t *nl1, uint32_t nsize, struct refs *pos,
		      struct refs *neg, struct vs_error **errp)
{
	struct walk aw = {"the active L1 table", s->m.h.l1_table_offset};
	autofree uint64_t *old = NULL;
	struct refs a = {0}, b = {0};
	int ret = walk_tree(s, w, nl1, nsize, &a, errp);

	if (ret == 0)
		ret = l1_read(s, aw.l1_off, s->l1_size, 0, &old, errp);
	if (ret == 0)
		ret = walk_tree(s, &aw, old, s->l1_size, &b, errp);
	if (ret == 0 &&
	    refs_add_range(s, &b, aw.l1_off, (uint64_t)s->l1_size * 8) < 0)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	refs_sort(&a);
	refs_sort(&b);
	if (ret == 0 && refs_diff(&a, &b, pos, neg) < 0)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	refs_free(&a);
	refs_free(&b);
	if (ret == 0)
		ret = refs_check(s, pos, +1, errp);
	if (ret == 0)
		ret = refs_check(s, neg, -1, errp);
	return ret;
}

/* The header's size, l1_size and l1_table_offset: one 24-byte write
 * (crypt_method, between them, stays 0). */
static int header_set_l1(struct qcow2 *s, uint64_t size, uint32_t l1_size,
			 uint64_t l1_off)
{
	uint8_t b[24];

	put64(b, size);
	put32(b + 8, s->m.h.crypt_method);
	put32(b + 12, l1_size);
	put64(b + 16, l1_off);
	return qcow2_file_pwrite(s, 24, b, sizeof(b));
}

static int check_apply_size(const struct snap_op *op,
			    const struct qcow2_snap *sn, uint32_t *nsize,
			    struct vs_error **errp)
{
	uint64_t need = l1_need(op->s, sn->disk_size);

	if (sn->disk_size > INT64_MAX ||
	    VS_MAX(need, (uint64_t)sn->l1_size) * 8 > QCOW2_MAX_L1_BYTES)
		return vs_error_set(
			errp, EINVAL,
			"%s: snapshot '%s' (id %s) has disk_size "
			"%" PRIu64 ", which this image cannot take (L1 "
			"table larger than 32 MiB)",
			op->vbd->filename, sn->name, sn->id, sn->disk_size);
	*nsize = (uint32_t)VS_MAX(need, (uint64_t)sn->l1_size);
	return 0;
}

/*
 * The new active L1 (a copy of the snapshot's, in new clusters) and the
 * references it gains are stable first; then the header switches to it
 * (with the snapshot's disk size) in one write; then the old active tree
 * loses its references.  COPIED stays clear throughout the new tree:
 * the snapshot still reaches all of it.
 */
static int apply_locked(struct snap_op *op, const char *key,
			struct vs_error **errp)
{
	struct qcow2 *s = op->s;
	int idx = snap_find(op, key, "apply", errp);
	autofree uint64_t *nl1 = NULL;
	autofree char *what = NULL;
	struct refs pos = {0}, neg = {0};
	struct qcow2_snap *sn;
	uint64_t l1_off;
	uint32_t nsize = 0;
	bool changed;
	int ret;

	if (idx < 0)
		return idx;
	sn = &op->v[idx];
	ret = check_apply_size(op, sn, &nsize, errp);
	if (ret < 0)
		return ret;
	if (asprintf(&what, "snapshot '%s' (id %s)", sn->name, sn->id) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = l1_read(s, sn->l1_offset, sn->l1_size, nsize, &nl1, errp);
	for (uint32_t i = 0; ret == 0 && i < nsize; i++)
		nl1[i] &= ~QCOW2_L2E_COPIED;
	if (ret == 0)
		ret = apply_refs(s, &(struct walk){what, sn->l1_offset}, nl1,
				 nsize, &pos, &neg, errp);
	if (ret < 0)
		goto out;
	ret = refs_apply(s, &pos, +1);
	/* Stale flags in the snapshot's tables must not reach the active
	 * tree (writes in place would change the snapshot). */
	if (ret == 0)
		ret = fix_copied(s, nl1, nsize, &changed);
	if (ret == 0)
		ret = l1_write(s, 0, nl1, nsize, &l1_off);
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	if (ret == 0)
		ret = header_set_l1(s, sn->disk_size, nsize, l1_off);
	if (ret == 0)
		ret = qcow2_meta_flush(s);
	if (ret == 0)
		ret = refs_apply(s, &neg, -1);
	if (ret < 0)
		vs_error_set_errno(errp, ret, "%s: cannot apply %s",
				   s->filename, what);
out:
	refs_free(&pos);
	refs_free(&neg);
	return ret;
}

int qcow2_snapshot_apply(struct vbd *vbd, const char *name_or_id,
			 struct vs_error **errp)
{
	struct snap_op op;
	int ret = op_begin(&op, vbd, errp);

	if (ret < 0)
		return ret;
	return op_end(&op, apply_locked(&op, name_or_id, errp), errp);
}

/* List. */

static int fill_list(const struct qcow2_snap *v, uint32_t n,
		     struct vbd_snapshot *out)
{
	for (uint32_t i = 0; i < n; i++) {
		out[i] = (struct vbd_snapshot){
			.id = strdup(v[i].id),
			.name = strdup(v[i].name),
			.vm_state_size = v[i].vm_state_size,
			.date_sec = v[i].date_sec,
			.date_nsec = v[i].date_nsec,
			.vm_clock_nsec = v[i].vm_clock_nsec,
			.disk_size = v[i].disk_size,
			.icount_valid = v[i].icount != UINT64_MAX,
			.icount = v[i].icount,
		};
		if (!out[i].id || !out[i].name)
			return -ENOMEM;
	}
	return 0;
}

int qcow2_snapshot_list(struct vbd *vbd, struct vbd_snapshot **list, int *count,
			struct vs_error **errp)
{
	struct qcow2 *s = qcow2_of(vbd);
	struct qcow2_snap *v = NULL;
	struct vbd_snapshot *out;
	uint32_t n = 0;
	int ret;

	*list = NULL;
	*count = 0;
	if (s->writable)
		pthread_mutex_lock(&s->w_lock);
	ret = qcow2_snaps_read(s, vbd->filename, &v, &n, errp);
	if (s->writable)
		pthread_mutex_unlock(&s->w_lock);
	if (ret < 0)
		return ret;
	out = calloc(VS_MAX(n, 1u), sizeof(*out));
	if (out && fill_list(v, n, out) < 0) {
		vbd_snapshot_list_free(out, (int)n);
		out = NULL;
	}
	qcow2_snaps_free(v, n);
	if (!out)
		return vs_error_set(errp, ENOMEM, "out of memory");
	*list = out;
	*count = (int)n;
	return 0;
}
