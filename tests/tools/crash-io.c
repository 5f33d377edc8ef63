/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crash-io: a helper for the crash tests (not a user command).  It runs a
 * seeded write/flush workload on an image (qcow2 unless -f names another
 * format driver: vpc, vdi, vmdk...) whose file sits on the "crash" driver
 * (vbd/crash.h), which loses power after the N-th write that reaches the
 * file; then it exits without closing, as a crashed process would,
 * leaving a model of what the image must still hold.  The format driver
 * must open its host file with the spec's file_driver, as cow/qcow2.c
 * does, or the crash driver never sees a write (--count then says 0).
 *
 *   crash-io --count [-f FMT] [--ops=N] SEED FILE
 *       run the whole workload (FILE is changed) and print how many
 *       writes reached the file, so that crash points can be spread
 *       over the run
 *   crash-io --crash-after=N [-f FMT] [--mode=keep|drop|subset]
 *            [--ops=N] SEED FILE MODEL
 *       run the workload until the crash, write MODEL, _exit(0); exit
 *       status 3 if the workload ended without a crash
 *   crash-io --verify [-f FMT] MODEL FILE
 *       read FILE read-only through vstor and check it against MODEL;
 *       exit 1 on any wrong byte
 *
 * The workload (--ops operations, default 300): writes of 1 byte to 256
 * KiB, aligned and not, some over earlier ones; write_zeroes with and
 * without VBD_ZERO_MAY_UNMAP; discards; a flush after about one op in
 * five.  Written bytes are a function of (seed, op, offset) and never 0,
 * so a byte tells which write it came from.
 *
 * The model: every byte's value as of the last completed flush (or
 * "don't care" after a discard), and the ops since that flush, the one
 * the crash interrupted included.  A byte no such op touched must hold
 * its flushed value; a touched byte may hold its flushed value or what
 * any of those ops put there (a disk keeps any subset of its unflushed
 * writes).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "vbd/crash.h"
#include "vbd/vbd.h"

#define MAX_LEN	  (256u << 10) /* the longest op */
#define CHUNK	  (1u << 20)   /* bytes read at once when verifying */
#define MAX_SHOWN 5	       /* wrong bytes printed in detail */

static const char model_magic[8] = "CRSHMDL1";

enum op_kind {
	OP_WRITE,
	OP_ZERO,
	OP_ZERO_UNMAP,
	OP_DISCARD,
	OP_FLUSH,
};

static const char *const op_names[] = {
	[OP_WRITE] = "write",		[OP_ZERO] = "zero",
	[OP_ZERO_UNMAP] = "zero-unmap", [OP_DISCARD] = "discard",
	[OP_FLUSH] = "flush",
};

/* Stored as is in the model file, hence the fixed widths. */
struct op {
	uint32_t kind;
	uint32_t id;
	uint64_t off, len;
};

/* Per-byte flags of the model. */
enum {
	F_CUR_DC = 1u << 0,    /* discarded: the current value is unknown */
	F_STABLE_DC = 1u << 1, /* ...and so it was at the last flush */
	F_TOUCHED = 1u << 2,   /* an op since the last flush covers it */
};

struct model {
	uint64_t size, seed;
	uint8_t *cur;	 /* values as acknowledged */
	uint8_t *stable; /* values at the last completed flush */
	uint8_t *flags;
	struct op *since; /* ops since the last completed flush */
	size_t nsince, capsince;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("crash-io: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

/* splitmix64: small, seedable, the same sequence everywhere. */
static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix(*s) % n;
}

/* The byte op `id` writes at `pos`: never 0, so it is not a zeroing. */
static uint8_t data_byte(uint64_t seed, uint32_t id, uint64_t pos)
{
	uint64_t v = mix(seed ^ ((uint64_t)id << 44) ^ (pos >> 3));
	uint8_t b = (uint8_t)(v >> ((pos & 7) * 8));

	return b ? b : 0x5a;
}

/* data_byte over the op's range, one mix() per 8 bytes rather than per
 * byte: the workload and its model fill tens of MiB per run. */
static void fill_data(uint8_t *buf, uint64_t seed, const struct op *op)
{
	uint64_t pos = op->off, end = op->off + op->len;

	while (pos < end) {
		uint64_t v = mix(seed ^ ((uint64_t)op->id << 44) ^ (pos >> 3));

		do {
			uint8_t b = (uint8_t)(v >> ((pos & 7) * 8));

			*buf++ = b ? b : 0x5a;
			pos++;
		} while (pos < end && (pos & 7));
	}
}

/* The workload. */

/* Lengths of every kind: tiny, sector and page multiples, anything. */
static uint64_t pick_len(uint64_t *s, uint64_t size)
{
	uint64_t len;

	switch (rng_below(s, 4)) {
	case 0: len = 1 + rng_below(s, 4096); break;
	case 1: len = 512 * (1 + rng_below(s, 128)); break;
	case 2: len = 4096 * (1 + rng_below(s, 64)); break;
	default: len = 1 + rng_below(s, MAX_LEN); break;
	}
	return len < size ? len : size;
}

/* Near the previous op a third of the time (overlaps), else anywhere,
 * aligned to 512, 4096, 64 KiB or not at all. */
static uint64_t pick_off(uint64_t *s, uint64_t size, uint64_t len,
			 const struct op *prev)
{
	static const uint64_t aligns[] = {1, 512, 4096, 65536};
	uint64_t off;

	if (prev && rng_below(s, 3) == 0) {
		off = prev->off + rng_below(s, prev->len + 8192);
		off = off > 4096 ? off - 4096 : 0;
	} else {
		off = rng_below(s, size - len + 1);
		off -= off % aligns[rng_below(s, 4)];
	}
	return off < size - len ? off : size - len;
}

static struct op next_op(uint64_t *s, uint64_t size, uint32_t id,
			 const struct op *prev)
{
	uint64_t r = rng_below(s, 100);
	struct op op = {.id = id};

	op.kind = r < 55   ? OP_WRITE
		  : r < 65 ? OP_ZERO
		  : r < 73 ? OP_ZERO_UNMAP
		  : r < 80 ? OP_DISCARD
			   : OP_FLUSH;
	if (op.kind == OP_FLUSH)
		return op;
	op.len = pick_len(s, size);
	op.off = pick_off(s, size, op.len, prev);
	return op;
}

static int do_op(struct vbd *vbd, uint64_t seed, const struct op *op)
{
	uint8_t *buf;
	int ret;

	switch (op->kind) {
	case OP_WRITE:
		buf = xmalloc(op->len);
		fill_data(buf, seed, op);
		ret = vbd_pwrite(vbd, op->off, buf, op->len);
		free(buf);
		return ret;
	case OP_ZERO: return vbd_write_zeroes(vbd, op->off, op->len, 0);
	case OP_ZERO_UNMAP:
		return vbd_write_zeroes(vbd, op->off, op->len,
					VBD_ZERO_MAY_UNMAP);
	case OP_DISCARD: return vbd_discard(vbd, op->off, op->len);
	default: return vbd_flush(vbd);
	}
}

/* The model while the workload runs. */

static void model_init(struct model *m, uint64_t size, uint64_t seed)
{
	*m = (struct model){.size = size, .seed = seed};
	m->cur = xmalloc(size);
	m->stable = xmalloc(size);
	m->flags = calloc(1, size);
	if (!m->flags)
		die("out of memory");
}

static void model_free(struct model *m)
{
	free(m->cur);
	free(m->stable);
	free(m->flags);
	free(m->since);
}

static void since_add(struct model *m, const struct op *op)
{
	if (m->nsince == m->capsince) {
		m->capsince = m->capsince ? 2 * m->capsince : 16;
		m->since = realloc(m->since, m->capsince * sizeof(*op));
		if (!m->since)
			die("out of memory");
	}
	m->since[m->nsince++] = *op;
}

/* An op was issued (acknowledged or cut short by the crash). */
static void model_touch(struct model *m, const struct op *op)
{
	for (uint64_t i = op->off; i < op->off + op->len; i++)
		m->flags[i] |= F_TOUCHED;
	since_add(m, op);
}

/* An op completed: the current values follow it. */
static void model_apply(struct model *m, const struct op *op)
{
	uint8_t *cur = m->cur + op->off, *fl = m->flags + op->off;

	switch (op->kind) {
	case OP_WRITE: fill_data(cur, m->seed, op); break;
	case OP_ZERO:
	case OP_ZERO_UNMAP: memset(cur, 0, op->len); break;
	default: break;
	}
	if (op->kind == OP_DISCARD)
		for (uint64_t i = 0; i < op->len; i++)
			fl[i] |= F_CUR_DC;
	else
		for (uint64_t i = 0; i < op->len; i++)
			fl[i] &= (uint8_t)~F_CUR_DC;
}

/* A flush completed: what every op since the last one did is stable. */
static void model_flushed(struct model *m)
{
	for (size_t k = 0; k < m->nsince; k++) {
		const struct op *op = &m->since[k];

		uint8_t *fl = m->flags + op->off;

		memcpy(m->stable + op->off, m->cur + op->off, op->len);
		/* Branch-free, so that the compiler vectorizes it. */
		for (uint64_t i = 0; i < op->len; i++)
			fl[i] = (uint8_t)((fl[i] & F_CUR_DC) *
					  (F_CUR_DC | F_STABLE_DC));
	}
	m->nsince = 0;
}

static void write_all(int fd, const void *buf, size_t len, const char *path)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: write: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static void read_all(int fd, void *buf, size_t len, const char *path)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: short model file", path);
		p += n;
		len -= (size_t)n;
	}
}

static void model_save(const struct model *m, const char *path)
{
	uint64_t hdr[3] = {m->size, m->seed, m->nsince};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	write_all(fd, model_magic, sizeof(model_magic), path);
	write_all(fd, hdr, sizeof(hdr), path);
	write_all(fd, m->stable, m->size, path);
	write_all(fd, m->flags, m->size, path);
	write_all(fd, m->since, m->nsince * sizeof(*m->since), path);
	if (close(fd) < 0)
		die("%s: %s", path, strerror(errno));
}

static void model_load(struct model *m, const char *path)
{
	char magic[sizeof(model_magic)];
	uint64_t hdr[3];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	read_all(fd, magic, sizeof(magic), path);
	if (memcmp(magic, model_magic, sizeof(magic)))
		die("%s: not a crash-io model", path);
	read_all(fd, hdr, sizeof(hdr), path);
	if (hdr[0] == 0 || hdr[0] > (1ull << 32) || hdr[2] > (1u << 20))
		die("%s: bad model header", path);
	model_init(m, hdr[0], hdr[1]);
	free(m->cur);
	m->cur = NULL;
	read_all(fd, m->stable, m->size, path);
	read_all(fd, m->flags, m->size, path);
	m->nsince = m->capsince = hdr[2];
	m->since = xmalloc(m->nsince * sizeof(*m->since));
	read_all(fd, m->since, m->nsince * sizeof(*m->since), path);
	close(fd);
	for (size_t k = 0; k < m->nsince; k++)
		if (m->since[k].off > m->size ||
		    m->since[k].len > m->size - m->since[k].off)
			die("%s: op %zu is outside the disk", path, k);
}

/* Opening. */

static struct vbd *open_image(const char *path, const char *format,
			      const char *file_driver, bool readonly)
{
	struct vbd_spec spec = {
		.target = (char *)path,
		.format = (char *)format,
		.readonly = readonly,
		.devnum = -1,
		.file_driver = (char *)file_driver,
	};
	struct vs_error *err = NULL;
	struct vbd *vbd;

	if (vbd_open(&spec, readonly ? VBD_O_RDONLY : 0, VBD_AIO_DEFAULT, &vbd,
		     &err) < 0) {
		if (file_driver && vbd_crash_fired()) {
			vs_error_free(err);
			return NULL; /* the crash came while opening */
		}
		vs_error_report(err);
		exit(1);
	}
	return vbd;
}

/* The initial content, through a plain read-only open (backing files
 * show through). */
static void read_initial(struct model *m, const char *path, const char *format)
{
	struct vbd *vbd = open_image(path, format, NULL, true);
	int ret = vbd_pread(vbd, 0, m->cur, m->size);

	if (ret < 0)
		die("%s: reading the initial content: %s", path,
		    strerror(-ret));
	memcpy(m->stable, m->cur, m->size);
	vbd_close(vbd);
}

static uint64_t image_size(const char *path, const char *format)
{
	struct vbd *vbd = open_image(path, format, NULL, true);
	uint64_t size = vbd_size(vbd);

	vbd_close(vbd);
	if (size < MAX_LEN || size > (1ull << 32))
		die("%s: size %" PRIu64 " is not between 256 KiB and 4 GiB",
		    path, size);
	return size;
}

/* Running. */

/*
 * Run the workload; with a model, keep it and stop at the first failed
 * op (the crash).  Returns the index of that op, or nops if none failed.
 */
static unsigned run_workload(struct vbd *vbd, uint64_t size, uint64_t seed,
			     unsigned nops, struct model *m)
{
	uint64_t s = seed;
	struct op prev = {0};

	for (unsigned i = 0; i < nops; i++) {
		struct op op = next_op(&s, size, i + 1, i ? &prev : NULL);
		int ret;

		if (m)
			model_touch(m, &op);
		ret = do_op(vbd, seed, &op);
		if (ret < 0) {
			if (!vbd_crash_fired())
				die("op %u (%s %" PRIu64 " %" PRIu64
				    ") failed before the crash: %s",
				    i, op_names[op.kind], op.off, op.len,
				    strerror(-ret));
			return i;
		}
		if (m && op.kind == OP_FLUSH)
			model_flushed(m);
		else if (m)
			model_apply(m, &op);
		if (op.kind != OP_FLUSH)
			prev = op;
	}
	return nops;
}

static int cmd_count(uint64_t seed, const char *path, const char *format,
		     unsigned nops)
{
	uint64_t size = image_size(path, format);
	struct vbd *vbd;

	vbd_crash_arm(0, VBD_CRASH_KEEP, 0);
	vbd = open_image(path, format, "crash", false);
	run_workload(vbd, size, seed, nops, NULL);
	if (vbd_flush(vbd) < 0)
		die("%s: the last flush failed", path);
	/* No write through the crash layer: the format driver opened its
	 * file some other way, and no crash point could be tested. */
	if (vbd_crash_writes() == 0)
		die("%s: no write reached the crash driver: does the %s "
		    "driver open its file with the spec's file_driver?",
		    path, format);
	printf("%" PRIu64 "\n", vbd_crash_writes());
	vbd_close(vbd);
	return 0;
}

static int cmd_crash(uint64_t seed, const char *path, const char *format,
		     const char *model_path, unsigned nops, uint64_t after,
		     enum vbd_crash_mode mode)
{
	uint64_t size = image_size(path, format);
	struct model m;
	struct vbd *vbd;
	unsigned at = 0;

	model_init(&m, size, seed);
	read_initial(&m, path, format);
	vbd_crash_arm(after, mode, seed ^ after);
	vbd = open_image(path, format, "crash", false);
	if (vbd)
		at = run_workload(vbd, size, seed, nops, &m);
	if (vbd && at == nops) {
		struct op flush = {.kind = OP_FLUSH, .id = nops + 1};

		model_touch(&m, &flush);
		if (vbd_flush(vbd) == 0)
			model_flushed(&m);
	}
	model_save(&m, model_path);
	if (!vbd_crash_fired()) {
		printf("no crash: the workload made %" PRIu64 " writes\n",
		       vbd_crash_writes());
		return 3;
	}
	if (vbd)
		printf("crashed at op %u of %u, %zu ops since the last "
		       "flush\n",
		       at, nops, m.nsince);
	else
		printf("crashed while opening\n");
	fflush(stdout);
	/* A crashed process closes nothing. */
	_exit(0);
}

/* Verifying. */

/* Whether byte `pos` of the image may hold `v`. */
static bool byte_ok(const struct model *m, uint64_t pos, uint8_t v)
{
	uint8_t f = m->flags[pos];

	if ((f & F_STABLE_DC) || v == m->stable[pos])
		return true;
	if (!(f & F_TOUCHED))
		return false;
	for (size_t k = 0; k < m->nsince; k++) {
		const struct op *op = &m->since[k];

		if (pos < op->off || pos - op->off >= op->len)
			continue;
		if (op->kind == OP_DISCARD ||
		    (op->kind == OP_WRITE &&
		     v == data_byte(m->seed, op->id, pos)) ||
		    (op->kind != OP_WRITE && v == 0))
			return true;
	}
	return false;
}

static void show_bad(const struct model *m, uint64_t pos, uint8_t v)
{
	fprintf(stderr,
		"crash-io: offset %" PRIu64 " (0x%" PRIx64 "): 0x%02x, "
		"expected 0x%02x%s\n",
		pos, pos, v, m->stable[pos],
		(m->flags[pos] & F_TOUCHED) ? " or what an op since the "
					      "last flush wrote"
					    : " (untouched since the last "
					      "flush)");
}

static int cmd_verify(const char *model_path, const char *path,
		      const char *format)
{
	struct model m;
	struct vbd *vbd;
	uint8_t *buf = xmalloc(CHUNK);
	uint64_t bad = 0, first = UINT64_MAX;

	model_load(&m, model_path);
	vbd = open_image(path, format, NULL, true);
	if (vbd_size(vbd) != m.size)
		die("%s: size %" PRIu64 ", the model's is %" PRIu64, path,
		    vbd_size(vbd), m.size);
	for (uint64_t off = 0; off < m.size; off += CHUNK) {
		size_t n = m.size - off < CHUNK ? m.size - off : CHUNK;
		int ret = vbd_pread(vbd, off, buf, n);

		if (ret < 0)
			die("%s: read at %" PRIu64 ": %s", path, off,
			    strerror(-ret));
		for (size_t i = 0; i < n; i++) {
			if (byte_ok(&m, off + i, buf[i]))
				continue;
			if (bad++ < MAX_SHOWN)
				show_bad(&m, off + i, buf[i]);
			if (first == UINT64_MAX)
				first = off + i;
		}
	}
	vbd_close(vbd);
	free(buf);
	model_free(&m);
	if (bad) {
		fprintf(stderr,
			"crash-io: %s: %" PRIu64 " wrong bytes, the first at "
			"%" PRIu64 "\n",
			path, bad, first);
		return 1;
	}
	printf("ok: %" PRIu64 " bytes, %zu ops since the last flush\n", m.size,
	       m.nsince);
	return 0;
}

/* Command line. */

static void usage(void)
{
	fprintf(stderr, "usage: crash-io --count [-f FMT] [--ops=N] SEED FILE\n"
			"       crash-io --crash-after=N [-f FMT] "
			"[--mode=keep|drop|subset] [--ops=N] SEED FILE MODEL\n"
			"       crash-io --verify [-f FMT] MODEL FILE\n"
			"FMT is a vbd format (qcow2, vpc, vdi, vmdk...), "
			"qcow2 by default\n");
	exit(2);
}

static uint64_t arg_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "crash-io: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"count", no_argument, NULL, 'c'},
		{"crash-after", required_argument, NULL, 'n'},
		{"mode", required_argument, NULL, 'm'},
		{"ops", required_argument, NULL, 'o'},
		{"verify", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	enum vbd_crash_mode mode = VBD_CRASH_KEEP;
	const char *format = "qcow2";
	uint64_t after = 0;
	unsigned nops = 300;
	int c, cmd = 0;

	while ((c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'v': cmd = c; break;
		case 'n':
			after = arg_u64(optarg, "crash point");
			cmd = after ? 'n' : 0;
			break;
		case 'm':
			if (vbd_crash_mode_from_name(optarg, &mode) < 0)
				usage();
			break;
		case 'o': nops = (unsigned)arg_u64(optarg, "op count"); break;
		case 'f': format = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (cmd == 'c' && argc == 2)
		return cmd_count(arg_u64(argv[0], "seed"), argv[1], format,
				 nops);
	if (cmd == 'n' && argc == 3)
		return cmd_crash(arg_u64(argv[0], "seed"), argv[1], format,
				 argv[2], nops, after, mode);
	if (cmd == 'v' && argc == 2)
		return cmd_verify(argv[0], argv[1], format);
	usage();
}
