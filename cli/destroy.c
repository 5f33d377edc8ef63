/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor destroy NAME... */
#include <stdio.h>

#include "../common/error.h"
#include "../hypervisor/domain.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor destroy NAME...\n"
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
	"Options:\n"
	"  -h, --help   this help\n"
	"\n"
	"Exit status: 0 when every domain is gone, 1 otherwise (one line per\n"
	"domain that could not be destroyed).\n";

static int run(int argc, char **argv)
{
	int status = 0;

	if (argc < 2)
		return cli_usage_error("destroy", NULL, "no domain given");
	for (int i = 1; i < argc; i++) {
		struct vs_error *err = NULL;

		if (argv[i][0] == '-')
			return cli_usage_error("destroy", NULL,
					       "unknown option '%s'", argv[i]);
		if (dom_destroy(argv[i], &err) < 0) {
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
