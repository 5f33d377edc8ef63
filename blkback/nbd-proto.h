/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD wire protocol as the server side speaks it: fixed newstyle
 * handshake, option haggling, simple and structured replies, the
 * base:allocation metadata context.  Every number on the wire is big
 * endian; the structs below are packed so that they are the wire
 * layout, and their fields are filled with htobe*() and read with
 * be*toh().
 */
#ifndef VS_BLKBACK_NBD_PROTO_H
#define VS_BLKBACK_NBD_PROTO_H

#include <stdint.h>

/* Handshake: "NBDMAGIC", then "IHAVEOPT", then the handshake flags. */
#define NBD_INIT_MAGIC	  0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC	  0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_OPT_REP_MAGIC 0x0003e889045565a9ull

/* Handshake flags (server, 16 bits) and client flags (32 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE	  (1u << 0)
#define NBD_FLAG_NO_ZEROES	  (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES	  (1u << 1)

/* Options. */
#define NBD_OPT_EXPORT_NAME	  1
#define NBD_OPT_ABORT		  2
#define NBD_OPT_LIST		  3
#define NBD_OPT_STARTTLS	  5
#define NBD_OPT_INFO		  6
#define NBD_OPT_GO		  7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10

/* Option replies; errors have bit 31 set. */
#define NBD_REP_ACK		    1u
#define NBD_REP_SERVER		    2u
#define NBD_REP_INFO		    3u
#define NBD_REP_META_CONTEXT	    4u
#define NBD_REP_ERR(n)		    ((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP	    NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY	    NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID	    NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM	    NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD	    NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN	    NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN	    NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG	    NBD_REP_ERR(9)

/* Information items of NBD_REP_INFO (OPT_INFO, OPT_GO). */
#define NBD_INFO_EXPORT	     0
#define NBD_INFO_NAME	     1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS	   (1u << 0)
#define NBD_FLAG_READ_ONLY	   (1u << 1)
#define NBD_FLAG_SEND_FLUSH	   (1u << 2)
#define NBD_FLAG_SEND_FUA	   (1u << 3)
#define NBD_FLAG_ROTATIONAL	   (1u << 4)
#define NBD_FLAG_SEND_TRIM	   (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	   (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	   (1u << 8)
#define NBD_FLAG_SEND_CACHE	   (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO	   (1u << 11)

/* Requests. */
#define NBD_REQUEST_MAGIC 0x25609513u

#define NBD_CMD_READ	     0
#define NBD_CMD_WRITE	     1
#define NBD_CMD_DISC	     2
#define NBD_CMD_FLUSH	     3
#define NBD_CMD_TRIM	     4
#define NBD_CMD_CACHE	     5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF	       (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Replies. */
#define NBD_SIMPLE_REPLY_MAGIC	   0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

#define NBD_REPLY_FLAG_DONE (1u << 0)

#define NBD_REPLY_TYPE_NONE	    0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR	    ((1u << 15) | 1)

/* Error numbers on the wire: the protocol's own, not the host's. */
#define NBD_EPERM     1
#define NBD_EIO	      5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* base:allocation, the one metadata context we offer. */
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_STATE_HOLE		 (1u << 0)
#define NBD_STATE_ZERO		 (1u << 1)

/* Strings (export names, queries) are at most this long. */
#define NBD_MAX_STRING 4096

struct nbd_opt_hdr {
	uint64_t magic; /* NBD_OPTS_MAGIC */
	uint32_t option;
	uint32_t length;
} __attribute__((packed));

struct nbd_opt_reply {
	uint64_t magic; /* NBD_OPT_REP_MAGIC */
	uint32_t option;
	uint32_t type;
	uint32_t length;
} __attribute__((packed));

/* Reply to NBD_OPT_EXPORT_NAME (124 zero bytes may follow). */
struct nbd_export_name_reply {
	uint64_t size;
	uint16_t flags;
} __attribute__((packed));

struct nbd_info_export {
	uint16_t info; /* NBD_INFO_EXPORT */
	uint64_t size;
	uint16_t flags;
} __attribute__((packed));

struct nbd_info_block_size {
	uint16_t info; /* NBD_INFO_BLOCK_SIZE */
	uint32_t minimum;
	uint32_t preferred;
	uint32_t maximum;
} __attribute__((packed));

struct nbd_request {
	uint32_t magic; /* NBD_REQUEST_MAGIC */
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
} __attribute__((packed));

struct nbd_simple_reply {
	uint32_t magic; /* NBD_SIMPLE_REPLY_MAGIC */
	uint32_t error;
	uint64_t handle;
} __attribute__((packed));

struct nbd_structured_reply {
	uint32_t magic; /* NBD_STRUCTURED_REPLY_MAGIC */
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint32_t length;
} __attribute__((packed));

/* Payload heads of structured chunks. */
struct nbd_chunk_offset_data {
	uint64_t offset; /* the data follows */
} __attribute__((packed));

struct nbd_chunk_error {
	uint32_t error;
	uint16_t msg_len; /* the message follows */
} __attribute__((packed));

struct nbd_block_descriptor {
	uint32_t length;
	uint32_t flags;
} __attribute__((packed));

_Static_assert(sizeof(struct nbd_opt_hdr) == 16, "option header");
_Static_assert(sizeof(struct nbd_opt_reply) == 20, "option reply");
_Static_assert(sizeof(struct nbd_info_export) == 12, "NBD_INFO_EXPORT");
_Static_assert(sizeof(struct nbd_info_block_size) == 14, "block size");
_Static_assert(sizeof(struct nbd_request) == 28, "request header");
_Static_assert(sizeof(struct nbd_simple_reply) == 16, "simple reply");
_Static_assert(sizeof(struct nbd_structured_reply) == 20, "chunk header");

#endif
