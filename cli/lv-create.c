/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv create [--thin=POOL] [--output=human|json] [-q] VG NAME SIZE */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "../common/size.h"
#include "../lvmglue/lvm.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor lv create [--thin=POOL] [--output=human|json] [-q]\n"
	"                       VG NAME SIZE\n"
	"\n"
	"Create the logical volume NAME in the volume group VG, SIZE bytes\n"
	"large (rounded up by LVM to whole extents), and activate it.  SIZE\n"
	"takes the suffixes k, M, G, T, P, E (powers of 1024).\n"
	"\n"
	"A new LV never shows a previous tenant's data.  A linear LV is\n"
	"zeroed in full before this returns (BLKZEROOUT: on a device that\n"
	"guarantees zeroes after unmapping, the space is unmapped; elsewhere\n"
	"zeroes are written, which takes as long as writing SIZE bytes).\n"
	"A thin LV costs nothing: unprovisioned space reads as zeros, and\n"
	"the pool must zero newly provisioned chunks (LVM's default; a pool\n"
	"made with --zero n is refused).  If anything fails after lvcreate,\n"
	"the new LV is removed again.\n"
	"\n"
	"Names take the characters a-z A-Z 0-9 + _ . - and do not begin\n"
	"with '-'; LVM reserves a few (see lvm(8), VALID NAMES).\n"
	"\n"
	"Options:\n"
	"  -T, --thin=POOL      a thin LV in the thin pool VG/POOL; SIZE is\n"
	"                       its virtual size\n"
	"      --output=FORMAT  human (default): one line; json: the new\n"
	"                       LV as 'vstor lv list --output=json' shows it\n"
	"  -q, --quiet          print nothing on success\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 created, 1 error (bad name or size, no space in\n"
	"the VG, no such VG or pool, lvm failed).\n"
	"\n"
	"Examples:\n"
	"  vstor lv create vg0 web1 20G\n"
	"  vstor lv create --thin=pool0 vg0 web2 100G\n";

static int lv_create_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"thin", required_argument, NULL, 'T'},
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	const char *pool = NULL;
	bool quiet = false;
	struct lvm_lv lv;
	uint64_t size;
	char human[32];
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "T:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'T': pool = optarg; break;
		case 'q': quiet = true; break;
		case 'o':
			json = cli_parse_output("lv", "create", optarg);
			if (json < 0)
				return 1;
			break;
		default:
			fputs("Try 'vstor help lv create'.\n", stderr);
			return 1;
		}
	}
	if (argc - optind != 3)
		return cli_usage_error(
			"lv", "create",
			"lv create: expecting VG, NAME and SIZE");
	if (vs_parse_size(argv[optind + 2], &size, "LV size", &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (lvm_lv_create(argv[optind], argv[optind + 1], size, pool, &lv,
			  &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (json) {
		struct json_object *o = lvm_lv_to_json(&lv);

		if (o)
			cli_print_json(o);
		else
			fputs("vstor: out of memory\n", stderr);
	} else if (!quiet) {
		vs_format_size(lv.size, human, sizeof(human));
		printf("Created %s %s/%s: %s, %s\n", lvm_lv_type(&lv), lv.vg,
		       lv.name, human, lv.path);
	}
	lvm_lv_clear(&lv);
	return 0;
}

const struct cli_verb cli_verb_lv_create = {
	.name = "create",
	.summary = "create a logical volume (zeroed) or a thin LV",
	.usage = usage,
	.run = lv_create_run,
};
