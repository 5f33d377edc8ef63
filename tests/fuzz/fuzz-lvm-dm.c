/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the readers of LVM's device-mapper text
 * (lvmglue/lvm-dm.c): a dm uuid and a thin target's parameters, which a
 * backup reads from sysfs and libdevmapper instead of asking lvs.  The
 * kernel prints them, but a device anyone with CAP_SYS_ADMIN made can
 * carry any name, uuid or table: every input goes through each reader,
 * none may crash, and what they accept must be what lvm-priv.h promises.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "lvmglue/lvm-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool id_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ!#",
			    s[i]) ||
		    !s[i])
			return false;
	return true;
}

static void check_uuid(const char *text)
{
	char vg[LVM_ID_LEN + 1], lv[LVM_ID_LEN + 1];
	const char *layer;
	char *dashed;

	if (lvm_dm_uuid_split(text, vg, lv, &layer) < 0)
		return;
	assert(!strncmp(text, "LVM-", 4));
	assert(strlen(vg) == LVM_ID_LEN && id_chars(vg, LVM_ID_LEN));
	assert(strlen(lv) == LVM_ID_LEN && id_chars(lv, LVM_ID_LEN));
	assert(layer == text + 4 + 2 * LVM_ID_LEN);
	assert(!*layer || (layer[0] == '-' && layer[1]));
	for (const char *p = *layer ? layer + 1 : layer; *p; p++)
		assert(*p >= 'a' && *p <= 'z');
	/* The id as lvs prints it names the same LV, and only it. */
	dashed = lvm_dm_id_dashed(lv);
	assert(dashed && strlen(dashed) == LVM_ID_LEN + 6);
	assert(lvm_dm_uuid_is_lv(text, dashed));
	assert(!strcmp(vg, lv) || !lvm_dm_uuid_is_lv(text, vg));
	free(dashed);
}

static void check_thin(const char *text)
{
	char again[64];
	dev_t pool;
	uint64_t id;
	int n;

	if (lvm_dm_thin_params_parse(text, &pool, &id) < 0)
		return;
	assert(id <= 0xffffff && major(pool) <= 0xfff &&
	       minor(pool) <= 0xfffff);
	/* What was accepted reads back the same, canonical numbers. */
	n = snprintf(again, sizeof(again), "%u:%u %" PRIu64, major(pool),
		     minor(pool), id);
	assert(n > 0 && !strncmp(text, again, (size_t)n));
	assert(!text[n] || text[n] == ' ');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	/* sysfs and libdevmapper hand over NUL-terminated text; a NUL
	 * inside the input ends it there, as it would for them. */
	memcpy(text, data, size);
	text[size] = '\0';
	check_uuid(text);
	check_thin(text);
	free(text);
	return 0;
}
