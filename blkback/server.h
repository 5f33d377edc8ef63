/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The server of `vstor serve`: the disks and exports of this process,
 * changed at start-up (cli/serve.c) and at run time (the control socket),
 * and the life cycle around them (ready, signals, shutdown).
 *
 * One server per process: the disk table (blkback.h) is global, so is
 * the export list here.  Every function that changes disks or exports
 * takes one server lock, so control clients and start-up never race.
 */
#ifndef VS_BLKBACK_SERVER_H
#define VS_BLKBACK_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "blkback.h"

struct json_object;

/* What `vstor serve` was asked for. */
struct blkback_server_config {
	unsigned vbd_flags;  /* VBD_O_RDONLY for --readonly */
	const char *control; /* --control SOCK, or NULL */
	const char *pidfile; /* --pidfile FILE, or NULL */
	int ready_fd;	     /* --daemonize: the parent's pipe, or -1 */
};

/*
 * Disks.  add_disk opens a spec and puts it in the table (-EEXIST, with
 * the name, when the vdev is taken).  remove_disk stops the disk's
 * exports, takes it out of the table, retires it (later requests fail
 * with -ESHUTDOWN, so NBD clients learn it), waits up to `wait_ms` for
 * every other holder to let go, then closes it.  Returns 0 when the
 * image was closed, -EBUSY (with a message) when holders remained after
 * the wait: the disk is gone from the table and closes as soon as the
 * last holder disconnects.
 */
int blkback_server_add_disk(const char *spec, struct vs_error **errp);
int blkback_server_remove_disk(const char *name, unsigned wait_ms,
			       struct vs_error **errp);

/*
 * Exports.  `type` names a transport ("nbd", "vhost-user", "fuse");
 * `disk` is required for per-disk transports and may be NULL when there
 * is exactly one disk; `opts` may be NULL.  On success *id_out (may be
 * NULL) points to the new export's id, valid until it is removed.
 */
int blkback_server_add_export(const char *type, const char *disk,
			      const char *addr, const char *opts,
			      const char **id_out, struct vs_error **errp);
int blkback_server_remove_export(const char *id, struct vs_error **errp);

/* The "list" and "stats" replies of the control socket, into `obj`. */
void blkback_server_list(struct json_object *obj);
int blkback_server_stats(const char *name, struct json_object *obj,
			 struct vs_error **errp);

/* Ask the main loop to shut down, as SIGTERM does (control "quit"). */
void blkback_server_quit(void);

/*
 * Block the signals the server waits for; call before any thread starts
 * (opening a disk starts I/O threads) so that every thread inherits the
 * mask and the signals reach only the signalfd.  `vbd_flags` are given
 * to every disk opened (VBD_O_RDONLY for --readonly).
 */
int blkback_server_init(unsigned vbd_flags, struct vs_error **errp);

/*
 * Everything is listening: write the pidfile, start the control socket,
 * tell the parent (--daemonize), then wait for SIGTERM, SIGINT or quit,
 * and shut down: stop every export, then drain, flush and close every
 * disk, remove the pidfile and the control socket.  Returns the exit
 * code: 0, or 1 when starting the control socket failed (*errp set,
 * nothing left behind) or a disk failed to flush at the end.
 */
int blkback_server_run(const struct blkback_server_config *cfg,
		       struct vs_error **errp);

/* Stop every export and close every disk (start-up failures, end). */
int blkback_server_teardown(void);

/* The transport called `name`, or NULL. */
const struct blkback_transport *blkback_transport_find(const char *name);

/* Private to blkback/: the disk life cycle the server drives. */
void blkback_disk_retire(struct blkback_disk *d);
/* Wait up to `wait_ms` until the caller holds the only reference. */
bool blkback_disk_wait_unused(struct blkback_disk *d, unsigned wait_ms);
/* Drop a reference; the last one drains, flushes and closes the disk
 * and returns the flush's result (0 otherwise). */
int blkback_disk_close(struct blkback_disk *d);
const char *blkback_disk_format(const struct blkback_disk *d);
/* Take `name` out of the table; returns the table's reference. */
struct blkback_disk *blkback_disks_remove(const char *name);
/* The number of disks in the table. */
unsigned blkback_disks_count(void);

/* The control socket (control.c). */
int blkback_control_start(const char *path, struct vs_error **errp);
void blkback_control_stop(void);
/*
 * One request line (len bytes, no newline, NUL at line[len]) into a JSON
 * object: strict JSON, valid UTF-8, nesting bounded, only blanks after
 * the object.  -EINVAL with a message otherwise.  Exported for the fuzz
 * target (tests/fuzz/fuzz-serve-control.c); the caller owns *out.
 */
int blkback_control_parse(const char *line, size_t len,
			  struct json_object **out, struct vs_error **errp);

#endif
