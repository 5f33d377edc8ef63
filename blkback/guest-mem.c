/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guest memory regions and bounds-checked address translation. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../common/cleanup.h"
#include "guest-mem.h"

int blkback_guest_mem_add(struct blkback_guest_mem *mem, uint64_t gpa,
			  uint64_t size, uint64_t uva, void *host,
			  struct vs_error **errp)
{
	struct blkback_guest_region *r;

	if (mem->nregions >= BLKBACK_GUEST_MEM_MAX_REGIONS)
		return vs_error_set(errp, EINVAL,
				    "guest memory: more than %d regions",
				    BLKBACK_GUEST_MEM_MAX_REGIONS);
	if (size == 0)
		return vs_error_set(
			errp, EINVAL,
			"guest memory region at 0x%" PRIx64 ": size 0", gpa);
	/* The last byte must be addressable in both address spaces. */
	if (gpa + (size - 1) < gpa || uva + (size - 1) < uva)
		return vs_error_set(errp, EINVAL,
				    "guest memory region at 0x%" PRIx64
				    " (front-end 0x%" PRIx64
				    "): size 0x%" PRIx64
				    " runs past the end of the address space",
				    gpa, uva, size);
	/* Overlapping regions would give one guest address two meanings
	 * (a buffer's data in one, its status byte in the other). */
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct blkback_guest_region *o = &mem->r[i];

		if (gpa <= o->gpa + (o->size - 1) && o->gpa <= gpa + (size - 1))
			return vs_error_set(errp, EINVAL,
					    "guest memory region at 0x%" PRIx64
					    " (size 0x%" PRIx64
					    ") overlaps the one at 0x%" PRIx64
					    " (size 0x%" PRIx64 ")",
					    gpa, size, o->gpa, o->size);
	}
	r = &mem->r[mem->nregions++];
	*r = (struct blkback_guest_region){
		.gpa = gpa,
		.size = size,
		.uva = uva,
		.host = host,
	};
	return 0;
}

int blkback_guest_mem_map(struct blkback_guest_mem *mem, int fd, uint64_t gpa,
			  uint64_t size, uint64_t uva, uint64_t mmap_offset,
			  struct vs_error **errp)
{
	struct stat st;
	uint64_t end;
	void *map;
	int ret;

	if (size == 0 || mmap_offset > UINT64_MAX - size ||
	    mmap_offset + size > SIZE_MAX)
		return vs_error_set(errp, EINVAL,
				    "guest memory region at 0x%" PRIx64
				    ": size 0x%" PRIx64 " at offset 0x%" PRIx64
				    " cannot be mapped",
				    gpa, size, mmap_offset);
	end = mmap_offset + size;
	if (fstat(fd, &st) < 0)
		return vs_error_set_errno(
			errp, errno, "guest memory region at 0x%" PRIx64, gpa);
	/* Guest RAM is a memfd or a file (hugetlbfs, tmpfs): a device or
	 * a pipe has no size we could check. */
	if (!S_ISREG(st.st_mode))
		return vs_error_set(errp, EINVAL,
				    "guest memory region at 0x%" PRIx64
				    ": its fd is not a memory file (mode 0%o)",
				    gpa, (unsigned)(st.st_mode & S_IFMT));
	if ((uint64_t)st.st_size < end)
		return vs_error_set(errp, EINVAL,
				    "guest memory region at 0x%" PRIx64
				    ": its file holds 0x%" PRIx64
				    " bytes, the region ends at 0x%" PRIx64,
				    gpa, (uint64_t)st.st_size, end);
	/* Map from offset 0: mmap_offset need not be page-aligned. */
	map = mmap(NULL, end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return vs_error_set_errno(errp, errno,
					  "cannot map guest memory region at "
					  "0x%" PRIx64 " (0x%" PRIx64 " bytes)",
					  gpa, size);
	ret = blkback_guest_mem_add(mem, gpa, size, uva,
				    (uint8_t *)map + mmap_offset, errp);
	if (ret < 0) {
		munmap(map, end);
		return ret;
	}
	mem->r[mem->nregions - 1].map = map;
	mem->r[mem->nregions - 1].map_len = end;
	return 0;
}

void blkback_guest_mem_clear(struct blkback_guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nregions; i++)
		if (mem->r[i].map)
			munmap(mem->r[i].map, mem->r[i].map_len);
	memset(mem, 0, sizeof(*mem));
}

/* Offset of [a, a + len) inside [base, base + size), or -1. */
static int64_t in_range(uint64_t base, uint64_t size, uint64_t a, uint64_t len)
{
	uint64_t off;

	if (a < base)
		return -1;
	off = a - base;
	if (off >= size || len > size - off)
		return -1;
	return (int64_t)off;
}

void *blkback_guest_mem_gpa(const struct blkback_guest_mem *mem, uint64_t gpa,
			    uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct blkback_guest_region *r = &mem->r[i];
		int64_t off = in_range(r->gpa, r->size, gpa, len);

		if (off >= 0)
			return r->host + off;
	}
	return NULL;
}

void *blkback_guest_mem_uva(const struct blkback_guest_mem *mem, uint64_t uva,
			    uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct blkback_guest_region *r = &mem->r[i];
		int64_t off = in_range(r->uva, r->size, uva, len);

		if (off >= 0)
			return r->host + off;
	}
	return NULL;
}

int blkback_guest_mem_iov(const struct blkback_guest_mem *mem, uint64_t gpa,
			  uint64_t len, struct iovec *iov, unsigned cap,
			  unsigned *n)
{
	while (len > 0) {
		const struct blkback_guest_region *r = NULL;
		uint64_t off = 0, chunk;

		for (unsigned i = 0; i < mem->nregions; i++) {
			int64_t o =
				in_range(mem->r[i].gpa, mem->r[i].size, gpa, 1);
			if (o >= 0) {
				r = &mem->r[i];
				off = (uint64_t)o;
				break;
			}
		}
		if (!r)
			return -EFAULT;
		if (*n >= cap)
			return -ENOBUFS;
		chunk = VS_MIN(len, r->size - off);
		iov[*n].iov_base = r->host + off;
		iov[*n].iov_len = chunk;
		(*n)++;
		len -= chunk;
		/* A buffer may run into the next region, never around the
		 * end of the address space. */
		if (len > 0 && gpa > UINT64_MAX - chunk)
			return -EFAULT;
		gpa += chunk;
	}
	return 0;
}
