/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor clone [--customize] [-o NEWCFG] [-d DIR] [--cow-size SIZE]
 *             TEMPLATE-CFG NEWNAME */
#include <getopt.h>
#include <stdio.h>

#include "../common/error.h"
#include "../common/size.h"
#include "../lvmglue/clone.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor clone [--customize] [-o NEWCFG] [-d DIR] "
	"[--cow-size SIZE] [-q]\n"
	"                   TEMPLATE-CFG NEWNAME\n"
	"\n"
	"Make a new domain NEWNAME from the template domain of TEMPLATE-CFG:\n"
	"a copy of its config with a new name, a new uuid and new MACs, whose\n"
	"disks are copy-on-write clones of the template's.  Each clone takes\n"
	"the same short time whatever the size of the disk:\n"
	"\n"
	"  image file (any format)   a qcow2 overlay, NEWNAME-VDEV.qcow2,\n"
	"                            whose backing file is the template's\n"
	"                            image (its format recorded)\n"
	"  block device (not an LV)  a qcow2 overlay backed by the device\n"
	"  thin LV                   a thin snapshot, VG/NEWNAME-VDEV\n"
	"  other LV                  a classic snapshot, VG/NEWNAME-VDEV\n"
	"                            (with a warning: its COW store fills\n"
	"                            as the clone is written, and every\n"
	"                            write to the template costs a copy)\n"
	"  read-only disk, cdrom     shared: the same target as the template\n"
	"\n"
	"The new config keeps the template's text, comments and layout; only\n"
	"name, uuid (added if missing), the mac= of each vif that gives one,\n"
	"and the targets of the cloned disks change.  A vif without mac= gets\n"
	"a new MAC anyway: it is derived from the domain's name.  The "
	"template\n"
	"must not be running (its images must not be open for writing), or\n"
	"its clones would see it change under them.\n"
	"\n"
	"Nothing is ever overwritten: NEWCFG and every new disk must not\n"
	"exist.  If a step fails, what the clone made so far is removed.\n"
	"\n"
	"Options:\n"
	"  -o, --config=NEWCFG  the new config file (default: NEWNAME.cfg in\n"
	"                       the template config's directory)\n"
	"  -d, --disk-dir=DIR   where the qcow2 overlays go (default: beside\n"
	"                       each template image; beside NEWCFG for a\n"
	"                       block device)\n"
	"      --cow-size=SIZE  the COW store of classic snapshots (K, M, G,\n"
	"                       T suffixes; default: the origin's size, so\n"
	"                       that it can never fill)\n"
	"      --customize      reset the identity inside each cloned disk\n"
	"                       that holds an ext2/3/4 file system with /etc\n"
	"                       (on the whole disk or in a partition of an\n"
	"                       MBR or GPT table), without mounting it\n"
	"                       (e2fsprogs' debugfs): /etc/hostname becomes\n"
	"                       NEWNAME, /etc/machine-id is emptied,\n"
	"                       /etc/ssh/ssh_host_* are removed.\n"
	"                       A qcow2 clone is reached through 'vstor serve\n"
	"                       --fuse' meanwhile.  An error if no disk has\n"
	"                       such a file system.\n"
	"  -q, --quiet          print nothing on success\n"
	"  -h, --help           this help\n"
	"\n"
	"Output: the new config's path and uuid, then one line per disk:\n"
	"its vdev, how it was cloned, the template's target and the clone's.\n"
	"\n"
	"Exit status: 0 when the clone is complete; 1 on any error (one line\n"
	"on stderr, and nothing left behind).\n"
	"\n"
	"Examples:\n"
	"  vstor clone /etc/vstor/debian-tmpl.cfg web2\n"
	"  vstor clone --customize -d /srv/clones tmpl.cfg web3 -o web3.cfg\n";

enum {
	OPT_COW_SIZE = 256,
	OPT_CUSTOMIZE,
};

static void print_result(const struct lvm_clone_result *r, const char *name)
{
	printf("%s: %s (uuid %s)\n", name, r->cfg_path, r->uuid);
	for (size_t i = 0; i < r->n_disks; i++) {
		const struct lvm_clone_disk *d = &r->disks[i];

		if (d->how == LVM_CLONE_SHARED)
			printf("  %-6s %-16s %s\n", d->vdev,
			       lvm_clone_how_name(d->how),
			       d->from[0] ? d->from : "(empty drive)");
		else
			printf("  %-6s %-16s %s -> %s%s\n", d->vdev,
			       lvm_clone_how_name(d->how), d->from, d->to,
			       d->customized ? " (customized)" : "");
	}
}

static int clone_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'o'},
		{"disk-dir", required_argument, NULL, 'd'},
		{"cow-size", required_argument, NULL, OPT_COW_SIZE},
		{"customize", no_argument, NULL, OPT_CUSTOMIZE},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct lvm_clone_opts o = {0};
	struct lvm_clone_result res;
	struct vs_error *err = NULL;
	bool quiet = false;
	int c;

	while ((c = getopt_long(argc, argv, "o:d:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.out_cfg = optarg; break;
		case 'd': o.disk_dir = optarg; break;
		case 'q': quiet = true; break;
		case OPT_CUSTOMIZE: o.customize = true; break;
		case OPT_COW_SIZE:
			if (vs_parse_size(optarg, &o.cow_size, "--cow-size",
					  &err) < 0) {
				vs_error_report(err);
				return 1;
			}
			if (!o.cow_size)
				return cli_usage_error("clone", NULL,
						       "--cow-size: must not "
						       "be 0");
			break;
		default: fputs("Try 'vstor help clone'.\n", stderr); return 1;
		}
	}
	if (argc - optind < 2)
		return cli_usage_error("clone", NULL,
				       "clone: needs TEMPLATE-CFG and NEWNAME");
	if (argc - optind > 2)
		return cli_usage_error("clone", NULL,
				       "clone: too many arguments");
	o.template_cfg = argv[optind];
	o.name = argv[optind + 1];
	if (lvm_clone(&o, &res, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (!quiet)
		print_result(&res, o.name);
	lvm_clone_result_clear(&res);
	return 0;
}

const struct cli_verb cli_verb_clone = {
	.name = "clone",
	.summary = "make a domain from a template: new config, COW disks",
	.usage = usage,
	.run = clone_run,
};
