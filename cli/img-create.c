/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img create [-f FMT] [-o OPTIONS] FILE SIZE */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../common/size.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img create [-q] [-f FMT] [-o OPTIONS]\n"
	"                        [-b BACKING [-F FMT] [-u]] FILE [SIZE]\n"
	"\n"
	"Create a disk image FILE of virtual size SIZE.  SIZE is bytes or a\n"
	"number with a suffix K, M, G, T, P or E (powers of 1024): 10G.\n"
	"FILE may also be an existing block device that is at least SIZE\n"
	"bytes large; it keeps its size.\n"
	"\n"
	"An existing FILE is replaced, but only if no running domain, vstor\n"
	"or QEMU process has it open: the image lock is taken first.\n"
	"\n"
	"Options:\n"
	"  -f FMT       image format: raw (default) or qcow2\n"
	"  -o OPTIONS   format options, key=value[,key=value...] (several\n"
	"               -o add up).  raw:\n"
	"                 preallocation=off|falloc|full (default off: a\n"
	"                 sparse file)\n"
	"               qcow2 (qemu-img's names and defaults):\n"
	"                 compat=1.1|0.10, cluster_size=512..2M (64K),\n"
	"                 refcount_bits=1..64 (16), lazy_refcounts=on|off,\n"
	"                 extended_l2=on|off, compression_type=zlib|zstd,\n"
	"                 preallocation=off|metadata|falloc|full\n"
	"  -b BACKING   backing file (copy-on-write formats only); a relative\n"
	"               name is relative to FILE's directory; without SIZE\n"
	"               the image takes the backing file's size; with -f vpc\n"
	"               a differencing VHD of a VHD parent (-F vpc)\n"
	"  -F FMT       format of the backing file\n"
	"  -u           do not open the backing file (SIZE is then needed)\n"
	"  -q           quiet: no 'Formatting' line\n"
	"  -h, --help   this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error.\n"
	"\n"
	"Example:\n"
	"  vstor img create -f raw /var/lib/vstor/web1-swap.img 1G\n"
	"  vstor img create -f qcow2 -b web1.img -F raw web1-snap.qcow2\n";

/* Append ",more" (a whole -o list) to *opts. */
static int join_opts(char **opts, const char *more)
{
	char *s;

	if (asprintf(&s, "%s%s%s", *opts ? *opts : "", *opts ? "," : "", more) <
	    0)
		return -1;
	free(*opts);
	*opts = s;
	return 0;
}

/* Append ",key=value" to *opts, doubling commas in value as -o wants. */
static int add_opt(char **opts, const char *key, const char *value)
{
	size_t n = *opts ? strlen(*opts) : 0;
	char *s = realloc(*opts, n + strlen(key) + 2 * strlen(value) + 3);
	char *p;

	if (!s)
		return -1;
	p = s + n;
	if (n)
		*p++ = ',';
	p = stpcpy(p, key);
	*p++ = '=';
	for (; *value; value++) {
		*p++ = *value;
		if (*value == ',')
			*p++ = ',';
	}
	*p = '\0';
	*opts = s;
	return 0;
}

/*
 * The size of the backing file, for a create without SIZE.  A relative
 * backing name is relative to the new image's directory, as it will be
 * when the image is opened.
 */
static int backing_size(const char *image, const char *backing,
			const char *bfmt, uint64_t *size,
			struct vs_error **errp)
{
	autofree char *dir = strdup(image), *path = NULL;
	struct vbd *vbd;
	int ret;

	if (!dir)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (backing[0] == '/' || !strchr(image, '/'))
		path = strdup(backing);
	else if (asprintf(&path, "%s/%s", dirname(dir), backing) < 0)
		path = NULL;
	if (!path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_open_file(path, bfmt, VBD_O_RDONLY | VBD_O_SHARE, &vbd, errp);
	if (ret < 0) {
		vs_error_prefix(errp, "backing file");
		return ret;
	}
	*size = vbd_size(vbd);
	vbd_close(vbd);
	return 0;
}

static int img_create_run(int argc, char **argv)
{
	struct vs_error *err = NULL;
	const char *fmt = "raw", *backing = NULL, *bfmt = NULL, *file;
	autofree char *options = NULL;
	bool quiet = false, unsafe = false;
	uint64_t size = 0;
	int c;

	while ((c = getopt(argc, argv, "f:o:b:F:uq")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'o':
			/* Several -o add up, as with qemu-img. */
			if (join_opts(&options, optarg) < 0)
				return cli_usage_error("img", "create",
						       "out of memory");
			break;
		case 'b': backing = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'u': unsafe = true; break;
		case 'q': quiet = true; break;
		default:
			fputs("Try 'vstor help img create'.\n", stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return cli_usage_error("img", "create",
				       "img create: no FILE given");
	file = argv[optind];
	if (optind + 2 < argc)
		return cli_usage_error("img", "create",
				       "img create: too many arguments");
	if (bfmt && !backing)
		return cli_usage_error("img", "create",
				       "img create: -F needs -b");
	/* Without a recorded format the backing file would be probed on
	 * every open; qemu-img refuses this too. */
	if (backing && !bfmt)
		return cli_usage_error("img", "create",
				       "img create: -b needs -F with the "
				       "backing file's format (raw, qcow2)");
	if (backing && !strcmp(fmt, "raw"))
		return cli_usage_error("img", "create",
				       "img create: format raw has no backing "
				       "file (use -f qcow2)");
	if (optind + 1 < argc) {
		if (vs_parse_size(argv[optind + 1], &size, "image size", &err) <
		    0)
			goto fail;
	} else if (!backing) {
		return cli_usage_error("img", "create",
				       "img create: no SIZE given");
	} else if (unsafe) {
		return cli_usage_error(
			"img", "create",
			"img create: -u needs a SIZE: the backing "
			"file is not opened");
	} else if (backing_size(file, backing, bfmt, &size, &err) < 0) {
		goto fail;
	}
	if (backing && (add_opt(&options, "backing_file", backing) < 0 ||
			(bfmt && add_opt(&options, "backing_fmt", bfmt) < 0))) {
		vs_error_set(&err, ENOMEM, "out of memory");
		goto fail;
	}
	if (vbd_create(file, fmt, size, options, &err) < 0)
		goto fail;
	/* After the fact, unlike qemu-img: a refused create must not look
	 * as if it had begun. */
	if (!quiet)
		printf("Formatting '%s', fmt=%s size=%llu\n", file, fmt,
		       (unsigned long long)size);
	return 0;
fail:
	vs_error_report(err);
	return 1;
}

const struct cli_verb cli_verb_img_create = {
	.name = "create",
	.summary = "create a new disk image",
	.usage = usage,
	.run = img_create_run,
};
