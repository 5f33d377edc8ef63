/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Choosing an I/O engine, the calls that dispatch through its ops, the
 * aio= names, and the synchronous fallback every engine can use.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "engine.h"

static const struct {
	const char *name;
	enum vbd_aio aio;
	const struct vbd_engine_ops *ops;
} engines[] = {
	{"io_uring", VBD_AIO_IO_URING, &vbd_engine_io_uring},
	{"native", VBD_AIO_NATIVE, &vbd_engine_native},
	{"threads", VBD_AIO_THREADS, &vbd_engine_threads},
};

#define N_ENGINES (sizeof(engines) / sizeof(engines[0]))

int vbd_aio_from_name(const char *name, enum vbd_aio *out,
		      struct vs_error **errp)
{
	for (size_t i = 0; name && i < N_ENGINES; i++) {
		if (!strcmp(name, engines[i].name)) {
			*out = engines[i].aio;
			return 0;
		}
	}
	return vs_error_set(errp, EINVAL,
			    "invalid aio value '%s': expected io_uring, "
			    "native or threads",
			    name ? name : "");
}

const char *vbd_aio_name(enum vbd_aio aio)
{
	if (aio == VBD_AIO_DEFAULT)
		return "default";
	for (size_t i = 0; i < N_ENGINES; i++)
		if (engines[i].aio == aio)
			return engines[i].name;
	return "unknown";
}

static const struct vbd_engine_ops *engine_ops(enum vbd_aio aio)
{
	for (size_t i = 0; i < N_ENGINES; i++)
		if (engines[i].aio == aio)
			return engines[i].ops;
	return NULL;
}

int vbd_engine_create(enum vbd_aio aio, unsigned depth, bool direct,
		      struct vbd_engine **out, enum vbd_aio *chosen,
		      struct vs_error **errp)
{
	const struct vbd_engine_ops *ops;
	struct vs_error *err = NULL;
	int ret;

	if (aio == VBD_AIO_DEFAULT) {
		/* io_uring may be missing (old kernel) or forbidden (seccomp,
		 * kernel.io_uring_disabled); the default must still work, so
		 * the reason is only worth a debug line. */
		ret = vbd_engine_io_uring.create(out, depth, direct, &err);
		if (ret == 0) {
			aio = VBD_AIO_IO_URING;
			goto done;
		}
		vs_debug("vbd", "%s; using aio=threads", vs_error_msg(err));
		vs_error_free(err);
		aio = VBD_AIO_THREADS;
	}
	ops = engine_ops(aio);
	if (!ops)
		return vs_error_set(errp, EINVAL, "unknown I/O engine %d",
				    (int)aio);
	ret = ops->create(out, depth, direct, errp);
	if (ret < 0)
		return ret;
done:
	if (chosen)
		*chosen = aio;
	return 0;
}

void vbd_engine_submit(struct vbd_engine *e, struct vbd_eio *eio)
{
	((struct vbd_engine_base *)e)->ops->submit(e, eio);
}

void vbd_engine_destroy(struct vbd_engine *e)
{
	if (e)
		((struct vbd_engine_base *)e)->ops->destroy(e);
}

ssize_t vbd_eio_run_sync(const struct vbd_eio *eio)
{
	ssize_t ret;

	/* off_t is signed: an offset past INT64_MAX would wrap to a
	 * negative one, which the kernel refuses anyway, but say so
	 * without asking it. */
	if (eio->op != VBD_EIO_FDATASYNC && eio->offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	do {
		switch (eio->op) {
		case VBD_EIO_READ:
			ret = preadv(eio->fd, eio->iov, eio->iovcnt,
				     (off_t)eio->offset);
			break;
		case VBD_EIO_WRITE:
			ret = pwritev(eio->fd, eio->iov, eio->iovcnt,
				      (off_t)eio->offset);
			break;
		case VBD_EIO_FDATASYNC: ret = fdatasync(eio->fd); break;
		default: return -EINVAL;
		}
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : ret;
}
