/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk specs in xl syntax (xl-disk-configuration(5)).
 *
 * A spec is a list of comma-separated items, each one of
 *
 *   key=value     format=, vdev=, access=, devtype=, backendtype=,
 *                 backend=, script=, specification=, transport=, aio=,
 *                 l2-cache-size=
 *   target=REST   the rest of the spec, commas and all; so it comes last
 *   flag          cdrom, discard, no-discard, direct-io-safe, trusted,
 *                 untrusted
 *   positional    fills the first of target, format, vdev, access that is
 *                 still unset, after legacy prefixes ("phy:", "qcow2:",
 *                 "iscsi:") are taken off its front
 *
 * We follow xl's lexer where the man page leaves things open, because the
 * point of the syntax is that existing domain configs keep working:
 * prefixes are recognised at the start of any positional item, a legacy
 * prefix means there is no positional format (so "phy:/x,xvda,w" puts
 * xvda in the vdev slot), and an unknown lower-case "word:" prefix is an
 * error while "hdc:cdrom" or "C:\x" is not a prefix at all.
 *
 * Where xl is loose we are strict, since a config line is untrusted input
 * and a silently ignored item is a disk the user did not get: every
 * parameter may be given once, contradicting flags are an error, and the
 * vdev must map to a Xen device number here and now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/size.h"
#include "diskspec.h"

/* Parameters that may be given at most once: bits of parse.seen. */
enum param {
	P_TARGET,
	P_FORMAT,
	P_VDEV,
	P_ACCESS,
	P_DEVTYPE,
	P_BACKENDTYPE,
	P_BACKEND,
	P_SCRIPT,
	P_SPECIFICATION,
	P_TRANSPORT,
	P_AIO,
	P_L2_CACHE_SIZE,
};

static const char *const param_names[] = {
	[P_TARGET] = "target",
	[P_FORMAT] = "format",
	[P_VDEV] = "vdev",
	[P_ACCESS] = "access",
	[P_DEVTYPE] = "devtype",
	[P_BACKENDTYPE] = "backendtype",
	[P_BACKEND] = "backend",
	[P_SCRIPT] = "script",
	[P_SPECIFICATION] = "specification",
	[P_TRANSPORT] = "transport",
	[P_AIO] = "aio",
	[P_L2_CACHE_SIZE] = "l2-cache-size",
};

struct parse {
	struct vbd_spec *spec;
	struct vs_error **errp;
	unsigned seen;	 /* 1 << enum param, also when given empty */
	bool had_prefix; /* a legacy prefix: no positional format */
	enum vbd_tristate cdrom;
};

/* NULL-terminated lists of the values we accept. */
static const char *const formats[] = {
	"raw", "qcow", "qcow2", "vhd", "vmdk", "vdi", "empty", NULL,
};
static const char *const backendtypes[] = {
	"phy", "tap", "qdisk", "standalone", NULL,
};
static const char *const specifications[] = {"xen", "virtio", NULL};
static const char *const transports[] = {"mmio", NULL};
static const char *const aio_engines[] = {
	"io_uring",
	"native",
	"threads",
	NULL,
};

static const char *const ws = " \t\n";

static int oom(struct parse *p)
{
	return vs_error_set(p->errp, ENOMEM,
			    "out of memory parsing a disk spec");
}

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static bool seen(const struct parse *p, enum param which)
{
	return p->seen & (1u << which);
}

static int mark(struct parse *p, enum param which, const char *item)
{
	if (seen(p, which))
		return vs_error_set(p->errp, EINVAL,
				    "duplicate parameter '%s' at '%s'",
				    param_names[which], item);
	p->seen |= 1u << which;
	return 0;
}

/* Replace *dst with a copy of value; an empty value means "the default",
 * which we keep as NULL. */
static int save(struct parse *p, char **dst, const char *value)
{
	char *copy = NULL;

	if (*value) {
		copy = strdup(value);
		if (!copy)
			return oom(p);
	}
	free(*dst);
	*dst = copy;
	return 0;
}

/* A key whose value must be one of a list. */
static int set_choice(struct parse *p, enum param which, const char *value,
		      const char *item, const char *const *list, char **dst)
{
	int ret = mark(p, which, item);

	if (ret)
		return ret;
	if (*value && !in_list(list, value))
		return vs_error_set(p->errp, EINVAL, "unknown %s '%s'",
				    param_names[which], value);
	return save(p, dst, value);
}

static int set_string(struct parse *p, enum param which, const char *value,
		      const char *item, char **dst)
{
	int ret = mark(p, which, item);

	return ret ? ret : save(p, dst, value);
}

static int set_tristate(struct parse *p, enum vbd_tristate *t,
			enum vbd_tristate v, const char *item)
{
	if (*t != VBD_UNSET && *t != v)
		return vs_error_set(p->errp, EINVAL,
				    "conflicting parameter '%s'", item);
	*t = v;
	return 0;
}

static int set_devtype_value(struct parse *p, const char *value,
			     const char *item)
{
	if (!strcmp(value, "cdrom"))
		return set_tristate(p, &p->cdrom, VBD_YES, item);
	if (!strcmp(value, "disk"))
		return set_tristate(p, &p->cdrom, VBD_NO, item);
	return vs_error_set(p->errp, EINVAL, "unknown devtype '%s' at '%s'",
			    value, item);
}

/* The vdev, which may carry the legacy ":cdrom" or ":disk" suffix.  It is
 * checked now, so that a bad one is reported with its spec rather than
 * when a domain is being built around it. */
static int set_vdev(struct parse *p, const char *value, const char *item)
{
	autofree char *name = NULL;
	char *colon;
	long devnum;
	int ret = mark(p, P_VDEV, item);

	if (ret || !*value)
		return ret;
	name = strdup(value);
	if (!name)
		return oom(p);
	colon = strrchr(name, ':');
	if (colon) {
		*colon = '\0';
		ret = set_devtype_value(p, colon + 1, item);
		if (ret)
			return ret;
	}
	devnum = vbd_vdev_to_devnum(name, NULL, NULL);
	if (devnum < 0)
		return vs_error_set(p->errp, EINVAL, "bad vdev '%s'", name);
	p->spec->devnum = devnum;
	p->spec->vdev = vs_steal(&name);
	return 0;
}

static int set_access(struct parse *p, const char *value, const char *item)
{
	int ret = mark(p, P_ACCESS, item);

	if (ret)
		return ret;
	if (!strcmp(value, "r") || !strcmp(value, "ro"))
		p->spec->readonly = true;
	else if (!*value || !strcmp(value, "w") || !strcmp(value, "rw"))
		p->spec->readonly = false;
	else
		return vs_error_set(p->errp, EINVAL,
				    "bad access '%s' (expected r, ro, w or rw)",
				    value);
	return 0;
}

static int set_format(struct parse *p, const char *value, const char *item)
{
	return set_choice(p, P_FORMAT, value, item, formats, &p->spec->format);
}

static int set_devtype(struct parse *p, const char *value, const char *item)
{
	int ret = mark(p, P_DEVTYPE, item);

	if (ret || !*value)
		return ret;
	return set_devtype_value(p, value, item);
}

static int set_backendtype(struct parse *p, const char *value, const char *item)
{
	return set_choice(p, P_BACKENDTYPE, value, item, backendtypes,
			  &p->spec->backendtype);
}

static int set_backend(struct parse *p, const char *value, const char *item)
{
	return set_string(p, P_BACKEND, value, item, &p->spec->backend);
}

static int set_script(struct parse *p, const char *value, const char *item)
{
	return set_string(p, P_SCRIPT, value, item, &p->spec->script);
}

static int set_specification(struct parse *p, const char *value,
			     const char *item)
{
	return set_choice(p, P_SPECIFICATION, value, item, specifications,
			  &p->spec->specification);
}

static int set_transport(struct parse *p, const char *value, const char *item)
{
	return set_choice(p, P_TRANSPORT, value, item, transports,
			  &p->spec->transport);
}

static int set_aio(struct parse *p, const char *value, const char *item)
{
	return set_choice(p, P_AIO, value, item, aio_engines, &p->spec->aio);
}

/* vstor extension: bytes of L2 tables the qcow2 driver may cache. */
static int set_l2_cache_size(struct parse *p, const char *value,
			     const char *item)
{
	int ret = mark(p, P_L2_CACHE_SIZE, item);

	if (ret || !*value)
		return ret;
	ret = vs_parse_size(value, &p->spec->l2_cache_size, "l2-cache-size",
			    p->errp);
	return ret < 0 ? -EINVAL : 0;
}

/* A positional target.  target= (set_target_rest) may still follow an
 * empty one: the man page allows that, so that "target=" can carry a
 * target with commas after an old-style ",vdev,access" head. */
static int set_target(struct parse *p, const char *value, const char *item)
{
	int ret = mark(p, P_TARGET, item);

	return ret ? ret : save(p, &p->spec->target, value);
}

static const struct key {
	const char *name;
	int (*set)(struct parse *p, const char *value, const char *item);
} keys[] = {
	{"format", set_format},
	{"vdev", set_vdev},
	{"access", set_access},
	{"devtype", set_devtype},
	{"backendtype", set_backendtype},
	{"backend", set_backend},
	{"script", set_script},
	{"specification", set_specification},
	{"transport", set_transport},
	{"aio", set_aio},
	{"l2-cache-size", set_l2_cache_size},
};

/* Something/else=x is more likely a path than a misspelt key. */
static bool looks_like_path(const char *s, size_t len)
{
	return memchr(s, '/', len) != NULL;
}

static int parse_key(struct parse *p, const char *item, const char *eq)
{
	size_t len = (size_t)(eq - item);

	for (size_t i = 0; i < VS_ARRAY_SIZE(keys); i++)
		if (strlen(keys[i].name) == len &&
		    !strncmp(keys[i].name, item, len))
			return keys[i].set(p, eq + 1, item);
	if (!looks_like_path(item, len))
		return vs_error_set(p->errp, EINVAL, "unknown parameter '%s'",
				    item);
	return vs_error_set(p->errp, EINVAL,
			    "unknown parameter '%s' (a target with '=' in it "
			    "must be given as target=, last)",
			    item);
}

static int flag_cdrom(struct parse *p, const char *item)
{
	return set_tristate(p, &p->cdrom, VBD_YES, item);
}

static int flag_discard(struct parse *p, const char *item)
{
	return set_tristate(p, &p->spec->discard, VBD_YES, item);
}

static int flag_no_discard(struct parse *p, const char *item)
{
	return set_tristate(p, &p->spec->discard, VBD_NO, item);
}

static int flag_trusted(struct parse *p, const char *item)
{
	return set_tristate(p, &p->spec->trusted, VBD_YES, item);
}

static int flag_untrusted(struct parse *p, const char *item)
{
	return set_tristate(p, &p->spec->trusted, VBD_NO, item);
}

static int flag_direct_io_safe(struct parse *p, const char *item)
{
	(void)item;
	p->spec->direct_io_safe = true;
	return 0;
}

static const struct flag {
	const char *name;
	int (*set)(struct parse *p, const char *item);
} flags[] = {
	{"cdrom", flag_cdrom},
	{"discard", flag_discard},
	{"no-discard", flag_no_discard},
	{"trusted", flag_trusted},
	{"untrusted", flag_untrusted},
	{"direct-io-safe", flag_direct_io_safe},
};

static const struct flag *find_flag(const char *item)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(flags); i++)
		if (!strcmp(flags[i].name, item))
			return &flags[i];
	return NULL;
}

enum prefix_kind { PFX_IGNORE, PFX_FORMAT, PFX_SCRIPT };

/* xend needed these on the target; xl strips them, and so do we.  The
 * format prefixes also name our vmdk and vdi drivers. */
static const struct prefix {
	const char *name;
	enum prefix_kind kind;
} prefixes[] = {
	{"phy", PFX_IGNORE},   {"file", PFX_IGNORE},	{"tap", PFX_IGNORE},
	{"tap2", PFX_IGNORE},  {"tapdisk", PFX_IGNORE}, {"aio", PFX_IGNORE},
	{"ioemu", PFX_IGNORE}, {"raw", PFX_FORMAT},	{"qcow", PFX_FORMAT},
	{"qcow2", PFX_FORMAT}, {"vhd", PFX_FORMAT},	{"vmdk", PFX_FORMAT},
	{"vdi", PFX_FORMAT},   {"iscsi", PFX_SCRIPT},	{"nbd", PFX_SCRIPT},
	{"enbd", PFX_SCRIPT},  {"drbd", PFX_SCRIPT},
};

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Length of a lower-case "word:" at s, without the colon; 0 if none. */
static size_t prefix_len(const char *s)
{
	size_t n = 0;

	if (*s < 'a' || *s > 'z')
		return 0;
	while (is_lower_alnum(s[n]))
		n++;
	return s[n] == ':' ? n : 0;
}

static const struct prefix *find_prefix(const char *s, size_t len)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(prefixes); i++)
		if (strlen(prefixes[i].name) == len &&
		    !strncmp(prefixes[i].name, s, len))
			return &prefixes[i];
	return NULL;
}

static int apply_prefix(struct parse *p, const struct prefix *pfx,
			const char *item)
{
	autofree char *script = NULL;
	int ret = 0;

	p->had_prefix = true;
	switch (pfx->kind) {
	case PFX_IGNORE: break;
	case PFX_FORMAT: ret = set_format(p, pfx->name, item); break;
	case PFX_SCRIPT:
		if (asprintf(&script, "block-%s", pfx->name) < 0)
			return oom(p);
		ret = set_script(p, script, item);
		break;
	}
	return ret;
}

/*
 * Take the legacy prefixes off the front of *s ("tap:aio:/x" -> "/x").
 * As in xl, a lower-case word and a colon is an unknown prefix only when
 * what follows is not a letter or digit: "hdc:cdrom" is a vdev with a
 * devtype and "host:1234" may be a target, but "blah:/x" is a mistake.
 */
static int strip_prefixes(struct parse *p, const char **s, const char *item)
{
	for (;;) {
		size_t len = prefix_len(*s);
		const struct prefix *pfx;
		int ret;

		if (!len)
			return 0;
		pfx = find_prefix(*s, len);
		if (!pfx) {
			if (is_lower_alnum((*s)[len + 1]))
				return 0;
			return vs_error_set(p->errp, EINVAL,
					    "unknown prefix '%.*s:'", (int)len,
					    *s);
		}
		ret = apply_prefix(p, pfx, item);
		if (ret)
			return ret;
		*s += len + 1;
	}
}

/* The positional slots fill in order, skipping those already given by
 * name; a legacy prefix stands in for the format slot. */
static int parse_positional(struct parse *p, const char *item)
{
	const char *value = item;
	int ret = strip_prefixes(p, &value, item);

	if (ret)
		return ret;
	if (!seen(p, P_TARGET))
		return set_target(p, value, item);
	if (!p->had_prefix && !seen(p, P_FORMAT)) {
		/* xend's empty cdrom ",hdc:cdrom,r" has no format slot. */
		if (!p->spec->target && strchr(value, ':')) {
			p->seen |= 1u << P_FORMAT;
			return set_vdev(p, value, item);
		}
		return set_format(p, value, item);
	}
	if (!seen(p, P_VDEV))
		return set_vdev(p, value, item);
	if (!seen(p, P_ACCESS))
		return set_access(p, value, item);
	return vs_error_set(p->errp, EINVAL,
			    "too many positional parameters at '%s'", item);
}

static int parse_item(struct parse *p, const char *item)
{
	const char *eq = strchr(item, '=');
	const struct flag *flag;

	if (eq)
		return parse_key(p, item, eq);
	flag = find_flag(item);
	if (flag)
		return flag->set(p, item);
	return parse_positional(p, item);
}

/* target= takes the rest of the spec, trailing blanks included (the man
 * page says so) but without one trailing comma (as xl). */
static int set_target_rest(struct parse *p, const char *rest)
{
	autofree char *value = strdup(rest);
	size_t len;

	if (!value)
		return oom(p);
	len = strlen(value);
	if (len && value[len - 1] == ',')
		value[len - 1] = '\0';
	if (seen(p, P_TARGET) && p->spec->target)
		return vs_error_set(p->errp, EINVAL,
				    "duplicate parameter 'target' at "
				    "'target=%s'",
				    value);
	p->seen |= 1u << P_TARGET;
	return save(p, &p->spec->target, value);
}

/* One item: blanks before and after it do not count, as in xl (which
 * skips the ones before; we also drop the ones after). */
static int parse_one(struct parse *p, const char *s, size_t len)
{
	autofree char *item = strndup(s, len);

	if (!item)
		return oom(p);
	while (len && strchr(ws, item[len - 1]))
		item[--len] = '\0';
	return parse_item(p, item);
}

static int parse_items(struct parse *p, const char *s)
{
	for (;;) {
		size_t len;
		int ret;

		s += strspn(s, ws);
		if (!*s)
			return 0;
		if (!strncmp(s, "target=", 7))
			return set_target_rest(p, s + 7);
		len = strcspn(s, ",");
		ret = parse_one(p, s, len);
		if (ret)
			return ret;
		s += len;
		if (*s == ',')
			s++;
	}
}

/* Defaults and the checks that need the whole spec, in xl's order. */
static int finish(struct parse *p)
{
	struct vbd_spec *spec = p->spec;
	int ret = 0;

	spec->cdrom = p->cdrom == VBD_YES;
	if (!spec->vdev)
		return vs_error_set(p->errp, EINVAL, "missing vdev");
	if (spec->cdrom) {
		/* A cdrom is read-only whatever access= says, as in xl. */
		spec->readonly = true;
		if (!spec->target)
			ret = save(p, &spec->format, "empty");
	}
	if (!ret && !spec->format)
		ret = save(p, &spec->format, "raw");
	if (ret)
		return ret;
	if (!strcmp(spec->format, "empty")) {
		if (!spec->cdrom)
			return vs_error_set(p->errp, EINVAL,
					    "format 'empty' is only for a "
					    "cdrom drive");
		if (spec->target)
			return vs_error_set(p->errp, EINVAL,
					    "format 'empty' with target '%s'",
					    spec->target);
	}
	if (!spec->target && !spec->cdrom)
		return vs_error_set(p->errp, EINVAL,
				    "missing target (only a cdrom drive may "
				    "be empty)");
	return 0;
}

static struct vbd_spec *spec_alloc(void)
{
	struct vbd_spec *spec = calloc(1, sizeof(*spec));

	if (!spec)
		return NULL;
	spec->devnum = -1;
	spec->discard = VBD_UNSET;
	spec->trusted = VBD_UNSET;
	return spec;
}

int vbd_spec_parse(const char *text, struct vbd_spec **out,
		   struct vs_error **errp)
{
	struct parse p = {
		.errp = errp,
		.cdrom = VBD_UNSET,
	};
	int ret;

	if (!text)
		return vs_error_set(errp, EINVAL, "no disk spec");
	p.spec = spec_alloc();
	if (!p.spec)
		return vs_error_set(errp, ENOMEM,
				    "out of memory parsing a disk spec");
	ret = parse_items(&p, text);
	if (!ret)
		ret = finish(&p);
	if (ret) {
		vbd_spec_free(p.spec);
		return ret;
	}
	*out = p.spec;
	return 0;
}

struct vbd_spec *vbd_spec_new(const char *target, const char *format,
			      bool readonly)
{
	struct vbd_spec *spec = spec_alloc();

	if (!spec)
		return NULL;
	spec->readonly = readonly;
	spec->target = target ? strdup(target) : NULL;
	spec->format = strdup(format ? format : "raw");
	if ((target && !spec->target) || !spec->format) {
		vbd_spec_free(spec);
		return NULL;
	}
	return spec;
}

void vbd_spec_free(struct vbd_spec *spec)
{
	if (!spec)
		return;
	free(spec->target);
	free(spec->format);
	free(spec->vdev);
	free(spec->backendtype);
	free(spec->backend);
	free(spec->script);
	free(spec->specification);
	free(spec->transport);
	free(spec->aio);
	free(spec->file_driver);
	free(spec);
}
