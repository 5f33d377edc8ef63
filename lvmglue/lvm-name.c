/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VG and LV names: LVM's rules (lvm(8), "VALID NAMES"), the forms a user
 * writes an LV in (VG/LV, /dev/VG/LV, /dev/mapper/VG-LV) and LVM's
 * device-mapper names, where each '-' of a VG or LV name is doubled and
 * a single '-' separates them.
 *
 * Every name is checked here before it reaches lvm's command line: a
 * name that began with '-' would be read as an option, and one with '/'
 * or ".." would change which path we open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "lvm-priv.h"

/* Internal sub-LV suffixes lvm reserves; an LV name containing one
 * would be mistaken for a part of another LV. */
static const char *const reserved_parts[] = {
	"_cdata", "_cmeta",   "_corig",	  "_iorig",  "_mimage",
	"_mlog",  "_pmspare", "_rimage",  "_rmeta",  "_tdata",
	"_tmeta", "_vdata",   "_vorigin", "_wcorig",
};

int lvm_name_check(const char *name, const char *what, struct vs_error **err)
{
	size_t len = name ? strlen(name) : 0;

	if (!len)
		return vs_error_set(err, EINVAL, "%s: the name is empty", what);
	if (len > LVM_NAME_MAX)
		return vs_error_set(err, EINVAL,
				    "%s: '%.40s...' is %zu characters long; "
				    "LVM allows at most %d",
				    what, name, len, LVM_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '_' ||
		    c == '.' || c == '-')
			continue;
		return vs_error_set(err, EINVAL,
				    "%s: '%s' has the character '%s%c' at "
				    "offset %zu; LVM names take only a-z A-Z "
				    "0-9 + _ . -",
				    what, name,
				    (unsigned char)c < 0x20 ? "^" : "",
				    (unsigned char)c < 0x20 ? c + '@' : c, i);
	}
	if (name[0] == '-')
		return vs_error_set(err, EINVAL,
				    "%s: '%s' begins with '-', which LVM does "
				    "not allow",
				    what, name);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return vs_error_set(err, EINVAL,
				    "%s: '%s' is not a valid LVM name", what,
				    name);
	return 0;
}

/* The extra rules for an LV's own name. */
static int lv_name_check(const char *name, struct vs_error **err)
{
	int ret = lvm_name_check(name, "LV name", err);

	if (ret < 0)
		return ret;
	if (!strcmp(name, "snapshot") || !strcmp(name, "pvmove"))
		return vs_error_set(err, EINVAL,
				    "LV name: '%s' is reserved by LVM", name);
	for (size_t i = 0; i < VS_ARRAY_SIZE(reserved_parts); i++)
		if (strstr(name, reserved_parts[i]))
			return vs_error_set(err, EINVAL,
					    "LV name: '%s' contains '%s', "
					    "which LVM reserves for its "
					    "internal volumes",
					    name, reserved_parts[i]);
	return 0;
}

static size_t dashes(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '-';
	return n;
}

char *lvm_dm_path(const char *vg, const char *lv)
{
	size_t len = strlen("/dev/mapper/") + strlen(vg) + dashes(vg) + 1 +
		     strlen(lv) + dashes(lv) + 1;
	char *out = malloc(len), *p;

	if (!out)
		return NULL;
	p = stpcpy(out, "/dev/mapper/");
	for (const char *s = vg; *s; s++) {
		if (*s == '-')
			*p++ = '-';
		*p++ = *s;
	}
	*p++ = '-';
	for (const char *s = lv; *s; s++) {
		if (*s == '-')
			*p++ = '-';
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

char *lvm_dev_path(const char *vg, const char *lv)
{
	char *out;

	return asprintf(&out, "/dev/%s/%s", vg, lv) < 0 ? NULL : out;
}

int lvm_dm_name_split(const char *dm, char **vg, char **lv)
{
	size_t len = strlen(dm), sep = 0, nsep = 0;
	autofree char *a = malloc(len + 1), *b = malloc(len + 1);
	char *out;

	*vg = *lv = NULL;
	if (!a || !b)
		return -ENOMEM;
	out = a;
	for (size_t i = 0; i < len; i++) {
		if (dm[i] != '-') {
			*out++ = dm[i];
		} else if (i + 1 < len && dm[i + 1] == '-') {
			*out++ = '-';
			i++;
		} else {
			/* A single dash: the VG/LV boundary, once only. */
			if (nsep++)
				return -ENOENT;
			sep = i;
			*out = '\0';
			out = b;
		}
	}
	*out = '\0';
	if (nsep != 1 || sep == 0 || !*b)
		return -ENOENT;
	*vg = vs_steal(&a);
	*lv = vs_steal(&b);
	return 0;
}

static int not_an_lv(const char *name, struct vs_error **err)
{
	return vs_error_set(err, ENOENT,
			    "'%s' is not an LV name: expected VG/LV, "
			    "/dev/VG/LV or /dev/mapper/VG-LV",
			    name);
}

int lvm_name_split(const char *name, char **vg, char **lv,
		   struct vs_error **err)
{
	autofree char *a = NULL, *b = NULL;
	const char *rest = name, *slash;
	size_t dm_len;
	int ret;

	*vg = *lv = NULL;
	if (!strncmp(name, "/dev/mapper/", 12)) {
		ret = lvm_dm_name_split(name + 12, &a, &b);
		if (ret == -ENOMEM)
			return vs_error_set(err, ENOMEM, "out of memory");
		if (ret < 0)
			return not_an_lv(name, err);
	} else {
		if (!strncmp(name, "/dev/", 5))
			rest = name + 5;
		else if (name[0] == '/')
			return not_an_lv(name, err);
		slash = strchr(rest, '/');
		if (!slash || slash == rest || !slash[1] ||
		    strchr(slash + 1, '/'))
			return not_an_lv(name, err);
		a = strndup(rest, (size_t)(slash - rest));
		b = strdup(slash + 1);
		if (!a || !b)
			return vs_error_set(err, ENOMEM, "out of memory");
	}
	ret = lvm_name_check(a, "VG name", err);
	if (ret < 0)
		return ret;
	ret = lv_name_check(b, err);
	if (ret < 0)
		return ret;
	/* The device-mapper name "VG-LV" with its dashes doubled must fit
	 * in DM_NAME_LEN (128 with the NUL). */
	dm_len = strlen(a) + dashes(a) + 1 + strlen(b) + dashes(b);
	if (dm_len > LVM_NAME_MAX)
		return vs_error_set(err, EINVAL,
				    "'%s/%s': the device-mapper name would "
				    "be %zu characters long; at most %d fit",
				    a, b, dm_len, LVM_NAME_MAX);
	*vg = vs_steal(&a);
	*lv = vs_steal(&b);
	return 0;
}

int lvm_names_check(const char *vg, const char *lv, struct vs_error **err)
{
	autofree char *full = NULL, *a = NULL, *b = NULL;
	int ret = lvm_name_check(vg, "VG name", err);

	if (ret < 0)
		return ret;
	ret = lv_name_check(lv, err);
	if (ret < 0)
		return ret;
	if (asprintf(&full, "%s/%s", vg, lv) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	return lvm_name_split(full, &a, &b, err);
}
