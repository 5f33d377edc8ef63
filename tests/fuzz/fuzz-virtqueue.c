/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the virtqueue descriptor walker: a guest owns
 * the descriptor table, the available ring and every buffer address, so
 * no content of guest memory may make the walker touch memory outside
 * the regions, loop, or hand out a chain that breaks its invariants.
 *
 * Input: 16 bytes of parameters, then the initial content of an 8 KiB
 * "guest memory" that holds the rings (at fixed places) and whatever
 * the descriptors point to.  The memory is split into two regions whose
 * guest addresses come from the parameters (adjacent or not, near the
 * top of the address space or not).
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blkback/virtqueue.h"

#define MEM_SIZE 8192u
#define IOV_CAP	 24u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *mem_base;

static void check_range(const void *p, size_t len)
{
	const uint8_t *b = p;

	assert(b >= mem_base && b <= mem_base + MEM_SIZE);
	assert(len <= (size_t)(mem_base + MEM_SIZE - b));
	if (len) {
		/* Touch both ends: ASan sees any escape. */
		volatile uint8_t x = b[0];
		x ^= b[len - 1];
		(void)x;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blkback_guest_mem gm = {0};
	struct iovec iov[IOV_CAP];
	struct blkback_vq vq;
	uint8_t p[16] = {0};
	uint64_t gpa0, gpa1, ring_bytes;
	unsigned num, split;
	int ret;

	memcpy(p, data, size < sizeof(p) ? size : sizeof(p));
	mem_base = aligned_alloc(64, MEM_SIZE);
	if (!mem_base)
		return 0;
	memset(mem_base, 0, MEM_SIZE);
	if (size > sizeof(p))
		memcpy(mem_base, data + sizeof(p),
		       size - sizeof(p) < MEM_SIZE ? size - sizeof(p)
						   : MEM_SIZE);

	num = 1u << (p[0] % 8); /* 1..128 */
	ring_bytes = 16u * num + 6 + 2u * num + 8 + 6 + 8u * num;
	/* The rings stay in region 0; region 1 follows it. */
	split = (unsigned)ring_bytes + 64u * p[2];
	if (split >= MEM_SIZE)
		split = MEM_SIZE / 2 > ring_bytes ? MEM_SIZE / 2
						  : (unsigned)ring_bytes;
	memcpy(&gpa0, p + 4, sizeof(gpa0));
	if (p[1] & 4) /* low addresses, where descriptors often point */
		gpa0 &= 0xffff;
	if (p[1] & 8)
		gpa0 = UINT64_MAX - split + 1; /* ends at the very top */
	gpa1 = p[1] & 16 ? gpa0 + split : (uint64_t)p[12] << 12;
	if (blkback_guest_mem_add(&gm, gpa0, split, 0x10000, mem_base, NULL) <
	    0)
		goto out;
	/* May fail (overflow): then there is one region. */
	(void)blkback_guest_mem_add(&gm, gpa1, MEM_SIZE - split,
				    0x10000 + split, mem_base + split, NULL);

	{
		uint64_t desc = 0x10000, avail = desc + 16u * num;
		uint64_t used = (avail + 6 + 2u * num + 7) & ~7ull;

		ret = blkback_vq_init(&vq, &gm, num, desc, avail, used,
				      (uint16_t)(p[3] | p[13] << 8), "fuzz",
				      NULL);
	}
	if (ret < 0)
		goto out;
	vq.event_idx = p[1] & 1;
	vq.indirect = p[1] & 2;

	for (unsigned round = 0; round < 2 * num + 4; round++) {
		struct blkback_vq_chain c;
		uint64_t out = 0, in = 0;

		ret = blkback_vq_pop(&vq, &c, iov, IOV_CAP);
		if (ret < 0) {
			assert(vq.broken);
			assert(blkback_vq_pop(&vq, &c, iov, IOV_CAP) == -EIO);
			break;
		}
		if (ret == 0) {
			if (!blkback_vq_enable_notify(&vq))
				break;
			continue;
		}
		assert(c.head < num);
		assert(c.n_out + c.n_in <= IOV_CAP);
		if (c.status)
			check_range(c.status, 1);
		else
			assert(c.error == 0);
		for (unsigned i = 0; i < c.n_out + c.n_in; i++) {
			check_range(iov[i].iov_base, iov[i].iov_len);
			assert(iov[i].iov_len > 0);
			if (i < c.n_out)
				out += iov[i].iov_len;
			else
				in += iov[i].iov_len;
		}
		if (!c.error) {
			assert(out == c.out_len && in == c.in_len);
			/* The status is the last writable byte. */
			if (c.status)
				assert((uint8_t *)iov[c.n_out + c.n_in - 1]
						       .iov_base +
					       iov[c.n_out + c.n_in - 1]
						       .iov_len -
					       1 ==
				       c.status);
		}
		blkback_vq_push(&vq, c.head, (uint32_t)in);
		(void)blkback_vq_need_signal(&vq);
	}
out:
	free(mem_base);
	return 0;
}
