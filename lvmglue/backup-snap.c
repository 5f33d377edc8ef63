/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backup's own snapshot: taken, checked and removed with as few lvm
 * runs as is safe.  Every `lvm` run costs about a second on a busy or
 * emulated host (most of it lvm starting up), which is most of the time
 * of a small incremental backup; what lvs would tell us after a command
 * we asked for is known, or readable in-process from the device-mapper
 * device the command made (sysfs, libdevmapper).  Whenever the device
 * does not look exactly as expected, these functions fall back to asking
 * lvm (lvm.c), which stays the authority.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "backup-priv.h"
#include "lvm-priv.h"

/* A public LV's dm uuid: "LVM-", the VG's id, the LV's id, no layer. */
static bool public_lv_uuid(const char *uuid)
{
	const char *layer;

	return lvm_dm_uuid_split(uuid, NULL, NULL, &layer) == 0 && !*layer;
}

/*
 * The new snapshot as lvs would describe it (attr aside), from what we
 * asked lvcreate for and its dm device: the device exists (active), is
 * named as LVM names VG/NAME, sits in the origin's VG (the VG half of
 * the dm uuids), and /dev/VG/NAME is that device.  -ENOENT when any of
 * that does not hold.
 */
static int snap_from_dm(const struct lvm_lv *origin, const char *name,
			struct lvm_lv *out)
{
	autofree char *dm_path = lvm_dm_path(origin->vg, name);
	autofree char *path = lvm_dev_path(origin->vg, name);
	char vg_id[LVM_ID_LEN + 1], lv_id[LVM_ID_LEN + 1];
	char ovg_id[LVM_ID_LEN + 1], olv_id[LVM_ID_LEN + 1];
	struct lvm_dm_dev d, o;
	struct stat st;
	struct lvm_lv lv = {0};

	if (!dm_path || !path)
		return -ENOMEM;
	if (lvm_dm_dev_read(dm_path, &d) < 0 || !origin->dm_path ||
	    lvm_dm_dev_read(origin->dm_path, &o) < 0)
		return -ENOENT;
	if (strcmp(d.name, dm_path + strlen("/dev/mapper/")) ||
	    !public_lv_uuid(d.uuid) || !public_lv_uuid(o.uuid))
		return -ENOENT;
	lvm_dm_uuid_split(d.uuid, vg_id, lv_id, NULL);
	lvm_dm_uuid_split(o.uuid, ovg_id, olv_id, NULL);
	if (strcmp(vg_id, ovg_id) || !strcmp(lv_id, olv_id))
		return -ENOENT;
	if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != d.rdev)
		return -ENOENT;
	lv.vg = strdup(origin->vg);
	lv.name = strdup(name);
	lv.uuid = lvm_dm_id_dashed(lv_id);
	lv.path = vs_steal(&path);
	lv.dm_path = vs_steal(&dm_path);
	lv.origin = strdup(origin->name);
	lv.pool = origin->pool ? strdup(origin->pool) : NULL;
	if (!lv.vg || !lv.name || !lv.uuid || !lv.origin ||
	    (origin->pool && !lv.pool)) {
		lvm_lv_clear(&lv);
		return -ENOMEM;
	}
	lv.size = d.sectors * 512;
	lv.extent_size = origin->extent_size;
	lv.thin = origin->thin;
	lv.snapshot = true;
	lv.active = true;
	lv.zero = origin->zero;
	*out = lv;
	return 0;
}

int lvm_backup_snap_take(struct lvm_shell *sh, const struct lvm_lv *origin,
			 const char *name, uint64_t cow_size,
			 struct lvm_lv *snap, struct vs_error **errp)
{
	int ret;

	memset(snap, 0, sizeof(*snap));
	ret = lvm_snapshot_lvcreate(sh, origin, name, cow_size, errp);
	if (ret < 0)
		return ret;
	if (snap_from_dm(origin, name, snap) == 0) {
		vs_debug("lvm", "%s/%s: described from its dm device",
			 origin->vg, name);
		return 0;
	}
	/* Not active, or not as expected: ask lvm (which also activates
	 * it, or removes it when it cannot). */
	return lvm_snapshot_describe(origin, name, snap, errp);
}

/* Does the dm device (of dm uuid `uuid`) have its own "-real" layer
 * below it, the sign of classic snapshots of it (which lvremove would
 * remove along with it)?  A classic snapshot has its origin's "-real"
 * below it, which is not its own. */
static int has_classic_snapshots(dev_t rdev, const char *uuid, bool *yes)
{
	char dir[96];
	DIR *d;
	struct dirent *e;

	*yes = false;
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/slaves", major(rdev),
		 minor(rdev));
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		autofree char *p = NULL;
		char su[256];
		size_t n = strlen(uuid);

		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&p, "%s/%s/dm/uuid", dir, e->d_name) < 0) {
			closedir(d);
			return -ENOMEM;
		}
		if (lvm_sysfs_read(p, su, sizeof(su)) < 0)
			continue; /* not a dm device: a PV */
		if (!strncmp(su, uuid, n) && !strcmp(su + n, "-real"))
			*yes = true;
	}
	closedir(d);
	return 0;
}

/* The lvs way: look the LV up, keep it unless it has `uuid`, remove it
 * with lvm_lv_remove's checks (open, dependents). */
static int drop_slow(const char *vg, const char *name, const char *uuid,
		     struct vs_error **errp)
{
	autofree char *full = NULL;
	struct vs_error *err = NULL;
	struct lvm_lv lv;
	int ret;

	if (asprintf(&full, "%s/%s", vg, name) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = lvm_lv_find(full, &lv, &err);
	if (ret == -ENOENT) {
		vs_error_free(err);
		return 0;
	}
	if (ret < 0) {
		vs_error_free(err);
		return lvm_lv_remove(vg, name, errp);
	}
	if (uuid && strcmp(lv.uuid, uuid)) {
		/* Another LV took the name: not ours to remove. */
		lvm_lv_clear(&lv);
		return 0;
	}
	lvm_lv_clear(&lv);
	return lvm_lv_remove(vg, name, errp);
}

int lvm_backup_snap_drop(struct lvm_shell *sh, const char *vg, const char *name,
			 const char *uuid, struct vs_error **errp)
{
	autofree char *dm_path = lvm_dm_path(vg, name);
	autofree char *full = NULL;
	struct lvm_dm_dev d;
	bool classic = false;
	int ret;

	if (!dm_path || asprintf(&full, "%s/%s", vg, name) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	/* An inactive or unexpected LV: lvs decides. */
	if (lvm_dm_dev_read(dm_path, &d) < 0 ||
	    strcmp(d.name, dm_path + strlen("/dev/mapper/")) ||
	    !public_lv_uuid(d.uuid) ||
	    has_classic_snapshots(d.rdev, d.uuid, &classic) < 0)
		return drop_slow(vg, name, uuid, errp);
	if (uuid && !lvm_dm_uuid_is_lv(d.uuid, uuid))
		return 0; /* a namesake: not ours */
	if (classic)
		return vs_error_set(errp, EBUSY,
				    "%s has classic snapshots, which lvremove "
				    "would remove with it: not removing it",
				    full);
	/* lvremove itself refuses an LV that is open, so that check needs
	 * no lvs run either. */
	const char *args[] = {"lvremove", "--yes", "-q", full, NULL};
	ret = lvm_run_in(sh, args, errp);
	if (ret < 0)
		vs_error_prefix(errp, "cannot remove %s", full);
	return ret;
}

int lvm_backup_snap_valid(const struct lvm_lv *snap, struct vs_error **errp)
{
	struct dm_task *t;
	struct dm_info info;
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	const char *dm = snap->dm_path ? strrchr(snap->dm_path, '/') : NULL;
	int ret = -ENOENT;

	/* dm-snapshot's status: "USED/TOTAL META" while valid; "Invalid"
	 * once the exception store overflowed ("Overflow", "Merge
	 * failed" are no better).  lvs's attr 'I' says the same. */
	if (dm && (t = dm_task_create(DM_DEVICE_STATUS))) {
		if (dm_task_set_name(t, dm + 1) && dm_task_run(t) &&
		    dm_task_get_info(t, &info) && info.exists &&
		    !dm_get_next_target(t, NULL, &start, &length, &type,
					&params) &&
		    type && !strcmp(type, "snapshot") && params)
			ret = params[0] >= '0' && params[0] <= '9' ? 0
								   : -ENOSPC;
		dm_task_destroy(t);
	}
	if (ret == -ENOENT) {
		/* The lvs way. */
		autofree char *full = NULL;
		struct lvm_lv now;

		if (asprintf(&full, "%s/%s", snap->vg, snap->name) < 0)
			return vs_error_set(errp, ENOMEM, "out of memory");
		ret = lvm_lv_find(full, &now, errp);
		if (ret < 0)
			return ret;
		if (now.attr && strlen(now.attr) > 4 && now.attr[4] == 'I')
			ret = -ENOSPC;
		lvm_lv_clear(&now);
	}
	if (ret == -ENOSPC)
		return vs_error_set(errp, ENOSPC,
				    "%s/%s: the snapshot overflowed while it "
				    "was read (the LV changed faster than its "
				    "exception store could hold): give a "
				    "larger --snapshot-size",
				    snap->vg, snap->name);
	return ret;
}
