/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img rebase [-f FMT] [-t CACHE] [-F BACKING_FMT] [-b BACKING] [-u]
 * [-p] [-q] [-U] FILE */
#include <getopt.h>
#include <stdio.h>

#include "../common/progress.h"
#include "../imgtools/bench.h"
#include "../imgtools/rebase.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img rebase [-f FMT] [-t CACHE] [-F BACKING_FMT]\n"
	"                        [-b BACKING] [-u] [-p] [-q] [-U] FILE\n"
	"\n"
	"Give the image FILE another backing file, as 'qemu-img rebase'\n"
	"does.  BACKING is recorded as given: a relative name is relative\n"
	"to FILE's directory.  -b \"\" removes the backing file, and FILE\n"
	"then stands alone.  A non-empty BACKING needs its format (-F).\n"
	"\n"
	"Safe mode (the default) keeps what FILE reads: wherever FILE has\n"
	"nothing of its own, what its old backing chain reads and what\n"
	"BACKING reads are compared, and FILE gets the old content where\n"
	"they differ; only then is BACKING recorded.  The old backing chain\n"
	"must open.  Unsafe mode (-u) only changes the recorded name and\n"
	"format (for a backing file that was moved or renamed); the old one\n"
	"need not exist.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT      FILE's format; default: probe\n"
	"  -t, --cache=CACHE     none, writeback (default), writethrough,\n"
	"                        directsync or unsafe (no flush before the\n"
	"                        new name is recorded)\n"
	"  -b, --backing=FILE    the new backing file (\"\" for none)\n"
	"  -F, --backing-format=FMT  its format\n"
	"  -u, --unsafe          only change the recorded name and format\n"
	"  -p, --progress        show progress on stderr\n"
	"  -q, --quiet           print nothing but errors\n"
	"  -U, --force-share     open the new backing file even while\n"
	"                        another process writes it\n"
	"  -h, --help            this help\n"
	"\n"
	"Exit status: 0 rebased, 1 error.\n"
	"\n"
	"Examples:\n"
	"  vstor img rebase -b new-base.qcow2 -F qcow2 overlay.qcow2\n"
	"  vstor img rebase -b \"\" overlay.qcow2\n"
	"  vstor img rebase -u -b /moved/base.raw -F raw overlay.qcow2\n";

static void show_progress(uint64_t done, uint64_t total, void *opaque)
{
	vs_progress_update(opaque, done, total);
}

static int img_rebase_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"cache", required_argument, NULL, 't'},
		{"backing", required_argument, NULL, 'b'},
		{"backing-format", required_argument, NULL, 'F'},
		{"unsafe", no_argument, NULL, 'u'},
		{"progress", no_argument, NULL, 'p'},
		{"quiet", no_argument, NULL, 'q'},
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	struct img_rebase_opts o = {0};
	enum img_bench_cache cache = IMG_BENCH_CACHE_WRITEBACK;
	struct vs_progress *p = NULL;
	struct vs_error *err = NULL;
	bool quiet = false, progress = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "f:t:b:F:upqU", longopts, NULL)) !=
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
		case 'b': o.backing = optarg; break;
		case 'F': o.backing_format = optarg; break;
		case 'u': o.unsafe = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'U': o.force_share = true; break;
		default:
			fputs("Try 'vstor help img rebase'.\n", stderr);
			return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("img", "rebase",
				       optind == argc
					       ? "img rebase: no FILE given"
					       : "img rebase: one FILE only");
	if (!o.backing && !o.unsafe)
		return cli_usage_error("img", "rebase",
				       "Must specify backing file (-b) or use "
				       "unsafe mode (-u)");
	if (!o.backing)
		o.backing = ""; /* -u alone: the image stands alone */
	o.unsafe_cache = cache == IMG_BENCH_CACHE_UNSAFE;
	if (progress && !quiet && !o.unsafe)
		p = vs_progress_new(true, -1);
	if (p) {
		o.progress = show_progress;
		o.opaque = p;
	}
	ret = img_rebase(argv[optind], &o, &err);
	vs_progress_end(p, ret == 0);
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

const struct cli_verb cli_verb_img_rebase = {
	.name = "rebase",
	.summary = "change an image's backing file",
	.usage = usage,
	.run = img_rebase_run,
};
