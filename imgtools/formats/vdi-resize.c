/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Resizing dynamic VDI images (vstor img resize; qemu-img cannot resize
 * VDI at all, VirtualBox grows dynamic images).
 *
 * Growing adds unallocated entries to the block map, which must fit in
 * the room the image left between the map and the data (qemu rounds the
 * map to a sector, VirtualBox to 1 MiB): going past it would move every
 * data block, and is refused.  Shrinking frees the blocks past the new
 * end first (each one crash-safely, the last data block moving into its
 * place).  The header's disk size and block count change last, in one
 * write, after the map is stable, so a crash leaves the old size.
 * Fixed images keep their size, as in VirtualBox.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "vdi.h"

/* disk_size .. blocks_in_image: one write for the new geometry. */
#define GEOMETRY_LEN (VDI_OFF_BLOCKS_IN_IMAGE + 4 - VDI_OFF_DISK_SIZE)

static int check_request(struct vbd *vbd, const struct vdi *s, uint64_t size,
			 unsigned flags, uint64_t *blocks,
			 struct vs_error **errp)
{
	uint64_t bs = s->h.block_size;
	uint64_t room = (s->h.offset_data - s->h.offset_bmap) / 4;

	if (s->h.image_type != VDI_TYPE_DYNAMIC)
		return vs_error_set(errp, ENOTSUP,
				    "%s: fixed (static) VDI images cannot be "
				    "resized",
				    vbd->filename);
	if (flags & (VBD_TRUNC_PREALLOC_FALLOC | VBD_TRUNC_PREALLOC_FULL))
		return vs_error_set(errp, ENOTSUP,
				    "%s: VDI images cannot preallocate when "
				    "resized",
				    vbd->filename);
	if (size % VDI_SECTOR)
		return vs_error_set(errp, EINVAL,
				    "%s: %" PRIu64 " bytes is not a whole "
				    "number of %u-byte sectors",
				    vbd->filename, size, VDI_SECTOR);
	*blocks = size / bs + (size % bs != 0);
	if (*blocks > room || *blocks > VDI_BLOCKS_MAX)
		return vs_error_set(errp, ENOTSUP,
				    "%s: %" PRIu64 " bytes need %" PRIu64
				    " blocks, but the block map at offset 0x%x "
				    "has room for %" PRIu64
				    " (the data follows it at 0x%x); growing "
				    "further would move every data block",
				    vbd->filename, size, *blocks,
				    s->h.offset_bmap, room, s->h.offset_data);
	return 0;
}

/* Room in memory for `blocks` entries (the arrays never shrink). */
static int grow_arrays(struct vdi *s, uint32_t blocks)
{
	uint32_t old = s->h.blocks_in_image;
	uint32_t *b, *r;

	if (blocks <= old)
		return 0;
	b = realloc(s->bmap, (size_t)blocks * 4);
	if (!b)
		return -ENOMEM;
	s->bmap = b;
	r = realloc(s->rmap, ((size_t)blocks + 1) * 4);
	if (!r)
		return -ENOMEM;
	s->rmap = r;
	memset(s->rmap + old + 1, 0xff, (size_t)(blocks - old) * 4);
	return 0;
}

/* New entries [old, blocks) unallocated, on disk before the header
 * counts them (the map area may hold leftovers of an earlier shrink). */
static int add_entries(struct vdi *s, uint32_t blocks)
{
	uint32_t old = s->h.blocks_in_image;
	int ret;

	for (uint32_t i = old; i < blocks; i++)
		s->bmap[i] = VDI_BMAP_FREE;
	if (blocks <= old)
		return 0;
	ret = vdi_set_entries(s, old, blocks - old, VDI_BMAP_FREE);
	return ret ? ret : vbd_flush(s->file);
}

/*
 * The bytes of the old last block past the old end must read as zeros
 * once they are inside the disk: an image written elsewhere may hold
 * anything there.
 */
static int zero_old_tail(struct vdi *s, uint64_t old_size, uint64_t size)
{
	uint64_t bs = s->h.block_size, in = old_size & (bs - 1);
	uint32_t blk = (uint32_t)(old_size >> s->block_bits);
	uint32_t e;

	if (size <= old_size || !in || blk >= s->h.blocks_in_image)
		return 0;
	e = s->bmap[blk];
	if (!VDI_BMAP_IS_DATA(e) || vdi_entry_problem(&s->h, e, s->file_size))
		return 0;
	return vdi_file_pwrite(s, vdi_data_offset(&s->h, e) + in, s->zero_buf,
			       (size_t)(bs - in));
}

static int shrink_blocks(struct vdi *s, uint32_t blocks)
{
	int ret = 0;

	for (uint32_t i = blocks; ret == 0 && i < s->h.blocks_in_image; i++) {
		uint32_t e = s->bmap[i];

		if (!VDI_BMAP_IS_DATA(e))
			continue;
		if (vdi_entry_problem(&s->h, e, s->file_size))
			ret = vdi_set_entries(s, i, 1, VDI_BMAP_FREE);
		else
			ret = vdi_free_block(s, i);
	}
	return ret;
}

static int write_geometry(struct vdi *s, uint64_t size, uint32_t blocks)
{
	uint8_t b[GEOMETRY_LEN];
	int ret;

	vdi_put_le64(b, size);
	vdi_put_le32(b + VDI_OFF_BLOCK_SIZE - VDI_OFF_DISK_SIZE,
		     s->h.block_size);
	vdi_put_le32(b + VDI_OFF_BLOCK_EXTRA - VDI_OFF_DISK_SIZE,
		     s->h.block_extra);
	vdi_put_le32(b + VDI_OFF_BLOCKS_IN_IMAGE - VDI_OFF_DISK_SIZE, blocks);
	ret = vdi_file_pwrite(s, VDI_OFF_DISK_SIZE, b, sizeof(b));
	return ret ? ret : vbd_flush(s->file);
}

static int resize(struct vdi *s, uint64_t size, uint32_t blocks)
{
	uint64_t old_size = s->size;
	int ret;

	ret = grow_arrays(s, blocks);
	if (ret == 0)
		ret = shrink_blocks(s, blocks);
	if (ret == 0)
		ret = add_entries(s, blocks);
	if (ret == 0)
		ret = zero_old_tail(s, old_size, size);
	if (ret == 0)
		ret = write_geometry(s, size, blocks);
	if (ret < 0)
		return ret;
	s->h.disk_size = size;
	s->h.blocks_in_image = blocks;
	s->size = size;
	return 0;
}

int vdi_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
		 struct vs_error **errp)
{
	struct vdi *s = vbd->opaque;
	uint64_t blocks = 0;
	int ret;

	ret = check_request(vbd, s, size, flags, &blocks, errp);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->alloc_lock);
	pthread_rwlock_wrlock(&s->move_lock);
	ret = resize(s, size, (uint32_t)blocks);
	pthread_rwlock_unlock(&s->move_lock);
	pthread_mutex_unlock(&s->alloc_lock);
	if (ret < 0)
		return vs_error_set_errno(
			errp, ret, "%s: resizing to %" PRIu64 " bytes failed",
			vbd->filename, size);
	vbd->size = size;
	return 0;
}
