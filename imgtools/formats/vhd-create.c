/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating VHD images (the driver's `create`), with qemu-img's vpc
 * options: subformat=dynamic|fixed and force_size=on|off, plus
 * differencing images with backing_file= (and backing_fmt=vpc).
 *
 * Sizes follow qemu-img exactly, so that both tools agree on the disk's
 * size: the size is rounded up to whole sectors, then up to the next CHS
 * geometry (creator "qemu", sized by geometry), unless force_size=on or
 * the disk is beyond what CHS can describe, when the geometry is the
 * CHS maximum and current_size is the size (creator "qem2").
 *
 * Layouts, as qemu-img writes them:
 *   fixed:        data | footer
 *   dynamic:      footer | dynamic header | BAT | footer
 *   differencing: footer | dynamic header | BAT | locator data | footer
 * Everything is computed and checked before the file is touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../common/opts.h"
#include "../../vbd/driver.h"
#include "vhd.h"

static const char what[] = "vpc format option";

struct vc_params {
	uint32_t type;
	bool force_size;
	uint64_t size;	   /* virtual size */
	uint64_t cur_size; /* the footer's current_size */
	uint16_t cyls;
	uint8_t heads, secs;
	const char *app;
	uint32_t block_size;
	const char *backing;
	char *backing_path; /* resolved next to the new image */
	uint8_t parent_uuid[16];
	uint32_t parent_time;
};

static int parse_options(struct vs_opts *opts, struct vc_params *p,
			 struct vs_error **errp)
{
	const char *sub = vs_opts_get(opts, "subformat");
	const char *bfmt = vs_opts_get(opts, "backing_fmt");
	int ret;

	p->type = VHD_DYNAMIC;
	if (sub && !strcmp(sub, "fixed"))
		p->type = VHD_FIXED;
	else if (sub && strcmp(sub, "dynamic"))
		return vs_error_set(errp, EINVAL,
				    "%s subformat='%s': expected dynamic or "
				    "fixed",
				    what, sub);
	ret = vs_opts_get_bool(opts, "force_size", &p->force_size, errp);
	if (ret < 0)
		return ret;
	p->backing = vs_opts_get(opts, "backing_file");
	if (bfmt && !p->backing)
		return vs_error_set(errp, EINVAL,
				    "%s backing_fmt needs backing_file", what);
	if (bfmt && strcmp(bfmt, "vpc") && strcmp(bfmt, "vhd"))
		return vs_error_set(errp, EINVAL,
				    "%s backing_fmt='%s': the parent of a "
				    "differencing VHD is a VHD (vpc)",
				    what, bfmt);
	if (p->backing && p->type == VHD_FIXED)
		return vs_error_set(errp, EINVAL,
				    "%s: a fixed VHD has no parent "
				    "(subformat=fixed with backing_file)",
				    what);
	if (p->backing && p->force_size)
		return vs_error_set(errp, EINVAL,
				    "%s: force_size does not apply to a "
				    "differencing image (it takes its "
				    "parent's size)",
				    what);
	if (p->backing)
		p->type = VHD_DIFF;
	return vs_opts_check_used(opts, errp);
}

/* qemu-img's sizing (see the comment at the top). */
static int size_and_geometry(const char *path, uint64_t size,
			     struct vc_params *p, struct vs_error **errp)
{
	uint64_t sectors = size / VHD_SECTOR, chs = 0;

	p->app = p->force_size ? "qem2" : "qemu";
	if (!p->force_size) {
		uint64_t want = VS_MIN(sectors, VHD_MAX_GEOMETRY);

		for (uint64_t i = 0; want > chs; i++) {
			vhd_geometry(want + i, &p->cyls, &p->heads, &p->secs);
			chs = (uint64_t)p->cyls * p->heads * p->secs;
		}
	}
	if (p->force_size || chs == VHD_MAX_GEOMETRY) {
		p->cyls = 65535;
		p->heads = 16;
		p->secs = 255;
		if (sectors > VHD_MAX_SECTORS)
			return vs_error_set(errp, EFBIG,
					    "%s: size %" PRIu64
					    " is more than the 2040 GiB a VHD "
					    "may hold",
					    path, size);
		chs = sectors;
	}
	p->size = chs * VHD_SECTOR;
	p->cur_size = p->size;
	return 0;
}

static char *next_to(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - image), image, name) < 0)
		return NULL;
	return p;
}

/* A differencing image takes everything about its size from the
 * parent, so that both give the same virtual size. */
static int from_parent(const char *path, uint64_t size, struct vc_params *p,
		       struct vs_error **errp)
{
	struct vbd *parent = NULL;
	const struct vhd *ps;
	struct stat st, self;
	int ret;

	p->backing_path = next_to(path, p->backing);
	if (!p->backing_path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_open_file(p->backing_path, "vpc", VBD_O_RDONLY, &parent,
			    errp);
	if (ret < 0) {
		vs_error_prefix(errp, "%s: parent", path);
		return ret;
	}
	ps = parent->opaque;
	if (stat(p->backing_path, &st) == 0 && stat(path, &self) == 0 &&
	    st.st_dev == self.st_dev && st.st_ino == self.st_ino) {
		ret = vs_error_set(errp, EINVAL,
				   "%s: the image cannot be its own parent",
				   path);
		goto out;
	}
	if (size && size != ps->f.virtual_size) {
		ret = vs_error_set(errp, EINVAL,
				   "%s: a differencing VHD has its parent's "
				   "size (%" PRIu64 " bytes), not %" PRIu64,
				   path, ps->f.virtual_size, size);
		goto out;
	}
	p->size = p->cur_size = ps->f.virtual_size;
	p->cyls = ps->f.cyls;
	p->heads = ps->f.heads;
	p->secs = ps->f.secs;
	p->app = ps->f.size_from_chs ? "qemu" : "qem2";
	memcpy(p->parent_uuid, ps->f.uuid, 16);
	if (ps->f.type != VHD_FIXED)
		p->block_size = ps->block_size;
	if (stat(p->backing_path, &st) == 0 && st.st_mtime > VHD_EPOCH)
		p->parent_time = (uint32_t)(st.st_mtime - VHD_EPOCH);
out:
	vbd_close(parent);
	return ret;
}

static void build_footer(uint8_t *f, const struct vc_params *p)
{
	time_t now = time(NULL);

	memset(f, 0, VHD_FOOTER_LEN);
	memcpy(f + VHD_F_COOKIE, VHD_COOKIE, 8);
	vhd_put32(f + VHD_F_FEATURES, VHD_FEATURES);
	vhd_put32(f + VHD_F_VERSION, VHD_VERSION);
	vhd_put64(f + VHD_F_DATA_OFFSET,
		  p->type == VHD_FIXED ? VHD_NO_OFFSET : VHD_FOOTER_LEN);
	vhd_put32(f + VHD_F_TIMESTAMP,
		  now > VHD_EPOCH ? (uint32_t)(now - VHD_EPOCH) : 0);
	memcpy(f + VHD_F_CREATOR_APP, p->app, 4);
	vhd_put32(f + VHD_F_CREATOR_VER, 0x00050003); /* Virtual PC 2007 */
	memcpy(f + VHD_F_CREATOR_OS, "Wi2k", 4);
	vhd_put64(f + VHD_F_ORIG_SIZE, p->cur_size);
	vhd_put64(f + VHD_F_CUR_SIZE, p->cur_size);
	vhd_put16(f + VHD_F_CYLS, p->cyls);
	f[VHD_F_HEADS] = p->heads;
	f[VHD_F_SECS] = p->secs;
	vhd_put32(f + VHD_F_TYPE, p->type);
	/* A random (version 4) UUID: a child records it to find us. */
	if (getrandom(f + VHD_F_UUID, 16, 0) != 16)
		for (int i = 0; i < 16; i++)
			f[VHD_F_UUID + i] = (uint8_t)rand();
	f[VHD_F_UUID + 6] = (uint8_t)((f[VHD_F_UUID + 6] & 0x0f) | 0x40);
	f[VHD_F_UUID + 8] = (uint8_t)((f[VHD_F_UUID + 8] & 0x3f) | 0x80);
	vhd_put32(f + VHD_F_CHECKSUM,
		  vhd_checksum(f, VHD_FOOTER_LEN, VHD_F_CHECKSUM));
}

/* Footer, header, BAT, locators, footer: built in memory, then
 * written. */
static int build_dynamic(const char *path, const struct vc_params *p,
			 const uint8_t *footer, uint8_t **out, size_t *out_len,
			 struct vs_error **errp)
{
	uint64_t entries = (p->size + p->block_size - 1) / p->block_size;
	uint64_t bat_bytes = VS_ALIGN_UP(entries * 4, (uint64_t)VHD_SECTOR);
	uint64_t bat_at = VHD_FOOTER_LEN + VHD_DYNHDR_LEN;
	uint8_t hdr[VHD_DYNHDR_LEN] = {0};
	autofree uint8_t *loc = NULL;
	size_t loc_len = 0, total;
	uint8_t *buf;
	int ret;

	if (bat_bytes == 0)
		bat_bytes = VHD_SECTOR;
	memcpy(hdr + VHD_H_COOKIE, VHD_DYN_COOKIE, 8);
	vhd_put64(hdr + VHD_H_DATA_OFFSET, VHD_NO_OFFSET);
	vhd_put64(hdr + VHD_H_TABLE_OFFSET, bat_at);
	vhd_put32(hdr + VHD_H_VERSION, VHD_VERSION);
	vhd_put32(hdr + VHD_H_MAX_ENTRIES, (uint32_t)entries);
	vhd_put32(hdr + VHD_H_BLOCK_SIZE, p->block_size);
	if (p->type == VHD_DIFF) {
		memcpy(hdr + VHD_H_PARENT_UUID, p->parent_uuid, 16);
		vhd_put32(hdr + VHD_H_PARENT_TIME, p->parent_time);
		ret = vhd_build_locators(path, p->backing_path,
					 bat_at + bat_bytes, hdr, &loc,
					 &loc_len, errp);
		if (ret < 0)
			return ret;
	}
	vhd_put32(hdr + VHD_H_CHECKSUM,
		  vhd_checksum(hdr, VHD_DYNHDR_LEN, VHD_H_CHECKSUM));
	total = (size_t)(bat_at + bat_bytes) + loc_len + VHD_FOOTER_LEN;
	buf = malloc(total);
	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	memcpy(buf, footer, VHD_FOOTER_LEN);
	memcpy(buf + VHD_FOOTER_LEN, hdr, VHD_DYNHDR_LEN);
	memset(buf + bat_at, 0xff, (size_t)bat_bytes);
	if (loc_len)
		memcpy(buf + bat_at + bat_bytes, loc, loc_len);
	memcpy(buf + total - VHD_FOOTER_LEN, footer, VHD_FOOTER_LEN);
	*out = buf;
	*out_len = total;
	return 0;
}

static int write_image(int fd, const char *path, const struct vc_params *p,
		       const uint8_t *footer, const uint8_t *meta,
		       size_t meta_len, struct vs_error **errp)
{
	uint64_t end =
		p->type == VHD_FIXED ? p->size + VHD_FOOTER_LEN : meta_len;
	int ret;

	/* Fixed: the data is a hole, read as zeros. */
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)end) < 0)
		return vs_error_set_errno(errp, errno,
					  "%s: cannot set the size to %" PRIu64,
					  path, end);
	if (p->type == VHD_FIXED)
		ret = vbd_create_write(fd, path, footer, VHD_FOOTER_LEN,
				       p->size, errp);
	else
		ret = vbd_create_write(fd, path, meta, meta_len, 0, errp);
	if (ret == 0 && fsync(fd) < 0)
		ret = vs_error_set_errno(errp, errno, "%s: fsync", path);
	return ret;
}

int vhd_create(const char *path, uint64_t size, const char *options,
	       struct vs_error **errp)
{
	struct vs_opts *opts = NULL;
	struct vc_params p = {.block_size = VHD_BLOCK_SIZE};
	uint8_t footer[VHD_FOOTER_LEN];
	autofree uint8_t *meta = NULL;
	size_t meta_len = 0;
	autoclose int fd = -1;
	int ret;

	if (size > VHD_MAX_SECTORS * VHD_SECTOR)
		return vs_error_set(errp, EFBIG,
				    "%s: size %" PRIu64
				    " is more than the 2040 GiB a VHD may hold",
				    path, size);
	size = VS_ALIGN_UP(size, (uint64_t)VHD_SECTOR);
	ret = vs_opts_parse(options, what, &opts, errp);
	if (ret < 0)
		return ret;
	ret = parse_options(opts, &p, errp);
	if (ret == 0)
		ret = p.backing ? from_parent(path, size, &p, errp)
				: size_and_geometry(path, size, &p, errp);
	if (ret < 0)
		goto out;
	build_footer(footer, &p);
	if (p.type != VHD_FIXED) {
		ret = build_dynamic(path, &p, footer, &meta, &meta_len, errp);
		if (ret < 0)
			goto out;
	}
	fd = vbd_create_open(path, "VHD", errp);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	ret = write_image(fd, path, &p, footer, meta, meta_len, errp);
out:
	free(p.backing_path);
	vs_opts_free(opts);
	return ret;
}
