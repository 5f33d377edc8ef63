/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VHD driver ("vpc", as qemu-img calls it; "vhd" is an alias): open,
 * reads, block status, info and probing.  Writing is in vhd-write.c,
 * creating in vhd-create.c, parents in vhd-parent.c, the footer and the
 * dynamic header in vhd-footer.c.
 *
 * The host file is a raw vbd under this one and a differencing image's
 * parent another VHD vbd: layers stack, and each takes its own locks.
 *
 * Sector bitmaps are honoured on reads, as the specification says: a
 * clear bit reads as zeros in a dynamic image and from the parent in a
 * differencing one.  (QEMU ignores the bitmap of a dynamic image and
 * reads whatever the block holds; the two agree on every image QEMU,
 * Hyper-V or vstor write, which set the bits of a block they allocate or
 * zero its data.)  Which blocks have every bit set is remembered, so
 * that their bitmaps are read once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/atomic.h"
#include "../../common/cleanup.h"
#include "../../common/iov.h"
#include "../../common/log.h"
#include "vhd.h"

/* The BAT entries kept in memory: 256 MiB of them, 128 TiB of 2 MiB
 * blocks, far above the 2040 GiB a VHD may hold. */
#define VHD_MAX_BAT_ENTRIES (64u << 20)

static struct vhd *vhd_of(struct vbd *vbd)
{
	return vbd->opaque;
}

/* The file grows as blocks are appended. */
int vhd_file_writev(struct vhd *s, uint64_t off, const struct iovec *iov,
		    int iovcnt)
{
	uint64_t end = off + vs_iov_size(iov, iovcnt);
	int ret;

	ret = vbd_pwritev_grow(s->file, off, iov, iovcnt);
	if (ret == 0)
		vs_atomic_max(&s->file_size, end);
	return ret;
}

int vhd_file_write(struct vhd *s, uint64_t off, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return vhd_file_writev(s, off, &iov, 1);
}

/* Open. */

static int check_block(struct vbd *vbd, struct vhd *s, uint32_t i,
		       struct vs_error **errp)
{
	uint64_t start = (uint64_t)s->bat[i] * VHD_SECTOR;
	uint64_t end = start + s->bitmap_size + s->block_size;
	uint64_t bat_end = s->h.table_offset + (uint64_t)s->h.max_entries * 4;
	uint64_t hdr = s->f.data_offset;

	if (end > s->file_size)
		return vs_error_set(errp, EINVAL,
				    "%s: block allocation table entry %" PRIu32
				    " at offset %#" PRIx64
				    " points to a block at offset %#" PRIx64
				    " that runs past the end of the file "
				    "(%" PRIu64 " bytes)",
				    vbd->filename, i,
				    s->h.table_offset + (uint64_t)4 * i, start,
				    s->file_size);
	/* A block over the metadata would let a write destroy it. */
	if (start < VHD_FOOTER_LEN ||
	    (start < hdr + VHD_DYNHDR_LEN && end > hdr) ||
	    (start < bat_end && end > s->h.table_offset))
		return vs_error_set(errp, EINVAL,
				    "%s: block allocation table entry %" PRIu32
				    " at offset %#" PRIx64
				    " points to a block at offset %#" PRIx64
				    " that overlaps the footer, the dynamic "
				    "header or the table itself",
				    vbd->filename, i,
				    s->h.table_offset + (uint64_t)4 * i, start);
	return 0;
}

/*
 * Where the next block goes: past every block and table, and over the
 * footer copy at the end if there is one (it moves behind the new
 * block), so that a new block's data always lies past the old end of
 * the file and reads as zeros.
 */
static int place_next_block(struct vhd *s, uint64_t used)
{
	uint8_t tail[8];
	uint64_t at = s->file_size - VHD_FOOTER_LEN;

	if (s->file_size >= VHD_FOOTER_LEN && at >= used &&
	    at % VHD_SECTOR == 0 &&
	    vbd_pread(s->file, at, tail, sizeof(tail)) == 0 &&
	    !memcmp(tail, VHD_COOKIE, 8)) {
		s->next_block = at;
		return 0;
	}
	s->next_block =
		VS_ALIGN_UP(VS_MAX(used, s->file_size), (uint64_t)VHD_SECTOR);
	return 0;
}

static int read_bat(struct vbd *vbd, struct vhd *s, struct vs_error **errp)
{
	uint64_t used = s->f.data_offset + VHD_DYNHDR_LEN;
	autofree uint8_t *raw = NULL;
	size_t bytes;
	int ret;

	if (s->nblocks > VHD_MAX_BAT_ENTRIES)
		return vs_error_set(errp, EFBIG,
				    "%s: %" PRIu32 " blocks of %" PRIu32
				    " bytes: more than the %u table entries "
				    "this driver holds",
				    vbd->filename, s->nblocks, s->block_size,
				    VHD_MAX_BAT_ENTRIES);
	bytes = (size_t)s->nblocks * 4;
	raw = malloc(bytes ? bytes : 1);
	s->bat = malloc(bytes ? bytes : 1);
	s->state = calloc(s->nblocks ? s->nblocks : 1, 1);
	s->bat_dirty = calloc(s->nblocks / VHD_BAT_PER_SECTOR + 1, 1);
	if (!raw || !s->bat || !s->state || !s->bat_dirty)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = bytes ? vbd_pread(s->file, s->h.table_offset, raw, bytes) : 0;
	if (ret < 0)
		return vs_error_set_errno(
			errp, ret,
			"%s: cannot read the block "
			"allocation table at offset %#" PRIx64,
			vbd->filename, s->h.table_offset);
	used = VS_MAX(used, s->h.table_offset + (uint64_t)s->h.max_entries * 4);
	for (uint32_t i = 0; i < s->nblocks; i++) {
		s->bat[i] = vhd_be32(raw + 4 * (size_t)i);
		if (s->bat[i] == VHD_BAT_UNUSED)
			continue;
		ret = check_block(vbd, s, i, errp);
		if (ret < 0)
			return ret;
		used = VS_MAX(used, (uint64_t)s->bat[i] * VHD_SECTOR +
					    s->bitmap_size + s->block_size);
	}
	return place_next_block(s, used);
}

static int open_dynamic(struct vbd *vbd, struct vhd *s, struct vs_error **errp)
{
	uint8_t buf[VHD_DYNHDR_LEN];
	uint64_t at = s->f.data_offset, bat_end;
	int ret;

	if (at > s->file_size || s->file_size - at < VHD_DYNHDR_LEN ||
	    at % VHD_SECTOR)
		return vs_error_set(errp, EINVAL,
				    "%s: footer: data offset %#" PRIx64
				    " (the dynamic header, 1024 bytes) is "
				    "unaligned or past the end of the file "
				    "(%" PRIu64 " bytes)",
				    vbd->filename, at, s->file_size);
	ret = vbd_pread(s->file, at, buf, sizeof(buf));
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the dynamic header "
					  "at offset %#" PRIx64,
					  vbd->filename, at);
	ret = vhd_dynhdr_parse(buf, vbd->filename, &s->f, s->file_size, &s->h,
			       errp);
	if (ret < 0)
		return ret;
	/* The table over the footer copy or the header would let a BAT
	 * update destroy them. */
	bat_end = s->h.table_offset + (uint64_t)s->h.max_entries * 4;
	if (s->h.table_offset < VHD_FOOTER_LEN ||
	    (s->h.table_offset < at + VHD_DYNHDR_LEN && bat_end > at))
		return vs_error_set(
			errp, EINVAL,
			"%s: dynamic header at offset %#" PRIx64
			": block allocation table at offset "
			"%#" PRIx64
			" overlaps the footer or the dynamic header",
			vbd->filename, at, s->h.table_offset);
	s->block_size = s->h.block_size;
	s->block_sectors = s->block_size / VHD_SECTOR;
	s->bitmap_size = VS_ALIGN_UP((s->block_sectors + 7) / 8, VHD_SECTOR);
	s->nblocks = (uint32_t)((s->f.virtual_size + s->block_size - 1) /
				s->block_size);
	ret = read_bat(vbd, s, errp);
	if (ret == 0 && s->f.type == VHD_DIFF)
		ret = vhd_open_parent(vbd, s, errp);
	return ret;
}

static void vhd_free(struct vhd *s)
{
	vbd_close(s->parent);
	vbd_close(s->file);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->wlock);
	free(s->bat);
	free(s->state);
	free(s->bat_dirty);
	free(s->parent_path);
	free(s);
}

static int open_image(struct vbd *vbd, const struct vbd_spec *spec,
		      struct vhd *s, struct vs_error **errp)
{
	uint64_t at;
	int ret;

	ret = vbd_open_host_file(vbd, spec, vbd->filename, &s->file, errp);
	if (ret < 0)
		return ret;
	s->file_size = vbd_size(s->file);
	ret = vhd_read_footer(s->file, vbd->filename, false, s->footer_raw, &at,
			      errp);
	if (ret == 0)
		ret = vhd_footer_parse(s->footer_raw, vbd->filename, at, &s->f,
				       errp);
	if (ret < 0)
		return ret;
	if (s->f.type != VHD_FIXED)
		return open_dynamic(vbd, s, errp);
	/* The data of a fixed image is the file up to its footer. */
	s->fixed_data_end = s->file_size - VHD_FOOTER_LEN;
	if (s->f.virtual_size > s->fixed_data_end)
		return vs_error_set(errp, EINVAL,
				    "%s: fixed image: virtual size %" PRIu64
				    " is larger than the %" PRIu64
				    " bytes before the footer (a truncated "
				    "file?)",
				    vbd->filename, s->f.virtual_size,
				    s->fixed_data_end);
	return 0;
}

static int vhd_open(struct vbd *vbd, const struct vbd_spec *spec,
		    struct vs_error **errp)
{
	struct vhd *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return vs_error_set(errp, ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	ret = vbd_chain_enter(vbd->filename, errp);
	if (ret < 0) {
		vhd_free(s);
		return ret;
	}
	ret = open_image(vbd, spec, s, errp);
	vbd_chain_leave();
	if (ret < 0) {
		vhd_free(s);
		return ret;
	}
	s->writable = !vbd->readonly;
	vbd->opaque = s;
	vbd->size = s->f.virtual_size;
	vbd->cluster_size = s->f.type == VHD_FIXED ? 0 : s->block_size;
	return 0;
}

static void vhd_close(struct vbd *vbd)
{
	struct vhd *s = vhd_of(vbd);
	int ret = vhd_flush_image(s);

	if (ret < 0)
		vs_log(VS_LOG_ERROR, "vhd",
		       "%s: cannot write the block allocation table at close: "
		       "%s",
		       vbd->filename, strerror(-ret));
	vhd_free(s);
}

/* Reads. */

/*
 * Fill in the state of block `idx` (allocated), reading its bitmap into
 * `bitmap` (bitmap_size bytes) unless every bit is known to be set.
 */
int vhd_block_state(struct vhd *s, uint32_t idx, uint8_t *bitmap,
		    enum vhd_bstate *out)
{
	uint64_t first = (uint64_t)idx * s->block_sectors;
	uint64_t disk_sectors = s->f.virtual_size / VHD_SECTOR;
	uint32_t n = (uint32_t)VS_MIN((uint64_t)s->block_sectors,
				      disk_sectors - first);
	uint32_t entry;
	enum vhd_bstate st;
	bool full = true;
	int ret;

	pthread_mutex_lock(&s->lock);
	st = s->state[idx];
	entry = s->bat[idx];
	pthread_mutex_unlock(&s->lock);
	if (st == VHD_BS_FULL) {
		*out = st;
		return 0;
	}
	ret = vbd_pread(s->file, (uint64_t)entry * VHD_SECTOR, bitmap,
			s->bitmap_size);
	if (ret < 0)
		return ret;
	/* Only the sectors inside the disk count: the last block's tail
	 * may be left clear. */
	for (uint32_t i = 0; i < n / 8 && full; i++)
		full = bitmap[i] == 0xff;
	for (uint32_t i = n / 8 * 8; i < n && full; i++)
		full = vhd_bit(bitmap, i);
	*out = full ? VHD_BS_FULL : VHD_BS_PARTIAL;
	pthread_mutex_lock(&s->lock);
	if (s->state[idx] == VHD_BS_UNKNOWN || full)
		s->state[idx] = *out;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Bytes that no block of this image holds: zeros, or the parent's. */
static int read_unallocated_iov(struct vhd *s, uint64_t off,
				const struct iovec *iov, int iovcnt,
				size_t skip, size_t len, struct iovec *tmp)
{
	uint64_t psize = s->parent ? vbd_size(s->parent) : 0;
	size_t from_parent = 0;
	int cnt;

	if (off < psize)
		from_parent = (size_t)VS_MIN((uint64_t)len, psize - off);
	if (from_parent) {
		cnt = vs_iov_slice(tmp, iovcnt, iov, iovcnt, skip, from_parent);
		if (cnt < 0)
			return -EIO;
		int ret = vbd_preadv(s->parent, off, tmp, cnt);
		if (ret < 0)
			return ret;
	}
	vs_iov_memset(iov, iovcnt, skip + from_parent, 0, len - from_parent);
	return 0;
}

static int read_host(struct vhd *s, uint64_t host, const struct iovec *iov,
		     int iovcnt, size_t skip, size_t len, struct iovec *tmp)
{
	int cnt = vs_iov_slice(tmp, iovcnt, iov, iovcnt, skip, len);

	if (cnt < 0)
		return -EIO;
	return vbd_preadv(s->file, host, tmp, cnt);
}

/* Bytes [off, off+len) of one block; `skip` is where they go in iov. */
static int read_block(struct vhd *s, uint64_t off, size_t len,
		      const struct iovec *iov, int iovcnt, size_t skip,
		      struct iovec *tmp, uint8_t *bitmap)
{
	uint32_t idx = (uint32_t)(off / s->block_size);
	uint32_t in = (uint32_t)(off % s->block_size);
	uint64_t base;
	enum vhd_bstate st;
	uint32_t entry;
	int ret;

	pthread_mutex_lock(&s->lock);
	entry = s->bat[idx];
	pthread_mutex_unlock(&s->lock);
	if (entry == VHD_BAT_UNUSED)
		return read_unallocated_iov(s, off, iov, iovcnt, skip, len,
					    tmp);
	base = (uint64_t)entry * VHD_SECTOR + s->bitmap_size;
	ret = vhd_block_state(s, idx, bitmap, &st);
	if (ret < 0)
		return ret;
	if (st == VHD_BS_FULL)
		return read_host(s, base + in, iov, iovcnt, skip, len, tmp);
	/* Runs of sectors whose bits agree. */
	for (size_t done = 0; done < len;) {
		uint32_t pos = in + (uint32_t)done;
		uint32_t sec = pos / VHD_SECTOR;
		bool set = vhd_bit(bitmap, sec);
		uint32_t end = sec + 1;
		size_t n;

		while (end < s->block_sectors &&
		       (uint64_t)end * VHD_SECTOR < in + len &&
		       vhd_bit(bitmap, end) == set)
			end++;
		n = (size_t)VS_MIN((uint64_t)end * VHD_SECTOR, in + len) - pos;
		if (set)
			ret = read_host(s, base + pos, iov, iovcnt, skip + done,
					n, tmp);
		else
			ret = read_unallocated_iov(s, off + done, iov, iovcnt,
						   skip + done, n, tmp);
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

/* Read through the image's own mapping (also for the writers' partial
 * sectors). */
int vhd_read(struct vhd *s, uint64_t offset, const struct iovec *iov,
	     int iovcnt)
{
	size_t len = vs_iov_size(iov, iovcnt);
	autofree struct iovec *tmp = NULL;
	autofree uint8_t *bitmap = NULL;
	int ret = 0;

	if (s->f.type == VHD_FIXED)
		return vbd_preadv(s->file, offset, iov, iovcnt);
	tmp = malloc(sizeof(*tmp) * (size_t)iovcnt);
	bitmap = malloc(s->bitmap_size);
	if (!tmp || !bitmap)
		return -ENOMEM;
	for (size_t done = 0; done < len && ret == 0;) {
		uint64_t off = offset + done;
		size_t n = (size_t)VS_MIN((uint64_t)(len - done),
					  s->block_size - off % s->block_size);

		ret = read_block(s, off, n, iov, iovcnt, done, tmp, bitmap);
		done += n;
	}
	return ret;
}

static int vhd_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		      int iovcnt)
{
	return vhd_read(vhd_of(vbd), offset, iov, iovcnt);
}

/* Status. */

static int status_unallocated(struct vhd *s, uint64_t offset, uint64_t len,
			      struct vbd_extent *ext)
{
	uint64_t psize;
	int ret;

	/* Without a parent this image decides: zeros (qemu-img map says
	 * "present" too). */
	*ext = (struct vbd_extent){.length = len,
				   .flags = VBD_STATUS_ZERO |
					    VBD_STATUS_ALLOCATED,
				   .host_offset = -1};
	if (!s->parent)
		return 0;
	ext->flags = VBD_STATUS_ZERO;
	psize = vbd_size(s->parent);
	ext->depth = 1;
	if (offset >= psize)
		return 0; /* past a shorter parent: zeros */
	ret = vbd_block_status(s->parent, offset, VS_MIN(len, psize - offset),
			       ext);
	ext->depth++;
	return ret;
}

static int vhd_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
			    struct vbd_extent *ext)
{
	struct vhd *s = vhd_of(vbd);
	autofree uint8_t *bitmap = NULL;
	uint32_t idx, in, entry, sec, end;
	enum vhd_bstate st;
	uint64_t n;
	bool set;
	int ret;

	/* A fixed image's data is its file's: holes in it read as zeros,
	 * as qemu-img map reports them. */
	if (s->f.type == VHD_FIXED) {
		ret = vbd_block_status(s->file, offset, len, ext);
		ext->depth = 0;
		ext->flags |= VBD_STATUS_ALLOCATED;
		return ret;
	}
	idx = (uint32_t)(offset / s->block_size);
	in = (uint32_t)(offset % s->block_size);
	pthread_mutex_lock(&s->lock);
	entry = s->bat[idx];
	if (entry == VHD_BAT_UNUSED) {
		/* Runs of unallocated blocks report as one extent. */
		n = s->block_size - in;
		while (n < len && idx + 1 < s->nblocks &&
		       s->bat[idx + 1] == VHD_BAT_UNUSED) {
			idx++;
			n += s->block_size;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (entry == VHD_BAT_UNUSED)
		return status_unallocated(s, offset, VS_MIN(n, len), ext);
	bitmap = malloc(s->bitmap_size);
	if (!bitmap)
		return -ENOMEM;
	ret = vhd_block_state(s, idx, bitmap, &st);
	if (ret < 0)
		return ret;
	n = VS_MIN(len, (uint64_t)(s->block_size - in));
	sec = in / VHD_SECTOR;
	set = st == VHD_BS_FULL || vhd_bit(bitmap, sec);
	if (st != VHD_BS_FULL) {
		for (end = sec + 1; end < s->block_sectors &&
				    (uint64_t)end * VHD_SECTOR < in + n &&
				    vhd_bit(bitmap, end) == set;
		     end++)
			;
		n = VS_MIN((uint64_t)end * VHD_SECTOR, in + n) - in;
	}
	if (!set)
		return status_unallocated(s, offset, n, ext);
	*ext = (struct vbd_extent){
		.length = n,
		.flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED,
		.host_offset = (int64_t)((uint64_t)entry * VHD_SECTOR +
					 s->bitmap_size + in)};
	return 0;
}

/* Info and probe. */

static int vhd_get_info(struct vbd *vbd, struct vbd_info *info,
			struct vs_error **errp)
{
	struct vhd *s = vhd_of(vbd);

	(void)errp;
	/* qemu-img shows the block size as the cluster size, and nothing
	 * format-specific. */
	info->cluster_size = s->f.type == VHD_FIXED ? 0 : s->block_size;
	if (s->parent) {
		info->backing_file = s->parent_path;
		info->backing_format = "vpc";
	}
	return 0;
}

/*
 * "conectix" at offset 0, as QEMU probes: dynamic and differencing
 * images have their footer copy there.  A fixed image's only footer is
 * at the end of the file, so it probes as raw here as in QEMU (its data
 * is the raw disk); open it with -f vpc to use its footer.
 */
static int vhd_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && !memcmp(buf, VHD_COOKIE, 8) ? 100 : 0;
}

const struct vbd_driver vbd_driver_vpc = {
	.name = "vpc",
	.names_other_files = true,
	.probe = vhd_probe,
	.create = vhd_create,
	.open = vhd_open,
	.close = vhd_close,
	.preadv = vhd_preadv,
	.pwritev = vhd_pwritev,
	.flush = vhd_flush,
	.write_zeroes = vhd_write_zeroes,
	.copy_from_fd = vhd_copy_from_fd,
	.discard = vhd_discard,
	.block_status = vhd_block_status,
	.get_info = vhd_get_info,
};
