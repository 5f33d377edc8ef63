/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor: the command.  Parses the global options, finds the verb (a
 * top-level one such as "serve", or a group and its verb such as "img
 * info") in the tables below, and hands over argv.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "cli.h"

#ifndef VSTOR_VERSION
#define VSTOR_VERSION "0.1.0"
#endif

/* One group per line (clang-format would pack them). */
/* clang-format off */
static const struct cli_group *const groups[] = {
	&cli_group_disk,
	&cli_group_img,
	&cli_group_lv,
	&cli_group_part,
	NULL,
};
/* clang-format on */

/* Verbs of their own, without a group ("vstor create"): xl's domain
 * verbs first, in xl's order, then the disk services. */
/* clang-format off */
static const struct cli_verb *const top_verbs[] = {
	&cli_verb_create,
	&cli_verb_list,
	&cli_verb_console,
	&cli_verb_shutdown,
	&cli_verb_reboot,
	&cli_verb_destroy,
	&cli_verb_pause,
	&cli_verb_unpause,
	&cli_verb_block_attach,
	&cli_verb_block_detach,
	&cli_verb_block_list,
	&cli_verb_serve,
	&cli_verb_clone,
	&cli_verb_backup,
	&cli_verb_restore,
	NULL,
};
/* clang-format on */

static const char main_usage[] =
	"Usage: vstor [-D MODULES] [-q] VERB [OPTIONS] [ARGS]\n"
	"       vstor [-D MODULES] [-q] GROUP VERB [OPTIONS] [ARGS]\n"
	"       vstor help [VERB | GROUP [VERB]]\n"
	"       vstor --version\n"
	"\n"
	"vstor runs Xen-style domains on QEMU and manages their disks:\n"
	"domains from xl configs with xl's verbs, disks served by its own\n"
	"backend, image tools in the manner of qemu-img, LVM volumes with\n"
	"live backups and clones, and partition mapping as kpartx does.\n"
	"\n"
	"Global options:\n"
	"  -D, --debug=MODULES  debug messages for a comma-separated list of\n"
	"                       modules (vbd, raw, engine, ...) or 'all'\n"
	"  -q, --quiet          no informational messages or warnings\n"
	"  -h, --help           this help; 'vstor help GROUP VERB' for a verb\n"
	"  -V, --version        print the version and exit\n"
	"\n"
	"Verbs:\n";

static void print_groups(FILE *out)
{
	fputs(main_usage, out);
	for (int i = 0; top_verbs[i]; i++)
		fprintf(out, "  %-12s %s\n", top_verbs[i]->name,
			top_verbs[i]->summary);
	fputs("\nVerb groups:\n", out);
	for (int i = 0; groups[i]; i++)
		fprintf(out, "  %-12s %s\n", groups[i]->name,
			groups[i]->summary);
	fputs("\nRun 'vstor help VERB' for a verb's options, 'vstor help "
	      "GROUP' for\nthe verbs of a group.\n",
	      out);
}

static void print_group(const struct cli_group *g, FILE *out)
{
	fprintf(out, "Usage: vstor %s VERB [OPTIONS] [ARGS]\n\n%s.\n\nVerbs:\n",
		g->name, g->summary);
	for (int i = 0; g->verbs[i]; i++)
		if (g->verbs[i]->summary) /* none: a hidden alias */
			fprintf(out, "  %-10s %s\n", g->verbs[i]->name,
				g->verbs[i]->summary);
	fprintf(out, "\nRun 'vstor help %s VERB' for a verb's options.\n",
		g->name);
}

static const struct cli_group *find_group(const char *name)
{
	for (int i = 0; groups[i]; i++)
		if (!strcmp(groups[i]->name, name))
			return groups[i];
	return NULL;
}

static const struct cli_verb *find_in(const struct cli_verb *const *verbs,
				      const char *name)
{
	for (int i = 0; verbs[i]; i++)
		if (!strcmp(verbs[i]->name, name))
			return verbs[i];
	return NULL;
}

static const struct cli_verb *find_verb(const struct cli_group *g,
					const char *name)
{
	return find_in(g->verbs, name);
}

void cli_print_usage(const struct cli_verb *verb)
{
	fputs(verb->usage, stdout);
}

int cli_usage_error(const char *group, const char *verb, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vs_log(VS_LOG_ERROR, NULL, "%s", msg);
	if (group)
		fprintf(stderr, "Try 'vstor help %s%s%s'.\n", group,
			verb ? " " : "", verb ? verb : "");
	else
		fputs("Try 'vstor --help'.\n", stderr);
	return 1;
}

void cli_print_json(struct json_object *obj)
{
	/* qemu-img prints 4-space indented JSON; json-c indents by 2, so
	 * widen the leading spaces of each line. */
	const char *s = json_object_to_json_string_ext(
		obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			     JSON_C_TO_STRING_NOSLASHESCAPE);

	for (const char *line = s; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		size_t sp = strspn(line, " ");

		if (sp > len)
			sp = len;
		printf("%*s%.*s\n", (int)(sp * 2), "", (int)(len - sp),
		       line + sp);
		line += len + (nl ? 1 : 0);
	}
	json_object_put(obj);
}

int cli_parse_output(const char *group, const char *verb, const char *arg)
{
	if (!strcmp(arg, "json"))
		return 1;
	if (!strcmp(arg, "human"))
		return 0;
	cli_usage_error(group, verb, "--output: '%s' is not one of human, json",
			arg);
	return -1;
}

static int cmd_help(int argc, char **argv)
{
	const struct cli_group *g;
	const struct cli_verb *v;

	if (argc < 2) {
		print_groups(stdout);
		return 0;
	}
	v = find_in(top_verbs, argv[1]);
	if (v) {
		cli_print_usage(v);
		return 0;
	}
	g = find_group(argv[1]);
	if (!g)
		return cli_usage_error(NULL, NULL, "unknown verb '%s'",
				       argv[1]);
	if (argc < 3) {
		print_group(g, stdout);
		return 0;
	}
	v = find_verb(g, argv[2]);
	if (!v)
		return cli_usage_error(g->name, NULL, "unknown verb '%s %s'",
				       g->name, argv[2]);
	cli_print_usage(v);
	return 0;
}

/* argv[0] is the verb's name: --help anywhere before "--" prints its
 * usage, otherwise the verb runs. */
static int run_found_verb(const struct cli_verb *v, int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_print_usage(v);
			return 0;
		}
	}
	/* 0, not 1: glibc then starts afresh and forgets the "+" (stop at
	 * the first operand) of the global options above, so that a verb's
	 * options may follow its operands, as in qemu-img. */
	optind = 0;
	return v->run(argc, argv);
}

static int run_verb(const struct cli_group *g, int argc, char **argv)
{
	const struct cli_verb *v;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_group(g, argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	v = find_verb(g, argv[1]);
	if (!v)
		return cli_usage_error(g->name, NULL, "unknown verb '%s %s'",
				       g->name, argv[1]);
	return run_found_verb(v, argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"debug", required_argument, NULL, 'D'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const struct cli_group *g;
	const struct cli_verb *v;
	int c;

	/* '+': stop at the first non-option, which is the verb group. */
	while ((c = getopt_long(argc, argv, "+D:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': vs_log_debug_enable(optarg); break;
		case 'q': vs_log_set_quiet(true); break;
		case 'h': print_groups(stdout); return 0;
		case 'V': printf("vstor %s\n", VSTOR_VERSION); return 0;
		default: fputs("Try 'vstor --help'.\n", stderr); return 1;
		}
	}
	if (optind >= argc) {
		print_groups(stderr);
		return 1;
	}
	argc -= optind;
	argv += optind;
	if (!strcmp(argv[0], "help"))
		return cmd_help(argc, argv);
	v = find_in(top_verbs, argv[0]);
	if (v)
		return run_found_verb(v, argc, argv);
	g = find_group(argv[0]);
	if (!g)
		return cli_usage_error(NULL, NULL, "unknown verb '%s'",
				       argv[0]);
	return run_verb(g, argc, argv);
}
