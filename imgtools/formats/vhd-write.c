/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing VHD images.
 *
 * Fixed images are written in place.  In dynamic and differencing
 * images, a block whose bitmap has every bit set is written in place
 * with no lock; anything else (a new block, or a block with clear bits)
 * is done by one writer at a time, under `wlock`:
 *
 *  - a new block goes where the footer copy at the end was (or at the
 *    end): its bitmap, its data and the footer behind it are written;
 *    its BAT entry changes in memory, and reaches the file at the next
 *    flush (or close) after an fdatasync, so a crash leaves at worst an
 *    unreferenced block, and a convert pays one fdatasync per flush,
 *    not one per block.  Its data
 *    area lies past the old end of the file and reads as zeros, so a
 *    dynamic image's new block has every bit set (as QEMU does); a
 *    differencing image's has the bits of the written sectors only, the
 *    others still read from the parent.
 *  - in a block with clear bits, the data is written, fdatasync, then
 *    the bits are set: a crash never shows a sector whose bit is set
 *    before its data is there.
 *
 * Sectors are the unit of the bitmap: a write that starts or ends inside
 * a sector whose bit is clear first reads the rest of it (zeros or the
 * parent's bytes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "../../common/iov.h"
#include "vhd.h"

static int write_footer(struct vhd *s, uint64_t at)
{
	return vhd_file_write(s, at, s->footer_raw, VHD_FOOTER_LEN);
}

static void set_bits(uint8_t *bitmap, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++)
		bitmap[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

static bool bits_set(const uint8_t *bitmap, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++)
		if (!vhd_bit(bitmap, i))
			return false;
	return true;
}

/* Sectors [s0, s1) of the block at `off`'s block, as a buffer with the
 * caller's bytes [in, in+n) of the block merged in. */
static int build_sectors(struct vhd *s, uint64_t off, uint32_t in, size_t n,
			 const struct iovec *iov, int iovcnt, size_t skip,
			 uint8_t **out)
{
	uint32_t s0 = in / VHD_SECTOR;
	uint32_t s1 = (uint32_t)((in + n + VHD_SECTOR - 1) / VHD_SECTOR);
	size_t bytes = (size_t)(s1 - s0) * VHD_SECTOR;
	uint64_t vbase = off - in + (uint64_t)s0 * VHD_SECTOR;
	uint8_t *buf = malloc(bytes);
	struct iovec one;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	/* The partial sectors at either end keep their current bytes.  A
	 * sector past the disk's end (in the last block) is zeros. */
	if (in % VHD_SECTOR) {
		one = (struct iovec){.iov_base = buf, .iov_len = VHD_SECTOR};
		ret = vhd_read(s, vbase, &one, 1);
	}
	if (ret == 0 && (in + n) % VHD_SECTOR &&
	    (s1 - s0 > 1 || in % VHD_SECTOR == 0)) {
		uint64_t last = vbase + bytes - VHD_SECTOR;

		one = (struct iovec){.iov_base = buf + bytes - VHD_SECTOR,
				     .iov_len = VHD_SECTOR};
		if (last + VHD_SECTOR <= s->f.virtual_size)
			ret = vhd_read(s, last, &one, 1);
		else
			memset(one.iov_base, 0, VHD_SECTOR);
	}
	if (ret < 0) {
		free(buf);
		return ret;
	}
	vs_iov_to_buf(iov, iovcnt, skip, buf + (in - s0 * VHD_SECTOR), n);
	*out = buf;
	return 0;
}

/*
 * Space for a new block at the file's end, for sectors [s0, s1) of it
 * (all of them when `full`): its bitmap and the footer after it are
 * written, the data is the caller's, and block_commit then points the
 * BAT at it.  The footer goes first, so that a kernel copy of the data
 * lands inside the host file.
 */
static int block_start(struct vhd *s, bool full, uint32_t s0, uint32_t s1,
		       uint64_t *atp)
{
	uint64_t at = s->next_block;
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	autofree uint8_t *bitmap = calloc(1, s->bitmap_size);
	int ret;

	if (!bitmap)
		return -ENOMEM;
	if (at / VHD_SECTOR >= VHD_BAT_UNUSED)
		return -EFBIG; /* BAT entries are 32-bit sector numbers */
	if (full)
		memset(bitmap, 0xff, s->bitmap_size);
	else
		set_bits(bitmap, s0, s1);
	/* Whatever happens now, this space is spent: a later block never
	 * lands on bytes a failed attempt may have left. */
	s->next_block = at + span;
	ret = vhd_file_write(s, at, bitmap, s->bitmap_size);
	if (ret == 0)
		ret = write_footer(s, at + span);
	*atp = at;
	return ret;
}

/* The block's data is written: the entry reaches the file at the next
 * flush, after the data. */
static void block_commit(struct vhd *s, uint32_t idx, uint64_t at, bool full)
{
	pthread_mutex_lock(&s->lock);
	s->bat[idx] = (uint32_t)(at / VHD_SECTOR);
	s->state[idx] = full ? VHD_BS_FULL : VHD_BS_PARTIAL;
	pthread_mutex_unlock(&s->lock);
	s->bat_dirty[idx / VHD_BAT_PER_SECTOR] = 1;
	s->any_dirty = true;
}

/* A new block for sectors [s0, s1) of block idx, whose bytes are
 * iov[0..iovcnt). */
static int alloc_block(struct vhd *s, uint32_t idx, uint32_t s0, uint32_t s1,
		       const struct iovec *iov, int iovcnt)
{
	bool full = !s->parent || (s0 == 0 && s1 == s->block_sectors);
	uint64_t at;
	int ret = block_start(s, full, s0, s1, &at);

	if (ret == 0)
		ret = vhd_file_writev(
			s, at + s->bitmap_size + (uint64_t)s0 * VHD_SECTOR, iov,
			iovcnt);
	if (ret < 0)
		return ret;
	block_commit(s, idx, at, full);
	return 0;
}

/* A block with clear bits: data, fdatasync, then the bits. */
static int write_partial(struct vhd *s, uint32_t idx, uint32_t entry,
			 uint8_t *bitmap, uint32_t s0, uint32_t s1,
			 const uint8_t *data)
{
	uint64_t base = (uint64_t)entry * VHD_SECTOR;
	int ret;

	ret = vhd_file_write(s,
			     base + s->bitmap_size + (uint64_t)s0 * VHD_SECTOR,
			     data, (size_t)(s1 - s0) * VHD_SECTOR);
	if (ret < 0 || bits_set(bitmap, s0, s1))
		return ret;
	ret = vbd_flush(s->file);
	if (ret < 0)
		return ret;
	set_bits(bitmap, s0, s1);
	ret = vhd_file_write(s, base, bitmap, s->bitmap_size);
	if (ret < 0)
		return ret;
	/* Re-derive the state from the bitmap just written. */
	pthread_mutex_lock(&s->lock);
	s->state[idx] = VHD_BS_UNKNOWN;
	pthread_mutex_unlock(&s->lock);
	enum vhd_bstate st;
	return vhd_block_state(s, idx, bitmap, &st);
}

static int write_slow(struct vhd *s, uint64_t off, size_t n,
		      const struct iovec *iov, int iovcnt, size_t skip,
		      struct iovec *tmp)
{
	uint32_t idx = (uint32_t)(off / s->block_size);
	uint32_t in = (uint32_t)(off % s->block_size);
	uint32_t s0 = in / VHD_SECTOR;
	uint32_t s1 = (uint32_t)((in + n + VHD_SECTOR - 1) / VHD_SECTOR);
	autofree uint8_t *data = NULL;
	autofree uint8_t *bitmap = malloc(s->bitmap_size);
	enum vhd_bstate st;
	uint32_t entry;
	int ret;

	if (!bitmap)
		return -ENOMEM;
	/* Under wlock: no other writer allocates meanwhile. */
	pthread_mutex_lock(&s->lock);
	entry = s->bat[idx];
	pthread_mutex_unlock(&s->lock);
	if (entry == VHD_BAT_UNUSED && in % VHD_SECTOR == 0 &&
	    n % VHD_SECTOR == 0) {
		/* Whole sectors into a new block (what convert writes):
		 * straight from the caller's buffers, not copied. */
		int cnt = vs_iov_slice(tmp, iovcnt, iov, iovcnt, skip, n);

		if (cnt < 0)
			return -EIO;
		return alloc_block(s, idx, s0, s1, tmp, cnt);
	}
	ret = build_sectors(s, off, in, n, iov, iovcnt, skip, &data);
	if (ret < 0)
		return ret;
	if (entry == VHD_BAT_UNUSED) {
		struct iovec one = {data, (size_t)(s1 - s0) * VHD_SECTOR};

		return alloc_block(s, idx, s0, s1, &one, 1);
	}
	ret = vhd_block_state(s, idx, bitmap, &st);
	if (ret < 0)
		return ret;
	if (st == VHD_BS_FULL)
		return vhd_file_write(
			s, (uint64_t)entry * VHD_SECTOR + s->bitmap_size + in,
			data + (in - s0 * VHD_SECTOR), n);
	return write_partial(s, idx, entry, bitmap, s0, s1, data);
}

static int write_block(struct vhd *s, uint64_t off, size_t n,
		       const struct iovec *iov, int iovcnt, size_t skip,
		       struct iovec *tmp)
{
	uint32_t idx = (uint32_t)(off / s->block_size);
	uint32_t in = (uint32_t)(off % s->block_size);
	uint32_t entry;
	uint8_t st;
	int cnt, ret;

	pthread_mutex_lock(&s->lock);
	entry = s->bat[idx];
	st = s->state[idx];
	pthread_mutex_unlock(&s->lock);
	if (entry != VHD_BAT_UNUSED && st == VHD_BS_FULL) {
		cnt = vs_iov_slice(tmp, iovcnt, iov, iovcnt, skip, n);
		if (cnt < 0)
			return -EIO;
		return vhd_file_writev(
			s, (uint64_t)entry * VHD_SECTOR + s->bitmap_size + in,
			tmp, cnt);
	}
	pthread_mutex_lock(&s->wlock);
	ret = write_slow(s, off, n, iov, iovcnt, skip, tmp);
	pthread_mutex_unlock(&s->wlock);
	return ret;
}

int vhd_pwritev(struct vbd *vbd, uint64_t offset, const struct iovec *iov,
		int iovcnt)
{
	struct vhd *s = vbd->opaque;
	size_t len = vs_iov_size(iov, iovcnt);
	autofree struct iovec *tmp = NULL;
	int ret = 0;

	if (s->f.type == VHD_FIXED)
		return vbd_pwritev(s->file, offset, iov, iovcnt);
	tmp = malloc(sizeof(*tmp) * (size_t)iovcnt);
	if (!tmp)
		return -ENOMEM;
	for (size_t done = 0; done < len && ret == 0;) {
		uint64_t off = offset + done;
		size_t n = (size_t)VS_MIN((uint64_t)(len - done),
					  s->block_size - off % s->block_size);

		ret = write_block(s, off, n, iov, iovcnt, done, tmp);
		done += n;
	}
	return ret;
}

/* One new block's bytes from fd through a buffer, where the kernel
 * would not copy them (a target on another file system). */
static int copy_buffered(struct vhd *s, uint64_t at, uint64_t len, int fd,
			 uint64_t fd_off)
{
	autofree uint8_t *buf = malloc((size_t)len);
	size_t got = 0;

	if (!buf)
		return -ENOMEM;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, (size_t)len - got,
				  (off_t)(fd_off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			/* Past the end of fd: zeros. */
			memset(buf + got, 0, (size_t)len - got);
			break;
		}
		got += (size_t)n;
	}
	return vhd_file_write(s, at, buf, (size_t)len);
}

/*
 * vbd_copy_from_fd: whole blocks that hold nothing yet get new blocks,
 * filled by the kernel straight from `fd` (convert from a raw file: no
 * copy through our buffers); a fixed image is its file's business.
 * Anything else (an allocated block, a part of one, a differencing
 * image) is -ENOTSUP before anything changes, and the caller writes it
 * the ordinary way.  Blocks are laid out by block_start, as every
 * new block is.
 */
int vhd_copy_from_fd(struct vbd *vbd, uint64_t offset, uint64_t len, int fd,
		     uint64_t fd_off)
{
	struct vhd *s = vbd->opaque;
	uint64_t bs, done;
	int ret = 0;

	if (s->f.type == VHD_FIXED)
		return vbd_copy_from_fd(s->file, offset, len, fd, fd_off);
	bs = s->block_size;
	if (s->parent || offset % bs ||
	    (len % bs && offset + len != s->f.virtual_size) || len % VHD_SECTOR)
		return -ENOTSUP;
	pthread_mutex_lock(&s->wlock);
	pthread_mutex_lock(&s->lock);
	for (done = 0; done < len; done += bs)
		if (s->bat[(offset + done) / bs] != VHD_BAT_UNUSED)
			ret = -ENOTSUP;
	pthread_mutex_unlock(&s->lock);
	for (done = 0; done < len && ret == 0; done += bs) {
		uint64_t at, n = VS_MIN(bs, len - done);
		uint32_t idx = (uint32_t)((offset + done) / bs);

		ret = block_start(s, true, 0, s->block_sectors, &at);
		if (ret == 0 && !s->fd_copy_off) {
			ret = vbd_copy_from_fd(s->file, at + s->bitmap_size, n,
					       fd, fd_off + done);
			if (ret == -ENOTSUP)
				s->fd_copy_off = true;
		}
		if (s->fd_copy_off && (ret == 0 || ret == -ENOTSUP))
			ret = copy_buffered(s, at + s->bitmap_size, n, fd,
					    fd_off + done);
		if (ret < 0)
			break;
		block_commit(s, idx, at, true);
	}
	pthread_mutex_unlock(&s->wlock);
	return ret;
}

/*
 * Blocks that no write has reached read as zeros in a dynamic image, so
 * zeroing them is free; elsewhere (allocated blocks, a parent's data
 * that must be hidden, fixed images) zeros are written, a chunk at a
 * time, and never allocate a block that was not already needed.
 */
int vhd_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
		     unsigned flags)
{
	struct vhd *s = vbd->opaque;
	autofree uint8_t *zeros = NULL;
	uint64_t chunk;
	int ret = 0;

	if (s->f.type == VHD_FIXED)
		return vbd_write_zeroes(s->file, offset, len, flags);
	chunk = VS_MIN((uint64_t)s->block_size, len);
	for (uint64_t done = 0; done < len && ret == 0;) {
		uint64_t off = offset + done;
		uint64_t n =
			VS_MIN(len - done, s->block_size - off % s->block_size);
		uint32_t entry;

		pthread_mutex_lock(&s->lock);
		entry = s->bat[off / s->block_size];
		pthread_mutex_unlock(&s->lock);
		if (entry != VHD_BAT_UNUSED || s->parent) {
			struct iovec iov;

			if (!zeros && !(zeros = calloc(1, (size_t)chunk)))
				return -ENOMEM;
			iov = (struct iovec){.iov_base = zeros,
					     .iov_len = (size_t)n};
			ret = vhd_pwritev(vbd, off, &iov, 1);
		}
		done += n;
	}
	return ret;
}

/* Advisory: a fixed image passes it to its file (holes read as zeros);
 * dynamic blocks are never freed (VHD has no way to shrink a block). */
int vhd_discard(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	struct vhd *s = vbd->opaque;

	if (s->f.type == VHD_FIXED)
		return vbd_discard(s->file, offset, len);
	return 0;
}

/*
 * The BAT sectors that name new blocks, once the blocks are stable: a
 * crash before this leaves the blocks unreferenced, never an entry that
 * points at data that is not there.  Called under wlock.
 */
static int write_bat(struct vhd *s)
{
	uint8_t buf[VHD_SECTOR];
	uint32_t nsec =
		(s->nblocks + VHD_BAT_PER_SECTOR - 1) / VHD_BAT_PER_SECTOR;
	int ret;

	if (!s->any_dirty)
		return 0;
	ret = vbd_flush(s->file);
	for (uint32_t k = 0; k < nsec && ret == 0; k++) {
		uint32_t first = k * VHD_BAT_PER_SECTOR;
		uint32_t n = VS_MIN(VHD_BAT_PER_SECTOR, s->nblocks - first);

		if (!s->bat_dirty[k])
			continue;
		pthread_mutex_lock(&s->lock);
		for (uint32_t i = 0; i < n; i++)
			vhd_put32(buf + 4 * i, s->bat[first + i]);
		pthread_mutex_unlock(&s->lock);
		/* Only the entries held in memory: a table longer than the
		 * disk keeps the rest as it is. */
		ret = vhd_file_write(s, s->h.table_offset + 4ull * first, buf,
				     4 * (size_t)n);
		if (ret == 0)
			s->bat_dirty[k] = 0;
	}
	if (ret == 0)
		s->any_dirty = false;
	return ret;
}

int vhd_flush_image(struct vhd *s)
{
	int ret;

	if (!s->writable)
		return 0;
	pthread_mutex_lock(&s->wlock);
	ret = write_bat(s);
	pthread_mutex_unlock(&s->wlock);
	return ret < 0 ? ret : vbd_flush(s->file);
}

int vhd_flush(struct vbd *vbd)
{
	return vhd_flush_image(vbd->opaque);
}
