/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inside of the NBD transport, shared by its files:
 *
 *   nbd-server.c  listening socket, accept thread, the connection list;
 *   nbd-conn.c    one connection's life: its threads, socket I/O, the
 *                 request slots and the reply queue;
 *   nbd-opt.c     the handshake and option haggling;
 *   nbd-cmd.c     the transmission phase: requests in, to the disk;
 *   nbd-reply.c   replies out.
 *
 * A connection has two threads once it reaches transmission: the
 * reader (the connection's own thread) takes a free slot, reads a
 * request and its payload into the slot's buffer and submits it; the
 * completion (any engine thread) sends the reply itself when the socket
 * takes it at once and nothing else is being sent, or else queues the
 * slot for the writer, which sends queued replies in batches, blocking
 * as long as the client takes.  So an engine thread never waits for a
 * client, and a client that stops reading only stalls its own
 * connection (no free slots: the reader stops reading requests).
 *
 * While the reader works through requests it has already received, the
 * replies that finish meanwhile are corked: held on a list and sent
 * together, with one sendmsg, when the reader is about to wait (for the
 * client, a slot or memory) or holds NBD_CORK_MAX of them.  See
 * nbd-reply.c.
 */
#ifndef VS_BLKBACK_NBD_CONN_H
#define VS_BLKBACK_NBD_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "blkback.h"
#include "nbd-proto.h"

/* Requests in flight per connection (slots). */
#define NBD_SLOTS 64
/* A slot keeps a buffer up to this size for its next requests; larger
 * payloads get a buffer of their own, freed with the reply. */
#define NBD_SLOT_KEEP (1u << 20)
/* Payload buffers of one connection, kept and temporary together.
 * NBD_SLOTS * NBD_SLOT_KEEP + BLKBACK_MAX_IO fits, so that one request
 * of any allowed size can always be read once the others are done. */
#define NBD_CONN_MEM (128u << 20)
/* Largest option payload read during the handshake. */
#define NBD_MAX_OPTION (64u << 10)
/* Options one connection may send before it is closed. */
#define NBD_MAX_OPTIONS 4096
/* Extents in one BLOCK_STATUS reply, and vbd_block_status calls made
 * for it (neighbours with the same status merge into one extent). */
#define NBD_MAX_EXTENTS	     1024
#define NBD_MAX_STATUS_CALLS 8192
/* The socket read buffer: small requests arrive in batches. */
#define NBD_RBUF 65536
/* Corked replies sent at once, at most, and their payload bytes: the
 * client starts on them while the reader goes on (8 and 32 measured
 * alike for 4 KiB reads at depth 32).  A reply with more payload than
 * NBD_CORK_SMALL is not held at all: it goes out while the reader reads
 * the next request's data. */
#define NBD_CORK_MAX   16
#define NBD_CORK_BYTES (64u << 10)
#define NBD_CORK_SMALL (16u << 10)
/* The base:allocation context id given to clients. */
#define NBD_META_ID_BASE 1

struct nbd_server;
struct nbd_conn;

struct nbd_slot {
	struct blkback_req req;
	struct nbd_conn *c;
	struct nbd_slot *next; /* free list or reply queue */

	/* The request, in host order. */
	uint64_t handle;
	uint64_t offset;
	uint32_t len;
	uint16_t type;
	uint16_t flags;

	uint8_t *buf; /* payload (READ/WRITE), extents (BLOCK_STATUS) */
	size_t cap;
	bool temp; /* buf is freed with the reply */
	struct iovec iov;

	/* The result: 0 or a negative errno, and the reply payload. */
	int err;
	size_t data_len; /* bytes of buf to send after the header */
	/* CACHE walks its range in pieces through buf. */
	uint64_t cache_pos, cache_end;
	int cache_state; /* CACHE_* in nbd-cmd.c */

	/* Reply header (and chunk payload head), built when it is sent. */
	uint8_t hdr[128];
	size_t hdr_len;
	bool built;  /* hdr is built (a reply already partly sent) */
	size_t sent; /* bytes of header and payload already sent */
};

struct nbd_conn {
	struct nbd_server *srv;
	struct nbd_conn *next; /* the server's list */
	int fd;
	pthread_t thread, writer;
	bool writer_started;
	bool finished; /* the thread is about to return: join it */
	char peer[64]; /* for log messages */

	/* Negotiated. */
	bool no_zeroes;
	bool structured;
	bool meta_base;		   /* base:allocation selected... */
	char *meta_export;	   /* ...for this export name */
	unsigned options;	   /* count, against NBD_MAX_OPTIONS */
	struct blkback_disk *disk; /* a reference, from GO/EXPORT_NAME */
	uint16_t tflags;

	/* Socket input, read by the connection's thread only. */
	uint8_t *rbuf;
	size_t rpos, rlen;
	/* During the handshake: reads fail with ETIMEDOUT from this time
	 * on (blkback_now_ns; 0: never). */
	uint64_t deadline_ns;

	/* Under lock. */
	pthread_mutex_t lock;
	pthread_cond_t reader_cond; /* a slot or memory came free, or dead */
	pthread_cond_t writer_cond; /* a reply is queued, or closing */
	struct nbd_slot *free_slots;
	struct nbd_slot *queue_head, **queue_tail;
	unsigned in_flight; /* slots out of the free list */
	size_t mem;	    /* payload buffer bytes allocated */
	bool sending;	    /* a thread is writing replies to the socket */
	bool closing;	    /* the reader reads no more requests */
	bool dead;	    /* the socket failed: replies are dropped */
	bool shutdown;	    /* ESHUTDOWN seen: close after the replies */
	/* The cork: replies held while the reader has requests to work
	 * through (`corked` is written by the reader only). */
	bool corked;
	struct nbd_slot *cork_head, **cork_tail;
	unsigned cork_n;
	size_t cork_bytes;
	/* Completion batches (vbd_batch_defer) that will flush the cork
	 * list when they end: the writer, and so the connection, waits
	 * for them. */
	unsigned batch_holds;
	/* The reader's own: transmission corks after each socket read. */
	bool cork_ok;

	struct nbd_slot slots[NBD_SLOTS];
};

/* nbd-server.c */
/* The export's id, for log messages. */
const char *nbd_server_id(const struct nbd_server *srv);
/* The export's handshake-timeout in ms, 0 for none. */
unsigned nbd_server_handshake_ms(const struct nbd_server *srv);

/* nbd-conn.c */
int nbd_conn_start(struct nbd_server *srv, int fd, const char *peer,
		   struct nbd_conn **out);
/* Wake the connection's threads (shutdown(2) of its socket): from the
 * server, while the connection is on its list. */
void nbd_conn_kick(struct nbd_conn *c);
/* Join the connection's thread (it has finished or was kicked), close
 * its socket and free it. */
void nbd_conn_free(struct nbd_conn *c);

/* Read exactly len bytes; 0, or -errno (-ECONNRESET at end of file).
 * `idle_check`: while waiting with nothing buffered, return -ESHUTDOWN
 * once the connection's disk is retired. */
int nbd_conn_read(struct nbd_conn *c, void *buf, size_t len, bool idle_check);
/* Read and throw away len bytes. */
int nbd_conn_skip(struct nbd_conn *c, uint64_t len);
/* Write the whole iovec (blocking); 0 or -errno. */
int nbd_conn_writev(struct nbd_conn *c, struct iovec *iov, int iovcnt);
int nbd_conn_write(struct nbd_conn *c, const void *buf, size_t len);

/* nbd-opt.c: the handshake.  Returns 1 when the transmission phase
 * starts (c->disk is set), 0 when the client ended the session, -errno
 * when the connection must be dropped. */
int nbd_handshake(struct nbd_conn *c);

/* nbd-reply.c: send the reply of a finished slot (any thread; never
 * blocks on the client), give a slot back (under c->lock), and the
 * writer thread that sends what could not go at once. */
void nbd_reply_queue(struct nbd_slot *s);
/* The reader's cork (its thread only): hold replies from now on; send
 * the held ones and go on holding (flush) or stop holding (uncork). */
void nbd_reply_cork(struct nbd_conn *c);
void nbd_reply_flush(struct nbd_conn *c, bool uncork);
/* True when NBD_CORK_MAX replies or NBD_CORK_BYTES are held: time to
 * flush. */
bool nbd_reply_cork_full(struct nbd_conn *c);
void nbd_slot_put_locked(struct nbd_conn *c, struct nbd_slot *s);
void *nbd_writer_main(void *opaque);

/* nbd-cmd.c: the transmission phase, until the client disconnects or
 * the connection fails; every request has been answered (or dropped
 * with the socket) when it returns. */
void nbd_transmission(struct nbd_conn *c);
/* Transmission flags for a disk, given what was negotiated. */
uint16_t nbd_transmission_flags(const struct nbd_conn *c,
				const struct blkback_disk *d);

#endif
