/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vstor command: verb groups ("disk", "img", ...) each hold a table of
 * verbs; cli/main.c holds the table of groups and the table of top-level
 * verbs, which have no group ("vstor serve").  One file per verb
 * (cli/img-info.c, cli/serve.c), one file per group table (cli/img.c).
 *
 * A verb's run() gets argv with argv[0] = the verb's name ("info"), parses
 * its options with getopt_long, prints, and returns the process exit code:
 * 0 success, 1 error (the message already printed with vs_error_report or
 * cli_usage_error), or a verb-specific code documented in its help (img
 * check's 2 and 3).
 */
#ifndef VS_CLI_CLI_H
#define VS_CLI_CLI_H

#include <stdbool.h>

struct json_object;

struct cli_verb {
	const char *name;
	const char *summary; /* one line for "vstor help GROUP" */
	const char *usage;   /* the full help text: synopsis, options,
				 * exit status; printed by --help */
	int (*run)(int argc, char **argv);
};

struct cli_group {
	const char *name;
	const char *summary;
	const struct cli_verb *const *verbs; /* NULL-terminated */
};

/*
 * Each verb file exports its verb as `const struct cli_verb
 * cli_verb_GROUP_VERB` (cli_verb_img_info); the group file lists them.
 */
extern const struct cli_group cli_group_disk;
extern const struct cli_group cli_group_img;

/* Top-level verbs are `cli_verb_VERB` (cli_verb_serve), listed in
 * main.c's top_verbs. */
extern const struct cli_verb cli_verb_serve;

extern const struct cli_verb cli_verb_disk_parse;
extern const struct cli_verb cli_verb_img_create;
extern const struct cli_verb cli_verb_img_info;
extern const struct cli_verb cli_verb_img_check;
extern const struct cli_verb cli_verb_img_bench;
extern const struct cli_verb cli_verb_img_snapshot;
extern const struct cli_verb cli_verb_img_convert;
extern const struct cli_verb cli_verb_img_compare;
extern const struct cli_verb cli_verb_img_map;
extern const struct cli_verb cli_verb_img_measure;
extern const struct cli_verb cli_verb_img_commit;
extern const struct cli_verb cli_verb_img_rebase;
extern const struct cli_verb cli_verb_img_resize;

/* Print "vstor: MESSAGE" and "Try 'vstor help GROUP VERB'." to stderr;
 * returns 1 so that callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *group, const char *verb, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print a verb's usage text to stdout. */
void cli_print_usage(const struct cli_verb *verb);

/* Print a JSON object to stdout as qemu-img does (pretty, 4 spaces) and
 * free it. */
void cli_print_json(struct json_object *obj);

/* --output=human|json: returns true for json, false for human; -1 and an
 * error message for anything else. */
int cli_parse_output(const char *group, const char *verb, const char *arg);

#endif
