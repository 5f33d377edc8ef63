/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's command line for a domain.  Choices that matter:
 *   - -nodefaults -no-user-config: only the devices we name, whatever the
 *     host's QEMU config says;
 *   - guest memory in a shared memfd: vhost-user-blk's backend (vstor
 *     serve) maps it;
 *   - -S: the guest starts only when the monitor, connected, says cont,
 *     so that no event (a fast panic or power-off) goes unseen;
 *   - -no-shutdown and -action panic=pause: a guest that powers off or
 *     panics stops, and the monitor decides (on_poweroff, on_crash);
 *     reboot=reset only when on_reboot=restart, so that QEMU restarts the
 *     guest in place; otherwise a reboot is a shutdown the monitor sees
 *     with reason guest-reset;
 *   - every disk a vhost-user-blk-pci device at a fixed slot per vdev;
 *   - the serial console on a socket with a log file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../vbd/diskspec.h"
#include "domain-priv.h"

struct argv_buf {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add(struct argv_buf *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **g = realloc(a->v, cap * sizeof(*g));

		if (!g) {
			a->oom = true;
			return;
		}
		a->v = g;
		a->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		a->oom = true;
		s = NULL;
	}
	va_end(ap);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* QEMU's option syntax: a comma inside a value is written twice. */
static char *esc(const char *s)
{
	size_t extra = 0;
	char *out, *o;

	for (const char *p = s; *p; p++)
		extra += *p == ',';
	out = malloc(strlen(s) + extra + 1);
	if (!out)
		return NULL;
	for (o = out; *s; s++) {
		*o++ = *s;
		if (*s == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

void dom_argv_free(char **argv)
{
	if (!argv)
		return;
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static unsigned queues(const struct dom_config *cfg)
{
	/* vstor serve offers 1 to 16 queues: one per vCPU up to that. */
	return cfg->vcpus < 1 ? 1 : cfg->vcpus > 16 ? 16 : cfg->vcpus;
}

int dom_qemu_argv(const struct dom_record *rec, const char *accel,
		  const int *tap_fds, char ***argv, struct vs_error **err)
{
	const struct dom_config *cfg = rec->cfg;
	struct argv_buf a = {0};
	const char *qemu = getenv("VSTOR_QEMU");
	bool kvm = !strcmp(accel, "kvm");
	autofree char *dir = esc(rec->rundir);
	int r = 0;

	if (!dir)
		return vs_error_set(err, ENOMEM, "out of memory");

	add(&a, "%s", qemu && *qemu ? qemu : "qemu-system-x86_64");
	add(&a, "-name");
	add(&a, "guest=%s,debug-threads=on",
	    rec->name); /* names are [A-Za-z0-9_.-] */
	add(&a, "-uuid");
	add(&a, "%s", cfg->uuid);
	add(&a, "-accel");
	add(&a, "%s", accel);
	add(&a, "-M");
	add(&a, "pc");
	add(&a, "-cpu");
	add(&a, "%s", kvm ? "host" : "max");
	add(&a, "-m");
	add(&a, "%" PRIu64 "M", cfg->memory_mib);
	add(&a, "-smp");
	add(&a, "%u", cfg->vcpus);
	add(&a, "-object");
	add(&a, "memory-backend-memfd,id=mem,size=%" PRIu64 "M,share=on",
	    cfg->memory_mib);
	add(&a, "-numa");
	add(&a, "node,memdev=mem");
	add(&a, "-nodefaults");
	add(&a, "-no-user-config");
	add(&a, "-display");
	add(&a, "none");
	add(&a, "-S");
	add(&a, "-no-shutdown");
	add(&a, "-action");
	add(&a, "reboot=%s,panic=pause",
	    cfg->on_reboot == DOM_ACTION_RESTART ? "reset" : "shutdown");
	/* -kernel and -initrd take a plain file name: no escaping. */
	add(&a, "-kernel");
	add(&a, "%s", cfg->kernel);
	if (cfg->ramdisk) {
		add(&a, "-initrd");
		add(&a, "%s", cfg->ramdisk);
	}
	if (cfg->cmdline && *cfg->cmdline) {
		add(&a, "-append");
		add(&a, "%s", cfg->cmdline); /* an argv element: no escaping */
	}
	/* Two QMP sockets: the monitor keeps one connected for events, the
	 * commands of vstor's verbs use the other. */
	add(&a, "-chardev");
	add(&a, "socket,id=qmp-mon,path=%s/monitor-qmp.sock,server=on,wait=off",
	    dir);
	add(&a, "-mon");
	add(&a, "chardev=qmp-mon,mode=control");
	add(&a, "-chardev");
	add(&a, "socket,id=qmp,path=%s/qmp.sock,server=on,wait=off", dir);
	add(&a, "-mon");
	add(&a, "chardev=qmp,mode=control");
	/* The console: a socket for `vstor console` and a log that keeps
	 * what the guest printed while nobody was attached. */
	{
		add(&a, "-chardev");
		add(&a,
		    "socket,id=con0,path=%s/console.sock,server=on,wait=off,"
		    "logfile=%s/console.log,logappend=on",
		    dir, dir);
		add(&a, "-serial");
		add(&a, "chardev:con0");
	}
	add(&a, "-device");
	add(&a, "pvpanic");
	for (size_t i = 0; i < rec->n_disks; i++) {
		const struct dom_rec_disk *d = &rec->disks[i];
		int slot;

		if (!d->socket)
			continue; /* an empty cdrom drive */
		slot = dom_disk_slot(d->vdev, err);
		if (slot < 0) {
			r = slot;
			goto out;
		}
		{
			autofree char *p = esc(d->socket);

			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			add(&a, "-chardev");
			add(&a, "socket,id=vd-%s,path=%s", d->vdev, p);
		}
		add(&a, "-device");
		add(&a,
		    "vhost-user-blk-pci,chardev=vd-%s,id=%s,num-queues=%u,addr="
		    "0x%x",
		    d->vdev, d->vdev, queues(cfg), slot);
	}
	for (size_t i = 0; i < cfg->n_vifs; i++) {
		const struct dom_vif *v = &cfg->vifs[i];

		add(&a, "-netdev");
		add(&a, "tap,id=net%zu,fd=%d,vhost=off", i, tap_fds[i]);
		add(&a, "-device");
		add(&a, "%s,netdev=net%zu,mac=%s,addr=0x%zx",
		    v->model && strcmp(v->model, "virtio") ? v->model
							   : "virtio-net-pci",
		    i, v->mac, DOM_VIF_SLOT0 + i);
	}
out:
	if (!r && a.oom)
		r = -ENOMEM;
	if (r < 0) {
		dom_argv_free(a.v);
		return r == -ENOMEM ? vs_error_set(err, ENOMEM, "out of memory")
				    : r;
	}
	*argv = a.v;
	return 0;
}
