/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Partition tables, read with libblkid and numbered as kpartx numbers
 * them: MBR slots 1-4 keep their slot number, logical partitions of an
 * extended partition count from 5, GPT entries keep their entry index + 1.
 *
 * A table is untrusted input: every partition is checked against the
 * disk (and a logical one against its extended partition) and carries a
 * `problem` when it cannot be mapped.  Listing shows such partitions;
 * mapping refuses the whole table.
 */
#ifndef VS_IMGTOOLS_PART_TABLE_H
#define VS_IMGTOOLS_PART_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

/* kpartx maps at most this many slices of one disk. */
#define IMG_PART_MAX 256

enum img_part_kind {
	IMG_PART_PRIMARY,  /* an MBR slot or a GPT entry */
	IMG_PART_EXTENDED, /* an MBR extended partition (a container) */
	IMG_PART_LOGICAL,  /* inside the extended partition */
};

struct img_part {
	unsigned number; /* kpartx's: 1-4 primary, 5... logical, GPT 1... */
	enum img_part_kind kind;
	/* In 512-byte sectors from the start of the disk, whatever the
	 * disk's logical sector size (dm tables and kpartx count so). */
	uint64_t start;
	uint64_t size;
	/* What a mapping covers: `size`, except for an extended partition,
	 * of which kpartx maps only the first 1 KiB (room for a boot
	 * loader), never the logical partitions again. */
	uint64_t map_size;
	char type[40];	/* "0x83"; a GPT type GUID */
	char uuid[40];	/* GPT partition GUID, MBR "<disk id>-<nn>"; or "" */
	char label[80]; /* GPT partition name, or "" */
	/* Why the partition cannot be mapped ("ends at sector 300000, past
	 * the end of the disk (262144 sectors)"), or "" when it can. */
	char problem[160];
};

struct img_part_table {
	char type[8]; /* "dos" or "gpt"; "" when the disk has no table */
	char id[40];  /* MBR disk id "0x1234abcd", GPT disk GUID */
	uint64_t disk_sectors;	/* whole 512-byte sectors of the disk */
	unsigned sector_size;	/* the disk's logical sector size */
	size_t n;		/* partitions, in kpartx's order: by number */
	struct img_part *parts; /* n entries */
	/* Partitions of tables nested in a partition (a BSD disklabel in
	 * an MBR slot): counted, not listed (not supported). */
	size_t nested;
	/* GPT entries in use that libblkid left out (outside the usable
	 * area of the disk): the table cannot be mapped as it stands. */
	size_t dropped;
};

/*
 * Read the partition table of the disk open on `fd` (a block device or
 * a raw image file; `what` names it in messages).  A disk without a
 * table gives 0 and an empty table (type ""); a table of a type other
 * than MBR ("dos") or GPT fails with -ENOTSUP.  *out is the caller's, to
 * free with img_part_table_free.
 */
int img_part_table_read(int fd, const char *what, struct img_part_table **out,
			struct vs_error **errp);

void img_part_table_free(struct img_part_table *t);

/* How many partitions carry a problem (dropped GPT entries count). */
size_t img_part_table_problems(const struct img_part_table *t);

/*
 * kpartx's name for partition `number` of the disk named `base` ("loop0",
 * "sdb", a device-mapper name "vg-lv"): base, then `delim` ("p" when NULL
 * and base ends in a digit, "" otherwise), then the number.  Returns the
 * length written, or -ENAMETOOLONG when it does not fit in `len` bytes.
 */
int img_part_name(const char *base, const char *delim, unsigned number,
		  char *buf, size_t len);

#endif
