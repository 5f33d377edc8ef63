/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img resize: change an image's virtual size, as qemu-img resize. */
#ifndef VS_IMGTOOLS_RESIZE_H
#define VS_IMGTOOLS_RESIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

/* How the size argument reads: "SIZE", "+SIZE" or "-SIZE". */
enum img_resize_how {
	IMG_RESIZE_TO,
	IMG_RESIZE_GROW_BY,
	IMG_RESIZE_SHRINK_BY,
};

struct img_resize_opts {
	const char *format; /* -f; NULL: probe */
	bool shrink;	    /* --shrink: a smaller size is allowed */
	unsigned prealloc;  /* --preallocation: 0 (off) or one
			     * VBD_TRUNC_PREALLOC_* */
	enum img_resize_how how;
	uint64_t amount; /* the size, or what to add or take away */
};

/* Set when img_resize refused to shrink because opts->shrink was not
 * given (the caller adds qemu-img's warning about lost data). */
struct img_resize_result {
	bool shrink_refused;
	uint64_t old_size, new_size;
};

/*
 * Open `path` for writing, work out the new size and resize.  The
 * refusals are qemu-img's: a size that is not positive, a shrink without
 * opts->shrink, preallocation when shrinking.  Returns 0 or -errno with
 * *errp naming the file and the problem.
 */
int img_resize(const char *path, const struct img_resize_opts *opts,
	       struct img_resize_result *res, struct vs_error **errp);

#endif
