/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cluster walk shared by backup, verify and restore (private to
 * lvmglue/backup*.c and restore.c).
 *
 * A disk is read in chunks of up to LVM_WALK_CHUNK clusters by worker
 * threads; each cluster is hashed (checksum.h) and tested for zeros in
 * the worker, then the caller's `work` callback runs on the chunk, in
 * parallel with other chunks (compression goes there), and its `store`
 * callback runs on the chunks one at a time in disk order (writes go
 * there, so that an image is laid out front to back), outside the
 * walk's lock, so that the other workers keep reading meanwhile.  A
 * sparse walk (a `want` map) of a source in the page cache hints the
 * wanted clusters ahead of the workers to the kernel (a window of
 * LVM_WALK_RA_CLUSTERS), which then reads many at once.
 *
 * img convert's pipeline is not used because a backup needs every byte's
 * hash and a per-cluster decision against the previous backup's hashes
 * (skip, store compressed, store as a zero cluster), which convert has no
 * hook for; see lvmglue/README.md.
 */
#ifndef VS_LVMGLUE_BACKUP_WALK_H
#define VS_LVMGLUE_BACKUP_WALK_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/progress.h"
#include "vbd/vbd.h"

#define LVM_WALK_CHUNK	     16u /* clusters per chunk: 1 MiB of 64 KiB ones */
#define LVM_WALK_MAX_THREADS 16u
/* Wanted clusters of a sparse walk hinted to the kernel ahead of the
 * workers (backup-walk.c: ra_plan): 32 MiB of 64 KiB ones. */
#define LVM_WALK_RA_CLUSTERS 512u
/* ...and at most this many more per chunk handed out. */
#define LVM_WALK_RA_BATCH 32u

/* What a backup does with one cluster (set by its work callback). */
enum lvm_walk_act {
	LVM_ACT_SKIP = 0, /* not wanted, or unchanged: nothing stored */
	LVM_ACT_PLAIN,	  /* store the bytes as they are */
	LVM_ACT_COMP,	  /* store comp[i] (clen[i] bytes) compressed */
	LVM_ACT_ZERO,	  /* store as a zero cluster */
};

struct lvm_walk_chunk {
	uint64_t first; /* the chunk's first cluster */
	unsigned n;	/* clusters in it */
	uint64_t off;	/* byte offset of the first cluster */
	uint8_t *buf;	/* n clusters of data (wanted ones read) */
	bool want[LVM_WALK_CHUNK];
	bool zero[LVM_WALK_CHUNK];
	uint32_t len[LVM_WALK_CHUNK]; /* bytes of each cluster (the disk's
				       * last may be short) */
	enum lvm_walk_act act[LVM_WALK_CHUNK];
	uint8_t *comp; /* LVM_WALK_CHUNK slots of comp_cap bytes */
	size_t comp_cap;
	size_t clen[LVM_WALK_CHUNK];
};

struct lvm_walk {
	struct vbd *src;
	uint64_t size;	  /* bytes of the disk to walk */
	uint32_t cluster; /* power of two */
	/* Clusters to read: a bitmap, or NULL for all of them. */
	const uint8_t *want;
	uint64_t *sums; /* out: the hash of each wanted cluster */
	unsigned threads;
	bool need_comp; /* workers get compression buffers */
	int (*work)(struct lvm_walk *w, struct lvm_walk_chunk *c);
	int (*store)(struct lvm_walk *w, struct lvm_walk_chunk *c);
	void *opaque;
	volatile sig_atomic_t *cancel; /* non-zero: stop with -EINTR */
	struct vs_progress *progress;
	const char *what; /* names the source in read errors */

	/* Private: the first error, with its message. */
	struct vs_error *err;
	pthread_mutex_t err_lock;
};

/* Run the walk.  Returns 0 or the first error (w->err then says it;
 * lvm_walk_run moves it to *errp). */
int lvm_walk_run(struct lvm_walk *w, struct vs_error **errp);

/* Callbacks report an error through this (first one wins). */
int lvm_walk_fail(struct lvm_walk *w, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Bitmap helpers for `want`. */
static inline bool lvm_bit(const uint8_t *map, uint64_t i)
{
	return map[i / 8] & (1u << (i % 8));
}

static inline void lvm_bit_set(uint8_t *map, uint64_t i)
{
	map[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* The threads to use by default: the CPUs online, 1..LVM_WALK_MAX_THREADS. */
unsigned lvm_walk_default_threads(void);

#endif
