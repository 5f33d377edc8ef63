/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for imgtools/part-table.c: kpartx's names and numbering,
 * and the checks on untrusted tables, on MBR and GPT images built byte
 * by byte in a memfd (libblkid reads them as it reads a disk).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "common/error.h"
#include "imgtools/part-table.h"

#define UNUSED	 __attribute__((unused))
#define SECTOR	 512u
#define DISK_SEC 65536u /* 32 MiB */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* A disk of DISK_SEC sectors in a memfd. */
static int new_disk(void)
{
	int fd = memfd_create("part-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)DISK_SEC * SECTOR), 0);
	return fd;
}

/* Slot `slot` (0-3) of the MBR-style table in the sector at `lba`. */
static void put_entry(int fd, uint64_t lba, int slot, uint8_t type,
		      uint32_t start, uint32_t size)
{
	unsigned char e[16] = {0}, sig[2] = {0x55, 0xaa};

	e[4] = type;
	put32(e + 8, start);
	put32(e + 12, size);
	assert_int_equal(
		pwrite(fd, e, 16, (off_t)(lba * SECTOR + 446 + 16 * slot)), 16);
	assert_int_equal(pwrite(fd, sig, 2, (off_t)(lba * SECTOR + 510)), 2);
}

static struct img_part_table *read_ok(int fd)
{
	struct img_part_table *t = NULL;
	struct vs_error *err = NULL;
	int ret = img_part_table_read(fd, "test disk", &t, &err);

	if (ret < 0)
		fail_msg("img_part_table_read: %s", vs_error_msg(err));
	return t;
}

static void test_names(void **state UNUSED)
{
	char buf[32];

	assert_int_equal(img_part_name("loop0", NULL, 1, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "loop0p1");
	img_part_name("sdb", NULL, 12, buf, sizeof(buf));
	assert_string_equal(buf, "sdb12");
	img_part_name("vg-web1", NULL, 2, buf, sizeof(buf));
	assert_string_equal(buf, "vg-web1p2");
	img_part_name("sdb", "-part", 3, buf, sizeof(buf));
	assert_string_equal(buf, "sdb-part3");
	assert_int_equal(img_part_name("loop0", NULL, 100, buf, 8),
			 -ENAMETOOLONG);
}

/* Primary 1, extended 2 (two logical partitions), empty 3 and 4. */
static int mbr_with_logicals(void)
{
	int fd = new_disk();

	put_entry(fd, 0, 0, 0x83, 2048, 8192);
	put_entry(fd, 0, 1, 0x05, 10240, 20480);
	/* EBR 1 at 10240: logical at +2048, link to EBR 2 at +10240. */
	put_entry(fd, 10240, 0, 0x83, 2048, 4096);
	put_entry(fd, 10240, 1, 0x05, 10240, 8192);
	/* EBR 2 at 20480: logical at +2048. */
	put_entry(fd, 20480, 0, 0x82, 2048, 2048);
	return fd;
}

static void test_mbr_numbering(void **state UNUSED)
{
	int fd = mbr_with_logicals();
	struct img_part_table *t = read_ok(fd);
	static const struct {
		unsigned number;
		enum img_part_kind kind;
		uint64_t start, size, map_size;
		const char *type;
	} want[] = {
		{1, IMG_PART_PRIMARY, 2048, 8192, 8192, "0x83"},
		{2, IMG_PART_EXTENDED, 10240, 20480, 2, "0x05"},
		{5, IMG_PART_LOGICAL, 12288, 4096, 4096, "0x83"},
		{6, IMG_PART_LOGICAL, 22528, 2048, 2048, "0x82"},
	};

	assert_string_equal(t->type, "dos");
	assert_int_equal(t->disk_sectors, DISK_SEC);
	assert_int_equal(t->n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(t->parts[i].number, want[i].number);
		assert_int_equal(t->parts[i].kind, want[i].kind);
		assert_int_equal(t->parts[i].start, want[i].start);
		assert_int_equal(t->parts[i].size, want[i].size);
		assert_int_equal(t->parts[i].map_size, want[i].map_size);
		assert_string_equal(t->parts[i].type, want[i].type);
		assert_string_equal(t->parts[i].problem, "");
	}
	assert_int_equal(img_part_table_problems(t), 0);
	img_part_table_free(t);
	close(fd);
}

static void test_mbr_gap(void **state UNUSED)
{
	int fd = new_disk();
	struct img_part_table *t;

	put_entry(fd, 0, 0, 0x83, 2048, 2048);
	put_entry(fd, 0, 2, 0x83, 8192, 2048);
	t = read_ok(fd);
	assert_int_equal(t->n, 2);
	assert_int_equal(t->parts[0].number, 1);
	assert_int_equal(t->parts[1].number, 3); /* slot 3 keeps its number */
	img_part_table_free(t);
	close(fd);
}

static void test_past_end(void **state UNUSED)
{
	int fd = new_disk();
	struct img_part_table *t;

	put_entry(fd, 0, 0, 0x83, 2048, 2048);
	put_entry(fd, 0, 1, 0x83, 60000, 10000); /* ends at 70000 > 65536 */
	put_entry(fd, 0, 2, 0x83, 0xfffffff0u, 0xfffffff0u);
	t = read_ok(fd);
	assert_int_equal(t->n, 3);
	assert_string_equal(t->parts[0].problem, "");
	assert_non_null(
		strstr(t->parts[1].problem, "past the end of the disk"));
	assert_non_null(
		strstr(t->parts[2].problem, "past the end of the disk"));
	assert_int_equal(img_part_table_problems(t), 2);
	img_part_table_free(t);
	close(fd);
}

static void test_logical_outside(void **state UNUSED)
{
	int fd = mbr_with_logicals();
	struct img_part_table *t;

	/* The first logical partition now reaches past its container
	 * (10240 + 20480) but not past the disk. */
	put_entry(fd, 10240, 0, 0x83, 2048, 30000);
	t = read_ok(fd);
	assert_int_equal(t->parts[2].number, 5);
	assert_non_null(
		strstr(t->parts[2].problem, "outside the extended partition"));
	assert_int_equal(img_part_table_problems(t), 1);
	img_part_table_free(t);
	close(fd);
}

static void test_no_table(void **state UNUSED)
{
	int fd = new_disk();
	struct img_part_table *t = read_ok(fd);

	assert_string_equal(t->type, "");
	assert_int_equal(t->n, 0);
	img_part_table_free(t);
	close(fd);
}

/*
 * A GPT with `n` entries of (first, last) LBAs; both CRCs right.  No
 * backup header: libblkid reads the primary one.
 */
static int gpt_disk(const uint64_t (*ents)[2], size_t n)
{
	int fd = new_disk();
	unsigned char hdr[SECTOR] = {0}, arr[128 * 128] = {0};

	put_entry(fd, 0, 0, 0xee, 1, DISK_SEC - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char *e = arr + 128 * i;

		memset(e, 0x11, 16);		     /* type GUID */
		memset(e + 16, (int)(0x20 + i), 16); /* partition GUID */
		put64(e + 32, ents[i][0]);
		put64(e + 40, ents[i][1]);
	}
	memcpy(hdr, "EFI PART", 8);
	put32(hdr + 8, 0x00010000);
	put32(hdr + 12, 92);
	put64(hdr + 24, 1);
	put64(hdr + 32, DISK_SEC - 1);
	put64(hdr + 40, 34);
	put64(hdr + 48, DISK_SEC - 34);
	memset(hdr + 56, 0x42, 16);
	put64(hdr + 72, 2);
	put32(hdr + 80, 128);
	put32(hdr + 84, 128);
	put32(hdr + 88, (uint32_t)crc32(0, arr, sizeof(arr)));
	put32(hdr + 16, (uint32_t)crc32(0, hdr, 92));
	assert_int_equal(pwrite(fd, hdr, SECTOR, SECTOR), SECTOR);
	assert_int_equal(pwrite(fd, arr, sizeof(arr), 2 * SECTOR),
			 (ssize_t)sizeof(arr));
	return fd;
}

static void test_gpt(void **state UNUSED)
{
	static const uint64_t ents[][2] = {{2048, 10239}, {10240, 20479}};
	int fd = gpt_disk(ents, 2);
	struct img_part_table *t = read_ok(fd);

	assert_string_equal(t->type, "gpt");
	assert_int_equal(t->n, 2);
	assert_int_equal(t->parts[1].number, 2);
	assert_int_equal(t->parts[1].start, 10240);
	assert_int_equal(t->parts[1].size, 10240);
	assert_string_equal(t->parts[1].type,
			    "11111111-1111-1111-1111-111111111111");
	assert_int_equal(t->dropped, 0);
	img_part_table_free(t);
	close(fd);
}

static void test_gpt_dropped(void **state UNUSED)
{
	/* The second entry ends past the last usable LBA: libblkid leaves
	 * it out, we count it. */
	static const uint64_t ents[][2] = {{2048, 10239}, {10240, 900000}};
	int fd = gpt_disk(ents, 2);
	struct img_part_table *t = read_ok(fd);

	assert_int_equal(t->n, 1);
	assert_int_equal(t->dropped, 1);
	assert_int_equal(img_part_table_problems(t), 1);
	img_part_table_free(t);
	close(fd);
}

static void test_protective_without_gpt(void **state UNUSED)
{
	int fd = new_disk();
	struct img_part_table *t = NULL;
	struct vs_error *err = NULL;

	put_entry(fd, 0, 0, 0xee, 1, DISK_SEC - 1);
	assert_int_equal(img_part_table_read(fd, "d.img", &t, &err), -EINVAL);
	assert_non_null(strstr(vs_error_msg(err), "d.img: a protective MBR"));
	vs_error_free(err);
	close(fd);
}

/*
 * Random MBRs and first EBRs: the reader never fails on them, and every
 * partition it lists either lies inside the disk (and a logical one
 * inside its extended partition) or carries a problem.
 */
static void test_random_tables(void **state UNUSED)
{
	unsigned seed = 12345;

	for (int round = 0; round < 300; round++) {
		int fd = new_disk();
		struct img_part_table *t;

		for (int slot = 0; slot < 4; slot++) {
			static const uint8_t types[] = {0x83, 0x05, 0x0f, 0x00,
							0x82};
			uint32_t start = (uint32_t)rand_r(&seed) % 80000;
			uint32_t size = (uint32_t)rand_r(&seed) % 80000;

			put_entry(fd, 0, slot, types[rand_r(&seed) % 5], start,
				  size);
			if (start < DISK_SEC)
				put_entry(fd, start, slot % 2,
					  types[rand_r(&seed) % 5],
					  (uint32_t)rand_r(&seed) % 70000,
					  (uint32_t)rand_r(&seed) % 70000);
		}
		t = read_ok(fd);
		for (size_t i = 0; i < t->n; i++) {
			const struct img_part *p = &t->parts[i];

			if (p->problem[0])
				continue;
			assert_true(p->start + p->size <= t->disk_sectors);
			assert_true(p->map_size <= p->size);
			assert_true(p->number >= 1 &&
				    p->number <= IMG_PART_MAX);
		}
		img_part_table_free(t);
		close(fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_mbr_numbering),
		cmocka_unit_test(test_mbr_gap),
		cmocka_unit_test(test_past_end),
		cmocka_unit_test(test_logical_outside),
		cmocka_unit_test(test_no_table),
		cmocka_unit_test(test_gpt),
		cmocka_unit_test(test_gpt_dropped),
		cmocka_unit_test(test_protective_without_gpt),
		cmocka_unit_test(test_random_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
