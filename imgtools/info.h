/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img info: what an image is, as a JSON object shaped like
 * qemu-img's "ImageInfo"; with its backing chain, an array of them. */
#ifndef VS_IMGTOOLS_INFO_H
#define VS_IMGTOOLS_INFO_H

#include "../common/error.h"

struct json_object;

/*
 * Backing files img_info_chain follows below the top image at most: the
 * qcow2 driver's own limit on a chain (256 images), plus a base of a
 * format without backing files, so that whatever opens also describes.
 */
#define IMG_INFO_MAX_BACKING 256

/*
 * Open `path` read-only (format `fmt`, or probed when NULL; `vbd_flags`
 * may add VBD_O_SHARE) and describe it.  *out is a new JSON object the
 * caller owns.  Internal snapshots, when the image has any, are its
 * "snapshots" array; a format without them (-ENOTSUP) adds nothing,
 * any other failure to list them fails the call.
 */
int img_info(const char *path, const char *fmt, unsigned vbd_flags,
	     struct json_object **out, struct vs_error **errp);

/*
 * As qemu-img info --backing-chain: img_info for `path`, then for its
 * backing file, and so on down to an image without one.  Each backing
 * file is opened by its "full-backing-filename" (a relative name is
 * relative to the directory of the image that names it) in the format
 * that image records for it (probed when it records none), with the same
 * `vbd_flags`.  *out is a new JSON array of the objects, top first.  A
 * chain that comes back to an image already described (same device and
 * inode), or with more than IMG_INFO_MAX_BACKING backing files, is an
 * error naming the file.
 */
int img_info_chain(const char *path, const char *fmt, unsigned vbd_flags,
		   struct json_object **out, struct vs_error **errp);

#endif
