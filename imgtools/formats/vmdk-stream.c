/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * streamOptimized: compressed grains with markers, and the layout VMware
 * writes for streaming, where the grain tables, the grain directory and
 * a footer (a copy of the header with the real GD offset) follow the
 * grains, each behind a metadata marker, and an end-of-stream marker
 * closes the file:
 *
 *   header (gdOffset = GD_AT_END) | descriptor | grains...
 *   | GT marker, GT | ... | GD marker, GD | footer marker, footer | EOS
 *
 * Grains are deflated in zlib format (RFC 1950), as VMware and qemu
 * store them.  Writing appends grains; the tables after them are
 * rewritten at each flush and at close, over the previous ones, so the
 * file is a valid stream after every flush.  A grain is written once:
 * overwriting one fails, as in qemu.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../common/cleanup.h"
#include "../../common/log.h"
#include "vmdk.h"

/*
 * One deflate and one inflate stream per thread, reset for each grain:
 * setting one up allocates some 300 KiB, which costs more than
 * compressing a grain when done per call.  They are freed when their
 * thread ends.
 */
static pthread_key_t zkey[2];
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static bool zkeys_ok;

static void free_deflate(void *p)
{
	deflateEnd(p);
	free(p);
}

static void free_inflate(void *p)
{
	inflateEnd(p);
	free(p);
}

static void zkeys_init(void)
{
	zkeys_ok = pthread_key_create(&zkey[0], free_deflate) == 0 &&
		   pthread_key_create(&zkey[1], free_inflate) == 0;
}

/* This thread's stream (`inflating` picks which), reset; NULL on
 * failure.  *owned says the caller must free it (no thread key). */
static z_stream *zstream(bool inflating, bool *owned)
{
	z_stream *z;

	pthread_once(&zonce, zkeys_init);
	*owned = !zkeys_ok;
	z = zkeys_ok ? pthread_getspecific(zkey[inflating]) : NULL;
	if (z) {
		if ((inflating ? inflateReset(z) : deflateReset(z)) == Z_OK)
			return z;
		return NULL;
	}
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	if ((inflating ? inflateInit(z)
		       : deflateInit(z, Z_DEFAULT_COMPRESSION)) != Z_OK) {
		free(z);
		return NULL;
	}
	if (zkeys_ok && pthread_setspecific(zkey[inflating], z) != 0)
		*owned = true;
	return z;
}

static void zdone(z_stream *z, bool inflating, bool owned)
{
	if (owned)
		(inflating ? free_inflate : free_deflate)(z);
}

int vmdk_deflate(const void *in, size_t len, size_t grain, void *out,
		 size_t out_cap, size_t *out_len)
{
	autofree uint8_t *pad = NULL;
	bool owned;
	z_stream *z;
	int r;

	/* The disk's last grain may be short: it is stored whole. */
	if (len < grain) {
		pad = calloc(1, grain);
		if (!pad)
			return -ENOMEM;
		memcpy(pad, in, len);
		in = pad;
		len = grain;
	}
	z = zstream(false, &owned);
	if (!z)
		return -ENOMEM;
	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)len;
	z->next_out = out;
	z->avail_out = (uInt)VS_MIN(out_cap, (size_t)UINT32_MAX);
	r = deflate(z, Z_FINISH);
	*out_len = z->total_out;
	zdone(z, false, owned);
	return r == Z_STREAM_END ? 0 : -ENOSPC;
}

int vmdk_inflate(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
		 size_t *out_len)
{
	bool owned;
	z_stream *z = zstream(true, &owned);
	int r;

	if (!z)
		return -ENOMEM;
	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)VS_MIN(len, (size_t)UINT32_MAX);
	z->next_out = out;
	z->avail_out = (uInt)cap;
	r = inflate(z, Z_FINISH);
	*out_len = z->total_out;
	zdone(z, true, owned);
	/* The stream must end inside the grain: more data than a grain is
	 * as corrupt as a stream cut short. */
	return r == Z_STREAM_END ? 0 : -EIO;
}

static void put_marker(uint8_t *m, uint64_t val, uint32_t size, uint32_t type)
{
	memset(m, 0, VMDK_SECTOR);
	vmdk_put64(m, val);
	vmdk_put32(m + 8, size);
	vmdk_put32(m + 12, type);
}

int vmdk_stream_footer(struct vbd *file, const char *path, uint64_t file_size,
		       struct vmdk_header *h, struct vs_error **errp)
{
	uint8_t b[3 * VMDK_SECTOR];
	uint64_t at;
	int ret;

	if (file_size < 4 * VMDK_SECTOR)
		return vs_error_set(errp, EINVAL,
				    "%s: the header says the grain directory "
				    "is in the stream footer, but the file "
				    "(%" PRIu64 " bytes) is too short for one",
				    path, file_size);
	at = VS_ALIGN_DOWN(file_size, (uint64_t)VMDK_SECTOR) - sizeof(b);
	ret = vbd_pread(file, at, b, sizeof(b));
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the stream footer "
					  "at offset 0x%" PRIx64,
					  path, at);
	if (vmdk_le32(b + 8) != 0 || vmdk_le32(b + 12) != VMDK_MARKER_FOOTER)
		return vs_error_set(errp, EINVAL,
				    "%s: no footer marker at offset 0x%" PRIx64
				    " (the stream is truncated or damaged: "
				    "marker type %u, size %u)",
				    path, at, vmdk_le32(b + 12),
				    vmdk_le32(b + 8));
	if (vmdk_le32(b + VMDK_SECTOR) != VMDK4_MAGIC)
		return vs_error_set(errp, EINVAL,
				    "%s: the stream footer at offset "
				    "0x%" PRIx64 " has a bad magic 0x%08x",
				    path, at + VMDK_SECTOR,
				    vmdk_le32(b + VMDK_SECTOR));
	if (vmdk_le64(b + 2 * VMDK_SECTOR) != 0 ||
	    vmdk_le32(b + 2 * VMDK_SECTOR + 8) != 0 ||
	    vmdk_le32(b + 2 * VMDK_SECTOR + 12) != VMDK_MARKER_EOS)
		return vs_error_set(errp, EINVAL,
				    "%s: no end-of-stream marker at offset "
				    "0x%" PRIx64 " (the stream is truncated)",
				    path, at + 2 * VMDK_SECTOR);
	vmdk_header_decode(b + VMDK_SECTOR, h);
	return 0;
}

int vmdk_stream_open_write(struct vmdk_sparse *sp, struct vs_error **errp)
{
	uint64_t end = sp->gd_off, first = sp->h.overhead * VMDK_SECTOR;
	int ret = vmdk_sparse_load_all(sp, errp);

	if (ret < 0)
		return ret;
	/* The grains end where the first table's marker begins. */
	for (uint32_t i = 0; i < sp->gd_entries; i++)
		if (sp->gd[i])
			end = VS_MIN(end, (uint64_t)sp->gd[i] * VMDK_SECTOR);
	end -= VMDK_SECTOR; /* the tables are past the header: no wrap */
	if (end < first || end < 2 * VMDK_SECTOR)
		return vs_error_set(errp, EINVAL,
				    "%s: the stream's tables at offset "
				    "0x%" PRIx64 " start before its first "
				    "grain (offset 0x%" PRIx64 ")",
				    sp->path, end, first);
	for (uint32_t i = 0; i < sp->gd_entries; i++)
		for (uint32_t j = 0; sp->gt[i] && j < sp->h.num_gtes; j++)
			if ((uint64_t)sp->gt[i][j] * VMDK_SECTOR >= end)
				return vs_error_set(
					errp, EINVAL,
					"%s: grain table %u entry %u points "
					"to sector %u, past the grains (which "
					"end at offset 0x%" PRIx64
					"): cannot append to this stream",
					sp->path, i, j, sp->gt[i][j], end);
	sp->next = end;
	return 0;
}

int vmdk_stream_append(struct vmdk_sparse *sp, uint64_t g, const void *z,
		       size_t zlen)
{
	size_t head = sp->markers ? VMDK_GRAIN_MARKER : 0;
	size_t span = VS_ALIGN_UP(head + zlen, (size_t)VMDK_SECTOR);
	autofree uint8_t *buf = calloc(1, span);
	uint64_t at = sp->next;
	int ret;

	if (!buf)
		return -ENOMEM;
	if (zlen > UINT32_MAX || (at + span) / VMDK_SECTOR > UINT32_MAX)
		return -EFBIG;
	if (sp->markers) {
		vmdk_put64(buf, g * sp->h.grain_sectors);
		vmdk_put32(buf + 8, (uint32_t)zlen);
	}
	memcpy(buf + head, z, zlen);
	ret = vmdk_file_pwrite(sp, at, buf, span);
	if (ret < 0)
		return ret;
	sp->next = at + span;
	return vmdk_gte_set(sp, g, (uint32_t)(at / VMDK_SECTOR));
}

int vmdk_stream_write_tail(struct vmdk_sparse *sp)
{
	uint64_t pos = sp->next;
	size_t gd_bytes = (size_t)sp->gd_entries * 4;
	size_t gd_span = VS_ALIGN_UP(gd_bytes, (size_t)VMDK_SECTOR);
	size_t tail = VMDK_SECTOR + gd_span + 3 * VMDK_SECTOR;
	autofree uint8_t *gt = malloc(VMDK_SECTOR + sp->gt_span);
	autofree uint8_t *t = calloc(1, tail);
	struct vmdk_header foot = sp->h;
	uint64_t total = tail;
	uint8_t *p;
	int ret;

	if (!gt || !t)
		return -ENOMEM;
	/*
	 * Readers find the footer 1536 bytes before the end of the file,
	 * and the file cannot shrink here: the tail ends at the old end or
	 * past it.  It always does when grains were only appended (tables
	 * are never dropped); the check keeps a foreign file valid too.
	 */
	for (uint32_t i = 0; i < sp->gd_entries; i++)
		if (sp->gt[i])
			total += VMDK_SECTOR + sp->gt_span;
	if (pos + total < sp->file_size)
		pos = VS_ALIGN_DOWN(sp->file_size - total,
				    (uint64_t)VMDK_SECTOR);
	for (uint32_t i = 0; i < sp->gd_entries; i++) {
		if (!sp->gt[i]) {
			sp->gd[i] = 0;
			continue;
		}
		if ((pos + 2 * VMDK_SECTOR + sp->gt_span) / VMDK_SECTOR >
		    UINT32_MAX)
			return -EFBIG;
		memset(gt + VMDK_SECTOR, 0, sp->gt_span);
		put_marker(gt, sp->gt_span / VMDK_SECTOR, 0, VMDK_MARKER_GT);
		for (uint32_t j = 0; j < sp->h.num_gtes; j++)
			vmdk_put32(gt + VMDK_SECTOR + 4 * (size_t)j,
				   sp->gt[i][j]);
		ret = vmdk_file_pwrite(sp, pos, gt, VMDK_SECTOR + sp->gt_span);
		if (ret < 0)
			return ret;
		sp->gd[i] = (uint32_t)(pos / VMDK_SECTOR + 1);
		pos += VMDK_SECTOR + sp->gt_span;
	}
	p = t;
	put_marker(p, gd_span / VMDK_SECTOR, 0, VMDK_MARKER_GD);
	p += VMDK_SECTOR;
	for (uint32_t i = 0; i < sp->gd_entries; i++)
		vmdk_put32(p + 4 * (size_t)i, sp->gd[i]);
	p += gd_span;
	put_marker(p, 1, 0, VMDK_MARKER_FOOTER);
	p += VMDK_SECTOR;
	foot.gd_offset = pos / VMDK_SECTOR + 1;
	vmdk_header_encode(&foot, p);
	p += VMDK_SECTOR;
	put_marker(p, 0, 0, VMDK_MARKER_EOS);
	ret = vmdk_file_pwrite(sp, pos, t, tail);
	if (ret == 0)
		ret = vbd_flush(sp->file);
	if (ret < 0)
		return ret;
	sp->gd_off = (pos + VMDK_SECTOR);
	sp->h.gd_offset = foot.gd_offset;
	memset(sp->gt_dirty, 0, sp->gd_entries);
	sp->tail_dirty = false;
	return 0;
}
