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
extern const struct cli_group cli_group_part;
extern const struct cli_group cli_group_lv;

/* Top-level verbs are `cli_verb_VERB` (cli_verb_serve), listed in
 * main.c's top_verbs. */
extern const struct cli_verb cli_verb_serve;
extern const struct cli_verb cli_verb_backup;
extern const struct cli_verb cli_verb_restore;
extern const struct cli_verb cli_verb_clone;
/* Domains (issue 6), xl's verbs. */
extern const struct cli_verb cli_verb_create;
extern const struct cli_verb cli_verb_list;
extern const struct cli_verb cli_verb_console;
extern const struct cli_verb cli_verb_shutdown;
extern const struct cli_verb cli_verb_reboot;
extern const struct cli_verb cli_verb_destroy;
extern const struct cli_verb cli_verb_pause;
extern const struct cli_verb cli_verb_unpause;
extern const struct cli_verb cli_verb_block_attach;
extern const struct cli_verb cli_verb_block_detach;
extern const struct cli_verb cli_verb_block_list;

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
extern const struct cli_verb cli_verb_part_list;
extern const struct cli_verb cli_verb_part_map;
extern const struct cli_verb cli_verb_part_unmap;
/* kpartx's -l, -a, -d (and -lv, -av, -dv): hidden aliases, no summary. */
extern const struct cli_verb cli_verb_part_alias_l;
extern const struct cli_verb cli_verb_part_alias_a;
extern const struct cli_verb cli_verb_part_alias_d;
extern const struct cli_verb cli_verb_part_alias_lv;
extern const struct cli_verb cli_verb_part_alias_av;
extern const struct cli_verb cli_verb_part_alias_dv;
extern const struct cli_verb cli_verb_lv_list;
extern const struct cli_verb cli_verb_lv_show;
extern const struct cli_verb cli_verb_lv_create;
extern const struct cli_verb cli_verb_lv_resize;
extern const struct cli_verb cli_verb_lv_snapshot;
extern const struct cli_verb cli_verb_lv_remove;

/* vstor part (cli/part.c): kpartx -v's lines for map and unmap events
 * (an img_part_report_fn), and --method=auto|dm|loop into an enum
 * img_part_method (0, or 1 after a usage error). */
struct img_part_event;
void cli_part_report(const struct img_part_event *ev, void *opaque);
int cli_part_method(const char *verb, const char *arg, int *out);

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
