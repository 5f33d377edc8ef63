/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain configs: the meaning of each key of an xl config file
 * (xl.cfg(5)), the checks that make a parsed config complete, and the
 * command-line overrides of xl create.  The syntax is config-lex.c's; the
 * reference for users is docs/vstor.cfg.pod.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../vbd/diskspec.h"
#include "config-syntax.h"
#include "config.h"

/* QEMU's own default.  xl.cfg(5) names none and libxl falls back on
 * 32 MiB, too little for a current Linux kernel with an initramfs. */
#define DEFAULT_MEMORY_MIB 128
/* memory in bytes must fit in 64 bits. */
#define MAX_MEMORY_MIB (UINT64_MAX >> 20)
#define MAX_VCPUS      255
#define MAX_NAME       64
/* Linux network interface names: IFNAMSIZ - 1. */
#define MAX_IFNAME 15

/* One key's value after the file and the overrides were merged. */
struct setting {
	char *key;
	struct dom_xl_value value;
	unsigned line; /* 0: from the command line */
};

struct build {
	const char *source;
	bool quiet; /* no warnings: a state record was checked before */
	struct setting *settings;
	size_t n_settings;
	struct dom_config *cfg;
	struct vs_error **err;
};

/* "web1.cfg:7" for a line of the file, "command line" for an override. */
static void where(const struct build *b, unsigned line, char *buf, size_t len)
{
	dom_xl_where(buf, len, line ? b->source : "command line", line);
}

static int fail(const struct build *b, unsigned line, const char *key, int code,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(const struct build *b, unsigned line, const char *key, int code,
		const char *fmt, ...)
{
	char w[512], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where(b, line, w, sizeof(w));
	if (key)
		return vs_error_set(b->err, code, "%s: %s: %s", w, key, msg);
	return vs_error_set(b->err, code, "%s: %s", w, msg);
}

static int oom(const struct build *b)
{
	return vs_error_set(b->err, ENOMEM, "%s: out of memory", b->source);
}

static void warn(const struct build *b, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn(const struct build *b, unsigned line, const char *fmt, ...)
{
	char w[512], msg[1024];
	va_list ap;

	if (b->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where(b, line, w, sizeof(w));
	vs_log(VS_LOG_WARN, NULL, "%s: %s", w, msg);
}

/* --- values ------------------------------------------------------------ */

static const char *kind_name(enum dom_xl_kind k)
{
	return k == DOM_XL_LIST ? "a list" : "a string";
}

static int get_string(const struct build *b, const struct setting *s,
		      const char **out)
{
	if (s->value.kind == DOM_XL_LIST)
		return fail(b, s->value.line, s->key, EINVAL,
			    "expected a string, found a list");
	*out = s->value.str;
	return 0;
}

/* A number as xl reads one (strtol with base 0): decimal, octal with a
 * leading 0, hex with 0x.  Quoted numbers count too, as in xl, where
 * xen-tools writes memory = '512'. */
static bool parse_number(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (s[0] == '0' && s[1]) {
		base = 8;
		s++;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return false;
		if (d >= base || v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

static int get_number(const struct build *b, const struct setting *s,
		      uint64_t min, uint64_t max, uint64_t *out)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	if (!parse_number(str, out))
		return fail(b, s->value.line, s->key, EINVAL,
			    "'%.40s' is not a number", str);
	if (*out < min || *out > max)
		return fail(b, s->value.line, s->key, ERANGE,
			    "%s is out of range (%llu to %llu)", str,
			    (unsigned long long)min, (unsigned long long)max);
	return 0;
}

static int set_str(const struct build *b, char **dst, const char *value)
{
	free(*dst);
	*dst = strdup(value);
	return *dst ? 0 : oom(b);
}

/* A non-empty string. */
static int get_path(const struct build *b, const struct setting *s, char **dst)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	if (!*str)
		return fail(b, s->value.line, s->key, EINVAL, "empty path");
	return set_str(b, dst, str);
}

/* --- keys -------------------------------------------------------------- */

static int key_name(struct build *b, const struct setting *s)
{
	struct vs_error *e = NULL;
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	ret = dom_name_check(str, &e);
	if (ret) {
		fail(b, s->value.line, s->key, -ret, "%s", vs_error_msg(e));
		vs_error_free(e);
		return ret;
	}
	return set_str(b, &b->cfg->name, str);
}

static bool uuid_parse(const char *s, char out[37])
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
		} else if (c >= 'A' && c <= 'F') {
			c = (char)(c - 'A' + 'a');
		} else {
			return false;
		}
		out[i] = c;
	}
	out[36] = '\0';
	return strcmp(out, "00000000-0000-0000-0000-000000000000") != 0;
}

static int key_uuid(struct build *b, const struct setting *s)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	if (!uuid_parse(str, b->cfg->uuid))
		return fail(b, s->value.line, s->key, EINVAL,
			    "'%.40s' is not a UUID (32 hex digits as "
			    "8-4-4-4-12, not all zero)",
			    str);
	return 0;
}

static int key_memory(struct build *b, const struct setting *s)
{
	return get_number(b, s, 1, MAX_MEMORY_MIB, &b->cfg->memory_mib);
}

static int key_maxmem(struct build *b, const struct setting *s)
{
	return get_number(b, s, 1, MAX_MEMORY_MIB, &b->cfg->maxmem_mib);
}

static int key_vcpus(struct build *b, const struct setting *s)
{
	uint64_t v;
	int ret = get_number(b, s, 1, MAX_VCPUS, &v);

	if (!ret)
		b->cfg->vcpus = (unsigned)v;
	return ret;
}

static int key_maxvcpus(struct build *b, const struct setting *s)
{
	uint64_t v;
	int ret = get_number(b, s, 1, MAX_VCPUS, &v);

	if (!ret)
		b->cfg->maxvcpus = (unsigned)v;
	return ret;
}

static int key_kernel(struct build *b, const struct setting *s)
{
	return get_path(b, s, &b->cfg->kernel);
}

static int key_ramdisk(struct build *b, const struct setting *s)
{
	return get_path(b, s, &b->cfg->ramdisk);
}

static int key_root(struct build *b, const struct setting *s)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	return ret ? ret : set_str(b, &b->cfg->root, str);
}

/* extra and cmdline are folded into cfg->cmdline after all keys. */
static int key_string_only(struct build *b, const struct setting *s)
{
	const char *str = NULL;

	return get_string(b, s, &str);
}

static const char *const action_names[] = {
	[DOM_ACTION_DESTROY] = "destroy",
	[DOM_ACTION_RESTART] = "restart",
	[DOM_ACTION_PRESERVE] = "preserve",
};

const char *dom_action_name(enum dom_action a)
{
	if ((unsigned)a < VS_ARRAY_SIZE(action_names))
		return action_names[a];
	return "unknown";
}

/* xl's other actions: they need what a QEMU domain has no use for (a
 * renamed corpse, a Xen core dump, a Xen soft reset). */
static const char *const unsupported_actions[] = {
	"rename-restart",
	"coredump-destroy",
	"coredump-restart",
	"soft-reset",
};

static int parse_action(const char *str, enum dom_action *out)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(action_names); i++) {
		if (!strcmp(str, action_names[i])) {
			*out = (enum dom_action)i;
			return 0;
		}
	}
	for (size_t i = 0; i < VS_ARRAY_SIZE(unsupported_actions); i++)
		if (!strcmp(str, unsupported_actions[i]))
			return -ENOTSUP;
	return -EINVAL;
}

static int key_action(struct build *b, const struct setting *s,
		      enum dom_action *out)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	ret = parse_action(str, out);
	if (ret == -ENOTSUP)
		return fail(b, s->value.line, s->key, ENOTSUP,
			    "'%s' is not supported by vstor (supported: "
			    "destroy, restart, preserve)",
			    str);
	if (ret)
		return fail(b, s->value.line, s->key, EINVAL,
			    "'%.40s' is not an action (destroy, restart, "
			    "preserve)",
			    str);
	return 0;
}

static int key_on_poweroff(struct build *b, const struct setting *s)
{
	return key_action(b, s, &b->cfg->on_poweroff);
}

static int key_on_reboot(struct build *b, const struct setting *s)
{
	return key_action(b, s, &b->cfg->on_reboot);
}

static int key_on_crash(struct build *b, const struct setting *s)
{
	return key_action(b, s, &b->cfg->on_crash);
}

/* serial = "pty" or, as for xl's HVM guests, [ "pty" ]. */
static int key_serial(struct build *b, const struct setting *s)
{
	const struct dom_xl_value *v = &s->value;

	if (v->kind == DOM_XL_LIST) {
		if (v->n_items != 1)
			return fail(b, v->line, s->key, ENOTSUP,
				    "%zu serial ports given; vstor gives a "
				    "domain exactly one",
				    v->n_items);
		v = &v->items[0];
		if (v->kind == DOM_XL_LIST)
			return fail(b, v->line, s->key, EINVAL,
				    "expected a string, found a list");
	}
	if (strcmp(v->str, "pty"))
		return fail(b, v->line, s->key, ENOTSUP,
			    "'%.40s' is not supported by vstor (only 'pty': "
			    "a console socket for vstor console)",
			    v->str);
	return set_str(b, &b->cfg->serial, v->str);
}

static const char *const accel_names[] = {
	[DOM_ACCEL_AUTO] = "auto",
	[DOM_ACCEL_KVM] = "kvm",
	[DOM_ACCEL_TCG] = "tcg",
};

const char *dom_accel_name(enum dom_accel a)
{
	if ((unsigned)a < VS_ARRAY_SIZE(accel_names))
		return accel_names[a];
	return "unknown";
}

static int key_accel(struct build *b, const struct setting *s)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	for (size_t i = 0; i < VS_ARRAY_SIZE(accel_names); i++) {
		if (!strcmp(str, accel_names[i])) {
			b->cfg->accel = (enum dom_accel)i;
			return 0;
		}
	}
	return fail(b, s->value.line, s->key, EINVAL,
		    "'%.40s' is not one of auto, kvm, tcg", str);
}

/* type= and the older builder=: accepted and recorded; vstor boots the
 * given kernel directly whatever the type. */
static int key_type(struct build *b, const struct setting *s)
{
	static const char *const types[] = {"pv", "pvh", "hvm"};
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	for (size_t i = 0; i < VS_ARRAY_SIZE(types); i++)
		if (!strcmp(str, types[i]))
			return set_str(b, &b->cfg->type, str);
	return fail(b, s->value.line, s->key, EINVAL,
		    "'%.40s' is not one of pv, pvh, hvm", str);
}

static int key_builder(struct build *b, const struct setting *s)
{
	const char *str = NULL;
	int ret = get_string(b, s, &str);

	if (ret)
		return ret;
	/* type= wins when both are given, as in xl. */
	if (b->cfg->type)
		return 0;
	if (!strcmp(str, "generic") || !strcmp(str, "linux"))
		return set_str(b, &b->cfg->type, "pv");
	if (!strcmp(str, "hvm"))
		return set_str(b, &b->cfg->type, "hvm");
	return fail(b, s->value.line, s->key, EINVAL,
		    "'%.40s' is not one of generic, hvm", str);
}

static int disk_add(struct build *b, const struct dom_xl_value *v)
{
	struct dom_config *cfg = b->cfg;
	struct dom_disk *d = &cfg->disks[cfg->n_disks];
	struct vs_error *e = NULL;
	int ret;

	if (v->kind != DOM_XL_STRING)
		return fail(b, v->line, "disk", EINVAL,
			    "expected a quoted disk spec, found %s",
			    v->kind == DOM_XL_LIST ? "a list" : v->str);
	ret = vbd_spec_parse(v->str, &d->spec, &e);
	if (ret) {
		fail(b, v->line, "disk", -ret, "'%s': %s", v->str,
		     vs_error_msg(e));
		vs_error_free(e);
		return ret;
	}
	d->text = strdup(v->str);
	cfg->n_disks++; /* counted now so that it is freed */
	if (!d->text)
		return oom(b);
	for (size_t i = 0; i + 1 < cfg->n_disks; i++)
		if (cfg->disks[i].spec->devnum == d->spec->devnum)
			return fail(b, v->line, "disk", EINVAL,
				    "'%s': vdev '%s' is already used by disk "
				    "%zu ('%s')",
				    d->text, d->spec->vdev, i + 1,
				    cfg->disks[i].text);
	return 0;
}

static int key_disk(struct build *b, const struct setting *s)
{
	const struct dom_xl_value *v = &s->value;
	struct dom_config *cfg = b->cfg;

	if (v->kind != DOM_XL_LIST)
		return fail(b, v->line, s->key, EINVAL,
			    "expected a list of disk specs, as disk = [ "
			    "'SPEC', ... ]");
	cfg->disks = calloc(v->n_items ? v->n_items : 1, sizeof(*cfg->disks));
	if (!cfg->disks)
		return oom(b);
	for (size_t i = 0; i < v->n_items; i++) {
		int ret = disk_add(b, &v->items[i]);

		if (ret)
			return ret;
	}
	return 0;
}

/* An interface name (bridge=, vifname=): what Linux takes and nothing
 * that a command line or a sysfs path could misread. */
static int check_ifname(const struct build *b, unsigned line, const char *what,
			const char *name)
{
	size_t len = strlen(name);

	if (!len || len > MAX_IFNAME)
		return fail(b, line, "vif", EINVAL,
			    "%s '%.40s': an interface name is 1 to %d "
			    "characters",
			    what, name, MAX_IFNAME);
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_.-") != len ||
	    name[0] == '.' || name[0] == '-')
		return fail(b, line, "vif", EINVAL,
			    "%s '%s': an interface name here is letters, "
			    "digits, '_', '.' and '-', not starting with '.' "
			    "or '-'",
			    what, name);
	return 0;
}

static int check_model(const struct build *b, unsigned line, const char *model)
{
	size_t len = strlen(model);

	if (!len || len > 32 ||
	    strspn(model, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
		return fail(b, line, "vif", EINVAL,
			    "model '%.40s': a NIC model is up to 32 lowercase "
			    "letters, digits, '_' and '-' (virtio-net-pci, "
			    "e1000)",
			    model);
	return 0;
}

/* One `key=value` of a vif spec. */
static int vif_item(struct build *b, unsigned line, struct dom_vif *vif,
		    char *item)
{
	struct {
		const char *key;
		char **dst;
	} keys[] = {
		{"bridge", &vif->bridge},
		{"mac", &vif->mac},
		{"model", &vif->model},
		{"vifname", &vif->vifname},
	};
	char *eq = strchr(item, '=');

	if (!eq)
		return fail(b, line, "vif", EINVAL,
			    "'%.60s': expected KEY=VALUE", item);
	*eq = '\0';
	for (size_t i = 0; i < VS_ARRAY_SIZE(keys); i++) {
		struct vs_error *e = NULL;
		char mac[18];
		int ret;

		if (strcmp(item, keys[i].key))
			continue;
		if (*keys[i].dst)
			return fail(b, line, "vif", EINVAL,
				    "%s= given twice in one vif", item);
		if (i == 0 || i == 3)
			ret = check_ifname(b, line, item, eq + 1);
		else if (i == 2)
			ret = check_model(b, line, eq + 1);
		else
			ret = dom_mac_parse(eq + 1, mac, &e);
		if (ret) {
			if (e)
				fail(b, line, "vif", -ret, "mac: %s",
				     vs_error_msg(e));
			vs_error_free(e);
			return ret;
		}
		return set_str(b, keys[i].dst, i == 1 ? mac : eq + 1);
	}
	warn(b, line,
	     "vif: '%s=%.60s' ignored: vstor does not know vif key "
	     "'%s'",
	     item, eq + 1, item);
	return 0;
}

static int vif_add(struct build *b, const struct dom_xl_value *v)
{
	struct dom_config *cfg = b->cfg;
	struct dom_vif *vif = &cfg->vifs[cfg->n_vifs];
	autofree char *copy = NULL;
	char *save = NULL;

	if (v->kind != DOM_XL_STRING)
		return fail(b, v->line, "vif", EINVAL,
			    "expected a quoted vif spec, found %s",
			    v->kind == DOM_XL_LIST ? "a list" : v->str);
	copy = strdup(v->str);
	if (!copy)
		return oom(b);
	cfg->n_vifs++; /* counted now so that it is freed */
	for (char *item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		size_t len;
		int ret;

		item += strspn(item, " \t");
		len = strlen(item);
		while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
			item[--len] = '\0';
		if (!len)
			continue;
		ret = vif_item(b, v->line, vif, item);
		if (ret)
			return ret;
	}
	if (!vif->mac) {
		char mac[18];

		dom_mac_generate(cfg->name, cfg->n_vifs - 1, mac);
		return set_str(b, &vif->mac, mac);
	}
	return 0;
}

static int key_vif(struct build *b, const struct setting *s)
{
	const struct dom_xl_value *v = &s->value;
	struct dom_config *cfg = b->cfg;

	if (v->kind != DOM_XL_LIST)
		return fail(b, v->line, s->key, EINVAL,
			    "expected a list of vif specs, as vif = [ "
			    "'bridge=br0', ... ]");
	cfg->vifs = calloc(v->n_items ? v->n_items : 1, sizeof(*cfg->vifs));
	if (!cfg->vifs)
		return oom(b);
	for (size_t i = 0; i < v->n_items; i++) {
		int ret = vif_add(b, &v->items[i]);

		if (ret)
			return ret;
		for (size_t j = 0; j < i; j++) {
			const struct dom_vif *a = &cfg->vifs[j],
					     *c = &cfg->vifs[i];

			if (!strcmp(a->mac, c->mac))
				return fail(b, v->items[i].line, s->key, EINVAL,
					    "vif %zu has the MAC %s of vif %zu",
					    i + 1, c->mac, j + 1);
			if (a->vifname && c->vifname &&
			    !strcmp(a->vifname, c->vifname))
				return fail(b, v->items[i].line, s->key, EINVAL,
					    "vif %zu has the vifname '%s' of "
					    "vif %zu",
					    i + 1, c->vifname, j + 1);
		}
	}
	return 0;
}

/* The keys vstor knows, in the order they are applied: name first, the
 * generated MACs derive from it. */
static const struct key {
	const char *name;
	int (*set)(struct build *b, const struct setting *s);
} keys[] = {
	{"name", key_name},	      {"uuid", key_uuid},
	{"type", key_type},	      {"builder", key_builder},
	{"memory", key_memory},	      {"maxmem", key_maxmem},
	{"vcpus", key_vcpus},	      {"maxvcpus", key_maxvcpus},
	{"kernel", key_kernel},	      {"ramdisk", key_ramdisk},
	{"root", key_root},	      {"extra", key_string_only},
	{"cmdline", key_string_only}, {"on_poweroff", key_on_poweroff},
	{"on_reboot", key_on_reboot}, {"on_crash", key_on_crash},
	{"serial", key_serial},	      {"accel", key_accel},
	{"disk", key_disk},	      {"vif", key_vif},
};

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static struct setting *find_setting(const struct build *b, const char *key)
{
	for (size_t i = 0; i < b->n_settings; i++)
		if (!strcmp(b->settings[i].key, key))
			return &b->settings[i];
	return NULL;
}

/* --- merging statements ------------------------------------------------ */

/* `KEY += VALUE`: a list grows by a list, a string by a string. */
static int append(const struct build *b, struct setting *s,
		  const struct dom_xl_stmt *st)
{
	struct dom_xl_value *old = &s->value;
	const struct dom_xl_value *add = &st->value;

	if ((old->kind == DOM_XL_LIST) != (add->kind == DOM_XL_LIST))
		return fail(b, st->line, st->key, EINVAL, "+= adds %s to %s",
			    kind_name(add->kind), kind_name(old->kind));
	if (old->kind != DOM_XL_LIST) {
		size_t a = strlen(old->str), c = strlen(add->str);
		char *n = realloc(old->str, a + c + 1);

		if (!n)
			return oom(b);
		memcpy(n + a, add->str, c + 1);
		old->str = n;
		old->kind = DOM_XL_STRING;
		return 0;
	}
	if (old->n_items + add->n_items > DOM_XL_MAX_ITEMS)
		return fail(b, st->line, st->key, EINVAL,
			    "list longer than %d items", DOM_XL_MAX_ITEMS);
	{
		size_t n = old->n_items + add->n_items;
		struct dom_xl_value *items =
			realloc(old->items, (n ? n : 1) * sizeof(*items));

		if (!items)
			return oom(b);
		old->items = items;
		for (size_t i = 0; i < add->n_items; i++) {
			if (dom_xl_value_copy(&old->items[old->n_items],
					      &add->items[i]))
				return oom(b);
			old->n_items++;
		}
	}
	return 0;
}

/* Later assignments win, as in xl: that is how overrides work. */
static int merge(struct build *b, const struct dom_xl_stmt *st)
{
	struct setting *s = find_setting(b, st->key);
	int ret;

	if (!find_key(st->key)) {
		warn(b, st->line, "unknown key '%s' ignored", st->key);
		return 0;
	}
	if (s && st->append) {
		s->line = st->line;
		return append(b, s, st);
	}
	if (!s) {
		struct setting *n =
			realloc(b->settings, (b->n_settings + 1) * sizeof(*n));

		if (!n)
			return oom(b);
		b->settings = n;
		s = &b->settings[b->n_settings];
		memset(s, 0, sizeof(*s));
		s->key = strdup(st->key);
		if (!s->key)
			return oom(b);
		b->n_settings++;
	} else {
		dom_xl_value_free(&s->value);
	}
	s->line = st->line;
	ret = dom_xl_value_copy(&s->value, &st->value);
	return ret ? oom(b) : 0;
}

static int merge_file(struct build *b, const struct dom_xl_file *f)
{
	for (size_t i = 0; i < f->n_stmts; i++) {
		int ret = merge(b, &f->stmts[i]);

		if (ret)
			return ret;
	}
	return 0;
}

/* --- the whole config -------------------------------------------------- */

/* xl's kernel command line: cmdline= alone when given, otherwise
 * "root=ROOT EXTRA". */
static int build_cmdline(struct build *b)
{
	struct setting *cmd = find_setting(b, "cmdline"),
		       *extra = find_setting(b, "extra");
	const char *root = b->cfg->root;

	if (cmd) {
		if (root || extra)
			warn(b, cmd->line,
			     "cmdline given: root and extra are ignored, as "
			     "in xl");
		return set_str(b, &b->cfg->cmdline, cmd->value.str);
	}
	if (root && extra) {
		if (asprintf(&b->cfg->cmdline, "root=%s %s", root,
			     extra->value.str) < 0) {
			b->cfg->cmdline = NULL;
			return oom(b);
		}
		return 0;
	}
	if (root) {
		if (asprintf(&b->cfg->cmdline, "root=%s", root) < 0) {
			b->cfg->cmdline = NULL;
			return oom(b);
		}
		return 0;
	}
	return set_str(b, &b->cfg->cmdline, extra ? extra->value.str : "");
}

static int check_whole(struct build *b)
{
	struct dom_config *cfg = b->cfg;
	struct setting *s;

	if (!find_setting(b, "maxmem"))
		cfg->maxmem_mib = cfg->memory_mib;
	if (cfg->maxmem_mib < cfg->memory_mib) {
		s = find_setting(b, "maxmem");
		return fail(b, s->line, "maxmem", EINVAL,
			    "%llu MiB is less than memory (%llu MiB)",
			    (unsigned long long)cfg->maxmem_mib,
			    (unsigned long long)cfg->memory_mib);
	}
	/* Accepted as xl does, but QEMU runs the guest with memory and
	 * vcpus: neither a balloon nor vCPU hot-plug is offered. */
	s = find_setting(b, "maxmem");
	if (s && cfg->maxmem_mib > cfg->memory_mib)
		warn(b, s->line,
		     "maxmem: ballooning is not supported; the guest gets "
		     "memory (%llu MiB)",
		     (unsigned long long)cfg->memory_mib);
	s = find_setting(b, "maxvcpus");
	if (!s) {
		cfg->maxvcpus = cfg->vcpus;
	} else if (cfg->maxvcpus < cfg->vcpus) {
		return fail(b, s->line, "maxvcpus", EINVAL,
			    "%u is less than vcpus (%u)", cfg->maxvcpus,
			    cfg->vcpus);
	} else if (cfg->maxvcpus > cfg->vcpus) {
		warn(b, s->line,
		     "maxvcpus: vCPU hot-plug is not supported; the guest "
		     "gets vcpus (%u)",
		     cfg->vcpus);
	}
	if (!cfg->uuid[0])
		return dom_uuid_generate(cfg->uuid, b->err);
	return 0;
}

/* Before the keys are applied: the generated MACs need the name. */
static int check_required(struct build *b)
{
	if (!find_setting(b, "name"))
		return vs_error_set(b->err, EINVAL, "%s: name is required",
				    b->source);
	if (!find_setting(b, "kernel"))
		return vs_error_set(b->err, EINVAL,
				    "%s: kernel is required (vstor boots "
				    "the domain's kernel directly)",
				    b->source);
	return 0;
}

static int apply_keys(struct build *b)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(keys); i++) {
		struct setting *s = find_setting(b, keys[i].name);
		int ret;

		if (!s)
			continue;
		ret = keys[i].set(b, s);
		if (ret)
			return ret;
	}
	return 0;
}

static struct dom_config *config_new(void)
{
	struct dom_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->memory_mib = DEFAULT_MEMORY_MIB;
	cfg->vcpus = 1;
	cfg->on_poweroff = DOM_ACTION_DESTROY;
	cfg->on_reboot = DOM_ACTION_RESTART;
	cfg->on_crash = DOM_ACTION_DESTROY;
	cfg->accel = DOM_ACCEL_AUTO;
	cfg->serial = strdup("pty");
	if (!cfg->serial) {
		free(cfg);
		return NULL;
	}
	return cfg;
}

/* One `KEY=VALUE` of the command line, as one statement. */
static int parse_override(struct build *b, const char *text,
			  struct dom_xl_file *f)
{
	int ret =
		dom_xl_parse(text, strlen(text), "command line", 0, f, b->err);

	if (ret)
		return ret;
	if (f->n_stmts != 1)
		return vs_error_set(b->err, EINVAL,
				    "command line: '%.60s': expected one "
				    "KEY=VALUE",
				    text);
	return 0;
}

static int build_config(struct build *b, const char *text,
			char *const *overrides, size_t n_overrides)
{
	struct dom_xl_file f;
	int ret = dom_xl_parse(text, strlen(text), b->source, 1, &f, b->err);

	if (ret)
		return ret;
	ret = merge_file(b, &f);
	dom_xl_file_free(&f);
	for (size_t i = 0; !ret && i < n_overrides; i++) {
		ret = parse_override(b, overrides[i], &f);
		if (!ret)
			ret = merge_file(b, &f);
		dom_xl_file_free(&f);
	}
	if (!ret)
		ret = check_required(b);
	if (!ret)
		ret = apply_keys(b);
	if (!ret)
		ret = build_cmdline(b);
	if (!ret)
		ret = check_whole(b);
	return ret;
}

int dom_config_parse_text(const char *text, const char *source_name,
			  char *const *overrides, size_t n_overrides,
			  struct dom_config **out, struct vs_error **err)
{
	return dom_config_parse_quiet(text, source_name, overrides, n_overrides,
				      false, out, err);
}

int dom_config_parse_quiet(const char *text, const char *source_name,
			   char *const *overrides, size_t n_overrides,
			   bool quiet, struct dom_config **out,
			   struct vs_error **err)
{
	struct build b = {
		.source = source_name ? source_name : "config",
		.quiet = quiet,
		.err = err,
	};
	int ret;

	*out = NULL;
	b.cfg = config_new();
	if (!b.cfg)
		return oom(&b);
	ret = build_config(&b, text, overrides, n_overrides);
	for (size_t i = 0; i < b.n_settings; i++) {
		free(b.settings[i].key);
		dom_xl_value_free(&b.settings[i].value);
	}
	free(b.settings);
	if (ret) {
		dom_config_free(b.cfg);
		return ret;
	}
	*out = b.cfg;
	return 0;
}

int dom_config_read_file(const char *path, char **text, struct vs_error **err)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	autofree char *buf = NULL;
	struct stat st;
	size_t n = 0;

	*text = NULL;
	if (fd < 0)
		return vs_error_set_errno(err, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return vs_error_set_errno(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return vs_error_set(err, EINVAL, "%s: not a regular file",
				    path);
	if (st.st_size > DOM_CONFIG_MAX_SIZE)
		return vs_error_set(err, EFBIG,
				    "%s: %lld bytes; a domain config is at "
				    "most %d",
				    path, (long long)st.st_size,
				    DOM_CONFIG_MAX_SIZE);
	buf = malloc(DOM_CONFIG_MAX_SIZE + 1);
	if (!buf)
		return vs_error_set(err, ENOMEM, "%s: out of memory", path);
	/* Read to the end rather than trusting st_size: the file may grow. */
	for (;;) {
		ssize_t r = read(fd, buf + n, DOM_CONFIG_MAX_SIZE + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vs_error_set_errno(err, errno, "%s", path);
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > DOM_CONFIG_MAX_SIZE)
			return vs_error_set(err, EFBIG,
					    "%s: a domain config is at most "
					    "%d bytes",
					    path, DOM_CONFIG_MAX_SIZE);
	}
	if (memchr(buf, '\0', n))
		return vs_error_set(err, EINVAL,
				    "%s: has a NUL byte (not a text file)",
				    path);
	buf[n] = '\0';
	*text = vs_steal(&buf);
	return 0;
}

int dom_config_parse_file(const char *path, char *const *overrides,
			  size_t n_overrides, struct dom_config **out,
			  struct vs_error **err)
{
	autofree char *text = NULL;
	int ret;

	*out = NULL;
	ret = dom_config_read_file(path, &text, err);
	if (ret)
		return ret;
	ret = dom_config_parse_text(text, path, overrides, n_overrides, out,
				    err);
	if (ret)
		return ret;
	(*out)->path = strdup(path);
	if (!(*out)->path) {
		dom_config_free(*out);
		*out = NULL;
		return vs_error_set(err, ENOMEM, "%s: out of memory", path);
	}
	return 0;
}

static int check_file(const char *what, const char *path, struct vs_error **err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return vs_error_set_errno(err, errno, "%s '%s'", what, path);
	if (!S_ISREG(st.st_mode))
		return vs_error_set(err, EINVAL,
				    "%s '%s' is not a regular file", what,
				    path);
	if (access(path, R_OK) < 0)
		return vs_error_set_errno(err, errno, "%s '%s'", what, path);
	return 0;
}

int dom_config_check_files(const struct dom_config *cfg, struct vs_error **err)
{
	int ret = check_file("kernel", cfg->kernel, err);

	if (!ret && cfg->ramdisk)
		ret = check_file("ramdisk", cfg->ramdisk, err);
	return ret;
}

int dom_name_check(const char *name, struct vs_error **err)
{
	size_t len = strlen(name);

	if (!len)
		return vs_error_set(err, EINVAL, "a domain name is not empty");
	if (len > MAX_NAME)
		return vs_error_set(err, EINVAL,
				    "'%.20s...' is %zu characters; a domain "
				    "name is at most %d",
				    name, len, MAX_NAME);
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_.-") != len)
		return vs_error_set(err, EINVAL,
				    "'%s': a domain name holds only letters, "
				    "digits, '_', '.' and '-'",
				    name);
	if (name[0] == '.' || name[0] == '-')
		return vs_error_set(err, EINVAL,
				    "'%s': a domain name does not start with "
				    "'.' or '-'",
				    name);
	/* vstor list shows the host under this name, as xl does. */
	if (!strcmp(name, "Domain-0"))
		return vs_error_set(err, EINVAL,
				    "'Domain-0' is the host's name, not a "
				    "domain's");
	return 0;
}

int dom_uuid_generate(char buf[37], struct vs_error **err)
{
	unsigned char r[16];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_error_set_errno(err, errno,
						  "getrandom for a UUID");
		got += (size_t)n;
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(buf, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
		 r[10], r[11], r[12], r[13], r[14], r[15]);
	return 0;
}

void dom_config_free(struct dom_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->name);
	free(cfg->kernel);
	free(cfg->ramdisk);
	free(cfg->cmdline);
	free(cfg->root);
	for (size_t i = 0; i < cfg->n_disks; i++) {
		free(cfg->disks[i].text);
		vbd_spec_free(cfg->disks[i].spec);
	}
	free(cfg->disks);
	for (size_t i = 0; i < cfg->n_vifs; i++) {
		free(cfg->vifs[i].bridge);
		free(cfg->vifs[i].mac);
		free(cfg->vifs[i].model);
		free(cfg->vifs[i].vifname);
	}
	free(cfg->vifs);
	free(cfg->serial);
	free(cfg->type);
	free(cfg);
}
