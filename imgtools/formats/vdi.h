/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the VDI driver (imgtools/formats/vdi*.c): VirtualBox's
 * on-disk layout and the driver's state.  Everything else reaches the
 * format through vbd_driver_vdi in vbd/registry.c.
 *
 * A VDI file, version 1.1, all integers little-endian:
 *
 *   0x000  pre-header: free text ("<<< ... Disk Image >>>\n"), then at
 *          0x40 the signature 0xbeda107f and the version (1.1 = 0x00010001)
 *   0x048  header_size bytes of header (0x180 as qemu writes it, 0x190
 *          with VirtualBox's geometry), fields at the offsets below
 *   offset_bmap  the block map: blocks_in_image 32-bit entries, each the
 *          index of the data block holding that guest block, or
 *          VDI_BMAP_FREE / VDI_BMAP_ZERO (both read as zeros)
 *   offset_data  data blocks, block_size bytes each, in index order
 */
#ifndef VS_FORMATS_VDI_H
#define VS_FORMATS_VDI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../../vbd/driver.h"

#define VDI_SIGNATURE	0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_SECTOR	512u

/* Field offsets in the file. */
#define VDI_OFF_SIGNATURE	 0x40
#define VDI_OFF_VERSION		 0x44
#define VDI_OFF_HEADER_SIZE	 0x48
#define VDI_OFF_IMAGE_TYPE	 0x4c
#define VDI_OFF_IMAGE_FLAGS	 0x50
#define VDI_OFF_DESCRIPTION	 0x54
#define VDI_OFF_OFFSET_BMAP	 0x154
#define VDI_OFF_OFFSET_DATA	 0x158
#define VDI_OFF_SECTOR_SIZE	 0x168
#define VDI_OFF_DISK_SIZE	 0x170
#define VDI_OFF_BLOCK_SIZE	 0x178
#define VDI_OFF_BLOCK_EXTRA	 0x17c
#define VDI_OFF_BLOCKS_IN_IMAGE	 0x180
#define VDI_OFF_BLOCKS_ALLOCATED 0x184
#define VDI_OFF_UUID_IMAGE	 0x188
#define VDI_OFF_UUID_LAST_SNAP	 0x198
#define VDI_OFF_UUID_LINK	 0x1a8
#define VDI_OFF_UUID_PARENT	 0x1b8

/* header_size counts from VDI_OFF_HEADER_SIZE; the 1.1 fields end with
 * the parent UUID. */
#define VDI_HEADER_MIN_SIZE (VDI_OFF_UUID_PARENT + 16 - VDI_OFF_HEADER_SIZE)
/* What open reads: the pre-header and every field it knows. */
#define VDI_HEADER_BYTES 512u

#define VDI_TYPE_DYNAMIC 1u
#define VDI_TYPE_STATIC	 2u
#define VDI_TYPE_UNDO	 3u
#define VDI_TYPE_DIFF	 4u

#define VDI_BMAP_FREE	    0xffffffffu /* never written: reads zeros */
#define VDI_BMAP_ZERO	    0xfffffffeu /* discarded: reads zeros */
#define VDI_BMAP_IS_DATA(e) ((e) < VDI_BMAP_ZERO)

/*
 * Block sizes we accept: powers of two from a sector to 64 MiB.  Every
 * image VirtualBox or qemu writes has 1 MiB blocks (qemu reads no other
 * size); the bound keeps a block-sized buffer affordable.
 */
#define VDI_BLOCK_MIN	  VDI_SECTOR
#define VDI_BLOCK_MAX	  (64u << 20)
#define VDI_BLOCK_DEFAULT (1u << 20)
/* qemu's bound: the map's byte size must fit in 32 bits. */
#define VDI_BLOCKS_MAX 0x3fffffffu

/* The header fields, in host byte order. */
struct vdi_header {
	uint32_t signature;
	uint32_t version;
	uint32_t header_size;
	uint32_t image_type;
	uint32_t image_flags;
	uint32_t offset_bmap;
	uint32_t offset_data;
	uint32_t sector_size;
	uint64_t disk_size;
	uint32_t block_size;
	uint32_t block_extra;
	uint32_t blocks_in_image;
	uint32_t blocks_allocated;
	uint8_t uuid_link[16];
	uint8_t uuid_parent[16];
};

struct vdi {
	struct vbd *file; /* the image file, a raw vbd under this one */
	const char *filename;
	struct vdi_header h;
	uint32_t block_bits;
	uint64_t size;	    /* the virtual size (whole sectors) */
	uint64_t file_size; /* bytes, grows as blocks are added (atomic) */
	/*
	 * blocks_in_image entries in host byte order.  Read with atomic
	 * loads: writers publish an entry only once its data is stable.
	 */
	uint32_t *bmap;
	/* The first entry found bad at open (out of range, past the end of
	 * the file, or sharing a data block), and how many: such an image
	 * opens read-only (except to be repaired). */
	uint64_t bad_entries;
	uint32_t first_bad;

	bool writable;
	/* Writers that add or move data blocks hold it; the fields below
	 * change under it only. */
	pthread_mutex_t alloc_lock;
	/* In-place reads and writes hold it shared; moving a data block
	 * (discard) holds it exclusively, so nothing is aimed at a block
	 * while it moves. */
	pthread_rwlock_t move_lock;
	uint32_t next_index; /* the next free data block index */
	/* Data index -> the guest block using it (VDI_RMAP_NONE if none), so
	 * that the last block can be moved into a freed one's place. */
	uint32_t *rmap;
	uint8_t *block_buf; /* one block, for moving blocks */
	void *zero_buf;	    /* one block of zeros, never written */
};

/* vdi-header.c */

/*
 * Check the header in `buf` (the first VDI_HEADER_BYTES of the image,
 * zero-padded if the file is shorter) against a file of `file_size`
 * bytes.  Fills *h; on failure *errp names `filename`, the field, its
 * offset and its value.
 */
int vdi_header_parse(const uint8_t *buf, uint64_t file_size,
		     const char *filename, struct vdi_header *h,
		     struct vs_error **errp);

/* Byte offset of the data block with index `idx`. */
static inline uint64_t vdi_data_offset(const struct vdi_header *h, uint32_t idx)
{
	return h->offset_data + ((uint64_t)idx << __builtin_ctz(h->block_size));
}

/*
 * Why a map entry holding data index `e` is unusable in a file of
 * `file_size` bytes: NULL when it is fine, else a phrase for a message.
 */
const char *vdi_entry_problem(const struct vdi_header *h, uint32_t e,
			      uint64_t file_size);

/* Little-endian accessors. */
uint32_t vdi_le32(const uint8_t *p);
uint64_t vdi_le64(const uint8_t *p);
void vdi_put_le32(uint8_t *p, uint32_t v);
void vdi_put_le64(uint8_t *p, uint64_t v);

/* vdi.c, for vdi-check.c and vdi-resize.c */

#define VDI_RMAP_NONE 0xffffffffu /* reverse map: data index unused */

/* Store map entry `i` := `e` in the file (not synced), then in memory. */
int vdi_set_entry(struct vdi *s, uint32_t i, uint32_t e);
/* Entries [blk, blk+n) := first, first+1... (or `first` for all when it
 * is not a data index), likewise. */
int vdi_set_entries(struct vdi *s, uint32_t blk, uint32_t n, uint32_t first);
/* Write to the image file, growing it as needed (not synced). */
int vdi_file_pwrite(struct vdi *s, uint64_t off, const void *buf, size_t len);
/* Write the header's blocks_allocated (not synced). */
int vdi_set_allocated(struct vdi *s, uint32_t n);
/*
 * Copy data block `from` into the free slot `to` and point guest block
 * `guest` at the copy: the copy is stable before the entry changes, and
 * the entry before `from` may be reused.  Under alloc_lock, and
 * move_lock exclusive.
 */
int vdi_move_block(struct vdi *s, uint32_t guest, uint32_t from, uint32_t to);
/*
 * Move the last data blocks into the holes below them until the indices
 * are dense, then write the count to the header.  Under alloc_lock, and
 * move_lock exclusive.
 */
int vdi_compact(struct vdi *s);
/*
 * Guest block `blk` (a data entry) reads as zeros from now on and its
 * data block is given back (the last one moves into its place).  Under
 * alloc_lock and move_lock (exclusive).
 */
int vdi_free_block(struct vdi *s, uint32_t blk);

/* vdi-create.c */
int vdi_create(const char *path, uint64_t size, const char *options,
	       struct vs_error **errp);

/* vdi-resize.c: the driver's truncate (see vbd_truncate). */
int vdi_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
		 struct vs_error **errp);

/* vdi-check.c */
int vdi_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
	      struct vs_error **errp);

#endif
