/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img convert: opening the sources, creating and opening the
 * target, choosing how to write, and cleaning up.  The copy itself is
 * convert-copy.c; the walk over the sources is convert-plan.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../common/opts.h"
#include "convert-priv.h"

/* Items a worker reads at once: qemu-img's 2 MiB buffer, or a cluster
 * when clusters are larger. */
#define CHUNK_DEFAULT (2u << 20)
/* Zero runs are handed out at most this long, so that progress moves
 * and a slow write_zeroes does not hold the other workers. */
#define ZERO_ITEM_MAX (1ull << 30)
/* The smallest zero-detection unit for which DATA is copied by the
 * kernel (convert-copy.c probes the first 4 KiB of each). */
#define FD_COPY_MIN_GRANULE (64u << 10)

void img_convert_opts_init(struct img_convert_opts *o)
{
	*o = (struct img_convert_opts){
		.target_format = "raw",
		.min_sparse = IMG_CONVERT_DEFAULT_SPARSE,
		.parallel = 8,
		/* qemu-img convert writes its target with cache=unsafe:
		 * nothing is ordered until the end. */
		.cache = IMG_BENCH_CACHE_UNSAFE,
		.src_cache = IMG_BENCH_CACHE_WRITEBACK,
	};
}

static bool cache_direct(enum img_bench_cache c)
{
	return c == IMG_BENCH_CACHE_NONE || c == IMG_BENCH_CACHE_DIRECTSYNC;
}

/* Append ",key=value" to *opts, doubling commas in value as -o wants. */
static int add_opt(char **opts, const char *key, const char *value)
{
	size_t n = *opts ? strlen(*opts) : 0;
	char *s = realloc(*opts, n + strlen(key) + 2 * strlen(value) + 3);
	char *p;

	if (!s)
		return -ENOMEM;
	p = s + n;
	if (n)
		*p++ = ',';
	p = stpcpy(p, key);
	*p++ = '=';
	for (; *value; value++) {
		*p++ = *value;
		if (*value == ',')
			*p++ = ',';
	}
	*p = '\0';
	*opts = s;
	return 0;
}

/* The -o text for the target: the user's, plus -B and -F. */
static int target_options(const struct img_convert_opts *o, char **out,
			  struct vs_error **errp)
{
	autofree char *s = o->options ? strdup(o->options) : NULL;
	int ret = 0;

	if (o->options && !s)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (o->backing)
		ret = add_opt(&s, "backing_file", o->backing);
	if (ret == 0 && o->backing_format)
		ret = add_opt(&s, "backing_fmt", o->backing_format);
	if (ret < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	*out = vs_steal(&s);
	return 0;
}

/*
 * Whether the -o text sets `key` (to `value`, if not NULL).  qemu-img
 * takes backing_file=... in -o as it takes -B.  Text that does not
 * parse sets nothing here; creating the target reports it.
 */
static bool options_have(const char *options, const char *key,
			 const char *value)
{
	struct vs_opts *opts = NULL;
	const char *v;
	bool found;

	if (!options || vs_opts_parse(options, "option", &opts, NULL) < 0)
		return false;
	v = vs_opts_get(opts, key);
	found = v && (!value || !strcmp(v, value));
	vs_opts_free(opts);
	return found;
}

static bool has_backing(const struct img_convert_opts *o)
{
	return o->backing || options_have(o->options, "backing_file", NULL);
}

/*
 * A streamOptimized VMDK stores every grain compressed: convert then
 * compresses in its workers (as qemu-img does when the format says it
 * needs compressed writes) instead of leaving it to a single writer.
 */
static bool needs_compression(const struct img_convert_opts *o)
{
	return o->target_format && !strcmp(o->target_format, "vmdk") &&
	       options_have(o->options, "subformat", "streamOptimized");
}

static int check_opts(const struct img_convert_opts *o, struct vs_error **errp)
{
	if (o->nsources < 1)
		return vs_error_set(errp, EINVAL,
				    "Must specify image file name");
	if (o->target_is_zero && !o->no_create)
		return vs_error_set(errp, EINVAL,
				    "--target-is-zero requires use of -n flag");
	if (o->no_create && o->options)
		return vs_error_set(errp, EINVAL,
				    "-o has no effect when skipping image "
				    "creation");
	if (o->min_sparse % 512 || o->min_sparse > IMG_CONVERT_MAX_SPARSE)
		return vs_error_set(errp, EINVAL,
				    "Invalid buffer size for sparse output "
				    "specified. Valid sizes are multiples of "
				    "512 up to %u. Select 0 to disable sparse "
				    "detection (fully allocates output).",
				    IMG_CONVERT_MAX_SPARSE);
	if (o->parallel < 1 || o->parallel > IMG_CONVERT_MAX_PARALLEL)
		return vs_error_set(errp, EINVAL,
				    "Invalid number of coroutines. Allowed "
				    "number of coroutines is between 1 and %u",
				    IMG_CONVERT_MAX_PARALLEL);
	if (o->target_is_zero && has_backing(o))
		return vs_error_set(errp, EINVAL,
				    "Cannot use --target-is-zero when the "
				    "destination image has a backing file");
	if (o->nsources > 1 && has_backing(o))
		return vs_error_set(errp, EINVAL,
				    "Having a backing file for the target "
				    "makes no sense when concatenating "
				    "multiple input images");
	if (o->backing_format && !o->backing)
		return vs_error_set(errp, EINVAL,
				    "-F needs a backing file (-B)");
	return 0;
}

static int open_sources(struct cv *cv, struct vs_error **errp)
{
	const struct img_convert_opts *o = cv->o;
	unsigned flags = VBD_O_RDONLY | (o->force_share ? VBD_O_SHARE : 0) |
			 (cache_direct(o->src_cache) ? VBD_O_DIRECT : 0);

	cv->src = calloc((size_t)o->nsources, sizeof(*cv->src));
	if (!cv->src)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (int i = 0; i < o->nsources; i++) {
		int ret = vbd_open_file(o->sources[i], o->source_format, flags,
					&cv->src[i], errp);

		if (ret < 0)
			return ret;
		cv->nsrc++;
	}
	return 0;
}

/*
 * Whether every byte of the new target reads as zeros, so that zero
 * ranges need no write: true for a sparse file or a fresh qcow2, false
 * for a preallocated one that says it holds data or a device.
 */
static int reads_zero(struct vbd *dst, uint64_t len, bool *out)
{
	uint64_t pos = 0;

	*out = false;
	while (pos < len) {
		struct vbd_extent e;
		int ret = vbd_block_status(dst, pos, len - pos, &e);

		if (ret < 0)
			return ret;
		if (!(e.flags & VBD_STATUS_ZERO) || !e.length)
			return 0;
		pos += VS_MIN(e.length, len - pos);
	}
	*out = true;
	return 0;
}

/* Create the target (qemu-img's size: the sources' sum in whole
 * sectors).  *created says whether a file was made that a failure must
 * remove. */
static int create_target(struct cv *cv, bool *created, struct vs_error **errp)
{
	const struct img_convert_opts *o = cv->o;
	const char *fmt = o->target_format ? o->target_format : "raw";
	autofree char *options = NULL;
	struct stat st;
	/* A device (or anything but a regular file) keeps its size and is
	 * never removed. */
	bool device = stat(o->target, &st) == 0 && !S_ISREG(st.st_mode);
	int ret = target_options(o, &options, errp);

	if (ret < 0)
		return ret;
	ret = vbd_create(o->target, fmt, cv->total, options, errp);
	if (ret < 0) {
		vs_error_prefix(errp, "%s: error while converting %s",
				o->target, fmt);
		return ret;
	}
	*created = !device;
	return 0;
}

static int open_target(struct cv *cv, struct vs_error **errp)
{
	const struct img_convert_opts *o = cv->o;
	unsigned flags = cache_direct(o->cache) ? VBD_O_DIRECT : 0;
	int ret;

	/* A target this convert just made is nobody else's, and a failure
	 * removes it: its metadata need no ordered write-back before the
	 * final flush (qemu-img's cache=unsafe).  An existing target (-n)
	 * keeps crash-safe ordering, so that a crash cannot leave it
	 * corrupt. */
	if (o->cache == IMG_BENCH_CACHE_UNSAFE && !o->no_create)
		flags |= VBD_O_UNSAFE;

	/* -n: the format is given by -O (qemu-img's default raw), or
	 * probed when the caller passes NULL. */
	ret = vbd_open_file(o->target, o->target_format, flags, &cv->dst, errp);
	if (ret < 0)
		return ret;
	if (vbd_size(cv->dst) < cv->total)
		return vs_error_set(errp, ENOSPC,
				    o->no_create
					    ? "output file is smaller than "
					      "input file"
					    : "%s: the new image is smaller "
					      "than the input",
				    o->target);
	return 0;
}

/* Decide how to write, once the target is open. */
static int setup_writes(struct cv *cv, struct vs_error **errp)
{
	const struct img_convert_opts *o = cv->o;
	uint64_t align, chunk;
	size_t clen;
	int ret;

	/* Buffers hold several clusters: a driver's claim of a huge
	 * allocation unit is refused before anything is sized by it. */
	cv->cluster = vbd_cluster_size(cv->dst);
	if (cv->cluster > IMG_CONVERT_MAX_SPARSE * 4ull)
		return vs_error_set(errp, EINVAL,
				    "%s: cluster size %" PRIu64 " is too large",
				    o->target, cv->cluster);
	cv->compress = o->compress || needs_compression(o);
	if (cv->compress) {
		/* Ask the format itself: -ENOTSUP for raw and for
		 * formats that store nothing compressed. */
		autofree uint8_t *z =
			cv->cluster ? calloc(1, cv->cluster) : NULL;
		autofree uint8_t *c =
			cv->cluster ? malloc(2 * (size_t)cv->cluster) : NULL;

		if (cv->cluster && (!z || !c))
			return vs_error_set(errp, ENOMEM, "out of memory");
		ret = cv->cluster ? vbd_compress(cv->dst, z, cv->cluster, c,
						 2 * (size_t)cv->cluster, &clen)
				  : -ENOTSUP;
		/* A format that compresses by itself (streamOptimized)
		 * but cannot do it in two steps is written plainly. */
		if (ret == -ENOTSUP && !o->compress)
			cv->compress = false;
		else if (ret == -ENOTSUP)
			return vs_error_set(errp, ENOTSUP,
					    "Compression not supported for "
					    "this file format");
	}
	cv->zero_data = o->min_sparse == 0;
	cv->sync_writes = o->cache == IMG_BENCH_CACHE_WRITETHROUGH ||
			  o->cache == IMG_BENCH_CACHE_DIRECTSYNC;
	/* Zero ranges need no write on a new target that reads as zeros
	 * (qemu-img's has_zero_init), or when the user says the existing
	 * one does.  An overlay must hide its backing file: always
	 * written. */
	if (o->target_is_zero) {
		cv->zero_init = true;
	} else if (!o->no_create && !cv->zero_data && !has_backing(o)) {
		ret = reads_zero(cv->dst, cv->total, &cv->zero_init);
		if (ret < 0)
			return vs_error_set_errno(errp, ret,
						  "%s: cannot get the block "
						  "status",
						  o->target);
	}
	/* Items in whole target clusters, reads of a few MiB. */
	align = cv->cluster ? cv->cluster : 4096;
	chunk = VS_MAX((uint64_t)CHUNK_DEFAULT, align);
	chunk -= chunk % align;
	if (!cv->zero_data)
		cv->granule = VS_MAX(o->min_sparse, cv->cluster);
	/* Kernel copies need zero detection in large granules: it reads
	 * only their first block, where small ones would be read whole in
	 * many small reads.  And a target format that takes them: for
	 * others, the probe reads would only be extra work. */
	cv->fd_copy = !cv->compress && !cache_direct(o->cache) &&
		      (!cv->granule || cv->granule >= FD_COPY_MIN_GRANULE) &&
		      vbd_copy_from_fd(cv->dst, 0, 0, -1, 0) == 0;
	cv->plan = (struct cv_plan){
		.src = cv->src,
		.nsrc = cv->nsrc,
		.total = cv->total,
		.align = align,
		.chunk = chunk,
		.backing = has_backing(o),
		/* -S 0 writes zeros as data: one buffer at a time. */
		.max_zero = cv->zero_data ? chunk : ZERO_ITEM_MAX,
	};
	return cv_plan_init(&cv->plan, errp);
}

/* A second descriptor of a regular target file, for pushing its dirty
 * pages to the disk during the copy (convert-copy.c); -1 when writes
 * bypass the page cache or the target is not a file. */
static int open_kick_fd(const struct img_convert_opts *o)
{
	struct stat st;
	int fd;

	if (cache_direct(o->cache))
		return -1;
	fd = open(o->target, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void cv_close(struct cv *cv)
{
	if (cv->kick_fd >= 0)
		close(cv->kick_fd);
	cv_plan_free(&cv->plan);
	vbd_close(cv->dst);
	for (int i = 0; i < cv->nsrc; i++)
		vbd_close(cv->src[i]);
	free(cv->src);
	pthread_mutex_destroy(&cv->lock);
	pthread_mutex_destroy(&cv->kick_lock);
}

static int run(struct cv *cv, bool *created, struct vs_error **errp)
{
	const struct img_convert_opts *o = cv->o;
	int ret = open_sources(cv, errp);
	uint64_t t0, t1;

	/* Whole sectors, as qemu-img sizes its target. */
	if (ret == 0)
		ret = cv_sources_size(cv->src, cv->nsrc, &cv->total, errp);
	if (ret < 0)
		return ret;
	if (!o->no_create)
		ret = create_target(cv, created, errp);
	if (ret == 0)
		ret = open_target(cv, errp);
	if (ret == 0)
		ret = setup_writes(cv, errp);
	if (ret < 0)
		return ret;
	if (o->progress)
		o->progress(0, cv->total, o->opaque);
	cv->kick_fd = open_kick_fd(o);
	/* Only in order: what lies behind the item just stored is then
	 * all written (convert-copy.c, drop_behind). */
	cv->drop_behind = cv->kick_fd >= 0 && !o->out_of_order;
	cv->drop_raw = !strcmp(vbd_format(cv->dst), "raw");
	t0 = cv_now_ns();
	ret = cv_copy(cv);
	if (ret < 0) {
		/* The first error of the copy is the one to report. */
		if (errp && !*errp)
			*errp = vs_steal(&cv->err);
		return ret;
	}
	/* The one flush that makes it all stable (and with cache=unsafe
	 * the only one): a failure here fails the convert. */
	t1 = cv_now_ns();
	ret = vbd_flush(cv->dst);
	if (ret < 0)
		return vs_error_set_errno(errp, ret, "%s: cannot flush",
					  o->target);
	/* Where the time went, to tell the copy from the disk. */
	vs_debug("convert",
		 "%s: copy %.3f s (%u writeback pushes, %.3f s in them), "
		 "final flush %.3f s",
		 o->target, (double)(t1 - t0) / 1e9, cv->kicks,
		 (double)cv->kick_ns / 1e9, (double)(cv_now_ns() - t1) / 1e9);
	return 0;
}

int img_convert(const struct img_convert_opts *o, struct vs_error **errp)
{
	struct cv cv = {.o = o, .kick_fd = -1};
	bool created = false;
	int ret = check_opts(o, errp);

	if (ret < 0)
		return ret;
	pthread_mutex_init(&cv.lock, NULL);
	pthread_mutex_init(&cv.kick_lock, NULL);
	ret = run(&cv, &created, errp);
	cv_close(&cv);
	vs_error_free(cv.err);
	/* Nothing half-written is left looking like a good image; a target
	 * given with -n is the user's and stays. */
	if (ret < 0 && created && unlink(o->target) < 0 && errno != ENOENT)
		vs_error_prefix(errp,
				"%s: cannot remove the partial target "
				"(%s)",
				o->target, strerror(errno));
	return ret;
}
