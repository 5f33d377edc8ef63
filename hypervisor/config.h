/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain configuration files in xl syntax (xl.cfg(5), docs/vstor.cfg.pod):
 *
 *   name = "web1"
 *   memory = 256
 *   disk = [ 'format=qcow2, vdev=xvda, target=/srv/web1.qcow2' ]
 *   vif = [ 'bridge=br0' ]
 *
 * A config file is untrusted input: every value is checked when it is
 * parsed and an error names the file, the line, the key and the value
 * ("web1.cfg:7: memory: '12x' is not a number").  What parses here is
 * complete and consistent; only the existence of files (kernel, ramdisk)
 * is left to dom_config_check_files, called when a domain is created.
 */
#ifndef VS_HYPERVISOR_CONFIG_H
#define VS_HYPERVISOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct json_object;
struct vbd_spec;

enum dom_action { DOM_ACTION_DESTROY, DOM_ACTION_RESTART, DOM_ACTION_PRESERVE };
enum dom_accel { DOM_ACCEL_AUTO, DOM_ACCEL_KVM, DOM_ACCEL_TCG };

struct dom_vif {
	char *bridge;  /* NULL: no bridge given */
	char *mac;     /* always set: given, or generated (dom_mac_generate) */
	char *model;   /* NULL: the engine's default */
	char *vifname; /* NULL: the engine's default */
};

struct dom_disk {
	char *text; /* the spec as written */
	struct vbd_spec *spec;
};

struct dom_config {
	char *path; /* the file it came from, or NULL */
	char *name;
	char uuid[37];
	uint64_t memory_mib, maxmem_mib;
	unsigned vcpus;
	unsigned maxvcpus; /* accepted as xl does; the engine may ignore it */
	char *kernel, *ramdisk, *cmdline; /* cmdline: extra/cmdline plus root=
					   * as xl builds it */
	char *root;
	struct dom_disk *disks;
	size_t n_disks;
	struct dom_vif *vifs;
	size_t n_vifs;
	enum dom_action on_poweroff, on_reboot, on_crash; /* xl defaults:
							   * destroy, restart,
							   * destroy */
	char *serial;	      /* "pty" default (xl); the engine maps it to a
			       * console socket */
	enum dom_accel accel; /* default auto */
	char *type;	      /* "pvh", "pv", "hvm" or NULL: noted, the
			       * engine always boots a direct kernel */
};

/*
 * Parse a config file, then apply `KEY=VALUE` overrides (xl create's
 * command-line form, same value syntax, applied after the file).  On
 * success *out is a new config the caller frees with dom_config_free.
 */
int dom_config_parse_file(const char *path, char *const *overrides,
			  size_t n_overrides, struct dom_config **out,
			  struct vs_error **err);

/* Same from text in memory; source_name names it in messages. */
int dom_config_parse_text(const char *text, const char *source_name,
			  char *const *overrides, size_t n_overrides,
			  struct dom_config **out, struct vs_error **err);

/* A JSON object holding every field, for the domain's state record. */
struct json_object *dom_config_to_json(const struct dom_config *cfg);

/* The reverse; the object is checked like a config file. */
int dom_config_from_json(struct json_object *obj, struct dom_config **out,
			 struct vs_error **err);

/* Check that kernel (and ramdisk if set) are readable regular files. */
int dom_config_check_files(const struct dom_config *cfg, struct vs_error **err);

void dom_config_free(struct dom_config *cfg);

/* "destroy", "restart", "preserve". */
const char *dom_action_name(enum dom_action a);

/* "auto", "kvm", "tcg". */
const char *dom_accel_name(enum dom_accel a);

/*
 * The MAC a vif without mac= gets: in Xen's 00:16:3e range, derived from
 * the domain's name and the vif's index, so it is the same each time the
 * domain is created.  buf receives "00:16:3e:xx:xx:xx".
 */
void dom_mac_generate(const char *name, size_t index, char buf[18]);

/*
 * Check a MAC address as written in a vif ("00:16:3E:12:34:56", or with
 * '-' between the bytes) and put it in buf in the form used everywhere
 * else: lowercase, ':' between the bytes.  A multicast or all-zero
 * address is refused: a NIC needs a unicast one.
 */
int dom_mac_parse(const char *text, char buf[18], struct vs_error **err);

/* The value of one hex digit, -1 for any other character (MACs, and the
 * \xNN escapes of config strings). */
int dom_hex_digit(char c);

/*
 * Read a config file whole (at most DOM_CONFIG_MAX_SIZE bytes, no NUL
 * bytes).  *text is the caller's to free.
 */
#define DOM_CONFIG_MAX_SIZE (1024 * 1024)
int dom_config_read_file(const char *path, char **text, struct vs_error **err);

/*
 * What changes when a config's text is rewritten for a copy of the domain
 * (vstor clone).
 */
struct dom_config_rewrite {
	const char *name; /* the new name */
	const char *uuid; /* the new uuid */
	/* n_disks entries, one per disk of the parsed config in order: the
	 * new spec, or NULL to keep the disk as written. */
	const char *const *disk_texts;
	size_t n_disks;
};

/*
 * Rewrite the text of a config file in place: the name, the uuid (a
 * line is added when the text has none), the mac= of every vif that
 * gives one (replaced by dom_mac_generate of the new name, which is what
 * a vif without mac= gets anyway) and the disks given in rw; comments,
 * layout and every other assignment are kept.  A key the rewrite must
 * change that is assigned more than once (or with +=) is refused: which
 * assignment to change would be a guess.  *out is the caller's to free.
 */
int dom_config_rewrite_text(const char *text, const char *source_name,
			    const struct dom_config_rewrite *rw, char **out,
			    struct vs_error **err);

/* Is `name` usable as a domain name (and so as a file name)? */
int dom_name_check(const char *name, struct vs_error **err);

/* A new random (version 4) UUID in lowercase text form. */
int dom_uuid_generate(char buf[37], struct vs_error **err);

#endif
