/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img info [-f FMT] [-U] [--output=human|json] FILE */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../common/size.h"
#include "../imgtools/info.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img info [-f FMT] [-U] [--output=human|json] FILE\n"
	"\n"
	"Print what FILE is: its format, virtual size, space used on the\n"
	"host and, for formats that have them, cluster size, backing file\n"
	"and format-specific facts.\n"
	"\n"
	"Without -f the format is probed from the file's first bytes (image\n"
	"tools may probe; guest disks never are).  The image is opened\n"
	"read-only and locked against writers for the duration, so an image\n"
	"that a running domain writes is refused unless -U is given.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT     the image's format (raw); default: probe\n"
	"  -U, --force-share    open without keeping writers out (the image\n"
	"                       may change while it is read)\n"
	"      --output=FORMAT  human (default) or json, shaped like\n"
	"                       'qemu-img info --output=json'\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr).\n"
	"\n"
	"Example:\n"
	"  vstor img info --output=json /var/lib/vstor/web1.img\n";

/* qemu-img's "Format specific information" block: "lazy-refcounts"
 * becomes "lazy refcounts". */
static void print_specific(struct json_object *data)
{
	printf("Format specific information:\n");
	json_object_object_foreach(data, key, val)
	{
		char name[64];

		snprintf(name, sizeof(name), "%s", key);
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = ' ';
		printf("    %s: %s\n", name, json_object_get_string(val));
	}
}

static void print_human(struct json_object *o)
{
	struct json_object *v;
	char buf[64];
	uint64_t size;

	printf("image: %s\n",
	       json_object_get_string(json_object_object_get(o, "filename")));
	printf("file format: %s\n",
	       json_object_get_string(json_object_object_get(o, "format")));
	size = (uint64_t)json_object_get_int64(
		json_object_object_get(o, "virtual-size"));
	vs_format_size(size, buf, sizeof(buf));
	printf("virtual size: %s (%llu bytes)\n", buf,
	       (unsigned long long)size);
	if (json_object_object_get_ex(o, "actual-size", &v)) {
		vs_format_size((uint64_t)json_object_get_int64(v), buf,
			       sizeof(buf));
		printf("disk size: %s\n", buf);
	} else {
		printf("disk size: unavailable\n");
	}
	if (json_object_object_get_ex(o, "cluster-size", &v))
		printf("cluster_size: %lld\n",
		       (long long)json_object_get_int64(v));
	if (json_object_object_get_ex(o, "backing-filename", &v))
		printf("backing file: %s\n", json_object_get_string(v));
	if (json_object_object_get_ex(o, "backing-filename-format", &v))
		printf("backing file format: %s\n", json_object_get_string(v));
	if (json_object_object_get_ex(o, "format-specific", &v) &&
	    json_object_object_get_ex(v, "data", &v))
		print_specific(v);
}

static int img_info_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"force-share", no_argument, NULL, 'U'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct json_object *o;
	const char *fmt = NULL;
	unsigned flags = 0;
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'U': flags |= VBD_O_SHARE; break;
		case 'o':
			json = cli_parse_output("img", "info", optarg);
			if (json < 0)
				return 1;
			break;
		default:
			fputs("Try 'vstor help img info'.\n", stderr);
			return 1;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("img", "info",
				       optind == argc
					       ? "img info: no FILE given"
					       : "img info: one FILE only");
	if (img_info(argv[optind], fmt, flags, &o, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (json) {
		cli_print_json(o);
	} else {
		print_human(o);
		json_object_put(o);
	}
	return 0;
}

const struct cli_verb cli_verb_img_info = {
	.name = "info",
	.summary = "show an image's format, size and properties",
	.usage = usage,
	.run = img_info_run,
};
