/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rewriting a config's text for a copy of its domain (vstor clone).  The
 * administrator's file is edited, not regenerated: the values that must
 * change are replaced where they stand, using the spans the parser
 * records, and every comment, blank line and other key stays as written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "config-syntax.h"
#include "config.h"

struct edit {
	size_t start, end; /* the text replaced: [start, end) */
	char *with;	   /* owned */
};

struct rewrite {
	const char *text;
	const char *source;
	struct edit edits[2 * DOM_XL_MAX_ITEMS + 2];
	size_t n_edits;
	struct vs_error **err;
};

static int oom(struct rewrite *r)
{
	return vs_error_set(r->err, ENOMEM, "%s: out of memory", r->source);
}

static int add_edit(struct rewrite *r, size_t start, size_t end, char *with)
{
	if (!with)
		return oom(r);
	if (r->n_edits >= VS_ARRAY_SIZE(r->edits)) {
		free(with);
		return vs_error_set(r->err, E2BIG, "%s: too many edits",
				    r->source);
	}
	r->edits[r->n_edits++] = (struct edit){start, end, with};
	return 0;
}

/* The one statement assigning `key`, or NULL; two or a `+=` refused. */
static int find_single(struct rewrite *r, const struct dom_xl_file *f,
		       const char *key, const struct dom_xl_stmt **out)
{
	*out = NULL;
	for (size_t i = 0; i < f->n_stmts; i++) {
		const struct dom_xl_stmt *st = &f->stmts[i];

		if (strcmp(st->key, key))
			continue;
		if (st->append)
			return vs_error_set(
				r->err, ENOTSUP,
				"%s:%u: %s is built with +=; a copy's config "
				"is written by changing a single assignment",
				r->source, st->line, key);
		if (*out)
			return vs_error_set(
				r->err, ENOTSUP,
				"%s:%u: %s is assigned again (first on line "
				"%u); a copy's config is written by changing "
				"a single assignment",
				r->source, st->line, key, (*out)->line);
		*out = st;
	}
	return 0;
}

/* A vif spec with its mac= replaced, every other item as written. */
static char *vif_with_mac(const char *spec, const char *mac)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *p = spec;

	if (!f)
		return NULL;
	for (;;) {
		size_t n = strcspn(p, ","), blank = strspn(p, " \t");

		if (!strncmp(p + blank, "mac=", 4))
			fprintf(f, "%.*smac=%s", (int)blank, p, mac);
		else
			fprintf(f, "%.*s", (int)n, p);
		p += n;
		if (!*p)
			break;
		fputc(*p++, f);
	}
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

static bool has_mac(const char *spec)
{
	for (const char *p = spec; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		p += strspn(p, " \t");
		if (!strncmp(p, "mac=", 4))
			return true;
	}
	return false;
}

static int edit_vifs(struct rewrite *r, const struct dom_xl_stmt *st,
		     const char *name)
{
	const struct dom_xl_value *v = &st->value;

	if (v->kind != DOM_XL_LIST)
		return vs_error_set(r->err, EINVAL, "%s:%u: vif: not a list",
				    r->source, st->line);
	for (size_t i = 0; i < v->n_items; i++) {
		const struct dom_xl_value *it = &v->items[i];
		autofree char *spec = NULL;
		char mac[18];
		int ret;

		if (it->kind != DOM_XL_STRING || !has_mac(it->str))
			continue;
		dom_mac_generate(name, i, mac);
		spec = vif_with_mac(it->str, mac);
		if (!spec)
			return oom(r);
		ret = add_edit(r, it->start, it->end, dom_xl_quote(spec));
		if (ret)
			return ret;
	}
	return 0;
}

static int edit_disks(struct rewrite *r, const struct dom_xl_stmt *st,
		      const struct dom_config_rewrite *rw)
{
	const struct dom_xl_value *v = &st->value;

	if (v->kind != DOM_XL_LIST || v->n_items != rw->n_disks)
		return vs_error_set(r->err, EINVAL,
				    "%s:%u: disk: %zu disks written, %zu to "
				    "rewrite",
				    r->source, st->line,
				    v->kind == DOM_XL_LIST ? v->n_items : 0,
				    rw->n_disks);
	for (size_t i = 0; i < v->n_items; i++) {
		int ret;

		if (!rw->disk_texts[i])
			continue;
		ret = add_edit(r, v->items[i].start, v->items[i].end,
			       dom_xl_quote(rw->disk_texts[i]));
		if (ret)
			return ret;
	}
	return 0;
}

/* A new uuid line goes after the name's line when the name has a line
 * to itself (comments aside), otherwise in front of its statement. */
static int add_uuid(struct rewrite *r, const struct dom_xl_stmt *name,
		    const char *uuid)
{
	const char *t = r->text;
	size_t p = name->end;
	char *line;

	p += strspn(t + p, " \t\r");
	if (t[p] == '#')
		p += strcspn(t + p, "\n");
	if (t[p] == '\n' || !t[p]) {
		if (asprintf(&line, "\nuuid = '%s'", uuid) < 0)
			return oom(r);
		return add_edit(r, p, p, line);
	}
	if (asprintf(&line, "uuid = '%s'\n", uuid) < 0)
		return oom(r);
	return add_edit(r, name->start, name->start, line);
}

static int cmp_edit(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int apply(struct rewrite *r, char **out)
{
	char *buf = NULL;
	size_t len = 0, pos = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return oom(r);
	qsort(r->edits, r->n_edits, sizeof(r->edits[0]), cmp_edit);
	for (size_t i = 0; i < r->n_edits; i++) {
		const struct edit *e = &r->edits[i];

		/* Spans of distinct values never overlap. */
		fwrite(r->text + pos, 1, e->start - pos, f);
		fputs(e->with, f);
		pos = e->end;
	}
	fputs(r->text + pos, f);
	if (fclose(f)) {
		free(buf);
		return oom(r);
	}
	*out = buf;
	return 0;
}

static int plan(struct rewrite *r, const struct dom_xl_file *f,
		const struct dom_config_rewrite *rw)
{
	const struct dom_xl_stmt *name, *uuid, *vif, *disk;
	int ret = find_single(r, f, "name", &name);

	if (!ret)
		ret = find_single(r, f, "uuid", &uuid);
	if (!ret)
		ret = find_single(r, f, "vif", &vif);
	if (!ret)
		ret = find_single(r, f, "disk", &disk);
	if (ret)
		return ret;
	if (!name)
		return vs_error_set(r->err, EINVAL, "%s: name is required",
				    r->source);
	ret = add_edit(r, name->value.start, name->value.end,
		       dom_xl_quote(rw->name));
	if (!ret && uuid)
		ret = add_edit(r, uuid->value.start, uuid->value.end,
			       dom_xl_quote(rw->uuid));
	else if (!ret)
		ret = add_uuid(r, name, rw->uuid);
	if (!ret && vif)
		ret = edit_vifs(r, vif, rw->name);
	if (!ret && rw->n_disks) {
		if (!disk)
			return vs_error_set(r->err, EINVAL,
					    "%s: no disk to rewrite",
					    r->source);
		ret = edit_disks(r, disk, rw);
	}
	return ret;
}

int dom_config_rewrite_text(const char *text, const char *source_name,
			    const struct dom_config_rewrite *rw, char **out,
			    struct vs_error **err)
{
	struct rewrite *r = calloc(1, sizeof(*r));
	struct dom_xl_file f;
	int ret;

	*out = NULL;
	if (!r)
		return vs_error_set(err, ENOMEM, "%s: out of memory",
				    source_name);
	r->text = text;
	r->source = source_name;
	r->err = err;
	ret = dom_name_check(rw->name, err);
	if (!ret)
		ret = dom_xl_parse(text, strlen(text), source_name, 1, &f, err);
	if (!ret) {
		ret = plan(r, &f, rw);
		if (!ret)
			ret = apply(r, out);
		dom_xl_file_free(&f);
	}
	for (size_t i = 0; i < r->n_edits; i++)
		free(r->edits[i].with);
	free(r);
	return ret;
}
