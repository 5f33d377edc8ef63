/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xl's config syntax, without meaning (internal to hypervisor/): the
 * text becomes a list of `KEY = VALUE` / `KEY += VALUE` statements whose
 * values are strings, numbers (kept as written) or lists, each with the
 * line it started on and the span of text it came from, so that errors
 * can name the line and vstor clone can rewrite a value in place.
 */
#ifndef VS_HYPERVISOR_CONFIG_SYNTAX_H
#define VS_HYPERVISOR_CONFIG_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/error.h"

/* Bounds on hostile input: deep nesting costs stack, long lists memory. */
#define DOM_XL_MAX_DEPTH 8
#define DOM_XL_MAX_ITEMS 4096

enum dom_xl_kind {
	DOM_XL_STRING, /* quoted; `str` is the value with escapes undone */
	DOM_XL_NUMBER, /* unquoted, as written ("512", "0x20", "12x") */
	DOM_XL_LIST,
};

struct dom_xl_value {
	enum dom_xl_kind kind;
	char *str;		    /* STRING, NUMBER */
	struct dom_xl_value *items; /* LIST */
	size_t n_items;
	unsigned line;	   /* where the value starts */
	size_t start, end; /* its text, quotes and brackets included */
};

struct dom_xl_stmt {
	char *key;
	bool append; /* `+=` */
	unsigned line;
	size_t start, end; /* the whole statement, key to value */
	struct dom_xl_value value;
};

struct dom_xl_file {
	struct dom_xl_stmt *stmts;
	size_t n_stmts;
};

/*
 * Parse `len` bytes of text.  Errors read "SOURCE:LINE: ..." (just
 * "SOURCE: ..." when line_base is 0, for one-line command-line
 * overrides).  On success *out holds the statements; free it with
 * dom_xl_file_free.
 */
int dom_xl_parse(const char *text, size_t len, const char *source,
		 unsigned line_base, struct dom_xl_file *out,
		 struct vs_error **err);

void dom_xl_file_free(struct dom_xl_file *f);
void dom_xl_value_free(struct dom_xl_value *v);

/* A deep copy; returns -ENOMEM on failure. */
int dom_xl_value_copy(struct dom_xl_value *dst, const struct dom_xl_value *src);

/* `s` as an xl string literal (single quotes unless it has one), the
 * caller's to free; NULL when out of memory. */
char *dom_xl_quote(const char *s);

/* dom_config_parse_text, with its warnings left out when `quiet`: a
 * state record read back was warned about when its file was read. */
struct dom_config;
int dom_config_parse_quiet(const char *text, const char *source_name,
			   char *const *overrides, size_t n_overrides,
			   bool quiet, struct dom_config **out,
			   struct vs_error **err);

/* "web1.cfg:7" or "command line" into buf. */
void dom_xl_where(char *buf, size_t len, const char *source, unsigned line);

#endif
