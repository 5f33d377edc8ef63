/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating qcow2 images, as `qemu-img create -f qcow2` makes them.
 *
 * The vbd_driver `create` callback of the qcow2 driver.  `options` is
 * qemu-img's -o text (NULL or "" for the defaults) with qemu-img's option
 * names: compat, cluster_size, refcount_bits, lazy_refcounts,
 * extended_l2, compression_type, preallocation, backing_file,
 * backing_fmt.  An unknown option, or a known one with a bad value, is an
 * error naming it.  The image is locked before it is truncated, so an
 * image in use is refused before a byte of it is lost.
 */
#ifndef VS_COW_QCOW2_CREATE_H
#define VS_COW_QCOW2_CREATE_H

#include <stdint.h>

#include "../common/error.h"

int qcow2_create(const char *path, uint64_t size, const char *options,
		 struct vs_error **errp);

#endif
