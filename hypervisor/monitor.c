/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A domain's monitor: a small process per domain, as xl keeps one.  It
 * is QEMU's parent (so it sees QEMU's end), holds a QMP connection of its
 * own (so it sees the guest power off, reboot or panic), and applies the
 * config's on_poweroff, on_reboot and on_crash:
 *
 *   destroy   QEMU and serve stop, the sockets and the record go;
 *   restart   a new QEMU on the same serve (QEMU restarts the guest in
 *             place itself for on_reboot=restart: -action reboot=reset);
 *   preserve  QEMU and serve stop, the record stays (shutdown or
 *             crashed) with the logs, until `vstor destroy`.
 *
 * It is forked from `vstor create` (no exec: it needs nothing but this
 * file's code), double-forked into its own session so that it outlives
 * the command, and reports the start's outcome on a pipe: one line,
 * "ok QEMU_PID QEMU_START MONITOR_PID MONITOR_START" or "error MESSAGE".
 * Its messages go to RUNDIR/monitor.log.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/log.h"
#include "accel.h"
#include "domain-priv.h"
#include "qmp.h"
#include "tap.h"

/* Restarts closer together than this, several times in a row, mean a
 * guest that cannot stay up: it is kept as crashed instead. */
#define RESTART_WINDOW_MS 10000
#define RESTART_BURST	  5

enum outcome {
	OUT_POWEROFF, /* the guest powered off */
	OUT_REBOOT,   /* the guest rebooted (with reboot=shutdown) */
	OUT_CRASH,    /* the guest panicked */
	OUT_GONE,     /* QEMU exited or closed QMP on its own */
};

struct qemu_run {
	pid_t pid;		 /* our child; 0 when adopted (or gone) */
	struct dom_proc adopted; /* a QEMU started by an earlier monitor */
	struct dom_qmp *q;
};

/* The end of QEMU's log, for a message about a failed start. */
static void log_tail(const char *rundir, char *buf, size_t cap)
{
	autofree char *path = NULL;
	char line[1024];
	FILE *f;

	buf[0] = '\0';
	if (asprintf(&path, "%s/qemu.log", rundir) < 0 ||
	    !(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, cap, "%s", line);
	}
	fclose(f);
}

static void close_taps(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int open_taps(const struct dom_record *rec, int *fds,
		     struct vs_error **err)
{
	const struct dom_config *cfg = rec->cfg;

	for (size_t i = 0; i < cfg->n_vifs; i++)
		fds[i] = -1;
	for (size_t i = 0; i < cfg->n_vifs; i++) {
		char name[32]; /* IFNAMSIZ is 16: domid <= 32767, i < 5 fit */
		int r;

		/* xl's names: vifDOMID.N. */
		if (cfg->vifs[i].vifname)
			snprintf(name, sizeof(name), "%s",
				 cfg->vifs[i].vifname);
		else
			snprintf(name, sizeof(name), "vif%u.%u", rec->domid,
				 (unsigned)i);
		r = dom_tap_open(name, cfg->vifs[i].bridge, NULL, &fds[i], NULL,
				 err);
		if (r < 0) {
			vs_error_prefix(err, "vif %zu", i);
			close_taps(fds, cfg->n_vifs);
			return r;
		}
	}
	return 0;
}

static void kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Start QEMU as our child and connect to it; the guest runs once this
 * returns 0. */
static int qemu_start(struct dom_record *rec, struct qemu_run *run,
		      struct vs_error **err)
{
	int taps[DOM_MAX_VIFS];
	autofree char *qmp_path = NULL, *log = NULL, *why = NULL;
	char **argv = NULL, tail[1024];
	const char *accel;
	int64_t end;
	int r;

	*run = (struct qemu_run){0};
	if ((r = dom_run_path(rec->rundir, "monitor-qmp.sock", &qmp_path,
			      err)) < 0 ||
	    (r = dom_run_path(rec->rundir, "qemu.log", &log, err)) < 0)
		return r;
	accel = dom_accel_resolve(rec->cfg->accel, &why);
	if (why)
		vs_info("domain '%s': TCG, as KVM cannot run a guest here: %s",
			rec->name, why);
	if ((r = open_taps(rec, taps, err)) < 0)
		return r;
	r = dom_qemu_argv(rec, accel, taps, &argv, err);
	if (r < 0) {
		close_taps(taps, rec->cfg->n_vifs);
		return r;
	}
	run->pid = fork();
	if (run->pid == 0) {
		int in = open("/dev/null", O_RDONLY), lf;

		lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (in < 0 || lf < 0 || dup2(in, 0) < 0 || dup2(lf, 1) < 0 ||
		    dup2(lf, 2) < 0)
			_exit(127);
		for (size_t i = 0; i < rec->cfg->n_vifs; i++)
			fcntl(taps[i], F_SETFD, 0); /* QEMU inherits the taps */
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	r = run->pid < 0 ? -errno : 0;
	close_taps(taps, rec->cfg->n_vifs);
	dom_argv_free(argv);
	if (r < 0) {
		run->pid = 0;
		return vs_error_set_errno(err, r, "cannot start QEMU");
	}
	/* QEMU listens on its QMP socket early in its start-up; until then
	 * retry, unless it exited (a bad option, a missing kernel...). */
	end = dom_now_ms() + DOM_QMP_START_MS;
	for (;;) {
		struct vs_error *e = NULL;
		int status;

		if (waitpid(run->pid, &status, WNOHANG) == run->pid) {
			run->pid = 0;
			log_tail(rec->rundir, tail, sizeof(tail));
			return vs_error_set(err, EIO,
					    "QEMU failed to start: %s",
					    tail[0] ? tail : "no message");
		}
		r = dom_qmp_connect(qmp_path, 0, &run->q, &e);
		if (r == 0)
			break;
		if (dom_now_ms() >= end) {
			vs_error_set(err, ETIMEDOUT,
				     "QEMU did not answer on '%s': %s",
				     qmp_path, vs_error_msg(e));
			vs_error_free(e);
			kill_wait(run->pid);
			run->pid = 0;
			return -ETIMEDOUT;
		}
		vs_error_free(e);
		dom_sleep_ms(50);
	}
	r = dom_qmp_exec(run->q, "cont", NULL, NULL, DOM_QMP_CMD_MS, err);
	if (r < 0) {
		dom_qmp_close(run->q);
		run->q = NULL;
		kill_wait(run->pid);
		run->pid = 0;
		return r;
	}
	return dom_proc_get(run->pid, &rec->qemu) < 0
		       ? vs_error_set(err, ESRCH, "QEMU exited during start-up")
		       : 0;
}

/* Ask QEMU to quit, then make sure it did. */
static void qemu_stop(struct qemu_run *run)
{
	int64_t end = dom_now_ms() + 10000;

	if (run->q) {
		struct vs_error *e = NULL;

		dom_qmp_exec(run->q, "quit", NULL, NULL, 2000, &e);
		vs_error_free(e);
		dom_qmp_close(run->q);
		run->q = NULL;
	}
	if (!run->pid) {
		/* Not our child: its parent (init) reaps it. */
		if (run->adopted.pid &&
		    !dom_proc_wait_gone(&run->adopted, 10000)) {
			dom_proc_kill(&run->adopted, SIGKILL);
			dom_proc_wait_gone(&run->adopted, 5000);
		}
		return;
	}
	while (dom_now_ms() < end) {
		if (waitpid(run->pid, NULL, WNOHANG) == run->pid) {
			run->pid = 0;
			return;
		}
		dom_sleep_ms(20);
	}
	kill_wait(run->pid);
	run->pid = 0;
}

/*
 * Take over a QEMU whose monitor is gone: connect to its QMP socket and
 * see whether the guest ended while nobody watched (QEMU stays, stopped,
 * after a power-off or a panic: -no-shutdown, panic=pause).  *ended is
 * set to that outcome, or left false.
 */
static int qemu_adopt(struct dom_record *rec, struct qemu_run *run, bool *ended,
		      enum outcome *o, struct vs_error **err)
{
	autofree char *qmp_path = NULL;
	struct json_object *ret = NULL, *status;
	int r;

	*run = (struct qemu_run){.adopted = rec->qemu};
	*ended = false;
	if ((r = dom_run_path(rec->rundir, "monitor-qmp.sock", &qmp_path,
			      err)) < 0 ||
	    (r = dom_qmp_connect(qmp_path, DOM_QMP_CMD_MS, &run->q, err)) < 0 ||
	    (r = dom_qmp_exec(run->q, "query-status", NULL, &ret,
			      DOM_QMP_CMD_MS, err)) < 0) {
		dom_qmp_close(run->q);
		run->q = NULL;
		return r;
	}
	if (json_object_object_get_ex(ret, "status", &status)) {
		const char *st = json_object_get_string(status);

		if (!strcmp(st, "shutdown")) {
			*ended = true;
			*o = OUT_POWEROFF;
		} else if (!strcmp(st, "guest-panicked")) {
			*ended = true;
			*o = OUT_CRASH;
		}
	}
	json_object_put(ret);
	return 0;
}

static enum outcome event_outcome(struct json_object *ev, bool *done)
{
	struct json_object *name, *data, *reason;
	const char *n, *why = "";

	*done = false;
	if (!json_object_object_get_ex(ev, "event", &name))
		return OUT_GONE;
	n = json_object_get_string(name);
	if (json_object_object_get_ex(ev, "data", &data) &&
	    json_object_object_get_ex(data, "reason", &reason))
		why = json_object_get_string(reason);
	if (!strcmp(n, "GUEST_PANICKED")) {
		*done = true;
		return OUT_CRASH;
	}
	if (!strcmp(n, "SHUTDOWN")) {
		*done = true;
		/* A reset turned into a shutdown by -action reboot=shutdown
		 * (on_reboot is not restart): the guest's, or a QMP
		 * system_reset's. */
		if (!strcmp(why, "guest-reset") ||
		    !strcmp(why, "host-qmp-system-reset"))
			return OUT_REBOOT;
		if (!strcmp(why, "guest-panic"))
			return OUT_CRASH;
		if (!strcmp(why, "host-qmp-quit") ||
		    !strcmp(why, "host-signal") || !strcmp(why, "host-error"))
			return OUT_GONE;
		return OUT_POWEROFF;
	}
	return OUT_GONE;
}

/* Wait for the guest's end, whichever comes. */
static enum outcome watch(struct qemu_run *run, const char *name)
{
	for (;;) {
		struct pollfd p = {.fd = dom_qmp_fd(run->q), .events = POLLIN};
		int status;

		if (run->pid &&
		    waitpid(run->pid, &status, WNOHANG) == run->pid) {
			vs_log(VS_LOG_INFO, NULL,
			       "domain '%s': QEMU exited (status 0x%x)", name,
			       (unsigned)status);
			run->pid = 0;
			return OUT_GONE;
		}
		if (!run->pid && !dom_proc_alive(&run->adopted)) {
			vs_log(VS_LOG_INFO, NULL, "domain '%s': QEMU exited",
			       name);
			return OUT_GONE;
		}
		if (poll(&p, 1, 500) < 0 && errno != EINTR)
			return OUT_GONE;
		if (!p.revents)
			continue;
		for (;;) {
			struct json_object *ev = NULL;
			struct vs_error *e = NULL;
			enum outcome o;
			bool done;
			int r = dom_qmp_wait_event(run->q, NULL, 0, &ev, &e);

			vs_error_free(e);
			if (r == -ETIMEDOUT)
				break;
			if (r < 0) {
				vs_log(VS_LOG_INFO, NULL,
				       "domain '%s': QMP connection lost",
				       name);
				return OUT_GONE;
			}
			vs_debug("monitor", "domain '%s': event %s", name,
				 json_object_to_json_string(ev));
			o = event_outcome(ev, &done);
			json_object_put(ev);
			if (done)
				return o;
		}
	}
}

static void report(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(int fd, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(fd, buf, (size_t)n) < 0)
		vs_log(VS_LOG_ERROR, NULL, "cannot report to vstor create: %s",
		       strerror(errno));
}

/* The record as it is now, or NULL (with the lock released) when the
 * domain is gone or being destroyed: then the monitor has nothing more
 * to do. */
static struct dom_record *reload_locked(const char *name, int *lockfd)
{
	struct dom_record *rec = NULL;
	struct vs_error *e = NULL;

	*lockfd = dom_state_lock(&e);
	if (*lockfd < 0) {
		vs_log(VS_LOG_ERROR, NULL, "%s", vs_error_msg(e));
		vs_error_free(e);
		return NULL;
	}
	if (dom_record_load(name, &rec, &e) < 0 ||
	    rec->state == DOM_STATE_DYING || rec->monitor.pid != getpid()) {
		vs_error_free(e);
		dom_record_free(rec);
		dom_state_unlock(*lockfd);
		*lockfd = -1;
		return NULL;
	}
	return rec;
}

static const char *outcome_name(enum outcome o)
{
	switch (o) {
	case OUT_POWEROFF: return "powered off";
	case OUT_REBOOT: return "rebooted";
	case OUT_CRASH: return "crashed";
	default: return "lost its QEMU";
	}
}

static void __attribute__((noreturn))
monitor_main(struct dom_record *rec, int report_fd, bool adopt)
{
	int64_t burst_start = dom_now_ms();
	unsigned burst = 0;
	bool first = true;
	char *name = strdup(rec->name);

	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "vstor-monitor");
	for (;;) {
		struct vs_error *e = NULL;
		struct qemu_run run;
		enum outcome o;
		enum dom_action action;
		enum dom_state keep_state;
		bool ended = false;
		int lockfd = -1, r;

		r = first && adopt ? qemu_adopt(rec, &run, &ended, &o, &e)
				   : qemu_start(rec, &run, &e);
		if (r < 0) {
			if (first) {
				report(report_fd, "error %s", vs_error_msg(e));
				_exit(1);
			}
			vs_log(VS_LOG_ERROR, NULL,
			       "domain '%s': restart failed: %s", name,
			       vs_error_msg(e));
			vs_error_free(e);
			dom_record_free(rec);
			rec = reload_locked(name, &lockfd);
			if (rec) {
				dom_teardown(rec, true, DOM_STATE_CRASHED, &e);
				vs_error_free(e);
				dom_state_unlock(lockfd);
			}
			_exit(1);
		}
		if (first) {
			struct dom_proc self;

			dom_proc_get(getpid(), &self);
			report(report_fd, "ok %d %" PRIu64 " %d %" PRIu64,
			       (int)rec->qemu.pid, rec->qemu.start,
			       (int)self.pid, self.start);
			close(report_fd);
			first = false;
		} else {
			struct dom_proc qemu = rec->qemu;

			dom_record_free(rec);
			rec = reload_locked(name, &lockfd);
			if (!rec) {
				qemu_stop(&run);
				_exit(0);
			}
			rec->qemu = qemu;
			rec->state = DOM_STATE_RUNNING;
			rec->restarts++;
			if (dom_record_save(rec, &e) < 0)
				vs_log(VS_LOG_ERROR, NULL, "%s",
				       vs_error_msg(e));
			vs_error_free(e);
			e = NULL;
			dom_state_unlock(lockfd);
		}
		if (!ended)
			o = watch(&run, name);
		qemu_stop(&run);
		dom_record_free(rec);
		rec = reload_locked(name, &lockfd);
		if (!rec)
			_exit(0); /* destroyed meanwhile */
		switch (o) {
		case OUT_POWEROFF:
			action = rec->reboot_requested ? rec->cfg->on_reboot
						       : rec->cfg->on_poweroff;
			keep_state = DOM_STATE_SHUTDOWN;
			break;
		case OUT_REBOOT:
			action = rec->cfg->on_reboot;
			keep_state = DOM_STATE_SHUTDOWN;
			break;
		default:
			action = rec->cfg->on_crash;
			keep_state = DOM_STATE_CRASHED;
			break;
		}
		vs_log(VS_LOG_INFO, NULL, "domain '%s' %s: %s", name,
		       outcome_name(o), dom_action_name(action));
		rec->reboot_requested = false;
		if (action == DOM_ACTION_RESTART) {
			if (dom_now_ms() - burst_start > RESTART_WINDOW_MS) {
				burst_start = dom_now_ms();
				burst = 0;
			}
			if (++burst > RESTART_BURST) {
				vs_log(VS_LOG_ERROR, NULL,
				       "domain '%s' restarted %d times within "
				       "%d s: kept as "
				       "crashed",
				       name, RESTART_BURST,
				       RESTART_WINDOW_MS / 1000);
				action = DOM_ACTION_PRESERVE;
				keep_state = DOM_STATE_CRASHED;
			}
		}
		if (action == DOM_ACTION_RESTART) {
			rec->qemu = (struct dom_proc){0};
			if (dom_record_save(rec, &e) < 0)
				vs_log(VS_LOG_ERROR, NULL, "%s",
				       vs_error_msg(e));
			vs_error_free(e);
			dom_state_unlock(lockfd);
			continue;
		}
		if (dom_teardown(rec, action == DOM_ACTION_PRESERVE, keep_state,
				 &e) < 0)
			vs_log(VS_LOG_ERROR, NULL, "%s", vs_error_msg(e));
		vs_error_free(e);
		dom_state_unlock(lockfd);
		_exit(0);
	}
}

/* Close every descriptor but keep (the report pipe). */
static void close_all_but(int keep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int dfd = d ? dirfd(d) : -1;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd > 2 && fd != keep && fd != dfd)
			close(fd);
	}
	closedir(d);
}

static void child_setup(const struct dom_record *rec, int report_fd)
{
	autofree char *log = NULL;
	int in, lf;

	close_all_but(report_fd);
	in = open("/dev/null", O_RDONLY);
	lf = asprintf(&log, "%s/monitor.log", rec->rundir) < 0
		     ? -1
		     : open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			    0600);
	if (in < 0 || lf < 0 || dup2(in, 0) < 0 || dup2(lf, 1) < 0 ||
	    dup2(lf, 2) < 0) {
		report(report_fd, "error cannot set up the monitor's log '%s'",
		       log ? log : "");
		_exit(1);
	}
	close(in);
	close(lf);
	/* Nothing of the terminal's: a Ctrl-C at `vstor create` must not
	 * reach the domain.  The mask create set for its start is not ours
	 * (QEMU inherits it). */
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

int dom_monitor_spawn(struct dom_record *rec, int lockfd, bool adopt,
		      struct vs_error **err)
{
	char line[2048];
	size_t len = 0;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return vs_error_set_errno(err, errno,
					  "cannot start the domain's monitor");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return vs_error_set_errno(err, errno,
					  "cannot start the domain's monitor");
	}
	if (pid == 0) {
		pid_t pid2;

		/* Our copy of the state lock would keep it held for as long
		 * as the monitor lives. */
		close(lockfd);
		close(p[0]);
		setsid();
		pid2 = fork();
		if (pid2 != 0)
			_exit(pid2 < 0);
		child_setup(rec, p[1]);
		monitor_main(rec, p[1], adopt);
	}
	close(p[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* One line, then EOF; the monitor's start waits for QEMU's QMP
	 * socket, so this read is bounded by that timeout. */
	for (;;) {
		ssize_t n = read(p[0], line + len, sizeof(line) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(line) - 1 || memchr(line, '\n', len))
			break;
	}
	close(p[0]);
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!strncmp(line, "ok ", 3)) {
		int qpid, mpid;
		uint64_t qstart, mstart;

		if (sscanf(line + 3, "%d %" SCNu64 " %d %" SCNu64, &qpid,
			   &qstart, &mpid, &mstart) == 4) {
			rec->qemu = (struct dom_proc){qpid, qstart};
			rec->monitor = (struct dom_proc){mpid, mstart};
			return 0;
		}
	}
	if (!strncmp(line, "error ", 6))
		return vs_error_set(err, EIO, "%s", line + 6);
	return vs_error_set(err, EIO,
			    "the domain's monitor ended during start-up; see "
			    "%s/monitor.log",
			    rec->rundir);
}
