/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing VMDK: flat extents straight to their file; sparse extents in
 * place for allocated grains, else a new grain at the end of the file
 * (zeros around the data), whose grain table entry is stored at the
 * next flush, after the grain (vmdk-sparse.c); compressed extents
 * (streamOptimized) append each grain once, deflated with a marker.
 *
 * Deflating runs outside every lock, so the convert pipeline's
 * vmdk_compress can run on many threads; only the append is serial.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/atomic.h"
#include "../../common/cleanup.h"
#include "../../common/iov.h"
#include "../../common/log.h"
#include "vmdk.h"

static int written_twice(struct vmdk_sparse *sp, uint64_t g)
{
	vs_log(VS_LOG_ERROR, "vmdk",
	       "%s: grain %" PRIu64 " (extent offset %" PRIu64
	       ") was already written; a streamOptimized image's grains "
	       "cannot be overwritten",
	       sp->path, g, g * sp->grain_size);
	return -ENOTSUP;
}

/*
 * A whole grain for grain `g`, `n` bytes of the list at `in`: around
 * them what the grain read before, the parent's bytes for an
 * unallocated grain of a child, else zeros.
 */
static int grain_buffer(struct vmdk_sparse *sp, uint64_t g, uint32_t gte,
			uint64_t in, const struct iovec *iov, int iovcnt,
			size_t skip, size_t n, uint8_t **out)
{
	uint8_t *buf = calloc(1, sp->grain_size);
	int ret;

	if (!buf)
		return -ENOMEM;
	if (gte == 0 && sp->parent && n < sp->grain_size) {
		ret = vmdk_parent_fill(sp->parent,
				       sp->vstart + g * sp->grain_size, buf,
				       sp->grain_size);
		if (ret < 0) {
			free(buf);
			return ret;
		}
	}
	vs_iov_to_buf(iov, iovcnt, skip, buf + in, n);
	*out = buf;
	return 0;
}

/* Store a new grain (under sp->lock). */
static int append_plain(struct vmdk_sparse *sp, uint64_t g, const uint8_t *buf)
{
	uint64_t at = VS_ALIGN_UP(sp->next, (uint64_t)sp->grain_size);
	int ret;

	if ((at + sp->grain_size) / VMDK_SECTOR > UINT32_MAX)
		return -EFBIG; /* grain table entries are 32-bit sectors */
	ret = vmdk_file_pwrite(sp, at, buf, sp->grain_size);
	if (ret < 0)
		return ret;
	sp->next = at + sp->grain_size;
	return vmdk_gte_set(sp, g, (uint32_t)(at / VMDK_SECTOR));
}

static int write_in_place(struct vmdk_sparse *sp, uint32_t gte, uint64_t in,
			  const struct iovec *iov, int iovcnt, size_t skip,
			  size_t n)
{
	struct iovec part[64];
	autofree struct iovec *big = NULL;
	struct iovec *p = part;
	uint64_t off;
	int cnt;

	if (iovcnt > (int)VS_ARRAY_SIZE(part)) {
		big = malloc(sizeof(*big) * (size_t)iovcnt);
		if (!big)
			return -ENOMEM;
		p = big;
	}
	cnt = vs_iov_slice(p, iovcnt, iov, iovcnt, skip, n);
	if (cnt < 0)
		return -EIO;
	off = (uint64_t)gte * VMDK_SECTOR + in;
	/* A grain at the end of a file that was cut short is filled up
	 * to its length. */
	cnt = vbd_pwritev_grow(sp->file, off, p, cnt);
	if (cnt == 0)
		vs_atomic_max(&sp->file_size, off + n);
	return cnt;
}

/* Write `n` bytes (inside grain `g`) of a sparse extent. */
static int write_grain(struct vmdk_sparse *sp, uint64_t rel,
		       const struct iovec *iov, int iovcnt, size_t skip,
		       size_t n)
{
	uint64_t g = rel / sp->grain_size, in = rel % sp->grain_size;
	autofree uint8_t *buf = NULL, *z = NULL;
	size_t zlen = 0, zcap = 2 * (size_t)sp->grain_size + VMDK_SECTOR;
	uint32_t gte;
	int ret;

	pthread_mutex_lock(&sp->lock);
	ret = vmdk_gte_get(sp, g, &gte);
	pthread_mutex_unlock(&sp->lock);
	if (ret < 0)
		return ret;
	if (gte > VMDK_GTE_ZEROED)
		return sp->compressed ? written_twice(sp, g)
				      : write_in_place(sp, gte, in, iov, iovcnt,
						       skip, n);
	/* A new grain: built (and deflated) outside the lock. */
	ret = grain_buffer(sp, g, gte, in, iov, iovcnt, skip, n, &buf);
	if (ret < 0)
		return ret;
	if (sp->compressed) {
		z = malloc(zcap);
		if (!z)
			return -ENOMEM;
		ret = vmdk_deflate(buf, sp->grain_size, sp->grain_size, z, zcap,
				   &zlen);
		if (ret < 0)
			return ret;
	}
	pthread_mutex_lock(&sp->lock);
	ret = vmdk_gte_get(sp, g, &gte);
	if (ret == 0 && gte > VMDK_GTE_ZEROED) {
		/* Another writer allocated it meanwhile (its fill from
		 * the parent is stale: write in place). */
		pthread_mutex_unlock(&sp->lock);
		return sp->compressed ? written_twice(sp, g)
				      : write_in_place(sp, gte, in, iov, iovcnt,
						       skip, n);
	}
	if (ret == 0)
		ret = sp->compressed ? vmdk_stream_append(sp, g, z, zlen)
				     : append_plain(sp, g, buf);
	pthread_mutex_unlock(&sp->lock);
	return ret;
}

static int write_sparse(struct vmdk_sparse *sp, uint64_t rel,
			const struct iovec *iov, int iovcnt, size_t skip,
			size_t len)
{
	size_t done = 0;
	int ret = 0;

	while (done < len && ret == 0) {
		uint64_t pos = rel + done;
		size_t n =
			(size_t)VS_MIN((uint64_t)(len - done),
				       sp->grain_size - pos % sp->grain_size);

		ret = write_grain(sp, pos, iov, iovcnt, skip + done, n);
		done += n;
	}
	return ret;
}

int vmdk_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		 int iovcnt)
{
	struct vmdk *s = vbd->opaque;
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	int ret = 0, cnt;

	if (!part)
		return -ENOMEM;
	while (done < len && ret == 0) {
		uint64_t pos = offset + done;
		struct vmdk_extent *e = vmdk_find_extent(s, pos);
		uint64_t rel = pos - e->start;
		size_t n =
			(size_t)VS_MIN((uint64_t)(len - done), e->size - rel);

		switch (e->type) {
		case VMDK_EXT_ZERO:
			vs_log(VS_LOG_ERROR, "vmdk",
			       "%s: offset %" PRIu64
			       " lies in a ZERO extent, which cannot be "
			       "written",
			       vbd->filename, pos);
			ret = -EROFS;
			break;
		case VMDK_EXT_FLAT:
			cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, done, n);
			ret = cnt < 0 ? -EIO
				      : vbd_pwritev(e->file, e->flat_off + rel,
						    part, cnt);
			break;
		case VMDK_EXT_SPARSE:
			ret = write_sparse(e->sp, rel, iov, iovcnt, done, n);
			break;
		}
		done += n;
	}
	return ret;
}

int vmdk_flush(struct vbd *vbd)
{
	struct vmdk *s = vbd->opaque;
	int ret = 0;

	for (unsigned i = 0; i < s->next; i++) {
		struct vmdk_extent *e = &s->ext[i];
		int r = e->sp	  ? vmdk_sparse_flush(e->sp)
			: e->file ? vbd_flush(e->file)
				  : 0;

		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

/* Zeros through the write path: grains of a child that would show its
 * parent. */
static int write_zero_data(struct vmdk_sparse *sp, uint64_t rel, uint64_t len)
{
	size_t chunk = (size_t)VS_MIN(len, (uint64_t)(1u << 20));
	autofree uint8_t *zeros = calloc(1, chunk);
	int ret = 0;

	if (!zeros)
		return -ENOMEM;
	for (uint64_t done = 0; done < len && ret == 0;) {
		size_t n = (size_t)VS_MIN(len - done, (uint64_t)chunk);
		struct iovec iov = {.iov_base = zeros, .iov_len = n};

		ret = write_sparse(sp, rel + done, &iov, 1, 0, n);
		done += n;
	}
	return ret;
}

/*
 * Zeroes: grains that are zeroed, or unallocated without a parent,
 * already read as zeros, so only the others are written; ZERO extents
 * are zeros; flat extents pass the request down.
 */
int vmdk_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		      unsigned flags)
{
	struct vmdk *s = vbd->opaque;
	uint64_t done = 0;
	int ret = 0;

	while (done < len && ret == 0) {
		uint64_t pos = offset + done;
		struct vmdk_extent *e = vmdk_find_extent(s, pos);
		uint64_t rel = pos - e->start;
		uint64_t n = VS_MIN(len - done, e->size - rel);
		struct vmdk_run r;

		switch (e->type) {
		case VMDK_EXT_ZERO: break;
		case VMDK_EXT_FLAT:
			ret = vbd_write_zeroes(e->file, e->flat_off + rel, n,
					       flags);
			break;
		case VMDK_EXT_SPARSE:
			ret = vmdk_sparse_map(e->sp, rel, n, &r);
			if (ret < 0)
				break;
			n = r.len;
			if (r.type == VMDK_G_NORMAL)
				ret = vbd_write_zeroes(e->sp->file, r.host, n,
						       flags);
			else if (r.type == VMDK_G_COMPRESSED)
				ret = written_twice(e->sp,
						    rel / e->sp->grain_size);
			else if (r.type == VMDK_G_UNALLOC && e->sp->parent)
				ret = write_zero_data(e->sp, rel, n);
			break;
		}
		done += n;
	}
	return ret;
}

/* The one compressed extent of a streamOptimized disk, or NULL. */
static struct vmdk_sparse *stream_of(struct vbd *vbd)
{
	struct vmdk *s = vbd->opaque;

	if (s->next != 1 || !s->ext[0].sp || !s->ext[0].sp->compressed ||
	    !s->ext[0].sp->markers)
		return NULL;
	return s->ext[0].sp;
}

int vmdk_compress(struct vbd *vbd, const void *in, size_t len, void *out,
		  size_t out_cap, size_t *out_len)
{
	struct vmdk_sparse *sp = stream_of(vbd);

	if (!sp)
		return -ENOTSUP;
	if (len > sp->grain_size)
		return -EINVAL;
	/* A stream has no plain grains: even data that does not shrink is
	 * stored deflated. */
	return vmdk_deflate(in, len, sp->grain_size, out, out_cap, out_len);
}

int vmdk_pwrite_compressed(struct vbd *vbd, uint64_t offset, const void *buf,
			   size_t len)
{
	struct vmdk_sparse *sp = stream_of(vbd);
	uint64_t g;
	uint32_t gte;
	int ret;

	if (!sp)
		return -ENOTSUP;
	g = offset / sp->grain_size;
	if (offset % sp->grain_size || len > 2 * (size_t)sp->grain_size)
		return -EINVAL;
	pthread_mutex_lock(&sp->lock);
	ret = vmdk_gte_get(sp, g, &gte);
	if (ret == 0 && gte > VMDK_GTE_ZEROED)
		ret = written_twice(sp, g);
	else if (ret == 0)
		ret = vmdk_stream_append(sp, g, buf, len);
	pthread_mutex_unlock(&sp->lock);
	return ret;
}
