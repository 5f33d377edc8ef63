/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The domain state folder: what the toolstack knows about its domains
 * between two commands, so that `vstor list` after a restart of every
 * vstor process still finds them.
 *
 *   $VSTOR_STATE_DIR (default /var/lib/vstor)
 *     lock               flock()ed around every read-modify-write
 *     next-domid         the next domain ID (xl's: increasing from 1)
 *     domains/NAME.json  one record per domain, replaced atomically
 *     run/ID/            a domain's sockets and logs (qmp.sock,
 *                        serve.sock, VDEV.sock, console.sock,
 *                        console.log, qemu.log, monitor.log)
 *
 * The run folder is named by domain ID rather than name to keep socket
 * paths short: a unix socket path has at most 107 bytes.
 *
 * Records are read back as untrusted input (a hand edit, a disk that lost
 * a write): every field's type and range is checked, and an error names
 * the file.
 */
#ifndef VS_HYPERVISOR_STATE_H
#define VS_HYPERVISOR_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

struct dom_config;
struct json_object;
struct vs_error;

#define DOM_STATE_DIR_DEFAULT "/var/lib/vstor"

/* The largest domain ID handed out before the counter wraps to 1 (xl's
 * IDs are 16-bit too). */
#define DOM_DOMID_MAX 32767

enum dom_state {
	DOM_STATE_RUNNING, /* QEMU runs the guest */
	DOM_STATE_PAUSED,  /* stopped by `vstor pause` */
	DOM_STATE_SHUTDOWN, /* the guest powered off; kept by on_poweroff=preserve */
	DOM_STATE_CRASHED, /* the guest panicked or QEMU died; kept by preserve */
	DOM_STATE_DYING,   /* being torn down */
};

/* One disk of a running domain: from the config or hot-plugged. */
struct dom_rec_disk {
	char *spec;   /* the disk spec as written */
	char *vdev;   /* "xvda" */
	char *socket; /* its vhost-user socket; NULL for an empty cdrom */
	dev_t dev;    /* st_dev/st_ino of the target (0/0: none, e.g. an
		       * empty cdrom): two domains that name the same file
		       * by two paths still collide */
	ino_t ino;
	bool readonly;
	bool empty; /* an empty cdrom drive: nothing to serve */
};

struct dom_record {
	char *name;
	unsigned domid;
	enum dom_state state;
	int64_t created; /* seconds since the epoch */
	struct dom_config *cfg;
	struct dom_proc qemu, serve, monitor;
	char *rundir;
	struct dom_rec_disk *disks;
	size_t n_disks;
	/* `vstor reboot` asked the guest to power off: the monitor applies
	 * on_reboot rather than on_poweroff to the shutdown that follows. */
	bool reboot_requested;
	unsigned restarts; /* QEMU started afresh by on_*=restart */
};

/* The state folder: $VSTOR_STATE_DIR, else DOM_STATE_DIR_DEFAULT. */
const char *dom_state_dir(void);

/*
 * Take the state lock (creating the folder and its subfolders if
 * needed); blocks until the holder lets go.  Returns the lock's fd
 * (close-on-exec; dom_state_unlock releases it) or -errno with err set.
 */
int dom_state_lock(struct vs_error **err);
void dom_state_unlock(int lockfd);

/* Hand out the next domain ID (under the lock). */
int dom_domid_alloc(unsigned *domid, struct vs_error **err);

/*
 * Load NAME's record.  -ENOENT (with err set: "no domain 'NAME'") if
 * there is none; -EINVAL for a damaged record, naming the file.
 */
int dom_record_load(const char *name, struct dom_record **out,
		    struct vs_error **err);

/*
 * Parse a record from text (len bytes; it ends early at a NUL), as
 * dom_record_load does after reading the file, without comparing the
 * record's name to anything: -EINVAL for a damaged record, naming
 * `file`.  *out is freed by dom_record_free.
 */
int dom_record_parse(const char *text, size_t len, const char *file,
		     struct dom_record **out, struct vs_error **err);

/* Write the record atomically: a temp file, fsync, rename, fsync of the
 * folder.  A reader sees the old record or the new one, never a mix. */
int dom_record_save(const struct dom_record *rec, struct vs_error **err);

/* Remove NAME's record (a missing one is fine). */
int dom_record_remove(const char *name, struct vs_error **err);

/* Rename NAME's record to NAME.json.damaged (replacing an older one), its
 * path in *aside: what it held stays for a look by hand, and no listing
 * reads it again.  The caller holds the state lock. */
int dom_record_set_aside(const char *name, char **aside, struct vs_error **err);

/* The names of every record, sorted by domain ID (a damaged record is
 * skipped with a warning). *names is a NULL-terminated array freed by
 * dom_names_free. */
int dom_record_names(char ***names, struct vs_error **err);
void dom_names_free(char **names);

void dom_record_free(struct dom_record *rec);

/* The record as JSON (for `vstor list -l` and the file). */
struct json_object *dom_record_to_json(const struct dom_record *rec);

/* "running", "paused", ... */
const char *dom_state_name(enum dom_state s);

/*
 * A file in the domain's run folder: "RUNDIR/LEAF", malloc'd.  Fails with
 * -ENAMETOOLONG and a message that says to shorten VSTOR_STATE_DIR when
 * the path would not fit a unix socket address (for every file there,
 * sockets or not, so that a layout that works for one works for all).
 */
int dom_run_path(const char *rundir, const char *leaf, char **out,
		 struct vs_error **err);

/* Add a disk to rec->disks (copies the strings).  -ENOMEM. */
int dom_record_add_disk(struct dom_record *rec, const struct dom_rec_disk *d);

/* Remove the disk with this vdev; false if there was none. */
bool dom_record_remove_disk(struct dom_record *rec, const char *vdev);

/* The disk with this vdev, or NULL. */
struct dom_rec_disk *dom_record_find_disk(struct dom_record *rec,
					  const char *vdev);

#endif
