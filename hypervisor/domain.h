/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domains: the lifecycle of a guest on QEMU, as xl drives Xen's.
 *
 * A running domain is three processes, all found again through its state
 * record (state.h):
 *   - `vstor serve`, serving the domain's disks over vhost-user-blk, with
 *     a control socket for hot-plug;
 *   - QEMU, with the guest's memory in a shared memfd (vhost-user needs
 *     it), two QMP sockets (one for the monitor, one for commands) and
 *     the serial console on a socket with a log file;
 *   - the domain's monitor, QEMU's parent: it holds a QMP connection and
 *     applies on_poweroff, on_reboot and on_crash when the guest powers
 *     off, reboots or panics, or QEMU dies.
 * If the monitor is gone (killed, a host that lost it), dom_refresh (which
 * `vstor list` runs for every domain) finds a domain whose QEMU died and
 * applies on_crash itself.
 *
 * Every call takes the state lock around what it reads and changes.
 */
#ifndef VS_HYPERVISOR_DOMAIN_H
#define VS_HYPERVISOR_DOMAIN_H

#include <stdbool.h>

#include "config.h"
#include "state.h"

struct vs_error;

/*
 * Check cfg (disks, kernel, name and disk clashes with other domains) and
 * start the domain; nothing is started unless every check passes, and a
 * failed start leaves nothing behind.  cfg is taken (freed whatever
 * happens).  On success *out (if non-NULL) gets the new record.
 */
int dom_create(struct dom_config *cfg, struct dom_record **out,
	       struct vs_error **err);

/*
 * Load NAME's record and bring it up to date with its processes: a
 * domain whose QEMU died with no monitor to see it gets on_crash now
 * (destroy: torn down, *out = NULL and 0 returned; preserve: kept as
 * crashed; restart: started afresh).  -ENOENT with err set if there is no
 * such domain.
 */
int dom_refresh(const char *name, struct dom_record **out,
		struct vs_error **err);

/* Kill QEMU and the monitor, stop serve (SIGTERM: it flushes), remove
 * the sockets and the record.  -EBADMSG when the record is there but
 * does not read back (see dom_forget_damaged). */
int dom_destroy(const char *name, struct vs_error **err);

/*
 * A record that cannot be read back (a hand edit, a disk that lost a
 * write) names no processes that destroy could stop, and would keep its
 * name taken for ever: it is set aside (dom_record_set_aside, path in
 * *aside) so that the name is free again.  -EEXIST when the record
 * reads well (its domain is destroyed the ordinary way), -ENOENT when
 * there is none.
 */
int dom_forget_damaged(const char *name, char **aside, struct vs_error **err);

/*
 * Press the guest's ACPI power button.  With wait, wait up to timeout_ms
 * (< 0: forever) until the domain has gone, or is shut down or restarted
 * per on_poweroff; -ETIMEDOUT if it is still running then.
 */
int dom_shutdown(const char *name, bool wait, int timeout_ms,
		 struct vs_error **err);

/* Ask the guest to reboot: the power button, and the shutdown that
 * follows is handled as a reboot (on_reboot). */
int dom_reboot(const char *name, struct vs_error **err);

/* Stop (pause) or resume the guest's virtual CPUs. */
int dom_pause(const char *name, bool pause, struct vs_error **err);

/*
 * Hot-plug: open the disk in the domain's serve, export it over
 * vhost-user and plug a vhost-user-blk device at the vdev's PCI slot.
 */
int dom_block_attach(const char *name, const char *spec_text,
		     struct vs_error **err);

/* Unplug the device (the guest must let go within timeout_ms), then
 * close the disk in serve. */
int dom_block_detach(const char *name, const char *vdev, int timeout_ms,
		     struct vs_error **err);

/*
 * What each of rec's disks is doing, for block-list: states[i] (for
 * rec->disks[i]) becomes "connected" (QEMU holds its vhost-user socket),
 * "waiting" (served, no front-end connected), "empty" (an empty cdrom
 * drive, not served) or "missing" (serve no longer has it).
 */
int dom_block_states(const struct dom_record *rec, const char **states,
		     struct vs_error **err);

/* xl's state letters for a record ("r-----"); buf holds 7 bytes. */
void dom_state_letters(const struct dom_record *rec, char buf[7]);

#endif
