/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv resize [--shrink] [-q] LV [+|-]SIZE */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/size.h"
#include "../lvmglue/lvm.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor lv resize [--shrink] [-q] LV [+|-]SIZE\n"
	"\n"
	"Change the size of the logical volume LV (VG/LV, /dev/VG/LV or\n"
	"/dev/mapper/VG-LV): to SIZE bytes, or by SIZE bytes more (+SIZE)\n"
	"or less (-SIZE; put '--' before it, or it reads as an option).\n"
	"SIZE takes the suffixes k, M, G, T, P, E (powers of 1024); LVM\n"
	"rounds the new size up to whole extents.  A size equal to the\n"
	"current one (after rounding) changes nothing.\n"
	"\n"
	"Growing: the new space of a linear LV is zeroed before this\n"
	"returns, so that it never shows data of a removed LV; a thin LV's\n"
	"new space reads as zeros anyway.  An LV in use may grow; its user\n"
	"sees the new size only when it looks again (a domain when its\n"
	"disk is re-attached).  Shrinking needs --shrink: the data past the\n"
	"new end is lost, and an LV in use is refused.  A filesystem on the\n"
	"LV is not resized.\n"
	"\n"
	"Options:\n"
	"      --shrink  allow making the LV smaller\n"
	"  -q, --quiet   print nothing on success\n"
	"  -h, --help    this help\n"
	"\n"
	"Exit status: 0 resized (or already that size), 1 error.\n"
	"\n"
	"Examples:\n"
	"  vstor lv resize vg0/web1 +10G\n"
	"  vstor lv resize --shrink /dev/vg0/web1 -- -1G\n";

enum { OPT_SHRINK = 256 };

/* The absolute size that `arg` asks for, from the LV's current size. */
static int target_size(const char *arg, const struct lvm_lv *lv, uint64_t *out,
		       struct vs_error **err)
{
	char how = (*arg == '+' || *arg == '-') ? *arg++ : 0;
	uint64_t amount;
	int ret = vs_parse_size(arg, &amount, "LV size", err);

	if (ret < 0)
		return ret;
	if (how == '+' && amount > UINT64_MAX - lv->size)
		return vs_error_set(err, EINVAL,
				    "%s/%s: %" PRIu64 " + %" PRIu64
				    " bytes is too large",
				    lv->vg, lv->name, lv->size, amount);
	if (how == '-' && amount >= lv->size)
		return vs_error_set(err, EINVAL,
				    "%s/%s: cannot shrink %" PRIu64
				    " bytes by %" PRIu64,
				    lv->vg, lv->name, lv->size, amount);
	*out = how == '+'   ? lv->size + amount
	       : how == '-' ? lv->size - amount
			    : amount;
	return 0;
}

static int lv_resize_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"shrink", no_argument, NULL, OPT_SHRINK},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	bool quiet = false, shrink = false;
	struct lvm_lv lv = {0}, after;
	const char *pos[3];
	uint64_t size = 0;
	char human[32];
	int c, n = 0, ret;

	while ((c = getopt_long(argc, argv, "q", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case OPT_SHRINK: shrink = true; break;
		default:
			fputs("Try 'vstor help lv resize'.\n", stderr);
			return 1;
		}
	}
	/* A "--" that getopt left in place only protects a negative size. */
	for (int i = optind; i < argc; i++)
		if (strcmp(argv[i], "--") && n < 3)
			pos[n++] = argv[i];
	if (n != 2 || argc - optind > 3)
		return cli_usage_error("lv", "resize",
				       "lv resize: expecting an LV and a size");
	ret = lvm_lv_find(pos[0], &lv, &err);
	if (ret >= 0)
		ret = target_size(pos[1], &lv, &size, &err);
	if (ret >= 0)
		ret = lvm_lv_resize_to(&lv, size, shrink, &after, &err);
	if (ret < 0) {
		vs_error_report(err);
		if (ret == -EINVAL && !shrink && size && size < lv.size)
			fputs("vstor: to shrink, pass --shrink: the data past "
			      "the new end is lost\n",
			      stderr);
		lvm_lv_clear(&lv);
		return 1;
	}
	lvm_lv_clear(&lv);
	lv = after;
	if (!quiet) {
		vs_format_size(lv.size, human, sizeof(human));
		printf("Resized %s/%s: %s (%" PRIu64 " bytes)\n", lv.vg,
		       lv.name, human, lv.size);
	}
	lvm_lv_clear(&lv);
	return 0;
}

const struct cli_verb cli_verb_lv_resize = {
	.name = "resize",
	.summary = "grow a logical volume, or shrink it with --shrink",
	.usage = usage,
	.run = lv_resize_run,
};
