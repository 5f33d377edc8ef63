/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv remove [-f] [-q] LV */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "../lvmglue/lvm.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor lv remove [-f] [-q] LV\n"
	"\n"
	"Remove the logical volume LV, written VG/LV, /dev/VG/LV or\n"
	"/dev/mapper/VG-LV.  Its data is gone; its extents return to the\n"
	"VG (a later 'vstor lv create' zeroes them before reuse).\n"
	"\n"
	"An LV in use is refused: one whose device is open, by a running\n"
	"domain, a mount, a device-mapper table (a snapshot, kpartx) or any\n"
	"other process.  Stop the user first.  An LV that others depend on\n"
	"is refused too, naming them: a thin pool that still has thin LVs,\n"
	"and an origin with classic snapshots (lvm would remove those with\n"
	"it).  A thin LV's thin snapshots do not depend on it.\n"
	"\n"
	"Options:\n"
	"  -f, --force  also remove the dependent LVs named above (each\n"
	"               must not be in use; an LV in use is never removed)\n"
	"  -q, --quiet  print nothing on success\n"
	"  -h, --help   this help\n"
	"\n"
	"Exit status: 0 removed, 1 error (no such LV, in use, has\n"
	"dependents, lvm failed).\n"
	"\n"
	"Examples:\n"
	"  vstor lv remove vg0/web1\n"
	"  vstor lv remove -f /dev/vg0/pool0\n";

static int lv_remove_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	char *vg = NULL, *lv = NULL;
	bool quiet = false;
	unsigned flags = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "fq", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': flags |= LVM_REMOVE_DEPENDENTS; break;
		case 'q': quiet = true; break;
		default:
			fputs("Try 'vstor help lv remove'.\n", stderr);
			return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("lv", "remove",
				       "lv remove: expecting one LV");
	ret = lvm_name_split(argv[optind], &vg, &lv, &err);
	if (ret >= 0)
		ret = lvm_lv_remove_flags(vg, lv, flags, &err);
	if (ret >= 0 && !quiet)
		printf("Removed %s/%s\n", vg, lv);
	free(vg);
	free(lv);
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

const struct cli_verb cli_verb_lv_remove = {
	.name = "remove",
	.summary = "remove a logical volume that is not in use",
	.usage = usage,
	.run = lv_remove_run,
};
