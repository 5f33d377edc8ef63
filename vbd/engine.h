/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * I/O engines: how a driver's reads, writes and flushes reach the host
 * file asynchronously.  QEMU's aio= names: io_uring, native (Linux AIO
 * through libaio, which is asynchronous only with O_DIRECT) and threads.
 *
 * An engine instance serves one vbd and may be used from any number of
 * threads at once.  It completes requests on a thread of its own.
 */
#ifndef VS_VBD_ENGINE_H
#define VS_VBD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vbd.h"

struct vbd_engine;

enum vbd_eio_op {
	VBD_EIO_READ,	   /* preadv */
	VBD_EIO_WRITE,	   /* pwritev */
	VBD_EIO_FDATASYNC, /* fdatasync(fd) */
};

struct vbd_eio {
	enum vbd_eio_op op;
	int fd;
	uint64_t offset;
	const struct iovec *iov; /* owned by the submitter; must stay
					 * valid until done() */
	int iovcnt;
	/*
	 * Called exactly once, from an engine thread, with the byte count
	 * transferred (which may be short: at end of file, or on a signal)
	 * or -errno.  FDATASYNC reports 0.  The callback may submit more
	 * requests to the same engine.
	 */
	void (*done)(struct vbd_eio *eio, ssize_t ret);
	void *opaque; /* the submitter's */
};

struct vbd_engine_ops {
	const char *name; /* as in aio= */
	enum vbd_aio aio;
	/*
	 * Create an engine.  `depth` hints how many requests will be in
	 * flight (more must still work, with queueing); `direct` says the
	 * files are opened with O_DIRECT.  Return -errno with *errp set when
	 * the engine cannot work here (no io_uring in the kernel, native
	 * without O_DIRECT).
	 */
	int (*create)(struct vbd_engine **out, unsigned depth, bool direct,
		      struct vs_error **errp);
	/* Queue one request; errors are reported through eio->done. */
	void (*submit)(struct vbd_engine *e, struct vbd_eio *eio);
	/* Tear down.  The caller guarantees nothing is in flight. */
	void (*destroy)(struct vbd_engine *e);
};

extern const struct vbd_engine_ops vbd_engine_io_uring;
extern const struct vbd_engine_ops vbd_engine_native;
extern const struct vbd_engine_ops vbd_engine_threads;

/*
 * The engine behind an aio= choice.  VBD_AIO_DEFAULT tries io_uring and
 * falls back to threads.  On success *out holds an engine whose first
 * member is a pointer to its ops (see struct vbd_engine_base).
 */
int vbd_engine_create(enum vbd_aio aio, unsigned depth, bool direct,
		      struct vbd_engine **out, enum vbd_aio *chosen,
		      struct vs_error **errp);
void vbd_engine_submit(struct vbd_engine *e, struct vbd_eio *eio);
void vbd_engine_destroy(struct vbd_engine *e);

/* Every engine's private struct starts with this. */
struct vbd_engine_base {
	const struct vbd_engine_ops *ops;
};

/* Run one eio synchronously in the calling thread (used by the threads
 * engine and by fallbacks).  Returns what done() would be given. */
ssize_t vbd_eio_run_sync(const struct vbd_eio *eio);

#endif
