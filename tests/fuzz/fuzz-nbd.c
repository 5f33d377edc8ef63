/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the NBD server: every input is what one client
 * sends on one connection, from the first byte after the greeting (the
 * client flags) to its end.  The server is the real transport, started
 * once in this process on a unix socket with a 1 MiB raw disk, so its
 * option parser, request reader, slots and replies all run, in their
 * own threads, under the sanitizers.  The harness reads whatever the
 * server answers and waits for it to close the connection: a server
 * that neither answers nor hangs up within the -timeout is a bug too.
 *
 * The corpus (tests/fuzz/corpus-nbd/) holds whole sessions: structured
 * replies, a meta context, GO, and a few requests.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkback/blkback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct blkback_export ex = {.tp = &blkback_transport_nbd,
				   .id = "fuzz-nbd"};
static char sock_path[108];

static void cleanup(void)
{
	char dir[sizeof(sock_path)];

	unlink(sock_path);
	snprintf(dir, sizeof(dir), "%s", sock_path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

static void start_server(void)
{
	static char dir[] = "/tmp/vstor-fuzz-nbd.XXXXXX";
	struct vs_error *err = NULL;
	struct blkback_disk *d;
	char img[96], spec[160];
	FILE *fp;

	if (!mkdtemp(dir))
		abort();
	snprintf(img, sizeof(img), "%s/d.raw", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
	fp = fopen(img, "w");
	if (!fp || ftruncate(fileno(fp), 1 << 20) < 0)
		abort();
	fclose(fp);
	snprintf(spec, sizeof(spec), "raw:%s,xvda,w", img);
	if (blkback_disk_open(spec, 0, &d, &err) < 0 ||
	    blkback_disks_add(d, &err) < 0) {
		fprintf(stderr, "fuzz-nbd: %s\n", vs_error_msg(err));
		abort();
	}
	/* The open image needs no name; the socket goes at exit. */
	unlink(img);
	atexit(cleanup);
	ex.addr = sock_path;
	if (blkback_transport_nbd.start(&ex, &err) < 0) {
		fprintf(stderr, "fuzz-nbd: %s\n", vs_error_msg(err));
		abort();
	}
}

static int connect_server(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		abort();
	strcpy(sa.sun_path, sock_path);
	/* A unix connect completes at once or fails (backlog full). */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN)
			abort();
		poll(NULL, 0, 1);
	}
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;
	static uint8_t sink[1 << 16];
	size_t sent = 0;
	bool wr_open = true;
	int fd;

	if (!started) {
		start_server();
		started = true;
	}
	fd = connect_server();
	/* Send the input while reading the replies (a server whose replies
	 * are not read stops reading requests), then half-close and read
	 * until the server hangs up. */
	for (;;) {
		struct pollfd p = {.fd = fd,
				   .events = POLLIN | (wr_open ? POLLOUT : 0)};
		ssize_t n;

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			abort();
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, sink, sizeof(sink), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
		}
		if (wr_open && (p.revents & POLLOUT)) {
			if (sent < size) {
				n = send(fd, data + sent, size - sent,
					 MSG_NOSIGNAL);
				if (n > 0)
					sent += (size_t)n;
				else if (n < 0 && errno != EAGAIN)
					wr_open = false;
			}
			if (wr_open && sent == size) {
				shutdown(fd, SHUT_WR);
				wr_open = false;
			}
		}
	}
	close(fd);
	return 0;
}
