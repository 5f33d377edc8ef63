/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img check [-q] [-f FMT] [-r leaks|all] [-U] [--output=human|json]
 * FILE */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../vbd/vbd.h"
#include "cli.h"

/* Exit codes, as qemu-img check has them. */
enum {
	EXIT_CLEAN = 0,
	EXIT_FAILED = 1,       /* the check could not complete */
	EXIT_CORRUPT = 2,      /* errors remain */
	EXIT_LEAKS = 3,	       /* only leaked clusters remain */
	EXIT_UNSUPPORTED = 63, /* the format has no check */
};

static const char usage[] =
	"Usage: vstor img check [-q] [-f FMT] [-r leaks|all] [-U]\n"
	"                       [--output=human|json] FILE\n"
	"\n"
	"Check the metadata of the disk image FILE, as 'qemu-img check'\n"
	"does, and optionally repair it.  For qcow2 the reference count of\n"
	"every host cluster is computed from the tables (L1, L2, snapshots,\n"
	"refcount structures) and compared with the one stored: a stored\n"
	"count that is too high is a leaked cluster (space wasted, no harm\n"
	"to data), one that is too low is an error (a later write could\n"
	"overwrite data still in use).  OFLAG_COPIED flags must agree with\n"
	"the counts.  Each finding is one line on stderr.\n"
	"\n"
	"Without -r the image is opened read-only, and locked against\n"
	"writers unless -U is given.  With -r it is opened for writing,\n"
	"even when marked dirty or corrupt, and the counts found are\n"
	"printed, then the image is checked again and the result of that\n"
	"second check is printed.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT     the image's format; default: probe\n"
	"  -r, --repair=leaks   free leaked clusters only (safe)\n"
	"  -r, --repair=all     also repair errors: refcounts too low,\n"
	"                       missing refcount blocks (the refcount\n"
	"                       structure is rebuilt at the end of the file\n"
	"                       if it cannot be trusted), OFLAG_COPIED flags\n"
	"  -U, --force-share    open without keeping writers out (read-only\n"
	"                       checks only: what is read may be changing)\n"
	"  -q, --quiet          print nothing on stdout\n"
	"      --output=FORMAT  human (default) or json, shaped like\n"
	"                       'qemu-img check --output=json'\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status:\n"
	"  0   no errors and no leaks (after repair, with -r)\n"
	"  1   the check could not complete (the message says why)\n"
	"  2   errors remain: the image may be corrupted\n"
	"  3   leaked clusters remain, and nothing else\n"
	"  63  the format has no check (raw)\n"
	"\n"
	"Example:\n"
	"  vstor img check web1.qcow2\n"
	"  vstor img check -r all --output=json web1.qcow2\n";

struct opts {
	const char *fmt;
	unsigned fix, flags;
	bool quiet, json;
};

static int parse_repair(const char *arg, unsigned *fix)
{
	if (!strcmp(arg, "leaks")) {
		*fix = VBD_CHECK_FIX_LEAKS;
		return 0;
	}
	if (!strcmp(arg, "all")) {
		*fix = VBD_CHECK_FIX_LEAKS | VBD_CHECK_FIX_ERRORS;
		return 0;
	}
	return cli_usage_error("img", "check",
			       "-r: '%s' is not one of leaks, all", arg);
}

static void add_int(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

/* qemu-img's keys, in the order it prints them; counts that are 0 are
 * left out as it leaves them out. */
static void print_json(const char *file, const char *format,
		       const struct vbd_check *r)
{
	struct json_object *o = json_object_new_object();

	if (r->image_end_offset)
		add_int(o, "image-end-offset", r->image_end_offset);
	if (r->compressed_clusters)
		add_int(o, "compressed-clusters", r->compressed_clusters);
	if (r->total_clusters)
		add_int(o, "total-clusters", r->total_clusters);
	if (r->corruptions)
		add_int(o, "corruptions", r->corruptions);
	if (r->corruptions_fixed)
		add_int(o, "corruptions-fixed", r->corruptions_fixed);
	add_int(o, "check-errors", r->check_errors);
	if (r->leaks)
		add_int(o, "leaks", r->leaks);
	if (r->leaks_fixed)
		add_int(o, "leaks-fixed", r->leaks_fixed);
	if (r->allocated_clusters)
		add_int(o, "allocated-clusters", r->allocated_clusters);
	json_object_object_add(o, "filename", json_object_new_string(file));
	json_object_object_add(o, "format", json_object_new_string(format));
	if (r->fragmented_clusters)
		add_int(o, "fragmented-clusters", r->fragmented_clusters);
	cli_print_json(o);
}

static void print_human(const struct vbd_check *r)
{
	if (!r->corruptions && !r->leaks && !r->check_errors)
		printf("No errors were found on the image.\n");
	if (r->corruptions)
		printf("\n%" PRIu64 " errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image "
		       "may corrupt it.\n",
		       r->corruptions);
	if (r->leaks)
		printf("\n%" PRIu64 " leaked clusters were found on the "
		       "image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       r->leaks);
	if (r->check_errors)
		printf("\n%" PRIu64 " internal errors have occurred during "
		       "the check.\n",
		       r->check_errors);
	if (r->total_clusters && r->allocated_clusters)
		printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
		       "fragmented, %0.2f%% compressed clusters\n",
		       r->allocated_clusters, r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

/*
 * Check, and after a repair check again: what is printed is the image
 * as it is now, with the counts of what was repaired, as qemu-img does.
 */
static int check_image(struct vbd *vbd, const struct opts *o,
		       struct vbd_check *r)
{
	struct vs_error *err = NULL;
	uint64_t leaks_fixed, corruptions_fixed;
	int ret = vbd_check(vbd, o->fix, r, &err);

	if (ret < 0) {
		vs_error_report(err);
		return ret == -ENOTSUP ? EXIT_UNSUPPORTED : EXIT_FAILED;
	}
	if (!r->leaks_fixed && !r->corruptions_fixed)
		return EXIT_CLEAN;
	leaks_fixed = r->leaks_fixed;
	corruptions_fixed = r->corruptions_fixed;
	if (!o->quiet && !o->json)
		printf("The following inconsistencies were found and "
		       "repaired:\n\n"
		       "    %" PRIu64 " leaked clusters\n"
		       "    %" PRIu64 " corruptions\n\n"
		       "Double checking the fixed image now...\n",
		       leaks_fixed, corruptions_fixed);
	if (vbd_check(vbd, 0, r, &err) < 0) {
		vs_error_report(err);
		return EXIT_FAILED;
	}
	r->leaks_fixed = leaks_fixed;
	r->corruptions_fixed = corruptions_fixed;
	return EXIT_CLEAN;
}

static int run_check(const char *file, const struct opts *o)
{
	struct vs_error *err = NULL;
	struct vbd_check r;
	struct vbd *vbd;
	int ret;

	if (vbd_open_file(file, o->fmt, o->flags, &vbd, &err) < 0) {
		vs_error_report(err);
		return EXIT_FAILED;
	}
	ret = check_image(vbd, o, &r);
	if (ret == EXIT_CLEAN && !o->quiet) {
		if (o->json)
			print_json(file, vbd_format(vbd), &r);
		else
			print_human(&r);
	}
	vbd_close(vbd);
	if (ret != EXIT_CLEAN)
		return ret;
	if (r.check_errors) {
		fprintf(stderr, "vstor: %s: check failed\n", file);
		return EXIT_FAILED;
	}
	return r.corruptions ? EXIT_CORRUPT : r.leaks ? EXIT_LEAKS : EXIT_CLEAN;
}

static int img_check_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"repair", required_argument, NULL, 'r'},
		{"force-share", no_argument, NULL, 'U'},
		{"quiet", no_argument, NULL, 'q'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {0};
	bool share = false;
	int c, json;

	while ((c = getopt_long(argc, argv, "f:r:Uq", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.fmt = optarg; break;
		case 'r':
			if (parse_repair(optarg, &o.fix))
				return EXIT_FAILED;
			break;
		case 'U': share = true; break;
		case 'q': o.quiet = true; break;
		case 'o':
			json = cli_parse_output("img", "check", optarg);
			if (json < 0)
				return EXIT_FAILED;
			o.json = json;
			break;
		default:
			fputs("Try 'vstor help img check'.\n", stderr);
			return EXIT_FAILED;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("img", "check",
				       optind == argc
					       ? "img check: no FILE given"
					       : "img check: one FILE only");
	if (share && o.fix)
		return cli_usage_error("img", "check",
				       "img check: -U is for read-only checks "
				       "and cannot be used with -r");
	/* A repair opens for writing even an image marked dirty or
	 * corrupt; a plain check reads, sharing the image with other
	 * readers (and with writers too under -U). */
	o.flags =
		o.fix ? VBD_O_REPAIR : VBD_O_RDONLY | (share ? VBD_O_SHARE : 0);
	return run_check(argv[optind], &o);
}

const struct cli_verb cli_verb_img_check = {
	.name = "check",
	.summary = "check an image's metadata and repair it",
	.usage = usage,
	.run = img_check_run,
};
