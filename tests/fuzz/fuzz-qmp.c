/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the QMP client (hypervisor/qmp.c).  QEMU runs a
 * guest, and what it prints on its monitor (event data, error texts,
 * device names) is partly the guest's doing, so the client treats it as
 * untrusted.  Each input is everything one QEMU says on one connection:
 * a thread plays QEMU on a unix socket (the client connects by path),
 * writes the input, half-closes, and reads whatever the client sends
 * until the client hangs up.
 *
 * The client does what `vstor` does with a domain: connect (greeting,
 * qmp_capabilities as id 1), run query-status (id 2) and device_del
 * with arguments (id 3), then take events until the stream ends.  The
 * ids are fixed, so inputs can hold real replies and get past the
 * handshake.  No call may crash, leak or hang (the peer always closes,
 * so a timeout is a bug), and results must keep qmp.h's contract.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/error.h"
#include "hypervisor/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Long enough that only a lost EOF (a bug) could reach it. */
#define CALL_TIMEOUT_MS 10000

static char dir[] = "/tmp/vstor-fuzz-qmp.XXXXXX";
static char sock_path[sizeof(dir) + 8];
static int listen_fd = -1;

struct peer {
	const uint8_t *data;
	size_t size;
};

static void cleanup(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void start_listener(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/qmp", dir);
	atexit(cleanup);
	strcpy(sa.sun_path, sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listen_fd, 4) < 0)
		abort();
}

/* QEMU's side: say everything, half-close, drain until the client goes. */
static void *peer_thread(void *arg)
{
	const struct peer *p = arg;
	static char sink[4096];
	size_t done = 0;
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		abort();
	while (done < p->size) {
		ssize_t n =
			send(fd, p->data + done, p->size - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		/* The client may hang up early (a bad greeting). */
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, sink, sizeof(sink)) > 0)
		;
	close(fd);
	return NULL;
}

/* Errors end with a message, and a timeout never happens: the peer
 * closes its side after the input. */
static void check_error(int r, struct vs_error *err)
{
	assert(r < 0);
	assert(err && vs_error_msg(err)[0] != '\0');
	assert(r != -ETIMEDOUT);
	/* The message goes to a terminal: no control bytes from QEMU. */
	for (const char *c = vs_error_msg(err); *c; c++)
		assert((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static bool exec_errno_ok(int r)
{
	/* qmp.h's list: error classes, then the transport. */
	return r == -ENOSYS || r == -ENODEV || r == -ENXIO || r == -EIO ||
	       r == -ECONNRESET || r == -EPROTO || r == -ENOMEM;
}

static void run_client(void)
{
	struct json_object *ret = NULL, *ev = NULL, *args;
	struct vs_error *err = NULL;
	struct dom_qmp *q = NULL;
	int r;

	r = dom_qmp_connect(sock_path, CALL_TIMEOUT_MS, &q, &err);
	if (r < 0) {
		assert(!q);
		check_error(r, err);
		vs_error_free(err);
		return;
	}
	assert(q && !err && dom_qmp_fd(q) >= 0);
	assert(dom_qmp_qemu_version(q) <= 999999);

	r = dom_qmp_exec(q, "query-status", NULL, &ret, CALL_TIMEOUT_MS, &err);
	if (r == 0) {
		assert(ret && !err);
		json_object_put(ret);
	} else {
		assert(!ret && exec_errno_ok(r));
		check_error(r, err);
		vs_error_free(err);
		err = NULL;
	}

	args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_string("xvdb"));
	r = dom_qmp_exec(q, "device_del", args, NULL, CALL_TIMEOUT_MS, &err);
	if (r < 0) {
		assert(exec_errno_ok(r));
		check_error(r, err);
		vs_error_free(err);
		err = NULL;
	}

	/* A named wait first (others stay queued), then everything. */
	r = dom_qmp_wait_event(q, "DEVICE_DELETED", 0, &ev, &err);
	if (r == 0) {
		assert(ev && !err);
		json_object_put(ev);
	} else {
		/* Timeout 0 may time out: only what had come counts. */
		assert(err && !ev);
		vs_error_free(err);
	}
	for (unsigned i = 0; i <= DOM_QMP_MAX_QUEUED + 1; i++) {
		struct json_object *name;

		err = NULL;
		ev = NULL;
		r = dom_qmp_wait_event(q, NULL, CALL_TIMEOUT_MS, &ev, &err);
		if (r < 0) {
			assert(!ev);
			check_error(r, err);
			vs_error_free(err);
			break;
		}
		assert(ev && !err);
		assert(json_object_object_get_ex(ev, "event", &name) &&
		       json_object_is_type(name, json_type_string));
		json_object_put(ev);
	}
	dom_qmp_close(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer p = {.data = data, .size = size};
	pthread_t th;

	if (listen_fd < 0)
		start_listener();
	if (pthread_create(&th, NULL, peer_thread, &p))
		abort();
	run_client();
	pthread_join(th, NULL);
	return 0;
}
