/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for blkback's request path and disk table: every refusal
 * happens before the vbd sees the request (the file is unchanged), FUA
 * makes a write stable before done (proved with the crash driver's
 * power cut), statistics count what happened, drain waits for every
 * request, and the last reference closes the image.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "blkback/blkback.h"
#include "blkback/disk-priv.h"
#include "blkback/server.h"
#include "vbd/crash.h"

#define IMG_SIZE (1u << 20)

struct fixture {
	char path[64];
	char spec[128];
	uint8_t *ref; /* what the file should hold */
};

/* A request and what came back. */
struct sync_req {
	struct blkback_req req;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls; /* done() calls: must end at exactly 1 */
	int ret;
};

static void sync_done(struct blkback_req *req, int ret)
{
	struct sync_req *s = req->opaque;

	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->ret = ret;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static int submit(struct blkback_disk *d, enum blkback_op op, uint64_t offset,
		  uint64_t len, unsigned flags, const struct iovec *iov,
		  int iovcnt)
{
	struct sync_req s = {
		.req = {.op = op,
			.offset = offset,
			.len = len,
			.flags = flags,
			.iov = iov,
			.iovcnt = iovcnt,
			.done = sync_done},
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};

	s.req.opaque = &s;
	blkback_submit(d, &s.req);
	pthread_mutex_lock(&s.lock);
	while (!s.calls)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	/* Once more done() would be a bug: drain, then look again. */
	blkback_disk_drain(d);
	assert_int_equal(s.calls, 1);
	return s.ret;
}

static int rw(struct blkback_disk *d, enum blkback_op op, uint64_t offset,
	      void *buf, size_t len, unsigned flags)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return submit(d, op, offset, len, flags, &iov, 1);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint8_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)rng_state;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	strcpy(f->path, "/var/tmp/vstor-test-blkback.XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	f->ref = malloc(IMG_SIZE);
	for (size_t i = 0; i < IMG_SIZE; i++)
		f->ref[i] = rnd();
	assert_int_equal(pwrite(fd, f->ref, IMG_SIZE, 0), IMG_SIZE);
	close(fd);
	snprintf(f->spec, sizeof(f->spec), "format=raw,vdev=xvda,target=%s",
		 f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	free(f->ref);
	free(f);
	return 0;
}

static struct blkback_disk *open_spec(const char *spec, unsigned flags)
{
	struct vs_error *err = NULL;
	struct blkback_disk *d = NULL;

	if (blkback_disk_open(spec, flags, &d, &err) < 0)
		fail_msg("open %s: %s", spec, vs_error_msg(err));
	return d;
}

/* The file holds exactly f->ref. */
static void check_file(const struct fixture *f)
{
	uint8_t *buf = malloc(IMG_SIZE);
	int fd = open(f->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, IMG_SIZE, 0), IMG_SIZE);
	close(fd);
	assert_memory_equal(buf, f->ref, IMG_SIZE);
	free(buf);
}

static void test_read_write(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = open_spec(f->spec, 0);
	uint8_t a[8192], b[8192];
	struct iovec iov[3] = {
		{.iov_base = b, .iov_len = 100},
		{.iov_base = b + 100, .iov_len = 4000},
		{.iov_base = b + 4100, .iov_len = 4092},
	};

	assert_string_equal(blkback_disk_name(d), "xvda");
	assert_int_equal(blkback_disk_size(d), IMG_SIZE);
	assert_false(blkback_disk_readonly(d));
	assert_true(blkback_disk_discard(d));
	assert_false(blkback_disk_retired(d));

	assert_int_equal(rw(d, BLKBACK_OP_READ, 12345, a, sizeof(a), 0), 0);
	assert_memory_equal(a, f->ref + 12345, sizeof(a));
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = rnd();
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 777, a, sizeof(a), 0), 0);
	memcpy(f->ref + 777, a, sizeof(a));
	/* A scattered read of the same bytes. */
	assert_int_equal(submit(d, BLKBACK_OP_READ, 777, sizeof(b), 0, iov, 3),
			 0);
	assert_memory_equal(a, b, sizeof(b));
	/* The very last byte, and a flush. */
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, IMG_SIZE - 1, a, 1, 0), 0);
	f->ref[IMG_SIZE - 1] = a[0];
	assert_int_equal(submit(d, BLKBACK_OP_FLUSH, 0, 0, 0, NULL, 0), 0);
	/* FUA on a read means nothing and is accepted (NBD's rule). */
	assert_int_equal(rw(d, BLKBACK_OP_READ, 0, b, 512, BLKBACK_F_FUA), 0);
	blkback_disk_unref(d);
	check_file(f);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = open_spec(f->spec, 0);
	static uint8_t buf[4096];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	/* Lengths that wrap a naive sum to 4096. */
	struct iovec wrap[2] = {
		{.iov_base = buf, .iov_len = SIZE_MAX},
		{.iov_base = buf, .iov_len = 4097},
	};
	struct blkback_stats st;

	memset(buf, 0xa5, sizeof(buf));
	/* Unknown op and flags. */
	assert_int_equal(submit(d, BLKBACK_OP_COUNT, 0, 512, 0, &iov, 1),
			 -EINVAL);
	assert_int_equal(submit(d, (enum blkback_op) - 1, 0, 512, 0, &iov, 1),
			 -EINVAL);
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 0, buf, 512, 1u << 9),
			 -EINVAL);
	assert_int_equal(
		rw(d, BLKBACK_OP_WRITE, 0, buf, 512, BLKBACK_F_MAY_UNMAP),
		-EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_DISCARD, 0, 512,
				BLKBACK_F_NO_FALLBACK, NULL, 0),
			 -EINVAL);
	/* Lengths. */
	assert_int_equal(rw(d, BLKBACK_OP_READ, 0, buf, 0, 0), -EINVAL);
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 0, buf, 0, 0), -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, BLKBACK_MAX_IO + 1ull,
				0, &iov, 1),
			 -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, 4095, 0, &iov, 1),
			 -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, 4096, 0, &iov, 0),
			 -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, 4096, 0, &iov, -1),
			 -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, 4096, 0, NULL, 1),
			 -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, 4096, 0, wrap, 2),
			 -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE, 0, 4096, 0, &iov, 100000),
			 -EINVAL);
	/* Overflow near UINT64_MAX: offset + len wraps to a small number. */
	assert_int_equal(rw(d, BLKBACK_OP_READ, UINT64_MAX - 100, buf, 4096, 0),
			 -EINVAL);
	assert_int_equal(
		rw(d, BLKBACK_OP_WRITE, UINT64_MAX - 100, buf, 4096, 0),
		-EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE_ZEROES, 4096,
				UINT64_MAX - 4095, 0, NULL, 0),
			 -EINVAL);
	assert_int_equal(
		submit(d, BLKBACK_OP_DISCARD, UINT64_MAX, 1, 0, NULL, 0),
		-EINVAL);
	/* Past the end: reads and discards EINVAL, writes ENOSPC. */
	assert_int_equal(rw(d, BLKBACK_OP_READ, IMG_SIZE - 1, buf, 2, 0),
			 -EINVAL);
	assert_int_equal(rw(d, BLKBACK_OP_READ, IMG_SIZE, buf, 1, 0), -EINVAL);
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, IMG_SIZE - 4095, buf, 4096, 0),
			 -ENOSPC);
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 1ull << 40, buf, 4096, 0),
			 -ENOSPC);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE_ZEROES, IMG_SIZE - 512,
				1024, 0, NULL, 0),
			 -ENOSPC);
	assert_int_equal(
		submit(d, BLKBACK_OP_DISCARD, IMG_SIZE - 512, 1024, 0, NULL, 0),
		-EINVAL);
	assert_int_equal(
		submit(d, BLKBACK_OP_DISCARD, IMG_SIZE + 1, 0, 0, NULL, 0),
		-EINVAL);

	/* Every refusal was counted as a failed operation. */
	blkback_disk_stats(d, &st);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].ops, 13);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].errors, 13);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].bytes, 0);
	assert_int_equal(st.in_flight, 0);
	blkback_disk_unref(d);
	/* Nothing reached the file. */
	check_file(f);
}

static void test_readonly(void **state)
{
	struct fixture *f = *state;
	char spec[160];
	struct blkback_disk *d;
	uint8_t buf[4096] = {1};

	/* Read-only by the caller's flag (serve --readonly)... */
	d = open_spec(f->spec, VBD_O_RDONLY);
	assert_true(blkback_disk_readonly(d));
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 0, buf, 512, 0), -EROFS);
	assert_int_equal(submit(d, BLKBACK_OP_DISCARD, 0, 4096, 0, NULL, 0),
			 -EROFS);
	assert_int_equal(
		submit(d, BLKBACK_OP_WRITE_ZEROES, 0, 4096, 0, NULL, 0),
		-EROFS);
	assert_int_equal(rw(d, BLKBACK_OP_READ, 0, buf, sizeof(buf), 0), 0);
	assert_memory_equal(buf, f->ref, sizeof(buf));
	assert_int_equal(submit(d, BLKBACK_OP_FLUSH, 0, 0, 0, NULL, 0), 0);
	blkback_disk_unref(d);

	/* ...and by the spec's access mode. */
	snprintf(spec, sizeof(spec), "format=raw,vdev=xvdb,access=ro,target=%s",
		 f->path);
	d = open_spec(spec, 0);
	assert_true(blkback_disk_readonly(d));
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 4096, buf, 512, BLKBACK_F_FUA),
			 -EROFS);
	blkback_disk_unref(d);
	check_file(f);
}

static void test_zeroes_and_discard(void **state)
{
	struct fixture *f = *state;
	char spec[160];
	struct blkback_disk *d = open_spec(f->spec, 0);
	uint8_t buf[8192];

	assert_int_equal(submit(d, BLKBACK_OP_WRITE_ZEROES, 4096, 8192,
				BLKBACK_F_MAY_UNMAP, NULL, 0),
			 0);
	memset(f->ref + 4096, 0, 8192);
	assert_int_equal(submit(d, BLKBACK_OP_WRITE_ZEROES, 100000, 3000,
				BLKBACK_F_FUA, NULL, 0),
			 0);
	memset(f->ref + 100000, 0, 3000);
	assert_int_equal(rw(d, BLKBACK_OP_READ, 4096, buf, 8192, 0), 0);
	assert_true(buf[0] == 0 && !memcmp(buf, buf + 1, sizeof(buf) - 1));
	/* A discard of a raw file punches a hole: zeros. */
	assert_int_equal(
		submit(d, BLKBACK_OP_DISCARD, 65536, 65536, 0, NULL, 0), 0);
	memset(f->ref + 65536, 0, 65536);
	/* Zero length is a no-op, even at the end. */
	assert_int_equal(submit(d, BLKBACK_OP_DISCARD, IMG_SIZE, 0, 0, NULL, 0),
			 0);
	blkback_disk_unref(d);
	check_file(f);

	/* no-discard: success, and the data stays. */
	snprintf(spec, sizeof(spec),
		 "format=raw,vdev=xvdc,no-discard,target=%s", f->path);
	d = open_spec(spec, 0);
	assert_false(blkback_disk_discard(d));
	assert_int_equal(submit(d, BLKBACK_OP_DISCARD, 0, IMG_SIZE, 0, NULL, 0),
			 0);
	blkback_disk_unref(d);
	check_file(f);
}

static void test_retired(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = open_spec(f->spec, 0);
	uint8_t buf[512];

	assert_int_equal(rw(d, BLKBACK_OP_READ, 0, buf, sizeof(buf), 0), 0);
	blkback_disk_retire(d);
	assert_true(blkback_disk_retired(d));
	assert_int_equal(rw(d, BLKBACK_OP_READ, 0, buf, sizeof(buf), 0),
			 -ESHUTDOWN);
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 0, buf, sizeof(buf), 0),
			 -ESHUTDOWN);
	assert_int_equal(submit(d, BLKBACK_OP_FLUSH, 0, 0, 0, NULL, 0),
			 -ESHUTDOWN);
	blkback_disk_unref(d);
	check_file(f);
}

/*
 * Retiring races with submitters: a request submitted after retire
 * returned never succeeds, and retire returns only when nothing is in
 * flight.
 */
struct race {
	struct blkback_disk *d;
	int retired; /* atomic: retire has returned */
	int late_successes;
	int ops;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	uint8_t buf[4096] = {0};

	for (unsigned i = 0;; i++) {
		int after = __atomic_load_n(&r->retired, __ATOMIC_SEQ_CST);
		int ret = rw(r->d, BLKBACK_OP_WRITE, (i % 256) * 4096ull, buf,
			     sizeof(buf), 0);

		__atomic_add_fetch(&r->ops, 1, __ATOMIC_RELAXED);
		if (ret == 0 && after)
			__atomic_add_fetch(&r->late_successes, 1,
					   __ATOMIC_RELAXED);
		if (ret == -ESHUTDOWN)
			return NULL;
		assert_int_equal(ret, 0);
	}
}

static void test_retire_race(void **state)
{
	const struct fixture *f = *state;
	struct race r = {.d = open_spec(f->spec, 0)};
	struct blkback_stats st;
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, race_thread, &r);
	while (__atomic_load_n(&r.ops, __ATOMIC_RELAXED) < 200)
		usleep(1000);
	blkback_disk_retire(r.d);
	blkback_disk_stats(r.d, &st);
	assert_int_equal(st.in_flight, 0);
	__atomic_store_n(&r.retired, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.late_successes, 0);
	blkback_disk_unref(r.d);
}

/*
 * FUA, proved by a power cut: the crash driver drops every write since
 * the last flush when it fires.  A FUA write followed by a plain write
 * that fires the crash survives; without FUA it is lost.
 */

/* Disk specs cannot name the test-only crash driver: build the disk
 * around a vbd opened directly (white box: disk-priv.h). */
static struct blkback_disk *open_crash_disk(const char *path)
{
	struct vs_error *err = NULL;
	struct blkback_disk *d = calloc(1, sizeof(*d));

	if (vbd_open_file(path, "crash", 0, &d->vbd, &err) < 0)
		fail_msg("open %s: %s", path, vs_error_msg(err));
	d->name = strdup("xvdd");
	d->size = vbd_size(d->vbd);
	d->discard = true;
	d->refs = 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->idle, NULL);
	pthread_cond_init(&d->unused, NULL);
	return d;
}

static void fua_case(struct fixture *f, unsigned flags, bool survives)
{
	struct blkback_disk *d;
	uint8_t a[4096], b[4096];

	memset(a, 0x11, sizeof(a));
	memset(b, 0x22, sizeof(b));
	/* Fire at the second write that reaches the file. */
	vbd_crash_arm(2, VBD_CRASH_DROP, 1);
	d = open_crash_disk(f->path);
	assert_int_equal(rw(d, BLKBACK_OP_WRITE, 8192, a, sizeof(a), flags), 0);
	rw(d, BLKBACK_OP_WRITE, 65536, b, sizeof(b), 0);
	assert_true(vbd_crash_fired());
	blkback_disk_unref(d);
	vbd_crash_disarm();
	if (survives)
		memcpy(f->ref + 8192, a, sizeof(a));
	check_file(f);
}

static void test_fua(void **state)
{
	fua_case(*state, 0, false);
	fua_case(*state, BLKBACK_F_FUA, true);
}

static void test_stats(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = open_spec(f->spec, 0);
	struct blkback_stats st;
	uint8_t buf[4096];

	for (int i = 0; i < 5; i++)
		assert_int_equal(
			rw(d, BLKBACK_OP_READ, i * 4096ull, buf, 4096, 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rw(d, BLKBACK_OP_WRITE, i * 512ull, buf, 512,
				    i == 2 ? BLKBACK_F_FUA : 0),
				 0);
	memcpy(f->ref, buf, 512);
	memcpy(f->ref + 512, buf, 512);
	memcpy(f->ref + 1024, buf, 512);
	assert_int_equal(rw(d, BLKBACK_OP_READ, IMG_SIZE, buf, 1, 0), -EINVAL);
	assert_int_equal(submit(d, BLKBACK_OP_FLUSH, 0, 0, 0, NULL, 0), 0);
	assert_int_equal(
		submit(d, BLKBACK_OP_WRITE_ZEROES, 8192, 4096, 0, NULL, 0), 0);
	memset(f->ref + 8192, 0, 4096);

	blkback_disk_stats(d, &st);
	assert_int_equal(st.op[BLKBACK_OP_READ].ops, 6);
	assert_int_equal(st.op[BLKBACK_OP_READ].errors, 1);
	assert_int_equal(st.op[BLKBACK_OP_READ].bytes, 5 * 4096);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].ops, 3);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].errors, 0);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].bytes, 3 * 512);
	assert_int_equal(st.op[BLKBACK_OP_FLUSH].ops, 1);
	assert_int_equal(st.op[BLKBACK_OP_FLUSH].bytes, 0);
	assert_int_equal(st.op[BLKBACK_OP_WRITE_ZEROES].ops, 1);
	assert_int_equal(st.op[BLKBACK_OP_WRITE_ZEROES].bytes, 4096);
	assert_int_equal(st.op[BLKBACK_OP_DISCARD].ops, 0);
	for (int i = 0; i < BLKBACK_OP_COUNT; i++) {
		assert_true(st.op[i].max_lat_ns <= st.op[i].lat_ns);
		assert_true(!st.op[i].ops ||
			    st.op[i].max_lat_ns * st.op[i].ops >=
				    st.op[i].lat_ns);
	}
	assert_true(st.op[BLKBACK_OP_READ].lat_ns > 0);
	assert_int_equal(st.in_flight, 0);
	assert_string_equal(blkback_op_name(BLKBACK_OP_WRITE_ZEROES),
			    "write-zeroes");
	assert_string_equal(blkback_op_name(BLKBACK_OP_COUNT), "unknown");
	blkback_disk_unref(d);
	check_file(f);
}

/* Many requests in flight at once; drain returns only after each one's
 * done(). */
#define N_ASYNC 256

struct async_state {
	struct blkback_req req[N_ASYNC];
	struct iovec iov[N_ASYNC];
	uint8_t *buf;
	int done_count; /* atomic */
	int failed;	/* atomic */
};

static void async_done(struct blkback_req *req, int ret)
{
	struct async_state *s = req->opaque;

	if (ret)
		__atomic_add_fetch(&s->failed, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->done_count, 1, __ATOMIC_RELEASE);
}

static void test_drain(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = open_spec(f->spec, 0);
	struct async_state *s = calloc(1, sizeof(*s));
	struct blkback_stats st;

	s->buf = malloc(N_ASYNC * 4096);
	for (size_t i = 0; i < N_ASYNC * 4096; i++)
		s->buf[i] = rnd();
	for (int i = 0; i < N_ASYNC; i++) {
		s->iov[i] = (struct iovec){s->buf + i * 4096, 4096};
		s->req[i] = (struct blkback_req){
			.op = BLKBACK_OP_WRITE,
			.offset = i * 4096ull,
			.len = 4096,
			.flags = i % 8 ? 0 : BLKBACK_F_FUA,
			.iov = &s->iov[i],
			.iovcnt = 1,
			.done = async_done,
			.opaque = s,
		};
		blkback_submit(d, &s->req[i]);
	}
	blkback_disk_drain(d);
	assert_int_equal(__atomic_load_n(&s->done_count, __ATOMIC_ACQUIRE),
			 N_ASYNC);
	assert_int_equal(s->failed, 0);
	blkback_disk_stats(d, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].ops, N_ASYNC);
	memcpy(f->ref, s->buf, N_ASYNC * 4096);

	/* The same, left to the last unref: it drains before closing. */
	s->done_count = 0;
	for (int i = 0; i < N_ASYNC; i++) {
		s->req[i].op = BLKBACK_OP_READ;
		blkback_submit(d, &s->req[i]);
	}
	blkback_disk_unref(d);
	assert_int_equal(__atomic_load_n(&s->done_count, __ATOMIC_ACQUIRE),
			 N_ASYNC);
	free(s->buf);
	free(s);
	check_file(f);
}

static void count_disk(struct blkback_disk *d, void *opaque)
{
	char *names = opaque;

	strcat(names, blkback_disk_name(d));
	strcat(names, " ");
}

static void test_table(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct blkback_disk *a, *b, *dup, *x;
	char spec[160], names[64] = "";
	struct vbd *vbd = NULL;

	a = open_spec(f->spec, VBD_O_SHARE);
	snprintf(spec, sizeof(spec), "format=raw,vdev=xvdb,access=ro,target=%s",
		 f->path);
	b = open_spec(spec, VBD_O_SHARE);
	dup = open_spec(f->spec, VBD_O_SHARE | VBD_O_RDONLY);
	assert_null(blkback_disks_first());
	assert_int_equal(blkback_disks_add(a, &err), 0);
	assert_int_equal(blkback_disks_add(b, &err), 0);
	assert_int_equal(blkback_disks_add(dup, &err), -EEXIST);
	assert_non_null(strstr(vs_error_msg(err), "xvda"));
	vs_error_free(err);
	blkback_disk_unref(dup);
	assert_int_equal(blkback_disks_count(), 2);

	blkback_disks_foreach(count_disk, names);
	assert_string_equal(names, "xvda xvdb ");
	x = blkback_disks_first();
	assert_ptr_equal(x, a);
	blkback_disk_unref(x);
	x = blkback_disks_find("xvdb");
	assert_ptr_equal(x, b);
	blkback_disk_unref(x);
	assert_null(blkback_disks_find("xvdc"));
	assert_null(blkback_disks_find(NULL));

	/* Removed: the table's reference comes back, the first moves. */
	x = blkback_disks_remove("xvda");
	assert_ptr_equal(x, a);
	blkback_disk_unref(x);
	assert_null(blkback_disks_remove("xvda"));
	x = blkback_disks_first();
	assert_ptr_equal(x, b);
	blkback_disk_unref(x);

	/* wait_unused: the table and the caller hold b. */
	assert_false(blkback_disk_wait_unused(b, 10));
	x = blkback_disks_remove("xvdb");
	blkback_disk_unref(x);
	assert_true(blkback_disk_wait_unused(b, 10));
	/* The last references: the images close and release their locks,
	 * so that another writer may open the file. */
	blkback_disk_unref(a);
	blkback_disk_unref(b);
	assert_int_equal(blkback_disks_count(), 0);
	assert_int_equal(vbd_open_file(f->path, "raw", 0, &vbd, &err), 0);
	vbd_close(vbd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_write, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_and_discard, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_retired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retire_race, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fua, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
