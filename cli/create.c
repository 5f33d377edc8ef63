/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor create [-c] [-n] CONFIG [KEY=VALUE...] */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/log.h"
#include "../hypervisor/console.h"
#include "../hypervisor/domain.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor create [-c] [-n] CONFIG [KEY=VALUE...]\n"
	"\n"
	"Create and start a domain from CONFIG, a config file in xl's format\n"
	"(vstor.cfg(5)).  Each KEY=VALUE replaces that key of the file, in\n"
	"the file's value syntax ('memory=512', "
	"\"disk=['raw:/a.img,xvda,w']\").\n"
	"\n"
	"Everything is checked before anything starts: the config, the\n"
	"kernel and ramdisk, every disk spec and its target, two disks on one\n"
	"vdev, a domain of the same name, and a disk that another domain has\n"
	"open for writing (or read-only, when this one would write it).  Then\n"
	"'vstor serve' serves the domain's disks over vhost-user-blk, and "
	"QEMU\n"
	"runs the guest under a monitor process that applies on_poweroff,\n"
	"on_reboot and on_crash.  A failed start leaves nothing behind.\n"
	"\n"
	"Options:\n"
	"  -c, --console   attach to the domain's console once it runs\n"
	"                  (Ctrl-] leaves; the domain keeps running)\n"
	"  -n, --dry-run   check the config and print it as JSON; start\n"
	"                  nothing\n"
	"  -h, --help      this help\n"
	"\n"
	"Environment:\n"
	"  VSTOR_STATE_DIR  the state folder (default /var/lib/vstor)\n"
	"  VSTOR_QEMU       the QEMU binary (default qemu-system-x86_64)\n"
	"\n"
	"Exit status: 0 when the domain runs, 1 on any error (one line on\n"
	"stderr that names the file, line, key or disk).\n"
	"\n"
	"Examples:\n"
	"  vstor create /etc/vstor/web1.cfg\n"
	"  vstor create -c web1.cfg memory=1024 vcpus=2\n";

static int run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"console", no_argument, NULL, 'c'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct dom_config *cfg = NULL;
	struct dom_record *rec = NULL;
	struct vs_error *err = NULL;
	bool console = false, dry = false;
	char *sock = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "+cnh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': console = true; break;
		case 'n': dry = true; break;
		default: return cli_usage_error("create", NULL, "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("create", NULL, "no config file given");
	for (int i = optind + 1; i < argc; i++)
		if (!strchr(argv[i], '='))
			return cli_usage_error("create", NULL,
					       "'%s' is not KEY=VALUE",
					       argv[i]);
	r = dom_config_parse_file(argv[optind], argv + optind + 1,
				  (size_t)(argc - optind - 1), &cfg, &err);
	if (r < 0) {
		vs_error_report(err);
		return 1;
	}
	if (dry) {
		r = dom_config_check_files(cfg, &err);
		if (r == 0)
			cli_print_json(dom_config_to_json(cfg));
		dom_config_free(cfg);
		if (r < 0) {
			vs_error_report(err);
			return 1;
		}
		return 0;
	}
	r = dom_create(cfg, &rec, &err);
	if (r < 0) {
		vs_error_report(err);
		return 1;
	}
	vs_info("domain '%s' started (ID %u)", rec->name, rec->domid);
	if (console && asprintf(&sock, "%s/console.sock", rec->rundir) >= 0) {
		r = dom_console_attach(sock, STDIN_FILENO, STDOUT_FILENO, &err);
		if (r < 0)
			vs_error_report(err);
	}
	free(sock);
	dom_record_free(rec);
	return r < 0 ? 1 : 0;
}

const struct cli_verb cli_verb_create = {
	.name = "create",
	.summary = "create and start a domain from an xl config file",
	.usage = usage,
	.run = run,
};
