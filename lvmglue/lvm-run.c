/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running the `lvm` command: fork/exec with an argument vector (never a
 * shell), stdin from /dev/null so that a prompt can never wait for an
 * answer, stdout and stderr read through pipes, the exit status checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "lvm-priv.h"

/* Reports of thousands of LVs are a few MiB; anything larger is not
 * lvm talking to us. */
#define LVM_OUT_MAX (64u << 20)
/* Only the end of stderr matters for an error message. */
#define LVM_ERR_MAX  (16u << 10)
#define LVM_ARGS_MAX 64

extern char **environ;

struct buf {
	char *data;
	size_t len, cap, max;
	bool overflow;
	bool keep_tail; /* past max, drop the oldest bytes (stderr) */
};

static int buf_append(struct buf *b, const char *p, size_t n)
{
	if (b->keep_tail && b->len + n > b->max) {
		/* Keep the newest max bytes: the last lines say why. */
		if (n >= b->max) {
			p += n - b->max;
			n = b->max;
			b->len = 0;
		} else {
			size_t drop = b->len + n - b->max;

			memmove(b->data, b->data + drop, b->len - drop);
			b->len -= drop;
		}
	} else if (b->len + n > b->max) {
		b->overflow = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* The lvm binary: from PATH, else where Debian puts it (a non-root PATH
 * often lacks /sbin). */
char *lvm_binary(void)
{
	static const char *const fallback[] = {"/usr/sbin", "/sbin"};
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : "");
	char *save = NULL, *found = NULL;

	if (!copy)
		return NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save))
		if (*dir == '/' && asprintf(&found, "%s/lvm", dir) >= 0 &&
		    access(found, X_OK) != 0) {
			free(found);
			found = NULL;
		}
	free(copy);
	for (size_t i = 0; !found && i < VS_ARRAY_SIZE(fallback); i++)
		if (asprintf(&found, "%s/lvm", fallback[i]) >= 0 &&
		    access(found, X_OK) != 0) {
			free(found);
			found = NULL;
		}
	return found;
}

/* Does environ entry `e` set one of the "NAME=..." in `set`? */
static bool env_overridden(const char *e, const char *const *set)
{
	for (size_t i = 0; set[i]; i++) {
		size_t n = strcspn(set[i], "=") + 1;

		if (!strncmp(e, set[i], n))
			return true;
	}
	return false;
}

/*
 * The child's environment: ours, with LC_ALL=C (messages and number
 * formats we can read), LVM_SUPPRESS_FD_WARNINGS (lvm complains about
 * inherited descriptors; the child closes them anyway) and `extra`
 * ("NAME=VALUE" strings, NULL-terminated, borrowed like environ's: they
 * must outlive the array).  NULL when out of memory or given more than
 * a dozen.  Built before fork: a threaded parent's child may only call
 * async-signal-safe functions.
 */
char **lvm_child_env(const char *const *extra)
{
	const char *set[16] = {"LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1"};
	size_t n = 0, k = 0, nset = 2;
	char **env;

	for (size_t i = 0; extra && extra[i]; i++) {
		if (nset + 1 >= VS_ARRAY_SIZE(set))
			return NULL;
		set[nset++] = extra[i];
	}
	set[nset] = NULL;
	while (environ && environ[n])
		n++;
	env = calloc(n + nset + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!env_overridden(environ[i], set))
			env[k++] = environ[i];
	for (size_t i = 0; i < nset; i++)
		env[k++] = (char *)set[i];
	env[k] = NULL;
	return env;
}

static void child(const char *lvm, char *const *argv, char **env, int out,
		  int err)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0)
		_exit(127);
	/* No descriptor of ours (an open disk, a socket) reaches lvm. */
	if (close_range(3, ~0u, 0) < 0)
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	signal(SIGPIPE, SIG_DFL);
	execve(lvm, argv, env);
	_exit(127);
}

/* Read both pipes until both are closed. */
static int drain(int out_fd, int err_fd, struct buf *out, struct buf *err)
{
	struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN},
			      {.fd = err_fd, .events = POLLIN}};
	struct buf *b[2] = {out, err};
	char chunk[65536];
	int open_n = 2, ret = 0;

	while (open_n > 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			n = read(p[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				p[i].fd = -1;
				open_n--;
				continue;
			}
			if (!ret)
				ret = buf_append(b[i], chunk, (size_t)n);
		}
	}
	return ret;
}

/* lvm's stderr as one line for an error message: its lines trimmed and
 * joined with "; ", WARNING lines left out when there is anything
 * else. */
char *lvm_stderr_summary(const char *text)
{
	struct buf s = {.max = LVM_ERR_MAX, .keep_tail = true};
	bool have_plain = false;

	for (int pass = 0; pass < 2; pass++) {
		const char *p = text ? text : "";

		while (*p) {
			size_t len = strcspn(p, "\n");
			const char *line = p;
			size_t l = len;

			p += len + (p[len] == '\n');
			while (l && (*line == ' ' || *line == '\t'))
				line++, l--;
			while (l && (line[l - 1] == ' ' || line[l - 1] == '\r'))
				l--;
			if (!l)
				continue;
			bool warn = l >= 8 && !strncmp(line, "WARNING:", 8);
			if (pass == 0) {
				have_plain |= !warn;
				continue;
			}
			if (warn && have_plain)
				continue;
			if (s.len && buf_append(&s, "; ", 2) < 0)
				break;
			if (buf_append(&s, line, l) < 0)
				break;
		}
	}
	return s.data;
}

static char *describe_args(const char *const *args)
{
	struct buf s = {.max = 512, .keep_tail = false};

	/* "lvm lvcreate": the verb says enough; the caller names the
	 * volume. */
	buf_append(&s, "lvm", 3);
	if (args[0]) {
		buf_append(&s, " ", 1);
		buf_append(&s, args[0], strlen(args[0]));
	}
	return s.data;
}

int lvm_run(const char *const *args, char **out, struct vs_error **err)
{
	struct buf sout = {.max = LVM_OUT_MAX},
		   serr = {.max = LVM_ERR_MAX, .keep_tail = true};
	const char *argv[LVM_ARGS_MAX + 2];
	autofree char *lvm = NULL, *what = NULL, *msg = NULL;
	autofree char **env = NULL;
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	int status = 0, ret;
	size_t n = 0;
	pid_t pid;

	if (out)
		*out = NULL;
	while (args[n])
		if (++n > LVM_ARGS_MAX)
			return vs_error_set(err, E2BIG,
					    "lvm: more than %d arguments",
					    LVM_ARGS_MAX);
	argv[0] = "lvm";
	memcpy(argv + 1, args, (n + 1) * sizeof(*args));
	what = describe_args(args);
	lvm = lvm_binary();
	if (!lvm)
		return vs_error_set(err, ENOENT,
				    "%s: the lvm command is not installed "
				    "(Debian package lvm2)",
				    what ? what : "lvm");
	env = lvm_child_env(NULL);
	if (!env)
		return vs_error_set(err, ENOMEM, "out of memory");
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		ret = vs_error_set_errno(err, errno, "%s: pipe", what);
		goto out_close;
	}
	vs_debug("lvm", "running %s", what);
	pid = fork();
	if (pid < 0) {
		ret = vs_error_set_errno(err, errno, "%s: fork", what);
		goto out_close;
	}
	if (pid == 0)
		child(lvm, (char *const *)argv, env, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	ret = drain(po[0], pe[0], &sout, &serr);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			ret = vs_error_set_errno(err, errno, "%s: waitpid",
						 what);
			goto out_close;
		}
	if (ret < 0) {
		ret = vs_error_set_errno(err, -ret, "%s: reading its output",
					 what);
		goto out_close;
	}
	msg = lvm_stderr_summary(serr.data);
	if (WIFSIGNALED(status)) {
		ret = vs_error_set(err, EIO, "%s: killed by signal %d%s%s",
				   what, WTERMSIG(status), msg ? ": " : "",
				   msg ? msg : "");
		goto out_close;
	}
	if (WEXITSTATUS(status) == 127 && !sout.len && !serr.len) {
		ret = vs_error_set(err, ENOENT, "%s: cannot run %s", what, lvm);
		goto out_close;
	}
	if (WEXITSTATUS(status) != 0) {
		ret = vs_error_set(err, EIO, "%s failed (exit status %d)%s%s",
				   what, WEXITSTATUS(status), msg ? ": " : "",
				   msg ? msg : "");
		goto out_close;
	}
	if (sout.overflow) {
		ret = vs_error_set(err, EFBIG,
				   "%s: more than %u MiB of output; refusing "
				   "to read it",
				   what, LVM_OUT_MAX >> 20);
		goto out_close;
	}
	if (msg)
		vs_debug("lvm", "%s said: %s", what, msg);
	if (out) {
		*out = sout.data ? sout.data : strdup("");
		sout.data = NULL;
		if (!*out)
			ret = vs_error_set(err, ENOMEM, "out of memory");
	}
out_close:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	free(sout.data);
	free(serr.data);
	return ret;
}
