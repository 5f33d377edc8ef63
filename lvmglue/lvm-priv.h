/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the lvm*.c and backup*.c files of lvmglue/; not a
 * public header. */
#ifndef VS_LVMGLUE_LVM_PRIV_H
#define VS_LVMGLUE_LVM_PRIV_H

#include <sys/types.h>

#include "lvm.h"

struct lvm_shell;

/* The report fields vstor asks lvs for, in the order lvm-json.c reads. */
#define LVM_LV_FIELDS                                                        \
	"vg_name,lv_name,lv_uuid,lv_attr,lv_path,lv_dm_path,pool_lv,origin," \
	"lv_size,lv_active,lv_device_open,segtype,zero,vg_extent_size"
#define LVM_VG_FIELDS "vg_name,vg_size,vg_free,vg_extent_size"

/* "/dev/mapper/" + VG and LV with their dashes doubled, joined by '-'
 * (malloc'd; NULL when out of memory). */
char *lvm_dm_path(const char *vg, const char *lv);

/* "/dev/VG/LV" (malloc'd; NULL when out of memory). */
char *lvm_dev_path(const char *vg, const char *lv);

/* Split a device-mapper name made by LVM ("vg--a-lv") into VG and LV
 * (each malloc'd).  -ENOENT when it is not shaped like one. */
int lvm_dm_name_split(const char *dm, char **vg, char **lv);

/* One line of a sysfs file, trailing newline and blanks cut: 0 or
 * -errno. */
int lvm_sysfs_read(const char *path, char *buf, size_t len);

/* lvm_snapshot_create in two steps, for a caller that can describe the
 * new snapshot without an lvs run (lvmglue/backup-snap.c): the lvcreate
 * alone (in the lvm shell `sh` when not NULL), then (its fallback) the
 * lvs lookup that also activates the snapshot if lvcreate left it
 * inactive, and removes it on failure. */
int lvm_snapshot_lvcreate(struct lvm_shell *sh, const struct lvm_lv *origin,
			  const char *name, uint64_t cow_size,
			  struct vs_error **err);
int lvm_snapshot_describe(const struct lvm_lv *origin, const char *name,
			  struct lvm_lv *out, struct vs_error **err);

/* Check a VG name and an LV name given apart, as lvm_name_split checks
 * them (the LV rules, the device-mapper name length). */
int lvm_names_check(const char *vg, const char *lv, struct vs_error **err);

/* The lvm binary (malloc'd), from PATH or /usr/sbin, /sbin; NULL when
 * none. */
char *lvm_binary(void);

/* The environment of an lvm child: ours with LC_ALL=C,
 * LVM_SUPPRESS_FD_WARNINGS=1 and `extra` ("NAME=VALUE", NULL-terminated,
 * borrowed) over it.  The array is malloc'd; NULL when out of memory. */
char **lvm_child_env(const char *const *extra);

/* lvm's stderr as one line for a message (malloc'd; NULL when empty). */
char *lvm_stderr_summary(const char *text);

/* --- one lvm process for several commands (lvm-shell.c) ------------ */

/* Start lvm's shell, which answers while the caller goes on; NULL when
 * it cannot (no lvmdbusd profile, no lvm, out of resources). */
struct lvm_shell *lvm_shell_start(void);

/*
 * One command without output (lvcreate, lvremove...) in the shell: 0, or
 * -errno with lvm's messages in *err.  -ENOTSUP, *err untouched, when
 * the command was not sent: no shell, a shell that did not answer its
 * first `version` as expected, or an argument the shell would not pass
 * through as it is.  When the shell dies in a command, its outcome is
 * unknown: an error, and the shell is not used again.
 */
int lvm_shell_run(struct lvm_shell *sh, const char *const *args,
		  struct vs_error **err);

/* lvm_shell_run, or lvm_run (a process of its own) when the shell did
 * not take the command. */
int lvm_run_in(struct lvm_shell *sh, const char *const *args,
	       struct vs_error **err);

/* End the shell (EOF on its input) and wait for it.  NULL is fine. */
void lvm_shell_end(struct lvm_shell *sh);

/* --- LVM's device-mapper devices, read in-process (lvm-dm.c) ------- */

/* An LVM id without its dashes. */
#define LVM_ID_LEN 32u

/* A dm device as sysfs shows it. */
struct lvm_dm_dev {
	dev_t rdev;
	char name[256], uuid[256];
	uint64_t sectors;
};

/* The dm device of the block device node `node`, or of the device
 * number `rdev`: -ENOENT when it is missing or not a dm device, -ERANGE
 * when its size is not a number. */
int lvm_dm_dev_read(const char *node, struct lvm_dm_dev *d);
int lvm_dm_dev_read_num(dev_t rdev, struct lvm_dm_dev *d);

/*
 * Split a dm uuid made by LVM, "LVM-" + VG id + LV id [+ "-LAYER"]: the
 * ids go to vg_id and lv_id (LVM_ID_LEN + 1 bytes each, either may be
 * NULL), *layer (may be NULL) points into `uuid` at "" for a public LV or
 * at "-LAYER".  -EINVAL when `uuid` is not shaped so.
 */
int lvm_dm_uuid_split(const char *uuid, char *vg_id, char *lv_id,
		      const char **layer);

/* An id of LVM_ID_LEN characters as lvs prints it, with its dashes
 * (malloc'd; NULL when out of memory). */
char *lvm_dm_id_dashed(const char *id);

/* Is `lv_uuid` (as lvs prints it) the LV id inside the dm uuid? */
bool lvm_dm_uuid_is_lv(const char *dm_uuid, const char *lv_uuid);

/* A thin target's parameters, "POOL_MAJ:POOL_MIN DEV_ID [EXTERNAL]": the
 * pool device and the thin device id.  -EINVAL when malformed or out of
 * range. */
int lvm_dm_thin_params_parse(const char *params, dev_t *pool, uint64_t *id);

/* The table of a dm device that has exactly one target, from offset 0
 * (libdevmapper), with its device number, uuid and state. */
struct lvm_dm_table {
	char *type, *params, *uuid;
	dev_t rdev;
	uint64_t sectors;
	bool open, suspended;
};
/* -ENOENT when there is no such device, -EINVAL when its table is not
 * one target, -EIO when device-mapper fails. */
int lvm_dm_table_one(const char *dm_name, struct lvm_dm_table *tb);
void lvm_dm_table_clear(struct lvm_dm_table *tb);

/*
 * VG/NAME described as lvs would, without an lvs run, when it is an
 * active thin LV exactly as LVM makes one: its public dm device and
 * /dev/VG/NAME, one thin target on the "-tpool" layer of a pool of the
 * same VG.  Filled: vg, name, uuid, path, dm_path, pool, size, thin,
 * active, open.  Left empty, because the device cannot tell them: attr,
 * origin (a thin snapshot looks like any thin LV), extent_size, zero.
 * -ENOENT when the device does not say all that (ask lvs), -ENOMEM.
 */
int lvm_thin_lv_from_dm(const char *vg, const char *name, struct lvm_lv *out);

#endif
