/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>

#include "lock.h"
#include "vbd.h"

#define LOCK_PERM_BASE	 100
#define LOCK_SHARED_BASE 200
#define N_PERMS		 4

static const char *const perm_name[N_PERMS] = {"consistent read", "write",
					       "write unchanged", "resize"};

static int lock_byte(int fd, int cmd, short type, off_t byte, struct flock *fl)
{
	*fl = (struct flock){
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};
	return fcntl(fd, cmd, fl) < 0 ? -errno : 0;
}

/* True if another open file description holds a lock on `byte`. */
static int byte_taken(int fd, off_t byte, bool *taken)
{
	struct flock fl;
	int ret = lock_byte(fd, F_OFD_GETLK, F_WRLCK, byte, &fl);

	if (ret < 0)
		return ret;
	*taken = fl.l_type != F_UNLCK;
	return 0;
}

static int lock_fail(const char *filename, int err, struct vs_error **errp)
{
	if (err == -EINVAL || err == -ENOLCK || err == -EOPNOTSUPP) {
		/* Filesystems without locking (some network ones) cannot
		 * protect the image; QEMU carries on there too. */
		return 0;
	}
	return vs_error_set_errno(errp, err, "%s: cannot take image lock",
				  filename);
}

/*
 * Fail with -EBUSY if another open file description holds `byte`: a
 * byte in the shared range means someone refuses to share permission
 * `bit` with us, one in the perm range that someone uses a permission we
 * refuse to share.
 */
static int check_free(int fd, const char *filename, off_t byte, int bit,
		      struct vs_error **errp)
{
	bool taken;
	int ret = byte_taken(fd, byte, &taken);

	if (ret < 0)
		return lock_fail(filename, ret, errp);
	if (!taken)
		return 0;
	if (byte >= LOCK_SHARED_BASE)
		return vs_error_set(errp, EBUSY,
				    "%s: failed to get \"%s\" lock: another "
				    "process (a running domain, vstor or QEMU) "
				    "has the image open and does not allow %s",
				    filename, perm_name[bit], perm_name[bit]);
	return vs_error_set(errp, EBUSY,
			    "%s: failed to get shared \"%s\" lock: another "
			    "process (a running domain, vstor or QEMU) has the "
			    "image open for %s; use -U (force share) to read "
			    "it anyway",
			    filename, perm_name[bit], perm_name[bit]);
}

int vbd_lock_apply(int fd, const char *filename, unsigned perm, unsigned shared,
		   struct vs_error **errp)
{
	struct flock fl;
	int ret;

	for (int i = 0; i < N_PERMS; i++) {
		if (perm & (1u << i)) {
			ret = lock_byte(fd, F_OFD_SETLK, F_RDLCK,
					LOCK_PERM_BASE + i, &fl);
			if (ret < 0)
				return lock_fail(filename, ret, errp);
		}
		if (!(shared & (1u << i))) {
			ret = lock_byte(fd, F_OFD_SETLK, F_RDLCK,
					LOCK_SHARED_BASE + i, &fl);
			if (ret < 0)
				return lock_fail(filename, ret, errp);
		}
	}

	/* Lock first, check second: two openers racing both see each
	 * other and both fail, rather than both succeeding. */
	for (int i = 0; i < N_PERMS; i++) {
		if (perm & (1u << i)) {
			ret = check_free(fd, filename, LOCK_SHARED_BASE + i, i,
					 errp);
			if (ret < 0)
				return ret;
		}
		if (!(shared & (1u << i))) {
			ret = check_free(fd, filename, LOCK_PERM_BASE + i, i,
					 errp);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

void vbd_lock_perms(unsigned vbd_flags, bool readonly, unsigned *perm,
		    unsigned *shared)
{
	*perm = VBD_PERM_CONSISTENT_READ;
	if (!readonly)
		*perm |= VBD_PERM_WRITE | VBD_PERM_RESIZE;
	/* A reader wants a consistent view, so it keeps writers out unless
	 * it was told to share (qemu-img -U); a writer keeps other writers
	 * and resizers out. */
	*shared = VBD_PERM_CONSISTENT_READ | VBD_PERM_WRITE_UNCHANGED;
	if (vbd_flags & VBD_O_SHARE)
		*shared = VBD_PERM_ALL;
}
