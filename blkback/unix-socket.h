/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Listening unix sockets of the server (NBD, vhost-user, control): one
 * way to make them, so that every one is mode 0600 from its bind on,
 * replaces the file of a server that died but never a live server's
 * socket or another file, and is removed at the end only if the file is
 * still the one it made.
 */
#ifndef VS_BLKBACK_UNIX_SOCKET_H
#define VS_BLKBACK_UNIX_SOCKET_H

#include <sys/types.h>

#include "../common/error.h"

struct blkback_unix_listener {
	int fd;	    /* listening, -1 when closed */
	char *path; /* the socket file made */
	dev_t dev;  /* its identity, to remove only our own */
	ino_t ino;
};

/*
 * Listen on `path`.  `sock_flags` are added to SOCK_STREAM |
 * SOCK_CLOEXEC (SOCK_NONBLOCK...).  Errors start with `what` ("nbd export
 * unix:/run/x.sock") and name the path.  A file in the way that is not
 * a dead server's socket gives -EADDRINUSE.
 */
int blkback_unix_listen(struct blkback_unix_listener *l, const char *path,
			int backlog, int sock_flags, const char *what,
			struct vs_error **errp);

/* Close the socket and remove its file if it is still ours.  A listener
 * that never listened, or was closed already, is left alone. */
void blkback_unix_unlisten(struct blkback_unix_listener *l);

#endif
