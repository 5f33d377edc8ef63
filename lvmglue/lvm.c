/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LVs and VGs: listing, lookup, create, snapshot, remove, resize, and
 * recognising an LV behind a block device path.
 *
 * No previous tenant's data, ever.  Extents freed by lvremove keep their
 * bytes, and lvcreate's --zero wipes only the first 4 KiB, so a new or
 * grown linear LV is zeroed here before anyone sees it: BLKZEROOUT over
 * the new range.  The kernel turns that into REQ_OP_WRITE_ZEROES, which
 * a device that guarantees zeroes after unmapping may serve by unmapping
 * (the "discard with zeroing guaranteed" that BLKDISCARDZEROES once
 * promised), and into plain writes of zeroes where it cannot.  Thin LVs
 * need no pass: an unprovisioned chunk reads as zeros, and a pool with
 * zeroing on (lvm's `zero` attribute, the default) fills the rest of a
 * newly provisioned chunk with zeros before a partial write lands.  A
 * thin LV in a pool with zeroing off could expose old data through a
 * partial write, and zeroing it ourselves would provision every chunk,
 * so such a pool is refused.  Snapshots show their origin's data only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "lvm-priv.h"

#define REPORT_ARGS "--reportformat", "json", "--units", "b", "--nosuffix"

/* BLKZEROOUT blocks until its range is done; 1 GiB steps keep each call
 * short enough to see an error early. */
#define ZERO_STEP (1ull << 30)

static int run_lvs(const char *vg, const char *select, struct lvm_lv **lvs,
		   size_t *n, struct vs_error **err)
{
	const char *args[16] = {"lvs", REPORT_ARGS, "-o", LVM_LV_FIELDS};
	autofree char *out = NULL;
	int k = 8, ret;

	if (select) {
		args[k++] = "-S";
		args[k++] = select;
	}
	if (vg)
		args[k++] = vg;
	args[k] = NULL;
	ret = lvm_run(args, &out, err);
	if (ret < 0)
		return ret;
	return lvm_json_parse_lvs(out, "lvm lvs", lvs, n, err);
}

int lvm_lv_list(const char *vg, struct lvm_lv **lvs, size_t *n,
		struct vs_error **err)
{
	int ret;

	*lvs = NULL;
	*n = 0;
	if (vg) {
		ret = lvm_name_check(vg, "VG name", err);
		if (ret < 0)
			return ret;
	}
	ret = run_lvs(vg, NULL, lvs, n, err);
	if (ret < 0 && vg)
		vs_error_prefix(err, "VG %s", vg);
	return ret;
}

/* Look VG/LV up by selection: no match is an empty report and exit 0,
 * so "no such LV" (or VG) is told apart from lvm failing. */
static int find_split(const char *vg, const char *lv, struct lvm_lv *out,
		      struct vs_error **err)
{
	autofree char *sel = NULL;
	struct lvm_lv *lvs = NULL;
	size_t n = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	/* The names passed lvm_name_check: no quote can end the value. */
	if (asprintf(&sel, "vg_name=\"%s\" && lv_name=\"%s\"", vg, lv) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	ret = run_lvs(NULL, sel, &lvs, &n, err);
	if (ret < 0) {
		vs_error_prefix(err, "%s/%s", vg, lv);
		return ret;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(lvs[i].vg, vg) && !strcmp(lvs[i].name, lv)) {
			*out = lvs[i];
			memset(&lvs[i], 0, sizeof(lvs[i]));
			lvm_lv_free_array(lvs, n);
			return 0;
		}
	lvm_lv_free_array(lvs, n);
	return vs_error_set(err, ENOENT, "%s/%s: no such logical volume", vg,
			    lv);
}

int lvm_lv_find(const char *name, struct lvm_lv *out, struct vs_error **err)
{
	autofree char *vg = NULL, *lv = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = lvm_name_split(name, &vg, &lv, err);
	if (ret < 0)
		return ret;
	return find_split(vg, lv, out, err);
}

int lvm_vg_get(const char *vg, struct lvm_vg *out, struct vs_error **err)
{
	const char *args[] = {"vgs", REPORT_ARGS, "-o", LVM_VG_FIELDS,
			      "-S",  NULL,	  NULL};
	autofree char *sel = NULL, *text = NULL;
	struct lvm_vg *vgs = NULL;
	size_t n = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = lvm_name_check(vg, "VG name", err);
	if (ret < 0)
		return ret;
	if (asprintf(&sel, "vg_name=\"%s\"", vg) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	args[9] = sel;
	ret = lvm_run(args, &text, err);
	if (ret >= 0)
		ret = lvm_json_parse_vgs(text, "lvm vgs", &vgs, &n, err);
	if (ret < 0) {
		vs_error_prefix(err, "VG %s", vg);
		return ret;
	}
	ret = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		if (ret < 0 && !strcmp(vgs[i].name, vg)) {
			*out = vgs[i];
			memset(&vgs[i], 0, sizeof(vgs[i]));
			ret = 0;
		}
		lvm_vg_clear(&vgs[i]);
	}
	free(vgs);
	if (ret < 0)
		return vs_error_set(err, ENOENT, "%s: no such volume group",
				    vg);
	return 0;
}

const char *lvm_lv_type(const struct lvm_lv *lv)
{
	if (lv->thin_pool)
		return "thin-pool";
	if (lv->thin)
		return "thin";
	if (lv->snapshot)
		return "snapshot";
	/* '-' plain volume, 'o' origin of classic snapshots: linear or
	 * striped segments.  Mirrors, RAID, caches and VDO are not ours
	 * to describe. */
	if (lv->attr && (lv->attr[0] == '-' || lv->attr[0] == 'o'))
		return "linear";
	return "other";
}

/*
 * Write zeros over [off, off + len) of the block device at `path`.
 * `excl` opens it O_EXCL: a brand-new LV nobody may hold; a grown LV may
 * be held by its domain, which does not know the new range yet.
 */
static int zero_range(const char *path, uint64_t off, uint64_t len, bool excl,
		      struct vs_error **err)
{
	autoclose int fd = open(path, O_RDWR | O_CLOEXEC | (excl ? O_EXCL : 0));
	struct stat st;
	uint64_t size;

	if (fd < 0)
		return vs_error_set_errno(err, errno,
					  "%s: cannot open to zero it", path);
	if (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode))
		return vs_error_set(err, ENOTBLK, "%s: not a block device",
				    path);
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		return vs_error_set_errno(
			err, errno, "%s: cannot get the device size", path);
	if (off > size || len > size - off || (off | len) % 512)
		return vs_error_set(err, EINVAL,
				    "%s: zeroing %" PRIu64 "+%" PRIu64
				    " does not fit the device's %" PRIu64
				    " bytes in whole sectors",
				    path, off, len, size);
	while (len) {
		uint64_t range[2] = {off, VS_MIN(len, ZERO_STEP)};

		if (ioctl(fd, BLKZEROOUT, range) < 0)
			return vs_error_set_errno(
				err, errno, "%s: zeroing at offset %" PRIu64,
				path, off);
		off += range[1];
		len -= range[1];
	}
	if (fsync(fd) < 0)
		return vs_error_set_errno(err, errno, "%s: flushing the zeros",
					  path);
	return 0;
}

static int size_arg(char *buf, size_t len, uint64_t size)
{
	/* Bytes, whole sectors: lvm rounds up to extents itself. */
	if (size > UINT64_MAX - 511)
		return -EOVERFLOW;
	snprintf(buf, len, "%" PRIu64 "b", VS_ALIGN_UP(size, 512));
	return 0;
}

static int remove_quietly(const char *vg, const char *name)
{
	autofree char *full = NULL;
	struct vs_error *e = NULL;
	int ret;

	if (asprintf(&full, "%s/%s", vg, name) < 0)
		return -ENOMEM;
	const char *args[] = {"lvremove", "--yes", "-q", full, NULL};
	ret = lvm_run(args, NULL, &e);
	if (ret < 0)
		vs_log(VS_LOG_WARN, "lvm", "could not remove %s again: %s",
		       full, vs_error_msg(e));
	vs_error_free(e);
	return ret;
}

static int check_pool(const char *vg, const char *pool, struct vs_error **err)
{
	struct lvm_lv p;
	int ret = find_split(vg, pool, &p, err);

	if (ret == -ENOENT) {
		vs_error_prefix(err, "thin pool");
		return ret;
	}
	if (ret < 0)
		return ret;
	if (!p.thin_pool)
		ret = vs_error_set(err, EINVAL,
				   "%s/%s is a %s LV, not a thin pool", vg,
				   pool, lvm_lv_type(&p));
	else if (!p.zero)
		ret = vs_error_set(
			err, EPERM,
			"thin pool %s/%s does not zero new chunks, so a new "
			"thin LV could show data of removed ones through a "
			"partial write; turn zeroing on first (lvchange "
			"--zero y %s/%s)",
			vg, pool, vg, pool);
	lvm_lv_clear(&p);
	return ret;
}

int lvm_lv_create(const char *vg, const char *name, uint64_t size,
		  const char *thin_pool, struct lvm_lv *out,
		  struct vs_error **err)
{
	autofree char *pool_arg = NULL;
	struct lvm_lv lv;
	char sz[32];
	int ret;

	if (out)
		memset(out, 0, sizeof(*out));
	ret = lvm_names_check(vg, name, err);
	if (ret < 0)
		return ret;
	if (size == 0 || size_arg(sz, sizeof(sz), size) < 0)
		return vs_error_set(err, EINVAL,
				    "%s/%s: size %" PRIu64 " is not possible",
				    vg, name, size);
	if (thin_pool) {
		ret = lvm_name_check(thin_pool, "thin pool name", err);
		if (ret < 0)
			return ret;
		ret = check_pool(vg, thin_pool, err);
		if (ret < 0)
			return ret;
		if (asprintf(&pool_arg, "%s/%s", vg, thin_pool) < 0)
			return vs_error_set(err, ENOMEM, "out of memory");
		const char *args[] = {"lvcreate", "--yes", "-q", "--activate",
				      "y",	  "-V",	   sz,	 "--thinpool",
				      pool_arg,	  "-n",	   name, NULL};
		ret = lvm_run(args, NULL, err);
	} else {
		/* --zero and --wipesignatures only clear the start; the
		 * whole LV is zeroed below. */
		const char *args[] = {
			"lvcreate", "--yes",  "-q", "--activate",
			"y",	    "--zero", "y",  "--wipesignatures",
			"y",	    "-L",     sz,   "-n",
			name,	    vg,	      NULL};
		ret = lvm_run(args, NULL, err);
	}
	if (ret < 0) {
		vs_error_prefix(err, "cannot create %s/%s", vg, name);
		return ret;
	}
	ret = find_split(vg, name, &lv, err);
	if (ret < 0) {
		vs_error_prefix(err, "%s/%s was created but", vg, name);
		return ret == -ENOENT ? -EIO : ret;
	}
	if (!lv.active)
		ret = vs_error_set(err, EIO,
				   "%s/%s was created but is not active", vg,
				   name);
	else if (!thin_pool)
		ret = zero_range(lv.dm_path, 0, lv.size, true, err);
	if (ret < 0) {
		/* An LV we could not vouch for is not left behind. */
		vs_error_prefix(err, "%s/%s", vg, name);
		remove_quietly(vg, name);
		lvm_lv_clear(&lv);
		return ret;
	}
	if (out)
		*out = lv;
	else
		lvm_lv_clear(&lv);
	return 0;
}

int lvm_snapshot_lvcreate(struct lvm_shell *sh, const struct lvm_lv *origin,
			  const char *name, uint64_t cow_size,
			  struct vs_error **err)
{
	autofree char *src = NULL, *full = NULL;
	char sz[32];
	int ret;

	ret = lvm_names_check(origin->vg, name, err);
	if (ret < 0)
		return ret;
	if (asprintf(&src, "%s/%s", origin->vg, origin->name) < 0 ||
	    asprintf(&full, "%s/%s", origin->vg, name) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	if (cow_size == 0) {
		if (!origin->thin)
			return vs_error_set(err, EINVAL,
					    "%s is a %s LV: only a thin LV "
					    "has snapshots without a "
					    "copy-on-write size",
					    src, lvm_lv_type(origin));
		/* Thin snapshots are created with "skip activation" set;
		 * -kn clears it so that this one is active now and after
		 * a reboot. */
		const char *args[] = {"lvcreate",
				      "--yes",
				      "-q",
				      "-s",
				      "--setactivationskip",
				      "n",
				      "--activate",
				      "y",
				      "-n",
				      name,
				      src,
				      NULL};
		ret = lvm_run_in(sh, args, err);
	} else {
		if (size_arg(sz, sizeof(sz), cow_size) < 0)
			return vs_error_set(err, EINVAL,
					    "%s: COW size %" PRIu64
					    " is not possible",
					    full, cow_size);
		const char *args[] = {"lvcreate",   "--yes", "-q", "-s",
				      "--activate", "y",     "-L", sz,
				      "-n",	    name,    src,  NULL};
		ret = lvm_run_in(sh, args, err);
	}
	if (ret < 0)
		vs_error_prefix(err, "cannot snapshot %s as %s", src, full);
	return ret;
}

int lvm_snapshot_describe(const struct lvm_lv *origin, const char *name,
			  struct lvm_lv *out, struct vs_error **err)
{
	autofree char *full = NULL;
	struct lvm_lv lv;
	int ret;

	memset(out, 0, sizeof(*out));
	if (asprintf(&full, "%s/%s", origin->vg, name) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	ret = find_split(origin->vg, name, &lv, err);
	if (ret >= 0 && !lv.active) {
		const char *args[] = {"lvchange",
				      "-q",
				      "--activate",
				      "y",
				      "--ignoreactivationskip",
				      full,
				      NULL};

		lvm_lv_clear(&lv);
		ret = lvm_run(args, NULL, err);
		if (ret >= 0)
			ret = find_split(origin->vg, name, &lv, err);
		if (ret >= 0 && !lv.active)
			ret = vs_error_set(err, EIO, "cannot activate %s",
					   full);
	}
	if (ret < 0) {
		vs_error_prefix(err, "snapshot %s", full);
		remove_quietly(origin->vg, name);
		lvm_lv_clear(&lv);
		return ret < 0 && ret != -ENOENT ? ret : -EIO;
	}
	*out = lv;
	return 0;
}

int lvm_snapshot_create(const struct lvm_lv *origin, const char *name,
			uint64_t cow_size, struct lvm_lv *out,
			struct vs_error **err)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = lvm_snapshot_lvcreate(NULL, origin, name, cow_size, err);
	if (ret < 0)
		return ret;
	return lvm_snapshot_describe(origin, name, out, err);
}

/*
 * Find `name` among the LVs of `vg` (one lvs run) and move the LVs that
 * lvremove would take along with it (a pool's thin LVs, a classic
 * origin's snapshots) to the front of the array: *ndeps of them.
 */
static int find_with_dependents(const char *vg, const char *name,
				struct lvm_lv *lv, struct lvm_lv **deps,
				size_t *ndeps, struct vs_error **err)
{
	struct lvm_lv *all = NULL;
	size_t count = 0, k = 0;
	bool found = false;
	int ret = lvm_lv_list(vg, &all, &count, err);

	memset(lv, 0, sizeof(*lv));
	*deps = NULL;
	*ndeps = 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < count; i++)
		if (!strcmp(all[i].name, name)) {
			*lv = all[i];
			memset(&all[i], 0, sizeof(all[i]));
			found = true;
		}
	if (!found) {
		lvm_lv_free_array(all, count);
		return vs_error_set(err, ENOENT,
				    "%s/%s: no such logical volume", vg, name);
	}
	for (size_t i = 0; i < count; i++) {
		bool dep = all[i].name &&
			   ((lv->thin_pool && all[i].pool &&
			     !strcmp(all[i].pool, name)) ||
			    (!all[i].thin && all[i].snapshot && all[i].origin &&
			     !strcmp(all[i].origin, name)));

		if (dep) {
			struct lvm_lv tmp = all[i];

			all[i] = all[k];
			all[k++] = tmp;
		}
	}
	for (size_t i = k; i < count; i++)
		lvm_lv_clear(&all[i]);
	*deps = all;
	*ndeps = k;
	return 0;
}

static int busy(const struct lvm_lv *lv, const char *why, struct vs_error **err)
{
	return vs_error_set(err, EBUSY,
			    "%s/%s%s is in use: its device is open (by a "
			    "domain, a mount, a device-mapper table or "
			    "another process); not touching it",
			    lv->vg, lv->name, why);
}

/* "a, b, c" (malloc'd; NULL when out of memory). */
static char *join_names(const struct lvm_lv *lvs, size_t n)
{
	char *list = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&list, &len);

	if (!mem)
		return NULL;
	for (size_t i = 0; i < n; i++)
		fprintf(mem, "%s%s", i ? ", " : "", lvs[i].name);
	if (fclose(mem)) {
		free(list);
		return NULL;
	}
	return list;
}

int lvm_lv_remove_flags(const char *vg, const char *name, unsigned flags,
			struct vs_error **err)
{
	autofree char *full = NULL, *list = NULL;
	struct lvm_lv lv, *deps = NULL;
	size_t ndeps = 0;
	int ret;

	ret = lvm_names_check(vg, name, err);
	if (ret < 0)
		return ret;
	ret = find_with_dependents(vg, name, &lv, &deps, &ndeps, err);
	if (ret < 0)
		return ret;
	if (ndeps && !(flags & LVM_REMOVE_DEPENDENTS)) {
		list = join_names(deps, ndeps);
		ret = vs_error_set(err, EBUSY,
				   "%s/%s has %s that would go with it: %s; "
				   "remove them first, or force",
				   vg, name,
				   lv.thin_pool ? "thin volumes" : "snapshots",
				   list ? list : "(out of memory)");
		goto out;
	}
	for (size_t i = 0; i < ndeps; i++)
		if (deps[i].open) {
			ret = busy(&deps[i],
				   lv.thin_pool ? " (a thin volume of the pool)"
						: " (a snapshot of it)",
				   err);
			goto out;
		}
	/* A pool with active thin LVs shows open through them; those were
	 * checked above. */
	if (lv.open && !(lv.thin_pool && ndeps)) {
		ret = busy(&lv, "", err);
		goto out;
	}
	if (asprintf(&full, "%s/%s", vg, name) < 0) {
		ret = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	const char *args[] = {"lvremove", "--yes", "-q", full, NULL};
	ret = lvm_run(args, NULL, err);
	if (ret < 0)
		vs_error_prefix(err, "cannot remove %s", full);
out:
	lvm_lv_free_array(deps, ndeps);
	lvm_lv_clear(&lv);
	return ret;
}

int lvm_lv_remove(const char *vg, const char *name, struct vs_error **err)
{
	return lvm_lv_remove_flags(vg, name, 0, err);
}

static int resize_to(const char *full, uint64_t size, struct vs_error **err)
{
	char sz[32];

	if (size_arg(sz, sizeof(sz), size) < 0)
		return vs_error_set(err, EINVAL, "%s: size too large", full);
	const char *args[] = {"lvresize", "--yes", "-q", "-L", sz, full, NULL};
	return lvm_run(args, NULL, err);
}

int lvm_lv_resize_to(const struct lvm_lv *lv, uint64_t new_size,
		     bool allow_shrink, struct lvm_lv *out,
		     struct vs_error **err)
{
	autofree char *full = NULL;
	struct lvm_lv after = {0};
	uint64_t target, ext = lv->extent_size;
	int ret;

	if (out)
		memset(out, 0, sizeof(*out));
	if (asprintf(&full, "%s/%s", lv->vg, lv->name) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	/* What lvm will make of new_size: whole extents, rounded up. */
	if (new_size == 0 || ext == 0 || new_size > UINT64_MAX - ext)
		return vs_error_set(err, EINVAL,
				    "%s: a size of %" PRIu64 " bytes is not "
				    "possible",
				    full, new_size);
	target = (new_size + ext - 1) / ext * ext;
	if (target < lv->size && !allow_shrink)
		return vs_error_set(err, EINVAL,
				    "%s: shrinking from %" PRIu64 " to %" PRIu64
				    " bytes loses the data past the new end; "
				    "shrinking needs to be asked for",
				    full, lv->size, target);
	if (target < lv->size && lv->open)
		return busy(lv, " (shrinking it would cut off its user)", err);
	if (target != lv->size) {
		ret = resize_to(full, target, err);
		if (ret < 0) {
			vs_error_prefix(err, "cannot resize %s", full);
			return ret;
		}
	}
	ret = find_split(lv->vg, lv->name, &after, err);
	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	/* Grown: the new extents of a linear LV may hold a removed LV's
	 * data.  Thin LVs read zeros there; pools and snapshot stores
	 * are not read by anyone as data. */
	if (after.size > lv->size && !strcmp(lvm_lv_type(lv), "linear")) {
		ret = zero_range(after.dm_path, lv->size, after.size - lv->size,
				 false, err);
		if (ret < 0) {
			vs_error_prefix(err,
					"%s grew but its new space was not "
					"zeroed; shrinking it back",
					full);
			resize_to(full, lv->size, NULL);
			lvm_lv_clear(&after);
			return ret;
		}
	}
	if (out)
		*out = after;
	else
		lvm_lv_clear(&after);
	return 0;
}

int lvm_lv_resize(const char *vg, const char *name, uint64_t new_size,
		  bool allow_shrink, struct vs_error **err)
{
	struct lvm_lv lv;
	int ret = lvm_names_check(vg, name, err);

	if (ret < 0)
		return ret;
	ret = find_split(vg, name, &lv, err);
	if (ret < 0)
		return ret;
	ret = lvm_lv_resize_to(&lv, new_size, allow_shrink, NULL, err);
	lvm_lv_clear(&lv);
	return ret;
}

int lvm_sysfs_read(const char *path, char *buf, size_t len)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return 0;
}

int lvm_lv_probe(const char *path, struct lvm_lv *out, struct vs_error **err)
{
	autofree char *vg = NULL, *lv = NULL;
	char sys[96], uuid[160], name[160];
	struct vs_error *e = NULL;
	struct stat st;
	int ret;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0)
		return vs_error_set_errno(err, errno, "%s", path);
	if (!S_ISBLK(st.st_mode))
		return 0;
	/* Device-mapper devices made by LVM carry a dm uuid "LVM-" + the
	 * VG's and the LV's uuids (and a suffix for internal layers). */
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/uuid",
		 major(st.st_rdev), minor(st.st_rdev));
	if (lvm_sysfs_read(sys, uuid, sizeof(uuid)) < 0 ||
	    strncmp(uuid, "LVM-", 4))
		return 0;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/name",
		 major(st.st_rdev), minor(st.st_rdev));
	if (lvm_sysfs_read(sys, name, sizeof(name)) < 0)
		return 0;
	if (lvm_dm_name_split(name, &vg, &lv) < 0 ||
	    lvm_names_check(vg, lv, &e) < 0) {
		/* An internal layer (vg-pool_tdata, vg-lv-real). */
		vs_error_free(e);
		return 0;
	}
	/* The public LV's dm uuid is exactly "LVM-" and 64 uuid
	 * characters: anything longer is a layer below it. */
	if (strlen(uuid) != 4 + 64)
		return 0;
	ret = find_split(vg, lv, out, &e);
	if (ret == -ENOENT) {
		/* Not in the plain report: a hidden LV. */
		vs_error_free(e);
		return 0;
	}
	if (ret < 0) {
		vs_error_set(err, ret, "%s: %s", path, vs_error_msg(e));
		vs_error_free(e);
		return ret;
	}
	return 1;
}
