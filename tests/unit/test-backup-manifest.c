/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lvmglue/manifest.c, lvmglue/checksum.c and the parser of
 * thin_delta's output (lvmglue/backup-thin.c): what a backup folder or a
 * tool hands back is untrusted, so most cases here are hostile.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "lvmglue/backup-priv.h"
#include "lvmglue/backup-walk.h"
#include "lvmglue/backup.h"
#include "lvmglue/checksum.h"
#include "lvmglue/manifest.h"

#define UNUSED __attribute__((unused))

static const char good[] =
	"{ \"format\": \"vstor-backup\", \"version\": 1,"
	"  \"name\": \"vg0-web1-20261122T035134Z-2\","
	"  \"source\": { \"vg\": \"vg0\", \"lv\": \"web1\", \"uuid\": \"abc\","
	"              \"type\": \"thin\", \"domain\": \"web\","
	"              \"size\": 200000 },"
	"  \"time\": \"2026-11-22T03:51:34.000000001Z\","
	"  \"time_ns\": 1795319494000000001, \"seq\": 2,"
	"  \"backing\": \"vg0-web1-20261122T035134Z\","
	"  \"method\": \"thin-delta\", \"hash\": \"xxh3-64\","
	"  \"cluster_size\": 65536, \"clusters\": 4,"
	"  \"image_checksum\": \"0x0123456789abcdef\","
	"  \"changed_clusters\": 3, \"zero_clusters\": 1,"
	"  \"thin_snapshot\": \"web1.vsbk-20261122T035134Z-2\","
	"  \"thin_snapshot_uuid\": \"xyz\" }";

static void parse_good(void **state UNUSED)
{
	struct vs_error *err = NULL;
	struct lvm_manifest m;
	char *text = NULL;
	struct lvm_manifest again;

	assert_int_equal(lvm_manifest_parse(good, strlen(good), "t", &m, &err),
			 0);
	assert_string_equal(m.vg, "vg0");
	assert_string_equal(m.lv, "web1");
	assert_string_equal(m.lv_type, "thin");
	assert_string_equal(m.domain, "web");
	assert_int_equal(m.size, 200000);
	assert_int_equal(m.seq, 2);
	assert_int_equal(m.clusters, 4);
	assert_int_equal(m.cluster_size, 65536);
	assert_true(m.image_sum == 0x0123456789abcdefull);
	assert_true(m.time_ns == 1795319494000000001ull);
	assert_string_equal(m.backing, "vg0-web1-20261122T035134Z");
	assert_string_equal(m.thin_snapshot_uuid, "xyz");

	/* What we write, we read back the same. */
	assert_int_equal(lvm_manifest_format(&m, &text, &err), 0);
	assert_int_equal(
		lvm_manifest_parse(text, strlen(text), "t2", &again, &err), 0);
	assert_string_equal(again.name, m.name);
	assert_true(again.image_sum == m.image_sum);
	assert_int_equal(again.changed, 3);
	assert_int_equal(again.zeroed, 1);
	assert_string_equal(again.method, "thin-delta");
	free(text);
	lvm_manifest_clear(&again);
	lvm_manifest_clear(&m);
}

/* Replace the first `from` in good[] by `to` and expect a failure whose
 * message holds `msg`. */
static void bad_case(const char *from, const char *to, const char *msg)
{
	char buf[4096];
	const char *p = strstr(good, from);
	struct vs_error *err = NULL;
	struct lvm_manifest m;
	int ret;

	assert_non_null(p);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - good), good, to,
		 p + strlen(from));
	ret = lvm_manifest_parse(buf, strlen(buf), "web1.json", &m, &err);
	if (ret == 0)
		fail_msg("accepted: %s -> %s", from, to);
	assert_non_null(err);
	if (!strstr(vs_error_msg(err), msg))
		fail_msg("'%s' lacks '%s'", vs_error_msg(err), msg);
	assert_non_null(strstr(vs_error_msg(err), "web1.json"));
	vs_error_free(err);
}

static void parse_hostile(void **state UNUSED)
{
	bad_case("\"vstor-backup\"", "\"other\"", "format");
	bad_case("\"version\": 1", "\"version\": 2", "version 2");
	bad_case("\"version\": 1", "\"version\": \"1\"", "not an integer");
	bad_case("\"name\": \"vg0-web1-20261122T035134Z-2\"",
		 "\"name\": \"../etc/passwd\"", "plain file");
	bad_case("\"backing\": \"vg0-web1-20261122T035134Z\"",
		 "\"backing\": \"..\"", "plain file");
	bad_case("\"backing\": \"vg0-web1-20261122T035134Z\"",
		 "\"backing\": \"a/b\"", "plain file");
	bad_case("\"backing\": \"vg0-web1-20261122T035134Z\"",
		 "\"backing\": null", "seq 0");
	bad_case("\"seq\": 2", "\"seq\": 0", "seq 0");
	bad_case("\"seq\": 2", "\"seq\": 99999999", "out of range");
	bad_case("\"cluster_size\": 65536", "\"cluster_size\": 65535",
		 "power of two");
	bad_case("\"cluster_size\": 65536", "\"cluster_size\": 0",
		 "power of two");
	bad_case("\"clusters\": 4", "\"clusters\": 5", "size / cluster_size");
	bad_case("\"size\": 200000", "\"size\": -5", "out of range");
	bad_case("\"size\": 200000", "\"size\": 99999999999999999999",
		 "out of range");
	bad_case("\"size\": 200000", "\"size\": 0", "zero");
	bad_case("\"size\": 200000", "\"size\": 2.5", "not an integer");
	bad_case("\"0x0123456789abcdef\"", "\"0x0123\"", "hex");
	bad_case("\"0x0123456789abcdef\"", "\"0x0123456789ABCDEF\"", "hex");
	bad_case("\"0x0123456789abcdef\"", "81985529216486895", "not a string");
	bad_case("\"changed_clusters\": 3", "\"changed_clusters\": 5",
		 "more than");
	bad_case("\"zero_clusters\": 1", "\"zero_clusters\": 4", "more than");
	bad_case("\"xxh3-64\"", "\"md5\"", "md5");
	bad_case("\"thin-delta\"", "\"magic\"", "method");
	bad_case("\"type\": \"thin\"", "\"type\": \"raid1\"", "linear");
	bad_case("\"uuid\": \"abc\"", "\"uuid\": \"\"", "empty");
	bad_case("\"thin_snapshot_uuid\": \"xyz\"",
		 "\"thin_snapshot_uuid\": null", "together");
	bad_case("\"lv\": \"web1\"", "\"lv\": 7", "not a string");
	bad_case("\"source\": {", "\"source\": 3, \"x\": {", "source");
	bad_case("\"time_ns\": 1795319494000000001,", "", "time_ns");
	bad_case("\"lv\": \"web1\"", "\"lv\": \"we\\u0000b1\"", "NUL");
}

static void parse_not_json(void **state UNUSED)
{
	static const char *const texts[] = {
		"",
		"{",
		"[]",
		"null",
		"{\"format\": \"vstor-backup\"",
		"{}x",
		"{} {}",
		"\"x\"",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct vs_error *err = NULL;
		struct lvm_manifest m;

		assert_true(lvm_manifest_parse(texts[i], strlen(texts[i]),
					       "x.json", &m, &err) < 0);
		assert_non_null(err);
		vs_error_free(err);
	}
}

static void parse_deep(void **state UNUSED)
{
	/* Deep nesting must not recurse without bound. */
	size_t n = 100000;
	char *s = malloc(2 * n + 1);
	struct vs_error *err = NULL;
	struct lvm_manifest m;

	memset(s, '[', n);
	memset(s + n, ']', n);
	s[2 * n] = 0;
	assert_true(lvm_manifest_parse(s, 2 * n, "deep.json", &m, &err) < 0);
	vs_error_free(err);
	free(s);
}

static void names(void **state UNUSED)
{
	char big[300];

	assert_true(lvm_manifest_name_ok("vg0-web1-20261122T035134Z"));
	assert_false(lvm_manifest_name_ok(""));
	assert_false(lvm_manifest_name_ok("."));
	assert_false(lvm_manifest_name_ok(".."));
	assert_false(lvm_manifest_name_ok("a/b"));
	assert_false(lvm_manifest_name_ok("a\nb"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_false(lvm_manifest_name_ok(big));
}

/* A .sums file image for m with the given hashes. */
static size_t make_sums(uint8_t *buf, const struct lvm_manifest *m,
			const uint64_t *sums)
{
	uint32_t v32;
	uint64_t v64;

	memcpy(buf, "VSTORSUM", 8);
	v32 = htole32(1);
	memcpy(buf + 8, &v32, 4);
	v32 = htole32(m->cluster_size);
	memcpy(buf + 12, &v32, 4);
	v64 = htole64(m->clusters);
	memcpy(buf + 16, &v64, 8);
	memset(buf + 24, 0, 8);
	for (uint64_t i = 0; i < m->clusters; i++) {
		v64 = htole64(sums[i]);
		memcpy(buf + 32 + 8 * i, &v64, 8);
	}
	return 32 + 8 * m->clusters;
}

static void sums_file(void **state UNUSED)
{
	uint64_t s[4] = {1, 2, 3, 0xffffffffffffffffull}, *out = NULL;
	struct lvm_manifest m = {.cluster_size = 65536, .clusters = 4};
	struct vs_error *err = NULL;
	uint8_t buf[128];
	size_t len;

	m.image_sum = lvm_sum_image(s, 4);
	len = make_sums(buf, &m, s);
	assert_int_equal(lvm_sums_parse(buf, len, "s", &m, &out, &err), 0);
	assert_memory_equal(out, s, sizeof(s));
	free(out);

	/* Truncated, extended, another count, another magic, a flipped
	 * hash: each refused. */
	assert_true(lvm_sums_parse(buf, len - 1, "s", &m, &out, &err) < 0);
	vs_error_free(err), err = NULL;
	assert_true(lvm_sums_parse(buf, 20, "s", &m, &out, &err) < 0);
	vs_error_free(err), err = NULL;
	buf[16] = 5;
	assert_true(lvm_sums_parse(buf, len, "s", &m, &out, &err) < 0);
	assert_non_null(strstr(vs_error_msg(err), "manifest says"));
	vs_error_free(err), err = NULL;
	buf[16] = 4;
	buf[40] ^= 1;
	assert_true(lvm_sums_parse(buf, len, "s", &m, &out, &err) < 0);
	assert_non_null(strstr(vs_error_msg(err), "image checksum"));
	vs_error_free(err), err = NULL;
	buf[40] ^= 1;
	buf[0] = 'X';
	assert_true(lvm_sums_parse(buf, len, "s", &m, &out, &err) < 0);
	vs_error_free(err), err = NULL;

	/* A count that would overflow a size computation. */
	m.clusters = UINT64_MAX / 4;
	buf[0] = 'V';
	{
		uint64_t v = htole64(m.clusters);

		memcpy(buf + 16, &v, 8);
	}
	assert_true(lvm_sums_parse(buf, len, "s", &m, &out, &err) < 0);
	vs_error_free(err);
}

static void checksums(void **state UNUSED)
{
	static uint8_t zero[65536 + 100];
	uint64_t a[2] = {1, 2}, b[2] = {2, 1};

	assert_true(lvm_sum_zero(65536) == lvm_sum(zero, 65536));
	assert_true(lvm_sum_zero(512) == lvm_sum(zero, 512));
	assert_true(lvm_sum_zero(65636) == lvm_sum(zero, 65636));
	assert_true(lvm_sum_image(a, 2) != lvm_sum_image(b, 2));
	zero[7] = 1;
	assert_true(lvm_sum(zero, 65536) != lvm_sum_zero(65536));
	zero[7] = 0;
}

static const char delta[] =
	"<superblock uuid=\"\" time=\"2\" transaction=\"3\" "
	"data_block_size=\"128\" nr_data_blocks=\"0\">\n"
	"  <diff left=\"2\" right=\"3\">\n"
	"    <left_only begin=\"0\" length=\"1\"/>\n"
	"    <same begin=\"1\" length=\"2\"/>\n"
	"    <different begin=\"3\" length=\"2\"/>\n"
	"    <same begin=\"5\" length=\"59\"/>\n"
	"    <right_only begin=\"200\" length=\"1\"/>\n"
	"  </diff>\n"
	"</superblock>\n";

static void thin_delta_good(void **state UNUSED)
{
	uint8_t map[64] = {0};
	struct vs_error *err = NULL;

	assert_int_equal(lvm_thin_delta_parse(delta, strlen(delta), "td", 512,
					      map, &err),
			 0);
	for (uint64_t i = 0; i < 512; i++) {
		bool want = i == 0 || i == 3 || i == 4 || i == 200;

		if (lvm_bit(map, i) != want)
			fail_msg("cluster %llu", (unsigned long long)i);
	}

	/* Blocks of 256 sectors are two clusters each. */
	static const char big[] =
		"<superblock data_block_size=\"256\"><diff left=\"1\" "
		"right=\"2\"><different begin=\"1\" length=\"1\"/></diff>"
		"</superblock>";
	memset(map, 0, sizeof(map));
	assert_int_equal(
		lvm_thin_delta_parse(big, strlen(big), "td", 512, map, &err),
		0);
	assert_true(lvm_bit(map, 2) && lvm_bit(map, 3) && !lvm_bit(map, 1) &&
		    !lvm_bit(map, 4));
}

static void thin_delta_bad(const char *xml, const char *msg)
{
	uint8_t map[64] = {0};
	struct vs_error *err = NULL;

	if (lvm_thin_delta_parse(xml, strlen(xml), "thin_delta", 512, map,
				 &err) == 0)
		fail_msg("accepted: %s", xml);
	if (!strstr(vs_error_msg(err), msg))
		fail_msg("'%s' lacks '%s'", vs_error_msg(err), msg);
	vs_error_free(err);
}

static void thin_delta_hostile(void **state UNUSED)
{
#define SB  "<superblock data_block_size=\"128\"><diff left=\"1\" right=\"2\">"
#define END "</diff></superblock>"
	thin_delta_bad(SB "<different begin=\"512\" length=\"1\"/>" END,
		       "past the end");
	thin_delta_bad(SB "<different begin=\"500\" length=\"13\"/>" END,
		       "past the end");
	thin_delta_bad(SB "<different begin=\"18446744073709551615\" "
			  "length=\"1\"/>" END,
		       "begin and length");
	thin_delta_bad(SB "<different begin=\"99999999999999999999999\" "
			  "length=\"1\"/>" END,
		       "malformed");
	thin_delta_bad(SB "<different begin=\"-1\" length=\"1\"/>" END,
		       "malformed");
	thin_delta_bad(SB "<different begin=\"1\" length=\"0\"/>" END,
		       "begin and length");
	thin_delta_bad(SB "<different begin=\"1\"/>" END, "begin and length");
	thin_delta_bad(SB "<different><range begin=\"1\" length=\"1\"/>"
			  "</different>" END,
		       "without a valid");
	thin_delta_bad("<superblock><diff left=\"1\" right=\"2\"></diff>"
		       "</superblock>",
		       "data_block_size");
	thin_delta_bad("<superblock data_block_size=\"100\"><diff></diff>"
		       "</superblock>",
		       "data_block_size");
	thin_delta_bad(SB "<different begin=\"1\" length=\"1\"/>",
		       "incomplete");
	thin_delta_bad(SB END "<x/>", "after");
	thin_delta_bad("", "incomplete");
	thin_delta_bad(SB "<different begin=\"1 length=\"1\"/>" END,
		       "malformed");
	thin_delta_bad(SB "<different begin=\"1\" length=\"1\"", "malformed");
	thin_delta_bad(SB "<bogus/>" END, "unexpected");
	thin_delta_bad("<diff></diff>", "unexpected");
#undef SB
#undef END
}

static void cow_size(void **state UNUSED)
{
	const uint64_t M = 1 << 20, E = 4 * M;

	/* Room for the whole LV plus 1/32, in extents. */
	assert_int_equal(lvm_backup_cow_size(256 * M, 10000 * M, E), 264 * M);
	/* At most half the free space... */
	assert_int_equal(lvm_backup_cow_size(256 * M, 200 * M, E), 100 * M);
	/* ...and refused below 1/8 of the LV. */
	assert_int_equal(lvm_backup_cow_size(256 * M, 60 * M, E), 0);
	assert_int_equal(lvm_backup_cow_size(256 * M, 0, E), 0);
	assert_int_equal(lvm_backup_cow_size(UINT64_MAX, UINT64_MAX, E), 0);
	assert_int_equal(lvm_backup_cow_size(256 * M, 10000 * M, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_good),
		cmocka_unit_test(parse_hostile),
		cmocka_unit_test(parse_not_json),
		cmocka_unit_test(parse_deep),
		cmocka_unit_test(names),
		cmocka_unit_test(sums_file),
		cmocka_unit_test(checksums),
		cmocka_unit_test(thin_delta_good),
		cmocka_unit_test(thin_delta_hostile),
		cmocka_unit_test(cow_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
