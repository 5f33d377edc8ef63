/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating VMDK images with qemu-img's options: subformat
 * (monolithicSparse, monolithicFlat, twoGbMaxExtentSparse,
 * twoGbMaxExtentFlat, streamOptimized), adapter_type, hwversion, compat6,
 * toolsversion, zeroed_grain, and backing_file/backing_fmt (-b/-F: a
 * sparse child whose parentCID is the parent's CID).
 *
 * Sparse extents are laid out as qemu lays them out (header, embedded
 * descriptor, redundant GD and its tables, GD and its tables, all tables
 * preallocated, grains from the next grain boundary), so writes never
 * have to allocate a table.  streamOptimized images are written as
 * VMware streams them: the header says the GD is at the end, and an
 * empty GD, the footer and the end-of-stream marker follow.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../common/opts.h"
#include "../../vbd/driver.h"
#include "vmdk.h"

static const char what[] = "vmdk format option";

enum subformat {
	SUB_MONO_SPARSE,
	SUB_MONO_FLAT,
	SUB_2GB_SPARSE,
	SUB_2GB_FLAT,
	SUB_STREAM,
};

static const char *const sub_names[] = {
	"monolithicSparse",   "monolithicFlat",	 "twoGbMaxExtentSparse",
	"twoGbMaxExtentFlat", "streamOptimized",
};

struct vc_params {
	enum subformat sub;
	const char *adapter;
	const char *hwversion;
	const char *toolsversion;
	bool zeroed_grain;
	uint64_t sectors;
	uint32_t cid;
	const char *backing; /* the parent as the child names it, or NULL */
	uint32_t parent_cid;
};

static int parse_options(struct vs_opts *opts, struct vc_params *p,
			 struct vs_error **errp)
{
	const char *v;
	bool compat6 = false;
	int ret;

	v = vs_opts_get(opts, "subformat");
	p->sub = SUB_MONO_SPARSE;
	if (v) {
		size_t i;

		for (i = 0; i < VS_ARRAY_SIZE(sub_names); i++)
			if (!strcmp(v, sub_names[i]))
				break;
		if (i == VS_ARRAY_SIZE(sub_names))
			return vs_error_set(
				errp, EINVAL,
				"%s subformat='%s': expected "
				"monolithicSparse, monolithicFlat, "
				"twoGbMaxExtentSparse, twoGbMaxExtentFlat or "
				"streamOptimized",
				what, v);
		p->sub = (enum subformat)i;
	}
	p->adapter = vs_opts_get(opts, "adapter_type");
	if (!p->adapter)
		p->adapter = "ide";
	if (strcmp(p->adapter, "ide") && strcmp(p->adapter, "buslogic") &&
	    strcmp(p->adapter, "lsilogic") && strcmp(p->adapter, "legacyESX"))
		return vs_error_set(errp, EINVAL,
				    "%s adapter_type='%s': expected ide, "
				    "buslogic, lsilogic or legacyESX",
				    what, p->adapter);
	ret = vs_opts_get_bool(opts, "compat6", &compat6, errp);
	if (ret == 0)
		ret = vs_opts_get_bool(opts, "zeroed_grain", &p->zeroed_grain,
				       errp);
	if (ret < 0)
		return ret;
	p->hwversion = vs_opts_get(opts, "hwversion");
	if (p->hwversion && compat6)
		return vs_error_set(errp, EINVAL,
				    "%s: compat6 cannot be enabled with "
				    "hwversion set",
				    what);
	if (!p->hwversion || !strcmp(p->hwversion, "undefined"))
		p->hwversion = compat6 ? "6" : "4";
	p->toolsversion = vs_opts_get(opts, "toolsversion");
	if (!p->toolsversion)
		p->toolsversion = "2147483647";
	for (const char *c = p->hwversion; *c; c++)
		if (*c < '0' || *c > '9')
			return vs_error_set(errp, EINVAL,
					    "%s hwversion='%s': expected a "
					    "number",
					    what, p->hwversion);
	for (const char *c = p->toolsversion; *c; c++)
		if (*c < '0' || *c > '9')
			return vs_error_set(errp, EINVAL,
					    "%s toolsversion='%s': expected a "
					    "number",
					    what, p->toolsversion);
	p->backing = vs_opts_get(opts, "backing_file");
	v = vs_opts_get(opts, "backing_fmt");
	if (v && strcmp(v, "vmdk"))
		return vs_error_set(errp, ENOTSUP,
				    "%s backing_fmt='%s': a VMDK parent is a "
				    "VMDK disk",
				    what, v);
	if (p->backing && p->sub != SUB_MONO_SPARSE && p->sub != SUB_2GB_SPARSE)
		return vs_error_set(errp, ENOTSUP,
				    "%s backing_file: a child disk must be "
				    "monolithicSparse or twoGbMaxExtentSparse, "
				    "not %s",
				    what, sub_names[p->sub]);
	if (p->backing && strchr(p->backing, '"'))
		return vs_error_set(errp, EINVAL,
				    "%s backing_file='%s': a descriptor cannot "
				    "name a file with a double quote",
				    what, p->backing);
	return vs_opts_check_used(opts, errp);
}

/* Files. */

/* Created (locked first, so an image in use loses nothing), then emptied. */
static int vmdk_create_open(const char *path, struct vs_error **errp)
{
	int fd = vbd_create_open(path, "VMDK", errp);

	if (fd >= 0 && ftruncate(fd, 0) < 0) {
		int ret = vs_error_set_errno(errp, errno, "%s: cannot truncate",
					     path);

		close(fd);
		return ret;
	}
	return fd;
}

static int finish(int fd, const char *path, uint64_t size,
		  struct vs_error **errp)
{
	if (ftruncate(fd, (off_t)size) < 0)
		return vs_error_set_errno(errp, errno,
					  "%s: cannot set the size to %" PRIu64,
					  path, size);
	if (fsync(fd) < 0)
		return vs_error_set_errno(errp, errno, "%s: fsync", path);
	return 0;
}

/* The descriptor. */

static char *descriptor(const struct vc_params *p, const char *extents)
{
	unsigned heads = strcmp(p->adapter, "ide") ? 255 : 16;
	autofree char *parent = NULL;
	char *d;

	if (p->backing ? asprintf(&parent, "parentFileNameHint=\"%s\"\n",
				  p->backing) < 0
		       : !(parent = strdup("")))
		return NULL;
	if (asprintf(&d,
		     "# Disk DescriptorFile\n"
		     "version=1\n"
		     "CID=%08x\n"
		     "parentCID=%08x\n"
		     "createType=\"%s\"\n"
		     "%s"
		     "\n"
		     "# Extent description\n"
		     "%s"
		     "\n"
		     "# The Disk Data Base\n"
		     "#DDB\n"
		     "\n"
		     "ddb.virtualHWVersion = \"%s\"\n"
		     "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
		     "ddb.geometry.heads = \"%u\"\n"
		     "ddb.geometry.sectors = \"63\"\n"
		     "ddb.adapterType = \"%s\"\n"
		     "ddb.toolsVersion = \"%s\"\n",
		     p->cid, p->parent_cid, sub_names[p->sub], parent, extents,
		     p->hwversion, p->sectors / (heads * 63u), heads,
		     p->adapter, p->toolsversion) < 0)
		return NULL;
	return d;
}

/* Append one extent line to *list. */
static int add_line(char **list, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_line(char **list, const char *fmt, ...)
{
	char *line, *n;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	r = asprintf(&n, "%s%s", *list ? *list : "", line);
	free(line);
	if (r < 0)
		return -ENOMEM;
	free(*list);
	*list = n;
	return 0;
}

/* Sparse extents. */

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static void put_table(uint8_t *buf, uint64_t n, uint64_t first, uint64_t step)
{
	for (uint64_t i = 0; i < n; i++)
		vmdk_put32(buf + 4 * i, (uint32_t)(first + i * step));
}

/*
 * A hosted sparse extent of `sectors` at `path`, its descriptor text
 * (`desc`, may be NULL) embedded.
 */
static int write_sparse(const char *path, const struct vc_params *p,
			uint64_t sectors, const char *desc,
			struct vs_error **errp)
{
	const uint64_t grain = VMDK_DEFAULT_GRAIN, ngtes = 512;
	uint64_t gts = div_up(div_up(sectors, grain), ngtes);
	uint64_t gd_sec = div_up(gts * 4, VMDK_SECTOR), gt_sec = 4;
	uint64_t rgd = 1 + VMDK_DESC_SECTORS, gd = rgd + gd_sec + gts * gt_sec;
	uint64_t end = gd + gd_sec + gts * gt_sec;
	struct vmdk_header h = {
		.version = p->zeroed_grain ? 2 : 1,
		.flags = VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD |
			 (p->zeroed_grain ? VMDK_FLAG_ZERO_GRAIN : 0),
		.capacity = sectors,
		.grain_sectors = grain,
		.desc_offset = 1,
		.desc_size = VMDK_DESC_SECTORS,
		.num_gtes = (uint32_t)ngtes,
		.rgd_offset = rgd,
		.gd_offset = gd,
		.overhead = VS_ALIGN_UP(end, grain),
	};
	size_t meta = (size_t)(h.overhead * VMDK_SECTOR);
	autofree uint8_t *buf = calloc(1, meta);
	autoclose int fd = -1;
	int ret;

	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	vmdk_header_encode(&h, buf);
	if (desc)
		memcpy(buf + VMDK_SECTOR, desc, strlen(desc));
	put_table(buf + rgd * VMDK_SECTOR, gts, rgd + gd_sec, gt_sec);
	put_table(buf + gd * VMDK_SECTOR, gts, gd + gd_sec, gt_sec);
	fd = vmdk_create_open(path, errp);
	if (fd < 0)
		return fd;
	ret = vbd_create_write(fd, path, buf, meta, 0, errp);
	return ret < 0 ? ret : finish(fd, path, meta, errp);
}

/* An empty stream: header, descriptor, then the tail of an image with
 * no grains (an all-zero GD, footer, end-of-stream marker). */
static int write_stream(const char *path, const struct vc_params *p,
			const char *desc, struct vs_error **errp)
{
	const uint64_t grain = VMDK_DEFAULT_GRAIN, ngtes = 512;
	uint64_t gts = div_up(div_up(p->sectors, grain), ngtes);
	uint64_t gd_sec = div_up(gts * 4, VMDK_SECTOR);
	uint64_t data = VMDK_STREAM_OVERHEAD;
	struct vmdk_header h = {
		.version = 3,
		.flags = VMDK_FLAG_NL_DETECT | VMDK_FLAG_COMPRESSED |
			 VMDK_FLAG_MARKERS,
		.capacity = p->sectors,
		.grain_sectors = grain,
		.desc_offset = 1,
		.desc_size = VMDK_DESC_SECTORS,
		.num_gtes = (uint32_t)ngtes,
		.gd_offset = VMDK_GD_AT_END,
		.overhead = data,
		.compress = VMDK_COMPRESS_DEFLATE,
	};
	size_t size = (size_t)((data + 1 + gd_sec + 3) * VMDK_SECTOR);
	autofree uint8_t *buf = calloc(1, size);
	autoclose int fd = -1;
	uint8_t *m;
	int ret;

	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	vmdk_header_encode(&h, buf);
	memcpy(buf + VMDK_SECTOR, desc, strlen(desc));
	m = buf + data * VMDK_SECTOR;
	vmdk_put64(m, gd_sec);
	vmdk_put32(m + 12, VMDK_MARKER_GD);
	m += (1 + gd_sec) * VMDK_SECTOR;
	vmdk_put64(m, 1);
	vmdk_put32(m + 12, VMDK_MARKER_FOOTER);
	h.gd_offset = data + 1;
	vmdk_header_encode(&h, m + VMDK_SECTOR);
	/* The end-of-stream marker is a zero sector. */
	fd = vmdk_create_open(path, errp);
	if (fd < 0)
		return fd;
	ret = vbd_create_write(fd, path, buf, size, 0, errp);
	return ret < 0 ? ret : finish(fd, path, size, errp);
}

static int write_flat(const char *path, uint64_t bytes, struct vs_error **errp)
{
	autoclose int fd = vmdk_create_open(path, errp);

	if (fd < 0)
		return fd;
	return finish(fd, path, bytes, errp);
}

/* Names. */

/* "dir/name.vmdk" -> "name"; extents go beside the descriptor. */
static char *stem(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".vmdk"))
		n -= 5;
	return strndup(base, n);
}

static char *beside(const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	char *p;

	if (!slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - path), path, name) < 0)
		return NULL;
	return p;
}

static int create_split(const char *path, const struct vc_params *p,
			struct vs_error **errp)
{
	bool sparse = p->sub == SUB_MONO_SPARSE || p->sub == SUB_2GB_SPARSE;
	bool split = p->sub == SUB_2GB_SPARSE || p->sub == SUB_2GB_FLAT;
	uint64_t chunk = split ? VMDK_2GB_EXTENT : p->sectors;
	autofree char *base = stem(path), *lines = NULL, *desc = NULL;
	autoclose int fd = -1;
	int ret = 0;

	if (!base)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint64_t at = 0, i = 1; ret == 0 && (at < p->sectors || i == 1);
	     i++) {
		uint64_t n = VS_MIN(chunk, p->sectors - at);
		autofree char *name = NULL, *full = NULL;

		if (asprintf(&name,
			     split ? "%s-%c%03" PRIu64 ".vmdk" : "%s-flat.vmdk",
			     base, sparse ? 's' : 'f', i) < 0 ||
		    !(full = beside(path, name)))
			return vs_error_set(errp, ENOMEM, "out of memory");
		/* An extent line says at least one sector. */
		if (n == 0)
			break;
		ret = sparse ? write_sparse(full, p, n, NULL, errp)
			     : write_flat(full, n * VMDK_SECTOR, errp);
		if (ret == 0 &&
		    add_line(&lines,
			     sparse ? "RW %" PRIu64 " SPARSE \"%s\"\n"
				    : "RW %" PRIu64 " FLAT \"%s\" 0\n",
			     n, name) < 0)
			ret = vs_error_set(errp, ENOMEM, "out of memory");
		at += n;
	}
	if (ret < 0)
		return ret;
	desc = descriptor(p, lines ? lines : "");
	if (!desc)
		return vs_error_set(errp, ENOMEM, "out of memory");
	fd = vmdk_create_open(path, errp);
	if (fd < 0)
		return fd;
	ret = vbd_create_write(fd, path, desc, strlen(desc), 0, errp);
	return ret < 0 ? ret : finish(fd, path, strlen(desc), errp);
}

static int create_mono(const char *path, const struct vc_params *p,
		       struct vs_error **errp)
{
	autofree char *base = strrchr(path, '/')
				      ? strdup(strrchr(path, '/') + 1)
				      : strdup(path);
	autofree char *line = NULL, *desc = NULL;

	if (!base || asprintf(&line, "RW %" PRIu64 " SPARSE \"%s\"\n",
			      p->sectors, base) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	desc = descriptor(p, line);
	if (!desc)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (strlen(desc) >= VMDK_DESC_SECTORS * VMDK_SECTOR)
		return vs_error_set(errp, ENAMETOOLONG,
				    "%s: the file name is too long for the "
				    "embedded descriptor",
				    path);
	return p->sub == SUB_STREAM
		       ? write_stream(path, p, desc, errp)
		       : write_sparse(path, p, p->sectors, desc, errp);
}

int vmdk_create(const char *path, uint64_t size, const char *options,
		struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	struct vc_params p = {0};
	int ret;

	ret = vs_opts_parse(options, what, &opts, errp);
	if (ret == 0)
		ret = parse_options(opts, &p, errp);
	if (ret < 0)
		goto out;
	p.sectors = div_up(size, VMDK_SECTOR);
	/* Grain table entries are 32-bit sector numbers: a sparse extent
	 * file stays under 2 TiB, as in qemu. */
	if ((p.sub == SUB_MONO_SPARSE || p.sub == SUB_STREAM) &&
	    p.sectors > (1ull << 32) - 2 * VMDK_DEFAULT_GRAIN * 512) {
		ret = vs_error_set(errp, EFBIG,
				   "%s: size %" PRIu64 " is too large for a "
				   "%s extent (under 2 TiB)",
				   path, size, sub_names[p.sub]);
		goto out;
	}
	if (p.sectors > VMDK_MAX_CAPACITY) {
		ret = vs_error_set(errp, EFBIG,
				   "%s: size %" PRIu64 " is too "
				   "large",
				   path, size);
		goto out;
	}
	p.parent_cid = UINT32_MAX;
	if (p.backing) {
		autofree char *bpath = vmdk_relative_path(path, p.backing);

		ret = bpath ? vmdk_parent_cid(bpath, &p.parent_cid, errp)
			    : vs_error_set(errp, ENOMEM, "out of memory");
		if (ret < 0)
			goto out;
	}
	if (getrandom(&p.cid, sizeof(p.cid), 0) != sizeof(p.cid))
		p.cid = (uint32_t)getpid() ^ (uint32_t)size;
	if (p.sub == SUB_MONO_SPARSE || p.sub == SUB_STREAM)
		ret = create_mono(path, &p, errp);
	else
		ret = create_split(path, &p, errp);
out:
	vs_opts_free(opts);
	return ret;
}
