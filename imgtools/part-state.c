/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state file of a mapped disk: what `vstor part map` made (the FUSE
 * server, the loop devices, the maps), so that `unmap` undoes exactly
 * that, in order, and nothing that someone else made meanwhile.  Written
 * after every step of map, so that a map that dies half-way leaves a
 * state that unmap can still clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "part-priv.h"

#define STATE_DIR_ENV	  "VSTOR_PART_STATE_DIR"
#define STATE_DIR_DEFAULT "/run/vstor/part"
/* A state file is ours and small; anything larger is not one. */
#define STATE_MAX (1u << 20)

struct img_part_state *img_part_state_new(size_t n)
{
	return calloc(1, sizeof(struct img_part_state) +
				 n * sizeof(struct img_part_rec));
}

static int mkdirs(char *path, struct vs_error **errp)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			*p = '/';
			return vs_error_set_errno(errp, e, "cannot create %s",
						  path);
		}
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return vs_error_set_errno(errp, errno, "cannot create %s",
					  path);
	return 0;
}

int img_part_state_dir(char *buf, size_t len, struct vs_error **errp)
{
	const char *env = getenv(STATE_DIR_ENV);
	const char *dir = env && *env ? env : STATE_DIR_DEFAULT;
	struct stat st;
	int ret;

	if (dir[0] != '/')
		return vs_error_set(errp, EINVAL,
				    "%s: '%s' is not an absolute path",
				    STATE_DIR_ENV, dir);
	if ((size_t)snprintf(buf, len, "%s", dir) >= len)
		return vs_error_set(errp, ENAMETOOLONG, "%s: path too long",
				    dir);
	ret = mkdirs(buf, errp);
	if (ret < 0)
		return ret;
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
		return vs_error_set(errp, ENOTDIR,
				    "state folder %s is not a folder", buf);
	return 0;
}

void img_part_state_key(const struct stat *st, char *buf, size_t len)
{
	if (S_ISBLK(st->st_mode))
		snprintf(buf, len, "dev-%u-%u", major(st->st_rdev),
			 minor(st->st_rdev));
	else
		snprintf(buf, len, "file-%" PRIx64 "-%" PRIu64,
			 (uint64_t)st->st_dev, (uint64_t)st->st_ino);
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
	/* Devices, inodes and offsets fit in int64 in practice; a larger
	 * one is written as it is and refused when read back. */
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static struct json_object *loop_json(const struct img_loop *l)
{
	struct json_object *o = json_object_new_object();

	add_str(o, "dev", l->dev);
	add_u64(o, "rdev-major", major(l->rdev));
	add_u64(o, "rdev-minor", minor(l->rdev));
	add_u64(o, "backing-dev", l->backing_dev);
	add_u64(o, "backing-ino", l->backing_ino);
	add_u64(o, "offset", l->offset);
	add_u64(o, "sizelimit", l->sizelimit);
	json_object_object_add(o, "autoclear",
			       json_object_new_boolean(l->autoclear));
	return o;
}

static struct json_object *state_json(const struct img_part_state *s)
{
	struct json_object *o = json_object_new_object();
	struct json_object *maps = json_object_new_array();

	add_str(o, "disk", s->disk);
	add_str(o, "format", s->format);
	if (s->has_whole) {
		json_object_object_add(o, "loop", loop_json(&s->whole));
		json_object_object_add(
			o, "loop-created",
			json_object_new_boolean(s->loop_created));
	}
	if (s->serve_pid) {
		add_u64(o, "serve-pid", (uint64_t)s->serve_pid);
		add_u64(o, "serve-start", s->serve_start);
		add_str(o, "fuse-file", s->fuse_file);
		add_str(o, "pidfile", s->pidfile);
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct img_part_rec *r = &s->recs[i];
		struct json_object *m = json_object_new_object();

		add_str(m, "name", r->name);
		add_str(m, "kind", r->kind == IMG_MAP_DM ? "dm" : "loop");
		add_str(m, "dev", r->dev);
		add_u64(m, "number", r->number);
		if (r->kind == IMG_MAP_LOOP)
			json_object_object_add(m, "loop", loop_json(&r->loop));
		json_object_array_add(maps, m);
	}
	json_object_object_add(o, "maps", maps);
	return o;
}

char *img_part_state_format(const struct img_part_state *s)
{
	struct json_object *o = state_json(s);
	char *text = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return text;
}

int img_part_state_save(const char *dir, const char *key,
			const struct img_part_state *s, struct vs_error **errp)
{
	char path[4200], tmp[4300];
	char *text = img_part_state_format(s);
	size_t len;
	int fd, ret = 0;

	if (!text)
		return vs_error_set(errp, ENOMEM, "out of memory");
	len = strlen(text);
	snprintf(path, sizeof(path), "%s/%s.json", dir, key);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = vs_error_set_errno(errp, errno, "%s", tmp);
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0) {
		ret = vs_error_set_errno(errp, errno ? errno : EIO,
					 "cannot write %s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		ret = vs_error_set_errno(errp, errno, "cannot rename %s", tmp);
		unlink(tmp);
	}
out:
	free(text);
	return ret;
}

/* Field readers: the file is ours, yet a damaged one must give an error
 * that names it, not a wrong unmap. */
struct reader {
	const char *path;
	struct vs_error **errp;
	int ret;
};

static struct json_object *field(struct reader *r, struct json_object *o,
				 const char *k, json_type type)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, type)) {
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: field '%s' is missing or of the "
				      "wrong type",
				      r->path, k);
		return NULL;
	}
	return v;
}

static void get_str(struct reader *r, struct json_object *o, const char *k,
		    char *buf, size_t len)
{
	struct json_object *v = field(r, o, k, json_type_string);

	if (!v)
		return;
	if ((size_t)json_object_get_string_len(v) >= len) {
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: field '%s' is too long", r->path, k);
		return;
	}
	snprintf(buf, len, "%s", json_object_get_string(v));
}

static uint64_t get_u64(struct reader *r, struct json_object *o, const char *k)
{
	struct json_object *v = field(r, o, k, json_type_int);
	int64_t n;

	if (!v)
		return 0;
	n = json_object_get_int64(v);
	if (n < 0) {
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: field '%s' is negative", r->path, k);
		return 0;
	}
	/* json-c keeps a number above INT64_MAX unsigned, and the signed
	 * read clamps it to INT64_MAX: refuse it rather than hand unmap an
	 * offset or an inode the file does not hold. */
	if (json_object_get_uint64(v) > INT64_MAX) {
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: field '%s' is out of range", r->path,
				      k);
		return 0;
	}
	return (uint64_t)n;
}

static void get_loop(struct reader *r, struct json_object *o,
		     struct img_loop *l)
{
	uint64_t maj, min;
	struct json_object *ac;

	get_str(r, o, "dev", l->dev, sizeof(l->dev));
	maj = get_u64(r, o, "rdev-major");
	min = get_u64(r, o, "rdev-minor");
	if (maj > 0xfff || min > 0xfffff)
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: device number %" PRIu64 ":%" PRIu64
				      " out of range",
				      r->path, maj, min);
	l->rdev = makedev((unsigned)maj, (unsigned)min);
	l->backing_dev = get_u64(r, o, "backing-dev");
	l->backing_ino = get_u64(r, o, "backing-ino");
	l->offset = get_u64(r, o, "offset");
	l->sizelimit = get_u64(r, o, "sizelimit");
	ac = field(r, o, "autoclear", json_type_boolean);
	l->autoclear = ac && json_object_get_boolean(ac);
}

static void get_rec(struct reader *r, struct json_object *m,
		    struct img_part_rec *rec)
{
	char kind[8] = "";
	uint64_t number;

	get_str(r, m, "name", rec->name, sizeof(rec->name));
	get_str(r, m, "kind", kind, sizeof(kind));
	get_str(r, m, "dev", rec->dev, sizeof(rec->dev));
	number = get_u64(r, m, "number");
	if (number > 1000000)
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: partition number %" PRIu64
				      " out of range",
				      r->path, number);
	rec->number = (unsigned)number;
	if (!strcmp(kind, "dm")) {
		rec->kind = IMG_MAP_DM;
	} else if (!strcmp(kind, "loop")) {
		struct json_object *l = field(r, m, "loop", json_type_object);

		rec->kind = IMG_MAP_LOOP;
		if (l)
			get_loop(r, l, &rec->loop);
	} else if (!r->ret) {
		r->ret = vs_error_set(r->errp, EINVAL,
				      "%s: map kind '%s' is neither dm nor "
				      "loop",
				      r->path, kind);
	}
}

static int parse_state(struct json_object *o, struct reader *r,
		       struct img_part_state **out)
{
	struct json_object *maps = field(r, o, "maps", json_type_array);
	struct json_object *l;
	struct img_part_state *s;
	size_t n;

	if (!maps)
		return r->ret;
	n = json_object_array_length(maps);
	if (n > 4096)
		return vs_error_set(r->errp, EINVAL, "%s: %zu maps", r->path,
				    n);
	s = img_part_state_new(n);
	if (!s)
		return vs_error_set(r->errp, ENOMEM, "out of memory");
	get_str(r, o, "disk", s->disk, sizeof(s->disk));
	get_str(r, o, "format", s->format, sizeof(s->format));
	if (json_object_object_get_ex(o, "loop", &l)) {
		struct json_object *c =
			field(r, o, "loop-created", json_type_boolean);

		s->has_whole = true;
		s->loop_created = c && json_object_get_boolean(c);
		/* Unmap detaches the device named here: a "loop" that is not
		 * an object names none, and is an error, not an empty one. */
		l = field(r, o, "loop", json_type_object);
		if (l)
			get_loop(r, l, &s->whole);
	}
	if (json_object_object_get_ex(o, "serve-pid", &l)) {
		uint64_t pid = get_u64(r, o, "serve-pid");

		if (pid < 2 || pid > 0x3fffffff)
			r->ret = vs_error_set(r->errp, EINVAL,
					      "%s: serve-pid %" PRIu64
					      " out of range",
					      r->path, pid);
		s->serve_pid = (pid_t)pid;
		s->serve_start = get_u64(r, o, "serve-start");
		get_str(r, o, "fuse-file", s->fuse_file, sizeof(s->fuse_file));
		get_str(r, o, "pidfile", s->pidfile, sizeof(s->pidfile));
	}
	for (size_t i = 0; i < n && !r->ret; i++) {
		struct json_object *m = json_object_array_get_idx(maps, i);

		if (!json_object_is_type(m, json_type_object))
			r->ret = vs_error_set(r->errp, EINVAL,
					      "%s: map %zu is not an object",
					      r->path, i);
		else
			get_rec(r, m, &s->recs[s->n++]);
	}
	if (r->ret) {
		free(s);
		return r->ret;
	}
	*out = s;
	return 0;
}

int img_part_state_parse(const char *text, size_t len, const char *path,
			 struct img_part_state **out, struct vs_error **errp)
{
	struct reader r = {.path = path, .errp = errp};
	struct json_tokener *tok;
	struct json_object *o;
	int ret;

	/* The text ends at its first NUL, as the C string read from a file
	 * does. */
	len = strnlen(text, len);
	if (len > STATE_MAX)
		return vs_error_set(errp, EINVAL,
				    "%s is not a vstor part state file", path);
	tok = json_tokener_new();
	if (!tok)
		return vs_error_set(errp, ENOMEM, "out of memory");
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(o);
		return vs_error_set(errp, EINVAL, "%s: not a JSON object",
				    path);
	}
	json_tokener_free(tok);
	ret = parse_state(o, &r, out);
	json_object_put(o);
	return ret;
}

int img_part_state_load(const char *dir, const char *key,
			struct img_part_state **out, struct vs_error **errp)
{
	char path[4200];
	struct stat st;
	char *text;
	ssize_t got;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s.json", dir, key);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
			       ? -ENOENT
			       : vs_error_set_errno(errp, errno, "%s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > STATE_MAX) {
		close(fd);
		return vs_error_set(errp, EINVAL,
				    "%s is not a vstor part state file", path);
	}
	text = calloc(1, (size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	got = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (got != st.st_size) {
		free(text);
		return vs_error_set_errno(errp, got < 0 ? errno : EIO,
					  "cannot read %s", path);
	}
	ret = img_part_state_parse(text, (size_t)got, path, out, errp);
	free(text);
	return ret;
}

int img_part_state_remove(const char *dir, const char *key,
			  struct vs_error **errp)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s.json", dir, key);
	if (unlink(path) < 0 && errno != ENOENT)
		return vs_error_set_errno(errp, errno, "cannot remove %s",
					  path);
	return 0;
}
