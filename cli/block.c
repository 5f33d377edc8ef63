/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor block-attach DOM DISKSPEC, block-detach [-t SECONDS] DOM VDEV,
 * block-list DOM */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/error.h"
#include "../hypervisor/domain.h"
#include "cli.h"

/* How long the guest gets to let go of a disk by default. */
#define DETACH_TIMEOUT_S 60

static const char attach_usage[] =
	"Usage: vstor block-attach DOMAIN DISKSPEC\n"
	"\n"
	"Plug a disk into a running domain.  DISKSPEC is an xl disk spec\n"
	"(vstor-disk(1)) with a vdev the domain does not use yet:\n"
	"'qcow2:/srv/data.qcow2,xvdb,w'.  The domain's 'vstor serve' opens\n"
	"the image (locking it, as for 'vstor create': a disk another domain\n"
	"writes is refused) and serves it over vhost-user-blk; QEMU plugs a\n"
	"vhost-user-blk-pci device at the vdev's PCI slot, and the guest's\n"
	"ACPI PCI hot-plug driver finds it (Linux names it vdX in the order\n"
	"disks appear, which need not match the vdev's letter).\n"
	"\n"
	"Exit status: 0 once QEMU has the device, 1 on any error (nothing is\n"
	"left open then).\n"
	"\n"
	"Example:\n"
	"  vstor block-attach web1 'format=raw, vdev=xvdc, access=ro, "
	"target=/srv/iso.img'\n";

static const char detach_usage[] =
	"Usage: vstor block-detach [-t SECONDS] DOMAIN VDEV\n"
	"\n"
	"Unplug disk VDEV from a running domain: QEMU asks the guest to\n"
	"release the device (ACPI PCI hot-unplug), and once the guest has,\n"
	"the domain's 'vstor serve' flushes and closes the image.  A guest\n"
	"that does not let go in time (no hot-plug driver, a mounted file\n"
	"system it will not give up) keeps the disk: the command fails and\n"
	"the image stays open.\n"
	"\n"
	"Options:\n"
	"  -t, --timeout=SECONDS  how long the guest gets (default 60)\n"
	"  -h, --help             this help\n"
	"\n"
	"Exit status: 0 when the disk is gone, 1 on any error.\n";

static const char list_usage[] =
	"Usage: vstor block-list DOMAIN\n"
	"\n"
	"List a domain's disks, one line each (xl's block-list, adapted to\n"
	"vhost-user):\n"
	"\n"
	"  Vdev    the virtual device\n"
	"  Mode    w (read-write) or r (read-only)\n"
	"  State   connected (QEMU holds the disk's socket), waiting (served,\n"
	"          nobody connected), empty (an empty cdrom drive: not "
	"served)\n"
	"          or missing (the server no longer has it)\n"
	"  Socket  the disk's vhost-user socket\n"
	"  Spec    the disk spec\n"
	"\n"
	"Exit status: 0 on success, 1 on any error.\n";

static int run_attach(int argc, char **argv)
{
	struct vs_error *err = NULL;

	if (argc != 3)
		return cli_usage_error("block-attach", NULL,
				       "give a domain and a disk spec");
	if (dom_block_attach(argv[1], argv[2], &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int run_detach(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	long timeout = DETACH_TIMEOUT_S;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || timeout < 1 ||
			    timeout > INT_MAX / 1000)
				return cli_usage_error("block-detach", NULL,
						       "--timeout: '%s' is not "
						       "a number of seconds",
						       optarg);
			break;
		default:
			return cli_usage_error("block-detach", NULL,
					       "bad option");
		}
	}
	if (optind + 2 != argc)
		return cli_usage_error("block-detach", NULL,
				       "give a domain and a vdev");
	if (dom_block_detach(argv[optind], argv[optind + 1],
			     (int)timeout * 1000, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int run_list(int argc, char **argv)
{
	struct dom_record *rec = NULL;
	struct vs_error *err = NULL;
	const char **states;

	if (argc != 2 || argv[1][0] == '-')
		return cli_usage_error("block-list", NULL,
				       "give one domain name");
	if (dom_refresh(argv[1], &rec, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (!rec) {
		fprintf(stderr,
			"vstor: domain '%s' has crashed and is gone "
			"(on_crash)\n",
			argv[1]);
		return 1;
	}
	states = calloc(rec->n_disks + 1, sizeof(*states));
	if (!states ||
	    (rec->serve.pid && dom_block_states(rec, states, &err) < 0)) {
		if (err)
			vs_error_report(err);
		free(states);
		dom_record_free(rec);
		return 1;
	}
	printf("%-8s %-4s %-10s %-40s %s\n", "Vdev", "Mode", "State", "Socket",
	       "Spec");
	for (size_t i = 0; i < rec->n_disks; i++) {
		const struct dom_rec_disk *d = &rec->disks[i];

		printf("%-8s %-4s %-10s %-40s %s\n", d->vdev,
		       d->readonly ? "r" : "w",
		       states[i] ? states[i] : "stopped",
		       d->socket ? d->socket : "-", d->spec);
	}
	free(states);
	dom_record_free(rec);
	return 0;
}

const struct cli_verb cli_verb_block_attach = {
	.name = "block-attach",
	.summary = "plug a disk into a running domain",
	.usage = attach_usage,
	.run = run_attach,
};

const struct cli_verb cli_verb_block_detach = {
	.name = "block-detach",
	.summary = "unplug a disk from a running domain",
	.usage = detach_usage,
	.run = run_detach,
};

const struct cli_verb cli_verb_block_list = {
	.name = "block-list",
	.summary = "list a domain's disks",
	.usage = list_usage,
	.run = run_list,
};
