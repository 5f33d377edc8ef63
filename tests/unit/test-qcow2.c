/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the qcow2 driver's checks: hostile headers and tables
 * built in memory, each refused with an error that names the file and
 * the field; bad table entries fail reads with -EIO; random header
 * damage never crashes (run under ASan/UBSan too).
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
#include <json-c/json.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "vbd/vbd.h"

/*
 * The baseline image: version 3, 64 KiB clusters, 1 MiB virtual size.
 * Cluster 0 the header, 1 the L1 table, 2 the refcount table, 3 an L2
 * table, 4 a data cluster of 0x5a bytes.
 */
#define CL	(64u << 10)
#define L1_OFF	(1 * CL)
#define RT_OFF	(2 * CL)
#define L2_OFF	(3 * CL)
#define DAT_OFF (4 * CL)
#define IMG_LEN (5 * CL)

struct img {
	char path[64];
	uint8_t *buf; /* IMG_LEN bytes, written by save() */
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static int setup(void **state)
{
	struct img *m = calloc(1, sizeof(*m));
	uint8_t *h;
	int fd;

	strcpy(m->path, "/var/tmp/vstor-test-qcow2.XXXXXX");
	fd = mkstemp(m->path);
	assert_true(fd >= 0);
	close(fd);
	m->buf = calloc(1, IMG_LEN);
	h = m->buf;
	memcpy(h, "QFI\xfb", 4);
	put32(h + 4, 3);	 /* version */
	put32(h + 20, 16);	 /* cluster_bits */
	put64(h + 24, 1u << 20); /* size */
	put32(h + 36, 1);	 /* l1_size */
	put64(h + 40, L1_OFF);	 /* l1_table_offset */
	put64(h + 48, RT_OFF);	 /* refcount_table_offset */
	put32(h + 56, 1);	 /* refcount_table_clusters */
	put32(h + 96, 4);	 /* refcount_order */
	put32(h + 100, 104);	 /* header_length */
	put64(h + L1_OFF, L2_OFF | (1ull << 63));
	/* Guest cluster 1 is data; 2 is a zero cluster. */
	put64(h + L2_OFF + 8, DAT_OFF | (1ull << 63));
	put64(h + L2_OFF + 16, 1);
	memset(h + DAT_OFF, 0x5a, CL);
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct img *m = *state;

	unlink(m->path);
	free(m->buf);
	free(m);
	return 0;
}

static void save_len(struct img *m, size_t len)
{
	int fd = open(m->path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, m->buf, len), (ssize_t)len);
	close(fd);
}

static void save(struct img *m)
{
	save_len(m, IMG_LEN);
}

static struct vbd *open_ok(struct img *m)
{
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	save(m);
	if (vbd_open_file(m->path, "qcow2", VBD_O_RDONLY, &vbd, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));
	return vbd;
}

/* Open must fail with `code` and a message naming the file and `what`. */
static void refused(struct img *m, int code, const char *what)
{
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;
	int ret;

	ret = vbd_open_file(m->path, "qcow2", VBD_O_RDONLY, &vbd, &err);
	if (ret >= 0) {
		vbd_close(vbd);
		fail_msg("open succeeded; expected an error naming '%s'", what);
	}
	assert_non_null(err);
	if (ret != -code || !strstr(vs_error_msg(err), what) ||
	    !strstr(vs_error_msg(err), m->path))
		fail_msg("got %d '%s'; expected %d naming '%s' and the file",
			 ret, vs_error_msg(err), -code, what);
	vs_error_free(err);
}

static void test_baseline(void **state)
{
	struct img *m = *state;
	struct vbd *vbd = open_ok(m);
	uint8_t *buf = malloc(3 * CL);
	struct vbd_extent ext;

	assert_int_equal(vbd_size(vbd), 1u << 20);
	assert_string_equal(vbd_format(vbd), "qcow2");
	assert_int_equal(vbd_pread(vbd, 0, buf, 3 * CL), 0);
	for (size_t i = 0; i < 3 * CL; i++)
		if (buf[i] != (i >= CL && i < 2 * CL ? 0x5a : 0))
			fail_msg("byte %zu is 0x%02x", i, buf[i]);
	/* Unaligned, across the data/zero boundary. */
	assert_int_equal(vbd_pread(vbd, 2 * CL - 7, buf, 14), 0);
	assert_int_equal(buf[6], 0x5a);
	assert_int_equal(buf[7], 0);
	assert_int_equal(vbd_block_status(vbd, CL, 2 * CL, &ext), 0);
	assert_int_equal(ext.flags, VBD_STATUS_DATA | VBD_STATUS_ALLOCATED);
	assert_int_equal(ext.length, CL);
	assert_int_equal(ext.host_offset, DAT_OFF);
	assert_int_equal(vbd_block_status(vbd, 2 * CL, CL, &ext), 0);
	assert_int_equal(ext.flags, VBD_STATUS_ZERO | VBD_STATUS_ALLOCATED);
	assert_int_equal(vbd_block_status(vbd, 0, CL, &ext), 0);
	assert_int_equal(ext.flags, VBD_STATUS_ZERO);
	assert_int_equal(vbd_pwrite(vbd, 0, buf, 1), -EROFS);
	free(buf);
	vbd_close(vbd);
}

/* A dirty image (a crash with lazy refcounts) opens read-only as it is,
 * and is repaired when it is opened for writing: the bit goes. */
static void test_write_refused(void **state)
{
	struct img *m = *state;
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;
	uint8_t hdr[8];
	int fd;

	put64(m->buf + 72, 1); /* dirty */
	vbd_close(open_ok(m));
	if (vbd_open_file(m->path, "qcow2", 0, &vbd, &err) < 0)
		fail_msg("open for writing: %s", vs_error_msg(err));
	vbd_close(vbd);
	fd = open(m->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, hdr, 8, 72), 8);
	close(fd);
	assert_int_equal(hdr[7] & 1, 0);
}

static void test_magic_version(void **state)
{
	struct img *m = *state;

	m->buf[3] = 0xfa;
	save(m);
	refused(m, EINVAL, "magic");
	m->buf[3] = 0xfb;
	put32(m->buf + 4, 1);
	save(m);
	refused(m, ENOTSUP, "version 1");
	put32(m->buf + 4, 4);
	save(m);
	refused(m, ENOTSUP, "version 4");
}

static void test_cluster_bits(void **state)
{
	struct img *m = *state;

	put32(m->buf + 20, 8);
	save(m);
	refused(m, EINVAL, "cluster_bits 8");
	put32(m->buf + 20, 22);
	save(m);
	refused(m, EINVAL, "cluster_bits 22");
	put32(m->buf + 20, 0xffffffff);
	save(m);
	refused(m, EINVAL, "cluster_bits 4294967295");
}

static void test_sizes(void **state)
{
	struct img *m = *state;

	put32(m->buf + 36, 0x10000000);
	save(m);
	refused(m, EINVAL, "l1_size 268435456");
	put32(m->buf + 36, 1);
	put64(m->buf + 24, 1ull << 30); /* one L2 table maps 512 MiB */
	save(m);
	refused(m, EINVAL, "l1_size 1 is too small");
	put64(m->buf + 24, UINT64_MAX);
	save(m);
	refused(m, EINVAL, "size 18446744073709551615");
}

static void test_l1_offset(void **state)
{
	struct img *m = *state;

	put64(m->buf + 40, L1_OFF + 512);
	save(m);
	refused(m, EINVAL, "l1_table_offset 0x10200");
	put64(m->buf + 40, 64 * CL);
	save(m);
	refused(m, EINVAL, "l1_table_offset 0x400000");
	put64(m->buf + 40, UINT64_MAX & ~(uint64_t)(CL - 1));
	save(m);
	refused(m, EINVAL, "l1_table_offset");
}

static void test_refcount_offset(void **state)
{
	struct img *m = *state;

	put64(m->buf + 48, RT_OFF + 8);
	save(m);
	refused(m, EINVAL, "refcount_table_offset");
	put64(m->buf + 48, RT_OFF);
	put32(m->buf + 56, 0xffffffff);
	save(m);
	refused(m, EINVAL, "refcount_table_clusters 4294967295");
	put32(m->buf + 56, 129); /* 8 MiB + 64 KiB */
	save(m);
	refused(m, EINVAL, "refcount_table_clusters 129");
	put32(m->buf + 56, 0);
	save(m);
	refused(m, EINVAL, "refcount_table_clusters 0");
	put32(m->buf + 56, 4);
	save(m);
	refused(m, EINVAL,
		"refcount_table_offset 0x20000 with "
		"refcount_table_clusters 4 is past the end");
	put32(m->buf + 56, 1);
	put64(m->buf + 48, 0);
	save(m);
	refused(m, EINVAL,
		"refcount_table_offset 0x0 (the refcount table, "
		"65536 bytes) overlaps the header cluster");
	put64(m->buf + 48, L1_OFF);
	save(m);
	refused(m, EINVAL, "overlaps l1_table_offset 0x10000 (the L1 table");
}

/* Tables the header points at share no byte with the header or each
 * other; the snapshot table's place is checked before its entries. */
static void test_overlaps_snapshots(void **state)
{
	struct img *m = *state;

	put64(m->buf + 40, 0);
	save(m);
	refused(m, EINVAL,
		"l1_table_offset 0x0 (the L1 table, 8 bytes) "
		"overlaps the header cluster");
	put64(m->buf + 40, L1_OFF);
	put32(m->buf + 60, 70000);
	save(m);
	refused(m, EINVAL, "nb_snapshots 70000 is more than 65536");
	put32(m->buf + 60, 1);
	put64(m->buf + 64, 64 * CL);
	save(m);
	refused(m, EINVAL,
		"snapshots_offset 0x400000 with nb_snapshots 1 is "
		"past the end");
	put32(m->buf + 60, 2000); /* 80000 bytes from cluster 4 on */
	put64(m->buf + 64, DAT_OFF);
	save(m);
	refused(m, EINVAL, "snapshots_offset 0x40000 with nb_snapshots 2000");
	put32(m->buf + 60, 1);
	put64(m->buf + 64, 0);
	save(m);
	refused(m, EINVAL,
		"snapshots_offset 0x0 (the snapshot table, 40 "
		"bytes) overlaps the header cluster");
	put64(m->buf + 64, RT_OFF);
	save(m);
	refused(m, EINVAL,
		"snapshots_offset 0x20000 (the snapshot table, 40 "
		"bytes) overlaps refcount_table_offset 0x20000");
}

static void test_backing_name(void **state)
{
	struct img *m = *state;

	put64(m->buf + 8, 512);
	put32(m->buf + 16, 2000);
	save(m);
	refused(m, EINVAL, "backing_file_size 2000");
	put64(m->buf + 8, CL - 4);
	put32(m->buf + 16, 10);
	save(m);
	refused(m, EINVAL, "backing_file_offset");
	put64(m->buf + 8, 16);
	save(m);
	refused(m, EINVAL,
		"backing_file_offset 16 overlaps the header "
		"(header_length 104)");
}

static void test_features(void **state)
{
	struct img *m = *state;

	put64(m->buf + 72, 1ull << 17);
	save(m);
	refused(m, ENOTSUP, "incompatible feature bit 17");
	put64(m->buf + 72, 1ull << 2);
	save(m);
	refused(m, ENOTSUP, "external data file");
	/* Extended L2 entries: read and written, with clusters of at
	 * least 16 KiB. */
	put64(m->buf + 72, 1ull << 4);
	vbd_close(open_ok(m));
	put32(m->buf + 20, 13);
	save(m);
	refused(m, EINVAL, "subclusters need clusters of at least 16 KiB");
	put32(m->buf + 20, 16);
	put64(m->buf + 72, 1ull << 3); /* zstd bit, no room for the type */
	save(m);
	refused(m, EINVAL,
		"header_length 104 leaves no room for "
		"compression_type");
	put32(m->buf + 100, 112); /* zstd bit, but type 0 */
	save(m);
	refused(m, EINVAL, "compression_type 0");
	m->buf[104] = 7;
	save(m);
	refused(m, ENOTSUP, "compression_type 7");
	put64(m->buf + 72, 0);
	m->buf[104] = 0;
	put32(m->buf + 32, 1);
	save(m);
	refused(m, ENOTSUP, "encrypted images are not supported");
}

static void test_dirty_corrupt_open(void **state)
{
	struct img *m = *state;
	struct vbd_info info;
	struct vbd *vbd;

	put64(m->buf + 72, 3); /* dirty and corrupt: read-only is fine */
	vbd = open_ok(m);
	assert_int_equal(vbd_get_info(vbd, &info, NULL), 0);
	assert_true(info.dirty);
	assert_int_equal(info.cluster_size, CL);
	assert_non_null(info.specific);
	json_object_put(info.specific); /* the caller owns it */
	vbd_close(vbd);
}

static void test_header_fields(void **state)
{
	struct img *m = *state;

	put32(m->buf + 100, 100);
	save(m);
	refused(m, EINVAL, "header_length 100");
	put32(m->buf + 100, 104);
	put32(m->buf + 96, 7);
	save(m);
	refused(m, EINVAL, "refcount_order 7");
	put32(m->buf + 96, 4);
	/* An extension whose length runs past the first cluster. */
	put32(m->buf + 104, 0x6803f857);
	put32(m->buf + 108, CL);
	save(m);
	refused(m, EINVAL, "header extension 0x6803f857");
	put32(m->buf + 108, 0);
	put32(m->buf + 60, 1);
	put64(m->buf + 64, 4096);
	save(m);
	refused(m, EINVAL, "snapshots_offset 0x1000");
	save_len(m, 50);
	refused(m, EINVAL, "truncated qcow2 header");
}

static void read_fails(struct img *m)
{
	struct vbd *vbd = open_ok(m);
	uint8_t buf[512];

	assert_int_equal(vbd_pread(vbd, CL, buf, sizeof(buf)), -EIO);
	/* Elsewhere the image still reads. */
	assert_int_equal(vbd_pread(vbd, 3 * CL, buf, sizeof(buf)), 0);
	vbd_close(vbd);
}

static void test_bad_l2_entries(void **state)
{
	struct img *m = *state;

	put64(m->buf + L2_OFF + 8, (1ull << 40) | (1ull << 63));
	read_fails(m);
	put64(m->buf + L2_OFF + 8, (DAT_OFF + 512) | (1ull << 63));
	read_fails(m);
	/* Compressed, at offset 0. */
	put64(m->buf + L2_OFF + 8, 1ull << 62);
	read_fails(m);
	/* Compressed, garbage data. */
	put64(m->buf + L2_OFF + 8, (1ull << 62) | DAT_OFF | (3ull << 54));
	read_fails(m);
}

static void test_compressed(void **state)
{
	struct img *m = *state;
	uint8_t *plain = malloc(CL), *buf = malloc(CL);
	z_stream z = {0};
	struct vbd *vbd;
	uint64_t nsect;

	for (size_t i = 0; i < CL; i++)
		plain[i] = (uint8_t)(i / 1000);
	assert_int_equal(
		deflateInit2(&z, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY),
		Z_OK);
	z.next_in = plain;
	z.avail_in = CL;
	z.next_out = m->buf + DAT_OFF + 100; /* not sector-aligned */
	z.avail_out = CL - 100;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	nsect = (100 + z.total_out + 511) / 512 - 1;
	deflateEnd(&z);
	/* 64 KiB clusters: offset in bits 0..53, sectors in 54..61. */
	put64(m->buf + L2_OFF + 8,
	      (1ull << 62) | (nsect << 54) | (DAT_OFF + 100));
	vbd = open_ok(m);
	assert_int_equal(vbd_pread(vbd, CL, buf, CL), 0);
	assert_memory_equal(buf, plain, CL);
	assert_int_equal(vbd_pread(vbd, CL + 5000, buf, 3000), 0);
	assert_memory_equal(buf, plain + 5000, 3000);
	vbd_close(vbd);
	free(plain);
	free(buf);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random damage to the header and tables: any result but a crash. */
static void test_random_damage(void **state)
{
	struct img *m = *state;
	uint8_t *orig = malloc(IMG_LEN), buf[4096];
	int opened = 0;

	memcpy(orig, m->buf, IMG_LEN);
	for (int round = 0; round < 1500; round++) {
		struct vs_error *err = NULL;
		struct vbd *vbd = NULL;

		memcpy(m->buf, orig, IMG_LEN);
		for (int k = 1 + (int)(rnd() % 4); k > 0; k--) {
			uint64_t r = rnd();
			size_t pos = r % 8 == 0	  ? L1_OFF + (r >> 8) % 8
				     : r % 8 == 1 ? L2_OFF + (r >> 8) % 24
						  : (r >> 8) % 112;

			m->buf[pos] = (uint8_t)(rnd() >> 24);
		}
		save(m);
		if (vbd_open_file(m->path, "qcow2", VBD_O_RDONLY, &vbd, &err) <
		    0) {
			assert_non_null(err);
			vs_error_free(err);
			continue;
		}
		opened++;
		for (uint64_t off = 0; off < vbd_size(vbd) && off < 4 * CL;
		     off += CL / 2)
			(void)vbd_pread(vbd, off, buf,
					(size_t)VS_MIN(sizeof(buf),
						       vbd_size(vbd) - off));
		vbd_close(vbd);
	}
	assert_true(opened > 0);
	free(orig);
}

/*
 * Many L2 tables (512-byte clusters: one table maps 32 KiB) read by
 * several threads at once, so that the 16-table cache evicts while
 * others look up.  Guest cluster i lives at host cluster FIRST_DATA +
 * (N - 1 - i), filled with the byte i * 7: any mix-up shows.
 */
#define SM_CL	   512u
#define SM_N	   8192u /* guest clusters: 4 MiB */
#define SM_L1	   1u	 /* cluster of the L1 table (128 entries) */
#define SM_RT	   3u
#define SM_L2	   4u /* first of 128 L2 tables */
#define SM_DATA	   (SM_L2 + SM_N / 64)
#define SM_THREADS 4

struct reader {
	struct vbd *vbd;
	uint64_t seed;
	int bad;
};

static uint8_t sm_byte(uint64_t guest_off)
{
	return (uint8_t)(guest_off / SM_CL * 7);
}

static void *reader_fn(void *opaque)
{
	struct reader *r = opaque;
	uint8_t *buf = malloc(64 * SM_CL);

	for (int i = 0; i < 400 && !r->bad; i++) {
		uint64_t off, len;

		r->seed = r->seed * 6364136223846793005ull +
			  1442695040888963407ull;
		off = (r->seed >> 20) % (SM_N * SM_CL);
		len = 1 + (r->seed >> 8) % (64 * SM_CL);
		if (len > SM_N * SM_CL - off)
			len = SM_N * SM_CL - off;
		if (vbd_pread(r->vbd, off, buf, len) < 0) {
			r->bad = 1;
			break;
		}
		for (uint64_t k = 0; k < len; k++)
			if (buf[k] != sm_byte(off + k)) {
				r->bad = 2;
				break;
			}
	}
	free(buf);
	return NULL;
}

static void test_threads_many_l2(void **state)
{
	struct img *m = *state;
	size_t len = (size_t)(SM_DATA + SM_N) * SM_CL;
	uint8_t *b = calloc(1, len);
	struct reader rd[SM_THREADS];
	pthread_t th[SM_THREADS];
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;

	free(m->buf);
	m->buf = b;
	memcpy(b, "QFI\xfb", 4);
	put32(b + 4, 3);
	put32(b + 20, 9);
	put64(b + 24, (uint64_t)SM_N * SM_CL);
	put32(b + 36, SM_N / 64);
	put64(b + 40, SM_L1 * SM_CL);
	put64(b + 48, SM_RT * SM_CL);
	put32(b + 56, 1);
	put32(b + 96, 4);
	put32(b + 100, 104);
	for (uint32_t t = 0; t < SM_N / 64; t++)
		put64(b + SM_L1 * SM_CL + 8 * t, (uint64_t)(SM_L2 + t) * SM_CL);
	for (uint32_t i = 0; i < SM_N; i++) {
		uint64_t host = (uint64_t)(SM_DATA + SM_N - 1 - i) * SM_CL;

		put64(b + SM_L2 * SM_CL + 8 * i, host);
		memset(b + host, sm_byte((uint64_t)i * SM_CL), SM_CL);
	}
	save_len(m, len);
	if (vbd_open_file(m->path, "qcow2", VBD_O_RDONLY, &vbd, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));
	for (int i = 0; i < SM_THREADS; i++) {
		rd[i] = (struct reader){.vbd = vbd,
					.seed = 1000u + (unsigned)i};
		assert_int_equal(
			pthread_create(&th[i], NULL, reader_fn, &rd[i]), 0);
	}
	for (int i = 0; i < SM_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (rd[i].bad)
			fail_msg("reader %d: %s", i,
				 rd[i].bad == 1 ? "a read failed"
						: "wrong data read");
	}
	vbd_close(vbd);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_baseline),	 T(test_write_refused),
		T(test_magic_version),	 T(test_cluster_bits),
		T(test_sizes),		 T(test_l1_offset),
		T(test_refcount_offset), T(test_backing_name),
		T(test_features),	 T(test_dirty_corrupt_open),
		T(test_header_fields),	 T(test_bad_l2_entries),
		T(test_compressed),	 T(test_random_damage),
		T(test_threads_many_l2), T(test_overlaps_snapshots),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
