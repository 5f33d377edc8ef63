/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `vstor img check` for VMDK: every grain table entry of every sparse
 * extent is checked as qemu-img checks it (a grain past the end of its
 * file is an error), and more: grains inside the metadata, and for
 * compressed grains the marker (size inside the file, LBA matching the
 * entry).  A table that cannot be read counts as a check error.  There
 * is nothing to repair: fixes are refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "vmdk.h"

__attribute__((format(printf, 2, 3))) static void say(const char *fn,
						      const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vs_log(VS_LOG_INFO, "vmdk", "%s: %s", fn, line);
}

/* 0 when the grain at sector `gte` is sound, 1 when it is corrupt. */
static int check_grain(struct vmdk_sparse *sp, uint64_t g, uint32_t gte,
		       uint64_t vsector)
{
	uint64_t host = (uint64_t)gte * VMDK_SECTOR;
	uint8_t m[VMDK_GRAIN_MARKER];
	uint64_t zlen;

	if (host >= sp->file_size) {
		say(sp->path,
		    "ERROR: cluster offset for sector %" PRIu64
		    " points after EOF (grain at 0x%" PRIx64 ")",
		    vsector, host);
		return 1;
	}
	if (gte < sp->h.overhead) {
		say(sp->path,
		    "ERROR: cluster offset for sector %" PRIu64
		    " points into the metadata (grain at 0x%" PRIx64
		    ", first grain at sector %" PRIu64 ")",
		    vsector, host, sp->h.overhead);
		return 1;
	}
	if (!sp->compressed || !sp->markers)
		return 0;
	if (sp->file_size - host < VMDK_GRAIN_MARKER ||
	    vbd_pread(sp->file, host, m, sizeof(m)) < 0) {
		say(sp->path,
		    "ERROR: grain marker at 0x%" PRIx64 " is cut "
		    "short",
		    host);
		return 1;
	}
	zlen = vmdk_le32(m + 8);
	if (zlen == 0 || zlen > sp->file_size - host - VMDK_GRAIN_MARKER ||
	    vmdk_le64(m) != g * sp->h.grain_sectors) {
		say(sp->path,
		    "ERROR: grain marker at 0x%" PRIx64 " (sector %" PRIu64
		    ", %" PRIu64 " bytes) does not match grain %" PRIu64,
		    host, vmdk_le64(m), zlen, g);
		return 1;
	}
	return 0;
}

struct gd_ref {
	uint32_t sector, idx;
};

static int by_sector(const void *a, const void *b)
{
	const struct gd_ref *x = a, *y = b;

	if (x->sector != y->sector)
		return x->sector < y->sector ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * GD entries that point to a table another entry already uses: both
 * would map different grains to the same data.  Marking them keeps the
 * check proportional to the file, whatever the directory says.
 */
static bool *shared_tables(struct vmdk_sparse *sp, uint64_t *n_shared)
{
	struct gd_ref *refs =
		calloc(sp->gd_entries ? sp->gd_entries : 1, sizeof(*refs));
	bool *dup = calloc(sp->gd_entries ? sp->gd_entries : 1, 1);
	uint32_t n = 0;

	if (!refs || !dup) {
		free(refs);
		free(dup);
		return NULL;
	}
	for (uint32_t i = 0; i < sp->gd_entries; i++)
		if (sp->gd[i])
			refs[n++] = (struct gd_ref){sp->gd[i], i};
	qsort(refs, n, sizeof(*refs), by_sector);
	for (uint32_t i = 1; i < n; i++)
		if (refs[i].sector == refs[i - 1].sector) {
			dup[refs[i].idx] = true;
			(*n_shared)++;
			say(sp->path,
			    "ERROR: grain directory entry %u points to the "
			    "grain table at sector %u, which entry %u uses",
			    refs[i].idx, refs[i].sector, refs[i - 1].idx);
		}
	free(refs);
	return dup;
}

static void check_sparse(struct vmdk_extent *e, struct vbd_check *res)
{
	struct vmdk_sparse *sp = e->sp;
	uint32_t per = sp->h.num_gtes;
	bool *dup;

	pthread_mutex_lock(&sp->lock);
	dup = shared_tables(sp, &res->corruptions);
	if (!dup) {
		res->check_errors++;
		pthread_mutex_unlock(&sp->lock);
		return;
	}
	for (uint64_t g = 0; g < sp->grains; g++) {
		uint32_t idx = (uint32_t)(g / per), gte;

		/* Tables that are absent or shared: skip them whole. */
		if (dup[idx] || (!sp->gd[idx] && !sp->gt[idx])) {
			g = (uint64_t)(idx + 1) * per - 1;
			continue;
		}
		if (vmdk_gte_get(sp, g, &gte) < 0) {
			res->check_errors++;
			g = (uint64_t)(idx + 1) * per - 1;
			continue;
		}
		if (gte > VMDK_GTE_ZEROED)
			res->corruptions += (uint64_t)check_grain(
				sp, g, gte,
				(e->start / VMDK_SECTOR) +
					g * sp->h.grain_sectors);
	}
	free(dup);
	pthread_mutex_unlock(&sp->lock);
}

int vmdk_check(struct vbd *vbd, unsigned fix, struct vbd_check *res,
	       struct vs_error **errp)
{
	struct vmdk *s = vbd->opaque;

	if (fix)
		return vs_error_set(errp, ENOTSUP,
				    "%s: VMDK images cannot be repaired",
				    vbd->filename);
	for (unsigned i = 0; i < s->next; i++)
		if (s->ext[i].sp)
			check_sparse(&s->ext[i], res);
	return 0;
}
