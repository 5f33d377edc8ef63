/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between lvmglue/backup*.c and restore.c; not a public header. */
#ifndef VS_LVMGLUE_BACKUP_PRIV_H
#define VS_LVMGLUE_BACKUP_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "lvm.h"

struct vbd;
struct lvm_manifest;
struct lvm_shell;

/* The image of a point must be a qcow2 of its manifest's size and
 * cluster size whose backing file is the point below's image (`below`
 * NULL: none, a full backup). */
int lvm_backup_check_image(struct vbd *img, const char *image,
			   const struct lvm_manifest *m,
			   const struct lvm_manifest *below,
			   struct vs_error **errp);

/* The cluster size of every backup image and of its checksums. */
#define LVM_BACKUP_CLUSTER 65536u

/*
 * The clusters of a thin LV that differ between two of its thin
 * snapshots, `old_snap` and `new_snap` (LV names in origin's VG), from
 * thin_delta on a reserved metadata snapshot of the pool: bits set in
 * `changed` (nclusters bits, zeroed by the caller) for every
 * LVM_BACKUP_CLUSTER touched by a changed, newly mapped or unmapped
 * block.  `old_snap` must still have `old_uuid` (-ESTALE otherwise: a
 * namesake is no base).  The metadata snapshot is released on every
 * path.
 */
int lvm_thin_changed(const struct lvm_lv *origin, const char *old_snap,
		     const char *old_uuid, const char *new_snap,
		     uint64_t nclusters, uint8_t *changed,
		     struct vs_error **errp);

/* Parse thin_delta's XML (untrusted: every number checked) and mark
 * changed clusters; `what` names the output in errors.  Exposed for the
 * unit tests. */
int lvm_thin_delta_parse(const char *xml, size_t len, const char *what,
			 uint64_t nclusters, uint8_t *changed,
			 struct vs_error **errp);

/*
 * The backup's snapshot (backup-snap.c), with as few lvm runs as is
 * safe, lvcreate and lvremove in the lvm shell `sh` when it is not NULL
 * (lvm-priv.h):
 *  - take: lvcreate (cow_size 0: a thin snapshot), then *snap described
 *    from the new dm device (no attr), or by lvs when it does not look
 *    as expected;
 *  - drop: remove VG/NAME if it exists and, when `uuid` is not NULL, is
 *    still that LV (a namesake is left alone: 0); refused when classic
 *    snapshots hang on it; lvremove refuses an open LV itself;
 *  - valid: a classic snapshot whose exception store did not overflow.
 */
int lvm_backup_snap_take(struct lvm_shell *sh, const struct lvm_lv *origin,
			 const char *name, uint64_t cow_size,
			 struct lvm_lv *snap, struct vs_error **errp);
int lvm_backup_snap_drop(struct lvm_shell *sh, const char *vg, const char *name,
			 const char *uuid, struct vs_error **errp);
int lvm_backup_snap_valid(const struct lvm_lv *snap, struct vs_error **errp);

/*
 * Run argv[0] (found in PATH) with LC_ALL=C, without a shell.  Its stdout
 * (at most `max` bytes, more is an error) goes to *out when out is not
 * NULL; a non-zero exit status is an error that carries its stderr.
 */
int lvm_backup_exec(const char *const *argv, size_t max, char **out,
		    struct vs_error **errp);

#endif
