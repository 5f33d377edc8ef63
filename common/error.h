/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Error objects for setup paths.
 *
 * Data-path calls return -errno and nothing else.  Setup calls (open,
 * create, parse) also take a `struct vs_error **errp` as their last
 * parameter and, on failure, fill it with one message that names the
 * object, the offset and what was expected.  A function either reports an
 * error (prints it) or returns it, never both: only cli/ prints.
 */
#ifndef VS_COMMON_ERROR_H
#define VS_COMMON_ERROR_H

#include <stdarg.h>

struct vs_error {
	int code;   /* positive errno value */
	char msg[]; /* one line, no trailing newline */
};

/*
 * Set *errp (if errp is non-NULL and *errp is still NULL) and return -code.
 * `code` may be given positive or negative.  The first error set wins:
 * later calls on the same errp are ignored, so the innermost, most precise
 * message reaches the user.
 */
int vs_error_set(struct vs_error **errp, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vs_error_setv(struct vs_error **errp, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Like vs_error_set, with ": strerror(code)" appended. */
int vs_error_set_errno(struct vs_error **errp, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Put "prefix: " in front of an error already set (no-op if none). */
void vs_error_prefix(struct vs_error **errp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

const char *vs_error_msg(const struct vs_error *err);
void vs_error_free(struct vs_error *err);

/* Print "vstor: MESSAGE" to stderr and free the error. */
void vs_error_report(struct vs_error *err);

#endif
