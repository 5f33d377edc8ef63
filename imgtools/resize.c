/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor img resize: the new size from the argument and the image's
 * current size, qemu-img's refusals, then vbd_truncate.
 */
#include <errno.h>
#include <inttypes.h>

#include "../vbd/vbd.h"
#include "resize.h"

/* The size asked for, checked against the current one. */
static int target_size(const struct img_resize_opts *o, uint64_t cur,
		       uint64_t *out, struct vs_error **errp)
{
	switch (o->how) {
	case IMG_RESIZE_TO: *out = o->amount; break;
	case IMG_RESIZE_GROW_BY:
		if (o->amount > (uint64_t)INT64_MAX - cur)
			return vs_error_set(errp, EFBIG,
					    "%" PRIu64 " + %" PRIu64
					    " bytes is larger than the largest "
					    "image size",
					    cur, o->amount);
		*out = cur + o->amount;
		break;
	case IMG_RESIZE_SHRINK_BY:
		*out = o->amount >= cur ? 0 : cur - o->amount;
		break;
	}
	if (*out == 0)
		return vs_error_set(errp, EINVAL,
				    "New image size must be positive");
	if (*out > INT64_MAX)
		return vs_error_set(errp, EFBIG,
				    "%" PRIu64 " bytes is larger than the "
				    "largest image size",
				    *out);
	return 0;
}

int img_resize(const char *path, const struct img_resize_opts *opts,
	       struct img_resize_result *res, struct vs_error **errp)
{
	struct vbd *vbd;
	uint64_t size = 0;
	unsigned flags = opts->prealloc;
	int ret;

	*res = (struct img_resize_result){0};
	ret = vbd_open_file(path, opts->format, 0, &vbd, errp);
	if (ret < 0)
		return ret;
	res->old_size = vbd_size(vbd);
	ret = target_size(opts, res->old_size, &size, errp);
	if (ret < 0)
		goto out;
	res->new_size = size;
	if (size < res->old_size && !opts->shrink) {
		res->shrink_refused = true;
		ret = vs_error_set(errp, EINVAL,
				   "Use the --shrink option to perform a "
				   "shrink operation.");
		goto out;
	}
	if (size < res->old_size && opts->prealloc) {
		ret = vs_error_set(errp, EINVAL,
				   "Preallocation can only be used for "
				   "growing images");
		goto out;
	}
	if (size < res->old_size)
		flags |= VBD_TRUNC_SHRINK;
	ret = vbd_truncate(vbd, size, flags, errp);
	if (ret == 0) {
		ret = vbd_flush(vbd);
		if (ret < 0)
			vs_error_set_errno(errp, ret, "%s: flush failed", path);
	}
out:
	vbd_close(vbd);
	return ret;
}
