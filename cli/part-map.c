/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor part map [-f FMT] [-p DELIM] [-r] [--method=auto|dm|loop] DISK
 * (and kpartx's spelling: vstor part -a [-v] DISK) */
#include <getopt.h>
#include <stdio.h>

#include "../imgtools/part-map.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor part map [-f FMT] [-p DELIM] [-r] [-q] "
	"[--method=auto|dm|loop] DISK\n"
	"       vstor part -a [-v] [-f FMT] [-p DELIM] [-r] DISK\n"
	"\n"
	"Make each partition of DISK a block device, as 'kpartx -a' does, "
	"with\n"
	"kpartx's names: a device-mapper linear map /dev/mapper/NAME for each\n"
	"partition (loop0p1, sdb1, or vg-lv1 for the device-mapper device\n"
	"vg-lv), where device-mapper works.  Where it does not (no dm "
	"module),\n"
	"each partition becomes a loop device on the disk with the\n"
	"partition's offset and size limit; the names then are the loop\n"
	"devices' own, printed on each line.  The maps carry kpartx's uuids\n"
	"(partN-...), so 'kpartx -d' removes them and 'vstor part unmap'\n"
	"removes what 'kpartx -a' made.\n"
	"\n"
	"DISK is a block device or an image file.  A raw image file is\n"
	"attached to a loop device first (or the loop device already bound\n"
	"to it is used), with autoclear: the kernel detaches it once the\n"
	"last map on it is gone.  An image of another format (qcow2, vmdk,\n"
	"vhd, vdi) is exported as a file by 'vstor serve --fuse --daemonize',\n"
	"and that file attached to a loop device: writes to the partitions\n"
	"land in the image.  What map made is recorded in\n"
	"/run/vstor/part/KEY.json ($VSTOR_PART_STATE_DIR overrides the\n"
	"folder), so that 'vstor part unmap DISK' undoes exactly that.\n"
	"\n"
	"Map refuses, before making anything: a disk that is mapped already,\n"
	"a disk without a partition table or partitions, a table with a\n"
	"partition past the end of the disk or a logical one outside its\n"
	"extended partition, and a device-mapper name in use.  On a failure\n"
	"half-way, what was made is undone.  An extended partition is mapped\n"
	"as its first 2 sectors, logical partitions on the disk itself, as\n"
	"kpartx does.\n"
	"\n"
	"Each mapping is printed as 'kpartx -av' prints it:\n"
	"  add map loop0p1 (253:0): 0 204800 linear 7:0 2048\n"
	"  add map loop0p1 (7:5): 0 204800 loop 7:0 2048 as /dev/loop5\n"
	"  add fuse export /run/vstor/part/KEY.fuse (pid 1234)\n"
	"(NAME (MAJ:MIN): 0 SECTORS TARGET DISK-MAJ:MIN START).  'vstor part\n"
	"-a' prints them only with -v, as kpartx.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT     DISK's format; default: probe an image file,\n"
	"                       raw for a block device (give -f raw for a\n"
	"                       guest's disk image)\n"
	"  -p, --delimiter=DELIM  between the disk's name and the number;\n"
	"                       default 'p' after a name ending in a digit\n"
	"  -r, --read-only      read-only maps (and a read-only export)\n"
	"      --method=METHOD  auto (default): device-mapper where it works,\n"
	"                       loop devices elsewhere; dm; loop\n"
	"  -q, --quiet          print nothing\n"
	"  -v, --verbose        print the mappings (the default of 'map')\n"
	"  -s                   accepted for kpartx's sake (map is always\n"
	"                       synchronous)\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 every partition is mapped; 1 an error (nothing stays\n"
	"mapped).\n"
	"\n"
	"Examples:\n"
	"  vstor part map /srv/web1.img\n"
	"  vstor part map -r /srv/web1.qcow2\n"
	"  vstor part -av /dev/vg0/web1-disk\n";

enum {
	OPT_METHOD = 256,
};

static int run(int argc, char **argv, const char *verb, bool verbose)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"delimiter", required_argument, NULL, 'p'},
		{"read-only", no_argument, NULL, 'r'},
		{"method", required_argument, NULL, OPT_METHOD},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	struct img_part_opts o = {0};
	struct vs_error *err = NULL;
	int c, method;

	while ((c = getopt_long(argc, argv, "f:p:rqvs", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'p': o.delim = optarg; break;
		case 'r': o.readonly = true; break;
		case 'q': verbose = false; break;
		case 'v': verbose = true; break;
		case 's': break;
		case OPT_METHOD:
			if (cli_part_method(verb, optarg, &method))
				return 1;
			o.method = (enum img_part_method)method;
			break;
		default:
			fprintf(stderr, "Try 'vstor help part %s'.\n", verb);
			return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("part", verb,
				       "part map: exactly one DISK expected");
	if (img_part_map(argv[optind], &o, verbose ? cli_part_report : NULL,
			 NULL, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int part_map_run(int argc, char **argv)
{
	return run(argc, argv, "map", true);
}

static int part_a_run(int argc, char **argv)
{
	return run(argc, argv, "-a", false);
}

static int part_av_run(int argc, char **argv)
{
	return run(argc, argv, "-av", true);
}

const struct cli_verb cli_verb_part_map = {
	.name = "map",
	.summary = "map each partition as a block device (kpartx -a)",
	.usage = usage,
	.run = part_map_run,
};

const struct cli_verb cli_verb_part_alias_a = {
	.name = "-a",
	.usage = usage,
	.run = part_a_run,
};

const struct cli_verb cli_verb_part_alias_av = {
	.name = "-av",
	.usage = usage,
	.run = part_av_run,
};
