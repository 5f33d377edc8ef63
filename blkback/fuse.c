/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE transport: a disk as one regular file (vstor serve --fuse).
 *
 * The mountpoint is the file itself, as qemu-storage-daemon's FUSE export
 * does it: the kernel mounts a filesystem whose root inode is a regular
 * file of the disk's size, so losetup, partx, dd, cmp and qemu-img see a
 * raw image of any format.  The file must exist as a regular file; it is
 * created (mode 0600) when missing and removed at stop only then.
 *
 * Threads: a few workers of our own read requests from the FUSE device
 * (non-blocking, woken by epoll) and hand I/O to blkback_submit; the reply
 * goes out from the completion, on whatever thread runs it, so a worker
 * never waits for the disk and the kernel may keep many requests in
 * flight.  We run our own loop rather than fuse_session_loop_mt because
 * stop must never hang: libfuse's workers sit in read() on the device
 * until a request comes, and while any process holds the file open
 * unmounting does not wake them.  Ours also wait on an eventfd that stop
 * makes readable.
 *
 * Opened files use direct I/O: no page cache of the FUSE file that could
 * go stale while other exports (NBD, vhost-user) write to the same disk,
 * and no double caching over the image's own.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <fuse_lowlevel.h>
#include <json-c/json.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../common/opts.h"
#include "blkback.h"

#define FUSE_WORKERS 4
/* Zeroing and punching run in steps of this much, so that one fallocate
 * of a whole disk is not one unbounded request. */
#define ZERO_STEP (1ull << 30)
/* The buffer alignment O_DIRECT images want. */
#define BUF_ALIGN 4096
/* The file's size never changes; other attributes only through us. */
#define ATTR_TIMEOUT 1.0

struct fuse_export;

struct fuse_worker {
	struct fuse_export *fx;
	pthread_t thread;
	int epoll_fd;
};

struct fuse_export {
	struct blkback_disk *disk;
	char *path;
	bool created;  /* we made the mountpoint file: remove it at stop */
	bool readonly; /* the disk's, or readonly=on */
	uint64_t size;
	int image_fd; /* O_PATH on the image, for st_blocks; -1 if none */
	struct fuse_session *se;
	int dev_fd;  /* the session's /dev/fuse descriptor, non-blocking */
	int stop_fd; /* eventfd: readable once stop has begun */
	struct fuse_worker workers[FUSE_WORKERS];
	unsigned nworkers; /* started */

	pthread_mutex_t lock;
	pthread_cond_t idle;
	uint64_t in_flight; /* requests between submit and reply */
	/* Attributes a user may change (chmod, chown, touch). */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
};

/* One request between blkback_submit and the FUSE reply. */
struct fuse_io {
	struct blkback_req breq;
	struct fuse_export *fx;
	fuse_req_t req;
	struct iovec iov;
	void *buf;
	size_t count; /* bytes to report (READ, WRITE) */
};

static struct fuse_export *export_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void io_get(struct fuse_export *fx)
{
	pthread_mutex_lock(&fx->lock);
	fx->in_flight++;
	pthread_mutex_unlock(&fx->lock);
}

static void io_put(struct fuse_export *fx)
{
	pthread_mutex_lock(&fx->lock);
	if (--fx->in_flight == 0)
		pthread_cond_broadcast(&fx->idle);
	pthread_mutex_unlock(&fx->lock);
}

/* A -errno from the request path as the positive errno FUSE replies
 * carry; anything else is a bug somewhere below and reads as EIO. */
static int reply_errno(int ret)
{
	return ret < 0 && ret > -4096 ? -ret : EIO;
}

static void io_done(struct blkback_req *breq, int ret)
{
	struct fuse_io *io = (struct fuse_io *)breq;
	struct fuse_export *fx = io->fx;

	if (ret < 0)
		fuse_reply_err(io->req, reply_errno(ret));
	else if (breq->op == BLKBACK_OP_READ)
		fuse_reply_buf(io->req, io->buf, io->count);
	else if (breq->op == BLKBACK_OP_WRITE)
		fuse_reply_write(io->req, io->count);
	else
		fuse_reply_err(io->req, 0);
	free(io->buf);
	free(io);
	io_put(fx);
}

/* A request with a payload buffer of `len` bytes (0: none); NULL when
 * memory runs out, and the caller replies ENOMEM. */
static struct fuse_io *io_new(struct fuse_export *fx, fuse_req_t req,
			      enum blkback_op op, uint64_t offset, size_t len)
{
	struct fuse_io *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	if (len && posix_memalign(&io->buf, BUF_ALIGN, len)) {
		free(io);
		return NULL;
	}
	io->fx = fx;
	io->req = req;
	io->iov = (struct iovec){.iov_base = io->buf, .iov_len = len};
	io->count = len;
	io->breq.op = op;
	io->breq.offset = offset;
	io->breq.len = len;
	if (len) {
		io->breq.iov = &io->iov;
		io->breq.iovcnt = 1;
	}
	io->breq.done = io_done;
	return io;
}

static void io_submit(struct fuse_io *io)
{
	io_get(io->fx);
	blkback_submit(io->fx->disk, &io->breq);
}

/* Synchronous requests, for the rare operations that need several steps
 * (fallocate); the worker thread waits. */
struct sync_req {
	struct blkback_req breq;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int ret;
};

static void sync_done(struct blkback_req *breq, int ret)
{
	struct sync_req *s = (struct sync_req *)breq;

	pthread_mutex_lock(&s->lock);
	s->ret = ret;
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static int submit_wait(struct fuse_export *fx, enum blkback_op op,
		       uint64_t offset, uint64_t len, unsigned flags)
{
	struct sync_req s = {
		.breq = {.op = op,
			 .offset = offset,
			 .len = len,
			 .flags = flags,
			 .done = sync_done},
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};

	blkback_submit(fx->disk, &s.breq);
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	return s.ret;
}

/* Attributes. */

static void fill_stat(struct fuse_export *fx, struct stat *st)
{
	struct stat img;

	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_nlink = 1;
	st->st_size = (off_t)fx->size;
	st->st_blksize = BUF_ALIGN;
	/*
	 * What the image takes on the host, as du shows it for a sparse
	 * file; a block device (phy:) has no such count and shows the
	 * whole size.
	 */
	if (fx->image_fd >= 0 && fstat(fx->image_fd, &img) == 0 &&
	    S_ISREG(img.st_mode))
		st->st_blocks = img.st_blocks;
	else
		st->st_blocks = (blkcnt_t)((fx->size + 511) / 512);
	pthread_mutex_lock(&fx->lock);
	st->st_mode = S_IFREG | fx->mode;
	st->st_uid = fx->uid;
	st->st_gid = fx->gid;
	st->st_atim = fx->atime;
	st->st_mtim = fx->mtime;
	st->st_ctim = fx->ctime;
	pthread_mutex_unlock(&fx->lock);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Splicing moves pages we would have to copy anyway (the request
	 * path wants aligned buffers); writeback caching would defeat the
	 * direct I/O we ask for. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_WRITEBACK_CACHE);
	/* Let the kernel split large direct I/O and keep several parts in
	 * flight; we answer out of order. */
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	/* The root is a regular file: there is nothing to look up in it. */
	fuse_reply_err(req, ENOTDIR);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(export_of(req), &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static struct timespec now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fuse_export *fx = export_of(req);
	struct timespec now = now_realtime();
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/*
	 * The disk has a fixed size: truncating it (open with O_TRUNC,
	 * ftruncate) would lose or invent data, so only its own size is
	 * accepted, as a no-op.
	 */
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    (attr->st_size < 0 || (uint64_t)attr->st_size != fx->size)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* The kernel checked ownership (default_permissions). */
	pthread_mutex_lock(&fx->lock);
	if (to_set & FUSE_SET_ATTR_MODE)
		fx->mode = attr->st_mode & 07777;
	if (to_set & FUSE_SET_ATTR_UID)
		fx->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		fx->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		fx->atime = now;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		fx->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		fx->mtime = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		fx->mtime = attr->st_mtim;
	fx->ctime = now;
	pthread_mutex_unlock(&fx->lock);
	fill_stat(fx, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* Opening and closing.  fi->fh says whether the handle may write. */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_export *fx = export_of(req);
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (writing && fx->readonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->fh = writing;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	/* Closing a handle that cannot write has nothing to flush. */
	fi->noflush = !writing;
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void submit_flush(fuse_req_t req)
{
	struct fuse_io *io =
		io_new(export_of(req), req, BLKBACK_OP_FLUSH, 0, 0);

	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	io_submit(io);
}

/* close(2) of a handle that could write: what it wrote becomes stable,
 * as a block device's last close does. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!fi->fh) {
		fuse_reply_err(req, 0);
		return;
	}
	submit_flush(req);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	submit_flush(req);
}

/* Data. */

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_export *fx = export_of(req);
	struct fuse_io *io;
	uint64_t len;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* At or past the end: end of file, as for any regular file. */
	if ((uint64_t)off >= fx->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* A read crossing the end is short; so is one larger than the
	 * request path takes (the kernel asks again for the rest). */
	len = VS_MIN((uint64_t)size, fx->size - (uint64_t)off);
	len = VS_MIN(len, (uint64_t)BLKBACK_MAX_IO);
	io = io_new(fx, req, BLKBACK_OP_READ, (uint64_t)off, (size_t)len);
	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	io_submit(io);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_export *fx = export_of(req);
	struct fuse_io *io;
	uint64_t len;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (fx->readonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	/* The file cannot grow: past the end is out of space, as on a
	 * block device; a write crossing the end is short. */
	if ((uint64_t)off >= fx->size) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	len = VS_MIN((uint64_t)size, fx->size - (uint64_t)off);
	len = VS_MIN(len, (uint64_t)BLKBACK_MAX_IO);
	io = io_new(fx, req, BLKBACK_OP_WRITE, (uint64_t)off, (size_t)len);
	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* `buf` lives in the worker's request buffer, which the next
	 * request overwrites before this one completes. */
	memcpy(io->buf, buf, (size_t)len);
	/* O_SYNC and O_DSYNC handles want each write stable on return. */
	if (fi->flags & O_DSYNC)
		io->breq.flags |= BLKBACK_F_FUA;
	io_submit(io);
}

/* Zero [offset, offset + len) in steps; `unmap` lets the image
 * deallocate (punch a hole). */
static int zero_range(struct fuse_export *fx, uint64_t offset, uint64_t len,
		      bool unmap)
{
	unsigned flags = unmap && blkback_disk_discard(fx->disk)
				 ? BLKBACK_F_MAY_UNMAP
				 : 0;

	while (len) {
		uint64_t step = VS_MIN(len, ZERO_STEP);
		int ret = submit_wait(fx, BLKBACK_OP_WRITE_ZEROES, offset, step,
				      flags);

		if (ret < 0)
			return ret;
		offset += step;
		len -= step;
	}
	return 0;
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	struct fuse_export *fx = export_of(req);
	bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
	uint64_t start, end;
	int ret;

	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (fx->readonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Both are below 2^63: the sum cannot wrap. */
	start = (uint64_t)offset;
	end = start + (uint64_t)length;
	/* Growing the file is impossible; past the end with KEEP_SIZE is
	 * allowed on any file and there is nothing to do there. */
	if (end > fx->size && !keep_size) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	end = VS_MIN(end, fx->size);
	switch (mode & ~FALLOC_FL_KEEP_SIZE) {
	case 0:
		/*
		 * Plain allocation: every byte of the disk already exists
		 * as far as the file is concerned.  Reserving host space is
		 * something not every format can do, and the caller only
		 * needs later writes not to fail for a missing block.
		 */
		ret = 0;
		break;
	case FALLOC_FL_PUNCH_HOLE:
		/*
		 * A punched hole must read back as zeros (the loop driver
		 * turns write-zeroes requests into punches), which a
		 * discard does not promise: zero with unmapping allowed, so
		 * the image frees what it can.
		 */
		ret = start < end ? zero_range(fx, start, end - start, true)
				  : 0;
		break;
	case FALLOC_FL_ZERO_RANGE:
		ret = start < end ? zero_range(fx, start, end - start, false)
				  : 0;
		break;
	default:
		/* Collapsing, inserting, unsharing: not for a disk. */
		ret = -EOPNOTSUPP;
		break;
	}
	fuse_reply_err(req, ret < 0 ? reply_errno(ret) : 0);
}

/* SEEK_DATA and SEEK_HOLE from the image's block status: a hole is
 * whatever reads as zeros, whether or not it is allocated. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fuse_export *fx = export_of(req);
	struct vbd *vbd = blkback_disk_vbd(fx->disk);
	uint64_t pos;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		/* The kernel answers the others itself. */
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (blkback_disk_retired(fx->disk)) {
		fuse_reply_err(req, ESHUTDOWN);
		return;
	}
	for (pos = (uint64_t)off; pos < fx->size;) {
		struct vbd_extent ext;
		int ret = vbd_block_status(vbd, pos, fx->size - pos, &ext);
		bool hole;

		if (ret < 0) {
			fuse_reply_err(req, reply_errno(ret));
			return;
		}
		/* A driver that makes no progress must not spin a worker. */
		if (ext.length == 0) {
			vs_log(VS_LOG_ERROR, "fuse",
			       "%s: block status at offset %" PRIu64
			       " returned an empty extent",
			       fx->path, pos);
			fuse_reply_err(req, EIO);
			return;
		}
		hole = ext.flags & VBD_STATUS_ZERO;
		if ((whence == SEEK_DATA) != hole) {
			fuse_reply_lseek(req, (off_t)pos);
			return;
		}
		pos += VS_MIN(ext.length, fx->size - pos);
	}
	/* Past the last data there is no data; the end of the file is
	 * where the implicit hole begins. */
	if (whence == SEEK_DATA || (uint64_t)off >= fx->size)
		fuse_reply_err(req, ENXIO);
	else
		fuse_reply_lseek(req, (off_t)fx->size);
}

static const struct fuse_lowlevel_ops fuse_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = op_open,
	.release = op_release,
	.flush = op_flush,
	.fsync = op_fsync,
	.read = op_read,
	.write = op_write,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
};

/* The workers. */

static void *worker_main(void *arg)
{
	struct fuse_worker *w = arg;
	struct fuse_export *fx = w->fx;
	struct fuse_buf fbuf = {.mem = NULL};
	sigset_t all;

	/* Signals are the server's main loop's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!fuse_session_exited(fx->se)) {
		struct epoll_event ev[2];
		bool stop = false, request = false;
		int n, ret;

		n = epoll_wait(w->epoll_fd, ev, 2, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vs_log(VS_LOG_ERROR, "fuse", "%s: epoll_wait: %s",
			       fx->path, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == fx->stop_fd)
				stop = true;
			else
				request = true;
		}
		if (stop)
			break;
		if (!request)
			continue;
		/*
		 * Another worker may have taken the request (EAGAIN).  0
		 * means the session ended: the file was unmounted from
		 * outside (ENODEV).
		 */
		ret = fuse_session_receive_buf(fx->se, &fbuf);
		if (ret == -EAGAIN || ret == -EINTR)
			continue;
		if (ret == 0) {
			vs_log(VS_LOG_WARN, "fuse",
			       "%s: unmounted from outside; the export "
			       "serves nothing until it is removed",
			       fx->path);
			break;
		}
		if (ret < 0) {
			vs_log(VS_LOG_ERROR, "fuse",
			       "%s: reading the FUSE device: %s", fx->path,
			       strerror(-ret));
			break;
		}
		fuse_session_process_buf(fx->se, &fbuf);
	}
	free(fbuf.mem);
	return NULL;
}

/*
 * Each worker waits in its own epoll set: the device is added exclusively
 * (EPOLLEXCLUSIVE), so a request wakes one idle worker rather than all of
 * them; the stop eventfd wakes everyone.
 */
static int worker_epoll(struct fuse_export *fx, struct vs_error **errp)
{
	struct epoll_event dev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
				  .data.fd = fx->dev_fd};
	struct epoll_event stop = {.events = EPOLLIN, .data.fd = fx->stop_fd};
	int efd = epoll_create1(EPOLL_CLOEXEC);

	if (efd < 0)
		return vs_error_set_errno(
			errp, errno, "FUSE export %s: epoll_create1", fx->path);
	if (epoll_ctl(efd, EPOLL_CTL_ADD, fx->dev_fd, &dev) < 0 ||
	    epoll_ctl(efd, EPOLL_CTL_ADD, fx->stop_fd, &stop) < 0) {
		int err = errno;

		close(efd);
		return vs_error_set_errno(
			errp, err, "FUSE export %s: epoll_ctl", fx->path);
	}
	return efd;
}

/* Start and stop. */

static void export_free(struct fuse_export *fx)
{
	if (fx->se)
		fuse_session_destroy(fx->se);
	if (fx->created && unlink(fx->path) < 0 && errno != ENOENT)
		vs_log(VS_LOG_WARN, "fuse", "cannot remove %s: %s", fx->path,
		       strerror(errno));
	if (fx->stop_fd >= 0)
		close(fx->stop_fd);
	if (fx->image_fd >= 0)
		close(fx->image_fd);
	pthread_cond_destroy(&fx->idle);
	pthread_mutex_destroy(&fx->lock);
	free(fx->path);
	free(fx);
}

/*
 * Stop the workers, wait for the replies still to come, then unmount.
 * Unmounting closes the device first: with no descriptor left the kernel
 * aborts the connection, so a process still holding the file open gets
 * errors (ENOTCONN) instead of hanging, and the mount is detached even
 * while it is busy.
 */
static void export_shutdown(struct fuse_export *fx)
{
	uint64_t one = 1;
	unsigned i;

	if (fx->stop_fd >= 0 &&
	    write(fx->stop_fd, &one, sizeof(one)) != sizeof(one))
		vs_log(VS_LOG_ERROR, "fuse", "%s: waking the workers: %s",
		       fx->path, strerror(errno));
	for (i = 0; i < fx->nworkers; i++) {
		pthread_join(fx->workers[i].thread, NULL);
		close(fx->workers[i].epoll_fd);
	}
	fx->nworkers = 0;
	pthread_mutex_lock(&fx->lock);
	while (fx->in_flight)
		pthread_cond_wait(&fx->idle, &fx->lock);
	pthread_mutex_unlock(&fx->lock);
	if (fx->se && fx->dev_fd >= 0)
		fuse_session_unmount(fx->se);
	fx->dev_fd = -1;
}

struct fuse_opts {
	bool allow_other;
	bool readonly;
};

static int parse_opts(const struct blkback_export *ex, struct fuse_opts *o,
		      struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	int ret;

	ret = vs_opts_parse(ex->opts, "FUSE export option", &opts, errp);
	if (ret < 0)
		return ret;
	ret = vs_opts_get_bool(opts, "allow-other", &o->allow_other, errp);
	if (ret == 0)
		ret = vs_opts_get_bool(opts, "readonly", &o->readonly, errp);
	if (ret == 0)
		ret = vs_opts_check_used(opts, errp);
	vs_opts_free(opts);
	return ret;
}

/* The mountpoint: an existing regular file, or one we create. */
static int prepare_mountpoint(struct fuse_export *fx, struct vs_error **errp)
{
	struct stat st;
	int fd;

	if (stat(fx->path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return vs_error_set(errp, EINVAL,
					    "FUSE export %s: not a regular "
					    "file (the mountpoint must be one)",
					    fx->path);
		return 0;
	}
	if (errno != ENOENT)
		return vs_error_set_errno(errp, errno, "FUSE export %s",
					  fx->path);
	fd = open(fx->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vs_error_set_errno(errp, errno,
					  "FUSE export %s: cannot create the "
					  "file to mount on",
					  fx->path);
	close(fd);
	fx->created = true;
	return 0;
}

static int open_session(struct fuse_export *fx, bool allow_other,
			struct vs_error **errp)
{
	char mount_opts[128];
	char *argv[] = {"vstor", "-o", mount_opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int flags;

	/* default_permissions: the kernel checks the mode and owner we
	 * report, so another user cannot open the disk behind ours. */
	snprintf(mount_opts, sizeof(mount_opts),
		 "fsname=vstor,subtype=vstor,default_permissions%s",
		 allow_other ? ",allow_other" : "");
	fx->se = fuse_session_new(&args, &fuse_ops, sizeof(fuse_ops), fx);
	fuse_opt_free_args(&args);
	if (!fx->se)
		return vs_error_set(errp, EIO,
				    "FUSE export %s: cannot create a FUSE "
				    "session (is /dev/fuse there?)",
				    fx->path);
	if (fuse_session_mount(fx->se, fx->path) != 0)
		return vs_error_set(errp, EIO,
				    "FUSE export %s: cannot mount it (fuse "
				    "module loaded, permission to mount%s?)",
				    fx->path,
				    allow_other ? ", user_allow_other in "
						  "/etc/fuse.conf"
						: "");
	fx->dev_fd = fuse_session_fd(fx->se);
	flags = fcntl(fx->dev_fd, F_GETFL);
	if (flags < 0 || fcntl(fx->dev_fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return vs_error_set_errno(errp, errno,
					  "FUSE export %s: making the FUSE "
					  "device non-blocking",
					  fx->path);
	return 0;
}

static int start_workers(struct fuse_export *fx, struct vs_error **errp)
{
	while (fx->nworkers < FUSE_WORKERS) {
		struct fuse_worker *w = &fx->workers[fx->nworkers];
		int ret;

		w->fx = fx;
		w->epoll_fd = worker_epoll(fx, errp);
		if (w->epoll_fd < 0)
			return w->epoll_fd;
		ret = pthread_create(&w->thread, NULL, worker_main, w);
		if (ret) {
			close(w->epoll_fd);
			return vs_error_set_errno(errp, ret,
						  "FUSE export %s: starting "
						  "worker thread %u",
						  fx->path, fx->nworkers);
		}
		fx->nworkers++;
	}
	return 0;
}

static int fuse_start(struct blkback_export *ex, struct vs_error **errp)
{
	struct fuse_opts o = {0};
	struct fuse_export *fx;
	const char *image;
	struct timespec now = now_realtime();
	int ret;

	if (!ex->disk)
		return vs_error_set(errp, EINVAL,
				    "FUSE export %s: no disk given", ex->addr);
	if (!ex->addr || !*ex->addr)
		return vs_error_set(errp, EINVAL,
				    "FUSE export of %s: no file given",
				    blkback_disk_name(ex->disk));
	ret = parse_opts(ex, &o, errp);
	if (ret < 0)
		return ret;
	if (blkback_disk_size(ex->disk) > INT64_MAX)
		return vs_error_set(errp, EFBIG,
				    "FUSE export %s: disk %s is %" PRIu64
				    " bytes, more than a file can hold",
				    ex->addr, blkback_disk_name(ex->disk),
				    blkback_disk_size(ex->disk));

	fx = calloc(1, sizeof(*fx));
	if (!fx)
		return vs_error_set(errp, ENOMEM, "FUSE export %s", ex->addr);
	pthread_mutex_init(&fx->lock, NULL);
	pthread_cond_init(&fx->idle, NULL);
	fx->disk = ex->disk;
	fx->size = blkback_disk_size(ex->disk);
	fx->readonly = o.readonly || blkback_disk_readonly(ex->disk);
	fx->mode = fx->readonly ? 0400 : 0600;
	fx->uid = getuid();
	fx->gid = getgid();
	fx->atime = fx->mtime = fx->ctime = now;
	fx->dev_fd = -1;
	fx->image_fd = -1;
	fx->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fx->path = strdup(ex->addr);
	if (fx->stop_fd < 0 || !fx->path) {
		ret = vs_error_set_errno(errp, fx->path ? errno : ENOMEM,
					 "FUSE export %s", ex->addr);
		goto fail;
	}
	image = vbd_filename(blkback_disk_vbd(ex->disk));
	if (image)
		fx->image_fd = open(image, O_PATH | O_CLOEXEC);

	ret = prepare_mountpoint(fx, errp);
	if (ret == 0)
		ret = open_session(fx, o.allow_other, errp);
	if (ret == 0)
		ret = start_workers(fx, errp);
	if (ret < 0)
		goto fail;
	ex->priv = fx;
	vs_debug("fuse", "%s: serving %s (%" PRIu64 " bytes%s)", fx->path,
		 blkback_disk_name(fx->disk), fx->size,
		 fx->readonly ? ", read-only" : "");
	return 0;

fail:
	export_shutdown(fx);
	export_free(fx);
	return ret;
}

static void fuse_stop(struct blkback_export *ex)
{
	struct fuse_export *fx = ex->priv;

	if (!fx)
		return;
	export_shutdown(fx);
	export_free(fx);
	ex->priv = NULL;
}

static void fuse_describe(struct blkback_export *ex, struct json_object *obj)
{
	struct fuse_export *fx = ex->priv;

	if (!fx)
		return;
	json_object_object_add(obj, "file", json_object_new_string(fx->path));
	json_object_object_add(obj, "readonly",
			       json_object_new_boolean(fx->readonly));
	json_object_object_add(
		obj, "mounted",
		json_object_new_boolean(!fuse_session_exited(fx->se)));
}

const struct blkback_transport blkback_transport_fuse = {
	.name = "fuse",
	.per_disk = true,
	.start = fuse_start,
	.stop = fuse_stop,
	.describe = fuse_describe,
};
