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
/* The write lane (a driver running its own queue of blocking work:
 * driver.h only offers the pool per request). */
#include "../vbd/lane.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_V2_HEADER_LEN    72
#define QCOW2_V3_HEADER_LEN    104
#define QCOW2_MAX_L1_BYTES     (32u << 20)
#define QCOW2_MAX_BACKING_NAME 1023
/* Limits QEMU also applies. */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS	 65536
/* The fixed part of a snapshot table entry: no entry is shorter. */
#define QCOW2_SNAPSHOT_MIN_BYTES 40

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

/*
 * A compressed L2 entry: the offset of its first byte in the low x bits,
 * then how many 512-byte sectors follow the one holding that byte, with
 * x = 62 - (cluster_bits - 8).
 */
static inline unsigned qcow2_compressed_shift(uint32_t cluster_bits)
{
	return 62 - (cluster_bits - 8);
}

static inline void qcow2_compressed_loc(uint32_t cluster_bits, uint64_t e,
					uint64_t *host, uint64_t *nsect)
{
	unsigned x = qcow2_compressed_shift(cluster_bits);

	*host = e & ((1ull << x) - 1);
	*nsect = ((e >> x) & ((1ull << (62 - x)) - 1)) + 1;
}

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
	uint64_t host;	/* NORMAL: host offset of the first byte asked;
			 * ZERO and UNALLOCATED: the same for a unit that
			 * keeps a host cluster (preallocated zeros,
			 * extended L2), else 0 */
	uint64_t csize; /* COMPRESSED: bytes of compressed data */
	uint64_t len;	/* bytes of the guest range with this mapping */
};

/* The L2 cache by default covers the whole disk, up to this much of
 * tables (as QEMU's default does on Linux); at least QCOW2_L2_MIN
 * tables. */
#define QCOW2_L2_CACHE_MAX (32u << 20)
#define QCOW2_L2_MIN	   16
#define QCOW2_RB_CACHE	   16

/*
 * A cached metadata cluster: an L2 table (host byte order, `table`) or a
 * refcount block (as on disk, `data`).
 */
struct qcow2_meta_slot {
	uint64_t offset; /* host offset of the cluster, 0 = empty */
	uint64_t used;	 /* LRU stamp */
	int32_t next;	 /* hash chain */
	bool dirty;	 /* changed since read: to be written back */
	union {
		uint64_t *table; /* L2 */
		uint8_t *data;	 /* refcount block: packed, big-endian */
	};
};

struct qcow2_cache {
	struct qcow2_meta_slot *slots;
	uint32_t n, ndirty;
	int32_t *hash;
	uint32_t hmask;
	uint64_t clock;
	uint32_t cluster_size;
	bool be64; /* 64-bit entries, converted to host order in memory */
};

/*
 * Requests that translated guest offsets without the writers' lock and
 * may still do I/O on what they found (qcow2-submit.c): freed clusters
 * are handed out again only once every such request of an older epoch
 * is done.  Counters rather than a lock, as asynchronous requests end on
 * other threads.
 */
struct qcow2_gate {
	unsigned epoch;	   /* atomic; its low bit picks the count */
	unsigned count[2]; /* atomic: requests in even and odd epochs */
	bool waiting;	   /* atomic: a drain waits for `drained` */
	bool ready;	   /* initialised */
	pthread_mutex_t lock;
	pthread_cond_t drained;
};

/*
 * The lane (qcow2-submit.c): writes in place to the page cache of a
 * file system that cannot take them without waiting, in a FIFO that one
 * pool job at a time drains.
 */
/* A reference to drop once the tables that stopped using it are
 * stable (qcow2-flush.c). */
struct qcow2_free {
	uint64_t host, len;
};

struct qcow2 {
	struct qcow2_meta m;
	struct vbd *file;    /* the image file, opened raw */
	struct vbd *backing; /* NULL if none */
	uint64_t file_size;
	uint32_t cluster_bits;
	uint32_t cluster_size;
	uint32_t l2_bits;  /* log2 of entries per L2 table */
	uint32_t l2_words; /* 64-bit words per L2 entry: 1, or 2 with
			    * extended L2 entries */
	uint32_t sc_bits;  /* log2 of the subcluster size (= cluster_bits
			    * without extended L2 entries) */
	uint64_t *l1;	   /* l1_size entries, host byte order */
	uint32_t l1_size;
	bool corrupt; /* metadata found bad since open (atomic) */
	/* Metadata-only preallocation detected at the first block status:
	 * 0 not yet looked, 1 no, 2 yes (atomic; qcow2-measure.c). */
	int meta_prealloc;

	pthread_mutex_t l2_lock; /* guards l2c */
	struct qcow2_cache l2c;

	/* Writing (qcow2-write.c, qcow2-refcount.c, qcow2-flush.c): what
	 * follows changes under w_lock only. */
	const char *filename; /* the vbd's, for messages */
	bool writable;
	/* Lazy refcounts: the dirty bit is set while open for writing
	 * (refcounts are kept exact all the same). */
	bool lazy;
	/* VBD_O_UNSAFE: write-back skips its ordering fdatasyncs; only an
	 * explicit flush (and close) syncs. */
	bool unsafe;
	pthread_mutex_t w_lock;
	/* Reads and in-place writes count in; making freed clusters
	 * reusable drains it, so no I/O still lands in one. */
	struct qcow2_gate gate;
	struct vbd_lane lane; /* in-place buffered writes (qcow2-submit.c) */
	/* QCOW2_NOWAIT_*: the host file refused page-cache-only I/O of
	 * that kind once, so the asynchronous path stops trying (atomic;
	 * qcow2-submit.c). */
	unsigned nowait_off;
	uint64_t *rt;	     /* refcount table, host byte order */
	uint64_t rt_size;    /* entries */
	uint32_t rc_order;   /* log2 of refcount_bits */
	uint64_t rb_entries; /* refcounts per refcount block */
	uint64_t alloc_end;  /* the end of the used clusters (new tables
			      * may lie past the end of the file until
			      * written back; atomic for readers) */
	uint64_t free_next;  /* first cluster that may be free */
	struct qcow2_cache rbc;
	uint32_t l1_lo, l1_hi; /* dirty L1 entries [lo, hi) */
	uint64_t comp_next;    /* where the next compressed data goes, 0 =
			     * in a new cluster */
	struct qcow2_free *frees;
	size_t nfrees, frees_cap;
	uint8_t *cbuf; /* one cluster of scratch */
};

/* qcow2-cache.c: the caller serialises calls on one cache. */
int qcow2_cache_init(struct qcow2_cache *c, uint32_t nslots,
		     uint32_t cluster_size, bool be64);
void qcow2_cache_free(struct qcow2_cache *c);
/* The slot holding `off` (its LRU stamp refreshed), or NULL. */
struct qcow2_meta_slot *qcow2_cache_find(struct qcow2_cache *c, uint64_t off);
/* Find or read the cluster at `off`: 1 when just read, 0 when cached,
 * -errno (-EBUSY when every slot is dirty). */
int qcow2_cache_get(struct qcow2_cache *c, struct vbd *file, uint64_t off,
		    struct qcow2_meta_slot **out);
/* A zeroed, dirty slot for a new table at `off` (nothing is read). */
int qcow2_cache_new(struct qcow2_cache *c, uint64_t off,
		    struct qcow2_meta_slot **out);
void qcow2_cache_dirty(struct qcow2_cache *c, struct qcow2_meta_slot *sl);
void qcow2_cache_clean(struct qcow2_cache *c, struct qcow2_meta_slot *sl);
/* Half the slots or more are dirty: time to write back. */
bool qcow2_cache_crowded(const struct qcow2_cache *c);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off);
void qcow2_cache_drop_all(struct qcow2_cache *c);
/* The slot's cluster as it goes to disk, into `buf`. */
int qcow2_cache_encode(const struct qcow2_cache *c,
		       const struct qcow2_meta_slot *sl, void *buf);

/* qcow2-cluster.c */
int qcow2_l1_load(struct qcow2 *s, const char *filename,
		  struct vs_error **errp);
/* Sizes the L2 cache: `bytes` of tables, 0 for the default (the whole
 * disk, at most QCOW2_L2_CACHE_MAX).  l2_lock is initialised by open. */
int qcow2_l2_cache_init(struct qcow2 *s, uint64_t bytes);
void qcow2_l2_cache_free(struct qcow2 *s);
/*
 * Map guest bytes [offset, offset+len) (len > 0, inside the disk): sets
 * *run to the type of the first cluster (subcluster with extended L2
 * entries) and run->len to how many of the bytes share it (contiguous
 * on the host for NORMAL; one cluster at most for COMPRESSED).  Returns
 * 0 or -EIO for bad metadata (logged, the image marked corrupt).
 */
int qcow2_map(struct qcow2 *s, const char *filename, uint64_t offset,
	      uint64_t len, struct qcow2_run *run);

/* An L2 entry: the 64-bit descriptor, and with extended L2 entries the
 * subcluster bitmap (bits 0-31 allocated, 32-63 reads as zeros). */
struct qcow2_l2e {
	uint64_t e;
	uint64_t bm;
};

#define QCOW2_SC_PER_CLUSTER 32

/* Copy the whole L2 table at `l2off` (cluster_size / 8 words). */
int qcow2_l2_read(struct qcow2 *s, uint64_t l2off, uint64_t *table);
/* Entry `idx` of the table at `l2off`, through the cache. */
int qcow2_l2_get(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		 struct qcow2_l2e *e);
/* Change entry `idx` in the cached table; written back by flush.  Only
 * under w_lock. */
int qcow2_l2_set(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		 const struct qcow2_l2e *e);
/* A new table at `l2off` in the cache (dirty): a copy of the table at
 * `from`, or empty when from is 0.  Only under w_lock. */
int qcow2_l2_new(struct qcow2 *s, uint64_t l2off, uint64_t from);
/* The L2 table for guest `offset` (0 if none) and whether the image
 * owns it alone (COPIED in L1; `owned` may be NULL). */
int qcow2_l2_table_of(struct qcow2 *s, const char *fn, uint64_t offset,
		      uint64_t *l2off, bool *owned);
uint32_t qcow2_l2_index(const struct qcow2 *s, uint64_t offset);
/* The entry for guest `offset` (zero if it has no L2 table). */
int qcow2_l2_lookup(struct qcow2 *s, uint64_t offset, struct qcow2_l2e *e,
		    bool *owned);
/* What subcluster `sc` of an entry is (sc = 0 without extended L2). */
int qcow2_l2_classify(struct qcow2 *s, uint64_t l2off, uint32_t idx,
		      const struct qcow2_l2e *e, uint32_t sc,
		      struct qcow2_run *r);
/* Forget a cached L2 table (rewritten or freed on disk). */
void qcow2_l2_drop(struct qcow2 *s, uint64_t l2off);
/* Write every dirty cached table to its place (not synced). */
int qcow2_l2_writeback(struct qcow2 *s);
bool qcow2_l2_dirty(struct qcow2 *s);
bool qcow2_l2_crowded(struct qcow2 *s);
int qcow2_corrupt(struct qcow2 *s, const char *filename, const char *what,
		  uint64_t table, uint64_t index, uint64_t entry);
/*
 * The name of the fixed metadata (header cluster, L1 table, refcount
 * table, snapshot table) that host bytes [off, off+len) overlap, or
 * NULL: a table entry pointing there is corrupt, and writing through it
 * would destroy the image.
 */
const char *qcow2_overlap(const struct qcow2 *s, uint64_t off, uint64_t len);

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

/* qcow2-submit.c: the driver's submit (the asynchronous path), and the
 * gate.  Enter before translating, leave when the I/O on what was found
 * is done, never hold it while taking w_lock.  qcow2_gate_drain (under
 * w_lock) waits for every request that entered before it. */
void qcow2_submit(struct vbd *vbd, struct vbd_req *req);
#define QCOW2_NOWAIT_READ  1u
#define QCOW2_NOWAIT_WRITE 2u
int qcow2_gate_init(struct qcow2_gate *g);
void qcow2_gate_destroy(struct qcow2_gate *g);
unsigned qcow2_gate_enter(struct qcow2_gate *g);
void qcow2_gate_leave(struct qcow2_gate *g, unsigned epoch);
void qcow2_gate_drain(struct qcow2_gate *g);
int qcow2_lane_init(struct qcow2 *s);
void qcow2_lane_destroy(struct qcow2 *s);

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
/* The largest refcount the image's width holds. */
uint64_t qcow2_refcount_max(const struct qcow2 *s);
/* The refcount of host cluster `host` (0 when no block covers it). */
int qcow2_refcount_get(struct qcow2 *s, uint64_t host, uint64_t *val);
/*
 * Add `delta` (+1 or -1) to every cluster that [host, host+len) touches,
 * in the refcount cache (written back by qcow2_meta_flush).  -EIO if a
 * count would overflow or go below zero, or no block covers a cluster.
 * A decrement is only safe once no stable table references the cluster
 * any more: the write path goes through qcow2_free_later instead.
 */
int qcow2_refcount_update(struct qcow2 *s, uint64_t host, uint64_t len,
			  int delta);
/* Write every dirty refcount block to its place (not synced). */
int qcow2_refcount_writeback(struct qcow2 *s);
bool qcow2_refcount_dirty(const struct qcow2 *s);
bool qcow2_refcount_crowded(const struct qcow2 *s);
/*
 * Reserve a free cluster: the first one with refcount 0 from free_next
 * on, else one at the end of the image.  Its refcount is still 0; the
 * caller raises it with qcow2_refcount_update.  New refcount blocks (and
 * a larger refcount table) are written and made stable here before
 * anything uses them.
 */
int qcow2_alloc_cluster(struct qcow2 *s, uint64_t *host);

/* Write to the image file, growing it (and what it may hold) as needed. */
int qcow2_file_pwritev(struct qcow2 *s, uint64_t off, const struct iovec *iov,
		       int iovcnt);
int qcow2_file_pwrite(struct qcow2 *s, uint64_t off, const void *buf,
		      size_t len);

/* qcow2-compress.c */
/* Inflate `slen` bytes at `src` into exactly `dlen` bytes: 0, -EIO for
 * data that does not make a whole cluster, -ENOMEM. */
int qcow2_decompress(const struct qcow2 *s, const uint8_t *src, size_t slen,
		     uint8_t *dst, size_t dlen);
/* Compress one cluster at `src` into `dst` (a cluster's room): 0 with
 * *out bytes, or -ENOSPC when it does not shrink by a sector. */
int qcow2_compress(const struct qcow2 *s, const uint8_t *src, uint8_t *dst,
		   size_t *out);
/* Store compressed data for entry `idx` of the owned table at `l2off`,
 * dropping what the entry held.  Under w_lock. */
int qcow2_write_compressed(struct qcow2 *s, uint64_t l2off, uint32_t idx,
			   const uint8_t *data, size_t len);
/* The driver's compress and pwrite_compressed slots (qcow2-write.c). */
int qcow2_drv_compress(struct vbd *vbd, const void *in, size_t len, void *out,
		       size_t out_cap, size_t *out_len);
int qcow2_pwrite_compressed(struct vbd *vbd, uint64_t offset, const void *buf,
			    size_t len);
/* The driver's copy_from_fd slot (qcow2-write.c). */
int qcow2_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int fd,
		       uint64_t fd_off);
/* The references of [host, host+len) went: stop filling that cluster. */
void qcow2_compress_forget(struct qcow2 *s, uint64_t host, uint64_t len);

/* qcow2-flush.c */
/* An ordering point for metadata updates: everything written to the
 * file so far reaches the disk before what follows.  Nothing to do for
 * an image opened VBD_O_UNSAFE (its one sync is the explicit flush). */
int qcow2_order(struct qcow2 *s);
/* Drop the reference [host, host+len) holds once the tables that no
 * longer point at it are stable (at the next qcow2_meta_flush). */
int qcow2_free_later(struct qcow2 *s, uint64_t host, uint64_t len);
/* Drop the reference an L2 entry holds, later (nothing if none). */
int qcow2_release_later(struct qcow2 *s, uint64_t e);
/* Note that L1 entry `i` changed in memory. */
void qcow2_l1_dirty(struct qcow2 *s, uint32_t i);
/* Write back when a cache is half dirty (after a request's changes). */
int qcow2_meta_maybe_flush(struct qcow2 *s);

/* qcow2-resize.c: the driver's truncate and make_empty (see vbd.h). */
int qcow2_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
		   struct vs_error **errp);
int qcow2_make_empty(struct vbd *vbd, struct vs_error **errp);

/* qcow2-backing.c: the driver's change_backing (see vbd.h). */
int qcow2_change_backing(struct vbd *vbd, const char *backing,
			 const char *backing_fmt, struct vs_error **errp);

/* qcow2-write.c */
/*
 * Where guest bytes [pos, pos+len) of one cluster, whose entry is `le`
 * in a table the image owns alone or not (`owned`), can be written in
 * place with no metadata change: their host offset, or 0 when the
 * locked path must decide.
 */
uint64_t qcow2_inplace_host(struct qcow2 *s, const struct qcow2_l2e *le,
			    bool owned, uint64_t pos, uint64_t len);
int qcow2_open_write(struct vbd *vbd, struct qcow2 *s, struct vs_error **errp);
void qcow2_close_write(struct vbd *vbd, struct qcow2 *s);
int qcow2_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		  int iovcnt);
int qcow2_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		       unsigned flags);
int qcow2_flush(struct vbd *vbd);
int qcow2_discard(struct vbd *vbd, uint64_t offset, uint64_t len);

#endif
