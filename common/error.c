/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

static struct vs_error *error_new(int code, const char *msg)
{
	size_t len = strlen(msg);
	struct vs_error *err = malloc(sizeof(*err) + len + 1);

	if (!err)
		return NULL;
	err->code = code;
	memcpy(err->msg, msg, len + 1);
	return err;
}

int vs_error_setv(struct vs_error **errp, int code, const char *fmt, va_list ap)
{
	char *msg;

	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (!errp || *errp)
		return -code;
	if (vasprintf(&msg, fmt, ap) < 0)
		return -code;
	*errp = error_new(code, msg);
	free(msg);
	return -code;
}

int vs_error_set(struct vs_error **errp, int code, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vs_error_setv(errp, code, fmt, ap);
	va_end(ap);
	return ret;
}

int vs_error_set_errno(struct vs_error **errp, int code, const char *fmt, ...)
{
	char *head;
	va_list ap;
	int n;

	if (code < 0)
		code = -code;
	va_start(ap, fmt);
	n = vasprintf(&head, fmt, ap);
	va_end(ap);
	if (n < 0)
		return vs_error_set(errp, code, "%s", strerror(code));
	n = vs_error_set(errp, code, "%s: %s", head, strerror(code));
	free(head);
	return n;
}

void vs_error_prefix(struct vs_error **errp, const char *fmt, ...)
{
	struct vs_error *old, *new;
	char *head, *msg;
	va_list ap;
	int n;

	if (!errp || !*errp)
		return;
	old = *errp;
	va_start(ap, fmt);
	n = vasprintf(&head, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (asprintf(&msg, "%s: %s", head, old->msg) >= 0) {
		new = error_new(old->code, msg);
		if (new) {
			free(old);
			*errp = new;
		}
		free(msg);
	}
	free(head);
}

const char *vs_error_msg(const struct vs_error *err)
{
	return err ? err->msg : "unknown error";
}

void vs_error_free(struct vs_error *err)
{
	free(err);
}

void vs_error_report(struct vs_error *err)
{
	vs_log(VS_LOG_ERROR, NULL, "%s", vs_error_msg(err));
	vs_error_free(err);
}
