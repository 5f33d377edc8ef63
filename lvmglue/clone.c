/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor clone: a template domain's config and disks copied in constant
 * time.  Everything is planned and checked first (names, targets that
 * must not exist, templates that must be readable and not in use for
 * writing), then made in order, each step recorded so that a failure
 * removes what was made; the new config is written last, and only if it
 * does not exist yet (link(2) of a complete temporary file).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "../hypervisor/config.h"
#include "../vbd/diskspec.h"
#include "../vbd/vbd.h"
#include "clone.h"
#include "lvm.h"

/* Seconds the FUSE server of --customize may take to start and to stop. */
#define SERVE_WAIT_S 60

struct plan {
	const struct dom_disk *disk;
	enum lvm_clone_how how;
	char *from;	      /* template target (resolved for files) */
	char *to;	      /* the clone's target */
	char *lv_name;	      /* THIN, CLASSIC: the snapshot's name */
	struct lvm_lv origin; /* THIN, CLASSIC */
	char *text;	      /* the clone's disk spec; NULL: as written */
	bool made;	      /* exists now: remove on failure */
	bool customized;
};

struct clone {
	const struct lvm_clone_opts *o;
	struct dom_config *cfg;
	char *text; /* the template's config text */
	char *out_cfg;
	char uuid[37];
	struct plan *plans;
	size_t n;
	struct vs_error **err;
};

const char *lvm_clone_how_name(enum lvm_clone_how how)
{
	switch (how) {
	case LVM_CLONE_SHARED: return "shared";
	case LVM_CLONE_OVERLAY: return "qcow2 overlay";
	case LVM_CLONE_THIN: return "thin snapshot";
	case LVM_CLONE_CLASSIC: return "classic snapshot";
	}
	return "unknown";
}

static int oom(struct clone *c)
{
	return vs_error_set(c->err, ENOMEM, "out of memory");
}

static char *dir_of(const char *path)
{
	autofree char *copy = strdup(path);

	return copy ? strdup(dirname(copy)) : NULL;
}

/* --- the new disk specs ------------------------------------------------ */

/*
 * The template's spec with a new format and target, in xl's key=value
 * form, every other parameter kept.  target= comes last: it takes the
 * rest of the spec, commas included.
 */
static char *spec_text(const struct vbd_spec *s, const char *format,
		       const char *target, bool keep_backend)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	fprintf(f, "format=%s, vdev=%s, access=%s", format, s->vdev,
		s->readonly ? "ro" : "rw");
	if (keep_backend && s->backendtype)
		fprintf(f, ", backendtype=%s", s->backendtype);
	if (s->backend)
		fprintf(f, ", backend=%s", s->backend);
	if (s->specification)
		fprintf(f, ", specification=%s", s->specification);
	if (s->transport)
		fprintf(f, ", transport=%s", s->transport);
	if (s->discard != VBD_UNSET)
		fputs(s->discard == VBD_YES ? ", discard" : ", no-discard", f);
	if (s->trusted != VBD_UNSET)
		fputs(s->trusted == VBD_YES ? ", trusted" : ", untrusted", f);
	if (s->direct_io_safe)
		fputs(", direct-io-safe", f);
	if (s->aio)
		fprintf(f, ", aio=%s", s->aio);
	if (s->l2_cache_size)
		fprintf(f, ", l2-cache-size=%llu",
			(unsigned long long)s->l2_cache_size);
	fprintf(f, ", target=%s", target);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* Does `text` mean the template's disk with this format and target? */
static bool spec_means(const char *text, const struct vbd_spec *old,
		       const char *format, const char *target)
{
	struct vbd_spec *s = NULL;
	struct vs_error *e = NULL;
	bool ok;

	if (vbd_spec_parse(text, &s, &e)) {
		vs_error_free(e);
		return false;
	}
	ok = s->target && !strcmp(s->target, target) &&
	     !strcmp(s->format, format) && s->devnum == old->devnum &&
	     s->readonly == old->readonly;
	vbd_spec_free(s);
	return ok;
}

/*
 * The clone's spec.  When only the target changes and it appears once in
 * the template's text, that text is kept with the target replaced
 * ('phy:/dev/vg/tmpl,xvda,w' stays in that form); otherwise, or if the
 * edit would mean something else, the key=value form.
 */
static int make_text(struct clone *c, struct plan *p, const char *format)
{
	const char *t = p->disk->text, *at = strstr(t, p->disk->spec->target);
	const struct vbd_spec *s = p->disk->spec;
	size_t tl = strlen(s->target);

	if (!strcmp(format, s->format) && at && !strstr(at + 1, s->target) &&
	    asprintf(&p->text, "%.*s%s%s", (int)(at - t), t, p->to, at + tl) >=
		    0) {
		if (spec_means(p->text, s, format, p->to))
			return 0;
		free(p->text);
	}
	p->text = spec_text(s, format, p->to, p->how != LVM_CLONE_OVERLAY);
	if (!p->text)
		return oom(c);
	if (!spec_means(p->text, s, format, p->to))
		return vs_error_set(c->err, EINVAL,
				    "disk %s: cannot write a disk spec for "
				    "target '%s' (a target with a newline?)",
				    s->vdev, p->to);
	return 0;
}

/* --- planning ---------------------------------------------------------- */

static int must_not_exist(struct clone *c, const char *path, const char *what)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return vs_error_set(c->err, EEXIST,
				    "%s '%s' already exists; vstor clone "
				    "never overwrites",
				    what, path);
	if (errno != ENOENT)
		return vs_error_set_errno(c->err, errno, "%s '%s'", what, path);
	return 0;
}

static int plan_overlay(struct clone *c, struct plan *p, bool device)
{
	const struct vbd_spec *s = p->disk->spec;
	autofree char *dir = NULL;
	struct vs_error *e = NULL;
	struct vbd *vbd = NULL;
	int ret;

	p->how = LVM_CLONE_OVERLAY;
	p->from = realpath(s->target, NULL);
	if (!p->from)
		return vs_error_set_errno(c->err, errno, "disk %s: '%s'",
					  s->vdev, s->target);
	if (c->o->disk_dir)
		dir = strdup(c->o->disk_dir);
	else
		dir = dir_of(device ? c->out_cfg : p->from);
	if (!dir ||
	    asprintf(&p->to, "%s/%s-%s.qcow2", dir, c->o->name, s->vdev) < 0) {
		p->to = NULL;
		return oom(c);
	}
	/* Opened without sharing: a template some domain writes to is
	 * refused by its lock, as its overlays would be corrupted. */
	ret = vbd_open_file(p->from, s->format, VBD_O_RDONLY, &vbd, &e);
	if (ret == -EBUSY) {
		vs_error_free(e);
		return vs_error_set(c->err, EBUSY,
				    "disk %s: the template '%s' is open for "
				    "writing (a running domain?); clone it "
				    "once it is shut down",
				    s->vdev, p->from);
	}
	if (ret < 0) {
		vs_error_set(c->err, ret, "disk %s (template): %s", s->vdev,
			     vs_error_msg(e));
		vs_error_free(e);
		return ret;
	}
	vbd_close(vbd);
	ret = must_not_exist(c, p->to, "clone disk");
	return ret ? ret : make_text(c, p, "qcow2");
}

static int plan_lv(struct clone *c, struct plan *p)
{
	const struct vbd_spec *s = p->disk->spec;
	struct lvm_lv existing;
	struct vs_error *e = NULL;
	autofree char *full = NULL;
	int ret;

	if (p->origin.thin_pool || p->origin.snapshot)
		return vs_error_set(c->err, ENOTSUP,
				    "disk %s: '%s' is a %s; vstor clone "
				    "clones thin and linear LVs",
				    s->vdev, s->target,
				    lvm_lv_type(&p->origin));
	/* As for images: a template in use would be cloned mid-write. */
	if (p->origin.open)
		return vs_error_set(c->err, EBUSY,
				    "disk %s: the template LV '%s' is open (a "
				    "running domain?); clone it once it is "
				    "shut down",
				    s->vdev, s->target);
	p->how = p->origin.thin ? LVM_CLONE_THIN : LVM_CLONE_CLASSIC;
	p->from = strdup(s->target);
	if (!p->from ||
	    asprintf(&p->lv_name, "%s-%s", c->o->name, s->vdev) < 0) {
		p->lv_name = NULL;
		return oom(c);
	}
	ret = lvm_name_check(p->lv_name, "snapshot name", c->err);
	if (ret)
		return ret;
	if (asprintf(&p->to, "/dev/%s/%s", p->origin.vg, p->lv_name) < 0 ||
	    asprintf(&full, "%s/%s", p->origin.vg, p->lv_name) < 0) {
		p->to = NULL;
		full = NULL;
		return oom(c);
	}
	ret = lvm_lv_find(full, &existing, &e);
	if (ret == 0) {
		lvm_lv_clear(&existing);
		return vs_error_set(c->err, EEXIST,
				    "disk %s: LV '%s' already exists; vstor "
				    "clone never overwrites",
				    s->vdev, full);
	}
	if (ret != -ENOENT) {
		vs_error_set(c->err, ret, "disk %s: %s", s->vdev,
			     vs_error_msg(e));
		vs_error_free(e);
		return ret;
	}
	vs_error_free(e);
	return make_text(c, p, s->format);
}

static int plan_disk(struct clone *c, struct plan *p)
{
	const struct vbd_spec *s = p->disk->spec;
	struct stat st;
	int ret;

	/* What the clone cannot change it may share. */
	if (s->readonly || s->cdrom || !s->target) {
		p->how = LVM_CLONE_SHARED;
		p->from = strdup(s->target ? s->target : "");
		p->to = strdup(p->from ? p->from : "");
		return p->from && p->to ? 0 : oom(c);
	}
	if (s->script)
		return vs_error_set(c->err, ENOTSUP,
				    "disk %s: a target reached through a "
				    "script (%s) is not supported by vstor "
				    "clone",
				    s->vdev, s->script);
	if (stat(s->target, &st) < 0)
		return vs_error_set_errno(c->err, errno, "disk %s: '%s'",
					  s->vdev, s->target);
	if (S_ISREG(st.st_mode))
		return plan_overlay(c, p, false);
	if (!S_ISBLK(st.st_mode))
		return vs_error_set(c->err, ENOTSUP,
				    "disk %s: '%s' is neither a file nor a "
				    "block device",
				    s->vdev, s->target);
	ret = lvm_lv_probe(s->target, &p->origin, c->err);
	if (ret < 0)
		return ret;
	return ret ? plan_lv(c, p) : plan_overlay(c, p, true);
}

static int plan_all(struct clone *c)
{
	c->plans = calloc(c->cfg->n_disks ? c->cfg->n_disks : 1,
			  sizeof(*c->plans));
	if (!c->plans)
		return oom(c);
	for (size_t i = 0; i < c->cfg->n_disks; i++) {
		int ret;

		c->plans[i].disk = &c->cfg->disks[i];
		c->n++;
		ret = plan_disk(c, &c->plans[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* --- making ------------------------------------------------------------ */

/* qemu-img's -o syntax: a ',' inside a value is written twice. */
static char *opt_escape(const char *v)
{
	size_t n = strlen(v);
	char *out = malloc(2 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (; *v; v++) {
		*o++ = *v;
		if (*v == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

static int make_overlay(struct clone *c, struct plan *p)
{
	const struct vbd_spec *s = p->disk->spec;
	autofree char *bf = opt_escape(p->from), *opts = NULL;
	struct vbd *vbd = NULL;
	uint64_t size;
	int fd, ret;

	ret = vbd_open_file(p->from, s->format, VBD_O_RDONLY, &vbd, c->err);
	if (ret < 0) {
		vs_error_prefix(c->err, "disk %s (template)", s->vdev);
		return ret;
	}
	size = vbd_size(vbd);
	vbd_close(vbd);
	if (!bf || asprintf(&opts, "backing_file=%s,backing_fmt=%s", bf,
			    s->format) < 0) {
		opts = NULL;
		return oom(c);
	}
	/* O_EXCL: the check of the plan holds at the moment of creation. */
	fd = open(p->to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return vs_error_set_errno(c->err, errno, "clone disk '%s'",
					  p->to);
	close(fd);
	p->made = true;
	return vbd_create(p->to, "qcow2", size, opts, c->err);
}

static int make_snapshot(struct clone *c, struct plan *p)
{
	uint64_t cow = 0;
	struct lvm_lv snap;
	int ret;

	if (p->how == LVM_CLONE_CLASSIC) {
		cow = c->o->cow_size ? c->o->cow_size : p->origin.size;
		vs_warn("disk %s: '%s' is a thick LV: its clone is a classic "
			"snapshot, whose %llu-byte COW store fills as the "
			"clone is written (the clone is lost when it is full) "
			"and which slows every write to the template; thin "
			"LVs clone at no such cost",
			p->disk->spec->vdev, p->from, (unsigned long long)cow);
	}
	ret = lvm_snapshot_create(&p->origin, p->lv_name, cow, &snap, c->err);
	if (ret)
		return ret;
	p->made = true;
	lvm_lv_clear(&snap);
	return 0;
}

/* Remove what was made, newest first; failures are only warned about:
 * the error that caused the undo is the one to report. */
static void undo(struct clone *c)
{
	for (size_t i = c->n; i-- > 0;) {
		struct plan *p = &c->plans[i];
		struct vs_error *e = NULL;

		if (!p->made)
			continue;
		if (p->how == LVM_CLONE_OVERLAY) {
			if (unlink(p->to) < 0)
				vs_warn("cannot remove '%s': %s", p->to,
					strerror(errno));
		} else if (lvm_lv_remove(p->origin.vg, p->lv_name, &e) < 0) {
			vs_warn("cannot remove LV %s/%s: %s", p->origin.vg,
				p->lv_name, vs_error_msg(e));
			vs_error_free(e);
		}
		p->made = false;
	}
}

/* --- customizing through a raw view ------------------------------------ */

static bool file_ready(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_size > 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Stop the FUSE server: SIGTERM, then its exit status says whether every
 * write reached the image. */
static int serve_stop(pid_t pid, const char *what, struct vs_error **err)
{
	int status = 0;

	kill(pid, SIGTERM);
	for (int i = 0; i < SERVE_WAIT_S * 20; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			goto done;
		sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return vs_error_set(err, ETIMEDOUT,
			    "%s: the FUSE server did not stop in %d s", what,
			    SERVE_WAIT_S);
done:
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return vs_error_set(err, EIO,
				    "%s: the FUSE server failed as it "
				    "stopped: the clone's writes may be lost",
				    what);
	return 0;
}

/*
 * An image's guest view as a regular file, from `vstor serve --fuse`
 * (this same program), for as long as debugfs needs it.
 */
static int customize_through_fuse(struct clone *c, struct plan *p, bool *done)
{
	char dir[PATH_MAX], file[PATH_MAX + 8], pidf[PATH_MAX + 8],
		log[PATH_MAX + 8];
	const char *what = p->disk->spec->vdev;
	autofree char *spec = NULL;
	pid_t pid;
	int ret, fd;

	lvm_clone_tmpdir(dir, sizeof(dir), "vstor-clone");
	if (!mkdtemp(dir))
		return vs_error_set_errno(c->err, errno, "%s", dir);
	snprintf(file, sizeof(file), "%s/disk", dir);
	snprintf(pidf, sizeof(pidf), "%s/pid", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (fd < 0 || asprintf(&spec,
			       "format=qcow2, vdev=%s, access=rw, "
			       "target=%s",
			       what, p->to) < 0) {
		spec = NULL;
		ret = fd < 0 ? vs_error_set_errno(c->err, errno, "%s", file)
			     : oom(c);
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = vs_error_set_errno(c->err, errno, "fork");
		goto out;
	}
	if (pid == 0) {
		int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (lfd >= 0) {
			dup2(lfd, STDOUT_FILENO);
			dup2(lfd, STDERR_FILENO);
		}
		/* Should this process die, the server goes too (it then
		 * flushes and unmounts) rather than stay behind. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execl("/proc/self/exe", "vstor", "serve", "--pidfile", pidf,
		      "--fuse", file, spec, (char *)NULL);
		_exit(127);
	}
	ret = -ETIMEDOUT;
	for (int i = 0; i < SERVE_WAIT_S * 20; i++) {
		int status;

		if (file_ready(pidf)) {
			ret = 0;
			break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char msg[512] = "";
			FILE *f = fopen(log, "r");

			if (f) {
				size_t n = fread(msg, 1, sizeof(msg) - 1, f);

				msg[n] = '\0';
				fclose(f);
				msg[strcspn(msg, "\n")] = '\0';
			}
			ret = vs_error_set(c->err, EIO,
					   "disk %s: cannot show the clone "
					   "through FUSE: %s",
					   what,
					   msg[0] ? msg
						  : "vstor serve "
						    "failed");
			goto out;
		}
		sleep_ms(50);
	}
	if (ret) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ret = vs_error_set(c->err, ETIMEDOUT,
				   "disk %s: the FUSE server did not start in "
				   "%d s",
				   what, SERVE_WAIT_S);
		goto out;
	}
	ret = lvm_clone_customize(file, what, c->o->name, done, c->err);
	{
		int r = serve_stop(pid, what, ret ? NULL : c->err);

		if (!ret)
			ret = r;
	}
out:
	unlink(log);
	unlink(pidf);
	unlink(file);
	rmdir(dir);
	return ret;
}

static int customize_all(struct clone *c)
{
	size_t done_count = 0;

	for (size_t i = 0; i < c->n; i++) {
		struct plan *p = &c->plans[i];
		bool done = false;
		int ret;

		if (p->how == LVM_CLONE_SHARED)
			continue;
		if (p->how == LVM_CLONE_OVERLAY)
			ret = customize_through_fuse(c, p, &done);
		else
			ret = lvm_clone_customize(p->to, p->disk->spec->vdev,
						  c->o->name, &done, c->err);
		if (ret)
			return ret;
		p->customized = done;
		done_count += done;
	}
	if (!done_count)
		return vs_error_set(c->err, ENOENT,
				    "--customize: no cloned disk holds an "
				    "ext2/3/4 file system with /etc");
	return 0;
}

/* --- the new config ---------------------------------------------------- */

static int write_config(struct clone *c)
{
	const char **texts = calloc(c->n ? c->n : 1, sizeof(*texts));
	struct dom_config_rewrite rw = {
		.name = c->o->name,
		.uuid = c->uuid,
		.disk_texts = texts,
		.n_disks = c->n,
	};
	autofree char *out = NULL, *tmp = NULL, *dir = NULL;
	size_t len;
	int fd, ret;

	if (!texts)
		return oom(c);
	for (size_t i = 0; i < c->n; i++)
		texts[i] = c->plans[i].text;
	ret = dom_config_rewrite_text(c->text, c->o->template_cfg, &rw, &out,
				      c->err);
	free(texts);
	if (ret)
		return ret;
	dir = dir_of(c->out_cfg);
	if (!dir || asprintf(&tmp, "%s/.%s.XXXXXX", dir, c->o->name) < 0) {
		tmp = NULL;
		return oom(c);
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return vs_error_set_errno(c->err, errno, "%s", tmp);
	len = strlen(out);
	if (fchmod(fd, 0644) < 0 || write(fd, out, len) != (ssize_t)len ||
	    fsync(fd) < 0) {
		ret = vs_error_set_errno(c->err, errno ? errno : EIO, "%s",
					 tmp);
		close(fd);
		unlink(tmp);
		return ret;
	}
	close(fd);
	/* link(2) fails if the name exists: never an overwrite, even if
	 * it appeared since the plan. */
	if (link(tmp, c->out_cfg) < 0)
		ret = vs_error_set_errno(c->err, errno, "%s", c->out_cfg);
	unlink(tmp);
	if (!ret) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return ret;
}

/* --- the whole clone --------------------------------------------------- */

/* The new config's folder is checked before any disk is made, so that
 * a typo in -o costs nothing. */
static int check_dir(struct clone *c, const char *path)
{
	autofree char *dir = dir_of(path);
	struct stat st;

	if (!dir)
		return oom(c);
	if (stat(dir, &st) < 0)
		return vs_error_set_errno(c->err, errno,
					  "folder of the new "
					  "config '%s'",
					  dir);
	if (!S_ISDIR(st.st_mode))
		return vs_error_set(c->err, ENOTDIR,
				    "'%s' (for the new config) is not a folder",
				    dir);
	return 0;
}

static int load(struct clone *c)
{
	const struct lvm_clone_opts *o = c->o;
	int ret = dom_name_check(o->name, c->err);

	if (ret) {
		vs_error_prefix(c->err, "new name");
		return ret;
	}
	ret = dom_config_read_file(o->template_cfg, &c->text, c->err);
	if (!ret)
		ret = dom_config_parse_text(c->text, o->template_cfg, NULL, 0,
					    &c->cfg, c->err);
	if (ret)
		return ret;
	if (!strcmp(c->cfg->name, o->name))
		return vs_error_set(c->err, EINVAL,
				    "the clone needs a name other than the "
				    "template's ('%s')",
				    o->name);
	if (o->out_cfg) {
		c->out_cfg = strdup(o->out_cfg);
	} else {
		autofree char *dir = dir_of(o->template_cfg);

		if (dir && asprintf(&c->out_cfg, "%s/%s.cfg", dir, o->name) < 0)
			c->out_cfg = NULL;
	}
	if (!c->out_cfg)
		return oom(c);
	ret = must_not_exist(c, c->out_cfg, "config");
	if (!ret)
		ret = check_dir(c, c->out_cfg);
	if (!ret)
		ret = dom_uuid_generate(c->uuid, c->err);
	if (!ret) {
		/* A template the rewrite would refuse (a key assigned twice)
		 * is refused now, before any disk is made. */
		struct dom_config_rewrite rw = {.name = o->name,
						.uuid = c->uuid};
		char *text = NULL;

		ret = dom_config_rewrite_text(c->text, o->template_cfg, &rw,
					      &text, c->err);
		free(text);
	}
	return ret;
}

/* Copies, made before the config is written: a failure here still
 * undoes the clone. */
static int fill_result(struct clone *c, struct lvm_clone_result *res)
{
	res->disks = calloc(c->n ? c->n : 1, sizeof(*res->disks));
	res->cfg_path = strdup(c->out_cfg);
	if (!res->disks || !res->cfg_path)
		return oom(c);
	memcpy(res->uuid, c->uuid, sizeof(res->uuid));
	for (size_t i = 0; i < c->n; i++) {
		struct plan *p = &c->plans[i];
		struct lvm_clone_disk *d = &res->disks[i];

		d->vdev = strdup(p->disk->spec->vdev);
		d->from = strdup(p->from);
		d->to = strdup(p->to);
		d->how = p->how;
		d->customized = p->customized;
		res->n_disks++;
		if (!d->vdev || !d->from || !d->to)
			return oom(c);
	}
	return 0;
}

static int run(struct clone *c, struct lvm_clone_result *res)
{
	int ret = load(c);

	if (!ret)
		ret = plan_all(c);
	for (size_t i = 0; !ret && i < c->n; i++) {
		struct plan *p = &c->plans[i];

		if (p->how == LVM_CLONE_OVERLAY)
			ret = make_overlay(c, p);
		else if (p->how != LVM_CLONE_SHARED)
			ret = make_snapshot(c, p);
	}
	if (!ret && c->o->customize)
		ret = customize_all(c);
	if (!ret)
		ret = fill_result(c, res);
	if (!ret)
		ret = write_config(c);
	if (ret) {
		undo(c);
		lvm_clone_result_clear(res);
	}
	return ret;
}

int lvm_clone(const struct lvm_clone_opts *opts, struct lvm_clone_result *res,
	      struct vs_error **err)
{
	struct clone c = {.o = opts, .err = err};
	int ret;

	memset(res, 0, sizeof(*res));
	ret = run(&c, res);
	for (size_t i = 0; i < c.n; i++) {
		free(c.plans[i].from);
		free(c.plans[i].to);
		free(c.plans[i].lv_name);
		free(c.plans[i].text);
		lvm_lv_clear(&c.plans[i].origin);
	}
	free(c.plans);
	free(c.out_cfg);
	free(c.text);
	dom_config_free(c.cfg);
	return ret;
}

void lvm_clone_result_clear(struct lvm_clone_result *res)
{
	free(res->cfg_path);
	for (size_t i = 0; i < res->n_disks; i++) {
		free(res->disks[i].vdev);
		free(res->disks[i].from);
		free(res->disks[i].to);
	}
	free(res->disks);
	memset(res, 0, sizeof(*res));
}
