/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for common/: sizes, option strings, iovec helpers, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/iov.h"
#include "common/opts.h"
#include "common/size.h"

static void size_ok(const char *s, uint64_t want)
{
	struct vs_error *err = NULL;
	uint64_t got = 0;

	assert_int_equal(vs_parse_size(s, &got, "size", &err), 0);
	assert_null(err);
	assert_int_equal(got, want);
}

static void size_bad(const char *s, int code, const char *needle)
{
	struct vs_error *err = NULL;
	uint64_t got = 12345;

	assert_int_equal(vs_parse_size(s, &got, "image size", &err), -code);
	assert_non_null(err);
	assert_non_null(strstr(vs_error_msg(err), needle));
	assert_int_equal(got, 12345);
	vs_error_free(err);
}

static void test_size_parse(void **state)
{
	size_ok("0", 0);
	size_ok("512", 512);
	size_ok("1k", 1024);
	size_ok("1K", 1024);
	size_ok("10M", 10ull << 20);
	size_ok("1G", 1ull << 30);
	size_ok("2T", 2ull << 40);
	size_ok("1P", 1ull << 50);
	size_ok("7E", 7ull << 60);
	size_ok("1.5G", 3ull << 29);
	size_ok("0.5k", 512);
	size_ok("100B", 100);
	size_ok("18446744073709551615", UINT64_MAX);
}

static void test_size_errors(void **state)
{
	size_bad("", EINVAL, "empty");
	size_bad("abc", EINVAL, "'abc' is not a size");
	size_bad("-1", EINVAL, "'-1'");
	size_bad("10X", EINVAL, "'10X'");
	size_bad("10GB", EINVAL, "'10GB'");
	size_bad("1.", EINVAL, "'1.'");
	size_bad("1.5", EINVAL, "'1.5'");
	size_bad("16E", ERANGE, "too large");
	size_bad("18446744073709551616", ERANGE, "too large");
	size_bad("0.3k", EINVAL, "whole number of bytes");
}

static void test_format_size(void **state)
{
	char buf[32];

	vs_format_size(512, buf, sizeof(buf));
	assert_string_equal(buf, "512 B");
	vs_format_size(1ull << 30, buf, sizeof(buf));
	assert_string_equal(buf, "1 GiB");
	vs_format_size(3ull << 29, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 GiB");
}

static void test_opts(void **state)
{
	struct vs_error *err = NULL;
	struct vs_opts *o = NULL;
	uint64_t sz = 0;
	bool b = false;

	assert_int_equal(vs_opts_parse("cluster_size=64k,lazy=on,name=a,,b",
				       "qcow2 option", &o, &err),
			 0);
	assert_int_equal(vs_opts_get_size(o, "cluster_size", &sz, &err), 0);
	assert_int_equal(sz, 65536);
	assert_int_equal(vs_opts_get_bool(o, "lazy", &b, &err), 0);
	assert_true(b);
	assert_string_equal(vs_opts_get(o, "name"), "a,b");
	assert_null(vs_opts_get(o, "missing"));
	assert_int_equal(vs_opts_check_used(o, &err), 0);
	vs_opts_free(o);

	assert_int_equal(
		vs_opts_parse("a=1,b=2", "raw format option", &o, &err), 0);
	vs_opts_get(o, "a");
	assert_int_equal(vs_opts_check_used(o, &err), -EINVAL);
	assert_string_equal(vs_error_msg(err), "unknown raw format option 'b'");
	vs_error_free(err);
	err = NULL;
	vs_opts_free(o);

	assert_int_equal(vs_opts_parse("a=1,a=2", "x", &o, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "given twice"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(vs_opts_parse("novalue", "x", &o, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "'novalue'"));
	vs_error_free(err);
	err = NULL;

	assert_int_equal(vs_opts_parse("flag=maybe", "x", &o, &err), 0);
	assert_int_equal(vs_opts_get_bool(o, "flag", &b, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "expected on or off"));
	vs_error_free(err);
	vs_opts_free(o);
}

static void test_iov(void **state)
{
	char a[5] = "abcde", b[3] = "fgh", c[4] = "ijkl", out[12];
	struct iovec iov[3] = {{a, 5}, {b, 3}, {c, 4}}, sl[3];
	int n;

	assert_int_equal(vs_iov_size(iov, 3), 12);
	assert_int_equal(vs_iov_to_buf(iov, 3, 3, out, 6), 6);
	assert_memory_equal(out, "defghi", 6);
	n = vs_iov_slice(sl, 3, iov, 3, 4, 5);
	assert_int_equal(n, 3);
	assert_ptr_equal(sl[0].iov_base, a + 4);
	assert_int_equal(sl[0].iov_len, 1);
	assert_int_equal(sl[2].iov_len, 1);
	assert_int_equal(vs_iov_slice(sl, 1, iov, 3, 4, 5), -1);
	assert_int_equal(vs_iov_slice(sl, 3, iov, 3, 10, 5), -1);
	assert_int_equal(vs_iov_from_buf(iov, 3, 7, "XY", 2), 2);
	assert_memory_equal(b, "fgX", 3);
	assert_int_equal(c[0], 'Y');
	assert_int_equal(vs_iov_memset(iov, 3, 0, 0, 12), 12);
	assert_true(vs_iov_is_zero(iov, 3));
	c[3] = 1;
	assert_false(vs_iov_is_zero(iov, 3));
}

static void test_buf_is_zero(void **state)
{
	static char big[65536];

	assert_true(vs_buf_is_zero(big, sizeof(big)));
	big[65535] = 1;
	assert_false(vs_buf_is_zero(big, sizeof(big)));
	big[65535] = 0;
	big[3] = 1;
	assert_false(vs_buf_is_zero(big, 10));
	assert_true(vs_buf_is_zero(big + 4, 10));
}

static void test_error_first_wins(void **state)
{
	struct vs_error *err = NULL;

	assert_int_equal(vs_error_set(&err, ENOENT, "inner %d", 1), -ENOENT);
	assert_int_equal(vs_error_set(&err, EIO, "outer"), -EIO);
	vs_error_prefix(&err, "disk %s", "xvda");
	assert_string_equal(vs_error_msg(err), "disk xvda: inner 1");
	assert_int_equal(err->code, ENOENT);
	vs_error_free(err);
	err = NULL;
	assert_int_equal(vs_error_set_errno(&err, -EACCES, "f"), -EACCES);
	assert_string_equal(vs_error_msg(err), "f: Permission denied");
	vs_error_free(err);
	assert_int_equal(vs_error_set(NULL, EIO, "nobody listens"), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_parse),
		cmocka_unit_test(test_size_errors),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_iov),
		cmocka_unit_test(test_buf_is_zero),
		cmocka_unit_test(test_error_first_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
