/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Atomic helpers that more than one module needs. */
#ifndef VS_COMMON_ATOMIC_H
#define VS_COMMON_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

/* Raise *p to v if it is lower: for sizes that only grow and that
 * writers outside any lock extend concurrently. */
static inline void vs_atomic_max(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_ACQUIRE);

	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE))
		;
}

#endif
