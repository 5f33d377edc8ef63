/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for qcow2's asynchronous path (cow/qcow2-submit.c) and its
 * gate.
 *
 * - The gate: a drain waits for a request of the old epoch, and not for
 *   one that came after it started (no starvation).
 * - A model test: two threads keep 32 requests in flight on disjoint
 *   ranges (reads checked against the model, writes in place and
 *   allocating, whole-cluster discards, zeroes, flushes), every 4 KiB
 *   block stamped with its own index and a generation, so that a read
 *   from the wrong host place shows; then the image is checked (no
 *   corruption, no leak) and read back again after reopening.
 *   The same again with every write in place sent through the lane
 *   (as on a file system without RWF_NOWAIT writes, whatever the test
 *   directory's file system is).
 * - The lane and close: bursts of in-place writes, the image closed as
 *   soon as the last one completes, hundreds of times (a lane job that
 *   touched the image after its last completion shows under ASan); then
 *   every block read back.
 * - Reuse: one thread discards a range and writes another, with flushes
 *   between, so that the freed clusters are handed out again; another
 *   keeps reading the first range.  Every block it reads must be zeros
 *   or the first range's own data, never the other range's.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cow/qcow2.h"
#include "vbd/vbd.h"

#define BLK 4096u
#define CL  65536u

/* The gate. */

struct drainer {
	struct qcow2_gate *g;
	int done;
};

static void *drain_thread(void *arg)
{
	struct drainer *d = arg;

	qcow2_gate_drain(d->g);
	__atomic_store_n(&d->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_gate(void **state)
{
	struct qcow2_gate g;
	struct drainer d = {.g = &g};
	pthread_t t;
	unsigned e0, e1, start;

	(void)state;
	assert_int_equal(qcow2_gate_init(&g), 0);
	/* Nobody inside: a drain returns at once. */
	qcow2_gate_drain(&g);
	e0 = qcow2_gate_enter(&g);
	start = __atomic_load_n(&g.epoch, __ATOMIC_SEQ_CST);
	assert_int_equal(pthread_create(&t, NULL, drain_thread, &d), 0);
	/* Once the drain has moved the epoch on, a new request goes in
	 * the new one, and the drain still waits for the old one only. */
	while (__atomic_load_n(&g.epoch, __ATOMIC_SEQ_CST) == start)
		sched_yield();
	e1 = qcow2_gate_enter(&g);
	assert_int_not_equal(e0, e1);
	usleep(20000);
	assert_int_equal(__atomic_load_n(&d.done, __ATOMIC_SEQ_CST), 0);
	qcow2_gate_leave(&g, e0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(d.done, 1);
	qcow2_gate_leave(&g, e1);
	qcow2_gate_drain(&g);
	qcow2_gate_destroy(&g);
}

/* Images. */

static void make_image(char *path, uint64_t size)
{
	struct vs_error *err = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	if (vbd_create(path, "qcow2", size, "cluster_size=65536", &err) < 0)
		fail_msg("create: %s", vs_error_msg(err));
}

static struct vbd *open_image(const char *path, unsigned flags)
{
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	if (vbd_open_file(path, "qcow2", flags, &vbd, &err) < 0)
		fail_msg("open %s: %s", path, vs_error_msg(err));
	return vbd;
}

static void check_clean(const char *path)
{
	struct vs_error *err = NULL;
	struct vbd_check res;
	struct vbd *vbd = open_image(path, VBD_O_RDONLY);

	memset(&res, 0, sizeof(res));
	assert_int_equal(vbd_check(vbd, 0, &res, &err), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
	assert_int_equal(res.check_errors, 0);
	vbd_close(vbd);
}

/* Block `blk` of generation `gen` (0: zeros). */
static uint64_t stamp(uint64_t blk, uint32_t gen)
{
	return gen ? (uint64_t)gen << 32 | blk : 0;
}

static void fill(uint8_t *buf, uint64_t blk, size_t nblk, uint32_t gen)
{
	for (size_t b = 0; b < nblk; b++) {
		uint64_t v = stamp(blk + b, gen),
			 *w = (uint64_t *)(buf + b * BLK);

		for (size_t i = 0; i < BLK / 8; i++)
			w[i] = v;
	}
}

/* The block's generation, or -1 when it is not one whole stamp of
 * itself (torn, or another block's). */
static int64_t gen_of(const uint8_t *buf, uint64_t blk)
{
	const uint64_t *w = (const uint64_t *)buf;

	for (size_t i = 1; i < BLK / 8; i++)
		if (w[i] != w[0])
			return -1;
	if (w[0] == 0)
		return 0;
	if ((w[0] & 0xffffffffu) != blk)
		return -1;
	return (int64_t)(w[0] >> 32);
}

/* The model test. */

#define DISK   (16u << 20)
#define NBLK   (DISK / BLK)
#define DEPTH  32
#define OPS    6000
#define MAXBLK 24 /* blocks per request at most */
#define BPC    (CL / BLK)

struct op;

struct model {
	struct vbd *vbd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t gen[NBLK]; /* what each block holds */
	uint8_t busy[NBLK]; /* a request in flight covers it */
	uint32_t next_gen;
	unsigned inflight, started, finished;
	uint64_t seed;
	int bad; /* the first failure, as a block + 1, or -errno */
	char why[160];
};

struct op {
	struct vbd_req req;
	struct model *m;
	struct iovec iov[3];
	uint8_t *buf;
	uint64_t blk;
	size_t nblk;
	uint32_t gen; /* writes: the new generation */
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void finish(struct op *o, int ret)
{
	struct model *m = o->m;

	pthread_mutex_lock(&m->lock);
	if (ret < 0 && !m->bad) {
		m->bad = ret;
		snprintf(m->why, sizeof(m->why), "op %d at block %llu: %s",
			 o->req.op, (unsigned long long)o->blk, strerror(-ret));
	}
	for (size_t b = 0; b < o->nblk && ret == 0; b++) {
		uint64_t blk = o->blk + b;

		if (o->req.op == VBD_OP_READ) {
			int64_t g = gen_of(o->buf + b * BLK, blk);

			if (g != m->gen[blk] && !m->bad) {
				m->bad = (int)blk + 1;
				snprintf(m->why, sizeof(m->why),
					 "block %llu read generation %lld, "
					 "not %u",
					 (unsigned long long)blk, (long long)g,
					 m->gen[blk]);
			}
		} else if (o->req.op == VBD_OP_WRITE) {
			m->gen[blk] = o->gen;
		} else if (o->req.op != VBD_OP_FLUSH) {
			m->gen[blk] = 0; /* discard, write_zeroes */
		}
	}
	for (size_t b = 0; b < o->nblk; b++)
		m->busy[o->blk + b] = 0;
	m->inflight--;
	m->finished++;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	free(o->buf);
	free(o);
}

static void op_cb(struct vbd_req *req, int ret)
{
	finish(req->opaque, ret);
}

/* A free range for an op, under the lock: whole clusters for discards. */
static bool pick(struct model *m, int kind, uint64_t *blk, size_t *nblk)
{
	for (int tries = 0; tries < 8; tries++) {
		uint64_t b = rnd(&m->seed) % NBLK;
		size_t n = 1 + rnd(&m->seed) % MAXBLK;
		bool ok = true;

		if (kind == VBD_OP_DISCARD) {
			b -= b % BPC;
			n = BPC * (1 + rnd(&m->seed) % 2);
		}
		if (b + n > NBLK)
			n = NBLK - b;
		for (size_t i = 0; i < n && ok; i++)
			ok = !m->busy[b + i];
		if (!ok)
			continue;
		for (size_t i = 0; i < n; i++)
			m->busy[b + i] = 1;
		*blk = b;
		*nblk = n;
		return true;
	}
	return false;
}

static void *submitter(void *arg)
{
	struct model *m = arg;

	pthread_mutex_lock(&m->lock);
	while (m->started < OPS && !m->bad) {
		uint64_t r = rnd(&m->seed) % 100, blk;
		int kind = r < 50   ? VBD_OP_READ
			   : r < 88 ? VBD_OP_WRITE
			   : r < 94 ? VBD_OP_DISCARD
			   : r < 98 ? VBD_OP_WRITE_ZEROES
				    : VBD_OP_FLUSH;
		struct op *o;
		size_t nblk = 0, len;

		if (m->inflight >= DEPTH) {
			pthread_cond_wait(&m->cond, &m->lock);
			continue;
		}
		if (kind != VBD_OP_FLUSH && !pick(m, kind, &blk, &nblk))
			continue;
		o = calloc(1, sizeof(*o));
		assert_non_null(o);
		o->m = m;
		o->blk = kind == VBD_OP_FLUSH ? 0 : blk;
		o->nblk = nblk;
		len = nblk * BLK;
		if (kind == VBD_OP_WRITE)
			o->gen = ++m->next_gen;
		m->inflight++;
		m->started++;
		pthread_mutex_unlock(&m->lock);
		o->req = (struct vbd_req){.op = kind,
					  .offset = o->blk * BLK,
					  .len = len,
					  .cb = op_cb,
					  .opaque = o};
		if (kind == VBD_OP_READ || kind == VBD_OP_WRITE) {
			size_t a = len / 3 / 512 * 512;

			o->buf = malloc(len);
			assert_non_null(o->buf);
			if (kind == VBD_OP_WRITE)
				fill(o->buf, o->blk, nblk, o->gen);
			else
				memset(o->buf, 0xee, len);
			/* Three pieces, to exercise the slicing. */
			o->iov[0] = (struct iovec){o->buf, a};
			o->iov[1] = (struct iovec){o->buf + a, len - 2 * a};
			o->iov[2] = (struct iovec){o->buf + len - a, a};
			o->req.iov = a ? o->iov : o->iov + 1;
			o->req.iovcnt = a ? 3 : 1;
		}
		vbd_submit(m->vbd, &o->req);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static void verify_all(struct model *m, struct vbd *vbd)
{
	uint8_t *buf = malloc(CL);

	assert_non_null(buf);
	for (uint64_t c = 0; c < DISK / CL; c++) {
		assert_int_equal(vbd_pread(vbd, c * CL, buf, CL), 0);
		for (uint64_t b = 0; b < BPC; b++) {
			uint64_t blk = c * BPC + b;

			if (gen_of(buf + b * BLK, blk) != m->gen[blk])
				fail_msg("after the run, block %llu has "
					 "generation %lld, not %u",
					 (unsigned long long)blk,
					 (long long)gen_of(buf + b * BLK, blk),
					 m->gen[blk]);
		}
	}
	free(buf);
}

/* Every write in place through the lane, on any file system: as if the
 * image file had refused an RWF_NOWAIT write (ext4 does). */
static void force_lane(struct vbd *vbd)
{
	struct qcow2 *s = vbd->opaque;

	__atomic_or_fetch(&s->nowait_off, QCOW2_NOWAIT_WRITE, __ATOMIC_RELAXED);
}

static void run_model(unsigned flags, bool lane)
{
	char path[] = "/var/tmp/vstor-test-qcow2a.XXXXXX";
	struct model *m = calloc(1, sizeof(*m));
	uint8_t *buf = malloc(DISK);
	pthread_t t[2];

	assert_true(m && buf);
	make_image(path, DISK);
	m->vbd = open_image(path, flags);
	if (lane)
		force_lane(m->vbd);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->seed = 0x9e3779b97f4a7c15ull ^ flags;
	/* Half the disk written first, so that reads and writes find
	 * data clusters (the fast path) as well as empty ones. */
	m->next_gen = 1;
	fill(buf, 0, NBLK / 2, 1);
	assert_int_equal(vbd_pwrite(m->vbd, 0, buf, DISK / 2), 0);
	for (uint64_t b = 0; b < NBLK / 2; b++)
		m->gen[b] = 1;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, submitter, m), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_lock(&m->lock);
	while (m->inflight)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	if (m->bad)
		fail_msg("%s", m->why);
	verify_all(m, m->vbd);
	vbd_close(m->vbd);
	check_clean(path);
	m->vbd = open_image(path, VBD_O_RDONLY);
	verify_all(m, m->vbd);
	vbd_close(m->vbd);
	unlink(path);
	free(buf);
	free(m);
}

static void test_model(void **state)
{
	(void)state;
	run_model(0, false);
}

static void test_model_lane(void **state)
{
	(void)state;
	run_model(0, true);
}

/* The same through an image file opened O_DIRECT (cache=none). */
static void test_model_direct(void **state)
{
	(void)state;
	run_model(VBD_O_DIRECT, false);
}

/* The lane and close. */

#define LC_ROUNDS 300
#define LC_MAX	  40 /* writes per burst at most */
#define LC_DISK	  (1u << 20)

struct burst {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned left;
	int err;
};

struct bwrite {
	struct vbd_req req;
	struct iovec iov;
	struct burst *b;
	uint8_t buf[BLK];
};

static void bwrite_cb(struct vbd_req *req, int ret)
{
	struct bwrite *w = req->opaque;
	struct burst *b = w->b;

	pthread_mutex_lock(&b->lock);
	if (ret < 0 && !b->err)
		b->err = ret;
	/* The last completion wakes the closer: the image goes away
	 * while the lane's job may still be on its way out. */
	if (--b->left == 0)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void test_lane_close(void **state)
{
	char path[] = "/var/tmp/vstor-test-qcow2l.XXXXXX";
	static uint32_t gen[LC_DISK / BLK];
	struct bwrite *w = calloc(LC_MAX, sizeof(*w));
	uint8_t *buf = malloc(LC_DISK);
	uint64_t seed = 0x2545f4914f6cdd1dull;
	struct burst b = {0};
	struct vbd *vbd;

	(void)state;
	assert_true(w && buf);
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	make_image(path, LC_DISK);
	/* Every cluster allocated, so that every write is in place. */
	vbd = open_image(path, 0);
	fill(buf, 0, LC_DISK / BLK, 1);
	assert_int_equal(vbd_pwrite(vbd, 0, buf, LC_DISK), 0);
	vbd_close(vbd);
	for (size_t i = 0; i < LC_DISK / BLK; i++)
		gen[i] = 1;
	for (uint32_t r = 0; r < LC_ROUNDS; r++) {
		unsigned n = 1 + (unsigned)(rnd(&seed) % LC_MAX);
		uint64_t first = rnd(&seed) % (LC_DISK / BLK - n + 1);

		vbd = open_image(path, 0);
		force_lane(vbd);
		b.left = n;
		for (unsigned i = 0; i < n; i++) {
			uint64_t blk = first + i;

			gen[blk] = r + 2;
			fill(w[i].buf, blk, 1, r + 2);
			w[i].b = &b;
			w[i].iov = (struct iovec){w[i].buf, BLK};
			w[i].req = (struct vbd_req){.op = VBD_OP_WRITE,
						    .offset = blk * BLK,
						    .iov = &w[i].iov,
						    .iovcnt = 1,
						    .cb = bwrite_cb,
						    .opaque = &w[i]};
			vbd_submit(vbd, &w[i].req);
		}
		pthread_mutex_lock(&b.lock);
		while (b.left)
			pthread_cond_wait(&b.cond, &b.lock);
		pthread_mutex_unlock(&b.lock);
		assert_int_equal(b.err, 0);
		vbd_close(vbd);
	}
	vbd = open_image(path, VBD_O_RDONLY);
	assert_int_equal(vbd_pread(vbd, 0, buf, LC_DISK), 0);
	for (uint64_t blk = 0; blk < LC_DISK / BLK; blk++)
		if (gen_of(buf + blk * BLK, blk) != gen[blk])
			fail_msg("block %llu has generation %lld, not %u",
				 (unsigned long long)blk,
				 (long long)gen_of(buf + blk * BLK, blk),
				 gen[blk]);
	vbd_close(vbd);
	check_clean(path);
	unlink(path);
	pthread_cond_destroy(&b.cond);
	pthread_mutex_destroy(&b.lock);
	free(buf);
	free(w);
}

/* Reuse. */

#define RANGE  (4 * CL)
#define X_OFF  0
#define Y_OFF  (8 * CL)
#define ROUNDS 150
#define RDEPTH 8

struct reuse {
	struct vbd *vbd;
	int stop;
	int bad; /* 1 + the block, or -errno */
	int64_t bad_gen;
	unsigned reads;
};

struct rread {
	struct vbd_req req;
	struct iovec iov;
	uint8_t buf[RANGE];
	struct reuse *r;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	int busy;
};

static void rread_cb(struct vbd_req *req, int ret)
{
	struct rread *q = req->opaque;
	struct reuse *r = q->r;

	for (uint64_t b = 0; b < RANGE / BLK && ret == 0; b++) {
		uint64_t blk = (X_OFF / BLK) + b;
		int64_t g = gen_of(q->buf + b * BLK, blk);

		/* X's blocks hold odd generations; Y's even ones, and a
		 * read of X that lands in Y's cluster shows Y's stamp. */
		if (g < 0 || (g && !(g & 1))) {
			__atomic_store_n(&r->bad_gen, g, __ATOMIC_RELAXED);
			__atomic_store_n(&r->bad, (int)blk + 1,
					 __ATOMIC_RELAXED);
		}
	}
	if (ret < 0)
		__atomic_store_n(&r->bad, ret, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(q->lock);
	q->busy = 0;
	pthread_cond_broadcast(q->cond);
	pthread_mutex_unlock(q->lock);
}

static void *reuse_reader(void *arg)
{
	struct reuse *r = arg;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct rread *q = calloc(RDEPTH, sizeof(*q));

	assert_non_null(q);
	pthread_mutex_lock(&lock);
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		int i;

		for (i = 0; i < RDEPTH && q[i].busy; i++)
			;
		if (i == RDEPTH) {
			pthread_cond_wait(&cond, &lock);
			continue;
		}
		q[i].busy = 1;
		q[i].r = r;
		q[i].lock = &lock;
		q[i].cond = &cond;
		q[i].iov = (struct iovec){q[i].buf, RANGE};
		q[i].req = (struct vbd_req){.op = VBD_OP_READ,
					    .offset = X_OFF,
					    .iov = &q[i].iov,
					    .iovcnt = 1,
					    .cb = rread_cb,
					    .opaque = &q[i]};
		pthread_mutex_unlock(&lock);
		vbd_submit(r->vbd, &q[i].req);
		pthread_mutex_lock(&lock);
	}
	for (int i = 0; i < RDEPTH; i++)
		while (q[i].busy)
			pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	free(q);
	return NULL;
}

static void test_reuse(void **state)
{
	char path[] = "/var/tmp/vstor-test-qcow2r.XXXXXX";
	struct reuse r = {0};
	uint8_t *buf = malloc(RANGE);
	pthread_t t;

	(void)state;
	assert_non_null(buf);
	make_image(path, 16 * CL);
	r.vbd = open_image(path, 0);
	assert_int_equal(pthread_create(&t, NULL, reuse_reader, &r), 0);
	for (uint32_t i = 0; i < ROUNDS && !r.bad; i++) {
		/* X gets clusters, loses them (freed at the flush), and Y
		 * takes them: the first free clusters are handed out
		 * first. */
		fill(buf, X_OFF / BLK, RANGE / BLK, 2 * i + 1);
		assert_int_equal(vbd_pwrite(r.vbd, X_OFF, buf, RANGE), 0);
		assert_int_equal(vbd_flush(r.vbd), 0);
		assert_int_equal(vbd_discard(r.vbd, X_OFF, RANGE), 0);
		assert_int_equal(vbd_discard(r.vbd, Y_OFF, RANGE), 0);
		assert_int_equal(vbd_flush(r.vbd), 0);
		fill(buf, Y_OFF / BLK, RANGE / BLK, 2 * i + 2);
		assert_int_equal(vbd_pwrite(r.vbd, Y_OFF, buf, RANGE), 0);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	if (r.bad > 0)
		fail_msg("a read of X found block %d holding generation %lld",
			 r.bad - 1, (long long)r.bad_gen);
	assert_int_equal(r.bad, 0);
	assert_true(r.reads > 0);
	vbd_close(r.vbd);
	check_clean(path);
	unlink(path);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_model_direct),
		cmocka_unit_test(test_model_lane),
		cmocka_unit_test(test_lane_close),
		cmocka_unit_test(test_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
