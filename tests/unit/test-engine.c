/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the I/O engines (vbd/engine*.c) and the worker pool.
 *
 * Files live under /var/tmp (or $VSTOR_TEST_DIR): O_DIRECT needs a real
 * file system, and tmpfs has no O_DIRECT.  Every wait has a deadline, so
 * a lost completion or a deadlock fails the run instead of hanging it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cmocka.h>

#include "common/error.h"
#include "vbd/engine.h"
#include "vbd/pool.h"

#define BLK		  4096
#define WAIT_SECONDS	  120
#define SECCOMP_CHILD_ARG "--seccomp-child"

struct variant {
	enum vbd_aio aio;
	bool direct;
};

static const struct variant uring_buffered = {VBD_AIO_IO_URING, false};
static const struct variant uring_direct = {VBD_AIO_IO_URING, true};
static const struct variant native_direct = {VBD_AIO_NATIVE, true};
static const struct variant threads_buffered = {VBD_AIO_THREADS, false};
static const struct variant threads_direct = {VBD_AIO_THREADS, true};

static uint64_t seed;

/* xorshift64*: reproducible from the seed printed at start. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void fill_random(void *buf, size_t len, uint64_t s)
{
	uint64_t *p = buf;

	s |= 1;
	for (size_t i = 0; i < len / 8; i++)
		p[i] = rnd(&s);
}

static void *xalloc(size_t len)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, BLK, len), 0);
	memset(p, 0, len);
	return p;
}

/* A file of `size` zero bytes, already unlinked; direct means O_DIRECT. */
static int temp_file(size_t size, bool direct)
{
	const char *dir = getenv("VSTOR_TEST_DIR");
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/vstor-test-engine-XXXXXX",
		 dir ? dir : "/var/tmp");
	fd = mkostemp(path, O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (fd < 0)
		fail_msg("mkostemp %s: %s", path, strerror(errno));
	unlink(path);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static struct vbd_engine *engine_new(const struct variant *v, unsigned depth)
{
	struct vbd_engine *e = NULL;
	struct vs_error *err = NULL;
	enum vbd_aio chosen = VBD_AIO_DEFAULT;
	int ret;

	ret = vbd_engine_create(v->aio, depth, v->direct, &e, &chosen, &err);
	if (ret < 0)
		fail_msg("aio=%s: %s", vbd_aio_name(v->aio),
			 err ? vs_error_msg(err) : "(no message)");
	assert_null(err);
	assert_non_null(e);
	assert_int_equal(chosen, v->aio);
	return e;
}

static void deadline_in(struct timespec *ts, int seconds)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += seconds;
}

/*
 * A count of requests in flight that submitters and done() share.  A
 * missed completion would leave waiters forever: fail loudly instead (the
 * engine still owns buffers then, so there is no clean way back).
 */
struct tracker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight;
};

#define TRACKER_INIT                                                   \
	{                                                              \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 \
	}

static void tracker_wait_below(struct tracker *t, unsigned limit)
{
	struct timespec ts;

	deadline_in(&ts, WAIT_SECONDS);
	pthread_mutex_lock(&t->lock);
	while (t->inflight >= limit) {
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) ==
		    ETIMEDOUT) {
			fprintf(stderr,
				"# timed out with %u requests in "
				"flight: lost completion or deadlock\n",
				t->inflight);
			abort();
		}
	}
	pthread_mutex_unlock(&t->lock);
}

static void tracker_add(struct tracker *t)
{
	pthread_mutex_lock(&t->lock);
	t->inflight++;
	pthread_mutex_unlock(&t->lock);
}

static void tracker_done(struct tracker *t)
{
	pthread_mutex_lock(&t->lock);
	t->inflight--;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* done() must not run inside submit() on the submitting thread. */
static __thread bool in_submit;
static atomic_uint inline_dones;

static void submit(struct vbd_engine *e, struct vbd_eio *eio)
{
	in_submit = true;
	vbd_engine_submit(e, eio);
	in_submit = false;
}

/* One request of the write/read stress test. */
struct rw_req {
	struct vbd_eio eio;
	struct iovec iov[2];
	size_t len;
	struct tracker *t;
	atomic_uint ndone;
	ssize_t ret;
};

static void rw_done(struct vbd_eio *eio, ssize_t ret)
{
	struct rw_req *r = (struct rw_req *)eio;

	if (in_submit)
		atomic_fetch_add(&inline_dones, 1);
	r->ret = ret;
	atomic_fetch_add(&r->ndone, 1);
	tracker_done(r->t);
}

struct rw_job {
	struct vbd_engine *e;
	struct rw_req *reqs;
	size_t nreqs;
	unsigned thread, nthreads;
	unsigned qd;
	struct tracker t;
};

static void *rw_thread(void *arg)
{
	struct rw_job *j = arg;

	for (size_t i = j->thread; i < j->nreqs; i += j->nthreads) {
		struct rw_req *r = &j->reqs[i];

		tracker_wait_below(&j->t, j->qd);
		tracker_add(&j->t);
		r->t = &j->t;
		submit(j->e, &r->eio);
	}
	tracker_wait_below(&j->t, 1);
	return NULL;
}

/* Run every request of `reqs` from `nthreads` threads, qd each. */
static void run_parallel(struct vbd_engine *e, struct rw_req *reqs,
			 size_t nreqs, unsigned nthreads, unsigned qd)
{
	struct rw_job jobs[8];
	pthread_t tids[8];

	assert_true(nthreads <= 8);
	for (unsigned i = 0; i < nthreads; i++) {
		jobs[i] = (struct rw_job){
			.e = e,
			.reqs = reqs,
			.nreqs = nreqs,
			.thread = i,
			.nthreads = nthreads,
			.qd = qd,
			.t = TRACKER_INIT,
		};
		assert_int_equal(
			pthread_create(&tids[i], NULL, rw_thread, &jobs[i]), 0);
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	for (size_t i = 0; i < nreqs; i++) {
		if (atomic_load(&reqs[i].ndone) != 1)
			fail_msg("request %zu completed %u times", i,
				 atomic_load(&reqs[i].ndone));
		if (reqs[i].ret != (ssize_t)reqs[i].len)
			fail_msg("request %zu at %llu: got %zd, want %zu", i,
				 (unsigned long long)reqs[i].eio.offset,
				 reqs[i].ret, reqs[i].len);
	}
	assert_int_equal(atomic_load(&inline_dones), 0);
}

/* One request on the calling thread, waited for. */
static ssize_t run_one(struct vbd_engine *e, enum vbd_eio_op op, int fd,
		       uint64_t offset, void *buf, size_t len)
{
	struct tracker t = TRACKER_INIT;
	struct rw_req r = {
		.eio =
			{
				.op = op,
				.fd = fd,
				.offset = offset,
				.iov = r.iov,
				.iovcnt = buf ? 1 : 0,
				.done = rw_done,
			},
		.iov = {{buf, len}},
		.t = &t,
	};

	tracker_add(&t);
	submit(e, &r.eio);
	tracker_wait_below(&t, 1);
	assert_int_equal(atomic_load(&r.ndone), 1);
	assert_int_equal(atomic_load(&inline_dones), 0);
	return r.ret;
}

/*
 * Cut the file into extents of 1 to 4 blocks and shuffle them, so that
 * neighbours are written by different threads at different times.  An
 * extent of several blocks is sent as two iovecs.
 */
static size_t make_reqs(struct rw_req *reqs, size_t nblocks, uint8_t *buf,
			enum vbd_eio_op op, int fd, uint64_t *s)
{
	size_t n = 0;

	for (size_t b = 0; b < nblocks; n++) {
		size_t len = 1 + rnd(s) % 4;
		struct rw_req *r = &reqs[n];

		if (b + len > nblocks)
			len = nblocks - b;
		*r = (struct rw_req){
			.eio =
				{
					.op = op,
					.fd = fd,
					.offset = b * BLK,
					.iovcnt = len > 1 ? 2 : 1,
					.done = rw_done,
				},
			.iov =
				{
					{buf + b * BLK, BLK},
					{buf + (b + 1) * BLK, (len - 1) * BLK},
				},
			.len = len * BLK,
		};
		r->eio.iov = r->iov;
		b += len;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd(s) % (i + 1);
		struct rw_req tmp = reqs[i];

		reqs[i] = reqs[j];
		reqs[j] = tmp;
	}
	/* The iov pointers moved with their requests. */
	for (size_t i = 0; i < n; i++)
		reqs[i].eio.iov = reqs[i].iov;
	return n;
}

static void rw_stress(const struct variant *v, unsigned qd)
{
	const size_t nblocks = 4096, size = nblocks * BLK;
	uint8_t *data = xalloc(size), *back = xalloc(size), *check;
	struct rw_req *reqs = calloc(nblocks, sizeof(*reqs));
	uint64_t s = seed ^ (uint64_t)v->aio << 8 ^ v->direct;
	int fd = temp_file(size, v->direct);
	struct vbd_engine *e;
	size_t n;

	assert_non_null(reqs);
	fill_random(data, size, s);
	/* A small depth hint: 4 threads x 64 in flight is far beyond the
	 * ring, so the engines' own queues are exercised too (at qd 64). */
	e = engine_new(v, 4);

	n = make_reqs(reqs, nblocks, data, VBD_EIO_WRITE, fd, &s);
	run_parallel(e, reqs, n, 4, qd);
	assert_int_equal(run_one(e, VBD_EIO_FDATASYNC, fd, 0, NULL, 0), 0);

	n = make_reqs(reqs, nblocks, back, VBD_EIO_READ, fd, &s);
	run_parallel(e, reqs, n, 4, qd);
	for (size_t b = 0; b < nblocks; b++)
		if (memcmp(data + b * BLK, back + b * BLK, BLK))
			fail_msg("block %zu read back through the engine "
				 "differs from what was written",
				 b);

	/* And the file really holds it, read without the engine. */
	check = xalloc(size);
	assert_int_equal(pread(fd, check, size, 0), (ssize_t)size);
	assert_memory_equal(check, data, size);

	vbd_engine_destroy(e);
	close(fd);
	free(check);
	free(reqs);
	free(data);
	free(back);
}

static void test_rw_stress(void **state)
{
	rw_stress(*state, 64);
}

/*
 * One request at a time per thread: most find the engine idle, so the
 * io_uring reaper must be woken for each, and a lost wake-up hangs here
 * (until the deadline fails the test).
 */
static void test_rw_depth_one(void **state)
{
	rw_stress(*state, 1);
}

/*
 * A chain of requests at depth 32 where each done() submits the next one
 * to the same engine, as a benchmark or a guest queue does.  Reads check
 * their data; every fourth chain rewrites what it read.
 */
#define CHAIN_TOTAL  10000
#define CHAIN_DEPTH  32
#define CHAIN_BLOCKS 1024

struct chain_test;

struct chain {
	struct vbd_eio eio;
	struct iovec iov;
	struct chain_test *ct;
	uint64_t s;
	unsigned id;
};

struct chain_test {
	struct vbd_engine *e;
	int fd;
	const uint8_t *data;
	atomic_uint issued;
	atomic_uint completed;
	atomic_uint errors;
	struct tracker t;
	struct chain chains[CHAIN_DEPTH];
};

static void chain_start(struct chain *c)
{
	uint64_t b = rnd(&c->s) % CHAIN_BLOCKS;

	c->eio.op = c->id % 4 == 3 && b % 2 ? VBD_EIO_WRITE : VBD_EIO_READ;
	c->eio.offset = b * BLK;
	if (c->eio.op == VBD_EIO_WRITE)
		memcpy(c->iov.iov_base, c->ct->data + b * BLK, BLK);
	else
		memset(c->iov.iov_base, 0, BLK);
}

static void chain_done(struct vbd_eio *eio, ssize_t ret)
{
	struct chain *c = (struct chain *)eio;
	struct chain_test *ct = c->ct;

	if (ret != BLK || in_submit ||
	    (eio->op == VBD_EIO_READ &&
	     memcmp(c->iov.iov_base, ct->data + eio->offset, BLK)))
		atomic_fetch_add(&ct->errors, 1);
	atomic_fetch_add(&ct->completed, 1);
	if (atomic_fetch_add(&ct->issued, 1) < CHAIN_TOTAL) {
		chain_start(c);
		vbd_engine_submit(ct->e, eio);
		return;
	}
	tracker_done(&ct->t);
}

static void test_chain(void **state)
{
	const struct variant *v = *state;
	const size_t size = CHAIN_BLOCKS * BLK;
	struct chain_test *ct = calloc(1, sizeof(*ct));
	uint8_t *data = xalloc(size), *bufs;

	assert_non_null(ct);
	fill_random(data, size, seed + 7);
	ct->fd = temp_file(size, v->direct);
	assert_int_equal(pwrite(ct->fd, data, size, 0), (ssize_t)size);
	ct->data = data;
	ct->e = engine_new(v, CHAIN_DEPTH);
	ct->t = (struct tracker)TRACKER_INIT;
	bufs = xalloc(CHAIN_DEPTH * BLK);
	for (unsigned i = 0; i < CHAIN_DEPTH; i++) {
		struct chain *c = &ct->chains[i];

		*c = (struct chain){
			.eio =
				{
					.fd = ct->fd,
					.iov = &c->iov,
					.iovcnt = 1,
					.done = chain_done,
				},
			.iov = {bufs + i * BLK, BLK},
			.ct = ct,
			.s = seed + i + 1,
			.id = i,
		};
	}
	/* Claimed up front: the first chains may finish all the work
	 * before this thread gets the CPU back to start the others. */
	atomic_store(&ct->issued, CHAIN_DEPTH);
	for (unsigned i = 0; i < CHAIN_DEPTH; i++)
		tracker_add(&ct->t);
	for (unsigned i = 0; i < CHAIN_DEPTH; i++) {
		chain_start(&ct->chains[i]);
		submit(ct->e, &ct->chains[i].eio);
	}
	tracker_wait_below(&ct->t, 1);
	assert_int_equal(atomic_load(&ct->completed), CHAIN_TOTAL);
	assert_int_equal(atomic_load(&ct->errors), 0);
	assert_int_equal(atomic_load(&inline_dones), 0);
	vbd_engine_destroy(ct->e);
	close(ct->fd);
	free(bufs);
	free(data);
	free(ct);
}

/* A closed descriptor: every engine reports EBADF through done(). */
static void test_ebadf(void **state)
{
	const struct variant *v = *state;
	struct vbd_engine *e = engine_new(v, 8);
	uint8_t *buf = xalloc(BLK);
	int fd = temp_file(BLK, v->direct);

	close(fd);
	assert_int_equal(run_one(e, VBD_EIO_READ, fd, 0, buf, BLK), -EBADF);
	assert_int_equal(run_one(e, VBD_EIO_WRITE, fd, 0, buf, BLK), -EBADF);
	assert_int_equal(run_one(e, VBD_EIO_FDATASYNC, fd, 0, NULL, 0), -EBADF);
	vbd_engine_destroy(e);
	free(buf);
}

/* Short reads at the end of the file reach done() as they are; an offset
 * that off_t cannot hold is refused. */
static void test_eof_and_bad_offset(void **state)
{
	const struct variant *v = *state;
	struct vbd_engine *e = engine_new(v, 8);
	uint8_t *buf = xalloc(4 * BLK);
	int fd = temp_file(2 * BLK, v->direct);

	assert_int_equal(run_one(e, VBD_EIO_READ, fd, BLK, buf, 4 * BLK), BLK);
	assert_int_equal(run_one(e, VBD_EIO_READ, fd, 2 * BLK, buf, BLK), 0);
	assert_int_equal(
		run_one(e, VBD_EIO_READ, fd, UINT64_MAX - BLK + 1, buf, BLK),
		-EINVAL);
	assert_int_equal(
		run_one(e, VBD_EIO_WRITE, fd, UINT64_MAX - BLK + 1, buf, BLK),
		-EINVAL);
	vbd_engine_destroy(e);
	close(fd);
	free(buf);
}

/* done() may destroy the engine it was called by (nothing else being in
 * flight); the reaper then cleans up after the callback. */
struct self_destroy {
	struct vbd_eio eio;
	struct iovec iov;
	struct vbd_engine *e;
	struct tracker t;
	ssize_t ret;
};

static void self_destroy_done(struct vbd_eio *eio, ssize_t ret)
{
	struct self_destroy *sd = (struct self_destroy *)eio;

	sd->ret = ret;
	vbd_engine_destroy(sd->e);
	tracker_done(&sd->t);
}

static void test_destroy_in_done(void **state)
{
	const struct variant *v = *state;
	uint8_t *buf = xalloc(BLK);
	int fd = temp_file(BLK, v->direct);
	struct self_destroy sd = {
		.eio =
			{
				.op = VBD_EIO_READ,
				.fd = fd,
				.iov = &sd.iov,
				.iovcnt = 1,
				.done = self_destroy_done,
			},
		.iov = {buf, BLK},
		.e = engine_new(v, 8),
		.t = TRACKER_INIT,
	};

	tracker_add(&sd.t);
	vbd_engine_submit(sd.e, &sd.eio);
	tracker_wait_below(&sd.t, 1);
	assert_int_equal(sd.ret, BLK);
	close(fd);
	free(buf);
}

/*
 * Threads that submit buffered writes and exit at once, as a short-lived
 * thread of a client may.  The kernel runs such writes on io-wq workers
 * that belong to the task that entered them into the ring, and cancels
 * them (-ECANCELED) when that task exits: the engine must never enter a
 * request on a caller's thread.  The engine is also created on a thread
 * that is gone before the first request, since nothing of the ring may
 * depend on that thread either.
 */
#define EXIT_THREADS 4
#define EXIT_REQS    64
#define EXIT_LEN     (256 * 1024)

struct exit_create {
	struct vbd_engine *e;
	struct vs_error *err;
	int ret;
};

static void *exit_create_fn(void *arg)
{
	struct exit_create *c = arg;
	enum vbd_aio chosen = VBD_AIO_DEFAULT;

	/* A depth that lets every request go to the kernel at once. */
	c->ret = vbd_engine_create(VBD_AIO_IO_URING, EXIT_THREADS * EXIT_REQS,
				   false, &c->e, &chosen, &c->err);
	return NULL;
}

struct exit_job {
	struct vbd_engine *e;
	struct rw_req *reqs;
};

static void *exit_submit_fn(void *arg)
{
	struct exit_job *j = arg;

	for (unsigned i = 0; i < EXIT_REQS; i++)
		submit(j->e, &j->reqs[i].eio);
	/* No waiting: the requests are still in flight as the thread ends. */
	return NULL;
}

static void test_submitters_exit(void **state)
{
	const size_t total = EXIT_THREADS * EXIT_REQS;
	const size_t size = total * EXIT_LEN;
	uint8_t *data = xalloc(size), *check = xalloc(size);
	struct rw_req *reqs = calloc(total, sizeof(*reqs));
	struct tracker t = TRACKER_INIT;
	struct exit_job jobs[EXIT_THREADS];
	pthread_t tids[EXIT_THREADS], tid;
	struct exit_create c = {0};
	int fd = temp_file(size, false);

	(void)state;

	assert_non_null(reqs);
	fill_random(data, size, seed + 11);
	assert_int_equal(pthread_create(&tid, NULL, exit_create_fn, &c), 0);
	assert_int_equal(pthread_join(tid, NULL), 0);
	if (c.ret < 0)
		fail_msg("aio=io_uring: %s",
			 c.err ? vs_error_msg(c.err) : "(no message)");
	for (size_t i = 0; i < total; i++) {
		reqs[i] = (struct rw_req){
			.eio =
				{
					.op = VBD_EIO_WRITE,
					.fd = fd,
					.offset = i * EXIT_LEN,
					.iovcnt = 1,
					.done = rw_done,
				},
			.iov = {{data + i * EXIT_LEN, EXIT_LEN}},
			.len = EXIT_LEN,
			.t = &t,
		};
		reqs[i].eio.iov = reqs[i].iov;
		tracker_add(&t);
	}
	for (unsigned i = 0; i < EXIT_THREADS; i++) {
		jobs[i] = (struct exit_job){c.e, reqs + i * EXIT_REQS};
		assert_int_equal(pthread_create(&tids[i], NULL, exit_submit_fn,
						&jobs[i]),
				 0);
	}
	for (unsigned i = 0; i < EXIT_THREADS; i++)
		pthread_join(tids[i], NULL);
	tracker_wait_below(&t, 1);
	for (size_t i = 0; i < total; i++) {
		if (atomic_load(&reqs[i].ndone) != 1)
			fail_msg("request %zu completed %u times", i,
				 atomic_load(&reqs[i].ndone));
		if (reqs[i].ret != (ssize_t)reqs[i].len)
			fail_msg("write %zu at %llu: got %zd (%s), want %zu", i,
				 (unsigned long long)reqs[i].eio.offset,
				 reqs[i].ret,
				 reqs[i].ret < 0 ? strerror((int)-reqs[i].ret)
						 : "short",
				 reqs[i].len);
	}
	assert_int_equal(atomic_load(&inline_dones), 0);
	assert_int_equal(pread(fd, check, size, 0), (ssize_t)size);
	assert_memory_equal(check, data, size);
	vbd_engine_destroy(c.e);
	close(fd);
	free(reqs);
	free(check);
	free(data);
}

static void test_native_needs_direct(void **state)
{
	struct vbd_engine *e = NULL;
	struct vs_error *err = NULL;
	enum vbd_aio chosen = VBD_AIO_DEFAULT;

	(void)state;

	assert_int_equal(
		vbd_engine_create(VBD_AIO_NATIVE, 32, false, &e, &chosen, &err),
		-EINVAL);
	assert_null(e);
	assert_non_null(err);
	assert_non_null(strstr(vs_error_msg(err), "aio=native"));
	assert_non_null(strstr(vs_error_msg(err), "cache.direct=on"));
	vs_error_free(err);
}

static void aio_name_bad(const char *name, const char *needle)
{
	enum vbd_aio aio = VBD_AIO_THREADS;
	struct vs_error *err = NULL;

	assert_int_equal(vbd_aio_from_name(name, &aio, &err), -EINVAL);
	assert_int_equal(aio, VBD_AIO_THREADS);
	assert_non_null(err);
	assert_non_null(strstr(vs_error_msg(err), needle));
	assert_non_null(strstr(vs_error_msg(err), "io_uring"));
	assert_non_null(strstr(vs_error_msg(err), "native"));
	assert_non_null(strstr(vs_error_msg(err), "threads"));
	vs_error_free(err);
}

static void test_aio_names(void **state)
{
	static const enum vbd_aio all[] = {VBD_AIO_IO_URING, VBD_AIO_NATIVE,
					   VBD_AIO_THREADS};
	struct vs_error *err = NULL;
	enum vbd_aio aio;

	(void)state;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		aio = VBD_AIO_DEFAULT;
		assert_int_equal(
			vbd_aio_from_name(vbd_aio_name(all[i]), &aio, &err), 0);
		assert_int_equal(aio, all[i]);
	}
	assert_null(err);
	assert_string_equal(vbd_aio_name(VBD_AIO_IO_URING), "io_uring");
	assert_string_equal(vbd_aio_name(VBD_AIO_NATIVE), "native");
	assert_string_equal(vbd_aio_name(VBD_AIO_THREADS), "threads");
	aio_name_bad("uring", "'uring'");
	aio_name_bad("IO_URING", "'IO_URING'");
	aio_name_bad("io_uring ", "'io_uring '");
	aio_name_bad("", "''");
	aio_name_bad("default", "'default'");
}

/* Where io_uring works, the default is io_uring. */
static void test_default_is_io_uring(void **state)
{
	struct vbd_engine *e = NULL;
	enum vbd_aio chosen = VBD_AIO_DEFAULT;

	(void)state;

	assert_int_equal(vbd_engine_create(VBD_AIO_DEFAULT, 32, false, &e,
					   &chosen, NULL),
			 0);
	assert_int_equal(chosen, VBD_AIO_IO_URING);
	vbd_engine_destroy(e);
}

/*
 * In a child with io_uring_setup forbidden by seccomp, as in a locked
 * down container: aio=io_uring fails with a message, the default falls
 * back to threads, which work.  Exit codes: 0 ok, 77 no seccomp, else
 * the number of the failed check.
 */
static int seccomp_child(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
	struct vbd_engine *e = NULL;
	struct vs_error *err = NULL;
	enum vbd_aio chosen = VBD_AIO_DEFAULT;
	uint8_t buf[BLK];
	int fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return 77;
	if (vbd_engine_create(VBD_AIO_IO_URING, 32, false, &e, &chosen, &err) !=
	    -ENOSYS)
		return 1;
	if (!err || !strstr(vs_error_msg(err), "io_uring") ||
	    !strstr(vs_error_msg(err), "aio=threads"))
		return 2;
	vs_error_free(err);
	err = NULL;
	if (vbd_engine_create(VBD_AIO_DEFAULT, 32, false, &e, &chosen, &err) <
		    0 ||
	    err)
		return 3;
	if (chosen != VBD_AIO_THREADS)
		return 4;
	memset(buf, 0, sizeof(buf));
	fd = temp_file(BLK, false);
	if (pwrite(fd, "hello", 5, 0) != 5)
		return 5;
	if (run_one(e, VBD_EIO_READ, fd, 0, buf, BLK) != BLK ||
	    memcmp(buf, "hello", 5))
		return 6;
	vbd_engine_destroy(e);
	close(fd);
	return 0;
}

static void test_fallback_without_io_uring(void **state)
{
	int status;
	pid_t pid;

	(void)state;

#if !defined(__x86_64__)
	/* The filter compares syscall numbers without checking the
	 * architecture; keep it where that is known to be right. */
	print_message("# SKIP: the seccomp filter is written for x86_64\n");
	skip();
#endif
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A fresh image: no threads, no engine state inherited. */
		execl("/proc/self/exe", "test-engine", SECCOMP_CHILD_ARG,
		      (char *)NULL);
		_exit(126);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("# SKIP: cannot install a seccomp filter\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The pool runs every job, and never more at once than it may. */
#define POOL_JOBS 2000

struct pool_test {
	pthread_mutex_t lock;
	unsigned running, max_running, ran;
	struct tracker t;
};

struct pool_test_job {
	struct vbd_pool_job job;
	struct pool_test *pt;
};

static void pool_test_fn(struct vbd_pool_job *job)
{
	struct pool_test *pt = ((struct pool_test_job *)job)->pt;

	pthread_mutex_lock(&pt->lock);
	if (++pt->running > pt->max_running)
		pt->max_running = pt->running;
	pthread_mutex_unlock(&pt->lock);
	usleep(50);
	pthread_mutex_lock(&pt->lock);
	pt->running--;
	pt->ran++;
	pthread_mutex_unlock(&pt->lock);
	tracker_done(&pt->t);
}

static void pool_round(unsigned max, unsigned *max_running)
{
	struct pool_test pt = {.lock = PTHREAD_MUTEX_INITIALIZER,
			       .t = TRACKER_INIT};
	struct pool_test_job *jobs = calloc(POOL_JOBS, sizeof(*jobs));

	assert_non_null(jobs);
	vbd_pool_set_max_workers(max);
	for (unsigned i = 0; i < POOL_JOBS; i++) {
		jobs[i].job.fn = pool_test_fn;
		jobs[i].pt = &pt;
		tracker_add(&pt.t);
		vbd_pool_run(&jobs[i].job);
	}
	tracker_wait_below(&pt.t, 1);
	pthread_mutex_lock(&pt.lock);
	assert_int_equal(pt.ran, POOL_JOBS);
	*max_running = pt.max_running;
	pthread_mutex_unlock(&pt.lock);
	free(jobs);
}

static void test_pool(void **state)
{
	unsigned max_running;

	(void)state;

	/* Workers from earlier tests may still be alive, but the limit
	 * counts them too. */
	pool_round(2, &max_running);
	assert_true(max_running >= 1 && max_running <= 2);
	pool_round(16, &max_running);
	assert_true(max_running <= 16);
	vbd_pool_set_max_workers(64);
}

#define VARIANT_TESTS(fn, label)                                               \
	{label " io_uring", fn, NULL, NULL, (void *)&uring_buffered},          \
		{label " io_uring direct", fn, NULL, NULL,                     \
		 (void *)&uring_direct},                                       \
		{label " native direct", fn, NULL, NULL,                       \
		 (void *)&native_direct},                                      \
		{label " threads", fn, NULL, NULL, (void *)&threads_buffered}, \
	{                                                                      \
		label " threads direct", fn, NULL, NULL,                       \
			(void *)&threads_direct                                \
	}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fallback_without_io_uring),
		cmocka_unit_test(test_aio_names),
		cmocka_unit_test(test_native_needs_direct),
		cmocka_unit_test(test_default_is_io_uring),
		VARIANT_TESTS(test_rw_stress, "write/read stress"),
		VARIANT_TESTS(test_rw_depth_one,
			      "write/read, depth 1 x 4 threads"),
		VARIANT_TESTS(test_chain, "done() resubmits, depth 32"),
		VARIANT_TESTS(test_ebadf, "EBADF"),
		VARIANT_TESTS(test_eof_and_bad_offset, "EOF and bad offset"),
		VARIANT_TESTS(test_destroy_in_done, "destroy from done()"),
		{"io_uring: submitting threads exit at once",
		 test_submitters_exit, NULL, NULL, NULL},
		cmocka_unit_test(test_pool),
	};
	const char *env = getenv("VSTOR_TEST_SEED");

	if (argc > 1 && !strcmp(argv[1], SECCOMP_CHILD_ARG))
		return seccomp_child();
	seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	print_message("# VSTOR_TEST_SEED=%llu\n", (unsigned long long)seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
