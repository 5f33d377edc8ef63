/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv show [--output=human|json] LV|DEVICE */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../lvmglue/lvm.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor lv show [--output=human|json] LV|DEVICE\n"
	"\n"
	"Tell whether a disk is an LVM logical volume, and which: the LV's\n"
	"VG, size, type, thin pool or origin and whether it is in use.\n"
	"This is how a domain's 'phy:' disk is recognised as an LV.\n"
	"\n"
	"LV is written VG/LV, /dev/VG/LV or /dev/mapper/VG-LV (each '-' of\n"
	"a VG or LV name doubled there).  DEVICE is any other path to a\n"
	"block device (a /dev/dm-N node, a udev link): it is an LV when\n"
	"device-mapper says LVM made it and lvm lists it.  LVM's internal\n"
	"layers (a thin pool's data, an origin's '-real' device) are not\n"
	"LVs.\n"
	"\n"
	"Options:\n"
	"      --output=FORMAT  human (default): one 'field: value' line\n"
	"                       each; json: one object, with the fields of\n"
	"                       'vstor lv list --output=json'\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 it is an LV; 2 it is not (a file, a partition, a\n"
	"device-mapper device LVM did not make, an LV that does not\n"
	"exist); 1 error (lvm failed, the path cannot be read).\n"
	"\n"
	"Examples:\n"
	"  vstor lv show vg0/web1\n"
	"  vstor lv show --output=json /dev/mapper/vg0-web1\n";

/* The JSON fields as "field: value" lines, so both outputs carry the
 * same facts. */
static void print_human(struct json_object *o)
{
	json_object_object_foreach(o, key, val)
	{
		printf("%s: %s\n", key,
		       val ? json_object_get_string(val) : "-");
	}
}

/* Find the LV behind `arg`: an existing block device asks the kernel
 * which device-mapper device it is; anything else (also an inactive
 * LV, which has no node) is looked up by name. */
static int lookup(const char *arg, struct lvm_lv *lv, struct vs_error **err)
{
	struct stat st;
	int ret;

	if (arg[0] == '/' && stat(arg, &st) == 0 && S_ISBLK(st.st_mode)) {
		ret = lvm_lv_probe(arg, lv, err);
		if (ret == 0)
			return vs_error_set(err, ENOENT,
					    "%s: not an LVM logical volume",
					    arg);
		return ret;
	}
	return lvm_lv_find(arg, lv, err);
}

static int lv_show_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct json_object *o;
	struct lvm_lv lv;
	int json = 0, c, ret;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			json = cli_parse_output("lv", "show", optarg);
			if (json < 0)
				return 1;
			break;
		default: fputs("Try 'vstor help lv show'.\n", stderr); return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("lv", "show",
				       "lv show: expecting one LV or device");
	ret = lookup(argv[optind], &lv, &err);
	if (ret < 0) {
		vs_error_report(err);
		return ret == -ENOENT ? 2 : 1;
	}
	o = lvm_lv_to_json(&lv);
	lvm_lv_clear(&lv);
	if (!o) {
		fputs("vstor: out of memory\n", stderr);
		return 1;
	}
	if (json) {
		cli_print_json(o);
	} else {
		print_human(o);
		json_object_put(o);
	}
	return 0;
}

const struct cli_verb cli_verb_lv_show = {
	.name = "show",
	.summary = "tell whether a disk is an LV, and which",
	.usage = usage,
	.run = lv_show_run,
};
