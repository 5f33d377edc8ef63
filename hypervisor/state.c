/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The domain state folder (see state.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/log.h"
#include "config.h"
#include "state.h"

/* A record is a config and a few dozen fields: anything near this is not
 * ours. */
#define RECORD_MAX_BYTES (1u << 20)

static const char *const state_names[] = {
	[DOM_STATE_RUNNING] = "running",   [DOM_STATE_PAUSED] = "paused",
	[DOM_STATE_SHUTDOWN] = "shutdown", [DOM_STATE_CRASHED] = "crashed",
	[DOM_STATE_DYING] = "dying",
};

const char *dom_state_name(enum dom_state s)
{
	return (unsigned)s < VS_ARRAY_SIZE(state_names) ? state_names[s]
							: "unknown";
}

const char *dom_state_dir(void)
{
	const char *d = getenv("VSTOR_STATE_DIR");

	return d && *d ? d : DOM_STATE_DIR_DEFAULT;
}

static int mkdir_p(const char *path, mode_t mode, struct vs_error **err)
{
	autofree char *copy = strdup(path);

	if (!copy)
		return vs_error_set(err, ENOMEM, "out of memory");
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			return vs_error_set_errno(
				err, errno, "state folder: cannot create '%s'",
				copy);
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return vs_error_set_errno(
			err, errno, "state folder: cannot create '%s'", copy);
	return 0;
}

int dom_state_lock(struct vs_error **err)
{
	const char *dir = dom_state_dir();
	autofree char *path = NULL, *domains = NULL, *run = NULL;
	int fd, r;

	if (asprintf(&domains, "%s/domains", dir) < 0 ||
	    asprintf(&run, "%s/run", dir) < 0 ||
	    asprintf(&path, "%s/lock", dir) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	/* run/ holds sockets that control the domains: owner only. */
	if ((r = mkdir_p(dir, 0755, err)) < 0 ||
	    (r = mkdir_p(domains, 0755, err)) < 0 ||
	    (r = mkdir_p(run, 0700, err)) < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vs_error_set_errno(err, errno, "state lock '%s'", path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			r = -errno;
			close(fd);
			return vs_error_set_errno(err, r, "state lock '%s'",
						  path);
		}
	}
	return fd;
}

void dom_state_unlock(int lockfd)
{
	if (lockfd >= 0)
		close(lockfd); /* closing the only fd releases the flock */
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Write text to dir/leaf atomically. */
static int write_atomic(const char *dir, const char *leaf, const char *text,
			struct vs_error **err)
{
	autofree char *path = NULL, *tmp = NULL;
	size_t len = strlen(text), done = 0;
	int fd, r = 0;

	if (asprintf(&path, "%s/%s", dir, leaf) < 0 ||
	    asprintf(&tmp, "%s/.%s.tmp.%d", dir, leaf, (int)getpid()) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return vs_error_set_errno(err, errno, "cannot create '%s'",
					  tmp);
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r) {
		unlink(tmp);
		return vs_error_set_errno(err, r, "cannot write '%s'", path);
	}
	r = fsync_dir(dir);
	if (r)
		return vs_error_set_errno(err, r, "cannot sync folder '%s'",
					  dir);
	return 0;
}

/* Read a small text file whole; -ENOENT if missing, -EFBIG if larger
 * than max. */
static int read_small(const char *path, size_t max, char **out)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	autofree char *buf = NULL;
	size_t len = 0;
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*out = vs_steal(&buf);
	return 0;
}

int dom_domid_alloc(unsigned *domid, struct vs_error **err)
{
	const char *dir = dom_state_dir();
	autofree char *path = NULL, *text = NULL;
	char next[32];
	unsigned long id = 1;
	int r;

	if (asprintf(&path, "%s/next-domid", dir) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	r = read_small(path, 64, &text);
	if (r == 0) {
		char *end;

		errno = 0;
		id = strtoul(text, &end, 10);
		while (*end == '\n')
			end++;
		if (errno || end == text || *end || id < 1 ||
		    id > DOM_DOMID_MAX)
			return vs_error_set(
				err, EINVAL,
				"%s: '%.20s' is not a domain ID (1 to %d)",
				path, text, DOM_DOMID_MAX);
	} else if (r != -ENOENT) {
		return vs_error_set_errno(err, r, "cannot read '%s'", path);
	}
	snprintf(next, sizeof(next), "%lu\n",
		 id >= DOM_DOMID_MAX ? 1ul : id + 1);
	r = write_atomic(dir, "next-domid", next, err);
	if (r < 0)
		return r;
	*domid = (unsigned)id;
	return 0;
}

static char *record_path(const char *name)
{
	char *p;

	return asprintf(&p, "%s/domains/%s.json", dom_state_dir(), name) < 0
		       ? NULL
		       : p;
}

int dom_run_path(const char *rundir, const char *leaf, char **out,
		 struct vs_error **err)
{
	struct sockaddr_un sa;
	char *p;

	if (asprintf(&p, "%s/%s", rundir, leaf) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	if (strlen(p) >= sizeof(sa.sun_path)) {
		vs_error_set(err, ENAMETOOLONG,
			     "socket path '%s' is %zu bytes, more than the %zu "
			     "a unix socket "
			     "allows; set VSTOR_STATE_DIR to a shorter folder",
			     p, strlen(p), sizeof(sa.sun_path) - 1);
		free(p);
		return -ENAMETOOLONG;
	}
	*out = p;
	return 0;
}

static struct json_object *proc_to_json(const struct dom_proc *p)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "pid", json_object_new_int64(p->pid));
	json_object_object_add(o, "start", json_object_new_uint64(p->start));
	return o;
}

struct json_object *dom_record_to_json(const struct dom_record *rec)
{
	struct json_object *o = json_object_new_object(), *procs, *disks;

	json_object_object_add(o, "name", json_object_new_string(rec->name));
	json_object_object_add(o, "domid", json_object_new_int64(rec->domid));
	json_object_object_add(
		o, "state", json_object_new_string(dom_state_name(rec->state)));
	json_object_object_add(o, "created",
			       json_object_new_int64(rec->created));
	json_object_object_add(o, "rundir",
			       json_object_new_string(rec->rundir));
	procs = json_object_new_object();
	json_object_object_add(procs, "qemu", proc_to_json(&rec->qemu));
	json_object_object_add(procs, "serve", proc_to_json(&rec->serve));
	json_object_object_add(procs, "monitor", proc_to_json(&rec->monitor));
	json_object_object_add(o, "processes", procs);
	/* Socket paths spelt out, for other tools (vstor console) and
	 * people, though they follow from rundir. */
	{
		static const char *const socks[][2] = {
			{"qmp", "qmp.sock"},
			{"monitor-qmp", "monitor-qmp.sock"},
			{"serve-control", "serve.sock"},
			{"console", "console.sock"},
			{"console-log", "console.log"},
		};
		struct json_object *s = json_object_new_object();

		for (size_t i = 0; i < VS_ARRAY_SIZE(socks); i++) {
			char *p = NULL;

			if (asprintf(&p, "%s/%s", rec->rundir, socks[i][1]) >=
			    0)
				json_object_object_add(
					s, socks[i][0],
					json_object_new_string(p));
			free(p);
		}
		json_object_object_add(o, "sockets", s);
	}
	disks = json_object_new_array();
	for (size_t i = 0; i < rec->n_disks; i++) {
		const struct dom_rec_disk *d = &rec->disks[i];
		struct json_object *dj = json_object_new_object();

		json_object_object_add(dj, "vdev",
				       json_object_new_string(d->vdev));
		json_object_object_add(dj, "spec",
				       json_object_new_string(d->spec));
		if (d->socket)
			json_object_object_add(
				dj, "socket",
				json_object_new_string(d->socket));
		json_object_object_add(dj, "dev",
				       json_object_new_uint64(d->dev));
		json_object_object_add(dj, "ino",
				       json_object_new_uint64(d->ino));
		json_object_object_add(dj, "readonly",
				       json_object_new_boolean(d->readonly));
		json_object_object_add(dj, "empty",
				       json_object_new_boolean(d->empty));
		json_object_array_add(disks, dj);
	}
	json_object_object_add(o, "disks", disks);
	json_object_object_add(o, "reboot-requested",
			       json_object_new_boolean(rec->reboot_requested));
	json_object_object_add(o, "restarts",
			       json_object_new_int64(rec->restarts));
	json_object_object_add(o, "config", dom_config_to_json(rec->cfg));
	return o;
}

int dom_record_save(const struct dom_record *rec, struct vs_error **err)
{
	struct json_object *o = dom_record_to_json(rec);
	autofree char *dir = NULL, *leaf = NULL;
	int r;

	if (asprintf(&dir, "%s/domains", dom_state_dir()) < 0 ||
	    asprintf(&leaf, "%s.json", rec->name) < 0) {
		json_object_put(o);
		return vs_error_set(err, ENOMEM, "out of memory");
	}
	r = write_atomic(dir, leaf,
			 json_object_to_json_string_ext(
				 o, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_NOSLASHESCAPE),
			 err);
	json_object_put(o);
	return r;
}

int dom_record_remove(const char *name, struct vs_error **err)
{
	autofree char *path = record_path(name);

	if (!path)
		return vs_error_set(err, ENOMEM, "out of memory");
	if (unlink(path) < 0 && errno != ENOENT)
		return vs_error_set_errno(err, errno, "cannot remove '%s'",
					  path);
	return 0;
}

int dom_record_set_aside(const char *name, char **aside, struct vs_error **err)
{
	autofree char *path = NULL;
	char *to = NULL;
	int r = dom_name_check(name, err);

	if (r < 0)
		return r;
	path = record_path(name);
	if (!path || asprintf(&to, "%s.damaged", path) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	if (rename(path, to) < 0) {
		r = vs_error_set_errno(err, errno, "cannot rename '%s' to '%s'",
				       path, to);
		free(to);
		return r;
	}
	*aside = to;
	return 0;
}

/* Typed field readers for a record: each error names the file and the
 * field. */
static int get_field(const char *file, struct json_object *o, const char *key,
		     json_type type, struct json_object **out,
		     struct vs_error **err)
{
	if (!json_object_object_get_ex(o, key, out) ||
	    !json_object_is_type(*out, type))
		return vs_error_set(err, EINVAL,
				    "%s: field '%s' is missing or not a %s",
				    file, key, json_type_to_name(type));
	return 0;
}

static int get_str(const char *file, struct json_object *o, const char *key,
		   char **out, struct vs_error **err)
{
	struct json_object *v;
	int r = get_field(file, o, key, json_type_string, &v, err);

	if (r < 0)
		return r;
	*out = strdup(json_object_get_string(v));
	return *out ? 0 : vs_error_set(err, ENOMEM, "out of memory");
}

static int get_uint(const char *file, struct json_object *o, const char *key,
		    uint64_t max, uint64_t *out, struct vs_error **err)
{
	struct json_object *v;
	int64_t i;
	uint64_t u;
	int r = get_field(file, o, key, json_type_int, &v, err);

	if (r < 0)
		return r;
	/* json-c keeps integers above INT64_MAX as unsigned: the signed
	 * read catches negative numbers, the unsigned one the rest. */
	i = json_object_get_int64(v);
	u = json_object_get_uint64(v);
	if (i < 0 || u > max)
		return vs_error_set(err, EINVAL,
				    "%s: field '%s' is out of range", file,
				    key);
	*out = u;
	return 0;
}

static int get_bool(const char *file, struct json_object *o, const char *key,
		    bool *out, struct vs_error **err)
{
	struct json_object *v;
	int r = get_field(file, o, key, json_type_boolean, &v, err);

	if (r == 0)
		*out = json_object_get_boolean(v);
	return r;
}

static int get_proc(const char *file, struct json_object *procs,
		    const char *key, struct dom_proc *p, struct vs_error **err)
{
	struct json_object *o;
	uint64_t pid, start;
	int r;

	if ((r = get_field(file, procs, key, json_type_object, &o, err)) < 0 ||
	    (r = get_uint(file, o, "pid", INT_MAX, &pid, err)) < 0 ||
	    (r = get_uint(file, o, "start", UINT64_MAX, &start, err)) < 0)
		return r;
	p->pid = (pid_t)pid;
	p->start = start;
	return 0;
}

static int parse_disks(const char *file, struct json_object *arr,
		       struct dom_record *rec, struct vs_error **err)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++) {
		struct json_object *dj = json_object_array_get_idx(arr, i),
				   *sock;
		struct dom_rec_disk d = {0};
		uint64_t dev = 0, ino = 0;
		int r;

		if (!json_object_is_type(dj, json_type_object))
			return vs_error_set(err, EINVAL,
					    "%s: disks[%zu] is not an object",
					    file, i);
		if ((r = get_str(file, dj, "vdev", &d.vdev, err)) < 0 ||
		    (r = get_str(file, dj, "spec", &d.spec, err)) < 0 ||
		    (r = get_uint(file, dj, "dev", UINT64_MAX, &dev, err)) <
			    0 ||
		    (r = get_uint(file, dj, "ino", UINT64_MAX, &ino, err)) <
			    0 ||
		    (r = get_bool(file, dj, "readonly", &d.readonly, err)) <
			    0 ||
		    (r = get_bool(file, dj, "empty", &d.empty, err)) < 0) {
			free(d.vdev);
			free(d.spec);
			return r;
		}
		if (json_object_object_get_ex(dj, "socket", &sock) &&
		    json_object_is_type(sock, json_type_string))
			d.socket = (char *)json_object_get_string(sock);
		d.dev = (dev_t)dev;
		d.ino = (ino_t)ino;
		r = dom_record_add_disk(rec, &d);
		free(d.vdev);
		free(d.spec);
		if (r < 0)
			return vs_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_state(const char *file, struct json_object *o,
		       enum dom_state *out, struct vs_error **err)
{
	autofree char *s = NULL;
	int r = get_str(file, o, "state", &s, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < VS_ARRAY_SIZE(state_names); i++) {
		if (!strcmp(s, state_names[i])) {
			*out = (enum dom_state)i;
			return 0;
		}
	}
	return vs_error_set(err, EINVAL,
			    "%s: state '%s' is not one vstor writes", file, s);
}

static int record_from_json(const char *file, struct json_object *o,
			    struct dom_record *rec, struct vs_error **err)
{
	struct json_object *procs, *disks, *cfg;
	uint64_t domid, created, restarts;
	int r;

	if ((r = get_str(file, o, "name", &rec->name, err)) < 0 ||
	    (r = get_uint(file, o, "domid", DOM_DOMID_MAX, &domid, err)) < 0 ||
	    (r = parse_state(file, o, &rec->state, err)) < 0 ||
	    (r = get_uint(file, o, "created", INT64_MAX, &created, err)) < 0 ||
	    (r = get_str(file, o, "rundir", &rec->rundir, err)) < 0 ||
	    (r = get_field(file, o, "processes", json_type_object, &procs,
			   err)) < 0 ||
	    (r = get_proc(file, procs, "qemu", &rec->qemu, err)) < 0 ||
	    (r = get_proc(file, procs, "serve", &rec->serve, err)) < 0 ||
	    (r = get_proc(file, procs, "monitor", &rec->monitor, err)) < 0 ||
	    (r = get_field(file, o, "disks", json_type_array, &disks, err)) <
		    0 ||
	    (r = parse_disks(file, disks, rec, err)) < 0 ||
	    (r = get_bool(file, o, "reboot-requested", &rec->reboot_requested,
			  err)) < 0 ||
	    (r = get_uint(file, o, "restarts", UINT32_MAX, &restarts, err)) <
		    0 ||
	    (r = get_field(file, o, "config", json_type_object, &cfg, err)) < 0)
		return r;
	rec->domid = (unsigned)domid;
	/* Teardown removes what is in the run folder: only ever ours. */
	{
		char *want = NULL;
		bool same;

		if (asprintf(&want, "%s/run/%u", dom_state_dir(), rec->domid) <
		    0)
			return vs_error_set(err, ENOMEM, "out of memory");
		same = !strcmp(want, rec->rundir);
		free(want);
		if (!same)
			return vs_error_set(
				err, EINVAL,
				"%s: rundir '%s' is not the run folder "
				"of domain ID %u",
				file, rec->rundir, rec->domid);
	}
	rec->created = (int64_t)created;
	rec->restarts = (unsigned)restarts;
	r = dom_config_from_json(cfg, &rec->cfg, err);
	if (r < 0) {
		vs_error_prefix(err, "%s: config", file);
		return r;
	}
	return 0;
}

int dom_record_parse(const char *text, size_t len, const char *file,
		     struct dom_record **out, struct vs_error **err)
{
	struct json_tokener *tok;
	struct json_object *o;
	struct dom_record *rec;
	int r;

	/* The text ends at its first NUL, as a file read into a C string
	 * does. */
	len = strnlen(text, len);
	if (len > RECORD_MAX_BYTES)
		return vs_error_set(err, EFBIG, "%s: larger than %u bytes",
				    file, RECORD_MAX_BYTES);
	tok = json_tokener_new_ex(64);
	if (!tok)
		return vs_error_set(err, ENOMEM, "out of memory");
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(o);
		return vs_error_set(err, EINVAL, "%s: not a JSON object", file);
	}
	json_tokener_free(tok);
	rec = calloc(1, sizeof(*rec));
	if (!rec) {
		json_object_put(o);
		return vs_error_set(err, ENOMEM, "out of memory");
	}
	r = record_from_json(file, o, rec, err);
	json_object_put(o);
	if (r < 0) {
		dom_record_free(rec);
		return r;
	}
	*out = rec;
	return 0;
}

int dom_record_load(const char *name, struct dom_record **out,
		    struct vs_error **err)
{
	autofree char *path = NULL, *text = NULL;
	struct dom_record *rec;
	int r;

	/* A name is a file name here: keep it to what config.h allows. */
	r = dom_name_check(name, err);
	if (r < 0)
		return r;
	path = record_path(name);
	if (!path)
		return vs_error_set(err, ENOMEM, "out of memory");
	r = read_small(path, RECORD_MAX_BYTES, &text);
	if (r == -ENOENT)
		return vs_error_set(err, ENOENT, "no domain '%s'", name);
	if (r < 0)
		return vs_error_set_errno(err, r, "cannot read '%s'", path);
	r = dom_record_parse(text, strlen(text), path, &rec, err);
	if (r < 0)
		return r;
	if (strcmp(rec->name, name)) {
		r = vs_error_set(err, EINVAL, "%s: holds domain '%s'", path,
				 rec->name);
		dom_record_free(rec);
		return r;
	}
	*out = rec;
	return 0;
}

void dom_names_free(char **names)
{
	if (!names)
		return;
	for (size_t i = 0; names[i]; i++)
		free(names[i]);
	free(names);
}

struct named_id {
	char *name;
	unsigned domid;
};

static int by_domid(const void *a, const void *b)
{
	const struct named_id *x = a, *y = b;

	return x->domid < y->domid ? -1 : x->domid > y->domid;
}

int dom_record_names(char ***names, struct vs_error **err)
{
	autofree char *dir = NULL;
	struct named_id *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char **out;
	DIR *d;

	if (asprintf(&dir, "%s/domains", dom_state_dir()) < 0)
		return vs_error_set(err, ENOMEM, "out of memory");
	d = opendir(dir);
	if (!d && errno != ENOENT)
		return vs_error_set_errno(err, errno, "cannot read '%s'", dir);
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct vs_error *e = NULL;
		struct dom_record *rec;
		char *name;

		if (de->d_name[0] == '.' || len <= 5 ||
		    strcmp(de->d_name + len - 5, ".json"))
			continue;
		name = strndup(de->d_name, len - 5);
		if (!name || dom_record_load(name, &rec, &e) < 0) {
			if (e)
				vs_warn("skipping a damaged record: %s "
					"('vstor destroy --force %s' sets it "
					"aside)",
					vs_error_msg(e), name ? name : "NAME");
			vs_error_free(e);
			free(name);
			continue;
		}
		if (n == cap) {
			struct named_id *g;

			cap = cap ? cap * 2 : 16;
			g = realloc(list, cap * sizeof(*g));
			if (!g) {
				free(name);
				dom_record_free(rec);
				break;
			}
			list = g;
		}
		list[n++] = (struct named_id){name, rec->domid};
		dom_record_free(rec);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(list, n, sizeof(*list), by_domid);
	out = calloc(n + 1, sizeof(*out));
	if (!out) {
		for (size_t i = 0; i < n; i++)
			free(list[i].name);
		free(list);
		return vs_error_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		out[i] = list[i].name;
	free(list);
	*names = out;
	return 0;
}

static void disk_fini(struct dom_rec_disk *d)
{
	free(d->spec);
	free(d->vdev);
	free(d->socket);
}

void dom_record_free(struct dom_record *rec)
{
	if (!rec)
		return;
	free(rec->name);
	free(rec->rundir);
	dom_config_free(rec->cfg);
	for (size_t i = 0; i < rec->n_disks; i++)
		disk_fini(&rec->disks[i]);
	free(rec->disks);
	free(rec);
}

int dom_record_add_disk(struct dom_record *rec, const struct dom_rec_disk *d)
{
	struct dom_rec_disk *g, *nd;

	g = realloc(rec->disks, (rec->n_disks + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	rec->disks = g;
	nd = &g[rec->n_disks];
	*nd = *d;
	nd->spec = strdup(d->spec);
	nd->vdev = strdup(d->vdev);
	nd->socket = d->socket ? strdup(d->socket) : NULL;
	if (!nd->spec || !nd->vdev || (d->socket && !nd->socket)) {
		disk_fini(nd);
		return -ENOMEM;
	}
	rec->n_disks++;
	return 0;
}

struct dom_rec_disk *dom_record_find_disk(struct dom_record *rec,
					  const char *vdev)
{
	for (size_t i = 0; i < rec->n_disks; i++)
		if (!strcmp(rec->disks[i].vdev, vdev))
			return &rec->disks[i];
	return NULL;
}

bool dom_record_remove_disk(struct dom_record *rec, const char *vdev)
{
	struct dom_rec_disk *d = dom_record_find_disk(rec, vdev);
	size_t i;

	if (!d)
		return false;
	i = (size_t)(d - rec->disks);
	disk_fini(d);
	memmove(&rec->disks[i], &rec->disks[i + 1],
		(rec->n_disks - i - 1) * sizeof(*d));
	rec->n_disks--;
	return true;
}
