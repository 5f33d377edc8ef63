/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img commit: write an overlay's data into its backing file (or an
 * image further down its chain), as qemu-img commit does.
 */
#ifndef VS_IMGTOOLS_COMMIT_H
#define VS_IMGTOOLS_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

/* Images a chain walk follows at most (the qcow2 driver's own limit). */
#define IMG_CHAIN_MAX 256

struct img_commit_opts {
	const char *format; /* -f; NULL: probe */
	/* -b: the image of the chain to commit into, by the name the chain
	 * records or by a path to the same file; NULL: the backing file.
	 * Giving it implies `keep` (the images in between no longer read
	 * as before, so the top one must keep its data). */
	const char *base;
	bool keep;	  /* -d: leave the top image's data in place */
	bool force_share; /* -U: read the chain sharing it with writers */
	bool unsafe;	  /* -t unsafe: no flush at the end */

	/* Guest bytes done so far of the top image's size; may be NULL. */
	void (*progress)(uint64_t done, uint64_t total, void *opaque);
	void *opaque;
};

/*
 * Commit `path`: every range decided above the base (data, and zeros
 * that hide what is below) is written into the base, grown first to the
 * top image's size if it is smaller; then, unless kept, the top image is
 * emptied (vbd_make_empty) so that the base shows through.  Returns 0 or
 * -errno with *errp naming the file and the offset.
 */
int img_commit(const char *path, const struct img_commit_opts *opts,
	       struct vs_error **errp);

/*
 * The path a backing file name recorded in `image` is opened by: a
 * relative name is relative to the image's directory.  Returns a new
 * string, or NULL when out of memory.
 */
char *img_backing_path(const char *image, const char *name);

#endif
