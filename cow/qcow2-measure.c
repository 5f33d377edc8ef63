/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img measure's arithmetic for qcow2.  The numbers must be the ones
 * qemu-img prints, so the rounding follows QEMU's: the disk is rounded
 * up to whole clusters, L2 tables to whole tables, the L1 table to whole
 * clusters, and refcount structures are sized by iterating until they
 * cover every cluster including their own.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/cleanup.h"
#include "../common/opts.h"
#include "../common/size.h"
#include "../vbd/driver.h"
#include "qcow2-measure.h"
#include "qcow2.h"

extern const struct vbd_driver vbd_driver_qcow2;

/* QEMU's limit on the L1 table (its QCOW_MAX_L1_SIZE). */
#define MEASURE_MAX_L1_BYTES (32u << 20)

/* The bitmaps header extension and its directory (docs/interop/qcow2). */
#define EXT_BITMAPS	     0x23852875u
#define AUTOCLEAR_BITMAPS    1u
#define BITMAP_DIR_ENTRY_LEN 24u
#define BITMAP_MAX_COUNT     65535u
#define BITMAP_MAX_DIR_BYTES (1024u * BITMAP_MAX_COUNT)
#define BITMAP_MAX_NAME	     1023u
#define BITMAP_TABLE_ENTRY   8u

static const char what[] = "qcow2 format option";

/* Options that qemu-img knows for qcow2 and we cannot create. */
static const char *const unsupported[] = {
	"data_file",	       "data_file_raw",	     "encryption",
	"encrypt.format",      "encrypt.key-secret", "encrypt.cipher-alg",
	"encrypt.cipher-mode", "encrypt.ivgen-alg",  "encrypt.ivgen-hash-alg",
	"encrypt.hash-alg",    "encrypt.iter-time",
};

/* Options that are valid but do not change the size (qemu-img checks
 * the boolean ones are booleans, and nothing else about them). */
static const char *const ignored[] = {
	"compression_type",
	"backing_fmt",
	"size",
	"extent_size_hint",
};
static const char *const ignored_bools[] = {"lazy_refcounts", "nocow"};

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t round_up(uint64_t a, uint64_t b)
{
	return div_up(a, b) * b;
}

static int parse_compat(struct vs_opts *opts, struct qcow2_measure_opts *o,
			struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "compat");

	/* qemu-img measure takes the numbers only ("v3" is refused). */
	o->version = 3;
	if (!v || !strcmp(v, "1.1"))
		return 0;
	if (!strcmp(v, "0.10")) {
		o->version = 2;
		return 0;
	}
	return vs_error_set(errp, EINVAL, "Invalid compatibility level: '%s'",
			    v);
}

static int parse_cluster_size(struct vs_opts *opts,
			      struct qcow2_measure_opts *o,
			      struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "cluster_size");
	struct vs_error *err = NULL;
	uint64_t cs;

	o->cluster_size = 1u << 16;
	if (!v)
		return 0;
	if (vs_parse_size(v, &cs, "cluster_size", &err) < 0) {
		vs_error_free(err);
		cs = 0;
	}
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return vs_error_set(errp, EINVAL,
				    "Cluster size must be a power of two "
				    "between 512 and 2048k");
	o->cluster_size = (uint32_t)cs;
	if (o->extended_l2 && cs < (16u << 10))
		return vs_error_set(errp, EINVAL,
				    "Extended L2 entries are only supported "
				    "with cluster sizes of at least 16384 "
				    "bytes");
	return 0;
}

static int parse_refcount_bits(struct vs_opts *opts,
			       struct qcow2_measure_opts *o,
			       struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "refcount_bits");
	uint64_t bits = 16;
	char *end;

	if (v) {
		errno = 0;
		bits = strtoull(v, &end, 10);
		if (errno || end == v || *end || !bits || bits > 64 ||
		    (bits & (bits - 1)))
			return vs_error_set(errp, EINVAL,
					    "Refcount width must be a power of "
					    "two and may not exceed 64 bits");
	}
	if (o->version < 3 && bits != 16)
		return vs_error_set(errp, EINVAL,
				    "Different refcount widths than 16 bits "
				    "require compatibility level 1.1 or above "
				    "(use compat=1.1 or greater)");
	o->refcount_order = (unsigned)__builtin_ctzll(bits);
	return 0;
}

static int parse_prealloc(struct vs_opts *opts, struct qcow2_measure_opts *o,
			  struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "preallocation");

	if (!v || !strcmp(v, "off") || !strcmp(v, "metadata"))
		return 0;
	if (!strcmp(v, "full") || !strcmp(v, "falloc")) {
		o->prealloc_full = true;
		return 0;
	}
	return vs_error_set(errp, EINVAL,
			    "invalid parameter value: %s (preallocation: "
			    "expected off, metadata, falloc or full)",
			    v);
}

static int parse_all(struct vs_opts *opts, struct qcow2_measure_opts *o,
		     struct vs_error **errp)
{
	int ret;

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(*unsupported); i++)
		if (vs_opts_get(opts, unsupported[i]))
			return vs_error_set(errp, ENOTSUP,
					    "%s '%s' is not supported", what,
					    unsupported[i]);
	for (size_t i = 0; i < sizeof(ignored) / sizeof(*ignored); i++)
		(void)vs_opts_get(opts, ignored[i]);
	for (size_t i = 0; i < sizeof(ignored_bools) / sizeof(*ignored_bools);
	     i++) {
		bool b;

		ret = vs_opts_get_bool(opts, ignored_bools[i], &b, errp);
		if (ret < 0)
			return ret;
	}
	o->has_backing = vs_opts_get(opts, "backing_file") != NULL;
	ret = vs_opts_get_bool(opts, "extended_l2", &o->extended_l2, errp);
	if (ret == 0)
		ret = parse_cluster_size(opts, o, errp);
	if (ret == 0)
		ret = parse_compat(opts, o, errp);
	if (ret == 0)
		ret = parse_refcount_bits(opts, o, errp);
	if (ret == 0)
		ret = parse_prealloc(opts, o, errp);
	if (ret == 0)
		ret = vs_opts_check_used(opts, errp);
	return ret;
}

int qcow2_measure_parse(const char *options, struct qcow2_measure_opts *o,
			struct vs_error **errp)
{
	struct vs_opts *opts;
	int ret;

	memset(o, 0, sizeof(*o));
	ret = vs_opts_parse(options, what, &opts, errp);
	if (ret < 0)
		return ret;
	ret = parse_all(opts, o, errp);
	vs_opts_free(opts);
	return ret;
}

/*
 * Refcount blocks and table clusters for `clusters` other clusters: the
 * smallest counts that also cover themselves.  Each step can only grow
 * the counts, and they are bounded, so the loop ends.
 */
static uint64_t refcount_bytes(uint64_t clusters, uint32_t cs, unsigned order)
{
	uint64_t per_block = (uint64_t)cs * 8 >> order;
	uint64_t per_table = cs / 8;
	uint64_t blocks = 0, table = 0, prev;

	do {
		prev = blocks + table;
		blocks = div_up(clusters + blocks + table, per_block);
		table = div_up(blocks, per_table);
	} while (blocks + table != prev);
	return (blocks + table) * cs;
}

int qcow2_measure_full(const struct qcow2_measure_opts *o,
		       uint64_t virtual_size, uint64_t *out,
		       struct vs_error **errp)
{
	uint64_t cs = o->cluster_size, l2e = o->extended_l2 ? 16 : 8;
	uint64_t size, l2_entries, l1_entries, meta;

	/* Larger than any qcow2 can be: keeps the sums below in range. */
	if (virtual_size > (UINT64_C(1) << 62))
		return vs_error_set(errp, EFBIG,
				    "The image size is too large (try using "
				    "a larger cluster size)");
	size = round_up(virtual_size, cs);
	l2_entries = round_up(size / cs, cs / l2e);
	l1_entries = round_up(l2_entries * l2e / cs, cs / 8);
	meta = cs + l2_entries * l2e + l1_entries * 8;
	meta += refcount_bytes((meta + size) / cs, o->cluster_size,
			       o->refcount_order);
	*out = meta + size;
	return 0;
}

int qcow2_measure_check_size(const struct qcow2_measure_opts *o, uint64_t size,
			     struct vs_error **errp)
{
	uint64_t cs = o->cluster_size, l2e = o->extended_l2 ? 16 : 8;
	uint64_t tables;

	if (size > (UINT64_C(1) << 62))
		goto too_large;
	tables = div_up(round_up(size, cs) / cs, cs / l2e);
	if (tables * 8 <= MEASURE_MAX_L1_BYTES)
		return 0;
too_large:
	return vs_error_set(errp, EFBIG,
			    "The image size is too large (try using a larger "
			    "cluster size)");
}

/* The bitmaps extension of a qcow2 image, when its bitmaps are valid. */
struct bitmap_ext {
	uint32_t count;
	uint64_t dir_size, dir_offset;
};

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

/*
 * Find the bitmaps extension in the header cluster.  The header parser
 * checked the extension chain's bounds already; they are checked again
 * here since this reads the cluster anew.  Returns 1 and *ext, 0 when
 * there is none, or -errno.
 */
static int find_bitmap_ext(struct qcow2 *s, const char *fn,
			   struct bitmap_ext *ext, struct vs_error **errp)
{
	uint32_t cs = s->cluster_size;
	autofree uint8_t *buf = malloc(cs);
	uint64_t off = s->m.h.version >= 3 ? s->m.h.header_length : 72;
	int ret;

	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_pread(s->file, 0, buf, cs);
	if (ret < 0)
		return vs_error_set_errno(errp, -ret,
					  "%s: cannot read the header", fn);
	while (off + 8 <= cs) {
		uint32_t type = get32(buf + off), len = get32(buf + off + 4);

		if (type == QCOW2_EXT_END)
			return 0;
		if (len > cs - off - 8)
			return vs_error_set(errp, EINVAL,
					    "%s: header extension 0x%08" PRIx32
					    " at offset 0x%" PRIx64
					    " runs past the header cluster",
					    fn, type, off);
		if (type == EXT_BITMAPS) {
			if (len < 24)
				return vs_error_set(errp, EINVAL,
						    "%s: bitmaps extension at "
						    "offset 0x%" PRIx64
						    " is %" PRIu32
						    " bytes, expected 24",
						    fn, off, len);
			ext->count = get32(buf + off + 8);
			ext->dir_size = get64(buf + off + 16);
			ext->dir_offset = get64(buf + off + 24);
			return 1;
		}
		off += 8 + (((uint64_t)len + 7) & ~UINT64_C(7));
	}
	return 0;
}

static int check_bitmap_ext(struct qcow2 *s, const char *fn,
			    const struct bitmap_ext *e, struct vs_error **errp)
{
	if (e->count == 0 || e->count > BITMAP_MAX_COUNT)
		return vs_error_set(errp, EINVAL,
				    "%s: bitmaps extension: nb_bitmaps %" PRIu32
				    " is not within 1..%u",
				    fn, e->count, BITMAP_MAX_COUNT);
	if (e->dir_size < BITMAP_DIR_ENTRY_LEN ||
	    e->dir_size > BITMAP_MAX_DIR_BYTES)
		return vs_error_set(errp, EINVAL,
				    "%s: bitmaps extension: "
				    "bitmap_directory_size %" PRIu64
				    " is not within %u..%u",
				    fn, e->dir_size, BITMAP_DIR_ENTRY_LEN,
				    BITMAP_MAX_DIR_BYTES);
	if (e->dir_offset % s->cluster_size || e->dir_offset == 0 ||
	    e->dir_offset >= s->file_size ||
	    e->dir_size > s->file_size - e->dir_offset)
		return vs_error_set(errp, EINVAL,
				    "%s: bitmaps extension: "
				    "bitmap_directory_offset 0x%" PRIx64
				    " (%" PRIu64 " bytes) is unaligned or "
				    "past the end of the file",
				    fn, e->dir_offset, e->dir_size);
	return 0;
}

/* One entry of the bitmap directory, checked. */
struct bitmap_entry {
	uint32_t flags;
	unsigned granularity_bits;
	const char *name; /* not NUL-terminated */
	uint32_t name_len;
};

typedef int (*bitmap_fn)(const struct bitmap_entry *b, void *opaque);

/*
 * Call `fn` for each bitmap of the image, in directory order.  An image
 * whose autoclear bit says its bitmaps are stale has none, as QEMU
 * treats it.  Returns 0, fn's negative return, or -errno with *errp.
 */
static int each_bitmap(struct qcow2 *s, const char *fn, bitmap_fn cb,
		       void *opaque, struct vs_error **errp)
{
	struct bitmap_ext e = {0};
	autofree uint8_t *dir = NULL;
	uint64_t pos = 0;
	int ret;

	if (s->m.h.version < 3 || !(s->m.h.autoclear & AUTOCLEAR_BITMAPS))
		return 0;
	ret = find_bitmap_ext(s, fn, &e, errp);
	if (ret <= 0)
		return ret;
	ret = check_bitmap_ext(s, fn, &e, errp);
	if (ret < 0)
		return ret;
	dir = malloc(e.dir_size);
	if (!dir)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_pread(s->file, e.dir_offset, dir, e.dir_size);
	if (ret < 0)
		return vs_error_set_errno(
			errp, -ret,
			"%s: cannot read the bitmap directory at "
			"offset 0x%" PRIx64,
			fn, e.dir_offset);
	for (uint32_t i = 0; i < e.count; i++) {
		const uint8_t *d = dir + pos;
		struct bitmap_entry b;
		uint32_t extra;
		uint64_t len = 0;

		/* table offset (8), table size (4), flags (4), type,
		 * granularity bits, name size (2), extra data size (4),
		 * extra data, name, padding to 8 */
		if (e.dir_size - pos >= BITMAP_DIR_ENTRY_LEN) {
			b.flags = get32(d + 12);
			b.granularity_bits = d[17];
			b.name_len = (uint32_t)d[18] << 8 | d[19];
			extra = get32(d + 20);
			b.name = (const char *)d + BITMAP_DIR_ENTRY_LEN + extra;
			len = ((uint64_t)BITMAP_DIR_ENTRY_LEN + b.name_len +
			       extra + 7) &
			      ~UINT64_C(7);
		}
		if (len == 0 || len > e.dir_size - pos || b.name_len == 0 ||
		    b.name_len > BITMAP_MAX_NAME || b.granularity_bits < 9 ||
		    b.granularity_bits > 31)
			return vs_error_set(
				errp, EINVAL,
				"%s: bitmap directory entry %" PRIu32
				" at offset 0x%" PRIx64
				" is malformed (name, granularity "
				"or length out of range)",
				fn, i, e.dir_offset + pos);
		ret = cb(&b, opaque);
		if (ret < 0)
			return ret;
		pos += len;
	}
	return 0;
}

struct bitmap_sum {
	uint64_t disk, data, dir;
	uint32_t cs;
};

/* What one bitmap takes in the new image: every cluster of it
 * allocated, its table, and a directory entry with the name only. */
static int add_bitmap(const struct bitmap_entry *b, void *opaque)
{
	struct bitmap_sum *sum = opaque;
	uint64_t bits = div_up(sum->disk, UINT64_C(1) << b->granularity_bits);
	uint64_t clusters = div_up(div_up(bits, 8), sum->cs);

	sum->data += clusters * sum->cs +
		     round_up(clusters * BITMAP_TABLE_ENTRY, sum->cs);
	sum->dir += ((uint64_t)BITMAP_DIR_ENTRY_LEN + b->name_len + 7) &
		    ~UINT64_C(7);
	return 0;
}

int qcow2_measure_bitmaps(struct vbd *src, uint32_t cluster_size,
			  bool *supported, uint64_t *out,
			  struct vs_error **errp)
{
	struct bitmap_sum sum = {.disk = src->size, .cs = cluster_size};
	struct qcow2 *s;
	int ret;

	*out = 0;
	*supported = false;
	if (src->drv != &vbd_driver_qcow2)
		return 0;
	s = src->opaque;
	if (s->m.h.version < 3)
		return 0;
	*supported = true;
	ret = each_bitmap(s, src->filename, add_bitmap, &sum, errp);
	if (ret == 0)
		*out = sum.data + round_up(sum.dir, cluster_size);
	return ret;
}

/* qemu-img info's names of the directory flags. */
#define BITMAP_FLAG_IN_USE 1u
#define BITMAP_FLAG_AUTO   2u

static int describe_bitmap(const struct bitmap_entry *b, void *opaque)
{
	struct json_object *o = json_object_new_object(),
			   *flags = json_object_new_array();
	char *name = strndup(b->name, b->name_len);

	if (!o || !flags || !name) {
		json_object_put(o);
		json_object_put(flags);
		free(name);
		return -ENOMEM;
	}
	if (b->flags & BITMAP_FLAG_IN_USE)
		json_object_array_add(flags, json_object_new_string("in-use"));
	if (b->flags & BITMAP_FLAG_AUTO)
		json_object_array_add(flags, json_object_new_string("auto"));
	json_object_object_add(o, "flags", flags);
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(
		o, "granularity",
		json_object_new_int64((int64_t)1 << b->granularity_bits));
	free(name);
	json_object_array_add(opaque, o);
	return 0;
}

int qcow2_bitmaps_info(struct qcow2 *s, const char *filename,
		       struct json_object **out, struct vs_error **errp)
{
	struct json_object *arr = json_object_new_array();
	int ret;

	*out = NULL;
	if (!arr)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = each_bitmap(s, filename, describe_bitmap, arr, errp);
	if (ret == -ENOMEM && errp && !*errp)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
	if (ret < 0 || json_object_array_length(arr) == 0) {
		json_object_put(arr);
		return ret;
	}
	*out = arr;
	return 0;
}

/*
 * Refcount lookups straight from the file, for an image opened
 * read-only (whose refcount table is not loaded).  The last block read
 * is kept: the detection below walks clusters in order.
 */
struct rc_reader {
	struct qcow2 *s;
	uint8_t *block;
	uint64_t idx; /* refcount table index `block` holds */
	bool have;    /* `block` holds refcount block `idx` */
	bool empty;   /* table entry `idx` is 0: every count is 0 */
};

/* Load refcount block `idx` (the table entry checked first). */
static int rc_load(struct rc_reader *r, uint64_t idx)
{
	struct qcow2 *s = r->s;
	const struct qcow2_header *h = &s->m.h;
	uint64_t rt_entries =
		((uint64_t)h->refcount_table_clusters << s->cluster_bits) / 8;
	uint64_t entry, fsize = vbd_size(s->file);
	int ret;

	r->have = false;
	r->idx = idx;
	r->empty = true;
	if (idx >= rt_entries)
		return 0;
	ret = vbd_pread(s->file, h->refcount_table_offset + idx * 8, &entry,
			sizeof(entry));
	if (ret < 0)
		return ret;
	entry = be64toh(entry) & QCOW2_OFFSET_MASK;
	if (entry) {
		if (entry % s->cluster_size || entry >= fsize ||
		    fsize - entry < s->cluster_size)
			return -EIO;
		ret = vbd_pread(s->file, entry, r->block, s->cluster_size);
		if (ret < 0)
			return ret;
		r->empty = false;
	}
	r->have = true;
	return 0;
}

static int rc_read(struct rc_reader *r, uint64_t cluster, uint64_t *rc)
{
	const struct qcow2_header *h = &r->s->m.h;
	uint64_t per_block =
		((uint64_t)r->s->cluster_size * 8) >> h->refcount_order;
	uint64_t idx = cluster / per_block;
	int ret;

	if (!r->have || r->idx != idx) {
		ret = rc_load(r, idx);
		if (ret < 0)
			return ret;
	}
	*rc = r->empty ? 0
		       : qcow2_rc_get(r->block, cluster % per_block,
				      h->refcount_order);
	return 0;
}

int qcow2_detect_metadata_prealloc(struct qcow2 *s)
{
	uint64_t cs = s->cluster_size, file_len = vbd_size(s->file);
	uint64_t real, threshold, end, used = 0;
	struct rc_reader r = {.s = s};
	struct stat st;
	int ret = 0;

	if (stat(vbd_filename(s->file), &st) < 0 || !S_ISREG(st.st_mode))
		return 0; /* a block device: nothing to compare with */
	real = (uint64_t)st.st_blocks * 512 / cs;
	threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
	end = div_up(file_len, cs);
	r.block = malloc(cs);
	if (!r.block)
		return 0;
	for (uint64_t i = 0; i < end && used < threshold; i++) {
		uint64_t rc;

		ret = rc_read(&r, i, &rc);
		if (ret < 0)
			break;
		used += rc != 0;
	}
	free(r.block);
	return ret == 0 && used >= threshold;
}
