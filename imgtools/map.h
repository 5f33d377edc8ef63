/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img map: where the bytes of a disk come from, as `qemu-img map`
 * reports it — range by range, through the whole backing chain.
 */
#ifndef VS_IMGTOOLS_MAP_H
#define VS_IMGTOOLS_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct vbd;

/* One range of the map: qemu-img's MapEntry. */
struct img_map_entry {
	uint64_t start, length;
	unsigned depth; /* the image of the chain that decided (0 = top) */
	bool present;	/* allocated in some image of the chain */
	bool zero;	/* reads as zeros */
	bool data;	/* stored (at `offset` when known) */
	int64_t offset; /* host offset in the image at `depth`, -1 if none */
};

/*
 * The merging rules of the two output styles.  JSON merges neighbours
 * only when every field agrees (offsets continuing each other); the
 * human table prints data ranges only, so after each printed range the
 * next one that holds no data is folded into "zeros" to let more of
 * them merge, exactly as qemu-img 7.2 does.
 */
enum img_map_style {
	IMG_MAP_JSON,
	IMG_MAP_HUMAN,
};

/*
 * Called for each merged range in order; `last` is true for the final
 * one.  A negative return stops the walk and is returned by img_map.
 */
typedef int (*img_map_fn)(const struct img_map_entry *e, bool last,
			  void *opaque);

/*
 * Walk [start, start + max_length) of `vbd`, clipped to its size
 * (max_length UINT64_MAX: to the end), and call `fn` for each merged
 * range.  As qemu-img does, a start at or past the end still produces
 * one entry of length 0.  Returns 0, fn's negative return, or -errno
 * with *errp naming the file and offset where block status failed.
 */
int img_map(struct vbd *vbd, uint64_t start, uint64_t max_length,
	    enum img_map_style style, img_map_fn fn, void *opaque,
	    struct vs_error **errp);

/*
 * The status of [offset, offset + len) of `vbd` as one map entry (its
 * length may be shorter): the layer of the chain that decides it, as
 * qemu-img's get_block_status finds it.  Returns 0 or -errno.
 */
int img_map_status(struct vbd *vbd, uint64_t offset, uint64_t len,
		   struct img_map_entry *e);

#endif
