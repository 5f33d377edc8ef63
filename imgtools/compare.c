/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/iov.h"
#include "../common/progress.h"
#include "../vbd/vbd.h"
#include "compare.h"

/* The most read from each side at once: large reads keep the drivers
 * efficient, and qemu-img reads no more either. */
#define CMP_CHUNK (2u << 20)
/* The unit in which qemu-img locates a difference. */
#define CMP_SECTOR 512u

struct cmp {
	struct vbd *vbd[2];
	/* The last extent each side reported, from `last_off`: chunks are
	 * at most CMP_CHUNK, and asking again for the rest of a long extent
	 * would walk the same metadata again for the same answer. */
	struct vbd_extent last[2];
	uint64_t last_off[2];
	uint8_t *buf[2];
	struct vs_progress *progress;
	uint64_t total; /* the longer size, for progress */
	struct img_compare_result *res;
};

/* Block status of one side, with "reaches the end" as a status of its
 * own: strict mode compares it too, as qemu-img's EOF flag. */
struct side {
	struct vbd_extent ext;
	bool eof;
};

static unsigned strict_flags(const struct side *s)
{
	return s->ext.flags | (s->ext.host_offset >= 0 ? 1u << 8 : 0) |
	       (s->eof ? 1u << 9 : 0);
}

static int status(struct cmp *c, int i, uint64_t off, uint64_t end,
		  struct side *s, struct vs_error **errp)
{
	struct vbd *vbd = c->vbd[i];
	struct vbd_extent *last = &c->last[i];
	uint64_t skip = off - c->last_off[i];
	int ret = 0;

	if (last->length && off >= c->last_off[i] && skip < last->length) {
		s->ext = *last;
		s->ext.length -= skip;
		if (s->ext.host_offset >= 0)
			s->ext.host_offset += (int64_t)skip;
	} else {
		ret = vbd_block_status(vbd, off, end - off, &s->ext);
		*last = s->ext;
		c->last_off[i] = off;
	}
	if (ret < 0) {
		last->length = 0;
		c->res->verdict = IMG_CMP_ERR_STATUS;
		return vs_error_set_errno(
			errp, -ret,
			"%s: block status failed at offset %" PRIu64,
			vbd_filename(vbd), off);
	}
	s->eof = off + s->ext.length == vbd_size(vbd);
	return 0;
}

static int read_side(struct cmp *c, int i, uint64_t off, size_t len,
		     struct vs_error **errp)
{
	struct vbd *vbd = c->vbd[i];
	int ret = vbd_pread(vbd, off, c->buf[i], len);

	if (ret < 0) {
		c->res->verdict = IMG_CMP_ERR_READ;
		return vs_error_set_errno(
			errp, -ret, "%s: error while reading offset %" PRIu64,
			vbd_filename(vbd), off);
	}
	return 0;
}

/* The first sector of the first `len` bytes where the buffers differ,
 * or -1. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i += CMP_SECTOR) {
		size_t n = len - i < CMP_SECTOR ? len - i : CMP_SECTOR;

		if (memcmp(a + i, b + i, n))
			return (int64_t)i;
	}
	return -1;
}

static int64_t first_nonzero(const uint8_t *a, size_t len)
{
	for (size_t i = 0; i < len; i += CMP_SECTOR) {
		size_t n = len - i < CMP_SECTOR ? len - i : CMP_SECTOR;

		if (!vs_buf_is_zero(a + i, n))
			return (int64_t)i;
	}
	return -1;
}

static void mismatch(struct cmp *c, enum img_compare_verdict v, uint64_t off)
{
	c->res->verdict = v;
	c->res->offset = off;
}

/* Side i holds data where the other side has none: it must read as
 * zeros.  Returns 1 on a mismatch, 0 or -errno. */
static int must_be_zero(struct cmp *c, int i, uint64_t off, size_t len,
			struct vs_error **errp)
{
	int64_t at;
	int ret = read_side(c, i, off, len, errp);

	if (ret < 0)
		return ret;
	at = first_nonzero(c->buf[i], len);
	if (at < 0)
		return 0;
	mismatch(c, IMG_CMP_CONTENT, off + (uint64_t)at);
	return 1;
}

/* The second side's read, running while the first side is read. */
struct pending {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int ret;
};

static void pending_done(struct vbd_req *req, int ret)
{
	struct pending *p = req->opaque;

	pthread_mutex_lock(&p->lock);
	p->ret = ret;
	p->done = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Both sides are read at once: with two files on two disks, or a cold
 * cache, the reads overlap instead of adding up. */
static int both_data(struct cmp *c, uint64_t off, size_t len,
		     struct vs_error **errp)
{
	struct pending p = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct iovec iov = {.iov_base = c->buf[1], .iov_len = len};
	struct vbd_req req = {
		.op = VBD_OP_READ,
		.offset = off,
		.iov = &iov,
		.iovcnt = 1,
		.cb = pending_done,
		.opaque = &p,
	};
	int64_t at;
	int ret;

	vbd_submit(c->vbd[1], &req);
	ret = read_side(c, 0, off, len, errp);
	pthread_mutex_lock(&p.lock);
	while (!p.done)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	if (ret < 0)
		return ret;
	if (p.ret < 0) {
		c->res->verdict = IMG_CMP_ERR_READ;
		return vs_error_set_errno(
			errp, -p.ret, "%s: error while reading offset %" PRIu64,
			vbd_filename(c->vbd[1]), off);
	}
	at = first_diff(c->buf[0], c->buf[1], len);
	if (at < 0)
		return 0;
	mismatch(c, IMG_CMP_CONTENT, off + (uint64_t)at);
	return 1;
}

/* The common part [0, end).  Returns 1 on a difference, 0, or -errno. */
static int compare_common(struct cmp *c, uint64_t end, bool strict,
			  struct vs_error **errp)
{
	uint64_t off = 0;

	while (off < end) {
		struct side s[2];
		uint64_t n;
		bool alloc[2];
		/* Each side is asked up to its own end, as qemu-img asks:
		 * that decides where strict mode sees its end. */
		int ret = status(c, 0, off, vbd_size(c->vbd[0]), &s[0], errp);

		if (ret == 0)
			ret = status(c, 1, off, vbd_size(c->vbd[1]), &s[1],
				     errp);
		if (ret < 0)
			return ret;
		n = s[0].ext.length < s[1].ext.length ? s[0].ext.length
						      : s[1].ext.length;
		if (strict && strict_flags(&s[0]) != strict_flags(&s[1])) {
			mismatch(c, IMG_CMP_STATUS, off);
			return 1;
		}
		alloc[0] = s[0].ext.flags & VBD_STATUS_ALLOCATED;
		alloc[1] = s[1].ext.flags & VBD_STATUS_ALLOCATED;
		if ((s[0].ext.flags & s[1].ext.flags) & VBD_STATUS_ZERO) {
			ret = 0; /* both zeros: nothing to read */
		} else if (alloc[0] == alloc[1]) {
			if (n > CMP_CHUNK)
				n = CMP_CHUNK;
			ret = alloc[0] ? both_data(c, off, (size_t)n, errp) : 0;
		} else {
			if (n > CMP_CHUNK)
				n = CMP_CHUNK;
			ret = must_be_zero(c, alloc[0] ? 0 : 1, off, (size_t)n,
					   errp);
		}
		if (ret)
			return ret;
		off += n;
		vs_progress_update(c->progress, off, c->total);
	}
	return 0;
}

/* The tail of the longer side i, from `off`: zeros or a mismatch. */
static int compare_tail(struct cmp *c, int i, uint64_t off,
			struct vs_error **errp)
{
	uint64_t end = vbd_size(c->vbd[i]);

	while (off < end) {
		struct side s;
		uint64_t n;
		int ret = status(c, i, off, end, &s, errp);

		if (ret < 0)
			return ret;
		n = s.ext.length;
		if ((s.ext.flags & VBD_STATUS_ALLOCATED) &&
		    !(s.ext.flags & VBD_STATUS_ZERO)) {
			if (n > CMP_CHUNK)
				n = CMP_CHUNK;
			ret = must_be_zero(c, i, off, (size_t)n, errp);
			if (ret)
				return ret;
		}
		off += n;
		vs_progress_update(c->progress, off, c->total);
	}
	return 0;
}

static int run(struct cmp *c, bool strict, struct vs_error **errp)
{
	uint64_t size0 = vbd_size(c->vbd[0]), size1 = vbd_size(c->vbd[1]);
	uint64_t common = size0 < size1 ? size0 : size1;
	int ret;

	if (strict && size0 != size1) {
		mismatch(c, IMG_CMP_SIZE, common);
		return 0;
	}
	ret = compare_common(c, common, strict, errp);
	if (ret)
		return ret < 0 ? ret : 0;
	if (size0 != size1) {
		c->res->size_mismatch = true;
		ret = compare_tail(c, size0 > size1 ? 0 : 1, common, errp);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	c->res->verdict = IMG_CMP_IDENTICAL;
	return 0;
}

int img_compare(struct vbd *a, struct vbd *b, bool strict,
		struct vs_progress *progress, struct img_compare_result *res,
		struct vs_error **errp)
{
	struct cmp c = {
		.vbd = {a, b},
		.progress = progress,
		.res = res,
	};
	int ret;

	memset(res, 0, sizeof(*res));
	c.total = vbd_size(a) > vbd_size(b) ? vbd_size(a) : vbd_size(b);
	/* Page-aligned: the kernel copies from the page cache into an
	 * unaligned buffer several times slower. */
	c.buf[0] = aligned_alloc(4096, CMP_CHUNK);
	c.buf[1] = aligned_alloc(4096, CMP_CHUNK);
	if (!c.buf[0] || !c.buf[1]) {
		free(c.buf[0]);
		free(c.buf[1]);
		res->verdict = IMG_CMP_ERR_READ;
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	ret = run(&c, strict, errp);
	free(c.buf[0]);
	free(c.buf[1]);
	return ret;
}
