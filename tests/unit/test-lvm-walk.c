/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lvmglue/backup-walk.c, the cluster walk under backup,
 * verify and restore: every wanted cluster read once, hashed and stored
 * in disk order whatever the threads (stores run outside the walk's
 * lock), and a sparse walk of a page-cache source hinting the clusters
 * ahead of its workers to the kernel: a batch per chunk handed out, up
 * to a bounded window of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "lvmglue/backup-walk.h"
#include "lvmglue/checksum.h"
#include "vbd/vbd.h"

#define UNUSED __attribute__((unused))

#define CS	  4096u /* a page per cluster: mincore tells them apart */
#define NCLUSTERS 12288u
#define TAIL	  1000u /* bytes of the short last cluster */
#define SIZE	  ((uint64_t)(NCLUSTERS - 1) * CS + TAIL)

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

struct fixture {
	char path[64];
	struct vbd *src;
	uint8_t want[NCLUSTERS / 8];
	uint64_t sums[NCLUSTERS];
	/* What the callbacks saw. */
	unsigned seen[NCLUSTERS];
	uint64_t last_first;
	bool out_of_order, bad_data;
	/* The residency checks (test_hints_ahead). */
	struct hint_check {
		unsigned at; /* before the at-th store (from 0) */
		uint64_t ahead, beyond;
		bool checked, ahead_resident, beyond_resident;
	} checks[2];
	unsigned nstores;
	void *map;
};

static uint8_t byte_of(uint64_t pos)
{
	return (uint8_t)(pos * 7 + pos / CS);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	uint8_t *buf = malloc(CS);
	struct vs_error *err = NULL;
	int fd;

	assert_non_null(f);
	assert_non_null(buf);
	snprintf(f->path, sizeof(f->path), "%s/walk.XXXXXX",
		 tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	for (uint64_t off = 0; off < SIZE; off += CS) {
		size_t len = (size_t)(SIZE - off < CS ? SIZE - off : CS);

		for (size_t i = 0; i < len; i++)
			buf[i] = byte_of(off + i);
		assert_int_equal(pwrite(fd, buf, len, (off_t)off),
				 (ssize_t)len);
	}
	assert_int_equal(fsync(fd), 0);
	close(fd);
	free(buf);
	assert_int_equal(
		vbd_open_file(f->path, "raw", VBD_O_RDONLY, &f->src, &err), 0);
	f->last_first = UINT64_MAX;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vbd_close(f->src);
	if (f->map)
		munmap(f->map, SIZE);
	unlink(f->path);
	free(f);
	return 0;
}

static int walk_store(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct fixture *f = w->opaque;

	if (f->last_first != UINT64_MAX && c->first <= f->last_first)
		f->out_of_order = true;
	f->last_first = c->first;
	for (unsigned k = 0; k < c->n; k++) {
		uint64_t i = c->first + k, pos = i * CS;

		if (!c->want[k])
			continue;
		f->seen[i]++;
		for (uint32_t b = 0; b < c->len[k]; b++)
			if (c->buf[(size_t)k * CS + b] != byte_of(pos + b))
				f->bad_data = true;
	}
	return 0;
}

static struct lvm_walk walk_of(struct fixture *f, unsigned threads)
{
	return (struct lvm_walk){
		.src = f->src,
		.size = SIZE,
		.cluster = CS,
		.want = f->want,
		.sums = f->sums,
		.threads = threads,
		.store = walk_store,
		.opaque = f,
		.what = f->path,
	};
}

static void check_walk(struct fixture *f)
{
	uint8_t *buf = malloc(CS);

	assert_non_null(buf);
	assert_false(f->out_of_order);
	assert_false(f->bad_data);
	for (uint64_t i = 0; i < NCLUSTERS; i++) {
		size_t len = (size_t)(i + 1 == NCLUSTERS ? TAIL : CS);

		if (!lvm_bit(f->want, i)) {
			assert_int_equal(f->seen[i], 0);
			continue;
		}
		assert_int_equal(f->seen[i], 1);
		for (size_t b = 0; b < len; b++)
			buf[b] = byte_of(i * CS + b);
		assert_true(f->sums[i] == lvm_sum(buf, len));
	}
	free(buf);
}

/* Scattered clusters, runs, a dense stretch longer than the hint window
 * and the short last cluster, on one and on several threads. */
static void want_mixed(struct fixture *f)
{
	static const uint64_t some[] = {0, 5, 6, 7, 100, 1000, 1001, 1500};

	for (size_t i = 0; i < sizeof(some) / sizeof(some[0]); i++)
		lvm_bit_set(f->want, some[i]);
	for (uint64_t i = 200; i < 200 + LVM_WALK_RA_CLUSTERS + 40; i++)
		lvm_bit_set(f->want, i);
	for (uint64_t i = 1600; i < NCLUSTERS; i += 3)
		lvm_bit_set(f->want, i);
	lvm_bit_set(f->want, NCLUSTERS - 1);
}

static void test_sparse_one_thread(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct lvm_walk w;

	want_mixed(f);
	w = walk_of(f, 1);
	assert_int_equal(lvm_walk_run(&w, &err), 0);
	check_walk(f);
}

static void test_sparse_threads(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct lvm_walk w;

	want_mixed(f);
	w = walk_of(f, 4);
	assert_int_equal(lvm_walk_run(&w, &err), 0);
	check_walk(f);
}

static void test_whole(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct lvm_walk w;

	memset(f->want, 0xff, sizeof(f->want));
	w = walk_of(f, 3);
	w.want = NULL;
	assert_int_equal(lvm_walk_run(&w, &err), 0);
	check_walk(f);
}

static bool resident(struct fixture *f, uint64_t cluster)
{
	unsigned char vec = 0;

	return mincore((uint8_t *)f->map + cluster * CS, CS, &vec) == 0 &&
	       (vec & 1);
}

/*
 * Stores `at` (one thread: nothing reads meanwhile) wait up to 20 s for
 * a cluster that must have been hinted by then to arrive in the page
 * cache, and give one that must not have been the same chance for half
 * a second more.
 */
static int hint_store(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	struct fixture *f = w->opaque;

	for (unsigned k = 0; k < 2; k++) {
		struct hint_check *h = &f->checks[k];

		if (f->nstores != h->at)
			continue;
		h->checked = true;
		for (int i = 0; i < 2000 && !resident(f, h->ahead); i++)
			usleep(10000);
		h->ahead_resident = resident(f, h->ahead);
		for (int i = 0; i < 50 && !resident(f, h->beyond); i++)
			usleep(10000);
		h->beyond_resident = resident(f, h->beyond);
	}
	f->nstores++;
	return walk_store(w, c);
}

static void test_hints_ahead(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct statfs sfs;
	struct lvm_walk w;
	uint64_t nth[NCLUSTERS], n = 0;
	int fd;

	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstatfs(fd, &sfs), 0);
	if (sfs.f_type == TMPFS_MAGIC) {
		close(fd);
		skip(); /* its pages never leave memory: nothing to see */
	}
	f->map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(f->map != MAP_FAILED);
	/* Clean pages leave the cache (the file was synced at setup). */
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	/* Cluster 0, then one in every chunk from 512 on, so that chunk
	 * j holds the j-th wanted cluster only, and the clusters checked
	 * lie far past what the kernel's own read-ahead of any read
	 * reaches. */
	nth[n++] = 0;
	for (uint64_t i = 512; i < NCLUSTERS; i += LVM_WALK_CHUNK)
		nth[n++] = i;
	for (uint64_t k = 0; k < n; k++)
		lvm_bit_set(f->want, nth[k]);
	/* At the first store, chunk 0 was handed out: one batch hinted.
	 * At store 40, 41 chunks were, and the window is full: it ends
	 * LVM_WALK_RA_CLUSTERS past the last one handed out. */
	f->checks[0] = (struct hint_check){
		.at = 0,
		.ahead = nth[LVM_WALK_RA_BATCH - 1],
		.beyond = nth[LVM_WALK_RA_BATCH + 20],
	};
	f->checks[1] = (struct hint_check){
		.at = 40,
		.ahead = nth[40 + LVM_WALK_RA_CLUSTERS - 10],
		.beyond = nth[41 + LVM_WALK_RA_CLUSTERS + 20],
	};
	assert_true(41 + LVM_WALK_RA_CLUSTERS + 20 < n);
	for (unsigned k = 0; k < 2; k++)
		if (resident(f, f->checks[k].ahead) ||
		    resident(f, f->checks[k].beyond))
			skip(); /* the kernel kept the pages: nothing to see */
	w = walk_of(f, 1);
	w.store = hint_store;
	assert_int_equal(lvm_walk_run(&w, &err), 0);
	check_walk(f);
	for (unsigned k = 0; k < 2; k++) {
		assert_true(f->checks[k].checked);
		assert_true(f->checks[k].ahead_resident);
		assert_false(f->checks[k].beyond_resident);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sparse_one_thread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sparse_threads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hints_ahead, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
