/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "../vbd/vbd.h"
#include "map.h"

int img_map_status(struct vbd *vbd, uint64_t offset, uint64_t len,
		   struct img_map_entry *e)
{
	struct vbd_extent ext;
	int ret = vbd_block_status(vbd, offset, len, &ext);

	if (ret < 0)
		return ret;
	*e = (struct img_map_entry){
		.start = offset,
		.length = ext.length,
		.depth = ext.depth,
		.present = ext.flags & VBD_STATUS_ALLOCATED,
		.zero = ext.flags & VBD_STATUS_ZERO,
		.data = ext.flags & VBD_STATUS_DATA,
		.offset = ext.host_offset,
	};
	return 0;
}

/* Whether `next` continues `cur` as one entry.  The image file is the
 * same exactly when the depth is (and an offset is known). */
static bool mergeable(const struct img_map_entry *cur,
		      const struct img_map_entry *next)
{
	if (cur->length == 0)
		return false;
	if (cur->zero != next->zero || cur->data != next->data ||
	    cur->depth != next->depth || cur->present != next->present ||
	    (cur->offset < 0) != (next->offset < 0))
		return false;
	return cur->offset < 0 ||
	       (uint64_t)cur->offset + cur->length == (uint64_t)next->offset;
}

int img_map(struct vbd *vbd, uint64_t start, uint64_t max_length,
	    enum img_map_style style, img_map_fn fn, void *opaque,
	    struct vs_error **errp)
{
	uint64_t size = vbd_size(vbd), end = size;
	struct img_map_entry cur = {.start = start, .offset = -1}, next;
	int ret;

	if (max_length != UINT64_MAX && start <= size &&
	    max_length < size - start)
		end = start + max_length;
	while (cur.start + cur.length < end) {
		uint64_t pos = cur.start + cur.length;

		ret = img_map_status(vbd, pos, end - pos, &next);
		if (ret < 0)
			return vs_error_set_errno(
				errp, -ret,
				"%s: could not read the block "
				"status at offset %" PRIu64,
				vbd_filename(vbd), pos);
		if (mergeable(&cur, &next)) {
			cur.length += next.length;
			continue;
		}
		if (cur.length > 0) {
			ret = fn(&cur, false, opaque);
			if (ret < 0)
				return ret;
			/* The table shows data only: fold what it does not
			 * show into one kind so that it merges. */
			if (style == IMG_MAP_HUMAN &&
			    (!next.data || next.zero)) {
				next.data = false;
				next.zero = true;
			}
		}
		cur = next;
	}
	return fn(&cur, true, opaque);
}
