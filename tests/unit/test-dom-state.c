/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the domain state folder (hypervisor/state.c), the
 * processes found again by pid and start time (hypervisor/proc.c) and
 * QEMU's command line (hypervisor/qemu-argv.c).  A record read back is
 * untrusted input: damaged ones must be refused with the file's name.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/error.h"
#include "hypervisor/config.h"
#include "hypervisor/domain-priv.h"
#include "hypervisor/state.h"

#define UNUSED __attribute__((unused))

static char dir[] = "/tmp/vstor-dom-state.XXXXXX";

static int setup(void **state UNUSED)
{
	if (!mkdtemp(dir))
		return -1;
	setenv("VSTOR_STATE_DIR", dir, 1);
	return 0;
}

static int teardown(void **state UNUSED)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *leaf, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, leaf);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct dom_record *new_record(const char *name, unsigned domid)
{
	static const char cfgtext[] = "kernel = \"/boot/vmlinuz\"\n"
				      "memory = 64\nvcpus = 2\n"
				      "extra = \"console=ttyS0 a,b\"\n";
	struct dom_record *rec = calloc(1, sizeof(*rec));
	struct vs_error *err = NULL;
	char override[64], *ov = override;

	assert_non_null(rec);
	snprintf(override, sizeof(override), "name=\"%s\"", name);
	assert_int_equal(dom_config_parse_text(cfgtext, "t.cfg", &ov, 1,
					       &rec->cfg, &err),
			 0);
	rec->name = strdup(name);
	rec->domid = domid;
	assert_true(asprintf(&rec->rundir, "%s/run/%u", dir, domid) > 0);
	return rec;
}

static void test_domid(void **state UNUSED)
{
	struct vs_error *err = NULL;
	unsigned id = 0;
	int lockfd = dom_state_lock(&err);

	assert_true(lockfd >= 0);
	assert_int_equal(dom_domid_alloc(&id, &err), 0);
	assert_int_equal(id, 1);
	assert_int_equal(dom_domid_alloc(&id, &err), 0);
	assert_int_equal(id, 2);
	/* The counter wraps after the last ID. */
	write_file("next-domid", "32767\n");
	assert_int_equal(dom_domid_alloc(&id, &err), 0);
	assert_int_equal(id, DOM_DOMID_MAX);
	assert_int_equal(dom_domid_alloc(&id, &err), 0);
	assert_int_equal(id, 1);
	/* A damaged counter is an error that names the file. */
	write_file("next-domid", "12x\n");
	assert_int_equal(dom_domid_alloc(&id, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "next-domid"));
	assert_non_null(strstr(vs_error_msg(err), "12x"));
	vs_error_free(err);
	err = NULL;
	write_file("next-domid", "0\n");
	assert_int_equal(dom_domid_alloc(&id, &err), -EINVAL);
	vs_error_free(err);
	write_file("next-domid", "5\n");
	dom_state_unlock(lockfd);
}

static void test_round_trip(void **state UNUSED)
{
	struct dom_record *rec = new_record("web1", 7), *back = NULL;
	struct dom_rec_disk d = {.spec = "raw:/a.img,xvda,w",
				 .vdev = "xvda",
				 .socket = "/run/7/xvda.sock",
				 .dev = 2049,
				 .ino = 1234567890123ull};
	struct dom_rec_disk cd = {.spec = "/dev/null,hdc:cdrom,r",
				  .vdev = "hdc",
				  .readonly = true,
				  .empty = true};
	struct vs_error *err = NULL;
	char **names = NULL;

	rec->state = DOM_STATE_PAUSED;
	rec->created = 1795319494;
	rec->qemu = (struct dom_proc){123, 456};
	rec->serve = (struct dom_proc){124, 457};
	rec->monitor = (struct dom_proc){125, UINT64_MAX - 1};
	rec->reboot_requested = true;
	rec->restarts = 3;
	assert_int_equal(dom_record_add_disk(rec, &d), 0);
	assert_int_equal(dom_record_add_disk(rec, &cd), 0);
	assert_int_equal(dom_record_save(rec, &err), 0);
	assert_int_equal(dom_record_load("web1", &back, &err), 0);
	assert_string_equal(back->name, "web1");
	assert_int_equal(back->domid, 7);
	assert_int_equal(back->state, DOM_STATE_PAUSED);
	assert_int_equal(back->created, 1795319494);
	assert_int_equal(back->qemu.pid, 123);
	assert_int_equal(back->serve.start, 457);
	assert_true(back->monitor.start == UINT64_MAX - 1);
	assert_true(back->reboot_requested);
	assert_int_equal(back->restarts, 3);
	assert_int_equal(back->n_disks, 2);
	assert_string_equal(back->disks[0].socket, "/run/7/xvda.sock");
	assert_true(back->disks[0].ino == 1234567890123ull);
	assert_false(back->disks[0].readonly);
	assert_null(back->disks[1].socket);
	assert_true(back->disks[1].empty && back->disks[1].readonly);
	assert_string_equal(back->cfg->cmdline, rec->cfg->cmdline);
	assert_int_equal(back->cfg->vcpus, 2);
	assert_true(dom_record_remove_disk(back, "xvda"));
	assert_false(dom_record_remove_disk(back, "xvda"));
	assert_string_equal(back->disks[0].vdev, "hdc");
	assert_int_equal(dom_record_names(&names, &err), 0);
	assert_string_equal(names[0], "web1");
	assert_null(names[1]);
	dom_names_free(names);
	assert_int_equal(dom_record_remove("web1", &err), 0);
	{
		struct dom_record *none = NULL;

		assert_int_equal(dom_record_load("web1", &none, &err), -ENOENT);
		assert_null(none);
	}
	assert_non_null(strstr(vs_error_msg(err), "no domain 'web1'"));
	vs_error_free(err);
	dom_record_free(back);
	dom_record_free(rec);
}

/* Records that are damaged or hostile: each is refused, naming the
 * file, and a listing skips it. */
static void test_damaged(void **state UNUSED)
{
	static const char *const bad[] = {
		"not json",
		"[1, 2]",
		"{\"name\": \"bad\"}",
		/* a negative pid */
		"{\"name\":\"bad\",\"domid\":1,\"state\":\"running\","
		"\"created\":1,"
		"\"rundir\":\"/"
		"r\",\"processes\":{\"qemu\":{\"pid\":-5,\"start\":1},"
		"\"serve\":{\"pid\":1,\"start\":1},\"monitor\":{\"pid\":1,"
		"\"start\":1}},"
		"\"disks\":[],\"reboot-requested\":false,\"restarts\":0,"
		"\"config\":{}}",
		/* a state vstor never writes */
		"{\"name\":\"bad\",\"domid\":1,\"state\":\"weird\"}",
		/* a domain ID out of range */
		"{\"name\":\"bad\",\"domid\":99999,\"state\":\"running\"}",
		/* a disk that is not an object */
		"{\"name\":\"bad\",\"domid\":1,\"state\":\"running\","
		"\"created\":1,"
		"\"rundir\":\"/"
		"r\",\"processes\":{\"qemu\":{\"pid\":5,\"start\":1},"
		"\"serve\":{\"pid\":1,\"start\":1},\"monitor\":{\"pid\":1,"
		"\"start\":1}},"
		"\"disks\":[7],\"reboot-requested\":false,\"restarts\":0,"
		"\"config\":{}}",
	};
	char **names = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dom_record *rec = NULL;
		struct vs_error *err = NULL;

		write_file("domains/bad.json", bad[i]);
		assert_int_equal(dom_record_load("bad", &rec, &err), -EINVAL);
		assert_null(rec);
		assert_non_null(strstr(vs_error_msg(err), "bad.json"));
		vs_error_free(err);
	}
	/* A record under another domain's name. */
	{
		struct dom_record *rec = new_record("other", 3), *back = NULL;
		struct vs_error *err = NULL;
		char from[256], to[256];

		assert_int_equal(dom_record_save(rec, &err), 0);
		snprintf(from, sizeof(from), "%s/domains/other.json", dir);
		snprintf(to, sizeof(to), "%s/domains/bad.json", dir);
		assert_int_equal(rename(from, to), 0);
		assert_int_equal(dom_record_load("bad", &back, &err), -EINVAL);
		assert_non_null(
			strstr(vs_error_msg(err), "holds domain 'other'"));
		vs_error_free(err);
		dom_record_free(rec);
	}
	/* A run folder elsewhere than ours: teardown would delete in it. */
	{
		struct dom_record *rec = new_record("evil", 9), *back = NULL;
		struct vs_error *err = NULL;

		free(rec->rundir);
		rec->rundir = strdup("/etc");
		assert_int_equal(dom_record_save(rec, &err), 0);
		assert_int_equal(dom_record_load("evil", &back, &err), -EINVAL);
		assert_non_null(
			strstr(vs_error_msg(err), "is not the run folder"));
		vs_error_free(err);
		err = NULL;
		assert_int_equal(dom_record_remove("evil", &err), 0);
		dom_record_free(rec);
	}
	/* Names that are not file names are refused before any path is made. */
	{
		struct dom_record *rec = NULL;
		struct vs_error *err = NULL;

		assert_true(dom_record_load("../lock", &rec, &err) < 0);
		vs_error_free(err);
	}
	assert_int_equal(dom_record_names(&names, NULL), 0);
	assert_null(names[0]);
	dom_names_free(names);
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/domains/bad.json", dir);
		unlink(path);
	}
}

/* dom_record_parse is dom_record_load without the file: the same record
 * from text, ending at a NUL, errors naming the given file. */
static void test_parse(void **state UNUSED)
{
	struct dom_record *rec = new_record("txt", 4), *back = NULL;
	struct json_object *o = dom_record_to_json(rec);
	const char *text = json_object_to_json_string(o);
	size_t len = strlen(text);
	struct vs_error *err = NULL;
	char *buf = malloc(len + 8);

	assert_non_null(buf);
	/* Bytes after a NUL are not the record's. */
	memcpy(buf, text, len);
	memcpy(buf + len, "\0garbag", 8);
	assert_int_equal(dom_record_parse(buf, len + 8, "t.json", &back, &err),
			 0);
	assert_string_equal(back->name, "txt");
	assert_int_equal(back->domid, 4);
	dom_record_free(back);
	back = NULL;
	/* Cut short, as a disk that lost a write leaves it. */
	assert_int_equal(
		dom_record_parse(buf, len / 2, "cut.json", &back, &err),
		-EINVAL);
	assert_null(back);
	assert_non_null(strstr(vs_error_msg(err), "cut.json"));
	vs_error_free(err);
	free(buf);
	json_object_put(o);
	dom_record_free(rec);
}

static void test_run_path(void **state UNUSED)
{
	char rundir[200], *p = NULL;
	struct vs_error *err = NULL;

	assert_int_equal(
		dom_run_path("/var/lib/vstor/run/1", "qmp.sock", &p, &err), 0);
	assert_string_equal(p, "/var/lib/vstor/run/1/qmp.sock");
	free(p);
	memset(rundir, 'x', sizeof(rundir) - 1);
	rundir[0] = '/';
	rundir[sizeof(rundir) - 1] = '\0';
	assert_int_equal(dom_run_path(rundir, "qmp.sock", &p, &err),
			 -ENAMETOOLONG);
	assert_non_null(strstr(vs_error_msg(err), "VSTOR_STATE_DIR"));
	vs_error_free(err);
}

static void test_proc(void **state UNUSED)
{
	struct dom_proc self, child, fake;
	pid_t pid;

	assert_int_equal(dom_proc_get(getpid(), &self), 0);
	assert_true(dom_proc_alive(&self));
	/* Another start time: a pid that was reused is not ours. */
	fake = self;
	fake.start++;
	assert_false(dom_proc_alive(&fake));
	assert_int_equal(dom_proc_kill(&fake, 0), -ESRCH);
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(dom_proc_get(pid, &child), 0);
	assert_true(dom_proc_alive(&child));
	assert_true(dom_proc_stop(&child, 5000));
	/* Gone while still a zombie (not yet waited for). */
	assert_false(dom_proc_alive(&child));
	waitpid(pid, NULL, 0);
	assert_int_equal(dom_proc_get(pid, &child), -ESRCH);
}

static const char *find_arg(char **argv, const char *prefix)
{
	for (size_t i = 0; argv[i]; i++)
		if (!strncmp(argv[i], prefix, strlen(prefix)))
			return argv[i];
	return NULL;
}

static void test_qemu_argv(void **state UNUSED)
{
	struct dom_record *rec = new_record("argv", 4);
	struct dom_rec_disk b = {.spec = "raw:/b,xvdb,w",
				 .vdev = "xvdb",
				 .socket = "/s,1/xvdb.sock"};
	struct dom_rec_disk a = {.spec = "raw:/a,xvda,r",
				 .vdev = "xvda",
				 .socket = "/s/xvda.sock",
				 .readonly = true};
	struct vs_error *err = NULL;
	char **argv = NULL;
	const char *s;
	bool append = false;

	free(rec->rundir);
	rec->rundir = strdup("/run/a,b");
	/* Disks in any order land on the slot of their vdev. */
	assert_int_equal(dom_record_add_disk(rec, &b), 0);
	assert_int_equal(dom_record_add_disk(rec, &a), 0);
	assert_int_equal(dom_qemu_argv(rec, "tcg", NULL, &argv, &err), 0);
	s = find_arg(argv, "vhost-user-blk-pci,chardev=vd-xvdb");
	assert_non_null(s);
	assert_non_null(strstr(s, "num-queues=2,addr=0x9"));
	s = find_arg(argv, "vhost-user-blk-pci,chardev=vd-xvda");
	assert_non_null(s);
	assert_non_null(strstr(s, "addr=0x8"));
	/* A comma in a path is doubled, QEMU's escape. */
	assert_non_null(
		find_arg(argv, "socket,id=vd-xvdb,path=/s,,1/xvdb.sock"));
	assert_non_null(
		find_arg(argv, "socket,id=qmp,path=/run/a,,b/qmp.sock"));
	assert_non_null(find_arg(
		argv, "memory-backend-memfd,id=mem,size=64M,share=on"));
	for (size_t i = 0; argv[i]; i++)
		if (!strcmp(argv[i], "-append"))
			append = argv[i + 1] &&
				 !strcmp(argv[i + 1], rec->cfg->cmdline);
	assert_true(append); /* one argument, not split or escaped */
	assert_non_null(find_arg(argv, "reboot=reset,panic=pause"));
	dom_argv_free(argv);
	/* A partition vdev is its disk's slot; a 25th disk is not
	 * supported. */
	assert_int_equal(dom_disk_slot("xvda1", NULL), DOM_DISK_SLOT0);
	assert_int_equal(dom_disk_slot("xvdb2", NULL), DOM_DISK_SLOT0 + 1);
	assert_int_equal(dom_disk_slot("xvdy", &err), -EOPNOTSUPP);
	vs_error_free(err);
	assert_int_equal(dom_disk_slot("sdc", NULL), DOM_DISK_SLOT0 + 2);
	dom_record_free(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domid),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_run_path),
		cmocka_unit_test(test_proc),
		cmocka_unit_test(test_qemu_argv),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
