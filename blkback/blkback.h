/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkback: serving open vbds to guests and clients.
 *
 * Three parts meet here:
 *
 *  - a disk (struct blkback_disk) is one open vbd under a name (its
 *    vdev, "xvda"), shared by every export and connection that serves
 *    it, with per-operation statistics;
 *  - the request path (blkback_submit) is the one way a transport's wire
 *    request reaches the vbd: it checks the request against the disk
 *    (operation, bounds, overflow, read-only) before any driver sees it,
 *    accounts it, and completes it exactly once;
 *  - a transport (struct blkback_transport: NBD, vhost-user-blk, FUSE)
 *    turns a wire protocol into blkback_reqs.  The server (server.c)
 *    starts and stops exports; a transport owns its threads and sockets.
 *
 * Everything a guest or a client sends is hostile: transports validate
 * their own framing (descriptor chains, NBD headers), and the request
 * path validates what reaches the disk.
 */
#ifndef VS_BLKBACK_BLKBACK_H
#define VS_BLKBACK_BLKBACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/error.h"
#include "../vbd/vbd.h"

/* Disks. */

struct blkback_disk;

/*
 * Open the disk an xl disk spec describes ("qcow2:/a.qcow2,xvda,w");
 * its name is the spec's vdev.  `vbd_flags` are extra VBD_O_* flags
 * (VBD_O_RDONLY for serve --readonly).  The disk starts with one
 * reference, the caller's.
 */
int blkback_disk_open(const char *spec_text, unsigned vbd_flags,
		      struct blkback_disk **out, struct vs_error **errp);
struct blkback_disk *blkback_disk_ref(struct blkback_disk *d);
/* Dropping the last reference waits for in-flight requests, flushes and
 * closes the vbd. */
void blkback_disk_unref(struct blkback_disk *d);

const char *blkback_disk_name(const struct blkback_disk *d);
struct vbd *blkback_disk_vbd(const struct blkback_disk *d);
uint64_t blkback_disk_size(const struct blkback_disk *d);
bool blkback_disk_readonly(const struct blkback_disk *d);
/* The spec allows discard (xl's discard / no-discard; default yes). */
bool blkback_disk_discard(const struct blkback_disk *d);
/*
 * A disk being removed: every later request fails with -ESHUTDOWN, so
 * that connections still holding a reference (NBD clients) learn it and
 * close.
 */
bool blkback_disk_retired(const struct blkback_disk *d);
/* Wait until no request of this disk is in flight. */
void blkback_disk_drain(struct blkback_disk *d);

/* The request path. */

enum blkback_op {
	BLKBACK_OP_READ,
	BLKBACK_OP_WRITE,
	BLKBACK_OP_FLUSH,
	BLKBACK_OP_DISCARD,
	BLKBACK_OP_WRITE_ZEROES,
	BLKBACK_OP_COUNT,
};

enum {
	BLKBACK_F_FUA = 1u << 0,	 /* WRITE, DISCARD, WRITE_ZEROES:
					  * stable when done (a flush
					  * follows); accepted and
					  * meaningless on the others, as
					  * NBD allows it on any command */
	BLKBACK_F_MAY_UNMAP = 1u << 1,	 /* WRITE_ZEROES: may deallocate */
	BLKBACK_F_NO_FALLBACK = 1u << 2, /* WRITE_ZEROES: fail with
					  * -ENOTSUP rather than writing
					  * zero buffers (NBD FAST_ZERO) */
};

/* Largest READ/WRITE payload the request path accepts. */
#define BLKBACK_MAX_IO (32u << 20)

struct blkback_req {
	enum blkback_op op;
	uint64_t offset;
	uint64_t len; /* bytes; READ/WRITE: must equal the iov's size */
	unsigned flags;
	const struct iovec *iov; /* READ, WRITE */
	int iovcnt;
	/* Called exactly once with 0 or -errno, from any thread (an engine
	 * thread, or the submitter's before blkback_submit returns).  It must
	 * not block on a client: queue the reply and wake the connection. */
	void (*done)(struct blkback_req *req, int ret);
	void *opaque; /* the transport's */

	/* Private to the request path. */
	struct blkback_disk *disk;
	struct vbd_req vreq;
	uint64_t start_ns;
};

/*
 * Check and run one request.  Refused before the vbd sees them, with
 * done(-errno):
 *   -EINVAL     unknown op or flags, len 0 for READ/WRITE, len above
 *               BLKBACK_MAX_IO, len not the iov's size, offset + len
 *               overflowing, READ or DISCARD past the end;
 *   -ENOSPC     WRITE or WRITE_ZEROES past the end (NBD's rule);
 *   -EROFS      WRITE, DISCARD or WRITE_ZEROES on a read-only disk;
 *   -ESHUTDOWN  the disk is being removed.
 * DISCARD on a disk whose spec says no-discard succeeds and does nothing
 * (discard is advisory).  A FLUSH covers every write completed before it
 * was submitted, on any connection.
 */
void blkback_submit(struct blkback_disk *d, struct blkback_req *req);

/* Statistics, per operation, since the disk was opened. */
struct blkback_op_stats {
	uint64_t ops;	 /* completed */
	uint64_t errors; /* of which failed */
	uint64_t bytes;	 /* READ/WRITE payload, DISCARD/ZEROES length */
	uint64_t lat_ns; /* total latency, submit to done */
	uint64_t max_lat_ns;
};

struct blkback_stats {
	struct blkback_op_stats op[BLKBACK_OP_COUNT];
	uint64_t in_flight;
};

void blkback_disk_stats(const struct blkback_disk *d,
			struct blkback_stats *out);
const char *blkback_op_name(enum blkback_op op); /* "read", "write"... */

/* The disk table of the running server. */

/* Add a disk under its name (takes a reference); -EEXIST if taken. */
int blkback_disks_add(struct blkback_disk *d, struct vs_error **errp);
/* The disk named `name` with a new reference, or NULL. */
struct blkback_disk *blkback_disks_find(const char *name);
/* The first disk added and still present, with a new reference, or NULL
 * (NBD's default export, the empty name). */
struct blkback_disk *blkback_disks_first(void);
/* Call fn for each disk, in the order they were added, with the table
 * locked: fn must not add or remove disks. */
void blkback_disks_foreach(void (*fn)(struct blkback_disk *d, void *opaque),
			   void *opaque);

/* Transports and exports. */

struct blkback_export;

struct blkback_transport {
	const char *name; /* "nbd", "vhost-user", "fuse" */
	/* The export needs a disk (vhost-user, FUSE), or serves every disk
	 * of the table by name (NBD). */
	bool per_disk;
	/*
	 * Start serving: listen on ex->addr, parse ex->opts (NULL, or
	 * "key=value,..."; unknown keys are an error), start threads.
	 * Returns 0 or -errno with *errp set; on failure nothing is left
	 * behind (no socket file, no thread).
	 */
	int (*start)(struct blkback_export *ex, struct vs_error **errp);
	/*
	 * Stop: stop listening (and remove the socket file it made), close
	 * every connection, wait for their in-flight requests, free what
	 * start made.  Must not block on a client that does not read.
	 */
	void (*stop)(struct blkback_export *ex);
	/* Optional: add transport facts to the control socket's "list"
	 * reply (connections...). */
	void (*describe)(struct blkback_export *ex, struct json_object *obj);
};

struct blkback_export {
	const struct blkback_transport *tp;
	char *id;		   /* unique: "nbd0", "vhost-user-xvda"... */
	struct blkback_disk *disk; /* a reference; NULL when !per_disk */
	char *addr;		   /* socket path, "tcp:HOST:PORT", file */
	char *opts;		   /* NULL or "key=value,..." */
	void *priv;		   /* the transport's */
};

extern const struct blkback_transport blkback_transport_nbd;
extern const struct blkback_transport blkback_transport_vhost_user;
extern const struct blkback_transport blkback_transport_fuse;

/* Monotonic clock in nanoseconds (latency statistics). */
uint64_t blkback_now_ns(void);

#endif
