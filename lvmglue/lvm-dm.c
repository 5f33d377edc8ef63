/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LVM's device-mapper devices read in-process: sysfs for a device's
 * name, uuid and size, libdevmapper for its table and open count.  An
 * lvm run costs about a second on a busy or emulated host, most of it
 * lvm starting up, while an active LV's dm device answers in
 * microseconds what a backup needs to know about it.  The kernel's text
 * is read like any input (bounded, every field checked); whatever does
 * not look exactly as LVM makes it sends the callers back to lvs, which
 * stays the authority.
 *
 * LVM's dm uuids are "LVM-", the VG's id and the LV's id (32 characters
 * each, without dashes), and "-LAYER" for the devices below an LV
 * ("-tpool", "-real", "-cow"; hidden LVs such as a pool's data carry
 * one too).  lvs prints an id in groups of 6-4-4-4-4-4-6 characters
 * joined by dashes.
 */
#include <errno.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "lvm-priv.h"

#define DM_UUID_PREFIX "LVM-"

/* The characters of LVM's ids (lib/uuid in LVM2: digits, letters, and
 * '!' and '#'). */
static bool id_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '!' || c == '#';
}

int lvm_dm_uuid_split(const char *uuid, char *vg_id, char *lv_id,
		      const char **layer)
{
	const char *p = uuid + 4;

	if (strncmp(uuid, DM_UUID_PREFIX, 4))
		return -EINVAL;
	for (unsigned i = 0; i < 2 * LVM_ID_LEN; i++)
		if (!id_char(p[i]))
			return -EINVAL; /* also stops at the NUL */
	p += 2 * LVM_ID_LEN;
	/* Nothing, or one dash and a layer name of lower-case letters. */
	if (*p) {
		if (p[0] != '-' || !p[1])
			return -EINVAL;
		for (const char *q = p + 1; *q; q++)
			if (*q < 'a' || *q > 'z')
				return -EINVAL;
	}
	if (vg_id) {
		memcpy(vg_id, uuid + 4, LVM_ID_LEN);
		vg_id[LVM_ID_LEN] = '\0';
	}
	if (lv_id) {
		memcpy(lv_id, uuid + 4 + LVM_ID_LEN, LVM_ID_LEN);
		lv_id[LVM_ID_LEN] = '\0';
	}
	if (layer)
		*layer = p;
	return 0;
}

char *lvm_dm_id_dashed(const char *id)
{
	static const unsigned groups[] = {6, 4, 4, 4, 4, 4, 6};
	char *out = malloc(LVM_ID_LEN + VS_ARRAY_SIZE(groups)), *p = out;

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

bool lvm_dm_uuid_is_lv(const char *dm_uuid, const char *lv_uuid)
{
	char id[LVM_ID_LEN + 1];
	size_t n = 0;

	if (lvm_dm_uuid_split(dm_uuid, NULL, id, NULL) < 0)
		return false;
	for (const char *p = lv_uuid; *p; p++) {
		if (*p == '-')
			continue;
		if (n >= LVM_ID_LEN || *p != id[n])
			return false;
		n++;
	}
	return n == LVM_ID_LEN;
}

/* A decimal number of at most `max`, ending at a blank, a ':' or the
 * end; *end is set past it. */
static int parse_num(const char *s, uint64_t max, uint64_t *out,
		     const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (max - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s || (p - s > 1 && *s == '0'))
		return -EINVAL;
	*out = v;
	*end = p;
	return 0;
}

int lvm_dm_thin_params_parse(const char *params, dev_t *pool, uint64_t *id)
{
	uint64_t maj, min, dev;
	const char *p = params;

	/* "POOL_MAJ:POOL_MIN DEV_ID [EXTERNAL_ORIGIN]": the kernel names
	 * the pool device by number; ids have 24 bits; majors 12 bits and
	 * minors 20 in a dev_t. */
	if (parse_num(p, 0xfff, &maj, &p) < 0 || *p++ != ':' ||
	    parse_num(p, 0xfffff, &min, &p) < 0 || *p++ != ' ' ||
	    parse_num(p, 0xffffff, &dev, &p) < 0)
		return -EINVAL;
	if (*p && *p != ' ')
		return -EINVAL;
	*pool = makedev((unsigned)maj, (unsigned)min);
	*id = dev;
	return 0;
}

static int dev_read_sys(dev_t rdev, struct lvm_dm_dev *d)
{
	char sys[96], num[32];
	uint64_t s;
	const char *end;

	memset(d, 0, sizeof(*d));
	d->rdev = rdev;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/name", major(rdev),
		 minor(rdev));
	if (lvm_sysfs_read(sys, d->name, sizeof(d->name)) < 0)
		return -ENOENT;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/uuid", major(rdev),
		 minor(rdev));
	if (lvm_sysfs_read(sys, d->uuid, sizeof(d->uuid)) < 0)
		return -ENOENT;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/size", major(rdev),
		 minor(rdev));
	if (lvm_sysfs_read(sys, num, sizeof(num)) < 0)
		return -ENOENT;
	/* The kernel's text, but checked like any input. */
	if (parse_num(num, UINT64_MAX / 512, &s, &end) < 0 || *end)
		return -ERANGE;
	d->sectors = s;
	return 0;
}

int lvm_dm_dev_read(const char *node, struct lvm_dm_dev *d)
{
	struct stat st;

	memset(d, 0, sizeof(*d));
	if (stat(node, &st) < 0 || !S_ISBLK(st.st_mode))
		return -ENOENT;
	return dev_read_sys(st.st_rdev, d);
}

int lvm_dm_dev_read_num(dev_t rdev, struct lvm_dm_dev *d)
{
	return dev_read_sys(rdev, d);
}

int lvm_dm_table_one(const char *dm_name, struct lvm_dm_table *tb)
{
	struct dm_task *t = dm_task_create(DM_DEVICE_TABLE);
	struct dm_info info;
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	const char *uuid;
	int ret = 0;

	memset(tb, 0, sizeof(*tb));
	if (!t)
		return -ENOMEM;
	if (!dm_task_set_name(t, dm_name) || !dm_task_run(t) ||
	    !dm_task_get_info(t, &info)) {
		ret = -EIO;
		goto out;
	}
	if (!info.exists) {
		ret = -ENOENT;
		goto out;
	}
	if (dm_get_next_target(t, NULL, &start, &length, &type, &params) ||
	    !type || !params || start) {
		ret = -EINVAL; /* not exactly one target */
		goto out;
	}
	uuid = dm_task_get_uuid(t);
	tb->rdev = makedev(info.major, info.minor);
	tb->open = info.open_count > 0;
	tb->suspended = info.suspended;
	tb->sectors = length;
	tb->type = strdup(type);
	tb->params = strdup(params);
	tb->uuid = strdup(uuid ? uuid : "");
	if (!tb->type || !tb->params || !tb->uuid) {
		lvm_dm_table_clear(tb);
		ret = -ENOMEM;
	}
out:
	dm_task_destroy(t);
	/* libdevmapper keeps /dev/mapper/control open otherwise: nothing
	 * of device-mapper stays open between reads (backup.t takes an
	 * open dm device as the sign that the snapshot exists). */
	dm_lib_release();
	return ret;
}

void lvm_dm_table_clear(struct lvm_dm_table *tb)
{
	free(tb->type);
	free(tb->params);
	free(tb->uuid);
	memset(tb, 0, sizeof(*tb));
}

/* The thin pool behind the pool device `rdev` of a thin LV in `vg` (VG id
 * `vg_id`): LVM's "-tpool" layer of VG-POOL.  The pool's name, or NULL
 * when the device is not that. */
static char *pool_of(dev_t rdev, const char *vg, const char *vg_id)
{
	static const char tpool[] = "-tpool";
	struct lvm_dm_dev p;
	char pvg_id[LVM_ID_LEN + 1];
	const char *layer;
	autofree char *pvg = NULL, *pool = NULL;
	size_t n;

	if (lvm_dm_dev_read_num(rdev, &p) < 0 ||
	    lvm_dm_uuid_split(p.uuid, pvg_id, NULL, &layer) < 0 ||
	    strcmp(layer, tpool) || strcmp(pvg_id, vg_id))
		return NULL;
	n = strlen(p.name);
	if (n <= sizeof(tpool) - 1 ||
	    strcmp(p.name + n - (sizeof(tpool) - 1), tpool))
		return NULL;
	p.name[n - (sizeof(tpool) - 1)] = '\0';
	if (lvm_dm_name_split(p.name, &pvg, &pool) < 0 || strcmp(pvg, vg) ||
	    lvm_names_check(vg, pool, NULL) < 0)
		return NULL;
	return vs_steal(&pool);
}

int lvm_thin_lv_from_dm(const char *vg, const char *name, struct lvm_lv *out)
{
	autofree char *dm_path = lvm_dm_path(vg, name);
	autofree char *path = lvm_dev_path(vg, name);
	char vg_id[LVM_ID_LEN + 1], lv_id[LVM_ID_LEN + 1];
	struct lvm_dm_table tb;
	struct lvm_dm_dev d;
	struct lvm_lv lv = {0};
	const char *layer, *dm;
	struct stat st;
	uint64_t id;
	dev_t pool_dev;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!dm_path || !path)
		return -ENOMEM;
	dm = dm_path + strlen("/dev/mapper/");
	/* The device LVM names VG/NAME, a public LV (no layer), and the
	 * /dev/VG/NAME that LVM made for it. */
	if (lvm_dm_dev_read(dm_path, &d) < 0 || strcmp(d.name, dm) ||
	    lvm_dm_uuid_split(d.uuid, vg_id, lv_id, &layer) < 0 || *layer ||
	    stat(path, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != d.rdev)
		return -ENOENT;
	ret = lvm_dm_table_one(dm, &tb);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0)
		return -ENOENT;
	/* One thin target over the whole device, and the same device as
	 * sysfs showed (not renamed or replaced in between). */
	if (strcmp(tb.type, "thin") || tb.rdev != d.rdev ||
	    strcmp(tb.uuid, d.uuid) || tb.sectors != d.sectors ||
	    tb.suspended ||
	    lvm_dm_thin_params_parse(tb.params, &pool_dev, &id) < 0) {
		lvm_dm_table_clear(&tb);
		return -ENOENT;
	}
	lv.open = tb.open;
	lvm_dm_table_clear(&tb);
	lv.pool = pool_of(pool_dev, vg, vg_id);
	if (!lv.pool)
		return -ENOENT;
	lv.vg = strdup(vg);
	lv.name = strdup(name);
	lv.uuid = lvm_dm_id_dashed(lv_id);
	lv.path = vs_steal(&path);
	lv.dm_path = vs_steal(&dm_path);
	if (!lv.vg || !lv.name || !lv.uuid) {
		lvm_lv_clear(&lv);
		return -ENOMEM;
	}
	lv.size = d.sectors * 512;
	lv.thin = true;
	lv.active = true;
	*out = lv;
	return 0;
}
