/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: JSON lines on a unix socket (mode 0600), one
 * request per line and one reply per line, for the toolstack's hot-plug
 * and for statistics.
 *
 *   {"cmd":"add-disk","spec":"qcow2:/a.qcow2,xvdb,w"}
 *   {"ok":true,"name":"xvdb"}
 *
 * A listener thread accepts clients; each client has a thread, so that a
 * slow command (remove-disk drains a disk) holds up only its own client.
 * What a client sends is untrusted: a line is bounded, malformed JSON or
 * a bad field gets an error reply and the connection stays usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../vbd/diskspec.h"
#include "server.h"
#include "unix-socket.h"

/* A longer request closes its connection. */
#define CONTROL_MAX_LINE    (64u << 10)
#define CONTROL_MAX_CLIENTS 16
/* Nesting deeper than any request needs is refused by the parser. */
#define CONTROL_MAX_DEPTH 8
/* remove-disk waits this long for connections to let go by default. */
#define CONTROL_REMOVE_WAIT_MS	   10000u
#define CONTROL_REMOVE_WAIT_MAX_MS 600000u

struct client {
	int fd;
	pthread_t thread;
	bool finished; /* under ctl.lock: the thread may be joined */
	struct client *next;
};

static struct {
	struct blkback_unix_listener listener;
	int stop_fd; /* eventfd: stop listening and serving */
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	struct client *clients;
} ctl = {
	.listener = {.fd = -1},
	.stop_fd = -1,
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* Requests. */

/*
 * The string field `key` of `req` into *out (NULL when absent and not
 * `required`).
 */
static int get_string(struct json_object *req, const char *key, bool required,
		      const char **out, struct vs_error **errp)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(req, key, &v) || !v) {
		if (required)
			return vs_error_set(errp, EINVAL, "missing field '%s'",
					    key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return vs_error_set(errp, EINVAL, "field '%s' is not a string",
				    key);
	*out = json_object_get_string(v);
	return 0;
}

/* Every field of `req` is one of `known` (NULL-terminated): a typo is an
 * error, not a silent default. */
static int check_fields(struct json_object *req, const char *const *known,
			struct vs_error **errp)
{
	json_object_object_foreach(req, key, val)
	{
		bool found = false;

		(void)val;
		for (int i = 0; known[i] && !found; i++)
			found = !strcmp(known[i], key);
		if (!found)
			return vs_error_set(errp, EINVAL, "unknown field '%s'",
					    key);
	}
	return 0;
}

static int cmd_add_disk(struct json_object *req, struct json_object *reply,
			struct vs_error **errp)
{
	static const char *const fields[] = {"cmd", "spec", NULL};
	struct vbd_spec *spec;
	const char *text;
	int ret;

	if ((ret = check_fields(req, fields, errp)) < 0 ||
	    (ret = get_string(req, "spec", true, &text, errp)) < 0)
		return ret;
	ret = blkback_server_add_disk(text, errp);
	if (ret < 0)
		return ret;
	/* The spec parsed once already; this only recovers its name. */
	if (vbd_spec_parse(text, &spec, NULL) == 0) {
		json_object_object_add(reply, "name",
				       json_object_new_string(spec->vdev));
		vbd_spec_free(spec);
	}
	return 0;
}

static int cmd_remove_disk(struct json_object *req, struct json_object *reply,
			   struct vs_error **errp)
{
	static const char *const fields[] = {"cmd", "name", "wait-ms", NULL};
	unsigned wait_ms = CONTROL_REMOVE_WAIT_MS;
	struct json_object *v;
	const char *name;
	int ret;

	if ((ret = check_fields(req, fields, errp)) < 0 ||
	    (ret = get_string(req, "name", true, &name, errp)) < 0)
		return ret;
	if (json_object_object_get_ex(req, "wait-ms", &v)) {
		int64_t ms = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || ms < 0 ||
		    ms > CONTROL_REMOVE_WAIT_MAX_MS)
			return vs_error_set(errp, EINVAL,
					    "field 'wait-ms' must be an "
					    "integer from 0 to %u",
					    CONTROL_REMOVE_WAIT_MAX_MS);
		wait_ms = (unsigned)ms;
	}
	return blkback_server_remove_disk(name, wait_ms, errp);
}

static int cmd_add_export(struct json_object *req, struct json_object *reply,
			  struct vs_error **errp)
{
	static const char *const fields[] = {"cmd",  "type", "disk",
					     "addr", "opts", NULL};
	const char *type, *disk, *addr, *opts, *id;
	int ret;

	if ((ret = check_fields(req, fields, errp)) < 0 ||
	    (ret = get_string(req, "type", true, &type, errp)) < 0 ||
	    (ret = get_string(req, "disk", false, &disk, errp)) < 0 ||
	    (ret = get_string(req, "addr", true, &addr, errp)) < 0 ||
	    (ret = get_string(req, "opts", false, &opts, errp)) < 0)
		return ret;
	ret = blkback_server_add_export(type, disk, addr, opts, &id, errp);
	if (ret == 0)
		json_object_object_add(reply, "id", json_object_new_string(id));
	return ret;
}

static int cmd_remove_export(struct json_object *req, struct json_object *reply,
			     struct vs_error **errp)
{
	static const char *const fields[] = {"cmd", "id", NULL};
	const char *id;
	int ret;

	if ((ret = check_fields(req, fields, errp)) < 0 ||
	    (ret = get_string(req, "id", true, &id, errp)) < 0)
		return ret;
	return blkback_server_remove_export(id, errp);
}

static int cmd_list(struct json_object *req, struct json_object *reply,
		    struct vs_error **errp)
{
	static const char *const fields[] = {"cmd", NULL};
	int ret = check_fields(req, fields, errp);

	if (ret == 0)
		blkback_server_list(reply);
	return ret;
}

static int cmd_stats(struct json_object *req, struct json_object *reply,
		     struct vs_error **errp)
{
	static const char *const fields[] = {"cmd", "name", NULL};
	const char *name;
	int ret;

	if ((ret = check_fields(req, fields, errp)) < 0 ||
	    (ret = get_string(req, "name", true, &name, errp)) < 0)
		return ret;
	return blkback_server_stats(name, reply, errp);
}

static int cmd_quit(struct json_object *req, struct json_object *reply,
		    struct vs_error **errp)
{
	static const char *const fields[] = {"cmd", NULL};

	/* The main loop shuts down once this reply is on its way: it stops
	 * the control socket first, which waits for this thread. */
	return check_fields(req, fields, errp);
}

static const struct command {
	const char *name;
	int (*fn)(struct json_object *req, struct json_object *reply,
		  struct vs_error **errp);
} commands[] = {
	{"add-disk", cmd_add_disk},
	{"remove-disk", cmd_remove_disk},
	{"add-export", cmd_add_export},
	{"remove-export", cmd_remove_export},
	{"list", cmd_list},
	{"stats", cmd_stats},
	{"quit", cmd_quit},
};

int blkback_control_parse(const char *line, size_t len,
			  struct json_object **out, struct vs_error **errp)
{
	struct json_tokener *tok = json_tokener_new_ex(CONTROL_MAX_DEPTH);
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end, json_end;

	if (!tok)
		return vs_error_set(errp, ENOMEM, "out of memory");
	/* Strings are echoed in replies (in error messages), which must stay
	 * valid JSON: refuse what is not UTF-8.  Trailing text is checked
	 * below, with a clearer message. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					    JSON_TOKENER_ALLOW_TRAILING_CHARS |
					    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return vs_error_set(errp, EINVAL, "malformed JSON: %s",
				    jerr == json_tokener_continue
					    ? "unexpected end of line"
					    : json_tokener_error_desc(jerr));
	}
	while (end < len && strchr(" \t\r", line[end]) && line[end])
		end++;
	if (end != len) {
		json_object_put(obj);
		return vs_error_set(errp, EINVAL,
				    "malformed JSON: text after the object "
				    "at byte %zu",
				    json_end);
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return vs_error_set(errp, EINVAL, "a request is a JSON object");
	}
	*out = obj;
	return 0;
}

/* One request line (NUL-terminated, no newline) to one reply object. */
static struct json_object *handle(const char *line, size_t len, bool *quit)
{
	struct json_object *reply = json_object_new_object();
	struct json_object *req = NULL;
	struct vs_error *err = NULL;
	const struct command *cmd = NULL;
	const char *name;
	int ret;

	/* "ok" first, so that a reader sees the outcome at a glance. */
	json_object_object_add(reply, "ok", json_object_new_boolean(true));
	ret = blkback_control_parse(line, len, &req, &err);
	if (ret == 0)
		ret = get_string(req, "cmd", true, &name, &err);
	if (ret == 0) {
		for (size_t i = 0; i < VS_ARRAY_SIZE(commands) && !cmd; i++)
			if (!strcmp(commands[i].name, name))
				cmd = &commands[i];
		ret = cmd ? cmd->fn(req, reply, &err)
			  : vs_error_set(&err, EINVAL, "unknown command '%s'",
					 name);
	}
	if (ret < 0) {
		json_object_put(reply);
		reply = json_object_new_object();
		json_object_object_add(reply, "ok",
				       json_object_new_boolean(false));
		json_object_object_add(
			reply, "error",
			json_object_new_string(err ? vs_error_msg(err)
						   : strerror(-ret)));
		vs_error_free(err);
	} else {
		*quit = cmd && cmd->fn == cmd_quit;
	}
	json_object_put(req);
	return reply;
}

/* Clients. */

/* Write all of buf, giving up when the server stops (a client that does
 * not read must not hold up shutdown). */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		struct pollfd pfd[2] = {
			{.fd = fd, .events = POLLOUT},
			{.fd = ctl.stop_fd, .events = POLLIN},
		};
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (pfd[1].revents)
			return -ESHUTDOWN;
	}
	return 0;
}

static int send_reply(int fd, struct json_object *reply)
{
	const char *s = json_object_to_json_string_ext(
		reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(s);
	char *line = malloc(len + 1);
	int ret;

	if (!line)
		return -ENOMEM;
	memcpy(line, s, len);
	line[len] = '\n';
	ret = send_all(fd, line, len + 1);
	free(line);
	return ret;
}

/* Answer every complete line in buf[0, *fill); keep the rest.  Returns
 * false when the connection should close. */
static bool serve_lines(int fd, char *buf, size_t *fill)
{
	size_t start = 0;
	char *nl;

	while ((nl = memchr(buf + start, '\n', *fill - start))) {
		size_t len = (size_t)(nl - (buf + start));
		struct json_object *reply;
		bool quit = false;
		int ret;

		*nl = '\0';
		if (len && buf[start + len - 1] == '\r')
			buf[start + --len] = '\0';
		if (len == strspn(buf + start, " \t")) {
			start = (size_t)(nl - buf) + 1;
			continue; /* blank lines ask nothing */
		}
		reply = handle(buf + start, len, &quit);
		ret = send_reply(fd, reply);
		json_object_put(reply);
		start = (size_t)(nl - buf) + 1;
		if (quit)
			blkback_server_quit();
		if (ret < 0)
			return false;
	}
	memmove(buf, buf + start, *fill - start);
	*fill -= start;
	return true;
}

static void *client_thread(void *arg)
{
	struct client *c = arg;
	/* One more byte than a line may have, for its newline. */
	char *buf = malloc(CONTROL_MAX_LINE + 1);
	size_t fill = 0;

	while (buf) {
		struct pollfd pfd[2] = {
			{.fd = c->fd, .events = POLLIN},
			{.fd = ctl.stop_fd, .events = POLLIN},
		};
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		n = recv(c->fd, buf + fill, CONTROL_MAX_LINE + 1 - fill,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		fill += (size_t)n;
		if (!serve_lines(c->fd, buf, &fill))
			break;
		if (fill > CONTROL_MAX_LINE) {
			struct json_object *reply = json_object_new_object();
			char msg[80];

			snprintf(msg, sizeof(msg),
				 "request longer than %u bytes: closing",
				 CONTROL_MAX_LINE);
			json_object_object_add(reply, "ok",
					       json_object_new_boolean(false));
			json_object_object_add(reply, "error",
					       json_object_new_string(msg));
			send_reply(c->fd, reply);
			json_object_put(reply);
			break;
		}
	}
	free(buf);
	close(c->fd);
	c->fd = -1;
	pthread_mutex_lock(&ctl.lock);
	c->finished = true;
	pthread_mutex_unlock(&ctl.lock);
	return NULL;
}

/* Join the clients that have finished (all of them when `all`). */
static unsigned reap_clients(bool all)
{
	struct client **p = &ctl.clients, *c;
	unsigned left = 0;

	for (;;) {
		bool finished;

		pthread_mutex_lock(&ctl.lock);
		c = *p;
		finished = c && c->finished;
		pthread_mutex_unlock(&ctl.lock);
		if (!c)
			break;
		if (finished || all) {
			pthread_join(c->thread, NULL);
			*p = c->next;
			free(c);
		} else {
			p = &c->next;
			left++;
		}
	}
	return left;
}

static void accept_client(void)
{
	int fd = accept4(ctl.listener.fd, NULL, NULL, SOCK_CLOEXEC);
	struct client *c;

	if (fd < 0) {
		/* Out of descriptors: the listening socket stays readable,
		 * so pause rather than spin (the stop eventfd still ends
		 * the pause). */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
		    errno == ENOBUFS) {
			struct pollfd pfd = {.fd = ctl.stop_fd,
					     .events = POLLIN};

			vs_log(VS_LOG_ERROR, "blkback", "control: accept: %s",
			       strerror(errno));
			poll(&pfd, 1, 200);
		}
		return;
	}
	if (reap_clients(false) >= CONTROL_MAX_CLIENTS) {
		static const char busy[] =
			"{\"ok\":false,\"error\":\"too many control "
			"clients\"}\n";

		if (send(fd, busy, sizeof(busy) - 1,
			 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			vs_debug("blkback", "control: %s", strerror(errno));
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	if (pthread_create(&c->thread, NULL, client_thread, c)) {
		close(fd);
		free(c);
		return;
	}
	/* Only this thread touches the list's links. */
	c->next = ctl.clients;
	ctl.clients = c;
}

static void *listen_thread(void *arg)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = ctl.listener.fd, .events = POLLIN},
			{.fd = ctl.stop_fd, .events = POLLIN},
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vs_log(VS_LOG_ERROR, "blkback", "control: poll: %s",
			       strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents)
			accept_client();
	}
	reap_clients(true);
	return NULL;
}

int blkback_control_start(const char *path, struct vs_error **errp)
{
	int ret;

	ret = blkback_unix_listen(&ctl.listener, path, 16, 0, "control socket",
				  errp);
	if (ret < 0)
		return ret;
	ctl.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ctl.stop_fd < 0) {
		ret = vs_error_set_errno(errp, errno, "control socket %s",
					 path);
		goto fail;
	}
	ret = -pthread_create(&ctl.thread, NULL, listen_thread, NULL);
	if (ret < 0) {
		vs_error_set_errno(errp, ret, "control socket %s: thread",
				   path);
		goto fail;
	}
	ctl.running = true;
	return 0;
fail:
	blkback_unix_unlisten(&ctl.listener);
	if (ctl.stop_fd >= 0)
		close(ctl.stop_fd);
	ctl.stop_fd = -1;
	return ret;
}

void blkback_control_stop(void)
{
	uint64_t one = 1;

	if (!ctl.running)
		return;
	/* Clients in the middle of a command finish it; idle ones and the
	 * listener see the eventfd and return. */
	if (write(ctl.stop_fd, &one, sizeof(one)) < 0)
		vs_log(VS_LOG_ERROR, "blkback", "control: %s", strerror(errno));
	pthread_join(ctl.thread, NULL);
	blkback_unix_unlisten(&ctl.listener);
	close(ctl.stop_fd);
	ctl.stop_fd = -1;
	ctl.running = false;
}
