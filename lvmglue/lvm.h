/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LVM through the `lvm` command.
 *
 * liblvm2app left LVM2 in 2.03, so vstor runs `lvm` (fork/exec, never a
 * shell: arguments are never interpreted) and reads its JSON reports
 * (`--reportformat json --units b --nosuffix`).  That output is untrusted
 * input like any other: every field is type-checked, numbers are parsed
 * with overflow checks, and a missing field is an error naming the field.
 *
 * Names that reach lvm are validated first (lvm_name_check): LVM's
 * charset, no leading '-', no reserved names, bounded length.
 */
#ifndef VS_LVMGLUE_LVM_H
#define VS_LVMGLUE_LVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct json_object;

/* The longest VG or LV name vstor passes to lvm; the device-mapper name
 * "VG-LV" (dashes doubled) must fit it too, as DM_NAME_LEN is 128 with
 * the NUL. */
#define LVM_NAME_MAX 127

struct lvm_lv {
	char *vg, *name, *uuid, *attr; /* lv_attr as lvm prints it */
	char *path;		       /* /dev/VG/LV */
	char *dm_path;		       /* /dev/mapper/VG-LV (dashes doubled) */
	char *pool;		       /* thin pool of a thin LV, else NULL */
	char *origin;		       /* origin of a snapshot, else NULL */
	uint64_t size;		       /* bytes */
	uint64_t extent_size;	       /* its VG's extent size, bytes */
	bool thin, thin_pool, snapshot, active;
	bool open; /* its device-mapper device is open (lv_device_open) */
	bool zero; /* thin LV or pool: the pool zeroes newly provisioned
		    * chunks, so a partial write never exposes old data */
};

struct lvm_vg {
	char *name;
	uint64_t size, free, extent_size; /* bytes */
};

/*
 * Run `lvm ARGS...` (args are what follows "lvm", NULL-terminated) with
 * LC_ALL=C and no prompts.  Its stdout goes to *out (NUL-terminated,
 * caller frees) when out is non-NULL; on a non-zero exit status the error
 * names the command and carries lvm's stderr.  Returns 0 or -errno.
 */
int lvm_run(const char *const *args, char **out, struct vs_error **err);

/* List the LVs of `vg` (NULL: of every VG).  *lvs is an array of *n
 * entries the caller frees with lvm_lv_free_array.  Hidden internal LVs
 * ([pool_tdata] and the like) are left out. */
int lvm_lv_list(const char *vg, struct lvm_lv **lvs, size_t *n,
		struct vs_error **err);

/*
 * Find one LV by "/dev/VG/LV", "/dev/mapper/VG-LV" or "VG/LV".  Returns
 * -ENOENT (with an error saying so) when the name is not an LV; other
 * negative errnos when lvm fails.  *out is filled on success; the caller
 * clears it with lvm_lv_clear.
 */
int lvm_lv_find(const char *name, struct lvm_lv *out, struct vs_error **err);

/* Like lvm_lv_find but does not run lvm: only splits the name into VG and
 * LV (each malloc'd; caller frees) and validates both.  -ENOENT when the
 * string is not shaped like an LV path at all. */
int lvm_name_split(const char *name, char **vg, char **lv,
		   struct vs_error **err);

int lvm_vg_get(const char *vg, struct lvm_vg *out, struct vs_error **err);

/*
 * Create an LV of `size` bytes (rounded up by lvm to whole extents), a
 * thin LV in `thin_pool` when that is non-NULL.  A new LV never shows a
 * previous tenant's data: a linear LV is zeroed in full (BLKZEROOUT)
 * before this returns, a thin LV reads zeros because its pool zeroes new
 * chunks (checked; zeroed explicitly when the pool does not).  On success
 * *out (if non-NULL) describes the new, active LV.
 */
int lvm_lv_create(const char *vg, const char *name, uint64_t size,
		  const char *thin_pool, struct lvm_lv *out,
		  struct vs_error **err);

/*
 * Snapshot `origin` as `name` in the origin's VG.  cow_size 0 takes a thin
 * snapshot (origin must be thin); otherwise a classic COW snapshot with
 * that much exception store.  The snapshot is activated (thin snapshots
 * skip activation by default: -ay -K) and readable when this returns.
 */
int lvm_snapshot_create(const struct lvm_lv *origin, const char *name,
			uint64_t cow_size, struct lvm_lv *out,
			struct vs_error **err);

/* Remove an LV.  Refuses (-EBUSY) an LV whose device is open, and one
 * that other LVs depend on (a thin pool's thin LVs, a classic origin's
 * snapshots, which lvm would remove with it). */
int lvm_lv_remove(const char *vg, const char *name, struct vs_error **err);

enum {
	/* Also remove what depends on the LV (each must be closed). */
	LVM_REMOVE_DEPENDENTS = 1u << 0,
};
int lvm_lv_remove_flags(const char *vg, const char *name, unsigned flags,
			struct vs_error **err);

/*
 * Resize an LV to new_size bytes (rounded up by lvm to extents).  Shrinking
 * needs allow_shrink; without it a smaller size fails with -EINVAL.
 */
int lvm_lv_resize(const char *vg, const char *name, uint64_t new_size,
		  bool allow_shrink, struct vs_error **err);

/*
 * The same for an LV already found (lvm_lv_find): one lvm run fewer.  On
 * success *out (if non-NULL) describes the LV after the resize; the
 * caller clears it.
 */
int lvm_lv_resize_to(const struct lvm_lv *lv, uint64_t new_size,
		     bool allow_shrink, struct lvm_lv *out,
		     struct vs_error **err);

/* Check an LV or VG name against LVM's rules; `what` names it in errors. */
int lvm_name_check(const char *name, const char *what, struct vs_error **err);

/* "linear", "thin", "thin-pool", "snapshot", or "other" (raid, cache...). */
const char *lvm_lv_type(const struct lvm_lv *lv);

/*
 * Is the block device at `path` an LV?  For phy: disks: 1 and *out filled
 * when it is, 0 when it is not a device-mapper device owned by LVM (no lvm
 * run needed to say no), -errno on failure.
 */
int lvm_lv_probe(const char *path, struct lvm_lv *out, struct vs_error **err);

void lvm_lv_clear(struct lvm_lv *lv);
void lvm_lv_free_array(struct lvm_lv *lvs, size_t n);
void lvm_vg_clear(struct lvm_vg *vg);

/*
 * An LV as JSON, with fixed field names (vstor lv list --output=json):
 * vg, name, path, dm-path, uuid, attr, size (bytes), type (lvm_lv_type),
 * pool and origin (null when none), active, open, thin, thin-pool,
 * snapshot (booleans).  NULL when out of memory; the caller owns it.
 */
struct json_object *lvm_lv_to_json(const struct lvm_lv *lv);

/* Parsers of lvm's JSON reports (lvm-json.c), apart from lvm_run so that
 * unit tests can feed them hostile text.  `what` names the source. */
int lvm_json_parse_lvs(const char *json, const char *what, struct lvm_lv **lvs,
		       size_t *n, struct vs_error **err);
int lvm_json_parse_vgs(const char *json, const char *what, struct lvm_vg **vgs,
		       size_t *n, struct vs_error **err);

#endif
