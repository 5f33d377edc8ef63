/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the VMDK driver (imgtools/formats/vmdk*.c): the on-disk
 * layout and the driver's state.  Others reach the driver through
 * vbd_driver_vmdk in vbd/registry.c.
 *
 * A VMDK disk is a text descriptor (a file of its own, or embedded in a
 * hosted sparse extent) that lists extents: FLAT (raw bytes in a file
 * at an offset), ZERO, and SPARSE (the hosted sparse format: a 512-byte
 * header, a grain directory of grain-table sector numbers, grain tables
 * of grain sector numbers, and grains, compressed with markers in
 * streamOptimized images).  All numbers on disk are little-endian and
 * count 512-byte sectors.
 */
#ifndef VS_IMGTOOLS_FORMATS_VMDK_H
#define VS_IMGTOOLS_FORMATS_VMDK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../../vbd/driver.h"

#define VMDK_SECTOR	 512u
#define VMDK4_MAGIC	 0x564d444bu /* "KDMV" read little-endian */
#define VMDK3_MAGIC	 0x44574f43u /* "COWD" read little-endian */
#define VMDK_HEADER_SIZE 512u

#define VMDK_FLAG_NL_DETECT  (1u << 0)
#define VMDK_FLAG_RGD	     (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS    (1u << 17)

#define VMDK_GD_AT_END	      UINT64_MAX
#define VMDK_COMPRESS_NONE    0
#define VMDK_COMPRESS_DEFLATE 1
#define VMDK_GTE_ZEROED	      1u

/* Stream markers: a grain marker is {lba u64, size u32} then data; a
 * metadata marker is {sectors u64, 0 u32, type u32} padded to a sector. */
#define VMDK_MARKER_EOS	   0
#define VMDK_MARKER_GT	   1
#define VMDK_MARKER_GD	   2
#define VMDK_MARKER_FOOTER 3
#define VMDK_GRAIN_MARKER  12u /* bytes before a compressed grain */

/*
 * Limits.  Grains are powers of two up to 16 MiB (VMware writes 64 KiB);
 * a grain table has at most 512 entries (the spec's fixed value; fewer
 * are accepted); the grain directory, the descriptor and the extent list
 * are bounded so that a hostile header cannot make us allocate much.
 */
#define VMDK_MAX_GRAIN_SECTORS 32768u
#define VMDK_MAX_GTES	       512u
#define VMDK_MAX_GD_ENTRIES    (16u << 20)
#define VMDK_MAX_DESC	       (1u << 20)
#define VMDK_MAX_EXTENTS       16384u
#define VMDK_MAX_CAPACITY      (1ull << 50) /* sectors: 512 PiB */
/* Grain tables kept in memory at once before the cache starts over. */
#define VMDK_GT_CACHE_BYTES (64u << 20)

/* What `vstor img create -f vmdk` writes. */
#define VMDK_DEFAULT_GRAIN   128u /* sectors: 64 KiB */
#define VMDK_DESC_SECTORS    20u
#define VMDK_2GB_EXTENT	     (4194304ull) /* sectors per twoGbMaxExtent file */
#define VMDK_STREAM_OVERHEAD 128u	  /* sectors before the first grain */

/* The sparse extent header, in host byte order. */
struct vmdk_header {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint64_t capacity;	/* sectors */
	uint64_t grain_sectors; /* sectors per grain */
	uint64_t desc_offset;	/* sector of the embedded descriptor, 0 */
	uint64_t desc_size;	/* its length in sectors */
	uint32_t num_gtes;	/* entries per grain table */
	uint64_t rgd_offset;	/* sector of the redundant GD, 0 if none */
	uint64_t gd_offset;	/* sector of the GD, or VMDK_GD_AT_END */
	uint64_t overhead;	/* sectors before the first grain */
	uint8_t unclean;
	uint8_t nl_chars[4]; /* '\n', ' ', '\r', '\n' */
	uint16_t compress;
};

void vmdk_header_decode(const uint8_t *buf, struct vmdk_header *h);
void vmdk_header_encode(const struct vmdk_header *h, uint8_t *buf);

/* The text descriptor. */
enum vmdk_ext_type {
	VMDK_EXT_FLAT, /* FLAT, VMFS */
	VMDK_EXT_SPARSE,
	VMDK_EXT_ZERO,
};

struct vmdk_desc_extent {
	enum vmdk_ext_type type;
	char type_name[16]; /* as written: "FLAT", "VMFS", "SPARSE"... */
	bool rdonly;
	uint64_t sectors;
	uint64_t offset; /* FLAT: sectors into the file */
	char *file;	 /* NULL for ZERO */
};

struct vmdk_desc {
	uint32_t version;
	uint32_t cid, parent_cid;
	char *create_type;
	char *parent_hint; /* parentFileNameHint, NULL if none */
	struct vmdk_desc_extent *ext;
	unsigned next;
};

/*
 * Parse descriptor text `text` (`len` bytes, NULs end it early) found in
 * `filename` at byte `base`.  Errors name the file, the line number and
 * the line's byte offset.
 */
int vmdk_desc_parse(const char *text, size_t len, const char *filename,
		    uint64_t base, struct vmdk_desc *d, struct vs_error **errp);
void vmdk_desc_free(struct vmdk_desc *d);

/* A hosted sparse extent. */
struct vmdk_sparse {
	struct vmdk_header h;
	const char *path; /* the extent file's name, for messages */
	struct vbd *file; /* borrowed from the extent */
	uint32_t grain_size;
	uint64_t grains;     /* grains the capacity covers */
	uint32_t gd_entries; /* grain tables the capacity needs */
	uint32_t gt_bytes;   /* num_gtes * 4 */
	uint32_t gt_span;    /* gt_bytes rounded up to sectors */
	uint64_t gd_off;     /* bytes (the footer's when at the end) */
	bool compressed, markers, zero_grain;
	bool at_end;	    /* GD and GTs at the end (streamOptimized as VMware
		      * writes it): rewritten after the grains on flush */
	uint32_t *gd, *rgd; /* host order; rgd only when writable */

	/* The grain-table cache and everything written: under lock. */
	pthread_mutex_t lock;
	uint32_t **gt;	/* gd_entries slots, NULL = not loaded */
	bool *gt_dirty; /* the table changed since it was stored */
	bool gd_dirty;	/* a GD entry changed (a new table) */
	uint64_t gt_bytes_loaded;
	uint64_t file_size; /* bytes in the file */
	uint64_t next;	    /* where the next grain goes (bytes) */
	bool writable;
	bool tail_dirty;    /* at_end: grains since the tables were written */
	bool unsafe;	    /* VBD_O_UNSAFE: no fdatasync between steps */
	struct vbd *parent; /* the disk's parent (borrowed), NULL if none */
	uint64_t vstart;    /* the extent's first virtual byte */
};

/* One extent of the disk. */
struct vmdk_extent {
	enum vmdk_ext_type type;
	char *path;	   /* resolved name of its file (NULL for ZERO) */
	struct vbd *file;  /* NULL for ZERO */
	bool own_file;	   /* false: the descriptor's file, closed there */
	uint64_t start;	   /* first virtual byte */
	uint64_t size;	   /* bytes */
	uint64_t flat_off; /* FLAT: bytes into the file */
	struct vmdk_sparse *sp;
};

struct vmdk {
	struct vbd *file; /* the file opened (descriptor or sparse) */
	struct vmdk_desc desc;
	struct vmdk_extent *ext;
	unsigned next;
	const char *filename;
	bool writable;
	struct vbd *parent; /* opened from parentFileNameHint, or NULL */
};

/* vmdk-sparse.c */
/* Check the header in `hdr` (512 bytes) of the extent `e` against its
 * file and load its grain directory. */
int vmdk_sparse_open(struct vmdk_extent *e, const uint8_t *hdr, bool writable,
		     struct vs_error **errp);
void vmdk_sparse_close(struct vmdk_sparse *sp);

enum vmdk_gtype {
	VMDK_G_UNALLOC,
	VMDK_G_ZERO,
	VMDK_G_NORMAL,
	VMDK_G_COMPRESSED,
};

/* What bytes [rel, rel+len) of a sparse extent map to: the first grain's
 * type and the run of grains after it that continue it. */
struct vmdk_run {
	enum vmdk_gtype type;
	uint64_t host; /* NORMAL: bytes into the file of `rel`; COMPRESSED:
			* the grain's marker or data */
	uint64_t len;
};

int vmdk_sparse_map(struct vmdk_sparse *sp, uint64_t rel, uint64_t len,
		    struct vmdk_run *run);
/* The grain table entry of grain `g` (under sp->lock). */
int vmdk_gte_get(struct vmdk_sparse *sp, uint64_t g, uint32_t *gte);
int vmdk_gte_set(struct vmdk_sparse *sp, uint64_t g, uint32_t gte);
/* Read `n` bytes at `rel` of a grain stored compressed at `host` into buf. */
int vmdk_read_compressed(struct vmdk_sparse *sp, uint64_t rel, uint64_t host,
			 uint8_t *buf, size_t n);
/* Write back changed tables in crash-safe order (data, GT, GD). */
int vmdk_sparse_flush(struct vmdk_sparse *sp);
/* Load every grain table (writing a stream keeps them all). */
int vmdk_sparse_load_all(struct vmdk_sparse *sp, struct vs_error **errp);
int vmdk_file_pwrite(struct vmdk_sparse *sp, uint64_t off, const void *buf,
		     size_t len);

/* vmdk-stream.c */
int vmdk_deflate(const void *in, size_t len, size_t grain, void *out,
		 size_t out_cap, size_t *out_len);
int vmdk_inflate(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
		 size_t *out_len);
/* Store one compressed grain (under sp->lock). */
int vmdk_stream_append(struct vmdk_sparse *sp, uint64_t g, const void *z,
		       size_t zlen);
/* at_end images: write GTs, GD, footer and end-of-stream after the
 * grains (under sp->lock). */
int vmdk_stream_write_tail(struct vmdk_sparse *sp);
/* at_end images: find where the grains end, for appending. */
int vmdk_stream_open_write(struct vmdk_sparse *sp, struct vs_error **errp);
/* Read the footer of a GD_AT_END image into *h. */
int vmdk_stream_footer(struct vbd *file, const char *path, uint64_t file_size,
		       struct vmdk_header *h, struct vs_error **errp);

/* vmdk-write.c */
int vmdk_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		 int iovcnt);
int vmdk_flush(struct vbd *vbd);
int vmdk_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		      unsigned flags);
int vmdk_compress(struct vbd *vbd, const void *in, size_t len, void *out,
		  size_t out_cap, size_t *out_len);
int vmdk_pwrite_compressed(struct vbd *vbd, uint64_t offset, const void *buf,
			   size_t len);
/* The extent holding virtual byte `off`. */
struct vmdk_extent *vmdk_find_extent(struct vmdk *s, uint64_t off);

/* vmdk-parent.c */
/* `name` relative to the directory of `base` (absolute names as is). */
char *vmdk_relative_path(const char *base, const char *name);
int vmdk_parent_open(struct vbd *vbd, struct vmdk *s, struct vs_error **errp);
/* Read `n` bytes of the parent at `pos` into the list from `skip` on
 * (zeros past its end); `part` has room for iovcnt entries. */
int vmdk_parent_read(struct vbd *parent, uint64_t pos, const struct iovec *iov,
		     int iovcnt, size_t skip, size_t n, struct iovec *part);
int vmdk_parent_fill(struct vbd *parent, uint64_t pos, uint8_t *buf, size_t n);
/* The CID of the VMDK disk at `path`, for a child's parentCID. */
int vmdk_parent_cid(const char *path, uint32_t *cid, struct vs_error **errp);

/* vmdk-check.c */
int vmdk_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
	       struct vs_error **errp);

/* vmdk-create.c */
int vmdk_create(const char *path, uint64_t size, const char *options,
		struct vs_error **errp);

/* Little-endian helpers. */
static inline uint32_t vmdk_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t vmdk_le64(const uint8_t *p)
{
	return (uint64_t)vmdk_le32(p) | (uint64_t)vmdk_le32(p + 4) << 32;
}

static inline void vmdk_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void vmdk_put64(uint8_t *p, uint64_t v)
{
	vmdk_put32(p, (uint32_t)v);
	vmdk_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
