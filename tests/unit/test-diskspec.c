/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for vbd/diskspec.c and vbd/vdev.c: xl disk specs
 * (xl-disk-configuration(5)) and Xen virtual-device numbers
 * (docs/misc/vbd-interface in Xen).
 */
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
#include "vbd/diskspec.h"

#define UNUSED __attribute__((unused))

/* What a spec must parse to.  Tri-states are written 'y', 'n' or 0
 * (unset), so that a zeroed field means "unset" in an initializer. */
struct want {
	const char *target;
	const char *format;
	const char *vdev;
	long devnum;
	bool ro;
	bool cdrom;
	const char *backendtype;
	const char *backend;
	const char *script;
	const char *specification;
	const char *transport;
	const char *aio;
	char discard;
	char trusted;
	bool dio;
};

static enum vbd_tristate tri(char c)
{
	return c == 'y' ? VBD_YES : c == 'n' ? VBD_NO : VBD_UNSET;
}

static void str_eq(const char *got, const char *want)
{
	if (!want)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

static struct vbd_spec *parse_ok(const char *text)
{
	struct vs_error *err = NULL;
	struct vbd_spec *spec = NULL;
	int ret = vbd_spec_parse(text, &spec, &err);

	if (ret)
		print_error("'%s': %s\n", text, vs_error_msg(err));
	assert_int_equal(ret, 0);
	assert_null(err);
	assert_non_null(spec);
	return spec;
}

static void check_spec(const char *text, const struct want *w)
{
	struct vbd_spec *s = parse_ok(text);

	str_eq(s->target, w->target);
	str_eq(s->format, w->format);
	str_eq(s->vdev, w->vdev);
	assert_int_equal(s->devnum, w->devnum);
	assert_int_equal(s->readonly, w->ro);
	assert_int_equal(s->cdrom, w->cdrom);
	str_eq(s->backendtype, w->backendtype);
	str_eq(s->backend, w->backend);
	str_eq(s->script, w->script);
	str_eq(s->specification, w->specification);
	str_eq(s->transport, w->transport);
	str_eq(s->aio, w->aio);
	assert_int_equal(s->discard, tri(w->discard));
	assert_int_equal(s->trusted, tri(w->trusted));
	assert_int_equal(s->direct_io_safe, w->dio);
	vbd_spec_free(s);
}

static void spec_equal(const struct vbd_spec *a, const struct vbd_spec *b)
{
	str_eq(a->target, b->target);
	str_eq(a->format, b->format);
	str_eq(a->vdev, b->vdev);
	assert_int_equal(a->devnum, b->devnum);
	assert_int_equal(a->readonly, b->readonly);
	assert_int_equal(a->cdrom, b->cdrom);
	str_eq(a->backendtype, b->backendtype);
	str_eq(a->backend, b->backend);
	str_eq(a->script, b->script);
	str_eq(a->specification, b->specification);
	str_eq(a->transport, b->transport);
	str_eq(a->aio, b->aio);
	assert_int_equal(a->discard, b->discard);
	assert_int_equal(a->trusted, b->trusted);
	assert_int_equal(a->direct_io_safe, b->direct_io_safe);
}

/* Every spelling in the NULL-terminated list means the same disk. */
static void check_same(const char *const *texts)
{
	struct vbd_spec *first = parse_ok(texts[0]);

	for (int i = 1; texts[i]; i++) {
		struct vbd_spec *s = parse_ok(texts[i]);

		spec_equal(first, s);
		vbd_spec_free(s);
	}
	vbd_spec_free(first);
}

/* The spec is refused with EINVAL and a message containing needle; *out
 * is left alone. */
static void check_error(const char *text, const char *needle)
{
	struct vbd_spec *sentinel = (struct vbd_spec *)&sentinel;
	struct vbd_spec *spec = sentinel;
	struct vs_error *err = NULL;

	assert_int_equal(vbd_spec_parse(text, &spec, &err), -EINVAL);
	assert_non_null(err);
	if (!strstr(vs_error_msg(err), needle))
		fail_msg("'%s': message '%s' lacks '%s'", text,
			 vs_error_msg(err), needle);
	assert_ptr_equal(spec, sentinel);
	vs_error_free(err);
}

static void check_devnum(const char *vdev, long devnum, int disk, int part)
{
	int d = -7, p = -7;

	assert_int_equal(vbd_vdev_to_devnum(vdev, &d, &p), devnum);
	assert_int_equal(d, disk);
	assert_int_equal(p, part);
	assert_int_equal(vbd_vdev_to_devnum(vdev, NULL, NULL), devnum);
}

static void check_bad_vdev(const char *vdev)
{
	char spec[128];

	if (vbd_vdev_to_devnum(vdev, NULL, NULL) != -EINVAL)
		fail_msg("vdev '%s' was accepted", vdev);
	if (!*vdev)
		return;
	snprintf(spec, sizeof(spec), "/x.img,,%s", vdev);
	check_error(spec, "bad vdev '");
}

/* ---- the examples of xl-disk-configuration(5) ---- */

static const struct want volume = {
	.target = "/dev/vg/guest-volume",
	.format = "raw",
	.vdev = "hda",
	.devnum = 768,
};

static void test_xl_volume_short(void **state UNUSED)
{
	check_spec("/dev/vg/guest-volume,,hda", &volume);
}

static void test_xl_volume_positional(void **state UNUSED)
{
	check_spec("/dev/vg/guest-volume,raw,hda,rw", &volume);
}

static void test_xl_volume_keyvalue(void **state UNUSED)
{
	check_spec("format=raw, vdev=hda, access=rw, "
		   "target=/dev/vg/guest-volume",
		   &volume);
}

static void test_xl_volume_legacy(void **state UNUSED)
{
	check_spec("raw:/dev/vg/guest-volume,hda,w", &volume);
}

static void test_xl_volume_all_equal(void **state UNUSED)
{
	static const char *const texts[] = {
		"/dev/vg/guest-volume,,hda",
		"/dev/vg/guest-volume,raw,hda,rw",
		"format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
		"raw:/dev/vg/guest-volume,hda,w",
		"phy:/dev/vg/guest-volume,hda,w",
		NULL,
	};

	check_same(texts);
}

static const struct want iso = {
	.target = "/root/image.iso",
	.format = "raw",
	.vdev = "hdc",
	.devnum = 5632,
	.ro = true,
	.cdrom = true,
};

static void test_xl_cdrom_flag(void **state UNUSED)
{
	check_spec("/root/image.iso,,hdc,cdrom", &iso);
}

static void test_xl_cdrom_flag_after_access(void **state UNUSED)
{
	check_spec("/root/image.iso,,hdc,,cdrom", &iso);
}

static void test_xl_cdrom_devtype(void **state UNUSED)
{
	check_spec("/root/image.iso,raw,hdc,devtype=cdrom", &iso);
}

static void test_xl_cdrom_keyvalue(void **state UNUSED)
{
	check_spec("format=raw, vdev=hdc, access=ro, devtype=cdrom, "
		   "target=/root/image.iso",
		   &iso);
}

static void test_xl_cdrom_legacy(void **state UNUSED)
{
	check_spec("raw:/root/image.iso,hdc:cdrom,ro", &iso);
}

static void test_xl_cdrom_all_equal(void **state UNUSED)
{
	static const char *const texts[] = {
		"/root/image.iso,,hdc,cdrom",
		"/root/image.iso,,hdc,,cdrom",
		"/root/image.iso,raw,hdc,devtype=cdrom",
		"format=raw, vdev=hdc, access=ro, devtype=cdrom, "
		"target=/root/image.iso",
		"raw:/root/image.iso,hdc:cdrom,ro",
		"file:/root/image.iso,hdc:cdrom,r",
		"vdev=hdc:cdrom,target=/root/image.iso",
		NULL,
	};

	check_same(texts);
}

static void test_xl_empty_cdrom_legacy(void **state UNUSED)
{
	static const struct want w = {
		.format = "empty",
		.vdev = "hdc",
		.devnum = 5632,
		.ro = true,
		.cdrom = true,
	};

	check_spec(",hdc:cdrom,r", &w);
}

static void test_xl_empty_cdrom_all_equal(void **state UNUSED)
{
	static const char *const texts[] = {
		",hdc:cdrom,r",
		"vdev=hdc, access=r, devtype=cdrom",
		"cdrom,vdev=hdc",
		"format=empty, vdev=hdc, cdrom",
		",,hdc,,cdrom",
		"vdev=hdc,cdrom,target=",
		NULL,
	};

	check_same(texts);
}

/* ---- legacy prefixes ---- */

static void test_prefix_stacked(void **state UNUSED)
{
	static const char *const texts[] = {
		"tap2:tapdisk:aio:/x.img,xvda,w",
		"tap:aio:/x.img,xvda,w",
		"format=raw, vdev=xvda, access=rw, target=/x.img",
		NULL,
	};
	static const struct want w = {
		.target = "/x.img",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
	};

	check_spec(texts[0], &w);
	check_same(texts);
}

static void test_prefix_ignored(void **state UNUSED)
{
	static const char *const names[] = {
		"phy", "file", "tap", "tap2", "tapdisk", "aio", "ioemu",
	};
	static const struct want w = {
		.target = "/dev/vg/web1",
		.format = "raw",
		.vdev = "xvda1",
		.devnum = 51713,
	};
	char spec[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(spec, sizeof(spec), "%s:/dev/vg/web1,xvda1,w",
			 names[i]);
		check_spec(spec, &w);
	}
}

static void test_prefix_format(void **state UNUSED)
{
	static const char *const names[] = {
		"raw", "qcow", "qcow2", "vhd", "vmdk", "vdi",
	};
	char legacy[64], keyed[96];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *texts[] = {legacy, keyed, NULL};
		struct want w = {
			.target = "/img/a",
			.format = names[i],
			.vdev = "xvdb",
			.devnum = 51728,
			.ro = true,
		};

		snprintf(legacy, sizeof(legacy), "%s:/img/a,xvdb,r", names[i]);
		snprintf(keyed, sizeof(keyed),
			 "format=%s, vdev=xvdb, access=ro, target=/img/a",
			 names[i]);
		check_spec(legacy, &w);
		check_same(texts);
	}
}

static void test_prefix_script(void **state UNUSED)
{
	static const char *const names[] = {"iscsi", "nbd", "enbd", "drbd"};
	char legacy[64], keyed[96], script[32];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *texts[] = {legacy, keyed, NULL};
		struct want w = {
			.target = "host:1234",
			.format = "raw",
			.vdev = "xvdc",
			.devnum = 51744,
			.script = script,
		};

		snprintf(script, sizeof(script), "block-%s", names[i]);
		snprintf(legacy, sizeof(legacy), "%s:host:1234,xvdc,w",
			 names[i]);
		snprintf(keyed, sizeof(keyed),
			 "script=block-%s, vdev=xvdc, target=host:1234",
			 names[i]);
		check_spec(legacy, &w);
		check_same(texts);
	}
}

static void test_prefix_iscsi_iqn(void **state UNUSED)
{
	static const struct want w = {
		.target = "iqn.2010-04.org.example:storage.disk1",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
		.script = "block-iscsi",
	};

	check_spec("iscsi:iqn.2010-04.org.example:storage.disk1,xvda,w", &w);
}

/* A legacy prefix means the old syntax, which has no format slot. */
static void test_prefix_no_format_slot(void **state UNUSED)
{
	check_error("raw:/x.img,qcow2,xvda", "bad vdev 'qcow2'");
	check_error("/x.img,xvda,w", "unknown format 'xvda'");
}

/* Only lower-case words followed by a non-alphanumeric are prefixes. */
static void test_not_a_prefix(void **state UNUSED)
{
	static const struct want w1 = {
		.target = "/srv/a:b.img",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
	};
	static const struct want w2 = {
		.target = "host:export",
		.format = "qcow2",
		.vdev = "xvda",
		.devnum = 51712,
	};
	static const struct want w3 = {
		.target = "C:\\disk.img",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
	};

	check_spec("/srv/a:b.img,,xvda", &w1);
	check_spec("host:export,qcow2,xvda", &w2);
	check_spec("C:\\disk.img,,xvda", &w3);
}

/* ---- target=, whitespace, positional order ---- */

static void test_target_takes_rest(void **state UNUSED)
{
	static const struct want w = {
		.target = "/srv/a,b,c=d.img",
		.format = "qcow2",
		.vdev = "xvda",
		.devnum = 51712,
	};

	check_spec("vdev=xvda,format=qcow2,target=/srv/a,b,c=d.img", &w);
}

static void test_target_literal(void **state UNUSED)
{
	static const struct want w = {
		.target = "phy:/dev/sdb",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
	};

	check_spec("vdev=xvda, target=phy:/dev/sdb", &w);
}

static void test_target_trailing(void **state UNUSED)
{
	struct vbd_spec *s = parse_ok("vdev=xvda,target=/x.img  ");

	assert_string_equal(s->target, "/x.img  ");
	vbd_spec_free(s);
	s = parse_ok("vdev=xvda,target=/x.img,");
	assert_string_equal(s->target, "/x.img");
	vbd_spec_free(s);
}

static void test_target_after_empty_positional(void **state UNUSED)
{
	static const struct want w = {
		.target = "/srv/with,comma.img",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
		.ro = true,
	};

	check_spec(",,xvda,ro,target=/srv/with,comma.img", &w);
}

static void test_whitespace(void **state UNUSED)
{
	static const struct want w = {
		.target = "/x.img",
		.format = "qcow2",
		.vdev = "xvdb",
		.devnum = 51728,
		.ro = true,
		.discard = 'n',
	};

	check_spec("  /x.img , qcow2 ,\txvdb ,\n ro , no-discard ", &w);
	check_spec(" format=qcow2 ,vdev=xvdb,  access=r,no-discard,"
		   "  target=/x.img",
		   &w);
}

static void test_positional_skips_named(void **state UNUSED)
{
	static const struct want w = {
		.target = "/x.img",
		.format = "qcow2",
		.vdev = "xvdb",
		.devnum = 51728,
		.ro = true,
	};

	check_spec("format=qcow2,/x.img,xvdb,ro", &w);
	check_spec("vdev=xvdb,/x.img,qcow2,ro", &w);
	check_spec("access=ro,vdev=xvdb,/x.img,qcow2", &w);
	check_spec("/x.img,qcow2,xvdb,ro,", &w);
}

/* ---- flags and the other keys ---- */

static void test_flags(void **state UNUSED)
{
	static const struct want w = {
		.target = "/x.img",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
		.discard = 'y',
		.trusted = 'n',
		.dio = true,
	};
	static const struct want w2 = {
		.target = "/x.img",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
		.discard = 'n',
		.trusted = 'y',
	};

	check_spec("/x.img,,xvda,discard,untrusted,direct-io-safe", &w);
	check_spec("no-discard,trusted,/x.img,,xvda", &w2);
	/* The same flag twice is harmless. */
	check_spec("discard,discard,untrusted,direct-io-safe,/x.img,,xvda,"
		   "direct-io-safe,untrusted",
		   &w);
}

static void test_flags_default_unset(void **state UNUSED)
{
	struct vbd_spec *s = parse_ok("/x.img,,xvda");

	assert_int_equal(s->discard, VBD_UNSET);
	assert_int_equal(s->trusted, VBD_UNSET);
	assert_false(s->direct_io_safe);
	assert_false(s->cdrom);
	assert_false(s->readonly);
	vbd_spec_free(s);
}

static void test_other_keys(void **state UNUSED)
{
	static const struct want w = {
		.target = "/dev/vg/web1",
		.format = "raw",
		.vdev = "xvda",
		.devnum = 51712,
		.backendtype = "qdisk",
		.backend = "storage-dom",
		.script = "block-dummy",
		.specification = "virtio",
		.transport = "mmio",
		.aio = "native",
	};

	check_spec("backendtype=qdisk, backend=storage-dom, "
		   "script=block-dummy, specification=virtio, transport=mmio, "
		   "aio=native, vdev=xvda, target=/dev/vg/web1",
		   &w);
}

/* vstor extension: the qcow2 L2 cache size, with size suffixes. */
static void test_l2_cache_size(void **state UNUSED)
{
	struct vbd_spec *s = parse_ok("/x.qcow2,qcow2,xvda,l2-cache-size=4M");

	assert_int_equal(s->l2_cache_size, 4u << 20);
	vbd_spec_free(s);
	s = parse_ok("/x.qcow2,qcow2,xvda");
	assert_int_equal(s->l2_cache_size, 0);
	vbd_spec_free(s);
	check_error("/x,,xvda,l2-cache-size=lots", "l2-cache-size");
	check_error("/x,,xvda,l2-cache-size=1M,l2-cache-size=2M",
		    "duplicate parameter 'l2-cache-size'");
}

static void test_backendtypes(void **state UNUSED)
{
	static const char *const names[] = {"phy", "tap", "qdisk",
					    "standalone"};
	char spec[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct vbd_spec *s;

		snprintf(spec, sizeof(spec), "/x,,xvda,backendtype=%s",
			 names[i]);
		s = parse_ok(spec);
		assert_string_equal(s->backendtype, names[i]);
		vbd_spec_free(s);
	}
}

static void test_aio_engines(void **state UNUSED)
{
	static const char *const names[] = {"io_uring", "native", "threads"};
	char spec[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct vbd_spec *s;

		snprintf(spec, sizeof(spec), "/x,,xvda,aio=%s", names[i]);
		s = parse_ok(spec);
		assert_string_equal(s->aio, names[i]);
		vbd_spec_free(s);
	}
}

static void test_specification_xen(void **state UNUSED)
{
	struct vbd_spec *s = parse_ok("/x,,xvda,specification=xen");

	assert_string_equal(s->specification, "xen");
	assert_null(s->transport);
	vbd_spec_free(s);
}

static void test_formats_positional(void **state UNUSED)
{
	static const char *const names[] = {
		"raw", "qcow", "qcow2", "vhd", "vmdk", "vdi",
	};
	char spec[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct vbd_spec *s;

		snprintf(spec, sizeof(spec), "/img/a,%s,xvda", names[i]);
		s = parse_ok(spec);
		assert_string_equal(s->format, names[i]);
		vbd_spec_free(s);
	}
}

static void test_access_values(void **state UNUSED)
{
	static const struct {
		const char *text;
		bool ro;
	} cases[] = {
		{"/x,,xvda,r", true},	      {"/x,,xvda,ro", true},
		{"/x,,xvda,w", false},	      {"/x,,xvda,rw", false},
		{"/x,,xvda,", false},	      {"/x,,xvda,access=", false},
		{"access=ro,/x,,xvda", true}, {"/x,,xvda,access=w", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vbd_spec *s = parse_ok(cases[i].text);

		assert_int_equal(s->readonly, cases[i].ro);
		vbd_spec_free(s);
	}
}

/* xl makes every cdrom read-only, even with access=rw. */
static void test_cdrom_forces_readonly(void **state UNUSED)
{
	check_spec("/root/image.iso,,hdc,rw,cdrom", &iso);
	check_spec("/root/image.iso,raw,hdc:cdrom,w", &iso);
}

static void test_devtype_disk(void **state UNUSED)
{
	static const struct want w = {
		.target = "/x.img",
		.format = "raw",
		.vdev = "hdb",
		.devnum = 832,
	};

	check_spec("/x.img,,hdb,devtype=disk", &w);
	check_spec("phy:/x.img,hdb:disk,w", &w);
}

/* ---- virtual-device numbers ---- */

static void test_devnum_examples(void **state UNUSED)
{
	check_devnum("xvda", 51712, 0, 0);
	check_devnum("xvdb", 51728, 1, 0);
	check_devnum("xvdq", 268439552, 16, 0);
	check_devnum("hda1", 769, 0, 1);
	check_devnum("hdc", 5632, 2, 0);
	check_devnum("sdb3", 2067, 1, 3);
	check_devnum("d536p37", 268572709, 536, 37);
}

static void test_devnum_xvd(void **state UNUSED)
{
	check_devnum("xvda1", 51713, 0, 1);
	check_devnum("xvdp", 51952, 15, 0);
	check_devnum("xvdp15", 51967, 15, 15);
	check_devnum("xvda16", 268435472, 0, 16);
	check_devnum("xvda255", 268435711, 0, 255);
	check_devnum("xvdtq37", 268572709, 536, 37);
}

/* Disk letters are bijective base 26: a..z, aa..zz, aaa... */
static void test_devnum_letters(void **state UNUSED)
{
	check_devnum("xvdz", 1L << 28 | 25 << 8, 25, 0);
	check_devnum("xvdaa", 1L << 28 | 26 << 8, 26, 0);
	check_devnum("xvdaz", 1L << 28 | 51 << 8, 51, 0);
	check_devnum("xvdba", 1L << 28 | 52 << 8, 52, 0);
	check_devnum("xvdzz", 1L << 28 | 701 << 8, 701, 0);
	check_devnum("xvdaaa", 1L << 28 | 702 << 8, 702, 0);
	check_devnum("xvdaaaaa", 1L << 28 | 475254L << 8, 475254, 0);
	/* 1048575 = 2^20 - 1, the last disk: "bgqcv" */
	check_devnum("xvdbgqcv", 1L << 28 | 1048575L << 8, 1048575, 0);
	check_bad_vdev("xvdbgqcw");
	check_bad_vdev("xvdaaaaaa");
}

static void test_devnum_hd(void **state UNUSED)
{
	check_devnum("hda", 768, 0, 0);
	check_devnum("hdb", 832, 1, 0);
	check_devnum("hdb63", 895, 1, 63);
	check_devnum("hdc2", 5634, 2, 2);
	check_devnum("hdd", 5696, 3, 0);
	check_devnum("hdd63", 5759, 3, 63);
	check_bad_vdev("hde");
	check_bad_vdev("hda64");
}

static void test_devnum_sd(void **state UNUSED)
{
	check_devnum("sda", 2048, 0, 0);
	check_devnum("sdp15", 2303, 15, 15);
	check_bad_vdev("sdq");
	check_bad_vdev("sda16");
}

static void test_devnum_dp(void **state UNUSED)
{
	check_devnum("d0", 51712, 0, 0);
	check_devnum("d0p0", 51712, 0, 0);
	check_devnum("d1p2", 51730, 1, 2);
	check_devnum("d15p15", 51967, 15, 15);
	check_devnum("d16", 268439552, 16, 0);
	check_devnum("d0p16", 268435472, 0, 16);
	check_devnum("d1048575p255", 536870911, 1048575, 255);
	check_bad_vdev("d1048576");
	check_bad_vdev("d0p256");
}

static void test_devnum_zeros(void **state UNUSED)
{
	check_bad_vdev("xvda0");
	check_bad_vdev("xvda01");
	check_bad_vdev("hda0");
	check_bad_vdev("sda0");
	check_bad_vdev("d01");
	check_bad_vdev("d00p1");
	check_bad_vdev("d1p01");
	check_bad_vdev("d1p00");
}

static void test_devnum_garbage(void **state UNUSED)
{
	static const char *const bad[] = {
		"",
		"xvd",
		"xvd1",
		"xvdA",
		"XVDA",
		"hd",
		"sd",
		"d",
		"dp1",
		"d1p",
		"d-1",
		"d+1",
		"d1q2",
		"d0x1",
		"xvda1x",
		"xvda-1",
		"xvda+1",
		"vda",
		"xvda 1",
		"51712",
		"0xca00",
		"d99999999999999999999",
		"xvda99999999999999999999",
		"xvdaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad_vdev(bad[i]);
	assert_int_equal(vbd_vdev_to_devnum(NULL, NULL, NULL), -EINVAL);
}

static void test_spec_devnum(void **state UNUSED)
{
	struct vbd_spec *s = parse_ok("/x,,d536p37");

	assert_string_equal(s->vdev, "d536p37");
	assert_int_equal(s->devnum, 268572709);
	vbd_spec_free(s);
}

/* ---- errors, each naming its token ---- */

static void test_err_unknown_parameter(void **state UNUSED)
{
	check_error("foo=bar,/x,,xvda", "unknown parameter 'foo=bar'");
	check_error("/x,,xvda,colo-host=10.0.0.2",
		    "unknown parameter 'colo-host=10.0.0.2'");
	check_error("/x,,xvda,grant_usage=1",
		    "unknown parameter 'grant_usage=1'");
	check_error("/x,,xvda,Format=raw", "unknown parameter 'Format=raw'");
	check_error("/srv/a=b.img,,xvda", "unknown parameter '/srv/a=b.img'");
	check_error("/srv/a=b.img,,xvda", "target=");
	check_error("/x,,xvda,format = raw",
		    "unknown parameter 'format = raw'");
}

static void test_err_unknown_prefix(void **state UNUSED)
{
	check_error("blah:/x.img,xvda,w", "unknown prefix 'blah:'");
	check_error("phy:blah:/x.img,xvda,w", "unknown prefix 'blah:'");
	check_error("qed:/x.img,xvda,w", "unknown prefix 'qed:'");
	check_error("c:\\x.img,,xvda", "unknown prefix 'c:'");
	check_error("foo:,xvda,w", "unknown prefix 'foo:'");
}

static void test_err_duplicate_key(void **state UNUSED)
{
	check_error("format=raw,format=qcow2,/x,xvda",
		    "duplicate parameter 'format'");
	check_error("format=raw,format=raw,/x,xvda",
		    "duplicate parameter 'format'");
	check_error("vdev=xvda,vdev=xvdb,target=/x",
		    "duplicate parameter 'vdev' at 'vdev=xvdb'");
	check_error("/x,,xvda,access=r,access=r",
		    "duplicate parameter 'access'");
	check_error("/x,,xvda,devtype=disk,devtype=disk",
		    "duplicate parameter 'devtype'");
	check_error("/x,,xvda,backend=a,backend=b",
		    "duplicate parameter 'backend'");
	check_error("/x,,xvda,aio=native,aio=threads",
		    "duplicate parameter 'aio'");
}

static void test_err_duplicate_positional(void **state UNUSED)
{
	check_error("/x,qcow2,xvda,format=raw",
		    "duplicate parameter 'format' at 'format=raw'");
	check_error("/x,,xvda,vdev=xvdb", "duplicate parameter 'vdev'");
	check_error("/x,,xvda,rw,access=ro", "duplicate parameter 'access'");
	check_error("/x,,xvda,target=/y", "duplicate parameter 'target'");
	check_error("raw:qcow2:/x,xvda,w", "duplicate parameter 'format'");
	check_error("qcow2:/x,xvda,w,format=qcow2",
		    "duplicate parameter 'format'");
	check_error("nbd:host:1234,xvda,w,script=block-nbd",
		    "duplicate parameter 'script'");
}

static void test_err_conflicting_flags(void **state UNUSED)
{
	check_error("/x,,xvda,discard,no-discard",
		    "conflicting parameter 'no-discard'");
	check_error("/x,,xvda,untrusted,trusted",
		    "conflicting parameter 'trusted'");
	check_error("/x,,hdc,cdrom,devtype=disk",
		    "conflicting parameter 'devtype=disk'");
	check_error("raw:/x,hdc:cdrom,r,devtype=disk",
		    "conflicting parameter 'devtype=disk'");
}

static void test_err_bad_vdev(void **state UNUSED)
{
	check_error("/x,,xvd0", "bad vdev 'xvd0'");
	check_error("/x,,vdev=hde", "bad vdev 'hde'");
	check_error("phy:/x,xvda0,w", "bad vdev 'xvda0'");
	check_error("/x,,xvda0:cdrom", "bad vdev 'xvda0'");
	check_error("/x,,hdc:floppy", "unknown devtype 'floppy'");
}

static void test_err_bad_access(void **state UNUSED)
{
	check_error("/x,,xvda,rx", "bad access 'rx'");
	check_error("/x,,xvda,access=readonly", "bad access 'readonly'");
	check_error("/x,,xvda,RW", "bad access 'RW'");
}

static void test_err_missing_vdev(void **state UNUSED)
{
	check_error("", "missing vdev");
	check_error("   ", "missing vdev");
	check_error("/x.img", "missing vdev");
	check_error("/x.img,qcow2", "missing vdev");
	check_error("/x.img,qcow2,", "missing vdev");
	check_error("vdev=,target=/x.img", "missing vdev");
	check_error("cdrom,target=/x.iso", "missing vdev");
}

static void test_err_unknown_format(void **state UNUSED)
{
	check_error("/x,qed,xvda", "unknown format 'qed'");
	check_error("vdev=xvda,format=iso,target=/x", "unknown format 'iso'");
	/* ",," gives the format (as the default): it may not come again. */
	check_error("/x,,xvda,format=qcow2", "duplicate parameter 'format'");
	check_error("/x,QCOW2,xvda", "unknown format 'QCOW2'");
}

static void test_err_unknown_values(void **state UNUSED)
{
	check_error("/x,,xvda,devtype=floppy", "unknown devtype 'floppy'");
	check_error("/x,,xvda,backendtype=qemu", "unknown backendtype 'qemu'");
	check_error("/x,,xvda,specification=scsi",
		    "unknown specification 'scsi'");
	check_error("/x,,xvda,transport=pci", "unknown transport 'pci'");
	check_error("/x,,xvda,aio=posix", "unknown aio 'posix'");
}

static void test_err_too_many_positional(void **state UNUSED)
{
	check_error("/x,raw,xvda,rw,extra",
		    "too many positional parameters at 'extra'");
	check_error("vdev=xvda,/x,raw,rw,xvdb", "at 'xvdb'");
	/* xl fills the access slot when the vdev slot was named. */
	check_error("vdev=xvda,/x,raw,xvdb", "bad access 'xvdb'");
}

static void test_err_missing_target(void **state UNUSED)
{
	check_error(",,xvda", "missing target");
	check_error("vdev=xvda", "missing target");
	check_error("vdev=xvda,target=", "missing target");
	check_error(",hda:disk,w", "missing target");
}

static void test_err_empty_format(void **state UNUSED)
{
	check_error("/x,empty,xvda", "format 'empty' is only for a cdrom");
	check_error("/x.iso,empty,hdc,cdrom",
		    "format 'empty' with target '/x.iso'");
}

static void test_err_null(void **state UNUSED)
{
	check_error(NULL, "no disk spec");
}

/* The first error is the one reported, and an error already in *errp is
 * left alone. */
static void test_err_first_wins(void **state UNUSED)
{
	struct vs_error *err = NULL;
	struct vbd_spec *spec = NULL;

	assert_int_equal(vbd_spec_parse("foo=1,bar=2", &spec, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "'foo=1'"));
	assert_null(strstr(vs_error_msg(err), "bar"));
	assert_int_equal(vbd_spec_parse("/x,,xvd0", &spec, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "'foo=1'"));
	assert_null(spec);
	vs_error_free(err);
}

/* Hostile input: long items, many items, odd bytes. */
static void test_hostile(void **state UNUSED)
{
	size_t n = 1 << 16;
	char *big = malloc(n + 64);
	struct vbd_spec *s;

	assert_non_null(big);
	strcpy(big, "vdev=xvda,target=/");
	memset(big + strlen(big), 'a', n);
	big[n + 18] = '\0';
	s = parse_ok(big);
	assert_int_equal(strlen(s->target), n + 1);
	vbd_spec_free(s);

	memset(big, ',', n);
	big[n] = '\0';
	check_error(big, "too many positional parameters at ''");

	memset(big, 'a', n);
	memcpy(big + n - 2, ":/", 3);
	check_error(big, "unknown prefix 'aaaa");
	free(big);

	check_error("/x,,xvda\x01", "bad vdev 'xvda\x01'");
	check_error("/x,,\xff\xfe", "bad vdev '\xff\xfe'");
}

/* ---- vbd_spec_new / vbd_spec_free ---- */

static void test_spec_new(void **state UNUSED)
{
	struct vbd_spec *s = vbd_spec_new("/x.img", NULL, true);

	assert_non_null(s);
	assert_string_equal(s->target, "/x.img");
	assert_string_equal(s->format, "raw");
	assert_null(s->vdev);
	assert_int_equal(s->devnum, -1);
	assert_true(s->readonly);
	assert_false(s->cdrom);
	assert_int_equal(s->discard, VBD_UNSET);
	assert_int_equal(s->trusted, VBD_UNSET);
	assert_null(s->aio);
	vbd_spec_free(s);

	s = vbd_spec_new(NULL, "qcow2", false);
	assert_non_null(s);
	assert_null(s->target);
	assert_string_equal(s->format, "qcow2");
	assert_false(s->readonly);
	vbd_spec_free(s);
	vbd_spec_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xl_volume_short),
		cmocka_unit_test(test_xl_volume_positional),
		cmocka_unit_test(test_xl_volume_keyvalue),
		cmocka_unit_test(test_xl_volume_legacy),
		cmocka_unit_test(test_xl_volume_all_equal),
		cmocka_unit_test(test_xl_cdrom_flag),
		cmocka_unit_test(test_xl_cdrom_flag_after_access),
		cmocka_unit_test(test_xl_cdrom_devtype),
		cmocka_unit_test(test_xl_cdrom_keyvalue),
		cmocka_unit_test(test_xl_cdrom_legacy),
		cmocka_unit_test(test_xl_cdrom_all_equal),
		cmocka_unit_test(test_xl_empty_cdrom_legacy),
		cmocka_unit_test(test_xl_empty_cdrom_all_equal),
		cmocka_unit_test(test_prefix_stacked),
		cmocka_unit_test(test_prefix_ignored),
		cmocka_unit_test(test_prefix_format),
		cmocka_unit_test(test_prefix_script),
		cmocka_unit_test(test_prefix_iscsi_iqn),
		cmocka_unit_test(test_prefix_no_format_slot),
		cmocka_unit_test(test_not_a_prefix),
		cmocka_unit_test(test_target_takes_rest),
		cmocka_unit_test(test_target_literal),
		cmocka_unit_test(test_target_trailing),
		cmocka_unit_test(test_target_after_empty_positional),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_positional_skips_named),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_flags_default_unset),
		cmocka_unit_test(test_other_keys),
		cmocka_unit_test(test_backendtypes),
		cmocka_unit_test(test_l2_cache_size),
		cmocka_unit_test(test_aio_engines),
		cmocka_unit_test(test_specification_xen),
		cmocka_unit_test(test_formats_positional),
		cmocka_unit_test(test_access_values),
		cmocka_unit_test(test_cdrom_forces_readonly),
		cmocka_unit_test(test_devtype_disk),
		cmocka_unit_test(test_devnum_examples),
		cmocka_unit_test(test_devnum_xvd),
		cmocka_unit_test(test_devnum_letters),
		cmocka_unit_test(test_devnum_hd),
		cmocka_unit_test(test_devnum_sd),
		cmocka_unit_test(test_devnum_dp),
		cmocka_unit_test(test_devnum_zeros),
		cmocka_unit_test(test_devnum_garbage),
		cmocka_unit_test(test_spec_devnum),
		cmocka_unit_test(test_err_unknown_parameter),
		cmocka_unit_test(test_err_unknown_prefix),
		cmocka_unit_test(test_err_duplicate_key),
		cmocka_unit_test(test_err_duplicate_positional),
		cmocka_unit_test(test_err_conflicting_flags),
		cmocka_unit_test(test_err_bad_vdev),
		cmocka_unit_test(test_err_bad_access),
		cmocka_unit_test(test_err_missing_vdev),
		cmocka_unit_test(test_err_unknown_format),
		cmocka_unit_test(test_err_unknown_values),
		cmocka_unit_test(test_err_too_many_positional),
		cmocka_unit_test(test_err_missing_target),
		cmocka_unit_test(test_err_empty_format),
		cmocka_unit_test(test_err_null),
		cmocka_unit_test(test_err_first_wins),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_spec_new),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
