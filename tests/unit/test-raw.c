/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the vbd core and the raw driver: request checks, the
 * O_DIRECT bounce paths against a reference copy, zeroing, block status,
 * locks and the asynchronous path.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vbd/vbd.h"

#define IMG_SIZE (4u << 20)

struct fixture {
	char path[64];
	uint8_t *ref; /* what the file should hold */
};

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	/* /var/tmp: O_DIRECT needs a disk filesystem, not tmpfs. */
	strcpy(f->path, "/var/tmp/vstor-test-raw.XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	f->ref = malloc(IMG_SIZE);
	for (size_t i = 0; i < IMG_SIZE; i++)
		f->ref[i] = (uint8_t)rnd();
	assert_int_equal(pwrite(fd, f->ref, IMG_SIZE, 0), IMG_SIZE);
	close(fd);
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

static struct vbd *open_img(struct fixture *f, unsigned flags)
{
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;
	int ret = vbd_open_file(f->path, "raw", flags, &vbd, &err);

	if (ret < 0)
		fail_msg("open: %s", vs_error_msg(err));
	return vbd;
}

static void check_file(struct fixture *f)
{
	uint8_t *buf = malloc(IMG_SIZE);
	int fd = open(f->path, O_RDONLY);

	assert_int_equal(pread(fd, buf, IMG_SIZE, 0), IMG_SIZE);
	close(fd);
	assert_memory_equal(buf, f->ref, IMG_SIZE);
	free(buf);
}

static void test_open_errors(void **state)
{
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	assert_int_equal(
		vbd_open_file("/nonexistent/x.img", "raw", 0, &vbd, &err),
		-ENOENT);
	assert_non_null(strstr(vs_error_msg(err), "/nonexistent/x.img"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(
		vbd_open_file("/var/tmp", "raw", VBD_O_RDONLY, &vbd, &err),
		-EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "directory"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(vbd_open_file("/var/tmp/x", "qcow", 0, &vbd, &err),
			 -ENOTSUP);
	assert_non_null(strstr(vs_error_msg(err), "not supported"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(vbd_open_file("/var/tmp/x", "bogus", 0, &vbd, &err),
			 -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "unknown format 'bogus'"));
	vs_error_free(err);
}

static void test_request_checks(void **state)
{
	struct fixture *f = *state;
	struct vbd *vbd = open_img(f, VBD_O_RDONLY);
	char buf[512];
	struct vbd_extent ext;

	assert_int_equal(vbd_size(vbd), IMG_SIZE);
	assert_int_equal(vbd_pread(vbd, IMG_SIZE - 512, buf, 512), 0);
	assert_int_equal(vbd_pread(vbd, IMG_SIZE - 511, buf, 512), -EINVAL);
	assert_int_equal(vbd_pread(vbd, UINT64_MAX - 10, buf, 512), -EINVAL);
	assert_int_equal(vbd_pread(vbd, IMG_SIZE, buf, 0), 0);
	assert_int_equal(vbd_pwrite(vbd, 0, buf, 512), -EROFS);
	assert_int_equal(vbd_discard(vbd, 0, 512), -EROFS);
	assert_int_equal(vbd_write_zeroes(vbd, 0, 512, 0), -EROFS);
	assert_int_equal(vbd_block_status(vbd, IMG_SIZE, 1, &ext), -EINVAL);
	vbd_close(vbd);
}

/* Random unaligned reads and writes through O_DIRECT, checked against a
 * reference kept in memory. */
static void direct_rw(struct fixture *f, unsigned flags)
{
	struct vbd *vbd = open_img(f, flags);
	uint8_t *buf = malloc(300000 + 1);

	for (int i = 0; i < 400; i++) {
		size_t len = 1 + rnd() % 300000;
		uint64_t off = rnd() % (IMG_SIZE - len);
		/* An odd buffer address defeats memory alignment too. */
		uint8_t *p = buf + (i & 1);

		if (i % 3 == 0) {
			for (size_t j = 0; j < len; j++)
				p[j] = (uint8_t)rnd();
			assert_int_equal(vbd_pwrite(vbd, off, p, len), 0);
			memcpy(f->ref + off, p, len);
		} else {
			assert_int_equal(vbd_pread(vbd, off, p, len), 0);
			assert_memory_equal(p, f->ref + off, len);
		}
	}
	assert_int_equal(vbd_flush(vbd), 0);
	vbd_close(vbd);
	free(buf);
	check_file(f);
}

static void test_direct_bounce(void **state)
{
	direct_rw(*state, VBD_O_DIRECT);
}

static void test_buffered_rw(void **state)
{
	direct_rw(*state, 0);
}

static void test_zeroes_and_status(void **state)
{
	struct fixture *f = *state;
	struct vbd *vbd = open_img(f, 0);
	struct vbd_extent ext;
	uint8_t buf[8192];

	/* Unmapping zeroes leave a hole that block status reports. */
	assert_int_equal(
		vbd_write_zeroes(vbd, 1 << 20, 1 << 20, VBD_ZERO_MAY_UNMAP), 0);
	memset(f->ref + (1 << 20), 0, 1 << 20);
	assert_int_equal(vbd_block_status(vbd, 1 << 20, 1 << 20, &ext), 0);
	assert_int_equal(ext.flags & (VBD_STATUS_DATA | VBD_STATUS_ZERO),
			 VBD_STATUS_ZERO);
	assert_int_equal(ext.length, 1 << 20);
	assert_int_equal(vbd_block_status(vbd, 0, IMG_SIZE, &ext), 0);
	assert_true(ext.flags & VBD_STATUS_DATA);
	assert_int_equal(ext.length, 1 << 20);

	/* Unaligned zeroing keeps the neighbouring bytes. */
	assert_int_equal(vbd_write_zeroes(vbd, 3000001, 77777, 0), 0);
	memset(f->ref + 3000001, 0, 77777);
	assert_int_equal(vbd_discard(vbd, 2 << 20, 4096), 0);
	assert_int_equal(vbd_pread(vbd, 2 << 20, buf, 4096), 0);
	memcpy(f->ref + (2 << 20), buf, 4096); /* discard: anything goes */
	vbd_close(vbd);
	check_file(f);
}

static void test_locks(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct vbd *w, *r1, *r2, *x = NULL;

	w = open_img(f, 0);
	assert_int_equal(vbd_open_file(f->path, "raw", 0, &x, &err), -EBUSY);
	assert_non_null(strstr(vs_error_msg(err), f->path));
	assert_non_null(strstr(vs_error_msg(err), "lock"));
	vs_error_free(err);
	err = NULL;
	/* A reader that wants a consistent view is kept out too... */
	assert_int_equal(vbd_open_file(f->path, "raw", VBD_O_RDONLY, &x, &err),
			 -EBUSY);
	vs_error_free(err);
	err = NULL;
	/* ...unless it shares. */
	r1 = open_img(f, VBD_O_RDONLY | VBD_O_SHARE);
	vbd_close(r1);
	vbd_close(w);

	r1 = open_img(f, VBD_O_RDONLY);
	r2 = open_img(f, VBD_O_RDONLY);
	assert_int_equal(vbd_open_file(f->path, "raw", 0, &x, &err), -EBUSY);
	vs_error_free(err);
	vbd_close(r1);
	vbd_close(r2);
	w = open_img(f, 0); /* free again once the readers are gone */
	vbd_close(w);
}

struct async_ctx {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;
	int errors;
};

static void async_cb(struct vbd_req *req, int ret)
{
	struct async_ctx *c = req->opaque;

	pthread_mutex_lock(&c->lock);
	if (ret != 0)
		c->errors++;
	if (--c->pending == 0)
		pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void async_rw(struct fixture *f, enum vbd_aio aio, unsigned flags)
{
	struct async_ctx c = {PTHREAD_MUTEX_INITIALIZER,
			      PTHREAD_COND_INITIALIZER, 0, 0};
	struct vbd_spec spec = {
		.target = f->path, .format = "raw", .devnum = -1};
	enum { N = 64 };
	struct vbd_req req[N];
	struct iovec iov[N];
	uint8_t *bufs = NULL;
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	if (vbd_open(&spec, flags, aio, &vbd, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));
	assert_int_equal(posix_memalign((void **)&bufs, 4096, N * 65536), 0);
	/* Half aligned, half not: both engine and bounce paths. */
	c.pending = N;
	for (int i = 0; i < N; i++) {
		size_t len = (i & 1) ? 4096u * (1u + (unsigned)i % 16)
				     : 1 + rnd() % 65535;
		uint64_t off =
			(uint64_t)i * 65536 + ((i & 1) ? 0u : rnd() % 512);

		for (size_t j = 0; j < len; j++)
			bufs[i * 65536 + j] = (uint8_t)rnd();
		memcpy(f->ref + off, bufs + i * 65536, len);
		iov[i] = (struct iovec){bufs + i * 65536, len};
		req[i] = (struct vbd_req){.op = VBD_OP_WRITE,
					  .offset = off,
					  .iov = &iov[i],
					  .iovcnt = 1,
					  .cb = async_cb,
					  .opaque = &c};
	}
	for (int i = 0; i < N; i++)
		vbd_submit(vbd, &req[i]);
	pthread_mutex_lock(&c.lock);
	while (c.pending)
		pthread_cond_wait(&c.cond, &c.lock);
	c.pending = 1;
	pthread_mutex_unlock(&c.lock);
	req[0] = (struct vbd_req){
		.op = VBD_OP_FLUSH, .cb = async_cb, .opaque = &c};
	vbd_submit(vbd, &req[0]);
	/* A request past the end fails at once, through its callback. */
	pthread_mutex_lock(&c.lock);
	while (c.pending)
		pthread_cond_wait(&c.cond, &c.lock);
	c.pending = 1;
	pthread_mutex_unlock(&c.lock);
	req[1] = (struct vbd_req){.op = VBD_OP_READ,
				  .offset = IMG_SIZE,
				  .iov = &iov[1],
				  .iovcnt = 1,
				  .cb = async_cb,
				  .opaque = &c};
	vbd_submit(vbd, &req[1]);
	assert_int_equal(c.pending, 0);
	assert_int_equal(c.errors, 1);
	vbd_close(vbd);
	free(bufs);
	check_file(f);
}

static void test_async_default(void **state)
{
	async_rw(*state, VBD_AIO_DEFAULT, 0);
}

static void test_async_threads_direct(void **state)
{
	async_rw(*state, VBD_AIO_THREADS, VBD_O_DIRECT);
}

static void test_async_uring_direct(void **state)
{
	async_rw(*state, VBD_AIO_IO_URING, VBD_O_DIRECT);
}

/*
 * Buffered writes from several threads at once: on a file system
 * without RWF_NOWAIT writes (ext4, /var/tmp here) they go to the raw
 * vbd's write lane (vbd/lane.c), written at once by a submitter that
 * finds it idle and queued for the lane's job while one writes.  Every
 * write completes once, and the file holds them all.
 */
enum { LANE_THREADS = 4, LANE_WRITES = 256, LANE_BLK = 4096 };

struct lane_thread {
	struct vbd *vbd;
	struct async_ctx *c;
	int t;
	uint8_t *bufs;
	struct vbd_req req[LANE_WRITES];
	struct iovec iov[LANE_WRITES];
};

static void *lane_submitter(void *arg)
{
	struct lane_thread *lt = arg;

	for (int i = 0; i < LANE_WRITES; i++) {
		/* Thread t writes blocks t, t + 4, ...: no two overlap. */
		uint64_t blk = (uint64_t)i * LANE_THREADS + (uint64_t)lt->t;

		lt->iov[i] = (struct iovec){lt->bufs + i * LANE_BLK, LANE_BLK};
		lt->req[i] = (struct vbd_req){.op = VBD_OP_WRITE,
					      .offset = blk * LANE_BLK,
					      .iov = &lt->iov[i],
					      .iovcnt = 1,
					      .cb = async_cb,
					      .opaque = lt->c};
		vbd_submit(lt->vbd, &lt->req[i]);
	}
	return NULL;
}

static void test_async_lane_threads(void **state)
{
	struct fixture *f = *state;
	struct async_ctx c = {PTHREAD_MUTEX_INITIALIZER,
			      PTHREAD_COND_INITIALIZER,
			      LANE_THREADS * LANE_WRITES, 0};
	struct vbd_spec spec = {
		.target = f->path, .format = "raw", .devnum = -1};
	static struct lane_thread lt[LANE_THREADS];
	pthread_t th[LANE_THREADS];
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	assert_true((uint64_t)LANE_THREADS * LANE_WRITES * LANE_BLK <=
		    IMG_SIZE);
	if (vbd_open(&spec, 0, VBD_AIO_DEFAULT, &vbd, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));
	for (int t = 0; t < LANE_THREADS; t++) {
		lt[t].vbd = vbd;
		lt[t].c = &c;
		lt[t].t = t;
		lt[t].bufs = malloc((size_t)LANE_WRITES * LANE_BLK);
		assert_non_null(lt[t].bufs);
		for (int i = 0; i < LANE_WRITES; i++) {
			uint64_t blk = (uint64_t)i * LANE_THREADS + (uint64_t)t;

			for (int j = 0; j < LANE_BLK; j++)
				lt[t].bufs[i * LANE_BLK + j] = (uint8_t)rnd();
			memcpy(f->ref + blk * LANE_BLK,
			       lt[t].bufs + i * LANE_BLK, LANE_BLK);
		}
	}
	for (int t = 0; t < LANE_THREADS; t++)
		assert_int_equal(
			pthread_create(&th[t], NULL, lane_submitter, &lt[t]),
			0);
	for (int t = 0; t < LANE_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_lock(&c.lock);
	while (c.pending)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	assert_int_equal(c.errors, 0);
	vbd_close(vbd);
	for (int t = 0; t < LANE_THREADS; t++)
		free(lt[t].bufs);
	check_file(f);
}

static void test_async_native(void **state)
{
	struct fixture *f = *state;
	struct vbd_spec spec = {
		.target = f->path, .format = "raw", .devnum = -1};
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	assert_int_equal(vbd_open(&spec, 0, VBD_AIO_NATIVE, &vbd, &err),
			 -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "O_DIRECT"));
	vs_error_free(err);
	async_rw(f, VBD_AIO_NATIVE, VBD_O_DIRECT);
}

static void test_create(void **state)
{
	struct vs_error *err = NULL;
	char path[] = "/var/tmp/vstor-test-create.XXXXXX";
	struct stat st;
	int fd = mkstemp(path);

	close(fd);
	assert_int_equal(vbd_create(path, "raw", 5 << 20, NULL, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5 << 20);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(
		vbd_create(path, "raw", 1 << 20, "preallocation=falloc", &err),
		0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_blocks * 512 >= 1 << 20);
	assert_int_equal(
		vbd_create(path, "raw", 1 << 20, "cluster_size=4k", &err),
		-EINVAL);
	assert_string_equal(vs_error_msg(err),
			    "unknown raw format option 'cluster_size'");
	vs_error_free(err);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_request_checks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_direct_bounce, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_buffered_rw, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_and_status, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_default, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_threads_direct,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_uring_direct, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_lane_threads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_native, setup,
						teardown),
		cmocka_unit_test(test_create),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
