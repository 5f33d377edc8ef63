/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Cleanup attributes: a variable declared `autofree char *p = NULL;` is
 * freed when it goes out of scope, `autoclose int fd = -1;` is closed.
 * Use vs_steal() to hand ownership out of the scope.
 */
#ifndef VS_COMMON_CLEANUP_H
#define VS_COMMON_CLEANUP_H

#include <stdlib.h>
#include <unistd.h>

static inline void vs_freep(void *p)
{
	free(*(void **)p);
}

static inline void vs_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define autofree  __attribute__((cleanup(vs_freep)))
#define autoclose __attribute__((cleanup(vs_closep)))

/* Return *pp and set it to NULL, so that a cleanup attribute skips it. */
#define vs_steal(pp)                          \
	({                                    \
		__typeof__(*(pp)) _v = *(pp); \
		*(pp) = NULL;                 \
		_v;                           \
	})

#define VS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define VS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VS_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Round to a power-of-two alignment. */
#define VS_ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define VS_ALIGN_UP(x, a)   VS_ALIGN_DOWN((x) + (a)-1, (a))
#define VS_IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a)-1)) == 0)

#endif
