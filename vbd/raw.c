/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The raw driver: regular files and block devices (xl's file: and phy:).
 *
 * Plain requests go straight to preadv/pwritev, or to the vbd's I/O
 * engine when submitted asynchronously.  With O_DIRECT, requests whose
 * offset, length or buffers are not aligned go through a bounce buffer
 * (read-modify-write for partial blocks), on the worker pool when they
 * come in asynchronously.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "../common/opts.h"
#include "driver.h"
#include "engine.h"
#include "lane.h"
#include "lock.h"

#define BOUNCE_MAX   (1u << 20) /* largest bounce buffer per step */
#define ENGINE_DEPTH 128

struct raw {
	int fd;
	bool blockdev;
	bool direct;
	uint32_t align;	    /* offset and length alignment for O_DIRECT */
	uint32_t mem_align; /* buffer alignment for O_DIRECT */
	/*
	 * Serializes bounce-buffer read-modify-writes against each other.
	 * An aligned write racing with a read-modify-write of the same
	 * block is not ordered: callers (guests) never issue overlapping
	 * writes without waiting, as with a real disk.
	 */
	pthread_mutex_t rmw_lock;
	pthread_mutex_t engine_lock;
	struct vbd_engine *engine;
	int engine_err;	 /* set when lazy engine creation failed */
	bool nowait_off; /* the file refused RWF_NOWAIT reads: never again */
	/* The file refused RWF_NOWAIT writes (ext4): buffered writes go to
	 * the lane (vbd/lane.c), not to the engine. */
	bool nowait_write_off;
	struct vbd_lane lane;
};

static struct raw *raw_of(struct vbd *vbd)
{
	return vbd->opaque;
}

/* Open and probe. */

static int open_fd(struct vbd *vbd, struct vs_error **errp)
{
	int flags = (vbd->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int fd;

	if (vbd->flags & VBD_O_DIRECT)
		flags |= O_DIRECT;
	/* A block device opened for writing is claimed exclusively, as
	 * Xen's block script refuses a device another domain writes: the
	 * kernel then refuses a second exclusive opener, a mounted device
	 * and one that device-mapper (LVM, kpartx) holds.  OFD locks alone
	 * would not do: they live on one device node's inode and only
	 * bind processes that take them.  force-share (-U) opts out. */
	if (!vbd->readonly && !(vbd->flags & VBD_O_SHARE) &&
	    stat(vbd->filename, &st) == 0 && S_ISBLK(st.st_mode))
		flags |= O_EXCL;
	fd = open(vbd->filename, flags);
	if (fd >= 0)
		return fd;
	if (errno == EBUSY && (flags & O_EXCL))
		return vs_error_set(errp, EBUSY,
				    "%s: the block device is in use (a disk "
				    "of another domain or vstor process, "
				    "mounted, or held by device-mapper); "
				    "refusing to write to it",
				    vbd->filename);
	if (errno == EINVAL && (flags & O_DIRECT))
		return vs_error_set(errp, EINVAL,
				    "%s: the filesystem does not support "
				    "O_DIRECT (cache=none, direct-io-safe)",
				    vbd->filename);
	if (errno == EISDIR)
		return vs_error_set(errp, EISDIR,
				    "%s: is a directory, not a disk image",
				    vbd->filename);
	return vs_error_set_errno(errp, errno, "%s: cannot open",
				  vbd->filename);
}

static int get_size(struct vbd *vbd, struct raw *s, const struct stat *st,
		    struct vs_error **errp)
{
	uint64_t size;

	if (S_ISREG(st->st_mode)) {
		vbd->size = (uint64_t)st->st_size;
		return 0;
	}
	if (!S_ISBLK(st->st_mode))
		return vs_error_set(errp, EINVAL,
				    "%s: is a %s, not a regular file or block "
				    "device",
				    vbd->filename,
				    S_ISDIR(st->st_mode)   ? "directory"
				    : S_ISCHR(st->st_mode) ? "character device"
							   : "special file");
	if (ioctl(s->fd, BLKGETSIZE64, &size) < 0)
		return vs_error_set_errno(errp, errno,
					  "%s: cannot get the device size",
					  vbd->filename);
	s->blockdev = true;
	vbd->size = size;
	return 0;
}

/* O_DIRECT alignment: statx knows it on Linux 6.1 and later; block
 * devices also tell their logical block size; 4096 is safe otherwise. */
static void get_dio_align(struct vbd *vbd, struct raw *s)
{
	struct statx stx;
	int lbs;

	s->align = 4096;
	s->mem_align = 4096;
#ifdef STATX_DIOALIGN
	if (statx(s->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		s->align = stx.stx_dio_offset_align;
		s->mem_align =
			stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
		return;
	}
#else
	(void)stx;
#endif
	if (s->blockdev && ioctl(s->fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
		s->align = (uint32_t)lbs;
		s->mem_align = (uint32_t)lbs;
	}
}

static int engine_get(struct vbd *vbd, struct raw *s, struct vbd_engine **out,
		      struct vs_error **errp)
{
	enum vbd_aio chosen;
	int ret = 0;

	/* Set once, read by every request: no lock once it is there. */
	*out = __atomic_load_n(&s->engine, __ATOMIC_ACQUIRE);
	if (*out)
		return 0;
	pthread_mutex_lock(&s->engine_lock);
	if (!s->engine && !s->engine_err) {
		struct vbd_engine *e = NULL;

		ret = vbd_engine_create(vbd->aio, ENGINE_DEPTH, s->direct, &e,
					&chosen, errp);
		if (ret < 0) {
			s->engine_err = ret;
		} else {
			vbd->aio = chosen;
			__atomic_store_n(&s->engine, e, __ATOMIC_RELEASE);
		}
	}
	ret = s->engine_err;
	*out = s->engine;
	pthread_mutex_unlock(&s->engine_lock);
	return ret;
}

static int lane_write(struct vbd_req *req);

static int raw_open(struct vbd *vbd, const struct vbd_spec *spec,
		    struct vs_error **errp)
{
	struct raw *s = calloc(1, sizeof(*s));
	unsigned perm, shared;
	struct stat st;
	int ret;

	if (!s)
		return vs_error_set(errp, ENOMEM, "out of memory");
	pthread_mutex_init(&s->rmw_lock, NULL);
	pthread_mutex_init(&s->engine_lock, NULL);
	if (vbd_lane_init(&s->lane, lane_write) < 0) {
		pthread_mutex_destroy(&s->rmw_lock);
		pthread_mutex_destroy(&s->engine_lock);
		free(s);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	vbd->opaque = s;
	s->direct = vbd->flags & VBD_O_DIRECT;
	s->fd = open_fd(vbd, errp);
	if (s->fd < 0) {
		ret = s->fd;
		goto fail;
	}
	if (fstat(s->fd, &st) < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: cannot stat",
					 vbd->filename);
		goto fail;
	}
	ret = get_size(vbd, s, &st, errp);
	if (ret < 0)
		goto fail;
	if (!(vbd->flags & VBD_O_NOLOCK)) {
		vbd_lock_perms(vbd->flags, vbd->readonly, &perm, &shared);
		ret = vbd_lock_apply(s->fd, vbd->filename, perm, shared, errp);
		if (ret < 0)
			goto fail;
	}
	if (s->direct) {
		get_dio_align(vbd, s);
		if (!s->blockdev && vbd->size % s->align &&
		    !(vbd->flags & VBD_O_HOST_FILE)) {
			ret = vs_error_set(
				errp, EINVAL,
				"%s: size %llu is not a multiple of the "
				"O_DIRECT block size %u; open it without "
				"direct I/O (cache=writeback)",
				vbd->filename, (unsigned long long)vbd->size,
				s->align);
			goto fail;
		}
		vbd->request_align = s->align;
	} else {
		s->align = 1;
		s->mem_align = 1;
	}
	if (vbd->aio == VBD_AIO_NATIVE && !s->direct) {
		ret = vs_error_set(
			errp, EINVAL,
			"%s: aio=native needs O_DIRECT (cache=none or "
			"direct-io-safe): without it Linux AIO blocks",
			vbd->filename);
		goto fail;
	}
	/* An engine asked for by name must work now, not at the first
	 * request; the default one is started on first use. */
	if (vbd->aio != VBD_AIO_DEFAULT) {
		struct vbd_engine *e;

		ret = engine_get(vbd, s, &e, errp);
		if (ret < 0) {
			vs_error_prefix(errp, "%s", vbd->filename);
			goto fail;
		}
	}
	return 0;
fail:
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->rmw_lock);
	pthread_mutex_destroy(&s->engine_lock);
	vbd_lane_destroy(&s->lane);
	free(s);
	vbd->opaque = NULL;
	return ret;
}

static void raw_close(struct vbd *vbd)
{
	struct raw *s = raw_of(vbd);

	if (s->engine)
		vbd_engine_destroy(s->engine);
	close(s->fd);
	pthread_mutex_destroy(&s->rmw_lock);
	pthread_mutex_destroy(&s->engine_lock);
	vbd_lane_destroy(&s->lane);
	free(s);
}

/* Synchronous data path. */

static ssize_t sys_rw(int fd, bool write, uint64_t off, const struct iovec *iov,
		      int iovcnt)
{
	ssize_t n;

	if (iovcnt > IOV_MAX)
		iovcnt = IOV_MAX;
	do
		n = write ? pwritev(fd, iov, iovcnt, (off_t)off)
			  : preadv(fd, iov, iovcnt, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/*
 * Transfer all `len` bytes, retrying short transfers.  Reads past the end
 * of the file (a file truncated under us) return zeros.
 */
static int rw_full(int fd, bool write, uint64_t off, const struct iovec *iov,
		   int iovcnt, size_t len)
{
	autofree struct iovec *rest = NULL;
	size_t done;
	ssize_t n;
	int cnt;

	n = sys_rw(fd, write, off, iov, iovcnt);
	if (n < 0 || (size_t)n == len)
		return n < 0 ? (int)n : 0;
	rest = malloc(sizeof(*rest) * (size_t)iovcnt);
	if (!rest)
		return -ENOMEM;
	for (done = (size_t)n; done < len; done += (size_t)n) {
		if (n == 0) {
			if (write)
				return -EIO;
			vs_iov_memset(iov, iovcnt, done, 0, len - done);
			return 0;
		}
		cnt = vs_iov_slice(rest, iovcnt, iov, iovcnt, done, len - done);
		if (cnt < 0)
			return -EIO;
		n = sys_rw(fd, write, off + done, rest, cnt);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

static bool req_aligned(const struct raw *s, uint64_t off, size_t len,
			const struct iovec *iov, int iovcnt)
{
	if (!s->direct)
		return true;
	if ((off | len) & (s->align - 1))
		return false;
	for (int i = 0; i < iovcnt; i++)
		if (((uintptr_t)iov[i].iov_base & (s->mem_align - 1)) ||
		    (iov[i].iov_len & (s->align - 1)))
			return false;
	return true;
}

/*
 * Bytes of bounce buffer a request of `len` bytes needs: its span rounded
 * out to whole blocks at both ends, at most BOUNCE_MAX (bigger requests
 * go in steps).  Always at least two blocks, so every step makes
 * progress.
 */
static size_t bounce_size(const struct raw *s, size_t len)
{
	if (len > BOUNCE_MAX)
		return BOUNCE_MAX;
	return VS_MIN(VS_ALIGN_UP(len + 2 * (size_t)s->align, (size_t)s->align),
		      (size_t)BOUNCE_MAX);
}

static void *bounce_alloc(const struct raw *s, size_t len)
{
	void *p;
	size_t a = VS_MAX(s->mem_align, sizeof(void *));

	return posix_memalign(&p, VS_MAX(a, 512u), len) ? NULL : p;
}

/* Read one step of an unaligned request through an aligned buffer. */
static int bounce_read(struct raw *s, uint64_t off, const struct iovec *iov,
		       int iovcnt, size_t len)
{
	size_t bsize = bounce_size(s, len);
	autofree void *buf = bounce_alloc(s, bsize);
	size_t done = 0;

	if (!buf)
		return -ENOMEM;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t start = VS_ALIGN_DOWN(pos, (uint64_t)s->align);
		size_t head = (size_t)(pos - start);
		size_t n = VS_MIN(len - done, bsize - head);
		size_t span = VS_ALIGN_UP(head + n, (size_t)s->align);
		struct iovec biov = {.iov_base = buf, .iov_len = span};
		int ret = rw_full(s->fd, false, start, &biov, 1, span);

		if (ret < 0)
			return ret;
		vs_iov_from_buf(iov, iovcnt, done, (char *)buf + head, n);
		done += n;
	}
	return 0;
}

/* Read the aligned block at `start` into buf (zeros past end of file). */
static int read_block(struct raw *s, uint64_t start, void *buf)
{
	struct iovec biov = {.iov_base = buf, .iov_len = s->align};

	return rw_full(s->fd, false, start, &biov, 1, s->align);
}

static int bounce_write(struct raw *s, uint64_t off, const struct iovec *iov,
			int iovcnt, size_t len)
{
	size_t bsize = bounce_size(s, len);
	autofree void *buf = bounce_alloc(s, bsize);
	size_t done = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&s->rmw_lock);
	while (done < len && ret == 0) {
		uint64_t pos = off + done;
		uint64_t start = VS_ALIGN_DOWN(pos, (uint64_t)s->align);
		size_t head = (size_t)(pos - start);
		size_t n = VS_MIN(len - done, bsize - head);
		size_t span = VS_ALIGN_UP(head + n, (size_t)s->align);
		struct iovec biov = {.iov_base = buf, .iov_len = span};

		/* Partial first and last blocks keep their old bytes. */
		if (head)
			ret = read_block(s, start, buf);
		if (ret == 0 && (head + n) % s->align &&
		    (span > s->align || !head))
			ret = read_block(s, start + span - s->align,
					 (char *)buf + span - s->align);
		if (ret < 0)
			break;
		vs_iov_to_buf(iov, iovcnt, done, (char *)buf + head, n);
		ret = rw_full(s->fd, true, start, &biov, 1, span);
		done += n;
	}
	pthread_mutex_unlock(&s->rmw_lock);
	return ret;
}

static int raw_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		      int iovcnt)
{
	struct raw *s = raw_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt);

	if (!req_aligned(s, offset, len, iov, iovcnt))
		return bounce_read(s, offset, iov, iovcnt, len);
	return rw_full(s->fd, false, offset, iov, iovcnt, len);
}

static int raw_pwritev(struct vbd *vbd, uint64_t offset,
		       const struct iovec *iov, int iovcnt)
{
	struct raw *s = raw_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt);

	if (!req_aligned(s, offset, len, iov, iovcnt))
		return bounce_write(s, offset, iov, iovcnt, len);
	return rw_full(s->fd, true, offset, iov, iovcnt, len);
}

/* A buffered write on the lane's job (raw_submit). */
static int lane_write(struct vbd_req *req)
{
	return raw_pwritev(req->vbd, req->offset, req->iov, req->iovcnt);
}

/* Kernel-side copies: the file as it is, through the page cache. */

static int raw_host_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int *fd,
		       uint64_t *fd_off)
{
	struct raw *s = raw_of(vbd);

	/* O_DIRECT bytes are not in the page cache, and a copy there
	 * would mix cached and uncached access to the file. */
	if (s->direct)
		return -ENOTSUP;
	*fd = s->fd;
	*fd_off = offset;
	return 0;
}

/*
 * copy_file_range until the range is written.  Whatever the kernel will
 * not do here (another file system without a common copy, a device, the
 * source ending early, whose missing bytes must read as zeros) is
 * -ENOTSUP: the caller writes the whole range again through a buffer,
 * which is harmless for a file that holds guest bytes as they are.
 */
static int raw_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len,
			    int fd, uint64_t fd_off)
{
	struct raw *s = raw_of(vbd);
	loff_t in = (loff_t)fd_off, out = (loff_t)offset;

	if (s->direct || s->blockdev)
		return -ENOTSUP;
	while (len) {
		size_t want = (size_t)VS_MIN(len, (uint64_t)(1u << 30));
		ssize_t n = copy_file_range(fd, &in, s->fd, &out, want, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 ||
		    (n < 0 && (errno == EXDEV || errno == EINVAL ||
			       errno == EOPNOTSUPP || errno == ENOSYS)))
			return -ENOTSUP;
		if (n < 0)
			return -errno;
		len -= (uint64_t)n;
	}
	return 0;
}

static int raw_flush(struct vbd *vbd)
{
	return fdatasync(raw_of(vbd)->fd) < 0 ? -errno : 0;
}

/* Discard and zeroing. */

static int blk_ioctl_range(int fd, unsigned long cmd, uint64_t off,
			   uint64_t len)
{
	uint64_t range[2] = {off, len};

	return ioctl(fd, cmd, range) < 0 ? -errno : 0;
}

static int raw_discard(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	struct raw *s = raw_of(vbd);
	uint64_t start, end;
	int ret;

	if (!s->blockdev) {
		if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)offset, (off_t)len) == 0)
			return 0;
		ret = -errno;
	} else {
		/* The device discards whole sectors: round inwards. */
		start = VS_ALIGN_UP(offset, 512);
		end = VS_ALIGN_DOWN(offset + len, 512);
		if (end <= start)
			return 0;
		ret = blk_ioctl_range(s->fd, BLKDISCARD, start, end - start);
	}
	/* Discard is advisory: a host that cannot do it loses nothing. */
	if (ret == -EOPNOTSUPP || ret == -ENOTTY || ret == -EINVAL)
		return 0;
	return ret;
}

static int file_zeroes(struct raw *s, uint64_t offset, uint64_t len,
		       unsigned flags)
{
	int mode = (flags & VBD_ZERO_MAY_UNMAP)
			   ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
			   : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (fallocate(s->fd, mode, (off_t)offset, (off_t)len) == 0)
		return 0;
	if (errno == EOPNOTSUPP && (flags & VBD_ZERO_MAY_UNMAP) &&
	    fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)offset, (off_t)len) == 0)
		return 0;
	return errno == EOPNOTSUPP || errno == ENOSYS ? -ENOTSUP : -errno;
}

/* Sub-sector pieces of a device range are written as zero buffers. */
static int write_zero_piece(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	char zero[512] = {0};
	struct iovec iov = {.iov_base = zero, .iov_len = len};

	return len ? raw_pwritev(vbd, offset, &iov, 1) : 0;
}

static int dev_zeroes(struct vbd *vbd, struct raw *s, uint64_t offset,
		      uint64_t len, unsigned flags)
{
	uint64_t start = VS_ALIGN_UP(offset, 512);
	uint64_t end = VS_ALIGN_DOWN(offset + len, 512);
	int ret;

	if (end <= start)
		return write_zero_piece(vbd, offset, len);
	ret = write_zero_piece(vbd, offset, start - offset);
	if (ret == 0)
		ret = write_zero_piece(vbd, end, offset + len - end);
	if (ret < 0)
		return ret;
	/* Punching a hole in a block device guarantees zeros and unmaps;
	 * BLKZEROOUT guarantees zeros and may or may not unmap. */
	if ((flags & VBD_ZERO_MAY_UNMAP) &&
	    fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)start, (off_t)(end - start)) == 0)
		return 0;
	ret = blk_ioctl_range(s->fd, BLKZEROOUT, start, end - start);
	return ret == -EOPNOTSUPP || ret == -ENOTTY ? -ENOTSUP : ret;
}

static int raw_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
			    unsigned flags)
{
	struct raw *s = raw_of(vbd);

	return s->blockdev ? dev_zeroes(vbd, s, offset, len, flags)
			   : file_zeroes(s, offset, len, flags);
}

static int raw_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
			    struct vbd_extent *ext)
{
	struct raw *s = raw_of(vbd);
	off_t data, hole;

	ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED;
	ext->length = len;
	ext->host_offset = (int64_t)offset;
	if (s->blockdev)
		return 0;
	data = lseek(s->fd, (off_t)offset, SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO)
			return 0;	      /* no SEEK_DATA here: all data */
		data = (off_t)(offset + len); /* a hole up to the end */
	}
	if ((uint64_t)data > offset) {
		/* A hole still has a place in the file (qemu-img map
		 * prints its offset). */
		ext->flags = VBD_STATUS_ZERO | VBD_STATUS_ALLOCATED;
		ext->length = VS_MIN((uint64_t)data - offset, len);
		return 0;
	}
	hole = lseek(s->fd, (off_t)offset, SEEK_HOLE);
	if (hole > (off_t)offset)
		ext->length = VS_MIN((uint64_t)hole - offset, len);
	return 0;
}

/* Asynchronous data path. */

struct raw_aio {
	struct vbd_eio eio;
	struct vbd_req *req;
	struct iovec *rest; /* the remainder after a short transfer */
};

static void raw_aio_finish(struct raw_aio *a, int ret)
{
	struct vbd_req *req = a->req;

	free(a->rest);
	free(a);
	vbd_req_complete(req, ret);
}

static void raw_eio_done(struct vbd_eio *eio, ssize_t ret)
{
	struct raw_aio *a = (struct raw_aio *)eio;
	struct vbd_req *req = a->req;
	struct raw *s = raw_of(req->vbd);
	int cnt;

	if (ret < 0 || eio->op == VBD_EIO_FDATASYNC)
		return raw_aio_finish(a, ret < 0 ? (int)ret : 0);
	if (ret == 0) {
		if (eio->op == VBD_EIO_WRITE)
			return raw_aio_finish(a, -EIO);
		vs_iov_memset(req->iov, req->iovcnt, req->done, 0,
			      req->len - req->done);
		return raw_aio_finish(a, 0);
	}
	req->done += (size_t)ret;
	if (req->done >= req->len)
		return raw_aio_finish(a, 0);
	/* A short transfer: send the rest. */
	if (!a->rest)
		a->rest = malloc(sizeof(*a->rest) * (size_t)req->iovcnt);
	cnt = a->rest ? vs_iov_slice(a->rest, req->iovcnt, req->iov,
				     req->iovcnt, req->done,
				     req->len - req->done)
		      : -1;
	if (cnt < 0)
		return raw_aio_finish(a, -ENOMEM);
	eio->iov = a->rest;
	eio->iovcnt = cnt;
	eio->offset = req->offset + req->done;
	vbd_engine_submit(s->engine, eio);
}

/*
 * A read whose pages are all in the page cache is served right here:
 * preadv2 with RWF_NOWAIT copies them without waiting for any I/O, or
 * refuses (EAGAIN) when it would wait.  A hit costs no hop to the
 * engine's reaper thread and back, which for 4 KiB reads from the cache
 * is most of their cost.  A short read or a refusal leaves the request
 * to the engine, which reads it again whole.  Not with O_DIRECT: that
 * bypasses the cache by definition.
 *
 * The same for a buffered write: done right here when the file system
 * can do it without waiting (XFS, btrfs, block devices when the pages
 * are cached).  ext4 refuses such writes outright; from then on, this
 * file's buffered writes go to its lane (vbd/lane.c) instead of the
 * engine: io_uring would try each one without waiting, be refused, and
 * hand it to one kernel worker per file, plus a hop to the reaper.
 * Measured through `vstor serve --nbd` (fio, 4 KiB random writes at
 * depth 32 on a raw file on ext4 cached in 4 KiB pages, 2 CPUs, runs
 * alternating): 9-14 us of server CPU per write on the lane against
 * 13-17 us through io_uring, 43-64k writes/s against 35-56k.
 */
static bool try_nowait(struct raw *s, struct vbd_req *req)
{
	bool write = req->op == VBD_OP_WRITE;
	bool *off = write ? &s->nowait_write_off : &s->nowait_off;
	ssize_t n;

	if (s->direct || __atomic_load_n(off, __ATOMIC_RELAXED) ||
	    req->offset > INT64_MAX)
		return false;
	n = write ? pwritev2(s->fd, req->iov, req->iovcnt, (off_t)req->offset,
			     RWF_NOWAIT)
		  : preadv2(s->fd, req->iov, req->iovcnt, (off_t)req->offset,
			    RWF_NOWAIT);
	if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
		__atomic_store_n(off, true, __ATOMIC_RELAXED);
	return n >= 0 && (uint64_t)n == req->len;
}

static void raw_submit(struct vbd *vbd, struct vbd_req *req)
{
	struct raw *s = raw_of(vbd);
	struct vbd_engine *e;
	struct raw_aio *a;
	int ret;

	if (req->op == VBD_OP_DISCARD || req->op == VBD_OP_WRITE_ZEROES ||
	    req->iovcnt > IOV_MAX ||
	    (req->op != VBD_OP_FLUSH &&
	     !req_aligned(s, req->offset, req->len, req->iov, req->iovcnt)))
		goto on_pool;
	/* A short write is done again whole, by the lane or the engine:
	 * the same bytes to the same place. */
	if ((req->op == VBD_OP_READ || req->op == VBD_OP_WRITE) &&
	    try_nowait(s, req))
		return vbd_req_complete(req, 0);
	if (req->op == VBD_OP_WRITE && !s->direct &&
	    __atomic_load_n(&s->nowait_write_off, __ATOMIC_RELAXED))
		return vbd_lane_push(&s->lane, req);
	ret = engine_get(vbd, s, &e, NULL);
	if (ret < 0)
		return vbd_req_complete(req, ret);
	a = malloc(sizeof(*a));
	if (!a)
		return vbd_req_complete(req, -ENOMEM);
	*a = (struct raw_aio){
		.eio =
			{
				.op = req->op == VBD_OP_READ ? VBD_EIO_READ
				      : req->op == VBD_OP_WRITE
					      ? VBD_EIO_WRITE
					      : VBD_EIO_FDATASYNC,
				.fd = s->fd,
				.offset = req->offset,
				.iov = req->iov,
				.iovcnt = req->iovcnt,
				.done = raw_eio_done,
			},
		.req = req,
	};
	vbd_engine_submit(e, &a->eio);
	return;
on_pool:
	ret = vbd_req_run_on_pool(req);
	if (ret < 0)
		vbd_req_complete(req, ret);
}

/* Creation. */

/* Bytes [start, end) of the file reserved (falloc) or written (full). */
static int preallocate_range(int fd, const char *path, const char *mode,
			     uint64_t start, uint64_t end,
			     struct vs_error **errp)
{
	uint64_t size = end - start;

	if (!strcmp(mode, "off"))
		return 0;
	if (!strcmp(mode, "falloc")) {
		if (fallocate(fd, 0, (off_t)start, (off_t)size) < 0)
			return vs_error_set_errno(errp, errno,
						  "%s: cannot preallocate %llu "
						  "bytes",
						  path,
						  (unsigned long long)size);
		return 0;
	}
	if (!strcmp(mode, "full")) {
		autofree char *buf = calloc(1, BOUNCE_MAX);
		uint64_t off;

		if (!buf)
			return vs_error_set(errp, ENOMEM, "out of memory");
		for (off = start; off < end; off += BOUNCE_MAX) {
			size_t n = VS_MIN(end - off, (uint64_t)BOUNCE_MAX);
			struct iovec iov = {.iov_base = buf, .iov_len = n};
			int ret = rw_full(fd, true, off, &iov, 1, n);

			if (ret < 0)
				return vs_error_set_errno(
					errp, ret,
					"%s: write failed at offset %llu", path,
					(unsigned long long)off);
		}
		return 0;
	}
	return vs_error_set(errp, EINVAL,
			    "%s: preallocation '%s' is not one of off, falloc, "
			    "full",
			    path, mode);
}

static int raw_create(const char *path, uint64_t size, const char *options,
		      struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	const char *prealloc;
	uint64_t devsize;
	struct stat st;
	autoclose int fd = -1;
	int ret;

	ret = vs_opts_parse(options, "raw format option", &opts, errp);
	if (ret < 0)
		return ret;
	/* Whole sectors, as qemu-img makes them: a disk of 1000 bytes could
	 * not be opened with O_DIRECT, nor be a guest's disk. */
	if (size > INT64_MAX - 511) {
		ret = vs_error_set(errp, EFBIG, "%s: size %llu is too large",
				   path, (unsigned long long)size);
		goto out;
	}
	size = VS_ALIGN_UP(size, 512);
	prealloc = vs_opts_get(opts, "preallocation");
	ret = vs_opts_check_used(opts, errp);
	if (ret < 0)
		goto out;
	/* No O_TRUNC: an image in use must be refused by its lock before a
	 * single byte is lost. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: cannot create",
					 path);
		goto out;
	}
	ret = vbd_lock_apply(fd, path,
			     VBD_PERM_CONSISTENT_READ | VBD_PERM_WRITE |
				     VBD_PERM_RESIZE,
			     VBD_PERM_CONSISTENT_READ, errp);
	if (ret < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: cannot stat", path);
		goto out;
	}
	if (S_ISBLK(st.st_mode)) {
		/* A device keeps its size; the image only has to fit. */
		if (ioctl(fd, BLKGETSIZE64, &devsize) < 0)
			devsize = 0;
		if (size > devsize)
			ret = vs_error_set(errp, ENOSPC,
					   "%s: the device holds %llu bytes, "
					   "less than the %llu asked for",
					   path, (unsigned long long)devsize,
					   (unsigned long long)size);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = vs_error_set(errp, EINVAL,
				   "%s: not a regular file or block device",
				   path);
		goto out;
	}
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0) {
		ret = vs_error_set_errno(errp, errno,
					 "%s: cannot set the size to %llu",
					 path, (unsigned long long)size);
		goto out;
	}
	ret = preallocate_range(fd, path, prealloc ? prealloc : "off", 0, size,
				errp);
	if (ret == 0 && fsync(fd) < 0)
		ret = vs_error_set_errno(errp, errno, "%s: fsync", path);
out:
	vs_opts_free(opts);
	return ret;
}

/* Resizing. */

/*
 * Files grow and, when asked, shrink with ftruncate; the new bytes are
 * a hole, or reserved (falloc) or written (full) as qemu-img resize
 * --preallocation makes them.  A block device keeps its size: only a
 * "resize" to the size it has succeeds.
 */
static int raw_truncate(struct vbd *vbd, uint64_t size, unsigned flags,
			struct vs_error **errp)
{
	struct raw *s = raw_of(vbd);
	uint64_t old = vbd->size;
	const char *mode = flags & VBD_TRUNC_PREALLOC_FULL     ? "full"
			   : flags & VBD_TRUNC_PREALLOC_FALLOC ? "falloc"
							       : "off";
	int ret;

	if (s->blockdev) {
		if (size != old)
			return vs_error_set(errp, ENOTSUP,
					    "%s: cannot resize device files "
					    "(the device holds %llu bytes)",
					    vbd->filename,
					    (unsigned long long)old);
		return 0;
	}
	if (s->direct && size % s->align)
		return vs_error_set(errp, EINVAL,
				    "%s: size %llu is not a multiple of the "
				    "O_DIRECT block size %u",
				    vbd->filename, (unsigned long long)size,
				    s->align);
	if (ftruncate(s->fd, (off_t)size) < 0)
		return vs_error_set_errno(
			errp, errno, "%s: cannot set the size to %llu",
			vbd->filename, (unsigned long long)size);
	vbd->size = size;
	if (size > old && strcmp(mode, "off")) {
		ret = preallocate_range(s->fd, vbd->filename, mode, old, size,
					errp);
		if (ret < 0)
			return ret;
	}
	if (fsync(s->fd) < 0)
		return vs_error_set_errno(errp, errno, "%s: fsync",
					  vbd->filename);
	return 0;
}

const struct vbd_driver vbd_driver_raw = {
	.name = "raw",
	.create = raw_create,
	.open = raw_open,
	.close = raw_close,
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.host_fd = raw_host_fd,
	.copy_from_fd = raw_copy_from_fd,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.block_status = raw_block_status,
	.submit = raw_submit,
	.truncate = raw_truncate,
};
