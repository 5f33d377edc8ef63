/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Ending domains: teardown (shared by destroy, the monitor and list),
 * vstor destroy, shutdown and reboot. */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/log.h"
#include "domain-priv.h"
#include "qmp.h"

int dom_teardown(struct dom_record *rec, bool keep, enum dom_state keep_state,
		 struct vs_error **err)
{
	int r = 0;

	/* The monitor first, so that it does not act on QEMU's end. */
	if (rec->monitor.pid && rec->monitor.pid != getpid()) {
		dom_proc_kill(&rec->monitor, SIGKILL);
		dom_proc_wait_gone(&rec->monitor, 5000);
	}
	if (rec->qemu.pid && dom_proc_kill(&rec->qemu, SIGKILL) == 0 &&
	    !dom_proc_wait_gone(&rec->qemu, 10000))
		r = vs_error_set(err, EBUSY,
				 "domain '%s': QEMU (pid %d) did not exit",
				 rec->name, (int)rec->qemu.pid);
	/* SIGTERM: serve flushes and closes every image before it exits. */
	if (rec->serve.pid && !dom_proc_stop(&rec->serve, DOM_SERVE_STOP_MS) &&
	    !r)
		r = vs_error_set(
			err, EBUSY,
			"domain '%s': vstor serve (pid %d) did not exit",
			rec->name, (int)rec->serve.pid);
	rec->monitor = rec->qemu = rec->serve = (struct dom_proc){0};
	if (keep) {
		rec->state = keep_state;
		return dom_record_save(rec, err) < 0 ? -EIO : r;
	}
	dom_rundir_remove(rec->rundir);
	if (dom_record_remove(rec->name, err) < 0 && !r)
		r = -EIO;
	return r;
}

/*
 * Check the name, take the state lock (*lockfd, -1 when not taken) and
 * load the record; -EBADMSG when it is there but does not read back.
 */
static int lock_and_load(const char *name, int *lockfd, struct dom_record **rec,
			 struct vs_error **err)
{
	int r = dom_name_check(name, err);

	*lockfd = -1;
	if (r < 0)
		return r;
	*lockfd = dom_state_lock(err);
	if (*lockfd < 0)
		return *lockfd;
	r = dom_record_load(name, rec, err);
	/* With a good name, these are the record's own checks failing. */
	return r == -EINVAL || r == -EFBIG ? -EBADMSG : r;
}

int dom_forget_damaged(const char *name, char **aside, struct vs_error **err)
{
	struct dom_record *rec = NULL;
	struct vs_error *why = NULL;
	int lockfd, r = lock_and_load(name, &lockfd, &rec, &why);

	if (r == 0)
		r = vs_error_set(err, EEXIST,
				 "domain '%s': its record reads well: "
				 "'vstor destroy %s' ends it",
				 name, name);
	else if (r == -EBADMSG)
		r = dom_record_set_aside(name, aside, err);
	else if (err && !*err)
		*err = vs_steal(&why); /* nothing to set aside: it says why */
	vs_error_free(why);
	dom_record_free(rec);
	if (lockfd >= 0)
		dom_state_unlock(lockfd);
	return r;
}

int dom_destroy(const char *name, struct vs_error **err)
{
	struct dom_record *rec = NULL;
	int lockfd, r = lock_and_load(name, &lockfd, &rec, err);

	if (r == 0) {
		/* Marked first: a monitor that wakes up now leaves it to us. */
		rec->state = DOM_STATE_DYING;
		r = dom_record_save(rec, err);
		if (r == 0)
			r = dom_teardown(rec, false, DOM_STATE_DYING, err);
	}
	dom_record_free(rec);
	if (lockfd >= 0)
		dom_state_unlock(lockfd);
	return r;
}

int dom_qmp_open(const struct dom_record *rec, struct dom_qmp **q,
		 struct vs_error **err)
{
	char *path = NULL;
	int r = dom_run_path(rec->rundir, "qmp.sock", &path, err);

	if (r < 0)
		return r;
	/* QEMU serves one client per QMP socket: another vstor command
	 * may hold it for a moment. */
	r = dom_qmp_connect(path, DOM_QMP_CMD_MS, q, err);
	free(path);
	if (r < 0)
		vs_error_prefix(err, "domain '%s'", rec->name);
	return r;
}

int dom_load_live(const char *name, struct dom_record **out,
		  struct vs_error **err)
{
	struct dom_record *rec = NULL;
	int r = dom_refresh(name, &rec, err);

	if (r < 0)
		return r;
	if (!rec)
		return vs_error_set(
			err, ENOENT,
			"domain '%s' has crashed and is gone (on_crash)", name);
	if (rec->state != DOM_STATE_RUNNING && rec->state != DOM_STATE_PAUSED) {
		r = vs_error_set(err, EINVAL, "domain '%s' is not running (%s)",
				 name, dom_state_name(rec->state));
		dom_record_free(rec);
		return r;
	}
	*out = rec;
	return 0;
}

int dom_lock_live(const char *name, struct dom_record **out,
		  struct vs_error **err)
{
	struct dom_record *rec = NULL;
	int lockfd, r = dom_load_live(name, &rec, err);

	if (r < 0)
		return r;
	dom_record_free(rec);
	rec = NULL;
	lockfd = dom_state_lock(err);
	if (lockfd < 0)
		return lockfd;
	r = dom_record_load(name, &rec, err);
	if (r == 0 && rec->state != DOM_STATE_RUNNING &&
	    rec->state != DOM_STATE_PAUSED)
		r = vs_error_set(err, EINVAL, "domain '%s' is not running (%s)",
				 name, dom_state_name(rec->state));
	if (r < 0) {
		dom_record_free(rec);
		dom_state_unlock(lockfd);
		return r;
	}
	*out = rec;
	return lockfd;
}

/* Has the domain ended (or restarted) since `was`? */
static bool ended(const char *name, const struct dom_proc *was)
{
	struct dom_record *rec = NULL;
	struct vs_error *e = NULL;
	bool done;

	if (dom_refresh(name, &rec, &e) < 0 || !rec) {
		vs_error_free(e);
		return true;
	}
	done = (rec->state != DOM_STATE_RUNNING &&
		rec->state != DOM_STATE_PAUSED) ||
	       rec->qemu.pid != was->pid || rec->qemu.start != was->start;
	dom_record_free(rec);
	return done;
}

static int set_reboot_flag(const char *name, bool on, struct vs_error **err)
{
	struct dom_record *rec = NULL;
	int lockfd = dom_state_lock(err), r;

	if (lockfd < 0)
		return lockfd;
	r = dom_record_load(name, &rec, err);
	if (r == 0) {
		rec->reboot_requested = on;
		r = dom_record_save(rec, err);
	}
	dom_record_free(rec);
	dom_state_unlock(lockfd);
	return r;
}

static int power_button(const char *name, bool reboot, bool wait, int wait_ms,
			struct vs_error **err)
{
	struct dom_record *rec = NULL;
	struct dom_qmp *q = NULL;
	struct dom_proc qemu;
	int64_t end;
	int r;

	r = dom_load_live(name, &rec, err);
	if (r < 0)
		return r;
	qemu = rec->qemu;
	if (rec->state == DOM_STATE_PAUSED) {
		r = vs_error_set(err, EINVAL,
				 "domain '%s' is paused: it cannot see the "
				 "power button; "
				 "unpause it first",
				 name);
		goto out;
	}
	if (reboot && (r = set_reboot_flag(name, true, err)) < 0)
		goto out;
	r = dom_qmp_open(rec, &q, err);
	if (r == 0)
		r = dom_qmp_exec(q, "system_powerdown", NULL, NULL,
				 DOM_QMP_CMD_MS, err);
	dom_qmp_close(q);
	if (r < 0) {
		if (reboot) {
			struct vs_error *e = NULL;

			set_reboot_flag(name, false, &e);
			vs_error_free(e);
		}
		goto out;
	}
	if (!wait)
		goto out;
	end = dom_now_ms() + wait_ms;
	while (!ended(name, &qemu)) {
		if (wait_ms >= 0 && dom_now_ms() >= end) {
			r = vs_error_set(err, ETIMEDOUT,
					 "domain '%s' is still running %d s "
					 "after the power "
					 "button",
					 name, wait_ms / 1000);
			goto out;
		}
		dom_sleep_ms(200);
	}
out:
	dom_record_free(rec);
	return r;
}

int dom_shutdown(const char *name, bool wait, int timeout_ms,
		 struct vs_error **err)
{
	return power_button(name, false, wait, timeout_ms, err);
}

int dom_reboot(const char *name, struct vs_error **err)
{
	return power_button(name, true, false, 0, err);
}
