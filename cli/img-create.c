/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img create [-f FMT] [-o OPTIONS] FILE SIZE */
#include <getopt.h>
#include <stdio.h>

#include "../common/log.h"
#include "../common/size.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img create [-q] [-f FMT] [-o OPTIONS]\n"
	"                        [-b BACKING [-F BACKING_FMT]] FILE [SIZE]\n"
	"\n"
	"Create a disk image FILE of virtual size SIZE.  SIZE is bytes or a\n"
	"number with a suffix K, M, G, T, P or E (powers of 1024): 10G.\n"
	"FILE may also be an existing block device that is at least SIZE\n"
	"bytes large; it keeps its size.\n"
	"\n"
	"An existing FILE is replaced, but only if no running domain, vstor\n"
	"or QEMU process has it open: the image lock is taken first.\n"
	"\n"
	"Options:\n"
	"  -f FMT       image format; default raw.  Formats: raw\n"
	"  -o OPTIONS   format options, key=value[,key=value...]; for raw:\n"
	"                 preallocation=off|falloc|full (default off: a\n"
	"                 sparse file)\n"
	"  -b BACKING   backing file (copy-on-write formats only)\n"
	"  -F FMT       format of the backing file\n"
	"  -q           quiet: no 'Formatting' line\n"
	"  -h, --help   this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error.\n"
	"\n"
	"Example:\n"
	"  vstor img create -f raw /var/lib/vstor/web1-swap.img 1G\n";

static int img_create_run(int argc, char **argv)
{
	struct vs_error *err = NULL;
	const char *fmt = "raw", *options = NULL, *backing = NULL;
	bool quiet = false;
	uint64_t size;
	int c;

	while ((c = getopt(argc, argv, "f:o:b:F:uq")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'o': options = optarg; break;
		case 'b': backing = optarg; break;
		case 'F': break;
		case 'u': break;
		case 'q': quiet = true; break;
		default:
			fputs("Try 'vstor help img create'.\n", stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return cli_usage_error("img", "create",
				       "img create: no FILE given");
	if (backing)
		return cli_usage_error("img", "create",
				       "img create: format '%s' does not "
				       "support backing files",
				       fmt);
	if (optind + 2 != argc)
		return cli_usage_error(
			"img", "create",
			optind + 1 == argc ? "img create: no SIZE given"
					   : "img create: too many arguments");
	if (vs_parse_size(argv[optind + 1], &size, "image size", &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (vbd_create(argv[optind], fmt, size, options, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	/* After the fact, unlike qemu-img: a refused create must not look
	 * as if it had begun. */
	if (!quiet)
		printf("Formatting '%s', fmt=%s size=%llu\n", argv[optind], fmt,
		       (unsigned long long)size);
	return 0;
}

const struct cli_verb cli_verb_img_create = {
	.name = "create",
	.summary = "create a new disk image",
	.usage = usage,
	.run = img_create_run,
};
