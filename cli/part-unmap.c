/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor part unmap [-q] DISK (and kpartx's spelling: vstor part -d DISK) */
#include <getopt.h>
#include <stdio.h>

#include "../imgtools/part-map.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor part unmap [-q] DISK\n"
	"       vstor part -d [-v] DISK\n"
	"\n"
	"Undo 'vstor part map DISK', as 'kpartx -d' does: remove the\n"
	"partitions' device-mapper maps or loop devices, detach the loop\n"
	"device that map attached to an image file, and stop the FUSE\n"
	"server that map started for an image of a format other than raw\n"
	"(it flushes and closes the image).  DISK is named as it was for map\n"
	"(the image file or block device), or by the loop device that map\n"
	"attached to the image file.\n"
	"\n"
	"Unmap reads what map recorded in /run/vstor/part/KEY.json\n"
	"($VSTOR_PART_STATE_DIR overrides the folder) and touches nothing\n"
	"else: a loop device whose number now belongs to another file is\n"
	"left alone.  Without a record, it removes the device-mapper maps\n"
	"that 'kpartx -a' makes for DISK (linear maps onto it whose uuid is\n"
	"partN- and the disk's), and, for an image file, the loop device\n"
	"bound to it.\n"
	"\n"
	"Unmap refuses, before removing anything, when a partition's device\n"
	"is in use: mounted, open in a process (device-mapper's open count),\n"
	"or held by a device stacked on it.  A step that fails leaves the\n"
	"rest recorded; run unmap again once the cause is gone.\n"
	"\n"
	"Each step is printed as 'kpartx -dv' prints it ('del devmap :\n"
	"loop0p1', 'loop deleted : /dev/loop0'); 'vstor part -d' prints only\n"
	"with -v.\n"
	"\n"
	"Options:\n"
	"  -q, --quiet          print nothing\n"
	"  -v, --verbose        print each step (the default of 'unmap')\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 everything map made is gone; 1 an error (DISK is not\n"
	"mapped, a partition is in use, a step failed).\n"
	"\n"
	"Examples:\n"
	"  vstor part unmap /srv/web1.img\n"
	"  vstor part -dv /dev/vg0/web1-disk\n";

static int run(int argc, char **argv, const char *verb, bool verbose)
{
	static const struct option longopts[] = {
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	struct img_part_opts o = {0};
	struct vs_error *err = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "qv", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': verbose = false; break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "Try 'vstor help part %s'.\n", verb);
			return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("part", verb,
				       "part unmap: exactly one DISK expected");
	if (img_part_unmap(argv[optind], &o, verbose ? cli_part_report : NULL,
			   NULL, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int part_unmap_run(int argc, char **argv)
{
	return run(argc, argv, "unmap", true);
}

static int part_d_run(int argc, char **argv)
{
	return run(argc, argv, "-d", false);
}

static int part_dv_run(int argc, char **argv)
{
	return run(argc, argv, "-dv", true);
}

const struct cli_verb cli_verb_part_unmap = {
	.name = "unmap",
	.summary = "remove the partition maps of a disk (kpartx -d)",
	.usage = usage,
	.run = part_unmap_run,
};

const struct cli_verb cli_verb_part_alias_d = {
	.name = "-d",
	.usage = usage,
	.run = part_d_run,
};

const struct cli_verb cli_verb_part_alias_dv = {
	.name = "-dv",
	.usage = usage,
	.run = part_dv_run,
};
