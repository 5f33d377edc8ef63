/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The server: the exports of this process, the disks they serve, and the
 * main loop that waits for a reason to stop.
 *
 * Start-up (cli/serve.c) and the control socket's clients change disks
 * and exports through the functions here, one at a time under
 * server_lock.  Transports own their threads; the main thread only
 * waits on a signalfd and on the quit eventfd of the control socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../vbd/diskspec.h"
#include "server.h"

static const struct blkback_transport *const transports[] = {
	&blkback_transport_nbd,
	&blkback_transport_vhost_user,
	&blkback_transport_fuse,
};

struct export_entry {
	struct blkback_export ex;
	struct export_entry *next;
};

static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;
static struct export_entry *exports; /* in the order they were added */
static unsigned server_vbd_flags;
static unsigned nbd_exports_made; /* numbers the ids "nbd0", "nbd1"... */
static int signal_fd = -1;
static int quit_fd = -1;

const struct blkback_transport *blkback_transport_find(const char *name)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(transports); i++)
		if (!strcmp(transports[i]->name, name))
			return transports[i];
	return NULL;
}

/* Disks. */

int blkback_server_add_disk(const char *spec_text, struct vs_error **errp)
{
	struct vbd_spec *spec = NULL;
	struct blkback_disk *d;
	int ret;

	/* The name first: a second disk under a taken vdev is refused
	 * before its image is opened (and locked). */
	ret = vbd_spec_parse(spec_text, &spec, errp);
	if (ret < 0)
		return ret;
	d = blkback_disks_find(spec->vdev);
	vbd_spec_free(spec);
	if (d) {
		ret = vs_error_set(errp, EEXIST,
				   "disk %s: a disk of that name is already "
				   "served",
				   blkback_disk_name(d));
		blkback_disk_unref(d);
		return ret;
	}

	pthread_mutex_lock(&server_lock);
	ret = blkback_disk_open(spec_text, server_vbd_flags, &d, errp);
	if (ret == 0) {
		ret = blkback_disks_add(d, errp);
		blkback_disk_unref(d); /* the table holds it, or nobody */
	}
	pthread_mutex_unlock(&server_lock);
	return ret;
}

static void export_free(struct export_entry *e)
{
	blkback_disk_unref(e->ex.disk);
	free(e->ex.id);
	free(e->ex.addr);
	free(e->ex.opts);
	free(e);
}

static void export_stop(struct export_entry *e)
{
	vs_debug("blkback", "export %s: stopping", e->ex.id);
	e->ex.tp->stop(&e->ex);
	export_free(e);
}

int blkback_server_remove_disk(const char *name, unsigned wait_ms,
			       struct vs_error **errp)
{
	struct export_entry **p, *e;
	struct blkback_disk *d;
	int ret;

	pthread_mutex_lock(&server_lock);
	d = blkback_disks_remove(name);
	if (!d) {
		pthread_mutex_unlock(&server_lock);
		return vs_error_set(errp, ENOENT, "no disk named '%s'", name);
	}
	for (p = &exports; (e = *p);) {
		if (e->ex.disk == d) {
			*p = e->next;
			export_stop(e);
		} else {
			p = &e->next;
		}
	}
	pthread_mutex_unlock(&server_lock);

	/* Connections that serve every disk (NBD) may still hold it: from
	 * now on their requests fail, which makes them close. */
	blkback_disk_retire(d);
	if (!blkback_disk_wait_unused(d, wait_ms)) {
		blkback_disk_unref(d);
		return vs_error_set(errp, EBUSY,
				    "disk %s: removed, but connections still "
				    "hold it after %u ms; it closes when they "
				    "disconnect",
				    name, wait_ms);
	}
	ret = blkback_disk_close(d);
	if (ret < 0)
		return vs_error_set_errno(errp, ret,
					  "disk %s: closed, but the final "
					  "flush failed",
					  name);
	return 0;
}

/* Exports. */

static struct export_entry *export_find_locked(const char *id)
{
	for (struct export_entry *e = exports; e; e = e->next)
		if (!strcmp(e->ex.id, id))
			return e;
	return NULL;
}

static char *export_make_id_locked(const struct blkback_transport *tp,
				   const struct blkback_disk *d)
{
	char *id = NULL;

	if (!d) {
		if (asprintf(&id, "%s%u", tp->name, nbd_exports_made++) < 0)
			return NULL;
		return id;
	}
	/* "vhost-user-xvda", then "vhost-user-xvda-1"... */
	for (unsigned n = 0;; n++) {
		int len = n ? asprintf(&id, "%s-%s-%u", tp->name,
				       blkback_disk_name(d), n)
			    : asprintf(&id, "%s-%s", tp->name,
				       blkback_disk_name(d));
		if (len < 0)
			return NULL;
		if (!export_find_locked(id))
			return id;
		free(id);
	}
}

static int export_disk(const struct blkback_transport *tp, const char *name,
		       const char *addr, struct blkback_disk **out,
		       struct vs_error **errp)
{
	unsigned n;

	*out = NULL;
	if (!tp->per_disk) {
		if (name)
			return vs_error_set(
				errp, EINVAL,
				"%s export %s: it serves every disk "
				"by name; it takes no disk "
				"('%s=')",
				tp->name, addr, name);
		return 0;
	}
	if (name) {
		*out = blkback_disks_find(name);
		if (!*out)
			return vs_error_set(errp, ENOENT,
					    "%s export %s: no disk named '%s'",
					    tp->name, addr, name);
		return 0;
	}
	n = blkback_disks_count();
	if (n != 1)
		return vs_error_set(errp, EINVAL,
				    "%s export %s: name its disk (VDEV=%s): "
				    "%u disks are served",
				    tp->name, addr, addr, n);
	*out = blkback_disks_first();
	return *out ? 0 : vs_error_set(errp, ENOENT, "no disk to export");
}

int blkback_server_add_export(const char *type, const char *disk,
			      const char *addr, const char *opts,
			      const char **id_out, struct vs_error **errp)
{
	const struct blkback_transport *tp = blkback_transport_find(type);
	struct export_entry *e, **tail;
	int ret;

	if (!tp)
		return vs_error_set(errp, EINVAL,
				    "unknown export type '%s' (known: nbd, "
				    "vhost-user, fuse)",
				    type);
	if (!addr || !*addr)
		return vs_error_set(errp, EINVAL, "%s export: no address",
				    tp->name);
	e = calloc(1, sizeof(*e));
	if (!e)
		return vs_error_set(errp, ENOMEM, "out of memory");
	e->ex.tp = tp;
	pthread_mutex_lock(&server_lock);
	for (struct export_entry *o = exports; o; o = o->next) {
		if (!strcmp(o->ex.addr, addr)) {
			ret = vs_error_set(errp, EEXIST,
					   "%s export %s: export %s already "
					   "uses that address",
					   tp->name, addr, o->ex.id);
			goto fail;
		}
	}
	ret = export_disk(tp, disk, addr, &e->ex.disk, errp);
	if (ret < 0)
		goto fail;
	e->ex.id = export_make_id_locked(tp, e->ex.disk);
	e->ex.addr = strdup(addr);
	e->ex.opts = opts && *opts ? strdup(opts) : NULL;
	if (!e->ex.id || !e->ex.addr || (opts && *opts && !e->ex.opts)) {
		ret = vs_error_set(errp, ENOMEM, "out of memory");
		goto fail;
	}
	ret = tp->start(&e->ex, errp);
	if (ret < 0)
		goto fail;
	for (tail = &exports; *tail; tail = &(*tail)->next)
		;
	*tail = e;
	if (id_out)
		*id_out = e->ex.id;
	vs_debug("blkback", "export %s: %s on %s%s%s", e->ex.id, tp->name, addr,
		 e->ex.opts ? " with " : "", e->ex.opts ? e->ex.opts : "");
	pthread_mutex_unlock(&server_lock);
	return 0;
fail:
	pthread_mutex_unlock(&server_lock);
	export_free(e);
	return ret;
}

int blkback_server_remove_export(const char *id, struct vs_error **errp)
{
	struct export_entry **p, *e;

	pthread_mutex_lock(&server_lock);
	for (p = &exports; (e = *p); p = &e->next)
		if (!strcmp(e->ex.id, id))
			break;
	if (!e) {
		pthread_mutex_unlock(&server_lock);
		return vs_error_set(errp, ENOENT, "no export with id '%s'", id);
	}
	*p = e->next;
	export_stop(e);
	pthread_mutex_unlock(&server_lock);
	return 0;
}

/* The control socket's views. */

static void list_disk(struct blkback_disk *d, void *opaque)
{
	struct json_object *arr = opaque, *o = json_object_new_object();
	struct vbd *vbd = blkback_disk_vbd(d);

	json_object_object_add(o, "name",
			       json_object_new_string(blkback_disk_name(d)));
	json_object_object_add(o, "file",
			       json_object_new_string(vbd_filename(vbd)));
	json_object_object_add(o, "format",
			       json_object_new_string(blkback_disk_format(d)));
	json_object_object_add(o, "size",
			       json_object_new_uint64(blkback_disk_size(d)));
	json_object_object_add(
		o, "readonly",
		json_object_new_boolean(blkback_disk_readonly(d)));
	json_object_object_add(
		o, "discard", json_object_new_boolean(blkback_disk_discard(d)));
	json_object_array_add(arr, o);
}

void blkback_server_list(struct json_object *obj)
{
	struct json_object *disks = json_object_new_array();
	struct json_object *exps = json_object_new_array();

	pthread_mutex_lock(&server_lock);
	blkback_disks_foreach(list_disk, disks);
	for (struct export_entry *e = exports; e; e = e->next) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "id",
				       json_object_new_string(e->ex.id));
		json_object_object_add(o, "type",
				       json_object_new_string(e->ex.tp->name));
		json_object_object_add(o, "addr",
				       json_object_new_string(e->ex.addr));
		if (e->ex.disk)
			json_object_object_add(
				o, "disk",
				json_object_new_string(
					blkback_disk_name(e->ex.disk)));
		if (e->ex.opts)
			json_object_object_add(
				o, "opts", json_object_new_string(e->ex.opts));
		if (e->ex.tp->describe)
			e->ex.tp->describe(&e->ex, o);
		json_object_array_add(exps, o);
	}
	pthread_mutex_unlock(&server_lock);
	json_object_object_add(obj, "disks", disks);
	json_object_object_add(obj, "exports", exps);
}

int blkback_server_stats(const char *name, struct json_object *obj,
			 struct vs_error **errp)
{
	struct blkback_disk *d = blkback_disks_find(name);
	struct json_object *ops;
	struct blkback_stats st;

	if (!d)
		return vs_error_set(errp, ENOENT, "no disk named '%s'", name);
	blkback_disk_stats(d, &st);
	blkback_disk_unref(d);
	ops = json_object_new_object();
	for (int i = 0; i < BLKBACK_OP_COUNT; i++) {
		const struct blkback_op_stats *s = &st.op[i];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "ops",
				       json_object_new_uint64(s->ops));
		json_object_object_add(o, "errors",
				       json_object_new_uint64(s->errors));
		json_object_object_add(o, "bytes",
				       json_object_new_uint64(s->bytes));
		json_object_object_add(
			o, "latency_avg_ns",
			json_object_new_uint64(s->ops ? s->lat_ns / s->ops
						      : 0));
		json_object_object_add(o, "latency_max_ns",
				       json_object_new_uint64(s->max_lat_ns));
		json_object_object_add(ops, blkback_op_name(i), o);
	}
	json_object_object_add(obj, "name", json_object_new_string(name));
	json_object_object_add(obj, "in_flight",
			       json_object_new_uint64(st.in_flight));
	json_object_object_add(obj, "ops", ops);
	return 0;
}

/* Life cycle. */

void blkback_server_quit(void)
{
	uint64_t one = 1;

	if (quit_fd >= 0 && write(quit_fd, &one, sizeof(one)) < 0)
		vs_log(VS_LOG_ERROR, "blkback", "quit: %s", strerror(errno));
}

int blkback_server_init(unsigned vbd_flags, struct vs_error **errp)
{
	sigset_t set;

	server_vbd_flags = vbd_flags;
	/* Clients that go away must not kill the server. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return vs_error_set_errno(errp, errno, "sigprocmask");
	signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (signal_fd < 0)
		return vs_error_set_errno(errp, errno, "signalfd");
	quit_fd = eventfd(0, EFD_CLOEXEC);
	if (quit_fd < 0)
		return vs_error_set_errno(errp, errno, "eventfd");
	return 0;
}

int blkback_server_teardown(void)
{
	struct blkback_disk *d;
	int ret = 0;

	pthread_mutex_lock(&server_lock);
	/* Exports first: they stop taking requests and drop their disks. */
	while (exports) {
		struct export_entry *e = exports;

		exports = e->next;
		export_stop(e);
	}
	pthread_mutex_unlock(&server_lock);
	while ((d = blkback_disks_first())) {
		char *name = strdup(blkback_disk_name(d));
		int r;

		/* Drop find's reference; the table's is ours now. */
		blkback_disk_unref(d);
		d = name ? blkback_disks_remove(name) : NULL;
		free(name);
		if (!d)
			break;
		/* Every export stopped, so no connection should hold the
		 * disk; wait a little anyway rather than leave it open. */
		if (!blkback_disk_wait_unused(d, 5000))
			vs_log(VS_LOG_ERROR, "blkback",
			       "disk %s: still in use at shutdown",
			       blkback_disk_name(d));
		r = blkback_disk_close(d);
		if (r < 0)
			ret = r;
	}
	return ret;
}

static int write_pidfile(const char *path, struct vs_error **errp)
{
	autofree char *tmp = NULL;
	char buf[32];
	int fd, len;

	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	fd = mkstemp(tmp);
	if (fd < 0)
		return vs_error_set_errno(errp, errno, "pidfile %s", path);
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	/* Readable by the tools that kill us (as pidfiles usually are). */
	if (fchmod(fd, 0644) < 0 || write(fd, buf, len) != len ||
	    close(fd) < 0) {
		int err = errno ? errno : EIO;

		unlink(tmp);
		return vs_error_set_errno(errp, err, "pidfile %s", path);
	}
	if (rename(tmp, path) < 0) {
		int err = errno;

		unlink(tmp);
		return vs_error_set_errno(errp, err, "pidfile %s", path);
	}
	return 0;
}

static void tell_parent_ready(int fd)
{
	int null;

	/* One byte says "ready"; the parent exits 0 when it sees it.  Then
	 * the daemon lets go of the terminal. */
	if (write(fd, "R", 1) != 1)
		vs_log(VS_LOG_ERROR, "blkback", "telling the parent: %s",
		       strerror(errno));
	close(fd);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
	vs_log_to_syslog();
}

static void wait_for_quit(void)
{
	struct pollfd pfd[2] = {
		{.fd = signal_fd, .events = POLLIN},
		{.fd = quit_fd, .events = POLLIN},
	};

	for (;;) {
		struct signalfd_siginfo si;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vs_log(VS_LOG_ERROR, "blkback", "poll: %s",
			       strerror(errno));
			return;
		}
		if (pfd[1].revents) {
			vs_debug("blkback", "quit from the control socket");
			return;
		}
		if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			/* Nothing to reload; a closed terminal must not
			 * stop the server. */
			vs_debug("blkback", "SIGHUP ignored");
			continue;
		}
		vs_debug("blkback", "%s: shutting down",
			 strsignal((int)si.ssi_signo));
		return;
	}
}

int blkback_server_run(const struct blkback_server_config *cfg,
		       struct vs_error **errp)
{
	int ret, status = 0;

	if (cfg->control) {
		ret = blkback_control_start(cfg->control, errp);
		if (ret < 0)
			return 1;
	}
	if (cfg->pidfile) {
		ret = write_pidfile(cfg->pidfile, errp);
		if (ret < 0) {
			blkback_control_stop();
			return 1;
		}
	}
	if (cfg->ready_fd >= 0)
		tell_parent_ready(cfg->ready_fd);
	vs_debug("blkback", "ready");

	wait_for_quit();

	blkback_control_stop();
	if (blkback_server_teardown() < 0)
		status = 1;
	if (cfg->pidfile && unlink(cfg->pidfile) < 0)
		vs_log(VS_LOG_ERROR, "blkback", "pidfile %s: %s", cfg->pidfile,
		       strerror(errno));
	return status;
}
