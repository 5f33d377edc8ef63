/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img snapshot [-f FMT] [-q] [-U] (-l | -c | -a | -d NAME) FILE */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/size.h"
#include "../vbd/vbd.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor img snapshot [-f FMT] [-q] [-U] -l FILE\n"
	"       vstor img snapshot [-f FMT] [-q] (-c | -a | -d) SNAPSHOT "
	"FILE\n"
	"\n"
	"List, create, apply or delete the internal snapshots of FILE, a\n"
	"qcow2 image, as 'qemu-img snapshot' does.  A snapshot keeps the\n"
	"disk's content as it was when it was taken; clusters are shared\n"
	"with the image until either side writes them.  SNAPSHOT is an ID\n"
	"or a name: IDs are tried first, then names.\n"
	"\n"
	"Only -l opens the image read-only.  The other operations open it\n"
	"for writing and lock it, so an image that a running domain or QEMU\n"
	"uses is refused; the VM state of a running guest is not saved\n"
	"(VM SIZE 0), the snapshot is of the disk alone.\n"
	"\n"
	"Options:\n"
	"  -l, --list           list the snapshots (the default): ID, TAG\n"
	"                       (name), VM SIZE, DATE, VM CLOCK and ICOUNT,\n"
	"                       in qemu-img's layout; nothing when there are\n"
	"                       none\n"
	"  -c, --create=NAME    take a snapshot named NAME, with the next\n"
	"                       free numeric ID; a name in use is refused\n"
	"  -a, --apply=SNAPSHOT revert the disk to SNAPSHOT (its content\n"
	"                       and its virtual size); what was written\n"
	"                       since is lost unless another snapshot\n"
	"                       keeps it\n"
	"  -d, --delete=SNAPSHOT delete SNAPSHOT and free the clusters only\n"
	"                       it used\n"
	"  -f, --format=FMT     the image's format; default: probe\n"
	"  -U, --force-share    with -l: read the image even while another\n"
	"                       process writes it (the list may be stale)\n"
	"  -q, --quiet          print nothing but the list and errors\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (one line on stderr;\n"
	"an operation that fails leaves the image as it was, or at worst\n"
	"with leaked clusters that 'qemu-img check -r leaks' reclaims).\n"
	"\n"
	"Example:\n"
	"  vstor img snapshot -c before-upgrade /var/lib/vstor/web1.qcow2\n"
	"  vstor img snapshot -a before-upgrade /var/lib/vstor/web1.qcow2\n";

enum op { OP_LIST = 'l', OP_CREATE = 'c', OP_APPLY = 'a', OP_DELETE = 'd' };

/* "00:01:02.345": hours are not wrapped at 24. */
static void format_clock(uint64_t nsec, char *buf, size_t len)
{
	uint64_t secs = nsec / 1000000000;

	snprintf(buf, len, "%02llu:%02llu:%02llu.%03llu",
		 (unsigned long long)(secs / 3600),
		 (unsigned long long)(secs / 60 % 60),
		 (unsigned long long)(secs % 60),
		 (unsigned long long)(nsec / 1000000 % 1000));
}

static void format_date(uint64_t sec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "%llu", (unsigned long long)sec);
}

/* qemu-img's columns: ID and TAG widen for long values. */
static void print_list(const struct vbd_snapshot *l, int n)
{
	if (!n)
		return;
	printf("Snapshot list:\n");
	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
	       "VM CLOCK", "ICOUNT");
	for (int i = 0; i < n; i++) {
		char size[32], date[64], clock[64], icount[32] = "";

		vs_format_size(l[i].vm_state_size, size, sizeof(size));
		format_date(l[i].date_sec, date, sizeof(date));
		format_clock(l[i].vm_clock_nsec, clock, sizeof(clock));
		if (l[i].icount_valid)
			snprintf(icount, sizeof(icount), "%lld",
				 (long long)l[i].icount);
		printf("%-9s %-16s %8s%20s%13s%11s\n", l[i].id, l[i].name, size,
		       date, clock, icount);
	}
}

static int run_op(struct vbd *vbd, enum op op, const char *name,
		  struct vs_error **errp)
{
	struct vbd_snapshot *l;
	int n, ret;

	switch (op) {
	case OP_CREATE: return vbd_snapshot_create(vbd, name, errp);
	case OP_APPLY: return vbd_snapshot_apply(vbd, name, errp);
	case OP_DELETE: return vbd_snapshot_delete(vbd, name, errp);
	case OP_LIST: break;
	}
	ret = vbd_snapshot_list(vbd, &l, &n, errp);
	if (ret == 0) {
		print_list(l, n);
		vbd_snapshot_list_free(l, n);
	}
	return ret;
}

static int img_snapshot_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"list", no_argument, NULL, 'l'},
		{"create", required_argument, NULL, 'c'},
		{"apply", required_argument, NULL, 'a'},
		{"delete", required_argument, NULL, 'd'},
		{"format", required_argument, NULL, 'f'},
		{"force-share", no_argument, NULL, 'U'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct vbd *vbd;
	const char *fmt = NULL, *name = NULL;
	enum op op = OP_LIST;
	bool share = false, op_given = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "lc:a:d:f:Uq", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'l':
		case 'c':
		case 'a':
		case 'd':
			if (op_given)
				return cli_usage_error(
					"img", "snapshot",
					"img snapshot: give one of -l, -c, "
					"-a, -d");
			op_given = true;
			op = (enum op)c;
			name = optarg;
			break;
		case 'f': fmt = optarg; break;
		case 'U': share = true; break;
		case 'q': break; /* nothing else is printed anyway */
		default:
			fputs("Try 'vstor help img snapshot'.\n", stderr);
			return 1;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("img", "snapshot",
				       optind == argc
					       ? "img snapshot: no FILE given"
					       : "img snapshot: one FILE only");
	if (share && op != OP_LIST)
		return cli_usage_error("img", "snapshot",
				       "img snapshot: -U only goes with -l "
				       "(changes need the image to "
				       "themselves)");
	ret = vbd_open_file(
		argv[optind], fmt,
		op == OP_LIST ? VBD_O_RDONLY | (share ? VBD_O_SHARE : 0) : 0,
		&vbd, &err);
	if (ret == 0) {
		ret = run_op(vbd, op, name, &err);
		vbd_close(vbd);
	}
	if (ret < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

const struct cli_verb cli_verb_img_snapshot = {
	.name = "snapshot",
	.summary = "list, create, apply or delete internal snapshots",
	.usage = usage,
	.run = img_snapshot_run,
};
