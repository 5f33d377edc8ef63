/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A disk made ready for partition work (part-source.c): the block device
 * holding it and kpartx's names for it.  Private to part-*.c.
 */
#ifndef VS_IMGTOOLS_PART_SOURCE_H
#define VS_IMGTOOLS_PART_SOURCE_H

#include <stdbool.h>
#include <sys/stat.h>

#include "part-map.h"
#include "part-priv.h"

struct img_part_src {
	char real[4096]; /* the disk named, resolved */
	struct stat st;	 /* of the disk named */
	char format[32]; /* its format */
	pid_t serve_pid; /* the FUSE server we started, or 0 */
	uint64_t serve_start;
	char fuse_file[4096];
	char pidfile[4096];
	bool has_whole;	   /* `whole` holds the image file */
	bool loop_created; /* and we attached it */
	struct img_loop whole;
	int whole_fd;	/* `whole` open while it has nothing on it */
	char dev[4096]; /* the block device partitions are on */
	struct stat devst;
	dev_t devt;
	int fd; /* `dev` open, to read the table */
	/* A listing without a loop device: `fd` is the file and the names
	 * come from its file name. */
	bool named_by_file;
	bool on_dm;	/* `dev` is a device-mapper device */
	char base[128]; /* kpartx's stem: "loop0" */
	char uuid[160]; /* kpartx's parent uuid */
};

void img_part_src_init(struct img_part_src *s);

/* realpath and stat of the disk named; refuses what is neither a
 * regular file nor a block device. */
int img_part_src_resolve(const char *disk, struct img_part_src *s,
			 struct vs_error **errp);

/*
 * Make the resolved disk a block device.  `temporary` (a listing): read-
 * only, and without a loop device when none can be attached.  The FUSE
 * file and pidfile go in the state folder, named after `key`.
 */
int img_part_src_open(const struct img_part_opts *o, bool temporary,
		      const char *key, struct img_part_src *s,
		      img_part_report_fn *report, void *opaque,
		      struct vs_error **errp);

/* Use the block device `path` as the disk's (opened read-only or not)
 * and name it as kpartx does. */
int img_part_src_use(struct img_part_src *s, const char *path, bool ro,
		     struct vs_error **errp);

void img_part_src_close_fds(struct img_part_src *s);

/* Close, detach the loop device we attached, stop the server we
 * started. */
int img_part_src_undo(struct img_part_src *s, img_part_report_fn *report,
		      void *opaque, struct vs_error **errp);

#endif
