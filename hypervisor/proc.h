/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Processes the toolstack started (QEMU, vstor serve, a domain's monitor)
 * and finds again later by pid.  A pid alone is not enough: once a
 * process exits, the kernel may give its pid to an unrelated one.  So a
 * pid is kept with the process' start time (field 22 of /proc/PID/stat,
 * in clock ticks since boot), and a process counts as ours only while
 * both match.
 */
#ifndef VS_HYPERVISOR_PROC_H
#define VS_HYPERVISOR_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct dom_proc {
	pid_t pid;	/* 0: none */
	uint64_t start; /* /proc/PID/stat starttime */
};

/* Fill p for a live pid.  -ESRCH if it is gone (or a zombie). */
int dom_proc_get(pid_t pid, struct dom_proc *p);

/* Is the process still the one recorded, and not a zombie? */
bool dom_proc_alive(const struct dom_proc *p);

/* Send sig if (and only if) the process is still the one recorded.
 * 0, or -ESRCH when it is gone. */
int dom_proc_kill(const struct dom_proc *p, int sig);

/* Wait up to timeout_ms for the process to be gone (exited, or a zombie
 * waiting for its parent).  true when gone. */
bool dom_proc_wait_gone(const struct dom_proc *p, int timeout_ms);

/* SIGTERM, up to term_ms for it to go, then SIGKILL and a wait for it.
 * true when it is gone. */
bool dom_proc_stop(const struct dom_proc *p, int term_ms);

/* CPU time (user + system) of the process so far, in seconds; 0 if
 * gone. */
double dom_proc_cpu_seconds(const struct dom_proc *p);

/* Is one of the process' threads on a CPU or runnable now (xl's 'r'), as
 * opposed to every thread sleeping ('b')? */
bool dom_proc_running(const struct dom_proc *p);

/* Sleep for ms milliseconds (restarted after signals). */
void dom_sleep_ms(int ms);

/* Milliseconds of CLOCK_MONOTONIC, for deadlines. */
int64_t dom_now_ms(void);

#endif
