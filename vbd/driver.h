/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The driver interface: what a disk format implements.
 *
 * This header is for drivers (vbd/raw.c, cow/, imgtools/formats/) and the
 * vbd core; everyone else uses vbd.h.  A driver is one const struct of
 * callbacks with designated initializers; a NULL slot means "not
 * supported" with the fallback its comment gives.  The list of drivers is
 * in vbd/registry.c, and nowhere else.
 *
 * Before any data-path callback runs, the vbd core has checked that the
 * range lies inside [0, vbd->size), that its length is non-zero and fits
 * in size_t, and that writes are not made to a read-only vbd.  Drivers
 * need not check again, but must still check everything they read from
 * their own image.
 */
#ifndef VS_VBD_DRIVER_H
#define VS_VBD_DRIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vbd.h"

struct vbd_engine;

struct vbd_driver {
	const char *name;

	/*
	 * True for formats that can name another file (a backing file, an
	 * extent, a parent).  Probing never picks such a format unless the
	 * caller set VBD_O_PROBE (image tools), so a guest that writes a
	 * qcow2 header into its raw disk cannot make the host open a file of
	 * its choosing.
	 */
	bool names_other_files;

	/*
	 * Score 0..100 for how sure the driver is that `buf` (the first `len`
	 * bytes of the file, len >= 512 unless the file is shorter) is its
	 * format.  NULL: never probed (raw is the fallback).
	 */
	int (*probe)(const uint8_t *buf, size_t len, const char *filename);

	/*
	 * Create a new image at `path` of virtual size `size`.  `options` is
	 * qemu-img's -o text or NULL; unknown options are an error naming the
	 * option.  NULL: the format cannot be created.
	 */
	int (*create)(const char *path, uint64_t size, const char *options,
		      struct vs_error **errp);

	/*
	 * Open `vbd->filename`.  `vbd->flags` holds the effective VBD_O_*
	 * flags and `vbd->readonly` the access mode.  Must set vbd->size and
	 * may set vbd->request_align (default 1) and vbd->opaque.  On failure
	 * everything is undone and *errp names the file, the offset and the
	 * field that was wrong.  Required.
	 */
	int (*open)(struct vbd *vbd, const struct vbd_spec *spec,
		    struct vs_error **errp);

	/* Release everything open() acquired.  No request is in flight. */
	void (*close)(struct vbd *vbd);

	/*
	 * Read the whole range into iov, or fail with -errno.  Bytes past the
	 * end of the host file read as zeros.  Required.
	 */
	int (*preadv)(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		      int iovcnt);

	/* Write the whole range, or fail with -errno.  NULL: read-only. */
	int (*pwritev)(struct vbd *vbd, uint64_t offset,
		       const struct iovec *iov, int iovcnt);

	/*
	 * Make every completed write stable (data and the metadata that
	 * finds it).  NULL: nothing to flush (always succeeds).
	 */
	int (*flush)(struct vbd *vbd);

	/*
	 * Deallocate the range if the format and host can; the range may
	 * read back as anything afterwards.  NULL: discard is a successful
	 * no-op (it is advisory).
	 */
	int (*discard)(struct vbd *vbd, uint64_t offset, uint64_t len);

	/*
	 * Make the range read as zeros, deallocating if VBD_ZERO_MAY_UNMAP
	 * allows.  Return -ENOTSUP if there is no efficient way; the core
	 * then writes zero buffers unless VBD_ZERO_NO_FALLBACK was given.
	 * NULL: same as returning -ENOTSUP.
	 */
	int (*write_zeroes)(struct vbd *vbd, uint64_t offset, uint64_t len,
			    unsigned flags);

	/*
	 * Compressed clusters, in two steps so that image tools can compress
	 * on many threads and still store in guest order (convert -c,
	 * streamOptimized VMDK).  compress() turns one whole cluster (the
	 * disk's last one may be short: pad it with zeros) into the form the
	 * format stores; it is pure (no I/O, no shared state), so any number
	 * run at once.  It returns -ENOSPC when the result would not be
	 * smaller and the format can store the cluster plainly instead.
	 * pwrite_compressed() stores compress()'s output for the cluster at
	 * `offset` (cluster-aligned; the core checked the range).  Both NULL:
	 * the format has no compressed clusters (-ENOTSUP).
	 */
	int (*compress)(struct vbd *vbd, const void *in, size_t len, void *out,
			size_t out_cap, size_t *out_len);
	int (*pwrite_compressed)(struct vbd *vbd, uint64_t offset,
				 const void *buf, size_t len);

	/*
	 * Kernel-side copies (see vbd_host_fd, vbd_copy_from_fd; the core
	 * has checked the range, and that the vbd is writable for
	 * copy_from_fd).  host_fd(): the host file descriptor and offset
	 * that hold guest bytes [offset, offset+len) as they are, or
	 * -ENOTSUP.  copy_from_fd(): write the range with the bytes of `fd`
	 * at `fd_off` (past its end: zeros); -ENOTSUP only when nothing was
	 * written, or when writing the range again through a buffer is
	 * harmless (raw).  NULL: -ENOTSUP, the caller copies through a
	 * buffer.
	 */
	int (*host_fd)(struct vbd *vbd, uint64_t offset, uint64_t len, int *fd,
		       uint64_t *fd_off);
	int (*copy_from_fd)(struct vbd *vbd, uint64_t offset, uint64_t len,
			    int fd, uint64_t fd_off);

	/*
	 * Describe the status of bytes from `offset` (at most `len`).  Must
	 * set ext->length > 0.  NULL: everything is DATA|ALLOCATED.
	 */
	int (*block_status)(struct vbd *vbd, uint64_t offset, uint64_t len,
			    struct vbd_extent *ext);

	/*
	 * Fill the format-specific parts of *info (the core has set format,
	 * virtual_size and actual_size).  NULL: nothing to add.
	 */
	int (*get_info)(struct vbd *vbd, struct vbd_info *info,
			struct vs_error **errp);

	/*
	 * Start a request and call req->cb exactly once when it is done
	 * (any thread).  NULL: the core runs the synchronous callback for
	 * the request on its worker pool, so every driver is asynchronous.
	 */
	void (*submit)(struct vbd *vbd, struct vbd_req *req);

	/*
	 * Check the image's metadata and repair what `fix` (VBD_CHECK_FIX_*)
	 * allows; see vbd_check.  The core has already refused fixes on a
	 * read-only vbd.  NULL: -ENOTSUP, "format does not support checks".
	 */
	int (*check)(struct vbd *vbd, unsigned fix, struct vbd_check *res,
		     struct vs_error **errp);

	/* Internal snapshots.  NULL: -ENOTSUP, "not supported by FORMAT". */
	int (*snapshot_create)(struct vbd *vbd, const char *name,
			       struct vs_error **errp);
	int (*snapshot_list)(struct vbd *vbd, struct vbd_snapshot **list,
			     int *count, struct vs_error **errp);
	int (*snapshot_apply)(struct vbd *vbd, const char *name_or_id,
			      struct vs_error **errp);
	int (*snapshot_delete)(struct vbd *vbd, const char *name_or_id,
			       struct vs_error **errp);

	/*
	 * Change the virtual size (see vbd_truncate).  The core has checked
	 * that the vbd is writable, that `size` fits in int64_t, that a
	 * smaller size comes with VBD_TRUNC_SHRINK and that at most one
	 * preallocation mode is asked for, only to grow.  On success
	 * vbd->size is the new size.  NULL: -ENOTSUP, "FORMAT does not
	 * support resizing".
	 */
	int (*truncate)(struct vbd *vbd, uint64_t size, unsigned flags,
			struct vs_error **errp);

	/*
	 * Record `backing` (never NULL or empty here: NULL means remove)
	 * and `backing_fmt` (may be NULL) in the image's metadata, crash-
	 * safely.  The core has checked that the vbd is writable.  NULL:
	 * -ENOTSUP, "FORMAT does not support backing files".
	 */
	int (*change_backing)(struct vbd *vbd, const char *backing,
			      const char *backing_fmt, struct vs_error **errp);

	/*
	 * Deallocate every range so that the backing file shows through
	 * (see vbd_make_empty).  NULL: -ENOTSUP.
	 */
	int (*make_empty)(struct vbd *vbd, struct vs_error **errp);
};

struct vbd {
	const struct vbd_driver *drv;
	void *opaque; /* the driver's state */
	char *filename;
	uint64_t size;		/* virtual size, set by open */
	uint32_t request_align; /* set by open, default 1 */
	uint32_t cluster_size;	/* set by open: the allocation unit
				 * (cluster, grain, block), 0 if none */
	unsigned flags;		/* effective VBD_O_* */
	bool readonly;
	enum vbd_aio aio; /* engine asked for (never DEFAULT
					 * once open) */

	/* In-flight async requests, so that close can wait for them. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;
};

/* The registry (vbd/registry.c). */
const struct vbd_driver *vbd_driver_find(const char *name);
const struct vbd_driver *const *vbd_drivers(void);

/*
 * Backing chains (vbd/chain.c).  A format that opens a parent calls
 * vbd_chain_enter(its own filename) before opening it and
 * vbd_chain_leave() after, on the same thread: a loop through any mix of
 * formats, or a chain deeper than VBD_MAX_CHAIN, fails with -ELOOP and an
 * error naming the image.  vbd_chain_depth() is how many images of the
 * chain being opened are open so far (1 = the top one).
 */
#define VBD_MAX_CHAIN 256
int vbd_chain_enter(const char *filename, struct vs_error **errp);
void vbd_chain_leave(void);
unsigned vbd_chain_depth(void);

/*
 * For create callbacks (vbd/create-file.c): open `path` for a new image
 * without truncating it, locked against every other user, and refuse
 * anything but a regular file ("FORMAT images can only be created in
 * regular files").  Returns the fd or -errno.
 */
int vbd_create_open(const char *path, const char *format,
		    struct vs_error **errp);
/* Write all of buf at `off`, or fail naming the file and the offset. */
int vbd_create_write(int fd, const char *path, const void *buf, size_t len,
		     uint64_t off, struct vs_error **errp);

/*
 * Open a format's host file (the image itself, or a VMDK extent) as a
 * stacked file vbd: on the spec's file_driver (raw, unless a test stacks
 * the crash driver under the format), with the format vbd's access mode
 * and its share and lock flags.
 */
int vbd_open_host_file(const struct vbd *vbd, const struct vbd_spec *spec,
		       const char *path, struct vbd **out,
		       struct vs_error **errp);

/*
 * Write to a format's host file (a stacked file vbd) at or past its end:
 * the file vbd's size, where its range check stops, is raised first, as
 * formats append clusters, blocks and grains.  Any thread; concurrent
 * appends are fine.
 */
int vbd_pwritev_grow(struct vbd *file, uint64_t offset, const struct iovec *iov,
		     int iovcnt);

/* Complete an async request (drivers call this, never req->cb directly). */
void vbd_req_complete(struct vbd_req *req, int ret);

/*
 * Open and close a completion batch on this thread (vbd_batch_defer):
 * around a run of vbd_req_complete or engine done() calls for requests
 * that finished together.  Batches nest; the deferred calls run when
 * the outermost one ends.
 */
void vbd_batch_begin(void);
void vbd_batch_end(void);

/*
 * Run the driver's synchronous callback for req on the worker pool and
 * complete it from there: for requests a driver has no async path for.
 * Returns -ENOMEM (req not queued) or 0.
 */
int vbd_req_run_on_pool(struct vbd_req *req);

#endif
