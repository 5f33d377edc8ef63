/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VMDK driver: open (descriptor, extents), close, reads, block
 * status, info and probing.  Writing is in vmdk-write.c, the sparse
 * extent in vmdk-sparse.c, streams in vmdk-stream.c, creation in
 * vmdk-create.c.
 *
 * Every file is a raw vbd under this one (the descriptor or monolithic
 * file, and each extent file), so each takes its own locks.  Extent
 * names are relative to the descriptor's directory.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/cleanup.h"
#include "../../common/iov.h"
#include "../../common/log.h"
#include "vmdk.h"

/* The createTypes read; others (vmfsSparse, seSparse, raw devices) are
 * refused by name. */
static const char *const create_types[] = {
	"monolithicSparse",
	"monolithicFlat",
	"twoGbMaxExtentSparse",
	"twoGbMaxExtentFlat",
	"streamOptimized",
	"vmfs",
	"vmfsThin",
	"vmfsPreallocated",
	"vmfsEagerZeroedThick",
	"custom",
};

static struct vmdk *vmdk_of(struct vbd *vbd)
{
	return vbd->opaque;
}

static bool known_type(const char *t)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(create_types); i++)
		if (!strcmp(t, create_types[i]))
			return true;
	return false;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Descriptor. */

/* The embedded descriptor of a sparse file, or NULL text when it has
 * none (an extent of a twoGbMaxExtentSparse disk opened by itself). */
static int read_embedded(struct vmdk *s, const struct vmdk_header *h,
			 char **text, size_t *len, struct vs_error **errp)
{
	uint64_t fsize = vbd_size(s->file), off, bytes;
	char *t;
	int ret;

	*text = NULL;
	if (h->desc_offset == 0)
		return 0;
	if (h->desc_size == 0 || h->desc_size > VMDK_MAX_DESC / VMDK_SECTOR)
		return vs_error_set(errp, EINVAL,
				    "%s: descriptor size %" PRIu64
				    " sectors at offset 36 (1 to %u)",
				    s->filename, h->desc_size,
				    VMDK_MAX_DESC / VMDK_SECTOR);
	if (h->desc_offset > fsize / VMDK_SECTOR ||
	    h->desc_size * VMDK_SECTOR > fsize - h->desc_offset * VMDK_SECTOR)
		return vs_error_set(errp, EINVAL,
				    "%s: the descriptor at sector %" PRIu64
				    " (%" PRIu64 " sectors) runs past the end "
				    "of the file (%" PRIu64 " bytes)",
				    s->filename, h->desc_offset, h->desc_size,
				    fsize);
	off = h->desc_offset * VMDK_SECTOR;
	bytes = h->desc_size * VMDK_SECTOR;
	t = calloc(1, bytes + 1);
	if (!t)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_pread(s->file, off, t, bytes);
	if (ret < 0) {
		free(t);
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the descriptor at "
					  "offset 0x%" PRIx64,
					  s->filename, off);
	}
	*text = t;
	*len = bytes;
	return 0;
}

static bool blank(const char *t, size_t len)
{
	for (size_t i = 0; i < len && t[i]; i++)
		if (t[i] != ' ' && t[i] != '\n' && t[i] != '\r' && t[i] != '\t')
			return false;
	return true;
}

/* One SPARSE extent over the whole file. */
static int synth_desc(struct vmdk *s, const struct vmdk_header *h,
		      struct vs_error **errp)
{
	struct vmdk_desc *d = &s->desc;
	const char *base = strrchr(s->filename, '/');

	memset(d, 0, sizeof(*d));
	d->version = 1;
	d->parent_cid = UINT32_MAX;
	d->ext = calloc(1, sizeof(*d->ext));
	d->create_type = strdup("monolithicSparse");
	if (!d->ext || !d->create_type)
		return vs_error_set(errp, ENOMEM, "out of memory");
	d->next = 1;
	d->ext[0].type = VMDK_EXT_SPARSE;
	snprintf(d->ext[0].type_name, sizeof(d->ext[0].type_name), "SPARSE");
	d->ext[0].sectors = h->capacity;
	d->ext[0].file = strdup(base ? base + 1 : s->filename);
	if (!d->ext[0].file)
		return vs_error_set(errp, ENOMEM, "out of memory");
	return 0;
}

/*
 * A sparse file is its own disk, whatever its embedded descriptor's
 * extent line calls it (files get renamed; qemu also reads them so).
 * The descriptor gives the CID, the parent and the createType; one that
 * does not parse is ignored, as it does not say where data is.
 */
static int embedded_desc(struct vmdk *s, const struct vmdk_header *h,
			 const char *text, size_t len, struct vs_error **errp)
{
	struct vs_error *err = NULL;
	struct vmdk_desc d;
	int ret;

	ret = synth_desc(s, h, errp);
	if (ret < 0 || !text || blank(text, len))
		return ret;
	if (vmdk_desc_parse(text, len, s->filename,
			    h->desc_offset * VMDK_SECTOR, &d, &err) < 0) {
		vs_debug("vmdk", "%s: embedded descriptor ignored: %s",
			 s->filename, vs_error_msg(err));
		vs_error_free(err);
		return 0;
	}
	s->desc.cid = d.cid;
	s->desc.parent_cid = d.parent_cid;
	s->desc.version = d.version;
	if (d.create_type) {
		free(s->desc.create_type);
		s->desc.create_type = vs_steal(&d.create_type);
	}
	s->desc.parent_hint = vs_steal(&d.parent_hint);
	vmdk_desc_free(&d);
	return 0;
}

static int read_descriptor(struct vmdk *s, struct vs_error **errp)
{
	uint64_t fsize = vbd_size(s->file);
	uint8_t hdr[VMDK_HEADER_SIZE] = {0};
	autofree char *text = NULL;
	struct vmdk_header h;
	size_t len = 0;
	int ret;

	ret = fsize ? vbd_pread(s->file, 0, hdr,
				(size_t)VS_MIN(fsize, (uint64_t)sizeof(hdr)))
		    : 0;
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the header at "
					  "offset 0",
					  s->filename);
	vmdk_header_decode(hdr, &h);
	if (h.magic == VMDK3_MAGIC)
		return vs_error_set(errp, ENOTSUP,
				    "%s: VMDK version 3 (COWD, vmfsSparse) "
				    "extents are not supported",
				    s->filename);
	if (h.magic == VMDK4_MAGIC) {
		if (fsize < VMDK_HEADER_SIZE)
			return vs_error_set(errp, EINVAL,
					    "%s: the file (%" PRIu64
					    " bytes) is shorter than a sparse "
					    "header",
					    s->filename, fsize);
		ret = read_embedded(s, &h, &text, &len, errp);
		if (ret < 0)
			return ret;
		return embedded_desc(s, &h, text, len, errp);
	}
	/* A descriptor file: small text, first line a comment or key. */
	if (fsize > VMDK_MAX_DESC)
		return vs_error_set(errp, EINVAL,
				    "%s: no VMDK magic at offset 0, and at "
				    "%" PRIu64 " bytes too large for a "
				    "descriptor file (at most %u)",
				    s->filename, fsize, VMDK_MAX_DESC);
	text = calloc(1, fsize + 1);
	if (!text)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = fsize ? vbd_pread(s->file, 0, text, fsize) : 0;
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the descriptor",
					  s->filename);
	ret = vmdk_desc_parse(text, fsize, s->filename, 0, &s->desc, errp);
	if (ret < 0)
		return ret;
	if (!s->desc.create_type)
		return vs_error_set(errp, EINVAL,
				    "%s: the descriptor has no createType",
				    s->filename);
	return 0;
}

/* Extents. */

static int open_flat(struct vmdk *s, struct vmdk_extent *e, unsigned i,
		     const struct vmdk_desc_extent *x, struct vs_error **errp)
{
	uint64_t fsize = vbd_size(e->file);

	e->flat_off = x->offset * VMDK_SECTOR;
	if (e->flat_off > fsize || e->size > fsize - e->flat_off)
		return vs_error_set(errp, EINVAL,
				    "%s: extent %u ('%s'): the file has "
				    "%" PRIu64 " bytes, the descriptor needs "
				    "%" PRIu64 " from offset %" PRIu64,
				    s->filename, i, e->path, fsize, e->size,
				    e->flat_off);
	return 0;
}

static int open_sparse(struct vmdk *s, struct vmdk_extent *e, unsigned i,
		       struct vs_error **errp)
{
	uint8_t hdr[VMDK_HEADER_SIZE];
	uint64_t fsize = vbd_size(e->file);
	int ret;

	if (fsize < VMDK_HEADER_SIZE)
		return vs_error_set(errp, EINVAL,
				    "%s: extent %u ('%s') is %" PRIu64
				    " bytes, shorter than a sparse header",
				    s->filename, i, e->path, fsize);
	ret = vbd_pread(e->file, 0, hdr, sizeof(hdr));
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the header of "
					  "extent %u",
					  e->path, i);
	if (vmdk_le32(hdr) != VMDK4_MAGIC)
		return vs_error_set(errp, EINVAL,
				    "%s: bad magic 0x%08x at offset 0 (extent "
				    "%u of %s should be a sparse extent)",
				    e->path, vmdk_le32(hdr), i, s->filename);
	ret = vmdk_sparse_open(e, hdr, s->writable, errp);
	if (ret < 0)
		return ret;
	if (e->sp->h.capacity * VMDK_SECTOR < e->size)
		return vs_error_set(errp, EINVAL,
				    "%s: capacity %" PRIu64
				    " sectors at offset 12 is less than the "
				    "%" PRIu64 " sectors the descriptor of %s "
				    "gives extent %u",
				    e->path, e->sp->h.capacity,
				    e->size / VMDK_SECTOR, s->filename, i);
	if (e->sp->compressed && !e->sp->markers && s->writable)
		return vs_error_set(errp, ENOTSUP,
				    "%s: compressed grains without markers "
				    "can be read, not written",
				    e->path);
	return 0;
}

static int open_extent(struct vbd *vbd, struct vmdk *s, unsigned i,
		       uint64_t start, const struct vbd_spec *spec,
		       struct vs_error **errp)
{
	const struct vmdk_desc_extent *x = &s->desc.ext[i];
	struct vmdk_extent *e = &s->ext[i];
	int ret;

	e->type = x->type;
	e->start = start;
	e->size = x->sectors * VMDK_SECTOR;
	if (x->type == VMDK_EXT_ZERO)
		return 0;
	e->path = vmdk_relative_path(vbd->filename, x->file);
	if (!e->path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (same_file(e->path, vbd->filename)) {
		e->file = s->file;
	} else {
		/* Extent files sit on the same driver as the descriptor's
		 * file, so that a test's fault injection reaches them. */
		ret = vbd_open_host_file(vbd, spec, e->path, &e->file, errp);
		if (ret < 0) {
			vs_error_prefix(errp, "%s: extent %u", vbd->filename,
					i);
			return ret;
		}
		e->own_file = true;
	}
	return x->type == VMDK_EXT_FLAT ? open_flat(s, e, i, x, errp)
					: open_sparse(s, e, i, errp);
}

static int open_extents(struct vbd *vbd, struct vmdk *s,
			const struct vbd_spec *spec, struct vs_error **errp)
{
	uint64_t start = 0;
	int ret;

	s->ext = calloc(s->desc.next, sizeof(*s->ext));
	if (!s->ext)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (unsigned i = 0; i < s->desc.next; i++) {
		uint64_t bytes = s->desc.ext[i].sectors * VMDK_SECTOR;

		if (bytes > VMDK_MAX_CAPACITY * VMDK_SECTOR - start)
			return vs_error_set(
				errp, EFBIG,
				"%s: the extents add up to more "
				"than %llu sectors",
				vbd->filename,
				(unsigned long long)VMDK_MAX_CAPACITY);
		s->next = i + 1;
		ret = open_extent(vbd, s, i, start, spec, errp);
		if (ret < 0)
			return ret;
		start += bytes;
	}
	vbd->size = start;
	return 0;
}

static void vmdk_free(struct vmdk *s)
{
	for (unsigned i = 0; i < s->next; i++) {
		struct vmdk_extent *e = &s->ext[i];

		vmdk_sparse_close(e->sp);
		if (e->own_file)
			vbd_close(e->file);
		free(e->path);
	}
	free(s->ext);
	vmdk_desc_free(&s->desc);
	vbd_close(s->parent);
	vbd_close(s->file);
	free(s);
}

static int check_desc(struct vbd *vbd, struct vmdk *s, struct vs_error **errp)
{
	const struct vmdk_desc *d = &s->desc;

	if (!known_type(d->create_type))
		return vs_error_set(errp, ENOTSUP,
				    "%s: createType \"%.64s\" is not supported",
				    vbd->filename, d->create_type);
	return 0;
}

/* The grain size when every sparse extent has the same one, else 0. */
static uint32_t common_grain(const struct vmdk *s)
{
	uint32_t g = 0;

	for (unsigned i = 0; i < s->next; i++) {
		const struct vmdk_sparse *sp = s->ext[i].sp;

		if (!sp)
			continue;
		if (g && g != sp->grain_size)
			return 0;
		g = sp->grain_size;
	}
	return g;
}

static int vmdk_open(struct vbd *vbd, const struct vbd_spec *spec,
		     struct vs_error **errp)
{
	struct vmdk *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return vs_error_set(errp, ENOMEM, "out of memory");
	s->filename = vbd->filename;
	s->writable = !vbd->readonly;
	ret = vbd_open_host_file(vbd, spec, vbd->filename, &s->file, errp);
	if (ret < 0) {
		free(s);
		return ret;
	}
	/* On the chain while its parents open, so that a loop shows. */
	ret = vbd_chain_enter(vbd->filename, errp);
	if (ret < 0) {
		vmdk_free(s);
		return ret;
	}
	ret = read_descriptor(s, errp);
	if (ret == 0)
		ret = check_desc(vbd, s, errp);
	if (ret == 0)
		ret = open_extents(vbd, s, spec, errp);
	if (ret == 0 && !(vbd->flags & VBD_O_NO_BACKING) &&
	    (s->desc.parent_hint || s->desc.parent_cid != UINT32_MAX))
		ret = vmdk_parent_open(vbd, s, errp);
	/* A private new image (convert's target) needs no ordering
	 * between the steps of a table write-back. */
	for (unsigned i = 0; ret == 0 && i < s->next; i++)
		if (s->ext[i].sp)
			s->ext[i].sp->unsafe = vbd->flags & VBD_O_UNSAFE;
	vbd_chain_leave();
	if (ret < 0) {
		vmdk_free(s);
		return ret;
	}
	vbd->cluster_size = common_grain(s);
	vbd->opaque = s;
	return 0;
}

static void vmdk_close(struct vbd *vbd)
{
	struct vmdk *s = vmdk_of(vbd);

	if (s->writable && vmdk_flush(vbd) < 0)
		vs_log(VS_LOG_ERROR, "vmdk",
		       "%s: writing back the grain tables at close failed",
		       vbd->filename);
	vmdk_free(s);
}

struct vmdk_extent *vmdk_find_extent(struct vmdk *s, uint64_t off)
{
	unsigned lo = 0, hi = s->next;

	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;

		if (s->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	return &s->ext[lo];
}

/* Reads. */

/* Read `n` bytes at `pos` of `file` into the list from `skip` on;
 * bytes past the end of the file read as zeros. */
static int read_file(struct vbd *file, uint64_t fsize, uint64_t pos,
		     const struct iovec *iov, int iovcnt, size_t skip, size_t n,
		     struct iovec *part)
{
	size_t avail =
		pos < fsize ? (size_t)VS_MIN((uint64_t)n, fsize - pos) : 0;
	int cnt, ret;

	if (avail) {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, skip, avail);
		if (cnt < 0)
			return -EIO;
		ret = vbd_preadv(file, pos, part, cnt);
		if (ret < 0)
			return ret;
	}
	if (avail < n)
		vs_iov_memset(iov, iovcnt, skip + avail, 0, n - avail);
	return 0;
}

static int read_sparse(struct vmdk_sparse *sp, uint64_t rel,
		       const struct iovec *iov, int iovcnt, size_t skip,
		       size_t len, struct iovec *part)
{
	size_t done = 0;
	int ret = 0;

	while (done < len && ret == 0) {
		struct vmdk_run r;
		autofree uint8_t *buf = NULL;
		size_t n;

		ret = vmdk_sparse_map(sp, rel + done, len - done, &r);
		if (ret < 0)
			break;
		n = (size_t)r.len;
		switch (r.type) {
		case VMDK_G_UNALLOC:
			/* A child shows its parent; other disks zeros. */
			if (sp->parent)
				ret = vmdk_parent_read(
					sp->parent, sp->vstart + rel + done,
					iov, iovcnt, skip + done, n, part);
			else
				vs_iov_memset(iov, iovcnt, skip + done, 0, n);
			break;
		case VMDK_G_ZERO:
			vs_iov_memset(iov, iovcnt, skip + done, 0, n);
			break;
		case VMDK_G_NORMAL:
			ret = read_file(sp->file,
					__atomic_load_n(&sp->file_size,
							__ATOMIC_ACQUIRE),
					r.host, iov, iovcnt, skip + done, n,
					part);
			break;
		case VMDK_G_COMPRESSED:
			buf = malloc(n);
			if (!buf)
				return -ENOMEM;
			ret = vmdk_read_compressed(sp, rel + done, r.host, buf,
						   n);
			if (ret == 0)
				vs_iov_from_buf(iov, iovcnt, skip + done, buf,
						n);
			break;
		}
		done += n;
	}
	return ret;
}

static int vmdk_preadv(struct vbd *vbd, uint64_t offset,
		       const struct iovec *iov, int iovcnt)
{
	struct vmdk *s = vmdk_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	int ret = 0;

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
			vs_iov_memset(iov, iovcnt, done, 0, n);
			break;
		case VMDK_EXT_FLAT:
			ret = read_file(e->file, vbd_size(e->file),
					e->flat_off + rel, iov, iovcnt, done, n,
					part);
			break;
		case VMDK_EXT_SPARSE:
			ret = read_sparse(e->sp, rel, iov, iovcnt, done, n,
					  part);
			break;
		}
		done += n;
	}
	return ret;
}

/* Status, info, probe. */

/* A flat extent is data, and zeros where its file has holes (qemu-img
 * map says "data": true, "zero": true there). */
static int flat_status(struct vmdk_extent *e, uint64_t rel,
		       struct vbd_extent *ext)
{
	struct vbd_extent f;
	int ret = vbd_block_status(e->file, e->flat_off + rel, ext->length, &f);

	if (ret < 0)
		return ret;
	ext->length = f.length;
	ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED |
		     (f.flags & VBD_STATUS_ZERO);
	ext->host_offset = (int64_t)(e->flat_off + rel);
	return 0;
}

/* An unallocated run of a child: what its parent says, one level down. */
static int parent_status(struct vbd *parent, uint64_t offset, uint64_t len,
			 struct vbd_extent *ext)
{
	uint64_t psize = vbd_size(parent);
	int ret;

	ext->depth = 1;
	if (offset >= psize)
		return 0; /* past a smaller parent: zeros */
	ret = vbd_block_status(parent, offset, VS_MIN(len, psize - offset),
			       ext);
	ext->depth++;
	return ret;
}

static int vmdk_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
			     struct vbd_extent *ext)
{
	struct vmdk *s = vmdk_of(vbd);
	struct vmdk_extent *e = vmdk_find_extent(s, offset);
	uint64_t rel = offset - e->start;
	struct vmdk_run r;
	int ret;

	*ext = (struct vbd_extent){.length = VS_MIN(len, e->size - rel),
				   .host_offset = -1};
	switch (e->type) {
	case VMDK_EXT_ZERO:
		ext->flags = VBD_STATUS_ZERO | VBD_STATUS_ALLOCATED;
		return 0;
	case VMDK_EXT_FLAT: return flat_status(e, rel, ext);
	case VMDK_EXT_SPARSE: break;
	}
	ret = vmdk_sparse_map(e->sp, rel, ext->length, &r);
	if (ret < 0)
		return ret;
	ext->length = r.len;
	switch (r.type) {
	case VMDK_G_UNALLOC:
		ext->flags = VBD_STATUS_ZERO;
		if (s->parent)
			return parent_status(s->parent, offset, r.len, ext);
		break;
	case VMDK_G_ZERO:
		ext->flags = VBD_STATUS_ZERO | VBD_STATUS_ALLOCATED;
		break;
	case VMDK_G_NORMAL:
		ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED;
		ext->host_offset = (int64_t)r.host;
		break;
	case VMDK_G_COMPRESSED:
		ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED;
		break;
	}
	return 0;
}

static void add(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static struct json_object *extent_info(struct vmdk *s,
				       const struct vmdk_extent *e,
				       const struct vmdk_desc_extent *x)
{
	struct json_object *o = json_object_new_object();
	const char *name = e->path ? e->path : "";

	if (!o)
		return NULL;
	if (e->sp && e->sp->compressed)
		add(o, "compressed", json_object_new_boolean(true));
	add(o, "virtual-size", json_object_new_int64((int64_t)e->size));
	/* qemu names the extent as the descriptor does when it is a file
	 * of its own, and as the image when it is the image itself. */
	add(o, "filename",
	    json_object_new_string(e->file == s->file ? s->filename : name));
	if (e->sp)
		add(o, "cluster-size",
		    json_object_new_int64(e->sp->grain_size));
	add(o, "format",
	    json_object_new_string(e->file == s->file && e->sp ? ""
							       : x->type_name));
	return o;
}

static int vmdk_get_info(struct vbd *vbd, struct vbd_info *info,
			 struct vs_error **errp)
{
	struct vmdk *s = vmdk_of(vbd);
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array();

	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	info->cluster_size = vbd->cluster_size;
	if (s->desc.parent_hint) {
		info->backing_file = s->desc.parent_hint;
		info->backing_format = "vmdk";
	}
	add(o, "cid", json_object_new_int64(s->desc.cid));
	add(o, "parent-cid", json_object_new_int64(s->desc.parent_cid));
	add(o, "create-type", json_object_new_string(s->desc.create_type));
	for (unsigned i = 0; i < s->next; i++)
		json_object_array_add(
			arr, extent_info(s, &s->ext[i], &s->desc.ext[i]));
	add(o, "extents", arr);
	info->specific = o;
	return 0;
}

/* A descriptor starts with comments or blank lines, then "version=". */
static int probe_text(const char *p, const char *end)
{
	static const char head[] = "# Disk DescriptorFile";

	if ((size_t)(end - p) >= sizeof(head) - 1 &&
	    !memcmp(p, head, sizeof(head) - 1))
		return 100;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = p;

		while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s < end && *s == '#') {
			if (!nl)
				return 0;
			p = nl + 1;
			continue;
		}
		if (s == end || *s == '\n') {
			p = s + 1;
			continue;
		}
		if (end - s >= 10 && !memcmp(s, "version=", 8) && s[8] >= '1' &&
		    s[8] <= '3' && (s[9] == '\n' || s[9] == '\r'))
			return 100;
		return 0;
	}
	return 0;
}

static int vmdk_probe(const uint8_t *buf, size_t len, const char *filename)
{
	uint32_t magic = len >= 4 ? vmdk_le32(buf) : 0;

	/* COWD is claimed so that opening it says "not supported" rather
	 * than reading it as raw. */
	if (magic == VMDK4_MAGIC || magic == VMDK3_MAGIC)
		return 100;
	return probe_text((const char *)buf, (const char *)buf + len);
}

const struct vbd_driver vbd_driver_vmdk = {
	.name = "vmdk",
	.names_other_files = true,
	.probe = vmdk_probe,
	.create = vmdk_create,
	.open = vmdk_open,
	.close = vmdk_close,
	.preadv = vmdk_preadv,
	.pwritev = vmdk_pwritev,
	.flush = vmdk_flush,
	.write_zeroes = vmdk_write_zeroes,
	.compress = vmdk_compress,
	.pwrite_compressed = vmdk_pwrite_compressed,
	.block_status = vmdk_block_status,
	.get_info = vmdk_get_info,
	.check = vmdk_check,
};
