/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Records brought up to date with their processes.  A domain's monitor
 * normally sees QEMU's end and acts on it; when the monitor itself is
 * gone (killed, or the host lost it), the next vstor command that looks
 * at the domain does what the monitor would have done.
 */
#include <errno.h>
#include <string.h>

#include "../common/error.h"
#include "../common/log.h"
#include "domain-priv.h"

int dom_apply_action(struct dom_record *rec, enum dom_action action,
		     enum dom_state keep_state, int lockfd, bool *gone,
		     struct vs_error **err)
{
	int r;

	*gone = false;
	if (action == DOM_ACTION_DESTROY) {
		*gone = true;
		return dom_teardown(rec, false, keep_state, err);
	}
	r = dom_teardown(rec, true, keep_state, err);
	if (r < 0 || action == DOM_ACTION_PRESERVE)
		return r;
	/* restart: a fresh serve and monitor for the same record. */
	r = dom_start(rec, lockfd, err);
	if (r < 0) {
		vs_error_prefix(err, "domain '%s': restart failed (kept as %s)",
				rec->name, dom_state_name(keep_state));
		return r;
	}
	rec->restarts++;
	return dom_record_save(rec, err);
}

int dom_refresh(const char *name, struct dom_record **out,
		struct vs_error **err)
{
	struct dom_record *rec = NULL;
	bool gone = false;
	int lockfd, r;

	*out = NULL;
	lockfd = dom_state_lock(err);
	if (lockfd < 0)
		return lockfd;
	r = dom_record_load(name, &rec, err);
	if (r < 0)
		goto out;
	if ((rec->state == DOM_STATE_RUNNING ||
	     rec->state == DOM_STATE_PAUSED) &&
	    !dom_proc_alive(&rec->monitor) && !dom_proc_alive(&rec->qemu)) {
		struct vs_error *e = NULL;

		vs_warn("domain '%s': QEMU died with no monitor to see it: "
			"crashed, %s (on_crash)",
			name, dom_action_name(rec->cfg->on_crash));
		r = dom_apply_action(rec, rec->cfg->on_crash, DOM_STATE_CRASHED,
				     lockfd, &gone, &e);
		if (r < 0) {
			vs_warn("%s", vs_error_msg(e));
			r = 0;
		}
		vs_error_free(e);
	} else if ((rec->state == DOM_STATE_RUNNING ||
		    rec->state == DOM_STATE_PAUSED) &&
		   !dom_proc_alive(&rec->monitor)) {
		/* QEMU runs unwatched: a new monitor takes it over, so that
		 * the guest's power-off or panic is acted on again. */
		struct vs_error *e = NULL;

		if (dom_monitor_spawn(rec, lockfd, true, &e) < 0 ||
		    dom_record_save(rec, &e) < 0)
			vs_warn("domain '%s': no monitor, and a new one could "
				"not "
				"take over: %s",
				name, vs_error_msg(e));
		else
			vs_info("domain '%s': its monitor was gone; a new one "
				"took over",
				name);
		vs_error_free(e);
	} else if (rec->state == DOM_STATE_DYING &&
		   !dom_proc_alive(&rec->monitor) &&
		   !dom_proc_alive(&rec->qemu)) {
		/* A destroy that was interrupted: finish it. */
		r = dom_teardown(rec, false, DOM_STATE_DYING, err);
		gone = true;
	}
out:
	dom_state_unlock(lockfd);
	if (r == 0 && !gone)
		*out = rec;
	else
		dom_record_free(rec);
	return r;
}

void dom_state_letters(const struct dom_record *rec, char buf[7])
{
	memcpy(buf, "------", 7);
	switch (rec->state) {
	case DOM_STATE_RUNNING:
		if (dom_proc_running(&rec->qemu))
			buf[0] = 'r';
		else
			buf[1] = 'b';
		break;
	case DOM_STATE_PAUSED: buf[2] = 'p'; break;
	case DOM_STATE_SHUTDOWN: buf[3] = 's'; break;
	case DOM_STATE_CRASHED: buf[4] = 'c'; break;
	case DOM_STATE_DYING: buf[5] = 'd'; break;
	}
}
