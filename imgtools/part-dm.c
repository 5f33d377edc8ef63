/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Device-mapper linear maps for partitions, through libdevmapper. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/log.h"
#include "part-priv.h"

/* libdevmapper prints its errors itself; keep the last one for our own
 * message instead, and let -D part show them all. */
static char dm_last[256];

static void dm_logger(int level, const char *file, int line, int dm_errno,
		      const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void dm_logger(int level, const char *file, int line, int dm_errno,
		      const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vs_debug("part", "libdevmapper: %s", msg);
	if (level <= 3) /* _LOG_ERR */
		snprintf(dm_last, sizeof(dm_last), "%s", msg);
}

static void dm_setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	dm_log_with_errno_init(dm_logger);
}

/* Fail with the task named and libdevmapper's own words when it left
 * any. */
static int dm_fail(struct vs_error **errp, const char *what, const char *name)
{
	if (dm_last[0])
		return vs_error_set(errp, EIO, "device-mapper: %s %s: %s", what,
				    name, dm_last);
	return vs_error_set(errp, EIO, "device-mapper: %s %s failed", what,
			    name);
}

bool img_dm_available(void)
{
	char version[64];
	int fd;

	dm_setup();
	/* The node may exist without the driver (ENODEV): open it first,
	 * so libdevmapper is never asked where it would only complain. */
	fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return dm_driver_version(version, sizeof(version)) == 1;
}

int img_dm_name_of(dev_t devt, char *name, size_t nlen, char *uuid, size_t ulen)
{
	struct dm_task *dmt;
	struct dm_info info;
	const char *n, *u;
	int ret = 0;

	dm_setup();
	if (!img_dm_available())
		return 0;
	dmt = dm_task_create(DM_DEVICE_INFO);
	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_major(dmt, (int)major(devt)) ||
	    !dm_task_set_minor(dmt, (int)minor(devt)) || !dm_task_run(dmt) ||
	    !dm_task_get_info(dmt, &info) || !info.exists)
		goto out;
	n = dm_task_get_name(dmt);
	u = dm_task_get_uuid(dmt);
	if (!n || !*n)
		goto out;
	snprintf(name, nlen, "%s", n);
	snprintf(uuid, ulen, "%s", u ? u : "");
	ret = 1;
out:
	dm_task_destroy(dmt);
	return ret;
}

static void read_table(struct dm_task *dmt, struct img_dm_info *out)
{
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	unsigned maj, min;
	uint64_t off;
	void *next;
	char extra;

	next = dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
	if (next || !type || strcmp(type, "linear") || !params || start)
		return; /* not one linear target */
	if (sscanf(params, "%u:%u %" SCNu64 "%c", &maj, &min, &off, &extra) !=
	    3)
		return;
	out->linear = true;
	out->length = length;
	out->target_dev = makedev(maj, min);
	out->target_start = off;
}

/* Does `name` exist?  DM_DEVICE_INFO answers "no" without failing, where
 * the table query fails (ENXIO) for a missing device. */
static int dm_exists(const char *name, bool *exists, struct vs_error **errp)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	struct dm_info info;
	int ret = 0;

	if (!dmt)
		return vs_error_set(errp, ENOMEM, "device-mapper: no memory");
	dm_last[0] = '\0';
	if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) ||
	    !dm_task_get_info(dmt, &info))
		ret = dm_fail(errp, "query", name);
	else
		*exists = info.exists;
	dm_task_destroy(dmt);
	return ret;
}

int img_dm_info(const char *name, struct img_dm_info *out,
		struct vs_error **errp)
{
	struct dm_task *dmt;
	struct dm_info info;
	bool exists = false;
	const char *u;
	int ret;

	dm_setup();
	*out = (struct img_dm_info){0};
	ret = dm_exists(name, &exists, errp);
	if (ret < 0 || !exists)
		return ret;
	dmt = dm_task_create(DM_DEVICE_TABLE);
	if (!dmt)
		return vs_error_set(errp, ENOMEM, "device-mapper: no memory");
	dm_last[0] = '\0';
	if (!dm_task_set_name(dmt, name)) {
		ret = dm_fail(errp, "name", name);
		goto out;
	}
	/* A missing device is not an error for TABLE: info says so. */
	if (!dm_task_run(dmt) || !dm_task_get_info(dmt, &info)) {
		ret = dm_fail(errp, "query", name);
		goto out;
	}
	if (!info.exists)
		goto out;
	out->exists = true;
	out->devt = makedev((unsigned)info.major, (unsigned)info.minor);
	out->open_count = info.open_count;
	u = dm_task_get_uuid(dmt);
	snprintf(out->uuid, sizeof(out->uuid), "%s", u ? u : "");
	read_table(dmt, out);
out:
	dm_task_destroy(dmt);
	return ret;
}

/* Run `dmt` with a udev cookie and wait on it: with udev, the node is
 * there when this returns; without (DM_DISABLE_UDEV=1), libdevmapper
 * makes or removes /dev/mapper/NAME itself during the wait. */
static bool run_synced(struct dm_task *dmt)
{
	uint32_t cookie = 0;
	bool ok;

	if (!dm_task_set_cookie(dmt, &cookie, 0))
		return false;
	ok = dm_task_run(dmt);
	dm_udev_wait(cookie);
	return ok;
}

int img_dm_create_linear(const char *name, const char *uuid, uint64_t size,
			 dev_t dev, uint64_t start, bool ro, mode_t mode,
			 uid_t uid, gid_t gid, dev_t *out,
			 struct vs_error **errp)
{
	struct dm_task *dmt;
	struct dm_info info;
	char params[64];
	int ret = 0;

	dm_setup();
	if (strlen(name) >= DM_NAME_LEN)
		return vs_error_set(errp, ENAMETOOLONG,
				    "device-mapper name '%s' is longer than "
				    "%d bytes",
				    name, DM_NAME_LEN - 1);
	if (strlen(uuid) >= DM_UUID_LEN)
		return vs_error_set(errp, ENAMETOOLONG,
				    "device-mapper uuid '%s' is too long",
				    uuid);
	snprintf(params, sizeof(params), "%u:%u %" PRIu64, major(dev),
		 minor(dev), start);
	dmt = dm_task_create(DM_DEVICE_CREATE);
	if (!dmt)
		return vs_error_set(errp, ENOMEM, "device-mapper: no memory");
	dm_last[0] = '\0';
	if (!dm_task_set_name(dmt, name) || !dm_task_set_uuid(dmt, uuid) ||
	    !dm_task_add_target(dmt, 0, size, "linear", params) ||
	    (ro && !dm_task_set_ro(dmt)) || !dm_task_set_mode(dmt, mode) ||
	    !dm_task_set_uid(dmt, uid) || !dm_task_set_gid(dmt, gid) ||
	    !run_synced(dmt)) {
		ret = dm_fail(errp, "create", name);
		goto out;
	}
	if (!dm_task_get_info(dmt, &info) || !info.exists) {
		ret = dm_fail(errp, "create", name);
		goto out;
	}
	*out = makedev((unsigned)info.major, (unsigned)info.minor);
out:
	dm_task_destroy(dmt);
	return ret;
}

int img_dm_remove(const char *name, struct vs_error **errp)
{
	struct dm_task *dmt;
	int ret = 0;

	dm_setup();
	dmt = dm_task_create(DM_DEVICE_REMOVE);
	if (!dmt)
		return vs_error_set(errp, ENOMEM, "device-mapper: no memory");
	dm_last[0] = '\0';
	/* Retries cover a transient open (blkid from udev) as dmsetup's
	 * --retry does. */
	if (!dm_task_set_name(dmt, name) || !dm_task_retry_remove(dmt) ||
	    !run_synced(dmt))
		ret = dm_fail(errp, "remove", name);
	dm_task_destroy(dmt);
	return ret;
}

int img_dm_list(char **names, size_t *n, struct vs_error **errp)
{
	struct dm_task *dmt;
	struct dm_names *nm;
	size_t len = 0, count = 0;
	unsigned next;
	char *buf = NULL;
	int ret = 0;

	dm_setup();
	*names = NULL;
	*n = 0;
	dmt = dm_task_create(DM_DEVICE_LIST);
	if (!dmt)
		return vs_error_set(errp, ENOMEM, "device-mapper: no memory");
	dm_last[0] = '\0';
	if (!dm_task_run(dmt) || !(nm = dm_task_get_names(dmt))) {
		ret = dm_fail(errp, "list", "devices");
		goto out;
	}
	if (!nm->dev)
		goto out; /* no devices at all */
	do {
		size_t l = strlen(nm->name) + 1;
		char *grown = realloc(buf, len + l);

		if (!grown) {
			ret = vs_error_set(errp, ENOMEM, "out of memory");
			goto out;
		}
		buf = grown;
		memcpy(buf + len, nm->name, l);
		len += l;
		count++;
		next = nm->next;
		nm = (struct dm_names *)((char *)nm + next);
	} while (next);
	*names = buf;
	buf = NULL;
	*n = count;
out:
	free(buf);
	dm_task_destroy(dmt);
	return ret;
}
