/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user-blk transport end to end, with this test as the
 * front-end and the driver: it connects to the export's socket, shares
 * a memfd as guest memory, sets up a virtqueue in it and sends
 * virtio-blk requests against a raw disk in a temp file (read, write,
 * flush, get-id, discard, write-zeroes, unsupported and malformed
 * ones).  Then the hostile front-end: bad sizes, counts, indices, fds,
 * unknown requests with and without REPLY_ACK, a second front-end, a
 * broken ring; after each, the export still serves a new connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "blkback/blkback.h"
#include "blkback/vhost-blk.h"
#include "blkback/vhost-user.h"
#include "blkback/virtqueue.h"

#define DISK_SIZE (16u << 20)
#define MEM_SIZE  (1u << 20)
#define GPA_BASE  0x40000000ull
#define NUM	  16u
#define DESC_OFF  0x0
#define AVAIL_OFF 0x1000
#define USED_OFF  0x2000
#define HDR_OFF	  0x3000
#define STAT_OFF  0x3100
#define DATA_OFF  0x10000

enum {
	T_IN = 0,
	T_OUT = 1,
	T_FLUSH = 4,
	T_GET_ID = 8,
	T_DISCARD = 11,
	T_WRITE_ZEROES = 13,
	S_OK = 0,
	S_IOERR = 1,
	S_UNSUPP = 2,
};

struct fx {
	char dir[64], img[96], sock[96];
	struct blkback_disk *disk;
	struct blkback_export ex;
	int conn;
	int memfd;
	uint8_t *mem;
	int kick, call, err;
	uint16_t avail_idx, used_seen;
};

/* Messages. */

static void send_msg(int fd, uint32_t req, uint32_t flags, const void *p,
		     uint32_t size, const int *fds, unsigned nfds)
{
	struct blkback_vu_hdr h = {req, BLKBACK_VU_VERSION | flags, size};
	uint8_t buf[sizeof(h) + 512];
	char cbuf[CMSG_SPACE(16 * sizeof(int))] = {0};
	struct iovec iov = {buf, sizeof(h) + size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	assert_true(size <= 512);
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), p, size);
	if (nfds) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

/* Wait for fd to become readable; fails the test after 30 s rather than
 * hanging (a liveness guard, not a timing assertion). */
static void wait_in(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 30000), 1);
}

/* A reply's payload into p; returns its size. */
static uint32_t recv_reply(int fd, uint32_t req, void *p, uint32_t cap)
{
	struct blkback_vu_hdr h;

	wait_in(fd);
	assert_int_equal(recv(fd, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(h.request, req);
	assert_int_equal(h.flags, BLKBACK_VU_VERSION | BLKBACK_VU_FLAG_REPLY);
	assert_true(h.size <= cap);
	if (h.size)
		assert_int_equal(recv(fd, p, h.size, MSG_WAITALL), h.size);
	return h.size;
}

static uint64_t get_u64(int fd, uint32_t req)
{
	uint64_t v = 0;

	send_msg(fd, req, 0, NULL, 0, NULL, 0);
	assert_int_equal(recv_reply(fd, req, &v, sizeof(v)), sizeof(v));
	return v;
}

/* Send with NEED_REPLY and return the ack (0 = success). */
static uint64_t acked(int fd, uint32_t req, const void *p, uint32_t size,
		      const int *fds, unsigned nfds)
{
	uint64_t v = 99;

	send_msg(fd, req, BLKBACK_VU_FLAG_NEED_REPLY, p, size, fds, nfds);
	assert_int_equal(recv_reply(fd, req, &v, sizeof(v)), sizeof(v));
	return v;
}

/* True when the server closed the connection. */
static bool closed_by_server(int fd)
{
	char c;

	wait_in(fd);
	return recv(fd, &c, 1, 0) == 0;
}

static int connect_sock(struct fx *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, f->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* The guest's side. */

static uint64_t uva(struct fx *f, uint64_t off)
{
	return (uint64_t)(uintptr_t)f->mem + off;
}

static void set_desc(struct fx *f, unsigned i, uint64_t off, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct blkback_vring_desc d = {GPA_BASE + off, len, flags, next};

	memcpy(f->mem + DESC_OFF + 16 * i, &d, sizeof(d));
}

static void handshake(struct fx *f, uint64_t features)
{
	uint64_t want_proto = 1ull << BLKBACK_VU_PROTOCOL_F_MQ |
			      1ull << BLKBACK_VU_PROTOCOL_F_REPLY_ACK |
			      1ull << BLKBACK_VU_PROTOCOL_F_CONFIG;
	struct blkback_vu_mem mt = {.nregions = 1};
	struct blkback_vu_state st;
	struct blkback_vu_addr ad = {0};
	uint64_t v;

	f->conn = connect_sock(f);
	v = get_u64(f->conn, BLKBACK_VU_GET_FEATURES);
	assert_true(v & 1ull << BLKBACK_VU_F_PROTOCOL_FEATURES);
	assert_int_equal(get_u64(f->conn, BLKBACK_VU_GET_PROTOCOL_FEATURES),
			 want_proto);
	send_msg(f->conn, BLKBACK_VU_SET_PROTOCOL_FEATURES, 0, &want_proto, 8,
		 NULL, 0);
	assert_int_equal(get_u64(f->conn, BLKBACK_VU_GET_QUEUE_NUM), 2);
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_OWNER, NULL, 0, NULL, 0),
			 0);
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_FEATURES, &features, 8, NULL, 0),
		0);
	mt.r[0] = (struct blkback_vu_region){GPA_BASE, MEM_SIZE, uva(f, 0), 0};
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt,
			       8 + sizeof(mt.r[0]), &f->memfd, 1),
			 0);
	st = (struct blkback_vu_state){0, NUM};
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_NUM, &st,
			       sizeof(st), NULL, 0),
			 0);
	st.num = 0;
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_BASE, &st,
			       sizeof(st), NULL, 0),
			 0);
	ad.desc = uva(f, DESC_OFF);
	ad.avail = uva(f, AVAIL_OFF);
	ad.used = uva(f, USED_OFF);
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_ADDR, &ad,
			       sizeof(ad), NULL, 0),
			 0);
	v = 0;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_KICK, &v, 8, &f->kick, 1),
		0);
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_CALL, &v, 8, &f->call, 1),
		0);
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_ERR, &v, 8, &f->err, 1), 0);
	st.num = 1;
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_ENABLE, &st,
			       sizeof(st), NULL, 0),
			 0);
}

static uint64_t default_features(void)
{
	return 1ull << BLKBACK_VIRTIO_F_VERSION_1 |
	       1ull << BLKBACK_VIRTIO_RING_F_INDIRECT_DESC |
	       1ull << BLKBACK_VU_F_PROTOCOL_FEATURES |
	       1ull << BLKBACK_VIRTIO_BLK_F_FLUSH |
	       1ull << BLKBACK_VIRTIO_BLK_F_DISCARD |
	       1ull << BLKBACK_VIRTIO_BLK_F_WRITE_ZEROES |
	       1ull << BLKBACK_VIRTIO_BLK_F_CONFIG_WCE;
}

static void kick(struct fx *f)
{
	uint64_t one = 1;

	assert_int_equal(write(f->kick, &one, 8), 8);
}

/* Offer head 0, kick, wait until it is used; returns used.len. */
static uint32_t run_head(struct fx *f)
{
	struct blkback_vring_avail *a = (void *)(f->mem + AVAIL_OFF);
	struct blkback_vring_used *u = (void *)(f->mem + USED_OFF);
	uint16_t want = (uint16_t)(f->used_seen + 1);
	uint32_t len;

	a->ring[f->avail_idx % NUM] = 0;
	/* used_event (EVENT_IDX): interrupt once this one is used. */
	a->ring[NUM] = f->used_seen;
	__atomic_store_n(&a->idx, ++f->avail_idx, __ATOMIC_RELEASE);
	kick(f);
	while (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != want) {
		uint64_t v;

		wait_in(f->call);
		assert_int_equal(read(f->call, &v, 8), 8);
	}
	assert_int_equal(u->ring[f->used_seen % NUM].id, 0);
	len = u->ring[f->used_seen % NUM].len;
	f->used_seen = want;
	return len;
}

/* One virtio-blk request: header, optional data (device-readable for
 * OUT-like types, writable for IN-like), status. */
static uint8_t blk_req(struct fx *f, uint32_t type, uint64_t sector,
		       uint32_t data_len, bool data_writable, uint32_t *used)
{
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {type, 0, sector};
	uint32_t len;

	memcpy(f->mem + HDR_OFF, &h, sizeof(h));
	f->mem[STAT_OFF] = 0xee;
	set_desc(f, 0, HDR_OFF, sizeof(h), BLKBACK_VRING_DESC_F_NEXT, 1);
	if (data_len) {
		set_desc(f, 1, DATA_OFF, data_len,
			 BLKBACK_VRING_DESC_F_NEXT |
				 (data_writable ? BLKBACK_VRING_DESC_F_WRITE
						: 0),
			 2);
		set_desc(f, 2, STAT_OFF, 1, BLKBACK_VRING_DESC_F_WRITE, 0);
	} else {
		set_desc(f, 0, HDR_OFF, sizeof(h), BLKBACK_VRING_DESC_F_NEXT,
			 2);
		set_desc(f, 2, STAT_OFF, 1, BLKBACK_VRING_DESC_F_WRITE, 0);
	}
	len = run_head(f);
	if (used)
		*used = len;
	return f->mem[STAT_OFF];
}

static unsigned open_flags; /* VBD_O_* for the next setup */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vs_error *err = NULL;
	char spec[160];
	int fd;

	strcpy(f->dir, "/var/tmp/vstor-test-vu.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->img, sizeof(f->img), "%s/disk.img", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/vu.sock", f->dir);
	fd = open(f->img, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_SIZE), 0);
	close(fd);
	snprintf(spec, sizeof(spec), "raw:%s,xvdb,w", f->img);
	if (blkback_disk_open(spec, open_flags, &f->disk, &err) < 0)
		fail_msg("open: %s", vs_error_msg(err));
	f->ex = (struct blkback_export){
		.tp = &blkback_transport_vhost_user,
		.id = "vhost-user-xvdb",
		.disk = f->disk,
		.addr = f->sock,
		.opts = "num-queues=2",
	};
	if (f->ex.tp->start(&f->ex, &err) < 0)
		fail_msg("start: %s", vs_error_msg(err));
	f->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f->memfd, MEM_SIZE), 0);
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->memfd, 0);
	assert_true(f->mem != MAP_FAILED);
	f->kick = eventfd(0, EFD_CLOEXEC);
	f->call = eventfd(0, EFD_CLOEXEC);
	f->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->conn = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->conn >= 0)
		close(f->conn);
	f->ex.tp->stop(&f->ex);
	/* stop removes the socket file. */
	assert_int_equal(access(f->sock, F_OK), -1);
	blkback_disk_unref(f->disk);
	munmap(f->mem, MEM_SIZE);
	close(f->memfd);
	close(f->kick);
	close(f->call);
	close(f->err);
	unlink(f->img);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_config(void **state)
{
	struct fx *f = *state;
	struct blkback_vu_config c = {.offset = 0, .size = 60};
	uint32_t u32;
	uint64_t cap;

	f->conn = connect_sock(f);
	send_msg(f->conn, BLKBACK_VU_GET_CONFIG, 0, &c, 12 + 60, NULL, 0);
	assert_int_equal(
		recv_reply(f->conn, BLKBACK_VU_GET_CONFIG, &c, sizeof(c)),
		12 + 60);
	memcpy(&cap, c.data, 8);
	assert_int_equal(cap, DISK_SIZE / 512);
	memcpy(&u32, c.data + 20, 4); /* blk_size */
	assert_int_equal(u32, 512);
	assert_int_equal(c.data[32], 1); /* writeback */
	assert_int_equal(c.data[34], 2); /* num_queues */
	/* Beyond our struct: zeros, no over-read. */
	c = (struct blkback_vu_config){.offset = 56, .size = 200};
	send_msg(f->conn, BLKBACK_VU_GET_CONFIG, 0, &c, 12 + 200, NULL, 0);
	assert_int_equal(
		recv_reply(f->conn, BLKBACK_VU_GET_CONFIG, &c, sizeof(c)),
		12 + 200);
	assert_int_equal(c.data[0], 1); /* write_zeroes_may_unmap */
	assert_int_equal(c.data[199], 0);
	/* Only writeback is writable; with REPLY_ACK the refusal is
	 * answered and the connection stays. */
	u32 = 1ull << BLKBACK_VU_PROTOCOL_F_REPLY_ACK;
	send_msg(f->conn, BLKBACK_VU_SET_PROTOCOL_FEATURES, 0, &(uint64_t){u32},
		 8, NULL, 0);
	c = (struct blkback_vu_config){.offset = 0, .size = 8};
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_CONFIG, &c, 12 + 8, NULL, 0), 1);
	/* Out of range: offset + size past 256. */
	c = (struct blkback_vu_config){.offset = 250, .size = 8};
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_CONFIG, &c, 12 + 8, NULL, 0), 1);
	assert_int_equal(get_u64(f->conn, BLKBACK_VU_GET_QUEUE_NUM), 2);
}

static void test_io(void **state)
{
	struct fx *f = *state;
	uint8_t *data = f->mem + DATA_OFF, *buf = malloc(8192);
	uint32_t used;
	int fd;

	handshake(f, default_features());
	for (int i = 0; i < 8192; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	/* Write 8 KiB at sector 10. */
	assert_int_equal(blk_req(f, T_OUT, 10, 8192, false, &used), S_OK);
	assert_int_equal(used, 1);
	fd = open(f->img, O_RDONLY);
	assert_int_equal(pread(fd, buf, 8192, 10 * 512), 8192);
	assert_memory_equal(buf, data, 8192);
	/* Read it back into a cleared buffer. */
	memset(data, 0, 8192);
	assert_int_equal(blk_req(f, T_IN, 10, 8192, true, &used), S_OK);
	assert_int_equal(used, 8193);
	assert_memory_equal(buf, data, 8192);
	assert_int_equal(blk_req(f, T_FLUSH, 0, 0, false, NULL), S_OK);
	/* GET_ID: the disk's name, NUL-padded to 20 bytes. */
	memset(data, 'x', 20);
	assert_int_equal(blk_req(f, T_GET_ID, 0, 20, true, &used), S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(data, "xvdb\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);

	/* WRITE_ZEROES with unmap over the first 4 KiB written. */
	{
		struct {
			uint64_t sector;
			uint32_t num, flags;
		} r = {10, 8, 1};

		memcpy(data, &r, sizeof(r));
		assert_int_equal(blk_req(f, T_WRITE_ZEROES, 0, 16, false, NULL),
				 S_OK);
		assert_int_equal(pread(fd, buf, 8192, 10 * 512), 8192);
		for (int i = 0; i < 4096; i++)
			assert_int_equal(buf[i], 0);
		assert_int_equal(buf[4096], (uint8_t)(4096 * 7 + 3));
		/* DISCARD: no unmap flag allowed; a valid one succeeds. */
		assert_int_equal(blk_req(f, T_DISCARD, 0, 16, false, NULL),
				 S_UNSUPP);
		r.flags = 0;
		memcpy(data, &r, sizeof(r));
		assert_int_equal(blk_req(f, T_DISCARD, 0, 16, false, NULL),
				 S_OK);
		/* A range past the end, a partial range, no range. */
		r.sector = DISK_SIZE / 512 - 4;
		memcpy(data, &r, sizeof(r));
		assert_int_equal(blk_req(f, T_WRITE_ZEROES, 0, 16, false, NULL),
				 S_IOERR);
		assert_int_equal(blk_req(f, T_DISCARD, 0, 15, false, NULL),
				 S_IOERR);
		assert_int_equal(blk_req(f, T_DISCARD, 0, 0, false, NULL),
				 S_IOERR);
	}
	close(fd);

	/* Refusals: past the end, sector overflow, not whole sectors, no
	 * data, unknown type. */
	assert_int_equal(
		blk_req(f, T_IN, DISK_SIZE / 512 - 1, 1024, true, &used),
		S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(blk_req(f, T_OUT, UINT64_MAX / 256, 512, false, NULL),
			 S_IOERR);
	assert_int_equal(blk_req(f, T_IN, 0, 100, true, NULL), S_IOERR);
	assert_int_equal(blk_req(f, T_OUT, 0, 0, false, NULL), S_IOERR);
	assert_int_equal(blk_req(f, 99, 0, 0, false, NULL), S_UNSUPP);

	/* A data buffer outside guest memory fails that request only. */
	set_desc(f, 0, HDR_OFF, 16, BLKBACK_VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, MEM_SIZE, 512, BLKBACK_VRING_DESC_F_NEXT, 2);
	f->mem[STAT_OFF] = 0xee;
	assert_int_equal(run_head(f), 1);
	assert_int_equal(f->mem[STAT_OFF], S_IOERR);

	/* GET_VRING_BASE stops the ring and says how far it got. */
	{
		struct blkback_vu_state st = {0, 0};

		send_msg(f->conn, BLKBACK_VU_GET_VRING_BASE, 0, &st, sizeof(st),
			 NULL, 0);
		assert_int_equal(recv_reply(f->conn, BLKBACK_VU_GET_VRING_BASE,
					    &st, sizeof(st)),
				 sizeof(st));
		assert_int_equal(st.index, 0);
		assert_int_equal(st.num, f->avail_idx);
	}
	free(buf);
}

static void test_broken_ring(void **state)
{
	struct fx *f = *state;
	struct blkback_vring_avail *a = (void *)(f->mem + AVAIL_OFF);
	uint64_t v;

	handshake(f, default_features());
	/* A loop: the queue stops and the error fd fires. */
	set_desc(f, 0, HDR_OFF, 16, BLKBACK_VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, HDR_OFF, 16, BLKBACK_VRING_DESC_F_NEXT, 0);
	a->ring[0] = 0;
	__atomic_store_n(&a->idx, ++f->avail_idx, __ATOMIC_RELEASE);
	kick(f);
	wait_in(f->err);
	assert_int_equal(read(f->err, &v, 8), 8);
	/* A good request now, and a new memory table (which restarts the
	 * queue): the broken queue takes nothing more. */
	set_desc(f, 0, HDR_OFF, 16, BLKBACK_VRING_DESC_F_NEXT, 2);
	set_desc(f, 2, STAT_OFF, 1, BLKBACK_VRING_DESC_F_WRITE, 0);
	memset(f->mem + HDR_OFF, 0, 16);
	f->mem[HDR_OFF] = T_FLUSH;
	a->ring[1] = 0;
	__atomic_store_n(&a->idx, ++f->avail_idx, __ATOMIC_RELEASE);
	{
		struct blkback_vu_mem mt = {.nregions = 1};
		struct blkback_vu_state st = {0, 0};

		mt.r[0] = (struct blkback_vu_region){GPA_BASE, MEM_SIZE,
						     uva(f, 0), 0};
		assert_int_equal(acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt,
				       8 + sizeof(mt.r[0]), &f->memfd, 1),
				 0);
		send_msg(f->conn, BLKBACK_VU_GET_VRING_BASE, 0, &st, sizeof(st),
			 NULL, 0);
		recv_reply(f->conn, BLKBACK_VU_GET_VRING_BASE, &st, sizeof(st));
		assert_int_equal(st.num, 1);
	}
	/* The connection still answers; a reconnect gets a fresh device. */
	assert_int_equal(get_u64(f->conn, BLKBACK_VU_GET_QUEUE_NUM), 2);
	close(f->conn);
	memset(f->mem, 0, 0x3000);
	f->avail_idx = f->used_seen = 0;
	handshake(f, default_features());
	assert_int_equal(blk_req(f, T_FLUSH, 0, 0, false, NULL), S_OK);
}

static void test_hostile_messages(void **state)
{
	struct fx *f = *state;
	struct blkback_vu_mem mt = {.nregions = 9};
	struct blkback_vu_state st = {0, 3};
	struct blkback_vu_addr ad = {0};
	uint64_t v = 1ull << BLKBACK_VU_PROTOCOL_F_REPLY_ACK;
	int fds[2] = {f->kick, f->call};
	int second;

	f->conn = connect_sock(f);
	send_msg(f->conn, BLKBACK_VU_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0);
	/* Too many regions; regions without fds; an empty region. */
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 8, NULL, 0), 1);
	mt.nregions = 1;
	mt.r[0] = (struct blkback_vu_region){0, MEM_SIZE, uva(f, 0), 0};
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 40, NULL, 0), 1);
	mt.r[0].size = 0;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 40, &f->memfd, 1),
		1);
	/* Larger than the memfd: would SIGBUS when touched. */
	mt.r[0].size = 2 * MEM_SIZE;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 40, &f->memfd, 1),
		1);
	/* Not a memory file. */
	mt.r[0].size = MEM_SIZE;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 40, &f->kick, 1),
		1);
	/* Offset + size overflowing. */
	mt.r[0] = (struct blkback_vu_region){0, MEM_SIZE, 0, UINT64_MAX - 10};
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 40, &f->memfd, 1),
		1);
	/* Queue sizes, indices, payload sizes. */
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_NUM, &st,
			       sizeof(st), NULL, 0),
			 1);
	st = (struct blkback_vu_state){2, 16};
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_NUM, &st,
			       sizeof(st), NULL, 0),
			 1);
	st = (struct blkback_vu_state){0, 65536};
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_NUM, &st,
			       sizeof(st), NULL, 0),
			 1);
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_NUM, &st, 4, NULL, 0), 1);
	/* Ring addresses outside memory: refused when the kick starts it. */
	mt.r[0] = (struct blkback_vu_region){GPA_BASE, MEM_SIZE, uva(f, 0), 0};
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_MEM_TABLE, &mt, 40, &f->memfd, 1),
		0);
	st = (struct blkback_vu_state){0, 16};
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_NUM, &st,
			       sizeof(st), NULL, 0),
			 0);
	ad.desc = uva(f, MEM_SIZE - 16);
	ad.avail = uva(f, AVAIL_OFF);
	ad.used = uva(f, USED_OFF);
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_ADDR, &ad,
			       sizeof(ad), NULL, 0),
			 0);
	st = (struct blkback_vu_state){0, 1};
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_VRING_ENABLE, &st,
			       sizeof(st), NULL, 0),
			 0);
	v = 0;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_KICK, &v, 8, &f->kick, 1),
		1);
	/* Two fds for one, none for one, an fd with the no-fd flag. */
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_CALL, &v, 8, fds, 2), 1);
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_CALL, &v, 8, NULL, 0), 1);
	v = BLKBACK_VU_VRING_NOFD;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_VRING_CALL, &v, 8, fds, 1), 1);
	/* Features not offered. */
	v = 1ull << 63;
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_FEATURES, &v, 8, NULL, 0), 1);
	/* Unknown request: answered when asked to. */
	assert_int_equal(acked(f->conn, 77, NULL, 0, NULL, 0), 1);
	/* Fds on a message that takes none are closed, not kept. */
	assert_int_equal(acked(f->conn, BLKBACK_VU_SET_OWNER, NULL, 0, fds, 2),
			 0);

	/* A second front-end is turned away. */
	second = connect_sock(f);
	assert_true(closed_by_server(second));
	close(second);

	/* Unknown request without REPLY_ACK: the connection ends. */
	send_msg(f->conn, 77, 0, NULL, 0, NULL, 0);
	assert_true(closed_by_server(f->conn));
	close(f->conn);

	/* Oversized payload, wrong version: the connection ends. */
	f->conn = connect_sock(f);
	{
		struct blkback_vu_hdr h = {BLKBACK_VU_SET_FEATURES,
					   BLKBACK_VU_VERSION, 1u << 20};

		assert_int_equal(send(f->conn, &h, sizeof(h), 0), sizeof(h));
		assert_true(closed_by_server(f->conn));
		close(f->conn);
		f->conn = connect_sock(f);
		h = (struct blkback_vu_hdr){BLKBACK_VU_GET_FEATURES, 2, 0};
		assert_int_equal(send(f->conn, &h, sizeof(h), 0), sizeof(h));
		assert_true(closed_by_server(f->conn));
		close(f->conn);
	}
	/* A half message, then the front-end goes away. */
	f->conn = connect_sock(f);
	assert_int_equal(send(f->conn, "\x01\x00", 2, 0), 2);
	close(f->conn);

	/* After all that, a normal front-end still works. */
	handshake(f, default_features());
	assert_int_equal(blk_req(f, T_FLUSH, 0, 0, false, NULL), S_OK);
}

static void test_write_through(void **state)
{
	struct fx *f = *state;
	struct blkback_vu_config c = {.offset = 32, .size = 1, .data = {0}};
	struct blkback_stats st;

	handshake(f, default_features());
	assert_int_equal(
		acked(f->conn, BLKBACK_VU_SET_CONFIG, &c, 12 + 1, NULL, 0), 0);
	c = (struct blkback_vu_config){.offset = 0, .size = 60};
	send_msg(f->conn, BLKBACK_VU_GET_CONFIG, 0, &c, 12 + 60, NULL, 0);
	recv_reply(f->conn, BLKBACK_VU_GET_CONFIG, &c, sizeof(c));
	assert_int_equal(c.data[32], 0);
	/* Writes still work with the cache off (they carry FUA). */
	assert_int_equal(blk_req(f, T_OUT, 0, 512, false, NULL), S_OK);
	blkback_disk_stats(f->disk, &st);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].ops, 1);
}

static int setup_ro(void **state)
{
	open_flags = VBD_O_RDONLY;
	setup(state);
	open_flags = 0;
	return 0;
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	uint64_t feat;

	f->conn = connect_sock(f);
	feat = get_u64(f->conn, BLKBACK_VU_GET_FEATURES);
	close(f->conn);
	assert_true(feat & 1ull << BLKBACK_VIRTIO_BLK_F_RO);
	assert_false(feat & 1ull << BLKBACK_VIRTIO_BLK_F_DISCARD);
	assert_false(feat & 1ull << BLKBACK_VIRTIO_BLK_F_WRITE_ZEROES);
	handshake(f, 1ull << BLKBACK_VIRTIO_F_VERSION_1 |
			     1ull << BLKBACK_VU_F_PROTOCOL_FEATURES |
			     1ull << BLKBACK_VIRTIO_BLK_F_RO);
	/* A driver that writes anyway gets an error; reads work. */
	assert_int_equal(blk_req(f, T_OUT, 0, 512, false, NULL), S_IOERR);
	assert_int_equal(blk_req(f, T_IN, 0, 512, true, NULL), S_OK);
}

/* EVENT_IDX: interrupts come when used_event is crossed, and the device
 * publishes avail_event; many requests in a row still complete. */
static void test_event_idx(void **state)
{
	struct fx *f = *state;
	struct blkback_vring_used *u = (void *)(f->mem + USED_OFF);

	handshake(f,
		  default_features() | 1ull << BLKBACK_VIRTIO_RING_F_EVENT_IDX);
	for (int i = 0; i < 3 * (int)NUM; i++) {
		assert_int_equal(blk_req(f, i % 2 ? T_IN : T_OUT,
					 (uint64_t)i * 8, 4096, i % 2, NULL),
				 S_OK);
		/* avail_event: the device asks for the next kick (it
		 * writes it when its batch ends, maybe after the used
		 * entry shows: wait, bounded). */
		for (int t = 0;
		     t < 30000 &&
		     __atomic_load_n((uint16_t *)&u->ring[NUM],
				     __ATOMIC_ACQUIRE) != f->avail_idx;
		     t++)
			usleep(1000);
		assert_int_equal(*(volatile uint16_t *)&u->ring[NUM],
				 f->avail_idx);
	}
}

/* Every head in flight at once through indirect tables, then each head
 * offered a second time before it came back (a driver may not, a
 * hostile one will): at most a queue's worth is in flight, all complete,
 * each read fills its own buffer. */
static void test_many_in_flight(void **state)
{
	struct fx *f = *state;
	struct blkback_vring_avail *a = (void *)(f->mem + AVAIL_OFF);
	struct blkback_vring_used *u = (void *)(f->mem + USED_OFF);
	uint8_t *ref = malloc(NUM * 4096);
	int fd = open(f->img, O_RDWR);

	for (unsigned i = 0; i < NUM * 4096; i++)
		ref[i] = (uint8_t)(i * 13 + i / 4096);
	assert_int_equal(pwrite(fd, ref, NUM * 4096, 0), NUM * 4096);
	close(fd);
	handshake(f,
		  default_features() | 1ull << BLKBACK_VIRTIO_RING_F_EVENT_IDX);
	for (unsigned i = 0; i < NUM; i++) {
		uint64_t tbl = 0x4000 + 64 * i, hdr = 0x5000 + 16 * i;
		uint64_t st = 0x6000 + i, data = DATA_OFF + 4096 * i;
		struct blkback_vring_desc d[3] = {
			{GPA_BASE + hdr, 16, BLKBACK_VRING_DESC_F_NEXT, 1},
			{GPA_BASE + data, 4096,
			 BLKBACK_VRING_DESC_F_NEXT | BLKBACK_VRING_DESC_F_WRITE,
			 2},
			{GPA_BASE + st, 1, BLKBACK_VRING_DESC_F_WRITE, 0},
		};
		uint32_t h[4] = {T_IN, 0, i * 8, 0};

		memcpy(f->mem + tbl, d, sizeof(d));
		memcpy(f->mem + hdr, h, 16);
		set_desc(f, i, tbl, sizeof(d), BLKBACK_VRING_DESC_F_INDIRECT,
			 0);
	}
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < NUM; i++)
			a->ring[(f->avail_idx + i) % NUM] = (uint16_t)i;
		a->ring[NUM] = (uint16_t)(f->avail_idx + NUM - 1);
		f->avail_idx = (uint16_t)(f->avail_idx + NUM);
		__atomic_store_n(&a->idx, f->avail_idx, __ATOMIC_RELEASE);
		kick(f);
		/* More than a queue's worth ahead of what the device took
		 * would break the ring: wait until it took them all (it
		 * then asks for the next kick in avail_event). */
		for (int t = 0;
		     t < 30000 &&
		     __atomic_load_n((uint16_t *)&u->ring[NUM],
				     __ATOMIC_ACQUIRE) != f->avail_idx;
		     t++)
			usleep(1000);
	}
	while (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != 2 * NUM) {
		uint64_t v;

		/* used_event: wake me when everything is back. */
		a->ring[NUM] = 2 * NUM - 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == 2 * NUM)
			break;
		wait_in(f->call);
		assert_int_equal(read(f->call, &v, 8), 8);
	}
	assert_int_equal(*(uint16_t *)&u->ring[NUM], 2 * NUM);
	for (unsigned i = 0; i < NUM; i++) {
		assert_int_equal(f->mem[0x6000 + i], S_OK);
		assert_int_equal(u->ring[i].len, 4097);
	}
	assert_memory_equal(f->mem + DATA_OFF, ref, NUM * 4096);
	free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_messages, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_write_through, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
