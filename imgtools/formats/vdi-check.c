/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checking a VDI image's block map, with the findings and numbers of
 * `qemu-img check` (which has no allocation statistics for VDI):
 *
 *   - an entry that is a data index not below the number of blocks in
 *     the image is an error ("too large");
 *   - a data index used by two entries is an error;
 *   - the header's count must equal the number of entries in use;
 *
 * and, beyond what qemu checks, a data block that lies (partly) past the
 * end of the file is an error.  The map is read again from the file, not
 * taken from the driver's copy.
 *
 * Repair (-r all; qemu-img cannot repair VDI): entries out of range or
 * past the end of the file become unallocated (they read as zeros, as
 * nothing readable was there); a block sharing another's data gets its
 * own copy of it; then the last data blocks move into the holes until
 * the indices are dense, and the header gets the count.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "../../common/log.h"
#include "vdi.h"

#define NONE VDI_RMAP_NONE

struct vck {
	struct vdi *s;
	const char *fn;
	bool fixing;
	struct vbd_check *res;
	uint32_t *map;	 /* the map as found, host order */
	uint32_t *first; /* data index -> the first block using it */
	uint32_t *dups;	 /* blocks sharing data with an earlier one */
	uint32_t ndups;
	uint32_t *drop; /* blocks whose entries are unusable */
	uint32_t ndrop;
};

static void say(const struct vck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct vck *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vs_log(VS_LOG_INFO, "vdi", "%s: %s", c->fn, line);
}

static const char *verb(const struct vck *c)
{
	return c->fixing ? "Repairing" : "ERROR";
}

static int read_map(struct vck *c, struct vs_error **errp)
{
	const struct vdi_header *h = &c->s->h;
	size_t n = h->blocks_in_image ? h->blocks_in_image : 1;
	int ret;

	c->map = malloc(n * 4);
	c->first = malloc(n * 4);
	c->dups = malloc(n * 4);
	c->drop = malloc(n * 4);
	if (!c->map || !c->first || !c->dups || !c->drop)
		return vs_error_set(errp, ENOMEM, "out of memory");
	memset(c->first, 0xff, n * 4);
	ret = h->blocks_in_image ? vbd_pread(c->s->file, h->offset_bmap, c->map,
					     (size_t)h->blocks_in_image * 4)
				 : 0;
	if (ret < 0) {
		c->res->check_errors++;
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read the block map at "
					  "offset 0x%x",
					  c->fn, h->offset_bmap);
	}
	for (uint32_t i = 0; i < h->blocks_in_image; i++)
		c->map[i] = vdi_le32((const uint8_t *)&c->map[i]);
	return 0;
}

/*
 * One entry; returns whether it counts as allocated: as qemu counts,
 * every data index below the number of blocks, even when it has other
 * faults.
 */
static bool check_entry(struct vck *c, uint32_t i, uint64_t file_size)
{
	const struct vdi_header *h = &c->s->h;
	uint32_t e = c->map[i];

	if (!VDI_BMAP_IS_DATA(e))
		return false;
	if (e >= h->blocks_in_image) {
		say(c,
		    "%s: block %u: data block index %u too large (%u "
		    "blocks in the image)",
		    verb(c), i, e, h->blocks_in_image);
		c->res->corruptions++;
		c->drop[c->ndrop++] = i;
		return false;
	}
	if (vdi_data_offset(h, e) + h->block_size > file_size) {
		say(c,
		    "%s: block %u: data block %u at offset 0x%" PRIx64
		    " lies past the end of the file (%" PRIu64 " bytes)",
		    verb(c), i, e, vdi_data_offset(h, e), file_size);
		c->res->corruptions++;
		c->drop[c->ndrop++] = i;
	} else if (c->first[e] != NONE) {
		say(c, "%s: block %u: data block %u is also used by block %u",
		    verb(c), i, e, c->first[e]);
		c->res->corruptions++;
		c->dups[c->ndups++] = i;
	} else {
		c->first[e] = i;
	}
	return true;
}

/* A free data index for a copy: a hole below the end, else the end. */
static uint32_t free_index(struct vdi *s, uint32_t *cursor)
{
	while (*cursor < s->next_index && s->rmap[*cursor] != NONE)
		(*cursor)++;
	if (*cursor < s->next_index)
		return *cursor;
	return s->next_index++;
}

static int repair(struct vck *c)
{
	struct vdi *s = c->s;
	uint32_t cursor = 0;
	int ret = 0;

	for (uint32_t k = 0; ret == 0 && k < c->ndrop; k++)
		ret = vdi_set_entry(s, c->drop[k], VDI_BMAP_FREE);
	/* Each sharer gets its own copy; the shared block stays with the
	 * first block that uses it. */
	for (uint32_t k = 0; ret == 0 && k < c->ndups; k++) {
		uint32_t i = c->dups[k], to = free_index(s, &cursor);

		if (to >= s->h.blocks_in_image)
			return -ENOSPC;
		ret = vdi_move_block(s, i, c->map[i], to);
	}
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret == 0)
		ret = vdi_compact(s);
	if (ret == 0)
		ret = vbd_flush(s->file);
	if (ret == 0)
		s->bad_entries = 0;
	return ret;
}

int vdi_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
	      struct vs_error **errp)
{
	struct vdi *s = vbd->opaque;
	uint64_t file_size = vbd_size(s->file);
	struct vck c = {
		.s = s,
		.fn = vbd->filename,
		.fixing = (fix & VBD_CHECK_FIX_ERRORS) && s->writable,
		.res = res,
	};
	uint32_t allocated = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = read_map(&c, errp);
	for (uint32_t i = 0; ret == 0 && i < s->h.blocks_in_image; i++)
		allocated += check_entry(&c, i, file_size);
	if (ret == 0 && allocated != s->h.blocks_allocated) {
		say(&c, "%s: allocated blocks mismatch, is %u, should be %u",
		    verb(&c), allocated, s->h.blocks_allocated);
		res->corruptions++;
	}
	if (ret == 0 && c.fixing && res->corruptions) {
		pthread_mutex_lock(&s->alloc_lock);
		pthread_rwlock_wrlock(&s->move_lock);
		ret = repair(&c);
		pthread_rwlock_unlock(&s->move_lock);
		pthread_mutex_unlock(&s->alloc_lock);
		if (ret < 0)
			vs_error_set_errno(errp, ret,
					   "%s: the repair failed; the image "
					   "may still have errors",
					   c.fn);
		else
			res->corruptions_fixed = res->corruptions;
	}
	free(c.map);
	free(c.first);
	free(c.dups);
	free(c.drop);
	return ret;
}
