/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lvm's JSON reports, read as untrusted input.
 *
 * `lvs --reportformat json --units b --nosuffix` prints
 *   {"report": [{"lv": [{"vg_name": "vg0", "lv_size": "8388608", ...}]}]}
 * LVM2 2.03.16 (Debian 12) has no json_std format: every value is a
 * string, numbers included.  Later versions may print numbers as JSON
 * numbers, so both are accepted.  Anything else is an error that names
 * the report, the entry and the field: a wrong type, a number that is
 * not all digits or does not fit 64 bits, a missing field, a name LVM
 * itself would not allow.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "lvm-priv.h"

/* Nesting of a real report is 4; a little room, no more. */
#define JSON_DEPTH_MAX 8
/* No report field is longer (uuids are 38, attrs 10, names 127). */
#define FIELD_MAX 4096

static void json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define autojson __attribute__((cleanup(json_putp)))

static int parse_text(const char *json, const char *what,
		      struct json_object **out, struct vs_error **err)
{
	struct json_tokener *tok = json_tokener_new_ex(JSON_DEPTH_MAX);
	size_t len = strlen(json), end;
	struct json_object *obj;
	enum json_tokener_error jerr;

	*out = NULL;
	if (!tok)
		return vs_error_set(err, ENOMEM, "out of memory");
	obj = json_tokener_parse_ex(tok, json,
				    (int)VS_MIN(len, (size_t)INT32_MAX));
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (len > INT32_MAX) {
		json_object_put(obj);
		return vs_error_set(err, EFBIG, "%s: the report is too large",
				    what);
	}
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return vs_error_set(err, EPROTO,
				    "%s: the report is not valid JSON (%s, "
				    "at byte %zu)",
				    what,
				    jerr == json_tokener_continue
					    ? "it ends too early"
					    : json_tokener_error_desc(jerr),
				    end);
	}
	end += strspn(json + end, " \t\r\n");
	if (end != len) {
		json_object_put(obj);
		return vs_error_set(
			err, EPROTO,
			"%s: text after the JSON report at byte %zu", what,
			end);
	}
	*out = obj;
	return 0;
}

/*
 * The array under report[i][key], for every i, flattened: lvm prints one
 * report object per command; with log/report_command_log it adds a
 * "log" array beside it, which is skipped.
 */
static int report_items(struct json_object *root, const char *key,
			const char *what, struct json_object ***items,
			size_t *n, struct vs_error **err)
{
	struct json_object *report, **list = NULL;
	size_t count = 0, nrep;

	*items = NULL;
	*n = 0;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "report", &report) ||
	    !json_object_is_type(report, json_type_array))
		return vs_error_set(err, EPROTO,
				    "%s: no \"report\" array in lvm's output",
				    what);
	nrep = json_object_array_length(report);
	for (size_t r = 0; r < nrep; r++) {
		struct json_object *rep = json_object_array_get_idx(report, r);
		struct json_object *arr;
		size_t m;

		if (!json_object_is_type(rep, json_type_object))
			goto bad;
		if (!json_object_object_get_ex(rep, key, &arr))
			continue;
		if (!json_object_is_type(arr, json_type_array))
			goto bad;
		m = json_object_array_length(arr);
		if (m > SIZE_MAX / sizeof(*list) - count - 1)
			goto bad;
		struct json_object **l =
			realloc(list, (count + m + 1) * sizeof(*list));
		if (!l) {
			free(list);
			return vs_error_set(err, ENOMEM, "out of memory");
		}
		list = l;
		for (size_t i = 0; i < m; i++)
			list[count++] = json_object_array_get_idx(arr, i);
	}
	*items = list;
	*n = count;
	return 0;
bad:
	free(list);
	return vs_error_set(err, EPROTO,
			    "%s: \"report\" is not an array of objects with "
			    "a \"%s\" array",
			    what, key);
}

/* Field `key` of entry `idx`, which must be a string. */
static int get_str(struct json_object *o, const char *key, const char *what,
		   size_t idx, const char **out, struct vs_error **err)
{
	struct json_object *v;
	size_t len;

	if (!json_object_object_get_ex(o, key, &v))
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu has no field \"%s\"", what,
				    idx, key);
	if (!json_object_is_type(v, json_type_string))
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu: \"%s\" is a %s, not a "
				    "string",
				    what, idx, key,
				    json_type_to_name(json_object_get_type(v)));
	len = (size_t)json_object_get_string_len(v);
	*out = json_object_get_string(v);
	if (len > FIELD_MAX || strlen(*out) != len)
		return vs_error_set(err, EPROTO, "%s: entry %zu: \"%s\" is %s",
				    what, idx, key,
				    len > FIELD_MAX
					    ? "implausibly long"
					    : "a string with a NUL byte");
	return 0;
}

/* A byte count: a string of decimal digits (2.03.16) or a non-negative
 * JSON integer (json_std of later versions). */
static int get_u64(struct json_object *o, const char *key, const char *what,
		   size_t idx, uint64_t *out, struct vs_error **err)
{
	struct json_object *v;
	const char *s;
	uint64_t n = 0;

	if (!json_object_object_get_ex(o, key, &v))
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu has no field \"%s\"", what,
				    idx, key);
	if (json_object_is_type(v, json_type_int)) {
		/* json-c keeps integers beyond INT64_MAX as unsigned and
		 * saturates both getters: a negative value, or one that
		 * saturated the unsigned getter, is refused. */
		int64_t i = json_object_get_int64(v);
		uint64_t u = json_object_get_uint64(v);

		if (i < 0 || u == UINT64_MAX)
			goto bad_num;
		*out = i == INT64_MAX ? u : (uint64_t)i;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu: \"%s\" is a %s, not a "
				    "byte count",
				    what, idx, key,
				    json_type_to_name(json_object_get_type(v)));
	s = json_object_get_string(v);
	if (!*s || (size_t)json_object_get_string_len(v) != strlen(s))
		goto bad_num;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			goto bad_num;
		if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			goto bad_num;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*out = n;
	return 0;
bad_num:
	return vs_error_set(err, EPROTO,
			    "%s: entry %zu: \"%s\": '%.64s' is not a byte "
			    "count that fits 64 bits",
			    what, idx, key, json_object_get_string(v));
}

static char *dup_or_null(const char *s)
{
	return *s ? strdup(s) : NULL;
}

void lvm_lv_clear(struct lvm_lv *lv)
{
	if (!lv)
		return;
	free(lv->vg);
	free(lv->name);
	free(lv->uuid);
	free(lv->attr);
	free(lv->path);
	free(lv->dm_path);
	free(lv->pool);
	free(lv->origin);
	memset(lv, 0, sizeof(*lv));
}

void lvm_lv_free_array(struct lvm_lv *lvs, size_t n)
{
	for (size_t i = 0; lvs && i < n; i++)
		lvm_lv_clear(&lvs[i]);
	free(lvs);
}

void lvm_vg_clear(struct lvm_vg *vg)
{
	if (!vg)
		return;
	free(vg->name);
	memset(vg, 0, sizeof(*vg));
}

struct lv_fields {
	const char *vg, *name, *uuid, *attr, *path, *dm_path, *pool, *origin;
	const char *active, *open, *segtype, *zero;
	uint64_t size, extent_size;
};

static int read_lv_fields(struct json_object *o, const char *what, size_t i,
			  struct lv_fields *f, struct vs_error **err)
{
	if (!json_object_is_type(o, json_type_object))
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu is not an object", what, i);
	if (get_str(o, "vg_name", what, i, &f->vg, err) < 0 ||
	    get_str(o, "lv_name", what, i, &f->name, err) < 0 ||
	    get_str(o, "lv_uuid", what, i, &f->uuid, err) < 0 ||
	    get_str(o, "lv_attr", what, i, &f->attr, err) < 0 ||
	    get_str(o, "lv_path", what, i, &f->path, err) < 0 ||
	    get_str(o, "lv_dm_path", what, i, &f->dm_path, err) < 0 ||
	    get_str(o, "pool_lv", what, i, &f->pool, err) < 0 ||
	    get_str(o, "origin", what, i, &f->origin, err) < 0 ||
	    get_str(o, "lv_active", what, i, &f->active, err) < 0 ||
	    get_str(o, "lv_device_open", what, i, &f->open, err) < 0 ||
	    get_str(o, "segtype", what, i, &f->segtype, err) < 0 ||
	    get_str(o, "zero", what, i, &f->zero, err) < 0 ||
	    get_u64(o, "lv_size", what, i, &f->size, err) < 0 ||
	    get_u64(o, "vg_extent_size", what, i, &f->extent_size, err) < 0)
		return -EPROTO;
	/* LVM's extents are powers of two of at least one sector; sizes
	 * are rounded to them. */
	if (f->extent_size < 512 || (f->extent_size & (f->extent_size - 1)))
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu: vg_extent_size %llu is "
				    "not a power of two of at least 512",
				    what, i,
				    (unsigned long long)f->extent_size);
	return 0;
}

/* Names from the report are checked as a user's would be: a VG called
 * "../x" must not become a path we open. */
static int check_lv_names(const struct lv_fields *f, const char *what, size_t i,
			  struct vs_error **err)
{
	int ret = lvm_names_check(f->vg, f->name, err);

	if (ret >= 0 && *f->pool)
		ret = lvm_name_check(f->pool, "pool_lv", err);
	if (ret >= 0 && *f->origin)
		ret = lvm_name_check(f->origin, "origin", err);
	if (ret < 0)
		vs_error_prefix(err, "%s: entry %zu", what, i);
	return ret;
}

static int fill_lv(const struct lv_fields *f, const char *what, size_t i,
		   struct lvm_lv *lv, struct vs_error **err)
{
	size_t alen = strlen(f->attr);

	/* lv_attr is 10 characters since LVM2 2.02.112; the first six are
	 * the ones read here. */
	if (alen < 6 || alen > 16)
		return vs_error_set(err, EPROTO,
				    "%s: entry %zu: lv_attr '%s' is not an "
				    "LVM attribute string",
				    what, i, f->attr);
	lv->vg = strdup(f->vg);
	lv->name = strdup(f->name);
	lv->uuid = strdup(f->uuid);
	lv->attr = strdup(f->attr);
	lv->path = lvm_dev_path(f->vg, f->name);
	lv->dm_path = lvm_dm_path(f->vg, f->name);
	lv->pool = dup_or_null(f->pool);
	lv->origin = dup_or_null(f->origin);
	if (!lv->vg || !lv->name || !lv->uuid || !lv->attr || !lv->path ||
	    !lv->dm_path || (*f->pool && !lv->pool) ||
	    (*f->origin && !lv->origin))
		return vs_error_set(err, ENOMEM, "out of memory");
	/* vstor opens the paths it builds from the names; a report that
	 * disagrees means a devices/dir setting we do not follow. */
	if ((*f->path && strcmp(f->path, lv->path)) ||
	    (*f->dm_path && strcmp(f->dm_path, lv->dm_path)))
		return vs_error_set(err, EPROTO,
				    "%s: %s/%s: lvm reports the paths '%s' "
				    "and '%s', vstor expects %s and %s",
				    what, f->vg, f->name, f->path, f->dm_path,
				    lv->path, lv->dm_path);
	lv->size = f->size;
	lv->extent_size = f->extent_size;
	lv->thin = !strcmp(f->segtype, "thin");
	lv->thin_pool = !strcmp(f->segtype, "thin-pool");
	/* A classic snapshot says 's' first; a thin snapshot is a thin LV
	 * with an origin. */
	lv->snapshot = f->attr[0] == 's' || f->attr[0] == 'S' ||
		       (lv->thin && *f->origin);
	lv->active = *f->active && strcmp(f->active, "unknown") != 0;
	lv->open = !strcmp(f->open, "open");
	lv->zero = !strcmp(f->zero, "zero");
	return 0;
}

int lvm_json_parse_lvs(const char *json, const char *what, struct lvm_lv **lvs,
		       size_t *n, struct vs_error **err)
{
	autojson struct json_object *root = NULL;
	autofree struct json_object **items = NULL;
	struct lvm_lv *out = NULL;
	size_t count = 0, k = 0;
	int ret;

	*lvs = NULL;
	*n = 0;
	ret = parse_text(json, what, &root, err);
	if (ret < 0)
		return ret;
	ret = report_items(root, "lv", what, &items, &count, err);
	if (ret < 0)
		return ret;
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out)
		return vs_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		struct lv_fields f;

		ret = read_lv_fields(items[i], what, i, &f, err);
		if (ret < 0)
			goto fail;
		/* Hidden sub-LVs ("[pool_tdata]") appear only with -a,
		 * which we never pass; skip them should they come. */
		if (f.name[0] == '[')
			continue;
		ret = check_lv_names(&f, what, i, err);
		if (ret < 0)
			goto fail;
		ret = fill_lv(&f, what, i, &out[k++], err);
		if (ret < 0)
			goto fail;
	}
	*lvs = out;
	*n = k;
	return 0;
fail:
	lvm_lv_free_array(out, k);
	return ret;
}

int lvm_json_parse_vgs(const char *json, const char *what, struct lvm_vg **vgs,
		       size_t *n, struct vs_error **err)
{
	autojson struct json_object *root = NULL;
	autofree struct json_object **items = NULL;
	struct lvm_vg *out = NULL;
	size_t count = 0, k = 0;
	int ret;

	*vgs = NULL;
	*n = 0;
	ret = parse_text(json, what, &root, err);
	if (ret < 0)
		return ret;
	ret = report_items(root, "vg", what, &items, &count, err);
	if (ret < 0)
		return ret;
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out)
		return vs_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		struct json_object *o = items[i];
		const char *name;
		struct lvm_vg *vg = &out[k];

		if (!json_object_is_type(o, json_type_object)) {
			ret = vs_error_set(err, EPROTO,
					   "%s: entry %zu is not an object",
					   what, i);
			goto fail;
		}
		ret = get_str(o, "vg_name", what, i, &name, err);
		if (ret >= 0)
			ret = get_u64(o, "vg_size", what, i, &vg->size, err);
		if (ret >= 0)
			ret = get_u64(o, "vg_free", what, i, &vg->free, err);
		if (ret >= 0)
			ret = get_u64(o, "vg_extent_size", what, i,
				      &vg->extent_size, err);
		if (ret >= 0 && lvm_name_check(name, "vg_name", err) < 0) {
			vs_error_prefix(err, "%s: entry %zu", what, i);
			ret = -EPROTO;
		}
		if (ret < 0)
			goto fail;
		/* LVM's extents are powers of two of at least one
		 * sector; sizes are rounded to them later. */
		if (vg->extent_size < 512 ||
		    (vg->extent_size & (vg->extent_size - 1)) ||
		    vg->free > vg->size) {
			ret = vs_error_set(err, EPROTO,
					   "%s: VG %s: extent size %llu, size "
					   "%llu, free %llu do not add up",
					   what, name,
					   (unsigned long long)vg->extent_size,
					   (unsigned long long)vg->size,
					   (unsigned long long)vg->free);
			goto fail;
		}
		vg->name = strdup(name);
		k++;
		if (!vg->name) {
			ret = vs_error_set(err, ENOMEM, "out of memory");
			goto fail;
		}
	}
	*vgs = out;
	*n = k;
	return 0;
fail:
	for (size_t i = 0; i < k; i++)
		lvm_vg_clear(&out[i]);
	free(out);
	return ret;
}

static struct json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

struct json_object *lvm_lv_to_json(const struct lvm_lv *lv)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	/* json_object_object_add takes NULL values as JSON null. */
	if (json_object_object_add(o, "vg", str_or_null(lv->vg)) ||
	    json_object_object_add(o, "name", str_or_null(lv->name)) ||
	    json_object_object_add(o, "path", str_or_null(lv->path)) ||
	    json_object_object_add(o, "dm-path", str_or_null(lv->dm_path)) ||
	    json_object_object_add(o, "uuid", str_or_null(lv->uuid)) ||
	    json_object_object_add(o, "attr", str_or_null(lv->attr)) ||
	    json_object_object_add(o, "size",
				   json_object_new_uint64(lv->size)) ||
	    json_object_object_add(o, "type",
				   json_object_new_string(lvm_lv_type(lv))) ||
	    json_object_object_add(o, "pool", str_or_null(lv->pool)) ||
	    json_object_object_add(o, "origin", str_or_null(lv->origin)) ||
	    json_object_object_add(o, "active",
				   json_object_new_boolean(lv->active)) ||
	    json_object_object_add(o, "open",
				   json_object_new_boolean(lv->open)) ||
	    json_object_object_add(o, "thin",
				   json_object_new_boolean(lv->thin)) ||
	    json_object_object_add(o, "thin-pool",
				   json_object_new_boolean(lv->thin_pool)) ||
	    json_object_object_add(o, "snapshot",
				   json_object_new_boolean(lv->snapshot))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
