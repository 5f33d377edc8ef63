/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Xen virtual-device numbers (docs/misc/vbd-interface in Xen).  A guest
 * sees a disk by this number, not by its name, so two spellings of one
 * disk must map to one number and anything we cannot map is refused here,
 * before a domain is built around it.
 *
 *   xvdX[N], dN[pM]  202 << 8 | disk << 4 | part   disk <= 15, part <= 15
 *                    1 << 28 | disk << 8 | part    disk < 2^20, part < 256
 *   hdX[N]           3 << 8 | disk << 6 | part     disks 0-1, part <= 63
 *                    22 << 8 | (disk-2) << 6 | part  disks 2-3
 *   sdX[N]           8 << 8 | disk << 4 | part     disk <= 15, part <= 15
 *
 * Disk letters count in bijective base 26 (a = 0, z = 25, aa = 26).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "diskspec.h"

#define XVD_MAX_DISK ((1L << 20) - 1)
#define XVD_MAX_PART 255L
#define HD_MAX_DISK  3L
#define HD_MAX_PART  63L
#define SD_MAX_DISK  15L
#define SD_MAX_PART  15L

enum vdev_kind { VDEV_XVD, VDEV_HD, VDEV_SD };

/* Disk letters.  The bound is checked at every step, so that a long run
 * of letters cannot overflow. */
static bool parse_letters(const char **pp, long max, long *disk)
{
	const char *p = *pp;
	long n = -1;

	if (*p < 'a' || *p > 'z')
		return false;
	for (; *p >= 'a' && *p <= 'z'; p++) {
		n = (n + 1) * 26 + (*p - 'a');
		if (n > max)
			return false;
	}
	*pp = p;
	*disk = n;
	return true;
}

/* A decimal number without sign or leading zeros ("0" itself is fine
 * where zero_ok), bounded by max at every digit. */
static bool parse_number(const char **pp, long max, bool zero_ok, long *out)
{
	const char *p = *pp;
	long n = 0;

	if (*p < '0' || *p > '9')
		return false;
	if (*p == '0') {
		if (!zero_ok || (p[1] >= '0' && p[1] <= '9'))
			return false;
		*pp = p + 1;
		*out = 0;
		return true;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > max)
			return false;
	}
	*pp = p;
	*out = n;
	return true;
}

/* Letters and an optional partition.  An explicit partition 0 ("xvda0")
 * is refused, as xl does: the whole disk is written without a number. */
static bool parse_lettered(const char *p, long max_disk, long max_part,
			   long *disk, long *part)
{
	if (!parse_letters(&p, max_disk, disk))
		return false;
	*part = 0;
	if (!*p)
		return true;
	return parse_number(&p, max_part, false, part) && !*p;
}

/* "dN" or "dNpM": vbd-interface lists both "d0" and "d0p0" for the
 * whole of disk 0, so here an explicit partition 0 is allowed. */
static bool parse_dp(const char *p, long *disk, long *part)
{
	if (!parse_number(&p, XVD_MAX_DISK, true, disk))
		return false;
	*part = 0;
	if (!*p)
		return true;
	if (*p++ != 'p')
		return false;
	return parse_number(&p, XVD_MAX_PART, true, part) && !*p;
}

static long encode(enum vdev_kind kind, long disk, long part)
{
	switch (kind) {
	case VDEV_HD:
		return (disk < 2 ? 3L : 22L) << 8 | (disk & 1) << 6 | part;
	case VDEV_SD: return 8L << 8 | disk << 4 | part;
	case VDEV_XVD: break;
	}
	if (disk <= 15 && part <= 15)
		return 202L << 8 | disk << 4 | part;
	return 1L << 28 | disk << 8 | part;
}

static bool parse_vdev(const char *vdev, enum vdev_kind *kind, long *disk,
		       long *part)
{
	if (!strncmp(vdev, "xvd", 3)) {
		*kind = VDEV_XVD;
		return parse_lettered(vdev + 3, XVD_MAX_DISK, XVD_MAX_PART,
				      disk, part);
	}
	if (!strncmp(vdev, "hd", 2)) {
		*kind = VDEV_HD;
		return parse_lettered(vdev + 2, HD_MAX_DISK, HD_MAX_PART, disk,
				      part);
	}
	if (!strncmp(vdev, "sd", 2)) {
		*kind = VDEV_SD;
		return parse_lettered(vdev + 2, SD_MAX_DISK, SD_MAX_PART, disk,
				      part);
	}
	if (vdev[0] == 'd') {
		*kind = VDEV_XVD;
		return parse_dp(vdev + 1, disk, part);
	}
	return false;
}

long vbd_vdev_to_devnum(const char *vdev, int *disk, int *part)
{
	enum vdev_kind kind;
	long d, p;

	if (!vdev || !parse_vdev(vdev, &kind, &d, &p))
		return -EINVAL;
	if (disk)
		*disk = (int)d;
	if (part)
		*part = (int)p;
	return encode(kind, d, p);
}
