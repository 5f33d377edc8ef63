/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the partition table reader (imgtools/
 * part-table.c): `vstor part list|map` read tables from disks and images
 * that guests and strangers wrote.  Each input is the start of a disk,
 * held in a memfd (the reader takes a descriptor, as for a block device
 * or a raw image).  Bytes 0-1 are MBR boot code that no table reads, so
 * they also give the disk's size in sectors (little-endian, at least the
 * input's own length): partitions that fit a larger disk than the input
 * then reach the mapping checks instead of all failing "past the end".
 * When bit 0 of byte 2 (boot code too) is set, the harness recomputes
 * the CRCs of a primary GPT header and its entry array, as a tool that
 * writes tables would: a mutated GPT then gets past its checksums, and
 * the numbers in it reach the reader's checks.
 *
 * Whatever the bytes, the reader must not crash or leak, and a table it
 * returns must keep part-table.h's promises: kpartx's numbering and
 * order, bounded counts and strings, and a `problem` on every partition
 * that would not fit its disk or its extended partition.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "imgtools/part-table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECTOR 512u

static int disk_fd = -1;

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Make the CRCs of the GPT header at sector 1 and of its entry array
 * (when the array lies inside the input) match what they cover. */
static void fix_gpt_crcs(uint8_t *buf, size_t size)
{
	uint8_t *hdr = buf + SECTOR;
	uint32_t hsize, n, esize;
	uint64_t lba, bytes;

	if (size < 2 * SECTOR || memcmp(hdr, "EFI PART", 8))
		return;
	hsize = get_le32(hdr + 12);
	lba = get_le32(hdr + 72) | (uint64_t)get_le32(hdr + 76) << 32;
	n = get_le32(hdr + 80);
	esize = get_le32(hdr + 84);
	bytes = (uint64_t)n * esize;
	if (lba < size / SECTOR && bytes <= size - lba * SECTOR)
		put_le32(hdr + 88,
			 (uint32_t)crc32(0, buf + lba * SECTOR, (uInt)bytes));
	if (hsize < 92 || hsize > SECTOR)
		return;
	put_le32(hdr + 16, 0);
	put_le32(hdr + 16, (uint32_t)crc32(0, hdr, hsize));
}

static void check_str(const char *s, size_t cap)
{
	assert(strnlen(s, cap) < cap);
}

static void check_table(const struct img_part_table *t)
{
	const struct img_part *ext = NULL;
	char name[64];

	check_str(t->type, sizeof(t->type));
	check_str(t->id, sizeof(t->id));
	assert(!strcmp(t->type, "") || !strcmp(t->type, "dos") ||
	       !strcmp(t->type, "gpt"));
	assert(t->n <= IMG_PART_MAX);
	assert(t->type[0] || (t->n == 0 && t->dropped == 0));
	assert(t->sector_size >= SECTOR && t->sector_size % SECTOR == 0);
	assert(img_part_table_problems(t) >= t->dropped);
	assert(img_part_table_problems(t) <= t->n + t->dropped);
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].kind == IMG_PART_EXTENDED)
			ext = &t->parts[i];
	for (size_t i = 0; i < t->n; i++) {
		const struct img_part *p = &t->parts[i];
		uint64_t end;

		check_str(p->type, sizeof(p->type));
		check_str(p->uuid, sizeof(p->uuid));
		check_str(p->label, sizeof(p->label));
		check_str(p->problem, sizeof(p->problem));
		assert(p->number >= 1);
		/* kpartx's order: by number. */
		assert(i == 0 || t->parts[i - 1].number <= p->number);
		assert(p->map_size <= p->size);
		if (!strcmp(t->type, "dos")) {
			/* Slots 1-4 are primary or extended, 5... logical. */
			assert((p->kind == IMG_PART_LOGICAL) ==
			       (p->number >= 5));
			assert(p->kind != IMG_PART_EXTENDED ||
			       p->map_size <= 2 * (t->sector_size / SECTOR));
		} else {
			assert(p->kind == IMG_PART_PRIMARY);
		}
		assert(img_part_name("loop0", NULL, p->number, name,
				     sizeof(name)) > 0);
		if (p->problem[0])
			continue;
		/* What may be mapped lies on the disk... */
		assert(!__builtin_add_overflow(p->start, p->size, &end));
		assert(end <= t->disk_sectors);
		/* ... and a logical partition in its container. */
		if (p->kind == IMG_PART_LOGICAL) {
			assert(ext);
			assert(p->start >= ext->start &&
			       end <= ext->start + ext->size);
		}
		/* Two mappable partitions never share a number. */
		assert(i == 0 || t->parts[i - 1].number != p->number);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_part_table *t = NULL;
	struct vs_error *err = NULL;
	uint64_t disk = (size + SECTOR - 1) / SECTOR * SECTOR;
	uint8_t *buf = malloc(size ? size : 1);
	size_t done = 0;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (size >= 3 && (data[2] & 1))
		fix_gpt_crcs(buf, size);
	if (disk_fd < 0) {
		disk_fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
		assert(disk_fd >= 0);
	}
	if (size >= 2) {
		uint64_t want = (uint64_t)(data[0] | data[1] << 8) * SECTOR;

		if (want > disk)
			disk = want;
	}
	/* Empty the memfd first: nothing of the last input may remain. */
	if (ftruncate(disk_fd, 0) < 0 || ftruncate(disk_fd, (off_t)disk) < 0)
		abort();
	while (done < size) {
		ssize_t n =
			pwrite(disk_fd, buf + done, size - done, (off_t)done);

		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	free(buf);

	r = img_part_table_read(disk_fd, "fuzz-disk", &t, &err);
	if (r == 0) {
		assert(t && !err);
		assert(t->disk_sectors == disk / SECTOR);
		check_table(t);
		img_part_table_free(t);
	} else {
		assert(r < 0 && err && !t);
		assert(vs_error_msg(err)[0] != '\0');
		vs_error_free(err);
	}
	return 0;
}
