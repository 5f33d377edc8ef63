/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VDI driver (VirtualBox images, version 1.1, fixed and dynamic):
 * open, reads, writes, zeroes, discard, block status, info, probe.
 * Creating is in vdi-create.c, the check in vdi-check.c, the header in
 * vdi-header.c.
 *
 * The image file is a raw vbd under this one.  The whole block map is
 * kept in memory (the header check bounds it by the file's size).  New
 * blocks go at the end of the data area, written whole (zeros around the
 * guest's bytes), in a crash-safe order: data and the header's count of
 * allocated blocks, fdatasync, then the map entries.  The data indices
 * stay dense (0 .. next_index-1, as VirtualBox and qemu expect: qemu adds
 * its next block at index blocks_allocated), so freeing a block moves the
 * last one into its place, and the count only goes down once the map no
 * longer uses what it gives back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/atomic.h"
#include "../../common/cleanup.h"
#include "../../common/iov.h"
#include "../../common/log.h"
#include "vdi.h"

static struct vdi *vdi_of(struct vbd *vbd)
{
	return vbd->opaque;
}

static uint32_t entry_get(const struct vdi *s, uint32_t blk)
{
	return __atomic_load_n(&s->bmap[blk], __ATOMIC_ACQUIRE);
}

static uint64_t file_size_get(const struct vdi *s)
{
	return __atomic_load_n(&s->file_size, __ATOMIC_ACQUIRE);
}

/* Open. */

static int read_header(struct vdi *s, struct vs_error **errp)
{
	uint8_t buf[VDI_HEADER_BYTES] = {0};
	size_t len = (size_t)VS_MIN(s->file_size, (uint64_t)sizeof(buf));
	int ret = len ? vbd_pread(s->file, 0, buf, len) : 0;

	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the header at "
					  "offset 0",
					  s->filename);
	return vdi_header_parse(buf, s->file_size, s->filename, &s->h, errp);
}

static void describe_bad(const struct vdi *s, uint32_t i, const char *why,
			 char *buf, size_t len)
{
	snprintf(buf, len,
		 "block map entry %u at offset 0x%" PRIx64 " is %u: %s (%u "
		 "blocks, file size %" PRIu64 ")",
		 i, s->h.offset_bmap + (uint64_t)i * 4, entry_get(s, i), why,
		 s->h.blocks_in_image, file_size_get(s));
}

/*
 * Every entry checked once: in range, inside the file, no data block
 * used twice.  Bad entries fail the reads that reach them; the first is
 * kept for the message.  Also finds the next free data index.
 */
static int scan_map(struct vdi *s)
{
	uint32_t n = s->h.blocks_in_image, next = s->h.blocks_allocated;
	autofree uint8_t *seen = calloc(n / 8 + 1, 1);

	if (!seen)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t e = s->bmap[i];

		if (!VDI_BMAP_IS_DATA(e))
			continue;
		if (vdi_entry_problem(&s->h, e, s->file_size) ||
		    (seen[e / 8] & (1u << (e % 8)))) {
			if (!s->bad_entries++)
				s->first_bad = i;
			continue;
		}
		seen[e / 8] |= (uint8_t)(1u << (e % 8));
		if (e >= next)
			next = e + 1;
	}
	s->next_index = next;
	return 0;
}

static int read_map(struct vdi *s, struct vs_error **errp)
{
	size_t bytes = (size_t)s->h.blocks_in_image * 4;
	int ret;

	/* The header check put the map inside the file: a hostile count
	 * costs at most as much memory as the file is large. */
	s->bmap = malloc(bytes ? bytes : 4);
	if (!s->bmap)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = bytes ? vbd_pread(s->file, s->h.offset_bmap, s->bmap, bytes) : 0;
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the block map at "
					  "offset 0x%x",
					  s->filename, s->h.offset_bmap);
	for (uint32_t i = 0; i < s->h.blocks_in_image; i++)
		s->bmap[i] = vdi_le32((const uint8_t *)&s->bmap[i]);
	if (scan_map(s) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	return 0;
}

static int open_write(struct vbd *vbd, struct vdi *s, struct vs_error **errp)
{
	char why[256];

	if (s->bad_entries && !(vbd->flags & VBD_O_REPAIR)) {
		describe_bad(s, s->first_bad,
			     vdi_entry_problem(&s->h, s->bmap[s->first_bad],
					       s->file_size)
				     ?: "a data block also used by another "
					"entry",
			     why, sizeof(why));
		return vs_error_set(errp, EIO,
				    "%s: %s; %" PRIu64 " bad entries: the "
				    "image opens read-only ('vstor img check "
				    "-r all' repairs it)",
				    s->filename, why, s->bad_entries);
	}
	s->rmap = malloc(((size_t)s->h.blocks_in_image + 1) * 4);
	if (!s->rmap)
		return vs_error_set(errp, ENOMEM, "out of memory");
	memset(s->rmap, 0xff, ((size_t)s->h.blocks_in_image + 1) * 4);
	for (uint32_t i = 0; i < s->h.blocks_in_image; i++) {
		uint32_t e = s->bmap[i];

		if (VDI_BMAP_IS_DATA(e) &&
		    !vdi_entry_problem(&s->h, e, s->file_size) &&
		    s->rmap[e] == VDI_RMAP_NONE)
			s->rmap[e] = i;
	}
	/* Pads new blocks and zeroes old ones; calloc maps it lazily. */
	s->zero_buf = calloc(1, s->h.block_size);
	if (!s->zero_buf || pthread_mutex_init(&s->alloc_lock, NULL))
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (pthread_rwlock_init(&s->move_lock, NULL)) {
		pthread_mutex_destroy(&s->alloc_lock);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	s->writable = true;
	return 0;
}

static void vdi_free(struct vdi *s)
{
	vbd_close(s->file);
	if (s->writable) {
		pthread_mutex_destroy(&s->alloc_lock);
		pthread_rwlock_destroy(&s->move_lock);
	}
	free(s->bmap);
	free(s->rmap);
	free(s->block_buf);
	free(s->zero_buf);
	free(s);
}

static int open_layers(struct vbd *vbd, const struct vbd_spec *spec,
		       struct vdi *s, struct vs_error **errp)
{
	int ret;

	ret = vbd_open_host_file(vbd, spec, vbd->filename, &s->file, errp);
	if (ret < 0)
		return ret;
	s->file_size = vbd_size(s->file);
	ret = read_header(s, errp);
	if (ret == 0)
		ret = read_map(s, errp);
	if (ret == 0 && !vbd->readonly)
		ret = open_write(vbd, s, errp);
	return ret;
}

static int vdi_open(struct vbd *vbd, const struct vbd_spec *spec,
		    struct vs_error **errp)
{
	struct vdi *s = calloc(1, sizeof(*s));
	char why[256];
	int ret;

	if (!s)
		return vs_error_set(errp, ENOMEM, "out of memory");
	s->filename = vbd->filename;
	ret = open_layers(vbd, spec, s, errp);
	if (ret < 0) {
		vdi_free(s);
		return ret;
	}
	s->block_bits = (uint32_t)__builtin_ctz(s->h.block_size);
	/* Whole sectors, as qemu counts the disk. */
	s->size = s->h.disk_size & ~(uint64_t)(VDI_SECTOR - 1);
	vbd->size = s->size;
	vbd->cluster_size = s->h.block_size;
	vbd->opaque = s;
	if (s->bad_entries && vbd->readonly) {
		describe_bad(s, s->first_bad,
			     vdi_entry_problem(&s->h, s->bmap[s->first_bad],
					       s->file_size)
				     ?: "a data block also used by another "
					"entry",
			     why, sizeof(why));
		vs_warn("%s: %s; %" PRIu64 " bad block map entries: the "
			"image is read-only, and reads through an entry out "
			"of range or past the end of the file fail",
			vbd->filename, why, s->bad_entries);
	}
	return 0;
}

static void vdi_close(struct vbd *vbd)
{
	vdi_free(vdi_of(vbd));
}

/* Mapping guest ranges. */

enum run_kind { RUN_ZERO, RUN_DATA, RUN_BAD };

struct run {
	enum run_kind kind;
	uint64_t host; /* RUN_DATA: file offset of the first byte */
	uint64_t len;  /* guest bytes with this mapping */
	uint32_t blk;  /* the first guest block */
};

/*
 * The longest run from `pos` (at most `len` bytes) that reads as zeros,
 * or that is stored in consecutive data blocks.  Callers that act on
 * RUN_DATA hold move_lock (when writable), so the blocks stay put.
 */
static void map_run(const struct vdi *s, uint64_t pos, uint64_t len,
		    struct run *r)
{
	uint64_t bs = s->h.block_size, fsize = file_size_get(s);
	uint32_t blk = (uint32_t)(pos >> s->block_bits);
	uint64_t inoff = pos & (bs - 1);
	uint32_t e = entry_get(s, blk);

	r->blk = blk;
	r->len = VS_MIN(len, bs - inoff);
	if (!VDI_BMAP_IS_DATA(e)) {
		r->kind = RUN_ZERO;
		while (r->len < len && !VDI_BMAP_IS_DATA(entry_get(s, ++blk)))
			r->len = VS_MIN(len, r->len + bs);
		return;
	}
	if (vdi_entry_problem(&s->h, e, fsize)) {
		r->kind = RUN_BAD;
		return;
	}
	r->kind = RUN_DATA;
	r->host = vdi_data_offset(&s->h, e) + inoff;
	while (r->len < len) {
		uint32_t n = entry_get(s, ++blk);

		if (n != ++e || vdi_entry_problem(&s->h, n, fsize))
			break;
		r->len = VS_MIN(len, r->len + bs);
	}
}

static int bad_entry(const struct vdi *s, uint32_t blk)
{
	char why[256];

	describe_bad(
		s, blk,
		vdi_entry_problem(&s->h, entry_get(s, blk), file_size_get(s))
			?: "unusable",
		why, sizeof(why));
	vs_log(VS_LOG_ERROR, "vdi", "%s: %s", s->filename, why);
	return -EIO;
}

static void lock_shared(struct vdi *s)
{
	if (s->writable)
		pthread_rwlock_rdlock(&s->move_lock);
}

static void unlock_shared(struct vdi *s)
{
	if (s->writable)
		pthread_rwlock_unlock(&s->move_lock);
}

/* Reads. */

static int vdi_preadv(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		      int iovcnt)
{
	struct vdi *s = vdi_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	int ret = 0;

	if (!part)
		return -ENOMEM;
	lock_shared(s);
	while (done < len && ret == 0) {
		struct run r;
		int cnt;

		map_run(s, offset + done, len - done, &r);
		switch (r.kind) {
		case RUN_ZERO:
			vs_iov_memset(iov, iovcnt, done, 0, (size_t)r.len);
			break;
		case RUN_BAD: ret = bad_entry(s, r.blk); break;
		case RUN_DATA:
			cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, done,
					   (size_t)r.len);
			ret = cnt < 0 ? -EIO
				      : vbd_preadv(s->file, r.host, part, cnt);
			break;
		}
		done += (size_t)r.len;
	}
	unlock_shared(s);
	return ret;
}

/* Metadata writes. */

static int file_pwritev(struct vdi *s, uint64_t off, const struct iovec *iov,
			int iovcnt)
{
	uint64_t end = off + vs_iov_size(iov, iovcnt);
	int ret;

	/* The file grows as blocks are added past its end. */
	ret = vbd_pwritev_grow(s->file, off, iov, iovcnt);
	if (ret == 0)
		vs_atomic_max(&s->file_size, end);
	return ret;
}

int vdi_file_pwrite(struct vdi *s, uint64_t off, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return file_pwritev(s, off, &iov, 1);
}

/* Entries [blk, blk+n) := first, first+1, ... (or `first` for all when
 * it is not a data index), in the file, then in memory. */
int vdi_set_entries(struct vdi *s, uint32_t blk, uint32_t n, uint32_t first)
{
	autofree uint8_t *buf = malloc((size_t)n * 4);
	int ret;

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		vdi_put_le32(buf + (size_t)i * 4,
			     VDI_BMAP_IS_DATA(first) ? first + i : first);
	ret = vdi_file_pwrite(s, s->h.offset_bmap + (uint64_t)blk * 4, buf,
			      (size_t)n * 4);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t e = VDI_BMAP_IS_DATA(first) ? first + i : first;
		uint32_t old = s->bmap[blk + i];

		if (s->rmap && old < s->h.blocks_in_image &&
		    s->rmap[old] == blk + i)
			s->rmap[old] = VDI_RMAP_NONE;
		if (s->rmap && VDI_BMAP_IS_DATA(e))
			s->rmap[e] = blk + i;
		__atomic_store_n(&s->bmap[blk + i], e, __ATOMIC_RELEASE);
	}
	return 0;
}

int vdi_set_entry(struct vdi *s, uint32_t i, uint32_t e)
{
	return vdi_set_entries(s, i, 1, e);
}

int vdi_set_allocated(struct vdi *s, uint32_t n)
{
	uint8_t b[4];
	int ret;

	vdi_put_le32(b, n);
	ret = vdi_file_pwrite(s, VDI_OFF_BLOCKS_ALLOCATED, b, sizeof(b));
	if (ret == 0)
		s->h.blocks_allocated = n;
	return ret;
}

/* Writes. */

/*
 * Store the guest bytes [pos, pos+len) (iov from `skip`) in new data
 * blocks at the end, for guest blocks that are still unallocated (the
 * run may be cut short: *done says how many guest bytes were stored).
 * The blocks are written whole, padded with zeros.  Under alloc_lock.
 */
static int allocate(struct vdi *s, uint64_t pos, uint64_t len,
		    const struct iovec *iov, int iovcnt, size_t skip,
		    uint64_t *done)
{
	uint64_t bs = s->h.block_size;
	uint32_t blk = (uint32_t)(pos >> s->block_bits), n = 0, idx;
	uint64_t head = pos & (bs - 1), covered;
	autofree struct iovec *v = malloc(sizeof(*v) * ((size_t)iovcnt + 2));
	void *zeros = s->zero_buf;
	int cnt, ret;

	if (!v)
		return -ENOMEM;
	/* Blocks still unallocated, now that we hold the lock. */
	do
		n++;
	while ((uint64_t)n * bs < head + len &&
	       blk + n < s->h.blocks_in_image &&
	       !VDI_BMAP_IS_DATA(entry_get(s, blk + n)));
	covered = VS_MIN(len, (uint64_t)n * bs - head);
	/* Crashes can leave holes in the indices (a count ahead of the
	 * map): fill them before running out of room. */
	if ((uint64_t)s->next_index + n > s->h.blocks_in_image) {
		pthread_rwlock_wrlock(&s->move_lock);
		ret = vdi_compact(s);
		pthread_rwlock_unlock(&s->move_lock);
		if (ret < 0)
			return ret;
	}
	idx = s->next_index;
	if ((uint64_t)idx + n > s->h.blocks_in_image)
		return -ENOSPC; /* only a damaged map gets here */
	v[0] = (struct iovec){.iov_base = zeros, .iov_len = (size_t)head};
	cnt = vs_iov_slice(v + 1, iovcnt, iov, iovcnt, skip, (size_t)covered);
	if (cnt < 0)
		return -EIO;
	v[cnt + 1] = (struct iovec){
		.iov_base = zeros,
		.iov_len = (size_t)((uint64_t)n * bs - head - covered)};
	ret = file_pwritev(s, vdi_data_offset(&s->h, idx), v, cnt + 2);
	/*
	 * The data, and the header's count that covers it, are stable
	 * before any entry points at it.  A crash then leaves the count
	 * ahead of the map at worst, never behind it: qemu adds its next
	 * block at index "blocks allocated", and a count behind the map
	 * would make it hand out a block still in use.
	 */
	if (ret == 0)
		ret = vdi_set_allocated(s, idx + n);
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret == 0)
		ret = vdi_set_entries(s, blk, n, idx);
	if (ret < 0)
		return ret;
	s->next_index = idx + n;
	*done = covered;
	return 0;
}

static int write_run(struct vdi *s, uint64_t pos, uint64_t len,
		     const struct iovec *iov, int iovcnt, size_t skip,
		     struct iovec *part, uint64_t *done)
{
	struct run r;
	int cnt, ret;

	lock_shared(s);
	map_run(s, pos, len, &r);
	if (r.kind == RUN_DATA) {
		cnt = vs_iov_slice(part, iovcnt, iov, iovcnt, skip,
				   (size_t)r.len);
		ret = cnt < 0 ? -EIO : vbd_pwritev(s->file, r.host, part, cnt);
		unlock_shared(s);
		*done = r.len;
		return ret;
	}
	unlock_shared(s);
	if (r.kind == RUN_BAD)
		return bad_entry(s, r.blk);
	pthread_mutex_lock(&s->alloc_lock);
	/* Another writer may have allocated it meanwhile: then go round
	 * again and write in place. */
	*done = 0;
	ret = VDI_BMAP_IS_DATA(entry_get(s, r.blk))
		      ? 0
		      : allocate(s, pos, r.len, iov, iovcnt, skip, done);
	pthread_mutex_unlock(&s->alloc_lock);
	return ret;
}

static int vdi_pwritev(struct vbd *vbd, uint64_t offset,
		       const struct iovec *iov, int iovcnt)
{
	struct vdi *s = vdi_of(vbd);
	size_t len = vs_iov_size(iov, iovcnt), done = 0;
	autofree struct iovec *part = malloc(sizeof(*part) * (size_t)iovcnt);
	int ret = 0;

	if (!part)
		return -ENOMEM;
	while (done < len && ret == 0) {
		uint64_t n = 0;

		ret = write_run(s, offset + done, len - done, iov, iovcnt, done,
				part, &n);
		done += (size_t)n;
	}
	return ret;
}

static int vdi_flush(struct vbd *vbd)
{
	return vbd_flush(vdi_of(vbd)->file);
}

/* Freeing blocks. */

int vdi_move_block(struct vdi *s, uint32_t guest, uint32_t from, uint32_t to)
{
	uint64_t bs = s->h.block_size;
	int ret;

	if (!s->block_buf)
		s->block_buf = malloc(bs);
	if (!s->block_buf)
		return -ENOMEM;
	/* The copy is stable before the entry points at it, and the entry
	 * before anything may reuse the old place. */
	ret = vbd_pread(s->file, vdi_data_offset(&s->h, from), s->block_buf,
			bs);
	if (ret == 0)
		ret = vdi_file_pwrite(s, vdi_data_offset(&s->h, to),
				      s->block_buf, bs);
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret == 0)
		ret = vdi_set_entry(s, guest, to);
	if (ret == 0)
		ret = vbd_flush(s->file);
	return ret;
}

/* Indices past the last one in use are free. */
static void trim_tail(struct vdi *s)
{
	while (s->next_index && s->rmap[s->next_index - 1] == VDI_RMAP_NONE)
		s->next_index--;
}

/*
 * Fill holes in the data indices with the last blocks until they are
 * dense, then store the count.  Under alloc_lock and move_lock
 * (exclusive).
 */
int vdi_compact(struct vdi *s)
{
	uint32_t hole = 0;
	int ret;

	for (;;) {
		trim_tail(s);
		while (hole < s->next_index && s->rmap[hole] != VDI_RMAP_NONE)
			hole++;
		if (hole >= s->next_index)
			break;
		ret = vdi_move_block(s, s->rmap[s->next_index - 1],
				     s->next_index - 1, hole);
		if (ret < 0)
			return ret;
	}
	return vdi_set_allocated(s, s->next_index);
}

/*
 * Guest block `blk` (a data entry) reads as zeros from now on, and its
 * data block is given back: the last data block moves into its place,
 * so that the indices stay dense.  Under alloc_lock and move_lock
 * (exclusive).
 */
int vdi_free_block(struct vdi *s, uint32_t blk)
{
	uint32_t hole = s->bmap[blk], old_next = s->next_index;
	bool owned = s->rmap[hole] == blk; /* not shared (check -r only) */
	uint64_t from, to;
	int ret;

	ret = vdi_set_entry(s, blk, VDI_BMAP_ZERO);
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret < 0 || !owned)
		return ret;
	trim_tail(s);
	if (hole < s->next_index) {
		ret = vdi_move_block(s, s->rmap[s->next_index - 1],
				     s->next_index - 1, hole);
		if (ret < 0)
			return ret;
		trim_tail(s);
	}
	ret = vdi_set_allocated(s, s->next_index);
	if (ret < 0)
		return ret;
	/* Give the space back: the tail is past every index in use. */
	from = vdi_data_offset(&s->h, s->next_index);
	to = VS_MIN(vdi_data_offset(&s->h, old_next), vbd_size(s->file));
	if (to > from)
		vbd_discard(s->file, from, to - from);
	return 0;
}

/* How clear_range treats the data blocks it does not free. */
enum clear_mode {
	CLEAR_DISCARD, /* the host file may deallocate (advisory) */
	CLEAR_ZERO,    /* zeros, through the host file's write_zeroes */
};

/* The part of a kept data block: its bytes in the host file. */
static int clear_in_place(struct vdi *s, uint32_t blk, uint64_t inoff,
			  uint64_t n, enum clear_mode mode, unsigned zflags)
{
	uint64_t host = vdi_data_offset(&s->h, s->bmap[blk]) + inoff;

	if (mode == CLEAR_DISCARD) {
		vbd_discard(s->file, host, n); /* advisory: errors ignored */
		return 0;
	}
	return vbd_write_zeroes(s->file, host, n, zflags);
}

/*
 * Data blocks wholly inside [offset, offset+len) are freed when
 * `may_free` (dynamic images); the other data blocks in the range are
 * zeroed or discarded in the host file, so that a fixed image keeps its
 * blocks but not their space.  Blocks that read as zeros already are
 * left alone.
 */
static int clear_range(struct vdi *s, uint64_t offset, uint64_t len,
		       bool may_free, enum clear_mode mode, unsigned zflags)
{
	uint64_t bs = s->h.block_size, end = offset + len, pos = offset;
	int ret = 0;

	while (pos < end && ret == 0) {
		uint32_t blk = (uint32_t)(pos >> s->block_bits);
		uint64_t bstart = (uint64_t)blk << s->block_bits;
		uint64_t n = VS_MIN(end, bstart + bs) - pos;
		/* The disk's last block may be partly past its end: it is
		 * whole when the range reaches the end of the disk. */
		bool whole = pos == bstart && (n == bs || end >= s->size);
		uint32_t e;

		pthread_mutex_lock(&s->alloc_lock);
		pthread_rwlock_wrlock(&s->move_lock);
		e = s->bmap[blk];
		if (!VDI_BMAP_IS_DATA(e))
			; /* reads as zeros already */
		else if (vdi_entry_problem(&s->h, e, s->file_size))
			ret = bad_entry(s, blk);
		else if (whole && may_free)
			ret = vdi_free_block(s, blk);
		else
			ret = clear_in_place(s, blk, pos - bstart, n, mode,
					     zflags);
		pthread_rwlock_unlock(&s->move_lock);
		pthread_mutex_unlock(&s->alloc_lock);
		pos += n;
	}
	return ret;
}

static bool can_free(const struct vdi *s)
{
	return s->h.image_type == VDI_TYPE_DYNAMIC;
}

/*
 * Whole blocks of a dynamic image are freed with VBD_ZERO_MAY_UNMAP;
 * the rest is zeroed by the host file (a hole where it may unmap).
 * With VBD_ZERO_NO_FALLBACK the host file's -ENOTSUP comes back (the
 * blocks freed before it read as zeros, as asked).
 */
static int vdi_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
			    unsigned flags)
{
	struct vdi *s = vdi_of(vbd);
	bool may_free = (flags & VBD_ZERO_MAY_UNMAP) && can_free(s);

	return clear_range(s, offset, len, may_free, CLEAR_ZERO,
			   flags & (VBD_ZERO_MAY_UNMAP | VBD_ZERO_NO_FALLBACK));
}

/* Whole blocks of dynamic images are freed; the rest is discarded in
 * the host file (it may then read as anything, usually zeros). */
static int vdi_discard(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	struct vdi *s = vdi_of(vbd);

	return clear_range(s, offset, len, can_free(s), CLEAR_DISCARD, 0);
}

/* Status, info, probe. */

static int vdi_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
			    struct vbd_extent *ext)
{
	struct vdi *s = vdi_of(vbd);
	struct run r;

	lock_shared(s);
	map_run(s, offset, len, &r);
	unlock_shared(s);
	*ext = (struct vbd_extent){.length = r.len, .host_offset = -1};
	switch (r.kind) {
	case RUN_ZERO:
		/* No backing file decides it: zeros at this layer, as
		 * qemu-img map reports them ("present"). */
		ext->flags = VBD_STATUS_ZERO | VBD_STATUS_ALLOCATED;
		break;
	case RUN_DATA:
		ext->flags = VBD_STATUS_DATA | VBD_STATUS_ALLOCATED;
		ext->host_offset = (int64_t)r.host;
		break;
	case RUN_BAD: return bad_entry(s, r.blk);
	}
	return 0;
}

static int vdi_get_info(struct vbd *vbd, struct vbd_info *info,
			struct vs_error **errp)
{
	/* qemu-img shows no format-specific data for VDI either. */
	info->cluster_size = vdi_of(vbd)->h.block_size;
	return 0;
}

static int vdi_probe(const uint8_t *buf, size_t len, const char *filename)
{
	if (len < VDI_OFF_SIGNATURE + 4 ||
	    vdi_le32(buf + VDI_OFF_SIGNATURE) != VDI_SIGNATURE)
		return 0;
	return 100;
}

const struct vbd_driver vbd_driver_vdi = {
	.name = "vdi",
	.probe = vdi_probe,
	.create = vdi_create,
	.open = vdi_open,
	.close = vdi_close,
	.preadv = vdi_preadv,
	.pwritev = vdi_pwritev,
	.flush = vdi_flush,
	.discard = vdi_discard,
	.write_zeroes = vdi_write_zeroes,
	.block_status = vdi_block_status,
	.get_info = vdi_get_info,
	.check = vdi_check,
	.truncate = vdi_truncate,
};
