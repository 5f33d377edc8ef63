/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the split virtqueue walker and used ring, over rings
 * built in ordinary memory: good chains (direct, indirect, across two
 * regions), each rule a driver can break (loops, heads and next indices
 * out of range, a runaway available index, nested or malformed indirect
 * tables, buffers outside memory, readable after writable, too many
 * buffers), and the EVENT_IDX interrupt and notification arithmetic.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blkback/guest-mem.h"
#include "blkback/virtqueue.h"

#define MEM_SIZE  (256u << 10)
#define GPA	  0x100000ull /* guest address of mem[0] */
#define UVA	  0x7f0000000000ull
#define NUM	  16u
#define DESC_OFF  0x0
#define AVAIL_OFF 0x1000
#define USED_OFF  0x2000
#define BUF_OFF	  0x10000 /* buffers from here */
#define CAP	  32u

struct fx {
	uint8_t *mem;
	struct blkback_guest_mem gm;
	struct blkback_vq vq;
	struct iovec iov[CAP];
	uint16_t avail_idx;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->mem = aligned_alloc(4096, MEM_SIZE);
	memset(f->mem, 0, MEM_SIZE);
	assert_int_equal(
		blkback_guest_mem_add(&f->gm, GPA, MEM_SIZE, UVA, f->mem, NULL),
		0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	free(f->mem);
	free(f);
	return 0;
}

static void init_vq(struct fx *f, bool indirect, bool event_idx)
{
	struct vs_error *err = NULL;

	assert_int_equal(blkback_vq_init(&f->vq, &f->gm, NUM, UVA + DESC_OFF,
					 UVA + AVAIL_OFF, UVA + USED_OFF,
					 f->avail_idx, "test", &err),
			 0);
	f->vq.indirect = indirect;
	f->vq.event_idx = event_idx;
}

static void *at(struct fx *f, uint64_t off)
{
	return f->mem + off;
}

static void set_desc_in(void *table, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	struct blkback_vring_desc d = {addr, len, flags, next};

	memcpy((uint8_t *)table + 16 * i, &d, sizeof(d));
}

static void set_desc(struct fx *f, unsigned i, uint64_t off, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	set_desc_in(at(f, DESC_OFF), i, GPA + off, len, flags, next);
}

static void offer(struct fx *f, uint16_t head)
{
	struct blkback_vring_avail *a = at(f, AVAIL_OFF);

	a->ring[f->avail_idx % NUM] = head;
	a->idx = ++f->avail_idx;
}

enum {
	N = BLKBACK_VRING_DESC_F_NEXT,
	W = BLKBACK_VRING_DESC_F_WRITE,
	I = BLKBACK_VRING_DESC_F_INDIRECT,
};

/* A virtio-blk-like chain: 16-byte header, data, status. */
static void blk_chain(struct fx *f, unsigned first, uint16_t data_flags)
{
	set_desc(f, first, BUF_OFF, 16, N, (uint16_t)(first + 1));
	set_desc(f, first + 1, BUF_OFF + 0x1000, 4096, data_flags | N,
		 (uint16_t)(first + 2));
	set_desc(f, first + 2, BUF_OFF + 0x3000, 1, W, 0);
}

static void test_direct_chain(void **state)
{
	struct fx *f = *state;
	struct blkback_vring_used *u = at(f, USED_OFF);
	struct blkback_vq_chain c;

	init_vq(f, false, false);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 0);
	blk_chain(f, 3, W);
	offer(f, 3);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.error, 0);
	assert_int_equal(c.n_out, 1);
	assert_int_equal(c.n_in, 2);
	assert_int_equal(c.out_len, 16);
	assert_int_equal(c.in_len, 4097);
	assert_ptr_equal(f->iov[0].iov_base, at(f, BUF_OFF));
	assert_ptr_equal(f->iov[1].iov_base, at(f, BUF_OFF + 0x1000));
	assert_int_equal(f->iov[1].iov_len, 4096);
	assert_ptr_equal(c.status, at(f, BUF_OFF + 0x3000));
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 0);

	blkback_vq_push(&f->vq, 3, 4097);
	assert_int_equal(u->idx, 1);
	assert_int_equal(u->ring[0].id, 3);
	assert_int_equal(u->ring[0].len, 4097);
	/* The index wraps at 2^16, the ring at its size. */
	f->vq.used_idx = 0xffff;
	blkback_vq_push(&f->vq, 4, 1);
	assert_int_equal(u->idx, 0);
	assert_int_equal(u->ring[NUM - 1].id, 4);
}

static void test_avail_wraps(void **state)
{
	struct fx *f = *state;
	struct blkback_vq_chain c;
	struct vs_error *err = NULL;

	/* Start just below the wrap of the 16-bit index. */
	assert_int_equal(blkback_vq_init(&f->vq, &f->gm, NUM, UVA + DESC_OFF,
					 UVA + AVAIL_OFF, UVA + USED_OFF,
					 0xfffe, "test", &err),
			 0);
	f->avail_idx = 0xfffe;
	blk_chain(f, 0, W);
	for (int i = 0; i < 4; i++)
		offer(f, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 0);
	assert_int_equal(f->vq.last_avail, 2);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	struct blkback_vq_chain c;
	void *tbl = at(f, BUF_OFF + 0x8000);

	init_vq(f, true, false);
	set_desc_in(tbl, 0, GPA + BUF_OFF, 16, N, 1);
	set_desc_in(tbl, 1, GPA + BUF_OFF + 0x1000, 512, N, 2);
	set_desc_in(tbl, 2, GPA + BUF_OFF + 0x3000, 1, W, 0);
	set_desc(f, 5, BUF_OFF + 0x8000, 48, I, 0);
	offer(f, 5);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.error, 0);
	assert_int_equal(c.n_out, 2);
	assert_int_equal(c.n_in, 1);
	assert_int_equal(c.out_len, 528);
	assert_ptr_equal(c.status, at(f, BUF_OFF + 0x3000));

	/* A misaligned table is fine: it is read bytewise. */
	memmove(at(f, BUF_OFF + 0x9001), tbl, 48);
	set_desc(f, 5, BUF_OFF + 0x9001, 48, I, 0);
	offer(f, 5);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.error, 0);
	assert_int_equal(c.in_len, 1);
}

/* Offer `head` and expect the queue to break, for good. */
static void expect_broken(struct fx *f, uint16_t head)
{
	struct blkback_vq_chain c;

	offer(f, head);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), -EIO);
	assert_true(f->vq.broken);
	blk_chain(f, 0, W);
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), -EIO);
	assert_false(blkback_vq_enable_notify(&f->vq));
}

static void test_indirect_rules(void **state)
{
	struct fx *f = *state;
	void *tbl = at(f, BUF_OFF + 0x8000);

	/* Head 5: expect_broken rewrites descriptors 0..2. */
	/* Not negotiated. */
	init_vq(f, false, false);
	set_desc(f, 5, BUF_OFF + 0x8000, 48, I, 0);
	expect_broken(f, 5);

	/* Nested. */
	init_vq(f, true, false);
	set_desc_in(tbl, 0, GPA + BUF_OFF + 0x8000, 16, I, 0);
	expect_broken(f, 5);

	/* Length not a multiple of 16, zero, too long. */
	init_vq(f, true, false);
	set_desc(f, 5, BUF_OFF + 0x8000, 47, I, 0);
	expect_broken(f, 5);
	init_vq(f, true, false);
	set_desc(f, 5, BUF_OFF + 0x8000, 0, I, 0);
	expect_broken(f, 5);
	init_vq(f, true, false);
	set_desc(f, 5, BUF_OFF, 16 * (BLKBACK_VQ_MAX_INDIRECT + 1), I, 0);
	expect_broken(f, 5);

	/* With NEXT. */
	init_vq(f, true, false);
	set_desc(f, 5, BUF_OFF + 0x8000, 48, I | N, 2);
	expect_broken(f, 5);

	/* A table outside memory, or wrapping around it. */
	init_vq(f, true, false);
	set_desc_in(at(f, DESC_OFF), 5, GPA + MEM_SIZE - 16, 32, I, 0);
	expect_broken(f, 5);
	init_vq(f, true, false);
	set_desc_in(at(f, DESC_OFF), 5, UINT64_MAX - 15, 32, I, 0);
	expect_broken(f, 5);

	/* next inside the table indexes the table, bounded by its size. */
	init_vq(f, true, false);
	set_desc_in(tbl, 0, GPA + BUF_OFF, 16, N, 3);
	set_desc(f, 5, BUF_OFF + 0x8000, 48, I, 0);
	expect_broken(f, 5);

	/* A loop inside the table. */
	init_vq(f, true, false);
	set_desc_in(tbl, 0, GPA + BUF_OFF, 16, N, 1);
	set_desc_in(tbl, 1, GPA + BUF_OFF, 16, N, 0);
	set_desc(f, 5, BUF_OFF + 0x8000, 32, I, 0);
	expect_broken(f, 5);
}

static void test_structure_breaks(void **state)
{
	struct fx *f = *state;
	struct blkback_vring_avail *a = at(f, AVAIL_OFF);
	struct blkback_vq_chain c;

	/* A loop 0 -> 1 -> 0. */
	init_vq(f, false, false);
	set_desc(f, 0, BUF_OFF, 16, N, 1);
	set_desc(f, 1, BUF_OFF, 16, N, 0);
	expect_broken(f, 0);

	/* A chain through every descriptor is fine; one more is a loop. */
	init_vq(f, false, false);
	for (unsigned i = 0; i < NUM; i++)
		set_desc(f, i, BUF_OFF, 1, i == NUM - 1 ? W : N,
			 (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.n_out, NUM - 1);
	set_desc(f, NUM - 1, BUF_OFF, 1, W | N, 0);
	expect_broken(f, 0);

	/* A head past the queue. */
	init_vq(f, false, false);
	expect_broken(f, NUM);

	/* A next index past the queue. */
	init_vq(f, false, false);
	set_desc(f, 2, BUF_OFF, 16, N, NUM);
	expect_broken(f, 2);

	/* The available index running more than a queue ahead. */
	init_vq(f, false, false);
	a->idx = (uint16_t)(f->avail_idx + NUM + 1);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), -EIO);
	assert_true(f->vq.broken);
	f->avail_idx = a->idx;
}

static void test_request_errors(void **state)
{
	struct fx *f = *state;
	struct blkback_vq_chain c;

	/* Readable after writable: failed, the status is still found. */
	init_vq(f, false, false);
	set_desc(f, 0, BUF_OFF, 16, N, 1);
	set_desc(f, 1, BUF_OFF + 0x1000, 512, W | N, 2);
	set_desc(f, 2, BUF_OFF + 0x2000, 512, N, 3);
	set_desc(f, 3, BUF_OFF + 0x3000, 1, W, 0);
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.error, -EINVAL);
	assert_ptr_equal(c.status, at(f, BUF_OFF + 0x3000));
	assert_false(f->vq.broken);

	/* Data outside guest memory, status inside. */
	set_desc_in(at(f, DESC_OFF), 1, GPA - 4096, 8192, W | N, 3);
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.error, -EFAULT);
	assert_ptr_equal(c.status, at(f, BUF_OFF + 0x3000));

	/* A buffer that wraps around the address space. */
	set_desc_in(at(f, DESC_OFF), 1, UINT64_MAX - 10, 100, W | N, 3);
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.error, -EFAULT);

	/* More buffers than iovecs. */
	for (unsigned i = 0; i < NUM; i++)
		set_desc(f, i, BUF_OFF + 8 * i, 8, i == NUM - 1 ? W : N,
			 (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, 4), 1);
	assert_int_equal(c.error, -ENOBUFS);
	assert_ptr_equal(c.status, at(f, BUF_OFF + 8 * (NUM - 1) + 7));
	assert_false(f->vq.broken);

	/* The status byte itself outside memory: nothing to answer with. */
	blk_chain(f, 0, W);
	set_desc_in(at(f, DESC_OFF), 2, GPA + MEM_SIZE, 1, W, 0);
	expect_broken(f, 0);
}

static void test_no_writable(void **state)
{
	struct fx *f = *state;
	struct blkback_vq_chain c;

	/* Legal for a virtqueue; the device decides what it means. */
	init_vq(f, false, false);
	set_desc(f, 0, BUF_OFF, 16, 0, 0);
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_int_equal(c.error, 0);
	assert_null(c.status);
	/* Empty writable buffers do not hold the status either. */
	set_desc(f, 0, BUF_OFF, 16, N, 1);
	set_desc(f, 1, BUF_OFF + 0x100, 1, W | N, 2);
	set_desc(f, 2, BUF_OFF + 0x200, 0, W, 0);
	offer(f, 0);
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_ptr_equal(c.status, at(f, BUF_OFF + 0x100));
	assert_int_equal(c.n_in, 1);
}

static void test_two_regions(void **state)
{
	struct fx *f = *state;
	struct blkback_guest_mem gm = {0};
	uint8_t *hi = calloc(1, 8192);
	struct iovec iov[4];
	unsigned n = 0;

	/* Adjacent in guest addresses, apart in ours. */
	assert_int_equal(
		blkback_guest_mem_add(&gm, 0x1000, 4096, 0, f->mem, NULL), 0);
	assert_int_equal(
		blkback_guest_mem_add(&gm, 0x2000, 8192, 4096, hi, NULL), 0);
	assert_int_equal(blkback_guest_mem_iov(&gm, 0x1f00, 0x200, iov, 4, &n),
			 0);
	assert_int_equal(n, 2);
	assert_ptr_equal(iov[0].iov_base, f->mem + 0xf00);
	assert_int_equal(iov[0].iov_len, 0x100);
	assert_ptr_equal(iov[1].iov_base, hi);
	assert_int_equal(iov[1].iov_len, 0x100);
	/* Past the end, before the start, and a one-iovec budget. */
	n = 0;
	assert_int_equal(blkback_guest_mem_iov(&gm, 0x3f00, 0x200, iov, 4, &n),
			 -EFAULT);
	n = 0;
	assert_int_equal(blkback_guest_mem_iov(&gm, 0xfff, 2, iov, 4, &n),
			 -EFAULT);
	n = 0;
	assert_int_equal(blkback_guest_mem_iov(&gm, 0x1f00, 0x200, iov, 1, &n),
			 -ENOBUFS);
	/* Lookups that must stay in one region. */
	assert_null(blkback_guest_mem_gpa(&gm, 0x1f00, 0x200));
	assert_ptr_equal(blkback_guest_mem_gpa(&gm, 0x2000, 8192), hi);
	assert_null(blkback_guest_mem_gpa(&gm, 0x2001, 8192));
	assert_null(blkback_guest_mem_uva(&gm, UINT64_MAX, 2));
	/* Regions that overlap (by one byte, or containing another). */
	assert_int_equal(blkback_guest_mem_add(&gm, 0x3fff, 2, 0, hi, NULL),
			 -EINVAL);
	assert_int_equal(blkback_guest_mem_add(&gm, 0, 0x10000, 0, hi, NULL),
			 -EINVAL);
	assert_int_equal(blkback_guest_mem_add(&gm, 0x800, 0x800, 0, hi, NULL),
			 0);
	/* Regions that overflow, are empty, or too many. */
	assert_int_equal(blkback_guest_mem_add(&gm, UINT64_MAX, 2, 0, hi, NULL),
			 -EINVAL);
	assert_int_equal(blkback_guest_mem_add(&gm, 0, 0, 0, hi, NULL),
			 -EINVAL);
	for (unsigned i = gm.nregions; i < BLKBACK_GUEST_MEM_MAX_REGIONS; i++)
		assert_int_equal(blkback_guest_mem_add(&gm, 0x100000 * (i + 1),
						       16, 0, hi, NULL),
				 0);
	assert_int_equal(
		blkback_guest_mem_add(&gm, 0x10000000, 16, 0, hi, NULL),
		-EINVAL);
	blkback_guest_mem_clear(&gm);
	free(hi);
}

static void test_init_checks(void **state)
{
	struct fx *f = *state;
	struct vs_error *err = NULL;

	assert_int_equal(blkback_vq_init(&f->vq, &f->gm, 12, UVA, UVA + 0x1000,
					 UVA + 0x2000, 0, "q", &err),
			 -EINVAL);
	vs_error_free(err);
	err = NULL;
	assert_int_equal(blkback_vq_init(&f->vq, &f->gm, 65536, UVA,
					 UVA + 0x1000, UVA + 0x2000, 0, "q",
					 &err),
			 -EINVAL);
	vs_error_free(err);
	err = NULL;
	/* The used ring runs past the end of memory. */
	assert_int_equal(blkback_vq_init(&f->vq, &f->gm, NUM, UVA, UVA + 0x1000,
					 UVA + MEM_SIZE - 64, 0, "q", &err),
			 -EFAULT);
	assert_non_null(strstr(vs_error_msg(err), "used ring"));
	vs_error_free(err);
	err = NULL;
	/* Misaligned used ring. */
	assert_int_equal(blkback_vq_init(&f->vq, &f->gm, NUM, UVA, UVA + 0x1000,
					 UVA + 0x2002, 0, "q", &err),
			 -EINVAL);
	vs_error_free(err);
}

static void test_event_idx(void **state)
{
	struct fx *f = *state;
	struct blkback_vring_avail *a = at(f, AVAIL_OFF);
	struct blkback_vring_used *u = at(f, USED_OFF);
	struct blkback_vq_chain c;

	init_vq(f, false, true);
	/* The first check always signals (nothing known yet). */
	blkback_vq_push(&f->vq, 0, 1);
	assert_true(blkback_vq_need_signal(&f->vq));
	/* used_event = 3: no interrupt until the used index passes it. */
	a->ring[NUM] = 3;
	blkback_vq_push(&f->vq, 0, 1); /* idx 2 */
	assert_false(blkback_vq_need_signal(&f->vq));
	blkback_vq_push(&f->vq, 0, 1); /* 3 */
	blkback_vq_push(&f->vq, 0, 1); /* 4: crossed 3 */
	assert_true(blkback_vq_need_signal(&f->vq));
	blkback_vq_push(&f->vq, 0, 1); /* 5 */
	assert_false(blkback_vq_need_signal(&f->vq));

	/* Without EVENT_IDX, NO_INTERRUPT decides. */
	f->vq.event_idx = false;
	a->flags = BLKBACK_VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(blkback_vq_need_signal(&f->vq));
	a->flags = 0;
	assert_true(blkback_vq_need_signal(&f->vq));

	/* enable_notify publishes avail_event and sees late arrivals. */
	f->vq.event_idx = true;
	assert_false(blkback_vq_enable_notify(&f->vq));
	assert_int_equal(*(uint16_t *)&u->ring[NUM], f->vq.last_avail);
	blk_chain(f, 0, W);
	offer(f, 0);
	assert_true(blkback_vq_enable_notify(&f->vq));
	assert_int_equal(blkback_vq_pop(&f->vq, &c, f->iov, CAP), 1);
	assert_false(blkback_vq_enable_notify(&f->vq));
	assert_int_equal(*(uint16_t *)&u->ring[NUM], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_chain, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_avail_wraps, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_rules, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_structure_breaks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_request_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_writable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_two_regions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_init_checks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
