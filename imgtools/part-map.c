/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor part list|map|unmap: kpartx's -l, -a and -d. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/log.h"
#include "part-map.h"
#include "part-source.h"

#define SECTOR 512u

static void report_ev(img_part_report_fn *report, void *opaque,
		      const struct img_part_event *ev)
{
	if (report)
		report(ev, opaque);
}

void img_part_listing_free(struct img_part_listing *l)
{
	if (!l)
		return;
	img_part_table_free(l->table);
	free(l);
}

static const char *delim_of(const struct img_part_opts *o, const char *base)
{
	size_t len = strlen(base);

	if (o->delim)
		return o->delim;
	return len && base[len - 1] >= '0' && base[len - 1] <= '9' ? "p" : "";
}

int img_part_list(const char *disk, const struct img_part_opts *o,
		  struct img_part_listing **out, struct vs_error **errp)
{
	struct img_part_listing *l = calloc(1, sizeof(*l));
	struct img_part_src s;
	char key[64];
	int ret, r;

	if (!l)
		return vs_error_set(errp, ENOMEM, "out of memory");
	img_part_src_init(&s);
	ret = img_part_src_resolve(disk, &s, errp);
	if (ret < 0)
		goto out;
	snprintf(key, sizeof(key), "list-%d", (int)getpid());
	ret = img_part_src_open(o, true, key, &s, NULL, NULL, errp);
	if (ret < 0)
		goto out;
	ret = img_part_table_read(s.fd, disk, &l->table, errp);
	if (ret < 0)
		goto out;
	snprintf(l->format, sizeof(l->format), "%s", s.format);
	snprintf(l->device, sizeof(l->device), "%s", s.dev);
	snprintf(l->base, sizeof(l->base), "%s", s.base);
	snprintf(l->delim, sizeof(l->delim), "%s", delim_of(o, s.base));
	l->on_dm = s.on_dm;
out:
	r = img_part_src_undo(&s, NULL, NULL, errp);
	if (!ret)
		ret = r;
	if (ret < 0) {
		img_part_listing_free(l);
		return ret;
	}
	*out = l;
	return 0;
}

/* One map/unmap at a time on this host: the state folder's lock. */
static int lock_dir(const char *dir, int *fd, struct vs_error **errp)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return vs_error_set_errno(errp, errno, "%s", path);
	if (flock(*fd, LOCK_EX) < 0) {
		int e = errno;

		close(*fd);
		*fd = -1;
		return vs_error_set_errno(errp, e, "cannot lock %s", path);
	}
	return 0;
}

/* ---- map ---- */

struct mapper {
	const struct img_part_opts *o;
	struct img_part_src src;
	struct img_part_table *table;
	struct img_part_state *state;
	char dir[4096];
	char key[64];
	bool dm;
	img_part_report_fn *report;
	void *opaque;
};

static int save(struct mapper *m, struct vs_error **errp)
{
	return img_part_state_save(m->dir, m->key, m->state, errp);
}

static void fill_state(struct mapper *m)
{
	struct img_part_state *st = m->state;

	snprintf(st->disk, sizeof(st->disk), "%s", m->src.real);
	snprintf(st->format, sizeof(st->format), "%s", m->src.format);
	st->has_whole = m->src.loop_created;
	st->loop_created = m->src.loop_created;
	st->whole = m->src.whole;
	st->serve_pid = m->src.serve_pid;
	st->serve_start = m->src.serve_start;
	snprintf(st->fuse_file, sizeof(st->fuse_file), "%s", m->src.fuse_file);
	snprintf(st->pidfile, sizeof(st->pidfile), "%s", m->src.pidfile);
}

static int check_table(struct mapper *m, const char *disk,
		       struct vs_error **errp)
{
	const struct img_part_table *t = m->table;

	if (!t->type[0])
		return vs_error_set(errp, ENOENT,
				    "%s: no partition table (MBR or GPT) found",
				    disk);
	if (!t->n)
		return vs_error_set(errp, ENOENT,
				    "%s: the %s partition table has no "
				    "partitions",
				    disk, t->type);
	if (t->dropped)
		return vs_error_set(errp, EINVAL,
				    "%s: %zu GPT entries lie outside the "
				    "disk's usable area; nothing was mapped",
				    disk, t->dropped);
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].problem[0])
			return vs_error_set(errp, EINVAL,
					    "%s: partition %u: %s; nothing was "
					    "mapped",
					    disk, t->parts[i].number,
					    t->parts[i].problem);
	return 0;
}

static int part_name(struct mapper *m, unsigned number, char *buf, size_t len,
		     struct vs_error **errp)
{
	if (img_part_name(m->src.base, delim_of(m->o, m->src.base), number, buf,
			  len) < 0)
		return vs_error_set(errp, ENAMETOOLONG,
				    "%s: the name of partition %u is too long",
				    m->src.base, number);
	return 0;
}

/* Device-mapper names are global: one that exists (kpartx's own maps of
 * this disk, or anything else) stops the map before it begins. */
static int check_names(struct mapper *m, struct vs_error **errp)
{
	for (size_t i = 0; i < m->table->n; i++) {
		struct img_dm_info info;
		char name[128];
		int ret = part_name(m, m->table->parts[i].number, name,
				    sizeof(name), errp);

		if (ret < 0)
			return ret;
		ret = img_dm_info(name, &info, errp);
		if (ret < 0)
			return ret;
		if (info.exists)
			return vs_error_set(
				errp, EEXIST,
				"%s: device-mapper device %s exists already "
				"(%s); nothing was mapped",
				m->src.real, name,
				info.linear && info.target_dev == m->src.devt
					? "the partitions are mapped"
					: "it is not a partition of this disk");
	}
	return 0;
}

static int map_dm(struct mapper *m, const struct img_part *p,
		  struct img_part_rec *rec, struct vs_error **errp)
{
	char uuid[200];
	dev_t devt;
	int ret;

	snprintf(uuid, sizeof(uuid), "part%u-%s", p->number, m->src.uuid);
	ret = img_dm_create_linear(
		rec->name, uuid, p->map_size, m->src.devt, p->start,
		m->o->readonly, m->src.devst.st_mode & 0777,
		m->src.devst.st_uid, m->src.devst.st_gid, &devt, errp);
	if (ret < 0)
		return ret;
	rec->kind = IMG_MAP_DM;
	/* Through a copy: gcc cannot tell the members apart in a flexible
	 * array's element (-Wrestrict). */
	char dev[sizeof(rec->dev)];
	snprintf(dev, sizeof(dev), "/dev/mapper/%s", rec->name);
	memcpy(rec->dev, dev, sizeof(dev));
	report_ev(m->report, m->opaque,
		  &(struct img_part_event){.kind = IMG_PART_EV_ADD,
					   .dm = true,
					   .name = rec->name,
					   .dev = rec->dev,
					   .devt = devt,
					   .size = p->map_size,
					   .parent = m->src.dev,
					   .parent_devt = m->src.devt,
					   .start = p->start});
	return 0;
}

/* The loop fallback: a loop device on the disk's block device, at the
 * partition's offset and limited to its size.  No autoclear: nothing
 * else holds it open, and unmap detaches it. */
static int map_loop(struct mapper *m, const struct img_part *p,
		    struct img_part_rec *rec, struct vs_error **errp)
{
	int fd, ret;

	ret = img_loop_attach(m->src.fd, m->src.dev, p->start * SECTOR,
			      p->map_size * SECTOR, m->o->readonly, false,
			      &rec->loop, &fd, errp);
	if (ret < 0)
		return ret;
	close(fd);
	rec->kind = IMG_MAP_LOOP;
	memcpy(rec->dev, rec->loop.dev, sizeof(rec->loop.dev));
	report_ev(m->report, m->opaque,
		  &(struct img_part_event){.kind = IMG_PART_EV_ADD,
					   .name = rec->name,
					   .dev = rec->dev,
					   .devt = rec->loop.rdev,
					   .size = p->map_size,
					   .parent = m->src.dev,
					   .parent_devt = m->src.devt,
					   .start = p->start});
	return 0;
}

static int map_parts(struct mapper *m, struct vs_error **errp)
{
	for (size_t i = 0; i < m->table->n; i++) {
		const struct img_part *p = &m->table->parts[i];
		struct img_part_rec *rec = &m->state->recs[m->state->n];
		int ret;

		*rec = (struct img_part_rec){.number = p->number};
		ret = part_name(m, p->number, rec->name, sizeof(rec->name),
				errp);
		if (ret < 0)
			return ret;
		ret = m->dm ? map_dm(m, p, rec, errp)
			    : map_loop(m, p, rec, errp);
		if (ret < 0)
			return ret;
		m->state->n++;
		ret = save(m, errp);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int remove_rec(const struct img_part_rec *rec,
		      img_part_report_fn *report, void *opaque,
		      struct vs_error **errp)
{
	int ret;

	if (rec->kind == IMG_MAP_DM) {
		struct img_dm_info info;

		ret = img_dm_info(rec->name, &info, errp);
		if (ret < 0 || !info.exists)
			return ret;
		ret = img_dm_remove(rec->name, errp);
		if (ret < 0)
			return ret;
	} else {
		ret = img_loop_detach(&rec->loop, false, errp);
		if (ret < 0)
			return ret;
	}
	report_ev(report, opaque,
		  &(struct img_part_event){.kind = IMG_PART_EV_DEL,
					   .dm = rec->kind == IMG_MAP_DM,
					   .name = rec->name,
					   .dev = rec->dev});
	return 0;
}

/* Undo a map that failed half-way; the first error stays the one
 * reported. */
static void map_undo(struct mapper *m)
{
	while (m->state && m->state->n) {
		if (remove_rec(&m->state->recs[m->state->n - 1], m->report,
			       m->opaque, NULL) < 0)
			break;
		m->state->n--;
	}
	if (img_part_src_undo(&m->src, m->report, m->opaque, NULL) < 0 ||
	    (m->state && m->state->n)) {
		if (m->state)
			save(m, NULL); /* unmap may finish the job */
		return;
	}
	/* Only a state file this map wrote: one found in the way (a
	 * mapped disk) is not ours to remove. */
	if (m->state)
		img_part_state_remove(m->dir, m->key, NULL);
}

static int choose_method(struct mapper *m, struct vs_error **errp)
{
	bool have_dm = img_dm_available();

	if (m->o->method == IMG_PART_DM && !have_dm)
		return vs_error_set(errp, ENOTSUP,
				    "device-mapper is not available here "
				    "(/dev/mapper/control does not answer); "
				    "--method=loop maps partitions as loop "
				    "devices");
	m->dm = m->o->method == IMG_PART_DM ||
		(m->o->method == IMG_PART_AUTO && have_dm);
	return 0;
}

static bool state_live(const struct img_part_state *st);

static int do_map(struct mapper *m, const char *disk, struct vs_error **errp)
{
	struct img_part_state *old = NULL;
	struct vs_error *why = NULL;
	int ret;

	ret = img_part_state_load(m->dir, m->key, &old, &why);
	if (ret == 0 && !state_live(old)) {
		/* Everything it records is gone (kpartx -d, a reboot of the
		 * state folder's owner): a leftover, not a mapped disk. */
		vs_debug("part",
			 "%s/%s.json: nothing it records exists; "
			 "removed",
			 m->dir, m->key);
		free(old);
		old = NULL;
		ret = img_part_state_remove(m->dir, m->key, errp);
		if (ret < 0)
			return ret;
		ret = -ENOENT;
	}
	if (ret == 0) {
		free(old);
		return vs_error_set(errp, EEXIST,
				    "%s is mapped already (%s/%s.json); 'vstor "
				    "part unmap' it first",
				    disk, m->dir, m->key);
	}
	if (ret != -ENOENT) {
		ret = vs_error_set(errp, EEXIST,
				   "%s: a state file that cannot be read is in "
				   "the way (%s); remove it",
				   disk, why ? vs_error_msg(why) : "?");
		vs_error_free(why);
		return ret;
	}
	ret = choose_method(m, errp);
	if (ret < 0)
		return ret;
	/* Room for any table, so that the state is on disk before the
	 * table is even read: a map killed from here on leaves what unmap
	 * needs. */
	m->state = img_part_state_new(IMG_PART_MAX);
	if (!m->state)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = img_part_src_open(m->o, false, m->key, &m->src, m->report,
				m->opaque, errp);
	if (ret < 0)
		return ret;
	fill_state(m);
	ret = save(m, errp);
	if (ret < 0)
		return ret;
	/* Loop devices have no names to collide: look for partition loops
	 * already on this device (a map of the image and one of its loop
	 * device, say). */
	char other[32];
	if (!m->dm && img_loop_find_on(m->src.dev, other, sizeof(other)))
		return vs_error_set(errp, EEXIST,
				    "%s: partitions of %s are mapped already "
				    "(%s is a loop device on it); nothing was "
				    "mapped",
				    disk, m->src.dev, other);
	ret = img_part_table_read(m->src.fd, disk, &m->table, errp);
	if (ret < 0)
		return ret;
	ret = check_table(m, disk, errp);
	if (ret < 0)
		return ret;
	if (m->dm) {
		ret = check_names(m, errp);
		if (ret < 0)
			return ret;
	}
	return map_parts(m, errp);
}

int img_part_map(const char *disk, const struct img_part_opts *o,
		 img_part_report_fn *report, void *opaque,
		 struct vs_error **errp)
{
	struct mapper m = {.o = o, .report = report, .opaque = opaque};
	int lock = -1, ret;

	img_part_src_init(&m.src);
	ret = img_part_src_resolve(disk, &m.src, errp);
	if (ret < 0)
		return ret;
	ret = img_part_state_dir(m.dir, sizeof(m.dir), errp);
	if (ret < 0)
		return ret;
	ret = lock_dir(m.dir, &lock, errp);
	if (ret < 0)
		return ret;
	img_part_state_key(&m.src.st, m.key, sizeof(m.key));
	ret = do_map(&m, disk, errp);
	if (ret < 0)
		map_undo(&m);
	img_part_src_close_fds(&m.src);
	img_part_table_free(m.table);
	free(m.state);
	close(lock);
	return ret;
}

/* ---- unmap ---- */

/* "partN-" + parent uuid: a map kpartx (or we) made for this parent. */
static bool is_part_uuid(const char *uuid, const char *parent)
{
	size_t digits;

	if (strncmp(uuid, "part", 4))
		return false;
	digits = strspn(uuid + 4, "0123456789");
	return digits && uuid[4 + digits] == '-' &&
	       !strcmp(uuid + 5 + digits, parent);
}

/* The map in `rec` is still there and still what map made. */
static int rec_present(const struct img_part_rec *rec, bool *present,
		       bool *busy, char *why, size_t len,
		       struct vs_error **errp)
{
	*present = *busy = false;
	if (rec->kind == IMG_MAP_DM) {
		struct img_dm_info info;
		int ret = img_dm_info(rec->name, &info, errp);

		if (ret < 0)
			return ret;
		if (!info.exists || strncmp(info.uuid, "part", 4))
			return 0;
		*present = true;
		if (info.open_count > 0) {
			*busy = true;
			snprintf(why, len, "open count %d", info.open_count);
		}
		return 0;
	}
	struct img_loop now;

	if (img_loop_status(rec->loop.dev, &now) < 0 ||
	    now.rdev != rec->loop.rdev ||
	    now.backing_dev != rec->loop.backing_dev ||
	    now.backing_ino != rec->loop.backing_ino ||
	    now.offset != rec->loop.offset)
		return 0;
	*present = true;
	*busy = img_dev_busy(rec->loop.dev, rec->loop.rdev, why, len) > 0;
	return 0;
}

/* Something a state file records still exists. */
static bool state_live(const struct img_part_state *st)
{
	struct img_loop now;

	for (size_t i = 0; i < st->n; i++) {
		bool present = false, busy;
		char why[160];

		if (rec_present(&st->recs[i], &present, &busy, why, sizeof(why),
				NULL) < 0 ||
		    present)
			return true;
	}
	if (st->has_whole && st->loop_created &&
	    !img_loop_status(st->whole.dev, &now) &&
	    now.backing_dev == st->whole.backing_dev &&
	    now.backing_ino == st->whole.backing_ino)
		return true;
	return st->serve_pid &&
	       img_part_proc_start(st->serve_pid) == st->serve_start;
}

/* Every map is checked before any is removed: all or nothing. */
static int check_busy(const char *disk, const struct img_part_rec *recs,
		      size_t n, struct vs_error **errp)
{
	for (size_t i = 0; i < n; i++) {
		bool present, busy;
		char why[160] = "";
		int ret = rec_present(&recs[i], &present, &busy, why,
				      sizeof(why), errp);

		if (ret < 0)
			return ret;
		if (busy)
			return vs_error_set(errp, EBUSY,
					    "%s: %s (%s) is in use: %s; "
					    "nothing was unmapped",
					    disk, recs[i].name, recs[i].dev,
					    why);
	}
	return 0;
}

static int unmap_state(const char *disk, const char *dir, const char *key,
		       struct img_part_state *st, img_part_report_fn *report,
		       void *opaque, struct vs_error **errp)
{
	int ret = check_busy(disk, st->recs, st->n, errp);

	if (ret < 0)
		return ret;
	while (st->n) {
		ret = remove_rec(&st->recs[st->n - 1], report, opaque, errp);
		if (ret < 0)
			goto keep;
		st->n--;
	}
	if (st->has_whole && st->loop_created) {
		ret = img_loop_detach(&st->whole, true, errp);
		if (ret < 0)
			goto keep;
		report_ev(report, opaque,
			  &(struct img_part_event){.kind = IMG_PART_EV_LOOP_DEL,
						   .dev = st->whole.dev,
						   .devt = st->whole.rdev});
		st->has_whole = false;
	}
	if (st->serve_pid) {
		ret = img_part_serve_stop(st->serve_pid, st->serve_start, errp);
		if (ret < 0)
			goto keep;
		report_ev(
			report, opaque,
			&(struct img_part_event){.kind = IMG_PART_EV_SERVE_STOP,
						 .pid = st->serve_pid});
		st->serve_pid = 0;
	}
	return img_part_state_remove(dir, key, errp);
keep:
	/* What is left stays recorded: unmap again once the cause is
	 * gone. */
	img_part_state_save(dir, key, st, NULL);
	return ret;
}

/* kpartx -d without a state file: the linear maps onto the parent whose
 * uuid says they are its partitions. */
static int find_maps(struct img_part_src *s, struct img_part_state **out,
		     struct vs_error **errp)
{
	struct img_part_state *st;
	char *names, *name;
	size_t n;
	int ret = img_dm_list(&names, &n, errp);

	if (ret < 0)
		return ret;
	st = img_part_state_new(n);
	if (!st) {
		free(names);
		return vs_error_set(errp, ENOMEM, "out of memory");
	}
	name = names;
	for (size_t i = 0; i < n; i++, name += strlen(name) + 1) {
		struct img_dm_info info;
		struct img_part_rec *rec = &st->recs[st->n];

		ret = img_dm_info(name, &info, errp);
		if (ret < 0)
			break;
		if (!info.exists || !info.linear ||
		    info.target_dev != s->devt ||
		    !is_part_uuid(info.uuid, s->uuid) ||
		    strlen(name) >= sizeof(rec->name))
			continue;
		*rec = (struct img_part_rec){
			.kind = IMG_MAP_DM,
			.number = (unsigned)atoi(info.uuid + 4)};
		snprintf(rec->name, sizeof(rec->name), "%s", name);
		snprintf(rec->dev, sizeof(rec->dev), "/dev/mapper/%s", name);
		st->n++;
	}
	free(names);
	if (ret < 0) {
		free(st);
		return ret;
	}
	*out = st;
	return 0;
}

static int unmap_found(const char *disk, struct img_part_src *s,
		       img_part_report_fn *report, void *opaque,
		       struct vs_error **errp)
{
	struct img_part_state *st = NULL;
	int ret;

	if (!img_dm_available())
		return vs_error_set(errp, ENOENT,
				    "%s is not mapped (no state file, and no "
				    "device-mapper here)",
				    disk);
	ret = img_part_src_use(s, s->dev, true, errp);
	img_part_src_close_fds(s);
	if (ret < 0)
		return ret;
	ret = find_maps(s, &st, errp);
	if (ret < 0)
		return ret;
	if (!st->n && !s->has_whole) {
		free(st);
		return vs_error_set(errp, ENOENT,
				    "%s is not mapped: no partition maps on %s",
				    disk, s->dev);
	}
	ret = check_busy(disk, st->recs, st->n, errp);
	for (size_t i = st->n; !ret && i > 0; i--)
		ret = remove_rec(&st->recs[i - 1], report, opaque, errp);
	free(st);
	/* kpartx -d lets go of the loop device of an image file too. */
	if (!ret && s->has_whole) {
		ret = img_loop_detach(&s->whole, true, errp);
		if (!ret)
			report_ev(report, opaque,
				  &(struct img_part_event){
					  .kind = IMG_PART_EV_LOOP_DEL,
					  .dev = s->whole.dev,
					  .devt = s->whole.rdev});
	}
	return ret;
}

/* The state of `s`'s disk: by its own key, or, for a loop device, by the
 * key of the image file behind it. */
static int find_state(struct img_part_src *s, const char *dir, char *key,
		      size_t klen, struct img_part_state **st,
		      struct vs_error **errp)
{
	struct img_loop l;
	int ret;

	img_part_state_key(&s->st, key, klen);
	ret = img_part_state_load(dir, key, st, errp);
	if (ret != -ENOENT || !S_ISBLK(s->st.st_mode))
		return ret;
	if (img_loop_status(s->real, &l) < 0)
		return -ENOENT;
	snprintf(key, klen, "file-%" PRIx64 "-%" PRIu64, l.backing_dev,
		 l.backing_ino);
	return img_part_state_load(dir, key, st, errp);
}

int img_part_unmap(const char *disk, const struct img_part_opts *o,
		   img_part_report_fn *report, void *opaque,
		   struct vs_error **errp)
{
	struct img_part_state *st = NULL;
	struct img_part_src s;
	char dir[4096], key[64];
	int lock = -1, ret;

	img_part_src_init(&s);
	ret = img_part_src_resolve(disk, &s, errp);
	if (ret < 0)
		return ret;
	ret = img_part_state_dir(dir, sizeof(dir), errp);
	if (ret < 0)
		return ret;
	ret = lock_dir(dir, &lock, errp);
	if (ret < 0)
		return ret;
	ret = find_state(&s, dir, key, sizeof(key), &st, errp);
	if (ret == 0) {
		ret = unmap_state(disk, dir, key, st, report, opaque, errp);
		free(st);
	} else if (ret == -ENOENT) {
		if (S_ISBLK(s.st.st_mode)) {
			snprintf(s.dev, sizeof(s.dev), "%s", s.real);
			ret = unmap_found(disk, &s, report, opaque, errp);
		} else if (img_loop_find(s.st.st_dev, s.st.st_ino, &s.whole)) {
			s.has_whole = true;
			snprintf(s.dev, sizeof(s.dev), "%s", s.whole.dev);
			ret = unmap_found(disk, &s, report, opaque, errp);
		} else {
			ret = vs_error_set(errp, ENOENT,
					   "%s is not mapped (no state in %s, "
					   "no loop device on it)",
					   disk, dir);
		}
	}
	(void)o;
	close(lock);
	return ret;
}
