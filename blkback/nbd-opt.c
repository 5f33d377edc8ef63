/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD handshake: fixed newstyle greeting, then option haggling until
 * the client picks an export (OPT_GO, OPT_EXPORT_NAME) or leaves.
 *
 * Every option payload is bounded (NBD_MAX_OPTION) before anything is
 * allocated for it, and every length inside it is checked against what
 * is left of the payload before it is used.  A malformed option gets
 * NBD_REP_ERR_INVALID and haggling goes on; a broken frame (bad magic,
 * unknown client flags, an oversized option) ends the connection.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "nbd-conn.h"

static int send_reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
		      const void *data, size_t len)
{
	struct nbd_opt_reply r = {
		.magic = htobe64(NBD_OPT_REP_MAGIC),
		.option = htobe32(opt),
		.type = htobe32(type),
		.length = htobe32((uint32_t)len),
	};
	struct iovec iov[2] = {
		{.iov_base = &r, .iov_len = sizeof(r)},
		{.iov_base = (void *)data, .iov_len = len},
	};

	return nbd_conn_writev(c, iov, len ? 2 : 1);
}

static int send_ack(struct nbd_conn *c, uint32_t opt)
{
	return send_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* An error reply with a message for the user of the client. */
__attribute__((format(printf, 4, 5))) static int
send_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *fmt,
	   ...)
{
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	vs_debug("nbd", "%s: %s: option %u refused: %s", nbd_server_id(c->srv),
		 c->peer, opt, msg);
	return send_reply(c, opt, type, msg, (size_t)n);
}

/* Names on the wire are not NUL-terminated and must not contain NUL:
 * one that does could alias a shorter name once it is a C string. */
static bool valid_string(const char *s, size_t len)
{
	return len <= NBD_MAX_STRING && !memchr(s, '\0', len);
}

/* The disk a client's export name means ("" is the default export), with
 * a reference, or NULL.  A retired disk is gone for new clients. */
static struct blkback_disk *find_export(const char *name)
{
	struct blkback_disk *d =
		*name ? blkback_disks_find(name) : blkback_disks_first();

	if (d && blkback_disk_retired(d)) {
		blkback_disk_unref(d);
		d = NULL;
	}
	return d;
}

uint16_t nbd_transmission_flags(const struct nbd_conn *c,
				const struct blkback_disk *d)
{
	/* Every connection shares the one vbd, so a flush on one covers
	 * writes completed on any: multi-conn is safe. */
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
		     NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES |
		     NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_CAN_MULTI_CONN |
		     NBD_FLAG_SEND_CACHE;

	if (blkback_disk_readonly(d))
		f |= NBD_FLAG_READ_ONLY;
	if (blkback_disk_discard(d))
		f |= NBD_FLAG_SEND_TRIM;
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

static int opt_export_name(struct nbd_conn *c, char *data, uint32_t len)
{
	struct nbd_export_name_reply r;
	static const uint8_t zeroes[124];
	struct iovec iov[2] = {{&r, sizeof(r)}, {(void *)zeroes, 124}};
	struct blkback_disk *d;
	int ret;

	/* This option has no error reply: a bad name closes the session. */
	if (!valid_string(data, len))
		return -EINVAL;
	d = find_export(data);
	if (!d) {
		vs_debug("nbd", "%s: %s: no export named '%.64s'",
			 nbd_server_id(c->srv), c->peer, data);
		return -ENOENT;
	}
	c->disk = d;
	c->tflags = nbd_transmission_flags(c, d);
	r.size = htobe64(blkback_disk_size(d));
	r.flags = htobe16(c->tflags);
	ret = nbd_conn_writev(c, iov, c->no_zeroes ? 1 : 2);
	return ret < 0 ? ret : 1;
}

struct names {
	char **v;
	size_t n, cap;
	bool failed;
};

static void add_name(struct blkback_disk *d, void *opaque)
{
	struct names *ns = opaque;
	char *s;

	if (ns->failed || blkback_disk_retired(d))
		return;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 8;
		char **v = realloc(ns->v, cap * sizeof(*v));

		if (!v) {
			ns->failed = true;
			return;
		}
		ns->v = v;
		ns->cap = cap;
	}
	s = strdup(blkback_disk_name(d));
	if (!s) {
		ns->failed = true;
		return;
	}
	ns->v[ns->n++] = s;
}

static int opt_list(struct nbd_conn *c, uint32_t len)
{
	struct names names = {0};
	int ret = 0;

	if (len)
		return send_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
				  "NBD_OPT_LIST takes no data (%u bytes sent)",
				  len);
	/* Copy the names first: the table stays locked while the callback
	 * runs, and a slow client must not hold it. */
	blkback_disks_foreach(add_name, &names);

	if (names.failed)
		ret = send_error(c, NBD_OPT_LIST, NBD_REP_ERR_SHUTDOWN,
				 "out of memory listing exports");
	for (size_t i = 0; i < names.n && !names.failed && ret == 0; i++) {
		size_t nlen = strlen(names.v[i]);
		uint32_t be = htobe32((uint32_t)nlen);
		autofree uint8_t *buf = malloc(4 + nlen);

		if (!buf) {
			ret = -ENOMEM;
			break;
		}
		memcpy(buf, &be, 4);
		memcpy(buf + 4, names.v[i], nlen);
		ret = send_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf,
				 4 + nlen);
	}
	if (ret == 0 && !names.failed)
		ret = send_ack(c, NBD_OPT_LIST);
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	return ret;
}

static int send_info(struct nbd_conn *c, uint32_t opt, uint16_t info,
		     const char *s)
{
	size_t len = strlen(s);
	autofree uint8_t *buf = malloc(2 + len);
	uint16_t be = htobe16(info);

	if (!buf)
		return -ENOMEM;
	memcpy(buf, &be, 2);
	memcpy(buf + 2, s, len);
	return send_reply(c, opt, NBD_REP_INFO, buf, 2 + len);
}

/* NBD_OPT_INFO and NBD_OPT_GO: 1 when GO enters transmission. */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, char *data,
		       uint32_t len)
{
	uint32_t name_len;
	uint16_t nreq;
	bool want_name = false, want_desc = false;
	struct blkback_disk *d;
	char *name, desc[128];
	int ret;

	if (len < 6)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "option length %u is shorter than 6", len);
	memcpy(&name_len, data, 4);
	name_len = be32toh(name_len);
	if (name_len > len - 6)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "export name length %u does not fit in the "
				  "option's %u bytes",
				  name_len, len);
	name = data + 4;
	memcpy(&nreq, name + name_len, 2);
	nreq = be16toh(nreq);
	if ((uint64_t)4 + name_len + 2 + 2 * (uint64_t)nreq != len)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "%u information requests do not match the "
				  "option length %u",
				  nreq, len);
	for (unsigned i = 0; i < nreq; i++) {
		uint16_t info;

		memcpy(&info, name + name_len + 2 + 2 * i, 2);
		info = be16toh(info);
		want_name |= info == NBD_INFO_NAME;
		want_desc |= info == NBD_INFO_DESCRIPTION;
	}
	if (!valid_string(name, name_len))
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "export name of %u bytes is too long or "
				  "holds a NUL byte",
				  name_len);
	/* The name is the last thing we need from the payload: terminate
	 * it in place (over the request count, already read). */
	name[name_len] = '\0';

	d = find_export(name);
	if (!d)
		return send_error(c, opt, NBD_REP_ERR_UNKNOWN,
				  "no export named '%.64s'", name);

	struct nbd_info_export ie = {
		.info = htobe16(NBD_INFO_EXPORT),
		.size = htobe64(blkback_disk_size(d)),
		.flags = htobe16(nbd_transmission_flags(c, d)),
	};
	/* Sent unasked, as the spec allows: clients that know it keep to
	 * it, the others get the protocol's defaults, which fit too. */
	struct nbd_info_block_size bs = {
		.info = htobe16(NBD_INFO_BLOCK_SIZE),
		.minimum = htobe32(1),
		.preferred = htobe32(4096),
		.maximum = htobe32(BLKBACK_MAX_IO),
	};
	ret = send_reply(c, opt, NBD_REP_INFO, &ie, sizeof(ie));
	if (ret == 0)
		ret = send_reply(c, opt, NBD_REP_INFO, &bs, sizeof(bs));
	if (ret == 0 && want_name)
		ret = send_info(c, opt, NBD_INFO_NAME, blkback_disk_name(d));
	if (ret == 0 && want_desc) {
		snprintf(desc, sizeof(desc), "vstor %s disk %s",
			 vbd_format(blkback_disk_vbd(d)), blkback_disk_name(d));
		ret = send_info(c, opt, NBD_INFO_DESCRIPTION, desc);
	}
	if (ret == 0)
		ret = send_ack(c, opt);
	if (ret < 0 || opt == NBD_OPT_INFO) {
		blkback_disk_unref(d);
		return ret;
	}
	/* Contexts chosen for another export do not carry over. */
	if (c->meta_base && (!c->meta_export || strcmp(c->meta_export, name)))
		c->meta_base = false;
	c->disk = d;
	c->tflags = nbd_transmission_flags(c, d);
	return 1;
}

/* Whether a query selects base:allocation.  LIST accepts the namespace
 * alone ("base:") as a wildcard; SET wants the exact name. */
static bool query_matches(const char *q, uint32_t len, bool list)
{
	static const char full[] = NBD_META_BASE_ALLOCATION;

	if (len == sizeof(full) - 1 && !memcmp(q, full, len))
		return true;
	return list && len == 5 && !memcmp(q, "base:", 5);
}

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. */
static int opt_meta(struct nbd_conn *c, uint32_t opt, char *data, uint32_t len)
{
	bool list = opt == NBD_OPT_LIST_META_CONTEXT, match = false;
	uint32_t name_len, nq, pos;
	struct blkback_disk *d;
	char *name;
	int ret;

	/* SET replaces the selection even when it fails. */
	if (!list)
		c->meta_base = false;
	if (!c->structured)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "metadata contexts need structured replies "
				  "first");
	if (len < 8)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "option length %u is shorter than 8", len);
	memcpy(&name_len, data, 4);
	name_len = be32toh(name_len);
	if (name_len > len - 8)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "export name length %u does not fit in the "
				  "option's %u bytes",
				  name_len, len);
	name = data + 4;
	if (!valid_string(name, name_len))
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "export name of %u bytes is too long or "
				  "holds a NUL byte",
				  name_len);
	memcpy(&nq, name + name_len, 4);
	nq = be32toh(nq);
	pos = 4 + name_len + 4;

	/* Walk every query before answering: a malformed one anywhere
	 * makes the whole option invalid, with no context sent. */
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t qlen;

		if (len - pos < 4)
			return send_error(c, opt, NBD_REP_ERR_INVALID,
					  "query %u of %u is missing", i, nq);
		memcpy(&qlen, data + pos, 4);
		qlen = be32toh(qlen);
		pos += 4;
		if (qlen > len - pos || qlen > NBD_MAX_STRING)
			return send_error(c, opt, NBD_REP_ERR_INVALID,
					  "query %u length %u does not fit", i,
					  qlen);
		match |= query_matches(data + pos, qlen, list);
		pos += qlen;
	}
	if (pos != len)
		return send_error(c, opt, NBD_REP_ERR_INVALID,
				  "%u bytes after the last query", len - pos);
	/* Without queries, LIST shows everything and SET selects nothing. */
	if (nq == 0 && list)
		match = true;

	/* Now the name may be terminated in place: it is followed by the
	 * query count, read above. */
	name[name_len] = '\0';
	d = find_export(name);
	if (!d)
		return send_error(c, opt, NBD_REP_ERR_UNKNOWN,
				  "no export named '%.64s'", name);
	blkback_disk_unref(d);

	if (match) {
		static const char ctx[] = NBD_META_BASE_ALLOCATION;
		uint8_t buf[4 + sizeof(ctx) - 1];
		uint32_t id = htobe32(list ? 0 : NBD_META_ID_BASE);

		memcpy(buf, &id, 4);
		memcpy(buf + 4, ctx, sizeof(ctx) - 1);
		ret = send_reply(c, opt, NBD_REP_META_CONTEXT, buf,
				 sizeof(buf));
		if (ret < 0)
			return ret;
		if (!list) {
			char *s = strdup(name);

			if (!s)
				return -ENOMEM;
			free(c->meta_export);
			c->meta_export = s;
			c->meta_base = true;
		}
	}
	return send_ack(c, opt);
}

/* One option: 1 enters transmission, 0 goes on haggling, 2 ends the
 * session cleanly, -errno drops the connection. */
static int one_option(struct nbd_conn *c)
{
	struct nbd_opt_hdr h;
	uint32_t opt, len;
	autofree char *data = NULL;
	int ret;

	ret = nbd_conn_read(c, &h, sizeof(h), false);
	if (ret < 0)
		return ret;
	if (be64toh(h.magic) != NBD_OPTS_MAGIC)
		return -EPROTO;
	opt = be32toh(h.option);
	len = be32toh(h.length);
	if (++c->options > NBD_MAX_OPTIONS)
		return -EPROTO;
	if (len > NBD_MAX_OPTION) {
		/* Skipping up to 4 GiB for a hostile client is not worth
		 * it: say why, then hang up. */
		if (opt != NBD_OPT_EXPORT_NAME)
			send_error(c, opt, NBD_REP_ERR_TOO_BIG,
				   "option length %u is above the limit %u",
				   len, NBD_MAX_OPTION);
		return -EMSGSIZE;
	}
	/* One more byte, so that names can be terminated in place. */
	data = malloc((size_t)len + 1);
	if (!data)
		return -ENOMEM;
	ret = nbd_conn_read(c, data, len, false);
	if (ret < 0)
		return ret;
	data[len] = '\0';

	switch (opt) {
	case NBD_OPT_EXPORT_NAME: return opt_export_name(c, data, len);
	case NBD_OPT_ABORT: ret = send_ack(c, opt); return ret < 0 ? ret : 2;
	case NBD_OPT_LIST: return opt_list(c, len);
	case NBD_OPT_STARTTLS:
		return send_error(c, opt, NBD_REP_ERR_POLICY,
				  "TLS is not supported by this server");
	case NBD_OPT_INFO:
	case NBD_OPT_GO: return opt_info_go(c, opt, data, len);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len)
			return send_error(c, opt, NBD_REP_ERR_INVALID,
					  "NBD_OPT_STRUCTURED_REPLY takes no "
					  "data (%u bytes sent)",
					  len);
		c->structured = true;
		return send_ack(c, opt);
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT: return opt_meta(c, opt, data, len);
	default:
		return send_error(c, opt, NBD_REP_ERR_UNSUP,
				  "option %u is not supported", opt);
	}
}

int nbd_handshake(struct nbd_conn *c)
{
	struct {
		uint64_t init, opts;
		uint16_t flags;
	} __attribute__((packed)) hello = {
		.init = htobe64(NBD_INIT_MAGIC),
		.opts = htobe64(NBD_OPTS_MAGIC),
		.flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};
	uint32_t cflags;
	int ret;

	ret = nbd_conn_write(c, &hello, sizeof(hello));
	if (ret < 0)
		return ret;
	ret = nbd_conn_read(c, &cflags, sizeof(cflags), false);
	if (ret < 0)
		return ret;
	cflags = be32toh(cflags);
	/* Unknown client flags: the spec says to hang up. */
	if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return -EPROTO;
	c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;
	for (;;) {
		ret = one_option(c);
		if (ret == 1)
			return 1;
		if (ret == 2)
			return 0;
		if (ret < 0)
			return ret;
	}
}
