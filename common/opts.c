/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "size.h"

struct vs_opt {
	char *key;
	char *value;
	bool used;
};

struct vs_opts {
	char *what;
	int n;
	struct vs_opt *v;
};

void vs_opts_free(struct vs_opts *opts)
{
	if (!opts)
		return;
	for (int i = 0; i < opts->n; i++) {
		free(opts->v[i].key);
		free(opts->v[i].value);
	}
	free(opts->v);
	free(opts->what);
	free(opts);
}

/* Copy one item from *p up to an unescaped comma, undoing ",,". */
static char *next_item(const char **p)
{
	const char *s = *p;
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*s) {
		if (*s == ',') {
			if (s[1] != ',')
				break;
			s++;
		}
		*o++ = *s++;
	}
	*o = '\0';
	*p = *s ? s + 1 : s;
	return out;
}

static int add_item(struct vs_opts *opts, char *item, struct vs_error **errp)
{
	char *eq = strchr(item, '=');
	struct vs_opt *v;

	if (!eq || eq == item)
		return vs_error_set(errp, EINVAL,
				    "%s '%s' is not of the form key=value",
				    opts->what, item);
	*eq = '\0';
	for (int i = 0; i < opts->n; i++)
		if (!strcmp(opts->v[i].key, item))
			return vs_error_set(errp, EINVAL, "%s '%s' given twice",
					    opts->what, item);
	v = realloc(opts->v, sizeof(*v) * (size_t)(opts->n + 1));
	if (!v)
		return -ENOMEM;
	opts->v = v;
	v[opts->n].key = strdup(item);
	v[opts->n].value = strdup(eq + 1);
	v[opts->n].used = false;
	opts->n++;
	if (!v[opts->n - 1].key || !v[opts->n - 1].value)
		return -ENOMEM;
	return 0;
}

int vs_opts_parse(const char *text, const char *what, struct vs_opts **out,
		  struct vs_error **errp)
{
	struct vs_opts *opts = calloc(1, sizeof(*opts));
	const char *p = text ? text : "";
	int ret = 0;

	if (!opts || !(opts->what = strdup(what))) {
		vs_opts_free(opts);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	while (*p && ret == 0) {
		char *item = next_item(&p);

		if (!item) {
			ret = vs_error_set(errp, ENOMEM, "out of memory");
			break;
		}
		if (*item)
			ret = add_item(opts, item, errp);
		free(item);
	}
	if (ret < 0) {
		vs_opts_free(opts);
		return ret;
	}
	*out = opts;
	return 0;
}

const char *vs_opts_get(struct vs_opts *opts, const char *key)
{
	for (int i = 0; i < opts->n; i++) {
		if (!strcmp(opts->v[i].key, key)) {
			opts->v[i].used = true;
			return opts->v[i].value;
		}
	}
	return NULL;
}

int vs_opts_get_size(struct vs_opts *opts, const char *key, uint64_t *out,
		     struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, key);

	return v ? vs_parse_size(v, out, key, errp) : 0;
}

int vs_opts_get_bool(struct vs_opts *opts, const char *key, bool *out,
		     struct vs_error **errp)
{
	const char *v = vs_opts_get(opts, key);

	if (!v)
		return 0;
	if (!strcmp(v, "on") || !strcmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "false")) {
		*out = false;
		return 0;
	}
	return vs_error_set(errp, EINVAL, "%s %s='%s': expected on or off",
			    opts->what, key, v);
}

int vs_opts_check_used(struct vs_opts *opts, struct vs_error **errp)
{
	for (int i = 0; i < opts->n; i++)
		if (!opts->v[i].used)
			return vs_error_set(errp, EINVAL, "unknown %s '%s'",
					    opts->what, opts->v[i].key);
	return 0;
}
