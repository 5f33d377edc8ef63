/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating VDI images, as `qemu-img create -f vdi` makes them:
 *
 *   header (512 bytes) | block map (rounded up to a sector) | data
 *
 * with 1 MiB blocks (qemu 7.2 reads no other size), the size rounded up
 * to whole sectors, a random image UUID and a null parent.  Options, as
 * qemu-img names them: static=on|off (a fixed image: every block
 * allocated in order and the file at its full size) and
 * preallocation=off|falloc|full (how a fixed image's data is allocated;
 * for a dynamic one there is nothing to preallocate, as with qemu).
 * Everything is computed and checked before the file is touched, and the
 * file is locked before it is truncated.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../common/opts.h"
#include "../../vbd/driver.h"
#include "vdi.h"

#define VC_TEXT "<<< vstor VDI Disk Image >>>\n"
/* The most blocks of an image qemu still opens (it refuses larger disk
 * sizes): 512 TiB less 128 MiB. */
#define VC_MAX_BLOCKS 0x1fffff80u
#define VC_CHUNK      (1u << 20) /* bytes of map or zeros written at once */

enum vc_prealloc { VC_PREALLOC_OFF, VC_PREALLOC_FALLOC, VC_PREALLOC_FULL };

struct vc_params {
	uint64_t disk_size;
	bool fixed;
	enum vc_prealloc prealloc;
	uint32_t blocks;
	uint32_t offset_data;
};

static const char what[] = "vdi format option";

static int parse_options(const char *options, struct vc_params *p,
			 struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	const char *v;
	int ret = vs_opts_parse(options, what, &opts, errp);

	if (ret < 0)
		return ret;
	ret = vs_opts_get_bool(opts, "static", &p->fixed, errp);
	v = ret == 0 ? vs_opts_get(opts, "preallocation") : NULL;
	if (!v || !strcmp(v, "off"))
		p->prealloc = VC_PREALLOC_OFF;
	else if (!strcmp(v, "falloc"))
		p->prealloc = VC_PREALLOC_FALLOC;
	else if (!strcmp(v, "full"))
		p->prealloc = VC_PREALLOC_FULL;
	else
		ret = vs_error_set(errp, EINVAL,
				   "%s preallocation='%s': expected off, "
				   "falloc or full",
				   what, v);
	if (ret == 0)
		ret = vs_opts_check_used(opts, errp);
	vs_opts_free(opts);
	return ret;
}

static int compute_layout(const char *path, uint64_t size, struct vc_params *p,
			  struct vs_error **errp)
{
	uint64_t blocks, map_end;

	if (size > (uint64_t)VC_MAX_BLOCKS * VDI_BLOCK_DEFAULT)
		return vs_error_set(errp, EFBIG,
				    "%s: size %llu is too large for VDI (at "
				    "most %llu bytes with 1 MiB blocks, as "
				    "qemu reads them)",
				    path, (unsigned long long)size,
				    (unsigned long long)VC_MAX_BLOCKS *
					    VDI_BLOCK_DEFAULT);
	p->disk_size = VS_ALIGN_UP(size, (uint64_t)VDI_SECTOR);
	blocks = (p->disk_size + VDI_BLOCK_DEFAULT - 1) / VDI_BLOCK_DEFAULT;
	map_end = VS_ALIGN_UP(VDI_HEADER_BYTES + blocks * 4,
			      (uint64_t)VDI_SECTOR);
	/* The data offset is a 32-bit field. */
	if (map_end > UINT32_MAX)
		return vs_error_set(errp, EFBIG,
				    "%s: size %llu needs a block map that "
				    "ends past 4 GiB, where VDI cannot place "
				    "its data",
				    path, (unsigned long long)size);
	p->blocks = (uint32_t)blocks;
	p->offset_data = (uint32_t)map_end;
	return 0;
}

/* A random (version 4) UUID. */
static int random_uuid(uint8_t *u, const char *path, struct vs_error **errp)
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(u + got, 16 - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vs_error_set_errno(errp, n < 0 ? errno : EIO,
						  "%s: cannot make a UUID",
						  path);
		got += (size_t)n;
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	return 0;
}

static int build_header(uint8_t *b, const struct vc_params *p, const char *path,
			struct vs_error **errp)
{
	int ret;

	memset(b, 0, VDI_HEADER_BYTES);
	memcpy(b, VC_TEXT, sizeof(VC_TEXT) - 1);
	vdi_put_le32(b + VDI_OFF_SIGNATURE, VDI_SIGNATURE);
	vdi_put_le32(b + VDI_OFF_VERSION, VDI_VERSION_1_1);
	vdi_put_le32(b + VDI_OFF_HEADER_SIZE, VDI_HEADER_MIN_SIZE);
	vdi_put_le32(b + VDI_OFF_IMAGE_TYPE,
		     p->fixed ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC);
	vdi_put_le32(b + VDI_OFF_OFFSET_BMAP, VDI_HEADER_BYTES);
	vdi_put_le32(b + VDI_OFF_OFFSET_DATA, p->offset_data);
	vdi_put_le32(b + VDI_OFF_SECTOR_SIZE, VDI_SECTOR);
	vdi_put_le64(b + VDI_OFF_DISK_SIZE, p->disk_size);
	vdi_put_le32(b + VDI_OFF_BLOCK_SIZE, VDI_BLOCK_DEFAULT);
	vdi_put_le32(b + VDI_OFF_BLOCKS_IN_IMAGE, p->blocks);
	vdi_put_le32(b + VDI_OFF_BLOCKS_ALLOCATED, p->fixed ? p->blocks : 0);
	ret = random_uuid(b + VDI_OFF_UUID_IMAGE, path, errp);
	if (ret == 0)
		ret = random_uuid(b + VDI_OFF_UUID_LAST_SNAP, path, errp);
	return ret;
}

/* The map: every entry unallocated, or for a fixed image block i in
 * data block i. */
static int write_map(int fd, const char *path, const struct vc_params *p,
		     struct vs_error **errp)
{
	autofree uint8_t *buf = malloc(VC_CHUNK);
	uint32_t per = VC_CHUNK / 4;
	int ret = 0;

	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint32_t first = 0; ret == 0 && first < p->blocks; first += per) {
		uint32_t n = VS_MIN(per, p->blocks - first);

		for (uint32_t i = 0; i < n; i++)
			vdi_put_le32(buf + (size_t)i * 4,
				     p->fixed ? first + i : VDI_BMAP_FREE);
		ret = vbd_create_write(fd, path, buf, (size_t)n * 4,
				       VDI_HEADER_BYTES + (uint64_t)first * 4,
				       errp);
	}
	return ret;
}

static int write_data(int fd, const char *path, const struct vc_params *p,
		      struct vs_error **errp)
{
	uint64_t len = (uint64_t)p->blocks * VDI_BLOCK_DEFAULT;
	autofree uint8_t *zeros = NULL;
	int ret = 0;

	if (!p->fixed || p->prealloc == VC_PREALLOC_OFF || !len)
		return 0;
	if (p->prealloc == VC_PREALLOC_FALLOC) {
		if (fallocate(fd, 0, (off_t)p->offset_data, (off_t)len) < 0)
			return vs_error_set_errno(errp, errno,
						  "%s: cannot preallocate %llu "
						  "bytes at offset %u",
						  path, (unsigned long long)len,
						  p->offset_data);
		return 0;
	}
	zeros = calloc(1, VC_CHUNK);
	if (!zeros)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint64_t done = 0; ret == 0 && done < len; done += VC_CHUNK)
		ret = vbd_create_write(fd, path, zeros,
				       VS_MIN(len - done, VC_CHUNK),
				       p->offset_data + done, errp);
	return ret;
}

static int write_image(int fd, const char *path, const struct vc_params *p,
		       const uint8_t *header, struct vs_error **errp)
{
	uint64_t end = p->offset_data;
	int ret;

	if (p->fixed)
		end += (uint64_t)p->blocks * VDI_BLOCK_DEFAULT;
	if (ftruncate(fd, 0) < 0)
		return vs_error_set_errno(errp, errno, "%s: cannot truncate",
					  path);
	ret = vbd_create_write(fd, path, header, VDI_HEADER_BYTES, 0, errp);
	if (ret == 0)
		ret = write_map(fd, path, p, errp);
	if (ret == 0)
		ret = write_data(fd, path, p, errp);
	if (ret < 0)
		return ret;
	/* A fixed image without preallocation holds its data as a hole. */
	if (ftruncate(fd, (off_t)end) < 0)
		return vs_error_set_errno(errp, errno,
					  "%s: cannot set the size to %llu",
					  path, (unsigned long long)end);
	if (fsync(fd) < 0)
		return vs_error_set_errno(errp, errno, "%s: fsync", path);
	return 0;
}

int vdi_create(const char *path, uint64_t size, const char *options,
	       struct vs_error **errp)
{
	struct vc_params p = {0};
	uint8_t header[VDI_HEADER_BYTES];
	autoclose int fd = -1;
	int ret;

	ret = parse_options(options, &p, errp);
	if (ret == 0)
		ret = compute_layout(path, size, &p, errp);
	if (ret == 0)
		ret = build_header(header, &p, path, errp);
	if (ret < 0)
		return ret;
	fd = vbd_create_open(path, "VDI", errp);
	if (fd < 0)
		return fd;
	return write_image(fd, path, &p, header, errp);
}
