/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parents of differencing VHDs: the parent locators (reading them to
 * find the parent, writing them when an image is created), the unique-id
 * check, and the guard against chains that loop or never end.
 *
 * A locator names the parent for one platform: "W2ru" a path relative
 * to the child and "W2ku" an absolute one, both UTF-16LE with
 * backslashes (Hyper-V, Virtual PC), "MacX" a file:// URL in UTF-8
 * (Virtual PC for Mac, Xen's vhd-util).  The dynamic header also holds
 * the parent's name (UTF-16BE).  They are tried in that order: the
 * relative name first, so that a child and parent moved together still
 * find each other, and relative names are relative to the child's
 * directory.  The first name that exists is opened, and its unique id
 * must be the one the child recorded: a parent that was replaced or
 * rewritten would silently give the child the wrong data.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "vhd.h"

extern const struct vbd_driver vbd_driver_vpc;

bool vhd_is_vhd(const struct vbd *vbd)
{
	return vbd->drv == &vbd_driver_vpc;
}

const uint8_t *vhd_uuid_of(const struct vbd *vhd_vbd)
{
	const struct vhd *s = vhd_vbd->opaque;

	return s->f.uuid;
}

/* Text. */

static size_t put_utf8(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* UTF-16 (LE or BE) up to the first NUL, as UTF-8; NULL if malformed
 * (an unpaired surrogate) or out of memory. */
static char *utf16_to_utf8(const uint8_t *p, size_t len, bool be)
{
	size_t units = len / 2, o = 0;
	char *out = malloc(units * 3 + 1); /* a pair makes 4 bytes of 2 units */

	if (!out)
		return NULL;
	for (size_t i = 0; i < units; i++) {
		uint32_t c = be ? (uint32_t)(p[2 * i] << 8 | p[2 * i + 1])
				: (uint32_t)(p[2 * i + 1] << 8 | p[2 * i]);

		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
			uint32_t d = be ? (uint32_t)(p[2 * i + 2] << 8 |
						     p[2 * i + 3])
					: (uint32_t)(p[2 * i + 3] << 8 |
						     p[2 * i + 2]);

			if (d < 0xdc00 || d >= 0xe000)
				goto bad;
			c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
			i++;
		} else if (c >= 0xd800 && c < 0xe000) {
			goto bad;
		}
		o += put_utf8(out + o, c);
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* UTF-8 to UTF-16 (LE or BE); returns the byte count or -1. */
static ssize_t utf8_to_utf16(const char *s, uint8_t *out, size_t cap, bool be)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t o = 0;

	while (*p) {
		uint32_t c;
		int extra;

		if (*p < 0x80) {
			c = *p;
			extra = 0;
		} else if ((*p & 0xe0) == 0xc0) {
			c = *p & 0x1f;
			extra = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			c = *p & 0x0f;
			extra = 2;
		} else if ((*p & 0xf8) == 0xf0) {
			c = *p & 0x07;
			extra = 3;
		} else {
			return -1;
		}
		p++;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return -1;
			c = c << 6 | (*p & 0x3f);
		}
		uint16_t u[2];
		int n = 1;

		if (c >= 0x10000) {
			c -= 0x10000;
			u[0] = (uint16_t)(0xd800 + (c >> 10));
			u[1] = (uint16_t)(0xdc00 + (c & 0x3ff));
			n = 2;
		} else {
			u[0] = (uint16_t)c;
		}
		for (int i = 0; i < n; i++) {
			if (o + 2 > cap)
				return -1;
			out[o + (be ? 0 : 1)] = (uint8_t)(u[i] >> 8);
			out[o + (be ? 1 : 0)] = (uint8_t)u[i];
			o += 2;
		}
	}
	return (ssize_t)o;
}

/* Finding the parent. */

static char *dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');

	if (!slash)
		return strdup(".");
	if (slash == file)
		return strdup("/");
	return strndup(file, (size_t)(slash - file));
}

/* A locator's text as a path: backslashes become slashes, a file:// URL
 * loses its scheme, and a relative path is taken from the child's
 * directory.  NULL: nothing usable. */
static char *locator_path(const char *child, char *name, bool url)
{
	autofree char *dir = NULL;
	char *p = name, *out;

	if (url) {
		if (strncmp(p, "file://", 7))
			return NULL;
		p += 7;
	} else {
		for (char *c = p; *c; c++)
			if (*c == '\\')
				*c = '/';
		/* A Windows drive path ("C:\VMs\base.vhd"): the chain was
		 * copied here, so look for the file beside the child (the
		 * unique id still has to match). */
		if (p[0] && p[1] == ':')
			p = strrchr(p, '/') ? strrchr(p, '/') + 1 : p + 2;
	}
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (!*p)
		return NULL;
	if (p[0] == '/')
		return strdup(p);
	dir = dir_of(child);
	if (!dir)
		return NULL;
	if (!strcmp(dir, "."))
		return strdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

struct candidates {
	char *path[VHD_LOCATORS + 1];
	int n;
};

static void candidates_free(struct candidates *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->path[i]);
}

/* Read locator i if it is one of `code`'s; add its path. */
static int read_locator(struct vbd *vbd, struct vhd *s, int i, uint32_t code,
			struct candidates *c, struct vs_error **errp)
{
	const uint8_t *e = s->h.raw + VHD_H_LOCATORS + i * VHD_LOC_LEN;
	uint32_t len = vhd_be32(e + 8);
	uint64_t off = vhd_be64(e + 16);
	uint64_t at =
		s->f.data_offset + VHD_H_LOCATORS + (uint64_t)i * VHD_LOC_LEN;
	autofree uint8_t *buf = NULL;
	autofree char *text = NULL;
	char *path;
	int ret;

	if (vhd_be32(e) != code || len == 0)
		return 0;
	if (len > VHD_MAX_LOCATOR || off > s->file_size ||
	    s->file_size - off < len)
		return vs_error_set(
			errp, EINVAL,
			"%s: parent locator %d at offset %#" PRIx64 ": %" PRIu32
			" bytes at offset %#" PRIx64 " are %s",
			vbd->filename, i, at, len, off,
			len > VHD_MAX_LOCATOR ? "more than a path needs"
					      : "past the end of the file");
	buf = malloc(len + 1);
	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_pread(s->file, off, buf, len);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "%s: cannot read parent locator %d "
					  "at offset %#" PRIx64,
					  vbd->filename, i, off);
	if (code == VHD_PLAT_MACX) {
		buf[len] = '\0';
		text = strdup((char *)buf);
	} else {
		text = utf16_to_utf8(buf, len, false);
	}
	if (!text)
		return vs_error_set(errp, EINVAL,
				    "%s: parent locator %d at offset %#" PRIx64
				    ": the name at offset %#" PRIx64
				    " is not valid %s",
				    vbd->filename, i, at, off,
				    code == VHD_PLAT_MACX ? "text" : "UTF-16");
	path = locator_path(vbd->filename, text, code == VHD_PLAT_MACX);
	if (path)
		c->path[c->n++] = path;
	return 0;
}

static int find_candidates(struct vbd *vbd, struct vhd *s, struct candidates *c,
			   struct vs_error **errp)
{
	static const uint32_t order[] = {VHD_PLAT_W2RU, VHD_PLAT_W2KU,
					 VHD_PLAT_MACX};
	autofree char *name = NULL;
	int ret;

	for (size_t k = 0; k < VS_ARRAY_SIZE(order); k++)
		for (int i = 0; i < VHD_LOCATORS; i++) {
			ret = read_locator(vbd, s, i, order[k], c, errp);
			if (ret < 0)
				return ret;
		}
	name = utf16_to_utf8(s->h.raw + VHD_H_PARENT_NAME, VHD_PARENT_NAME_LEN,
			     true);
	if (name && *name) {
		char *path = locator_path(vbd->filename, name, false);

		if (path)
			c->path[c->n++] = path;
	}
	return 0;
}

static void uuid_str(const uint8_t *u, char *out)
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

int vhd_open_parent(struct vbd *vbd, struct vhd *s, struct vs_error **errp)
{
	struct candidates c = {.n = 0};
	char want[37], got[37];
	const char *path = NULL;
	unsigned flags;
	int ret;

	ret = find_candidates(vbd, s, &c, errp);
	if (ret < 0)
		goto out;
	for (int i = 0; i < c.n && !path; i++)
		if (access(c.path[i], F_OK) == 0)
			path = c.path[i];
	if (!path) {
		ret = vs_error_set(errp, ENOENT,
				   "%s: differencing image: parent not found "
				   "(%s%s)",
				   vbd->filename,
				   c.n ? "first name tried: "
				       : "no usable "
					 "parent locator",
				   c.n ? c.path[0] : "");
		goto out;
	}
	/* Read-only, locked as any reader locks: a writer of the parent
	 * would change what this image reads. */
	flags = VBD_O_RDONLY | (vbd->flags & (VBD_O_SHARE | VBD_O_NOLOCK));
	ret = vbd_open_file(path, "vpc", flags, &s->parent, errp);
	if (ret < 0) {
		if (ret != -ELOOP)
			vs_error_prefix(errp, "%s: cannot open its parent",
					vbd->filename);
		goto out;
	}
	if (memcmp(vhd_uuid_of(s->parent), s->h.parent_uuid, 16)) {
		uuid_str(s->h.parent_uuid, want);
		uuid_str(vhd_uuid_of(s->parent), got);
		ret = vs_error_set(errp, EINVAL,
				   "%s: parent %s has unique id %s, but the "
				   "image records parent id %s (the parent "
				   "was replaced or changed)",
				   vbd->filename, path, got, want);
		goto out;
	}
	s->parent_path = strdup(path);
	if (!s->parent_path)
		ret = vs_error_set(errp, ENOMEM, "out of memory");
out:
	candidates_free(&c);
	return ret;
}

/* Writing locators (create). */

/* `to` relative to the directory `from` (both absolute, canonical). */
static char *relative_path(const char *from, const char *to)
{
	size_t common = 0, i;
	char *out;
	size_t up = 0, o = 0;

	/* The longest common prefix that ends on a directory boundary. */
	for (i = 0; from[i] && from[i] == to[i]; i++)
		if (from[i] == '/')
			common = i;
	if (!from[i] && to[i] == '/')
		common = i;
	if (!strcmp(from, "/"))
		common = 0;
	else
		for (i = common; from[i]; i++)
			if (from[i] == '/')
				up++;
	out = malloc(up * 3 + strlen(to) + 3);
	if (!out)
		return NULL;
	if (!up) {
		out[o++] = '.';
		out[o++] = '/';
	}
	for (i = 0; i < up; i++) {
		memcpy(out + o, "../", 3);
		o += 3;
	}
	strcpy(out + o, to + common + 1);
	return out;
}

static void backslashes(char *p)
{
	for (; *p; p++)
		if (*p == '/')
			*p = '\\';
}

/*
 * Fill the dynamic header `hdr` with the parent's name and three
 * locators (W2ru, W2ku, MacX) whose data goes at `first_offset`
 * onwards; *data (owned by the caller) gets the bytes to write there.
 */
int vhd_build_locators(const char *child, const char *parent,
		       uint64_t first_offset, uint8_t *hdr, uint8_t **data,
		       size_t *data_len, struct vs_error **errp)
{
	autofree char *abs_parent = realpath(parent, NULL);
	autofree char *child_dir = dir_of(child);
	autofree char *abs_dir = NULL;
	autofree char *rel = NULL, *url = NULL, *win_abs = NULL;
	const char *base;
	uint8_t *buf;
	size_t cap, o = 0;
	ssize_t n;
	int k = 0;

	if (!abs_parent)
		return vs_error_set_errno(errp, errno, "%s: cannot resolve",
					  parent);
	abs_dir = child_dir ? realpath(child_dir, NULL) : NULL;
	if (!abs_dir)
		return vs_error_set_errno(
			errp, errno, "%s: cannot resolve its directory", child);
	rel = relative_path(abs_dir, abs_parent);
	win_abs = strdup(abs_parent);
	if (!rel || !win_abs || asprintf(&url, "file://%s", abs_parent) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	backslashes(rel);
	backslashes(win_abs);
	base = strrchr(abs_parent, '/') + 1;
	if (utf8_to_utf16(base, hdr + VHD_H_PARENT_NAME, VHD_PARENT_NAME_LEN,
			  true) < 0)
		return vs_error_set(errp, ENAMETOOLONG,
				    "%s: the parent's name does not fit the "
				    "header's 256 UTF-16 characters",
				    parent);
	/* Each locator's data in whole sectors. */
	cap = VS_ALIGN_UP((strlen(rel) + strlen(win_abs)) * 4 + strlen(url) +
				  3 * VHD_SECTOR,
			  (size_t)VHD_SECTOR);
	buf = calloc(1, cap);
	if (!buf)
		return vs_error_set(errp, ENOMEM, "out of memory");
	struct {
		uint32_t code;
		const char *text;
	} locs[] = {{VHD_PLAT_W2RU, rel},
		    {VHD_PLAT_W2KU, win_abs},
		    {VHD_PLAT_MACX, url}};
	for (size_t i = 0; i < VS_ARRAY_SIZE(locs); i++) {
		uint8_t *e = hdr + VHD_H_LOCATORS + k * VHD_LOC_LEN;
		size_t len;

		if (locs[i].code == VHD_PLAT_MACX) {
			len = strlen(url);
			memcpy(buf + o, url, len);
		} else {
			n = utf8_to_utf16(locs[i].text, buf + o, cap - o,
					  false);
			if (n < 0) {
				free(buf);
				return vs_error_set(errp, EINVAL,
						    "%s: the parent's path is "
						    "not valid UTF-8",
						    parent);
			}
			len = (size_t)n;
		}
		if (len > VHD_MAX_LOCATOR) {
			free(buf);
			return vs_error_set(errp, ENAMETOOLONG,
					    "%s: the parent's path is too "
					    "long",
					    parent);
		}
		vhd_put32(e, locs[i].code);
		/* Data space in bytes, as Hyper-V writes it (the spec says
		 * sectors; readers use the length). */
		vhd_put32(e + 4,
			  (uint32_t)VS_ALIGN_UP(len, (size_t)VHD_SECTOR));
		vhd_put32(e + 8, (uint32_t)len);
		vhd_put64(e + 16, first_offset + o);
		o += VS_ALIGN_UP(len, (size_t)VHD_SECTOR);
		k++;
	}
	*data = buf;
	*data_len = o;
	return 0;
}
