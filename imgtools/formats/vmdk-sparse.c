/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hosted sparse extent: its header, grain directory (GD) and grain
 * tables (GT), and the mapping of extent bytes to grains.
 *
 * The GD is read and checked at open.  Grain tables are read when first
 * needed and kept; when they pass VMDK_GT_CACHE_BYTES the cache starts
 * over (after writing back what changed), so memory stays bounded for
 * any disk.  A table entry is checked each time it is used: an entry
 * that points past the end of the file fails the request with EIO and
 * a log line naming the file, the table and the index.
 *
 * Writing keeps changed tables in memory; vmdk_sparse_flush stores them
 * in crash-safe order: the data grains reach the disk first, then the
 * grain tables (and their redundant copies), then the GD entries of new
 * tables.  A crash leaves the image as of the last flush, plus grains
 * that nothing points to.  With VBD_O_UNSAFE (convert's new, private
 * target) the steps are not separated by fdatasync; a flush still ends
 * with one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/atomic.h"
#include "../../common/cleanup.h"
#include "../../common/log.h"
#include "vmdk.h"

void vmdk_header_decode(const uint8_t *b, struct vmdk_header *h)
{
	h->magic = vmdk_le32(b);
	h->version = vmdk_le32(b + 4);
	h->flags = vmdk_le32(b + 8);
	h->capacity = vmdk_le64(b + 12);
	h->grain_sectors = vmdk_le64(b + 20);
	h->desc_offset = vmdk_le64(b + 28);
	h->desc_size = vmdk_le64(b + 36);
	h->num_gtes = vmdk_le32(b + 44);
	h->rgd_offset = vmdk_le64(b + 48);
	h->gd_offset = vmdk_le64(b + 56);
	h->overhead = vmdk_le64(b + 64);
	h->unclean = b[72];
	memcpy(h->nl_chars, b + 73, 4);
	h->compress = (uint16_t)(b[77] | b[78] << 8);
}

void vmdk_header_encode(const struct vmdk_header *h, uint8_t *b)
{
	memset(b, 0, VMDK_HEADER_SIZE);
	vmdk_put32(b, VMDK4_MAGIC);
	vmdk_put32(b + 4, h->version);
	vmdk_put32(b + 8, h->flags);
	vmdk_put64(b + 12, h->capacity);
	vmdk_put64(b + 20, h->grain_sectors);
	vmdk_put64(b + 28, h->desc_offset);
	vmdk_put64(b + 36, h->desc_size);
	vmdk_put32(b + 44, h->num_gtes);
	vmdk_put64(b + 48, h->rgd_offset);
	vmdk_put64(b + 56, h->gd_offset);
	vmdk_put64(b + 64, h->overhead);
	b[72] = h->unclean;
	/* The line-end check bytes let readers spot a text-mode transfer. */
	b[73] = '\n';
	b[74] = ' ';
	b[75] = '\r';
	b[76] = '\n';
	b[77] = (uint8_t)h->compress;
	b[78] = (uint8_t)(h->compress >> 8);
}

int vmdk_file_pwrite(struct vmdk_sparse *sp, uint64_t off, const void *buf,
		     size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	int ret;

	/* The file grows as grains and tables are appended. */
	ret = vbd_pwritev_grow(sp->file, off, &iov, 1);
	if (ret == 0)
		vs_atomic_max(&sp->file_size, off + len);
	return ret;
}

/* Header checks. */

static int check_header(struct vmdk_sparse *sp, struct vs_error **errp)
{
	const struct vmdk_header *h = &sp->h;
	const char *f = sp->path;

	if (h->magic != VMDK4_MAGIC)
		return vs_error_set(errp, EINVAL,
				    "%s: bad magic 0x%08x at offset 0 (not a "
				    "VMDK sparse extent)",
				    f, h->magic);
	if (h->version < 1 || h->version > 3)
		return vs_error_set(errp, ENOTSUP,
				    "%s: sparse extent version %u at offset 4 "
				    "is not supported (1, 2 or 3)",
				    f, h->version);
	if (h->grain_sectors == 0 ||
	    h->grain_sectors > VMDK_MAX_GRAIN_SECTORS ||
	    (h->grain_sectors & (h->grain_sectors - 1)))
		return vs_error_set(errp, EINVAL,
				    "%s: grain size %" PRIu64
				    " sectors at offset 20 is not a power of "
				    "two from 1 to %u",
				    f, h->grain_sectors,
				    VMDK_MAX_GRAIN_SECTORS);
	if (h->capacity > VMDK_MAX_CAPACITY)
		return vs_error_set(errp, EFBIG,
				    "%s: capacity %" PRIu64
				    " sectors at offset 12 is larger than the "
				    "supported %llu",
				    f, h->capacity,
				    (unsigned long long)VMDK_MAX_CAPACITY);
	if (h->num_gtes == 0 || h->num_gtes > VMDK_MAX_GTES)
		return vs_error_set(errp, EINVAL,
				    "%s: %u grain table entries per table at "
				    "offset 44 (1 to %u)",
				    f, h->num_gtes, VMDK_MAX_GTES);
	if ((h->flags & VMDK_FLAG_COMPRESSED) &&
	    h->compress != VMDK_COMPRESS_DEFLATE)
		return vs_error_set(errp, ENOTSUP,
				    "%s: compression algorithm %u at offset 77 "
				    "is not supported (1, deflate)",
				    f, h->compress);
	return 0;
}

/* A table of `bytes` at `sector` lies inside the file, past the header. */
static bool table_fits(const struct vmdk_sparse *sp, uint64_t sector,
		       uint64_t bytes)
{
	return sector >= 1 && sector <= sp->file_size / VMDK_SECTOR &&
	       bytes <= sp->file_size - sector * VMDK_SECTOR;
}

static int load_gd(struct vmdk_sparse *sp, uint64_t sector, uint32_t **out,
		   const char *what, struct vs_error **errp)
{
	size_t bytes = (size_t)sp->gd_entries * 4;
	autofree uint8_t *raw = malloc(bytes ? bytes : 1);
	uint32_t *gd = calloc(sp->gd_entries ? sp->gd_entries : 1, 4);
	int ret;

	if (!raw || !gd) {
		free(gd);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	if (!table_fits(sp, sector, bytes)) {
		free(gd);
		return vs_error_set(errp, EINVAL,
				    "%s: %s at sector %" PRIu64
				    " (offset 0x%" PRIx64 ", %zu bytes) lies "
				    "outside the file (%" PRIu64 " bytes)",
				    sp->path, what, sector,
				    sector * (uint64_t)VMDK_SECTOR, bytes,
				    sp->file_size);
	}
	ret = bytes ? vbd_pread(sp->file, sector * VMDK_SECTOR, raw, bytes) : 0;
	if (ret < 0) {
		free(gd);
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the %s at offset "
					  "0x%" PRIx64,
					  sp->path, what, sector * VMDK_SECTOR);
	}
	for (uint32_t i = 0; i < sp->gd_entries; i++) {
		gd[i] = vmdk_le32(raw + 4 * (size_t)i);
		if (gd[i] && !table_fits(sp, gd[i], sp->gt_bytes)) {
			vs_error_set(errp, EINVAL,
				     "%s: %s entry %u at offset 0x%" PRIx64
				     " points past the end of the file (grain "
				     "table at sector %u, file size %" PRIu64
				     ")",
				     sp->path, what, i,
				     sector * VMDK_SECTOR + 4 * (uint64_t)i,
				     gd[i], sp->file_size);
			free(gd);
			return -EINVAL;
		}
	}
	*out = gd;
	return 0;
}

int vmdk_sparse_open(struct vmdk_extent *e, const uint8_t *hdr, bool writable,
		     struct vs_error **errp)
{
	struct vmdk_sparse *sp = calloc(1, sizeof(*sp));
	struct vmdk_header *h;
	uint64_t gds;
	int ret;

	if (!sp)
		return vs_error_set(errp, ENOMEM, "out of memory");
	e->sp = sp;
	pthread_mutex_init(&sp->lock, NULL);
	sp->path = e->path;
	sp->file = e->file;
	sp->file_size = vbd_size(e->file);
	h = &sp->h;
	vmdk_header_decode(hdr, h);
	ret = check_header(sp, errp);
	if (ret < 0)
		return ret;
	if (h->gd_offset == VMDK_GD_AT_END) {
		/* streamOptimized as VMware writes it: the footer, a copy of
		 * the header at the end, has the real GD offset. */
		struct vmdk_header foot;

		ret = vmdk_stream_footer(sp->file, sp->path, sp->file_size,
					 &foot, errp);
		if (ret < 0)
			return ret;
		foot.magic = h->magic;
		*h = foot;
		ret = check_header(sp, errp);
		if (ret < 0)
			return ret;
		sp->at_end = true;
	}
	sp->grain_size = (uint32_t)(h->grain_sectors * VMDK_SECTOR);
	sp->grains = (h->capacity + h->grain_sectors - 1) / h->grain_sectors;
	gds = (sp->grains + h->num_gtes - 1) / h->num_gtes;
	if (gds > VMDK_MAX_GD_ENTRIES)
		return vs_error_set(
			errp, EFBIG,
			"%s: a capacity of %" PRIu64 " sectors needs %" PRIu64
			" grain directory entries (at most %u)",
			sp->path, h->capacity, gds, VMDK_MAX_GD_ENTRIES);
	sp->gd_entries = (uint32_t)gds;
	sp->gt_bytes = h->num_gtes * 4;
	sp->gt_span = VS_ALIGN_UP(sp->gt_bytes, VMDK_SECTOR);
	sp->compressed = h->flags & VMDK_FLAG_COMPRESSED;
	sp->markers = h->flags & VMDK_FLAG_MARKERS;
	sp->zero_grain = h->flags & VMDK_FLAG_ZERO_GRAIN;
	if (h->gd_offset == VMDK_GD_AT_END)
		return vs_error_set(errp, EINVAL,
				    "%s: the stream footer's grain directory "
				    "offset is also 'at the end'",
				    sp->path);
	sp->gd_off = h->gd_offset * VMDK_SECTOR;
	ret = load_gd(sp, h->gd_offset, &sp->gd, "grain directory", errp);
	if (ret < 0)
		return ret;
	sp->gt = calloc(sp->gd_entries ? sp->gd_entries : 1, sizeof(*sp->gt));
	sp->gt_dirty = calloc(sp->gd_entries ? sp->gd_entries : 1, 1);
	if (!sp->gt || !sp->gt_dirty)
		return vs_error_set(errp, ENOMEM, "out of memory");
	sp->writable = writable;
	if (!writable)
		return 0;
	if (!sp->at_end && (h->flags & VMDK_FLAG_RGD) && h->rgd_offset) {
		ret = load_gd(sp, h->rgd_offset, &sp->rgd,
			      "redundant grain directory", errp);
		if (ret < 0)
			return ret;
	}
	if (sp->at_end)
		return vmdk_stream_open_write(sp, errp);
	/* New uncompressed grains start on a grain boundary, as qemu puts
	 * them; compressed ones follow each other sector by sector. */
	sp->next = VS_ALIGN_UP(sp->file_size, (uint64_t)VMDK_SECTOR);
	if (!sp->compressed)
		sp->next = VS_ALIGN_UP(sp->next, (uint64_t)sp->grain_size);
	return 0;
}

void vmdk_sparse_close(struct vmdk_sparse *sp)
{
	if (!sp)
		return;
	if (sp->gt)
		for (uint32_t i = 0; i < sp->gd_entries; i++)
			free(sp->gt[i]);
	free(sp->gt);
	free(sp->gt_dirty);
	free(sp->gd);
	free(sp->rgd);
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}

/* Grain tables. */

static int flush_locked(struct vmdk_sparse *sp);

static void drop_tables(struct vmdk_sparse *sp)
{
	for (uint32_t i = 0; i < sp->gd_entries; i++) {
		free(sp->gt[i]);
		sp->gt[i] = NULL;
	}
	sp->gt_bytes_loaded = 0;
}

/* Make room before loading one more table (under lock). */
static int make_room(struct vmdk_sparse *sp)
{
	int ret;

	/* A stream being written keeps every table: they are only stored
	 * in its tail. */
	if (sp->gt_bytes_loaded + sp->gt_bytes <= VMDK_GT_CACHE_BYTES ||
	    (sp->at_end && sp->writable))
		return 0;
	ret = flush_locked(sp);
	if (ret < 0)
		return ret;
	drop_tables(sp);
	return 0;
}

static int load_gt(struct vmdk_sparse *sp, uint32_t idx)
{
	autofree uint8_t *raw = malloc(sp->gt_bytes);
	uint32_t *t;
	int ret = make_room(sp);

	if (ret < 0)
		return ret;
	t = malloc(sp->gt_bytes);
	if (!raw || !t) {
		free(t);
		return -ENOMEM;
	}
	ret = vbd_pread(sp->file, (uint64_t)sp->gd[idx] * VMDK_SECTOR, raw,
			sp->gt_bytes);
	if (ret < 0) {
		vs_log(VS_LOG_ERROR, "vmdk",
		       "%s: cannot read grain table %u at offset 0x%" PRIx64,
		       sp->path, idx, (uint64_t)sp->gd[idx] * VMDK_SECTOR);
		free(t);
		return ret;
	}
	for (uint32_t i = 0; i < sp->h.num_gtes; i++)
		t[i] = vmdk_le32(raw + 4 * (size_t)i);
	sp->gt[idx] = t;
	sp->gt_bytes_loaded += sp->gt_bytes;
	return 0;
}

int vmdk_gte_get(struct vmdk_sparse *sp, uint64_t g, uint32_t *gte)
{
	uint32_t idx = (uint32_t)(g / sp->h.num_gtes);
	int ret;

	*gte = 0;
	if (g >= sp->grains)
		return 0;
	if (!sp->gt[idx]) {
		if (!sp->gd[idx])
			return 0;
		ret = load_gt(sp, idx);
		if (ret < 0)
			return ret;
	}
	*gte = sp->gt[idx][g % sp->h.num_gtes];
	return 0;
}

/* A new, empty grain table for `idx`: in memory now, stored at a flush
 * (at the end of the file, or in the stream's tail). */
static int new_gt(struct vmdk_sparse *sp, uint32_t idx)
{
	int ret = make_room(sp);
	uint32_t *t;

	if (ret < 0)
		return ret;
	t = calloc(sp->h.num_gtes, 4);
	if (!t)
		return -ENOMEM;
	if (!sp->at_end) {
		uint64_t need =
			sp->rgd ? 2 * (uint64_t)sp->gt_span : sp->gt_span;

		if ((sp->next + need) / VMDK_SECTOR > UINT32_MAX) {
			free(t);
			return -EFBIG;
		}
		sp->gd[idx] = (uint32_t)(sp->next / VMDK_SECTOR);
		if (sp->rgd)
			sp->rgd[idx] = (uint32_t)(sp->next / VMDK_SECTOR +
						  sp->gt_span / VMDK_SECTOR);
		sp->next += need;
		if (!sp->compressed)
			sp->next =
				VS_ALIGN_UP(sp->next, (uint64_t)sp->grain_size);
		sp->gd_dirty = true;
	}
	sp->gt[idx] = t;
	sp->gt_bytes_loaded += sp->gt_bytes;
	return 0;
}

int vmdk_gte_set(struct vmdk_sparse *sp, uint64_t g, uint32_t gte)
{
	uint32_t idx = (uint32_t)(g / sp->h.num_gtes);
	int ret;

	if (!sp->gt[idx]) {
		ret = sp->gd[idx] ? load_gt(sp, idx) : new_gt(sp, idx);
		if (ret < 0)
			return ret;
	}
	sp->gt[idx][g % sp->h.num_gtes] = gte;
	sp->gt_dirty[idx] = true;
	if (sp->at_end)
		sp->tail_dirty = true;
	return 0;
}

int vmdk_sparse_load_all(struct vmdk_sparse *sp, struct vs_error **errp)
{
	for (uint32_t i = 0; i < sp->gd_entries; i++) {
		int ret;

		if (sp->gt[i] || !sp->gd[i])
			continue;
		ret = load_gt(sp, i);
		if (ret < 0)
			return vs_error_set_errno(
				errp, ret,
				"%s: cannot read grain table "
				"%u at offset 0x%" PRIx64,
				sp->path, i, (uint64_t)sp->gd[i] * VMDK_SECTOR);
	}
	return 0;
}

/* Mapping. */

static int bad_gte(struct vmdk_sparse *sp, uint64_t g, uint32_t gte,
		   const char *why)
{
	uint32_t idx = (uint32_t)(g / sp->h.num_gtes);

	vs_log(VS_LOG_ERROR, "vmdk",
	       "%s: grain table entry %u of the grain table at offset "
	       "0x%" PRIx64 " (grain %" PRIu64 ") %s (sector %u, file size "
	       "%" PRIu64 ")",
	       sp->path, (uint32_t)(g % sp->h.num_gtes),
	       (uint64_t)sp->gd[idx] * VMDK_SECTOR, g, why, gte, sp->file_size);
	return -EIO;
}

static int classify(struct vmdk_sparse *sp, uint64_t g, uint32_t gte,
		    enum vmdk_gtype *t)
{
	uint64_t host = (uint64_t)gte * VMDK_SECTOR;

	if (gte == 0) {
		*t = VMDK_G_UNALLOC;
		return 0;
	}
	/* Sector 1 is never a grain (the header is there): an entry of 1
	 * is a zeroed grain, as the zeroed-grain flag defines it. */
	if (gte == VMDK_GTE_ZEROED) {
		*t = VMDK_G_ZERO;
		return 0;
	}
	if (host >= __atomic_load_n(&sp->file_size, __ATOMIC_ACQUIRE))
		return bad_gte(sp, g, gte, "points past the end of the file");
	/* Grains follow the header, descriptor and tables (overHead);
	 * one before that would read or overwrite metadata. */
	if (gte < sp->h.overhead)
		return bad_gte(sp, g, gte,
			       "points into the metadata before the first "
			       "grain");
	*t = sp->compressed ? VMDK_G_COMPRESSED : VMDK_G_NORMAL;
	return 0;
}

int vmdk_sparse_map(struct vmdk_sparse *sp, uint64_t rel, uint64_t len,
		    struct vmdk_run *run)
{
	uint64_t gs = sp->grain_size, g = rel / gs;
	uint64_t in = rel % gs, n;
	uint32_t gte;
	enum vmdk_gtype t;
	int ret;

	pthread_mutex_lock(&sp->lock);
	ret = vmdk_gte_get(sp, g, &gte);
	if (ret == 0)
		ret = classify(sp, g, gte, &t);
	if (ret < 0)
		goto out;
	run->type = t;
	run->host = (uint64_t)gte * VMDK_SECTOR + (t == VMDK_G_NORMAL ? in : 0);
	n = VS_MIN(len, gs - in);
	/* Following grains of the same kind extend the run (data only when
	 * stored right after); a compressed grain stands alone. */
	while (t != VMDK_G_COMPRESSED && n < len) {
		uint32_t next;
		enum vmdk_gtype nt;

		if (vmdk_gte_get(sp, g + 1, &next) < 0 ||
		    classify(sp, g + 1, next, &nt) < 0 || nt != t)
			break;
		if (t == VMDK_G_NORMAL &&
		    (uint64_t)next * VMDK_SECTOR !=
			    (uint64_t)gte * VMDK_SECTOR + gs)
			break;
		g++;
		gte = next;
		n += VS_MIN(len - n, gs);
	}
	run->len = n;
out:
	pthread_mutex_unlock(&sp->lock);
	return ret;
}

/* Bytes read with a grain marker at once: most compressed grains fit,
 * so one read fetches marker and data. */
#define FIRST_READ (32u << 10)

int vmdk_read_compressed(struct vmdk_sparse *sp, uint64_t rel, uint64_t host,
			 uint8_t *buf, size_t n)
{
	uint64_t gs = sp->grain_size, g = rel / gs;
	uint64_t fsize = __atomic_load_n(&sp->file_size, __ATOMIC_ACQUIRE);
	/* Deflate never grows data by more than a few bytes per 16 KiB:
	 * twice the grain bounds any honest compressed grain. */
	uint64_t cap = 2 * gs + VMDK_SECTOR, zlen, head = 0;
	uint64_t want = VS_MIN(gs, sp->h.capacity * VMDK_SECTOR - g * gs);
	uint64_t first = VS_MIN(fsize - host, cap + VMDK_GRAIN_MARKER);
	autofree uint8_t *z = NULL, *out = malloc(gs);
	size_t got;
	int ret;

	if (sp->markers)
		first = VS_MIN(first, (uint64_t)FIRST_READ);
	z = malloc(cap + VMDK_GRAIN_MARKER);
	if (!out || !z)
		return -ENOMEM;
	ret = vbd_pread(sp->file, host, z, first);
	if (ret < 0)
		return ret;
	if (sp->markers) {
		uint64_t lba;

		if (first < VMDK_GRAIN_MARKER)
			return bad_gte(
				sp, g, (uint32_t)(host / VMDK_SECTOR),
				"points to a grain marker cut by the end "
				"of the file");
		lba = vmdk_le64(z);
		zlen = vmdk_le32(z + 8);
		head = VMDK_GRAIN_MARKER;
		if (zlen == 0 || zlen > cap || zlen > fsize - host - head) {
			vs_log(VS_LOG_ERROR, "vmdk",
			       "%s: grain marker at offset 0x%" PRIx64
			       " (grain %" PRIu64 ") has a bad size %" PRIu64
			       " (1 to %" PRIu64 ", inside the file)",
			       sp->path, host, g, zlen,
			       VS_MIN(cap, fsize - host - head));
			return -EIO;
		}
		if (lba != g * sp->h.grain_sectors) {
			vs_log(VS_LOG_ERROR, "vmdk",
			       "%s: grain marker at offset 0x%" PRIx64
			       " is for sector %" PRIu64
			       ", the grain table says grain %" PRIu64
			       " (sector %" PRIu64 ")",
			       sp->path, host, lba, g, g * sp->h.grain_sectors);
			return -EIO;
		}
		/* A grain larger than the first read: the rest of it. */
		if (head + zlen > first) {
			ret = vbd_pread(sp->file, host + first, z + first,
					head + zlen - first);
			if (ret < 0)
				return ret;
		}
	} else {
		zlen = first;
	}
	ret = vmdk_inflate(z + head, zlen, out, gs, &got);
	if (ret < 0 || got < want) {
		vs_log(VS_LOG_ERROR, "vmdk",
		       "%s: compressed grain at offset 0x%" PRIx64
		       " (grain %" PRIu64 ", %" PRIu64 " bytes) does not "
		       "inflate to a whole grain",
		       sp->path, host, g, zlen);
		return -EIO;
	}
	if (got < gs)
		memset(out + got, 0, gs - got);
	memcpy(buf, out + rel % gs, n);
	return 0;
}

/* Writing back. */

static void encode_table(const uint32_t *t, uint32_t n, uint8_t *raw)
{
	for (uint32_t i = 0; i < n; i++)
		vmdk_put32(raw + 4 * (size_t)i, t[i]);
}

static int write_gd(struct vmdk_sparse *sp, const uint32_t *gd, uint64_t off)
{
	size_t bytes = (size_t)sp->gd_entries * 4;
	autofree uint8_t *raw = malloc(bytes ? bytes : 1);

	if (!raw)
		return -ENOMEM;
	encode_table(gd, sp->gd_entries, raw);
	return bytes ? vmdk_file_pwrite(sp, off, raw, bytes) : 0;
}

static int flush_locked(struct vmdk_sparse *sp)
{
	autofree uint8_t *raw = NULL;
	bool any = sp->gd_dirty;
	int ret;

	if (!sp->writable)
		return 0;
	if (sp->at_end)
		return sp->tail_dirty ? vmdk_stream_write_tail(sp)
				      : vbd_flush(sp->file);
	for (uint32_t i = 0; i < sp->gd_entries && !any; i++)
		any = sp->gt_dirty[i];
	if (!any)
		return vbd_flush(sp->file);
	ret = sp->unsafe ? 0 : vbd_flush(sp->file); /* the grains first */
	if (ret < 0)
		return ret;
	raw = calloc(1, sp->gt_span);
	if (!raw)
		return -ENOMEM;
	for (uint32_t i = 0; i < sp->gd_entries && ret == 0; i++) {
		if (!sp->gt_dirty[i] || !sp->gt[i])
			continue;
		encode_table(sp->gt[i], sp->h.num_gtes, raw);
		/* Only the table's bytes: tables of fewer than 128
		 * entries may share a sector. */
		ret = vmdk_file_pwrite(sp, (uint64_t)sp->gd[i] * VMDK_SECTOR,
				       raw, sp->gt_bytes);
		if (ret == 0 && sp->rgd && sp->rgd[i])
			ret = vmdk_file_pwrite(
				sp, (uint64_t)sp->rgd[i] * VMDK_SECTOR, raw,
				sp->gt_bytes);
	}
	if (ret == 0 && (!sp->unsafe || !sp->gd_dirty))
		ret = vbd_flush(sp->file);
	if (ret < 0)
		return ret;
	memset(sp->gt_dirty, 0, sp->gd_entries);
	if (sp->gd_dirty) {
		ret = write_gd(sp, sp->gd, sp->gd_off);
		if (ret == 0 && sp->rgd)
			ret = write_gd(sp, sp->rgd,
				       sp->h.rgd_offset * VMDK_SECTOR);
		if (ret == 0)
			ret = vbd_flush(sp->file);
		if (ret == 0)
			sp->gd_dirty = false;
	}
	return ret;
}

int vmdk_sparse_flush(struct vmdk_sparse *sp)
{
	int ret;

	pthread_mutex_lock(&sp->lock);
	ret = flush_locked(sp);
	pthread_mutex_unlock(&sp->lock);
	return ret;
}
