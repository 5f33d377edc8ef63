/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 driver: open, reads through the L1/L2 tables with zero,
 * compressed and backing-file clusters, block status, info and probing.
 * Writing is in qcow2-write.c and qcow2-refcount.c.
 *
 * The image file itself is a raw vbd under this one, and the backing
 * file another vbd of any format: layers stack, and each takes its own
 * locks.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "../common/log.h"
#include "qcow2-check.h"
#include "qcow2-create.h"
#include "qcow2-measure.h"
#include "qcow2-snapshot.h"
#include "qcow2.h"

#define HEADER_PROBE 4096

static struct qcow2 *qcow2_of(struct vbd *vbd)
{
	return vbd->opaque;
}

/* Open. */

static int read_header(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp)
{
	size_t len = (size_t)VS_MIN(s->file_size, (uint64_t)HEADER_PROBE);
	autofree uint8_t *buf = malloc(HEADER_PROBE);
	uint32_t cbits;
	int ret;

	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = len ? vbd_pread(s->file, 0, buf, len) : 0;
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the header at "
					  "offset 0",
					  vbd->filename);
	/* Extensions and the backing name may fill the whole first
	 * cluster: read all of it once cluster_bits is known sane. */
	cbits = len >= 24 ? (uint32_t)buf[20] << 24 | (uint32_t)buf[21] << 16 |
				    (uint32_t)buf[22] << 8 | buf[23]
			  : 0;
	if (cbits > 12 && cbits <= QCOW2_MAX_CLUSTER_BITS &&
	    s->file_size > HEADER_PROBE) {
		uint8_t *big;

		len = (size_t)VS_MIN(s->file_size, (uint64_t)1 << cbits);
		big = realloc(buf, len);
		if (!big)
			return vs_error_set(errp, ENOMEM, "out of memory");
		buf = big;
		ret = vbd_pread(s->file, 0, buf, len);
		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot read the first "
						  "cluster",
						  vbd->filename);
	}
	return qcow2_header_parse(buf, len, s->file_size, vbd->filename, &s->m,
				  errp);
}

/* Relative backing names are relative to the image's directory. */
static char *backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - image), image, name) < 0)
		return NULL;
	return p;
}

static int open_backing(struct vbd *vbd, struct qcow2 *s,
			struct vs_error **errp)
{
	const char *name = s->m.backing_file;
	autofree char *path = NULL;
	unsigned flags;
	int ret;

	if (!strncmp(name, "json:", 5) || strstr(name, "://"))
		return vs_error_set(errp, ENOTSUP,
				    "%s: backing file '%s' is not a plain "
				    "file name (not supported)",
				    vbd->filename, name);
	path = backing_path(vbd->filename, name);
	if (!path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	/*
	 * Read-only, and locked as any reader locks: a writer of the
	 * backing file would change what this image reads, so it is kept
	 * out, as QEMU keeps it out.  Only when the user asked for this
	 * image to be shared (-U) is the backing file shared too.  No
	 * O_DIRECT: the raw layer below would need 4 KiB-aligned file
	 * sizes, which qcow2 files do not have.
	 */
	flags = VBD_O_RDONLY | (vbd->flags & (VBD_O_SHARE | VBD_O_NOLOCK));
	ret = vbd_open_file(path, s->m.backing_format, flags, &s->backing,
			    errp);
	/* A chain too deep or looping is named by the image that closes
	 * it and by the top one, not again by each image in between. */
	if (ret < 0 && (ret != -ELOOP || vbd_chain_depth() == 1))
		vs_error_prefix(errp, "%s: cannot open its backing file",
				vbd->filename);
	return ret;
}

/* Entry sizes and units, from the header. */
static void qcow2_geometry(struct qcow2 *s)
{
	bool ext = s->m.h.incompatible & QCOW2_INCOMPAT_EXTENDED_L2;

	s->l2_words = ext ? 2 : 1;
	s->l2_bits = s->cluster_bits - 3 - (ext ? 1 : 0);
	s->sc_bits = s->cluster_bits - (ext ? 5 : 0);
}

static void qcow2_free(struct qcow2 *s)
{
	vbd_close(s->backing);
	vbd_close(s->file);
	qcow2_l2_cache_free(s);
	qcow2_refcount_free(s);
	if (s->writable)
		pthread_mutex_destroy(&s->w_lock);
	qcow2_gate_destroy(&s->gate);
	qcow2_lane_destroy(s);
	free(s->l1);
	qcow2_meta_free(&s->m);
	free(s);
}

static int open_layers(struct vbd *vbd, const struct vbd_spec *spec,
		       struct qcow2 *s, struct vs_error **errp)
{
	int ret;

	ret = vbd_open_host_file(vbd, spec, vbd->filename, &s->file, errp);
	if (ret < 0)
		return ret;
	s->file_size = vbd_size(s->file);
	ret = read_header(vbd, s, errp);
	if (ret < 0)
		return ret;
	s->cluster_bits = s->m.h.cluster_bits;
	s->cluster_size = s->m.cluster_size;
	vbd->cluster_size = s->cluster_size;
	qcow2_geometry(s);
	s->l1_size = s->m.h.l1_size;
	if (qcow2_l2_cache_init(s, spec->l2_cache_size) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = qcow2_l1_load(s, vbd->filename, errp);
	/* A broken snapshot table is refused, except for check -r. */
	if (ret == 0 && !(vbd->flags & VBD_O_REPAIR))
		ret = qcow2_snaps_check(s, vbd->filename, errp);
	if (ret == 0 && s->m.backing_file && !(vbd->flags & VBD_O_NO_BACKING))
		ret = open_backing(vbd, s, errp);
	if (ret == 0 && !vbd->readonly)
		ret = qcow2_open_write(vbd, s, errp);
	return ret;
}

static int qcow2_open(struct vbd *vbd, const struct vbd_spec *spec,
		      struct vs_error **errp)
{
	struct qcow2 *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return vs_error_set(errp, ENOMEM, "out of memory");
	s->filename = vbd->filename;
	pthread_mutex_init(&s->l2_lock, NULL);
	if (qcow2_gate_init(&s->gate) < 0 || qcow2_lane_init(s) < 0) {
		qcow2_gate_destroy(&s->gate);
		pthread_mutex_destroy(&s->l2_lock);
		free(s);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	/* On the chain while its backing files open, so that a loop back
	 * to it shows. */
	ret = vbd_chain_enter(vbd->filename, errp);
	if (ret == 0) {
		ret = open_layers(vbd, spec, s, errp);
		vbd_chain_leave();
	}
	if (ret < 0) {
		qcow2_free(s);
		return ret;
	}
	vbd->size = s->m.h.size;
	vbd->opaque = s;
	if (s->m.h.incompatible & QCOW2_INCOMPAT_CORRUPT)
		vs_warn("%s: the image is marked corrupt; reading it anyway "
			"(read-only)",
			vbd->filename);
	return 0;
}

int qcow2_meta_reload(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp)
{
	struct qcow2_meta old = s->m;
	int ret;

	s->file_size = vbd_size(s->file);
	memset(&s->m, 0, sizeof(s->m));
	ret = read_header(vbd, s, errp);
	if (ret < 0) {
		qcow2_meta_free(&s->m);
		s->m = old;
		return ret;
	}
	qcow2_meta_free(&old);
	pthread_mutex_lock(&s->l2_lock);
	qcow2_cache_drop_all(&s->l2c);
	pthread_mutex_unlock(&s->l2_lock);
	free(s->l1);
	s->l1 = NULL;
	s->l1_size = s->m.h.l1_size;
	ret = qcow2_l1_load(s, vbd->filename, errp);
	if (ret == 0 && s->writable)
		ret = qcow2_refcount_reload(s, vbd->filename, errp);
	return ret;
}

static void qcow2_close(struct vbd *vbd)
{
	qcow2_close_write(vbd, qcow2_of(vbd));
	qcow2_free(qcow2_of(vbd));
}

/* Reads. */

/*
 * Read `n` bytes at `pos` of `src` (of `src_size` bytes) into the list
 * from `skip` on; bytes past its end read as zeros.
 */
static int read_layer(struct vbd *src, uint64_t src_size, uint64_t pos,
		      const struct iovec *iov, int iovcnt, size_t skip,
		      size_t n, struct iovec *part)
{
	size_t avail = pos < src_size
			       ? (size_t)VS_MIN((uint64_t)n, src_size - pos)
			       : 0;
	int cnt, ret;

	if (avail) {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, skip, avail);
		if (cnt < 0)
			return -EIO;
		ret = vbd_preadv(src, pos, part, cnt);
		if (ret < 0)
			return ret;
	}
	if (avail < n)
		vs_iov_memset(iov, iovcnt, skip + avail, 0, n - avail);
	return 0;
}

static int read_compressed(struct vbd *vbd, struct qcow2 *s,
			   const struct qcow2_run *r, uint64_t guest_off,
			   const struct iovec *iov, int iovcnt, size_t skip,
			   size_t n)
{
	size_t clen = (size_t)VS_MIN(r->csize, s->file_size - r->host);
	autofree uint8_t *cbuf = malloc(clen);
	autofree uint8_t *out = malloc(s->cluster_size);
	int ret;

	if (!cbuf || !out)
		return -ENOMEM;
	ret = vbd_pread(s->file, r->host, cbuf, clen);
	if (ret < 0)
		return ret;
	ret = qcow2_decompress(s, cbuf, clen, out, s->cluster_size);
	if (ret == -EIO) {
		__atomic_store_n(&s->corrupt, true, __ATOMIC_RELAXED);
		vs_log(VS_LOG_ERROR, "qcow2",
		       "%s: compressed cluster at host offset 0x%" PRIx64
		       " (%" PRIu64 " bytes) for guest offset %" PRIu64
		       " does not decompress to one cluster",
		       vbd->filename, r->host, r->csize, guest_off);
	}
	if (ret < 0)
		return ret;
	vs_iov_from_buf(iov, iovcnt, skip,
			out + (guest_off & (s->cluster_size - 1)), n);
	return 0;
}

int qcow2_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		 int iovcnt)
{
	struct qcow2 *s = qcow2_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	unsigned epoch;
	int ret = 0;

	if (!part)
		return -ENOMEM;
	/* A cluster found here stays ours until it is read. */
	epoch = qcow2_gate_enter(&s->gate);
	while (done < len && ret == 0) {
		uint64_t pos = offset + done;
		struct qcow2_run r;
		size_t n;

		ret = qcow2_map(s, vbd->filename, pos, len - done, &r);
		if (ret < 0)
			break;
		n = (size_t)r.len;
		switch (r.type) {
		case QCOW2_ZERO: vs_iov_memset(iov, iovcnt, done, 0, n); break;
		case QCOW2_UNALLOCATED:
			if (s->backing)
				ret = read_layer(s->backing,
						 vbd_size(s->backing), pos, iov,
						 iovcnt, done, n, part);
			else
				vs_iov_memset(iov, iovcnt, done, 0, n);
			break;
		case QCOW2_NORMAL:
			ret = read_layer(s->file, s->file_size, r.host, iov,
					 iovcnt, done, n, part);
			break;
		case QCOW2_COMPRESSED:
			ret = read_compressed(vbd, s, &r, pos, iov, iovcnt,
					      done, n);
			break;
		}
		done += n;
	}
	qcow2_gate_leave(&s->gate, epoch);
	return ret;
}

/* Status, info, probe. */

/*
 * In an image preallocated with metadata only, a data cluster may be a
 * hole in the host file: ask the file, as QEMU does for such images, so
 * that map and compare see zeros where it does.  Past the end of the
 * file, or in a hole that reaches it, everything reads as zeros.
 */
static int prealloc_zeros(struct qcow2 *s, struct vbd_extent *ext)
{
	uint64_t host = (uint64_t)ext->host_offset, fsize = vbd_size(s->file);
	int state = __atomic_load_n(&s->meta_prealloc, __ATOMIC_RELAXED);
	struct vbd_extent f;
	int ret;

	if (!state) {
		state = qcow2_detect_metadata_prealloc(s) ? 2 : 1;
		__atomic_store_n(&s->meta_prealloc, state, __ATOMIC_RELAXED);
	}
	if (state != 2)
		return 0;
	if (host >= fsize) {
		ext->flags |= VBD_STATUS_ZERO;
		return 0;
	}
	ret = vbd_block_status(s->file, host, VS_MIN(ext->length, fsize - host),
			       &f);
	if (ret < 0)
		return 0; /* only a hint: the data is there all the same */
	if ((f.flags & VBD_STATUS_ZERO) && host + f.length == fsize) {
		ext->flags |= VBD_STATUS_ZERO;
		return 0;
	}
	ext->length = VS_MIN(ext->length, f.length);
	ext->flags |= f.flags & VBD_STATUS_ZERO;
	return 0;
}

static int qcow2_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
			      struct vbd_extent *ext)
{
	struct qcow2 *s = qcow2_of(vbd);
	struct qcow2_run r;
	uint64_t bsize;
	int ret = qcow2_map(s, vbd->filename, offset, len, &r);

	if (ret < 0)
		return ret;
	*ext = (struct vbd_extent){.length = r.len, .host_offset = -1};
	switch (r.type) {
	case QCOW2_NORMAL:
		ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED;
		ext->host_offset = (int64_t)r.host;
		ret = prealloc_zeros(s, ext);
		break;
	case QCOW2_COMPRESSED:
		ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED;
		break;
	case QCOW2_ZERO:
		ext->flags = VBD_STATUS_ZERO | VBD_STATUS_ALLOCATED;
		if (r.host)
			ext->host_offset = (int64_t)r.host;
		break;
	case QCOW2_UNALLOCATED:
		/* Zeros decided here (no backing file, or past the end of a
		 * shorter one) are depth 0, as qemu-img map has them. */
		ext->flags = VBD_STATUS_ZERO;
		if (r.host)
			ext->host_offset = (int64_t)r.host;
		if (!s->backing)
			break;
		bsize = vbd_size(s->backing);
		if (offset >= bsize)
			break;
		ret = vbd_block_status(s->backing, offset,
				       VS_MIN(r.len, bsize - offset), ext);
		ext->depth++;
		break;
	}
	return ret;
}

static void add_bool(struct json_object *o, const char *key, bool v)
{
	json_object_object_add(o, key, json_object_new_boolean(v));
}

static int qcow2_get_info(struct vbd *vbd, struct vbd_info *info,
			  struct vs_error **errp)
{
	struct qcow2 *s = qcow2_of(vbd);
	const struct qcow2_header *h = &s->m.h;
	struct json_object *o = json_object_new_object(), *bitmaps;
	bool corrupt = (h->incompatible & QCOW2_INCOMPAT_CORRUPT) ||
		       __atomic_load_n(&s->corrupt, __ATOMIC_RELAXED);

	if (!o)
		return vs_error_set(errp, ENOMEM, "out of memory");
	info->cluster_size = s->cluster_size;
	info->backing_file = s->m.backing_file;
	info->backing_format = s->m.backing_format;
	info->dirty = h->incompatible & QCOW2_INCOMPAT_DIRTY;
	json_object_object_add(
		o, "compat",
		json_object_new_string(h->version == 2 ? "0.10" : "1.1"));
	json_object_object_add(
		o, "compression-type",
		json_object_new_string(h->compression_type ==
						       QCOW2_COMPRESSION_ZSTD
					       ? "zstd"
					       : "zlib"));
	if (h->version >= 3)
		add_bool(o, "lazy-refcounts",
			 h->compatible & QCOW2_COMPAT_LAZY_REFCOUNTS);
	if (qcow2_bitmaps_info(s, vbd->filename, &bitmaps, errp) < 0) {
		json_object_put(o);
		return -EIO;
	}
	if (bitmaps)
		json_object_object_add(o, "bitmaps", bitmaps);
	json_object_object_add(o, "refcount-bits",
			       json_object_new_int(1 << h->refcount_order));
	if (h->version >= 3) {
		add_bool(o, "corrupt", corrupt);
		add_bool(o, "extended-l2",
			 h->incompatible & QCOW2_INCOMPAT_EXTENDED_L2);
	}
	info->specific = o;
	return 0;
}

static int qcow2_probe(const uint8_t *buf, size_t len, const char *filename)
{
	uint32_t version;

	if (len < 8 || memcmp(buf, "QFI\xfb", 4))
		return 0;
	version = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
		  (uint32_t)buf[6] << 8 | buf[7];
	/* Other versions are still claimed, so that opening them says
	 * which version is not supported rather than "raw". */
	return version == 2 || version == 3 ? 100 : 50;
}

const struct vbd_driver vbd_driver_qcow2 = {
	.name = "qcow2",
	.names_other_files = true,
	.probe = qcow2_probe,
	.create = qcow2_create,
	.open = qcow2_open,
	.close = qcow2_close,
	.preadv = qcow2_preadv,
	.pwritev = qcow2_pwritev,
	.flush = qcow2_flush,
	.write_zeroes = qcow2_write_zeroes,
	.discard = qcow2_discard,
	.submit = qcow2_submit,
	.compress = qcow2_drv_compress,
	.pwrite_compressed = qcow2_pwrite_compressed,
	.copy_from_fd = qcow2_copy_from_fd,
	.block_status = qcow2_block_status,
	.get_info = qcow2_get_info,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.check = qcow2_check,
	.truncate = qcow2_truncate,
	.change_backing = qcow2_change_backing,
	.make_empty = qcow2_make_empty,
};
