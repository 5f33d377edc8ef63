/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for qcow2 writing: refcount packing for every width, and
 * writes into a hand-built image whose L2 table and data cluster are
 * shared (as an internal snapshot leaves them), checked byte by byte on
 * disk: the table and the cluster are copied, the copies have refcount 1
 * and COPIED set, the originals lose one reference.  And kernel copies
 * (vbd_copy_from_fd) into empty clusters, and what they refuse.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cow/qcow2.h"
#include "vbd/vbd.h"

/* Every width: set values at every index, read them all back, and check
 * that neighbours are untouched. */
static void test_rc_pack(void **state)
{
	uint8_t block[512];

	for (uint32_t order = 0; order <= 6; order++) {
		uint64_t n = sizeof(block) * 8 >> order;
		uint64_t max =
			order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;

		memset(block, 0, sizeof(block));
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_set(block, i, order,
				     (i * 0x9e3779b97f4a7c15ull) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_true(qcow2_rc_get(block, i, order) ==
				    ((i * 0x9e3779b97f4a7c15ull) & max));
		qcow2_rc_set(block, 5, order, max);
		assert_true(qcow2_rc_get(block, 5, order) == max);
		assert_true(qcow2_rc_get(block, 4, order) ==
			    ((4 * 0x9e3779b97f4a7c15ull) & max));
		assert_true(qcow2_rc_get(block, 6, order) ==
			    ((6 * 0x9e3779b97f4a7c15ull) & max));
	}
}

/* The layout the spec gives: sub-byte widths from the low bit of each
 * byte up, wider ones big-endian. */
static void test_rc_layout(void **state)
{
	uint8_t b[16];

	memset(b, 0, sizeof(b));
	qcow2_rc_set(b, 1, 0, 1);
	assert_int_equal(b[0], 0x02);
	memset(b, 0, sizeof(b));
	qcow2_rc_set(b, 1, 1, 3);
	assert_int_equal(b[0], 0x0c);
	memset(b, 0, sizeof(b));
	qcow2_rc_set(b, 1, 2, 0xa);
	assert_int_equal(b[0], 0xa0);
	memset(b, 0, sizeof(b));
	qcow2_rc_set(b, 1, 4, 0x1234);
	assert_int_equal(b[2], 0x12);
	assert_int_equal(b[3], 0x34);
	memset(b, 0, sizeof(b));
	qcow2_rc_set(b, 1, 6, 0x0102030405060708ull);
	for (int i = 0; i < 8; i++)
		assert_int_equal(b[8 + i], i + 1);
}

/*
 * The image: version 3, 4 KiB clusters, 1 MiB.  Cluster 0 the header, 1
 * the refcount table, 2 a refcount block (16-bit), 3 the L1 table, 4 an
 * L2 table and 5 a data cluster, both with refcount 2 and COPIED clear.
 */
#define CL     4096u
#define RT_OFF (1 * CL)
#define RB_OFF (2 * CL)
#define L1_OFF (3 * CL)
#define L2_OFF (4 * CL)
#define D_OFF  (5 * CL)
#define NCL    6

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void make_image(const char *path)
{
	uint8_t *b = calloc(NCL, CL);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(b && fd >= 0);
	memcpy(b, "QFI\xfb", 4);
	put(b + 4, 3, 4);
	put(b + 20, 12, 4);	 /* cluster_bits */
	put(b + 24, 1 << 20, 8); /* size */
	put(b + 36, 2, 4);	 /* l1_size: 512 entries per L2 */
	put(b + 40, L1_OFF, 8);
	put(b + 48, RT_OFF, 8);
	put(b + 56, 1, 4);
	put(b + 96, 4, 4);
	put(b + 100, 104, 4);
	put(b + RT_OFF, RB_OFF, 8);
	for (int c = 0; c < NCL; c++)
		put(b + RB_OFF + 2 * c, c >= 4 ? 2 : 1, 2);
	put(b + L1_OFF, L2_OFF, 8); /* shared: COPIED clear */
	put(b + L2_OFF + 8, D_OFF, 8);
	memset(b + D_OFF, 0x5a, CL);
	assert_int_equal(write(fd, b, NCL * CL), NCL * CL);
	close(fd);
	free(b);
}

static void test_cow_shared(void **state)
{
	char path[] = "/var/tmp/vstor-test-qcow2w.XXXXXX";
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;
	uint8_t buf[3 * CL], *f = malloc(64 * CL);
	uint64_t l1, l2, d;
	ssize_t n;
	int fd = mkstemp(path);

	assert_true(fd >= 0 && f);
	close(fd);
	make_image(path);
	if (vbd_open_file(path, "qcow2", 0, &vbd, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));
	/* Half of guest cluster 1 (shared data), all of cluster 2. */
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(vbd_pwrite(vbd, CL + 100, buf, CL - 100 + CL), 0);
	assert_int_equal(vbd_flush(vbd), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vbd_pread(vbd, 0, buf, 3 * CL), 0);
	for (size_t i = 0; i < 3 * CL; i++)
		if (buf[i] != (i < CL ? 0 : i < CL + 100 ? 0x5a : 0x77))
			fail_msg("byte %zu is 0x%02x", i, buf[i]);
	vbd_close(vbd);

	fd = open(path, O_RDONLY);
	n = pread(fd, f, 64 * CL, 0);
	close(fd);
	assert_true(n >= 9 * (ssize_t)CL);
	l1 = get(f + L1_OFF, 8);
	assert_true(l1 & (1ull << 63)); /* the copy is not shared */
	l2 = l1 & QCOW2_OFFSET_MASK;
	assert_true(l2 >= NCL * CL);
	d = get(f + l2 + 8, 8);
	assert_true(d & (1ull << 63));
	assert_true((d & QCOW2_OFFSET_MASK) >= NCL * CL);
	assert_true(get(f + l2 + 16, 8) & (1ull << 63));
	/* The originals have one reference less, the copies one. */
	assert_int_equal(get(f + RB_OFF + 2 * 4, 2), 1);
	assert_int_equal(get(f + RB_OFF + 2 * 5, 2), 1);
	assert_int_equal(get(f + RB_OFF + 2 * (l2 / CL), 2), 1);
	assert_int_equal(
		get(f + RB_OFF + 2 * ((d & QCOW2_OFFSET_MASK) / CL), 2), 1);
	/* The shared cluster kept its content for the snapshot. */
	for (size_t i = 0; i < CL; i++)
		assert_int_equal(f[D_OFF + i], 0x5a);
	unlink(path);
	free(f);
}

/* A corrupt image is refused for writing; its header stays as it was. */
static void test_no_header_damage_on_refusal(void **state)
{
	char path[] = "/var/tmp/vstor-test-qcow2w.XXXXXX";
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;
	int fd = mkstemp(path);
	uint8_t hdr[104];

	assert_true(fd >= 0);
	close(fd);
	make_image(path);
	fd = open(path, O_RDWR);
	put(hdr, 2, 8); /* corrupt bit */
	assert_int_equal(pwrite(fd, hdr, 8, 72), 8);
	assert_int_equal(vbd_open_file(path, "qcow2", 0, &vbd, &err), -EIO);
	assert_non_null(strstr(vs_error_msg(err), "marked corrupt"));
	vs_error_free(err);
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	assert_int_equal(get(hdr + 72, 8), 2);
	close(fd);
	unlink(path);
}

/* The source byte at `i` of test_copy_from_fd's file. */
static uint8_t src_byte(uint64_t i)
{
	return (uint8_t)(i % 251 + 1);
}

/*
 * vbd_copy_from_fd: empty whole clusters are filled from the file (bytes
 * past its end read as zeros); a cluster holding data, a partial one and
 * bad arguments are refused before anything changes; check finds no
 * corruption after a reopen.  vbd_host_fd: a raw file says where its bytes
 * are, a qcow2 does not.
 */
static void test_copy_from_fd(void **state)
{
	char path[] = "/var/tmp/vstor-test-qcow2w.XXXXXX";
	char spath[] = "/var/tmp/vstor-test-qcow2s.XXXXXX";
	size_t slen = 3 * CL + CL / 2;
	uint8_t *sb = malloc(slen), buf[10 * CL];
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL, *raw = NULL;
	struct vbd_check res;
	uint64_t hoff = 1;
	int fd = mkstemp(path), sfd = mkstemp(spath), hfd = -1;

	assert_true(fd >= 0 && sfd >= 0 && sb);
	close(fd);
	make_image(path);
	for (size_t i = 0; i < slen; i++)
		sb[i] = src_byte(i);
	assert_int_equal(pwrite(sfd, sb, slen, 0), (ssize_t)slen);
	if (vbd_open_file(path, "qcow2", 0, &vbd, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));

	/* Guest clusters 2 and 3 (empty) from the file's start. */
	assert_int_equal(vbd_copy_from_fd(vbd, 2 * CL, 2 * CL, sfd, 0), 0);
	/* 8 and 9 from its third cluster on: 9 is half past its end. */
	assert_int_equal(vbd_copy_from_fd(vbd, 8 * CL, 2 * CL, sfd, 2 * CL), 0);
	/* Cluster 1 holds (shared) data; 5 is not whole. */
	assert_int_equal(vbd_copy_from_fd(vbd, CL, CL, sfd, 0), -ENOTSUP);
	assert_int_equal(vbd_copy_from_fd(vbd, 5 * CL, CL / 2, sfd, 0),
			 -ENOTSUP);
	assert_int_equal(vbd_copy_from_fd(vbd, 5 * CL + 512, CL, sfd, 0),
			 -ENOTSUP);
	/* Past the disk's end, a bad descriptor, a source offset that is
	 * no off_t. */
	assert_int_equal(vbd_copy_from_fd(vbd, (1u << 20) - CL, 2 * CL, sfd, 0),
			 -EINVAL);
	assert_int_equal(vbd_copy_from_fd(vbd, 6 * CL, CL, -1, 0), -EINVAL);
	assert_int_equal(vbd_copy_from_fd(vbd, 6 * CL, CL, sfd, UINT64_MAX),
			 -EINVAL);
	assert_int_equal(vbd_host_fd(vbd, 0, CL, &hfd, &hoff), -ENOTSUP);
	/* 0 bytes: the format takes kernel copies. */
	assert_int_equal(vbd_copy_from_fd(vbd, 0, 0, -1, 0), 0);

	assert_int_equal(vbd_pread(vbd, 0, buf, sizeof(buf)), 0);
	for (uint64_t i = 0; i < sizeof(buf); i++) {
		uint64_t c = i / CL;
		uint8_t want = c == 1		  ? 0x5a
			       : c == 2 || c == 3 ? src_byte(i - 2 * CL)
			       : c == 8 || (c == 9 && i < 9 * CL + CL / 2)
				       ? src_byte(i - 6 * CL)
				       : 0;

		if (buf[i] != want)
			fail_msg("byte 0x%llx is 0x%02x, not 0x%02x",
				 (unsigned long long)i, buf[i], want);
	}
	vbd_close(vbd);
	vbd = NULL;
	if (vbd_open_file(path, "qcow2", VBD_O_RDONLY, &vbd, &err) < 0)
		fail_msg("reopen: %s", vs_error_msg(err));
	memset(&res, 0, sizeof(res));
	assert_int_equal(vbd_check(vbd, 0, &res, &err), 0);
	assert_int_equal(res.corruptions, 0);
	/* Only the hand-made sharing: no snapshot holds the L2 table and
	 * data cluster that claim two references, as after any write. */
	assert_int_equal(res.leaks, 2);
	assert_int_equal(res.allocated_clusters, 5);
	assert_int_equal(vbd_copy_from_fd(vbd, 4 * CL, CL, sfd, 0), -EROFS);
	vbd_close(vbd);

	if (vbd_open_file(spath, "raw", VBD_O_RDONLY, &raw, &err) < 0)
		fail_msg("open raw: %s", vs_error_msg(err));
	assert_int_equal(vbd_host_fd(raw, CL, CL, &hfd, &hoff), 0);
	assert_true(hfd >= 0);
	assert_int_equal(hoff, CL);
	vbd_close(raw);
	close(sfd);
	unlink(spath);
	unlink(path);
	free(sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rc_pack),
		cmocka_unit_test(test_rc_layout),
		cmocka_unit_test(test_cow_shared),
		cmocka_unit_test(test_no_header_damage_on_refusal),
		cmocka_unit_test(test_copy_from_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
