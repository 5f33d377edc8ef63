/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A QMP client: one connection to a QEMU monitor socket.
 *
 * QMP is JSON objects, one per line: QEMU greets with {"QMP": {...}}, the
 * client leaves capabilities negotiation with qmp_capabilities, then sends
 * {"execute": CMD, "arguments": {...}, "id": N} and gets back either
 * {"return": ..., "id": N} or {"error": {"class": C, "desc": D}, "id": N}.
 * Asynchronous events ({"event": NAME, "data": ..., "timestamp": ...}) may
 * arrive at any time, also between a command and its reply: they are
 * queued and handed out by dom_qmp_wait_event in the order they came.
 *
 * QEMU is a separate process that a guest can influence, so its output is
 * treated as untrusted: lines are bounded (DOM_QMP_MAX_LINE), every reply
 * is checked for shape before use, and a peer that closes or talks
 * nonsense ends the connection with an error, never a crash.
 *
 * A struct dom_qmp is not thread-safe: one thread uses it at a time.
 */
#ifndef VS_HYPERVISOR_QMP_H
#define VS_HYPERVISOR_QMP_H

#include <stddef.h>

struct json_object;
struct vs_error;
struct dom_qmp;

/* The longest line accepted from QEMU (query-qmp-schema is ~200 KiB;
 * anything near this bound is a broken or hostile peer). */
#define DOM_QMP_MAX_LINE (16u << 20)

/* Events kept while nobody waits for them; older ones are dropped first
 * (with a debug message) so that a chatty guest cannot grow us. */
#define DOM_QMP_MAX_QUEUED 1024

/*
 * Connect to QEMU's QMP socket at sock_path, retrying while the socket
 * does not exist yet or refuses connections (QEMU still starting) until
 * timeout_ms have passed; then read the greeting and negotiate
 * capabilities.  timeout_ms < 0 waits forever, 0 tries once.
 * On success *out owns the connection (dom_qmp_close).  Errors: -ETIMEDOUT
 * (QEMU never listened), -ECONNRESET (closed during the handshake), -EPROTO
 * (a greeting or reply of the wrong shape), or the connect errno.
 */
int dom_qmp_connect(const char *sock_path, int timeout_ms, struct dom_qmp **out,
		    struct vs_error **err);

/*
 * Run one command and wait up to timeout_ms (< 0: forever) for its reply.
 * args (an object, or NULL for none) is taken: freed whatever happens.
 * On success *ret (if ret is non-NULL) gets the "return" value, owned by
 * the caller (json_object_put); it is an empty object for commands that
 * return nothing.  Events that arrive meanwhile are queued.
 *
 * An error reply puts "qmp CMD: CLASS: DESC" in err, and its class maps
 * to the returned errno: CommandNotFound -> -ENOSYS,
 * DeviceNotFound -> -ENODEV, DeviceNotActive -> -ENXIO, any other
 * (GenericError, KVMMissingCap) -> -EIO.  Transport: -ETIMEDOUT (no reply
 * in time; the connection stays usable, a late reply is discarded),
 * -ECONNRESET (QEMU closed the socket, e.g. after "quit"), -EPROTO
 * (malformed or oversized output: the connection is then dead).
 */
int dom_qmp_exec(struct dom_qmp *q, const char *cmd, struct json_object *args,
		 struct json_object **ret, int timeout_ms,
		 struct vs_error **err);

/*
 * Wait up to timeout_ms (< 0: forever, 0: only what is already queued or
 * readable now) for the next event named `name` (NULL: any event).
 * Events of other names that are already queued or arrive meanwhile stay
 * queued in order for later calls.  On success *event (if non-NULL) gets
 * the whole event object ({"event", "data", "timestamp"}), owned by the
 * caller.  -ETIMEDOUT on timeout; -ECONNRESET when QEMU went away.
 */
int dom_qmp_wait_event(struct dom_qmp *q, const char *name, int timeout_ms,
		       struct json_object **event, struct vs_error **err);

/* The socket descriptor, for callers that poll it beside other fds: when
 * it is readable, dom_qmp_wait_event(q, NULL, 0, ...) reads what came. */
int dom_qmp_fd(const struct dom_qmp *q);

/* QEMU's version from the greeting ({"qemu": {"major", "minor", "micro"}}),
 * as major*10000 + minor*100 + micro; 0 if the greeting had none. */
unsigned dom_qmp_qemu_version(const struct dom_qmp *q);

/* Close the socket and free everything, queued events included.  NULL is
 * fine. */
void dom_qmp_close(struct dom_qmp *q);

#endif
