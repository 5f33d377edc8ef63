/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "iov.h"

size_t vs_iov_size(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Walk the list from `skip`, calling fn on each piece of up to len bytes. */
#define IOV_WALK(iov, iovcnt, skip, len, base, chunk, done, body)         \
	do {                                                              \
		size_t _skip = (skip);                                    \
		(done) = 0;                                               \
		for (int _i = 0; _i < (iovcnt) && (done) < (len); _i++) { \
			if (_skip >= (iov)[_i].iov_len) {                 \
				_skip -= (iov)[_i].iov_len;               \
				continue;                                 \
			}                                                 \
			char *base = (char *)(iov)[_i].iov_base + _skip;  \
			size_t chunk = (iov)[_i].iov_len - _skip;         \
			if (chunk > (len) - (done))                       \
				chunk = (len) - (done);                   \
			_skip = 0;                                        \
			body;                                             \
			(done) += chunk;                                  \
		}                                                         \
	} while (0)

size_t vs_iov_to_buf(const struct iovec *iov, int iovcnt, size_t skip,
		     void *buf, size_t len)
{
	size_t done;

	IOV_WALK(iov, iovcnt, skip, len, base, chunk, done,
		 memcpy((char *)buf + done, base, chunk));
	return done;
}

size_t vs_iov_from_buf(const struct iovec *iov, int iovcnt, size_t skip,
		       const void *buf, size_t len)
{
	size_t done;

	IOV_WALK(iov, iovcnt, skip, len, base, chunk, done,
		 memcpy(base, (const char *)buf + done, chunk));
	return done;
}

size_t vs_iov_memset(const struct iovec *iov, int iovcnt, size_t skip, int c,
		     size_t len)
{
	size_t done;

	IOV_WALK(iov, iovcnt, skip, len, base, chunk, done,
		 memset(base, c, chunk));
	return done;
}

int vs_iov_slice(struct iovec *dst, int dst_max, const struct iovec *src,
		 int src_cnt, size_t skip, size_t len)
{
	size_t done;
	int n = 0;

	if (len == 0)
		return 0;
	IOV_WALK(src, src_cnt, skip, len, base, chunk, done, {
		if (n == dst_max)
			return -1;
		dst[n].iov_base = base;
		dst[n].iov_len = chunk;
		n++;
	});
	return done == len ? n : -1;
}

bool vs_iov_is_aligned(const struct iovec *iov, int iovcnt, size_t align)
{
	for (int i = 0; i < iovcnt; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

bool vs_buf_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* Check the first 16 bytes by hand, then compare the buffer with
	 * itself shifted by 16: equal and zero-prefixed means all zero. */
	if (len < 16) {
		for (size_t i = 0; i < len; i++)
			if (p[i])
				return false;
		return true;
	}
	for (size_t i = 0; i < 16; i++)
		if (p[i])
			return false;
	return memcmp(p, p + 16, len - 16) == 0;
}

bool vs_iov_is_zero(const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++)
		if (!vs_buf_is_zero(iov[i].iov_base, iov[i].iov_len))
			return false;
	return true;
}
