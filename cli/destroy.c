/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor destroy NAME... */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../hypervisor/domain.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor destroy [--force] NAME...\n"
	"\n"
	"End each domain at once, as pulling its power cord would: QEMU and\n"
	"the domain's monitor are killed, then 'vstor serve' gets SIGTERM, so\n"
	"that every write the guest saw completed is in its images and they\n"
	"are closed cleanly.  The domain's sockets, logs and state record are\n"
	"removed.  A domain kept in the shutdown or crashed state (on_*=\n"
	"preserve) is removed the same way.\n"
	"\n"
	"Use 'vstor shutdown' to let the guest shut down by itself.\n"
	"\n"
	"A record that cannot be read back (a hand edit, a disk that lost a\n"
	"write) names no processes to stop, so destroy refuses it and says\n"
	"so.  Stop that domain's QEMU (started with '-name NAME') and its\n"
	"'vstor serve' (which names the run folder and disks) by hand, then\n"
	"destroy it with --force: the record is renamed NAME.json.damaged\n"
	"in the state folder, kept for a look, and the name is free again.\n"
	"\n"
	"Options:\n"
	"  -f, --force  set a damaged record aside (see above); a domain "
	"whose\n"
	"               record reads well is destroyed as without it\n"
	"  -h, --help   this help\n"
	"\n"
	"Exit status: 0 when every domain is gone, 1 otherwise (one line per\n"
	"domain that could not be destroyed).\n";

/* NAME's record did not load, for a reason other than its absence:
 * with --force it is set aside, else the way out is said. */
static int damaged(const char *name, bool force, struct vs_error *err)
{
	char *aside = NULL;
	struct vs_error *e = NULL;

	vs_error_report(err); /* and freed */
	if (!force) {
		fprintf(stderr,
			"vstor: if the record of '%s' is damaged, stop its "
			"processes by hand, then 'vstor destroy --force %s' "
			"sets it aside\n",
			name, name);
		return 1;
	}
	if (dom_forget_damaged(name, &aside, &e) < 0) {
		vs_error_report(e);
		return 1;
	}
	fprintf(stderr,
		"vstor: warning: domain '%s': damaged record set aside as %s; "
		"no process was stopped\n",
		name, aside);
	free(aside);
	return 0;
}

static int run(int argc, char **argv)
{
	bool force = false;
	int status = 0, first = 1;

	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "-f") ||
		    !strcmp(argv[first], "--force"))
			force = true;
		else if (!strcmp(argv[first], "--"))
			break;
		else
			return cli_usage_error("destroy", NULL,
					       "unknown option '%s'",
					       argv[first]);
	}
	if (first < argc && !strcmp(argv[first], "--"))
		first++;
	if (first >= argc)
		return cli_usage_error("destroy", NULL, "no domain given");
	for (int i = first; i < argc; i++) {
		struct vs_error *err = NULL;
		int r = dom_destroy(argv[i], &err);

		if (r == -EBADMSG) {
			status |= damaged(argv[i], force, err);
		} else if (r < 0) {
			vs_error_report(err);
			status = 1;
		}
	}
	return status;
}

const struct cli_verb cli_verb_destroy = {
	.name = "destroy",
	.summary = "end a domain at once and remove it",
	.usage = usage,
	.run = run,
};
