/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img measure [--output=human|json] [-O FMT] [-o OPTIONS]
 * [--size SIZE | [-f FMT] [-U] FILE] */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "../common/size.h"
#include "../imgtools/measure.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img measure [--output=human|json] [-O FMT] [-o OPTIONS]\n"
	"                         [--size SIZE | [-f FMT] [-U] FILE]\n"
	"\n"
	"Compute how large an image file of format FMT (-O, default raw)\n"
	"would be, as 'qemu-img measure' does: for an empty disk of SIZE\n"
	"bytes, or for a copy of the disk image FILE (what 'vstor img\n"
	"convert -O FMT FILE' would write).  The numbers are qemu-img's:\n"
	"\n"
	"  required size         the file holding FILE's data (or an empty\n"
	"                        disk), metadata counted as for a fully\n"
	"                        allocated image so that it never grows\n"
	"                        past this\n"
	"  fully allocated size  the file with every cluster allocated\n"
	"  bitmaps size          for a qcow2 version 3 FILE and a version 3\n"
	"                        output: the space its persistent bitmaps\n"
	"                        would take\n"
	"\n"
	"For a FILE, a cluster counts when any of its bytes holds data that\n"
	"is not zeros, in FILE or in its backing chain.  The -o options are\n"
	"those of 'vstor img create' for the output format; those that change\n"
	"the result for qcow2 are cluster_size, refcount_bits, extended_l2,\n"
	"preallocation (full and falloc count every cluster), compat and\n"
	"backing_file (with a FILE, every cluster counts).  Formats other\n"
	"than raw and qcow2 cannot be measured.\n"
	"\n"
	"Options:\n"
	"  -O FMT               the output format: raw (default) or qcow2\n"
	"  -o OPTIONS           creation options of the output format\n"
	"      --size=SIZE      measure an empty disk of SIZE bytes (K, M,\n"
	"                       G, T suffixes)\n"
	"  -f, --format=FMT     FILE's format; default: probe\n"
	"  -U, --force-share    open FILE without keeping writers out\n"
	"      --output=FORMAT  human (default) or json, shaped like\n"
	"                       'qemu-img measure --output=json'\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr).\n"
	"\n"
	"Examples:\n"
	"  vstor img measure -O qcow2 --size 100G\n"
	"  vstor img measure -O qcow2 -o cluster_size=2M web1.raw\n";

enum {
	OPT_OUTPUT = 256,
	OPT_SIZE,
};

struct opts {
	const char *out_fmt, *options, *fmt;
	unsigned flags;
	bool json, has_size;
	uint64_t size;
};

static void print(const struct img_measure *m, bool json)
{
	struct json_object *o;

	if (!json) {
		printf("required size: %" PRIu64 "\n", m->required);
		printf("fully allocated size: %" PRIu64 "\n",
		       m->fully_allocated);
		if (m->has_bitmaps)
			printf("bitmaps size: %" PRIu64 "\n", m->bitmaps);
		return;
	}
	/* In the order qemu-img prints them. */
	o = json_object_new_object();
	if (m->has_bitmaps)
		json_object_object_add(
			o, "bitmaps",
			json_object_new_int64((int64_t)m->bitmaps));
	json_object_object_add(o, "required",
			       json_object_new_int64((int64_t)m->required));
	json_object_object_add(
		o, "fully-allocated",
		json_object_new_int64((int64_t)m->fully_allocated));
	cli_print_json(o);
}

static int run_measure(const char *file, const struct opts *o)
{
	struct vs_error *err = NULL;
	struct img_measure m;
	struct vbd *src = NULL;
	int ret;

	if (file && vbd_open_file(file, o->fmt, o->flags, &src, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	ret = img_measure(src, o->size, o->out_fmt, o->options, &m, &err);
	vbd_close(src);
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	print(&m, o->json);
	return 0;
}

static int parse_size(const char *arg, uint64_t *out)
{
	struct vs_error *err = NULL;

	if (vs_parse_size(arg, out, "image size", &err) < 0) {
		vs_error_report(err);
		return -1;
	}
	if (*out > INT64_MAX) {
		fprintf(stderr, "vstor: image size '%s' is too large\n", arg);
		return -1;
	}
	return 0;
}

static int img_measure_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"force-share", no_argument, NULL, 'U'},
		{"output", required_argument, NULL, OPT_OUTPUT},
		{"size", required_argument, NULL, OPT_SIZE},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.out_fmt = "raw", .flags = VBD_O_RDONLY};
	int c, json;

	while ((c = getopt_long(argc, argv, "f:O:o:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.fmt = optarg; break;
		case 'O': o.out_fmt = optarg; break;
		case 'o': o.options = optarg; break;
		case 'U': o.flags |= VBD_O_SHARE; break;
		case OPT_OUTPUT:
			json = cli_parse_output("img", "measure", optarg);
			if (json < 0)
				return 1;
			o.json = json;
			break;
		case OPT_SIZE:
			if (parse_size(optarg, &o.size) < 0)
				return 1;
			o.has_size = true;
			break;
		default:
			fputs("Try 'vstor help img measure'.\n", stderr);
			return 1;
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("img", "measure",
				       "img measure: one FILE only");
	if (o.has_size && optind < argc)
		return cli_usage_error("img", "measure",
				       "img measure: --size N cannot be used "
				       "together with a filename");
	if (!o.has_size && optind == argc)
		return cli_usage_error("img", "measure",
				       "img measure: either --size N or one "
				       "filename must be specified");
	return run_measure(optind < argc ? argv[optind] : NULL, &o);
}

const struct cli_verb cli_verb_img_measure = {
	.name = "measure",
	.summary = "compute the size of an image for a disk or a copy",
	.usage = usage,
	.run = img_measure_run,
};
