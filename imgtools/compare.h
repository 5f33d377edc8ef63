/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img compare: do two disks read the same, as `qemu-img compare`
 * decides it.
 */
#ifndef VS_IMGTOOLS_COMPARE_H
#define VS_IMGTOOLS_COMPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct vbd;
struct vs_progress;

enum img_compare_verdict {
	IMG_CMP_IDENTICAL,
	IMG_CMP_CONTENT,    /* bytes differ at `offset` */
	IMG_CMP_SIZE,	    /* strict: the sizes differ */
	IMG_CMP_STATUS,	    /* strict: block status differs at `offset` */
	IMG_CMP_ERR_STATUS, /* block status failed (qemu-img's exit 3) */
	IMG_CMP_ERR_READ,   /* a read failed (qemu-img's exit 4) */
};

struct img_compare_result {
	enum img_compare_verdict verdict;
	/*
	 * The start of the first 512-byte sector that differs, as qemu-img
	 * reports it (a mismatch is found sector by sector), or where the
	 * block status first differs.
	 */
	uint64_t offset;
	/* Not strict and the sizes differ: the longer disk's tail was
	 * checked for zeros (qemu-img warns before checking it). */
	bool size_mismatch;
};

/*
 * Compare disks `a` and `b`.  Ranges that both sides' block status says
 * are zeros are skipped; a range allocated on one side only must read as
 * zeros there; a longer disk's tail must read as zeros.  With `strict`,
 * different sizes and any difference in block status (allocation, zero,
 * data, a known host offset) are differences too.  `progress` (may be
 * NULL) gets the bytes done of the longer size.  Returns 0 with *res
 * filled (whatever the verdict), or -errno with *errp naming the file
 * and the offset (and res->verdict one of the IMG_CMP_ERR_*).
 */
int img_compare(struct vbd *a, struct vbd *b, bool strict,
		struct vs_progress *progress, struct img_compare_result *res,
		struct vs_error **errp);

#endif
