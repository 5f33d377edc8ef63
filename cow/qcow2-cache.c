/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metadata cache: whole clusters of L2 tables or refcount blocks,
 * found by host offset through a small hash, evicted least recently used
 * first, and written back.
 *
 * A dirty slot is never evicted: only a clean one is a victim.  Writers
 * keep at most half of the slots dirty (qcow2_cache_crowded), so a
 * reader always finds a victim without having to write anything back —
 * writing back has an order (data, refcounts, tables) that only the
 * flush path knows.  The caller serialises every call on one cache
 * (l2_lock for the L2 cache, w_lock for the refcount cache).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, uint32_t nslots,
		     uint32_t cluster_size, bool be64)
{
	uint32_t h = 1;

	memset(c, 0, sizeof(*c));
	while (h < nslots)
		h <<= 1;
	c->slots = calloc(nslots, sizeof(*c->slots));
	c->hash = malloc(sizeof(*c->hash) * h);
	if (!c->slots || !c->hash)
		return -ENOMEM;
	for (uint32_t i = 0; i < h; i++)
		c->hash[i] = -1;
	for (uint32_t i = 0; i < nslots; i++)
		c->slots[i].next = -1;
	c->n = nslots;
	c->hmask = h - 1;
	c->cluster_size = cluster_size;
	c->be64 = be64;
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	if (!c->slots)
		return;
	for (uint32_t i = 0; i < c->n; i++)
		free(c->slots[i].data);
	free(c->slots);
	free(c->hash);
	memset(c, 0, sizeof(*c));
}

static uint32_t bucket(const struct qcow2_cache *c, uint64_t off)
{
	/* Tables are cluster-aligned: mix the cluster number. */
	uint64_t k = off * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(k >> 40) & c->hmask;
}

static void unhash(struct qcow2_cache *c, int32_t i)
{
	int32_t *p = &c->hash[bucket(c, c->slots[i].offset)];

	while (*p != -1 && *p != i)
		p = &c->slots[*p].next;
	if (*p == i)
		*p = c->slots[i].next;
	c->slots[i].next = -1;
	c->slots[i].offset = 0;
}

static void rehash(struct qcow2_cache *c, int32_t i, uint64_t off)
{
	uint32_t b = bucket(c, off);

	c->slots[i].offset = off;
	c->slots[i].next = c->hash[b];
	c->hash[b] = i;
}

struct qcow2_meta_slot *qcow2_cache_find(struct qcow2_cache *c, uint64_t off)
{
	for (int32_t i = c->hash[bucket(c, off)]; i != -1; i = c->slots[i].next)
		if (c->slots[i].offset == off) {
			c->slots[i].used = ++c->clock;
			return &c->slots[i];
		}
	return NULL;
}

/* A clean slot to reuse (an empty one first), or -1. */
static int32_t victim(struct qcow2_cache *c)
{
	int32_t best = -1;

	for (uint32_t i = 0; i < c->n; i++) {
		struct qcow2_meta_slot *sl = &c->slots[i];

		if (!sl->offset)
			return (int32_t)i;
		if (!sl->dirty && (best < 0 || sl->used < c->slots[best].used))
			best = (int32_t)i;
	}
	return best;
}

/* Take a slot for `off`, its buffer allocated, not yet filled. */
static int take(struct qcow2_cache *c, uint64_t off,
		struct qcow2_meta_slot **out)
{
	int32_t i = victim(c);
	struct qcow2_meta_slot *sl;

	if (i < 0)
		return -EBUSY; /* every slot dirty: a writer broke the rule */
	sl = &c->slots[i];
	if (sl->offset)
		unhash(c, i);
	if (!sl->data) {
		sl->data = malloc(c->cluster_size);
		if (!sl->data)
			return -ENOMEM;
	}
	sl->dirty = false;
	*out = sl;
	return 0;
}

int qcow2_cache_get(struct qcow2_cache *c, struct vbd *file, uint64_t off,
		    struct qcow2_meta_slot **out)
{
	struct qcow2_meta_slot *sl = qcow2_cache_find(c, off);
	int ret;

	if (sl) {
		*out = sl;
		return 0;
	}
	ret = take(c, off, &sl);
	if (ret < 0)
		return ret;
	ret = vbd_pread(file, off, sl->data, c->cluster_size);
	if (ret < 0)
		return ret; /* the slot stays empty */
	if (c->be64)
		for (uint32_t i = 0; i < c->cluster_size / 8; i++)
			sl->table[i] = be64toh(sl->table[i]);
	rehash(c, (int32_t)(sl - c->slots), off);
	sl->used = ++c->clock;
	*out = sl;
	return 1;
}

int qcow2_cache_new(struct qcow2_cache *c, uint64_t off,
		    struct qcow2_meta_slot **out)
{
	struct qcow2_meta_slot *sl = qcow2_cache_find(c, off);
	int ret;

	if (!sl) {
		ret = take(c, off, &sl);
		if (ret < 0)
			return ret;
		rehash(c, (int32_t)(sl - c->slots), off);
		sl->used = ++c->clock;
	}
	memset(sl->data, 0, c->cluster_size);
	qcow2_cache_dirty(c, sl);
	*out = sl;
	return 0;
}

void qcow2_cache_dirty(struct qcow2_cache *c, struct qcow2_meta_slot *sl)
{
	if (!sl->dirty) {
		sl->dirty = true;
		c->ndirty++;
	}
}

void qcow2_cache_clean(struct qcow2_cache *c, struct qcow2_meta_slot *sl)
{
	if (sl->dirty) {
		sl->dirty = false;
		c->ndirty--;
	}
}

bool qcow2_cache_crowded(const struct qcow2_cache *c)
{
	return c->ndirty * 2 >= c->n;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off)
{
	struct qcow2_meta_slot *sl = qcow2_cache_find(c, off);

	if (sl) {
		qcow2_cache_clean(c, sl);
		unhash(c, (int32_t)(sl - c->slots));
	}
}

void qcow2_cache_drop_all(struct qcow2_cache *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->slots[i].offset) {
			qcow2_cache_clean(c, &c->slots[i]);
			unhash(c, (int32_t)i);
		}
}

int qcow2_cache_encode(const struct qcow2_cache *c,
		       const struct qcow2_meta_slot *sl, void *buf)
{
	if (!c->be64) {
		memcpy(buf, sl->data, c->cluster_size);
		return 0;
	}
	for (uint32_t i = 0; i < c->cluster_size / 8; i++)
		((uint64_t *)buf)[i] = htobe64(sl->table[i]);
	return 0;
}
