/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img rebase: give an image another backing file (or none), as
 * qemu-img rebase does.
 */
#ifndef VS_IMGTOOLS_REBASE_H
#define VS_IMGTOOLS_REBASE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct img_rebase_opts {
	const char *format; /* -f; NULL: probe */
	/* -b: the new backing file as it is to be recorded (relative to
	 * the image's directory when relative); "" for none. */
	const char *backing;
	const char *backing_format; /* -F; needed with a non-empty -b */
	bool unsafe;		    /* -u: only the recorded name changes */
	bool force_share;	    /* -U: open the backing files sharing them
				     * with writers */
	bool unsafe_cache;	    /* -t unsafe: no flush before the switch */

	/* Guest bytes compared so far of the image's size; may be NULL. */
	void (*progress)(uint64_t done, uint64_t total, void *opaque);
	void *opaque;
};

/*
 * Rebase `path`.  Safe mode: wherever the image has nothing of its own,
 * what the old backing chain reads and what the new backing file reads
 * are compared, and the image gets the old content where they differ;
 * only then is the new name recorded, so the image reads the same
 * before and after.  Unsafe mode opens the image alone and only changes
 * the name.  Returns 0 or -errno with *errp naming the file and offset.
 */
int img_rebase(const char *path, const struct img_rebase_opts *opts,
	       struct vs_error **errp);

#endif
