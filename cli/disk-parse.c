/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor disk parse [--output=json|human] SPEC... */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/error.h"
#include "../vbd/diskspec.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor disk parse [--output=json|human] SPEC...\n"
	"\n"
	"Check each SPEC as the disk line of a domain config, in the syntax\n"
	"of xl-disk-configuration(5), and print what it means: the target\n"
	"and its format, the virtual device and its Xen device number, the\n"
	"access mode and every other parameter that was given.  Nothing is\n"
	"opened or created; the spec is only read.\n"
	"\n"
	"A SPEC is a comma-separated list of items, for example\n"
	"  '/dev/vg/web1,raw,xvda,rw'            target, format, vdev, access\n"
	"  'phy:/dev/vg/web1,xvda,w'             the old xend syntax\n"
	"  'vdev=xvdb, format=qcow2, target=/a,b.qcow2'\n"
	"Positional items fill target, format, vdev and access in turn;\n"
	"key=value items name them (target= comes last and takes the rest\n"
	"of the SPEC, commas included); the flags cdrom, discard,\n"
	"no-discard, trusted, untrusted and direct-io-safe stand alone.\n"
	"vstor adds the formats vmdk and vdi (also as prefixes vmdk: and\n"
	"vdi:) and aio=io_uring|native|threads.  vstor-disk(1) has the\n"
	"full syntax.  Quote each SPEC for the shell, and put -- before a\n"
	"SPEC that begins with '-'.\n"
	"\n"
	"Options:\n"
	"      --output=FORMAT  json (default): one object for one SPEC, an\n"
	"                       array of objects, in order, for several;\n"
	"                       human: one 'field: value' line each, a\n"
	"                       blank line between SPECs\n"
	"  -h, --help           this help\n"
	"\n"
	"Fields, in this order; those not given are left out:\n"
	"  target          file, device or script argument (left out for\n"
	"                  an empty cdrom drive)\n"
	"  format          raw, qcow, qcow2, vhd, vmdk, vdi or empty\n"
	"  vdev            the virtual device as written (xvda, hdc, d0p1)\n"
	"  devnum          its Xen virtual-device number (xvda is 51712)\n"
	"  access          rw or ro (a cdrom is always ro)\n"
	"  devtype         disk or cdrom\n"
	"  backendtype, backend, script\n"
	"                  as given; script also from the prefixes iscsi:,\n"
	"                  nbd:, enbd: and drbd:, as block-NAME\n"
	"  discard         true or false, if discard or no-discard was given\n"
	"  trusted         true or false, if trusted or untrusted was given\n"
	"  direct-io-safe  true, if given\n"
	"  aio, specification, transport\n"
	"                  as given\n"
	"\n"
	"Exit status: 0 when every SPEC is valid; 1 otherwise, with one\n"
	"line on stderr that quotes the SPEC and names the item that is\n"
	"wrong, and nothing on stdout.\n"
	"\n"
	"Examples:\n"
	"  vstor disk parse 'phy:/dev/vg/web1,xvda1,w'\n"
	"  vstor disk parse --output=human ',hdc:cdrom,r' \\\n"
	"      'format=qcow2, vdev=xvdb, target=/var/lib/vstor/a.qcow2'\n";

static void add_string(struct json_object *o, const char *key,
		       const char *value)
{
	if (value)
		json_object_object_add(o, key, json_object_new_string(value));
}

static void add_tristate(struct json_object *o, const char *key,
			 enum vbd_tristate t)
{
	if (t != VBD_UNSET)
		json_object_object_add(o, key,
				       json_object_new_boolean(t == VBD_YES));
}

static struct json_object *spec_to_json(const struct vbd_spec *s)
{
	struct json_object *o = json_object_new_object();

	add_string(o, "target", s->target);
	add_string(o, "format", s->format);
	add_string(o, "vdev", s->vdev);
	json_object_object_add(o, "devnum", json_object_new_int64(s->devnum));
	add_string(o, "access", s->readonly ? "ro" : "rw");
	add_string(o, "devtype", s->cdrom ? "cdrom" : "disk");
	add_string(o, "backendtype", s->backendtype);
	add_string(o, "backend", s->backend);
	add_string(o, "script", s->script);
	add_tristate(o, "discard", s->discard);
	add_tristate(o, "trusted", s->trusted);
	if (s->direct_io_safe)
		json_object_object_add(o, "direct-io-safe",
				       json_object_new_boolean(1));
	add_string(o, "aio", s->aio);
	add_string(o, "specification", s->specification);
	add_string(o, "transport", s->transport);
	return o;
}

/* The JSON fields as "key: value" lines, so that both outputs always
 * carry the same facts. */
static void print_human(struct json_object *o)
{
	json_object_object_foreach(o, key, val)
	{
		printf("%s: %s\n", key, json_object_get_string(val));
	}
}

static void free_specs(struct vbd_spec **specs, int n)
{
	for (int i = 0; i < n; i++)
		vbd_spec_free(specs[i]);
	free(specs);
}

/* All SPECs are checked before anything is printed, so that a script
 * never reads half an answer. */
static int parse_all(char **texts, int n, struct vbd_spec ***out)
{
	struct vbd_spec **specs = calloc((size_t)n, sizeof(*specs));
	struct vs_error *err = NULL;

	if (!specs) {
		vs_error_set(&err, ENOMEM, "out of memory");
		vs_error_report(err);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (vbd_spec_parse(texts[i], &specs[i], &err) < 0) {
			vs_error_prefix(&err, "disk spec '%s'", texts[i]);
			vs_error_report(err);
			free_specs(specs, n);
			return -1;
		}
	}
	*out = specs;
	return 0;
}

static void print_specs(struct vbd_spec **specs, int n, bool json)
{
	struct json_object *all = json_object_new_array();

	for (int i = 0; i < n; i++)
		json_object_array_add(all, spec_to_json(specs[i]));
	if (json && n == 1) {
		cli_print_json(
			json_object_get(json_object_array_get_idx(all, 0)));
	} else if (json) {
		cli_print_json(json_object_get(all));
	} else {
		for (int i = 0; i < n; i++) {
			if (i)
				putchar('\n');
			print_human(json_object_array_get_idx(all, (size_t)i));
		}
	}
	json_object_put(all);
}

static int disk_parse_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct vbd_spec **specs;
	int json = 1, c, n;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			json = cli_parse_output("disk", "parse", optarg);
			if (json < 0)
				return 1;
			break;
		default:
			fputs("Try 'vstor help disk parse'.\n", stderr);
			return 1;
		}
	}
	n = argc - optind;
	if (n < 1)
		return cli_usage_error("disk", "parse",
				       "disk parse: no SPEC given");
	if (parse_all(argv + optind, n, &specs) < 0)
		return 1;
	print_specs(specs, n, json);
	free_specs(specs, n);
	return 0;
}

const struct cli_verb cli_verb_disk_parse = {
	.name = "parse",
	.summary = "check disk specs and show what they mean",
	.usage = usage,
	.run = disk_parse_run,
};
