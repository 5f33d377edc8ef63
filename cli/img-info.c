/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img info [-f FMT] [-U] [--backing-chain] [--output=human|json]
 * FILE */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/size.h"
#include "../imgtools/info.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img info [-f FMT] [-U] [--backing-chain]\n"
	"                      [--output=human|json] FILE\n"
	"\n"
	"Print what FILE is: its format, virtual size, space used on the\n"
	"host and, for formats that have them, cluster size, backing file,\n"
	"internal snapshots and format-specific facts.\n"
	"\n"
	"With --backing-chain, print the same for FILE's backing file, and\n"
	"for that one's, down to the base image: each image is opened on its\n"
	"own, by the backing file name its parent records (a relative name\n"
	"is relative to the parent's directory: the \"actual path\") in the\n"
	"format the parent records (probed if it records none).  A chain\n"
	"that loops, or that is deeper than 256 backing files, is an\n"
	"error.\n"
	"\n"
	"Without -f the format is probed from the file's first bytes (image\n"
	"tools may probe; guest disks never are).  The image is opened\n"
	"read-only and locked against writers for the duration, so an image\n"
	"that a running domain writes is refused unless -U is given.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT     the image's format (raw); default: probe\n"
	"  -U, --force-share    open without keeping writers out (the image\n"
	"                       may change while it is read); with\n"
	"                       --backing-chain, every image of the chain\n"
	"      --backing-chain  describe the whole backing chain, top first\n"
	"      --output=FORMAT  human (default): qemu-img's lines, images of\n"
	"                       a chain separated by a blank line; json:\n"
	"                       an object shaped like 'qemu-img info\n"
	"                       --output=json', with --backing-chain an\n"
	"                       array of them\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr).\n"
	"\n"
	"Examples:\n"
	"  vstor img info --output=json /var/lib/vstor/web1.img\n"
	"  vstor img info -U --backing-chain /var/lib/vstor/web1-top.qcow2\n";

/* Long-only options. */
enum {
	OPT_BACKING_CHAIN = 256,
};

static void print_value(struct json_object *val, int indent);

/* One "name: value" line, or "name:" and the nested value below it. */
static void print_field(const char *name, struct json_object *val, int indent)
{
	enum json_type t = json_object_get_type(val);

	if (t == json_type_object || t == json_type_array) {
		printf("%*s%s:\n", indent, "", name);
		print_value(val, indent + 4);
	} else {
		printf("%*s%s: %s\n", indent, "", name,
		       json_object_get_string(val));
	}
}

/* Nested objects and lists (qcow2 "bitmaps") as qemu-img dumps them:
 * four more spaces a level, list items named "[i]". */
static void print_value(struct json_object *val, int indent)
{
	char name[64];

	if (json_object_get_type(val) == json_type_array) {
		for (size_t i = 0; i < json_object_array_length(val); i++) {
			snprintf(name, sizeof(name), "[%zu]", i);
			print_field(name, json_object_array_get_idx(val, i),
				    indent);
		}
		return;
	}
	json_object_object_foreach(val, key, v)
	{
		snprintf(name, sizeof(name), "%s", key);
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = ' ';
		print_field(name, v, indent);
	}
}

/* qemu-img's "Format specific information" block: "lazy-refcounts"
 * becomes "lazy refcounts". */
static void print_specific(struct json_object *data)
{
	printf("Format specific information:\n");
	print_value(data, 4);
}

static int64_t get_int(struct json_object *o, const char *key)
{
	return json_object_get_int64(json_object_object_get(o, key));
}

static const char *get_str(struct json_object *o, const char *key)
{
	return json_object_get_string(json_object_object_get(o, key));
}

/* One line of qemu-img's snapshot table (bdrv_snapshot_dump); NULL
 * prints the heading. */
static void print_snapshot(struct json_object *sn)
{
	char size[64], date[32] = "", clock[64], icount[32] = "";
	struct json_object *v;
	int64_t secs, nsec;
	struct tm tm;
	time_t t;

	if (!sn) {
		printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
		       "DATE", "VM CLOCK", "ICOUNT");
		return;
	}
	vs_format_size((uint64_t)get_int(sn, "vm-state-size"), size,
		       sizeof(size));
	t = (time_t)get_int(sn, "date-sec");
	if (localtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	secs = get_int(sn, "vm-clock-sec");
	nsec = get_int(sn, "vm-clock-nsec");
	snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d",
		 (int)(secs / 3600), (int)((secs / 60) % 60), (int)(secs % 60),
		 (int)(nsec / 1000000));
	if (json_object_object_get_ex(sn, "icount", &v))
		snprintf(icount, sizeof(icount), "%lld",
			 (long long)json_object_get_int64(v));
	printf("%-9s %-16s %8s%20s%13s%11s\n", get_str(sn, "id"),
	       get_str(sn, "name"), size, date, clock, icount);
}

static void print_backing(struct json_object *o)
{
	const char *full = NULL, *name = get_str(o, "backing-filename");
	struct json_object *v;

	if (json_object_object_get_ex(o, "full-backing-filename", &v))
		full = json_object_get_string(v);
	printf("backing file: %s", name);
	if (!full)
		printf(" (cannot determine actual path)");
	else if (strcmp(name, full))
		printf(" (actual path: %s)", full);
	printf("\n");
	if (json_object_object_get_ex(o, "backing-filename-format", &v))
		printf("backing file format: %s\n", json_object_get_string(v));
}

/* qemu-img's human layout (bdrv_image_info_dump), line for line. */
static void print_human(struct json_object *o)
{
	struct json_object *v;
	char buf[64];
	uint64_t size;

	printf("image: %s\n", get_str(o, "filename"));
	printf("file format: %s\n", get_str(o, "format"));
	size = (uint64_t)get_int(o, "virtual-size");
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
	if (json_object_object_get_ex(o, "encrypted", &v) &&
	    json_object_get_boolean(v))
		printf("encrypted: yes\n");
	if (json_object_object_get_ex(o, "cluster-size", &v))
		printf("cluster_size: %lld\n",
		       (long long)json_object_get_int64(v));
	if (json_object_object_get_ex(o, "dirty-flag", &v) &&
	    json_object_get_boolean(v))
		printf("cleanly shut down: no\n");
	if (json_object_object_get_ex(o, "backing-filename", &v))
		print_backing(o);
	if (json_object_object_get_ex(o, "snapshots", &v)) {
		printf("Snapshot list:\n");
		print_snapshot(NULL);
		for (size_t i = 0; i < json_object_array_length(v); i++)
			print_snapshot(json_object_array_get_idx(v, i));
	}
	if (json_object_object_get_ex(o, "format-specific", &v) &&
	    json_object_object_get_ex(v, "data", &v))
		print_specific(v);
}

/* qemu-img info --backing-chain: the images one after the other, a blank
 * line between two. */
static void print_human_chain(struct json_object *arr)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		if (i)
			printf("\n");
		print_human(json_object_array_get_idx(arr, i));
	}
}

static int img_info_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"force-share", no_argument, NULL, 'U'},
		{"output", required_argument, NULL, 'o'},
		{"backing-chain", no_argument, NULL, OPT_BACKING_CHAIN},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct json_object *o;
	const char *fmt = NULL;
	unsigned flags = 0;
	int json = 0, chain = 0, c, ret;

	while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'U': flags |= VBD_O_SHARE; break;
		case OPT_BACKING_CHAIN: chain = 1; break;
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
	if (chain)
		ret = img_info_chain(argv[optind], fmt, flags, &o, &err);
	else
		ret = img_info(argv[optind], fmt, flags, &o, &err);
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	if (json) {
		cli_print_json(o);
		return 0;
	}
	if (chain)
		print_human_chain(o);
	else
		print_human(o);
	json_object_put(o);
	return 0;
}

const struct cli_verb cli_verb_img_info = {
	.name = "info",
	.summary = "show an image's format, size and properties",
	.usage = usage,
	.run = img_info_run,
};
