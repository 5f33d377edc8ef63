/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor console [-t SECONDS] [--until TEXT] [--exit-on-eof] NAME|ID
 * vstor console [...] --socket PATH */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "../hypervisor/console.h"
#include "../hypervisor/state.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor console [-t SECONDS] [--until TEXT] [--exit-on-eof] "
	"NAME|ID\n"
	"       vstor console [-t SECONDS] [--until TEXT] [--exit-on-eof]\n"
	"                     --socket PATH\n"
	"\n"
	"Attach to a running domain's serial console (the guest's ttyS0):\n"
	"what the guest prints appears here, what is typed goes to the guest.\n"
	"\n"
	"On a terminal, the terminal is put in raw mode, so that every key\n"
	"(Ctrl-C included) reaches the guest; Ctrl-] leaves the console and\n"
	"the domain keeps running.  The terminal's settings come back however\n"
	"the command ends.\n"
	"\n"
	"When the standard input is not a terminal (a pipe, a file), its "
	"bytes\n"
	"go to the guest as they are, and the guest's output keeps coming "
	"after\n"
	"the input ends, until the domain stops or one of the options below\n"
	"ends the command.\n"
	"\n"
	"The console shows what the guest prints from the moment of "
	"attaching;\n"
	"everything it printed since it started is in the domain's "
	"console.log\n"
	"(its path is in 'vstor list -l').  One client at a time: a second\n"
	"'vstor console' waits until the first leaves.\n"
	"\n"
	"Options:\n"
	"  -t, --timeout SECONDS  leave after SECONDS without a byte in "
	"either\n"
	"                         direction\n"
	"  -u, --until TEXT       leave as soon as the guest printed TEXT\n"
	"  -e, --exit-on-eof      leave when the standard input ends, rather "
	"than\n"
	"                         wait for the guest\n"
	"  -s, --socket PATH      attach to the console socket PATH rather "
	"than a\n"
	"                         domain's: any QEMU character device served "
	"on a\n"
	"                         unix socket (-chardev socket,server=on)\n"
	"  -h, --help             this help\n"
	"\n"
	"Exit status:\n"
	"  0   the console was left: Ctrl-], the domain stopped, the timeout, "
	"the\n"
	"      end of the input with --exit-on-eof, or TEXT seen with --until\n"
	"  1   an error: no such domain, it is not running, a signal\n"
	"  3   with --until: the console ended without TEXT\n"
	"\n"
	"Examples:\n"
	"  vstor console web1\n"
	"  echo 'uname -a' | vstor console --until '# ' -t 30 web1\n";

/* NAME, or a domain ID given in digits (as xl console takes either). */
static int load_domain(const char *arg, struct dom_record **out,
		       struct vs_error **err)
{
	char **names = NULL, *end;
	unsigned long id;
	int r;

	if (!*arg || arg[strspn(arg, "0123456789")] != '\0')
		return dom_record_load(arg, out, err);
	errno = 0;
	id = strtoul(arg, &end, 10);
	if (errno || id == 0 || id > DOM_DOMID_MAX)
		return vs_error_set(err, ENOENT, "no domain with ID %s", arg);
	r = dom_record_names(&names, err);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; names[i] && r == -ENOENT; i++) {
		struct dom_record *rec = NULL;
		struct vs_error *e = NULL;

		if (dom_record_load(names[i], &rec, &e) < 0) {
			vs_error_free(e);
			continue;
		}
		if (rec->domid == id) {
			*out = rec;
			r = 0;
		} else {
			dom_record_free(rec);
		}
	}
	dom_names_free(names);
	if (r < 0)
		return vs_error_set(err, ENOENT, "no domain with ID %s", arg);
	return 0;
}

static int run_console(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"until", required_argument, NULL, 'u'},
		{"exit-on-eof", no_argument, NULL, 'e'},
		{"socket", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct dom_console_opts opts = {0};
	enum dom_console_end end = DOM_CONSOLE_PEER_CLOSED;
	struct dom_record *rec = NULL;
	struct vs_error *err = NULL;
	char *sock = NULL, *p;
	const char *sock_arg = NULL;
	unsigned long secs;
	int c, r;

	while ((c = getopt_long(argc, argv, "t:u:es:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 't':
			errno = 0;
			secs = strtoul(optarg, &p, 10);
			if (errno || p == optarg || *p || optarg[0] == '-' ||
			    secs == 0 || secs > INT_MAX / 1000)
				return cli_usage_error(
					"console", NULL,
					"--timeout: '%s' is not a number of "
					"seconds from 1 to %d",
					optarg, INT_MAX / 1000);
			opts.idle_timeout_ms = (int)(secs * 1000);
			break;
		case 'u':
			if (!*optarg)
				return cli_usage_error("console", NULL,
						       "--until: empty text");
			opts.until = optarg;
			break;
		case 'e': opts.exit_on_eof = true; break;
		case 's': sock_arg = optarg; break;
		case 'h': cli_print_usage(&cli_verb_console); return 0;
		default: fputs("Try 'vstor help console'.\n", stderr); return 1;
		}
	}
	if (sock_arg ? argc != optind : argc - optind != 1)
		return cli_usage_error(
			"console", NULL,
			sock_arg ? "--socket PATH takes no domain name"
				 : "give one domain name or ID");

	if (sock_arg) {
		r = (sock = strdup(sock_arg))
			    ? 0
			    : vs_error_set(&err, ENOMEM, "out of memory");
	} else {
		r = load_domain(argv[optind], &rec, &err);
		if (r == 0 && rec->state != DOM_STATE_RUNNING &&
		    rec->state != DOM_STATE_PAUSED)
			r = vs_error_set(
				&err, ENXIO,
				"domain '%s' is not running (it is %s)",
				rec->name, dom_state_name(rec->state));
		if (r == 0)
			r = dom_run_path(rec->rundir, "console.sock", &sock,
					 &err);
	}
	if (r == 0 && isatty(STDIN_FILENO))
		fprintf(stderr,
			"Connected to the console of %s%s; Ctrl-] leaves.\n",
			rec ? "domain " : "", rec ? rec->name : sock);
	if (r == 0)
		r = dom_console_attach_opts(sock, STDIN_FILENO, STDOUT_FILENO,
					    &opts, &end, &err);
	if (r == 0 && isatty(STDIN_FILENO))
		/* The guest's last line may not have ended: start ours afresh. */
		fputs("\r\n", stderr);
	free(sock);
	dom_record_free(rec);
	if (r < 0) {
		vs_error_report(err);
		return 1;
	}
	if (opts.until && end != DOM_CONSOLE_MATCHED)
		return 3;
	return 0;
}

const struct cli_verb cli_verb_console = {
	.name = "console",
	.summary = "attach to a domain's serial console",
	.usage = usage,
	.run = run_console,
};
