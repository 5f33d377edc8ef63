/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing metadata back, in the order that keeps a crash harmless.
 *
 * Guest writes change L2 tables, the L1 table and refcount blocks in
 * memory only (qcow2-write.c); data goes straight to its cluster.  A
 * flush (the guest's, or a cache filling up) then writes them back:
 *
 *   1. refcount blocks: they only hold increments, so writing them
 *      early can leak a cluster, never free one;
 *   2. fdatasync: new data and its refcounts are stable;
 *   3. L2 tables, which now point only at stable clusters;
 *   4. if L1 entries changed: fdatasync (the new tables are stable),
 *      then the L1 entries;
 *   5. fdatasync: everything the guest wrote before the flush is stable;
 *   6. the references that the tables dropped (replaced or discarded
 *      clusters, copied L2 tables) now go down, and fdatasync: only then
 *      may those clusters be handed out again.
 *
 * A crash anywhere leaves the image as of the last flush plus, at most,
 * leaked clusters.  Everything here runs under w_lock.
 *
 * With VBD_O_UNSAFE (a new image private to its writer, as convert's
 * target) the steps run in the same order but without the fdatasyncs
 * between them: nobody else reads the file, and a crash before the
 * writer's final flush loses the whole image anyway, so ordering the
 * disk's writes buys nothing.  qcow2_flush syncs once at the end.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "qcow2.h"

int qcow2_free_later(struct qcow2 *s, uint64_t host, uint64_t len)
{
	if (s->nfrees == s->frees_cap) {
		size_t cap = s->frees_cap ? s->frees_cap * 2 : 64;
		struct qcow2_free *f = realloc(s->frees, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		s->frees = f;
		s->frees_cap = cap;
	}
	s->frees[s->nfrees++] = (struct qcow2_free){host, len};
	return 0;
}

int qcow2_release_later(struct qcow2 *s, uint64_t e)
{
	if (e & QCOW2_L2E_COMPRESSED) {
		uint64_t host, nsect;

		qcow2_compressed_loc(s->cluster_bits, e, &host, &nsect);
		return qcow2_free_later(s, VS_ALIGN_DOWN(host, 512ull),
					nsect * QCOW2_COMPRESSED_SECT);
	}
	if (!(e & QCOW2_OFFSET_MASK))
		return 0;
	return qcow2_free_later(s, e & QCOW2_OFFSET_MASK, s->cluster_size);
}

void qcow2_l1_dirty(struct qcow2 *s, uint32_t i)
{
	if (s->l1_lo >= s->l1_hi) {
		s->l1_lo = i;
		s->l1_hi = i + 1;
		return;
	}
	s->l1_lo = VS_MIN(s->l1_lo, i);
	s->l1_hi = VS_MAX(s->l1_hi, i + 1);
}

static int l1_writeback(struct qcow2 *s)
{
	uint32_t lo = s->l1_lo, hi = s->l1_hi;
	autofree uint64_t *be = malloc((size_t)(hi - lo) * 8);
	int ret;

	if (!be)
		return -ENOMEM;
	for (uint32_t i = lo; i < hi; i++)
		be[i - lo] = htobe64(s->l1[i]);
	ret = qcow2_file_pwrite(s, s->m.h.l1_table_offset + (uint64_t)lo * 8,
				be, (size_t)(hi - lo) * 8);
	if (ret == 0)
		s->l1_lo = s->l1_hi = 0;
	return ret;
}

int qcow2_order(struct qcow2 *s)
{
	return s->unsafe ? 0 : vbd_flush(s->file);
}

/* Step 6: the dropped references go down; the clusters become free. */
static int apply_frees(struct qcow2 *s)
{
	int ret = 0;
	size_t i;

	/* A read or a write in place that looked its cluster up before the
	 * cluster was dropped may still be on its way there: wait for it. */
	qcow2_gate_drain(&s->gate);
	for (i = 0; i < s->nfrees && ret == 0; i++) {
		ret = qcow2_refcount_update(s, s->frees[i].host,
					    s->frees[i].len, -1);
		s->free_next = VS_MIN(s->free_next,
				      s->frees[i].host >> s->cluster_bits);
		qcow2_compress_forget(s, s->frees[i].host, s->frees[i].len);
	}
	/* A failed decrement leaks what is left: never decrement twice. */
	s->nfrees = 0;
	if (ret == 0)
		ret = qcow2_refcount_writeback(s);
	if (ret == 0)
		ret = qcow2_order(s);
	return ret;
}

int qcow2_meta_flush(struct qcow2 *s)
{
	bool tables = qcow2_l2_dirty(s) || s->l1_lo < s->l1_hi;
	int ret = 0;

	if (!s->writable)
		return vbd_flush(s->file);
	if (qcow2_refcount_dirty(s))
		ret = qcow2_refcount_writeback(s);
	if (ret == 0 && tables) {
		ret = qcow2_order(s);
		if (ret == 0)
			ret = qcow2_l2_writeback(s);
		if (ret == 0 && s->l1_lo < s->l1_hi) {
			ret = qcow2_order(s);
			if (ret == 0)
				ret = l1_writeback(s);
		}
	}
	if (ret == 0)
		ret = qcow2_order(s);
	if (ret == 0 && s->nfrees)
		ret = apply_frees(s);
	return ret;
}

int qcow2_meta_maybe_flush(struct qcow2 *s)
{
	if (qcow2_l2_crowded(s) || qcow2_refcount_crowded(s) ||
	    s->nfrees > 4096)
		return qcow2_meta_flush(s);
	return 0;
}
