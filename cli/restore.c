/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor restore [-p] [-m N] [-O FMT] BACKUP TARGET */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../lvmglue/backup.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor restore [-p] [-m N] [-O FMT] BACKUP TARGET\n"
	"\n"
	"Write the disk as it was at one point of a backup chain made by\n"
	"'vstor backup' into TARGET.  BACKUP names the point: its manifest\n"
	"(DEST/VG-LV-STAMP.json) or its image (DEST/VG-LV-STAMP.qcow2); the\n"
	"earlier points of its chain must be beside it.\n"
	"\n"
	"TARGET is one of:\n"
	"  an LV (VG/LV, /dev/VG/LV) or another block device: it must be at\n"
	"      least as large as the backup (a larger one keeps its tail)\n"
	"      and not in use (open by a domain, mounted); every byte of\n"
	"      the backup's size is written, zeros included\n"
	"  a new image file: created in format FMT (-O raw, the default, or\n"
	"      -O qcow2); zero clusters stay holes.  An existing file is\n"
	"      refused\n"
	"\n"
	"Every cluster read from the backup is checked against the point's\n"
	"checksums before it is written; a mismatch stops the restore (a\n"
	"new image file is then removed).  SIGINT and SIGTERM stop it the\n"
	"same way.\n"
	"\n"
	"Options:\n"
	"  -O FMT              the new image file's format: raw or qcow2\n"
	"  -p, --progress      show progress (qemu-img's percentage line)\n"
	"  -m, --threads=N     reader threads (default: one per CPU, 1..16)\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr).\n"
	"\n"
	"Examples:\n"
	"  vstor restore /srv/backup/vg0-web1-20261122T035134Z.json vg0/web1\n"
	"  vstor restore -O qcow2 /srv/backup/vg0-web1-20261122T035134Z.json "
	"web1.qcow2\n";

static volatile sig_atomic_t cancel;

static void on_signal(int sig)
{
	cancel = sig;
}

static int restore_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"progress", no_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 'm'},
		{NULL, 0, NULL, 0},
	};
	struct lvm_restore_opts o = {.cancel = &cancel};
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	struct vs_error *err = NULL;
	char *end;
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "pm:O:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o.progress = true; break;
		case 'O': o.format = optarg; break;
		case 'm':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 16)
				return cli_usage_error(
					"restore", NULL,
					"-m: '%s' is not a thread "
					"count from 1 to 16",
					optarg);
			o.threads = (unsigned)v;
			break;
		default: fputs("Try 'vstor help restore'.\n", stderr); return 1;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("restore", NULL,
				       "restore: BACKUP and TARGET expected");
	o.backup = argv[optind];
	o.target = argv[optind + 1];
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (lvm_restore(&o, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

const struct cli_verb cli_verb_restore = {
	.name = "restore",
	.summary = "write a point of a backup into an LV or an image file",
	.usage = usage,
	.run = restore_run,
};
