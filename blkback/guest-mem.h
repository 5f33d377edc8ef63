/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest memory as a vhost-user front-end shares it: up to
 * BLKBACK_GUEST_MEM_MAX_REGIONS regions, each known by its guest
 * physical address (what descriptors hold), by the front-end's virtual
 * address (what SET_VRING_ADDR holds) and by where we mapped it.
 *
 * Every lookup is bounds-checked against one region: an address the
 * guest gives is never turned into a pointer outside what we mapped.
 * The table is built once per SET_MEM_TABLE and is immutable while any
 * queue runs, so lookups take no lock.
 */
#ifndef VS_BLKBACK_GUEST_MEM_H
#define VS_BLKBACK_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/error.h"

/* VHOST_MEMORY_BASELINE_NREGIONS: what a front-end may send without
 * CONFIGURE_MEM_SLOTS, which we do not offer. */
#define BLKBACK_GUEST_MEM_MAX_REGIONS 8

struct blkback_guest_region {
	uint64_t gpa;  /* guest physical address of the first byte */
	uint64_t size; /* bytes, > 0 */
	uint64_t uva;  /* the front-end's virtual address of it */
	uint8_t *host; /* our address of it */
	void *map;     /* what to munmap (NULL: not ours to unmap) */
	size_t map_len;
};

struct blkback_guest_mem {
	unsigned nregions;
	struct blkback_guest_region r[BLKBACK_GUEST_MEM_MAX_REGIONS];
};

/*
 * Add a region already in our address space (unit tests, the fuzz
 * target).  Refuses a full table, size 0, ranges whose end overflows
 * and guest ranges that overlap another region's.
 */
int blkback_guest_mem_add(struct blkback_guest_mem *mem, uint64_t gpa,
			  uint64_t size, uint64_t uva, void *host,
			  struct vs_error **errp);

/*
 * Map `size` bytes at `mmap_offset` of `fd` (MAP_SHARED) and add them.
 * The fd is not closed.  It must be a regular file (memfd, hugetlbfs)
 * long enough that touching the region cannot raise SIGBUS.
 */
int blkback_guest_mem_map(struct blkback_guest_mem *mem, int fd, uint64_t gpa,
			  uint64_t size, uint64_t uva, uint64_t mmap_offset,
			  struct vs_error **errp);

/* Unmap what was mapped and empty the table. */
void blkback_guest_mem_clear(struct blkback_guest_mem *mem);

/* Our pointer to [gpa, gpa + len) if it lies in one region, else NULL. */
void *blkback_guest_mem_gpa(const struct blkback_guest_mem *mem, uint64_t gpa,
			    uint64_t len);
/* The same for the front-end's virtual addresses (ring addresses). */
void *blkback_guest_mem_uva(const struct blkback_guest_mem *mem, uint64_t uva,
			    uint64_t len);

/*
 * Append [gpa, gpa + len) to iov[*n..cap) as one iovec per region it
 * crosses.  -EFAULT if a byte of it is not guest memory, -ENOBUFS if
 * cap is reached first; *n then says how many were filled.  len 0 adds
 * nothing.
 */
int blkback_guest_mem_iov(const struct blkback_guest_mem *mem, uint64_t gpa,
			  uint64_t len, struct iovec *iov, unsigned cap,
			  unsigned *n);

#endif
