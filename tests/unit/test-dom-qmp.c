/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP client against a real QEMU (qemu-system-x86_64 -M none: a
 * machine without CPUs or devices whose monitor works), and against a fake
 * server thread that sends what QEMU never would: broken greetings, lines
 * past the bound, replies in pieces, floods of events, a peer that hangs
 * up.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "hypervisor/qmp.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0])
		return;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test-dom-qmp.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		/* A long TMPDIR would not fit a socket path anyway. */
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-dom-qmp.XXXXXX");
		assert_non_null(mkdtemp(tmpdir));
	}
}

static void sock_path(char *out, size_t size, const char *name)
{
	make_tmpdir();
	snprintf(out, size, "%s/%s", tmpdir, name);
}

/* ---- a real QEMU ---- */

struct qemu {
	pid_t pid;
	char sock[300];
};

static pid_t spawn_qemu(const char *sock, int delay_ms)
{
	char arg[400];
	pid_t pid;

	snprintf(arg, sizeof(arg), "unix:%s,server=on,wait=off", sock);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		struct timespec delay = {delay_ms / 1000,
					 (delay_ms % 1000) * 1000000L};

		nanosleep(&delay, NULL);

		dup2(null, 0);
		dup2(null, 1);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-M", "none",
		       "-nodefaults", "-no-user-config", "-display", "none",
		       "-qmp", arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int qemu_start(void **state, int delay_ms)
{
	struct qemu *qm = calloc(1, sizeof(*qm));

	assert_non_null(qm);
	sock_path(qm->sock, sizeof(qm->sock), "qmp.sock");
	unlink(qm->sock);
	qm->pid = spawn_qemu(qm->sock, delay_ms);
	*state = qm;
	return 0;
}

static int qemu_setup(void **state)
{
	return qemu_start(state, 0);
}

/* QEMU starts only after 300 ms, so the client's first attempts find no
 * socket and it must retry. */
static int qemu_setup_late(void **state)
{
	return qemu_start(state, 300);
}

static int qemu_teardown(void **state)
{
	struct qemu *qm = *state;

	if (qm->pid > 0) {
		kill(qm->pid, SIGKILL);
		waitpid(qm->pid, NULL, 0);
	}
	unlink(qm->sock);
	free(qm);
	return 0;
}

static struct dom_qmp *connect_ok(const char *sock)
{
	struct vs_error *err = NULL;
	struct dom_qmp *q = NULL;
	int r = dom_qmp_connect(sock, 20000, &q, &err);

	if (r)
		fail_msg("connect: %s", vs_error_msg(err));
	assert_non_null(q);
	return q;
}

/* Greeting, query-status, query-version, an error reply, events, quit:
 * one QEMU for the whole story since each start costs a second. */
static void test_real_qemu(void **state)
{
	struct qemu *qm = *state;
	struct vs_error *err = NULL;
	struct json_object *ret = NULL, *ev = NULL, *v;
	struct dom_qmp *q = connect_ok(qm->sock);
	unsigned ver = dom_qmp_qemu_version(q);
	int status, r;

	/* The greeting gave QEMU's version. */
	assert_true(ver >= 20000);

	assert_int_equal(
		dom_qmp_exec(q, "query-status", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "status", &v));
	assert_string_equal(json_object_get_string(v), "running");
	json_object_put(ret);

	assert_int_equal(
		dom_qmp_exec(q, "query-version", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "qemu", &v));
	struct json_object *major, *minor, *micro;
	assert_true(json_object_object_get_ex(v, "major", &major));
	assert_true(json_object_object_get_ex(v, "minor", &minor));
	assert_true(json_object_object_get_ex(v, "micro", &micro));
	assert_int_equal(ver, json_object_get_int(major) * 10000 +
				      json_object_get_int(minor) * 100 +
				      json_object_get_int(micro));
	json_object_put(ret);

	/* An error reply: the class maps to an errno, QEMU's desc is kept. */
	r = dom_qmp_exec(q, "no-such-command", NULL, &ret, 10000, &err);
	assert_int_equal(r, -ENOSYS);
	assert_null(ret);
	assert_non_null(err);
	assert_non_null(strstr(vs_error_msg(err), "no-such-command"));
	assert_non_null(strstr(vs_error_msg(err), "CommandNotFound"));
	assert_non_null(strstr(vs_error_msg(err), "has not been found"));
	vs_error_free(err);
	err = NULL;

	/* Bad arguments: GenericError -> -EIO; the connection stays usable. */
	json_object *args = json_object_new_object();
	json_object_object_add(args, "bogus", json_object_new_int(1));
	r = dom_qmp_exec(q, "query-status", args, NULL, 10000, &err);
	assert_int_equal(r, -EIO);
	assert_non_null(strstr(vs_error_msg(err), "bogus"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(dom_qmp_exec(q, "query-status",
				      json_object_new_object(), NULL, 10000,
				      &err),
			 0);

	/* QEMU serves one QMP client at a time: a second one gets no
	 * greeting, and is told why that may be. */
	struct dom_qmp *q2 = NULL;
	assert_int_equal(dom_qmp_connect(qm->sock, 100, &q2, &err), -ETIMEDOUT);
	assert_null(q2);
	assert_non_null(strstr(vs_error_msg(err), "another client"));
	vs_error_free(err);
	err = NULL;

	/* No event yet: a short wait times out. */
	assert_int_equal(dom_qmp_wait_event(q, "STOP", 50, NULL, &err),
			 -ETIMEDOUT);
	vs_error_free(err);
	err = NULL;

	/* stop and cont: both events are queued while the replies are read,
	 * and come out by name in any order. */
	assert_int_equal(dom_qmp_exec(q, "stop", NULL, NULL, 10000, &err), 0);
	assert_int_equal(
		dom_qmp_exec(q, "query-status", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "status", &v));
	assert_string_equal(json_object_get_string(v), "paused");
	json_object_put(ret);
	assert_int_equal(dom_qmp_exec(q, "cont", NULL, NULL, 10000, &err), 0);
	assert_int_equal(dom_qmp_wait_event(q, "RESUME", 10000, &ev, &err), 0);
	assert_true(json_object_object_get_ex(ev, "timestamp", &v));
	json_object_put(ev);
	assert_int_equal(dom_qmp_wait_event(q, NULL, 10000, &ev, &err), 0);
	assert_true(json_object_object_get_ex(ev, "event", &v));
	assert_string_equal(json_object_get_string(v), "STOP");
	json_object_put(ev);

	/* quit: QEMU says SHUTDOWN, replies (or not, if it is quick) and
	 * hangs up, which later calls report as -ECONNRESET. */
	r = dom_qmp_exec(q, "quit", NULL, NULL, 10000, &err);
	assert_true(r == 0 || r == -ECONNRESET);
	vs_error_free(err);
	err = NULL;
	assert_int_equal(dom_qmp_wait_event(q, "SHUTDOWN", 10000, &ev, &err),
			 0);
	assert_true(json_object_object_get_ex(ev, "data", &v));
	json_object_put(ev);
	r = dom_qmp_wait_event(q, "NEVER", 10000, NULL, &err);
	assert_int_equal(r, -ECONNRESET);
	if (!strstr(vs_error_msg(err), "closed"))
		fail_msg("%s", vs_error_msg(err));
	vs_error_free(err);
	err = NULL;
	r = dom_qmp_exec(q, "query-status", NULL, NULL, 1000, &err);
	assert_int_equal(r, -ECONNRESET);
	vs_error_free(err);
	err = NULL;
	dom_qmp_close(q);

	assert_int_equal(waitpid(qm->pid, &status, 0), qm->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	qm->pid = 0;
}

/* QEMU starting after the client: connect retries until it listens. */
static void test_connect_waits(void **state)
{
	struct qemu *qm = *state;
	struct dom_qmp *q;

	/* The socket appears only 300 ms after the fork (unlinked before
	 * it), so the first attempts find nothing and must be retried.
	 * (Not asserted: a loaded host may delay this thread as long.) */
	q = connect_ok(qm->sock);
	dom_qmp_close(q);
}

static void test_connect_timeout(void **state)
{
	struct vs_error *err = NULL;
	struct dom_qmp *q = (struct dom_qmp *)1;
	char path[300];

	sock_path(path, sizeof(path), "nobody.sock");
	assert_int_equal(dom_qmp_connect(path, 100, &q, &err), -ETIMEDOUT);
	assert_null(q);
	assert_non_null(strstr(vs_error_msg(err), path));
	vs_error_free(err);
	err = NULL;

	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(dom_qmp_connect(longpath, 0, &q, &err), -ENAMETOOLONG);
	vs_error_free(err);
}

/* ---- a hostile fake server ---- */

struct fake {
	int listen_fd;
	char sock[300];
	void (*script)(int fd);
	pthread_t thread;
};

static void send_str(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Read one request line and return its "id" (or -1). */
static long long recv_request(int fd, char *cmd, size_t cmd_size)
{
	char line[4096];
	size_t len = 0;
	struct json_object *obj, *v;
	long long id = -1;

	while (len < sizeof(line) - 1) {
		ssize_t n = read(fd, line + len, 1);
		if (n <= 0)
			return -1;
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	obj = json_tokener_parse(line);
	if (!obj)
		return -1;
	if (json_object_object_get_ex(obj, "id", &v))
		id = json_object_get_int64(v);
	if (cmd && json_object_object_get_ex(obj, "execute", &v))
		snprintf(cmd, cmd_size, "%s", json_object_get_string(v));
	json_object_put(obj);
	return id;
}

static void send_fmt(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void send_fmt(int fd, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	send_str(fd, buf);
}

#define GREETING                                                           \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 3, \"minor\": 2, " \
	"\"major\": 8}}, \"capabilities\": []}}\r\n"

/* Greeting and capabilities, as QEMU does them. */
static void handshake(int fd)
{
	long long id;

	send_str(fd, GREETING);
	id = recv_request(fd, NULL, 0);
	send_fmt(fd, "{\"return\": {}, \"id\": %lld}\r\n", id);
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	f->script(fd);
	/* End our side (the client sees the end of the stream), then wait for the client to hang up so that nothing it has not read
	 * yet is lost to a reset. */
	shutdown(fd, SHUT_WR);
	char c;
	while (read(fd, &c, 1) > 0)
		;
	close(fd);
	return NULL;
}

static struct fake *fake_start(void (*script)(int fd))
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	sock_path(f->sock, sizeof(f->sock), "fake.sock");
	unlink(f->sock);
	assert_true(strlen(f->sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	assert_int_equal(listen(f->listen_fd, 1), 0);
	f->script = script;
	assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
	return f;
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(f->sock);
	free(f);
}

/* Connect to a fake server running `script`; returns the result and
 * checks that a failure's message contains `needle`. */
static int fake_connect(void (*script)(int fd), int want, const char *needle)
{
	struct fake *f = fake_start(script);
	struct vs_error *err = NULL;
	struct dom_qmp *q = NULL;
	int r = dom_qmp_connect(f->sock, 10000, &q, &err);

	if (r != want)
		fail_msg("connect returned %d, want %d (%s)", r, want,
			 err ? vs_error_msg(err) : "no error");
	if (needle) {
		assert_non_null(err);
		if (!strstr(vs_error_msg(err), needle))
			fail_msg("'%s' does not contain '%s'",
				 vs_error_msg(err), needle);
	}
	vs_error_free(err);
	dom_qmp_close(q);
	fake_stop(f);
	return r;
}

static void script_not_json(int fd)
{
	send_str(fd, "HTTP/1.1 200 OK\x1b[2J\r\n");
}

static void script_array(int fd)
{
	send_str(fd, "[1, 2, 3]\n");
}

static void script_no_qmp(int fd)
{
	send_str(fd, "{\"hello\": 1}\n");
}

static void script_trailing(int fd)
{
	send_str(fd, GREETING "{} {}\n");
}

static void script_hangup(int fd)
{
	send_str(fd, "{\"QMP\": {");
}

static void script_deep(int fd)
{
	/* Nesting deeper than any parser should follow. */
	char buf[20001];

	memset(buf, '[', 10000);
	memset(buf + 10000, ']', 10000);
	buf[20000] = '\0';
	send_str(fd, buf);
	send_str(fd, "\n");
}

static void script_oversized(int fd)
{
	/* A greeting that never ends: more than the bound without '\n'. */
	static char chunk[1 << 16];
	size_t sent = 0;

	memset(chunk, ' ', sizeof(chunk));
	chunk[0] = '{';
	while (sent <= DOM_QMP_MAX_LINE + sizeof(chunk)) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (n <= 0)
			return;
		sent += (size_t)n;
	}
}

static void script_error_no_desc(int fd)
{
	long long id;

	send_str(fd, GREETING);
	id = recv_request(fd, NULL, 0);
	send_fmt(fd,
		 "{\"error\": {\"class\": \"GenericError\"}, \"id\": %lld}\n",
		 id);
}

static void script_reply_neither(int fd)
{
	long long id;

	send_str(fd, GREETING);
	id = recv_request(fd, NULL, 0);
	send_fmt(fd, "{\"id\": %lld}\n", id);
}

static void script_error_escapes(int fd)
{
	long long id;

	handshake(fd);
	id = recv_request(fd, NULL, 0);
	send_fmt(fd,
		 "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": "
		 "\"no \\u001b[2J device\"}, \"id\": %lld}\n",
		 id);
}

/* An error's desc reaches the message without its control bytes. */
static void test_error_desc_cleaned(void **state)
{
	struct fake *f = fake_start(script_error_escapes);
	struct vs_error *err = NULL;
	struct dom_qmp *q = NULL;
	char want[400];

	assert_int_equal(dom_qmp_connect(f->sock, 10000, &q, &err), 0);
	assert_int_equal(dom_qmp_exec(q, "device_del", NULL, NULL, 10000, &err),
			 -ENODEV);
	snprintf(want, sizeof(want),
		 "QMP %s: device_del: DeviceNotFound: no ?[2J device", f->sock);
	assert_string_equal(vs_error_msg(err), want);
	vs_error_free(err);
	dom_qmp_close(q);
	fake_stop(f);
}

static void test_hostile_handshake(void **state)
{
	fake_connect(script_not_json, -EPROTO,
		     "not a JSON object: 'HTTP/1.1 200 OK?[2J'");
	fake_connect(script_array, -EPROTO, "not a JSON object");
	fake_connect(script_no_qmp, -EPROTO, "not a QMP greeting");
	fake_connect(script_trailing, -EPROTO, "not a JSON object: '{} {}'");
	fake_connect(script_hangup, -ECONNRESET, "closed");
	fake_connect(script_deep, -EPROTO, "not a JSON object");
	fake_connect(script_oversized, -EPROTO, "longer than");
	fake_connect(script_error_no_desc, -EPROTO, "without class and desc");
	fake_connect(script_reply_neither, -EPROTO, "neither return nor error");
	fake_connect(handshake, 0, NULL);
}

/*
 * Everything in pieces: the greeting a few bytes at a time, a stale reply
 * with another id, events before the reply, blank lines.
 */
static void script_pieces(int fd)
{
	struct timespec ms = {0, 1000000};
	const char *g = GREETING;
	char cmd[64] = "";
	long long id;

	for (size_t i = 0, len = strlen(g); i < len; i += 7) {
		size_t n = len - i < 7 ? len - i : 7;

		assert_int_equal(send(fd, g + i, n, MSG_NOSIGNAL), (ssize_t)n);
		nanosleep(&ms, NULL);
	}
	id = recv_request(fd, NULL, 0);
	send_fmt(fd, "{\"return\": {}, \"id\": %lld}\n", id);

	id = recv_request(fd, cmd, sizeof(cmd));
	send_str(fd, "\r\n  \n{\"return\": {\"stale\": true}, \"id\": 999}\n");
	send_str(fd, "{\"event\": \"A\", \"data\": {\"n\": 1}, \"timestamp\": "
		     "{}}\n{\"eve");
	nanosleep(&ms, NULL);
	send_str(fd, "nt\": \"B\", \"timestamp\": {}}\n");
	send_fmt(fd, "{\"return\": {\"cmd\": \"%s\"}, \"id\": %lld}\n", cmd,
		 id);

	/* The next command gets no reply in time; its late reply must be
	 * skipped by the one after it. */
	id = recv_request(fd, NULL, 0);
	long long id2 = recv_request(fd, NULL, 0);
	send_fmt(fd, "{\"return\": {\"late\": true}, \"id\": %lld}\n", id);
	send_fmt(fd, "{\"return\": {\"late\": false}, \"id\": %lld}\n", id2);

	/* A flood of events, more than the queue keeps. */
	id = recv_request(fd, NULL, 0);
	for (int i = 0; i < DOM_QMP_MAX_QUEUED + 100; i++)
		send_fmt(fd, "{\"event\": \"E\", \"data\": {\"n\": %d}}\n", i);
	send_fmt(fd, "{\"return\": {}, \"id\": %lld}\n", id);
}

static void test_hostile_pieces(void **state)
{
	struct fake *f = fake_start(script_pieces);
	struct vs_error *err = NULL;
	struct json_object *ret = NULL, *ev = NULL, *v, *n;
	struct dom_qmp *q = NULL;

	assert_int_equal(dom_qmp_connect(f->sock, 10000, &q, &err), 0);
	assert_int_equal(dom_qmp_qemu_version(q), 80203);

	assert_int_equal(dom_qmp_exec(q, "hello", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "cmd", &v));
	assert_string_equal(json_object_get_string(v), "hello");
	json_object_put(ret);

	assert_int_equal(dom_qmp_wait_event(q, "B", 0, NULL, &err), 0);
	assert_int_equal(dom_qmp_wait_event(q, NULL, 0, &ev, &err), 0);
	assert_true(json_object_object_get_ex(ev, "data", &v));
	assert_true(json_object_object_get_ex(v, "n", &n));
	assert_int_equal(json_object_get_int(n), 1);
	json_object_put(ev);
	assert_int_equal(dom_qmp_wait_event(q, NULL, 0, NULL, &err),
			 -ETIMEDOUT);
	vs_error_free(err);
	err = NULL;

	assert_int_equal(dom_qmp_exec(q, "slow", NULL, NULL, 0, &err),
			 -ETIMEDOUT);
	assert_non_null(strstr(vs_error_msg(err), "slow: no reply"));
	vs_error_free(err);
	err = NULL;
	assert_int_equal(dom_qmp_exec(q, "next", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "late", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(ret);

	/* The flood: the oldest events were dropped, the newest kept. */
	assert_int_equal(dom_qmp_exec(q, "flood", NULL, NULL, 10000, &err), 0);
	for (int i = 100; i < DOM_QMP_MAX_QUEUED + 100; i++) {
		assert_int_equal(dom_qmp_wait_event(q, "E", 0, &ev, &err), 0);
		assert_true(json_object_object_get_ex(ev, "data", &v));
		assert_true(json_object_object_get_ex(v, "n", &n));
		assert_int_equal(json_object_get_int(n), i);
		json_object_put(ev);
	}
	/* Nothing is left, and the server has ended its side. */
	assert_int_equal(dom_qmp_wait_event(q, NULL, 0, NULL, &err),
			 -ECONNRESET);
	vs_error_free(err);
	dom_qmp_close(q);
	fake_stop(f);
}

/* A long reply (2 MiB, in many reads) is fine; the next one too. */
static void script_big(int fd)
{
	size_t n = 2u << 20;
	char *big = malloc(n + 64);
	long long id;

	assert_non_null(big);
	handshake(fd);
	id = recv_request(fd, NULL, 0);
	int len =
		snprintf(big, 64, "{\"id\": %lld, \"return\": {\"s\": \"", id);
	memset(big + len, 'x', n);
	send(fd, big, (size_t)len + n, MSG_NOSIGNAL);
	send_str(fd, "\"}}\n");
	free(big);
	id = recv_request(fd, NULL, 0);
	send_fmt(fd, "{\"return\": {\"small\": 1}, \"id\": %lld}\n", id);
}

static void test_big_reply(void **state)
{
	struct fake *f = fake_start(script_big);
	struct vs_error *err = NULL;
	struct json_object *ret = NULL, *v;
	struct dom_qmp *q = NULL;

	assert_int_equal(dom_qmp_connect(f->sock, 10000, &q, &err), 0);
	assert_int_equal(dom_qmp_exec(q, "big", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "s", &v));
	assert_int_equal(json_object_get_string_len(v), 2u << 20);
	json_object_put(ret);
	assert_int_equal(dom_qmp_exec(q, "small", NULL, &ret, 10000, &err), 0);
	assert_true(json_object_object_get_ex(ret, "small", &v));
	json_object_put(ret);
	dom_qmp_close(q);
	fake_stop(f);
}

/* Arguments that are not an object are refused before anything is sent,
 * and taken anyway. */
static void test_bad_args(void **state)
{
	struct fake *f = fake_start(handshake);
	struct vs_error *err = NULL;
	struct dom_qmp *q = NULL;

	assert_int_equal(dom_qmp_connect(f->sock, 10000, &q, &err), 0);
	assert_int_equal(
		dom_qmp_exec(q, "x", json_object_new_int(3), NULL, 100, &err),
		-EINVAL);
	vs_error_free(err);
	dom_qmp_close(q);
	fake_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_real_qemu, qemu_setup,
						qemu_teardown),
		cmocka_unit_test_setup_teardown(test_connect_waits,
						qemu_setup_late, qemu_teardown),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_hostile_handshake),
		cmocka_unit_test(test_hostile_pieces),
		cmocka_unit_test(test_big_reply),
		cmocka_unit_test(test_error_desc_cleaned),
		cmocka_unit_test(test_bad_args),
	};
	int r;

	signal(SIGPIPE, SIG_IGN);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	if (tmpdir[0])
		rmdir(tmpdir);
	return r;
}
