/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the domain files share and nobody else uses. */
#ifndef VS_HYPERVISOR_DOMAIN_PRIV_H
#define VS_HYPERVISOR_DOMAIN_PRIV_H

#include <stdbool.h>

#include "domain.h"

struct dom_qmp;
struct json_object;

/* Disks sit at PCI slot DOM_DISK_SLOT0 + disk index (xvda 8, xvdb 9...),
 * so that the guest's virtio-blk names follow the vdevs whatever their
 * order in the config; vifs at DOM_VIF_SLOT0 + index. */
#define DOM_DISK_SLOT0 8
#define DOM_MAX_DISKS  24 /* slots 8..31 */
#define DOM_VIF_SLOT0  3
#define DOM_MAX_VIFS   5 /* slots 3..7 */

/* How long QEMU may take to listen on its QMP socket. */
#define DOM_QMP_START_MS 30000
/* How long a QMP command may take. */
#define DOM_QMP_CMD_MS 10000
/* How long serve gets to flush and exit on SIGTERM. */
#define DOM_SERVE_STOP_MS 30000

/*
 * Check one disk spec for a domain: a vdev we can place on a PCI slot,
 * a target that exists (its dev/ino into d), no clash with the disks of
 * other running domains (a writer excludes everyone else).  `self` is the
 * domain's own name (its record is skipped).  Fills d (strings malloc'd,
 * d->socket left NULL).  Returns 1 for an empty cdrom drive (nothing to
 * serve), 0 for a disk, or -errno with err set.
 */
int dom_disk_check(const char *self, const char *spec_text,
		   struct dom_rec_disk *d, int *slot, struct vs_error **err);

/* The PCI slot of a vdev, or -EINVAL/-EOPNOTSUPP with err set. */
int dom_disk_slot(const char *vdev, struct vs_error **err);

/*
 * Start serve, then the monitor (which starts QEMU), for a record whose
 * name, domid, cfg and rundir are set; fills the processes and disks.
 * On failure everything started is stopped again and the run folder is
 * removed.  Called under the state lock; lockfd is closed in the monitor.
 */
int dom_start(struct dom_record *rec, int lockfd, struct vs_error **err);

/*
 * Stop what runs of a domain (monitor unless it is the caller, QEMU,
 * serve), then either remove the run folder and the record (keep =
 * false) or keep the record (and the logs) in state keep_state.  Under
 * the state lock.
 */
int dom_teardown(struct dom_record *rec, bool keep, enum dom_state keep_state,
		 struct vs_error **err);

/* Apply an on_* action to a domain whose QEMU is gone or must go, with
 * no monitor running: destroy, preserve, or restart afresh. Under the
 * lock. *gone is set when the record was removed. */
int dom_apply_action(struct dom_record *rec, enum dom_action action,
		     enum dom_state keep_state, int lockfd, bool *gone,
		     struct vs_error **err);

/* Remove the run folder and what is in it (it is flat). */
void dom_rundir_remove(const char *rundir);

/* Connect to the domain's command QMP socket. */
int dom_qmp_open(const struct dom_record *rec, struct dom_qmp **q,
		 struct vs_error **err);

/* A load of NAME's record that insists the domain is running or paused
 * (refreshed first). */
int dom_load_live(const char *name, struct dom_record **out,
		  struct vs_error **err);

/* The same, then the state lock taken and the record loaded again under
 * it (the domain may have ended in between): returns the lock's fd for
 * dom_state_unlock, or a negative errno with nothing held. */
int dom_lock_live(const char *name, struct dom_record **out,
		  struct vs_error **err);

/*
 * Fork off a domain's monitor (double fork, its own session) and wait for
 * its report: it starts QEMU, or with adopt takes over the QEMU of
 * rec->qemu whose monitor is gone.  On success rec->qemu and rec->monitor
 * are set.
 */
int dom_monitor_spawn(struct dom_record *rec, int lockfd, bool adopt,
		      struct vs_error **err);

/* QEMU's argument vector for a record; NULL-terminated, freed with
 * dom_argv_free.  tap_fds[i] is vif i's tap descriptor. */
int dom_qemu_argv(const struct dom_record *rec, const char *accel,
		  const int *tap_fds, char ***argv, struct vs_error **err);
void dom_argv_free(char **argv);

/* One request on serve's control socket; *reply (if non-NULL) gets the
 * reply object on {"ok":true}; {"ok":false} becomes err. */
int dom_serve_request(const char *sock, struct json_object *req,
		      struct json_object **reply, struct vs_error **err);

#endif
