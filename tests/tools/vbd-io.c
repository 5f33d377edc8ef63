/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vbd-io: a helper for the integration tests (not a user command) that
 * drives the vbd API directly, so that tests can write through vstor's
 * own data path and check the result with the peer tools (qemu-io,
 * qemu-img).
 *
 *   vbd-io [-f FMT] [--aio=io_uring|native|threads] [--direct] [--compress]
 *          [--readonly] [--share] [--hold SECONDS] FILE [OP...]
 *
 *   write OFF LEN PATTERN     fill the range with the byte PATTERN
 *   read OFF LEN PATTERN      check every byte; exit 1 at the first bad one
 *   discard OFF LEN
 *   zero OFF LEN [unmap]
 *   flush
 *   dump FILE                 write the whole virtual disk to a raw FILE
 *   random SEED COUNT MAXLEN  write COUNT non-overlapping random regions
 *                             through vbd_submit (2 threads, up to 32 in
 *                             flight), flush, print "OFF LEN 0xPP" each
 *
 * OFF and LEN take size suffixes (64K).  --share opens read-only and
 * takes no locks that keep others out.  --hold prints "holding" and keeps
 * the vbd open, so that tests can check locking.  Exit status: 0, 1 on
 * any error (printed to stderr), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/size.h"
#include "vbd/vbd.h"

#define CHUNK	     (4u << 20) /* the most a read/write op holds in memory */
#define MAX_INFLIGHT 32
#define SUBMITTERS   2

static const char *filename;

static void usage(void)
{
	fprintf(stderr,
		"usage: vbd-io [-f FMT] [--aio=io_uring|native|threads] "
		"[--direct] [--compress]\n"
		"              [--readonly] [--share] [--hold SECONDS] FILE "
		"[OP...]\n"
		"ops: write OFF LEN PATTERN | read OFF LEN PATTERN | "
		"discard OFF LEN |\n"
		"     zero OFF LEN [unmap] | flush | dump FILE |\n"
		"     random SEED COUNT MAXLEN\n");
	exit(2);
}

static void fail_io(const char *op, uint64_t off, uint64_t len, int ret)
{
	fprintf(stderr,
		"vbd-io: %s: %s at offset %" PRIu64 " length %" PRIu64
		": %s (%d)\n",
		filename, op, off, len, strerror(-ret), ret);
	exit(1);
}

static uint64_t arg_size(const char *s, const char *what)
{
	struct vs_error *err = NULL;
	uint64_t v;

	if (vs_parse_size(s, &v, what, &err) < 0) {
		vs_error_report(err);
		exit(2);
	}
	return v;
}

static uint64_t arg_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "vbd-io: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static uint8_t arg_pattern(const char *s)
{
	uint64_t v = arg_u64(s, "pattern");

	if (v > 0xff) {
		fprintf(stderr, "vbd-io: pattern '%s' is not a byte\n", s);
		exit(2);
	}
	return (uint8_t)v;
}

static void *alloc_buf(size_t len)
{
	void *p;

	/* Aligned for O_DIRECT, so that only the offset and length decide
	 * whether the vbd has to bounce. */
	if (posix_memalign(&p, 4096, len ? len : 1)) {
		fprintf(stderr, "vbd-io: out of memory\n");
		exit(1);
	}
	return p;
}

static void op_write(struct vbd *vbd, uint64_t off, uint64_t len, uint8_t pat)
{
	size_t bufsz = len < CHUNK ? len : CHUNK;
	uint8_t *buf = alloc_buf(bufsz);

	memset(buf, pat, bufsz);
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < bufsz ? len - done : bufsz;
		int ret = vbd_pwrite(vbd, off + done, buf, n);

		if (ret < 0)
			fail_io("write", off + done, n, ret);
		done += n;
	}
	free(buf);
}

/* Index of the first byte of buf that is not pat, or n. */
static size_t first_mismatch(const uint8_t *buf, size_t n, uint8_t pat)
{
	size_t i = 0;

	while (i < n && buf[i] == pat)
		i++;
	return i;
}

static void op_read(struct vbd *vbd, uint64_t off, uint64_t len, uint8_t pat)
{
	size_t bufsz = len < CHUNK ? len : CHUNK;
	uint8_t *buf = alloc_buf(bufsz);

	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < bufsz ? len - done : bufsz, bad;
		int ret;

		memset(buf, pat ^ 0xff, n); /* a no-op read must not pass */
		ret = vbd_pread(vbd, off + done, buf, n);
		if (ret < 0)
			fail_io("read", off + done, n, ret);
		bad = first_mismatch(buf, n, pat);
		if (bad < n) {
			fprintf(stderr,
				"vbd-io: %s: pattern mismatch at offset "
				"%" PRIu64 ": 0x%02x, expected 0x%02x\n",
				filename, off + done + bad, buf[bad], pat);
			free(buf);
			exit(1);
		}
		done += n;
	}
	free(buf);
}

/* splitmix64: small, seedable, the same sequence everywhere. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for a test; n > 0. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

struct random_run;

struct region {
	struct random_run *run;
	uint64_t off, len;
	uint8_t pat;
	int iovcnt;
	struct iovec iov[3];
	struct vbd_req req;
};

struct random_run {
	struct vbd *vbd;
	struct region *regions;
	uint64_t count;
	atomic_uint_fast64_t next; /* the next region to submit */
	sem_t slots;		   /* free in-flight slots */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t completed;
	int first_error;
	uint64_t error_region;
};

/*
 * Place region i inside slot i of COUNT equal, 4 KiB-aligned slots, so
 * that regions never overlap, with four kinds in turn: 4 KiB-aligned
 * offset and length; 512-aligned; unaligned and running up to 255 bytes
 * into the next slot; unaligned and starting 256..511 bytes into its
 * slot.  The last two share a sector, so that with O_DIRECT two
 * read-modify-writes of one sector are in flight together.  Every fifth
 * region is split into three iovecs at odd points.
 */
static int plan_regions(struct random_run *r, uint64_t seed, uint64_t maxlen,
			uint64_t size)
{
	uint64_t s = seed, slot = size / r->count / 4096 * 4096;

	if (slot < 8192 || maxlen == 0) {
		fprintf(stderr,
			"vbd-io: %s: %" PRIu64 " regions do not fit in "
			"%" PRIu64 " bytes (8 KiB each at least)\n",
			filename, r->count, size);
		return -1;
	}
	if (maxlen > slot - 512)
		maxlen = slot - 512;
	for (uint64_t i = 0; i < r->count; i++) {
		struct region *g = &r->regions[i];
		uint64_t len = 1 + rng_below(&s, maxlen), off, end, align;

		switch (i % 4) {
		case 0:
		case 1:
			align = i % 4 == 0 ? 4096 : 512;
			len = len < align ? align : len / align * align;
			off = rng_below(&s, slot - len + 1) / align * align;
			break;
		case 2:
			end = slot + 1 + rng_below(&s, 255);
			if (i + 1 == r->count)
				end -= 256; /* no next slot to reach into */
			if (len > end)
				len = end;
			off = end - len;
			break;
		default:
			off = 256 + rng_below(&s, 256);
			if (len > slot - off)
				len = slot - off;
			break;
		}
		g->off = i * slot + off;
		g->len = len;
		g->pat = (uint8_t)(1 + rng_below(&s, 255)); /* never 0 */
		g->iovcnt = (i % 5 == 4 && len >= 3) ? 3 : 1;
	}
	return 0;
}

static void random_cb(struct vbd_req *req, int ret)
{
	struct region *g = req->opaque;
	struct random_run *r = g->run;

	free(g->iov[0].iov_base);
	pthread_mutex_lock(&r->lock);
	if (ret < 0 && r->first_error == 0) {
		r->first_error = ret;
		r->error_region = (uint64_t)(g - r->regions);
	}
	r->completed++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	sem_post(&r->slots);
}

static void submit_region(struct random_run *r, struct region *g)
{
	uint8_t *buf = alloc_buf(g->len);

	memset(buf, g->pat, g->len);
	if (g->iovcnt == 3) {
		/* Split at odd points: the vbd must cope with iovecs whose
		 * lengths are not multiples of anything. */
		size_t a = 1 + (size_t)(g->len / 3) - (g->len > 6 ? 1 : 0);
		size_t b = (size_t)(g->len / 3);

		if (a + b >= g->len)
			b = 1, a = 1;
		g->iov[0] = (struct iovec){buf, a};
		g->iov[1] = (struct iovec){buf + a, b};
		g->iov[2] = (struct iovec){buf + a + b, g->len - a - b};
	} else {
		g->iov[0] = (struct iovec){buf, g->len};
	}
	g->req = (struct vbd_req){
		.op = VBD_OP_WRITE,
		.offset = g->off,
		.iov = g->iov,
		.iovcnt = g->iovcnt,
		.cb = random_cb,
		.opaque = g,
	};
	vbd_submit(r->vbd, &g->req);
}

static void *submitter(void *arg)
{
	struct random_run *r = arg;

	/* Both threads take the next region in turn, so that neighbours
	 * (which may share a sector) are in flight at the same time. */
	for (;;) {
		uint64_t k = atomic_fetch_add(&r->next, 1);

		if (k >= r->count)
			break;
		while (sem_wait(&r->slots) < 0 && errno == EINTR)
			;
		submit_region(r, &r->regions[k]);
	}
	return NULL;
}

static void flush_cb(struct vbd_req *req, int ret)
{
	struct random_run *r = req->opaque;

	pthread_mutex_lock(&r->lock);
	if (ret < 0 && r->first_error == 0) {
		r->first_error = ret;
		r->error_region = UINT64_MAX;
	}
	r->completed++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void wait_completed(struct random_run *r, uint64_t n)
{
	pthread_mutex_lock(&r->lock);
	while (r->completed < n)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

static void op_random(struct vbd *vbd, uint64_t seed, uint64_t count,
		      uint64_t maxlen)
{
	struct random_run r = {.vbd = vbd, .count = count};
	pthread_t th[SUBMITTERS];
	struct vbd_req flush = {
		.op = VBD_OP_FLUSH, .cb = flush_cb, .opaque = &r};

	if (count == 0)
		return;
	r.regions = calloc(count, sizeof(*r.regions));
	if (!r.regions) {
		fprintf(stderr, "vbd-io: out of memory\n");
		exit(1);
	}
	if (plan_regions(&r, seed, maxlen, vbd_size(vbd)) < 0)
		exit(1);
	atomic_init(&r.next, 0);
	sem_init(&r.slots, 0, MAX_INFLIGHT);
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	for (uint64_t i = 0; i < count; i++)
		r.regions[i].run = &r;

	for (int i = 0; i < SUBMITTERS; i++) {
		if (pthread_create(&th[i], NULL, submitter, &r)) {
			fprintf(stderr, "vbd-io: cannot start a thread\n");
			exit(1);
		}
	}
	for (int i = 0; i < SUBMITTERS; i++)
		pthread_join(th[i], NULL);
	wait_completed(&r, count);
	if (r.first_error == 0) {
		vbd_submit(vbd, &flush);
		wait_completed(&r, count + 1);
	}
	if (r.first_error) {
		if (r.error_region == UINT64_MAX)
			fail_io("flush", 0, 0, r.first_error);
		fail_io("random write", r.regions[r.error_region].off,
			r.regions[r.error_region].len, r.first_error);
	}
	for (uint64_t i = 0; i < count; i++)
		printf("%" PRIu64 " %" PRIu64 " 0x%02x\n", r.regions[i].off,
		       r.regions[i].len, r.regions[i].pat);
	fflush(stdout);
	sem_destroy(&r.slots);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cond);
	free(r.regions);
}

/* The whole virtual disk, as vstor reads it, into a raw file. */
static void op_dump(struct vbd *vbd, const char *path)
{
	FILE *f = fopen(path, "w");
	uint8_t *buf = malloc(CHUNK);
	uint64_t size = vbd_size(vbd);

	if (!f || !buf) {
		fprintf(stderr, "vbd-io: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
		int ret = vbd_pread(vbd, off, buf, n);

		if (ret < 0)
			fail_io("dump", off, n, ret);
		if (fwrite(buf, 1, n, f) != n) {
			fprintf(stderr, "vbd-io: %s: short write\n", path);
			exit(1);
		}
	}
	if (fclose(f)) {
		fprintf(stderr, "vbd-io: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(buf);
}

static int need(int argc, int i, int n, const char *op)
{
	if (i + n >= argc) {
		fprintf(stderr, "vbd-io: '%s' needs %d argument%s\n", op, n,
			n == 1 ? "" : "s");
		usage();
	}
	return i + 1;
}

static void run_ops(struct vbd *vbd, int argc, char **argv, int i)
{
	while (i < argc) {
		const char *op = argv[i];
		int a, ret;

		if (!strcmp(op, "write") || !strcmp(op, "read")) {
			a = need(argc, i, 3, op);
			uint64_t off = arg_size(argv[a], "offset");
			uint64_t len = arg_size(argv[a + 1], "length");
			uint8_t pat = arg_pattern(argv[a + 2]);

			if (op[0] == 'w')
				op_write(vbd, off, len, pat);
			else
				op_read(vbd, off, len, pat);
			i = a + 3;
		} else if (!strcmp(op, "discard") || !strcmp(op, "zero")) {
			a = need(argc, i, 2, op);
			uint64_t off = arg_size(argv[a], "offset");
			uint64_t len = arg_size(argv[a + 1], "length");
			unsigned flags = 0;

			i = a + 2;
			if (op[0] == 'z' && i < argc &&
			    !strcmp(argv[i], "unmap")) {
				flags = VBD_ZERO_MAY_UNMAP;
				i++;
			}
			ret = op[0] == 'd'
				      ? vbd_discard(vbd, off, len)
				      : vbd_write_zeroes(vbd, off, len, flags);
			if (ret < 0)
				fail_io(op, off, len, ret);
		} else if (!strcmp(op, "dump")) {
			a = need(argc, i, 1, op);
			op_dump(vbd, argv[a]);
			i = a + 1;
		} else if (!strcmp(op, "flush")) {
			ret = vbd_flush(vbd);
			if (ret < 0)
				fail_io(op, 0, 0, ret);
			i++;
		} else if (!strcmp(op, "random")) {
			a = need(argc, i, 3, op);
			op_random(vbd, arg_u64(argv[a], "seed"),
				  arg_u64(argv[a + 1], "count"),
				  arg_size(argv[a + 2], "maximum length"));
			i = a + 3;
		} else {
			fprintf(stderr, "vbd-io: unknown op '%s'\n", op);
			usage();
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"aio", required_argument, NULL, 'a'},
		{"direct", no_argument, NULL, 'd'},
		{"compress", no_argument, NULL, 'c'},
		{"readonly", no_argument, NULL, 'r'},
		{"share", no_argument, NULL, 's'},
		{"hold", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *format = "raw";
	enum vbd_aio aio = VBD_AIO_DEFAULT;
	unsigned flags = 0, hold = 0;
	struct vs_error *err = NULL;
	struct vbd *vbd;
	int c;

	/* "+": options end at FILE, so that ops are never taken for them. */
	while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'a':
			if (vbd_aio_from_name(optarg, &aio, &err) < 0) {
				vs_error_report(err);
				return 2;
			}
			break;
		case 'd': flags |= VBD_O_DIRECT; break;
		case 'c': flags |= VBD_O_COMPRESS; break;
		case 'r': flags |= VBD_O_RDONLY; break;
		case 's': flags |= VBD_O_SHARE | VBD_O_RDONLY; break;
		case 'H': hold = (unsigned)arg_u64(optarg, "hold time"); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	filename = argv[optind];

	struct vbd_spec spec = {
		.target = (char *)filename,
		.format = (char *)format,
		.readonly = flags & VBD_O_RDONLY,
		.devnum = -1,
	};
	if (vbd_open(&spec, flags, aio, &vbd, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	run_ops(vbd, argc, argv, optind + 1);
	if (hold) {
		printf("holding\n");
		fflush(stdout);
		sleep(hold);
	}
	vbd_close(vbd);
	return 0;
}
