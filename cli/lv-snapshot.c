/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv snapshot [--size=COW] [--output=human|json] [-q] LV NAME */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "../common/size.h"
#include "../lvmglue/lvm.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor lv snapshot [--size=COW] [--output=human|json] [-q]\n"
	"                         LV NAME\n"
	"\n"
	"Take a snapshot of the logical volume LV (VG/LV, /dev/VG/LV or\n"
	"/dev/mapper/VG-LV) as NAME in the same VG, and activate it: it\n"
	"reads as LV did at this moment, while LV goes on changing (a\n"
	"running domain's disk may be snapshotted; what the domain had not\n"
	"yet written out is not in it).\n"
	"\n"
	"Without --size, LV must be thin and the snapshot is a thin LV of\n"
	"the same pool: it costs nothing until either side changes.  LVM\n"
	"marks thin snapshots 'skip activation'; vstor clears the mark, so\n"
	"that the snapshot is active now and after a reboot.  With --size,\n"
	"a classic copy-on-write snapshot with COW bytes for the blocks\n"
	"that change on LV (any LV, thin too); it becomes invalid when they\n"
	"no longer fit, and every write to LV costs a copy while it exists.\n"
	"\n"
	"Options:\n"
	"  -s, --size=COW       a classic snapshot with COW bytes of store\n"
	"                       (suffixes k, M, G, T: powers of 1024)\n"
	"      --output=FORMAT  human (default): one line; json: the\n"
	"                       snapshot as 'vstor lv list --output=json'\n"
	"                       shows it\n"
	"  -q, --quiet          print nothing on success\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 created, 1 error (no such LV, a linear LV without\n"
	"--size, a bad name, no space, lvm failed).  A snapshot that was\n"
	"made but could not be activated is removed again.\n"
	"\n"
	"Examples:\n"
	"  vstor lv snapshot vg0/web1 web1-snap\n"
	"  vstor lv snapshot --size=2G /dev/vg0/db db-backup\n";

static int lv_snapshot_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"size", required_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct lvm_lv origin, snap;
	uint64_t cow = 0;
	bool quiet = false;
	char human[32];
	int json = 0, c, ret;

	while ((c = getopt_long(argc, argv, "s:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 's':
			if (vs_parse_size(optarg, &cow, "COW size", &err) < 0) {
				vs_error_report(err);
				return 1;
			}
			if (!cow)
				return cli_usage_error("lv", "snapshot",
						       "--size: a COW store "
						       "of 0 bytes holds "
						       "nothing");
			break;
		case 'o':
			json = cli_parse_output("lv", "snapshot", optarg);
			if (json < 0)
				return 1;
			break;
		default:
			fputs("Try 'vstor help lv snapshot'.\n", stderr);
			return 1;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("lv", "snapshot",
				       "lv snapshot: expecting an LV and the "
				       "snapshot's name");
	ret = lvm_lv_find(argv[optind], &origin, &err);
	if (ret >= 0) {
		ret = lvm_snapshot_create(&origin, argv[optind + 1], cow, &snap,
					  &err);
		lvm_lv_clear(&origin);
	}
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	if (json) {
		struct json_object *o = lvm_lv_to_json(&snap);

		if (o)
			cli_print_json(o);
		else
			fputs("vstor: out of memory\n", stderr);
	} else if (!quiet) {
		vs_format_size(snap.size, human, sizeof(human));
		printf("Created %s snapshot %s/%s of %s: %s, %s\n",
		       snap.thin ? "thin" : "classic", snap.vg, snap.name,
		       snap.origin ? snap.origin : "?", human, snap.path);
	}
	lvm_lv_clear(&snap);
	return 0;
}

const struct cli_verb cli_verb_lv_snapshot = {
	.name = "snapshot",
	.summary = "snapshot a logical volume (thin, or classic with --size)",
	.usage = usage,
	.run = lv_snapshot_run,
};
