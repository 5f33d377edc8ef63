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

/* "LVM-" + the VG's uuid + the LV's uuid, 32 characters each, without
 * dashes: the dm uuid of a public LV (layers below add a suffix). */
#define DM_UUID_PREFIX "LVM-"
#define ID_LEN	       32u
#define DM_UUID_LEN    (4u + 2u * ID_LEN)

struct dm_dev {
	dev_t rdev;
	char name[256], uuid[256];
	uint64_t sectors;
};

/* The dm device of a block device node: its name, uuid and size from
 * sysfs.  -ENOENT when the node is missing or not a dm device. */
static int dm_dev_read(const char *node, struct dm_dev *d)
{
	char sys[96], num[32];
	struct stat st;
	uint64_t s = 0;

	memset(d, 0, sizeof(*d));
	if (stat(node, &st) < 0 || !S_ISBLK(st.st_mode))
		return -ENOENT;
	d->rdev = st.st_rdev;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/name",
		 major(st.st_rdev), minor(st.st_rdev));
	if (lvm_sysfs_read(sys, d->name, sizeof(d->name)) < 0)
		return -ENOENT;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/uuid",
		 major(st.st_rdev), minor(st.st_rdev));
	if (lvm_sysfs_read(sys, d->uuid, sizeof(d->uuid)) < 0)
		return -ENOENT;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/size",
		 major(st.st_rdev), minor(st.st_rdev));
	if (lvm_sysfs_read(sys, num, sizeof(num)) < 0 || !*num)
		return -ENOENT;
	/* The kernel's text, but checked like any input. */
	for (const char *p = num; *p; p++) {
		if (*p < '0' || *p > '9' || s > (UINT64_MAX / 512 - 9) / 10)
			return -ERANGE;
		s = s * 10 + (uint64_t)(*p - '0');
	}
	d->sectors = s;
	return 0;
}

static bool public_lv_uuid(const char *uuid)
{
	return strlen(uuid) == DM_UUID_LEN && !strncmp(uuid, DM_UUID_PREFIX, 4);
}

/* LVM prints ids as 6-4-4-4-4-4-6 groups with dashes. */
static char *dashed_id(const char *id)
{
	static const unsigned groups[] = {6, 4, 4, 4, 4, 4, 6};
	char *out = malloc(ID_LEN + VS_ARRAY_SIZE(groups)), *p = out;

	if (!out)
		return NULL;
	for (size_t g = 0; g < VS_ARRAY_SIZE(groups); g++) {
		if (g)
			*p++ = '-';
		memcpy(p, id, groups[g]);
		p += groups[g];
		id += groups[g];
	}
	*p = '\0';
	return out;
}

/* Does the dashed LV uuid `lv_uuid` name the LV part of `dm_uuid`? */
static bool same_lv(const char *dm_uuid, const char *lv_uuid)
{
	const char *id = dm_uuid + 4 + ID_LEN;
	size_t n = 0;

	for (const char *p = lv_uuid; *p; p++) {
		if (*p == '-')
			continue;
		if (n >= ID_LEN || *p != id[n])
			return false;
		n++;
	}
	return n == ID_LEN;
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
	struct dm_dev d, o;
	struct stat st;
	struct lvm_lv lv = {0};

	if (!dm_path || !path)
		return -ENOMEM;
	if (dm_dev_read(dm_path, &d) < 0 || !origin->dm_path ||
	    dm_dev_read(origin->dm_path, &o) < 0)
		return -ENOENT;
	if (strcmp(d.name, dm_path + strlen("/dev/mapper/")) ||
	    !public_lv_uuid(d.uuid) || !public_lv_uuid(o.uuid) ||
	    strncmp(d.uuid, o.uuid, 4 + ID_LEN) ||
	    !strcmp(d.uuid + 4 + ID_LEN, o.uuid + 4 + ID_LEN))
		return -ENOENT;
	if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != d.rdev)
		return -ENOENT;
	lv.vg = strdup(origin->vg);
	lv.name = strdup(name);
	lv.uuid = dashed_id(d.uuid + 4 + ID_LEN);
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

int lvm_backup_snap_take(const struct lvm_lv *origin, const char *name,
			 uint64_t cow_size, struct lvm_lv *snap,
			 struct vs_error **errp)
{
	int ret;

	memset(snap, 0, sizeof(*snap));
	ret = lvm_snapshot_lvcreate(origin, name, cow_size, errp);
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

int lvm_backup_snap_drop(const char *vg, const char *name, const char *uuid,
			 struct vs_error **errp)
{
	autofree char *dm_path = lvm_dm_path(vg, name);
	autofree char *full = NULL;
	struct dm_dev d;
	bool classic = false;
	int ret;

	if (!dm_path || asprintf(&full, "%s/%s", vg, name) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	/* An inactive or unexpected LV: lvs decides. */
	if (dm_dev_read(dm_path, &d) < 0 ||
	    strcmp(d.name, dm_path + strlen("/dev/mapper/")) ||
	    !public_lv_uuid(d.uuid) ||
	    has_classic_snapshots(d.rdev, d.uuid, &classic) < 0)
		return drop_slow(vg, name, uuid, errp);
	if (uuid && !same_lv(d.uuid, uuid))
		return 0; /* a namesake: not ours */
	if (classic)
		return vs_error_set(errp, EBUSY,
				    "%s has classic snapshots, which lvremove "
				    "would remove with it: not removing it",
				    full);
	/* lvremove itself refuses an LV that is open, so that check needs
	 * no lvs run either. */
	const char *args[] = {"lvremove", "--yes", "-q", full, NULL};
	ret = lvm_run(args, NULL, errp);
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
