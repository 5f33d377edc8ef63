/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the lvm*.c files of lvmglue/; not a public header. */
#ifndef VS_LVMGLUE_LVM_PRIV_H
#define VS_LVMGLUE_LVM_PRIV_H

#include "lvm.h"

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
 * alone, then (its fallback) the lvs lookup that also activates the
 * snapshot if lvcreate left it inactive, and removes it on failure. */
int lvm_snapshot_lvcreate(const struct lvm_lv *origin, const char *name,
			  uint64_t cow_size, struct vs_error **err);
int lvm_snapshot_describe(const struct lvm_lv *origin, const char *name,
			  struct lvm_lv *out, struct vs_error **err);

/* Check a VG name and an LV name given apart, as lvm_name_split checks
 * them (the LV rules, the device-mapper name length). */
int lvm_names_check(const char *vg, const char *lv, struct vs_error **err);

#endif
