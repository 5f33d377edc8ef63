/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xl's config syntax (xl.cfg(5), "SYNTAX"): statements `KEY = VALUE` or
 * `KEY += VALUE` ended by a newline or ';'; values are strings in single
 * or double quotes with backslash escapes, unquoted numbers, or lists in
 * brackets that may span lines, nest, and end with a trailing comma; '#'
 * starts a comment.  A hand-written lexer and recursive-descent parser:
 * the grammar is small, and every error can say exactly what was found
 * where.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "config-syntax.h"
#include "config.h"

enum tok_type {
	T_EOF,
	T_NEWLINE,
	T_SEMI,
	T_IDENT,
	T_NUMBER,
	T_STRING,
	T_EQ,
	T_APPEND,
	T_LBRACKET,
	T_RBRACKET,
	T_COMMA,
};

struct tok {
	enum tok_type type;
	unsigned line;
	size_t start, end;
	char *str; /* IDENT, NUMBER, STRING: owned by the token */
};

struct lexer {
	const char *text;
	size_t len, pos;
	unsigned line;
	bool lines; /* false: report no line numbers (overrides) */
	const char *source;
	struct vs_error **err;
	struct tok tok; /* the current token */
};

void dom_xl_where(char *buf, size_t len, const char *source, unsigned line)
{
	if (line)
		snprintf(buf, len, "%s:%u", source, line);
	else
		snprintf(buf, len, "%s", source);
}

static int lex_error(struct lexer *lx, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int lex_error(struct lexer *lx, unsigned line, const char *fmt, ...)
{
	char where[512], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dom_xl_where(where, sizeof(where), lx->source, lx->lines ? line : 0);
	return vs_error_set(lx->err, EINVAL, "%s: %s", where, msg);
}

static int oom(struct lexer *lx)
{
	return vs_error_set(lx->err, ENOMEM, "%s: out of memory", lx->source);
}

/* A byte for a message: itself when printable, else its code. */
static const char *show_byte(unsigned char c, char buf[8])
{
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "0x%02x", c);
	return buf;
}

static bool is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_word(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/*
 * One escape after a backslash at text[*pos]; the byte it stands for in
 * *out.  The escapes are C's common ones, as xl's lexer takes them.
 */
static int lex_escape(struct lexer *lx, size_t *pos, char *out)
{
	const char *t = lx->text;
	size_t p = *pos;
	unsigned v = 0;
	char b[8];

	if (p >= lx->len || t[p] == '\n')
		return lex_error(lx, lx->line, "unterminated string");
	switch (t[p]) {
	case '\\':
	case '\'':
	case '"': *out = t[p++]; break;
	case 'n': *out = '\n', p++; break;
	case 't': *out = '\t', p++; break;
	case 'r': *out = '\r', p++; break;
	case 'x':
		p++;
		for (int i = 0; i < 2; i++, p++) {
			int h = p < lx->len ? dom_hex_digit(t[p]) : -1;

			if (h < 0)
				return lex_error(lx, lx->line,
						 "escape '\\x' needs two hex "
						 "digits");
			v = v * 16 + (unsigned)h;
		}
		*out = (char)v;
		break;
	default:
		if (t[p] < '0' || t[p] > '7')
			return lex_error(lx, lx->line,
					 "unknown escape '\\' %s in string",
					 show_byte((unsigned char)t[p], b));
		for (int i = 0;
		     i < 3 && p < lx->len && t[p] >= '0' && t[p] <= '7';
		     i++, p++)
			v = v * 8 + (unsigned)(t[p] - '0');
		if (v > 255)
			return lex_error(lx, lx->line,
					 "octal escape above \\377 in string");
		*out = (char)v;
		break;
	}
	if (*out == '\0')
		return lex_error(lx, lx->line, "NUL byte (%s) in string",
				 show_byte(0, b));
	*pos = p;
	return 0;
}

/* A quoted string starting at text[pos]; escapes undone into tok.str. */
static int lex_string(struct lexer *lx)
{
	const char *t = lx->text;
	char quote = t[lx->pos];
	size_t p = lx->pos + 1, n = 0;
	autofree char *s = NULL;
	char b[8];

	/* The value is never longer than its text. */
	s = malloc(lx->len - lx->pos);
	if (!s)
		return oom(lx);
	for (;;) {
		char c;

		if (p >= lx->len || t[p] == '\n')
			return lex_error(lx, lx->line,
					 "unterminated string (a string "
					 "ends on the line it starts)");
		c = t[p];
		if (c == quote) {
			p++;
			break;
		}
		if (c == '\\') {
			int ret;

			p++;
			ret = lex_escape(lx, &p, &s[n]);
			if (ret)
				return ret;
			n++;
			continue;
		}
		if ((unsigned char)c < 0x20 && c != '\t')
			return lex_error(lx, lx->line,
					 "control character %s in string",
					 show_byte((unsigned char)c, b));
		if (c == 0x7f)
			return lex_error(lx, lx->line,
					 "control character %s in string",
					 show_byte((unsigned char)c, b));
		s[n++] = c;
		p++;
	}
	s[n] = '\0';
	lx->tok.type = T_STRING;
	lx->tok.end = p;
	lx->tok.str = vs_steal(&s);
	lx->pos = p;
	return 0;
}

/*
 * A run of word characters: an identifier when it starts with a letter,
 * a number when with a digit.  A number is kept as written: "12x" is one
 * token, so that the key's parser can say "'12x' is not a number".
 */
static int lex_word(struct lexer *lx, enum tok_type type)
{
	size_t p = lx->pos;

	while (p < lx->len && is_word(lx->text[p]))
		p++;
	lx->tok.type = type;
	lx->tok.end = p;
	lx->tok.str = strndup(lx->text + lx->pos, p - lx->pos);
	if (!lx->tok.str)
		return oom(lx);
	lx->pos = p;
	return 0;
}

/* Blanks and comments; a comment runs to the end of the line. */
static void skip_blanks(struct lexer *lx)
{
	while (lx->pos < lx->len) {
		char c = lx->text[lx->pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' ||
		    c == '\v')
			lx->pos++;
		else if (c == '#')
			while (lx->pos < lx->len && lx->text[lx->pos] != '\n')
				lx->pos++;
		else
			break;
	}
}

static int lex_next(struct lexer *lx)
{
	char c, b[8];

	free(lx->tok.str);
	lx->tok.str = NULL;
	skip_blanks(lx);
	lx->tok.line = lx->lines ? lx->line : 0;
	lx->tok.start = lx->pos;
	lx->tok.end = lx->pos + 1;
	if (lx->pos >= lx->len) {
		lx->tok.type = T_EOF;
		lx->tok.end = lx->pos;
		return 0;
	}
	c = lx->text[lx->pos];
	if (c == '\0')
		return lex_error(lx, lx->line, "NUL byte in config text");
	if (c == '\'' || c == '"')
		return lex_string(lx);
	if (is_ident_start(c))
		return lex_word(lx, T_IDENT);
	if (c >= '0' && c <= '9')
		return lex_word(lx, T_NUMBER);
	lx->pos++;
	switch (c) {
	case '\n':
		lx->tok.type = T_NEWLINE;
		lx->line++;
		return 0;
	case ';': lx->tok.type = T_SEMI; return 0;
	case '=': lx->tok.type = T_EQ; return 0;
	case '[': lx->tok.type = T_LBRACKET; return 0;
	case ']': lx->tok.type = T_RBRACKET; return 0;
	case ',': lx->tok.type = T_COMMA; return 0;
	case '+':
		if (lx->pos < lx->len && lx->text[lx->pos] == '=') {
			lx->pos++;
			lx->tok.end++;
			lx->tok.type = T_APPEND;
			return 0;
		}
		break;
	default: break;
	}
	return lex_error(lx, lx->line, "unexpected character %s",
			 show_byte((unsigned char)c, b));
}

/* The current token, for "expected X, found Y". */
static const char *describe(const struct lexer *lx, char *buf, size_t len)
{
	const struct tok *t = &lx->tok;

	switch (t->type) {
	case T_EOF: return "the end of the text";
	case T_NEWLINE: return "the end of the line";
	case T_IDENT:
	case T_NUMBER: snprintf(buf, len, "'%.40s'", t->str); return buf;
	case T_STRING: snprintf(buf, len, "string '%.40s'", t->str); return buf;
	default:
		snprintf(buf, len, "'%.*s'", (int)(t->end - t->start),
			 lx->text + t->start);
		return buf;
	}
}

static void skip_newlines(struct lexer *lx, int *ret)
{
	while (!*ret && lx->tok.type == T_NEWLINE)
		*ret = lex_next(lx);
}

static int parse_value(struct lexer *lx, const char *key, unsigned depth,
		       struct dom_xl_value *v);

static int list_push(struct lexer *lx, struct dom_xl_value *list, size_t *cap)
{
	struct dom_xl_value *n;
	size_t c;

	if (list->n_items < *cap)
		return 0;
	if (list->n_items >= DOM_XL_MAX_ITEMS)
		return lex_error(lx, lx->tok.line, "list longer than %d items",
				 DOM_XL_MAX_ITEMS);
	c = *cap ? *cap * 2 : 4;
	n = realloc(list->items, c * sizeof(*n));
	if (!n)
		return oom(lx);
	list->items = n;
	*cap = c;
	return 0;
}

/* After '[': items separated by commas, newlines anywhere, a trailing
 * comma allowed. */
static int parse_list(struct lexer *lx, const char *key, unsigned depth,
		      struct dom_xl_value *v)
{
	size_t cap = 0;
	char b[64];
	int ret;

	v->kind = DOM_XL_LIST;
	ret = lex_next(lx);
	for (;;) {
		skip_newlines(lx, &ret);
		if (ret)
			return ret;
		if (lx->tok.type == T_RBRACKET)
			break;
		ret = list_push(lx, v, &cap);
		if (ret)
			return ret;
		/* Counted before it is parsed, so that what a failed item
		 * holds is freed with the list. */
		v->n_items++;
		ret = parse_value(lx, key, depth + 1,
				  &v->items[v->n_items - 1]);
		if (ret)
			return ret;
		skip_newlines(lx, &ret);
		if (ret)
			return ret;
		if (lx->tok.type == T_RBRACKET)
			break;
		if (lx->tok.type != T_COMMA)
			return lex_error(lx, lx->tok.line,
					 "%s: expected ',' or ']' in the "
					 "list, found %s",
					 key, describe(lx, b, sizeof(b)));
		ret = lex_next(lx);
	}
	v->end = lx->tok.end;
	return lex_next(lx);
}

static int parse_value(struct lexer *lx, const char *key, unsigned depth,
		       struct dom_xl_value *v)
{
	char b[64];

	memset(v, 0, sizeof(*v));
	v->line = lx->tok.line;
	v->start = lx->tok.start;
	v->end = lx->tok.end;
	switch (lx->tok.type) {
	case T_STRING:
	case T_NUMBER:
		v->kind = lx->tok.type == T_STRING ? DOM_XL_STRING
						   : DOM_XL_NUMBER;
		v->str = vs_steal(&lx->tok.str);
		return lex_next(lx);
	case T_LBRACKET:
		if (depth >= DOM_XL_MAX_DEPTH)
			return lex_error(lx, lx->tok.line,
					 "%s: lists nested deeper than %d", key,
					 DOM_XL_MAX_DEPTH);
		return parse_list(lx, key, depth, v);
	case T_IDENT:
		return lex_error(lx, lx->tok.line,
				 "%s: '%.40s' must be quoted (\"%.40s\")", key,
				 lx->tok.str, lx->tok.str);
	default:
		return lex_error(lx, lx->tok.line,
				 "%s: expected a value (a string, a number or "
				 "a list), found %s",
				 key, describe(lx, b, sizeof(b)));
	}
}

static bool key_is_lower(const char *k)
{
	for (; *k; k++)
		if ((*k >= 'A' && *k <= 'Z') || *k == '.')
			return false;
	return true;
}

static int parse_stmt(struct lexer *lx, struct dom_xl_stmt *st)
{
	char b[64];
	int ret;

	memset(st, 0, sizeof(*st));
	st->line = lx->tok.line;
	st->start = lx->tok.start;
	if (!key_is_lower(lx->tok.str))
		return lex_error(lx, lx->tok.line,
				 "'%.40s' is not a key (keys are lowercase "
				 "letters, digits and '_')",
				 lx->tok.str);
	st->key = vs_steal(&lx->tok.str);
	ret = lex_next(lx);
	if (ret)
		return ret;
	if (lx->tok.type != T_EQ && lx->tok.type != T_APPEND)
		return lex_error(lx, lx->tok.line,
				 "expected '=' after '%s', found %s", st->key,
				 describe(lx, b, sizeof(b)));
	st->append = lx->tok.type == T_APPEND;
	ret = lex_next(lx);
	if (!ret)
		ret = parse_value(lx, st->key, 0, &st->value);
	if (ret)
		return ret;
	st->end = st->value.end;
	if (lx->tok.type != T_NEWLINE && lx->tok.type != T_SEMI &&
	    lx->tok.type != T_EOF)
		return lex_error(lx, lx->tok.line,
				 "%s: expected the end of the line or ';' "
				 "after the value, found %s",
				 st->key, describe(lx, b, sizeof(b)));
	return 0;
}

static int file_push(struct lexer *lx, struct dom_xl_file *f, size_t *cap)
{
	struct dom_xl_stmt *n;
	size_t c;

	if (f->n_stmts < *cap)
		return 0;
	if (f->n_stmts >= DOM_XL_MAX_ITEMS)
		return lex_error(lx, lx->tok.line,
				 "more than %d settings in one file",
				 DOM_XL_MAX_ITEMS);
	c = *cap ? *cap * 2 : 16;
	n = realloc(f->stmts, c * sizeof(*n));
	if (!n)
		return oom(lx);
	f->stmts = n;
	*cap = c;
	return 0;
}

static int parse_file(struct lexer *lx, struct dom_xl_file *f)
{
	size_t cap = 0;
	char b[64];
	int ret = lex_next(lx);

	while (!ret && lx->tok.type != T_EOF) {
		switch (lx->tok.type) {
		case T_NEWLINE:
		case T_SEMI: ret = lex_next(lx); break;
		case T_IDENT:
			ret = file_push(lx, f, &cap);
			if (ret)
				break;
			ret = parse_stmt(lx, &f->stmts[f->n_stmts]);
			/* Counted even when it failed half way, so that
			 * dom_xl_file_free frees what it holds. */
			f->n_stmts++;
			break;
		default:
			ret = lex_error(lx, lx->tok.line,
					"expected a key, found %s",
					describe(lx, b, sizeof(b)));
			break;
		}
	}
	return ret;
}

int dom_xl_parse(const char *text, size_t len, const char *source,
		 unsigned line_base, struct dom_xl_file *out,
		 struct vs_error **err)
{
	struct lexer lx = {
		.text = text,
		.len = len,
		.line = line_base ? line_base : 1,
		.lines = line_base != 0,
		.source = source,
		.err = err,
	};
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_file(&lx, out);
	free(lx.tok.str);
	if (ret) {
		dom_xl_file_free(out);
		return ret;
	}
	return 0;
}

void dom_xl_value_free(struct dom_xl_value *v)
{
	free(v->str);
	for (size_t i = 0; i < v->n_items; i++)
		dom_xl_value_free(&v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

void dom_xl_file_free(struct dom_xl_file *f)
{
	for (size_t i = 0; i < f->n_stmts; i++) {
		free(f->stmts[i].key);
		dom_xl_value_free(&f->stmts[i].value);
	}
	free(f->stmts);
	memset(f, 0, sizeof(*f));
}

int dom_xl_value_copy(struct dom_xl_value *dst, const struct dom_xl_value *src)
{
	*dst = *src;
	dst->str = NULL;
	dst->items = NULL;
	dst->n_items = 0;
	if (src->str) {
		dst->str = strdup(src->str);
		if (!dst->str)
			return -ENOMEM;
	}
	if (src->n_items) {
		dst->items = calloc(src->n_items, sizeof(*dst->items));
		if (!dst->items) {
			dom_xl_value_free(dst);
			return -ENOMEM;
		}
		for (size_t i = 0; i < src->n_items; i++) {
			if (dom_xl_value_copy(&dst->items[i], &src->items[i])) {
				dom_xl_value_free(dst);
				return -ENOMEM;
			}
			dst->n_items++;
		}
	}
	return 0;
}

char *dom_xl_quote(const char *s)
{
	char q = strchr(s, '\'') ? '"' : '\'';
	size_t n = strlen(s);
	char *out, *o;

	/* Worst case every byte becomes a four-byte escape. */
	if (n > (SIZE_MAX - 3) / 4)
		return NULL;
	out = malloc(n * 4 + 3);
	if (!out)
		return NULL;
	o = out;
	*o++ = q;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == (unsigned char)q || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			o += sprintf(o, "\\x%02x", c);
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = q;
	*o = '\0';
	return out;
}
