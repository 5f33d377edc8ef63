/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Processes found again by pid and start time (see proc.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

/*
 * The fields of /proc/PID/stat (or /proc/PID/task/TID/stat) that we use.
 * The second field (comm) is in parentheses and may itself hold spaces
 * and parentheses, so fields are counted from the last ')'.
 */
struct stat_fields {
	char state;
	unsigned long long utime, stime, starttime;
};

static int read_stat(const char *path, struct stat_fields *f)
{
	char buf[1024], *p, *save = NULL, *tok;
	ssize_t n;
	int fd, field;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	*f = (struct stat_fields){0};
	/* Field 3 (state) is the first after the ')'. */
	field = 3;
	for (tok = strtok_r(p + 1, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), field++) {
		if (field == 3)
			f->state = tok[0];
		else if (field == 14)
			f->utime = strtoull(tok, NULL, 10);
		else if (field == 15)
			f->stime = strtoull(tok, NULL, 10);
		else if (field == 22) {
			f->starttime = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -EINVAL;
}

static int read_pid_stat(pid_t pid, struct stat_fields *f)
{
	char path[64];

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return read_stat(path, f) < 0 ? -ESRCH : 0;
}

/* Zombies and dead tasks have finished: nothing to wait for or signal. */
static bool finished(char state)
{
	return state == 'Z' || state == 'X' || state == 'x';
}

int dom_proc_get(pid_t pid, struct dom_proc *p)
{
	struct stat_fields f;

	if (read_pid_stat(pid, &f) < 0 || finished(f.state))
		return -ESRCH;
	p->pid = pid;
	p->start = f.starttime;
	return 0;
}

/*
 * Threads other than the leader still exiting.  A multi-threaded process
 * killed by a signal shows its leader as a zombie while the other threads
 * still run their exit, and their shared descriptors (a tap, an image)
 * close only when the last one is done.
 */
static bool threads_left(pid_t pid)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return false;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 1;
}

bool dom_proc_alive(const struct dom_proc *p)
{
	struct stat_fields f;

	if (!p->pid || read_pid_stat(p->pid, &f) < 0 || f.starttime != p->start)
		return false;
	return !finished(f.state) || threads_left(p->pid);
}

int dom_proc_kill(const struct dom_proc *p, int sig)
{
	struct stat_fields f;

	/* The check and the kill are not atomic, but a pid is reused only
	 * after the whole pid space went round: far longer than this gap. */
	if (!p->pid || read_pid_stat(p->pid, &f) < 0 ||
	    f.starttime != p->start || finished(f.state))
		return -ESRCH;
	return kill(p->pid, sig) < 0 ? -errno : 0;
}

int64_t dom_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dom_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool dom_proc_wait_gone(const struct dom_proc *p, int timeout_ms)
{
	int64_t end = dom_now_ms() + timeout_ms;

	for (;;) {
		if (!dom_proc_alive(p))
			return true;
		if (dom_now_ms() >= end)
			return false;
		dom_sleep_ms(10);
	}
}

bool dom_proc_stop(const struct dom_proc *p, int term_ms)
{
	if (dom_proc_kill(p, SIGTERM) < 0)
		return true;
	if (dom_proc_wait_gone(p, term_ms))
		return true;
	dom_proc_kill(p, SIGKILL);
	return dom_proc_wait_gone(p, 5000);
}

double dom_proc_cpu_seconds(const struct dom_proc *p)
{
	struct stat_fields f;
	long hz = sysconf(_SC_CLK_TCK);

	if (!p->pid || read_pid_stat(p->pid, &f) < 0 ||
	    f.starttime != p->start || hz <= 0)
		return 0;
	return (double)(f.utime + f.stime) / (double)hz;
}

bool dom_proc_running(const struct dom_proc *p)
{
	char path[64], tpath[400];
	struct dirent *de;
	bool running = false;
	DIR *d;

	if (!dom_proc_alive(p))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	d = opendir(path);
	if (!d)
		return false;
	while (!running && (de = readdir(d))) {
		struct stat_fields f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(tpath, sizeof(tpath), "%s/%s/stat", path, de->d_name);
		if (read_stat(tpath, &f) == 0 && f.state == 'R')
			running = true;
	}
	closedir(d);
	return running;
}
