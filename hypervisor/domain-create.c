/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor create: every check first (config, kernel, disks, clashes with
 * other domains), then serve, then the monitor and QEMU.  A failure at
 * any step stops what the earlier steps started.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/log.h"
#include "../vbd/diskspec.h"
#include "domain-priv.h"

int dom_disk_slot(const char *vdev, struct vs_error **err)
{
	int disk = -1, part = 0;

	if (vbd_vdev_to_devnum(vdev, &disk, &part) < 0)
		return vs_error_set(err, EINVAL,
				    "vdev '%s' is not a virtual device name",
				    vdev);
	/* Xen PV guests see 'xvda1' as a partition device holding the
	 * file system directly; virtio has no such devices, so the guest
	 * sees the whole disk of that index (xvda1 is its vda).  Two
	 * partitions of one disk then clash as one slot (check_disks). */
	(void)part;
	if (disk < 0 || disk >= DOM_MAX_DISKS)
		return vs_error_set(err, EOPNOTSUPP,
				    "vdev '%s': disk index %d is not supported "
				    "(at most %d disks, "
				    "xvda to xvdx)",
				    vdev, disk, DOM_MAX_DISKS);
	return DOM_DISK_SLOT0 + disk;
}

static void rec_disk_fini(struct dom_rec_disk *d)
{
	free(d->spec);
	free(d->vdev);
	free(d->socket);
	*d = (struct dom_rec_disk){0};
}

/* Does another live domain use the file d names, in a way that clashes? */
static int check_clash(const char *self, const struct dom_rec_disk *d,
		       const char *target, struct vs_error **err)
{
	char **names = NULL;
	int r = dom_record_names(&names, err);

	if (r < 0)
		return r;
	for (size_t i = 0; names[i] && r == 0; i++) {
		struct dom_record *other = NULL;
		struct vs_error *e = NULL;

		if (!strcmp(names[i], self) ||
		    dom_record_load(names[i], &other, &e) < 0) {
			vs_error_free(e);
			continue;
		}
		/* A preserved (shut down, crashed) domain holds no disk. */
		if (dom_proc_alive(&other->serve)) {
			for (size_t j = 0; j < other->n_disks; j++) {
				const struct dom_rec_disk *od =
					&other->disks[j];

				if (od->dev != d->dev || od->ino != d->ino)
					continue;
				if (!od->readonly)
					r = vs_error_set(
						err, EBUSY,
						"disk '%s': '%s' is already "
						"opened for "
						"writing by domain '%s' (%s)",
						d->spec, target, other->name,
						od->vdev);
				else if (!d->readonly)
					r = vs_error_set(err, EBUSY,
							 "disk '%s': '%s' is "
							 "opened read-only by "
							 "domain '%s' (%s) and "
							 "cannot be written",
							 d->spec, target,
							 other->name, od->vdev);
				if (r)
					break;
			}
		}
		dom_record_free(other);
	}
	dom_names_free(names);
	return r;
}

int dom_disk_check(const char *self, const char *spec_text,
		   struct dom_rec_disk *d, int *slot, struct vs_error **err)
{
	struct vbd_spec *spec = NULL;
	struct stat st;
	int r;

	*d = (struct dom_rec_disk){0};
	r = vbd_spec_parse(spec_text, &spec, err);
	if (r < 0) {
		vs_error_prefix(err, "disk '%s'", spec_text);
		return r;
	}
	if (!spec->vdev) {
		r = vs_error_set(err, EINVAL, "disk '%s': no vdev", spec_text);
		goto out;
	}
	r = dom_disk_slot(spec->vdev, err);
	if (r < 0) {
		vs_error_prefix(err, "disk '%s'", spec_text);
		goto out;
	}
	*slot = r;
	d->spec = strdup(spec_text);
	d->vdev = strdup(spec->vdev);
	if (!d->spec || !d->vdev) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	/* A cdrom is a read-only disk to the guest (vhost-user-blk has no
	 * removable media). */
	d->readonly = spec->readonly || spec->cdrom;
	if (!spec->target || !strcmp(spec->format, "empty")) {
		if (spec->cdrom) {
			d->empty = true;
			r = 1;
			goto out;
		}
		r = vs_error_set(err, EINVAL, "disk '%s': no target",
				 spec_text);
		goto out;
	}
	/* The domain may be restarted (on_crash) by a vstor command run in
	 * another folder: a relative path would then name another file. */
	if (spec->target[0] != '/') {
		r = vs_error_set(err, EINVAL,
				 "disk '%s': target '%s' is a relative path; "
				 "give an absolute one",
				 spec_text, spec->target);
		goto out;
	}
	if (stat(spec->target, &st) < 0) {
		r = vs_error_set_errno(err, errno, "disk '%s': target '%s'",
				       spec_text, spec->target);
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		r = vs_error_set(err, EINVAL,
				 "disk '%s': target '%s' is neither a file nor "
				 "a block device",
				 spec_text, spec->target);
		goto out;
	}
	/* A block device is known by the device it is, a file by where
	 * it lives. */
	d->dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	d->ino = S_ISBLK(st.st_mode) ? 0 : st.st_ino;
	r = check_clash(self, d, spec->target, err);
out:
	if (r < 0)
		rec_disk_fini(d);
	vbd_spec_free(spec);
	return r;
}

void dom_rundir_remove(const char *rundir)
{
	static const char *const leaves[] = {
		"qmp.sock",    "monitor-qmp.sock", "serve.sock",
		"serve.pid",   "serve.log",	   "console.sock",
		"console.log", "qemu.log",	   "monitor.log",
	};
	char path[PATH_MAX];
	int dfd = open(rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return;
	for (size_t i = 0; i < VS_ARRAY_SIZE(leaves); i++)
		unlinkat(dfd, leaves[i], 0);
	/* The disks' sockets: every *.sock left (serve removes its own at
	 * a clean exit; a killed one leaves them). */
	{
		int d2 = dup(dfd);
		DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
		struct dirent *de;

		while (d && (de = readdir(d))) {
			size_t len = strlen(de->d_name);

			if (len > 5 && !strcmp(de->d_name + len - 5, ".sock"))
				unlinkat(dfd, de->d_name, 0);
		}
		if (d)
			closedir(d);
		else if (d2 >= 0)
			close(d2);
	}
	close(dfd);
	if (rmdir(rundir) < 0 && errno != ENOENT) {
		snprintf(path, sizeof(path), "%s", rundir);
		vs_warn("cannot remove the run folder '%s': %s", path,
			strerror(errno));
	}
}

/* The vstor executable, to start `vstor serve` with. */
static int self_exe(char *buf, size_t cap, struct vs_error **err)
{
	ssize_t n = readlink("/proc/self/exe", buf, cap - 1);

	if (n < 0)
		return vs_error_set_errno(err, errno,
					  "cannot find the vstor executable");
	buf[n] = '\0';
	return 0;
}

/* The last non-empty line of a log file, for an error message. */
static void last_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	char line[1024];

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, cap, "%s", line);
	}
	fclose(f);
}

static int spawn_serve(struct dom_record *rec, struct vs_error **err)
{
	static const char vhost_opt[] = "--vhost-user";
	char exe[PATH_MAX], msg[1024];
	autofree char *pidfile = NULL, *ctl = NULL, *log = NULL;
	char **argv = NULL;
	size_t n = 0;
	unsigned nq = rec->cfg->vcpus < 1    ? 1
		      : rec->cfg->vcpus > 16 ? 16
					     : rec->cfg->vcpus;
	int status, r;
	pid_t pid;

	if ((r = self_exe(exe, sizeof(exe), err)) < 0 ||
	    (r = dom_run_path(rec->rundir, "serve.pid", &pidfile, err)) < 0 ||
	    (r = dom_run_path(rec->rundir, "serve.sock", &ctl, err)) < 0 ||
	    (r = dom_run_path(rec->rundir, "serve.log", &log, err)) < 0)
		return r;
	argv = calloc(8 + 3 * rec->n_disks, sizeof(*argv));
	if (!argv)
		return vs_error_set(err, ENOMEM, "out of memory");
	argv[n++] = exe;
	argv[n++] = "serve";
	argv[n++] = "--daemonize";
	argv[n++] = "--pidfile";
	argv[n++] = pidfile;
	argv[n++] = "--control";
	argv[n++] = ctl;
	for (size_t i = 0; i < rec->n_disks; i++) {
		if (!rec->disks[i].socket)
			continue;
		argv[n++] = (char *)vhost_opt;
		if (asprintf(&argv[n++], "%s=%s,num-queues=%u",
			     rec->disks[i].vdev, rec->disks[i].socket,
			     nq) < 0) {
			argv[--n] = NULL;
			r = vs_error_set(err, ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < rec->n_disks; i++)
		if (rec->disks[i].socket)
			argv[n++] = rec->disks[i].spec;
	pid = fork();
	if (pid < 0) {
		r = vs_error_set_errno(err, errno, "cannot start vstor serve");
		goto out;
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), lf;
		sigset_t none;

		/* create blocks the stop signals; serve must get them. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (in < 0 || lf < 0 || dup2(in, 0) < 0 || dup2(lf, 1) < 0 ||
		    dup2(lf, 2) < 0)
			_exit(127);
		execv(exe, argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		last_line(log, msg, sizeof(msg));
		/* serve's own messages start "vstor: " too. */
		r = vs_error_set(err, EIO, "vstor serve failed to start: %s",
				 !msg[0]		       ? "no message"
				 : !strncmp(msg, "vstor: ", 7) ? msg + 7
							       : msg);
		goto out;
	}
	{
		FILE *f = fopen(pidfile, "re");
		long p = 0;

		if (!f || fscanf(f, "%ld", &p) != 1 || p <= 0 || p > INT_MAX ||
		    dom_proc_get((pid_t)p, &rec->serve) < 0) {
			if (f)
				fclose(f);
			r = vs_error_set(err, EIO,
					 "vstor serve started but its pidfile "
					 "'%s' names "
					 "no running process",
					 pidfile);
			goto out;
		}
		fclose(f);
	}
	r = 0;
out:
	/* The vhost-user arguments are the only ones allocated here: each
	 * follows a "--vhost-user" (a string literal, compared by address
	 * so that a freed argument is never read). */
	for (size_t i = 8; i < n; i++)
		if (argv[i - 1] == vhost_opt)
			free(argv[i]);
	free(argv);
	return r;
}

int dom_start(struct dom_record *rec, int lockfd, struct vs_error **err)
{
	int r;

	/* A run folder left by a domain of this ID that died with its
	 * host: nothing in it is live. */
	dom_rundir_remove(rec->rundir);
	if (mkdir(rec->rundir, 0700) < 0)
		return vs_error_set_errno(err, errno,
					  "cannot create the run folder '%s'",
					  rec->rundir);
	for (size_t i = 0; i < rec->n_disks; i++) {
		autofree char *leaf = NULL;

		if (rec->disks[i].empty)
			continue;
		if (asprintf(&leaf, "%s.sock", rec->disks[i].vdev) < 0) {
			r = vs_error_set(err, ENOMEM, "out of memory");
			goto fail;
		}
		free(rec->disks[i].socket);
		rec->disks[i].socket = NULL;
		if ((r = dom_run_path(rec->rundir, leaf, &rec->disks[i].socket,
				      err)) < 0)
			goto fail;
	}
	r = spawn_serve(rec, err);
	if (r < 0)
		goto fail;
	r = dom_monitor_spawn(rec, lockfd, false, err);
	if (r < 0) {
		dom_proc_stop(&rec->serve, DOM_SERVE_STOP_MS);
		goto fail;
	}
	rec->state = DOM_STATE_RUNNING;
	return 0;
fail:
	dom_rundir_remove(rec->rundir);
	return r;
}

static int check_vifs(const struct dom_config *cfg, struct vs_error **err)
{
	static const char *const models[] = {"virtio-net-pci", "virtio",
					     "e1000", "rtl8139"};

	if (cfg->n_vifs > DOM_MAX_VIFS)
		return vs_error_set(err, EOPNOTSUPP,
				    "%zu vifs: at most %d are supported",
				    cfg->n_vifs, DOM_MAX_VIFS);
	for (size_t i = 0; i < cfg->n_vifs; i++) {
		const struct dom_vif *v = &cfg->vifs[i];
		bool known = !v->model;

		for (size_t j = 0; !known && j < VS_ARRAY_SIZE(models); j++)
			known = !strcmp(v->model, models[j]);
		if (!known)
			return vs_error_set(err, EOPNOTSUPP,
					    "vif %zu: model '%s' is not "
					    "supported (virtio, e1000, "
					    "rtl8139)",
					    i, v->model);
		if (!v->bridge)
			return vs_error_set(err, EOPNOTSUPP,
					    "vif %zu: no bridge=; a vif "
					    "without a bridge is not "
					    "supported",
					    i);
	}
	return 0;
}

/* The disks of a new domain, checked, into rec->disks. */
static int check_disks(struct dom_record *rec, struct vs_error **err)
{
	const struct dom_config *cfg = rec->cfg;
	int slots[DOM_MAX_DISKS];

	for (size_t i = 0; i < cfg->n_disks; i++) {
		struct dom_rec_disk d;
		int slot = -1, r;

		r = dom_disk_check(rec->name, cfg->disks[i].text, &d, &slot,
				   err);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++) {
			if (slots[j] == slot) {
				vs_error_set(err, EINVAL,
					     "disk '%s': vdev '%s' is the same "
					     "device as '%s' of "
					     "disk '%s'",
					     d.spec, d.vdev, rec->disks[j].vdev,
					     rec->disks[j].spec);
				rec_disk_fini(&d);
				return -EINVAL;
			}
			/* One file twice in a domain: two writers. */
			if (d.dev && rec->disks[j].dev == d.dev &&
			    rec->disks[j].ino == d.ino &&
			    (!d.readonly || !rec->disks[j].readonly)) {
				vs_error_set(err, EBUSY,
					     "disk '%s': its target is also "
					     "disk '%s' of this domain",
					     d.spec, rec->disks[j].spec);
				rec_disk_fini(&d);
				return -EBUSY;
			}
		}
		if (r == 1)
			vs_warn("disk '%s': an empty cdrom drive is left out "
				"(vhost-user-blk "
				"has no removable media)",
				d.spec);
		/* An empty cdrom keeps its place (socket NULL) so that the
		 * record lists it. */
		slots[i] = slot;
		if (dom_record_add_disk(rec, &d) < 0) {
			rec_disk_fini(&d);
			return vs_error_set(err, ENOMEM, "out of memory");
		}
		rec_disk_fini(&d);
	}
	return 0;
}

/* Replace a file name by its absolute path (the file exists: checked). */
static int absolute(char **path, const char *what, struct vs_error **err)
{
	char *abs;

	if ((*path)[0] == '/')
		return 0;
	abs = realpath(*path, NULL);
	if (!abs)
		return vs_error_set_errno(err, errno, "%s '%s'", what, *path);
	free(*path);
	*path = abs;
	return 0;
}

int dom_create(struct dom_config *cfg, struct dom_record **out,
	       struct vs_error **err)
{
	struct dom_record *rec = calloc(1, sizeof(*rec)), *old = NULL;
	struct vs_error *e = NULL;
	sigset_t old_mask;
	bool masked = false;
	int lockfd = -1, r;

	if (!rec) {
		dom_config_free(cfg);
		return vs_error_set(err, ENOMEM, "out of memory");
	}
	rec->cfg = cfg;
	rec->name = strdup(cfg->name);
	if (!rec->name) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if ((r = dom_name_check(cfg->name, err)) < 0 ||
	    (r = dom_config_check_files(cfg, err)) < 0 ||
	    (r = check_vifs(cfg, err)) < 0)
		goto out;
	/* Absolute, for the same reason as the disks' targets (QEMU may be
	 * started again from another folder). */
	if ((r = absolute(&cfg->kernel, "kernel", err)) < 0 ||
	    (cfg->ramdisk && (r = absolute(&cfg->ramdisk, "ramdisk", err)) < 0))
		goto out;
	if (cfg->n_disks > DOM_MAX_DISKS) {
		r = vs_error_set(err, EOPNOTSUPP,
				 "%zu disks: at most %d are supported",
				 cfg->n_disks, DOM_MAX_DISKS);
		goto out;
	}
	/* A domain whose QEMU died unseen is cleaned up first, so that its
	 * name and disks are free again (as its on_crash says). */
	r = dom_refresh(cfg->name, &old, &e);
	vs_error_free(e);
	e = NULL;
	if (r == 0 && old) {
		r = vs_error_set(
			err, EEXIST, "domain '%s' already exists (ID %u, %s)",
			old->name, old->domid, dom_state_name(old->state));
		dom_record_free(old);
		goto out;
	}
	lockfd = dom_state_lock(err);
	if (lockfd < 0) {
		r = lockfd;
		goto out;
	}
	/* Again under the lock: a create of the same name may have raced. */
	if (dom_record_load(cfg->name, &old, &e) == 0) {
		r = vs_error_set(err, EEXIST,
				 "domain '%s' already exists (ID %u)",
				 old->name, old->domid);
		dom_record_free(old);
		goto out;
	}
	vs_error_free(e);
	if ((r = check_disks(rec, err)) < 0 ||
	    (r = dom_domid_alloc(&rec->domid, err)) < 0)
		goto out;
	if (asprintf(&rec->rundir, "%s/run/%u", dom_state_dir(), rec->domid) <
	    0) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	/* Every path in the run folder must fit a socket address: checked
	 * before anything starts. */
	{
		static const char *const leaves[] = {
			"monitor-qmp.sock", "console.sock", "console.log"};
		char *p = NULL;

		for (size_t i = 0; i < VS_ARRAY_SIZE(leaves); i++) {
			if ((r = dom_run_path(rec->rundir, leaves[i], &p,
					      err)) < 0)
				goto out;
			free(p);
		}
	}
	rec->created = (int64_t)time(NULL);
	/* A Ctrl-C from here to the record would leave processes that no
	 * record names: it waits until the start succeeded or was undone. */
	{
		sigset_t stop;

		sigemptyset(&stop);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGHUP);
		sigaddset(&stop, SIGQUIT);
		sigprocmask(SIG_BLOCK, &stop, &old_mask);
		masked = true;
	}
	r = dom_start(rec, lockfd, err);
	if (r < 0)
		goto out;
	r = dom_record_save(rec, err);
	if (r < 0) {
		struct vs_error *e2 = NULL;

		dom_teardown(rec, false, DOM_STATE_DYING, &e2);
		vs_error_free(e2);
		goto out;
	}
out:
	dom_state_unlock(lockfd);
	if (masked)
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
	if (r == 0 && out)
		*out = rec;
	else
		dom_record_free(rec);
	return r;
}
