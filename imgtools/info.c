/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../vbd/vbd.h"
#include "info.h"

static void add_int(struct json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

/* The backing file as it is opened: a relative name is relative to the
 * image's directory. */
static void add_full_backing(struct json_object *o, const char *path,
			     const char *backing)
{
	const char *slash = strrchr(path, '/');
	char *full;

	if (backing[0] == '/' || !slash) {
		add_str(o, "full-backing-filename", backing);
		return;
	}
	if (asprintf(&full, "%.*s/%s", (int)(slash - path), path, backing) < 0)
		return;
	add_str(o, "full-backing-filename", full);
	free(full);
}

static struct json_object *info_to_json(const char *path, struct vbd_info *info)
{
	struct json_object *o = json_object_new_object();

	add_int(o, "virtual-size", (int64_t)info->virtual_size);
	add_str(o, "filename", path);
	if (info->cluster_size)
		add_int(o, "cluster-size", info->cluster_size);
	add_str(o, "format", info->format);
	if (info->actual_size >= 0)
		add_int(o, "actual-size", info->actual_size);
	if (info->encrypted)
		json_object_object_add(o, "encrypted",
				       json_object_new_boolean(true));
	add_str(o, "backing-filename", info->backing_file);
	if (info->backing_file)
		add_full_backing(o, path, info->backing_file);
	add_str(o, "backing-filename-format", info->backing_format);
	if (info->specific) {
		struct json_object *fs = json_object_new_object();

		add_str(fs, "type", info->format);
		json_object_object_add(fs, "data", info->specific);
		info->specific = NULL;
		json_object_object_add(o, "format-specific", fs);
	}
	json_object_object_add(o, "dirty-flag",
			       json_object_new_boolean(info->dirty));
	return o;
}

int img_info(const char *path, const char *fmt, unsigned vbd_flags,
	     struct json_object **out, struct vs_error **errp)
{
	struct vbd_info info;
	struct vbd *vbd;
	struct stat st;
	int ret;

	ret = vbd_open_file(path, fmt, vbd_flags | VBD_O_RDONLY, &vbd, errp);
	if (ret < 0)
		return ret;
	/* A zero-length regular file holds no image of any format; saying
	 * "raw, 0 bytes" would hide a failed copy or a wrong path. */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
		vbd_close(vbd);
		return vs_error_set(errp, EINVAL,
				    "%s: the file is empty (0 bytes): not a "
				    "disk image",
				    path);
	}
	ret = vbd_get_info(vbd, &info, errp);
	if (ret == 0)
		*out = info_to_json(path, &info);
	else
		json_object_put(info.specific);
	vbd_close(vbd);
	return ret;
}
