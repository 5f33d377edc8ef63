/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Cutting the sources into items by block status (see convert-plan.h).
 * Runs under the pipeline's lock: one caller at a time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "convert-plan.h"

/* Block status is asked for at most this much at a time, so that one
 * answer stays cheap for formats that walk their tables. */
#define STATUS_MAX (1ull << 30)

static uint64_t round_down(uint64_t x, uint64_t a)
{
	return x - x % a;
}

/* x rounded up to a multiple of a, capped at `cap` (no overflow: x <=
 * cap and the result never exceeds cap). */
static uint64_t round_up_cap(uint64_t x, uint64_t a, uint64_t cap)
{
	uint64_t r = x % a;

	if (!r || cap - x <= a - r)
		return r ? cap : x;
	return x + (a - r);
}

/* qemu-img sizes each source in whole sectors, and places each one at
 * the sector after the one before: a short last sector reads as zeros. */
static uint64_t sectors(uint64_t n)
{
	return n + (512 - n % 512) % 512;
}

int cv_sources_size(struct vbd **src, int nsrc, uint64_t *out,
		    struct vs_error **errp)
{
	uint64_t sum = 0;

	for (int i = 0; i < nsrc; i++) {
		uint64_t n = vbd_size(src[i]);

		if (n > UINT64_MAX - 511 || sectors(n) > UINT64_MAX - sum)
			return vs_error_set(errp, EFBIG,
					    "%s: the sources together are "
					    "larger than 2^64 bytes",
					    vbd_filename(src[i]));
		sum += sectors(n);
	}
	*out = sum;
	return 0;
}

int cv_plan_init(struct cv_plan *p, struct vs_error **errp)
{
	uint64_t sum = 0;

	p->start = calloc((size_t)p->nsrc + 1, sizeof(*p->start));
	if (!p->start)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (int i = 0; i < p->nsrc; i++) {
		p->start[i] = sum;
		sum += sectors(vbd_size(p->src[i])); /* checked by
							 * cv_sources_size */
	}
	p->start[p->nsrc] = sum;
	p->pos = p->seq = 0;
	p->c_src = -1;
	p->c_start = p->c_end = 0;
	return 0;
}

void cv_plan_free(struct cv_plan *p)
{
	free(p->start);
	p->start = NULL;
}

/* The source that holds guest offset `pos`, or nsrc past them all. */
static int source_of(const struct cv_plan *p, uint64_t pos)
{
	int i = p->c_src >= 0 ? p->c_src : 0;

	/* Items go forward: the cached source or the next ones. */
	if (pos < p->start[i])
		i = 0;
	while (i < p->nsrc && pos >= p->start[i + 1])
		i++;
	return i;
}

static enum cv_status classify(const struct cv_plan *p,
			       const struct vbd_extent *e)
{
	/* With -B, what the top layer leaves to its backing chain is left
	 * to the target's backing file, as qemu-img does. */
	if (p->backing && e->depth > 0)
		return CV_BACKING;
	return e->flags & VBD_STATUS_ZERO ? CV_ZERO : CV_DATA;
}

/* Where source i's own bytes end (its sector padding follows). */
static uint64_t bytes_end(const struct cv_plan *p, int i)
{
	return p->start[i] + vbd_size(p->src[i]);
}

/*
 * The status at `pos` and where it ends (never past the source's end).
 * A source's padding to a whole sector, and anything past the last
 * source, reads as zeros.
 */
static int status_at(struct cv_plan *p, uint64_t pos, enum cv_status *st,
		     uint64_t *end, struct vs_error **errp)
{
	struct vbd_extent e;
	uint64_t send, soff;
	int i, ret;

	if (p->c_src >= 0 && pos >= p->c_start && pos < p->c_end) {
		*st = p->c_st;
		*end = p->c_end;
		return 0;
	}
	i = source_of(p, pos);
	if (i == p->nsrc || pos >= bytes_end(p, i)) {
		*st = CV_ZERO;
		*end = i == p->nsrc ? p->total : p->start[i + 1];
		return 0;
	}
	send = bytes_end(p, i);
	soff = pos - p->start[i];
	ret = vbd_block_status(p->src[i], soff, VS_MIN(send - pos, STATUS_MAX),
			       &e);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot get the block status at "
					  "offset 0x%" PRIx64,
					  vbd_filename(p->src[i]), soff);
	if (e.length == 0 || e.length > send - pos)
		return vs_error_set(errp, EIO,
				    "%s: block status at offset 0x%" PRIx64
				    " has a bad length %" PRIu64,
				    vbd_filename(p->src[i]), soff, e.length);
	p->c_src = i;
	p->c_start = pos;
	p->c_end = pos + e.length;
	p->c_st = classify(p, &e);
	*st = p->c_st;
	*end = p->c_end;
	return 0;
}

/* The end of the unit that `pos` lies in: a source's bytes, its
 * padding, or what lies past the last source. */
static uint64_t unit_end(const struct cv_plan *p, uint64_t pos)
{
	int i = source_of(p, pos);

	if (i == p->nsrc)
		return p->total;
	return pos < bytes_end(p, i) ? bytes_end(p, i) : p->start[i + 1];
}

/*
 * A data item from `pos`: grows over data and over zero runs too short
 * to hold a whole aligned unit, up to the next chunk boundary.
 */
static int data_end(struct cv_plan *p, uint64_t pos, uint64_t end,
		    uint64_t limit, uint64_t *out, struct vs_error **errp)
{
	end = round_up_cap(VS_MIN(end, limit), p->align, limit);
	while (end < limit) {
		enum cv_status st;
		uint64_t e;
		int ret = status_at(p, end, &st, &e, errp);

		if (ret < 0)
			return ret;
		e = VS_MIN(e, limit);
		if (st != CV_DATA &&
		    (e == limit || round_down(e, p->align) > end))
			break; /* a real hole: a whole unit or more */
		end = round_up_cap(e, p->align, limit);
	}
	(void)pos;
	*out = end;
	return 0;
}

/* A zero (or backing) item from `pos`, merged with what follows while
 * the status stays the same. */
static int zero_end(struct cv_plan *p, enum cv_status st, uint64_t end,
		    uint64_t limit, uint64_t *out, struct vs_error **errp)
{
	while (end < limit) {
		enum cv_status st2;
		uint64_t e;
		int ret = status_at(p, end, &st2, &e, errp);

		if (ret < 0)
			return ret;
		if (st2 != st)
			break;
		end = VS_MIN(e, limit);
	}
	*out = end;
	return 0;
}

int cv_plan_next(struct cv_plan *p, struct cv_item *it, struct vs_error **errp)
{
	uint64_t pos = p->pos, end, limit, uend;
	enum cv_status st;
	int i, ret;

	if (pos >= p->total)
		return 0;
	ret = status_at(p, pos, &st, &end, errp);
	if (ret < 0)
		return ret;
	uend = unit_end(p, pos);
	if (st != CV_DATA) {
		limit = VS_MIN(uend, pos + VS_MIN(p->max_zero, uend - pos));
		ret = zero_end(p, st, VS_MIN(end, limit), limit, &end, errp);
		if (ret < 0)
			return ret;
		/* A run that ends inside a unit leaves that unit to the
		 * data after it. */
		if (end < uend)
			end = round_down(end, p->align);
		if (end <= pos) {
			st = CV_DATA;
			end = pos + 1;
		}
	}
	if (st == CV_DATA) {
		limit = round_down(pos, p->chunk);
		limit = p->chunk > uend - limit ? uend : limit + p->chunk;
		limit = VS_MIN(limit, uend);
		ret = data_end(p, pos, end, limit, &end, errp);
		if (ret < 0)
			return ret;
	}
	i = source_of(p, pos);
	if (i < p->nsrc && pos >= bytes_end(p, i))
		i = p->nsrc; /* padding: nothing to read */
	*it = (struct cv_item){
		.off = pos,
		.len = end - pos,
		.st = st,
		.src = i < p->nsrc ? i : -1,
		.src_off = i < p->nsrc ? pos - p->start[i] : 0,
		.seq = p->seq++,
	};
	/* Past the last source there is nothing to read. */
	if (it->st == CV_DATA && it->src < 0)
		it->st = CV_ZERO;
	p->pos = end;
	return 1;
}
