/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Backup checksums (checksum.h): XXH3-64 from libxxhash. */
#include <endian.h>
/* The state struct on the stack needs the static-linking view. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "checksum.h"

uint64_t lvm_sum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

uint64_t lvm_sum_zero(size_t len)
{
	static const uint8_t zero[65536];
	XXH3_state_t st;

	static uint64_t whole; /* the hash of a whole 64 KiB cluster */
	uint64_t h;

	/* Every zero cluster of a disk needs this: compute it once.  Racing
	 * threads store the same value. */
	if (len == sizeof(zero)) {
		h = __atomic_load_n(&whole, __ATOMIC_RELAXED);
		if (!h) {
			h = XXH3_64bits(zero, len);
			__atomic_store_n(&whole, h, __ATOMIC_RELAXED);
		}
		return h;
	}
	if (len < sizeof(zero))
		return XXH3_64bits(zero, len);
	/* The streaming form gives the same result as the one-shot one. */
	XXH3_64bits_reset(&st);
	while (len) {
		size_t n = len < sizeof(zero) ? len : sizeof(zero);

		XXH3_64bits_update(&st, zero, n);
		len -= n;
	}
	return XXH3_64bits_digest(&st);
}

uint64_t lvm_sum_image(const uint64_t *sums, uint64_t n)
{
	uint64_t le[512];
	XXH3_state_t st;

	/* Little-endian words whatever the host, so that a manifest
	 * checks on any machine. */
	XXH3_64bits_reset(&st);
	while (n) {
		size_t k = n < 512 ? (size_t)n : 512;

		for (size_t i = 0; i < k; i++)
			le[i] = htole64(sums[i]);
		XXH3_64bits_update(&st, le, k * sizeof(le[0]));
		sums += k;
		n -= k;
	}
	return XXH3_64bits_digest(&st);
}
