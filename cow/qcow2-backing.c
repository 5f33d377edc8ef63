/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Changing the backing file a qcow2 image records (vbd_change_backing):
 * its name and the backing format header extension.
 *
 * QEMU's layout is kept: the header, then the extensions (the backing
 * format first, then every other one as found, unknown ones included),
 * the end marker, and the backing file name right after it, all inside
 * the first cluster.  The new header area is built in memory and goes
 * out in one write of the sectors that hold the old or the new one, as
 * QEMU writes it.  Where it all fits in the first 512-byte sector (no
 * feature name table), a disk writes it whole or not at all, so a crash
 * leaves the old name or the new one; a longer area (QEMU's feature
 * table takes 392 bytes) relies on the write not being torn, as QEMU
 * does.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "qcow2.h"

/* The longest format name the header parser takes back. */
#define BACKING_FMT_MAX 64

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The header area being rebuilt. */
struct hdr_build {
	uint8_t *buf; /* one cluster, zeroed */
	size_t len, cap;
};

static int put_ext(struct hdr_build *b, uint32_t type, const void *data,
		   uint32_t n)
{
	size_t need = 8 + VS_ALIGN_UP((size_t)n, 8);

	if (need > b->cap - b->len)
		return -ENOSPC;
	put32(b->buf + b->len, type);
	put32(b->buf + b->len + 4, n);
	memcpy(b->buf + b->len + 8, data, n);
	b->len += need;
	return 0;
}

/*
 * Copy the extensions of the old header area `old` (as validated at
 * open: each inside the cluster, before the old name) except the backing
 * format; *old_end is where the old area ended (extensions and name).
 */
static int copy_exts(const struct qcow2 *s, const uint8_t *old,
		     struct hdr_build *b, size_t *old_end)
{
	const struct qcow2_header *h = &s->m.h;
	size_t end = s->cluster_size, off = h->header_length;
	int ret;

	if (h->backing_file_offset && h->backing_file_offset < end)
		end = (size_t)h->backing_file_offset;
	while (off + 8 <= end) {
		uint32_t type = get32(old + off), n = get32(old + off + 4);

		if (type == QCOW2_EXT_END) {
			off += 8;
			break;
		}
		if (n > end - off - 8)
			return -EIO;
		if (type != QCOW2_EXT_BACKING_FORMAT) {
			ret = put_ext(b, type, old + off + 8, n);
			if (ret < 0)
				return ret;
		}
		off += 8 + VS_ALIGN_UP((size_t)n, 8);
	}
	*old_end = VS_MIN(off, (size_t)s->cluster_size);
	if (h->backing_file_offset)
		*old_end = VS_MAX(*old_end, (size_t)(h->backing_file_offset +
						     h->backing_file_size));
	return 0;
}

/* Build the new header area: *wlen is how much of it to write. */
static int build(struct qcow2 *s, const uint8_t *old, const char *backing,
		 const char *fmt, struct hdr_build *b, size_t *wlen)
{
	size_t name_len = backing ? strlen(backing) : 0, old_end = 0;
	int ret = 0;

	memcpy(b->buf, old, s->m.h.header_length);
	b->len = s->m.h.header_length;
	if (fmt)
		ret = put_ext(b, QCOW2_EXT_BACKING_FORMAT, fmt,
			      (uint32_t)strlen(fmt));
	if (ret == 0)
		ret = copy_exts(s, old, b, &old_end);
	if (ret < 0)
		return ret;
	/* The end marker: eight zero bytes, already there. */
	if (8 + name_len > b->cap - b->len)
		return -ENOSPC;
	b->len += 8;
	put64(b->buf + 8, backing ? b->len : 0);
	put32(b->buf + 16, (uint32_t)name_len);
	memcpy(b->buf + b->len, backing ? backing : "", name_len);
	b->len += name_len;
	*wlen = VS_MIN(VS_ALIGN_UP(VS_MAX(b->len, old_end), (size_t)512),
		       b->cap);
	return 0;
}

static int check_names(struct vbd *vbd, const char *backing, const char *fmt,
		       struct vs_error **errp)
{
	if (backing && strlen(backing) > QCOW2_MAX_BACKING_NAME)
		return vs_error_set(errp, EINVAL,
				    "%s: backing file name '%.40s...' is "
				    "%zu bytes long, more than the %d a qcow2 "
				    "header holds",
				    vbd->filename, backing, strlen(backing),
				    QCOW2_MAX_BACKING_NAME);
	if (fmt && (!*fmt || strlen(fmt) > BACKING_FMT_MAX))
		return vs_error_set(errp, EINVAL,
				    "%s: backing format '%s' is not a format "
				    "name",
				    vbd->filename, fmt);
	return 0;
}

static int rewrite_header(struct vbd *vbd, struct qcow2 *s, const char *backing,
			  const char *fmt, struct vs_error **errp)
{
	size_t cs = s->cluster_size, wlen = 0;
	autofree uint8_t *old = calloc(1, cs);
	struct hdr_build b = {.buf = calloc(1, cs), .cap = cs};
	int ret;

	if (!old || !b.buf) {
		free(b.buf);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	ret = vbd_pread(s->file, 0, old,
			(size_t)VS_MIN((uint64_t)cs, s->file_size));
	if (ret == 0)
		ret = build(s, old, backing, fmt, &b, &wlen);
	if (ret == 0)
		ret = qcow2_file_pwrite(s, 0, b.buf, wlen);
	if (ret == 0)
		ret = vbd_flush(s->file);
	free(b.buf);
	if (ret == -ENOSPC)
		return vs_error_set(errp, ENOSPC,
				    "%s: the header, its extensions and the "
				    "backing file name do not fit in the first "
				    "cluster (%zu bytes)",
				    vbd->filename, cs);
	if (ret == -EIO)
		return vs_error_set(errp, EIO,
				    "%s: a header extension runs past the "
				    "header area",
				    vbd->filename);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot rewrite the header",
					  vbd->filename);
	return 0;
}

int qcow2_change_backing(struct vbd *vbd, const char *backing,
			 const char *backing_fmt, struct vs_error **errp)
{
	struct qcow2 *s = vbd->opaque;
	int ret = check_names(vbd, backing, backing_fmt, errp);

	if (ret < 0)
		return ret;
	if (!s->writable)
		return vs_error_set(errp, EROFS, "%s: opened read-only",
				    vbd->filename);
	if (__atomic_load_n(&s->corrupt, __ATOMIC_RELAXED) ||
	    (s->m.h.incompatible & QCOW2_INCOMPAT_CORRUPT))
		return vs_error_set(errp, EIO,
				    "%s: the image is corrupt; run 'vstor img "
				    "check -r all' before changing it",
				    vbd->filename);
	pthread_mutex_lock(&s->w_lock);
	ret = qcow2_meta_flush(s);
	if (ret < 0)
		vs_error_set_errno(errp, ret, "%s: cannot flush",
				   vbd->filename);
	else
		ret = rewrite_header(vbd, s, backing, backing_fmt, errp);
	/* The header as it now is on disk: the new name and format. */
	if (ret == 0)
		ret = qcow2_meta_reload(vbd, s, errp);
	pthread_mutex_unlock(&s->w_lock);
	return ret;
}
