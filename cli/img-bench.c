/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img bench [-c COUNT] [-d DEPTH] [-f FMT] [--flush-interval=N
 * [--no-drain]] [-i AIO] [-n] [-o OFFSET] [--pattern=PATTERN] [-q]
 * [-s BUFFER_SIZE] [-S STEP_SIZE] [-t CACHE] [-w] [-U] FILE
 *
 * Same options, defaults and output lines as qemu-img bench, so that a
 * script can run both and parse both the same way.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/size.h"
#include "../imgtools/bench.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img bench [-c COUNT] [-d DEPTH] [-f FMT]\n"
	"         [--flush-interval=N [--no-drain]] [-i AIO] [-n]\n"
	"         [-o OFFSET] [--pattern=PATTERN] [-q] [-s BUFFER_SIZE]\n"
	"         [-S STEP_SIZE] [-t CACHE] [-w] [-U] FILE\n"
	"\n"
	"Measure the I/O speed of FILE with the workload of 'qemu-img\n"
	"bench': COUNT requests of BUFFER_SIZE bytes, DEPTH of them in\n"
	"flight at once.  The first request is at OFFSET and each following\n"
	"one STEP_SIZE bytes further on; a position past the end of the\n"
	"image wraps around modulo the image size.  A step that is an odd\n"
	"number of 4 KiB blocks, on an image whose size is a power of two,\n"
	"visits every block once, jumping around the file, before any block\n"
	"comes again.\n"
	"\n"
	"A read test is the default; the image is then opened read-only.\n"
	"With -w it is opened for writing and every request writes a buffer\n"
	"filled with the PATTERN byte.\n"
	"\n"
	"Options:\n"
	"  -c, --count=COUNT     requests in all (default 75000)\n"
	"  -d, --depth=DEPTH     requests in flight at once, 1 to 65536\n"
	"                        (default 64)\n"
	"  -f, --format=FMT      the image's format (raw); default: probe\n"
	"      --flush-interval=N\n"
	"                        write test: whenever the number of\n"
	"                        requests still to send is a multiple of N,\n"
	"                        wait for the requests in flight, flush,\n"
	"                        and go on.  N may not be smaller than\n"
	"                        DEPTH.  Default: no flush but the one\n"
	"                        after the run\n"
	"      --no-drain        with --flush-interval: flush without\n"
	"                        waiting for the requests in flight\n"
	"  -i, --aio=AIO         I/O engine: io_uring, native (Linux AIO;\n"
	"                        needs -t none or directsync) or threads.\n"
	"                        Default: io_uring, or threads where the\n"
	"                        kernel has no io_uring\n"
	"  -n, --native          the same as -i native\n"
	"  -o, --offset=OFFSET   offset of the first request (default 0)\n"
	"      --pattern=PATTERN write test: the byte to write, 0 to 255,\n"
	"                        in decimal, 0x hex or 0 octal (default 0)\n"
	"  -q, --quiet           no warnings (the result lines are printed\n"
	"                        all the same, as qemu-img prints them)\n"
	"  -s, --buffer-size=BUFFER_SIZE\n"
	"                        bytes per request (default 4K)\n"
	"  -S, --step-size=STEP_SIZE\n"
	"                        bytes from one request's start to the next\n"
	"                        one's (default, and 0: BUFFER_SIZE)\n"
	"  -t, --cache=CACHE     none: O_DIRECT;\n"
	"                        writeback: the page cache (the default);\n"
	"                        writethrough: the page cache, and a flush\n"
	"                        after every write;\n"
	"                        directsync: O_DIRECT, and a flush after\n"
	"                        every write;\n"
	"                        unsafe: the page cache, no flushes at all\n"
	"  -w, --write           a write test instead of a read test\n"
	"  -U, --force-share     read test: do not keep writers out\n"
	"  -h, --help            this help\n"
	"\n"
	"Sizes and offsets take the suffixes K, M, G, T, P and E (powers of\n"
	"1024) and may be fractional with a suffix (1.5M).\n"
	"\n"
	"Output (the lines qemu-img bench prints; the first is one line):\n"
	"  Sending COUNT read|write requests, BUFFER_SIZE bytes each,\n"
	"  DEPTH in parallel (starting at offset OFFSET, step size STEP)\n"
	"  Sending flush every N requests      (with --flush-interval)\n"
	"  Run completed in SECONDS seconds.\n"
	"\n"
	"The time runs from the first request to the completion of the\n"
	"last, on the monotonic clock; opening the image and the final\n"
	"flush of a write test are not in it.  IOPS = COUNT / SECONDS.\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr);\n"
	"the run stops at the first failed request.\n"
	"\n"
	"Examples:\n"
	"  vstor img bench -f raw -t none -i io_uring -d 32 disk.img\n"
	"  vstor img bench -f raw -w -t none -d 1 -S 32436224 disk.img\n";

/* Long-only options. */
enum {
	OPT_FLUSH_INTERVAL = 256,
	OPT_NO_DRAIN,
	OPT_PATTERN,
};

#define usage_error(...) cli_usage_error("img", "bench", __VA_ARGS__)

/* A whole decimal number from 0 to max, as qemu-img takes -c and -d. */
static int parse_uint(const char *arg, unsigned max, const char *what,
		      unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (!*arg || *end || errno || arg[strspn(arg, " \t")] == '-' || v > max)
		return usage_error("img bench: invalid %s '%s': expected a "
				   "whole number from 0 to %u",
				   what, arg, max);
	*out = (unsigned)v;
	return 0;
}

static int parse_size32(const char *arg, uint32_t max, const char *what,
			uint32_t *out)
{
	struct vs_error *err = NULL;
	uint64_t v;

	if (vs_parse_size(arg, &v, what, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (v > max)
		return usage_error("img bench: %s '%s' is too large: at most "
				   "%u bytes",
				   what, arg, max);
	*out = (uint32_t)v;
	return 0;
}

static int parse_pattern(const char *arg, uint8_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 0);
	if (!*arg || *end || errno || v < 0 || v > 255)
		return usage_error("img bench: invalid pattern '%s': expected "
				   "a byte value from 0 to 255",
				   arg);
	*out = (uint8_t)v;
	return 0;
}

static void print_start(const struct img_bench_opts *o, uint64_t image_size,
			void *opaque)
{
	printf("Sending %u %s requests, %u bytes each, %u in parallel "
	       "(starting at offset %llu, step size %u)\n",
	       o->count, o->write ? "write" : "read", o->bufsize, o->depth,
	       (unsigned long long)o->offset, o->step ? o->step : o->bufsize);
	if (o->write && o->flush_interval)
		printf("Sending flush every %u requests\n", o->flush_interval);
	/* Before the run, so that a watcher sees what is being measured. */
	fflush(stdout);
}

/* Parse one option into *o; returns 0, or 1 after printing an error. */
static int parse_opt(int c, const char *arg, struct img_bench_opts *o)
{
	struct vs_error *err = NULL;

	switch (c) {
	case 'c':
		return parse_uint(arg, IMG_BENCH_MAX_COUNT, "request count",
				  &o->count);
	case 'd':
		if (parse_uint(arg, IMG_BENCH_MAX_DEPTH, "queue depth",
			       &o->depth))
			return 1;
		if (o->depth == 0)
			return usage_error("img bench: the queue depth must be "
					   "at least 1");
		return 0;
	case 'f': o->format = arg; return 0;
	case 'i':
		if (vbd_aio_from_name(arg, &o->aio, &err) < 0) {
			vs_error_report(err);
			return 1;
		}
		return 0;
	case 'n': o->aio = VBD_AIO_NATIVE; return 0;
	case 'o':
		if (vs_parse_size(arg, &o->offset, "offset", &err) < 0) {
			vs_error_report(err);
			return 1;
		}
		return 0;
	case 'q': vs_log_set_quiet(true); return 0;
	case 's':
		return parse_size32(arg, IMG_BENCH_MAX_BUFSIZE, "buffer size",
				    &o->bufsize);
	case 'S':
		return parse_size32(arg, IMG_BENCH_MAX_STEP, "step size",
				    &o->step);
	case 't':
		if (img_bench_cache_from_name(arg, &o->cache, &err) < 0) {
			vs_error_report(err);
			return 1;
		}
		return 0;
	case 'w': o->write = true; return 0;
	case 'U': o->force_share = true; return 0;
	case OPT_FLUSH_INTERVAL:
		return parse_uint(arg, IMG_BENCH_MAX_COUNT, "flush interval",
				  &o->flush_interval);
	case OPT_NO_DRAIN: o->no_drain = true; return 0;
	case OPT_PATTERN: return parse_pattern(arg, &o->pattern);
	default: fputs("Try 'vstor help img bench'.\n", stderr); return 1;
	}
}

static int img_bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"count", required_argument, NULL, 'c'},
		{"depth", required_argument, NULL, 'd'},
		{"format", required_argument, NULL, 'f'},
		{"flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL},
		{"aio", required_argument, NULL, 'i'},
		{"native", no_argument, NULL, 'n'},
		{"no-drain", no_argument, NULL, OPT_NO_DRAIN},
		{"offset", required_argument, NULL, 'o'},
		{"pattern", required_argument, NULL, OPT_PATTERN},
		{"quiet", no_argument, NULL, 'q'},
		{"buffer-size", required_argument, NULL, 's'},
		{"step-size", required_argument, NULL, 'S'},
		{"cache", required_argument, NULL, 't'},
		{"write", no_argument, NULL, 'w'},
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	struct img_bench_opts o;
	struct img_bench_result res;
	struct vs_error *err = NULL;
	int c;

	img_bench_opts_init(&o);
	o.on_start = print_start;
	while ((c = getopt_long(argc, argv, "c:d:f:i:no:qs:S:t:wU", longopts,
				NULL)) != -1) {
		if (parse_opt(c, optarg, &o))
			return 1;
	}
	if (optind != argc - 1)
		return usage_error(optind == argc ? "img bench: no FILE given"
						  : "img bench: one FILE only");
	o.filename = argv[optind];
	if (o.flush_interval && !o.write)
		return usage_error("img bench: --flush-interval is only "
				   "possible in a write test (-w)");
	if (img_bench_run(&o, &res, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	printf("Run completed in %.3f seconds.\n",
	       (double)res.elapsed_ns / 1e9);
	return 0;
}

const struct cli_verb cli_verb_img_bench = {
	.name = "bench",
	.summary = "measure an image's I/O speed (as qemu-img bench)",
	.usage = usage,
	.run = img_bench_main,
};
