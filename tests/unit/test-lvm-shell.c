/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lvmglue/lvm-shell.c: one lvm process for several
 * commands.  The real `lvm` (the build hosts have no device-mapper, so
 * only commands that fail or touch nothing) checks the protocol against
 * LVM2 itself; stand-in `lvm` scripts put first in PATH play a shell
 * that dies, one that answers garbage, one that reports a command's
 * failure, and one that answers for another command: the first two must
 * leave the command to a process of its own, the last two must fail
 * with lvm's message or say the outcome is unknown.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "lvmglue/lvm-priv.h"

#define UNUSED	     __attribute__((unused))
#define PROFILE_PATH "/etc/lvm/profile/lvmdbusd.profile"

static char dir[] = "/tmp/vstor-test-lvm-shell.XXXXXX";
static char *old_path;

static int setup(UNUSED void **state)
{
	const char *p = getenv("PATH");

	if (!mkdtemp(dir))
		return -1;
	old_path = strdup(p ? p : "/usr/bin:/bin");
	return old_path ? 0 : -1;
}

static int teardown(UNUSED void **state)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/lvm", dir);
	unlink(path);
	rmdir(dir);
	setenv("PATH", old_path, 1);
	free(old_path);
	return 0;
}

/* A stand-in lvm: `body` runs as the shell (no arguments); with
 * arguments it is `lvm COMMAND` run on its own and prints "alone". */
static void fake_lvm(const char *body)
{
	char path[128], *newpath = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/lvm", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"#!/bin/sh\n"
		"if [ $# -gt 0 ]; then echo alone; exit 0; fi\n"
		"%s\n",
		body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0755), 0);
	assert_true(asprintf(&newpath, "%s:%s", dir, old_path) > 0);
	setenv("PATH", newpath, 1);
	free(newpath);
}

static void need_profile(void)
{
	/* Without it the shell is never started: nothing to test. */
	if (access(PROFILE_PATH, R_OK) < 0) {
		fprintf(stderr, "# skip: no %s (Debian package lvm2)\n",
			PROFILE_PATH);
		skip();
	}
}

static void test_real_lvm(UNUSED void **state)
{
	const char *version[] = {"version", NULL};
	const char *rm[] = {"lvremove", "--yes", "-q", "vstor-unit-no-vg/lv",
			    NULL};
	const char *spaced[] = {"lvremove", "--yes", "vg/a b", NULL};
	struct vs_error *err = NULL;
	struct lvm_shell *sh;
	char *lvm;

	need_profile();
	setenv("PATH", old_path, 1);
	lvm = lvm_binary();
	if (!lvm) {
		fprintf(stderr, "# skip: no lvm (Debian package lvm2)\n");
		skip();
	}
	free(lvm);
	sh = lvm_shell_start();
	assert_non_null(sh);
	assert_int_equal(lvm_shell_run(sh, version, &err), 0);
	assert_null(err);
	/* A failure comes back with lvm's own words (from lastlog). */
	assert_int_equal(lvm_shell_run(sh, rm, &err), -EIO);
	assert_non_null(err);
	assert_non_null(strstr(vs_error_msg(err), "lvm lvremove failed: "));
	assert_non_null(strstr(vs_error_msg(err), "vstor-unit-no-vg"));
	vs_error_free(err);
	err = NULL;
	/* An argument the shell would split is not sent. */
	assert_int_equal(lvm_shell_run(sh, spaced, &err), -ENOTSUP);
	assert_null(err);
	/* The shell still works after all that. */
	assert_int_equal(lvm_shell_run(sh, version, &err), 0);
	lvm_shell_end(sh);
}

/* The shell ends at once: the command runs in a process of its own. */
static void test_shell_dies(UNUSED void **state)
{
	const char *version[] = {"version", NULL};
	struct vs_error *err = NULL;
	struct lvm_shell *sh;

	need_profile();
	fake_lvm("exit 3");
	sh = lvm_shell_start();
	assert_non_null(sh);
	assert_int_equal(lvm_shell_run(sh, version, &err), -ENOTSUP);
	assert_null(err);
	assert_int_equal(lvm_run_in(sh, version, &err), 0);
	assert_null(err);
	lvm_shell_end(sh);
}

/* Not the JSON log: the same. */
static void test_shell_garbage(UNUSED void **state)
{
	const char *version[] = {"version", NULL};
	struct vs_error *err = NULL;
	struct lvm_shell *sh;

	need_profile();
	fake_lvm("read l; echo 'lvm> not json {' >&3; read l");
	sh = lvm_shell_start();
	assert_non_null(sh);
	assert_int_equal(lvm_run_in(sh, version, &err), 0);
	assert_null(err);
	lvm_shell_end(sh);
}

#define STATUS(cmd, what)                                               \
	"{\"log\":[{\"log_type\":\"status\",\"log_context\":\"shell\"," \
	"\"log_object_type\":\"cmd\",\"log_object_name\":\"" cmd "\","  \
	"\"log_message\":\"" what "\"}]}"

/* A command that fails: its error messages, from lastlog. */
static void test_command_fails(UNUSED void **state)
{
	const char *rm[] = {"lvremove", "--yes", "-q", "vg/x", NULL};
	struct vs_error *err = NULL;
	struct lvm_shell *sh;

	need_profile();
	fake_lvm(
		"while read -r cmd rest; do case $cmd in\n"
		"version) echo '" STATUS(
			"version",
			"success") "' >&3 ;;\n"
				   "lastlog) echo "
				   "'{\"log\":[{\"log_type\":\"error\","
				   "\"log_message\":\"Logical volume vg/x in "
				   "use.\"},"
				   "{\"log_type\":\"print\",\"log_message\":"
				   "\"hello\"}]}' >&3 "
				   ";;\n"
				   "*) printf '%s\\n  ' '" STATUS(
					   "lvremove", "failure") "' >&3 "
								  ";;\n"
								  "esac; done");
	sh = lvm_shell_start();
	assert_non_null(sh);
	assert_int_equal(lvm_run_in(sh, rm, &err), -EIO);
	assert_non_null(err);
	assert_string_equal(vs_error_msg(err),
			    "lvm lvremove failed: Logical volume vg/x in use.");
	vs_error_free(err);
	err = NULL;
	/* The bytes after a reply are kept for the next one. */
	assert_int_equal(lvm_run_in(sh, rm, &err), -EIO);
	vs_error_free(err);
	lvm_shell_end(sh);
}

/* A reply about another command: the outcome is unknown, an error, and
 * the shell is not used again (the next command runs on its own). */
static void test_wrong_reply(UNUSED void **state)
{
	const char *rm[] = {"lvremove", "--yes", "-q", "vg/x", NULL};
	struct vs_error *err = NULL;
	struct lvm_shell *sh;

	need_profile();
	fake_lvm("while read -r cmd rest; do case $cmd in\n"
		 "version) echo '" STATUS(
			 "version",
			 "success") "' >&3 ;;\n"
				    "*) echo '" STATUS("lvcreate",
						       "success") "' >&3 ;;\n"
								  "esac; done");
	sh = lvm_shell_start();
	assert_non_null(sh);
	assert_int_equal(lvm_run_in(sh, rm, &err), -EIO);
	assert_non_null(err);
	assert_non_null(strstr(vs_error_msg(err), "outcome is unknown"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(lvm_shell_run(sh, rm, &err), -ENOTSUP);
	assert_int_equal(lvm_run_in(sh, rm, &err), 0); /* "alone" */
	lvm_shell_end(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_lvm),
		cmocka_unit_test(test_shell_dies),
		cmocka_unit_test(test_shell_garbage),
		cmocka_unit_test(test_command_fails),
		cmocka_unit_test(test_wrong_reply),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
