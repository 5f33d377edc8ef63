/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Backup manifests: the JSON file that makes a backup a backup.
 *
 * A backup of one LV at one point in time is three files in the
 * destination folder, all named NAME-STAMP (NAME = VG-LV, STAMP = the
 * UTC time, e.g. vg0-web1-20261122T035134Z):
 *
 *   NAME-STAMP.qcow2  the data: a qcow2 image, zstd-compressed clusters;
 *                     an incremental one is an overlay whose backing
 *                     file is the previous point's .qcow2 (a relative
 *                     name, format qcow2)
 *   NAME-STAMP.sums   the per-cluster checksums of the whole disk at
 *                     that point (a small binary file, below)
 *   NAME-STAMP.json   this manifest: the source, the time, the chain
 *                     link, the checksums' summary.  It is written last
 *                     and atomically, so a backup without a manifest
 *                     never counts, whatever else is left on disk.
 *
 * Chains are found through the manifests: "backing" names the previous
 * point's manifest, and the latest backup of a source in a folder is
 * the complete manifest with that source's LV uuid and the newest time.
 *
 * Everything read back is untrusted (a backup folder may sit on a shared
 * file server): file names must be plain names in the same folder,
 * numbers are range-checked, the sums file's length must match, and its
 * hash must match the manifest's image checksum.
 *
 * The .sums file: a 32-byte header, "VSTORSUM", version (le32 = 1),
 * cluster size (le32), cluster count (le64), 8 bytes of zeros; then one
 * le64 hash per cluster.
 */
#ifndef VS_LVMGLUE_MANIFEST_H
#define VS_LVMGLUE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define LVM_MANIFEST_FORMAT  "vstor-backup"
#define LVM_MANIFEST_VERSION 1
/* A manifest is small; a bigger file is not one of ours. */
#define LVM_MANIFEST_MAX_BYTES (1u << 20)
/* Links followed before a chain is called too long (or a loop). */
#define LVM_CHAIN_MAX 10000

struct lvm_manifest {
	/* Where it lives (set by load, or by the writer). */
	char *dir;  /* the folder, never NULL once loaded */
	char *name; /* NAME-STAMP: the three files' common stem */

	/* The source. */
	char *vg, *lv, *uuid;
	char *lv_type; /* "linear" (classic snapshot) or "thin" */
	char *domain;  /* the domain whose disk it is, or NULL */
	uint64_t size; /* bytes */

	/* The point in time (UTC). */
	uint64_t time_ns; /* since the epoch */
	char *time;	  /* ISO 8601, for people */

	/* The chain. */
	uint32_t seq;  /* 0 for a full backup, previous + 1 */
	char *backing; /* the previous point's NAME-STAMP, NULL if full */
	char *method;  /* "full", "thin-delta" or "checksums" */

	/* The data. */
	uint32_t cluster_size;
	uint64_t clusters;  /* ceil(size / cluster_size) */
	uint64_t image_sum; /* lvm_sum_image of the .sums */
	uint64_t changed;   /* clusters stored in this point's image */
	uint64_t zeroed;    /* of those, stored as zero clusters */

	/* Thin sources: the snapshot kept as the base of the next
	 * thin_delta (NULL for classic LVs or once it was dropped). */
	char *thin_snapshot, *thin_snapshot_uuid;
};

/* "DIR/NAME.EXT" (malloc'd) or NULL when out of memory. */
char *lvm_manifest_file(const struct lvm_manifest *m, const char *ext);

/* Parse manifest text; `what` names it in errors (its path). */
int lvm_manifest_parse(const char *text, size_t len, const char *what,
		       struct lvm_manifest *out, struct vs_error **errp);

/* Read and parse DIR/NAME.json given its path. */
int lvm_manifest_load(const char *path, struct lvm_manifest *out,
		      struct vs_error **errp);

/* The manifest as JSON text (malloc'd). */
int lvm_manifest_format(const struct lvm_manifest *m, char **out,
			struct vs_error **errp);

/* Write DIR/NAME.json atomically: a temporary file, fsync, rename,
 * fsync of the folder. */
int lvm_manifest_write(const struct lvm_manifest *m, struct vs_error **errp);

/*
 * The .sums file.  lvm_sums_read checks the header against the manifest
 * (cluster size and count) and the hashes against m->image_sum; *sums
 * (m->clusters entries) is the caller's to free.  lvm_sums_write writes
 * DIR/NAME.sums atomically as the manifest is written.
 */
int lvm_sums_read(const struct lvm_manifest *m, uint64_t **sums,
		  struct vs_error **errp);
int lvm_sums_write(const struct lvm_manifest *m, const uint64_t *sums,
		   struct vs_error **errp);
/* The same on an in-memory image of the file (unit tests, fuzzing). */
int lvm_sums_parse(const void *data, size_t len, const char *what,
		   const struct lvm_manifest *m, uint64_t **sums,
		   struct vs_error **errp);

/*
 * The newest complete backup in `dir` of the LV with `uuid`: 0 and *out
 * filled, -ENOENT when there is none.  Manifests that do not parse are
 * skipped with a warning (one bad file must not stop every backup).
 */
int lvm_manifest_latest(const char *dir, const char *uuid,
			struct lvm_manifest *out, struct vs_error **errp);

/*
 * The chain ending at the manifest at `path`: *chain[0] is the full
 * backup, *chain[*n - 1] the one named.  Each link is checked: same
 * source uuid, size and cluster size, seq one less, a loop or a chain
 * longer than LVM_CHAIN_MAX refused.  Free with lvm_manifest_free_array.
 */
int lvm_manifest_chain(const char *path, struct lvm_manifest **chain, size_t *n,
		       struct vs_error **errp);

void lvm_manifest_clear(struct lvm_manifest *m);
void lvm_manifest_free_array(struct lvm_manifest *a, size_t n);

/* Is `name` a plain file name (no '/', not "." or "..", printable, at
 * most 200 bytes)?  Backing and stem names from manifests must be. */
bool lvm_manifest_name_ok(const char *name);

#endif
