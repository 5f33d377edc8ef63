/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every format's create callback does to its new file: open it
 * without truncating, lock it, check it is a regular file, and write
 * whole buffers with errors that name the file and the offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "lock.h"

int vbd_create_open(const char *path, const char *format,
		    struct vs_error **errp)
{
	struct stat st;
	int fd, ret;

	/* No O_TRUNC: an image in use is refused by the lock before a
	 * single byte of it is lost. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return vs_error_set_errno(errp, errno, "%s: cannot create",
					  path);
	ret = vbd_lock_apply(fd, path,
			     VBD_PERM_CONSISTENT_READ | VBD_PERM_WRITE |
				     VBD_PERM_RESIZE,
			     VBD_PERM_CONSISTENT_READ, errp);
	if (ret == 0 && fstat(fd, &st) < 0)
		ret = vs_error_set_errno(errp, errno, "%s: cannot stat", path);
	if (ret == 0 && !S_ISREG(st.st_mode))
		ret = vs_error_set(errp, ENOTSUP,
				   "%s: %s images can only be created in "
				   "regular files",
				   path, format);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int vbd_create_write(int fd, const char *path, const void *buf, size_t len,
		     uint64_t off, struct vs_error **errp)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vs_error_set_errno(errp, n < 0 ? errno : EIO,
						  "%s: cannot write %zu bytes "
						  "at offset %" PRIu64,
						  path, len, off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}
