/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Compressed clusters: deflate (what QEMU calls zlib: a raw deflate
 * stream) and zstd, both ways, and where compressed data goes.
 *
 * Compressed clusters are packed byte after byte into host clusters
 * (comp_next); each host cluster counts one reference per compressed
 * cluster that touches it.  Data spills into the following host cluster
 * only when that one is the next free cluster (alloc_bytes), so packing
 * is as tight as QEMU's for images written front to back (convert -c).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "qcow2.h"

/* QEMU inflates with a 4 KiB window: deflate no wider, or it could
 * not read what is written here. */
#define ZLIB_WINDOW_BITS 12

/*
 * Level 4 with memLevel 8 rather than QEMU's 6 and 9: measured on a
 * file system of /usr/share in 64 KiB clusters, about twice as fast for
 * under 1% more output.  With a 4 KiB window, a longer match search
 * (level 6) finds little more, and memLevel 9's hash table, cleared for
 * every cluster, costs more to clear than it saves.
 */
#define ZLIB_LEVEL     4
#define ZLIB_MEM_LEVEL 8

static int inflate_zlib(const uint8_t *src, size_t slen, uint8_t *dst,
			size_t dlen)
{
	z_stream z = {0};
	int r;

	if (inflateInit2(&z, -15) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)src;
	z.avail_in = (uInt)slen;
	z.next_out = dst;
	z.avail_out = (uInt)dlen;
	r = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	/* The data ends inside its last sector, and what follows it is
	 * padding: a full cluster of output is what counts. */
	if ((r == Z_STREAM_END || r == Z_OK || r == Z_BUF_ERROR) &&
	    z.avail_out == 0)
		return 0;
	return -EIO;
}

static int inflate_zstd(const uint8_t *src, size_t slen, uint8_t *dst,
			size_t dlen)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer in = {.src = src, .size = slen};
	ZSTD_outBuffer out = {.dst = dst, .size = dlen};
	int ret = 0;

	if (!dctx)
		return -ENOMEM;
	while (out.pos < out.size) {
		size_t in_pos = in.pos, out_pos = out.pos;
		size_t r = ZSTD_decompressStream(dctx, &out, &in);

		if (ZSTD_isError(r) ||
		    (in.pos == in_pos && out.pos == out_pos)) {
			ret = -EIO;
			break;
		}
	}
	ZSTD_freeDCtx(dctx);
	return ret;
}

int qcow2_decompress(const struct qcow2 *s, const uint8_t *src, size_t slen,
		     uint8_t *dst, size_t dlen)
{
	return s->m.h.compression_type == QCOW2_COMPRESSION_ZSTD
		       ? inflate_zstd(src, slen, dst, dlen)
		       : inflate_zlib(src, slen, dst, dlen);
}

/*
 * Compression contexts, one set per thread and kept for the thread's
 * life: setting one up (allocating and clearing its tables) costs a good
 * part of compressing a 64 KiB cluster, and convert compresses on the
 * same few worker threads cluster after cluster.  A thread's contexts
 * are freed when it exits.
 */
struct comp_ctx {
	z_stream z;
	bool z_ready;
	ZSTD_CCtx *zstd;
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static bool ctx_key_ok;

static void ctx_free(void *p)
{
	struct comp_ctx *c = p;

	if (c->z_ready)
		deflateEnd(&c->z);
	ZSTD_freeCCtx(c->zstd);
	free(c);
}

static void ctx_key_init(void)
{
	ctx_key_ok = pthread_key_create(&ctx_key, ctx_free) == 0;
}

/* This thread's contexts, NULL if memory is short (the caller then
 * makes throwaway ones). */
static struct comp_ctx *thread_ctx(void)
{
	struct comp_ctx *c;

	pthread_once(&ctx_once, ctx_key_init);
	if (!ctx_key_ok)
		return NULL;
	c = pthread_getspecific(ctx_key);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (c && pthread_setspecific(ctx_key, c)) {
		free(c);
		c = NULL;
	}
	return c;
}

static int deflate_zlib(const uint8_t *src, size_t slen, uint8_t *dst,
			size_t cap, size_t *out)
{
	struct comp_ctx *c = thread_ctx();
	z_stream local = {0}, *z = c ? &c->z : &local;
	int r;

	if (c && c->z_ready) {
		if (deflateReset(z) != Z_OK)
			return -ENOMEM;
	} else {
		if (deflateInit2(z, ZLIB_LEVEL, Z_DEFLATED, -ZLIB_WINDOW_BITS,
				 ZLIB_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		if (c)
			c->z_ready = true;
	}
	z->next_in = (Bytef *)src;
	z->avail_in = (uInt)slen;
	z->next_out = dst;
	z->avail_out = (uInt)cap;
	r = deflate(z, Z_FINISH);
	*out = cap - z->avail_out;
	if (!c)
		deflateEnd(z);
	return r == Z_STREAM_END ? 0 : -ENOSPC;
}

static int deflate_zstd(const uint8_t *src, size_t slen, uint8_t *dst,
			size_t cap, size_t *out)
{
	struct comp_ctx *c = thread_ctx();
	size_t r;

	if (c && !c->zstd)
		c->zstd = ZSTD_createCCtx();
	if (c && c->zstd)
		r = ZSTD_compressCCtx(c->zstd, dst, cap, src, slen,
				      ZSTD_CLEVEL_DEFAULT);
	else
		r = ZSTD_compress(dst, cap, src, slen, ZSTD_CLEVEL_DEFAULT);
	if (ZSTD_isError(r))
		return -ENOSPC;
	*out = r;
	return 0;
}

int qcow2_compress(const struct qcow2 *s, const uint8_t *src, uint8_t *dst,
		   size_t *out)
{
	/* Worth it only if it saves a sector at least. */
	size_t cap = s->cluster_size - QCOW2_COMPRESSED_SECT;

	return s->m.h.compression_type == QCOW2_COMPRESSION_ZSTD
		       ? deflate_zstd(src, s->cluster_size, dst, cap, out)
		       : deflate_zlib(src, s->cluster_size, dst, cap, out);
}

/*
 * `len` bytes (at most a cluster) for compressed data, counted: *host is
 * where they go.  Data that does not fit in the open host cluster spills
 * into the next one when the next free cluster is the one right after
 * it (as QEMU packs it; readers take a compressed cluster's sectors
 * wherever they lie), and starts a new host cluster otherwise.  Each
 * host cluster the data touches counts one reference for it.
 */
static int alloc_bytes(struct qcow2 *s, size_t len, uint64_t *host)
{
	uint64_t cs = s->cluster_size, cur, c, rc = 0;
	int ret = 0;

	/* A cluster whose count is full (1-bit refcounts hold one
	 * compressed cluster each) takes no more. */
	cur = VS_ALIGN_DOWN(s->comp_next, cs);
	if (s->comp_next)
		ret = qcow2_refcount_get(s, cur, &rc);
	if (ret < 0)
		return ret;
	if (!s->comp_next || rc >= qcow2_refcount_max(s)) {
		ret = qcow2_alloc_cluster(s, &c);
		if (ret < 0)
			return ret;
		s->comp_next = c;
	} else if ((s->comp_next & (cs - 1)) + len > cs) {
		ret = qcow2_alloc_cluster(s, &c);
		if (ret < 0)
			return ret;
		/* Not adjacent: the open cluster's tail stays unused. */
		if (c != cur + cs)
			s->comp_next = c;
	}
	ret = qcow2_refcount_update(s, s->comp_next, len, 1);
	if (ret < 0)
		return ret;
	*host = s->comp_next;
	s->comp_next += len;
	if (!(s->comp_next & (cs - 1)))
		s->comp_next = 0; /* full */
	return 0;
}

int qcow2_write_compressed(struct qcow2 *s, uint64_t l2off, uint32_t idx,
			   const uint8_t *data, size_t len)
{
	unsigned x = qcow2_compressed_shift(s->cluster_bits);
	struct qcow2_l2e old, le = {0};
	uint64_t host = 0, nsect;
	int ret = qcow2_l2_get(s, l2off, idx, &old);

	if (ret == 0)
		ret = alloc_bytes(s, len, &host);
	if (ret == 0)
		ret = qcow2_file_pwrite(s, host, data, len);
	if (ret < 0)
		return ret;
	/* Sectors after the one holding the first byte. */
	nsect = (host + len - 1) / QCOW2_COMPRESSED_SECT -
		host / QCOW2_COMPRESSED_SECT;
	le.e = QCOW2_L2E_COMPRESSED | nsect << x | host;
	ret = qcow2_l2_set(s, l2off, idx, &le);
	if (ret == 0)
		ret = qcow2_release_later(s, old.e);
	return ret;
}

void qcow2_compress_forget(struct qcow2 *s, uint64_t host, uint64_t len)
{
	uint64_t cs = s->cluster_size, c = VS_ALIGN_DOWN(s->comp_next, cs);

	/* A host cluster whose last reference went is free: no more
	 * compressed data may go into its tail. */
	if (s->comp_next && host < c + cs && c < host + len)
		s->comp_next = 0;
}
