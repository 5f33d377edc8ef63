/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lvmglue/lvm-json.c and lvm-name.c: lvm's JSON reports
 * read as untrusted input (wrong types, numbers that do not fit, missing
 * fields, names LVM would not allow, broken structure), LV names in
 * their three spellings, and the JSON vstor prints for an LV.
 */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "lvmglue/lvm.h"

#define UNUSED __attribute__((unused))

/* One LV entry as LVM2 2.03.16 prints it, with fields to override:
 * each override is "key", "raw JSON value" (NULL value: leave the field
 * out). */
static char *lv_entry(const char *const *over)
{
	static const char *const base[][2] = {
		{"vg_name", "\"vgt\""},
		{"lv_name", "\"lv0\""},
		{"lv_uuid", "\"iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-w4Jq3D\""},
		{"lv_attr", "\"-wi-a-----\""},
		{"lv_path", "\"/dev/vgt/lv0\""},
		{"lv_dm_path", "\"/dev/mapper/vgt-lv0\""},
		{"pool_lv", "\"\""},
		{"origin", "\"\""},
		{"lv_size", "\"8388608\""},
		{"lv_active", "\"active\""},
		{"lv_device_open", "\"\""},
		{"segtype", "\"linear\""},
		{"zero", "\"unknown\""},
		{"vg_extent_size", "\"4194304\""},
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool first = true;

	assert_non_null(f);
	fputc('{', f);
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		const char *val = base[i][1];
		bool drop = false;

		for (size_t j = 0; over && over[j]; j += 2)
			if (!strcmp(over[j], base[i][0])) {
				val = over[j + 1];
				drop = !val;
			}
		if (drop)
			continue;
		fprintf(f, "%s\"%s\":%s", first ? "" : ", ", base[i][0], val);
		first = false;
	}
	fputc('}', f);
	fclose(f);
	return buf;
}

static char *report(const char *entries)
{
	char *s;

	assert_true(asprintf(&s,
			     "  {\n  \"report\": [\n {\"lv\": [%s]}\n ]\n}\n",
			     entries) > 0);
	return s;
}

/* Parse one entry with overrides; returns the result, *err set. */
static int parse_one(const char *const *over, struct lvm_lv **lvs, size_t *n,
		     struct vs_error **err)
{
	char *e = lv_entry(over), *r = report(e);
	int ret = lvm_json_parse_lvs(r, "lvs", lvs, n, err);

	free(e);
	free(r);
	return ret;
}

/* The entry with `over` must be refused with an error mentioning
 * `needle`. */
static void refused(const char *const *over, const char *needle)
{
	struct vs_error *err = NULL;
	struct lvm_lv *lvs = NULL;
	size_t n = 7;
	int ret = parse_one(over, &lvs, &n, &err);

	if (ret >= 0)
		fail_msg("accepted an entry that should fail (%s)", needle);
	assert_null(lvs);
	assert_int_equal(n, 0);
	assert_non_null(err);
	if (!strstr(vs_error_msg(err), needle))
		fail_msg("error '%s' does not mention '%s'", vs_error_msg(err),
			 needle);
	vs_error_free(err);
}

static void test_real_report(void UNUSED **state)
{
	/* lvs output from the test VM: a linear origin, a classic
	 * snapshot, a thin pool, a thin LV and its thin snapshot, and a
	 * hidden LV (as -a would show it). */
	static const char text[] =
		"  {\n"
		"      \"report\": [\n"
		"          {\n"
		"              \"lv\": [\n"
		"                  {\"vg_name\":\"vgt\", "
		"\"lv_name\":\"csnap\", "
		"\"lv_uuid\":\"HVOtEA-AYwd-ausi-hKoi-FiqJ-5Ctt-rQadsO\", "
		"\"lv_attr\":\"swi-a-s---\", \"lv_path\":\"/dev/vgt/csnap\", "
		"\"lv_dm_path\":\"/dev/mapper/vgt-csnap\", \"pool_lv\":\"\", "
		"\"origin\":\"lv0\", \"lv_size\":\"4194304\", "
		"\"lv_active\":\"active\", \"lv_device_open\":\"\", "
		"\"segtype\":\"linear\", \"zero\":\"unknown\", "
		"\"vg_extent_size\":\"4194304\"},\n"
		"                  {\"vg_name\":\"vgt\", \"lv_name\":\"lv0\", "
		"\"lv_uuid\":\"iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-w4Jq3D\", "
		"\"lv_attr\":\"owi-a-s---\", \"lv_path\":\"/dev/vgt/lv0\", "
		"\"lv_dm_path\":\"/dev/mapper/vgt-lv0\", \"pool_lv\":\"\", "
		"\"origin\":\"\", \"lv_size\":\"8388608\", "
		"\"lv_active\":\"active\", \"lv_device_open\":\"open\", "
		"\"segtype\":\"linear\", \"zero\":\"unknown\", "
		"\"vg_extent_size\":\"4194304\"},\n"
		"                  {\"vg_name\":\"vgt\", "
		"\"lv_name\":\"[lvol0_pmspare]\", "
		"\"lv_uuid\":\"dgzwfo-6SeK-fwrR-FHcR-8pAg-edqW-CKIj8d\", "
		"\"lv_attr\":\"ewi-------\", \"lv_path\":\"\", "
		"\"lv_dm_path\":\"/dev/mapper/vgt-lvol0_pmspare\", "
		"\"pool_lv\":\"\", \"origin\":\"\", \"lv_size\":\"4194304\", "
		"\"lv_active\":\"\", \"lv_device_open\":\"unknown\", "
		"\"segtype\":\"linear\", \"zero\":\"unknown\", "
		"\"vg_extent_size\":\"4194304\"},\n"
		"                  {\"vg_name\":\"vgt\", \"lv_name\":\"pool\", "
		"\"lv_uuid\":\"jWiQFm-EOeY-mWUh-fqUc-okj9-hug2-5kFtF2\", "
		"\"lv_attr\":\"twi-aotz--\", \"lv_path\":\"\", "
		"\"lv_dm_path\":\"/dev/mapper/vgt-pool\", \"pool_lv\":\"\", "
		"\"origin\":\"\", \"lv_size\":\"16777216\", "
		"\"lv_active\":\"active\", \"lv_device_open\":\"open\", "
		"\"segtype\":\"thin-pool\", \"zero\":\"zero\", "
		"\"vg_extent_size\":\"4194304\"},\n"
		"                  {\"vg_name\":\"vgt\", "
		"\"lv_name\":\"snap1\", "
		"\"lv_uuid\":\"8M7mTM-7v2p-4nUe-46dV-HEUM-G3vB-vm04XD\", "
		"\"lv_attr\":\"Vwi---tz-k\", \"lv_path\":\"/dev/vgt/snap1\", "
		"\"lv_dm_path\":\"/dev/mapper/vgt-snap1\", "
		"\"pool_lv\":\"pool\", \"origin\":\"thin1\", "
		"\"lv_size\":\"33554432\", \"lv_active\":\"\", "
		"\"lv_device_open\":\"unknown\", \"segtype\":\"thin\", "
		"\"zero\":\"zero\", \"vg_extent_size\":\"4194304\"},\n"
		"                  {\"vg_name\":\"vgt\", "
		"\"lv_name\":\"thin1\", "
		"\"lv_uuid\":\"sDOKjw-K5Fz-ZtBq-ny3K-KWI3-obAp-XmZAqC\", "
		"\"lv_attr\":\"Vwi-a-tz--\", \"lv_path\":\"/dev/vgt/thin1\", "
		"\"lv_dm_path\":\"/dev/mapper/vgt-thin1\", "
		"\"pool_lv\":\"pool\", \"origin\":\"\", "
		"\"lv_size\":\"33554432\", \"lv_active\":\"active\", "
		"\"lv_device_open\":\"\", \"segtype\":\"thin\", "
		"\"zero\":\"zero\", \"vg_extent_size\":\"4194304\"}\n"
		"              ]\n"
		"          }\n"
		"      ]\n"
		"  }\n";
	struct vs_error *err = NULL;
	struct lvm_lv *lvs = NULL;
	size_t n = 0;

	assert_int_equal(lvm_json_parse_lvs(text, "lvs", &lvs, &n, &err), 0);
	assert_null(err);
	assert_int_equal(n, 5); /* the hidden LV is left out */

	assert_string_equal(lvs[0].name, "csnap");
	assert_true(lvs[0].snapshot);
	assert_false(lvs[0].thin);
	assert_string_equal(lvs[0].origin, "lv0");
	assert_null(lvs[0].pool);
	assert_string_equal(lvm_lv_type(&lvs[0]), "snapshot");
	assert_int_equal(lvs[0].size, 4194304);
	assert_int_equal(lvs[0].extent_size, 4194304);

	assert_string_equal(lvs[1].name, "lv0");
	assert_string_equal(lvs[1].vg, "vgt");
	assert_string_equal(lvs[1].path, "/dev/vgt/lv0");
	assert_string_equal(lvs[1].dm_path, "/dev/mapper/vgt-lv0");
	assert_string_equal(lvs[1].uuid,
			    "iWPsWe-4VJH-eU0v-cHfa-TXEy-4P2e-w4Jq3D");
	assert_string_equal(lvs[1].attr, "owi-a-s---");
	assert_true(lvs[1].active);
	assert_true(lvs[1].open);
	assert_false(lvs[1].snapshot);
	assert_null(lvs[1].origin);
	assert_string_equal(lvm_lv_type(&lvs[1]), "linear");

	assert_string_equal(lvs[2].name, "pool");
	assert_true(lvs[2].thin_pool);
	assert_true(lvs[2].zero);
	assert_string_equal(lvm_lv_type(&lvs[2]), "thin-pool");
	/* lvm prints no lv_path for a pool; vstor's own is there. */
	assert_string_equal(lvs[2].path, "/dev/vgt/pool");

	assert_string_equal(lvs[3].name, "snap1");
	assert_true(lvs[3].thin);
	assert_true(lvs[3].snapshot);
	assert_false(lvs[3].active);
	assert_false(lvs[3].open);
	assert_string_equal(lvs[3].pool, "pool");
	assert_string_equal(lvs[3].origin, "thin1");
	assert_string_equal(lvm_lv_type(&lvs[3]), "thin");

	assert_true(lvs[4].thin);
	assert_false(lvs[4].snapshot);
	assert_int_equal(lvs[4].size, 33554432);
	lvm_lv_free_array(lvs, n);
}

static void test_empty_and_json_std(void UNUSED **state)
{
	static const char *const as_numbers[] = {"lv_size", "8388608", NULL};
	static const char *const big[] = {"lv_size", "\"18446744073709551615\"",
					  NULL};
	static const char *const big_int[] = {"lv_size", "9223372036854775808",
					      NULL};
	struct vs_error *err = NULL;
	struct lvm_lv *lvs = NULL;
	size_t n = 9;

	/* No LVs: an empty array, and no "lv" at all (a log only). */
	assert_int_equal(lvm_json_parse_lvs("{\"report\":[{\"lv\":[]}]}", "lvs",
					    &lvs, &n, &err),
			 0);
	assert_int_equal(n, 0);
	lvm_lv_free_array(lvs, n);
	assert_int_equal(lvm_json_parse_lvs("{\"report\":[{\"log\":[]}]}",
					    "lvs", &lvs, &n, &err),
			 0);
	assert_int_equal(n, 0);
	lvm_lv_free_array(lvs, n);

	/* Later LVM versions (json_std) print numbers as numbers. */
	assert_int_equal(parse_one(as_numbers, &lvs, &n, &err), 0);
	assert_int_equal(lvs[0].size, 8388608);
	lvm_lv_free_array(lvs, n);
	/* The largest 64-bit value, as a string and beyond INT64_MAX as a
	 * JSON number. */
	assert_int_equal(parse_one(big, &lvs, &n, &err), 0);
	assert_true(lvs[0].size == UINT64_MAX);
	lvm_lv_free_array(lvs, n);
	assert_int_equal(parse_one(big_int, &lvs, &n, &err), 0);
	assert_true(lvs[0].size == 9223372036854775808ull);
	lvm_lv_free_array(lvs, n);
	assert_null(err);
}

static void test_bad_numbers(void UNUSED **state)
{
	static const char *const values[] = {
		"\"18446744073709551616\"", /* 2^64 */
		"\"99999999999999999999999\"",
		"\"-1\"",
		"\"12x\"",
		"\"\"",
		"\" 1\"",
		"\"0x10\"",
		"\"1e3\"",
		"\"1.5\"",
		"-5",
		"18446744073709551616", /* beyond uint64 as a JSON number */
		"1.5",
		"true",
		"null",
		"[1]",
		"{\"a\":1}",
		"\"4\\u00001\"", /* a NUL inside */
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *over[] = {"lv_size", values[i], NULL};

		refused(over, "lv_size");
	}
}

static void test_bad_extent_size(void UNUSED **state)
{
	static const char *const values[] = {"\"0\"", "\"256\"", "\"3000\"",
					     "\"4194305\""};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *over[] = {"vg_extent_size", values[i], NULL};

		refused(over, "vg_extent_size");
	}
}

static void test_wrong_types_and_missing(void UNUSED **state)
{
	static const char *const fields[] = {
		"vg_name", "lv_name",	     "lv_uuid",	       "lv_attr",
		"lv_path", "lv_dm_path",     "pool_lv",	       "origin",
		"lv_size", "lv_active",	     "lv_device_open", "segtype",
		"zero",	   "vg_extent_size",
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *missing[] = {fields[i], NULL, NULL};
		const char *number[] = {fields[i], "17", NULL};
		const char *object[] = {fields[i], "{}", NULL};

		refused(missing, fields[i]);
		if (strcmp(fields[i], "lv_size"))
			refused(number, fields[i]);
		refused(object, fields[i]);
	}
}

static void test_hostile_names(void UNUSED **state)
{
	static const char *const vg_bad[] = {
		"\"../etc\"", "\"-rf\"", "\"a/b\"", "\"vg\\n\"",    "\"\"",
		"\".\"",      "\"..\"",	 "\"v g\"", "\"v\\u00e9\"",
	};
	static const char *const lv_bad[] = {
		"\"lv_tmeta\"", "\"x_tdata\"", "\"snapshot\"",
		"\"pvmove\"",	"\"a/../b\"",  "\"-x\"",
	};

	for (size_t i = 0; i < sizeof(vg_bad) / sizeof(vg_bad[0]); i++) {
		const char *over[] = {"vg_name", vg_bad[i],    "lv_path",
				      "\"\"",	 "lv_dm_path", "\"\"",
				      NULL};

		refused(over, "VG name");
	}
	for (size_t i = 0; i < sizeof(lv_bad) / sizeof(lv_bad[0]); i++) {
		const char *over[] = {"lv_name", lv_bad[i],    "lv_path",
				      "\"\"",	 "lv_dm_path", "\"\"",
				      NULL};

		refused(over, "LV name");
	}
	{
		const char *over[] = {"pool_lv", "\"../x\"", NULL};

		refused(over, "pool_lv");
	}
	{
		const char *over[] = {"origin", "\"-o\"", NULL};

		refused(over, "origin");
	}
}

static void test_bad_attr_and_paths(void UNUSED **state)
{
	static const char *const short_attr[] = {"lv_attr", "\"-wi\"", NULL};
	static const char *const other_path[] = {"lv_path", "\"/tmp/evil\"",
						 NULL};
	static const char *const other_dm[] = {"lv_dm_path",
					       "\"/dev/mapper/other\"", NULL};
	char *longstr = malloc(6000), *over[3] = {"lv_uuid", longstr, NULL};

	refused(short_attr, "lv_attr");
	refused(other_path, "/tmp/evil");
	refused(other_dm, "/dev/mapper/other");
	assert_non_null(longstr);
	longstr[0] = '"';
	memset(longstr + 1, 'a', 5000);
	strcpy(longstr + 5001, "\"");
	refused((const char *const *)over, "lv_uuid");
	free(longstr);
}

/* Structure: not JSON, trailing text, too deep, wrong shapes. */
static void test_bad_structure(void UNUSED **state)
{
	static const char *const texts[] = {
		"",
		"not json",
		"{\"report\": [",
		"{\"report\": []} {\"report\": []}",
		"{\"report\": []} x",
		"[]",
		"{}",
		"{\"report\": {}}",
		"{\"report\": [1]}",
		"{\"report\": [{\"lv\": {}}]}",
		"{\"report\": [{\"lv\": [1]}]}",
		"{\"report\": [{\"lv\": [[]]}]}",
		/* nested deeper than any report */
		("{\"report\": [{\"lv\": "
		 "[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]}]}"),
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct vs_error *err = NULL;
		struct lvm_lv *lvs = NULL;
		size_t n = 3;

		if (lvm_json_parse_lvs(texts[i], "lvm lvs", &lvs, &n, &err) >=
		    0)
			fail_msg("accepted '%s'", texts[i]);
		assert_null(lvs);
		assert_int_equal(n, 0);
		assert_non_null(err);
		assert_non_null(strstr(vs_error_msg(err), "lvm lvs"));
		vs_error_free(err);
	}
}

static void test_vgs(void UNUSED **state)
{
	static const char good[] =
		"{\"report\": [{\"vg\": [{\"vg_name\":\"vgt\", "
		"\"vg_size\":\"62914560\", \"vg_free\":\"25165824\", "
		"\"vg_extent_size\":\"4194304\"}]}]}";
	static const char *const bad[] = {
		/* extent size 0, not a power of two, free > size */
		"{\"report\": [{\"vg\": [{\"vg_name\":\"v\", "
		"\"vg_size\":\"1\", "
		"\"vg_free\":\"0\", \"vg_extent_size\":\"0\"}]}]}",
		"{\"report\": [{\"vg\": [{\"vg_name\":\"v\", "
		"\"vg_size\":\"9\", "
		"\"vg_free\":\"0\", \"vg_extent_size\":\"3000\"}]}]}",
		"{\"report\": [{\"vg\": [{\"vg_name\":\"v\", "
		"\"vg_size\":\"1\", "
		"\"vg_free\":\"2\", \"vg_extent_size\":\"4096\"}]}]}",
		"{\"report\": [{\"vg\": [{\"vg_name\":\"v\", "
		"\"vg_free\":\"2\", \"vg_extent_size\":\"4096\"}]}]}",
		"{\"report\": [{\"vg\": [{\"vg_name\":\"../v\", "
		"\"vg_size\":\"1\", "
		"\"vg_free\":\"0\", \"vg_extent_size\":\"4096\"}]}]}",
		"{\"report\": [{\"vg\": [{\"vg_name\":\"v\", \"vg_size\":true, "
		"\"vg_free\":\"0\", \"vg_extent_size\":\"4096\"}]}]}",
	};
	struct vs_error *err = NULL;
	struct lvm_vg *vgs = NULL;
	size_t n = 0;

	assert_int_equal(lvm_json_parse_vgs(good, "vgs", &vgs, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(vgs[0].name, "vgt");
	assert_int_equal(vgs[0].size, 62914560);
	assert_int_equal(vgs[0].free, 25165824);
	assert_int_equal(vgs[0].extent_size, 4194304);
	lvm_vg_clear(&vgs[0]);
	free(vgs);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		vgs = NULL;
		if (lvm_json_parse_vgs(bad[i], "vgs", &vgs, &n, &err) >= 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_null(vgs);
		assert_non_null(err);
		vs_error_free(err);
	}
}

static void split_ok(const char *name, const char *vg, const char *lv)
{
	struct vs_error *err = NULL;
	char *a = NULL, *b = NULL;

	if (lvm_name_split(name, &a, &b, &err) < 0)
		fail_msg("'%s' refused: %s", name, vs_error_msg(err));
	assert_string_equal(a, vg);
	assert_string_equal(b, lv);
	free(a);
	free(b);
}

static void split_bad(const char *name, int code)
{
	struct vs_error *err = NULL;
	char *a = NULL, *b = NULL;
	int ret = lvm_name_split(name, &a, &b, &err);

	if (ret != -code)
		fail_msg("'%s' gave %d, expected %d", name, ret, -code);
	assert_null(a);
	assert_null(b);
	assert_non_null(err);
	vs_error_free(err);
}

static void test_names(void UNUSED **state)
{
	char longname[200];

	split_ok("vg0/web1", "vg0", "web1");
	split_ok("/dev/vg0/web1", "vg0", "web1");
	split_ok("/dev/mapper/vg0-web1", "vg0", "web1");
	split_ok("/dev/mapper/my--vg-my--lv", "my-vg", "my-lv");
	split_ok("/dev/mapper/a---b", "a-", "b");
	split_ok("XEN/domU.root+1", "XEN", "domU.root+1");

	split_bad("web1", ENOENT);
	split_bad("/dev/sda", ENOENT);
	split_bad("/dev/disk/by-id/x", ENOENT);
	split_bad("/tmp/x/y", ENOENT);
	split_bad("/dev/mapper/control", ENOENT);
	split_bad("/dev/mapper/a-b-c", ENOENT);
	split_bad("/dev/mapper/-b", ENOENT);
	split_bad("vg/", ENOENT);
	split_bad("/lv", ENOENT);
	split_bad("vg//lv", ENOENT);
	split_bad("vg/lv/x", ENOENT);
	split_bad("vg/-lv", EINVAL);
	split_bad("-vg/lv", EINVAL);
	split_bad("vg/l v", EINVAL);
	split_bad("vg/lv;rm", EINVAL);
	split_bad("vg/..", EINVAL);
	split_bad("vg/snapshot", EINVAL);
	split_bad("vg/root_tmeta", EINVAL);

	/* 127 characters fit, 128 do not; nor a dm name over 127. */
	memset(longname, 'a', sizeof(longname));
	longname[0] = 'v';
	longname[1] = '/';
	longname[2 + 127] = '\0';
	split_bad(longname, EINVAL);
	memset(longname, 'a', sizeof(longname));
	strcpy(longname, "v/");
	memset(longname + 2, 'b', 125);
	longname[127] = '\0';
	split_ok(longname, "v", longname + 2);
	memcpy(longname, "v-", 2); /* make it "v-/bbb...": too long in dm */
	longname[2] = '/';
	split_bad(longname, EINVAL);
}

static void test_to_json(void UNUSED **state)
{
	struct lvm_lv lv = {
		.vg = "vg-a",
		.name = "web1",
		.uuid = "u",
		.attr = "Vwi-aotz--",
		.path = "/dev/vg-a/web1",
		.dm_path = "/dev/mapper/vg--a-web1",
		.pool = "pool0",
		.size = 1ull << 40,
		.thin = true,
		.active = true,
		.open = true,
	};
	struct json_object *o = lvm_lv_to_json(&lv), *v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "size", &v));
	assert_true(json_object_get_uint64(v) == 1ull << 40);
	assert_true(json_object_object_get_ex(o, "type", &v));
	assert_string_equal(json_object_get_string(v), "thin");
	assert_true(json_object_object_get_ex(o, "origin", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "pool", &v));
	assert_string_equal(json_object_get_string(v), "pool0");
	assert_true(json_object_object_get_ex(o, "dm-path", &v));
	assert_string_equal(json_object_get_string(v),
			    "/dev/mapper/vg--a-web1");
	assert_true(json_object_object_get_ex(o, "open", &v));
	assert_true(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "thin-pool", &v));
	assert_false(json_object_get_boolean(v));
	assert_int_equal(json_object_object_length(o), 15);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_report),
		cmocka_unit_test(test_empty_and_json_std),
		cmocka_unit_test(test_bad_numbers),
		cmocka_unit_test(test_bad_extent_size),
		cmocka_unit_test(test_wrong_types_and_missing),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_bad_attr_and_paths),
		cmocka_unit_test(test_bad_structure),
		cmocka_unit_test(test_vgs),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_to_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
