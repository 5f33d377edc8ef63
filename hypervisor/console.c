/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Attach a terminal or a pipe to a domain's serial console socket. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "console.h"

/* Bytes from the user not yet taken by QEMU.  QEMU stops reading while
 * the guest's UART is full (a paused guest): input then waits here, and
 * reading stops when it is full, while the output keeps flowing. */
#define IN_BUF_SIZE 65536

/* Signals that end an attachment.  In raw mode the terminal sends no
 * signals (Ctrl-C goes to the guest), so these come from elsewhere: a
 * kill, a closed terminal. */
static const int end_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

struct attach {
	const char *path;
	int sock, in_fd, out_fd;
	bool tty, in_open;
	char in_buf[IN_BUF_SIZE];
	size_t in_len;
	/* The end of the output seen so far, so that `until` is found
	 * across reads: the last strlen(until) - 1 bytes. */
	char *tail;
	size_t tail_len, until_len;
};

static int connect_console(const char *path, int *fd_out, struct vs_error **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int fd, e;

	if (len >= sizeof(sa.sun_path))
		return vs_error_set(
			err, ENAMETOOLONG,
			"console socket %s: the path is longer than %zu bytes",
			path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return vs_error_set_errno(err, errno, "console socket %s",
					  path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return vs_error_set(err, e,
					    "console socket %s: nobody serves "
					    "it (is the domain "
					    "running?)",
					    path);
		return vs_error_set_errno(err, e, "console socket %s", path);
	}
	*fd_out = fd;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Is `until` in the output, counting what came before this chunk? */
static bool seen_until(struct attach *a, const char *until, const char *data,
		       size_t len)
{
	size_t keep = a->until_len - 1;
	bool found;

	if (!until)
		return false;
	/* Search tail + the start of data for matches across the seam,
	 * then data alone. */
	if (a->tail_len) {
		size_t n = len < keep ? len : keep;
		char seam[2 * 4096];

		if (a->tail_len + n <= sizeof(seam)) {
			memcpy(seam, a->tail, a->tail_len);
			memcpy(seam + a->tail_len, data, n);
			if (memmem(seam, a->tail_len + n, until, a->until_len))
				return true;
		}
	}
	found = memmem(data, len, until, a->until_len) != NULL;
	/* Keep the last `keep` bytes of tail + data. */
	if (len >= keep) {
		memcpy(a->tail, data + len - keep, keep);
		a->tail_len = keep;
	} else {
		size_t drop =
			a->tail_len + len > keep ? a->tail_len + len - keep : 0;

		memmove(a->tail, a->tail + drop, a->tail_len - drop);
		a->tail_len -= drop;
		memcpy(a->tail + a->tail_len, data, len);
		a->tail_len += len;
	}
	return found;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int copy_loop(struct attach *a, const struct dom_console_opts *o,
		     const sigset_t *waitmask, enum dom_console_end *end,
		     struct vs_error **err)
{
	char buf[16384];
	int64_t last = now_ms();

	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = a->sock, .events = POLLIN},
			{.fd = a->in_open && a->in_len < IN_BUF_SIZE ? a->in_fd
								     : -1,
			 .events = POLLIN},
		};
		struct timespec ts, *tsp = NULL;
		ssize_t n;
		int r;

		if (a->in_len)
			pfd[0].events |= POLLOUT;
		if (!a->in_open && !a->in_len && o->exit_on_eof) {
			*end = DOM_CONSOLE_INPUT_EOF;
			return 0;
		}
		if (o->idle_timeout_ms > 0) {
			int64_t left = last + o->idle_timeout_ms - now_ms();

			if (left <= 0) {
				*end = DOM_CONSOLE_IDLE;
				return 0;
			}
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tsp = &ts;
		}
		r = ppoll(pfd, 2, tsp, waitmask);
		if (got_signal)
			return vs_error_set(
				err, EINTR,
				"console %s: interrupted by signal %d", a->path,
				(int)got_signal);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vs_error_set_errno(err, errno,
						  "console %s: poll", a->path);
		if (r == 0)
			continue;

		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(a->sock, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0 && errno != ECONNRESET)
				return vs_error_set_errno(err, errno,
							  "console %s: read",
							  a->path);
			if (n <= 0) {
				*end = DOM_CONSOLE_PEER_CLOSED;
				return 0;
			}
			r = write_all(a->out_fd, buf, (size_t)n);
			if (r < 0)
				return vs_error_set_errno(
					err, r,
					"console %s: writing the output",
					a->path);
			last = now_ms();
			if (seen_until(a, o->until, buf, (size_t)n)) {
				*end = DOM_CONSOLE_MATCHED;
				return 0;
			}
		}
		if (a->in_len && (pfd[0].revents & POLLOUT)) {
			n = send(a->sock, a->in_buf, a->in_len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				if (errno == EPIPE || errno == ECONNRESET) {
					*end = DOM_CONSOLE_PEER_CLOSED;
					return 0;
				}
				return vs_error_set_errno(err, errno,
							  "console %s: write",
							  a->path);
			}
			if (n > 0) {
				memmove(a->in_buf, a->in_buf + n,
					a->in_len - (size_t)n);
				a->in_len -= (size_t)n;
				last = now_ms();
			}
		}
		if (pfd[1].fd >= 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			n = read(a->in_fd, a->in_buf + a->in_len,
				 IN_BUF_SIZE - a->in_len);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0 && errno != EIO)
				return vs_error_set_errno(
					err, errno,
					"console %s: reading the input",
					a->path);
			/* EIO: the terminal went away (a hangup). */
			if (n <= 0) {
				a->in_open = false;
				continue;
			}
			last = now_ms();
			if (a->tty) {
				char *esc =
					memchr(a->in_buf + a->in_len,
					       DOM_CONSOLE_ESCAPE, (size_t)n);

				if (esc) {
					/* What was typed before the escape still goes. */
					a->in_len = (size_t)(esc - a->in_buf);
					send(a->sock, a->in_buf, a->in_len,
					     MSG_NOSIGNAL | MSG_DONTWAIT);
					*end = DOM_CONSOLE_DETACHED;
					return 0;
				}
			}
			a->in_len += (size_t)n;
		}
	}
}

int dom_console_attach_opts(const char *sock_path, int in_fd, int out_fd,
			    const struct dom_console_opts *opts,
			    enum dom_console_end *end, struct vs_error **err)
{
	static const struct dom_console_opts defaults;
	const struct dom_console_opts *o = opts ? opts : &defaults;
	struct sigaction sa, old_sa[VS_ARRAY_SIZE(end_signals)], ign, old_pipe;
	sigset_t block, old_mask;
	struct termios saved, raw;
	enum dom_console_end why = DOM_CONSOLE_PEER_CLOSED;
	struct attach *a;
	int r;

	if (o->until && !*o->until)
		return vs_error_set(err, EINVAL,
				    "console: an empty text to wait for");
	a = calloc(1, sizeof(*a));
	if (!a)
		return vs_error_set(err, ENOMEM, "console: out of memory");
	a->path = sock_path;
	a->in_fd = in_fd;
	a->out_fd = out_fd;
	a->in_open = in_fd >= 0;
	if (o->until) {
		a->until_len = strlen(o->until);
		if (a->until_len > 4096) {
			free(a);
			return vs_error_set(err, EINVAL,
					    "console: the text to wait for is "
					    "longer than 4096 bytes");
		}
		a->tail = malloc(a->until_len);
		if (!a->tail) {
			free(a);
			return vs_error_set(err, ENOMEM,
					    "console: out of memory");
		}
	}
	r = connect_console(sock_path, &a->sock, err);
	if (r < 0) {
		free(a->tail);
		free(a);
		return r;
	}

	/* The signals are blocked except while waiting in ppoll, so one that
	 * comes is seen there and nowhere else. */
	got_signal = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < VS_ARRAY_SIZE(end_signals); i++) {
		sigaction(end_signals[i], &sa, &old_sa[i]);
		sigaddset(&block, end_signals[i]);
	}
	/* A reader that went away (`vstor console | head`) is an error to
	 * return, with the terminal restored, not a silent death. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old_pipe);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);
	sigset_t waitmask = old_mask;
	for (size_t i = 0; i < VS_ARRAY_SIZE(end_signals); i++)
		sigdelset(&waitmask, end_signals[i]);

	if (a->in_open && isatty(in_fd) && tcgetattr(in_fd, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		if (tcsetattr(in_fd, TCSADRAIN, &raw) == 0)
			a->tty = true;
	}

	r = copy_loop(a, o, &waitmask, &why, err);

	if (a->tty)
		tcsetattr(in_fd, TCSADRAIN, &saved);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	for (size_t i = 0; i < VS_ARRAY_SIZE(end_signals); i++)
		sigaction(end_signals[i], &old_sa[i], NULL);
	close(a->sock);
	free(a->tail);
	free(a);
	if (r == 0 && end)
		*end = why;
	return r;
}

int dom_console_attach(const char *sock_path, int in_fd, int out_fd,
		       struct vs_error **err)
{
	return dom_console_attach_opts(sock_path, in_fd, out_fd, NULL, NULL,
				       err);
}
