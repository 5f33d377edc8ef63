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

	/* Under the lock, so that the record's state and QEMU's agree. */
	lockfd = dom_lock_live(name, &rec, err);
	if (lockfd < 0)
		return lockfd;
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
