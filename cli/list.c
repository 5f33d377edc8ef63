/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor list [-l] [NAME...] */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "../hypervisor/domain.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor list [-l] [NAME...]\n"
	"\n"
	"List the domains (all, or those named) in xl's columns:\n"
	"\n"
	"  Name     the domain's name; the host itself is Domain-0\n"
	"  ID       the domain ID (increasing from 1; the host's is 0)\n"
	"  Mem      memory in MiB\n"
	"  VCPUs    virtual CPUs\n"
	"  State    six places, each a letter or '-': r running (a virtual\n"
	"           CPU is on a host CPU now), b blocked (idle), p paused,\n"
	"           s shut down, c crashed, d dying\n"
	"  Time(s)  CPU time used, in seconds: QEMU's for a domain, the\n"
	"           host's busy time for Domain-0\n"
	"\n"
	"Domains are known from their state records, so a list after the\n"
	"toolstack restarted still shows them.  A domain whose QEMU died\n"
	"with nobody to notice is reported as crashed and handled per its\n"
	"on_crash (destroy: it is removed and no longer listed).\n"
	"\n"
	"Options:\n"
	"  -l, --long   print the domains' state records as a JSON array\n"
	"               (config, processes, sockets, disks)\n"
	"  -h, --help   this help\n"
	"\n"
	"Environment:\n"
	"  VSTOR_STATE_DIR  the state folder (default /var/lib/vstor)\n"
	"\n"
	"Exit status: 0 on success, 1 on any error (such as a NAME that is\n"
	"not a domain).\n";

static unsigned long host_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long kb = 0;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

/* The host's busy CPU time: everything in /proc/stat's "cpu" line but
 * idle and iowait. */
static double host_cpu_seconds(void)
{
	unsigned long long v[8] = {0};
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4 || hz <= 0)
		return 0;
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
}

static void row(const char *name, unsigned id, unsigned long mem,
		unsigned vcpus, const char *state, double secs)
{
	printf("%-40s %5u %5lu %5u     %s  %8.1f\n", name, id, mem, vcpus,
	       state, secs);
}

static void print_dom0(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	row("Domain-0", 0, host_mib(), cpus > 0 ? (unsigned)cpus : 1, "r-----",
	    host_cpu_seconds());
}

static void print_dom(const struct dom_record *rec)
{
	char st[7];

	dom_state_letters(rec, st);
	row(rec->name, rec->domid, (unsigned long)rec->cfg->memory_mib,
	    rec->cfg->vcpus, st, dom_proc_cpu_seconds(&rec->qemu));
}

static int run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"long", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct json_object *arr = NULL;
	struct vs_error *err = NULL;
	char **names = NULL, **want;
	size_t n_want;
	bool json = false;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "lh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': json = true; break;
		default: return cli_usage_error("list", NULL, "bad option");
		}
	}
	want = argv + optind;
	n_want = (size_t)(argc - optind);
	if (!n_want) {
		if (dom_record_names(&names, &err) < 0) {
			vs_error_report(err);
			return 1;
		}
		want = names;
		while (want[n_want])
			n_want++;
	}
	if (json)
		arr = json_object_new_array();
	else
		puts("Name                                        ID   Mem "
		     "VCPUs\tState\tTime(s)");
	/* The host first, as xl lists it, unless names were given. */
	if (!json && names)
		print_dom0();
	for (size_t i = 0; i < n_want; i++) {
		struct dom_record *rec = NULL;

		if (names == NULL && !strcmp(want[i], "Domain-0")) {
			if (!json)
				print_dom0();
			continue;
		}
		if (dom_refresh(want[i], &rec, &err) < 0) {
			/* A domain that went away while we listed is no error
			 * unless it was asked for by name. */
			if (names) {
				vs_error_free(err);
			} else {
				vs_error_report(err);
				status = 1;
			}
			err = NULL;
			continue;
		}
		if (!rec)
			continue; /* crashed and destroyed per on_crash */
		if (json)
			json_object_array_add(arr, dom_record_to_json(rec));
		else
			print_dom(rec);
		dom_record_free(rec);
	}
	if (json)
		puts(json_object_to_json_string_ext(
			arr, JSON_C_TO_STRING_PRETTY |
				     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	dom_names_free(names);
	return status;
}

const struct cli_verb cli_verb_list = {
	.name = "list",
	.summary = "list the domains in xl's columns",
	.usage = usage,
	.run = run,
};
