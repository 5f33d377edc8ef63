/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One `lvm` process for several commands: lvm's own shell, fed one
 * command line at a time through a pipe, as lvmdbusd drives it.  Every
 * lvm process costs about a second on a busy or emulated host before it
 * does anything (exec, libraries, configuration); a backup that runs
 * lvcreate and, minutes later, lvremove pays that once, and pays it
 * while it reads its previous manifest, since the shell is started
 * first.
 *
 * How each command's outcome is learnt: LVM2 ships a command profile
 * for lvmdbusd (/etc/lvm/profile/lvmdbusd.profile, in the lvm2 package
 * since 2.02.16x) that turns on the command log report in JSON; with
 * LVM_REPORT_FD naming a descriptor, the shell writes one JSON object
 * there after each command, whose "log" array holds the command's
 * status ("success" or "failure", log_context "shell").  After a
 * failure the shell's `lastlog` command gives that command's error
 * messages.  lvm's stdout and stderr are drained and, for errors, kept.
 *
 * The shell splits a line at blanks, takes quotes and starts a comment
 * at '#' (lvm_split in LVM2): only arguments made of characters that
 * mean nothing to it are sent (vstor's are checked names and numbers).
 * A shell that cannot start, or whose first answer (to a `version` sent
 * at start) does not come as described, is not used: the callers run
 * `lvm` once per command instead (lvm_run_in).  A shell that dies in a
 * command leaves that command's outcome unknown: an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "lvm-priv.h"

/* The profile that makes the shell report each command's status. */
#define PROFILE	     "lvmdbusd"
#define PROFILE_PATH "/etc/lvm/profile/" PROFILE ".profile"
#define REPORT_FD    3
/* One reply: a command's log, or lastlog's; far less in practice. */
#define REPLY_MAX (4u << 20)
#define ERR_MAX	  (16u << 10)
/* The first answer proves the protocol; a shell that gives none in
 * this long (an edited profile that reports nothing) is not used. */
#define PROBE_TIMEOUT_MS 120000

struct lvm_shell {
	pid_t pid;
	int in, out, err, rep; /* ours: its stdin, stdout, stderr, report */
	bool probed, broken;
	bool used;     /* a command of the caller's was sent */
	char *pending; /* report bytes past the last reply */
	size_t npending;
	char errtail[ERR_MAX + 1]; /* its stderr since the last command */
	size_t nerr;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void child(const char *lvm, char **env, int in, int out, int err,
		  int rep)
{
	char *const argv[] = {"lvm", NULL};

	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	/* dup2 onto itself would keep close-on-exec. */
	if (rep == REPORT_FD ? fcntl(rep, F_SETFD, 0) < 0
			     : dup2(rep, REPORT_FD) < 0)
		_exit(127);
	/* No descriptor of ours (an open disk, a socket) reaches lvm. */
	if (close_range(REPORT_FD + 1, ~0u, 0) < 0)
		for (int fd = REPORT_FD + 1; fd < 4096; fd++)
			close(fd);
	signal(SIGPIPE, SIG_DFL);
	execve(lvm, argv, env);
	_exit(127);
}

static int send_line(struct lvm_shell *sh, const char *line)
{
	size_t len = strlen(line), done = 0;

	while (done < len) {
		/* A socket: no SIGPIPE when lvm is gone. */
		ssize_t n = send(sh->in, line + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

struct lvm_shell *lvm_shell_start(void)
{
	/* Its history would go to $HOME/.lvm_history after every
	 * command: /dev/null is no folder, so it goes nowhere. */
	static const char *const extra[] = {"LVM_COMMAND_PROFILE=" PROFILE,
					    "LVM_REPORT_FD=3", "HOME=/dev/null",
					    NULL};
	autofree char *lvm = NULL;
	autofree char **env = NULL;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1},
	    rep[2] = {-1, -1};
	struct lvm_shell *sh = NULL;
	pid_t pid;

	if (access(PROFILE_PATH, R_OK) < 0)
		return NULL;
	lvm = lvm_binary();
	env = lvm_child_env(extra);
	sh = calloc(1, sizeof(*sh));
	if (!lvm || !env || !sh)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(rep, O_CLOEXEC) < 0)
		goto fail;
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0)
		child(lvm, env, in[1], out[1], err[1], rep[1]);
	close_fd(&in[1]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&rep[1]);
	sh->pid = pid;
	sh->in = in[0];
	sh->out = out[0];
	sh->err = err[0];
	sh->rep = rep[0];
	vs_debug("lvm", "started the lvm shell (pid %d)", (int)pid);
	/* Answered while the caller does other work. */
	if (send_line(sh, "version\n") < 0)
		sh->broken = true;
	return sh;
fail:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&rep[i]);
	}
	free(sh);
	return NULL;
}

void lvm_shell_end(struct lvm_shell *sh)
{
	int status;

	if (!sh)
		return;
	/* EOF on its input ends it; a broken one may not listen, and one
	 * that ran nothing but `version` (the backup failed before its
	 * snapshot) has nothing to finish: no need to wait for its
	 * startup. */
	close_fd(&sh->in);
	if (sh->broken || !sh->used)
		kill(sh->pid, SIGKILL);
	/* Its last words (an empty log, a newline) until it exits. */
	while (sh->rep >= 0 || sh->out >= 0 || sh->err >= 0) {
		struct pollfd pf[3] = {{.fd = sh->rep, .events = POLLIN},
				       {.fd = sh->out, .events = POLLIN},
				       {.fd = sh->err, .events = POLLIN}};
		int *fds[3] = {&sh->rep, &sh->out, &sh->err};

		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 3; i++) {
			char buf[4096];
			ssize_t n;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			n = read(pf[i].fd, buf, sizeof(buf));
			if (n == 0 || (n < 0 && errno != EINTR))
				close_fd(fds[i]);
		}
	}
	close_fd(&sh->rep);
	close_fd(&sh->out);
	close_fd(&sh->err);
	while (waitpid(sh->pid, &status, 0) < 0 && errno == EINTR)
		;
	vs_debug("lvm", "the lvm shell ended");
	free(sh->pending);
	free(sh);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keep the newest ERR_MAX bytes of its stderr. */
static void keep_err(struct lvm_shell *sh, const char *p, size_t n)
{
	if (n >= ERR_MAX) {
		p += n - ERR_MAX;
		n = ERR_MAX;
		sh->nerr = 0;
	} else if (sh->nerr + n > ERR_MAX) {
		size_t drop = sh->nerr + n - ERR_MAX;

		memmove(sh->errtail, sh->errtail + drop, sh->nerr - drop);
		sh->nerr -= drop;
	}
	memcpy(sh->errtail + sh->nerr, p, n);
	sh->nerr += n;
	sh->errtail[sh->nerr] = '\0';
}

/* Feed report bytes to the tokener: 1 and *obj when a whole object was
 * read (the bytes after it kept for the next reply), 0 when more are
 * needed, -EPROTO when it is not JSON. */
static int feed(struct lvm_shell *sh, struct json_tokener *tok, const char *p,
		size_t n, size_t *total, struct json_object **obj)
{
	enum json_tokener_error e;
	size_t used;

	if (!n)
		return 0;
	*total += n;
	if (*total > REPLY_MAX || n > INT32_MAX)
		return -EPROTO;
	*obj = json_tokener_parse_ex(tok, p, (int)n);
	e = json_tokener_get_error(tok);
	if (e == json_tokener_continue)
		return 0;
	if (!*obj || e != json_tokener_success)
		return -EPROTO;
	used = json_tokener_get_parse_end(tok);
	free(sh->pending);
	sh->pending = NULL;
	sh->npending = 0;
	if (used < n) {
		sh->pending = malloc(n - used);
		if (!sh->pending) {
			json_object_put(*obj);
			*obj = NULL;
			return -ENOMEM;
		}
		memcpy(sh->pending, p + used, n - used);
		sh->npending = n - used;
	}
	return 1;
}

/* The next JSON object on the report descriptor, draining stdout and
 * stderr meanwhile.  -EPIPE when the shell ended first, -ETIMEDOUT
 * after timeout_ms (negative: none). */
static int read_reply(struct lvm_shell *sh, int timeout_ms,
		      struct json_object **obj)
{
	struct json_tokener *tok = json_tokener_new();
	int64_t until = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	size_t total = 0;
	int ret = 0;

	*obj = NULL;
	if (!tok)
		return -ENOMEM;
	if (sh->npending) {
		autofree char *p = sh->pending;
		size_t n = sh->npending;

		sh->pending = NULL;
		sh->npending = 0;
		ret = feed(sh, tok, p, n, &total, obj);
	}
	while (ret == 0) {
		struct pollfd pf[3] = {{.fd = sh->rep, .events = POLLIN},
				       {.fd = sh->out, .events = POLLIN},
				       {.fd = sh->err, .events = POLLIN}};
		int wait = -1, r;

		if (until >= 0) {
			int64_t left = until - now_ms();

			if (left <= 0) {
				ret = -ETIMEDOUT;
				break;
			}
			wait = (int)VS_MIN(left, (int64_t)INT32_MAX);
		}
		r = poll(pf, 3, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			break;
		}
		for (int i = 2; i >= 0 && ret == 0; i--) {
			char buf[65536];
			ssize_t n;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			n = read(pf[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* Its report closed: the shell is gone. */
				if (i == 0)
					ret = -EPIPE;
				close_fd(i == 0	  ? &sh->rep
					 : i == 1 ? &sh->out
						  : &sh->err);
				continue;
			}
			if (i == 0)
				ret = feed(sh, tok, buf, (size_t)n, &total,
					   obj);
			else if (i == 2)
				keep_err(sh, buf, (size_t)n);
		}
	}
	json_tokener_free(tok);
	return ret < 0 ? ret : 0;
}

static const char *field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/*
 * The outcome `verb` reports in a reply: 1 success, 0 failure, -EPROTO
 * when the reply holds no status of that command (or two).
 */
static int reply_status(struct json_object *reply, const char *verb)
{
	struct json_object *log;
	int found = -EPROTO;
	size_t n;

	if (!json_object_is_type(reply, json_type_object) ||
	    !json_object_object_get_ex(reply, "log", &log) ||
	    !json_object_is_type(log, json_type_array))
		return -EPROTO;
	n = json_object_array_length(log);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(log, i);
		const char *msg = field(e, "log_message");

		if (!json_object_is_type(e, json_type_object) ||
		    !is(field(e, "log_type"), "status") ||
		    !is(field(e, "log_context"), "shell") ||
		    !is(field(e, "log_object_type"), "cmd"))
			continue;
		if (found != -EPROTO || !is(field(e, "log_object_name"), verb))
			return -EPROTO;
		if (is(msg, "success"))
			found = 1;
		else if (is(msg, "failure"))
			found = 0;
		else
			return -EPROTO;
	}
	return found;
}

/* The error messages of a lastlog reply, joined with "; " (malloc'd;
 * NULL when there are none). */
static char *reply_errors(struct json_object *reply)
{
	struct json_object *log;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	bool any = false;

	if (!json_object_is_type(reply, json_type_object) ||
	    !json_object_object_get_ex(reply, "log", &log) ||
	    !json_object_is_type(log, json_type_array))
		return NULL;
	mem = open_memstream(&text, &len);
	if (!mem)
		return NULL;
	for (size_t i = 0; i < json_object_array_length(log); i++) {
		struct json_object *e = json_object_array_get_idx(log, i);
		const char *msg = field(e, "log_message");

		if (!is(field(e, "log_type"), "error") || !msg || !*msg)
			continue;
		fprintf(mem, "%s%s", any ? "; " : "", msg);
		any = true;
	}
	if (fclose(mem) || !any) {
		free(text);
		return NULL;
	}
	return text;
}

/* The `version` sent at start answered as the protocol says? */
static int probe(struct lvm_shell *sh)
{
	struct json_object *reply = NULL;
	int ret;

	sh->probed = true;
	if (sh->broken)
		return -ENOTSUP;
	ret = read_reply(sh, PROBE_TIMEOUT_MS, &reply);
	if (ret == 0 && reply_status(reply, "version") != 1)
		ret = -EPROTO;
	json_object_put(reply);
	if (ret < 0) {
		vs_debug("lvm",
			 "the lvm shell did not answer as expected "
			 "(%s): one lvm process per command instead",
			 strerror(-ret));
		sh->broken = true;
		return -ENOTSUP;
	}
	return 0;
}

/* Characters the shell's line splitting passes through untouched. */
static bool plain_arg(const char *a)
{
	if (!*a)
		return false;
	for (const char *p = a; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("+-_./=:,", *p)))
			return false;
	return true;
}

static char *command_line(const char *const *args)
{
	char *line = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&line, &len);

	if (!mem)
		return NULL;
	for (size_t i = 0; args[i]; i++)
		fprintf(mem, "%s%s", i ? " " : "", args[i]);
	fputc('\n', mem);
	if (fclose(mem)) {
		free(line);
		return NULL;
	}
	return line;
}

/* The failed command's messages: lastlog's errors, else its stderr. */
static int failed(struct lvm_shell *sh, const char *verb, struct vs_error **err)
{
	struct json_object *reply = NULL;
	autofree char *msg = NULL;

	if (send_line(sh, "lastlog\n") == 0 && read_reply(sh, -1, &reply) == 0)
		msg = reply_errors(reply);
	json_object_put(reply);
	if (!msg)
		msg = lvm_stderr_summary(sh->errtail);
	return vs_error_set(err, EIO, "lvm %s failed%s%s", verb,
			    msg ? ": " : "", msg ? msg : "");
}

int lvm_shell_run(struct lvm_shell *sh, const char *const *args,
		  struct vs_error **err)
{
	struct json_object *reply = NULL;
	autofree char *line = NULL;
	int ret;

	if (!sh || sh->broken || (!sh->probed && probe(sh) < 0))
		return -ENOTSUP;
	for (size_t i = 0; args[i]; i++)
		if (!plain_arg(args[i]))
			return -ENOTSUP;
	if (!args[0] || !(line = command_line(args)))
		return vs_error_set(err, ENOMEM, "out of memory");
	sh->nerr = 0;
	sh->errtail[0] = '\0';
	vs_debug("lvm", "running lvm %s (in the lvm shell)", args[0]);
	/* A line this short goes whole into the socket, or not at all
	 * when lvm is gone (killed by a terminal's SIGINT while it
	 * waited): then nothing ran, and a process of its own runs it. */
	sh->used = true;
	if (send_line(sh, line) < 0) {
		sh->broken = true;
		return -ENOTSUP;
	}
	ret = read_reply(sh, -1, &reply);
	if (ret == 0)
		ret = reply_status(reply, args[0]);
	json_object_put(reply);
	if (ret == 1)
		return 0;
	if (ret == 0)
		return failed(sh, args[0], err);
	sh->broken = true;
	return vs_error_set(err, EIO,
			    "lvm %s: the lvm shell %s; the command's outcome "
			    "is unknown",
			    args[0],
			    ret == -EPIPE    ? "ended"
			    : ret == -EPROTO ? "answered something else"
					     : strerror(-ret));
}

int lvm_run_in(struct lvm_shell *sh, const char *const *args,
	       struct vs_error **err)
{
	int ret = lvm_shell_run(sh, args, err);

	if (ret == -ENOTSUP)
		return lvm_run(args, NULL, err);
	return ret;
}
