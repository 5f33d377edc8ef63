/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img compare [-f FMT] [-F FMT] [-s] [-p] [-q] [-U] FILE1 FILE2 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "../common/progress.h"
#include "../imgtools/compare.h"
#include "../vbd/vbd.h"
#include "cli.h"

/* Exit codes, as qemu-img compare has them. */
enum {
	EXIT_SAME = 0,
	EXIT_DIFFER = 1,
	EXIT_OPEN = 2,	 /* an image could not be opened */
	EXIT_STATUS = 3, /* block status failed */
	EXIT_READ = 4,	 /* a read failed */
};

static const char usage[] =
	"Usage: vstor img compare [-f FMT] [-F FMT] [-s] [-p] [-q] [-U]\n"
	"                         FILE1 FILE2\n"
	"\n"
	"Check whether two disk images read the same, as 'qemu-img compare'\n"
	"does: images of different formats, or with different allocation,\n"
	"are identical when every byte a guest would read is the same.\n"
	"Ranges that both images know to be zeros are not read.  The first\n"
	"difference is reported as the offset of the 512-byte sector that\n"
	"holds it:\n"
	"\n"
	"  Content mismatch at offset N!\n"
	"\n"
	"When the sizes differ, the images are compared over the shorter\n"
	"size and the rest of the longer one must read as zeros (\"Warning:\n"
	"Image size mismatch!\" is printed first).  In strict mode (-s) a\n"
	"size difference, or any difference in what block status says\n"
	"(allocated or not, zeros, data, stored at a known place), is a\n"
	"difference even when the bytes read the same.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT     FILE1's format; default: probe\n"
	"  -F FMT               FILE2's format; default: probe\n"
	"  -s, --strict         sizes and allocation must match too\n"
	"  -p, --progress       show progress on stderr\n"
	"  -q, --quiet          print nothing on stdout (the exit status\n"
	"                       tells)\n"
	"  -U, --force-share    open without keeping writers out\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status:\n"
	"  0   the images are identical\n"
	"  1   they differ (or a usage error)\n"
	"  2   an image could not be opened\n"
	"  3   the allocation of an image could not be read\n"
	"  4   an image could not be read\n"
	"\n"
	"Example:\n"
	"  vstor img compare web1.qcow2 web1-copy.raw\n";

struct opts {
	const char *fmt[2];
	unsigned flags;
	bool strict, progress, quiet;
};

static int report(const struct img_compare_result *r, bool quiet)
{
	static const int codes[] = {
		[IMG_CMP_IDENTICAL] = EXIT_SAME,
		[IMG_CMP_CONTENT] = EXIT_DIFFER,
		[IMG_CMP_SIZE] = EXIT_DIFFER,
		[IMG_CMP_STATUS] = EXIT_DIFFER,
		[IMG_CMP_ERR_STATUS] = EXIT_STATUS,
		[IMG_CMP_ERR_READ] = EXIT_READ,
	};

	if (quiet)
		return codes[r->verdict];
	if (r->size_mismatch)
		printf("Warning: Image size mismatch!\n");
	switch (r->verdict) {
	case IMG_CMP_IDENTICAL: printf("Images are identical.\n"); break;
	case IMG_CMP_CONTENT:
		printf("Content mismatch at offset %" PRIu64 "!\n", r->offset);
		break;
	case IMG_CMP_SIZE: printf("Strict mode: Image size mismatch!\n"); break;
	case IMG_CMP_STATUS:
		printf("Strict mode: Offset %" PRIu64
		       " block status mismatch!\n",
		       r->offset);
		break;
	case IMG_CMP_ERR_STATUS:
	case IMG_CMP_ERR_READ: break;
	}
	return codes[r->verdict];
}

static int run_compare(char **files, const struct opts *o)
{
	struct vs_error *err = NULL;
	struct vbd *vbd[2] = {NULL, NULL};
	struct img_compare_result r;
	struct vs_progress *p = NULL;
	int ret = EXIT_OPEN;

	for (int i = 0; i < 2; i++) {
		if (vbd_open_file(files[i], o->fmt[i], o->flags, &vbd[i],
				  &err) < 0) {
			vs_error_report(err);
			goto out;
		}
	}
	if (o->progress)
		p = vs_progress_new(true, -1);
	ret = img_compare(vbd[0], vbd[1], o->strict, p, &r, &err);
	vs_progress_end(p, ret == 0);
	/* What was found is printed before an error that stopped the
	 * search, as qemu-img prints its size warning first. */
	fflush(stdout);
	if (ret < 0)
		vs_error_report(err);
	ret = report(&r, o->quiet);
out:
	vbd_close(vbd[0]);
	vbd_close(vbd[1]);
	return ret;
}

static int img_compare_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"strict", no_argument, NULL, 's'},
		{"progress", no_argument, NULL, 'p'},
		{"quiet", no_argument, NULL, 'q'},
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.flags = VBD_O_RDONLY};
	int c;

	while ((c = getopt_long(argc, argv, "f:F:spqU", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f': o.fmt[0] = optarg; break;
		case 'F': o.fmt[1] = optarg; break;
		case 's': o.strict = true; break;
		case 'p': o.progress = true; break;
		case 'q': o.quiet = true; break;
		case 'U': o.flags |= VBD_O_SHARE; break;
		default:
			fputs("Try 'vstor help img compare'.\n", stderr);
			return EXIT_DIFFER;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("img", "compare",
				       "img compare: expecting two image file "
				       "names");
	/* -q wins over -p, as in qemu-img. */
	if (o.quiet)
		o.progress = false;
	return run_compare(argv + optind, &o);
}

const struct cli_verb cli_verb_img_compare = {
	.name = "compare",
	.summary = "check whether two images read the same",
	.usage = usage,
	.run = img_compare_run,
};
