/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the NBD transport, in process: starting and stopping an
 * export (options, socket files, stale sockets, TCP on port 0), a whole
 * client session written by hand (handshake, GO, every command, replies
 * matched by handle, statistics), and stopping while a client has
 * requests in flight and reads none of its replies.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "blkback/blkback.h"
#include "blkback/nbd-proto.h"
#include "blkback/server.h"
#include "vbd/vbd.h"

#define DISK_SIZE (8u << 20)

struct fixture {
	char dir[64];
	char img[96];
	char sock[96];
	struct blkback_disk *disk;
	struct blkback_export ex;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vs_error *err = NULL;
	char spec[160];
	FILE *fp;

	strcpy(f->dir, "/var/tmp/vstor-test-nbd.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->img, sizeof(f->img), "%s/d.raw", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/nbd.sock", f->dir);
	fp = fopen(f->img, "w");
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), DISK_SIZE), 0);
	fclose(fp);
	snprintf(spec, sizeof(spec), "raw:%s,xvda,w", f->img);
	assert_int_equal(blkback_disk_open(spec, 0, &f->disk, &err), 0);
	assert_int_equal(blkback_disks_add(f->disk, &err), 0);
	f->ex = (struct blkback_export){
		.tp = &blkback_transport_nbd,
		.id = "nbd0",
		.addr = f->sock,
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = blkback_disks_remove("xvda");

	if (d)
		blkback_disk_unref(d);
	blkback_disk_unref(f->disk);
	unlink(f->img);
	unlink(f->sock);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A client by hand. */

static void xwrite(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static int xread(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	struct nbd_opt_hdr h = {htobe64(NBD_OPTS_MAGIC), htobe32(opt),
				htobe32(len)};

	xwrite(fd, &h, sizeof(h));
	if (len)
		xwrite(fd, data, len);
}

/* One option reply: its type; the payload goes to buf (cap bytes). */
static uint32_t read_rep(int fd, uint32_t opt, void *buf, size_t cap,
			 uint32_t *len)
{
	struct nbd_opt_reply r;

	assert_int_equal(xread(fd, &r, sizeof(r)), 0);
	assert_true(be64toh(r.magic) == NBD_OPT_REP_MAGIC);
	assert_int_equal(be32toh(r.option), opt);
	*len = be32toh(r.length);
	assert_true(*len <= cap);
	assert_int_equal(xread(fd, buf, *len), 0);
	return be32toh(r.type);
}

/* Greeting, structured replies, base:allocation, GO "xvda". */
static int open_session(const char *path, uint64_t *size, uint16_t *tflags)
{
	int fd = connect_unix(path);
	uint8_t hello[18], buf[512];
	uint32_t cflags = htobe32(NBD_FLAG_C_FIXED_NEWSTYLE |
				  NBD_FLAG_C_NO_ZEROES),
		 len, type;
	static const uint8_t meta[] = {0,   0,	 0,   4,   'x', 'v', 'd', 'a',
				       0,   0,	 0,   1,   0,	0,   0,	  15,
				       'b', 'a', 's', 'e', ':', 'a', 'l', 'l',
				       'o', 'c', 'a', 't', 'i', 'o', 'n'};
	static const uint8_t go[] = {0, 0, 0, 4, 'x', 'v', 'd', 'a', 0, 0};

	assert_int_equal(xread(fd, hello, sizeof(hello)), 0);
	assert_memory_equal(hello, "NBDMAGICIHAVEOPT", 16);
	xwrite(fd, &cflags, 4);
	send_opt(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	assert_int_equal(
		read_rep(fd, NBD_OPT_STRUCTURED_REPLY, buf, sizeof(buf), &len),
		NBD_REP_ACK);
	send_opt(fd, NBD_OPT_SET_META_CONTEXT, meta, sizeof(meta));
	assert_int_equal(
		read_rep(fd, NBD_OPT_SET_META_CONTEXT, buf, sizeof(buf), &len),
		NBD_REP_META_CONTEXT);
	assert_int_equal(len, 4 + 15);
	assert_int_equal(
		read_rep(fd, NBD_OPT_SET_META_CONTEXT, buf, sizeof(buf), &len),
		NBD_REP_ACK);
	send_opt(fd, NBD_OPT_GO, go, sizeof(go));
	while ((type = read_rep(fd, NBD_OPT_GO, buf, sizeof(buf), &len)) ==
	       NBD_REP_INFO) {
		uint16_t info;

		memcpy(&info, buf, 2);
		if (be16toh(info) == NBD_INFO_EXPORT) {
			struct nbd_info_export ie;

			assert_int_equal(len, sizeof(ie));
			memcpy(&ie, buf, sizeof(ie));
			*size = be64toh(ie.size);
			*tflags = be16toh(ie.flags);
		}
	}
	assert_int_equal(type, NBD_REP_ACK);
	return fd;
}

static void send_req(int fd, uint16_t type, uint16_t flags, uint64_t handle,
		     uint64_t offset, uint32_t len, const void *payload)
{
	struct nbd_request r = {htobe32(NBD_REQUEST_MAGIC),
				htobe16(flags),
				htobe16(type),
				htobe64(handle),
				htobe64(offset),
				htobe32(len)};

	xwrite(fd, &r, sizeof(r));
	if (payload)
		xwrite(fd, payload, len);
}

/* One structured or simple reply (a single chunk with DONE, as our
 * server sends them): handle, NBD error, payload into buf. */
static uint64_t read_reply(int fd, uint32_t *error, void *buf, size_t cap,
			   size_t *len)
{
	uint32_t magic;

	*len = 0;
	assert_int_equal(xread(fd, &magic, 4), 0);
	if (be32toh(magic) == NBD_SIMPLE_REPLY_MAGIC) {
		struct {
			uint32_t error;
			uint64_t handle;
		} __attribute__((packed)) r;

		assert_int_equal(xread(fd, &r, sizeof(r)), 0);
		*error = be32toh(r.error);
		return be64toh(r.handle);
	}
	assert_true(be32toh(magic) == NBD_STRUCTURED_REPLY_MAGIC);
	struct {
		uint16_t flags, type;
		uint64_t handle;
		uint32_t length;
	} __attribute__((packed)) c;
	assert_int_equal(xread(fd, &c, sizeof(c)), 0);
	assert_true(be16toh(c.flags) & NBD_REPLY_FLAG_DONE);
	*len = be32toh(c.length);
	assert_true(*len <= cap);
	assert_int_equal(xread(fd, buf, *len), 0);
	*error = 0;
	if (be16toh(c.type) & 0x8000) {
		uint32_t e;

		memcpy(&e, buf, 4);
		*error = be32toh(e);
	}
	return be64toh(c.handle);
}

/* Starting and stopping. */

static void test_bad_options(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	const char *bad[] = {"bogus=1",
			     "max-connections=0",
			     "max-connections=100000",
			     "max-connections=x",
			     "handshake-timeout=3601",
			     "handshake-timeout=-1"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->ex.opts = (char *)bad[i];
		assert_true(blkback_transport_nbd.start(&f->ex, &err) < 0);
		assert_non_null(err);
		vs_error_free(err);
		err = NULL;
		assert_int_equal(access(f->sock, F_OK), -1);
	}
	f->ex.opts = NULL;
}

static void test_bad_paths(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	char path[160];
	FILE *fp;

	/* A missing directory: named in the message. */
	snprintf(path, sizeof(path), "%s/missing/nbd.sock", f->dir);
	f->ex.addr = path;
	assert_true(blkback_transport_nbd.start(&f->ex, &err) < 0);
	assert_non_null(strstr(vs_error_msg(err), path));
	vs_error_free(err);
	err = NULL;

	/* A regular file is never replaced. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	fp = fopen(path, "w");
	fputs("keep", fp);
	fclose(fp);
	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err),
			 -EADDRINUSE);
	vs_error_free(err);
	err = NULL;
	fp = fopen(path, "r");
	char got[8] = "";
	assert_non_null(fgets(got, sizeof(got), fp));
	fclose(fp);
	assert_string_equal(got, "keep");
	unlink(path);

	/* Bad TCP addresses. */
	const char *tcp[] = {"tcp:", "tcp:127.0.0.1", "tcp:[::1", "tcp::99",
			     "tcp:127.0.0.1:notaport"};
	for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++) {
		f->ex.addr = (char *)tcp[i];
		assert_true(blkback_transport_nbd.start(&f->ex, &err) < 0);
		assert_non_null(err);
		vs_error_free(err);
		err = NULL;
	}
	f->ex.addr = f->sock;
}

static void test_unix_socket(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	/* A stale socket file (its server died) is taken over. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, f->sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	f->ex.addr = f->sock;
	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A live one is not. */
	struct blkback_export other = f->ex;
	other.priv = NULL;
	assert_int_equal(blkback_transport_nbd.start(&other, &err),
			 -EADDRINUSE);
	vs_error_free(err);

	blkback_transport_nbd.stop(&f->ex);
	assert_int_equal(access(f->sock, F_OK), -1);
}

static void test_tcp_describe(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct json_object *o = json_object_new_object(), *v;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const char *bound;
	int fd, port;
	uint8_t hello[18];

	f->ex.addr = "tcp:127.0.0.1:0";
	f->ex.opts = "max-connections=2";
	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	blkback_transport_nbd.describe(&f->ex, o);
	assert_true(json_object_object_get_ex(o, "listening", &v));
	bound = json_object_get_string(v);
	assert_int_equal(sscanf(bound, "tcp:127.0.0.1:%d", &port), 1);
	assert_true(port > 0);
	assert_true(json_object_object_get_ex(o, "max-connections", &v));
	assert_int_equal(json_object_get_int(v), 2);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(xread(fd, hello, sizeof(hello)), 0);
	assert_memory_equal(hello, "NBDMAGICIHAVEOPT", 16);
	close(fd);

	blkback_transport_nbd.stop(&f->ex);
	json_object_put(o);
	f->ex.addr = f->sock;
	f->ex.opts = NULL;
}

/* A whole session. */

static void test_session(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	static uint8_t wbuf[65536], rbuf[65536 + 64];
	struct blkback_stats st;
	uint64_t size = 0, h;
	uint16_t tflags = 0;
	uint32_t error;
	size_t len;
	int fd;

	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	fd = open_session(f->sock, &size, &tflags);
	assert_int_equal(size, DISK_SIZE);
	assert_true(tflags & NBD_FLAG_HAS_FLAGS);
	assert_true(tflags & NBD_FLAG_SEND_FLUSH);
	assert_true(tflags & NBD_FLAG_CAN_MULTI_CONN);
	assert_true(tflags & NBD_FLAG_SEND_DF);
	assert_false(tflags & NBD_FLAG_READ_ONLY);

	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 13 + 7);
	/* Two writes and a flush in flight at once; replies by handle. */
	send_req(fd, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 1, 4096, sizeof(wbuf),
		 wbuf);
	send_req(fd, NBD_CMD_WRITE, 0, 2, 1 << 20, 512, wbuf);
	send_req(fd, NBD_CMD_FLUSH, 0, 3, 0, 0, NULL);
	unsigned seen = 0;
	for (int i = 0; i < 3; i++) {
		h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
		assert_true(h >= 1 && h <= 3);
		assert_int_equal(error, 0);
		assert_false(seen & (1u << h));
		seen |= 1u << h;
	}

	/* The data reads back in one OFFSET_DATA chunk. */
	send_req(fd, NBD_CMD_READ, NBD_CMD_FLAG_DF, 4, 4096, sizeof(wbuf),
		 NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 4);
	assert_int_equal(error, 0);
	assert_int_equal(len, 8 + sizeof(wbuf));
	uint64_t off;
	memcpy(&off, rbuf, 8);
	assert_int_equal(be64toh(off), 4096);
	assert_memory_equal(rbuf + 8, wbuf, sizeof(wbuf));

	/* Block status: the written range is data. */
	send_req(fd, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 5, 4096, 4096,
		 NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 5);
	assert_int_equal(error, 0);
	assert_int_equal(len, 4 + 8);
	struct nbd_block_descriptor bd;
	memcpy(&bd, rbuf + 4, 8);
	assert_int_equal(be32toh(bd.flags) & NBD_STATE_HOLE, 0);
	assert_true(be32toh(bd.length) >= 1 && be32toh(bd.length) <= 4096);

	/* Errors, each for its own handle; the session goes on. */
	send_req(fd, NBD_CMD_READ, 0, 6, DISK_SIZE, 512, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 6);
	assert_int_equal(error, NBD_EINVAL);
	send_req(fd, NBD_CMD_WRITE_ZEROES, 0, 7, DISK_SIZE - 512, 1024, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 7);
	assert_int_equal(error, NBD_ENOSPC);
	send_req(fd, 42, 0, 8, 0, 0, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 8);
	assert_int_equal(error, NBD_EINVAL);

	/* Zeroes, then the range reads as zeros. */
	send_req(fd, NBD_CMD_WRITE_ZEROES, 0, 9, 4096, 8192, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(error, 0);
	send_req(fd, NBD_CMD_READ, 0, 10, 4096, 8192, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 10);
	for (size_t i = 0; i < 8192; i++)
		assert_int_equal(rbuf[8 + i], 0);

	/* FAST_ZERO: done, or NBD_ENOTSUP at once, never a slow write. */
	memset(wbuf, 0xee, 4096);
	send_req(fd, NBD_CMD_WRITE, 0, 12, 1 << 20, 4096, wbuf);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(error, 0);
	send_req(fd, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 13, 1 << 20,
		 4096, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(h, 13);
	assert_true(error == 0 || error == NBD_ENOTSUP);
	uint8_t want = error == 0 ? 0 : 0xee;
	send_req(fd, NBD_CMD_READ, 0, 14, 1 << 20, 4096, NULL);
	h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
	assert_int_equal(error, 0);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(rbuf[8 + i], want);

	send_req(fd, NBD_CMD_DISC, 0, 11, 0, 0, NULL);
	assert_int_equal(recv(fd, rbuf, 1, 0), 0);
	close(fd);

	blkback_disk_stats(f->disk, &st);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].ops, 3);
	assert_int_equal(st.op[BLKBACK_OP_WRITE].bytes,
			 sizeof(wbuf) + 512 + 4096);
	assert_int_equal(st.op[BLKBACK_OP_READ].ops, 4);
	assert_int_equal(st.op[BLKBACK_OP_WRITE_ZEROES].errors, 1);
	blkback_transport_nbd.stop(&f->ex);
}

/*
 * A client with 1 MiB reads in flight that reads no reply: its replies
 * fill the socket, the writer blocks on it, and stop must still return
 * (and free everything, which ASan checks).
 */
static void test_stop_with_stalled_client(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct timeval tv = {.tv_sec = 2};
	uint64_t size;
	uint16_t tflags;
	int fd, sent = 0;

	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	fd = open_session(f->sock, &size, &tflags);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 10000; i++) {
		struct nbd_request r = {
			htobe32(NBD_REQUEST_MAGIC), 0, htobe16(NBD_CMD_READ),
			htobe64((uint64_t)i),	    0, htobe32(1u << 20)};

		if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) != sizeof(r))
			break;
		sent++;
	}
	/* More than the slots: the server stopped reading requests. */
	assert_true(sent > 64);
	blkback_transport_nbd.stop(&f->ex);
	close(fd);
	assert_int_equal(access(f->sock, F_OK), -1);
}

/*
 * Hundreds of requests sent in one go, as a client with a deep queue
 * sends them: the reader works through them with their replies held
 * back (the cork), sends them in bursts when it holds enough or must
 * wait for a free slot, and large replies that do not fit the socket
 * go on from the writer.  Every request gets exactly one reply, whole,
 * with its own data.
 */
static void test_pipelined_burst(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct timeval tv = {.tv_sec = 10};
	enum { N = 400, BLK = 4096 };
	static uint8_t img[DISK_SIZE], rbuf[65536 + 64];
	static struct nbd_request rq[N];
	uint8_t seen[N] = {0};
	uint64_t size;
	uint16_t tflags;
	int fd, imgfd;

	for (size_t i = 0; i < DISK_SIZE; i++)
		img[i] = (uint8_t)((i / BLK) * 31 + i % 251);
	imgfd = open(f->img, O_WRONLY);
	assert_true(imgfd >= 0);
	assert_int_equal(pwrite(imgfd, img, DISK_SIZE, 0), DISK_SIZE);
	close(imgfd);

	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	fd = open_session(f->sock, &size, &tflags);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* 4 KiB reads here and there, every 16th one 64 KiB. */
	for (uint32_t i = 0; i < N; i++) {
		uint32_t len = i % 16 == 0 ? 65536 : BLK;
		uint64_t off = ((uint64_t)i * 7919 * BLK) % (DISK_SIZE - len);

		rq[i] = (struct nbd_request){htobe32(NBD_REQUEST_MAGIC),
					     0,
					     htobe16(NBD_CMD_READ),
					     htobe64(i),
					     htobe64(off),
					     htobe32(len)};
	}
	xwrite(fd, rq, sizeof(rq));
	for (int k = 0; k < N; k++) {
		uint32_t error;
		size_t len;
		uint64_t h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);
		uint64_t off;

		assert_true(h < N);
		assert_false(seen[h]);
		seen[h] = 1;
		assert_int_equal(error, 0);
		assert_int_equal(len, 8 + be32toh(rq[h].length));
		memcpy(&off, rbuf, 8);
		assert_int_equal(be64toh(off), be64toh(rq[h].offset));
		assert_memory_equal(rbuf + 8, img + be64toh(rq[h].offset),
				    len - 8);
	}
	send_req(fd, NBD_CMD_DISC, 0, N, 0, 0, NULL);
	assert_int_equal(recv(fd, rbuf, 1, 0), 0);
	close(fd);
	blkback_transport_nbd.stop(&f->ex);
}

/*
 * Hundreds of writes sent in one go, then a disconnect.  The writes
 * finish in batches (the io_uring reaper's completions on a raw image,
 * a qcow2 image's write lane), whose small replies are held and sent
 * when each batch ends (vbd_batch_defer).  Every write gets exactly one
 * reply before the server closes, even though the reader stopped
 * reading at the disconnect; a second session reads every block back.
 */
static void pipelined_writes(struct fixture *f)
{
	struct vs_error *err = NULL;
	struct timeval tv = {.tv_sec = 10};
	enum { N = 400, BLK = 4096 };
	static struct {
		struct nbd_request rq;
		uint8_t d[BLK];
	} __attribute__((packed)) w[N];
	static uint8_t rbuf[BLK + 64];
	uint8_t seen[N] = {0};
	uint64_t size;
	uint16_t tflags;
	int fd;

	assert_true(DISK_SIZE / BLK > N);
	for (uint32_t i = 0; i < N; i++) {
		/* 7919 is prime: distinct blocks for the first 2048. */
		uint64_t off = (uint64_t)i * 7919 % (DISK_SIZE / BLK) * BLK;

		w[i].rq = (struct nbd_request){htobe32(NBD_REQUEST_MAGIC),
					       0,
					       htobe16(NBD_CMD_WRITE),
					       htobe64(i),
					       htobe64(off),
					       htobe32(BLK)};
		for (uint32_t j = 0; j < BLK; j++)
			w[i].d[j] = (uint8_t)((i * 131 + j * 7) ^ 0x5a);
	}

	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	fd = open_session(f->sock, &size, &tflags);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	xwrite(fd, w, sizeof(w));
	send_req(fd, NBD_CMD_DISC, 0, N, 0, 0, NULL);
	for (int k = 0; k < N; k++) {
		uint32_t error;
		size_t len;
		uint64_t h = read_reply(fd, &error, rbuf, sizeof(rbuf), &len);

		assert_true(h < N);
		assert_false(seen[h]);
		seen[h] = 1;
		assert_int_equal(error, 0);
		assert_int_equal(len, 0);
	}
	assert_int_equal(recv(fd, rbuf, 1, 0), 0);
	close(fd);

	fd = open_session(f->sock, &size, &tflags);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (uint32_t i = 0; i < N; i++) {
		uint32_t error;
		size_t len;

		send_req(fd, NBD_CMD_READ, 0, i, be64toh(w[i].rq.offset), BLK,
			 NULL);
		assert_int_equal(
			read_reply(fd, &error, rbuf, sizeof(rbuf), &len), i);
		assert_int_equal(error, 0);
		assert_int_equal(len, 8 + BLK);
		assert_memory_equal(rbuf + 8, w[i].d, BLK);
	}
	send_req(fd, NBD_CMD_DISC, 0, N, 0, 0, NULL);
	assert_int_equal(recv(fd, rbuf, 1, 0), 0);
	close(fd);
	blkback_transport_nbd.stop(&f->ex);
}

static void test_pipelined_writes_raw(void **state)
{
	pipelined_writes(*state);
}

/* The same on a qcow2 image with every cluster allocated, so that the
 * writes go in place (through the image's lane where the file system
 * has no RWF_NOWAIT writes, as ext4). */
static void test_pipelined_writes_qcow2(void **state)
{
	struct fixture *f = *state;
	struct blkback_disk *d = blkback_disks_remove("xvda");
	struct vs_error *err = NULL;
	static uint8_t buf[DISK_SIZE];
	struct vbd *vbd;
	char spec[160];

	blkback_disk_unref(d);
	blkback_disk_unref(f->disk);
	f->disk = NULL;
	unlink(f->img);
	snprintf(f->img, sizeof(f->img), "%s/d.qcow2", f->dir);
	assert_int_equal(vbd_create(f->img, "qcow2", DISK_SIZE, NULL, &err), 0);
	assert_int_equal(vbd_open_file(f->img, "qcow2", 0, &vbd, &err), 0);
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(vbd_pwrite(vbd, 0, buf, sizeof(buf)), 0);
	vbd_close(vbd);
	snprintf(spec, sizeof(spec), "qcow2:%s,xvda,w", f->img);
	assert_int_equal(blkback_disk_open(spec, 0, &f->disk, &err), 0);
	assert_int_equal(blkback_disks_add(f->disk, &err), 0);
	pipelined_writes(f);
}

/*
 * A client that connects and sends nothing is closed once the
 * handshake timeout passes, and so is one that sends part of its flags
 * and stops; a client that completes the handshake in time is served
 * meanwhile, and keeps its connection past the timeout.
 */
static void test_handshake_timeout(void **state)
{
	struct fixture *f = *state;
	struct vs_error *err = NULL;
	struct timeval tv = {.tv_sec = 20};
	uint8_t buf[1024];
	uint64_t size;
	uint16_t tflags;
	int silent, partial, good;
	ssize_t n;

	f->ex.opts = "handshake-timeout=1";
	assert_int_equal(blkback_transport_nbd.start(&f->ex, &err), 0);
	silent = connect_unix(f->sock);
	partial = connect_unix(f->sock);
	setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(partial, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The greeting (18 bytes), then two of the four flag bytes. */
	assert_int_equal(xread(partial, buf, 18), 0);
	xwrite(partial, "\0\0", 2);
	good = open_session(f->sock, &size, &tflags);
	assert_int_equal(size, DISK_SIZE);

	/* Both are closed: the greeting, then the end (not the 20 s
	 * receive timeout of this side). */
	assert_int_equal(xread(silent, buf, 18), 0);
	n = recv(silent, buf, sizeof(buf), 0);
	assert_int_equal(n, 0);
	n = recv(partial, buf, sizeof(buf), 0);
	assert_int_equal(n, 0);

	/* The client that finished its handshake is still served. */
	send_req(good, NBD_CMD_READ, 0, 7, 0, 512, NULL);
	{
		uint32_t error;
		size_t len;

		assert_int_equal(
			read_reply(good, &error, buf, sizeof(buf), &len), 7);
		assert_int_equal(error, 0);
	}
	send_req(good, NBD_CMD_DISC, 0, 8, 0, 0, NULL);
	assert_int_equal(recv(good, buf, 1, 0), 0);
	close(silent);
	close(partial);
	close(good);
	blkback_transport_nbd.stop(&f->ex);
	f->ex.opts = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_options, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unix_socket, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_describe, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_stalled_client,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_burst, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_writes_raw,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_writes_qcow2,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
