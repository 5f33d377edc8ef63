/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating qcow2 images (the driver's `create` callback).
 *
 * An image is written as one contiguous run of clusters:
 *
 *   header | refcount table | refcount blocks | L1 table |
 *   L2 tables | data clusters          (the last two only when preallocated)
 *
 * Every cluster of the run is used exactly once and nothing else is, so
 * each refcount is 1 by construction and the refcount blocks only have
 * to cover the run, themselves and the refcount table included.  All the
 * arithmetic is done, and every option checked, before the file is
 * touched: a refused create leaves the file as it was.
 *
 * The on-disk constants come from qcow2.h, shared with the reader; only
 * what creating alone needs is defined here.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/opts.h"
#include "../common/size.h"
#include "../vbd/driver.h"
#include "qcow2-create.h"
#include "qcow2.h"

/* qemu writes the v3 header up to the compression type, padded: 112,
 * where QCOW2_V3_HEADER_LEN is the shortest a v3 header may be. */
#define QC_V3_HEADER_LEN      112
#define QC_MAX_REFTABLE_BYTES (8ull << 20)
#define QC_MAX_HOST_BYTES     (1ull << 56) /* offsets live in bits 9..55 */
#define QC_EXTL2_MIN_CLUSTER  (16u << 10)
#define QC_FEATURE_ENTRY_LEN  48
#define QC_FEATURE_NAME_LEN   46
#define QC_SMALL_CLUSTER      4096 /* no feature table up to this size */
#define QC_ZERO_CHUNK	      (1u << 20)

enum qc_prealloc {
	QC_PREALLOC_OFF,
	QC_PREALLOC_METADATA,
	QC_PREALLOC_FALLOC,
	QC_PREALLOC_FULL,
};

struct qc_params {
	uint64_t size; /* virtual size, a multiple of 512 */
	unsigned version;
	unsigned cluster_bits;
	unsigned refcount_order;
	bool lazy_refcounts;
	bool extended_l2;
	bool zstd;
	enum qc_prealloc prealloc;
	const char *backing_file;
	const char *backing_fmt;
};

/* Where things go, counted in clusters from the start of the file. */
struct qc_layout {
	uint64_t cs; /* cluster size in bytes */
	uint64_t l1_entries;
	uint64_t l1_clusters;
	uint64_t l2_tables;	/* preallocated */
	uint64_t data_clusters; /* preallocated */
	uint64_t rt_clusters;
	uint64_t rb_clusters;
	uint64_t rt, rb, l1, l2, data; /* first cluster of each */
	uint64_t total;		       /* clusters in the image */
};

/* The feature name table, naming every bit qemu knows (types: 0
 * incompatible, 1 compatible, 2 autoclear). */
static const struct {
	uint8_t type, bit;
	const char *name;
} qc_features[] = {
	{0, 0, "dirty bit"},
	{0, 1, "corrupt bit"},
	{0, 2, "external data file"},
	{0, 3, "compression type"},
	{0, 4, "extended L2 entries"},
	{1, 0, "lazy refcounts"},
	{2, 0, "bitmaps"},
	{2, 1, "raw external data"},
};

/* Options that qemu-img knows and we do not implement. */
static const char *const qc_unsupported[] = {
	"data_file",	       "data_file_raw",	     "encryption",
	"encrypt.format",      "encrypt.key-secret", "encrypt.cipher-alg",
	"encrypt.cipher-mode", "encrypt.ivgen-alg",  "encrypt.ivgen-hash-alg",
	"encrypt.hash-alg",    "encrypt.iter-time",
};

static const char what[] = "qcow2 format option";

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static int bad_value(struct vs_error **errp, const char *key, const char *val,
		     const char *expected)
{
	return vs_error_set(errp, EINVAL, "%s %s='%s': %s", what, key, val,
			    expected);
}

/* Options. */

static int parse_compat(struct vs_opts *opts, struct qc_params *p,
			struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "compat");

	p->version = 3;
	if (!v || !strcmp(v, "1.1") || !strcmp(v, "v3"))
		return 0;
	if (!strcmp(v, "0.10") || !strcmp(v, "v2")) {
		p->version = 2;
		return 0;
	}
	return bad_value(errp, "compat", v, "expected 0.10, v2, 1.1 or v3");
}

static int parse_cluster_size(struct vs_opts *opts, struct qc_params *p,
			      struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "cluster_size");
	struct vs_error *err = NULL;
	uint64_t cs = 0;

	p->cluster_bits = 16;
	if (!v)
		return 0;
	if (vs_parse_size(v, &cs, "cluster_size", &err) < 0) {
		vs_error_free(err);
		cs = 0;
	}
	if (cs < (1u << QCOW2_MIN_CLUSTER_BITS) ||
	    cs > (1u << QCOW2_MAX_CLUSTER_BITS) || (cs & (cs - 1)))
		return bad_value(errp, "cluster_size", v,
				 "expected a power of two from 512 to 2M");
	p->cluster_bits = (unsigned)__builtin_ctzll(cs);
	return 0;
}

static int parse_refcount_bits(struct vs_opts *opts, struct qc_params *p,
			       struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, "refcount_bits");
	unsigned long long bits;
	char *end;

	p->refcount_order = 4;
	if (!v)
		return 0;
	errno = 0;
	bits = strtoull(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || bits == 0 || bits > 64 ||
	    (bits & (bits - 1)))
		return bad_value(errp, "refcount_bits", v,
				 "expected 1, 2, 4, 8, 16, 32 or 64");
	p->refcount_order = (unsigned)__builtin_ctzll(bits);
	return 0;
}

static int parse_choices(struct vs_opts *opts, struct qc_params *p,
			 struct vs_error **errp)
{
	static const char *const modes[] = {"off", "metadata", "falloc",
					    "full"};
	const char *v;
	size_t i;

	v = vs_opts_get(opts, "compression_type");
	if (v && strcmp(v, "zlib") && strcmp(v, "zstd"))
		return bad_value(errp, "compression_type", v,
				 "expected zlib or zstd");
	p->zstd = v && !strcmp(v, "zstd");
	v = vs_opts_get(opts, "preallocation");
	p->prealloc = QC_PREALLOC_OFF;
	if (!v)
		return 0;
	for (i = 0; i < VS_ARRAY_SIZE(modes); i++)
		if (!strcmp(v, modes[i]))
			break;
	if (i == VS_ARRAY_SIZE(modes))
		return bad_value(errp, "preallocation", v,
				 "expected off, metadata, falloc or full");
	p->prealloc = (enum qc_prealloc)i;
	return 0;
}

static int parse_backing(struct vs_opts *opts, struct qc_params *p,
			 struct vs_error **errp)
{
	size_t len;

	p->backing_file = vs_opts_get(opts, "backing_file");
	p->backing_fmt = vs_opts_get(opts, "backing_fmt");
	if (p->backing_fmt && !p->backing_file)
		return vs_error_set(errp, EINVAL,
				    "%s backing_fmt='%s' needs a backing_file",
				    what, p->backing_fmt);
	if (!p->backing_file)
		return 0;
	len = strlen(p->backing_file);
	if (len == 0)
		return vs_error_set(errp, EINVAL,
				    "%s backing_file='': the name is empty",
				    what);
	if (len > QCOW2_MAX_BACKING_NAME)
		return vs_error_set(errp, EINVAL,
				    "%s backing_file: the name is %zu bytes "
				    "long, qcow2 allows at most %d",
				    what, len, QCOW2_MAX_BACKING_NAME);
	if (p->backing_fmt && !*p->backing_fmt)
		return vs_error_set(errp, EINVAL,
				    "%s backing_fmt='': the format is empty",
				    what);
	return 0;
}

/* Combinations that no single option's value reveals. */
static int check_combinations(const struct qc_params *p, struct vs_opts *opts,
			      struct vs_error **errp)
{
	if (p->version == 2) {
		if (p->refcount_order != 4)
			return bad_value(errp, "refcount_bits",
					 vs_opts_get(opts, "refcount_bits"),
					 "compat=0.10 allows only 16 (use "
					 "compat=1.1)");
		if (p->lazy_refcounts)
			return bad_value(errp, "lazy_refcounts",
					 vs_opts_get(opts, "lazy_refcounts"),
					 "needs compat=1.1");
		if (p->extended_l2)
			return bad_value(errp, "extended_l2",
					 vs_opts_get(opts, "extended_l2"),
					 "needs compat=1.1");
		if (p->zstd)
			return bad_value(errp, "compression_type", "zstd",
					 "needs compat=1.1");
	}
	if (p->extended_l2 && p->cluster_bits < 14)
		return vs_error_set(errp, EINVAL,
				    "%s extended_l2='%s': needs a cluster_size "
				    "of at least 16K, not %u",
				    what, vs_opts_get(opts, "extended_l2"),
				    1u << p->cluster_bits);
	if (p->backing_file && p->prealloc != QC_PREALLOC_OFF &&
	    !p->extended_l2)
		return bad_value(errp, "preallocation",
				 vs_opts_get(opts, "preallocation"),
				 "with a backing_file it needs "
				 "extended_l2=on");
	return 0;
}

static int parse_options(struct vs_opts *opts, struct qc_params *p,
			 struct vs_error **errp)
{
	int ret;

	for (size_t i = 0; i < VS_ARRAY_SIZE(qc_unsupported); i++)
		if (vs_opts_get(opts, qc_unsupported[i]))
			return vs_error_set(errp, ENOTSUP,
					    "%s '%s' is not supported", what,
					    qc_unsupported[i]);
	ret = parse_compat(opts, p, errp);
	if (ret == 0)
		ret = parse_cluster_size(opts, p, errp);
	if (ret == 0)
		ret = parse_refcount_bits(opts, p, errp);
	if (ret == 0)
		ret = vs_opts_get_bool(opts, "lazy_refcounts",
				       &p->lazy_refcounts, errp);
	if (ret == 0)
		ret = vs_opts_get_bool(opts, "extended_l2", &p->extended_l2,
				       errp);
	if (ret == 0)
		ret = parse_choices(opts, p, errp);
	if (ret == 0)
		ret = parse_backing(opts, p, errp);
	if (ret == 0)
		ret = vs_opts_check_used(opts, errp);
	if (ret == 0)
		ret = check_combinations(p, opts, errp);
	return ret;
}

/* Layout. */

static int compute_layout(const struct qc_params *p, const char *path,
			  struct qc_layout *l, struct vs_error **errp)
{
	uint64_t cs = 1ull << p->cluster_bits;
	uint64_t l2_entries = cs / (p->extended_l2 ? 16 : 8);
	uint64_t rb_entries = (cs * 8) >> p->refcount_order;
	uint64_t max_clusters = QC_MAX_HOST_BYTES >> p->cluster_bits;
	uint64_t vclusters = div_up(p->size, cs);
	uint64_t base, rt = 0, rb = 0;

	memset(l, 0, sizeof(*l));
	l->cs = cs;
	l->l1_entries = div_up(vclusters, l2_entries);
	if (l->l1_entries > QCOW2_MAX_L1_BYTES / 8)
		return vs_error_set(errp, EFBIG,
				    "%s: size %llu is too large for "
				    "cluster_size %llu: the L1 table would "
				    "need %llu bytes, at most 32 MiB (use a "
				    "larger cluster_size)",
				    path, (unsigned long long)p->size,
				    (unsigned long long)cs,
				    (unsigned long long)l->l1_entries * 8);
	l->l1_clusters = div_up(l->l1_entries * 8, cs);
	if (p->prealloc != QC_PREALLOC_OFF) {
		l->l2_tables = l->l1_entries;
		l->data_clusters = vclusters;
	}
	/* Each term is below 2^55 (the size is below 2^63, clusters at
	 * least 2^9 bytes), so the sums cannot wrap. */
	base = 1 + l->l1_clusters + l->l2_tables + l->data_clusters;
	if (base > max_clusters)
		return vs_error_set(errp, EFBIG,
				    "%s: preallocating size %llu needs more "
				    "than the 2^56 bytes qcow2 can address",
				    path, (unsigned long long)p->size);
	/* The refcount blocks count themselves and the table: iterate to
	 * the smallest fixed point (it grows monotonically from zero). */
	for (;;) {
		uint64_t need_rb = div_up(base + rt + rb, rb_entries);
		uint64_t need_rt = div_up(need_rb * 8, cs);

		if (need_rb == rb && need_rt == rt)
			break;
		rb = need_rb;
		rt = need_rt;
	}
	if (rt * cs > QC_MAX_REFTABLE_BYTES)
		return vs_error_set(errp, EFBIG,
				    "%s: preallocating size %llu with "
				    "cluster_size %llu and refcount_bits %u "
				    "needs a refcount table of %llu bytes, "
				    "at most 8 MiB (use a larger cluster_size)",
				    path, (unsigned long long)p->size,
				    (unsigned long long)cs,
				    1u << p->refcount_order,
				    (unsigned long long)(rt * cs));
	l->rt_clusters = rt;
	l->rb_clusters = rb;
	l->rt = 1;
	l->rb = l->rt + rt;
	l->l1 = l->rb + rb;
	l->l2 = l->l1 + l->l1_clusters;
	l->data = l->l2 + l->l2_tables;
	l->total = l->data + l->data_clusters;
	if (l->total > max_clusters)
		return vs_error_set(errp, EFBIG,
				    "%s: size %llu needs more than the 2^56 "
				    "bytes qcow2 can address",
				    path, (unsigned long long)p->size);
	return 0;
}

/* The header cluster. */

static size_t put_ext(uint8_t *buf, size_t off, uint32_t type, const void *data,
		      size_t len)
{
	put32(buf + off, type);
	put32(buf + off + 4, (uint32_t)len);
	memcpy(buf + off + 8, data, len);
	return off + 8 + align8(len);
}

static size_t put_feature_table(uint8_t *buf, size_t off)
{
	uint8_t *p = buf + off + 8;

	put32(buf + off, QCOW2_EXT_FEATURE_TABLE);
	put32(buf + off + 4,
	      (uint32_t)(VS_ARRAY_SIZE(qc_features) * QC_FEATURE_ENTRY_LEN));
	for (size_t i = 0; i < VS_ARRAY_SIZE(qc_features); i++) {
		p[0] = qc_features[i].type;
		p[1] = qc_features[i].bit;
		memcpy(p + 2, qc_features[i].name,
		       VS_MIN(strlen(qc_features[i].name),
			      (size_t)QC_FEATURE_NAME_LEN));
		p += QC_FEATURE_ENTRY_LEN;
	}
	return (size_t)(p - buf);
}

static void put_fields(uint8_t *buf, const struct qc_params *p,
		       const struct qc_layout *l, size_t hlen)
{
	uint64_t incompat = 0;

	put32(buf + 0, QCOW2_MAGIC);
	put32(buf + 4, p->version);
	put32(buf + 20, p->cluster_bits);
	put64(buf + 24, p->size);
	put32(buf + 36, (uint32_t)l->l1_entries);
	put64(buf + 40, l->l1_entries ? l->l1 * l->cs : 0);
	put64(buf + 48, l->rt * l->cs);
	put32(buf + 56, (uint32_t)l->rt_clusters);
	if (p->version < 3)
		return;
	if (p->zstd)
		incompat |= QCOW2_INCOMPAT_COMPRESSION;
	if (p->extended_l2)
		incompat |= QCOW2_INCOMPAT_EXTENDED_L2;
	put64(buf + 72, incompat);
	put64(buf + 80, p->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
	put32(buf + 96, p->refcount_order);
	put32(buf + 100, (uint32_t)hlen);
	buf[104] = p->zstd ? 1 : 0;
}

/*
 * Fill `buf` (one zeroed cluster): header, backing format, feature name
 * table, end of extensions, backing file name.  The feature table is only
 * informative and takes 392 bytes, so like qemu we leave it out of
 * clusters of 4K and less, where the backing file name needs the room.
 */
static int build_header(uint8_t *buf, const struct qc_params *p,
			const struct qc_layout *l, const char *path,
			struct vs_error **errp)
{
	size_t hlen = p->version == 3 ? QC_V3_HEADER_LEN : QCOW2_V2_HEADER_LEN;
	size_t fmt_len = p->backing_fmt ? strlen(p->backing_fmt) : 0;
	size_t name_len = p->backing_file ? strlen(p->backing_file) : 0;
	size_t feat_len = 8 + VS_ARRAY_SIZE(qc_features) * QC_FEATURE_ENTRY_LEN;
	size_t need = hlen + (p->backing_fmt ? 8 + align8(fmt_len) : 0) + 8 +
		      name_len;
	size_t off = hlen;

	if (need > l->cs)
		return vs_error_set(errp, EINVAL,
				    "%s: the header, the backing format and "
				    "the backing file name need %zu bytes, "
				    "more than one cluster of %llu (use a "
				    "larger cluster_size)",
				    path, need, (unsigned long long)l->cs);
	put_fields(buf, p, l, hlen);
	if (p->backing_fmt)
		off = put_ext(buf, off, QCOW2_EXT_BACKING_FORMAT,
			      p->backing_fmt, fmt_len);
	if (p->version == 3 && l->cs > QC_SMALL_CLUSTER &&
	    need + feat_len <= l->cs)
		off = put_feature_table(buf, off);
	off += 8; /* the end-of-extensions marker: type 0, length 0 */
	if (p->backing_file) {
		memcpy(buf + off, p->backing_file, name_len);
		put64(buf + 8, off);
		put32(buf + 16, (uint32_t)name_len);
	}
	return 0;
}

/* Writing. */

/* Set refcount `i` of a refcount block to 1.  Entries narrower than a
 * byte are packed from the least significant bit up; wider ones are
 * big-endian. */
static void refcount_set_one(uint8_t *block, uint64_t i, unsigned order)
{
	unsigned bits = 1u << order;

	if (bits < 8) {
		unsigned per_byte = 8 / bits;

		block[i / per_byte] |= (uint8_t)(1u << (i % per_byte * bits));
	} else {
		block[(i + 1) * (bits / 8) - 1] = 1;
	}
}

static int write_refcounts(int fd, const char *path, const struct qc_params *p,
			   const struct qc_layout *l, struct vs_error **errp)
{
	uint64_t per_block = (l->cs * 8) >> p->refcount_order;
	autofree uint8_t *table = calloc(l->rt_clusters, l->cs);
	autofree uint8_t *block = malloc(l->cs);
	int ret;

	if (!table || !block)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint64_t b = 0; b < l->rb_clusters; b++)
		put64(table + b * 8, (l->rb + b) * l->cs);
	ret = vbd_create_write(fd, path, table, l->rt_clusters * l->cs,
			       l->rt * l->cs, errp);
	for (uint64_t b = 0; ret == 0 && b < l->rb_clusters; b++) {
		uint64_t first = b * per_block;
		uint64_t n = VS_MIN(per_block, l->total - first);

		memset(block, 0, l->cs);
		for (uint64_t i = 0; i < n; i++)
			refcount_set_one(block, i, p->refcount_order);
		ret = vbd_create_write(fd, path, block, l->cs,
				       (l->rb + b) * l->cs, errp);
	}
	return ret;
}

/* The L1 table, and with preallocation the L2 tables that map every
 * guest cluster to its data cluster in order. */
static int write_tables(int fd, const char *path, const struct qc_params *p,
			const struct qc_layout *l, struct vs_error **errp)
{
	size_t entry = p->extended_l2 ? 16 : 8;
	uint64_t l2_entries = l->cs / entry;
	autofree uint8_t *l1 =
		calloc(l->l1_clusters ? l->l1_clusters : 1, l->cs);
	autofree uint8_t *l2 = malloc(l->cs);
	int ret;

	if (!l1 || !l2)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint64_t i = 0; i < l->l2_tables; i++)
		put64(l1 + i * 8, ((l->l2 + i) * l->cs) | QCOW2_L2E_COPIED);
	ret = vbd_create_write(fd, path, l1, l->l1_entries * 8, l->l1 * l->cs,
			       errp);
	/* Extended entries keep a zero subcluster bitmap, as qemu's
	 * preallocation does: the clusters are reserved, not written. */
	for (uint64_t t = 0; ret == 0 && t < l->l2_tables; t++) {
		uint64_t first = t * l2_entries;
		uint64_t n = VS_MIN(l2_entries, l->data_clusters - first);

		memset(l2, 0, l->cs);
		for (uint64_t i = 0; i < n; i++)
			put64(l2 + i * entry, ((l->data + first + i) * l->cs) |
						      QCOW2_L2E_COPIED);
		ret = vbd_create_write(fd, path, l2, l->cs, (l->l2 + t) * l->cs,
				       errp);
	}
	return ret;
}

static int write_data(int fd, const char *path, const struct qc_params *p,
		      const struct qc_layout *l, struct vs_error **errp)
{
	uint64_t start = l->data * l->cs, len = l->data_clusters * l->cs;
	autofree uint8_t *zeros = NULL;
	int ret = 0;

	switch (p->prealloc) {
	case QC_PREALLOC_OFF:
	case QC_PREALLOC_METADATA: return 0;
	case QC_PREALLOC_FALLOC:
		if (len && fallocate(fd, 0, (off_t)start, (off_t)len) < 0)
			return vs_error_set_errno(errp, errno,
						  "%s: cannot preallocate %llu "
						  "bytes at offset %llu",
						  path, (unsigned long long)len,
						  (unsigned long long)start);
		return 0;
	case QC_PREALLOC_FULL:
		zeros = calloc(1, QC_ZERO_CHUNK);
		if (!zeros)
			return vs_error_set(errp, ENOMEM, "out of memory");
		for (uint64_t done = 0; ret == 0 && done < len;
		     done += QC_ZERO_CHUNK)
			ret = vbd_create_write(
				fd, path, zeros,
				VS_MIN(len - done, QC_ZERO_CHUNK), start + done,
				errp);
		return ret;
	}
	return 0;
}

static int write_image(int fd, const char *path, const struct qc_params *p,
		       const struct qc_layout *l, const uint8_t *header,
		       struct vs_error **errp)
{
	uint64_t end = l->total * l->cs;
	int ret;

	/* Like qemu, end the file with the L1 table when nothing follows
	 * it: the rest of its cluster is allocated but never stored. */
	if (l->l1_entries && l->total == l->l1 + l->l1_clusters)
		end = l->l1 * l->cs + l->l1_entries * 8;

	if (ftruncate(fd, 0) < 0)
		return vs_error_set_errno(errp, errno, "%s: cannot truncate",
					  path);
	ret = vbd_create_write(fd, path, header, l->cs, 0, errp);
	if (ret == 0)
		ret = write_refcounts(fd, path, p, l, errp);
	if (ret == 0)
		ret = write_tables(fd, path, p, l, errp);
	if (ret == 0)
		ret = write_data(fd, path, p, l, errp);
	if (ret < 0)
		return ret;
	/* preallocation=metadata: the data clusters exist as a hole. */
	if (ftruncate(fd, (off_t)end) < 0)
		return vs_error_set_errno(errp, errno,
					  "%s: cannot set the size to %llu",
					  path, (unsigned long long)end);
	if (fsync(fd) < 0)
		return vs_error_set_errno(errp, errno, "%s: fsync", path);
	return 0;
}

int qcow2_create(const char *path, uint64_t size, const char *options,
		 struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	struct qc_params p = {0};
	struct qc_layout l;
	autofree uint8_t *header = NULL;
	autoclose int fd = -1;
	int ret;

	/* Whole sectors, as qemu-img rounds them. */
	if (size > (uint64_t)INT64_MAX - 511)
		return vs_error_set(errp, EFBIG, "%s: size %llu is too large",
				    path, (unsigned long long)size);
	p.size = VS_ALIGN_UP(size, 512);
	ret = vs_opts_parse(options, what, &opts, errp);
	if (ret < 0)
		return ret;
	ret = parse_options(opts, &p, errp);
	if (ret == 0)
		ret = compute_layout(&p, path, &l, errp);
	if (ret < 0)
		goto out;
	header = calloc(1, l.cs);
	if (!header) {
		ret = vs_error_set(errp, ENOMEM, "out of memory");
		goto out;
	}
	ret = build_header(header, &p, &l, path, errp);
	if (ret < 0)
		goto out;
	fd = vbd_create_open(path, "qcow2", errp);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	ret = write_image(fd, path, &p, &l, header, errp);
out:
	vs_opts_free(opts);
	return ret;
}
