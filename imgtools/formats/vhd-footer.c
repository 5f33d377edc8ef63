/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VHD footer and dynamic header: finding, checking and decoding
 * them, their checksums, CHS geometry and the virtual size.
 *
 * The virtual size follows QEMU, so that `vstor img info` and `qemu-img
 * info` agree on every file: Virtual PC sizes a disk by its CHS geometry
 * (the footer's current_size is often larger), Hyper-V, disk2vhd,
 * XenServer and XenConverter by current_size.  The creator application
 * tells which; a geometry at the CHS maximum cannot describe the disk,
 * so current_size wins then too.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "vhd.h"

/* One's complement of the byte sum, the checksum field counted as 0. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip_at)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < skip_at || i >= skip_at + 4)
			sum += buf[i];
	return ~sum;
}

/*
 * The geometry the VHD specification's appendix assigns to a sector
 * count: 17, 31, 63 then 255 sectors per track as the disk grows, at
 * most 16 heads, capped at 65535 x 16 x 255.  The product may be less
 * than `sectors` (the caller rounds up by asking again).
 */
void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads,
		  uint8_t *secs)
{
	uint64_t cth; /* cylinders times heads */
	uint32_t h, sp;

	if (sectors > VHD_MAX_GEOMETRY)
		sectors = VHD_MAX_GEOMETRY;
	if (sectors >= 65535ull * 16 * 63) {
		sp = 255;
		h = 16;
		cth = sectors / sp;
	} else {
		sp = 17;
		cth = sectors / sp;
		h = (uint32_t)((cth + 1023) / 1024);
		if (h < 4)
			h = 4;
		if (cth >= h * 1024ull || h > 16) {
			sp = 31;
			h = 16;
			cth = sectors / sp;
		}
		if (cth >= h * 1024ull) {
			sp = 63;
			h = 16;
			cth = sectors / sp;
		}
	}
	*cyls = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*secs = (uint8_t)sp;
}

/* Creators that size the disk by current_size (QEMU's list). */
static bool sized_by_current_size(const char app[4])
{
	static const char *const apps[] = {"win ", "qem2", "d2v ", "CTXS"};

	for (size_t i = 0; i < VS_ARRAY_SIZE(apps); i++)
		if (!memcmp(app, apps[i], 4))
			return true;
	/* XenServer's tapdisk writes "tap" and a NUL. */
	return !memcmp(app, "tap", 4);
}

int vhd_footer_parse(const uint8_t *buf, const char *file, uint64_t at,
		     struct vhd_footer *f, struct vs_error **errp)
{
	uint32_t stored = vhd_be32(buf + VHD_F_CHECKSUM);
	uint32_t sum = vhd_checksum(buf, VHD_FOOTER_LEN, VHD_F_CHECKSUM);
	uint64_t chs;

	if (memcmp(buf, VHD_COOKIE, 8))
		return vs_error_set(errp, EINVAL,
				    "%s: no VHD footer (cookie \"conectix\") "
				    "at offset %#" PRIx64 " or at the end of "
				    "the file",
				    file, at);
	/* QEMU refuses a bad footer checksum too: the footer holds the
	 * size and the type, and a damaged one cannot be trusted. */
	if (stored != sum)
		return vs_error_set(errp, EINVAL,
				    "%s: footer at offset %#" PRIx64
				    ": checksum is %#" PRIx32
				    ", the footer's bytes sum to %#" PRIx32,
				    file, at, stored, sum);
	f->type = vhd_be32(buf + VHD_F_TYPE);
	if (f->type != VHD_FIXED && f->type != VHD_DYNAMIC &&
	    f->type != VHD_DIFF)
		return vs_error_set(errp, ENOTSUP,
				    "%s: footer at offset %#" PRIx64
				    ": disk type %" PRIu32
				    " is not fixed (2), dynamic (3) or "
				    "differencing (4)",
				    file, at, f->type);
	f->data_offset = vhd_be64(buf + VHD_F_DATA_OFFSET);
	f->cur_size = vhd_be64(buf + VHD_F_CUR_SIZE);
	f->cyls = vhd_be16(buf + VHD_F_CYLS);
	f->heads = buf[VHD_F_HEADS];
	f->secs = buf[VHD_F_SECS];
	memcpy(f->creator_app, buf + VHD_F_CREATOR_APP, 4);
	memcpy(f->uuid, buf + VHD_F_UUID, 16);

	chs = (uint64_t)f->cyls * f->heads * f->secs;
	f->size_from_chs = !sized_by_current_size(f->creator_app) &&
			   chs != VHD_MAX_GEOMETRY;
	if (f->size_from_chs) {
		f->virtual_size = chs * VHD_SECTOR;
	} else {
		if (f->cur_size / VHD_SECTOR > VHD_MAX_SECTORS)
			return vs_error_set(
				errp, EFBIG,
				"%s: footer at offset %#" PRIx64
				": current size %" PRIu64
				" is more than the 2040 GiB a VHD may hold",
				file, at, f->cur_size);
		f->virtual_size = f->cur_size / VHD_SECTOR * VHD_SECTOR;
	}
	/* 65535 x 16 x 255 sectors stays below the limit, so only the
	 * current_size path can exceed it (checked above). */
	if (f->type != VHD_FIXED && f->data_offset == VHD_NO_OFFSET)
		return vs_error_set(errp, EINVAL,
				    "%s: footer at offset %#" PRIx64
				    ": a %s disk needs a data offset (the "
				    "dynamic header), the field is unset",
				    file, at,
				    f->type == VHD_DIFF ? "differencing"
							: "dynamic");
	return 0;
}

/*
 * Read the footer: first at offset 0 (dynamic and differencing images
 * keep a copy there), then in the last 512 bytes (the only copy of a
 * fixed image), as QEMU looks.  `end_only` skips offset 0.
 */
int vhd_read_footer(struct vbd *file, const char *name, bool end_only,
		    uint8_t *raw, uint64_t *found_at, struct vs_error **errp)
{
	uint64_t size = vbd_size(file);
	int ret;

	if (size < VHD_FOOTER_LEN)
		return vs_error_set(errp, EINVAL,
				    "%s: file of %" PRIu64
				    " bytes is too short for a VHD footer "
				    "(512 bytes)",
				    name, size);
	if (!end_only) {
		ret = vbd_pread(file, 0, raw, VHD_FOOTER_LEN);
		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot read the footer "
						  "at offset 0",
						  name);
		if (!memcmp(raw, VHD_COOKIE, 8)) {
			*found_at = 0;
			return 0;
		}
	}
	*found_at = size - VHD_FOOTER_LEN;
	ret = vbd_pread(file, *found_at, raw, VHD_FOOTER_LEN);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the footer at "
					  "offset %#" PRIx64,
					  name, *found_at);
	if (memcmp(raw, VHD_COOKIE, 8))
		return vs_error_set(errp, EINVAL,
				    "%s: not a VHD image: no footer (cookie "
				    "\"conectix\") at offset 0 or at offset "
				    "%#" PRIx64 " (the last 512 bytes)",
				    name, *found_at);
	return 0;
}

int vhd_dynhdr_parse(const uint8_t *buf, const char *file,
		     const struct vhd_footer *f, uint64_t file_size,
		     struct vhd_dynhdr *h, struct vs_error **errp)
{
	uint64_t at = f->data_offset, bat_bytes, blocks, need;
	uint32_t stored = vhd_be32(buf + VHD_H_CHECKSUM);
	uint32_t sum = vhd_checksum(buf, VHD_DYNHDR_LEN, VHD_H_CHECKSUM);
	uint32_t version = vhd_be32(buf + VHD_H_VERSION);

	if (memcmp(buf + VHD_H_COOKIE, VHD_DYN_COOKIE, 8))
		return vs_error_set(errp, EINVAL,
				    "%s: dynamic header at offset %#" PRIx64
				    " (the footer's data offset): no cookie "
				    "\"cxsparse\"",
				    file, at);
	if (stored != sum)
		return vs_error_set(errp, EINVAL,
				    "%s: dynamic header at offset %#" PRIx64
				    ": checksum is %#" PRIx32
				    ", the header's bytes sum to %#" PRIx32,
				    file, at, stored, sum);
	if (version >> 16 != 1)
		return vs_error_set(errp, ENOTSUP,
				    "%s: dynamic header at offset %#" PRIx64
				    ": version %#" PRIx32
				    " (only major version 1 is known)",
				    file, at, version);
	memcpy(h->raw, buf, VHD_DYNHDR_LEN);
	h->table_offset = vhd_be64(buf + VHD_H_TABLE_OFFSET);
	h->max_entries = vhd_be32(buf + VHD_H_MAX_ENTRIES);
	h->block_size = vhd_be32(buf + VHD_H_BLOCK_SIZE);
	memcpy(h->parent_uuid, buf + VHD_H_PARENT_UUID, 16);
	h->parent_time = vhd_be32(buf + VHD_H_PARENT_TIME);

	/* A sector at least (QEMU's floor), a power of two, and bounded so
	 * that one block and its bitmap fit in memory and in 32 bits. */
	if (h->block_size < VHD_SECTOR || h->block_size > VHD_MAX_BLOCK ||
	    (h->block_size & (h->block_size - 1)))
		return vs_error_set(errp, EINVAL,
				    "%s: dynamic header at offset %#" PRIx64
				    ": block size %" PRIu32
				    " is not a power of two from 512 to %u",
				    file, at, h->block_size, VHD_MAX_BLOCK);
	blocks = (f->virtual_size + h->block_size - 1) / h->block_size;
	if (h->max_entries < blocks)
		return vs_error_set(errp, EINVAL,
				    "%s: dynamic header at offset %#" PRIx64
				    ": max table entries %" PRIu32
				    " cannot cover the virtual size %" PRIu64
				    " (%" PRIu64 " blocks of %" PRIu32 ")",
				    file, at, h->max_entries, f->virtual_size,
				    blocks, h->block_size);
	bat_bytes = (uint64_t)h->max_entries * 4;
	if (h->table_offset > file_size || bat_bytes > file_size ||
	    h->table_offset + bat_bytes > file_size)
		return vs_error_set(errp, EINVAL,
				    "%s: dynamic header at offset %#" PRIx64
				    ": block allocation table at offset "
				    "%#" PRIx64 " (%" PRIu32
				    " entries, %" PRIu64
				    " bytes) runs past the end of the file "
				    "(%" PRIu64 " bytes)",
				    file, at, h->table_offset, h->max_entries,
				    bat_bytes, file_size);
	need = h->table_offset % VHD_SECTOR;
	if (need)
		return vs_error_set(errp, EINVAL,
				    "%s: dynamic header at offset %#" PRIx64
				    ": block allocation table offset "
				    "%#" PRIx64 " is not sector-aligned",
				    file, at, h->table_offset);
	return 0;
}
