/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Partitions of a disk as block devices, in the manner of kpartx: list
 * (kpartx -l), map (-a), unmap (-d), with kpartx's names ("loop0p1",
 * "sdb1", "vg-lv1").
 *
 * A disk is a block device, a raw image file (attached to a loop device
 * first, as kpartx does) or an image of any other format (exported
 * through `vstor serve --fuse`, and that file attached to a loop
 * device).  Partitions become device-mapper linear maps where device-
 * mapper works, loop devices with an offset and a size limit where it
 * does not.  What map made is recorded in a state file (folder
 * /run/vstor/part, or $VSTOR_PART_STATE_DIR) so that unmap undoes it in
 * order: maps, then the loop device it attached, then the FUSE server.
 */
#ifndef VS_IMGTOOLS_PART_MAP_H
#define VS_IMGTOOLS_PART_MAP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"
#include "part-table.h"

enum img_part_method {
	IMG_PART_AUTO, /* device-mapper when it works, else loop devices */
	IMG_PART_DM,
	IMG_PART_LOOP,
};

struct img_part_opts {
	const char *format; /* the image's format; NULL: probe a file,
			     * raw for a block device */
	const char *delim;  /* between name and number; NULL: kpartx's
			     * rule ("p" after a digit) */
	bool readonly;	    /* read-only maps (and export) */
	enum img_part_method method;
};

/* What `list` found. */
struct img_part_listing {
	char format[32];   /* of the disk */
	char device[4096]; /* the block device the names derive from
			     * ("/dev/loop0"), or the file itself when no
			     * loop device could be attached */
	char base[128];	   /* the map name's stem: "loop0" */
	char delim[16];	   /* the delimiter used */
	bool on_dm;	   /* the disk is itself a device-mapper device */
	struct img_part_table *table;
};

int img_part_list(const char *disk, const struct img_part_opts *o,
		  struct img_part_listing **out, struct vs_error **errp);
void img_part_listing_free(struct img_part_listing *l);

/* Events that map and unmap report as they happen (for kpartx -v's
 * lines). */
enum img_part_event_kind {
	IMG_PART_EV_SERVE_START, /* pid: the FUSE server, dev: its file */
	IMG_PART_EV_ADD,	 /* a partition mapped */
	IMG_PART_EV_DEL,	 /* a partition unmapped */
	IMG_PART_EV_LOOP_DEL,
	IMG_PART_EV_SERVE_STOP,
};

struct img_part_event {
	enum img_part_event_kind kind;
	bool dm;	  /* ADD/DEL: a device-mapper map, else a loop */
	const char *name; /* ADD/DEL: "loop0p1" */
	const char *dev;  /* "/dev/mapper/loop0p1", "/dev/loop5", ... */
	dev_t devt;
	uint64_t size;	    /* ADD: sectors mapped */
	const char *parent; /* ADD: the disk's block device */
	dev_t parent_devt;
	uint64_t start; /* ADD: first sector on the parent */
	pid_t pid;	/* SERVE_*: the server */
};

typedef void img_part_report_fn(const struct img_part_event *ev, void *opaque);

/*
 * Map every partition of `disk`.  Refuses a disk already mapped, a table
 * with a partition that cannot be mapped (img_part.problem), a disk
 * without partitions, and names that device-mapper already uses.  On
 * failure everything made so far is undone.
 */
int img_part_map(const char *disk, const struct img_part_opts *o,
		 img_part_report_fn *report, void *opaque,
		 struct vs_error **errp);

/*
 * Undo what map made for `disk` (the image file, its block device, or
 * the loop device map attached to it).  Refuses, before removing
 * anything, when one of the maps is in use.  Without a state file,
 * device-mapper maps that kpartx -a would have made are found by name,
 * table and uuid and removed, as kpartx -d does.
 */
int img_part_unmap(const char *disk, const struct img_part_opts *o,
		   img_part_report_fn *report, void *opaque,
		   struct vs_error **errp);

#endif
