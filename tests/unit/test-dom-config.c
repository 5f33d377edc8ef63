/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for hypervisor/config*.c and hypervisor/mac.c: xl domain
 * configs (xl.cfg(5)): the value syntax, every key, every error message,
 * command-line overrides, generated MACs, the JSON state form and the
 * in-place rewrite used by vstor clone.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
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
#include "hypervisor/config.h"
#include "vbd/diskspec.h"

#define UNUSED __attribute__((unused))

#define MIN_CFG "name = 'web1'\nkernel = '/boot/vmlinuz'\n"

static struct dom_config *parse_ov(const char *text, char *const *ov,
				   size_t n_ov)
{
	struct vs_error *err = NULL;
	struct dom_config *cfg = NULL;
	int ret = dom_config_parse_text(text, "t.cfg", ov, n_ov, &cfg, &err);

	if (ret)
		fail_msg("unexpected error %d: %s\n--- text:\n%s", ret,
			 vs_error_msg(err), text);
	assert_non_null(cfg);
	assert_null(err);
	return cfg;
}

static struct dom_config *parse(const char *text)
{
	return parse_ov(text, NULL, 0);
}

/* Parse must fail with exactly `msg` and error code `code`. */
static void parse_err_ov(const char *text, char *const *ov, size_t n_ov,
			 int code, const char *msg)
{
	struct vs_error *err = NULL;
	struct dom_config *cfg = NULL;
	int ret = dom_config_parse_text(text, "t.cfg", ov, n_ov, &cfg, &err);

	if (ret == 0)
		fail_msg("parsed but should fail with '%s':\n%s", msg, text);
	assert_null(cfg);
	assert_non_null(err);
	assert_string_equal(vs_error_msg(err), msg);
	assert_int_equal(ret, -code);
	vs_error_free(err);
}

static void parse_err(const char *text, int code, const char *msg)
{
	parse_err_ov(text, NULL, 0, code, msg);
}

/* Run parse with stderr captured; return what was printed. */
static char *parse_warnings(const char *text, char *const *ov, size_t n_ov)
{
	char path[] = "/tmp/test-dom-config-XXXXXX";
	int fd = mkstemp(path), saved;
	struct dom_config *cfg;
	static char buf[4096];
	ssize_t n;

	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	cfg = parse_ov(text, ov, n_ov);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	dom_config_free(cfg);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

/* --- syntax ------------------------------------------------------------ */

static void test_minimal_defaults(void **state UNUSED)
{
	struct dom_config *cfg = parse(MIN_CFG);

	assert_string_equal(cfg->name, "web1");
	assert_string_equal(cfg->kernel, "/boot/vmlinuz");
	assert_null(cfg->path);
	assert_null(cfg->ramdisk);
	assert_null(cfg->root);
	assert_string_equal(cfg->cmdline, "");
	assert_int_equal(cfg->memory_mib, 128);
	assert_int_equal(cfg->maxmem_mib, 128);
	assert_int_equal(cfg->vcpus, 1);
	assert_int_equal(cfg->maxvcpus, 1);
	assert_int_equal(cfg->n_disks, 0);
	assert_int_equal(cfg->n_vifs, 0);
	assert_int_equal(cfg->on_poweroff, DOM_ACTION_DESTROY);
	assert_int_equal(cfg->on_reboot, DOM_ACTION_RESTART);
	assert_int_equal(cfg->on_crash, DOM_ACTION_DESTROY);
	assert_string_equal(cfg->serial, "pty");
	assert_int_equal(cfg->accel, DOM_ACCEL_AUTO);
	assert_null(cfg->type);
	/* A generated uuid: random version 4, RFC 4122 variant. */
	assert_int_equal(strlen(cfg->uuid), 36);
	assert_int_equal(cfg->uuid[14], '4');
	assert_non_null(strchr("89ab", cfg->uuid[19]));
	dom_config_free(cfg);
}

static void test_uuid_random(void **state UNUSED)
{
	struct dom_config *a = parse(MIN_CFG), *b = parse(MIN_CFG);

	assert_string_not_equal(a->uuid, b->uuid);
	dom_config_free(a);
	dom_config_free(b);
}

static void test_all_keys(void **state UNUSED)
{
	struct dom_config *cfg = parse(
		"# a full config\n"
		"name = \"db-2.example\"\n"
		"uuid = '6F9619FF-8B86-D011-B42D-00C04FC964FF'\n"
		"memory = 512\n"
		"maxmem = 1024\n"
		"vcpus = 2\n"
		"maxvcpus = 4\n"
		"kernel = '/k'\n"
		"ramdisk = '/r'\n"
		"root = '/dev/xvda1 ro'\n"
		"extra = 'console=hvc0'\n"
		"disk = [ 'phy:/dev/vg/db,xvda,w', "
		"'format=qcow2, vdev=xvdb, access=ro, target=/a,b.qcow2' ]\n"
		"vif = [ 'bridge=br0,mac=00:16:3E:0A:0b:0C,model=e1000,"
		"vifname=db0', '' ]\n"
		"on_poweroff = 'preserve'\n"
		"on_reboot = 'destroy'\n"
		"on_crash = 'restart'\n"
		"serial = 'pty'\n"
		"accel = 'tcg'\n"
		"type = 'pvh'\n");

	assert_string_equal(cfg->name, "db-2.example");
	assert_string_equal(cfg->uuid, "6f9619ff-8b86-d011-b42d-00c04fc964ff");
	assert_int_equal(cfg->memory_mib, 512);
	assert_int_equal(cfg->maxmem_mib, 1024);
	assert_int_equal(cfg->vcpus, 2);
	assert_int_equal(cfg->maxvcpus, 4);
	assert_string_equal(cfg->kernel, "/k");
	assert_string_equal(cfg->ramdisk, "/r");
	assert_string_equal(cfg->root, "/dev/xvda1 ro");
	assert_string_equal(cfg->cmdline, "root=/dev/xvda1 ro console=hvc0");
	assert_int_equal(cfg->n_disks, 2);
	assert_string_equal(cfg->disks[0].text, "phy:/dev/vg/db,xvda,w");
	assert_string_equal(cfg->disks[0].spec->target, "/dev/vg/db");
	assert_string_equal(cfg->disks[0].spec->vdev, "xvda");
	assert_false(cfg->disks[0].spec->readonly);
	assert_string_equal(cfg->disks[1].spec->target, "/a,b.qcow2");
	assert_string_equal(cfg->disks[1].spec->format, "qcow2");
	assert_true(cfg->disks[1].spec->readonly);
	assert_int_equal(cfg->n_vifs, 2);
	assert_string_equal(cfg->vifs[0].bridge, "br0");
	assert_string_equal(cfg->vifs[0].mac, "00:16:3e:0a:0b:0c");
	assert_string_equal(cfg->vifs[0].model, "e1000");
	assert_string_equal(cfg->vifs[0].vifname, "db0");
	assert_null(cfg->vifs[1].bridge);
	assert_null(cfg->vifs[1].model);
	assert_null(cfg->vifs[1].vifname);
	assert_non_null(cfg->vifs[1].mac);
	assert_int_equal(cfg->on_poweroff, DOM_ACTION_PRESERVE);
	assert_int_equal(cfg->on_reboot, DOM_ACTION_DESTROY);
	assert_int_equal(cfg->on_crash, DOM_ACTION_RESTART);
	assert_int_equal(cfg->accel, DOM_ACCEL_TCG);
	assert_string_equal(cfg->type, "pvh");
	dom_config_free(cfg);
}

static void test_escapes(void **state UNUSED)
{
	struct dom_config *cfg =
		parse("name = 'a'\n"
		      "kernel = \"/k \\\"q\\\" \\'s\\' \\\\ \\x41\\102\\t|\"\n"
		      "extra = 'x\\ny\\rz # not a comment ; nor an end'\n");

	assert_string_equal(cfg->kernel, "/k \"q\" 's' \\ AB\t|");
	assert_string_equal(cfg->cmdline,
			    "x\ny\rz # not a comment ; nor an end");
	dom_config_free(cfg);
}

static void test_numbers(void **state UNUSED)
{
	struct dom_config *cfg;

	/* Hex and octal as xl reads them (strtol base 0), quoted too. */
	cfg = parse(MIN_CFG "memory = 0x200\nmaxmem = '01000'\nvcpus = '3'\n");
	assert_int_equal(cfg->memory_mib, 512);
	assert_int_equal(cfg->maxmem_mib, 512);
	assert_int_equal(cfg->vcpus, 3);
	dom_config_free(cfg);
	cfg = parse(MIN_CFG "vcpus = 255\nmemory = 17592186044415\n");
	assert_int_equal(cfg->vcpus, 255);
	assert_int_equal(cfg->memory_mib, UINT64_MAX >> 20);
	dom_config_free(cfg);
}

static void test_layout(void **state UNUSED)
{
	/* Lists over lines with comments and a trailing comma, ';'
	 * separators, CRLF line ends, blank lines, no final newline. */
	struct dom_config *cfg = parse("\r\n  # comment\r\n"
				       "name='a';kernel='/k' ; memory=64;\r\n"
				       "disk = [ # first\n"
				       "   'file:/a.img,xvda,w',\n"
				       "\n"
				       "   # second\n"
				       "   'file:/b.img,xvdb,r' ,\n"
				       "]\n"
				       "vif=[]\n"
				       "vcpus=2");

	assert_string_equal(cfg->name, "a");
	assert_int_equal(cfg->memory_mib, 64);
	assert_int_equal(cfg->vcpus, 2);
	assert_int_equal(cfg->n_disks, 2);
	assert_string_equal(cfg->disks[1].spec->target, "/b.img");
	assert_true(cfg->disks[1].spec->readonly);
	assert_int_equal(cfg->n_vifs, 0);
	dom_config_free(cfg);
}

static void test_append_and_last_wins(void **state UNUSED)
{
	struct dom_config *cfg =
		parse(MIN_CFG "memory = 64\nmemory = 96\n"
			      "disk = [ 'file:/a,xvda,w' ]\n"
			      "disk += [ 'file:/b,xvdb,w' ]\n"
			      "extra = 'console=hvc0'\nextra += ' quiet'\n"
			      "vif += [ 'bridge=br1' ]\n");

	assert_int_equal(cfg->memory_mib, 96);
	assert_int_equal(cfg->n_disks, 2);
	assert_string_equal(cfg->disks[1].spec->target, "/b");
	assert_string_equal(cfg->cmdline, "console=hvc0 quiet");
	assert_int_equal(cfg->n_vifs, 1);
	dom_config_free(cfg);
}

static void test_cmdline_forms(void **state UNUSED)
{
	struct dom_config *cfg;
	char *w;

	cfg = parse(MIN_CFG "root = '/dev/xvda'\n");
	assert_string_equal(cfg->cmdline, "root=/dev/xvda");
	dom_config_free(cfg);
	cfg = parse(MIN_CFG "extra = 'quiet'\n");
	assert_string_equal(cfg->cmdline, "quiet");
	dom_config_free(cfg);
	cfg = parse(MIN_CFG "cmdline = 'console=ttyS0'\n");
	assert_string_equal(cfg->cmdline, "console=ttyS0");
	dom_config_free(cfg);
	/* cmdline wins over root and extra, with a warning, as in xl. */
	w = parse_warnings(MIN_CFG "root = '/dev/xvda'\nextra = 'quiet'\n"
				   "cmdline = 'console=ttyS0'\n",
			   NULL, 0);
	assert_non_null(strstr(w, "t.cfg:5: cmdline given: root and extra "
				  "are ignored"));
}

static void test_max_warned(void **state UNUSED)
{
	char *w = parse_warnings(MIN_CFG "memory = 64\nmaxmem = 128\n"
					 "vcpus = 2\nmaxvcpus = 4\n",
				 NULL, 0);

	assert_non_null(strstr(w, "warning: t.cfg:4: maxmem: ballooning is "
				  "not supported; the guest gets memory (64 "
				  "MiB)\n"));
	assert_non_null(strstr(w, "warning: t.cfg:6: maxvcpus: vCPU hot-plug "
				  "is not supported; the guest gets vcpus "
				  "(2)\n"));
	w = parse_warnings(MIN_CFG "memory = 64\nmaxmem = 64\nvcpus = 2\n"
				   "maxvcpus = 2\n",
			   NULL, 0);
	assert_string_equal(w, "");
}

static void test_type_builder(void **state UNUSED)
{
	struct dom_config *cfg = parse(MIN_CFG "builder = 'generic'\n");

	assert_string_equal(cfg->type, "pv");
	dom_config_free(cfg);
	cfg = parse(MIN_CFG "builder = 'hvm'\ntype = 'pvh'\n");
	assert_string_equal(cfg->type, "pvh");
	dom_config_free(cfg);
	cfg = parse(MIN_CFG "serial = [ 'pty' ]\naccel = 'kvm'\n");
	assert_string_equal(cfg->serial, "pty");
	assert_int_equal(cfg->accel, DOM_ACCEL_KVM);
	dom_config_free(cfg);
}

static void test_unknown_keys_warned(void **state UNUSED)
{
	char *ov[] = {"cpu_weight=512"};
	char *w =
		parse_warnings(MIN_CFG "bootloader = 'pygrub'\n"
				       "vnuma = [ [ 'pnode=0', 'size=512' ] ]\n"
				       "vif = [ 'bridge=br0, ip=10.0.0.2' ]\n",
			       ov, 1);

	assert_non_null(strstr(w, "warning: t.cfg:3: unknown key "
				  "'bootloader' ignored\n"));
	assert_non_null(strstr(w, "warning: t.cfg:4: unknown key 'vnuma' "
				  "ignored\n"));
	assert_non_null(strstr(w, "warning: t.cfg:5: vif: 'ip=10.0.0.2' "
				  "ignored: vstor does not know vif key "
				  "'ip'\n"));
	assert_non_null(strstr(w, "warning: command line: unknown key "
				  "'cpu_weight' ignored\n"));
}

/* --- overrides --------------------------------------------------------- */

static void test_overrides(void **state UNUSED)
{
	char *ov[] = {"memory=256", "name = \"web2\"",
		      "disk=['file:/x.img,xvda,w']", "extra+=' quiet'"};
	struct dom_config *cfg =
		parse_ov(MIN_CFG "memory = 64\nextra = 'ro'\n", ov, 4);

	assert_int_equal(cfg->memory_mib, 256);
	assert_string_equal(cfg->name, "web2");
	assert_int_equal(cfg->n_disks, 1);
	assert_string_equal(cfg->disks[0].spec->target, "/x.img");
	assert_string_equal(cfg->cmdline, "ro quiet");
	dom_config_free(cfg);
}

static void test_override_errors(void **state UNUSED)
{
	char *bad_num[] = {"memory=12x"};
	char *no_eq[] = {"memory"};
	char *two[] = {"memory=1; vcpus=2"};
	char *empty[] = {""};
	char *ov_name[] = {"name='a/b'"};

	parse_err_ov(MIN_CFG, bad_num, 1, EINVAL,
		     "command line: memory: '12x' is not a number");
	parse_err_ov(MIN_CFG, no_eq, 1, EINVAL,
		     "command line: expected '=' after 'memory', found the "
		     "end of the text");
	parse_err_ov(MIN_CFG, two, 1, EINVAL,
		     "command line: 'memory=1; vcpus=2': expected one "
		     "KEY=VALUE");
	parse_err_ov(MIN_CFG, empty, 1, EINVAL,
		     "command line: '': expected one KEY=VALUE");
	parse_err_ov(MIN_CFG, ov_name, 1, EINVAL,
		     "command line: name: 'a/b': a domain name holds only "
		     "letters, digits, '_', '.' and '-'");
}

/* --- errors ------------------------------------------------------------ */

static void test_err_syntax(void **state UNUSED)
{
	parse_err("name = 'a\n", EINVAL,
		  "t.cfg:1: unterminated string (a string ends on the line "
		  "it starts)");
	parse_err("name = 'a' 'b'\n", EINVAL,
		  "t.cfg:1: name: expected the end of the line or ';' after "
		  "the value, found string 'b'");
	parse_err("\n\nname 'a'\n", EINVAL,
		  "t.cfg:3: expected '=' after 'name', found string 'a'");
	parse_err("on_crash = destroy\n", EINVAL,
		  "t.cfg:1: on_crash: 'destroy' must be quoted (\"destroy\")");
	parse_err("Name = 'a'\n", EINVAL,
		  "t.cfg:1: 'Name' is not a key (keys are lowercase letters, "
		  "digits and '_')");
	parse_err("name = 'a'\n@x = 1\n", EINVAL,
		  "t.cfg:2: unexpected character '@'");
	parse_err("memory = -1\n", EINVAL, "t.cfg:1: unexpected character '-'");
	parse_err("disk = [ 'a' 'b' ]\n", EINVAL,
		  "t.cfg:1: disk: expected ',' or ']' in the list, found "
		  "string 'b'");
	parse_err("disk = [ 'a',\n", EINVAL,
		  "t.cfg:2: disk: expected a value (a string, a number or a "
		  "list), found the end of the text");
	parse_err("name = \n'a'\n", EINVAL,
		  "t.cfg:1: name: expected a value (a string, a number or a "
		  "list), found the end of the line");
	parse_err("= 1\n", EINVAL, "t.cfg:1: expected a key, found '='");
	parse_err("name = 'a\\q'\n", EINVAL,
		  "t.cfg:1: unknown escape '\\' 'q' in string");
	parse_err("name = 'a\\x4'\n", EINVAL,
		  "t.cfg:1: escape '\\x' needs two hex digits");
	parse_err("name = 'a\\0'\n", EINVAL,
		  "t.cfg:1: NUL byte (0x00) in string");
	parse_err("name = 'a\\400'\n", EINVAL,
		  "t.cfg:1: octal escape above \\377 in string");
	parse_err("name = 'a\x01'\n", EINVAL,
		  "t.cfg:1: control character 0x01 in string");
	parse_err("x = [[[[[[[[[1]]]]]]]]]\n", EINVAL,
		  "t.cfg:1: x: lists nested deeper than 8");
	parse_err(MIN_CFG "extra = 'a'\nextra += [ 'b' ]\n", EINVAL,
		  "t.cfg:4: extra: += adds a list to a string");
}

static void test_err_values(void **state UNUSED)
{
	parse_err(MIN_CFG "\n\n\n\nmemory = 12x\n", EINVAL,
		  "t.cfg:7: memory: '12x' is not a number");
	parse_err(MIN_CFG "memory = '12 '\n", EINVAL,
		  "t.cfg:3: memory: '12 ' is not a number");
	parse_err(MIN_CFG "memory = 09\n", EINVAL,
		  "t.cfg:3: memory: '09' is not a number");
	parse_err(MIN_CFG "memory = 0\n", ERANGE,
		  "t.cfg:3: memory: 0 is out of range (1 to "
		  "17592186044415)");
	parse_err(MIN_CFG "memory = 99999999999999999999999\n", EINVAL,
		  "t.cfg:3: memory: '99999999999999999999999' is not a "
		  "number");
	parse_err(MIN_CFG "memory = 17592186044416\n", ERANGE,
		  "t.cfg:3: memory: 17592186044416 is out of range (1 to "
		  "17592186044415)");
	parse_err(MIN_CFG "memory = [ 1 ]\n", EINVAL,
		  "t.cfg:3: memory: expected a string, found a list");
	parse_err(MIN_CFG "memory = 512\nmaxmem = 256\n", EINVAL,
		  "t.cfg:4: maxmem: 256 MiB is less than memory (512 MiB)");
	parse_err(MIN_CFG "vcpus = 0\n", ERANGE,
		  "t.cfg:3: vcpus: 0 is out of range (1 to 255)");
	parse_err(MIN_CFG "vcpus = 256\n", ERANGE,
		  "t.cfg:3: vcpus: 256 is out of range (1 to 255)");
	parse_err(MIN_CFG "vcpus = 4\nmaxvcpus = 2\n", EINVAL,
		  "t.cfg:4: maxvcpus: 2 is less than vcpus (4)");
	parse_err(MIN_CFG "kernel = ''\n", EINVAL,
		  "t.cfg:3: kernel: empty path");
	parse_err(MIN_CFG "uuid = '6f9619ff-8b86-d011-b42d-00c04fc964f'\n",
		  EINVAL,
		  "t.cfg:3: uuid: '6f9619ff-8b86-d011-b42d-00c04fc964f' is "
		  "not a UUID (32 hex digits as 8-4-4-4-12, not all zero)");
	parse_err(MIN_CFG "uuid = '00000000-0000-0000-0000-000000000000'\n",
		  EINVAL,
		  "t.cfg:3: uuid: '00000000-0000-0000-0000-000000000000' is "
		  "not a UUID (32 hex digits as 8-4-4-4-12, not all zero)");
	parse_err(MIN_CFG "accel = 'xen'\n", EINVAL,
		  "t.cfg:3: accel: 'xen' is not one of auto, kvm, tcg");
	parse_err(MIN_CFG "type = 'pvhvm'\n", EINVAL,
		  "t.cfg:3: type: 'pvhvm' is not one of pv, pvh, hvm");
	parse_err(MIN_CFG "builder = 'xen'\n", EINVAL,
		  "t.cfg:3: builder: 'xen' is not one of generic, hvm");
}

static void test_err_required_and_name(void **state UNUSED)
{
	char long_name[128];

	parse_err("kernel = '/k'\n", EINVAL, "t.cfg: name is required");
	parse_err("name = 'a'\n", EINVAL,
		  "t.cfg: kernel is required (vstor boots the domain's "
		  "kernel directly)");
	parse_err("kernel='/k'\nname = 'web/1'\n", EINVAL,
		  "t.cfg:2: name: 'web/1': a domain name holds only letters, "
		  "digits, '_', '.' and '-'");
	parse_err("kernel='/k'\nname = '.hidden'\n", EINVAL,
		  "t.cfg:2: name: '.hidden': a domain name does not start "
		  "with '.' or '-'");
	parse_err("kernel='/k'\nname = '-o'\n", EINVAL,
		  "t.cfg:2: name: '-o': a domain name does not start with "
		  "'.' or '-'");
	parse_err("kernel='/k'\nname = ''\n", EINVAL,
		  "t.cfg:2: name: a domain name is not empty");
	parse_err("kernel='/k'\nname = 'Domain-0'\n", EINVAL,
		  "t.cfg:2: name: 'Domain-0' is the host's name, not a "
		  "domain's");
	memset(long_name, 'a', 65);
	snprintf(long_name + 65, sizeof(long_name) - 65, "%s",
		 "' \nkernel='/k'\n");
	{
		char text[200];

		snprintf(text, sizeof(text), "name = '%s", long_name);
		parse_err(text, EINVAL,
			  "t.cfg:1: name: 'aaaaaaaaaaaaaaaaaaaa...' is 65 "
			  "characters; a domain name is at most 64");
		/* 64 is fine. */
		long_name[64] = '\'';
		long_name[65] = '\n';
		snprintf(text, sizeof(text), "kernel='/k'\nname = '%.66s",
			 long_name);
		dom_config_free(parse(text));
	}
}

static void test_err_actions(void **state UNUSED)
{
	parse_err(MIN_CFG "on_crash = 'coredump-destroy'\n", ENOTSUP,
		  "t.cfg:3: on_crash: 'coredump-destroy' is not supported by "
		  "vstor (supported: destroy, restart, preserve)");
	parse_err(MIN_CFG "on_reboot = 'rename-restart'\n", ENOTSUP,
		  "t.cfg:3: on_reboot: 'rename-restart' is not supported by "
		  "vstor (supported: destroy, restart, preserve)");
	parse_err(MIN_CFG "on_poweroff = 'soft-reset'\n", ENOTSUP,
		  "t.cfg:3: on_poweroff: 'soft-reset' is not supported by "
		  "vstor (supported: destroy, restart, preserve)");
	parse_err(MIN_CFG "on_crash = 'coredump-restart'\n", ENOTSUP,
		  "t.cfg:3: on_crash: 'coredump-restart' is not supported by "
		  "vstor (supported: destroy, restart, preserve)");
	parse_err(MIN_CFG "on_crash = 'explode'\n", EINVAL,
		  "t.cfg:3: on_crash: 'explode' is not an action (destroy, "
		  "restart, preserve)");
	parse_err(MIN_CFG "serial = 'file:/tmp/x'\n", ENOTSUP,
		  "t.cfg:3: serial: 'file:/tmp/x' is not supported by vstor "
		  "(only 'pty': a console socket for vstor console)");
	parse_err(MIN_CFG "serial = [ 'pty', 'pty' ]\n", ENOTSUP,
		  "t.cfg:3: serial: 2 serial ports given; vstor gives a "
		  "domain exactly one");
	assert_string_equal(dom_action_name(DOM_ACTION_PRESERVE), "preserve");
	assert_string_equal(dom_accel_name(DOM_ACCEL_TCG), "tcg");
}

static void test_err_disks(void **state UNUSED)
{
	parse_err(
		MIN_CFG "disk = [\n 'file:/a,xvda,w',\n 'file:/b,xvdq7,x' ]\n",
		EINVAL,
		"t.cfg:5: disk: 'file:/b,xvdq7,x': bad access 'x' (expected r, "
		"ro, w or rw)");
	parse_err(MIN_CFG "disk = [\n 'file:/a,xvda,w',\n"
			  " 'format=raw,vdev=xvda,target=/b' ]\n",
		  EINVAL,
		  "t.cfg:5: disk: 'format=raw,vdev=xvda,target=/b': vdev "
		  "'xvda' is already used by disk 1 ('file:/a,xvda,w')");
	parse_err(MIN_CFG "disk = 'file:/a,xvda,w'\n", EINVAL,
		  "t.cfg:3: disk: expected a list of disk specs, as disk = "
		  "[ 'SPEC', ... ]");
	parse_err(MIN_CFG "disk = [ 42 ]\n", EINVAL,
		  "t.cfg:3: disk: expected a quoted disk spec, found 42");
	parse_err(MIN_CFG "disk = [ [ 'x' ] ]\n", EINVAL,
		  "t.cfg:3: disk: expected a quoted disk spec, found a list");
	parse_err(MIN_CFG "disk = [ 'file:/a' ]\n", EINVAL,
		  "t.cfg:3: disk: 'file:/a': missing vdev");
}

static void test_err_vifs(void **state UNUSED)
{
	parse_err(MIN_CFG "vif = [ 'mac=00:16:3e:zz:00:01' ]\n", EINVAL,
		  "t.cfg:3: vif: mac: '00:16:3e:zz:00:01' is not a MAC "
		  "address (six hex bytes separated by ':', as "
		  "00:16:3e:12:34:56)");
	parse_err(MIN_CFG "vif = [ 'mac=01:16:3e:00:00:01' ]\n", EINVAL,
		  "t.cfg:3: vif: mac: '01:16:3e:00:00:01' is a multicast MAC "
		  "address (a NIC needs a unicast one: the first byte even)");
	parse_err(MIN_CFG "vif = [ 'mac=00:00:00:00:00:00' ]\n", EINVAL,
		  "t.cfg:3: vif: mac: '00:00:00:00:00:00' is the all-zero "
		  "MAC address");
	parse_err(MIN_CFG "vif = [ 'mac=00:16:3e:00:00:01',\n"
			  "'mac=00-16-3E-00-00-01' ]\n",
		  EINVAL,
		  "t.cfg:4: vif: vif 2 has the MAC 00:16:3e:00:00:01 of vif "
		  "1");
	parse_err(MIN_CFG "vif = [ 'bridge=br 0' ]\n", EINVAL,
		  "t.cfg:3: vif: bridge 'br 0': an interface name here is "
		  "letters, digits, '_', '.' and '-', not starting with '.' "
		  "or '-'");
	parse_err(MIN_CFG "vif = [ 'vifname=abcdefghijklmnop' ]\n", EINVAL,
		  "t.cfg:3: vif: vifname 'abcdefghijklmnop': an interface "
		  "name is 1 to 15 characters");
	parse_err(MIN_CFG "vif = [ 'model=virtio;rm' ]\n", EINVAL,
		  "t.cfg:3: vif: model 'virtio;rm': a NIC model is up to 32 "
		  "lowercase letters, digits, '_' and '-' (virtio-net-pci, "
		  "e1000)");
	parse_err(MIN_CFG "vif = [ 'bridge' ]\n", EINVAL,
		  "t.cfg:3: vif: 'bridge': expected KEY=VALUE");
	parse_err(MIN_CFG "vif = [ 'bridge=a,bridge=b' ]\n", EINVAL,
		  "t.cfg:3: vif: bridge= given twice in one vif");
	parse_err(MIN_CFG "vif = [ 'vifname=v0', 'vifname=v0' ]\n", EINVAL,
		  "t.cfg:3: vif: vif 2 has the vifname 'v0' of vif 1");
	parse_err(MIN_CFG "vif = 'bridge=br0'\n", EINVAL,
		  "t.cfg:3: vif: expected a list of vif specs, as vif = [ "
		  "'bridge=br0', ... ]");
}

/* --- MACs -------------------------------------------------------------- */

static void test_mac_generated(void **state UNUSED)
{
	struct dom_config *a = parse(MIN_CFG "vif = [ '', 'bridge=br0' ]\n");
	struct dom_config *b = parse(MIN_CFG "vif = [ 'bridge=x', '' ]\n");
	struct dom_config *c =
		parse("name='web2'\nkernel='/k'\nvif = [ '', '' ]\n");
	char m[18];

	/* The same name and position give the same MAC, whatever the rest
	 * of the vif; another name or position another. */
	assert_string_equal(a->vifs[0].mac, b->vifs[0].mac);
	assert_string_equal(a->vifs[1].mac, b->vifs[1].mac);
	assert_string_not_equal(a->vifs[0].mac, a->vifs[1].mac);
	assert_string_not_equal(a->vifs[0].mac, c->vifs[0].mac);
	dom_mac_generate("web1", 0, m);
	assert_string_equal(m, a->vifs[0].mac);
	dom_config_free(a);
	dom_config_free(b);
	dom_config_free(c);
}

static void test_mac_range(void **state UNUSED)
{
	char seen[1000][18];

	for (int i = 0; i < 1000; i++) {
		char name[32], out[18];
		unsigned b4;
		struct vs_error *err = NULL;

		snprintf(name, sizeof(name), "dom%d", i);
		dom_mac_generate(name, (size_t)i % 3, seen[i]);
		assert_int_equal(strlen(seen[i]), 17);
		assert_memory_equal(seen[i], "00:16:3e:", 9);
		assert_int_equal(sscanf(seen[i] + 9, "%2x", &b4), 1);
		assert_true(b4 < 0x80);
		/* What is generated is what the parser accepts. */
		assert_int_equal(dom_mac_parse(seen[i], out, &err), 0);
		assert_string_equal(out, seen[i]);
		/* Spread: no repeat among 1000 names (a collision here
		 * would be a 1-in-300 event for a good hash). */
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[i], seen[j]);
	}
}

/* --- files ------------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state UNUSED)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-dom-config-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state UNUSED)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_parse_file(void **state UNUSED)
{
	char path[128], kernel[128], msg[256];
	struct dom_config *cfg = NULL;
	struct vs_error *err = NULL;
	char *big;

	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", tmpdir);
	snprintf(path, sizeof(path), "%s/a.cfg", tmpdir);
	write_file(path, "name='a'\nkernel='/nonexistent/k'\nmemory=1x\n", 42);
	assert_int_equal(dom_config_parse_file(path, NULL, 0, &cfg, &err),
			 -EINVAL);
	snprintf(msg, sizeof(msg), "%s:3: memory: '1x' is not a number", path);
	assert_string_equal(vs_error_msg(err), msg);
	vs_error_free(err);
	err = NULL;

	write_file(path, "name='a'\nkernel='/nonexistent/k'\n", 33);
	assert_int_equal(dom_config_parse_file(path, NULL, 0, &cfg, &err), 0);
	assert_string_equal(cfg->path, path);
	assert_int_equal(dom_config_check_files(cfg, &err), -ENOENT);
	assert_string_equal(vs_error_msg(err),
			    "kernel '/nonexistent/k': No such file or "
			    "directory");
	vs_error_free(err);
	err = NULL;
	free(cfg->kernel);
	cfg->kernel = strdup(tmpdir);
	assert_int_equal(dom_config_check_files(cfg, &err), -EINVAL);
	snprintf(msg, sizeof(msg), "kernel '%s' is not a regular file", tmpdir);
	assert_string_equal(vs_error_msg(err), msg);
	vs_error_free(err);
	err = NULL;
	write_file(kernel, "k", 1);
	free(cfg->kernel);
	cfg->kernel = strdup(kernel);
	assert_int_equal(dom_config_check_files(cfg, &err), 0);
	cfg->ramdisk = strdup("/nonexistent/r");
	assert_int_equal(dom_config_check_files(cfg, &err), -ENOENT);
	assert_string_equal(vs_error_msg(err),
			    "ramdisk '/nonexistent/r': No such file or "
			    "directory");
	vs_error_free(err);
	err = NULL;
	dom_config_free(cfg);
	cfg = NULL;

	/* NUL bytes, size, absence. */
	write_file(path, "name='a'\0\n", 10);
	assert_int_equal(dom_config_parse_file(path, NULL, 0, &cfg, &err),
			 -EINVAL);
	snprintf(msg, sizeof(msg), "%s: has a NUL byte (not a text file)",
		 path);
	assert_string_equal(vs_error_msg(err), msg);
	vs_error_free(err);
	err = NULL;
	big = calloc(1, DOM_CONFIG_MAX_SIZE + 2);
	assert_non_null(big);
	memset(big, '\n', DOM_CONFIG_MAX_SIZE + 1);
	write_file(path, big, DOM_CONFIG_MAX_SIZE + 1);
	free(big);
	assert_int_equal(dom_config_parse_file(path, NULL, 0, &cfg, &err),
			 -EFBIG);
	assert_non_null(
		strstr(vs_error_msg(err), "a domain config is at most"));
	vs_error_free(err);
	err = NULL;
	snprintf(path, sizeof(path), "%s/missing.cfg", tmpdir);
	assert_int_equal(dom_config_parse_file(path, NULL, 0, &cfg, &err),
			 -ENOENT);
	snprintf(msg, sizeof(msg), "%s: No such file or directory", path);
	assert_string_equal(vs_error_msg(err), msg);
	vs_error_free(err);
	err = NULL;
	assert_int_equal(dom_config_parse_file(tmpdir, NULL, 0, &cfg, &err),
			 -EINVAL);
	vs_error_free(err);
}

/* examples/web1.cfg, which make demo uses, parses. */
static void test_example_web1(void **state UNUSED)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	struct dom_config *cfg = NULL;
	struct vs_error *err = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	bool found = false;

	assert_true(n > 0);
	exe[n] = '\0';
	/* Up from build/.../tests/unit/ to the source tree. */
	for (int up = 0; up < 8 && !found; up++) {
		char *slash = strrchr(exe, '/');

		if (!slash)
			break;
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/examples/web1.cfg", exe);
		found = access(path, R_OK) == 0;
	}
	assert_true(found);
	if (dom_config_parse_file(path, NULL, 0, &cfg, &err))
		fail_msg("%s", vs_error_msg(err));
	assert_non_null(cfg->name);
	assert_true(cfg->n_disks > 0);
	dom_config_free(cfg);
}

/* --- JSON -------------------------------------------------------------- */

static void assert_same(const struct dom_config *a, const struct dom_config *b)
{
#define STR_EQ(f)                                        \
	do {                                             \
		if (!a->f || !b->f)                      \
			assert_ptr_equal(a->f, b->f);    \
		else                                     \
			assert_string_equal(a->f, b->f); \
	} while (0)
	STR_EQ(path);
	STR_EQ(name);
	STR_EQ(kernel);
	STR_EQ(ramdisk);
	STR_EQ(cmdline);
	STR_EQ(root);
	STR_EQ(serial);
	STR_EQ(type);
	assert_string_equal(a->uuid, b->uuid);
	assert_int_equal(a->memory_mib, b->memory_mib);
	assert_int_equal(a->maxmem_mib, b->maxmem_mib);
	assert_int_equal(a->vcpus, b->vcpus);
	assert_int_equal(a->maxvcpus, b->maxvcpus);
	assert_int_equal(a->on_poweroff, b->on_poweroff);
	assert_int_equal(a->on_reboot, b->on_reboot);
	assert_int_equal(a->on_crash, b->on_crash);
	assert_int_equal(a->accel, b->accel);
	assert_int_equal(a->n_disks, b->n_disks);
	for (size_t i = 0; i < a->n_disks; i++) {
		STR_EQ(disks[i].text);
		STR_EQ(disks[i].spec->target);
		STR_EQ(disks[i].spec->vdev);
	}
	assert_int_equal(a->n_vifs, b->n_vifs);
	for (size_t i = 0; i < a->n_vifs; i++) {
		STR_EQ(vifs[i].bridge);
		STR_EQ(vifs[i].mac);
		STR_EQ(vifs[i].model);
		STR_EQ(vifs[i].vifname);
	}
#undef STR_EQ
}

static void test_json_round_trip(void **state UNUSED)
{
	static const char *const texts[] = {
		MIN_CFG,
		"name='x'\nkernel=\"/k'q\\\"\"\nramdisk='/r'\nroot='/dev/"
		"xvda'\n"
		"extra='quiet \\\\ \\n'\nmemory=300\nmaxmem=400\nvcpus=3\n"
		"maxvcpus=8\ntype='hvm'\naccel='kvm'\non_crash='preserve'\n"
		"on_reboot='destroy'\non_poweroff='restart'\n"
		"disk=['file:/a b,xvda,w','format=qcow2,vdev=hdc,devtype=cdrom,"
		"target=/c,d.iso',',,hdd:cdrom,r']\n"
		"vif=['bridge=br0,model=e1000,vifname=x0','']\n",
	};

	for (size_t i = 0; i < 2; i++) {
		struct dom_config *a = parse(texts[i]), *b = NULL;
		struct vs_error *err = NULL;
		struct json_object *o, *o2;
		char *s;

		a->path = strdup("/etc/vstor/x.cfg");
		o = dom_config_to_json(a);
		/* Through text and back, as a state file is. */
		s = strdup(json_object_to_json_string(o));
		json_object_put(o);
		o = json_tokener_parse(s);
		assert_non_null(o);
		if (dom_config_from_json(o, &b, &err))
			fail_msg("%s\n%s", vs_error_msg(err), s);
		assert_same(a, b);
		o2 = dom_config_to_json(b);
		assert_string_equal(json_object_to_json_string(o2), s);
		json_object_put(o);
		json_object_put(o2);
		free(s);
		dom_config_free(a);
		dom_config_free(b);
	}
}

/* A record read back says nothing: its file was warned about once. */
static void test_json_quiet(void **state UNUSED)
{
	struct dom_config *a = parse(MIN_CFG "root='/dev/xvda'\nextra='q'\n"
					     "memory=64\nmaxmem=128\nvcpus=1\n"
					     "maxvcpus=2\n"),
			  *b = NULL;
	struct json_object *o = dom_config_to_json(a);
	struct vs_error *err = NULL;
	char path[] = "/tmp/test-dom-config-XXXXXX", buf[256];
	int fd = mkstemp(path), saved;
	ssize_t n;

	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	assert_int_equal(dom_config_from_json(o, &b, &err), 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_int_equal(n, 0);
	assert_string_equal(b->root, "/dev/xvda");
	assert_string_equal(b->cmdline, "root=/dev/xvda q");
	json_object_put(o);
	dom_config_free(a);
	dom_config_free(b);
}

static void json_err(const char *json, const char *msg)
{
	struct json_object *o = json_tokener_parse(json);
	struct dom_config *cfg = NULL;
	struct vs_error *err = NULL;

	assert_non_null(o);
	assert_true(dom_config_from_json(o, &cfg, &err) < 0);
	assert_null(cfg);
	assert_string_equal(vs_error_msg(err), msg);
	vs_error_free(err);
	json_object_put(o);
}

#define JSON_BASE                                                          \
	"\"uuid\":\"6f9619ff-8b86-d011-b42d-00c04fc964ff\",\"memory\":64," \
	"\"maxmem\":64,\"vcpus\":1,\"kernel\":\"/k\""

static void test_json_errors(void **state UNUSED)
{
	json_err("[]", "state record: expected a JSON object");
	json_err("{" JSON_BASE "}", "state record: no field 'name'");
	json_err("{\"name\":\"a\",\"memory\":64,\"maxmem\":64,\"vcpus\":1,"
		 "\"kernel\":\"/k\"}",
		 "state record: no field 'uuid'");
	json_err("{\"name\":5," JSON_BASE "}",
		 "state record: name: expected a string");
	json_err("{\"name\":\"a/b\"," JSON_BASE "}",
		 "state record:1: name: 'a/b': a domain name holds only "
		 "letters, digits, '_', '.' and '-'");
	json_err("{\"name\":\"a\"," JSON_BASE ",\"vcpus\":-2}",
		 "state record: vcpus: -2 is negative");
	json_err("{\"name\":\"a\"," JSON_BASE ",\"vcpus\":\"2\"}",
		 "state record: vcpus: expected an integer");
	json_err("{\"name\":\"a\"," JSON_BASE ",\"disk\":[\"bad\"]}",
		 "state record:8: disk: 'bad': missing vdev");
	json_err("{\"name\":\"a\"," JSON_BASE ",\"disk\":\"x\"}",
		 "state record: disk: expected an array of strings");
	json_err("{\"name\":\"a\"," JSON_BASE ",\"vif\":[{\"bridge\":"
		 "\"b,mac=00:16:3e:00:00:01\"}]}",
		 "state record: vif: expected string values without ','");
	json_err("{\"name\":\"a\"," JSON_BASE ",\"root\":1}",
		 "state record: root: expected a string");
}

/* --- rewrite ----------------------------------------------------------- */

static void test_rewrite(void **state UNUSED)
{
	const char *text = "# the template\n"
			   "name = \"tmpl\"   # its name\n"
			   "kernel = '/k'\n"
			   "vif = [ 'bridge=br0, mac=00:16:3e:01:02:03',\n"
			   "        'bridge=br1' ]\n"
			   "disk = [ 'file:/t/root.img,xvda,w',  # root\n"
			   "         'phy:/dev/vg/data,xvdb,w' ]\n";
	const char *disks[] = {"format=qcow2, vdev=xvda, target=/c/root.qcow2",
			       NULL};
	struct dom_config_rewrite rw = {
		.name = "web7",
		.uuid = "11111111-2222-4333-8444-555555555555",
		.disk_texts = disks,
		.n_disks = 2,
	};
	struct vs_error *err = NULL;
	struct dom_config *cfg;
	char *out = NULL, mac0[18], mac1[18];

	assert_int_equal(
		dom_config_rewrite_text(text, "t.cfg", &rw, &out, &err), 0);
	dom_mac_generate("web7", 0, mac0);
	dom_mac_generate("web7", 1, mac1);
	{
		char want[1024];

		snprintf(want, sizeof(want),
			 "# the template\n"
			 "name = 'web7'   # its name\n"
			 "uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "kernel = '/k'\n"
			 "vif = [ 'bridge=br0, mac=%s',\n"
			 "        'bridge=br1' ]\n"
			 "disk = [ 'format=qcow2, vdev=xvda, "
			 "target=/c/root.qcow2',  # root\n"
			 "         'phy:/dev/vg/data,xvdb,w' ]\n",
			 mac0);
		assert_string_equal(out, want);
	}
	cfg = parse(out);
	assert_string_equal(cfg->name, "web7");
	assert_string_equal(cfg->uuid, rw.uuid);
	/* Both MACs are what the new name generates. */
	assert_string_equal(cfg->vifs[0].mac, mac0);
	assert_string_equal(cfg->vifs[1].mac, mac1);
	assert_string_equal(cfg->disks[0].spec->target, "/c/root.qcow2");
	assert_string_equal(cfg->disks[1].spec->target, "/dev/vg/data");
	dom_config_free(cfg);
	free(out);

	/* An existing uuid is replaced; a name sharing its line gets the
	 * uuid in front. */
	rw.n_disks = 0;
	assert_int_equal(dom_config_rewrite_text(
				 "name='a'; kernel='/k'\nuuid = "
				 "'6f9619ff-8b86-d011-b42d-00c04fc964ff'\n",
				 "t.cfg", &rw, &out, &err),
			 0);
	assert_string_equal(out, "name='web7'; kernel='/k'\nuuid = "
				 "'11111111-2222-4333-8444-555555555555'\n");
	free(out);
	assert_int_equal(dom_config_rewrite_text("kernel='/k'; name='a'; "
						 "memory=8",
						 "t.cfg", &rw, &out, &err),
			 0);
	assert_string_equal(out, "kernel='/k'; uuid = "
				 "'11111111-2222-4333-8444-555555555555'\n"
				 "name='web7'; memory=8");
	free(out);
	assert_int_equal(dom_config_rewrite_text("kernel='/k'; name='a'",
						 "t.cfg", &rw, &out, &err),
			 0);
	assert_string_equal(out, "kernel='/k'; name='web7'\nuuid = "
				 "'11111111-2222-4333-8444-555555555555'");
	free(out);
}

static void test_rewrite_errors(void **state UNUSED)
{
	struct dom_config_rewrite rw = {
		.name = "web7",
		.uuid = "11111111-2222-4333-8444-555555555555",
	};
	struct vs_error *err = NULL;
	char *out = NULL;

	assert_int_equal(dom_config_rewrite_text("name='a'\nkernel='/k'\n"
						 "name='b'\n",
						 "t.cfg", &rw, &out, &err),
			 -ENOTSUP);
	assert_string_equal(vs_error_msg(err),
			    "t.cfg:3: name is assigned again (first on line "
			    "1); a copy's config is written by changing a "
			    "single assignment");
	vs_error_free(err);
	err = NULL;
	assert_int_equal(dom_config_rewrite_text("name='a'\nvif=[]\n"
						 "vif+=['']\n",
						 "t.cfg", &rw, &out, &err),
			 -ENOTSUP);
	assert_string_equal(vs_error_msg(err),
			    "t.cfg:3: vif is built with +=; a copy's config "
			    "is written by changing a single assignment");
	vs_error_free(err);
	err = NULL;
	rw.name = "bad name";
	assert_int_equal(
		dom_config_rewrite_text("name='a'\n", "t.cfg", &rw, &out, &err),
		-EINVAL);
	assert_null(out);
	vs_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_uuid_random),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_append_and_last_wins),
		cmocka_unit_test(test_cmdline_forms),
		cmocka_unit_test(test_max_warned),
		cmocka_unit_test(test_type_builder),
		cmocka_unit_test(test_unknown_keys_warned),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_override_errors),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_err_values),
		cmocka_unit_test(test_err_required_and_name),
		cmocka_unit_test(test_err_actions),
		cmocka_unit_test(test_err_disks),
		cmocka_unit_test(test_err_vifs),
		cmocka_unit_test(test_mac_generated),
		cmocka_unit_test(test_mac_range),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_example_web1),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_quiet),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_rewrite_errors),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
