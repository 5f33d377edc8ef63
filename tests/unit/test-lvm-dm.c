/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lvmglue/lvm-dm.c: the text of LVM's device-mapper
 * devices as the kernel shows it (dm uuids, a thin target's parameters)
 * read as untrusted input, and an LV that is not there as device-mapper
 * sends the caller back to lvs (-ENOENT) rather than failing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <cmocka.h>

#include "common/error.h"
#include "lvmglue/lvm-priv.h"

#define UNUSED __attribute__((unused))

/* A VG id and an LV id as LVM makes them (its 64 characters include '!'
 * and '#'). */
#define VG_ID "6mZEJg3uY0b1Lc8XHVr2sWZ4d5yV7qNe"
#define LV_ID "iWPsWe4VJHeU0vcHfaTXEy4P2ew4Jq3D"

static void test_uuid_split(UNUSED void **state)
{
	char vg[LVM_ID_LEN + 1], lv[LVM_ID_LEN + 1];
	const char *layer = NULL;

	assert_int_equal(lvm_dm_uuid_split("LVM-" VG_ID LV_ID, vg, lv, &layer),
			 0);
	assert_string_equal(vg, VG_ID);
	assert_string_equal(lv, LV_ID);
	assert_string_equal(layer, "");

	assert_int_equal(lvm_dm_uuid_split("LVM-" VG_ID LV_ID "-tpool", NULL,
					   lv, &layer),
			 0);
	assert_string_equal(lv, LV_ID);
	assert_string_equal(layer, "-tpool");

	/* Ids with LVM's two odd characters. */
	assert_int_equal(lvm_dm_uuid_split("LVM-" VG_ID
					   "iWPsWe4VJHeU0vcHfaTXEy4P2ew4J!#D",
					   NULL, NULL, NULL),
			 0);
}

static void test_uuid_split_refused(UNUSED void **state)
{
	static const char *const bad[] = {
		"",
		"LVM-",
		"lvm-" VG_ID LV_ID,
		"CRYPT-" VG_ID LV_ID,
		"LVM-" VG_ID,
		"LVM-" VG_ID "iWPsWe4VJHeU0vcHfaTXEy4P2ew4Jq3", /* short */
		"LVM-" VG_ID "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-w4Jq3D",
		"LVM-" VG_ID "iWPsWe4VJHeU0vcHfaTXEy4P2ew4Jq3 ",
		"LVM-" VG_ID LV_ID "-",
		"LVM-" VG_ID LV_ID "x",
		"LVM-" VG_ID LV_ID "-Tpool",
		"LVM-" VG_ID LV_ID "-tpool-",
		"LVM-" VG_ID LV_ID "-t1",
		"LVM-" VG_ID LV_ID "-tpool\n",
		"LVM-" VG_ID LV_ID LV_ID,
	};
	const char *layer = "untouched";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char lv[LVM_ID_LEN + 1] = "";

		if (lvm_dm_uuid_split(bad[i], NULL, lv, &layer) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_string_equal(lv, "");
		assert_string_equal(layer, "untouched");
	}
}

static void test_id_dashed(UNUSED void **state)
{
	char *d = lvm_dm_id_dashed(LV_ID);

	assert_non_null(d);
	assert_string_equal(d, "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-w4Jq3D");
	assert_true(lvm_dm_uuid_is_lv("LVM-" VG_ID LV_ID, d));
	free(d);
}

static void test_uuid_is_lv(UNUSED void **state)
{
	const char *dm = "LVM-" VG_ID LV_ID;

	assert_true(lvm_dm_uuid_is_lv(dm, LV_ID));
	assert_true(lvm_dm_uuid_is_lv(dm, "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-"
					  "w4Jq3D"));
	/* The VG half, a different LV, too short, too long. */
	assert_false(lvm_dm_uuid_is_lv(dm, VG_ID));
	assert_false(lvm_dm_uuid_is_lv(dm, "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-"
					   "w4Jq3E"));
	assert_false(lvm_dm_uuid_is_lv(dm, "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-"
					   "w4Jq3"));
	assert_false(lvm_dm_uuid_is_lv(dm, "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-"
					   "w4Jq3DD"));
	assert_false(lvm_dm_uuid_is_lv(dm, ""));
	/* A layer below an LV carries the LV's id too; no id, no LV. */
	assert_true(lvm_dm_uuid_is_lv("LVM-" VG_ID LV_ID "-real", LV_ID));
	assert_false(lvm_dm_uuid_is_lv("LVM-" VG_ID, LV_ID));
	assert_false(lvm_dm_uuid_is_lv("XYZ-" VG_ID LV_ID, LV_ID));
}

static void test_thin_params(UNUSED void **state)
{
	dev_t pool = 0;
	uint64_t id = 0;

	assert_int_equal(lvm_dm_thin_params_parse("253:3 1", &pool, &id), 0);
	assert_int_equal(major(pool), 253);
	assert_int_equal(minor(pool), 3);
	assert_int_equal(id, 1);
	/* The largest id (24 bits), majors and minors. */
	assert_int_equal(
		lvm_dm_thin_params_parse("4095:1048575 16777215", &pool, &id),
		0);
	assert_int_equal(major(pool), 4095);
	assert_int_equal(minor(pool), 1048575);
	assert_int_equal(id, 16777215);
	/* An external origin follows. */
	assert_int_equal(lvm_dm_thin_params_parse("253:0 7 253:9", &pool, &id),
			 0);
	assert_int_equal(minor(pool), 0);
	assert_int_equal(id, 7);
}

static void test_thin_params_refused(UNUSED void **state)
{
	static const char *const bad[] = {
		"",	    "253:3",	     "253:3 ",
		"253 1",    "253:3  1",	     " 253:3 1",
		"253:3 1x", "253:3 0x1",     "253:3 -1",
		"-253:3 1", "253:-3 1",	     "0253:3 1",
		"253:03 1", "253:3 01",	     "253:3 16777216",
		"4096:3 1", "253:1048576 1", "253:3 99999999999999999999999",
		"253:3\t1", "253::3 1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dev_t pool = 42;
		uint64_t id = 42;

		if (lvm_dm_thin_params_parse(bad[i], &pool, &id) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_int_equal(pool, 42);
		assert_int_equal(id, 42);
	}
}

/* No such dm device (or no device-mapper at all, as on the build
 * hosts): -ENOENT, so that the backup asks lvs. */
static void test_thin_lv_missing(UNUSED void **state)
{
	struct lvm_lv lv;

	assert_int_equal(lvm_thin_lv_from_dm("vstor-no-such-vg", "lv", &lv),
			 -ENOENT);
	assert_null(lv.vg);
	assert_null(lv.uuid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid_split),
		cmocka_unit_test(test_uuid_split_refused),
		cmocka_unit_test(test_id_dashed),
		cmocka_unit_test(test_uuid_is_lv),
		cmocka_unit_test(test_thin_params),
		cmocka_unit_test(test_thin_params_refused),
		cmocka_unit_test(test_thin_lv_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
