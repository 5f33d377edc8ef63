/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Partition tables through libblkid, checked and numbered as kpartx does. */
#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/cleanup.h"
#include "part-table.h"

#define SECTOR 512u

void img_part_table_free(struct img_part_table *t)
{
	if (!t)
		return;
	free(t->parts);
	free(t);
}

size_t img_part_table_problems(const struct img_part_table *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += t->parts[i].problem[0] != '\0';
	return n + t->dropped;
}

int img_part_name(const char *base, const char *delim, unsigned number,
		  char *buf, size_t len)
{
	size_t blen = strlen(base);
	int n;

	/* kpartx's rule: "loop0" + "p" + "1", but "sdb" + "1", so that the
	 * number stays readable after a name ending in a digit. */
	if (!delim)
		delim = blen && isdigit((unsigned char)base[blen - 1]) ? "p"
								       : "";
	n = snprintf(buf, len, "%s%s%u", base, delim, number);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

/* A copy that always ends in NUL; NULL copies as "". */
static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/*
 * Sector 0 holds a protective MBR (a slot of type 0xEE) that announces a
 * GPT.  libblkid then reports no table at all when neither GPT header is
 * valid; we say why instead of showing an empty disk.
 */
static bool has_protective_mbr(int fd)
{
	unsigned char mbr[SECTOR];

	if (pread(fd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr))
		return false;
	if (mbr[510] != 0x55 || mbr[511] != 0xaa)
		return false;
	for (int i = 0; i < 4; i++)
		if (mbr[446 + 16 * i + 4] == 0xee)
			return true;
	return false;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The bound on a GPT entry array we read: 128 entries of 128 bytes is
 * the norm; far more is not a disk we map. */
#define GPT_ARRAY_MAX (1u << 20)

/*
 * Entries in use (a non-zero type GUID) in the primary GPT when its
 * header and array check out, else -1.  libblkid silently leaves out an
 * entry outside the usable area; counting them ourselves lets us say
 * so.  Every field is the image's and checked before use.
 */
static long gpt_entries_in_use(int fd, unsigned ss, uint64_t disk_bytes)
{
	unsigned char hdr[4096];
	autofree unsigned char *arr = NULL;
	uint32_t hsize, crc, n, esize;
	uint64_t lba, bytes;
	long used = 0;

	if (ss > sizeof(hdr) || pread(fd, hdr, ss, ss) != (ssize_t)ss ||
	    memcmp(hdr, "EFI PART", 8))
		return -1;
	hsize = le32(hdr + 12);
	crc = le32(hdr + 16);
	if (hsize < 92 || hsize > ss)
		return -1;
	memset(hdr + 16, 0, 4);
	if (crc32(0, hdr, hsize) != crc)
		return -1;
	lba = le64(hdr + 72);
	n = le32(hdr + 80);
	esize = le32(hdr + 84);
	if (esize < 128 || esize % 8 || !n || n > GPT_ARRAY_MAX / esize)
		return -1;
	bytes = (uint64_t)n * esize;
	if (bytes > disk_bytes || lba > disk_bytes / ss ||
	    lba * ss > disk_bytes - bytes)
		return -1;
	arr = malloc(bytes);
	if (!arr ||
	    pread(fd, arr, bytes, (off_t)(lba * ss)) != (ssize_t)bytes ||
	    crc32(0, arr, (uInt)bytes) != le32(hdr + 88))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		static const unsigned char zero[16];

		used += memcmp(arr + (size_t)i * esize, zero, 16) != 0;
	}
	return used;
}

static int cmp_number(const void *a, const void *b)
{
	const struct img_part *pa = a, *pb = b;

	return (pa->number > pb->number) - (pa->number < pb->number);
}

/* Mark what cannot be mapped: past the disk's end, a logical partition
 * outside its container, a number seen twice. */
static void check_parts(struct img_part_table *t)
{
	const struct img_part *ext = NULL;

	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].kind == IMG_PART_EXTENDED)
			ext = &t->parts[i];
	for (size_t i = 0; i < t->n; i++) {
		struct img_part *p = &t->parts[i];
		uint64_t end;

		if (__builtin_add_overflow(p->start, p->size, &end) ||
		    end > t->disk_sectors) {
			snprintf(p->problem, sizeof(p->problem),
				 "%" PRIu64 " sectors from sector %" PRIu64
				 " run past the end of the disk (%" PRIu64
				 " sectors)",
				 p->size, p->start, t->disk_sectors);
			continue;
		}
		if (p->kind == IMG_PART_LOGICAL &&
		    (!ext || p->start < ext->start ||
		     end > ext->start + ext->size)) {
			snprintf(p->problem, sizeof(p->problem),
				 "%" PRIu64 " sectors from sector %" PRIu64
				 " lie outside the extended partition",
				 p->size, p->start);
			continue;
		}
		if (i && p->number == t->parts[i - 1].number)
			snprintf(p->problem, sizeof(p->problem),
				 "partition number %u appears twice",
				 p->number);
	}
}

static int read_part(blkid_partition par, const struct img_part_table *t,
		     struct img_part *p, const char *what,
		     struct vs_error **errp)
{
	blkid_loff_t start = blkid_partition_get_start(par);
	blkid_loff_t size = blkid_partition_get_size(par);
	int partno = blkid_partition_get_partno(par);

	if (start < 0 || size < 0 || partno < 1)
		return vs_error_set(errp, EINVAL,
				    "%s: libblkid returned a partition without "
				    "a valid number, start or size",
				    what);
	*p = (struct img_part){
		.number = (unsigned)partno,
		.start = (uint64_t)start,
		.size = (uint64_t)size,
		.map_size = (uint64_t)size,
	};
	if (blkid_partition_is_extended(par)) {
		p->kind = IMG_PART_EXTENDED;
		/* One logical sector, at least 1 KiB: what kpartx maps. */
		p->map_size = t->sector_size > 2 * SECTOR
				      ? t->sector_size / SECTOR
				      : 2;
		if (p->map_size > p->size)
			p->map_size = p->size;
	} else if (blkid_partition_is_logical(par)) {
		p->kind = IMG_PART_LOGICAL;
	}
	if (!strcmp(t->type, "gpt"))
		copy_str(p->type, sizeof(p->type),
			 blkid_partition_get_type_string(par));
	else
		snprintf(p->type, sizeof(p->type), "0x%02x",
			 (unsigned)blkid_partition_get_type(par) & 0xff);
	copy_str(p->uuid, sizeof(p->uuid), blkid_partition_get_uuid(par));
	copy_str(p->label, sizeof(p->label), blkid_partition_get_name(par));
	return 0;
}

static int read_list(blkid_partlist ls, blkid_parttable tab,
		     struct img_part_table *t, const char *what,
		     struct vs_error **errp)
{
	int n = blkid_partlist_numof_partitions(ls);

	if (n < 0)
		return vs_error_set(errp, EIO,
				    "%s: libblkid cannot count the partitions",
				    what);
	if (n > IMG_PART_MAX)
		return vs_error_set(errp, ENOTSUP,
				    "%s: %d partitions; at most %d are "
				    "supported",
				    what, n, IMG_PART_MAX);
	t->parts = calloc(n ? (size_t)n : 1, sizeof(*t->parts));
	if (!t->parts)
		return vs_error_set(errp, ENOMEM, "%s: out of memory", what);
	for (int i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		int ret;

		if (!par)
			return vs_error_set(errp, EIO,
					    "%s: libblkid lost partition %d",
					    what, i);
		/* A table inside a partition (a BSD disklabel in an MBR
		 * slot): kpartx's slices of slices are not supported; the
		 * partition holding it is still listed. */
		if (blkid_partition_get_table(par) != tab) {
			t->nested++;
			continue;
		}
		ret = read_part(par, t, &t->parts[t->n], what, errp);
		if (ret < 0)
			return ret;
		t->n++;
	}
	qsort(t->parts, t->n, sizeof(*t->parts), cmp_number);
	check_parts(t);
	return 0;
}

static int probe(int fd, const char *what, struct img_part_table *t,
		 struct vs_error **errp)
{
	blkid_probe pr = blkid_new_probe();
	blkid_partlist ls;
	blkid_parttable tab;
	blkid_loff_t size;
	const char *type;
	int ret = 0;

	if (!pr)
		return vs_error_set(errp, ENOMEM, "%s: out of memory", what);
	if (blkid_probe_set_device(pr, fd, 0, 0) < 0) {
		ret = vs_error_set(errp, EIO,
				   "%s: libblkid cannot probe the disk", what);
		goto out;
	}
	size = blkid_probe_get_size(pr);
	if (size < 0) {
		ret = vs_error_set(errp, EIO, "%s: unknown disk size", what);
		goto out;
	}
	t->disk_sectors = (uint64_t)size / SECTOR;
	t->sector_size = blkid_probe_get_sectorsize(pr);
	if (t->sector_size < SECTOR || t->sector_size % SECTOR)
		t->sector_size = SECTOR;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	ls = blkid_probe_get_partitions(pr);
	tab = ls ? blkid_partlist_get_table(ls) : NULL;
	if (!tab) {
		if (has_protective_mbr(fd))
			ret = vs_error_set(errp, EINVAL,
					   "%s: a protective MBR announces a "
					   "GPT, but neither GPT header is "
					   "valid",
					   what);
		goto out; /* no table: an empty list */
	}
	type = blkid_parttable_get_type(tab);
	if (!type || (strcmp(type, "dos") && strcmp(type, "gpt"))) {
		ret = vs_error_set(errp, ENOTSUP,
				   "%s: partition table type '%s' is not "
				   "supported (MBR and GPT are)",
				   what, type ? type : "?");
		goto out;
	}
	copy_str(t->type, sizeof(t->type), type);
	copy_str(t->id, sizeof(t->id), blkid_parttable_get_id(tab));
	ret = read_list(ls, tab, t, what, errp);
	if (!ret && !strcmp(type, "gpt")) {
		long used =
			gpt_entries_in_use(fd, t->sector_size, (uint64_t)size);

		if (used > (long)t->n)
			t->dropped = (size_t)used - t->n;
	}
out:
	blkid_free_probe(pr);
	return ret;
}

int img_part_table_read(int fd, const char *what, struct img_part_table **out,
			struct vs_error **errp)
{
	struct img_part_table *t = calloc(1, sizeof(*t));
	unsigned char first[SECTOR];
	ssize_t got;
	int ret;

	if (!t)
		return vs_error_set(errp, ENOMEM, "%s: out of memory", what);
	/* libblkid says nothing of read errors; a disk that cannot be read
	 * must not look like a disk without a table. */
	got = pread(fd, first, sizeof(first), 0);
	if (got < 0) {
		ret = vs_error_set_errno(errp, errno,
					 "%s: cannot read sector 0", what);
		goto fail;
	}
	ret = probe(fd, what, t, errp);
	if (ret < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	img_part_table_free(t);
	return ret;
}
