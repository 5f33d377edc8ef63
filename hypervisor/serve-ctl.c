/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A client of `vstor serve`'s control socket (docs/vstor-serve.pod): one
 * JSON request per line, one reply per line.  The server is ours but its
 * replies are still checked for shape before use.
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "domain-priv.h"

/* The server closes a connection whose line passes 64 KiB; its replies
 * are far shorter. */
#define REPLY_MAX (64u << 10)
/* remove-disk waits up to 10 s for connections by default. */
#define REPLY_TIMEOUT_MS 30000

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one line (without its newline) into buf. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	int64_t end = dom_now_ms() + timeout_ms;
	size_t len = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = end - dom_now_ms();
		ssize_t n;
		char *nl;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!p.revents)
			continue;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		len += (size_t)n;
		buf[len] = '\0';
		nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = '\0';
			return 0;
		}
		if (len == cap - 1)
			return -EMSGSIZE;
	}
}

int dom_serve_request(const char *sock, struct json_object *req,
		      struct json_object **reply, struct vs_error **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	autoclose int fd = -1;
	autofree char *buf = NULL;
	struct json_object *rep = NULL, *ok, *msg;
	const char *text;
	const char *cmd = "?";
	struct json_object *cmdo;
	int r;

	if (json_object_object_get_ex(req, "cmd", &cmdo))
		cmd = json_object_get_string(cmdo);
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		r = vs_error_set(err, ENAMETOOLONG,
				 "serve control socket '%s': path too long",
				 sock);
		goto out;
	}
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = vs_error_set_errno(err, errno, "serve control socket '%s'",
				       sock);
		goto out;
	}
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if ((r = send_all(fd, text, strlen(text))) < 0 ||
	    (r = send_all(fd, "\n", 1)) < 0) {
		r = vs_error_set_errno(err, r, "serve control socket '%s'",
				       sock);
		goto out;
	}
	buf = malloc(REPLY_MAX);
	if (!buf) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	r = read_line(fd, buf, REPLY_MAX, REPLY_TIMEOUT_MS);
	if (r < 0) {
		r = vs_error_set_errno(
			err, r, "serve control socket '%s': no reply to %s",
			sock, cmd);
		goto out;
	}
	rep = json_tokener_parse(buf);
	if (!rep || !json_object_is_type(rep, json_type_object) ||
	    !json_object_object_get_ex(rep, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		r = vs_error_set(
			err, EPROTO,
			"serve control socket '%s': malformed reply to %s",
			sock, cmd);
		goto out;
	}
	if (!json_object_get_boolean(ok)) {
		r = vs_error_set(err, EIO, "vstor serve: %s: %s", cmd,
				 json_object_object_get_ex(rep, "error", &msg)
					 ? json_object_get_string(msg)
					 : "failed");
		goto out;
	}
	if (reply)
		*reply = vs_steal(&rep);
	r = 0;
out:
	json_object_put(rep);
	json_object_put(req);
	return r;
}
