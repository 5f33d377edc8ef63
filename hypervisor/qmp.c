/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A QMP client: greeting, capabilities negotiation, commands with ids,
 * events queued in arrival order. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/log.h"
#include "qmp.h"

struct qmp_event {
	struct qmp_event *next;
	struct json_object *obj;
};

struct dom_qmp {
	int fd;
	char *path; /* for messages */
	/* Bytes read but not yet split into lines: buf[0..len). */
	char *buf;
	size_t len, cap;
	/* buf[0..scanned) holds no newline: a long line is not searched
	 * again from its start after each read. */
	size_t scanned;
	struct qmp_event *head, *tail;
	size_t n_events;
	uint64_t next_id;
	unsigned version;
	/* Set once the peer closed or broke the protocol: every later call
	 * fails with this errno instead of reading garbage. */
	int dead;
};

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* What is left of a deadline, as poll() wants it. */
static int remaining(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int qmp_fail(struct dom_qmp *q, int code, struct vs_error **err,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Mark the connection dead (protocol errors and a closed peer) and set err. */
static int qmp_fail(struct dom_qmp *q, int code, struct vs_error **err,
		    const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (code < 0)
		code = -code;
	q->dead = code;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	vs_error_set(err, code, "QMP %s: %s", q->path, msg ? msg : "error");
	free(msg);
	return -code;
}

/*
 * Read more bytes into q->buf, waiting until the deadline.  0 when some
 * came, -ETIMEDOUT, or a fatal error (the connection is then dead).
 */
static int fill(struct dom_qmp *q, int64_t deadline, struct vs_error **err)
{
	struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
	ssize_t n;
	int r;

	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 4096;
		char *p;

		/* One byte over the bound lets us see that a line is too long. */
		if (cap > (size_t)DOM_QMP_MAX_LINE + 1)
			cap = (size_t)DOM_QMP_MAX_LINE + 1;
		if (cap <= q->len)
			return qmp_fail(q, EPROTO, err,
					"a line longer than %u bytes",
					DOM_QMP_MAX_LINE);
		p = realloc(q->buf, cap);
		if (!p)
			return vs_error_set(err, ENOMEM,
					    "QMP %s: out of memory", q->path);
		q->buf = p;
		q->cap = cap;
	}
	for (;;) {
		r = poll(&pfd, 1, remaining(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return qmp_fail(q, errno, err, "poll: %s",
					strerror(errno));
		if (r == 0)
			return -ETIMEDOUT;
		n = read(q->fd, q->buf + q->len, q->cap - q->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && errno != ECONNRESET)
			return qmp_fail(q, errno, err, "read: %s",
					strerror(errno));
		/* A reset is a close with bytes still unread on QEMU's side
		 * (a command it never got to): the same end. */
		if (n <= 0)
			return qmp_fail(q, ECONNRESET, err,
					"QEMU closed the connection");
		q->len += (size_t)n;
		return 0;
	}
}

/* Parse one line (without its newline) into an object; NULL if it is not
 * exactly one JSON object. */
static struct json_object *parse_line(const char *line, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t used;

	if (len > INT32_MAX)
		return NULL;
	/* Deeper than any reply QEMU sends; the parser does not recurse,
	 * the bound just ends nonsense early. */
	tok = json_tokener_new_ex(64);
	if (!tok)
		return NULL;
	obj = json_tokener_parse_ex(tok, line, (int)len);
	used = json_tokener_get_parse_end(tok);
	if (!obj) {
		json_tokener_free(tok);
		return NULL;
	}
	json_tokener_free(tok);
	/* Only blanks may follow the object (QEMU ends lines with \r\n). */
	for (; used < len; used++)
		if (line[used] != ' ' && line[used] != '\t' &&
		    line[used] != '\r') {
			json_object_put(obj);
			return NULL;
		}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/*
 * The next message from QEMU, waiting until the deadline.  Blank lines are
 * skipped.  The caller owns *msg.
 */
static int read_message(struct dom_qmp *q, int64_t deadline,
			struct json_object **msg, struct vs_error **err)
{
	char *nl;
	size_t line_len;
	int r;

	if (q->dead)
		return vs_error_set(err, q->dead,
				    "QMP %s: the connection is closed (%s)",
				    q->path, strerror(q->dead));
	for (;;) {
		nl = q->len > q->scanned ? memchr(q->buf + q->scanned, '\n',
						  q->len - q->scanned)
					 : NULL;
		if (!nl) {
			q->scanned = q->len;
			if (q->len > DOM_QMP_MAX_LINE)
				return qmp_fail(q, EPROTO, err,
						"a line longer than %u bytes",
						DOM_QMP_MAX_LINE);
			r = fill(q, deadline, err);
			if (r < 0)
				return r;
			continue;
		}
		line_len = (size_t)(nl - q->buf);
		if (line_len > DOM_QMP_MAX_LINE)
			return qmp_fail(q, EPROTO, err,
					"a line longer than %u bytes",
					DOM_QMP_MAX_LINE);
		bool blank = true;
		for (size_t i = 0; i < line_len; i++)
			if (q->buf[i] != ' ' && q->buf[i] != '\t' &&
			    q->buf[i] != '\r')
				blank = false;
		struct json_object *obj =
			blank ? NULL : parse_line(q->buf, line_len);

		if (!blank && !obj) {
			/* Show the start of the line: enough to recognise it,
			 * and never control bytes on the user's terminal. */
			char shown[61];
			size_t shown_len = line_len;

			if (shown_len && q->buf[shown_len - 1] == '\r')
				shown_len--;
			size_t n = shown_len < 60 ? shown_len : 60;

			for (size_t i = 0; i < n; i++) {
				unsigned char c = (unsigned char)q->buf[i];
				shown[i] =
					c >= 0x20 && c < 0x7f ? (char)c : '?';
			}
			shown[n] = '\0';
			return qmp_fail(q, EPROTO, err,
					"not a JSON object: '%s%s'", shown,
					shown_len > n ? "..." : "");
		}
		memmove(q->buf, nl + 1, q->len - line_len - 1);
		q->len -= line_len + 1;
		q->scanned = 0;
		/* Give back what one long reply took. */
		if (q->cap > (1u << 20) && q->len < 4096) {
			char *p = realloc(q->buf, 4096);

			if (p) {
				q->buf = p;
				q->cap = 4096;
			}
		}
		if (obj) {
			vs_debug("qmp", "%s <- %s", q->path,
				 json_object_to_json_string_ext(
					 obj, JSON_C_TO_STRING_PLAIN));
			*msg = obj;
			return 0;
		}
	}
}

static void queue_event(struct dom_qmp *q, struct json_object *ev)
{
	struct qmp_event *e = malloc(sizeof(*e));

	if (!e) {
		json_object_put(ev);
		return;
	}
	if (q->n_events >= DOM_QMP_MAX_QUEUED) {
		struct qmp_event *old = q->head;

		vs_debug("qmp", "%s: event queue full, dropping %s", q->path,
			 json_object_get_string(
				 json_object_object_get(old->obj, "event")));
		q->head = old->next;
		if (!q->head)
			q->tail = NULL;
		json_object_put(old->obj);
		free(old);
		q->n_events--;
	}
	e->next = NULL;
	e->obj = ev;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->n_events++;
}

/* An event is an object whose "event" member is a string. */
static const char *event_name(struct json_object *msg)
{
	struct json_object *name;

	if (!json_object_object_get_ex(msg, "event", &name) ||
	    !json_object_is_type(name, json_type_string))
		return NULL;
	return json_object_get_string(name);
}

static int write_all(struct dom_qmp *q, const char *p, size_t len,
		     int64_t deadline, struct vs_error **err)
{
	struct pollfd pfd = {.fd = q->fd, .events = POLLOUT};
	ssize_t n;
	int r;

	while (len) {
		n = send(q->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			r = poll(&pfd, 1, remaining(deadline));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return qmp_fail(q, errno, err, "poll: %s",
						strerror(errno));
			if (r == 0)
				/* Half a command on the wire: the stream can't be
				 * trusted any more. */
				return qmp_fail(
					q, ETIMEDOUT, err,
					"QEMU does not read its socket");
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return qmp_fail(q, ECONNRESET, err,
					"QEMU closed the connection");
		if (n < 0)
			return qmp_fail(q, errno, err, "send: %s",
					strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Map QEMU's error classes (qapi/error.json) to errnos. */
static int class_errno(const char *cls)
{
	if (!strcmp(cls, "CommandNotFound"))
		return ENOSYS;
	if (!strcmp(cls, "DeviceNotFound"))
		return ENODEV;
	if (!strcmp(cls, "DeviceNotActive"))
		return ENXIO;
	return EIO;
}

/* QEMU's text for a message to a terminal: at most 512 bytes, control
 * bytes shown as '?' (a desc may quote what a guest or a file said). */
static char *clean_text(const char *text)
{
	size_t n = strnlen(text, 512);
	char *out = malloc(n + 4);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];

		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	strcpy(out + n, text[n] ? "..." : "");
	return out;
}

static int reply_error(struct dom_qmp *q, const char *cmd,
		       struct json_object *error, struct vs_error **err)
{
	struct json_object *cls, *desc;

	if (!json_object_is_type(error, json_type_object) ||
	    !json_object_object_get_ex(error, "class", &cls) ||
	    !json_object_is_type(cls, json_type_string) ||
	    !json_object_object_get_ex(error, "desc", &desc) ||
	    !json_object_is_type(desc, json_type_string))
		return qmp_fail(q, EPROTO, err,
				"%s: an error reply without class and desc",
				cmd);
	char *c = clean_text(json_object_get_string(cls));
	char *d = clean_text(json_object_get_string(desc));
	int r = vs_error_set(err, class_errno(json_object_get_string(cls)),
			     "QMP %s: %s: %s: %s", q->path, cmd, c ? c : "?",
			     d ? d : "?");

	free(c);
	free(d);
	return r;
}

int dom_qmp_exec(struct dom_qmp *q, const char *cmd, struct json_object *args,
		 struct json_object **ret, int timeout_ms,
		 struct vs_error **err)
{
	int64_t deadline = deadline_of(timeout_ms);
	struct json_object *req, *msg = NULL, *val, *id;
	uint64_t my_id;
	char *line;
	int r;

	if (ret)
		*ret = NULL;
	if (q->dead) {
		json_object_put(args);
		return vs_error_set(err, q->dead,
				    "QMP %s: %s: the connection is closed (%s)",
				    q->path, cmd, strerror(q->dead));
	}
	if (args && !json_object_is_type(args, json_type_object)) {
		json_object_put(args);
		return vs_error_set(err, EINVAL,
				    "QMP %s: arguments must be an object", cmd);
	}
	req = json_object_new_object();
	if (!req) {
		json_object_put(args);
		return vs_error_set(err, ENOMEM, "QMP %s: out of memory", cmd);
	}
	my_id = q->next_id++;
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	json_object_object_add(req, "id", json_object_new_uint64(my_id));
	r = asprintf(
		&line, "%s\n",
		json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
	json_object_put(req);
	if (r < 0)
		return vs_error_set(err, ENOMEM, "QMP %s: out of memory", cmd);
	vs_debug("qmp", "%s -> %.*s", q->path, r - 1, line);
	r = write_all(q, line, (size_t)r, deadline, err);
	free(line);
	if (r < 0) {
		vs_error_prefix(err, "%s", cmd);
		return r;
	}

	for (;;) {
		r = read_message(q, deadline, &msg, err);
		if (r == -ETIMEDOUT)
			return vs_error_set(err, ETIMEDOUT,
					    "QMP %s: %s: no reply within %d ms",
					    q->path, cmd, timeout_ms);
		if (r < 0)
			return r;
		if (event_name(msg)) {
			queue_event(q, msg);
			continue;
		}
		/* A reply to an earlier command that timed out carries its own
		 * id; one without our id is not ours either. */
		if (!json_object_object_get_ex(msg, "id", &id) ||
		    !json_object_is_type(id, json_type_int) ||
		    json_object_get_uint64(id) != my_id) {
			vs_debug("qmp",
				 "%s: discarding a message that is not the "
				 "reply to %s",
				 q->path, cmd);
			json_object_put(msg);
			continue;
		}
		break;
	}
	if (json_object_object_get_ex(msg, "return", &val)) {
		if (ret)
			*ret = json_object_get(val);
		json_object_put(msg);
		return 0;
	}
	if (json_object_object_get_ex(msg, "error", &val)) {
		r = reply_error(q, cmd, val, err);
		json_object_put(msg);
		return r;
	}
	json_object_put(msg);
	return qmp_fail(q, EPROTO, err,
			"%s: a reply with neither return nor error", cmd);
}

int dom_qmp_wait_event(struct dom_qmp *q, const char *name, int timeout_ms,
		       struct json_object **event, struct vs_error **err)
{
	int64_t deadline = deadline_of(timeout_ms);
	struct qmp_event *prev = NULL, *e;
	struct json_object *msg;
	const char *got;
	int r;

	if (event)
		*event = NULL;
	for (e = q->head; e; prev = e, e = e->next) {
		if (name && strcmp(event_name(e->obj), name))
			continue;
		if (prev)
			prev->next = e->next;
		else
			q->head = e->next;
		if (q->tail == e)
			q->tail = prev;
		q->n_events--;
		if (event)
			*event = e->obj;
		else
			json_object_put(e->obj);
		free(e);
		return 0;
	}
	for (;;) {
		r = read_message(q, deadline, &msg, err);
		if (r == -ETIMEDOUT)
			return vs_error_set(err, ETIMEDOUT,
					    "QMP %s: no %s%sevent within %d ms",
					    q->path, name ? name : "",
					    name ? " " : "", timeout_ms);
		if (r < 0)
			return r;
		got = event_name(msg);
		if (!got) {
			/* A late reply to a command that timed out. */
			json_object_put(msg);
			continue;
		}
		if (name && strcmp(got, name)) {
			queue_event(q, msg);
			continue;
		}
		if (event)
			*event = msg;
		else
			json_object_put(msg);
		return 0;
	}
}

/* The greeting: {"QMP": {"version": {"qemu": {...}, ...}, "capabilities": [...]}}. */
static int read_greeting(struct dom_qmp *q, int64_t deadline,
			 struct vs_error **err)
{
	struct json_object *msg, *qmp, *ver, *qemu, *v;
	unsigned parts[3] = {0, 0, 0};
	static const char *const keys[] = {"major", "minor", "micro"};
	int r;

	r = read_message(q, deadline, &msg, err);
	if (r == -ETIMEDOUT)
		return vs_error_set(
			err, ETIMEDOUT,
			"QMP %s: no greeting from QEMU (is another "
			"client connected? QEMU serves one at a time)",
			q->path);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(msg, "QMP", &qmp) ||
	    !json_object_is_type(qmp, json_type_object)) {
		json_object_put(msg);
		return qmp_fail(q, EPROTO, err,
				"the first message is not a QMP greeting");
	}
	if (json_object_object_get_ex(qmp, "version", &ver) &&
	    json_object_object_get_ex(ver, "qemu", &qemu) &&
	    json_object_is_type(qemu, json_type_object)) {
		for (size_t i = 0; i < 3; i++) {
			if (!json_object_object_get_ex(qemu, keys[i], &v) ||
			    !json_object_is_type(v, json_type_int))
				break;
			int64_t x = json_object_get_int64(v);
			/* Out-of-range parts would alias other versions. */
			if (x < 0 || x > 99)
				break;
			parts[i] = (unsigned)x;
			if (i == 2)
				q->version = parts[0] * 10000 + parts[1] * 100 +
					     parts[2];
		}
	}
	json_object_put(msg);
	return 0;
}

static int connect_once(const char *path, int *fd_out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	*fd_out = fd;
	return 0;
}

int dom_qmp_connect(const char *sock_path, int timeout_ms, struct dom_qmp **out,
		    struct vs_error **err)
{
	int64_t deadline = deadline_of(timeout_ms);
	struct sockaddr_un sa;
	struct dom_qmp *q;
	int fd = -1, r;

	*out = NULL;
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return vs_error_set(
			err, ENAMETOOLONG,
			"QMP socket %s: the path is longer than %zu bytes",
			sock_path, sizeof(sa.sun_path) - 1);
	for (;;) {
		r = connect_once(sock_path, &fd);
		if (r == 0)
			break;
		/* Not there yet, or not listening yet: QEMU is starting. */
		if (r != -ENOENT && r != -ECONNREFUSED)
			return vs_error_set_errno(err, r, "QMP socket %s",
						  sock_path);
		if (deadline >= 0 && now_ms() >= deadline)
			return vs_error_set(
				err, timeout_ms ? ETIMEDOUT : -r,
				"QMP socket %s: nobody listened%s (%s)",
				sock_path, timeout_ms ? " in time" : "",
				strerror(-r));
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}

	q = calloc(1, sizeof(*q));
	if (!q || !(q->path = strdup(sock_path))) {
		free(q);
		close(fd);
		return vs_error_set(err, ENOMEM, "QMP socket %s: out of memory",
				    sock_path);
	}
	q->fd = fd;
	q->next_id = 1;
	/* Once QEMU listens it greets at once, but a loaded host (TCG guests
	 * on two cores) may take a while: the handshake gets at least a few
	 * seconds whatever was left of the connect timeout. */
	if (deadline >= 0 && deadline < now_ms() + 5000)
		deadline = now_ms() + 5000;
	r = read_greeting(q, deadline, err);
	if (r == 0)
		r = dom_qmp_exec(q, "qmp_capabilities", NULL, NULL,
				 remaining(deadline), err);
	if (r < 0) {
		dom_qmp_close(q);
		return r;
	}
	*out = q;
	return 0;
}

int dom_qmp_fd(const struct dom_qmp *q)
{
	return q->fd;
}

unsigned dom_qmp_qemu_version(const struct dom_qmp *q)
{
	return q->version;
}

void dom_qmp_close(struct dom_qmp *q)
{
	struct qmp_event *e;

	if (!q)
		return;
	while ((e = q->head)) {
		q->head = e->next;
		json_object_put(e->obj);
		free(e);
	}
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q->path);
	free(q);
}
