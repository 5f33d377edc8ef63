/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor pause NAME, vstor unpause NAME */
#include <stdio.h>

#include "../common/error.h"
#include "../hypervisor/domain.h"
#include "cli.h"

static const char pause_usage[] =
	"Usage: vstor pause NAME\n"
	"\n"
	"Stop the domain's virtual CPUs.  The guest keeps its memory and\n"
	"devices and does not notice, except for the time that passed; its\n"
	"disks stay open.  'vstor list' shows it in state p until 'vstor\n"
	"unpause'.\n"
	"\n"
	"Exit status: 0 on success, 1 on any error.\n";

static const char unpause_usage[] =
	"Usage: vstor unpause NAME\n"
	"\n"
	"Let a domain stopped by 'vstor pause' run again.\n"
	"\n"
	"Exit status: 0 on success, 1 on any error.\n";

static int pause_or_not(const char *verb, bool pause, int argc, char **argv)
{
	struct vs_error *err = NULL;

	if (argc != 2)
		return cli_usage_error(verb, NULL, "give one domain name");
	if (argv[1][0] == '-')
		return cli_usage_error(verb, NULL, "unknown option '%s'",
				       argv[1]);
	if (dom_pause(argv[1], pause, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int run_pause(int argc, char **argv)
{
	return pause_or_not("pause", true, argc, argv);
}

static int run_unpause(int argc, char **argv)
{
	return pause_or_not("unpause", false, argc, argv);
}

const struct cli_verb cli_verb_pause = {
	.name = "pause",
	.summary = "stop a domain's virtual CPUs",
	.usage = pause_usage,
	.run = run_pause,
};

const struct cli_verb cli_verb_unpause = {
	.name = "unpause",
	.summary = "let a paused domain run again",
	.usage = unpause_usage,
	.run = run_unpause,
};
