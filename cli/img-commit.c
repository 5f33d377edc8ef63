/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img commit [-f FMT] [-t CACHE] [-b BASE] [-d] [-p] [-q] FILE */
#include <getopt.h>
#include <stdio.h>

#include "../common/progress.h"
#include "../imgtools/bench.h"
#include "../imgtools/commit.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img commit [-f FMT] [-t CACHE] [-b BASE] [-d] [-p] [-q]\n"
	"                        FILE\n"
	"\n"
	"Write the changes recorded in the overlay FILE into its backing\n"
	"file, as 'qemu-img commit' does.  Every range FILE decides itself\n"
	"(data, and zero clusters that hide the backing file) is written\n"
	"into the backing file, which grows first if it is smaller than\n"
	"FILE.  Then FILE is emptied (every cluster made unallocated, the\n"
	"space given back) so that it reads through to the updated backing\n"
	"file, unless -d is given.\n"
	"\n"
	"With -b, the data of FILE and of every image between it and BASE\n"
	"goes into BASE, an image further down FILE's backing chain (named\n"
	"as the chain records it, or by any path to the same file).  The\n"
	"images in between then no longer read as before, so -b implies -d:\n"
	"FILE keeps its data and still reads correctly.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT   FILE's format; default: probe\n"
	"  -t, --cache=CACHE  none, writeback (default), writethrough,\n"
	"                     directsync or unsafe (no flush at the end)\n"
	"  -b, --base=BASE    commit into BASE instead of the backing file\n"
	"  -d, --keep         do not empty FILE afterwards\n"
	"  -p, --progress     show progress on stderr\n"
	"  -q, --quiet        no 'Image committed.' line\n"
	"  -h, --help         this help\n"
	"\n"
	"Exit status: 0 committed, 1 error.\n"
	"\n"
	"Examples:\n"
	"  vstor img commit overlay.qcow2\n"
	"  vstor img commit -b base.qcow2 -p top.qcow2\n";

static void show_progress(uint64_t done, uint64_t total, void *opaque)
{
	vs_progress_update(opaque, done, total);
}

static int img_commit_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"cache", required_argument, NULL, 't'},
		{"base", required_argument, NULL, 'b'},
		{"keep", no_argument, NULL, 'd'},
		{"progress", no_argument, NULL, 'p'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct img_commit_opts o = {0};
	enum img_bench_cache cache = IMG_BENCH_CACHE_WRITEBACK;
	struct vs_progress *p = NULL;
	struct vs_error *err = NULL;
	bool quiet = false, progress = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "f:t:b:dpq", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 't':
			if (img_bench_cache_from_name(optarg, &cache, &err) <
			    0) {
				vs_error_report(err);
				return 1;
			}
			break;
		case 'b': o.base = optarg; break;
		case 'd': o.keep = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		default:
			fputs("Try 'vstor help img commit'.\n", stderr);
			return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("img", "commit",
				       optind == argc
					       ? "img commit: no FILE given"
					       : "img commit: one FILE only");
	o.unsafe = cache == IMG_BENCH_CACHE_UNSAFE;
	/* -q wins over -p, as in qemu-img. */
	if (progress && !quiet)
		p = vs_progress_new(true, -1);
	if (p) {
		o.progress = show_progress;
		o.opaque = p;
	}
	ret = img_commit(argv[optind], &o, &err);
	vs_progress_end(p, ret == 0);
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	if (!quiet)
		printf("Image committed.\n");
	return 0;
}

const struct cli_verb cli_verb_img_commit = {
	.name = "commit",
	.summary = "write an overlay's data into its backing file",
	.usage = usage,
	.run = img_commit_run,
};
