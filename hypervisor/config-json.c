/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A domain config as JSON, for the domain's state record.  Reading one
 * back goes through the config parser itself: the record is turned into
 * xl text and parsed, so that a record edited by hand or damaged on disk
 * meets exactly the checks a config file meets, and the two cannot drift
 * apart.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "config-syntax.h"
#include "config.h"

#define SOURCE "state record"

static void add_str(struct json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void add_num(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

struct json_object *dom_config_to_json(const struct dom_config *cfg)
{
	struct json_object *o = json_object_new_object(), *disks, *vifs;

	if (!o)
		return NULL;
	add_str(o, "path", cfg->path);
	add_str(o, "name", cfg->name);
	add_str(o, "uuid", cfg->uuid);
	add_num(o, "memory", cfg->memory_mib);
	add_num(o, "maxmem", cfg->maxmem_mib);
	add_num(o, "vcpus", cfg->vcpus);
	add_num(o, "maxvcpus", cfg->maxvcpus);
	add_str(o, "type", cfg->type);
	add_str(o, "kernel", cfg->kernel);
	add_str(o, "ramdisk", cfg->ramdisk);
	add_str(o, "root", cfg->root);
	add_str(o, "cmdline", cfg->cmdline);
	disks = json_object_new_array();
	for (size_t i = 0; i < cfg->n_disks; i++)
		json_object_array_add(
			disks, json_object_new_string(cfg->disks[i].text));
	json_object_object_add(o, "disk", disks);
	vifs = json_object_new_array();
	for (size_t i = 0; i < cfg->n_vifs; i++) {
		struct json_object *v = json_object_new_object();

		add_str(v, "bridge", cfg->vifs[i].bridge);
		add_str(v, "mac", cfg->vifs[i].mac);
		add_str(v, "model", cfg->vifs[i].model);
		add_str(v, "vifname", cfg->vifs[i].vifname);
		json_object_array_add(vifs, v);
	}
	json_object_object_add(o, "vif", vifs);
	add_str(o, "on_poweroff", dom_action_name(cfg->on_poweroff));
	add_str(o, "on_reboot", dom_action_name(cfg->on_reboot));
	add_str(o, "on_crash", dom_action_name(cfg->on_crash));
	add_str(o, "serial", cfg->serial);
	add_str(o, "accel", dom_accel_name(cfg->accel));
	return o;
}

/* The xl text being built from a record. */
struct text {
	char *buf;
	size_t len, cap;
	struct vs_error **err;
};

static int put(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		size_t cap = (t->len + n + 1) * 2;
		char *b;

		if (cap > DOM_CONFIG_MAX_SIZE * 2)
			return vs_error_set(t->err, EFBIG,
					    SOURCE ": too large for a domain "
						   "config");
		b = realloc(t->buf, cap);
		if (!b)
			return vs_error_set(t->err, ENOMEM,
					    SOURCE ": out of memory");
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n + 1);
	t->len += n;
	return 0;
}

static int put_quoted(struct text *t, const char *s)
{
	autofree char *q = dom_xl_quote(s);

	if (!q)
		return vs_error_set(t->err, ENOMEM, SOURCE ": out of memory");
	return put(t, q);
}

static int type_error(struct text *t, const char *key, const char *want)
{
	return vs_error_set(t->err, EINVAL, SOURCE ": %s: expected %s", key,
			    want);
}

/* A scalar field: a string is quoted, an integer written in decimal. */
static int put_scalar(struct text *t, const char *key, struct json_object *v,
		      bool number)
{
	char num[32];
	int ret;

	if (number) {
		if (!json_object_is_type(v, json_type_int))
			return type_error(t, key, "an integer");
		snprintf(num, sizeof(num), "%lld",
			 (long long)json_object_get_int64(v));
		/* A negative value is written as such and refused by the
		 * parser ("'-1' ..."); it cannot pass as a large one. */
		if (num[0] == '-')
			return vs_error_set(t->err, ERANGE,
					    SOURCE ": %s: %s is negative", key,
					    num);
	} else if (!json_object_is_type(v, json_type_string)) {
		return type_error(t, key, "a string");
	}
	ret = put(t, key);
	if (!ret)
		ret = put(t, " = ");
	if (!ret)
		ret = number ? put(t, num)
			     : put_quoted(t, json_object_get_string(v));
	if (!ret)
		ret = put(t, "\n");
	return ret;
}

static int put_disks(struct text *t, struct json_object *a)
{
	int ret;

	if (!json_object_is_type(a, json_type_array))
		return type_error(t, "disk", "an array of strings");
	ret = put(t, "disk = [\n");
	for (size_t i = 0; !ret && i < json_object_array_length(a); i++) {
		struct json_object *d = json_object_array_get_idx(a, i);

		if (!json_object_is_type(d, json_type_string))
			return type_error(t, "disk", "an array of strings");
		ret = put_quoted(t, json_object_get_string(d));
		if (!ret)
			ret = put(t, ",\n");
	}
	return ret ? ret : put(t, "]\n");
}

/* A vif object becomes the `key=value,...` spec it came from.  A ',' in
 * a value would split it differently, so it is refused here (the parser
 * refuses one in every vif value anyway). */
static int put_vif(struct text *t, struct json_object *v)
{
	static const char *const keys[] = {"bridge", "mac", "model", "vifname"};
	char *spec = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (!json_object_is_type(v, json_type_object))
		return type_error(t, "vif", "an array of objects");
	f = open_memstream(&spec, &len);
	if (!f)
		return vs_error_set(t->err, ENOMEM, SOURCE ": out of memory");
	for (size_t i = 0, n = 0; i < VS_ARRAY_SIZE(keys); i++) {
		struct json_object *s;

		if (!json_object_object_get_ex(v, keys[i], &s))
			continue;
		if (!json_object_is_type(s, json_type_string) ||
		    strchr(json_object_get_string(s), ',')) {
			fclose(f);
			free(spec);
			return type_error(t, "vif",
					  "string values without ','");
		}
		fprintf(f, "%s%s=%s", n++ ? "," : "", keys[i],
			json_object_get_string(s));
	}
	if (fclose(f)) {
		free(spec);
		return vs_error_set(t->err, ENOMEM, SOURCE ": out of memory");
	}
	ret = put_quoted(t, spec);
	free(spec);
	return ret ? ret : put(t, ",\n");
}

static int put_vifs(struct text *t, struct json_object *a)
{
	int ret;

	if (!json_object_is_type(a, json_type_array))
		return type_error(t, "vif", "an array of objects");
	ret = put(t, "vif = [\n");
	for (size_t i = 0; !ret && i < json_object_array_length(a); i++)
		ret = put_vif(t, json_object_array_get_idx(a, i));
	return ret ? ret : put(t, "]\n");
}

/* The record's fields and how each becomes xl text.  root is not among
 * them: cmdline already holds it, and it is set apart afterwards. */
static const struct field {
	const char *key;
	bool number, required;
} fields[] = {
	{"name", false, true},	       {"uuid", false, true},
	{"memory", true, true},	       {"maxmem", true, true},
	{"vcpus", true, true},	       {"maxvcpus", true, false},
	{"type", false, false},	       {"kernel", false, true},
	{"ramdisk", false, false},     {"cmdline", false, false},
	{"on_poweroff", false, false}, {"on_reboot", false, false},
	{"on_crash", false, false},    {"serial", false, false},
	{"accel", false, false},
};

static int record_to_text(struct json_object *obj, struct text *t)
{
	struct json_object *v;
	int ret = 0;

	if (!json_object_is_type(obj, json_type_object))
		return vs_error_set(t->err, EINVAL,
				    SOURCE ": expected a JSON object");
	for (size_t i = 0; !ret && i < VS_ARRAY_SIZE(fields); i++) {
		if (!json_object_object_get_ex(obj, fields[i].key, &v)) {
			if (fields[i].required)
				return vs_error_set(t->err, EINVAL,
						    SOURCE ": no field '%s'",
						    fields[i].key);
			continue;
		}
		ret = put_scalar(t, fields[i].key, v, fields[i].number);
	}
	if (!ret && json_object_object_get_ex(obj, "disk", &v))
		ret = put_disks(t, v);
	if (!ret && json_object_object_get_ex(obj, "vif", &v))
		ret = put_vifs(t, v);
	return ret;
}

/* path and root: set directly, they are not checked beyond their type. */
static int take_extra(struct json_object *obj, struct dom_config *cfg,
		      struct vs_error **err)
{
	static const char *const keys[] = {"path", "root"};
	char **dst[] = {&cfg->path, &cfg->root};

	for (size_t i = 0; i < VS_ARRAY_SIZE(keys); i++) {
		struct json_object *v;

		if (!json_object_object_get_ex(obj, keys[i], &v))
			continue;
		if (!json_object_is_type(v, json_type_string))
			return vs_error_set(err, EINVAL,
					    SOURCE ": %s: expected a string",
					    keys[i]);
		*dst[i] = strdup(json_object_get_string(v));
		if (!*dst[i])
			return vs_error_set(err, ENOMEM,
					    SOURCE ": out of memory");
	}
	return 0;
}

int dom_config_from_json(struct json_object *obj, struct dom_config **out,
			 struct vs_error **err)
{
	struct text t = {.err = err};
	int ret;

	*out = NULL;
	ret = record_to_text(obj, &t);
	if (!ret)
		ret = dom_config_parse_quiet(t.buf, SOURCE, NULL, 0, true, out,
					     err);
	free(t.buf);
	if (ret)
		return ret;
	ret = take_extra(obj, *out, err);
	if (ret) {
		dom_config_free(*out);
		*out = NULL;
	}
	return ret;
}
