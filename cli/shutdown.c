/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor shutdown [-w] [-t SECONDS] NAME, vstor reboot NAME */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/error.h"
#include "../hypervisor/domain.h"
#include "cli.h"

static const char shutdown_usage[] =
	"Usage: vstor shutdown [-w] [-t SECONDS] NAME\n"
	"\n"
	"Ask the guest to shut down: press its ACPI power button (QMP\n"
	"system_powerdown).  The guest's OS decides what to do; once it\n"
	"powers off, the domain's on_poweroff applies (destroy by default:\n"
	"the domain and its record are gone).  A guest without ACPI support\n"
	"ignores the button; 'vstor destroy' ends any domain.\n"
	"\n"
	"Options:\n"
	"  -w, --wait             wait until the domain has shut down (gone,\n"
	"                         kept as shut down, or restarted)\n"
	"  -t, --timeout=SECONDS  with -w, give up after SECONDS (default:\n"
	"                         wait for ever); the domain keeps running\n"
	"  -h, --help             this help\n"
	"\n"
	"Exit status: 0 on success, 1 on any error or when -t expired.\n";

static const char reboot_usage[] =
	"Usage: vstor reboot NAME\n"
	"\n"
	"Ask the guest to reboot.  ACPI has no reboot button, so vstor "
	"presses\n"
	"the power button, as 'vstor shutdown' does, and handles the "
	"power-off\n"
	"that follows as a reboot: on_reboot applies (restart by default: the\n"
	"guest starts again in a fresh QEMU on the same disks).  A guest that\n"
	"ignores the power button does not reboot.\n"
	"\n"
	"Exit status: 0 once the request is made, 1 on any error.\n";

static int run_shutdown(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"wait", no_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	bool wait = false;
	long timeout = -1;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "wt:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': wait = true; break;
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || timeout < 0 ||
			    timeout > INT_MAX / 1000)
				return cli_usage_error("shutdown", NULL,
						       "--timeout: '%s' is not "
						       "a number of seconds",
						       optarg);
			break;
		default: return cli_usage_error("shutdown", NULL, "bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("shutdown", NULL,
				       "give one domain name");
	if (dom_shutdown(argv[optind], wait,
			 timeout < 0 ? -1 : (int)timeout * 1000, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

static int run_reboot(int argc, char **argv)
{
	struct vs_error *err = NULL;

	if (argc != 2 || argv[1][0] == '-')
		return cli_usage_error("reboot", NULL, "give one domain name");
	if (dom_reboot(argv[1], &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}

const struct cli_verb cli_verb_shutdown = {
	.name = "shutdown",
	.summary = "ask a domain's guest to shut down (ACPI power button)",
	.usage = shutdown_usage,
	.run = run_shutdown,
};

const struct cli_verb cli_verb_reboot = {
	.name = "reboot",
	.summary = "ask a domain's guest to reboot",
	.usage = reboot_usage,
	.run = run_reboot,
};
