/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor backup [-i] [-p] [-m N] [--snapshot-size SIZE] SOURCE DEST
 * vstor backup verify [-p] [-m N] BACKUP.json
 *
 * SOURCE is an LV or a domain; a domain's LV disks are found here from
 * its state record (hypervisor/), since lvmglue/ sits beside hypervisor/
 * and knows nothing of domains.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/size.h"
#include "../hypervisor/state.h"
#include "../lvmglue/backup.h"
#include "../lvmglue/lvm.h"
#include "../vbd/diskspec.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor backup [-i] [-p] [-m N] [--snapshot-size SIZE] SOURCE "
	"DEST\n"
	"       vstor backup verify [-p] [-m N] BACKUP.json\n"
	"\n"
	"Back up a logical volume while it is in use: vstor takes an LVM\n"
	"snapshot of it (a thin snapshot of a thin LV, a classic one\n"
	"otherwise), reads the snapshot while the LV's user carries on, and\n"
	"writes into the folder DEST a zstd-compressed qcow2 image of it,\n"
	"a file of per-cluster checksums and a JSON manifest:\n"
	"\n"
	"  DEST/VG-LV-STAMP.qcow2  the data (qemu-img reads it as it is)\n"
	"  DEST/VG-LV-STAMP.sums   one 64-bit checksum per 64 KiB cluster\n"
	"  DEST/VG-LV-STAMP.json   the manifest: source, time, size, chain\n"
	"\n"
	"STAMP is the UTC time (20261122T035134Z).  The manifest is written\n"
	"last: a backup without one never counts.  The snapshot is removed\n"
	"on every path, failures and SIGINT/SIGTERM/SIGHUP included.\n"
	"\n"
	"SOURCE is an LV (/dev/VG/LV, /dev/mapper/VG-LV or VG/LV) or the\n"
	"name of a running domain, whose LV disks are backed up one after\n"
	"the other (other disks are skipped with a notice; the snapshots of\n"
	"two disks are not taken at the same instant).\n"
	"\n"
	"With -i, the backup is incremental: it holds only the clusters\n"
	"changed since the last backup of the same LV in DEST, as a qcow2\n"
	"overlay whose backing file is that backup.  For a thin LV the\n"
	"changes come from thin_delta against the last backup's thin\n"
	"snapshot, which is kept for that purpose (one per LV: each thin\n"
	"backup replaces it); for a classic LV the whole snapshot is read\n"
	"and compared with the last backup's checksums.  Without an earlier\n"
	"backup, -i takes a full one.\n"
	"\n"
	"A classic snapshot gets room for the whole LV to change while it is\n"
	"read (its size plus 1/32), but at most half the VG's free space;\n"
	"when that is less than 1/8 of the LV the backup is refused.\n"
	"--snapshot-size chooses the size instead.  A snapshot that\n"
	"overflows fails the backup.\n"
	"\n"
	"'vstor backup verify' reads a backup chain back, up to the point\n"
	"BACKUP.json, and checks each point's image (qcow2 structure,\n"
	"backing file) and every checksum; the first mismatch is reported.\n"
	"\n"
	"Options:\n"
	"  -i, --incremental     only what changed since the last backup\n"
	"  -p, --progress        show progress (qemu-img's percentage line)\n"
	"  -m, --threads=N       reader/compressor threads (default: one per\n"
	"                        CPU, at most 16)\n"
	"      --snapshot-size=SIZE\n"
	"                        a classic snapshot's size (K, M, G suffixes)\n"
	"  -h, --help            this help\n"
	"\n"
	"Output: one line per backup written, its manifest first:\n"
	"  DEST/vg0-web1-20261122T035134Z.json: incremental (thin-delta), 12 "
	"of\n"
	"  4096 clusters stored, 0 of them zero\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr).\n"
	"\n"
	"Examples:\n"
	"  vstor backup vg0/web1 /srv/backup\n"
	"  vstor backup -i -p web1 /srv/backup\n"
	"  vstor backup verify /srv/backup/vg0-web1-20261122T035134Z.json\n";

static volatile sig_atomic_t cancel;

static void on_signal(int sig)
{
	cancel = sig;
}

/* Signals end the copy; the library then removes what it made. */
static void catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

struct opts {
	bool incremental, progress;
	unsigned threads;
	uint64_t snapshot_size;
};

static int parse_threads(const char *arg, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > 16) {
		fprintf(stderr,
			"vstor: -m: '%s' is not a thread count from 1 to 16\n",
			arg);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int backup_one(const char *lv, const char *dest, const char *domain,
		      const struct opts *o)
{
	struct lvm_backup_opts bo = {
		.source = lv,
		.dest = dest,
		.domain = domain,
		.incremental = o->incremental,
		.snapshot_size = o->snapshot_size,
		.threads = o->threads,
		.progress = o->progress,
		.cancel = &cancel,
	};
	struct lvm_backup_result res;
	struct vs_error *err = NULL;

	if (lvm_backup(&bo, &res, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	printf("%s: %s (%s), %" PRIu64 " of %" PRIu64
	       " clusters stored, %" PRIu64 " of them zero\n",
	       res.manifest, res.kind, res.method, res.changed, res.clusters,
	       res.zeroed);
	fflush(stdout);
	lvm_backup_result_clear(&res);
	return 0;
}

/* Is SOURCE shaped like an LV name (then it is never a domain)? */
static bool looks_like_lv(const char *s)
{
	return strchr(s, '/') != NULL;
}

static int backup_domain(const char *name, const char *dest,
			 const struct opts *o)
{
	struct dom_record *rec = NULL;
	struct vs_error *err = NULL;
	int done = 0, rc = 0;

	if (dom_record_load(name, &rec, &err) < 0) {
		if (err && err->code == ENOENT)
			vs_error_prefix(
				&err,
				"'%s' is neither an LV (VG/LV, /dev/VG/LV) "
				"nor a domain",
				name);
		vs_error_report(err);
		return 1;
	}
	for (size_t i = 0; i < rec->n_disks && !rc && !cancel; i++) {
		struct dom_rec_disk *d = &rec->disks[i];
		struct vbd_spec *spec = NULL;
		struct lvm_lv lv = {0};
		int is_lv = 0;

		if (d->empty)
			continue;
		if (vbd_spec_parse(d->spec, &spec, &err) < 0) {
			vs_error_prefix(&err, "domain %s, disk %s", name,
					d->vdev);
			vs_error_report(err);
			rc = 1;
			break;
		}
		if (spec->target)
			is_lv = lvm_lv_probe(spec->target, &lv, &err);
		if (is_lv < 0) {
			vs_error_report(err);
			err = NULL;
			rc = 1;
		} else if (!is_lv) {
			vs_info("domain %s, disk %s (%s) is not an LV: skipped",
				name, d->vdev,
				spec->target ? spec->target : "empty");
		} else {
			rc = backup_one(lv.path, dest, name, o);
			done++;
		}
		lvm_lv_clear(&lv);
		vbd_spec_free(spec);
	}
	dom_record_free(rec);
	if (!rc && !cancel && !done) {
		fprintf(stderr, "vstor: domain %s has no disk on an LV\n",
			name);
		rc = 1;
	}
	return rc;
}

static int run_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"progress", no_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 'm'},
		{NULL, 0, NULL, 0},
	};
	struct lvm_verify_result res;
	struct vs_error *err = NULL;
	unsigned threads = 0;
	bool progress = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "pm:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': progress = true; break;
		case 'm':
			if (parse_threads(optarg, &threads) < 0)
				return 1;
			break;
		default: fputs("Try 'vstor help backup'.\n", stderr); return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(
			"backup", NULL,
			"backup verify: one BACKUP.json expected");
	catch_signals();
	if (lvm_backup_verify(argv[optind], threads, progress, &cancel, &res,
			      &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	printf("%s: %u point%s verified, %" PRIu64 " clusters read\n",
	       argv[optind], res.points, res.points == 1 ? "" : "s",
	       res.clusters_read);
	return 0;
}

enum { OPT_SNAPSHOT_SIZE = 256 };

static int backup_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"incremental", no_argument, NULL, 'i'},
		{"progress", no_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 'm'},
		{"snapshot-size", required_argument, NULL, OPT_SNAPSHOT_SIZE},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct opts o = {0};
	int c;

	if (argc > 1 && !strcmp(argv[1], "verify"))
		return run_verify(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "ipm:", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.incremental = true; break;
		case 'p': o.progress = true; break;
		case 'm':
			if (parse_threads(optarg, &o.threads) < 0)
				return 1;
			break;
		case OPT_SNAPSHOT_SIZE:
			if (vs_parse_size(optarg, &o.snapshot_size,
					  "--snapshot-size", &err) < 0) {
				vs_error_report(err);
				return 1;
			}
			if (!o.snapshot_size)
				return cli_usage_error("backup", NULL,
						       "--snapshot-size: 0 is "
						       "no room at all");
			break;
		default: fputs("Try 'vstor help backup'.\n", stderr); return 1;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("backup", NULL,
				       "backup: SOURCE and DEST expected");
	catch_signals();
	if (looks_like_lv(argv[optind]))
		return backup_one(argv[optind], argv[optind + 1], NULL, &o);
	return backup_domain(argv[optind], argv[optind + 1], &o);
}

const struct cli_verb cli_verb_backup = {
	.name = "backup",
	.summary = "back up an LV or a domain's LVs while in use; verify",
	.usage = usage,
	.run = backup_run,
};
