/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img resize [-f FMT] [--shrink] [--preallocation=MODE] [-q] FILE
 * [+|-]SIZE */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../common/size.h"
#include "../imgtools/resize.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img resize [-f FMT] [--shrink] [--preallocation=MODE]\n"
	"                        [-q] FILE [+|-]SIZE\n"
	"\n"
	"Change the virtual size of the disk image FILE, as 'qemu-img\n"
	"resize' does: to SIZE bytes, or by SIZE bytes more (+SIZE) or less\n"
	"(-SIZE; put '--' before it, or it reads as an option).  SIZE takes\n"
	"the suffixes k, M, G, T, P, E (powers of 1024).\n"
	"\n"
	"Growing: the new bytes read as zeros, also in an overlay whose\n"
	"backing file is longer (they become zero clusters).  A qcow2 L1\n"
	"table too small for the new size is replaced by a larger one,\n"
	"crash-safely.  Shrinking needs --shrink: the data past the new end\n"
	"is lost, its clusters are freed and the file is cut.  qcow2 sizes\n"
	"are multiples of 512; version 2 qcow2 images with internal\n"
	"snapshots cannot be resized.  The image must not be in use.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT         the image's format; default: probe\n"
	"      --shrink             allow making the image smaller\n"
	"      --preallocation=MODE off (default), falloc (reserve the new\n"
	"                           bytes) or full (write them); growing\n"
	"                           only (qcow2: both allocate and write)\n"
	"  -q, --quiet              no 'Image resized.' line\n"
	"  -h, --help               this help\n"
	"\n"
	"Exit status: 0 resized, 1 error.\n"
	"\n"
	"Examples:\n"
	"  vstor img resize web1.qcow2 +10G\n"
	"  vstor img resize --shrink -f raw disk.img -- -1G\n";

enum { OPT_SHRINK = 256, OPT_PREALLOC };

static int parse_prealloc(const char *arg, unsigned *out)
{
	if (!strcmp(arg, "off"))
		*out = 0;
	else if (!strcmp(arg, "falloc"))
		*out = VBD_TRUNC_PREALLOC_FALLOC;
	else if (!strcmp(arg, "full"))
		*out = VBD_TRUNC_PREALLOC_FULL;
	else if (!strcmp(arg, "metadata"))
		return cli_usage_error("img", "resize",
				       "Unsupported preallocation mode: %s",
				       arg);
	else
		return cli_usage_error("img", "resize",
				       "Invalid preallocation mode '%s'", arg);
	return 0;
}

static int parse_amount(const char *arg, struct img_resize_opts *o)
{
	struct vs_error *err = NULL;

	o->how = IMG_RESIZE_TO;
	if (*arg == '+' || *arg == '-')
		o->how = *arg++ == '+' ? IMG_RESIZE_GROW_BY
				       : IMG_RESIZE_SHRINK_BY;
	if (vs_parse_size(arg, &o->amount, "size", &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int img_resize_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"shrink", no_argument, NULL, OPT_SHRINK},
		{"preallocation", required_argument, NULL, OPT_PREALLOC},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct img_resize_opts o = {0};
	struct img_resize_result res;
	struct vs_error *err = NULL;
	const char *pos[3];
	bool quiet = false;
	int c, n = 0;

	while ((c = getopt_long(argc, argv, "f:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'q': quiet = true; break;
		case OPT_SHRINK: o.shrink = true; break;
		case OPT_PREALLOC:
			if (parse_prealloc(optarg, &o.prealloc))
				return 1;
			break;
		default:
			fputs("Try 'vstor help img resize'.\n", stderr);
			return 1;
		}
	}
	/* A "--" that getopt left in place (it stops at the first
	 * operand) only protects a negative size. */
	for (int i = optind; i < argc; i++)
		if (!strcmp(argv[i], "--") && n < 3)
			continue;
		else if (n < 3)
			pos[n++] = argv[i];
	if (n != 2 || optind + 3 < argc)
		return cli_usage_error("img", "resize",
				       "img resize: expecting image file name "
				       "and size");
	if (parse_amount(pos[1], &o))
		return 1;
	if (img_resize(pos[0], &o, &res, &err) < 0) {
		vs_error_report(err);
		if (res.shrink_refused)
			fputs("vstor: warning: Shrinking an image will delete "
			      "all data beyond the shrunken image's end. "
			      "Before performing such an operation, make sure "
			      "there is no important data there.\n",
			      stderr);
		return 1;
	}
	if (!quiet)
		printf("Image resized.\n");
	return 0;
}

const struct cli_verb cli_verb_img_resize = {
	.name = "resize",
	.summary = "change an image's virtual size",
	.usage = usage,
	.run = img_resize_run,
};
