/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../vbd/vbd.h"
#include "info.h"

/* An image of the chain already described, for the loop check. */
struct chain_seen {
	dev_t dev;
	ino_t ino;
};

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

/* qemu-img's SnapshotInfo: vm-clock split into seconds and nanoseconds,
 * icount only where the snapshot recorded one. */
static struct json_object *snapshot_to_json(const struct vbd_snapshot *sn)
{
	struct json_object *o = json_object_new_object();

	add_str(o, "id", sn->id ? sn->id : "");
	add_str(o, "name", sn->name ? sn->name : "");
	add_int(o, "vm-state-size", (int64_t)sn->vm_state_size);
	add_int(o, "date-sec", (int64_t)sn->date_sec);
	add_int(o, "date-nsec", sn->date_nsec);
	add_int(o, "vm-clock-sec", (int64_t)(sn->vm_clock_nsec / 1000000000));
	add_int(o, "vm-clock-nsec", (int64_t)(sn->vm_clock_nsec % 1000000000));
	if (sn->icount_valid)
		add_int(o, "icount", (int64_t)sn->icount);
	return o;
}

/* "snapshots" when the image has internal snapshots.  A format without
 * them says -ENOTSUP: that is no snapshots, not an error (qemu-img does
 * the same). */
static int add_snapshots(struct json_object *o, struct vbd *vbd,
			 struct vs_error **errp)
{
	struct vs_error *err = NULL;
	struct vbd_snapshot *list;
	struct json_object *arr;
	int n, ret;

	ret = vbd_snapshot_list(vbd, &list, &n, &err);
	if (ret == -ENOTSUP) {
		vs_error_free(err);
		return 0;
	}
	if (ret < 0) {
		if (errp && !*errp)
			*errp = err;
		else
			vs_error_free(err);
		return ret;
	}
	if (n > 0) {
		arr = json_object_new_array();
		for (int i = 0; i < n; i++)
			json_object_array_add(arr, snapshot_to_json(&list[i]));
		json_object_object_add(o, "snapshots", arr);
	}
	vbd_snapshot_list_free(list, n);
	return 0;
}

/* img_info, and the file's identity for the chain's loop check. */
static int describe(const char *path, const char *fmt, unsigned vbd_flags,
		    struct json_object **out, struct stat *st,
		    struct vs_error **errp)
{
	struct vbd_info info;
	struct vbd *vbd;
	int ret;

	ret = vbd_open_file(path, fmt, vbd_flags | VBD_O_RDONLY, &vbd, errp);
	if (ret < 0)
		return ret;
	if (stat(path, st) < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: cannot stat", path);
		vbd_close(vbd);
		return ret;
	}
	/* A zero-length regular file holds no image of any format; saying
	 * "raw, 0 bytes" would hide a failed copy or a wrong path. */
	if (S_ISREG(st->st_mode) && st->st_size == 0) {
		vbd_close(vbd);
		return vs_error_set(errp, EINVAL,
				    "%s: the file is empty (0 bytes): not a "
				    "disk image",
				    path);
	}
	ret = vbd_get_info(vbd, &info, errp);
	if (ret < 0) {
		json_object_put(info.specific);
		vbd_close(vbd);
		return ret;
	}
	*out = info_to_json(path, &info);
	ret = add_snapshots(*out, vbd, errp);
	vbd_close(vbd);
	if (ret < 0) {
		json_object_put(*out);
		*out = NULL;
	}
	return ret;
}

int img_info(const char *path, const char *fmt, unsigned vbd_flags,
	     struct json_object **out, struct vs_error **errp)
{
	struct stat st;

	return describe(path, fmt, vbd_flags, out, &st, errp);
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v)
						     : NULL;
}

/* The next image of the chain after `o` (the image at `path`): 1 and
 * *next, *next_fmt (owned by `o`), 0 at the base, or -errno. */
static int next_in_chain(struct json_object *o, const char *path,
			 const char **next, const char **next_fmt,
			 struct vs_error **errp)
{
	if (!get_str(o, "backing-filename"))
		return 0;
	*next = get_str(o, "full-backing-filename");
	if (!*next)
		return vs_error_set(errp, ENOMEM,
				    "%s: cannot build the path of backing "
				    "file '%s'",
				    path, get_str(o, "backing-filename"));
	*next_fmt = get_str(o, "backing-filename-format");
	return 1;
}

int img_info_chain(const char *path, const char *fmt, unsigned vbd_flags,
		   struct json_object **out, struct vs_error **errp)
{
	struct chain_seen seen[IMG_INFO_MAX_BACKING + 1];
	struct json_object *arr = json_object_new_array();
	const char *cur = path, *next = NULL;
	int ret;

	for (unsigned n = 0;; n++) {
		struct json_object *o;
		struct stat st;

		if (n > IMG_INFO_MAX_BACKING) {
			ret = vs_error_set(errp, ELOOP,
					   "%s: backing chain deeper than %d "
					   "backing files (at %s)",
					   path, IMG_INFO_MAX_BACKING, cur);
			goto fail;
		}
		ret = describe(cur, fmt, vbd_flags, &o, &st, errp);
		if (ret < 0)
			goto fail;
		json_object_array_add(arr, o);
		for (unsigned i = 0; i < n; i++) {
			if (seen[i].dev == st.st_dev &&
			    seen[i].ino == st.st_ino) {
				ret = vs_error_set(errp, ELOOP,
						   "%s: the backing chain "
						   "loops back to this image",
						   cur);
				goto fail;
			}
		}
		seen[n] = (struct chain_seen){st.st_dev, st.st_ino};
		ret = next_in_chain(o, cur, &next, &fmt, errp);
		if (ret < 0)
			goto fail;
		if (ret == 0)
			break;
		cur = next; /* owned by o, in arr */
	}
	*out = arr;
	return 0;
fail:
	json_object_put(arr);
	return ret;
}
