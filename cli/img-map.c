/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img map [-f FMT] [--output=human|json] [--start-offset=OFFSET]
 * [--max-length=LEN] [-U] FILE */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../common/size.h"
#include "../imgtools/info.h"
#include "../imgtools/map.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img map [-f FMT] [--output=human|json]\n"
	"                     [--start-offset=OFFSET] [--max-length=LEN]\n"
	"                     [-U] FILE\n"
	"\n"
	"Print where each range of the disk image FILE comes from, as\n"
	"'qemu-img map' does: which image of the backing chain holds it\n"
	"(depth 0 is FILE itself), whether it reads as zeros, whether data\n"
	"is stored for it, and where in that image's file it is stored.\n"
	"Neighbouring ranges that agree in everything are merged.\n"
	"\n"
	"The human table lists only the ranges that hold data, with their\n"
	"offset in the file that stores them; a compressed cluster has no\n"
	"such offset, so the table refuses images that have them (use\n"
	"--output=json).  JSON lists every range, one object per line, with\n"
	"qemu-img's fields: start, length, depth, present (allocated in\n"
	"some image of the chain), zero, data, and offset where known.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT        the image's format; default: probe\n"
	"      --output=FORMAT     human (default) or json\n"
	"      --start-offset=OFF  begin at guest offset OFF (bytes, or with\n"
	"                          a K, M, G, T suffix)\n"
	"      --max-length=LEN    map at most LEN bytes\n"
	"  -U, --force-share       open without keeping writers out\n"
	"  -h, --help              this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr).\n"
	"\n"
	"Examples:\n"
	"  vstor img map web1.qcow2\n"
	"  vstor img map --output=json --start-offset=1G --max-length=64M \\\n"
	"      web1.qcow2\n";

enum {
	OPT_OUTPUT = 256,
	OPT_START,
	OPT_MAX_LENGTH,
};

struct map_out {
	bool json;
	const char *path, *fmt;
	unsigned flags;
	struct json_object *chain; /* img_info_chain, for the table's
				    * file names; read when first needed */
};

static int print_json(const struct img_map_entry *e, bool last)
{
	printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"depth\": %u, \"present\": %s, \"zero\": %s, \"data\": %s",
	       e->start, e->length, e->depth, e->present ? "true" : "false",
	       e->zero ? "true" : "false", e->data ? "true" : "false");
	if (e->offset >= 0)
		printf(", \"offset\": %" PRId64, e->offset);
	fputs(last ? "}" : "},\n", stdout);
	return 0;
}

/* The file of the image at `depth` of the chain, as qemu-img names it:
 * FILE itself, then each backing file by its full name. */
static const char *file_at(struct map_out *m, unsigned depth)
{
	struct vs_error *err = NULL;
	struct json_object *o, *name;

	if (depth == 0)
		return m->path;
	if (!m->chain &&
	    img_info_chain(m->path, m->fmt, m->flags, &m->chain, &err) < 0) {
		vs_error_report(err);
		return NULL;
	}
	o = json_object_array_get_idx(m->chain, depth);
	if (!o || !json_object_object_get_ex(o, "filename", &name)) {
		fprintf(stderr,
			"vstor: %s: no image at depth %u of the backing "
			"chain\n",
			m->path, depth);
		return NULL;
	}
	return json_object_get_string(name);
}

static int print_human(struct map_out *m, const struct img_map_entry *e)
{
	const char *file;

	if (e->data && e->offset < 0) {
		fprintf(stderr,
			"vstor: %s: File contains external, encrypted "
			"or compressed clusters.\n",
			m->path);
		return -ENOTSUP;
	}
	if (!e->data || e->zero)
		return 0;
	file = file_at(m, e->depth);
	if (!file)
		return -EIO;
	/* qemu-img's %#-16x: "0" has no 0x prefix. */
	printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start,
	       e->length, (uint64_t)e->offset, file);
	return 0;
}

static int print_entry(const struct img_map_entry *e, bool last, void *opaque)
{
	struct map_out *m = opaque;

	return m->json ? print_json(e, last) : print_human(m, e);
}

static int run_map(const char *path, struct map_out *m, uint64_t start,
		   uint64_t max_length)
{
	struct vs_error *err = NULL;
	struct vbd *vbd;
	int ret;

	if (vbd_open_file(path, m->fmt, m->flags, &vbd, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (m->json)
		putchar('[');
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	ret = img_map(vbd, start, max_length,
		      m->json ? IMG_MAP_JSON : IMG_MAP_HUMAN, print_entry, m,
		      &err);
	if (m->json && ret == 0)
		puts("]");
	fflush(stdout);
	if (ret < 0 && err)
		vs_error_report(err);
	vbd_close(vbd);
	json_object_put(m->chain);
	return ret < 0;
}

static int parse_offset(const char *arg, const char *what, uint64_t *out)
{
	struct vs_error *err = NULL;

	if (vs_parse_size(arg, out, what, &err) < 0 || *out > INT64_MAX) {
		if (err)
			vs_error_report(err);
		else
			fprintf(stderr, "vstor: %s '%s' is too large\n", what,
				arg);
		return -1;
	}
	return 0;
}

static int img_map_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"force-share", no_argument, NULL, 'U'},
		{"output", required_argument, NULL, OPT_OUTPUT},
		{"start-offset", required_argument, NULL, OPT_START},
		{"max-length", required_argument, NULL, OPT_MAX_LENGTH},
		{NULL, 0, NULL, 0},
	};
	struct map_out m = {.flags = VBD_O_RDONLY};
	uint64_t start = 0, max_length = UINT64_MAX;
	int c, json;

	while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': m.fmt = optarg; break;
		case 'U': m.flags |= VBD_O_SHARE; break;
		case OPT_OUTPUT:
			json = cli_parse_output("img", "map", optarg);
			if (json < 0)
				return 1;
			m.json = json;
			break;
		case OPT_START:
			if (parse_offset(optarg, "start offset", &start) < 0)
				return 1;
			break;
		case OPT_MAX_LENGTH:
			if (parse_offset(optarg, "max length", &max_length) < 0)
				return 1;
			break;
		default: fputs("Try 'vstor help img map'.\n", stderr); return 1;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("img", "map",
				       optind == argc
					       ? "img map: no FILE given"
					       : "img map: one FILE only");
	m.path = argv[optind];
	return run_map(m.path, &m, start, max_length);
}

const struct cli_verb cli_verb_img_map = {
	.name = "map",
	.summary = "show where an image's data is stored",
	.usage = usage,
	.run = img_map_run,
};
