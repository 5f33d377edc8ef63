/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to cow/: the internal snapshot table of a qcow2 image. */
#ifndef VS_COW_QCOW2_SNAPSHOT_H
#define VS_COW_QCOW2_SNAPSHOT_H

#include "qcow2.h"

/* One entry of the snapshot table, checked, in host byte order. */
struct qcow2_snap {
	uint64_t l1_offset; /* cluster-aligned, inside the file */
	uint32_t l1_size;   /* entries; the table fits the 32 MiB cap */
	char *id;
	char *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size; /* from the extra data, else the image's */
	uint64_t icount;    /* UINT64_MAX when absent */
	uint32_t extra_size;
	uint8_t *extra; /* extra data as found, kept on rewrite */
};

/*
 * Read and check the snapshot table the header points at (offset and
 * count bounded by the file, every entry's lengths inside the table,
 * each L1 table aligned and inside the file).  *out is an array of *n
 * entries (NULL when there are none), freed with qcow2_snaps_free.
 * Errors name the file, the entry and the field.
 */
int qcow2_snaps_read(struct qcow2 *s, const char *filename,
		     struct qcow2_snap **out, uint32_t *n,
		     struct vs_error **errp);
void qcow2_snaps_free(struct qcow2_snap *snaps, uint32_t n);
/* At open: read and check the table, then forget it (the operations
 * read it again, so nothing is kept that could go stale). */
int qcow2_snaps_check(struct qcow2 *s, const char *filename,
		      struct vs_error **errp);

/* The driver's snapshot callbacks (see vbd.h). */
int qcow2_snapshot_create(struct vbd *vbd, const char *name,
			  struct vs_error **errp);
int qcow2_snapshot_list(struct vbd *vbd, struct vbd_snapshot **list, int *count,
			struct vs_error **errp);
int qcow2_snapshot_apply(struct vbd *vbd, const char *name_or_id,
			 struct vs_error **errp);
int qcow2_snapshot_delete(struct vbd *vbd, const char *name_or_id,
			  struct vs_error **errp);

#endif
