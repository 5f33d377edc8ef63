/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img info: what an image is, as a JSON object shaped like
 * qemu-img's "ImageInfo". */
#ifndef VS_IMGTOOLS_INFO_H
#define VS_IMGTOOLS_INFO_H

#include "../common/error.h"

struct json_object;

/*
 * Open `path` read-only (format `fmt`, or probed when NULL; `vbd_flags`
 * may add VBD_O_SHARE) and describe it.  *out is a new JSON object the
 * caller owns.
 */
int img_info(const char *path, const char *fmt, unsigned vbd_flags,
	     struct json_object **out, struct vs_error **errp);

#endif
