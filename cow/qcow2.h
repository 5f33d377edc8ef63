/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to cow/: the qcow2 on-disk layout and the driver's state.
 * Nothing outside this folder includes it; the driver is reached through
 * vbd_driver_qcow2 in the registry.
 */
#ifndef VS_COW_QCOW2_H
#define VS_COW_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "../vbd/driver.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_V2_HEADER_LEN    72
#define QCOW2_V3_HEADER_LEN    104
#define QCOW2_MAX_L1_BYTES     (32u << 20)
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_CHAIN	       256

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY	    (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	    (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ull << 3)
#define QCOW2_INCOMPAT_EXTENDED_L2  (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* Header extension types. */
#define QCOW2_EXT_END		 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE	 0x6803f857u

#define QCOW2_COMPRESSION_ZLIB 0
#define QCOW2_COMPRESSION_ZSTD 1

/* Table entries. */
#define QCOW2_OFFSET_MASK     0x00fffffffffffe00ull /* bits 9..55 */
#define QCOW2_L2E_COPIED      (1ull << 63)
#define QCOW2_L2E_COMPRESSED  (1ull << 62)
#define QCOW2_L2E_ZERO	      (1ull << 0)
#define QCOW2_COMPRESSED_SECT 512

/* The header as read from disk, in host byte order. */
struct qcow2_header {
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible;
	uint64_t compatible;
	uint64_t autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
};

/*
 * Everything the header and its extensions say, checked.  backing_file
 * and backing_format are owned (NULL when absent).
 */
struct qcow2_meta {
	struct qcow2_header h;
	uint32_t cluster_size;
	char *backing_file;
	char *backing_format;
};

/*
 * Check the header in `buf` (the first `len` bytes of the image, at
 * least the whole first cluster or the whole file if that is shorter)
 * against a file of `file_size` bytes.  Fills *m; on failure *errp names
 * `filename`, the field and its value.
 */
int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		       const char *filename, struct qcow2_meta *m,
		       struct vs_error **errp);
void qcow2_meta_free(struct qcow2_meta *m);

/* What a guest cluster (or a run of them) is made of. */
enum qcow2_ctype {
	QCOW2_UNALLOCATED, /* from the backing file, or zeros */
	QCOW2_ZERO,	   /* reads as zeros here */
	QCOW2_NORMAL,	   /* stored at `host` */
	QCOW2_COMPRESSED,  /* compressed at `host`, `csize` bytes */
};

struct qcow2_run {
	enum qcow2_ctype type;
	uint64_t host;	/* NORMAL: host offset of the first byte asked */
	uint64_t csize; /* COMPRESSED: bytes of compressed data */
	uint64_t len;	/* bytes of the guest range with this mapping */
};

#define QCOW2_L2_CACHE 16
#define QCOW2_RB_CACHE 4

/*
 * A cached metadata cluster: an L2 table (host byte order, `table`) or a
 * refcount block (as on disk, `data`).  Both caches are arrays of these
 * with their own LRU clock, searched by qcow2_cache_get().
 */
struct qcow2_meta_slot {
	uint64_t offset; /* host offset of the cluster, 0 = empty */
	uint64_t used;	 /* LRU stamp */
	union {
		uint64_t *table; /* L2: cluster_size / 8 entries */
		uint8_t *data;	 /* refcount block: packed, big-endian */
	};
};

struct qcow2 {
	struct qcow2_meta m;
	struct vbd *file;    /* the image file, opened raw */
	struct vbd *backing; /* NULL if none */
	uint64_t file_size;
	uint32_t cluster_bits;
	uint32_t cluster_size;
	uint32_t l2_bits; /* log2 of entries per L2 table */
	uint64_t *l1;	  /* l1_size entries, host byte order */
	uint32_t l1_size;
	bool corrupt; /* metadata found bad since open (atomic) */

	pthread_mutex_t l2_lock;
	uint64_t l2_clock;
	struct qcow2_meta_slot l2[QCOW2_L2_CACHE];

	/* Writing (qcow2-write.c, qcow2-refcount.c): what follows changes
	 * under w_lock only. */
	const char *filename; /* the vbd's, for messages */
	bool writable;
	/* Lazy refcounts: the dirty bit is set while open for writing
	 * (refcounts are kept exact all the same). */
	bool lazy;
	pthread_mutex_t w_lock;
	uint64_t *rt;	     /* refcount table, host byte order */
	uint64_t rt_size;    /* entries */
	uint32_t rc_order;   /* log2 of refcount_bits */
	uint64_t rb_entries; /* refcounts per refcount block */
	uint64_t alloc_end;  /* new clusters go here (cluster-aligned) */
	struct qcow2_meta_slot rb[QCOW2_RB_CACHE];
	uint64_t rb_clock;
	uint8_t *cbuf; /* one cluster of scratch */
};

/* qcow2-cluster.c */
int qcow2_l1_load(struct qcow2 *s, const char *filename,
		  struct vs_error **errp);
/* Allocates the cache tables; l2_lock is initialised by open. */
int qcow2_l2_cache_init(struct qcow2 *s);
void qcow2_l2_cache_free(struct qcow2 *s);
/*
 * Find the cluster at `off` among `n` cache slots, or read it (raw, as
 * on disk) into the least recently used one.  Returns 1 when it was just
 * read, 0 when it was cached, -errno on a read error (the slot is then
 * left empty).  The caller holds the lock guarding `slots` and `clock`.
 */
int qcow2_cache_get(struct qcow2 *s, struct qcow2_meta_slot *slots, int n,
		    uint64_t *clock, uint64_t off,
		    struct qcow2_meta_slot **out);
/*
 * Map guest bytes [offset, offset+len) (len > 0, inside the disk): sets
 * *run to the type of the first cluster and run->len to how many of the
 * bytes share it (contiguous on the host for NORMAL; one cluster at most
 * for COMPRESSED).  Returns 0 or -EIO for bad metadata (logged, the
 * image marked corrupt).
 */
int qcow2_map(struct qcow2 *s, const char *filename, uint64_t offset,
	      uint64_t len, struct qcow2_run *run);

/* Copy the whole L2 table at `l2off` (cluster_size / 8 entries). */
int qcow2_l2_read(struct qcow2 *s, uint64_t l2off, uint64_t *table);
/* The raw L2 entry for guest `offset` (0 if it has no L2 table), and
 * whether its table is owned by this image alone (COPIED in L1). */
int qcow2_l2_lookup(struct qcow2 *s, uint64_t offset, uint64_t *e, bool *owned);
/* Forget a cached L2 table (rewritten or freed on disk). */
void qcow2_l2_drop(struct qcow2 *s, uint64_t l2off);
int qcow2_corrupt(struct qcow2 *s, const char *filename, const char *what,
		  uint64_t table, uint64_t index, uint64_t entry);

/*
 * Whole-image operations (check and repair, internal snapshots) work on
 * the metadata in the file.  Before: qcow2_meta_flush writes back every
 * cached metadata change and makes it stable.  After rewriting tables
 * in the file: qcow2_meta_reload forgets every cached table and reads
 * the header, the L1 table and the refcount table again.  Both run with
 * w_lock held (or before the image is in use).
 */
int qcow2_meta_flush(struct qcow2 *s);
int qcow2_meta_reload(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp);

/* qcow2.c */
int qcow2_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		 int iovcnt);

/* qcow2-refcount.c: refcounts of `bits` = 1 << order bits, packed as
 * the spec packs them (sub-byte widths from the low bit up, wider ones
 * big-endian). */
uint64_t qcow2_rc_get(const uint8_t *block, uint64_t i, uint32_t order);
void qcow2_rc_set(uint8_t *block, uint64_t i, uint32_t order, uint64_t v);
int qcow2_refcount_load(struct qcow2 *s, const char *filename,
			struct vs_error **errp);
/* Forget the cached blocks and read the (maybe moved) table again. */
int qcow2_refcount_reload(struct qcow2 *s, const char *filename,
			  struct vs_error **errp);
void qcow2_refcount_free(struct qcow2 *s);
/* The refcount of host cluster `host` (0 when no block covers it). */
int qcow2_refcount_get(struct qcow2 *s, uint64_t host, uint64_t *val);
/* Add `delta` (+1 or -1) to every cluster that [host, host+len) touches;
 * written through to disk.  -EIO if a count would overflow or go below
 * zero, or no block covers a cluster. */
int qcow2_refcount_update(struct qcow2 *s, uint64_t host, uint64_t len,
			  int delta);
/*
 * Reserve a cluster at the end of the image: its refcount is still 0 and
 * becomes 1 with qcow2_refcount_update once its content is stable.  New
 * refcount blocks (and a larger refcount table) are written and made
 * stable here before anything uses them.
 */
int qcow2_alloc_cluster(struct qcow2 *s, uint64_t *host);
/* Write to the image file, growing it (and what it may hold) as needed. */
int qcow2_file_pwritev(struct qcow2 *s, uint64_t off, const struct iovec *iov,
		       int iovcnt);
int qcow2_file_pwrite(struct qcow2 *s, uint64_t off, const void *buf,
		      size_t len);

/* qcow2-write.c */
int qcow2_open_write(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp);
void qcow2_close_write(struct vbd *vbd, struct qcow2 *s);
int qcow2_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		  int iovcnt);
int qcow2_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		       unsigned flags);
int qcow2_flush(struct vbd *vbd);

#endif
