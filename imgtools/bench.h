/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img bench: qemu-img bench's workload on a vbd.
 *
 * COUNT requests of BUFSIZE bytes, DEPTH of them in flight, the first at
 * OFFSET and each following one STEP bytes further on.  A position past
 * the end of the image wraps around modulo the image size (as qemu-img
 * bench does), so a STEP that is an odd number of blocks of a power-of-two
 * sized image visits every block once before any block comes again.
 */
#ifndef VS_IMGTOOLS_BENCH_H
#define VS_IMGTOOLS_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "../vbd/vbd.h"

/* qemu-img's -t modes.  What they mean for the benchmark:
 *   writeback     page cache; one flush when the run is over
 *   none          O_DIRECT; one flush when the run is over
 *   writethrough  page cache; every write is followed by a flush
 *   directsync    O_DIRECT; every write is followed by a flush
 *   unsafe        page cache; flushes are skipped
 */
enum img_bench_cache {
	IMG_BENCH_CACHE_WRITEBACK,
	IMG_BENCH_CACHE_NONE,
	IMG_BENCH_CACHE_WRITETHROUGH,
	IMG_BENCH_CACHE_DIRECTSYNC,
	IMG_BENCH_CACHE_UNSAFE,
};

/* Limits: what qemu-img accepts, plus a depth bound that keeps the
 * buffers (DEPTH x BUFSIZE) an amount a host can allocate. */
#define IMG_BENCH_MAX_COUNT   2147483647u
#define IMG_BENCH_MAX_DEPTH   65536u
#define IMG_BENCH_MAX_BUFSIZE 2147483647u
#define IMG_BENCH_MAX_STEP    2147483647u

struct img_bench_opts {
	const char *filename;
	const char *format; /* NULL: probe */
	bool write;	    /* write test; default read */
	unsigned count;	    /* requests in all (75000) */
	unsigned depth;	    /* in flight at once (64), >= 1 */
	uint64_t offset;    /* of the first request (0) */
	uint32_t bufsize;   /* bytes per request (4096) */
	uint32_t step;	    /* bytes between requests; 0 = bufsize */
	/* Write test: flush whenever the requests still to send are a
	 * multiple of this; 0 = never. */
	unsigned flush_interval;
	/* Flush without waiting for the requests in flight first. */
	bool no_drain;
	uint8_t pattern;	    /* write test: the byte written (0) */
	enum img_bench_cache cache; /* (writeback) */
	enum vbd_aio aio;	    /* I/O engine (default) */
	/* Read test: take no lock that keeps writers out (qemu-img -U). */
	bool force_share;

	/*
	 * Called once the image is open and the options are checked, just
	 * before the clock starts (the CLI prints its "Sending..." line
	 * here, after any open error, as qemu-img does).  May be NULL.
	 */
	void (*on_start)(const struct img_bench_opts *opts, uint64_t image_size,
			 void *opaque);
	void *opaque;
};

struct img_bench_result {
	uint64_t requests; /* completed read or write requests */
	/* Flushes inside the timed run (interval and per-write ones). */
	uint64_t flushes;
	/* From the first submission to the last completion, on
	 * CLOCK_MONOTONIC. */
	uint64_t elapsed_ns;
};

/* Fill *opts with qemu-img bench's defaults (filename left NULL). */
void img_bench_opts_init(struct img_bench_opts *opts);

/* qemu-img's cache mode names: none, writeback, writethrough,
 * directsync, unsafe. */
int img_bench_cache_from_name(const char *name, enum img_bench_cache *out,
			      struct vs_error **errp);
const char *img_bench_cache_name(enum img_bench_cache cache);

/*
 * Open opts->filename (read-only unless opts->write), run the benchmark,
 * close.  The whole run stops at the first failed request.  Returns 0
 * with *result filled, or -errno with *errp naming the file, the request
 * and the error.
 */
int img_bench_run(const struct img_bench_opts *opts,
		  struct img_bench_result *result, struct vs_error **errp);

#endif
