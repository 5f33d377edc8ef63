/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Listening unix sockets: see unix-socket.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-socket.h"

/* Whether the socket file at sa is a dead server's: nobody accepts on
 * it.  Anything else in the way (a live server, a regular file) stays. */
static bool stale_socket(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, ret;

	if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	return ret < 0 && errno == ECONNREFUSED;
}

static int bind_fresh(int fd, const struct sockaddr_un *sa, const char *what,
		      struct vs_error **errp)
{
	struct stat st;

	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return vs_error_set_errno(errp, errno, "%s: cannot bind %s",
					  what, sa->sun_path);
	if (lstat(sa->sun_path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return vs_error_set(errp, EADDRINUSE,
				    "%s: %s is in the way and is not a socket",
				    what, sa->sun_path);
	if (!stale_socket(sa))
		return vs_error_set(errp, EADDRINUSE,
				    "%s: another server listens on %s", what,
				    sa->sun_path);
	unlink(sa->sun_path);
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		return vs_error_set_errno(errp, errno, "%s: cannot bind %s",
					  what, sa->sun_path);
	return 0;
}

int blkback_unix_listen(struct blkback_unix_listener *l, const char *path,
			int backlog, int sock_flags, const char *what,
			struct vs_error **errp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret;

	*l = (struct blkback_unix_listener){.fd = -1};
	if (!*path)
		return vs_error_set(errp, EINVAL, "%s: empty socket path",
				    what);
	if (strlen(path) >= sizeof(sa.sun_path))
		return vs_error_set(errp, ENAMETOOLONG,
				    "%s: socket path %s is longer than %zu "
				    "bytes",
				    what, path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | sock_flags, 0);
	if (fd < 0)
		return vs_error_set_errno(errp, errno, "%s: socket", what);
	/* On Linux the socket file takes the socket inode's mode at bind:
	 * 0600 from the start, never a moment open to other users. */
	if (fchmod(fd, 0600) < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: socket mode", what);
		close(fd);
		return ret;
	}
	ret = bind_fresh(fd, &sa, what, errp);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (chmod(path, 0600) < 0 || listen(fd, backlog) < 0 ||
	    stat(path, &st) < 0) {
		ret = vs_error_set_errno(errp, errno, "%s: cannot listen on %s",
					 what, path);
		unlink(path);
		close(fd);
		return ret;
	}
	l->path = strdup(path);
	if (!l->path) {
		unlink(path);
		close(fd);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

void blkback_unix_unlisten(struct blkback_unix_listener *l)
{
	struct stat st;

	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (!l->path)
		return;
	/* Someone may have replaced the file meanwhile (a second server
	 * after ours was declared dead): theirs stays. */
	if (stat(l->path, &st) == 0 && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		unlink(l->path);
	free(l->path);
	l->path = NULL;
}
