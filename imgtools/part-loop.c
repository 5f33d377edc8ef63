/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loop devices for partition mapping: attach, recognise, detach, busy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "part-priv.h"

/* LOOP_CTL_GET_FREE hands out a number another process may take before
 * we bind it: try again a bounded number of times. */
#define ATTACH_TRIES 64

static void fill(struct img_loop *l, const char *dev, dev_t rdev,
		 const struct loop_info64 *info)
{
	snprintf(l->dev, sizeof(l->dev), "%s", dev);
	l->rdev = rdev;
	l->backing_dev = info->lo_device;
	l->backing_ino = info->lo_inode;
	l->offset = info->lo_offset;
	l->sizelimit = info->lo_sizelimit;
	l->autoclear = info->lo_flags & LO_FLAGS_AUTOCLEAR;
}

/* Bind the loop device open on `lfd`: LOOP_CONFIGURE (one ioctl, Linux
 * 5.8), else the older LOOP_SET_FD and LOOP_SET_STATUS64 pair. */
static int configure(int lfd, int backing_fd, const struct loop_info64 *info)
{
	struct loop_config cfg = {.fd = (unsigned)backing_fd, .info = *info};

	if (!ioctl(lfd, LOOP_CONFIGURE, &cfg))
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -errno;
	if (ioctl(lfd, LOOP_SET_FD, backing_fd) < 0)
		return -errno;
	if (ioctl(lfd, LOOP_SET_STATUS64, info) < 0) {
		int e = errno;

		ioctl(lfd, LOOP_CLR_FD, 0);
		return -e;
	}
	return 0;
}

static int attach_one(int ctl, int backing_fd, const struct loop_info64 *info,
		      bool ro, struct img_loop *out, int *fd,
		      struct vs_error **errp)
{
	char dev[32];
	struct stat st;
	int n, lfd, ret;

	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		return vs_error_set_errno(errp, errno,
					  "no free loop device "
					  "(LOOP_CTL_GET_FREE)");
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	lfd = open(dev, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (lfd < 0)
		return vs_error_set_errno(errp, errno, "%s", dev);
	if (fstat(lfd, &st) < 0 || !S_ISBLK(st.st_mode)) {
		close(lfd);
		return vs_error_set(errp, ENODEV, "%s is not a block device",
				    dev);
	}
	ret = configure(lfd, backing_fd, info);
	if (ret == -EBUSY) {
		close(lfd);
		return ret; /* taken meanwhile: the caller tries again */
	}
	if (ret < 0) {
		close(lfd);
		return vs_error_set_errno(errp, -ret, "cannot bind %s", dev);
	}
	/* The kernel's view, inode numbers included. */
	struct loop_info64 now;
	if (ioctl(lfd, LOOP_GET_STATUS64, &now) < 0) {
		ret = -errno;
		ioctl(lfd, LOOP_CLR_FD, 0);
		close(lfd);
		return vs_error_set_errno(errp, -ret, "%s: LOOP_GET_STATUS64",
					  dev);
	}
	fill(out, dev, st.st_rdev, &now);
	*fd = lfd;
	return 0;
}

int img_loop_attach(int backing_fd, const char *name, uint64_t offset,
		    uint64_t sizelimit, bool ro, bool autoclear,
		    struct img_loop *out, int *fd, struct vs_error **errp)
{
	struct loop_info64 info = {
		.lo_offset = offset,
		.lo_sizelimit = sizelimit,
		.lo_flags = (ro ? LO_FLAGS_READ_ONLY : 0) |
			    (autoclear ? LO_FLAGS_AUTOCLEAR : 0),
	};
	int ctl, ret = -EBUSY;

	snprintf((char *)info.lo_file_name, sizeof(info.lo_file_name), "%s",
		 name);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return vs_error_set_errno(errp, errno, "/dev/loop-control");
	for (int i = 0; i < ATTACH_TRIES && ret == -EBUSY; i++)
		ret = attach_one(ctl, backing_fd, &info, ro, out, fd, errp);
	close(ctl);
	if (ret == -EBUSY)
		return vs_error_set(errp, EBUSY,
				    "no loop device could be bound to %s "
				    "(%d tries, each taken by another process)",
				    name, ATTACH_TRIES);
	return ret;
}

int img_loop_status(const char *dev, struct img_loop *out)
{
	struct loop_info64 info;
	struct stat st;
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return errno == ENOENT ? -ENXIO : -errno;
	if (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode) ||
	    major(st.st_rdev) != 7) /* LOOP_MAJOR */
		ret = -ENXIO;
	else if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
		ret = -errno;
	else
		fill(out, dev, st.st_rdev, &info);
	close(fd);
	return ret;
}

int img_loop_find(uint64_t st_dev, uint64_t st_ino, struct img_loop *out)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char dev[32], extra;
		struct img_loop l;
		unsigned n;

		if (sscanf(e->d_name, "loop%u%c", &n, &extra) != 1)
			continue;
		snprintf(dev, sizeof(dev), "/dev/loop%u", n);
		if (img_loop_status(dev, &l) < 0)
			continue;
		if (l.backing_dev == st_dev && l.backing_ino == st_ino &&
		    !l.offset && !l.sizelimit) {
			*out = l;
			found = 1;
		}
	}
	closedir(d);
	return found;
}

static bool same_loop(const struct img_loop *a, const struct img_loop *b)
{
	return a->rdev == b->rdev && a->backing_dev == b->backing_dev &&
	       a->backing_ino == b->backing_ino && a->offset == b->offset &&
	       a->sizelimit == b->sizelimit;
}

/* Bounded: a device some process keeps open stays bound until it closes
 * it; unmap then says so rather than hanging. */
static int wait_unbound(const struct img_loop *want, struct vs_error **errp)
{
	for (int i = 0; i < 200; i++) {
		struct img_loop now;

		if (img_loop_status(want->dev, &now) < 0 ||
		    !same_loop(&now, want))
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000},
			  NULL);
	}
	return vs_error_set(errp, EBUSY,
			    "%s is still bound after 10 s: something holds it "
			    "open; it detaches when that closes it",
			    want->dev);
}

int img_loop_detach(const struct img_loop *want, bool wait,
		    struct vs_error **errp)
{
	struct img_loop now;
	int fd, ret;

	ret = img_loop_status(want->dev, &now);
	if (ret == -ENXIO)
		return 0; /* gone already (autoclear) */
	if (ret < 0)
		return vs_error_set_errno(errp, -ret, "%s", want->dev);
	if (!same_loop(&now, want))
		return 0; /* the number was reused: not ours any more */
	fd = open(want->dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_error_set_errno(errp, errno, "%s", want->dev);
	ret = ioctl(fd, LOOP_CLR_FD, 0) < 0 ? -errno : 0;
	close(fd);
	if (ret == -ENXIO)
		return 0;
	if (ret < 0)
		return vs_error_set_errno(errp, -ret, "cannot detach %s",
					  want->dev);
	return wait ? wait_unbound(want, errp) : 0;
}

/* A process other than us with `rdev` open: its pid, or 0. */
static pid_t find_opener(dev_t rdev)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	pid_t found = 0, self = getpid();

	if (!proc)
		return 0;
	while (!found && (p = readdir(proc))) {
		char path[300];
		struct dirent *f;
		DIR *fds;
		pid_t pid = (pid_t)atoi(p->d_name);

		if (pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!found && (f = readdir(fds))) {
			char fp[600];
			struct stat st;

			if (f->d_name[0] == '.')
				continue;
			snprintf(fp, sizeof(fp), "%s/%s", path, f->d_name);
			if (!stat(fp, &st) && S_ISBLK(st.st_mode) &&
			    st.st_rdev == rdev)
				found = pid;
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/* The first entry of /sys/dev/block/MAJ:MIN/holders: a device stacked
 * on this one (a dm map, a loop device does not show here). */
static bool has_holder(dev_t rdev, char *name, size_t len)
{
	char path[80];
	struct dirent *e;
	DIR *d;
	bool found = false;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders",
		 major(rdev), minor(rdev));
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(name, len, "%s", e->d_name);
			found = true;
		}
	closedir(d);
	return found;
}

int img_dev_busy(const char *dev, dev_t rdev, char *why, size_t len)
{
	char holder[NAME_MAX + 1];
	pid_t pid;
	int fd;

	if (has_holder(rdev, holder, sizeof(holder))) {
		snprintf(why, len, "%s holds it", holder);
		return 1;
	}
	/* An exclusive open fails while it is mounted, used as swap, or
	 * claimed by another driver. */
	fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY) {
		snprintf(why, len, "mounted or claimed by the kernel");
		return 1;
	}
	if (fd >= 0)
		close(fd);
	pid = find_opener(rdev);
	if (pid) {
		char comm[64] = "?", path[64];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		snprintf(why, len, "open in process %d (%s)", (int)pid, comm);
		return 1;
	}
	return 0;
}

int img_loop_find_on(const char *path, char *found, size_t len)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int ret = 0;

	if (!d)
		return 0;
	while (!ret && (e = readdir(d))) {
		char sys[64], back[4096], extra;
		unsigned n;
		FILE *f;

		if (sscanf(e->d_name, "loop%u%c", &n, &extra) != 1)
			continue;
		snprintf(sys, sizeof(sys),
			 "/sys/block/loop%u/loop/backing_file", n);
		f = fopen(sys, "re");
		if (!f)
			continue; /* unbound */
		if (fgets(back, sizeof(back), f)) {
			back[strcspn(back, "\n")] = '\0';
			if (!strcmp(back, path)) {
				snprintf(found, len, "/dev/loop%u", n);
				ret = 1;
			}
		}
		fclose(f);
	}
	closedir(d);
	return ret;
}
