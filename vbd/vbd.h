/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtual block device: an open disk of any format.
 *
 * Every other module reads and writes disks through this header.  A vbd is
 * opened from a disk spec (vbd/diskspec.h); the format comes from the
 * spec and is never guessed for a guest disk.  Image tools may ask for
 * probing with VBD_O_PROBE.
 *
 * Thread safety: the data-path calls may be made from several threads at
 * once on one vbd.  Open and close are not concurrent with anything.
 */
#ifndef VS_VBD_VBD_H
#define VS_VBD_VBD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/error.h"
#include "diskspec.h"

struct vbd;
struct json_object;

/* Open flags. */
enum {
	VBD_O_RDONLY = 1u << 0,	  /* read-only even if the spec says rw */
	VBD_O_DIRECT = 1u << 1,	  /* O_DIRECT (also from direct-io-safe) */
	VBD_O_SHARE = 1u << 2,	  /* force-share: take no image locks that
				 * keep others out (qemu-img -U) */
	VBD_O_PROBE = 1u << 3,	  /* the spec's format may be NULL: probe it
				 * (image tools only, never guest disks) */
	VBD_O_NOLOCK = 1u << 4,	  /* take no locks at all (backing files that
				 * the parent already locks, tests) */
	VBD_O_COMPRESS = 1u << 6, /* store whole-cluster writes compressed
				   * where the format can (qcow2; image
				   * tools: convert -c) */
	VBD_O_REPAIR = 1u << 5,	  /* open to be checked and repaired: an image
				 * marked dirty or corrupt opens writable and
				 * nothing is repaired behind the caller's
				 * back (vstor img check -r) */
	/* Open the image alone: its backing file is neither opened nor
	 * read, unallocated ranges read as zeros (image tools: rebase -u,
	 * commit). */
	VBD_O_NO_BACKING = 1u << 8,
	VBD_O_UNSAFE = 1u << 9, /* the image is new and private to this
				 * process (convert's target, qemu's
				 * cache=unsafe): a crash before the next
				 * vbd_flush may lose it whole, so metadata
				 * write-back orders nothing (no fdatasync
				 * between its steps); vbd_flush still makes
				 * everything stable */
	/* A format's host file (vbd_open_host_file): with O_DIRECT its
	 * size need not be a multiple of the block size, and a write to
	 * its partial last block may grow it to the whole block.  The
	 * format keeps its own size, so the padding is never read as
	 * image data. */
	VBD_O_HOST_FILE = 1u << 10,
};

/* I/O engines, named as QEMU names its aio= values. */
enum vbd_aio {
	VBD_AIO_DEFAULT = 0, /* io_uring, or threads where io_uring is
				 * unavailable */
	VBD_AIO_IO_URING,
	VBD_AIO_NATIVE,	 /* Linux AIO (libaio); needs O_DIRECT */
	VBD_AIO_THREADS, /* a pool of worker threads */
};

int vbd_aio_from_name(const char *name, enum vbd_aio *out,
		      struct vs_error **errp);
const char *vbd_aio_name(enum vbd_aio aio);

/*
 * Open the disk a spec describes.  `flags` are VBD_O_*; the spec's access
 * and direct-io-safe fields also count.  `aio` chooses the I/O engine used
 * by vbd_submit (the spec's aio= wins over VBD_AIO_DEFAULT).  Returns 0
 * and sets *out, or -errno with *errp naming the file and the problem.
 */
int vbd_open(const struct vbd_spec *spec, unsigned flags, enum vbd_aio aio,
	     struct vbd **out, struct vs_error **errp);

/* Shorthand for image tools: open `path` as `format` (NULL = probe). */
int vbd_open_file(const char *path, const char *format, unsigned flags,
		  struct vbd **out, struct vs_error **errp);

/* Wait for in-flight requests, then close.  NULL is allowed. */
void vbd_close(struct vbd *vbd);

/* Facts about an open vbd. */
uint64_t vbd_size(const struct vbd *vbd); /* virtual size in bytes */
const char *vbd_filename(const struct vbd *vbd);
const char *vbd_format(const struct vbd *vbd);
bool vbd_readonly(const struct vbd *vbd);
/* Requests whose offset and length are multiples of this are fastest. */
uint32_t vbd_request_align(const struct vbd *vbd);

/*
 * Synchronous data path.  All return 0 on success (the whole range was
 * transferred) or -errno.  Requests outside [0, size) fail with -EINVAL
 * before reaching the driver; writes to a read-only vbd with -EROFS.
 */
int vbd_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
	       int iovcnt);
int vbd_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		int iovcnt);
int vbd_pread(struct vbd *vbd, uint64_t offset, void *buf, size_t len);
int vbd_pwrite(struct vbd *vbd, uint64_t offset, const void *buf, size_t len);
/* Everything written before the call reaches stable storage. */
int vbd_flush(struct vbd *vbd);
/* The range may read back as anything afterwards (usually zeros). */
int vbd_discard(struct vbd *vbd, uint64_t offset, uint64_t len);

enum {
	VBD_ZERO_MAY_UNMAP = 1u << 0,	/* may deallocate (punch a hole) */
	VBD_ZERO_NO_FALLBACK = 1u << 1, /* fail with -ENOTSUP rather than
					 * writing zero buffers */
};
/* The range reads back as zeros afterwards. */
int vbd_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		     unsigned flags);

/*
 * The format's allocation unit (qcow2 cluster, VMDK grain, VHD/VDI
 * block), 0 for formats without one (raw).  Converters write in whole
 * units where they can.
 */
uint32_t vbd_cluster_size(const struct vbd *vbd);

/*
 * Compressed clusters, for image tools.  vbd_compress turns one whole
 * cluster (`len` = vbd_cluster_size, or less for the disk's last one)
 * into the format's stored form in `out` (`out_cap` bytes; twice the
 * cluster size is always enough).  It does no I/O and may run on any
 * number of threads at once.  Returns 0, -ENOSPC when compressing does
 * not pay and the cluster should be written plainly, or -ENOTSUP for
 * formats without compression.  vbd_pwrite_compressed then stores the
 * result for the cluster at `offset` (a multiple of the cluster size).
 */
int vbd_compress(struct vbd *vbd, const void *in, size_t len, void *out,
		 size_t out_cap, size_t *out_len);
int vbd_pwrite_compressed(struct vbd *vbd, uint64_t offset, const void *buf,
			  size_t len);

/*
 * Copies made by the kernel, for image tools (convert): the bytes go
 * from page cache to page cache with copy_file_range, never through a
 * buffer of ours.  vbd_host_fd says where guest bytes [offset,
 * offset+len) lie, as they are and contiguous, in a host file read
 * through the page cache (a raw file opened without O_DIRECT): that
 * file's descriptor (the vbd's own: valid until vbd_close, not to be
 * closed) and the offset there.  -ENOTSUP for other formats.
 * vbd_copy_from_fd writes guest bytes [offset, offset+len) with the
 * `len` bytes of `fd` at `fd_off` (bytes past its end count as zeros).
 * It returns -ENOTSUP, having written nothing, when the format cannot
 * place them as they are (a compressed, existing or partial cluster):
 * the caller then copies through a buffer.  A copy of 0 bytes (any fd)
 * returns 0 when the format can take kernel copies at all, -ENOTSUP when
 * it never does.
 */
int vbd_host_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int *fd,
		uint64_t *fd_off);
int vbd_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int fd,
		     uint64_t fd_off);

/* Allocation state of a range, as qemu-img map reports it. */
enum {
	VBD_STATUS_DATA = 1u << 0,	/* bytes are stored at this layer */
	VBD_STATUS_ZERO = 1u << 1,	/* reads return zeros */
	VBD_STATUS_ALLOCATED = 1u << 2, /* decided at this layer, not by a
					 * backing file */
};

struct vbd_extent {
	uint64_t length;     /* bytes from the queried offset with the same
				 * status (> 0, may be less than asked) */
	unsigned flags;	     /* VBD_STATUS_* */
	unsigned depth;	     /* 0 = this image, 1 = its backing file... */
	int64_t host_offset; /* where the data lives in the host file,
				 * -1 if not known or not stored */
};

/* Status of the bytes starting at `offset`, for at most `len` bytes. */
int vbd_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
		     struct vbd_extent *ext);

/*
 * Asynchronous data path.
 *
 * Fill a vbd_req and hand it to vbd_submit.  `cb` is then called exactly
 * once with 0 or -errno, from an engine thread or from the submitting
 * thread before vbd_submit returns (requests that fail their checks,
 * reads served at once from the page cache, and buffered writes done at
 * once: vbd/lane.c).  The
 * request and its buffers belong to the vbd until `cb` runs.  Any number
 * of requests may be in flight, submitted from any number of threads.
 */
enum vbd_op {
	VBD_OP_READ,
	VBD_OP_WRITE,
	VBD_OP_FLUSH,
	VBD_OP_DISCARD,
	VBD_OP_WRITE_ZEROES,
};

struct vbd_req {
	enum vbd_op op;
	uint64_t offset;
	uint64_t len;		 /* DISCARD, WRITE_ZEROES */
	unsigned flags;		 /* WRITE_ZEROES: VBD_ZERO_* */
	const struct iovec *iov; /* READ, WRITE */
	int iovcnt;
	void (*cb)(struct vbd_req *req, int ret);
	void *opaque; /* the caller's */

	/* Private to vbd/ and its drivers. */
	struct vbd *vbd;
	size_t done; /* bytes transferred so far */
	void *priv;
};

void vbd_submit(struct vbd *vbd, struct vbd_req *req);

/*
 * Completion batches (vbd/batch.c).  Callbacks that a thread runs one
 * after another, for requests that finished together, may run inside a
 * batch.  A callback that would send one message per request (a reply
 * that wakes a client) can hold it and ask for fn(arg) to run once on
 * this thread when the batch ends, to send them all together.
 * Returns 1 when fn(arg) was added, 0 when it is already due at the
 * end of this batch, and -1 when no batch is open (or it has no room
 * left): then act at once.  fn runs outside any batch; whatever arg
 * points to must stay valid until it has run.
 */
int vbd_batch_defer(void (*fn)(void *arg), void *arg);

/*
 * Facts for `vstor img info`.  The driver may add format-specific fields
 * to `specific` (a JSON object, shaped like qemu-img's format-specific
 * "data").
 */
struct vbd_info {
	const char *format;
	uint64_t virtual_size;
	int64_t actual_size;	  /* bytes allocated on the host, -1 if
					 * unknown */
	uint32_t cluster_size;	  /* 0 if the format has none */
	const char *backing_file; /* NULL if none */
	const char *backing_format;
	bool dirty;
	bool encrypted;
	struct json_object *specific; /* owned by the caller of
					 * vbd_get_info; may stay NULL */
};

int vbd_get_info(struct vbd *vbd, struct vbd_info *info,
		 struct vs_error **errp);

/*
 * Consistency check, as qemu-img check reports it.  `fix` is a mask of
 * VBD_CHECK_FIX_*; repairs need a vbd opened writable with VBD_O_REPAIR.
 * The counts describe the image as found; *_fixed say what was repaired.
 * Returns 0 when the check ran (whatever it found), -ENOTSUP when the
 * format has no check, or -errno with *errp when it could not run.
 */
enum {
	VBD_CHECK_FIX_LEAKS = 1u << 0,
	VBD_CHECK_FIX_ERRORS = 1u << 1,
};

struct vbd_check {
	uint64_t corruptions;	    /* errors found */
	uint64_t leaks;		    /* clusters referenced by nothing */
	uint64_t check_errors;	    /* metadata that could not be read */
	uint64_t corruptions_fixed; /* of the above, repaired */
	uint64_t leaks_fixed;
	uint64_t allocated_clusters; /* guest clusters with data here */
	uint64_t total_clusters;     /* guest clusters of the disk */
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
	uint64_t image_end_offset; /* host bytes in use, 0 if unknown */
};

int vbd_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
	      struct vs_error **errp);

/* Internal snapshots (qcow2), as qemu-img snapshot lists them. */
struct vbd_snapshot {
	char *id;
	char *name;
	uint64_t vm_state_size;
	uint64_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
	uint32_t icount_valid; /* nonzero: `icount` is meaningful */
	uint64_t icount;
};

/* Each returns -ENOTSUP (and says "not supported by FORMAT") for formats
 * without internal snapshots.  `name_or_id` matches an id first, then a
 * name, as qemu-img does. */
int vbd_snapshot_create(struct vbd *vbd, const char *name,
			struct vs_error **errp);
int vbd_snapshot_list(struct vbd *vbd, struct vbd_snapshot **list, int *count,
		      struct vs_error **errp);
int vbd_snapshot_apply(struct vbd *vbd, const char *name_or_id,
		       struct vs_error **errp);
int vbd_snapshot_delete(struct vbd *vbd, const char *name_or_id,
			struct vs_error **errp);
void vbd_snapshot_list_free(struct vbd_snapshot *list, int count);

/*
 * Change the virtual size to `size` bytes (vstor img resize).  `flags`
 * are VBD_TRUNC_*: without VBD_TRUNC_SHRINK a smaller size is refused
 * (-EINVAL), with it the bytes past the new end are lost.  Growing makes
 * the new bytes read as zeros, also where a backing file would have shown
 * through; a preallocation mode (growing only) also reserves their space.
 * Needs a vbd opened writable.  Formats without resizing: -ENOTSUP with
 * "FORMAT does not support resizing".  Not concurrent with I/O on the
 * vbd.
 */
enum {
	VBD_TRUNC_SHRINK = 1u << 0,
	VBD_TRUNC_PREALLOC_FALLOC = 1u << 1, /* reserve the space */
	VBD_TRUNC_PREALLOC_FULL = 1u << 2,   /* write it (zeros) */
};
int vbd_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
		 struct vs_error **errp);

/*
 * Record another backing file in the image's metadata: `backing` is the
 * name as stored (relative names are relative to the image's directory),
 * `backing_fmt` its format (NULL: none recorded); a NULL or empty
 * `backing` removes it, and the image then stands alone.  Only the
 * metadata changes (vstor img rebase does the data); the open vbd keeps
 * reading through the backing file it was opened with until it is
 * reopened.  Needs a writable vbd.  Formats without backing files:
 * -ENOTSUP, "FORMAT does not support backing files".
 */
int vbd_change_backing(struct vbd *vbd, const char *backing,
		       const char *backing_fmt, struct vs_error **errp);

/*
 * Make every range of the image unallocated, so that its backing file
 * shows through everywhere (vstor img commit empties the top image this
 * way); the space is given back.  Needs a writable vbd.  Formats that
 * cannot: -ENOTSUP, "FORMAT cannot be emptied".
 */
int vbd_make_empty(struct vbd *vbd, struct vs_error **errp);

/* The names of all registered drivers, NULL-terminated. */
const char *const *vbd_driver_names(void);

/*
 * Create an image file of `format` and `size`.  `options` is the -o text
 * of qemu-img ("cluster_size=65536,compat=1.1"), may be NULL.
 */
int vbd_create(const char *path, const char *format, uint64_t size,
	       const char *options, struct vs_error **errp);

#endif
