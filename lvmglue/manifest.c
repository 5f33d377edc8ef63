/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Backup manifests and their .sums files (manifest.h). */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "checksum.h"
#include "manifest.h"

#define SUMS_MAGIC	"VSTORSUM"
#define SUMS_HEADER	32u
#define NAME_MAX_BYTES	200u
#define MIN_CLUSTER	512u
#define MAX_CLUSTER	(2u << 20)
#define MAX_FIELD_BYTES 4096u

bool lvm_manifest_name_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (!len || len > NAME_MAX_BYTES || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

char *lvm_manifest_file(const struct lvm_manifest *m, const char *ext)
{
	char *s = NULL;

	if (asprintf(&s, "%s/%s.%s", m->dir ? m->dir : ".", m->name, ext) < 0)
		return NULL;
	return s;
}

void lvm_manifest_clear(struct lvm_manifest *m)
{
	if (!m)
		return;
	free(m->dir);
	free(m->name);
	free(m->vg);
	free(m->lv);
	free(m->uuid);
	free(m->lv_type);
	free(m->domain);
	free(m->time);
	free(m->backing);
	free(m->method);
	free(m->thin_snapshot);
	free(m->thin_snapshot_uuid);
	memset(m, 0, sizeof(*m));
}

void lvm_manifest_free_array(struct lvm_manifest *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++)
		lvm_manifest_clear(&a[i]);
	free(a);
}

/* --- parsing ------------------------------------------------------- */

struct rd {
	struct json_object *o;
	const char *what;
	struct vs_error **errp;
};

static int bad(struct rd *r, const char *key, const char *why)
{
	return vs_error_set(r->errp, EINVAL, "%s: \"%s\": %s", r->what, key,
			    why);
}

/* A string field; `optional` allows it to be absent or null. */
static int get_str(struct rd *r, const char *key, bool optional, char **out)
{
	struct json_object *v;
	const char *s;
	size_t len;

	*out = NULL;
	if (!json_object_object_get_ex(r->o, key, &v) || !v) {
		if (optional)
			return 0;
		return bad(r, key, "missing");
	}
	if (!json_object_is_type(v, json_type_string))
		return bad(r, key, "not a string");
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len > MAX_FIELD_BYTES || strlen(s) != len)
		return bad(r, key, "too long or holds a NUL byte");
	*out = strdup(s);
	return *out ? 0 : vs_error_set(r->errp, ENOMEM, "out of memory");
}

static int get_u64(struct rd *r, const char *key, uint64_t max, uint64_t *out)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(r->o, key, &v) || !v)
		return bad(r, key, "missing");
	if (!json_object_is_type(v, json_type_int))
		return bad(r, key, "not an integer");
	errno = 0;
	x = json_object_get_int64(v);
	/* json-c clamps numbers out of int64's range to its ends (and
	 * sometimes says so in errno): no field of ours is that large. */
	if (errno || x < 0 || x == INT64_MAX || (uint64_t)x > max)
		return vs_error_set(r->errp, EINVAL,
				    "%s: \"%s\": %" PRId64 " is out of range "
				    "(0..%" PRIu64 ")",
				    r->what, key, x, max);
	*out = (uint64_t)x;
	return 0;
}

/* 64-bit hashes do not fit JSON's safe integers: "0x" + 16 hex digits. */
static int get_hex64(struct rd *r, const char *key, uint64_t *out)
{
	autofree char *s = NULL;
	int ret = get_str(r, key, false, &s);
	char *end;

	if (ret < 0)
		return ret;
	if (strlen(s) != 18 || s[0] != '0' || s[1] != 'x' ||
	    strspn(s + 2, "0123456789abcdef") != 16)
		return vs_error_set(r->errp, EINVAL,
				    "%s: \"%s\": '%s' is not 0x and 16 "
				    "lowercase hex digits",
				    r->what, key, s);
	*out = strtoull(s + 2, &end, 16);
	return 0;
}

static int check_name(struct rd *r, const char *key, const char *v)
{
	if (v && !lvm_manifest_name_ok(v))
		return vs_error_set(r->errp, EINVAL,
				    "%s: \"%s\": '%s' is not a plain file "
				    "name in the backup's folder",
				    r->what, key, v);
	return 0;
}

static int parse_source(struct rd *top, struct lvm_manifest *m)
{
	struct rd r = {.what = top->what, .errp = top->errp};
	int ret;

	if (!json_object_object_get_ex(top->o, "source", &r.o) ||
	    !json_object_is_type(r.o, json_type_object))
		return bad(top, "source", "missing or not an object");
	if ((ret = get_str(&r, "vg", false, &m->vg)) < 0 ||
	    (ret = get_str(&r, "lv", false, &m->lv)) < 0 ||
	    (ret = get_str(&r, "uuid", false, &m->uuid)) < 0 ||
	    (ret = get_str(&r, "type", false, &m->lv_type)) < 0 ||
	    (ret = get_str(&r, "domain", true, &m->domain)) < 0 ||
	    (ret = get_u64(&r, "size", INT64_MAX, &m->size)) < 0)
		return ret;
	if (strcmp(m->lv_type, "linear") && strcmp(m->lv_type, "thin"))
		return bad(&r, "type", "neither \"linear\" nor \"thin\"");
	if (!m->size)
		return bad(&r, "size", "zero");
	if (!*m->uuid)
		return bad(&r, "uuid", "empty");
	return 0;
}

static int parse_fields(struct rd *r, struct lvm_manifest *m)
{
	autofree char *format = NULL, *hash = NULL;
	uint64_t version, cs, seq;
	int ret;

	if ((ret = get_str(r, "format", false, &format)) < 0 ||
	    (ret = get_u64(r, "version", UINT32_MAX, &version)) < 0)
		return ret;
	if (strcmp(format, LVM_MANIFEST_FORMAT))
		return bad(r, "format", "not \"" LVM_MANIFEST_FORMAT "\"");
	if (version != LVM_MANIFEST_VERSION)
		return vs_error_set(r->errp, ENOTSUP,
				    "%s: manifest version %" PRIu64
				    " is not supported (only %d)",
				    r->what, version, LVM_MANIFEST_VERSION);
	if ((ret = parse_source(r, m)) < 0 ||
	    (ret = get_str(r, "name", false, &m->name)) < 0 ||
	    (ret = check_name(r, "name", m->name)) < 0 ||
	    (ret = get_u64(r, "time_ns", INT64_MAX, &m->time_ns)) < 0 ||
	    (ret = get_str(r, "time", false, &m->time)) < 0 ||
	    (ret = get_u64(r, "seq", LVM_CHAIN_MAX, &seq)) < 0 ||
	    (ret = get_str(r, "backing", true, &m->backing)) < 0 ||
	    (ret = check_name(r, "backing", m->backing)) < 0 ||
	    (ret = get_str(r, "method", false, &m->method)) < 0 ||
	    (ret = get_str(r, "hash", false, &hash)) < 0 ||
	    (ret = get_u64(r, "cluster_size", MAX_CLUSTER, &cs)) < 0 ||
	    (ret = get_u64(r, "clusters", INT64_MAX, &m->clusters)) < 0 ||
	    (ret = get_hex64(r, "image_checksum", &m->image_sum)) < 0 ||
	    (ret = get_u64(r, "changed_clusters", INT64_MAX, &m->changed)) <
		    0 ||
	    (ret = get_u64(r, "zero_clusters", INT64_MAX, &m->zeroed)) < 0 ||
	    (ret = get_str(r, "thin_snapshot", true, &m->thin_snapshot)) < 0 ||
	    (ret = get_str(r, "thin_snapshot_uuid", true,
			   &m->thin_snapshot_uuid)) < 0)
		return ret;
	m->seq = (uint32_t)seq;
	m->cluster_size = (uint32_t)cs;
	if (strcmp(hash, LVM_SUM_ALGORITHM))
		return vs_error_set(r->errp, ENOTSUP,
				    "%s: checksum algorithm '%s' is not "
				    "supported (only " LVM_SUM_ALGORITHM ")",
				    r->what, hash);
	if (cs < MIN_CLUSTER || (cs & (cs - 1)))
		return bad(r, "cluster_size",
			   "not a power of two from 512 to 2 MiB");
	if (m->clusters != m->size / cs + (m->size % cs != 0))
		return bad(r, "clusters", "does not match size / cluster_size");
	if (m->changed > m->clusters || m->zeroed > m->changed)
		return bad(r, "changed_clusters",
			   "more than the disk's clusters");
	if ((m->seq == 0) != (m->backing == NULL))
		return bad(r, "backing",
			   "a full backup (seq 0) has none, an incremental "
			   "one must have one");
	if (strcmp(m->method, "full") && strcmp(m->method, "thin-delta") &&
	    strcmp(m->method, "checksums"))
		return bad(r, "method", "not full, thin-delta or checksums");
	if (!m->thin_snapshot != !m->thin_snapshot_uuid)
		return bad(r, "thin_snapshot",
			   "name and uuid come together or not at all");
	return 0;
}

int lvm_manifest_parse(const char *text, size_t len, const char *what,
		       struct lvm_manifest *out, struct vs_error **errp)
{
	struct json_tokener *tok;
	struct json_object *o;
	struct rd r = {.what = what, .errp = errp};
	int ret;

	memset(out, 0, sizeof(*out));
	if (len > LVM_MANIFEST_MAX_BYTES || len > INT32_MAX)
		return vs_error_set(errp, EINVAL,
				    "%s: %zu bytes is too large for a manifest",
				    what, len);
	tok = json_tokener_new_ex(16);
	if (!tok)
		return vs_error_set(errp, ENOMEM, "out of memory");
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		ret = vs_error_set(
			errp, EINVAL, "%s: not valid JSON (%s)", what,
			json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(o);
		json_tokener_free(tok);
		return ret;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return vs_error_set(errp, EINVAL, "%s: not a JSON object",
				    what);
	}
	r.o = o;
	ret = parse_fields(&r, out);
	json_object_put(o);
	if (ret < 0)
		lvm_manifest_clear(out);
	return ret;
}

static int read_small_file(const char *path, size_t max, char **data,
			   size_t *len, struct vs_error **errp)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	autofree char *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return vs_error_set_errno(errp, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return vs_error_set_errno(errp, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return vs_error_set(errp, EINVAL, "%s: not a regular file",
				    path);
	if (st.st_size < 0 || (uint64_t)st.st_size > max)
		return vs_error_set(errp, EFBIG,
				    "%s: %lld bytes, more than the %zu "
				    "expected",
				    path, (long long)st.st_size, max);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return vs_error_set(errp, ENOMEM, "%s: out of memory", path);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_error_set_errno(errp, errno, "%s: read",
						  path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	*len = got;
	*data = vs_steal(&buf);
	return 0;
}

/* Split "DIR/NAME.json" into a folder and a stem. */
static int split_path(const char *path, char **dir, char **stem,
		      struct vs_error **errp)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base);

	if (blen <= 5 || strcmp(base + blen - 5, ".json"))
		return vs_error_set(errp, EINVAL,
				    "%s: a backup manifest's name ends in "
				    ".json",
				    path);
	*dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path))
		     : strdup(".");
	*stem = strndup(base, blen - 5);
	if (!*dir || !*stem)
		return vs_error_set(errp, ENOMEM, "out of memory");
	return 0;
}

int lvm_manifest_load(const char *path, struct lvm_manifest *out,
		      struct vs_error **errp)
{
	autofree char *text = NULL, *dir = NULL, *stem = NULL;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = split_path(path, &dir, &stem, errp);
	if (ret < 0)
		return ret;
	ret = read_small_file(path, LVM_MANIFEST_MAX_BYTES, &text, &len, errp);
	if (ret < 0)
		return ret;
	ret = lvm_manifest_parse(text, len, path, out, errp);
	if (ret < 0)
		return ret;
	/* A renamed manifest would point at files of another name. */
	if (strcmp(out->name, stem)) {
		ret = vs_error_set(errp, EINVAL,
				   "%s: the manifest is for '%s', not '%s' "
				   "(renamed?)",
				   path, out->name, stem);
		lvm_manifest_clear(out);
		return ret;
	}
	out->dir = vs_steal(&dir);
	return 0;
}

/* --- writing ------------------------------------------------------- */

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

int lvm_manifest_format(const struct lvm_manifest *m, char **out,
			struct vs_error **errp)
{
	struct json_object *o = json_object_new_object();
	struct json_object *src = json_object_new_object();
	char hex[24];

	if (!o || !src) {
		json_object_put(o);
		json_object_put(src);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	add_str(o, "format", LVM_MANIFEST_FORMAT);
	add_u64(o, "version", LVM_MANIFEST_VERSION);
	add_str(o, "name", m->name);
	add_str(src, "vg", m->vg);
	add_str(src, "lv", m->lv);
	add_str(src, "uuid", m->uuid);
	add_str(src, "type", m->lv_type);
	if (m->domain)
		add_str(src, "domain", m->domain);
	add_u64(src, "size", m->size);
	json_object_object_add(o, "source", src);
	add_str(o, "time", m->time);
	add_u64(o, "time_ns", m->time_ns);
	add_u64(o, "seq", m->seq);
	add_str(o, "backing", m->backing);
	add_str(o, "method", m->method);
	add_str(o, "hash", LVM_SUM_ALGORITHM);
	add_u64(o, "cluster_size", m->cluster_size);
	add_u64(o, "clusters", m->clusters);
	snprintf(hex, sizeof(hex), "0x%016" PRIx64, m->image_sum);
	add_str(o, "image_checksum", hex);
	add_u64(o, "changed_clusters", m->changed);
	add_u64(o, "zero_clusters", m->zeroed);
	add_str(o, "thin_snapshot", m->thin_snapshot);
	add_str(o, "thin_snapshot_uuid", m->thin_snapshot_uuid);
	*out = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return *out ? 0 : vs_error_set(errp, ENOMEM, "out of memory");
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	autoclose int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* Write `path` whole or not at all: PATH.tmp, fsync, rename, fsync of
 * the folder.  Two buffers so that a header need not be copied. */
static int write_atomic(const struct lvm_manifest *m, const char *ext,
			const void *a, size_t alen, const void *b, size_t blen,
			struct vs_error **errp)
{
	autofree char *path = lvm_manifest_file(m, ext);
	autofree char *tmp = NULL;
	int fd, ret;

	if (!path || asprintf(&tmp, "%s.tmp", path) < 0)
		return vs_error_set(errp, ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return vs_error_set_errno(errp, errno, "%s", tmp);
	ret = write_all(fd, a, alen);
	if (ret == 0)
		ret = write_all(fd, b, blen);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		return vs_error_set_errno(errp, -ret, "%s: writing", path);
	}
	ret = fsync_dir(m->dir);
	if (ret < 0)
		return vs_error_set_errno(errp, -ret, "%s: fsync", m->dir);
	return 0;
}

int lvm_manifest_write(const struct lvm_manifest *m, struct vs_error **errp)
{
	autofree char *text = NULL;
	int ret = lvm_manifest_format(m, &text, errp);

	if (ret < 0)
		return ret;
	return write_atomic(m, "json", text, strlen(text), "\n", 1, errp);
}

int lvm_sums_write(const struct lvm_manifest *m, const uint64_t *sums,
		   struct vs_error **errp)
{
	uint8_t hdr[SUMS_HEADER] = {0};
	uint32_t v32;
	uint64_t v64;
	autofree uint64_t *le = NULL;

	if (m->clusters > SIZE_MAX / sizeof(uint64_t))
		return vs_error_set(errp, EFBIG, "too many clusters");
	le = malloc((size_t)m->clusters * sizeof(uint64_t) + 1);
	if (!le)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (uint64_t i = 0; i < m->clusters; i++)
		le[i] = htole64(sums[i]);
	memcpy(hdr, SUMS_MAGIC, 8);
	v32 = htole32(1);
	memcpy(hdr + 8, &v32, 4);
	v32 = htole32(m->cluster_size);
	memcpy(hdr + 12, &v32, 4);
	v64 = htole64(m->clusters);
	memcpy(hdr + 16, &v64, 8);
	return write_atomic(m, "sums", hdr, sizeof(hdr), le,
			    (size_t)m->clusters * sizeof(uint64_t), errp);
}

int lvm_sums_parse(const void *data, size_t len, const char *what,
		   const struct lvm_manifest *m, uint64_t **sums,
		   struct vs_error **errp)
{
	const uint8_t *p = data;
	uint32_t version, cs;
	uint64_t count, *s;

	if (len < SUMS_HEADER || memcmp(p, SUMS_MAGIC, 8))
		return vs_error_set(errp, EINVAL,
				    "%s: not a vstor checksum file", what);
	memcpy(&version, p + 8, 4);
	memcpy(&cs, p + 12, 4);
	memcpy(&count, p + 16, 8);
	version = le32toh(version);
	cs = le32toh(cs);
	count = le64toh(count);
	if (version != 1)
		return vs_error_set(errp, ENOTSUP,
				    "%s: checksum file version %" PRIu32
				    " is not supported",
				    what, version);
	if (cs != m->cluster_size || count != m->clusters)
		return vs_error_set(
			errp, EINVAL,
			"%s: %" PRIu64 " clusters of %" PRIu32
			" bytes, but the manifest says %" PRIu64 " of %" PRIu32,
			what, count, cs, m->clusters, m->cluster_size);
	if (count > (SIZE_MAX - SUMS_HEADER) / 8 ||
	    len != SUMS_HEADER + count * 8)
		return vs_error_set(
			errp, EINVAL,
			"%s: %zu bytes, but %" PRIu64 " clusters need %" PRIu64,
			what, len, count, (uint64_t)SUMS_HEADER + count * 8);
	s = malloc(count ? (size_t)count * 8 : 1);
	if (!s)
		return vs_error_set(errp, ENOMEM, "%s: out of memory", what);
	memcpy(s, p + SUMS_HEADER, (size_t)count * 8);
	for (uint64_t i = 0; i < count; i++)
		s[i] = le64toh(s[i]);
	if (lvm_sum_image(s, count) != m->image_sum) {
		free(s);
		return vs_error_set(errp, EIO,
				    "%s: the checksums do not match the "
				    "manifest's image checksum 0x%016" PRIx64,
				    what, m->image_sum);
	}
	*sums = s;
	return 0;
}

int lvm_sums_read(const struct lvm_manifest *m, uint64_t **sums,
		  struct vs_error **errp)
{
	autofree char *path = lvm_manifest_file(m, "sums");
	autofree char *data = NULL;
	size_t len;
	int ret;

	if (!path)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (m->clusters > (SIZE_MAX - SUMS_HEADER - 1) / 8)
		return vs_error_set(errp, EFBIG, "%s: too many clusters", path);
	ret = read_small_file(path, SUMS_HEADER + (size_t)m->clusters * 8,
			      &data, &len, errp);
	if (ret < 0)
		return ret;
	return lvm_sums_parse(data, len, path, m, sums, errp);
}

/* --- finding backups ----------------------------------------------- */

int lvm_manifest_latest(const char *dir, const char *uuid,
			struct lvm_manifest *out, struct vs_error **errp)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	memset(out, 0, sizeof(*out));
	if (!d)
		return vs_error_set_errno(errp, errno, "%s", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct vs_error *err = NULL;
		struct lvm_manifest m;
		autofree char *path = NULL;
		autofree char *image = NULL;

		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") ||
		    de->d_name[0] == '.')
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			closedir(d);
			lvm_manifest_clear(out);
			return vs_error_set(errp, ENOMEM, "out of memory");
		}
		if (lvm_manifest_load(path, &m, &err) < 0) {
			vs_warn("skipping %s", vs_error_msg(err));
			vs_error_free(err);
			continue;
		}
		image = lvm_manifest_file(&m, "qcow2");
		if (strcmp(m.uuid, uuid) || !image || access(image, F_OK) ||
		    (found &&
		     (m.time_ns < out->time_ns ||
		      (m.time_ns == out->time_ns && m.seq <= out->seq)))) {
			lvm_manifest_clear(&m);
			continue;
		}
		lvm_manifest_clear(out);
		*out = m;
		found = true;
	}
	closedir(d);
	if (!found)
		return -ENOENT;
	return 0;
}

int lvm_manifest_chain(const char *path, struct lvm_manifest **chain, size_t *n,
		       struct vs_error **errp)
{
	struct lvm_manifest *a = NULL;
	size_t cnt = 0, cap = 0;
	autofree char *next = strdup(path);
	int ret = 0;

	if (!next)
		return vs_error_set(errp, ENOMEM, "out of memory");
	for (;;) {
		struct lvm_manifest *m, *top;

		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct lvm_manifest *na = realloc(a, ncap * sizeof(*a));

			if (!na) {
				ret = vs_error_set(errp, ENOMEM,
						   "out of memory");
				break;
			}
			a = na;
			cap = ncap;
		}
		m = &a[cnt];
		ret = lvm_manifest_load(next, m, errp);
		if (ret < 0)
			break;
		cnt++;
		/* seq falls by one at each link, so the walk ends, and a
		 * loop is impossible (LVM_CHAIN_MAX bounds seq). */
		if (cnt > 1) {
			top = &a[cnt - 2];
			if (m->seq + 1 != top->seq ||
			    strcmp(m->uuid, top->uuid) ||
			    m->size != top->size ||
			    m->cluster_size != top->cluster_size) {
				ret = vs_error_set(
					errp, EINVAL,
					"%s: not the previous point of "
					"%s/%s.json "
					"(source, size, cluster size or "
					"sequence number differ)",
					next, top->dir, top->name);
				break;
			}
		}
		if (!m->backing)
			break;
		free(next);
		next = NULL;
		if (asprintf(&next, "%s/%s.json", m->dir, m->backing) < 0) {
			next = NULL;
			ret = vs_error_set(errp, ENOMEM, "out of memory");
			break;
		}
	}
	if (ret < 0) {
		lvm_manifest_free_array(a, cnt);
		return ret;
	}
	/* Base first. */
	for (size_t i = 0; i < cnt / 2; i++) {
		struct lvm_manifest t = a[i];

		a[i] = a[cnt - 1 - i];
		a[cnt - 1 - i] = t;
	}
	*chain = a;
	*n = cnt;
	return 0;
}
