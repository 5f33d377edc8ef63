/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor pause / unpause: QMP stop and cont, and the state in the record. */
#include <errno.h>

#include "../common/error.h"
#include "domain-priv.h"
#include "qmp.h"

int dom_pause(const char *name, bool pause, struct vs_error **err)
{
	struct dom_record *rec = NULL;
	struct dom_qmp *q = NULL;
	int lockfd, r;

	r = dom_load_live(name, &rec, err);
	if (r < 0)
		return r;
	dom_record_free(rec);
	rec = NULL;
	/* Under the lock, so that the record's state and QEMU's agree. */
	lockfd = dom_state_lock(err);
	if (lockfd < 0)
		return lockfd;
	r = dom_record_load(name, &rec, err);
	if (r < 0)
		goto out;
	if (rec->state != DOM_STATE_RUNNING && rec->state != DOM_STATE_PAUSED) {
		r = vs_error_set(err, EINVAL, "domain '%s' is not running (%s)",
				 name, dom_state_name(rec->state));
		goto out;
	}
	r = dom_qmp_open(rec, &q, err);
	if (r == 0)
		r = dom_qmp_exec(q, pause ? "stop" : "cont", NULL, NULL,
				 DOM_QMP_CMD_MS, err);
	dom_qmp_close(q);
	if (r < 0)
		goto out;
	rec->state = pause ? DOM_STATE_PAUSED : DOM_STATE_RUNNING;
	r = dom_record_save(rec, err);
out:
	dom_record_free(rec);
	dom_state_unlock(lockfd);
	return r;
}
