/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VDI header: every field checked before anything uses it, so that
 * the rest of the driver may trust the geometry (block size, map bounds,
 * data offset) and only has to check the map entries themselves.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "vdi.h"

uint32_t vdi_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

uint64_t vdi_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void vdi_put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

void vdi_put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static bool uuid_is_null(const uint8_t *u)
{
	static const uint8_t null[16];

	return !memcmp(u, null, sizeof(null));
}

static void header_decode(const uint8_t *b, struct vdi_header *h)
{
	h->signature = vdi_le32(b + VDI_OFF_SIGNATURE);
	h->version = vdi_le32(b + VDI_OFF_VERSION);
	h->header_size = vdi_le32(b + VDI_OFF_HEADER_SIZE);
	h->image_type = vdi_le32(b + VDI_OFF_IMAGE_TYPE);
	h->image_flags = vdi_le32(b + VDI_OFF_IMAGE_FLAGS);
	h->offset_bmap = vdi_le32(b + VDI_OFF_OFFSET_BMAP);
	h->offset_data = vdi_le32(b + VDI_OFF_OFFSET_DATA);
	h->sector_size = vdi_le32(b + VDI_OFF_SECTOR_SIZE);
	h->disk_size = vdi_le64(b + VDI_OFF_DISK_SIZE);
	h->block_size = vdi_le32(b + VDI_OFF_BLOCK_SIZE);
	h->block_extra = vdi_le32(b + VDI_OFF_BLOCK_EXTRA);
	h->blocks_in_image = vdi_le32(b + VDI_OFF_BLOCKS_IN_IMAGE);
	h->blocks_allocated = vdi_le32(b + VDI_OFF_BLOCKS_ALLOCATED);
	memcpy(h->uuid_link, b + VDI_OFF_UUID_LINK, 16);
	memcpy(h->uuid_parent, b + VDI_OFF_UUID_PARENT, 16);
}

/* The fields that say what kind of file this is. */
static int check_identity(const struct vdi_header *h, uint64_t file_size,
			  const char *fn, struct vs_error **errp)
{
	if (file_size < VDI_OFF_HEADER_SIZE + VDI_HEADER_MIN_SIZE)
		return vs_error_set(errp, EINVAL,
				    "%s: the file is %" PRIu64 " bytes long, "
				    "too short for a VDI header (%u bytes)",
				    fn, file_size,
				    VDI_OFF_HEADER_SIZE + VDI_HEADER_MIN_SIZE);
	if (h->signature != VDI_SIGNATURE)
		return vs_error_set(errp, EINVAL,
				    "%s: signature at offset 0x%x is 0x%08x, "
				    "not 0x%08x: not a VDI image",
				    fn, VDI_OFF_SIGNATURE, h->signature,
				    VDI_SIGNATURE);
	if (h->version != VDI_VERSION_1_1)
		return vs_error_set(errp, ENOTSUP,
				    "%s: version at offset 0x%x is %u.%u "
				    "(0x%08x); only VDI version 1.1 is "
				    "supported",
				    fn, VDI_OFF_VERSION, h->version >> 16,
				    h->version & 0xffff, h->version);
	if (h->image_type == VDI_TYPE_UNDO || h->image_type == VDI_TYPE_DIFF)
		return vs_error_set(errp, ENOTSUP,
				    "%s: image type at offset 0x%x is %u (%s); "
				    "only normal (1) and fixed (2) images are "
				    "supported",
				    fn, VDI_OFF_IMAGE_TYPE, h->image_type,
				    h->image_type == VDI_TYPE_UNDO
					    ? "undo"
					    : "differencing");
	if (h->image_type != VDI_TYPE_DYNAMIC &&
	    h->image_type != VDI_TYPE_STATIC)
		return vs_error_set(errp, EINVAL,
				    "%s: image type at offset 0x%x is %u, "
				    "not 1 (normal) or 2 (fixed)",
				    fn, VDI_OFF_IMAGE_TYPE, h->image_type);
	if (!uuid_is_null(h->uuid_link) || !uuid_is_null(h->uuid_parent))
		return vs_error_set(
			errp, ENOTSUP,
			"%s: the %s UUID at offset 0x%x is set: "
			"images linked to a parent are not "
			"supported",
			fn, uuid_is_null(h->uuid_link) ? "parent" : "link",
			uuid_is_null(h->uuid_link) ? VDI_OFF_UUID_PARENT
						   : VDI_OFF_UUID_LINK);
	return 0;
}

/* Block geometry: sizes and counts, before any offset depends on them. */
static int check_geometry(const struct vdi_header *h, const char *fn,
			  struct vs_error **errp)
{
	uint64_t room;

	if (h->sector_size != VDI_SECTOR)
		return vs_error_set(errp, ENOTSUP,
				    "%s: sector size at offset 0x%x is %u, "
				    "not %u",
				    fn, VDI_OFF_SECTOR_SIZE, h->sector_size,
				    VDI_SECTOR);
	if (h->block_size < VDI_BLOCK_MIN || h->block_size > VDI_BLOCK_MAX ||
	    (h->block_size & (h->block_size - 1)))
		return vs_error_set(errp, EINVAL,
				    "%s: block size at offset 0x%x is %u, not "
				    "a power of two from %u to %u",
				    fn, VDI_OFF_BLOCK_SIZE, h->block_size,
				    VDI_BLOCK_MIN, VDI_BLOCK_MAX);
	if (h->block_extra != 0)
		return vs_error_set(errp, ENOTSUP,
				    "%s: block extra data size at offset 0x%x "
				    "is %u; only 0 is supported",
				    fn, VDI_OFF_BLOCK_EXTRA, h->block_extra);
	if (h->blocks_in_image > VDI_BLOCKS_MAX)
		return vs_error_set(errp, EINVAL,
				    "%s: blocks in image at offset 0x%x is %u, "
				    "more than %u",
				    fn, VDI_OFF_BLOCKS_IN_IMAGE,
				    h->blocks_in_image, VDI_BLOCKS_MAX);
	/* At most 2^30 blocks of 2^26 bytes: no overflow. */
	room = (uint64_t)h->blocks_in_image * h->block_size;
	if (h->disk_size > room)
		return vs_error_set(errp, EINVAL,
				    "%s: disk size at offset 0x%x is %" PRIu64
				    " bytes, more than the %u blocks of %u "
				    "bytes in the image (%" PRIu64 ")",
				    fn, VDI_OFF_DISK_SIZE, h->disk_size,
				    h->blocks_in_image, h->block_size, room);
	if (h->blocks_allocated > h->blocks_in_image)
		return vs_error_set(errp, EINVAL,
				    "%s: blocks allocated at offset 0x%x is "
				    "%u, more than the %u blocks in the image",
				    fn, VDI_OFF_BLOCKS_ALLOCATED,
				    h->blocks_allocated, h->blocks_in_image);
	return 0;
}

/* Where the header, the map and the data lie: in order, sector-aligned,
 * and the map inside the file. */
static int check_layout(const struct vdi_header *h, uint64_t file_size,
			const char *fn, struct vs_error **errp)
{
	uint64_t hdr_end = (uint64_t)VDI_OFF_HEADER_SIZE + h->header_size;
	uint64_t map_end = h->offset_bmap + (uint64_t)h->blocks_in_image * 4;

	if (h->header_size < VDI_HEADER_MIN_SIZE)
		return vs_error_set(errp, EINVAL,
				    "%s: header size at offset 0x%x is %u, "
				    "less than the %u bytes of a version 1.1 "
				    "header",
				    fn, VDI_OFF_HEADER_SIZE, h->header_size,
				    VDI_HEADER_MIN_SIZE);
	if (h->offset_bmap % VDI_SECTOR || h->offset_bmap < hdr_end)
		return vs_error_set(errp, EINVAL,
				    "%s: block map offset at offset 0x%x is "
				    "0x%x, not a multiple of %u at or after "
				    "the end of the header (0x%" PRIx64 ")",
				    fn, VDI_OFF_OFFSET_BMAP, h->offset_bmap,
				    VDI_SECTOR, hdr_end);
	if (map_end > file_size)
		return vs_error_set(errp, EINVAL,
				    "%s: the block map (offset 0x%x, %u "
				    "entries) ends at 0x%" PRIx64
				    ", past the end of the file (0x%" PRIx64
				    ")",
				    fn, h->offset_bmap, h->blocks_in_image,
				    map_end, file_size);
	if (h->offset_data % VDI_SECTOR || h->offset_data < map_end)
		return vs_error_set(errp, EINVAL,
				    "%s: data offset at offset 0x%x is 0x%x, "
				    "not a multiple of %u at or after the end "
				    "of the block map (0x%" PRIx64 ")",
				    fn, VDI_OFF_OFFSET_DATA, h->offset_data,
				    VDI_SECTOR, map_end);
	return 0;
}

int vdi_header_parse(const uint8_t *buf, uint64_t file_size,
		     const char *filename, struct vdi_header *h,
		     struct vs_error **errp)
{
	int ret;

	header_decode(buf, h);
	ret = check_identity(h, file_size, filename, errp);
	if (ret == 0)
		ret = check_geometry(h, filename, errp);
	if (ret == 0)
		ret = check_layout(h, file_size, filename, errp);
	return ret;
}

const char *vdi_entry_problem(const struct vdi_header *h, uint32_t e,
			      uint64_t file_size)
{
	if (e >= h->blocks_in_image)
		return "not below the number of blocks in the image";
	if (vdi_data_offset(h, e) + h->block_size > file_size)
		return "a data block past the end of the file";
	return NULL;
}
