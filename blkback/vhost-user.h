/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user protocol, back-end side (QEMU's docs/interop/vhost-user
 * specification): the message framing and the requests we answer.  The
 * transport (blkback_transport_vhost_user) listens on a unix socket,
 * serves one front-end at a time and gives each new connection a fresh
 * device.
 */
#ifndef VS_BLKBACK_VHOST_USER_H
#define VS_BLKBACK_VHOST_USER_H

#include <stdint.h>

#include "guest-mem.h"

enum blkback_vu_request {
	BLKBACK_VU_GET_FEATURES = 1,
	BLKBACK_VU_SET_FEATURES = 2,
	BLKBACK_VU_SET_OWNER = 3,
	BLKBACK_VU_RESET_OWNER = 4,
	BLKBACK_VU_SET_MEM_TABLE = 5,
	BLKBACK_VU_SET_LOG_BASE = 6,
	BLKBACK_VU_SET_LOG_FD = 7,
	BLKBACK_VU_SET_VRING_NUM = 8,
	BLKBACK_VU_SET_VRING_ADDR = 9,
	BLKBACK_VU_SET_VRING_BASE = 10,
	BLKBACK_VU_GET_VRING_BASE = 11,
	BLKBACK_VU_SET_VRING_KICK = 12,
	BLKBACK_VU_SET_VRING_CALL = 13,
	BLKBACK_VU_SET_VRING_ERR = 14,
	BLKBACK_VU_GET_PROTOCOL_FEATURES = 15,
	BLKBACK_VU_SET_PROTOCOL_FEATURES = 16,
	BLKBACK_VU_GET_QUEUE_NUM = 17,
	BLKBACK_VU_SET_VRING_ENABLE = 18,
	BLKBACK_VU_GET_CONFIG = 24,
	BLKBACK_VU_SET_CONFIG = 25,
};

/* Protocol feature bits. */
enum {
	BLKBACK_VU_PROTOCOL_F_MQ = 0,
	BLKBACK_VU_PROTOCOL_F_REPLY_ACK = 3,
	BLKBACK_VU_PROTOCOL_F_CONFIG = 9,
};

/* The virtio feature bit that says protocol features exist. */
#define BLKBACK_VU_F_PROTOCOL_FEATURES 30

enum {
	BLKBACK_VU_VERSION = 1,
	BLKBACK_VU_FLAG_VERSION_MASK = 3,
	BLKBACK_VU_FLAG_REPLY = 1 << 2,
	BLKBACK_VU_FLAG_NEED_REPLY = 1 << 3,
};

/* SET_VRING_KICK/CALL/ERR: the ring index, and "no fd comes with it". */
#define BLKBACK_VU_VRING_IDX_MASK 0xffu
#define BLKBACK_VU_VRING_NOFD	  (1u << 8)

struct blkback_vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes after the header */
};

struct blkback_vu_state {
	uint32_t index;
	uint32_t num;
};

struct blkback_vu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct blkback_vu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

struct blkback_vu_mem {
	uint32_t nregions;
	uint32_t padding;
	struct blkback_vu_region r[BLKBACK_GUEST_MEM_MAX_REGIONS];
};

#define BLKBACK_VU_CONFIG_MAX 256
struct blkback_vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[BLKBACK_VU_CONFIG_MAX];
};

union blkback_vu_payload {
	uint64_t u64;
	struct blkback_vu_state state;
	struct blkback_vu_addr addr;
	struct blkback_vu_mem mem;
	struct blkback_vu_config config;
};

/* Most fds one message may carry (SET_MEM_TABLE: one per region). */
#define BLKBACK_VU_MAX_FDS BLKBACK_GUEST_MEM_MAX_REGIONS

#endif
