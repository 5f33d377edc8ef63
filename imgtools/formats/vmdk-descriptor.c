/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VMDK text descriptor: "key=value" lines (version, CID, parentCID,
 * createType, parentFileNameHint, ddb.*) and extent lines
 * ("RW 2097152 SPARSE "disk-s001.vmdk"", "RW 204800 FLAT "x-flat.vmdk" 0",
 * "RW 2048 ZERO").  The text is untrusted: every number is parsed with
 * its range checked, and an error names the file, the line and its
 * offset.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "vmdk.h"

#define MAX_NAME 4095

struct line_ctx {
	const char *filename;
	unsigned lineno;
	uint64_t off; /* byte offset of the line in the file */
	struct vs_error **errp;
};

__attribute__((format(printf, 2, 3))) static int bad_line(struct line_ctx *c,
							  const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vs_error_set(c->errp, EINVAL,
			    "%s: descriptor line %u at offset 0x%" PRIx64
			    ": %s",
			    c->filename, c->lineno, c->off, msg);
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A decimal number without sign; *pp moves past it. */
static int parse_u64(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p == end || !isdigit((unsigned char)*p))
		return -EINVAL;
	while (p < end && isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

static int parse_hex32(const char *v, uint32_t *out)
{
	uint64_t x = 0;

	if (!*v)
		return -EINVAL;
	for (; *v; v++) {
		int d = isdigit((unsigned char)*v) ? *v - '0'
			: isxdigit((unsigned char)*v)
				? tolower((unsigned char)*v) - 'a' + 10
				: -1;

		if (d < 0)
			return -EINVAL;
		x = x * 16 + (uint64_t)d;
		if (x > UINT32_MAX)
			return -ERANGE;
	}
	*out = (uint32_t)x;
	return 0;
}

static const struct {
	const char *name;
	enum vmdk_ext_type type;
	bool supported;
} ext_types[] = {
	{"FLAT", VMDK_EXT_FLAT, true},
	{"VMFS", VMDK_EXT_FLAT, true},
	{"SPARSE", VMDK_EXT_SPARSE, true},
	{"ZERO", VMDK_EXT_ZERO, true},
	{"VMFSSPARSE", VMDK_EXT_SPARSE, false},
	{"SESPARSE", VMDK_EXT_SPARSE, false},
	{"VMFSRDM", VMDK_EXT_FLAT, false},
	{"VMFSRAW", VMDK_EXT_FLAT, false},
};

static int add_extent(struct vmdk_desc *d, struct line_ctx *c,
		      struct vmdk_desc_extent *x)
{
	struct vmdk_desc_extent *n;

	if (d->next >= VMDK_MAX_EXTENTS)
		return bad_line(c, "more than %u extents", VMDK_MAX_EXTENTS);
	n = realloc(d->ext, sizeof(*n) * (d->next + 1));
	if (!n)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	d->ext = n;
	d->ext[d->next++] = *x;
	return 0;
}

/* ACCESS SECTORS TYPE ["NAME" [OFFSET]] */
static int parse_extent(struct vmdk_desc *d, struct line_ctx *c, const char *p,
			const char *end)
{
	struct vmdk_desc_extent x = {0};
	const char *w = p, *q;
	size_t wl, i;

	while (p < end && *p != ' ' && *p != '\t')
		p++;
	wl = (size_t)(p - w);
	if (wl == 8 && !memcmp(w, "NOACCESS", 8))
		return bad_line(c, "NOACCESS extents are not supported");
	x.rdonly = wl == 6 && !memcmp(w, "RDONLY", 6);
	p = skip_ws(p, end);
	if (parse_u64(&p, end, &x.sectors) < 0)
		return bad_line(c, "extent size is not a number of sectors");
	if (x.sectors == 0 || x.sectors > VMDK_MAX_CAPACITY)
		return bad_line(c,
				"extent size %" PRIu64 " sectors is out of "
				"range (1 to %llu)",
				x.sectors,
				(unsigned long long)VMDK_MAX_CAPACITY);
	p = skip_ws(p, end);
	w = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	wl = (size_t)(p - w);
	for (i = 0; i < VS_ARRAY_SIZE(ext_types); i++)
		if (strlen(ext_types[i].name) == wl &&
		    !memcmp(ext_types[i].name, w, wl))
			break;
	if (i == VS_ARRAY_SIZE(ext_types))
		return bad_line(c, "unknown extent type '%.*s'",
				(int)VS_MIN(wl, (size_t)32), w);
	if (!ext_types[i].supported)
		return bad_line(c, "%s extents are not supported",
				ext_types[i].name);
	x.type = ext_types[i].type;
	snprintf(x.type_name, sizeof(x.type_name), "%s", ext_types[i].name);
	p = skip_ws(p, end);
	if (x.type == VMDK_EXT_ZERO) {
		if (p != end)
			return bad_line(c, "a ZERO extent names no file");
		return add_extent(d, c, &x);
	}
	if (p == end || *p != '"')
		return bad_line(c, "the extent's file name is missing (it "
				   "must be in double quotes)");
	q = memchr(p + 1, '"', (size_t)(end - p - 1));
	if (!q)
		return bad_line(c, "the extent's file name has no closing "
				   "quote");
	if (q == p + 1 || q - p - 1 > MAX_NAME)
		return bad_line(c,
				"the extent's file name is empty or longer "
				"than %d bytes",
				MAX_NAME);
	x.file = strndup(p + 1, (size_t)(q - p - 1));
	if (!x.file)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	p = skip_ws(q + 1, end);
	if (p != end && x.type == VMDK_EXT_FLAT &&
	    (parse_u64(&p, end, &x.offset) < 0 ||
	     x.offset > VMDK_MAX_CAPACITY)) {
		free(x.file);
		return bad_line(c, "the extent's offset is not a number of "
				   "sectors in range");
	}
	p = skip_ws(p, end);
	if (p != end) {
		free(x.file);
		return bad_line(c, "unexpected text after the extent");
	}
	if (add_extent(d, c, &x) < 0) {
		free(x.file);
		return -ENOMEM;
	}
	return 0;
}

/* Strip one pair of double quotes. */
static char *unquote(const char *v, size_t n)
{
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	return strndup(v, n);
}

static int parse_keyval(struct vmdk_desc *d, struct line_ctx *c, const char *p,
			const char *end)
{
	const char *eq = memchr(p, '=', (size_t)(end - p));
	const char *ke, *v;
	autofree char *key = NULL, *val = NULL;

	if (!eq)
		return bad_line(c, "neither an extent nor a key=value line");
	ke = eq;
	while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	v = skip_ws(eq + 1, end);
	key = strndup(p, (size_t)(ke - p));
	val = unquote(v, (size_t)(end - v));
	if (!key || !val)
		return vs_error_set(c->errp, ENOMEM, "out of memory");
	if (!strcmp(key, "version")) {
		if (strcmp(val, "1") && strcmp(val, "2") && strcmp(val, "3"))
			return bad_line(c,
					"descriptor version '%.32s' is not "
					"supported (1, 2 or 3)",
					val);
		d->version = (uint32_t)(val[0] - '0');
	} else if (!strcmp(key, "CID")) {
		if (parse_hex32(val, &d->cid) < 0)
			return bad_line(c,
					"CID '%.32s' is not a 32-bit hex "
					"number",
					val);
	} else if (!strcmp(key, "parentCID")) {
		if (parse_hex32(val, &d->parent_cid) < 0)
			return bad_line(c,
					"parentCID '%.32s' is not a 32-bit "
					"hex number",
					val);
	} else if (!strcmp(key, "createType")) {
		free(d->create_type);
		d->create_type = vs_steal(&val);
	} else if (!strcmp(key, "parentFileNameHint")) {
		free(d->parent_hint);
		d->parent_hint = vs_steal(&val);
	}
	/* ddb.* and the rest describe the virtual hardware: not needed. */
	return 0;
}

static bool is_access(const char *p, const char *end)
{
	static const char *const words[] = {"RW ",  "RDONLY ",	"NOACCESS ",
					    "RW\t", "RDONLY\t", "NOACCESS\t"};

	for (size_t i = 0; i < VS_ARRAY_SIZE(words); i++) {
		size_t n = strlen(words[i]);

		if ((size_t)(end - p) >= n && !memcmp(p, words[i], n))
			return true;
	}
	return false;
}

int vmdk_desc_parse(const char *text, size_t len, const char *filename,
		    uint64_t base, struct vmdk_desc *d, struct vs_error **errp)
{
	const char *p = text, *stop;
	struct line_ctx c = {.filename = filename, .errp = errp};
	int ret = 0;

	memset(d, 0, sizeof(*d));
	d->parent_cid = UINT32_MAX;
	/* An embedded descriptor is padded with NULs. */
	stop = memchr(text, '\0', len);
	if (!stop)
		stop = text + len;
	while (p < stop && ret == 0) {
		const char *nl = memchr(p, '\n', (size_t)(stop - p));
		const char *eol = nl ? nl : stop, *s, *e;

		c.lineno++;
		c.off = base + (uint64_t)(p - text);
		s = skip_ws(p, eol);
		e = eol;
		while (e > s &&
		       (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		for (const char *x = s; x < e; x++)
			if ((unsigned char)*x < 0x20 && *x != '\t') {
				ret = bad_line(&c,
					       "control character 0x%02x "
					       "in the text",
					       (unsigned)(unsigned char)*x);
				break;
			}
		if (ret == 0 && s < e && *s != '#')
			ret = is_access(s, e) ? parse_extent(d, &c, s, e)
					      : parse_keyval(d, &c, s, e);
		p = nl ? nl + 1 : stop;
	}
	if (ret == 0 && d->next == 0)
		ret = vs_error_set(errp, EINVAL,
				   "%s: the descriptor at offset 0x%" PRIx64
				   " lists no extents",
				   filename, base);
	if (ret < 0)
		vmdk_desc_free(d);
	return ret;
}

void vmdk_desc_free(struct vmdk_desc *d)
{
	for (unsigned i = 0; i < d->next; i++)
		free(d->ext[i].file);
	free(d->ext);
	free(d->create_type);
	free(d->parent_hint);
	memset(d, 0, sizeof(*d));
}
