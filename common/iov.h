/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers for scatter-gather lists (struct iovec arrays). */
#ifndef VS_COMMON_IOV_H
#define VS_COMMON_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Total bytes in the list. */
size_t vs_iov_size(const struct iovec *iov, int iovcnt);

/* Copy between a list (starting `skip` bytes in) and a flat buffer.
 * Return the number of bytes copied (less than len at the list's end). */
size_t vs_iov_to_buf(const struct iovec *iov, int iovcnt, size_t skip,
		     void *buf, size_t len);
size_t vs_iov_from_buf(const struct iovec *iov, int iovcnt, size_t skip,
		       const void *buf, size_t len);
size_t vs_iov_memset(const struct iovec *iov, int iovcnt, size_t skip, int c,
		     size_t len);

/*
 * Describe bytes [skip, skip+len) of `src` in `dst` (which has room for
 * `dst_max` entries), without copying data.  Returns the number of entries
 * used, or -1 if `dst_max` is too small or the range runs past the end.
 */
int vs_iov_slice(struct iovec *dst, int dst_max, const struct iovec *src,
		 int src_cnt, size_t skip, size_t len);

/* True when every base address and length is a multiple of `align`. */
bool vs_iov_is_aligned(const struct iovec *iov, int iovcnt, size_t align);

/* True when every byte in the list is zero. */
bool vs_iov_is_zero(const struct iovec *iov, int iovcnt);

/* True when every byte of buf is zero (fast path for large buffers). */
bool vs_buf_is_zero(const void *buf, size_t len);

#endif
