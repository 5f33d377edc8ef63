/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the readers of lvm's JSON reports (lvmglue/
 * lvm-json.c).  What `lvs` and `vgs` print is untrusted input: an LV
 * named by whoever made the VG, a newer LVM with another format, a
 * broken install.  Every input goes through both readers; neither may
 * crash or leak, and what they accept must hold the promises lvm.h
 * makes: names that pass lvm_name_check, the paths vstor derives from
 * them, extents that are powers of two, sizes that add up.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lvmglue/lvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool power_of_two_extent(uint64_t x)
{
	return x >= 512 && !(x & (x - 1));
}

static void check_lv(const struct lvm_lv *lv)
{
	struct json_object *o;

	assert(lv->vg && lv->name && lv->uuid && lv->attr);
	assert(lv->path && lv->dm_path);
	assert(lvm_name_check(lv->vg, "vg", NULL) == 0);
	assert(lvm_name_check(lv->name, "lv", NULL) == 0);
	assert(!lv->pool || lvm_name_check(lv->pool, "pool", NULL) == 0);
	assert(!lv->origin || lvm_name_check(lv->origin, "origin", NULL) == 0);
	/* The paths vstor opens are its own, built from checked names. */
	assert(!strncmp(lv->path, "/dev/", 5));
	assert(!strncmp(lv->dm_path, "/dev/mapper/", 12));
	assert(!strstr(lv->path, "/../") && !strstr(lv->dm_path, "/../"));
	assert(strlen(lv->attr) >= 6);
	assert(power_of_two_extent(lv->extent_size));
	assert(!(lv->thin && lv->thin_pool));
	assert(lvm_lv_type(lv) && lvm_lv_type(lv)[0]);
	o = lvm_lv_to_json(lv);
	assert(o);
	/* `vstor lv list --output=json` prints this: it must serialize. */
	assert(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_error *err = NULL;
	struct lvm_lv *lvs = NULL;
	struct lvm_vg *vgs = NULL;
	size_t n = 0;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	/* lvm_run hands the readers a NUL-terminated stdout; a NUL inside
	 * the input ends the report there, as it would for them. */
	memcpy(text, data, size);
	text[size] = '\0';

	if (lvm_json_parse_lvs(text, "fuzz-lvs", &lvs, &n, &err) == 0) {
		assert(!err && lvs);
		for (size_t i = 0; i < n; i++)
			check_lv(&lvs[i]);
		lvm_lv_free_array(lvs, n);
	} else {
		assert(err && !lvs && n == 0);
		assert(vs_error_msg(err)[0] != '\0');
		vs_error_free(err);
		err = NULL;
	}

	n = 0;
	if (lvm_json_parse_vgs(text, "fuzz-vgs", &vgs, &n, &err) == 0) {
		assert(!err && vgs);
		for (size_t i = 0; i < n; i++) {
			assert(vgs[i].name);
			assert(lvm_name_check(vgs[i].name, "vg", NULL) == 0);
			assert(power_of_two_extent(vgs[i].extent_size));
			assert(vgs[i].free <= vgs[i].size);
			lvm_vg_clear(&vgs[i]);
		}
		free(vgs);
	} else {
		assert(err && !vgs && n == 0);
		assert(vs_error_msg(err)[0] != '\0');
		vs_error_free(err);
	}
	free(text);
	return 0;
}
