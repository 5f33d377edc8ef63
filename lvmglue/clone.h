/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Clones of template domains (vstor clone): a new domain config whose
 * disks are copy-on-write clones of the template's, made in constant
 * time whatever the disks' size:
 *
 *   image file (any format)   a qcow2 overlay backed by the image
 *   block device, not an LV   a qcow2 overlay backed by the device
 *   thin LV                   a thin snapshot
 *   other LV                  a classic (COW) snapshot, with a warning
 *   read-only disk, cdrom     shared with the template, as written
 *
 * Nothing is ever overwritten: the new config and every new disk must
 * not exist yet.  A clone that fails half way removes what it made.
 */
#ifndef VS_LVMGLUE_CLONE_H
#define VS_LVMGLUE_CLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct lvm_clone_opts {
	const char *template_cfg; /* the template domain's config file */
	const char *name;	  /* the new domain's name */
	const char *out_cfg;	  /* NULL: NAME.cfg beside the template's */
	const char *disk_dir;	  /* where overlays go; NULL: beside each
				   * template image (a device's: beside the
				   * new config) */
	uint64_t cow_size;	  /* COW store of a classic snapshot in bytes;
			    * 0: the origin's size, so it never fills */
	bool customize;		  /* reset the identity inside the clone */
};

enum lvm_clone_how {
	LVM_CLONE_SHARED,  /* read-only: the template's disk itself */
	LVM_CLONE_OVERLAY, /* a qcow2 overlay */
	LVM_CLONE_THIN,	   /* a thin snapshot */
	LVM_CLONE_CLASSIC, /* a classic snapshot */
};

struct lvm_clone_disk {
	char *vdev;
	char *from; /* the template's target */
	char *to;   /* the clone's target (from, when shared) */
	enum lvm_clone_how how;
	bool customized; /* --customize reset its identity */
};

struct lvm_clone_result {
	char *cfg_path;
	char uuid[37];
	struct lvm_clone_disk *disks;
	size_t n_disks;
};

/*
 * Make the clone.  On success *res (cleared with lvm_clone_result_clear)
 * says what was made; on failure nothing the call made is left behind.
 */
int lvm_clone(const struct lvm_clone_opts *opts, struct lvm_clone_result *res,
	      struct vs_error **err);

void lvm_clone_result_clear(struct lvm_clone_result *res);

/* "shared", "qcow2 overlay", "thin snapshot", "classic snapshot". */
const char *lvm_clone_how_name(enum lvm_clone_how how);

/*
 * Reset the identity of the system on the ext2/3/4 file systems of a
 * disk, on the whole disk or in the partitions of its table (MBR, GPT),
 * without mounting them (e2fsprogs' debugfs -w): /etc/hostname holds
 * `hostname`, /etc/machine-id (if present) is emptied,
 * /etc/ssh/ssh_host_* are removed; the result is read back and checked.
 * `path` is a raw view of the disk (a block device or a file).  *done
 * says whether any file system with an /etc was found and changed (none
 * is not an error here); `what` names the disk in messages.
 */
int lvm_clone_customize(const char *path, const char *what,
			const char *hostname, bool *done,
			struct vs_error **err);

/* A mkdtemp(3) template "$TMPDIR/PREFIX-XXXXXX" (/tmp without TMPDIR). */
void lvm_clone_tmpdir(char *buf, size_t len, const char *prefix);

#endif
