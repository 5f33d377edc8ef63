/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A disk made ready for partition work: the block device that holds it
 * (the device itself, a loop device on a raw image, a loop device on the
 * FUSE export of any other format) and kpartx's names for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../vbd/vbd.h"
#include "part-source.h"

void img_part_src_init(struct img_part_src *s)
{
	*s = (struct img_part_src){.fd = -1, .whole_fd = -1};
}

int img_part_src_resolve(const char *disk, struct img_part_src *s,
			 struct vs_error **errp)
{
	if (!realpath(disk, s->real))
		return vs_error_set_errno(errp, errno, "%s", disk);
	if (stat(s->real, &s->st) < 0)
		return vs_error_set_errno(errp, errno, "%s", disk);
	if (!S_ISREG(s->st.st_mode) && !S_ISBLK(s->st.st_mode))
		return vs_error_set(errp, EINVAL,
				    "%s is neither a block device nor an image "
				    "file",
				    disk);
	return 0;
}

/*
 * A block device is raw unless -f says otherwise: a guest controls what
 * its disk holds, and a guessed qcow2 header there could name any host
 * file as its backing file.  An image file's format is probed, as image
 * tools do.
 */
static int find_format(const struct img_part_opts *o, struct img_part_src *s,
		       struct vs_error **errp)
{
	struct vbd *vbd = NULL;
	int ret;

	if (!o->format && S_ISBLK(s->st.st_mode)) {
		snprintf(s->format, sizeof(s->format), "raw");
		return 0;
	}
	if (o->format && !strcmp(o->format, "raw")) {
		snprintf(s->format, sizeof(s->format), "raw");
		return 0;
	}
	ret = vbd_open_file(s->real, o->format, VBD_O_RDONLY | VBD_O_SHARE,
			    &vbd, errp);
	if (ret < 0)
		return ret;
	snprintf(s->format, sizeof(s->format), "%s", vbd_format(vbd));
	vbd_close(vbd);
	return 0;
}

/* kpartx's stem and parent uuid: a device-mapper device's own name and
 * uuid; otherwise the device's file name and "devnode_MAJ:MIN_Wh5pYvM",
 * the uuid kpartx gives a parent that has none (its maps' uuids are
 * "partN-" and that), so that kpartx -d and we recognise each other's
 * maps. */
static int name_parent(struct img_part_src *s, struct vs_error **errp)
{
	char dmname[128], dmuuid[128];
	int ret = img_dm_name_of(s->devt, dmname, sizeof(dmname), dmuuid,
				 sizeof(dmuuid));

	if (ret < 0)
		return vs_error_set_errno(errp, -ret, "%s: device-mapper query",
					  s->dev);
	if (ret > 0) {
		s->on_dm = true;
		snprintf(s->base, sizeof(s->base), "%s", dmname);
		if (dmuuid[0]) {
			snprintf(s->uuid, sizeof(s->uuid), "%s", dmuuid);
			return 0;
		}
	} else {
		char copy[4096];

		snprintf(copy, sizeof(copy), "%s", s->dev);
		snprintf(s->base, sizeof(s->base), "%s", basename(copy));
	}
	snprintf(s->uuid, sizeof(s->uuid), "devnode_%u:%u_Wh5pYvM",
		 major(s->devt), minor(s->devt));
	return 0;
}

int img_part_src_use(struct img_part_src *s, const char *path, bool ro,
		     struct vs_error **errp)
{
	if (path != s->dev) /* unmap passes s->dev itself */
		snprintf(s->dev, sizeof(s->dev), "%s", path);
	s->fd = open(s->dev, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (s->fd < 0)
		return vs_error_set_errno(errp, errno, "%s", s->dev);
	if (fstat(s->fd, &s->devst) < 0 || !S_ISBLK(s->devst.st_mode))
		return vs_error_set(errp, ENOTBLK, "%s is not a block device",
				    s->dev);
	s->devt = s->devst.st_rdev;
	return name_parent(s, errp);
}

/*
 * The image file `file` (the image itself, or the FUSE file) onto a loop
 * device: one already bound to the whole of it is used as it is (kpartx
 * does the same); otherwise one is attached with autoclear, so that the
 * kernel lets go of it once the last map on it is gone.  For a listing
 * (temporary) a failure to attach is no error: the names then come
 * from the file.
 */
static int attach_file(struct img_part_src *s, const char *file, bool ro,
		       bool temporary, struct vs_error **errp)
{
	struct stat st;
	int bfd, ret;

	bfd = open(file, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (bfd < 0)
		return vs_error_set_errno(errp, errno, "%s", file);
	if (fstat(bfd, &st) < 0) {
		ret = vs_error_set_errno(errp, errno, "%s", file);
		close(bfd);
		return ret;
	}
	if (img_loop_find(st.st_dev, st.st_ino, &s->whole)) {
		s->has_whole = true;
		close(bfd);
		return img_part_src_use(s, s->whole.dev, ro, errp);
	}
	ret = img_loop_attach(bfd, file, 0, 0, ro, true, &s->whole,
			      &s->whole_fd, temporary ? NULL : errp);
	if (ret < 0 && temporary) {
		/* Not root, no loop devices: read the file itself. */
		char copy[4096];

		s->fd = bfd;
		s->devst = st;
		s->named_by_file = true;
		snprintf(s->dev, sizeof(s->dev), "%s", file);
		snprintf(copy, sizeof(copy), "%s", s->real);
		snprintf(s->base, sizeof(s->base), "%s", basename(copy));
		return 0;
	}
	close(bfd);
	if (ret < 0)
		return ret;
	s->has_whole = true;
	s->loop_created = true;
	return img_part_src_use(s, s->whole.dev, ro, errp);
}

int img_part_src_open(const struct img_part_opts *o, bool temporary,
		      const char *key, struct img_part_src *s,
		      img_part_report_fn *report, void *opaque,
		      struct vs_error **errp)
{
	char state_dir[3800]; /* with the key, fits in fuse_file */
	int ret = find_format(o, s, errp);

	if (ret < 0)
		return ret;
	if (!strcmp(s->format, "raw")) {
		if (S_ISBLK(s->st.st_mode))
			return img_part_src_use(s, s->real,
						o->readonly || temporary, errp);
		return attach_file(s, s->real, o->readonly || temporary,
				   temporary, errp);
	}
	/* Only here is the state folder needed for a listing: a user who
	 * may not create it still lists raw images. */
	ret = img_part_state_dir(state_dir, sizeof(state_dir), errp);
	if (ret < 0)
		return ret;
	snprintf(s->fuse_file, sizeof(s->fuse_file), "%s/%s.fuse", state_dir,
		 key);
	snprintf(s->pidfile, sizeof(s->pidfile), "%s/%s.pid", state_dir, key);
	ret = img_part_serve_start(s->real, s->format, o->readonly || temporary,
				   s->fuse_file, s->pidfile, &s->serve_pid,
				   &s->serve_start, errp);
	if (ret < 0)
		return ret;
	if (report)
		report(&(struct img_part_event){.kind = IMG_PART_EV_SERVE_START,
						.dev = s->fuse_file,
						.pid = s->serve_pid},
		       opaque);
	return attach_file(s, s->fuse_file, o->readonly || temporary, temporary,
			   errp);
}

void img_part_src_close_fds(struct img_part_src *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->whole_fd >= 0)
		close(s->whole_fd);
	s->fd = s->whole_fd = -1;
}

int img_part_src_undo(struct img_part_src *s, img_part_report_fn *report,
		      void *opaque, struct vs_error **errp)
{
	int ret = 0, r;

	img_part_src_close_fds(s);
	if (s->loop_created) {
		r = img_loop_detach(&s->whole, true, errp);
		if (r < 0)
			ret = r;
		else if (report)
			report(
				&(struct img_part_event){
					.kind = IMG_PART_EV_LOOP_DEL,
					.dev = s->whole.dev,
					.devt = s->whole.rdev},
				opaque);
		s->loop_created = false;
	}
	if (s->serve_pid) {
		r = img_part_serve_stop(s->serve_pid, s->serve_start, errp);
		if (r < 0 && !ret)
			ret = r;
		else if (report)
			report(
				&(struct img_part_event){
					.kind = IMG_PART_EV_SERVE_STOP,
					.pid = s->serve_pid},
				opaque);
		s->serve_pid = 0;
	}
	return ret;
}
