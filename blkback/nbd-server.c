/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD transport: one listening socket per export (a unix socket,
 * mode 0600, unless a TCP address is given explicitly), an accept
 * thread, and the list of connections.  Every disk of the table is an
 * export of it, by name (nbd-opt.c).
 *
 * Options (ex->opts): max-connections=N (default 64), beyond which new
 * clients are closed at once; handshake-timeout=SECONDS (default 60,
 * 0 for none), after which a client that has not finished the
 * handshake is closed, so that silent clients cannot hold every
 * connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/opts.h"
#include "nbd-conn.h"
#include "unix-socket.h"

#define DEFAULT_MAX_CONNECTIONS	  64
#define DEFAULT_HANDSHAKE_TIMEOUT 60 /* seconds, as nbdkit's */
#define MAX_HANDSHAKE_TIMEOUT	  3600
#define MAX_MAX_CONNECTIONS	  1024

struct nbd_server {
	struct blkback_export *ex;
	int listen_fd;
	int stop_fd; /* eventfd: the accept thread ends */
	pthread_t accept_thread;
	struct blkback_unix_listener unix_l; /* its fd moves to listen_fd */
	char bound[128]; /* "unix:PATH" or "tcp:HOST:PORT", as bound */
	unsigned max_conns;
	unsigned handshake_ms; /* 0: no limit */

	pthread_mutex_t lock;
	struct nbd_conn *conns;
	unsigned nconns;
	uint64_t accepted;
};

unsigned nbd_server_handshake_ms(const struct nbd_server *srv)
{
	return srv->handshake_ms;
}

const char *nbd_server_id(const struct nbd_server *srv)
{
	return srv->ex->id;
}

/* Parse "tcp:HOST:PORT" ("[v6]" hosts allowed) into host and port. */
static int split_tcp(const char *addr, char **host, char **port,
		     struct vs_error **errp)
{
	const char *hp = addr + 4, *colon;
	size_t hlen;

	if (*hp == '[') {
		const char *close = strchr(hp, ']');

		if (!close || close[1] != ':')
			goto bad;
		hp++;
		hlen = (size_t)(close - hp);
		colon = close + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon)
			goto bad;
		hlen = (size_t)(colon - hp);
	}
	if (hlen == 0 || !colon[1])
		goto bad;
	*host = strndup(hp, hlen);
	*port = strdup(colon + 1);
	if (!*host || !*port) {
		free(*host);
		free(*port);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	return 0;
bad:
	return vs_error_set(errp, EINVAL,
			    "nbd export %s: expected tcp:HOST:PORT", addr);
}

static int listen_tcp(struct nbd_server *srv, const char *addr,
		      struct vs_error **errp)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char *host = NULL, *port = NULL;
	int ret, fd = -1, err = 0, one = 1;

	ret = split_tcp(addr, &host, &port, errp);
	if (ret < 0)
		return ret;
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret) {
		ret = vs_error_set(errp, EINVAL, "nbd export %s: %s", addr,
				   gai_strerror(ret));
		goto out;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 128) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		ret = vs_error_set_errno(errp, err ? err : EADDRNOTAVAIL,
					 "nbd export %s: cannot listen", addr);
		goto out;
	}
	srv->listen_fd = fd;

	/* Name the port actually bound (PORT may be 0). */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN] = "?", p[16] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p,
			    sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(srv->bound, sizeof(srv->bound),
		 strchr(h, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s", h, p);
	ret = 0;
out:
	if (res)
		freeaddrinfo(res);
	free(host);
	free(port);
	return ret;
}

static int listen_unix(struct nbd_server *srv, const char *addr,
		       const char *path, struct vs_error **errp)
{
	char what[160];
	int ret;

	snprintf(what, sizeof(what), "nbd export %s", addr);
	ret = blkback_unix_listen(&srv->unix_l, path, 128, 0, what, errp);
	if (ret < 0)
		return ret;
	srv->listen_fd = srv->unix_l.fd;
	srv->unix_l.fd = -1;
	snprintf(srv->bound, sizeof(srv->bound), "unix:%s", path);
	return 0;
}

/* Remove our socket file, unless someone replaced it meanwhile. */
static void remove_socket_file(struct nbd_server *srv)
{
	blkback_unix_unlisten(&srv->unix_l);
}

/* Join and free connections whose thread has ended.  Under srv->lock. */
static void reap_locked(struct nbd_server *srv)
{
	for (struct nbd_conn **p = &srv->conns, *c; (c = *p);) {
		if (__atomic_load_n(&c->finished, __ATOMIC_ACQUIRE)) {
			*p = c->next;
			srv->nconns--;
			nbd_conn_free(c);
		} else {
			p = &c->next;
		}
	}
}

/* "HOST:PORT" for TCP; unix clients are numbered in accept order. */
static void peer_name(int fd, uint64_t nr, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN], p[16];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    ss.ss_family != AF_UNIX &&
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(buf, len, "%s:%s", h, p);
	else
		snprintf(buf, len, "client %llu", (unsigned long long)nr);
}

static void accept_one(struct nbd_server *srv)
{
	struct nbd_conn *c;
	char peer[64];
	int fd, one = 1, ret;

	fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of fds or memory: back off a little instead of
		 * spinning on a listening socket that stays readable. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
		    errno == ENOBUFS)
			poll(NULL, 0, 100);
		return;
	}
	/* Small replies go out at once; batching is done by the writer. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Only this thread changes `accepted`. */
	peer_name(fd, srv->accepted + 1, peer, sizeof(peer));

	pthread_mutex_lock(&srv->lock);
	reap_locked(srv);
	if (srv->nconns >= srv->max_conns) {
		pthread_mutex_unlock(&srv->lock);
		vs_log(VS_LOG_WARN, "nbd",
		       "%s: %s refused: %u connections already", srv->ex->id,
		       peer, srv->max_conns);
		close(fd);
		return;
	}
	ret = nbd_conn_start(srv, fd, peer, &c);
	if (ret < 0) {
		pthread_mutex_unlock(&srv->lock);
		vs_log(VS_LOG_WARN, "nbd", "%s: %s refused: %s", srv->ex->id,
		       peer, strerror(-ret));
		close(fd);
		return;
	}
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
	srv->accepted++;
	pthread_mutex_unlock(&srv->lock);
	vs_debug("nbd", "%s: %s connected", srv->ex->id, peer);
}

static void *accept_main(void *opaque)
{
	struct nbd_server *srv = opaque;

	pthread_setname_np(pthread_self(), "nbd-accept");
	for (;;) {
		struct pollfd p[2] = {{.fd = srv->listen_fd, .events = POLLIN},
				      {.fd = srv->stop_fd, .events = POLLIN}};
		int n = poll(p, 2, -1);

		if (n < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			accept_one(srv);
	}
	return NULL;
}

static int parse_opts(struct nbd_server *srv, const char *text,
		      struct vs_error **errp)
{
	struct vs_opts *o = NULL;
	uint64_t max = DEFAULT_MAX_CONNECTIONS;
	uint64_t hs = DEFAULT_HANDSHAKE_TIMEOUT;
	int ret;

	ret = vs_opts_parse(text, "nbd export option", &o, errp);
	if (ret < 0)
		return ret;
	ret = vs_opts_get_size(o, "max-connections", &max, errp);
	if (ret == 0)
		ret = vs_opts_get_size(o, "handshake-timeout", &hs, errp);
	if (ret == 0)
		ret = vs_opts_check_used(o, errp);
	vs_opts_free(o);
	if (ret < 0)
		return ret;
	if (max < 1 || max > MAX_MAX_CONNECTIONS)
		return vs_error_set(errp, EINVAL,
				    "nbd export option max-connections=%llu: "
				    "expected 1 to %u",
				    (unsigned long long)max,
				    MAX_MAX_CONNECTIONS);
	if (hs > MAX_HANDSHAKE_TIMEOUT)
		return vs_error_set(errp, EINVAL,
				    "nbd export option handshake-timeout=%llu: "
				    "expected 0 (none) to %u seconds",
				    (unsigned long long)hs,
				    MAX_HANDSHAKE_TIMEOUT);
	srv->max_conns = (unsigned)max;
	srv->handshake_ms = (unsigned)hs * 1000;
	return 0;
}

static void server_free(struct nbd_server *srv)
{
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	remove_socket_file(srv);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

static int nbd_start(struct blkback_export *ex, struct vs_error **errp)
{
	struct nbd_server *srv = calloc(1, sizeof(*srv));
	const char *addr = ex->addr;
	int ret;

	if (!srv)
		return vs_error_set(errp, ENOMEM, "out of memory");
	srv->ex = ex;
	srv->listen_fd = -1;
	srv->stop_fd = -1;
	srv->unix_l.fd = -1;
	pthread_mutex_init(&srv->lock, NULL);
	ret = parse_opts(srv, ex->opts, errp);
	if (ret < 0)
		goto fail;
	if (!strncmp(addr, "tcp:", 4))
		ret = listen_tcp(srv, addr, errp);
	else
		ret = listen_unix(srv, addr,
				  strncmp(addr, "unix:", 5) ? addr : addr + 5,
				  errp);
	if (ret < 0)
		goto fail;
	srv->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (srv->stop_fd < 0) {
		ret = vs_error_set_errno(errp, errno, "nbd export %s: eventfd",
					 addr);
		goto fail;
	}
	ret = -pthread_create(&srv->accept_thread, NULL, accept_main, srv);
	if (ret < 0) {
		vs_error_set_errno(errp, -ret, "nbd export %s: thread", addr);
		goto fail;
	}
	ex->priv = srv;
	vs_debug("nbd", "%s: listening on %s", ex->id, srv->bound);
	return 0;
fail:
	server_free(srv);
	return ret;
}

static void nbd_stop(struct blkback_export *ex)
{
	struct nbd_server *srv = ex->priv;
	uint64_t one = 1;

	if (!srv)
		return;
	/* No new clients... */
	if (write(srv->stop_fd, &one, sizeof(one)) < 0)
		vs_log(VS_LOG_ERROR, "nbd", "%s: cannot stop: %s", ex->id,
		       strerror(errno));
	pthread_join(srv->accept_thread, NULL);
	close(srv->listen_fd);
	srv->listen_fd = -1;
	remove_socket_file(srv);

	/* ...then end every connection: a kicked socket wakes its threads
	 * wherever they block, and each waits for its own requests. */
	pthread_mutex_lock(&srv->lock);
	for (struct nbd_conn *c = srv->conns; c; c = c->next)
		nbd_conn_kick(c);
	while (srv->conns) {
		struct nbd_conn *c = srv->conns;

		srv->conns = c->next;
		nbd_conn_free(c);
	}
	srv->nconns = 0;
	pthread_mutex_unlock(&srv->lock);
	server_free(srv);
	ex->priv = NULL;
}

static void nbd_describe(struct blkback_export *ex, struct json_object *obj)
{
	struct nbd_server *srv = ex->priv;
	unsigned n;
	uint64_t total;

	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	reap_locked(srv);
	n = srv->nconns;
	total = srv->accepted;
	pthread_mutex_unlock(&srv->lock);
	json_object_object_add(obj, "listening",
			       json_object_new_string(srv->bound));
	json_object_object_add(obj, "connections", json_object_new_int64(n));
	json_object_object_add(obj, "accepted",
			       json_object_new_int64((int64_t)total));
	json_object_object_add(obj, "max-connections",
			       json_object_new_int64(srv->max_conns));
}

const struct blkback_transport blkback_transport_nbd = {
	.name = "nbd",
	.per_disk = false,
	.start = nbd_start,
	.stop = nbd_stop,
	.describe = nbd_describe,
};
