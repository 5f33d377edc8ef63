/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Images of formats other than raw reach the loop driver as a file:
 * `vstor serve --fuse` shows the image's guest view as a regular file,
 * in a daemon that outlives `vstor part map` until unmap stops it.  The
 * server is this same program (/proc/self/exe), so its version matches.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "part-priv.h"

/* Seconds a server gets to flush and close its image after SIGTERM. */
#define STOP_WAIT_S 60

uint64_t img_part_proc_start(pid_t pid)
{
	char path[64], buf[1024], state;
	unsigned long long start = 0;
	const char *p;
	FILE *f;
	size_t got;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	/* The command name may hold spaces and parentheses: fields count
	 * from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", &state) != 1 || state == 'Z' ||
	    state == 'X')
		return 0;
	/* state is field 3, starttime field 22: skip 18 fields. */
	if (sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
		   "%*d %*d %*d %*d %*d %llu",
		   &start) != 1)
		return 0;
	return start;
}

static int read_pidfile(const char *path, pid_t *pid, struct vs_error **errp)
{
	char buf[32] = "";
	char *end;
	long n;
	FILE *f = fopen(path, "re");

	if (!f)
		return vs_error_set_errno(errp, errno, "pidfile %s", path);
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	errno = 0;
	n = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || n < 2 ||
	    n > 0x3fffffff)
		return vs_error_set(errp, EINVAL,
				    "pidfile %s: '%.20s' is not a pid", path,
				    buf);
	*pid = (pid_t)n;
	return 0;
}

/* The server's own message, to quote when it failed. */
static void read_msg(int fd, char *msg, size_t len)
{
	ssize_t got;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	got = read(fd, msg, len - 1);
	msg[got > 0 ? got : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
}

int img_part_serve_start(const char *image, const char *format, bool ro,
			 const char *fuse_file, const char *pidfile, pid_t *pid,
			 uint64_t *start, struct vs_error **errp)
{
	char *spec = NULL, msg[512];
	int pfd[2], status, ret;
	pid_t child;

	if (asprintf(&spec, "format=%s, vdev=xvda, access=%s, target=%s",
		     format, ro ? "ro" : "rw", image) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(spec);
		return vs_error_set_errno(errp, errno, "pipe");
	}
	child = fork();
	if (child < 0) {
		ret = vs_error_set_errno(errp, errno, "fork");
		goto out;
	}
	if (!child) {
		char *argv[] = {
			"vstor",
			"serve",
			"--daemonize",
			"--pidfile",
			(char *)pidfile,
			"--fuse",
			(char *)fuse_file,
			spec,
			NULL,
		};
		dup2(pfd[1], STDERR_FILENO);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	/* --daemonize: the command exits once the export is ready. */
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	read_msg(pfd[0], msg, sizeof(msg));
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		ret = vs_error_set(errp, EIO,
				   "%s: cannot export it through FUSE: %s",
				   image, msg[0] ? msg : "vstor serve failed");
		goto out;
	}
	ret = read_pidfile(pidfile, pid, errp);
	if (ret < 0)
		goto out;
	*start = img_part_proc_start(*pid);
	if (!*start)
		ret = vs_error_set(errp, ESRCH,
				   "%s: the FUSE server (pid %d) is gone",
				   image, (int)*pid);
out:
	free(spec);
	close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return ret;
}

int img_part_serve_stop(pid_t pid, uint64_t start, struct vs_error **errp)
{
	/* Not our child (it daemonized): poll /proc instead of waiting. */
	if (img_part_proc_start(pid) != start)
		return 0;
	if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
		return vs_error_set_errno(errp, errno,
					  "cannot stop the FUSE server (pid "
					  "%d)",
					  (int)pid);
	for (int i = 0; i < STOP_WAIT_S * 20; i++) {
		if (img_part_proc_start(pid) != start)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000},
			  NULL);
	}
	return vs_error_set(errp, ETIMEDOUT,
			    "the FUSE server (pid %d) is still running %d s "
			    "after SIGTERM",
			    (int)pid, STOP_WAIT_S);
}
