/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * "key=value,key=value" option strings, as qemu-img's -o takes them
 * (a literal comma in a value is written ",,").  Every option must be
 * consumed: vs_opts_check_used() names the first one nobody took.
 */
#ifndef VS_COMMON_OPTS_H
#define VS_COMMON_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct vs_opts;

/* Parse `text` (NULL or "" gives an empty list).  `what` names the
 * option set in errors ("raw format option"). */
int vs_opts_parse(const char *text, const char *what, struct vs_opts **out,
		  struct vs_error **errp);
void vs_opts_free(struct vs_opts *opts);

/* The value of `key` (marked used), or NULL if absent. */
const char *vs_opts_get(struct vs_opts *opts, const char *key);

/* Size-valued and boolean (on/off/true/false) options; absent keeps *out. */
int vs_opts_get_size(struct vs_opts *opts, const char *key, uint64_t *out,
		     struct vs_error **errp);
int vs_opts_get_bool(struct vs_opts *opts, const char *key, bool *out,
		     struct vs_error **errp);

/* Fail naming the first option no vs_opts_get* call asked for. */
int vs_opts_check_used(struct vs_opts *opts, struct vs_error **errp);

#endif
