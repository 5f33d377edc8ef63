/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img convert [options] SOURCE... TARGET */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/progress.h"
#include "../common/size.h"
#include "../imgtools/convert.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img convert [-f FMT] [-O FMT] [-o OPTIONS]\n"
	"                         [-B BACKING [-F BACKING_FMT]] [-c] [-S "
	"SIZE]\n"
	"                         [-m N] [-W] [-n [--target-is-zero]] [-p]\n"
	"                         [--progress-fd=FD] [-q] [-U] [-t CACHE]\n"
	"                         [-T SRC_CACHE] SOURCE... TARGET\n"
	"\n"
	"Copy the disk image SOURCE into TARGET, converting it to the format\n"
	"given by -O, as 'qemu-img convert' does.  Several SOURCEs are\n"
	"concatenated: TARGET holds the first, then the second right after\n"
	"it, and so on.  A backing chain is flattened: TARGET holds what the\n"
	"guest sees, and needs no backing file unless -B gives it one.\n"
	"\n"
	"Ranges that read as zeros in the source are never read, and a new\n"
	"target that reads as zeros gets no write for them: the result is\n"
	"sparse.  Data is read, zero-detected and compressed by several\n"
	"threads at once and written in guest order (unless -W).  A failure\n"
	"removes the target it created; a target given with -n is kept.\n"
	"\n"
	"Options:\n"
	"  -f, --source-format=FMT   format of the sources; default: probe\n"
	"  -O, --target-format=FMT   format of TARGET: raw (default), qcow2,\n"
	"                            or any format 'vstor img create' makes\n"
	"  -o, --target-format-options=OPTIONS\n"
	"                            options for creating TARGET, as in\n"
	"                            'vstor img create -o' (several -o add "
	"up)\n"
	"  -B, -b, --backing=BACKING make TARGET an overlay of BACKING, "
	"holding\n"
	"                            only what the source's top layer holds;\n"
	"                            BACKING should read as the source's\n"
	"                            backing chain does (one SOURCE only)\n"
	"  -F, --backing-format=FMT  format of BACKING\n"
	"  -c                        compress the target's clusters (qcow2:\n"
	"                            deflate, or zstd with\n"
	"                            -o compression_type=zstd)\n"
	"  -S, --sparse-size=SIZE    leave zero runs of at least SIZE bytes\n"
	"                            unwritten (a multiple of 512 up to 16M;\n"
	"                            default 4k); 0 writes every byte\n"
	"  -m, --parallel=N          worker threads, 1 to 16 (default 8)\n"
	"  -W, --oob-writes          write each chunk when it is ready, not "
	"in\n"
	"                            guest order\n"
	"  -n, --no-create           TARGET exists (at least as large as the\n"
	"                            sources): write into it; zero ranges are\n"
	"                            written as zeros\n"
	"      --target-is-zero      with -n: TARGET reads as zeros already,\n"
	"                            zero ranges need no write\n"
	"  -p, --progress            show progress on stderr\n"
	"      --progress-fd=FD      write progress to FD as JSON lines,\n"
	"                            {\"done\": BYTES, \"total\": BYTES}, the\n"
	"                            last one with done equal to total\n"
	"  -q, --quiet               no progress, no messages but errors\n"
	"  -U, --force-share         open the sources without keeping writers\n"
	"                            out\n"
	"  -t, --target-cache=CACHE  unsafe (default: a new target is\n"
	"                            flushed once, at the end, its metadata\n"
	"                            written back unordered), writeback (the\n"
	"                            same, ordered), none (O_DIRECT),\n"
	"                            writethrough or directsync (a flush\n"
	"                            after every chunk)\n"
	"  -T, --source-cache=CACHE  the same for the sources (writeback;\n"
	"                            none and directsync read with O_DIRECT)\n"
	"  -h, --help                this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error.\n"
	"\n"
	"Examples:\n"
	"  vstor img convert -O qcow2 -c web1.img web1.qcow2\n"
	"  vstor img convert -f qcow2 -O raw -p web1.qcow2 /dev/vg0/web1\n"
	"  vstor img convert -O qcow2 -B base.qcow2 -F qcow2 top.qcow2 "
	"new.qcow2\n";

enum {
	OPT_TARGET_IS_ZERO = 256,
	OPT_PROGRESS_FD,
};

/* Append ",more" (a whole -o list) to *opts. */
static int join_opts(char **opts, const char *more)
{
	char *s;

	if (asprintf(&s, "%s%s%s", *opts ? *opts : "", *opts ? "," : "", more) <
	    0)
		return -1;
	free(*opts);
	*opts = s;
	return 0;
}

static void on_progress(uint64_t done, uint64_t total, void *opaque)
{
	vs_progress_update(opaque, done, total);
}

static int parse_int(const char *arg, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

struct cli_opts {
	struct img_convert_opts c;
	char *options;
	bool progress, quiet;
	int progress_fd;
};

/* One option; 1 when argv is wrong (the message is printed). */
static int parse_one(int c, struct cli_opts *o)
{
	struct img_convert_opts *co = &o->c;
	struct vs_error *err = NULL;
	long v;

	switch (c) {
	case 'f': co->source_format = optarg; break;
	case 'O': co->target_format = optarg; break;
	case 'o':
		if (join_opts(&o->options, optarg) < 0)
			return cli_usage_error("img", "convert",
					       "out of memory");
		break;
	case 'B':
	case 'b': co->backing = optarg; break;
	case 'F': co->backing_format = optarg; break;
	case 'c': co->compress = true; break;
	case 'S':
		if (vs_parse_size(optarg, &co->min_sparse,
				  "buffer size for sparse output", &err) < 0) {
			vs_error_report(err);
			return 1;
		}
		break;
	case 'm':
		if (parse_int(optarg, 1, IMG_CONVERT_MAX_PARALLEL, &v) < 0)
			return cli_usage_error(
				"img", "convert",
				"Invalid number of coroutines. Allowed number "
				"of coroutines is between 1 and %u",
				IMG_CONVERT_MAX_PARALLEL);
		co->parallel = (unsigned)v;
		break;
	case 'W': co->out_of_order = true; break;
	case 'n': co->no_create = true; break;
	case OPT_TARGET_IS_ZERO: co->target_is_zero = true; break;
	case 'p': o->progress = true; break;
	case OPT_PROGRESS_FD:
		if (parse_int(optarg, 0, INT_MAX, &v) < 0)
			return cli_usage_error("img", "convert",
					       "--progress-fd: '%s' is not a "
					       "file descriptor",
					       optarg);
		o->progress_fd = (int)v;
		break;
	case 'q': o->quiet = true; break;
	case 'U': co->force_share = true; break;
	case 't':
	case 'T':
		if (img_bench_cache_from_name(
			    optarg, c == 't' ? &co->cache : &co->src_cache,
			    &err) < 0) {
			vs_error_report(err);
			return 1;
		}
		break;
	default: fputs("Try 'vstor help img convert'.\n", stderr); return 1;
	}
	return 0;
}

static int img_convert_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"source-format", required_argument, NULL, 'f'},
		{"target-format", required_argument, NULL, 'O'},
		{"target-format-options", required_argument, NULL, 'o'},
		{"backing", required_argument, NULL, 'B'},
		{"backing-format", required_argument, NULL, 'F'},
		{"sparse-size", required_argument, NULL, 'S'},
		{"parallel", required_argument, NULL, 'm'},
		{"oob-writes", no_argument, NULL, 'W'},
		{"no-create", no_argument, NULL, 'n'},
		{"target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO},
		{"progress", no_argument, NULL, 'p'},
		{"progress-fd", required_argument, NULL, OPT_PROGRESS_FD},
		{"quiet", no_argument, NULL, 'q'},
		{"force-share", no_argument, NULL, 'U'},
		{"target-cache", required_argument, NULL, 't'},
		{"source-cache", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	struct cli_opts o = {.progress_fd = -1};
	struct vs_progress *prog;
	struct vs_error *err = NULL;
	int c, ret;

	img_convert_opts_init(&o.c);
	while ((c = getopt_long(argc, argv, "f:O:o:B:b:F:cS:m:WnpqUt:T:",
				longopts, NULL)) != -1) {
		if (parse_one(c, &o)) {
			free(o.options);
			return 1;
		}
	}
	if (argc - optind < 2) {
		free(o.options);
		return cli_usage_error(
			"img", "convert",
			argc == optind ? "Must specify image file name"
				       : "img convert: no TARGET given");
	}
	o.c.options = o.options;
	o.c.sources = (const char *const *)&argv[optind];
	o.c.nsources = argc - optind - 1;
	o.c.target = argv[argc - 1];
	if (o.progress_fd >= 0 && fcntl(o.progress_fd, F_GETFD) < 0) {
		free(o.options);
		return cli_usage_error("img", "convert",
				       "--progress-fd: %d is not open",
				       o.progress_fd);
	}
	prog = vs_progress_new(o.progress && !o.quiet, o.progress_fd);
	if (prog) {
		o.c.progress = on_progress;
		o.c.opaque = prog;
	}
	ret = img_convert(&o.c, &err);
	vs_progress_end(prog, ret == 0);
	free(o.options);
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

const struct cli_verb cli_verb_img_convert = {
	.name = "convert",
	.summary = "convert an image to another format, or copy it",
	.usage = usage,
	.run = img_convert_run,
};
