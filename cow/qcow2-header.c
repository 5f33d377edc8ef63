/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 header and its extensions: parsed from the first cluster and
 * checked field by field before anything else of the image is trusted.
 * Every refusal names the file, the field and the value found.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "qcow2.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void decode(const uint8_t *b, struct qcow2_header *h)
{
	h->version = be32(b + 4);
	h->backing_file_offset = be64(b + 8);
	h->backing_file_size = be32(b + 16);
	h->cluster_bits = be32(b + 20);
	h->size = be64(b + 24);
	h->crypt_method = be32(b + 32);
	h->l1_size = be32(b + 36);
	h->l1_table_offset = be64(b + 40);
	h->refcount_table_offset = be64(b + 48);
	h->refcount_table_clusters = be32(b + 56);
	h->nb_snapshots = be32(b + 60);
	h->snapshots_offset = be64(b + 64);
	/* Version 2 has none of the rest: these are its implied values. */
	h->incompatible = 0;
	h->compatible = 0;
	h->autoclear = 0;
	h->refcount_order = 4;
	h->header_length = QCOW2_V2_HEADER_LEN;
	h->compression_type = QCOW2_COMPRESSION_ZLIB;
}

static void decode_v3(const uint8_t *b, struct qcow2_header *h)
{
	h->incompatible = be64(b + 72);
	h->compatible = be64(b + 80);
	h->autoclear = be64(b + 88);
	h->refcount_order = be32(b + 96);
	h->header_length = be32(b + 100);
}

/* True when [off, off+len) lies inside [0, limit). */
static bool inside(uint64_t off, uint64_t len, uint64_t limit)
{
	return off <= limit && len <= limit - off;
}

/* Feature names from the feature name table, for error messages. */
struct feature_names {
	char incompat[64][47];
};

static int check_version(const struct qcow2_header *h, const char *fn,
			 struct vs_error **errp)
{
	if (h->version == 2 || h->version == 3)
		return 0;
	return vs_error_set(errp, ENOTSUP,
			    "%s: qcow2 version %" PRIu32
			    " is not supported (only 2 and 3)",
			    fn, h->version);
}

static int check_cluster_bits(const struct qcow2_header *h, const char *fn,
			      struct vs_error **errp)
{
	if (h->cluster_bits >= QCOW2_MIN_CLUSTER_BITS &&
	    h->cluster_bits <= QCOW2_MAX_CLUSTER_BITS)
		return 0;
	return vs_error_set(errp, EINVAL,
			    "%s: cluster_bits %" PRIu32
			    " is outside %d..%d (512 bytes to 2 MiB)",
			    fn, h->cluster_bits, QCOW2_MIN_CLUSTER_BITS,
			    QCOW2_MAX_CLUSTER_BITS);
}

static int check_v3_fields(const struct qcow2_header *h, uint32_t csize,
			   size_t len, const char *fn, struct vs_error **errp)
{
	if (h->header_length < QCOW2_V3_HEADER_LEN ||
	    h->header_length > csize || h->header_length > len ||
	    h->header_length % 8)
		return vs_error_set(
			errp, EINVAL,
			"%s: header_length %" PRIu32
			" is not a multiple of 8 between %d and the cluster "
			"size %" PRIu32 " (file holds %zu bytes of it)",
			fn, h->header_length, QCOW2_V3_HEADER_LEN, csize, len);
	if (h->refcount_order > 6)
		return vs_error_set(errp, EINVAL,
				    "%s: refcount_order %" PRIu32
				    " is larger than 6 (64-bit refcounts)",
				    fn, h->refcount_order);
	return 0;
}

static int check_features(const struct qcow2_header *h,
			  const struct feature_names *names, const char *fn,
			  struct vs_error **errp)
{
	uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
			 QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_COMPRESSION |
			 QCOW2_INCOMPAT_EXTENDED_L2;
	uint64_t unknown = h->incompatible & ~known;

	if (unknown) {
		int bit = __builtin_ctzll(unknown);
		const char *name = names->incompat[bit];

		return vs_error_set(
			errp, ENOTSUP,
			"%s: unknown incompatible feature bit %d%s%s%s in "
			"incompatible_features 0x%" PRIx64,
			fn, bit, *name ? " (" : "", name, *name ? ")" : "",
			h->incompatible);
	}
	if (h->incompatible & QCOW2_INCOMPAT_DATA_FILE)
		return vs_error_set(errp, ENOTSUP,
				    "%s: incompatible feature bit 2 (external "
				    "data file) is not supported",
				    fn);
	if ((h->incompatible & QCOW2_INCOMPAT_EXTENDED_L2) &&
	    h->cluster_bits < 14)
		return vs_error_set(errp, EINVAL,
				    "%s: extended L2 entries (incompatible bit "
				    "4) with cluster_bits %" PRIu32
				    ": subclusters need clusters of at least "
				    "16 KiB",
				    fn, h->cluster_bits);
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
		return vs_error_set(errp, ENOTSUP,
				    "%s: compression_type %u is unknown "
				    "(0 = zlib, 1 = zstd)",
				    fn, h->compression_type);
	if ((h->incompatible & QCOW2_INCOMPAT_COMPRESSION) &&
	    h->header_length <= QCOW2_V3_HEADER_LEN)
		return vs_error_set(errp, EINVAL,
				    "%s: incompatible feature bit 3 "
				    "(compression type) is set but "
				    "header_length %" PRIu32
				    " leaves no room for compression_type",
				    fn, h->header_length);
	if (!!(h->incompatible & QCOW2_INCOMPAT_COMPRESSION) !=
	    (h->compression_type != QCOW2_COMPRESSION_ZLIB))
		return vs_error_set(
			errp, EINVAL,
			"%s: compression_type %u does not match "
			"incompatible feature bit 3 (%s)",
			fn, h->compression_type,
			(h->incompatible & QCOW2_INCOMPAT_COMPRESSION)
				? "set"
				: "clear");
	if (h->crypt_method)
		return vs_error_set(errp, ENOTSUP,
				    "%s: encrypted images are not supported "
				    "(crypt_method %" PRIu32 ")",
				    fn, h->crypt_method);
	return 0;
}

/* The virtual size, and the L1 table that must cover it. */
static int check_l1(const struct qcow2_header *h, uint64_t file_size,
		    const char *fn, struct vs_error **errp)
{
	/* Guest bytes one L2 table covers; extended entries are twice as
	 * large, so a table covers half as much. */
	unsigned ext = (h->incompatible & QCOW2_INCOMPAT_EXTENDED_L2) ? 1 : 0;
	uint64_t per_l2 = 1ull << (2 * h->cluster_bits - 3 - ext);
	uint64_t need;

	if (h->size > INT64_MAX)
		return vs_error_set(errp, EINVAL,
				    "%s: size %" PRIu64
				    " does not fit in a signed 64-bit offset",
				    fn, h->size);
	need = h->size / per_l2 + (h->size % per_l2 != 0);
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return vs_error_set(errp, EINVAL,
				    "%s: l1_size %" PRIu32
				    " makes an L1 table larger than 32 MiB",
				    fn, h->l1_size);
	if (h->l1_size < need)
		return vs_error_set(errp, EINVAL,
				    "%s: l1_size %" PRIu32
				    " is too small for size %" PRIu64
				    " (needs %" PRIu64 " entries)",
				    fn, h->l1_size, h->size, need);
	if (!VS_IS_ALIGNED(h->l1_table_offset, 1ull << h->cluster_bits))
		return vs_error_set(errp, EINVAL,
				    "%s: l1_table_offset 0x%" PRIx64
				    " is not aligned to a cluster",
				    fn, h->l1_table_offset);
	if (h->l1_size &&
	    !inside(h->l1_table_offset, (uint64_t)h->l1_size * 8, file_size))
		return vs_error_set(
			errp, EINVAL,
			"%s: l1_table_offset 0x%" PRIx64
			" with l1_size %" PRIu32
			" is past the end of the file (%" PRIu64 " bytes)",
			fn, h->l1_table_offset, h->l1_size, file_size);
	return 0;
}

static int check_refcount(const struct qcow2_header *h, uint64_t file_size,
			  const char *fn, struct vs_error **errp)
{
	uint64_t csize = 1ull << h->cluster_bits;
	uint64_t bytes = (uint64_t)h->refcount_table_clusters
			 << h->cluster_bits;

	if (h->refcount_table_clusters == 0)
		return vs_error_set(errp, EINVAL,
				    "%s: refcount_table_clusters 0: the image "
				    "has no refcount table",
				    fn);
	if (bytes > QCOW2_MAX_REFTABLE_BYTES)
		return vs_error_set(errp, EINVAL,
				    "%s: refcount_table_clusters %" PRIu32
				    " makes a refcount table larger than 8 MiB",
				    fn, h->refcount_table_clusters);
	if (!VS_IS_ALIGNED(h->refcount_table_offset, csize))
		return vs_error_set(errp, EINVAL,
				    "%s: refcount_table_offset 0x%" PRIx64
				    " is not aligned to a cluster",
				    fn, h->refcount_table_offset);
	if (!inside(h->refcount_table_offset, bytes, file_size))
		return vs_error_set(errp, EINVAL,
				    "%s: refcount_table_offset 0x%" PRIx64
				    " with refcount_table_clusters %" PRIu32
				    " is past the end of the file (%" PRIu64
				    " bytes)",
				    fn, h->refcount_table_offset,
				    h->refcount_table_clusters, file_size);
	return 0;
}

/*
 * The snapshot table as far as the header tells: its entries are read
 * and checked with the table (qcow2-snapshot.c); here only its place.
 * Each entry takes at least QCOW2_SNAPSHOT_MIN_BYTES.
 */
static int check_snapshots(const struct qcow2_header *h, uint64_t file_size,
			   const char *fn, struct vs_error **errp)
{
	uint64_t csize = 1ull << h->cluster_bits;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return vs_error_set(errp, EINVAL,
				    "%s: nb_snapshots %" PRIu32
				    " is more than %d",
				    fn, h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	if (!h->nb_snapshots)
		return 0;
	if (!VS_IS_ALIGNED(h->snapshots_offset, csize))
		return vs_error_set(errp, EINVAL,
				    "%s: snapshots_offset 0x%" PRIx64
				    " is not aligned to a cluster",
				    fn, h->snapshots_offset);
	if (!inside(h->snapshots_offset,
		    (uint64_t)h->nb_snapshots * QCOW2_SNAPSHOT_MIN_BYTES,
		    file_size))
		return vs_error_set(
			errp, EINVAL,
			"%s: snapshots_offset 0x%" PRIx64
			" with nb_snapshots %" PRIu32
			" is past the end of the file (%" PRIu64 " bytes)",
			fn, h->snapshots_offset, h->nb_snapshots, file_size);
	return 0;
}

/* A table the header points at: [off, off + len), named by its field. */
struct region {
	const char *field; /* the header field holding its offset */
	const char *what;
	uint64_t off, len;
};

static bool overlap(const struct region *a, const struct region *b)
{
	return a->len && b->len && a->off < b->off + b->len &&
	       b->off < a->off + a->len;
}

/*
 * The header cluster, the L1 table, the refcount table and the snapshot
 * table must not share a byte (every offset and length is already
 * checked to lie inside the file, so the sums do not overflow).  The
 * message names both fields.
 */
static int check_overlaps(const struct qcow2_header *h, const char *fn,
			  struct vs_error **errp)
{
	const struct region r[] = {
		{"header", "header cluster", 0, 1ull << h->cluster_bits},
		{"l1_table_offset", "L1 table", h->l1_table_offset,
		 (uint64_t)h->l1_size * 8},
		{"refcount_table_offset", "refcount table",
		 h->refcount_table_offset,
		 (uint64_t)h->refcount_table_clusters << h->cluster_bits},
		{"snapshots_offset", "snapshot table", h->snapshots_offset,
		 (uint64_t)h->nb_snapshots * QCOW2_SNAPSHOT_MIN_BYTES},
	};

	for (size_t j = 1; j < VS_ARRAY_SIZE(r); j++) {
		if (overlap(&r[0], &r[j]))
			return vs_error_set(
				errp, EINVAL,
				"%s: %s 0x%" PRIx64 " (the %s, %" PRIu64
				" bytes) overlaps the header cluster "
				"(%" PRIu64 " bytes)",
				fn, r[j].field, r[j].off, r[j].what, r[j].len,
				r[0].len);
		for (size_t i = 1; i < j; i++)
			if (overlap(&r[i], &r[j]))
				return vs_error_set(
					errp, EINVAL,
					"%s: %s 0x%" PRIx64 " (the %s, %" PRIu64
					" bytes) overlaps %s 0x%" PRIx64
					" (the %s, %" PRIu64 " bytes)",
					fn, r[j].field, r[j].off, r[j].what,
					r[j].len, r[i].field, r[i].off,
					r[i].what, r[i].len);
	}
	return 0;
}

/* A name from the image: bounded, no NUL inside. */
static char *copy_name(const uint8_t *p, size_t n)
{
	char *s;

	if (memchr(p, 0, n))
		return NULL;
	s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

static int parse_backing_name(const uint8_t *buf, size_t len,
			      struct qcow2_meta *m, const char *fn,
			      struct vs_error **errp)
{
	const struct qcow2_header *h = &m->h;
	uint64_t limit = VS_MIN((uint64_t)len, (uint64_t)m->cluster_size);

	if (!h->backing_file_offset)
		return 0;
	if (h->backing_file_size == 0 ||
	    h->backing_file_size > QCOW2_MAX_BACKING_NAME)
		return vs_error_set(errp, EINVAL,
				    "%s: backing_file_size %" PRIu32
				    " is not between 1 and %d",
				    fn, h->backing_file_size,
				    QCOW2_MAX_BACKING_NAME);
	if (h->backing_file_offset < h->header_length)
		return vs_error_set(errp, EINVAL,
				    "%s: backing_file_offset %" PRIu64
				    " overlaps the header (header_length "
				    "%" PRIu32 ")",
				    fn, h->backing_file_offset,
				    h->header_length);
	if (!inside(h->backing_file_offset, h->backing_file_size, limit))
		return vs_error_set(errp, EINVAL,
				    "%s: backing_file_offset %" PRIu64
				    " with backing_file_size %" PRIu32
				    " is outside the first cluster",
				    fn, h->backing_file_offset,
				    h->backing_file_size);
	m->backing_file =
		copy_name(buf + h->backing_file_offset, h->backing_file_size);
	if (!m->backing_file)
		return vs_error_set(errp, EINVAL,
				    "%s: the backing file name at offset "
				    "%" PRIu64 " contains a NUL byte",
				    fn, h->backing_file_offset);
	return 0;
}

static void parse_feature_table(const uint8_t *p, uint32_t n,
				struct feature_names *names)
{
	for (uint32_t i = 0; i + 48 <= n; i += 48) {
		const uint8_t *e = p + i;

		if (e[0] == 0 && e[1] < 64) {
			memcpy(names->incompat[e[1]], e + 2, 46);
			names->incompat[e[1]][46] = 0;
		}
	}
}

/*
 * Header extensions sit between the header and the end of the first
 * cluster (or the backing file name, which QEMU puts after them).
 */
static int parse_extensions(const uint8_t *buf, size_t len,
			    struct qcow2_meta *m, struct feature_names *names,
			    const char *fn, struct vs_error **errp)
{
	const struct qcow2_header *h = &m->h;
	uint64_t end = VS_MIN((uint64_t)len, (uint64_t)m->cluster_size);
	uint64_t off = h->header_length;
	const char *limit = len < m->cluster_size
				    ? "the end of the file"
				    : "the end of the first cluster";

	if (h->backing_file_offset && h->backing_file_offset < end) {
		end = h->backing_file_offset;
		limit = "the backing file name";
	}
	while (off + 8 <= end) {
		uint32_t type = be32(buf + off), n = be32(buf + off + 4);

		if (type == QCOW2_EXT_END)
			break;
		if (n > end - off - 8)
			return vs_error_set(
				errp, EINVAL,
				"%s: header extension 0x%08" PRIx32
				" at offset %" PRIu64 " with length %" PRIu32
				" runs past %s (offset %" PRIu64 ")",
				fn, type, off, n, limit, end);
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			free(m->backing_format);
			m->backing_format = NULL;
			if (n == 0 || n > 64 ||
			    !(m->backing_format = copy_name(buf + off + 8, n)))
				return vs_error_set(
					errp, EINVAL,
					"%s: backing format extension at "
					"offset %" PRIu64 " (length %" PRIu32
					") is not a format name",
					fn, off, n);
		} else if (type == QCOW2_EXT_FEATURE_TABLE) {
			parse_feature_table(buf + off + 8, n, names);
		}
		/* Other extensions (bitmaps, encryption, data file name)
		 * concern features refused above or only writers. */
		off += 8 + VS_ALIGN_UP((uint64_t)n, 8);
	}
	return 0;
}

int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		       const char *filename, struct qcow2_meta *m,
		       struct vs_error **errp)
{
	struct qcow2_header *h = &m->h;
	autofree struct feature_names *names = calloc(1, sizeof(*names));
	int ret;

	memset(m, 0, sizeof(*m));
	if (!names)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (len < QCOW2_V2_HEADER_LEN)
		return vs_error_set(errp, EINVAL,
				    "%s: truncated qcow2 header: the file has "
				    "%zu bytes, the header needs %d",
				    filename, len, QCOW2_V2_HEADER_LEN);
	if (be32(buf) != QCOW2_MAGIC)
		return vs_error_set(errp, EINVAL,
				    "%s: magic 0x%08" PRIx32
				    " is not qcow2's (QFI\\xfb)",
				    filename, be32(buf));
	decode(buf, h);
	ret = check_version(h, filename, errp);
	if (ret == 0)
		ret = check_cluster_bits(h, filename, errp);
	if (ret < 0)
		return ret;
	m->cluster_size = 1u << h->cluster_bits;
	if (h->version == 3) {
		if (len < QCOW2_V3_HEADER_LEN)
			return vs_error_set(errp, EINVAL,
					    "%s: truncated qcow2 version 3 "
					    "header: %zu of %d bytes",
					    filename, len, QCOW2_V3_HEADER_LEN);
		decode_v3(buf, h);
		ret = check_v3_fields(h, m->cluster_size, len, filename, errp);
		if (ret < 0)
			return ret;
		if (h->header_length > QCOW2_V3_HEADER_LEN)
			h->compression_type = buf[104];
	}
	ret = parse_extensions(buf, len, m, names, filename, errp);
	if (ret == 0)
		ret = check_features(h, names, filename, errp);
	if (ret == 0)
		ret = check_l1(h, file_size, filename, errp);
	if (ret == 0)
		ret = check_refcount(h, file_size, filename, errp);
	if (ret == 0)
		ret = check_snapshots(h, file_size, filename, errp);
	if (ret == 0)
		ret = check_overlaps(h, filename, errp);
	if (ret == 0)
		ret = parse_backing_name(buf, len, m, filename, errp);
	if (ret < 0)
		qcow2_meta_free(m);
	return ret;
}

void qcow2_meta_free(struct qcow2_meta *m)
{
	free(m->backing_file);
	free(m->backing_format);
	m->backing_file = NULL;
	m->backing_format = NULL;
}
