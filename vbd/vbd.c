/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vbd core: opens a disk through its driver, checks every request at
 * this one edge (range, length, access) and provides the fallbacks that
 * driver.h promises for NULL callbacks.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/atomic.h"
#include "../common/cleanup.h"
#include "../common/iov.h"
#include "driver.h"
#include "pool.h"
#include "probe.h"

/* Formats a disk spec may name that have no driver in this build. */
static const char *const planned_formats[] = {"qcow", NULL};

static int find_driver(const char *format, const char *path,
		       const struct vbd_driver **out, struct vs_error **errp)
{
	const char *const *names;
	char list[256] = "";

	*out = vbd_driver_find(format);
	if (*out)
		return 0;
	for (int i = 0; planned_formats[i]; i++)
		if (!strcmp(format, planned_formats[i]))
			return vs_error_set(errp, ENOTSUP,
					    "%s: format '%s' is not supported "
					    "by this build of vstor",
					    path, format);
	names = vbd_driver_names();
	for (int i = 0; names[i]; i++) {
		if (i)
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		strncat(list, names[i], sizeof(list) - strlen(list) - 1);
	}
	return vs_error_set(errp, EINVAL, "%s: unknown format '%s' (known: %s)",
			    path, format, list);
}

static void vbd_free(struct vbd *vbd)
{
	pthread_mutex_destroy(&vbd->lock);
	pthread_cond_destroy(&vbd->idle);
	free(vbd->filename);
	free(vbd);
}

int vbd_open(const struct vbd_spec *spec, unsigned flags, enum vbd_aio aio,
	     struct vbd **out, struct vs_error **errp)
{
	const char *format = spec->format;
	const struct vbd_driver *drv;
	struct vbd *vbd;
	int ret;

	if (!spec->target || !*spec->target)
		return vs_error_set(errp, ENOMEDIUM,
				    "disk %s has no target (an empty drive)",
				    spec->vdev ? spec->vdev : "(unnamed)");
	if (!format) {
		if (!(flags & VBD_O_PROBE))
			return vs_error_set(errp, EINVAL, "%s: no format given",
					    spec->target);
		ret = vbd_probe_format(spec->target, &format, errp);
		if (ret < 0)
			return ret;
	}
	ret = find_driver(format, spec->target, &drv, errp);
	if (ret < 0)
		return ret;
	if (aio == VBD_AIO_DEFAULT && spec->aio) {
		ret = vbd_aio_from_name(spec->aio, &aio, errp);
		if (ret < 0)
			return ret;
	}

	vbd = calloc(1, sizeof(*vbd));
	if (!vbd || !(vbd->filename = strdup(spec->target))) {
		free(vbd);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	pthread_mutex_init(&vbd->lock, NULL);
	pthread_cond_init(&vbd->idle, NULL);
	vbd->drv = drv;
	vbd->flags = flags;
	if (spec->direct_io_safe)
		vbd->flags |= VBD_O_DIRECT;
	vbd->readonly = spec->readonly || (flags & VBD_O_RDONLY);
	vbd->aio = aio;
	vbd->request_align = 1;
	ret = drv->open(vbd, spec, errp);
	if (ret < 0) {
		vbd_free(vbd);
		return ret;
	}
	*out = vbd;
	return 0;
}

int vbd_open_file(const char *path, const char *format, unsigned flags,
		  struct vbd **out, struct vs_error **errp)
{
	struct vbd_spec spec = {
		.target = (char *)path,
		.format = (char *)format,
		.readonly = flags & VBD_O_RDONLY,
		.devnum = -1,
	};

	if (!format)
		flags |= VBD_O_PROBE;
	return vbd_open(&spec, flags, VBD_AIO_DEFAULT, out, errp);
}

void vbd_close(struct vbd *vbd)
{
	if (!vbd)
		return;
	pthread_mutex_lock(&vbd->lock);
	while (vbd->inflight)
		pthread_cond_wait(&vbd->idle, &vbd->lock);
	pthread_mutex_unlock(&vbd->lock);
	vbd->drv->close(vbd);
	vbd_free(vbd);
}

uint64_t vbd_size(const struct vbd *vbd)
{
	return vbd->size;
}

const char *vbd_filename(const struct vbd *vbd)
{
	return vbd->filename;
}

const char *vbd_format(const struct vbd *vbd)
{
	return vbd->drv->name;
}

bool vbd_readonly(const struct vbd *vbd)
{
	return vbd->readonly;
}

uint32_t vbd_request_align(const struct vbd *vbd)
{
	return vbd->request_align;
}

/* The one range check every request passes through. */
static int check_range(const struct vbd *vbd, uint64_t offset, uint64_t len)
{
	/* A host file grows under concurrent requests (vbd_pwritev_grow
	 * raises the size atomically): read it once, atomically too. */
	uint64_t size = __atomic_load_n(&vbd->size, __ATOMIC_RELAXED);

	if (offset > size || len > size - offset)
		return -EINVAL;
	if (len > SSIZE_MAX)
		return -EINVAL;
	return 0;
}

static int check_write(const struct vbd *vbd, uint64_t offset, uint64_t len)
{
	if (vbd->readonly)
		return -EROFS;
	return check_range(vbd, offset, len);
}

int vbd_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
	       int iovcnt)
{
	uint64_t len = vs_iov_size(iov, iovcnt);
	int ret = check_range(vbd, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	return vbd->drv->preadv(vbd, offset, iov, iovcnt);
}

int vbd_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		int iovcnt)
{
	uint64_t len = vs_iov_size(iov, iovcnt);
	int ret = check_write(vbd, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	if (!vbd->drv->pwritev)
		return -EROFS;
	return vbd->drv->pwritev(vbd, offset, iov, iovcnt);
}

int vbd_pread(struct vbd *vbd, uint64_t offset, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return vbd_preadv(vbd, offset, &iov, 1);
}

int vbd_pwrite(struct vbd *vbd, uint64_t offset, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return vbd_pwritev(vbd, offset, &iov, 1);
}

int vbd_flush(struct vbd *vbd)
{
	return vbd->drv->flush ? vbd->drv->flush(vbd) : 0;
}

int vbd_discard(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	int ret = check_write(vbd, offset, len);

	if (ret < 0 || len == 0 || !vbd->drv->discard)
		return ret;
	return vbd->drv->discard(vbd, offset, len);
}

/* Zero buffers shared by every write_zeroes fallback: 1 MiB, aligned for
 * O_DIRECT, allocated once and never written. */
#define ZERO_BUF_SIZE (1u << 20)
static void *zero_buf;
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static void zero_buf_init(void)
{
	if (posix_memalign(&zero_buf, 4096, ZERO_BUF_SIZE) == 0)
		memset(zero_buf, 0, ZERO_BUF_SIZE);
	else
		zero_buf = NULL;
}

static int write_zero_buffers(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	pthread_once(&zero_once, zero_buf_init);
	if (!zero_buf)
		return -ENOMEM;
	while (len) {
		size_t n = len < ZERO_BUF_SIZE ? len : ZERO_BUF_SIZE;
		struct iovec iov = {.iov_base = zero_buf, .iov_len = n};
		int ret = vbd->drv->pwritev(vbd, offset, &iov, 1);

		if (ret < 0)
			return ret;
		offset += n;
		len -= n;
	}
	return 0;
}

int vbd_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		     unsigned flags)
{
	int ret = check_write(vbd, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	if (!vbd->drv->pwritev)
		return -EROFS;
	ret = vbd->drv->write_zeroes
		      ? vbd->drv->write_zeroes(vbd, offset, len, flags)
		      : -ENOTSUP;
	if (ret != -ENOTSUP || (flags & VBD_ZERO_NO_FALLBACK))
		return ret;
	return write_zero_buffers(vbd, offset, len);
}

int vbd_open_host_file(const struct vbd *vbd, const struct vbd_spec *spec,
		       const char *path, struct vbd **out,
		       struct vs_error **errp)
{
	const char *drv = spec->file_driver ? spec->file_driver : "raw";
	unsigned flags =
		(vbd->readonly ? VBD_O_RDONLY : 0) | VBD_O_HOST_FILE |
		(vbd->flags & (VBD_O_SHARE | VBD_O_NOLOCK | VBD_O_DIRECT));

	return vbd_open_file(path, drv, flags, out, errp);
}

int vbd_pwritev_grow(struct vbd *file, uint64_t offset, const struct iovec *iov,
		     int iovcnt)
{
	vs_atomic_max(&file->size, offset + vs_iov_size(iov, iovcnt));
	return vbd_pwritev(file, offset, iov, iovcnt);
}

uint32_t vbd_cluster_size(const struct vbd *vbd)
{
	return vbd->cluster_size;
}

int vbd_compress(struct vbd *vbd, const void *in, size_t len, void *out,
		 size_t out_cap, size_t *out_len)
{
	if (!vbd->drv->compress || !vbd->cluster_size)
		return -ENOTSUP;
	if (len == 0 || len > vbd->cluster_size)
		return -EINVAL;
	return vbd->drv->compress(vbd, in, len, out, out_cap, out_len);
}

int vbd_pwrite_compressed(struct vbd *vbd, uint64_t offset, const void *buf,
			  size_t len)
{
	uint32_t cs = vbd->cluster_size;
	int ret;

	if (!vbd->drv->pwrite_compressed || !cs)
		return -ENOTSUP;
	if (offset >= vbd->size || offset % cs || len == 0)
		return -EINVAL;
	/* The cluster is whole, or the last one of the disk. */
	ret = check_write(vbd, offset,
			  VS_MIN((uint64_t)cs, vbd->size - offset));
	if (ret < 0)
		return ret;
	return vbd->drv->pwrite_compressed(vbd, offset, buf, len);
}

int vbd_host_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int *fd,
		uint64_t *fd_off)
{
	int ret;

	if (!vbd->drv->host_fd)
		return -ENOTSUP;
	ret = check_range(vbd, offset, len);
	return ret < 0 ? ret : vbd->drv->host_fd(vbd, offset, len, fd, fd_off);
}

int vbd_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int fd,
		     uint64_t fd_off)
{
	int ret;

	if (!vbd->drv->copy_from_fd)
		return -ENOTSUP;
	ret = check_write(vbd, offset, len);
	if (ret < 0 || len == 0)
		return ret;
	/* The source range must be addressable as an off_t too. */
	if (fd < 0 || fd_off > INT64_MAX || len > INT64_MAX - fd_off)
		return -EINVAL;
	return vbd->drv->copy_from_fd(vbd, offset, len, fd, fd_off);
}

int vbd_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
		     struct vbd_extent *ext)
{
	int ret = check_range(vbd, offset, len);

	if (ret < 0)
		return ret;
	if (len == 0)
		return -EINVAL;
	*ext = (struct vbd_extent){
		.length = len,
		.flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED,
		.host_offset = -1,
	};
	if (!vbd->drv->block_status)
		return 0;
	ret = vbd->drv->block_status(vbd, offset, len, ext);
	if (ret == 0 && (ext->length == 0 || ext->length > len))
		return -EIO; /* a driver bug must not loop the caller */
	return ret;
}

int vbd_get_info(struct vbd *vbd, struct vbd_info *info, struct vs_error **errp)
{
	struct stat st;

	memset(info, 0, sizeof(*info));
	info->format = vbd->drv->name;
	info->virtual_size = vbd->size;
	info->actual_size = -1;
	if (stat(vbd->filename, &st) == 0 && S_ISREG(st.st_mode))
		info->actual_size = (int64_t)st.st_blocks * 512;
	return vbd->drv->get_info ? vbd->drv->get_info(vbd, info, errp) : 0;
}

int vbd_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
	      struct vs_error **errp)
{
	memset(res, 0, sizeof(*res));
	if (!vbd->drv->check)
		return vs_error_set(errp, ENOTSUP,
				    "%s: format '%s' does not support checks",
				    vbd->filename, vbd->drv->name);
	if (fix && vbd->readonly)
		return vs_error_set(errp, EROFS,
				    "%s: opened read-only, cannot repair",
				    vbd->filename);
	return vbd->drv->check(vbd, fix, res, errp);
}

static int no_snapshots(struct vbd *vbd, struct vs_error **errp)
{
	return vs_error_set(errp, ENOTSUP,
			    "%s: internal snapshots are not supported by "
			    "format '%s'",
			    vbd->filename, vbd->drv->name);
}

static int snapshot_writable(struct vbd *vbd, struct vs_error **errp)
{
	if (vbd->readonly)
		return vs_error_set(errp, EROFS,
				    "%s: opened read-only, cannot change its "
				    "snapshots",
				    vbd->filename);
	return 0;
}

int vbd_snapshot_create(struct vbd *vbd, const char *name,
			struct vs_error **errp)
{
	if (!vbd->drv->snapshot_create)
		return no_snapshots(vbd, errp);
	if (snapshot_writable(vbd, errp) < 0)
		return -EROFS;
	return vbd->drv->snapshot_create(vbd, name, errp);
}

int vbd_snapshot_list(struct vbd *vbd, struct vbd_snapshot **list, int *count,
		      struct vs_error **errp)
{
	*list = NULL;
	*count = 0;
	if (!vbd->drv->snapshot_list)
		return no_snapshots(vbd, errp);
	return vbd->drv->snapshot_list(vbd, list, count, errp);
}

int vbd_snapshot_apply(struct vbd *vbd, const char *name_or_id,
		       struct vs_error **errp)
{
	if (!vbd->drv->snapshot_apply)
		return no_snapshots(vbd, errp);
	if (snapshot_writable(vbd, errp) < 0)
		return -EROFS;
	return vbd->drv->snapshot_apply(vbd, name_or_id, errp);
}

int vbd_snapshot_delete(struct vbd *vbd, const char *name_or_id,
			struct vs_error **errp)
{
	if (!vbd->drv->snapshot_delete)
		return no_snapshots(vbd, errp);
	if (snapshot_writable(vbd, errp) < 0)
		return -EROFS;
	return vbd->drv->snapshot_delete(vbd, name_or_id, errp);
}

void vbd_snapshot_list_free(struct vbd_snapshot *list, int count)
{
	for (int i = 0; i < count; i++) {
		free(list[i].id);
		free(list[i].name);
	}
	free(list);
}

static int writable_for(struct vbd *vbd, const char *what,
			struct vs_error **errp)
{
	if (vbd->readonly)
		return vs_error_set(errp, EROFS,
				    "%s: opened read-only, cannot %s",
				    vbd->filename, what);
	return 0;
}

int vbd_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
		 struct vs_error **errp)
{
	unsigned prealloc =
		flags & (VBD_TRUNC_PREALLOC_FALLOC | VBD_TRUNC_PREALLOC_FULL);

	if (!vbd->drv->truncate)
		return vs_error_set(errp, ENOTSUP,
				    "%s: format '%s' does not support resizing",
				    vbd->filename, vbd->drv->name);
	if (writable_for(vbd, "resize it", errp) < 0)
		return -EROFS;
	if (size > INT64_MAX)
		return vs_error_set(errp, EFBIG,
				    "%s: size %llu is larger than the largest "
				    "file size",
				    vbd->filename, (unsigned long long)size);
	if (size < vbd->size && !(flags & VBD_TRUNC_SHRINK))
		return vs_error_set(errp, EINVAL,
				    "%s: %llu bytes is smaller than the disk "
				    "(%llu bytes): shrinking was not asked for",
				    vbd->filename, (unsigned long long)size,
				    (unsigned long long)vbd->size);
	if (prealloc && (prealloc & (prealloc - 1)))
		return vs_error_set(errp, EINVAL,
				    "%s: more than one preallocation mode",
				    vbd->filename);
	if (prealloc && size < vbd->size)
		return vs_error_set(errp, EINVAL,
				    "%s: preallocation can only be used for "
				    "growing images",
				    vbd->filename);
	return vbd->drv->truncate(vbd, size, flags, errp);
}

int vbd_change_backing(struct vbd *vbd, const char *backing,
		       const char *backing_fmt, struct vs_error **errp)
{
	if (!vbd->drv->change_backing)
		return vs_error_set(errp, ENOTSUP,
				    "%s: format '%s' does not support backing "
				    "files",
				    vbd->filename, vbd->drv->name);
	if (writable_for(vbd, "change its backing file", errp) < 0)
		return -EROFS;
	if (backing && !*backing)
		backing = NULL;
	return vbd->drv->change_backing(vbd, backing,
					backing ? backing_fmt : NULL, errp);
}

int vbd_make_empty(struct vbd *vbd, struct vs_error **errp)
{
	if (!vbd->drv->make_empty)
		return vs_error_set(errp, ENOTSUP,
				    "%s: format '%s' cannot be emptied",
				    vbd->filename, vbd->drv->name);
	if (writable_for(vbd, "empty it", errp) < 0)
		return -EROFS;
	return vbd->drv->make_empty(vbd, errp);
}

int vbd_create(const char *path, const char *format, uint64_t size,
	       const char *options, struct vs_error **errp)
{
	const struct vbd_driver *drv;
	int ret = find_driver(format, path, &drv, errp);

	if (ret < 0)
		return ret;
	if (!drv->create)
		return vs_error_set(
			errp, ENOTSUP,
			"%s: creating %s images is not supported by this "
			"build of vstor",
			path, format);
	if (size > INT64_MAX)
		return vs_error_set(errp, EFBIG,
				    "%s: size %llu is larger than the largest "
				    "file size",
				    path, (unsigned long long)size);
	return drv->create(path, size, options, errp);
}

/* Asynchronous path. */

void vbd_req_complete(struct vbd_req *req, int ret)
{
	struct vbd *vbd = req->vbd;

	/* The callback may free req or submit new requests; count this one
	 * out only afterwards so that close cannot run in between. */
	req->cb(req, ret);
	pthread_mutex_lock(&vbd->lock);
	if (--vbd->inflight == 0)
		pthread_cond_broadcast(&vbd->idle);
	pthread_mutex_unlock(&vbd->lock);
}

struct sync_job {
	struct vbd_pool_job job;
	struct vbd_req *req;
};

static int run_sync(struct vbd *vbd, struct vbd_req *req)
{
	switch (req->op) {
	case VBD_OP_READ:
		return vbd->drv->preadv(vbd, req->offset, req->iov,
					req->iovcnt);
	case VBD_OP_WRITE:
		return vbd->drv->pwritev(vbd, req->offset, req->iov,
					 req->iovcnt);
	case VBD_OP_FLUSH: return vbd->drv->flush ? vbd->drv->flush(vbd) : 0;
	case VBD_OP_DISCARD:
		return vbd->drv->discard
			       ? vbd->drv->discard(vbd, req->offset, req->len)
			       : 0;
	case VBD_OP_WRITE_ZEROES:
		return vbd_write_zeroes(vbd, req->offset, req->len, req->flags);
	}
	return -EINVAL;
}

static void sync_job_fn(struct vbd_pool_job *job)
{
	struct sync_job *sj = (struct sync_job *)job;
	struct vbd_req *req = sj->req;

	free(sj);
	vbd_req_complete(req, run_sync(req->vbd, req));
}

int vbd_req_run_on_pool(struct vbd_req *req)
{
	struct sync_job *sj = malloc(sizeof(*sj));

	if (!sj)
		return -ENOMEM;
	sj->job.fn = sync_job_fn;
	sj->req = req;
	vbd_pool_run(&sj->job);
	return 0;
}

static int check_req(struct vbd *vbd, struct vbd_req *req)
{
	switch (req->op) {
	case VBD_OP_READ:
		req->len = vs_iov_size(req->iov, req->iovcnt);
		return check_range(vbd, req->offset, req->len);
	case VBD_OP_WRITE:
		req->len = vs_iov_size(req->iov, req->iovcnt);
		if (!vbd->drv->pwritev)
			return -EROFS;
		return check_write(vbd, req->offset, req->len);
	case VBD_OP_FLUSH: return 0;
	case VBD_OP_DISCARD:
	case VBD_OP_WRITE_ZEROES:
		if (!vbd->drv->pwritev)
			return -EROFS;
		return check_write(vbd, req->offset, req->len);
	}
	return -EINVAL;
}

void vbd_submit(struct vbd *vbd, struct vbd_req *req)
{
	int ret;

	req->vbd = vbd;
	req->done = 0;
	req->priv = NULL;
	ret = check_req(vbd, req);
	if (ret < 0) {
		req->cb(req, ret);
		return;
	}
	pthread_mutex_lock(&vbd->lock);
	vbd->inflight++;
	pthread_mutex_unlock(&vbd->lock);
	if (req->len == 0 && req->op != VBD_OP_FLUSH) {
		vbd_req_complete(req, 0);
		return;
	}
	if (vbd->drv->submit) {
		vbd->drv->submit(vbd, req);
		return;
	}
	ret = vbd_req_run_on_pool(req);
	if (ret < 0)
		vbd_req_complete(req, ret);
}
