/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VHD (Microsoft Virtual Hard Disk, qemu-img's "vpc"): the on-disk
 * layout and the driver's internal interfaces.  Nothing outside the vhd*
 * files knows this layout.
 *
 * A VHD is a 512-byte footer (at the end of the file; dynamic and
 * differencing images keep a copy at offset 0), and for the dynamic and
 * differencing types a 1024-byte dynamic header, a block allocation
 * table (BAT) of big-endian sector numbers, and blocks: a sector bitmap
 * (one bit per sector, most significant bit first, padded to whole
 * sectors) followed by block_size bytes of data.  All integers are
 * big-endian.
 */
#ifndef VS_FORMATS_VHD_H
#define VS_FORMATS_VHD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../vbd/driver.h"

#define VHD_SECTOR	   512u
#define VHD_FOOTER_LEN	   512u
#define VHD_DYNHDR_LEN	   1024u
#define VHD_COOKIE	   "conectix"
#define VHD_DYN_COOKIE	   "cxsparse"
#define VHD_NO_OFFSET	   UINT64_MAX /* data offset of a fixed image */
#define VHD_BAT_UNUSED	   0xffffffffu
#define VHD_VERSION	   0x00010000u
#define VHD_FEATURES	   0x00000002u /* the "reserved, always set" bit */
#define VHD_BLOCK_SIZE	   (2u << 20)  /* qemu-img's and Hyper-V's default */
#define VHD_MAX_BLOCK	   (256u << 20)
#define VHD_LOCATORS	   8
#define VHD_MAX_LOCATOR	   (64u << 10) /* a path, UTF-16: generous */
#define VHD_BAT_PER_SECTOR 128u

/* Seconds from the Unix epoch to 2000-01-01 00:00:00 UTC, VHD's epoch. */
#define VHD_EPOCH 946684800u

/* CHS limits (VHD spec, appendix "CHS calculation"). */
#define VHD_MAX_GEOMETRY (65535ull * 16 * 255)
/* QEMU refuses more than 2040 GiB, as Hyper-V's VHD limit. */
#define VHD_MAX_SECTORS 0xff000000ull

enum vhd_type {
	VHD_FIXED = 2,
	VHD_DYNAMIC = 3,
	VHD_DIFF = 4,
};

/* Footer field offsets. */
enum {
	VHD_F_COOKIE = 0,
	VHD_F_FEATURES = 8,
	VHD_F_VERSION = 12,
	VHD_F_DATA_OFFSET = 16,
	VHD_F_TIMESTAMP = 24,
	VHD_F_CREATOR_APP = 28,
	VHD_F_CREATOR_VER = 32,
	VHD_F_CREATOR_OS = 36,
	VHD_F_ORIG_SIZE = 40,
	VHD_F_CUR_SIZE = 48,
	VHD_F_CYLS = 56,
	VHD_F_HEADS = 58,
	VHD_F_SECS = 59,
	VHD_F_TYPE = 60,
	VHD_F_CHECKSUM = 64,
	VHD_F_UUID = 68,
	VHD_F_SAVED = 84,
};

/* Dynamic header field offsets. */
enum {
	VHD_H_COOKIE = 0,
	VHD_H_DATA_OFFSET = 8,
	VHD_H_TABLE_OFFSET = 16,
	VHD_H_VERSION = 24,
	VHD_H_MAX_ENTRIES = 28,
	VHD_H_BLOCK_SIZE = 32,
	VHD_H_CHECKSUM = 36,
	VHD_H_PARENT_UUID = 40,
	VHD_H_PARENT_TIME = 56,
	VHD_H_PARENT_NAME = 64, /* 512 bytes of UTF-16BE */
	VHD_H_LOCATORS = 576,	/* 8 entries of 24 bytes */
	VHD_LOC_LEN = 24,	/* code, space, length, reserved, offset */
	VHD_PARENT_NAME_LEN = 512,
};

/* Parent locator platform codes. */
#define VHD_PLAT_W2KU 0x57326b75u /* "W2ku": absolute path, UTF-16LE */
#define VHD_PLAT_W2RU 0x57327275u /* "W2ru": relative path, UTF-16LE */
#define VHD_PLAT_MACX 0x4d616358u /* "MacX": file:// URL, UTF-8 */

/* What the footer says, checked. */
struct vhd_footer {
	uint32_t type;
	uint64_t data_offset;
	uint64_t cur_size;
	uint16_t cyls;
	uint8_t heads, secs;
	char creator_app[4];
	uint8_t uuid[16];
	uint64_t virtual_size; /* as qemu computes it */
	bool size_from_chs;    /* virtual_size came from the geometry */
};

/* What the dynamic header says, checked against the file. */
struct vhd_dynhdr {
	uint64_t table_offset;
	uint32_t max_entries;
	uint32_t block_size;
	uint8_t parent_uuid[16];
	uint32_t parent_time;
	uint8_t raw[VHD_DYNHDR_LEN];
};

struct vhd {
	struct vbd *file;   /* the host file, a raw vbd */
	struct vbd *parent; /* differencing images: the parent VHD */
	struct vhd_footer f;
	struct vhd_dynhdr h;
	uint8_t footer_raw[VHD_FOOTER_LEN]; /* rewritten at each new end */
	uint64_t file_size;	 /* grows as blocks are added (lock) */
	uint64_t fixed_data_end; /* fixed: where the footer sits */

	/* Dynamic and differencing images. */
	uint32_t block_size;
	uint32_t block_sectors;
	uint32_t bitmap_size; /* bytes, a multiple of 512 */
	uint32_t nblocks;     /* blocks the virtual size needs */
	uint32_t *bat;	      /* host order, max_entries of them */
	uint8_t *state;	      /* per block: enum vhd_bstate */
	uint64_t next_block;  /* where the next block goes */
	uint8_t *bat_dirty;   /* per BAT sector: entries not yet written */
	bool any_dirty;	      /* bat_dirty has a set byte (wlock) */

	bool writable;
	bool fd_copy_off;      /* the host file refused a kernel copy (wlock) */
	pthread_mutex_t lock;  /* bat and state, held briefly */
	pthread_mutex_t wlock; /* writers that allocate or set bits */
	char *parent_path;     /* where the parent was found */
};

enum vhd_bstate {
	VHD_BS_UNKNOWN = 0, /* bitmap not read yet */
	VHD_BS_FULL,	    /* every sector's bit is set */
	VHD_BS_PARTIAL,	    /* some bits clear: read the bitmap */
};

/* Big-endian helpers. */
static inline uint16_t vhd_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t vhd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t vhd_be64(const uint8_t *p)
{
	return (uint64_t)vhd_be32(p) << 32 | vhd_be32(p + 4);
}
static inline void vhd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void vhd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void vhd_put64(uint8_t *p, uint64_t v)
{
	vhd_put32(p, (uint32_t)(v >> 32));
	vhd_put32(p + 4, (uint32_t)v);
}

/* vhd-footer.c */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip_at);
void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads,
		  uint8_t *secs);
int vhd_footer_parse(const uint8_t *buf, const char *file, uint64_t at,
		     struct vhd_footer *f, struct vs_error **errp);
int vhd_dynhdr_parse(const uint8_t *buf, const char *file,
		     const struct vhd_footer *f, uint64_t file_size,
		     struct vhd_dynhdr *h, struct vs_error **errp);
int vhd_read_footer(struct vbd *file, const char *name, bool end_only,
		    uint8_t *raw, uint64_t *found_at, struct vs_error **errp);

/* vhd-parent.c */
int vhd_open_parent(struct vbd *vbd, struct vhd *s, struct vs_error **errp);
int vhd_build_locators(const char *child, const char *parent,
		       uint64_t first_offset, uint8_t *hdr, uint8_t **data,
		       size_t *data_len, struct vs_error **errp);
const uint8_t *vhd_uuid_of(const struct vbd *vhd_vbd);
bool vhd_is_vhd(const struct vbd *vbd);

/* vhd.c */
int vhd_read(struct vhd *s, uint64_t offset, const struct iovec *iov,
	     int iovcnt);
int vhd_block_state(struct vhd *s, uint32_t idx, uint8_t *bitmap,
		    enum vhd_bstate *out);
int vhd_file_write(struct vhd *s, uint64_t off, const void *buf, size_t len);
int vhd_file_writev(struct vhd *s, uint64_t off, const struct iovec *iov,
		    int iovcnt);

/* vhd-write.c */
int vhd_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		int iovcnt);
int vhd_flush(struct vbd *vbd);
int vhd_flush_image(struct vhd *s);
int vhd_discard(struct vbd *vbd, uint64_t offset, uint64_t len);
int vhd_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		     unsigned flags);
int vhd_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int fd,
		     uint64_t fd_off);

/* vhd-create.c */
int vhd_create(const char *path, uint64_t size, const char *options,
	       struct vs_error **errp);

static inline bool vhd_bit(const uint8_t *bitmap, uint32_t sector)
{
	return bitmap[sector / 8] & (0x80u >> (sector % 8));
}

#endif
