/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live backups of LVs, their verification and their restore (the logic
 * behind `vstor backup`, `vstor backup verify` and `vstor restore`).
 *
 * A backup reads an LVM snapshot of the LV, so the LV's user (a running
 * domain) carries on, and writes a zstd-compressed qcow2 with its
 * manifest and checksums into a folder (manifest.h tells the layout).
 * Incremental backups store only the clusters changed since the last
 * backup of the same LV in that folder, as a qcow2 overlay on it: found
 * by thin_delta for thin LVs (the last backup's thin snapshot is kept as
 * the base of the next delta), by comparing per-cluster checksums with
 * the last manifest for classic LVs.
 *
 * Interruption: `cancel` (set from a signal handler by the caller) stops
 * the copy; every path, failures and interruptions included, removes the
 * snapshot it took and the partial image, and a backup counts only once
 * its manifest is written, last and atomically.
 */
#ifndef VS_LVMGLUE_BACKUP_H
#define VS_LVMGLUE_BACKUP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct lvm_backup_opts {
	const char *source; /* the LV: /dev/VG/LV, /dev/mapper/VG-LV, VG/LV */
	const char *dest;   /* the backup folder (exists) */
	const char *domain; /* recorded in the manifest; may be NULL */
	bool incremental;   /* on the last backup, if there is one */
	/* Classic snapshots: the exception store's size; 0 chooses
	 * (lvm_backup_cow_size). */
	uint64_t snapshot_size;
	unsigned threads; /* 0: one per CPU */
	bool progress;	  /* qemu-img's progress line on stderr */
	volatile sig_atomic_t *cancel;
};

struct lvm_backup_result {
	char *manifest;	  /* the new backup's manifest path */
	const char *kind; /* "full" or "incremental" (static) */
	const char *method;
	uint64_t clusters, changed, zeroed;
};

int lvm_backup(const struct lvm_backup_opts *o, struct lvm_backup_result *res,
	       struct vs_error **errp);
void lvm_backup_result_clear(struct lvm_backup_result *res);

/*
 * The exception store of a classic snapshot of an LV of `size` bytes in
 * a VG with `vg_free` free bytes in extents of `extent` bytes: enough for
 * the whole origin to be overwritten while the backup runs (size plus
 * 1/32 for the store's own metadata), but never more than half the free
 * space, so that other snapshots and growing LVs keep room.  Rounded to
 * extents.  0 when even 1/8 of the origin does not fit: the backup then
 * fails with ENOSPC rather than risk a snapshot that overflows.
 */
uint64_t lvm_backup_cow_size(uint64_t size, uint64_t vg_free, uint64_t extent);

/*
 * Verify the chain ending at the manifest `path`: every manifest and
 * link, every sums file against its manifest, every image's structure
 * (qcow2 check) and backing file name, and every cluster of every point
 * read back and hashed.  A cluster that a point's image does not store
 * is checked by comparing that point's recorded checksum with the
 * previous point's (already checked against data), so each stored
 * cluster is read once.  The first mismatch is the error.
 */
struct lvm_verify_result {
	unsigned points;
	uint64_t clusters_read;
};
int lvm_backup_verify(const char *path, unsigned threads, bool progress,
		      volatile sig_atomic_t *cancel,
		      struct lvm_verify_result *res, struct vs_error **errp);

/*
 * Restore the point of a backup chain named by `backup` (its .json
 * manifest, or its .qcow2 beside one) into `target`:
 *  - an LV or another block device: at least as large as the backup (a
 *    larger one keeps its tail); refused while open (in use); every
 *    cluster is written, zero clusters as zeroes;
 *  - otherwise an image file, created (it must not exist) in `format`
 *    ("raw", the default, or "qcow2": zero clusters stay unallocated).
 * Every cluster read is checked against the manifest's checksums before
 * it is written; a mismatch stops the restore.
 */
struct lvm_restore_opts {
	const char *backup;
	const char *target;
	const char *format; /* for an image file; NULL: raw */
	unsigned threads;
	bool progress;
	volatile sig_atomic_t *cancel;
};
int lvm_restore(const struct lvm_restore_opts *o, struct vs_error **errp);

#endif
