/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk hot-plug on a running domain: serve opens and exports the disk
 * (control socket), then QEMU plugs a vhost-user-blk-pci device at the
 * vdev's PCI slot (QMP chardev-add, device_add); the guest's ACPI PCI
 * hot-plug driver finds it.  Unplugging is the reverse, and waits for the
 * guest to let go of the device (DEVICE_DELETED) before serve closes the
 * disk: an image is never closed under a guest that still uses it.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/log.h"
#include "domain-priv.h"
#include "qmp.h"

static struct json_object *req(const char *cmd)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static char *serve_sock(const struct dom_record *rec)
{
	char *p;

	return asprintf(&p, "%s/serve.sock", rec->rundir) < 0 ? NULL : p;
}

/* The ids of serve's exports of disk vdev (NULL-terminated), from its
 * "list" reply. */
static int export_ids(const char *sock, const char *vdev, char ***ids,
		      struct vs_error **err)
{
	struct json_object *reply = NULL, *exports;
	size_t n, k = 0;
	char **out;
	int r = dom_serve_request(sock, req("list"), &reply, err);

	if (r < 0)
		return r;
	if (!json_object_object_get_ex(reply, "exports", &exports) ||
	    !json_object_is_type(exports, json_type_array)) {
		json_object_put(reply);
		return vs_error_set(err, EPROTO,
				    "serve control socket '%s': no export list",
				    sock);
	}
	n = json_object_array_length(exports);
	out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		struct json_object *e = json_object_array_get_idx(exports, i),
				   *d, *id;

		if (json_object_object_get_ex(e, "disk", &d) &&
		    json_object_object_get_ex(e, "id", &id) &&
		    !strcmp(json_object_get_string(d), vdev))
			out[k++] = strdup(json_object_get_string(id));
	}
	json_object_put(reply);
	if (!out)
		return vs_error_set(err, ENOMEM, "out of memory");
	*ids = out;
	return 0;
}

/* Close a disk in serve: its exports, then the disk. */
static int serve_drop(const char *sock, const char *vdev, struct vs_error **err)
{
	char **ids = NULL;
	struct json_object *o;
	int r = export_ids(sock, vdev, &ids, err);

	for (size_t i = 0; r == 0 && ids[i]; i++) {
		o = req("remove-export");
		add_str(o, "id", ids[i]);
		r = dom_serve_request(sock, o, NULL, err);
	}
	dom_names_free(ids);
	if (r < 0)
		return r;
	o = req("remove-disk");
	add_str(o, "name", vdev);
	return dom_serve_request(sock, o, NULL, err);
}

static unsigned num_queues(const struct dom_record *rec)
{
	unsigned v = rec->cfg->vcpus;

	return v < 1 ? 1 : v > 16 ? 16 : v;
}

static int qmp_plug(const struct dom_record *rec, const struct dom_rec_disk *d,
		    int slot, struct vs_error **err)
{
	struct json_object *args, *backend, *data, *addr, *adata;
	struct dom_qmp *q = NULL;
	char id[64], slotbuf[16];
	int r;

	snprintf(id, sizeof(id), "vd-%s", d->vdev);
	snprintf(slotbuf, sizeof(slotbuf), "0x%x", slot);
	r = dom_qmp_open(rec, &q, err);
	if (r < 0)
		return r;
	adata = json_object_new_object();
	add_str(adata, "path", d->socket);
	addr = json_object_new_object();
	add_str(addr, "type", "unix");
	json_object_object_add(addr, "data", adata);
	data = json_object_new_object();
	json_object_object_add(data, "addr", addr);
	json_object_object_add(data, "server", json_object_new_boolean(false));
	backend = json_object_new_object();
	add_str(backend, "type", "socket");
	json_object_object_add(backend, "data", data);
	args = json_object_new_object();
	add_str(args, "id", id);
	json_object_object_add(args, "backend", backend);
	r = dom_qmp_exec(q, "chardev-add", args, NULL, DOM_QMP_CMD_MS, err);
	if (r < 0)
		goto out;
	args = json_object_new_object();
	add_str(args, "driver", "vhost-user-blk-pci");
	add_str(args, "chardev", id);
	add_str(args, "id", d->vdev);
	json_object_object_add(args, "num-queues",
			       json_object_new_int((int)num_queues(rec)));
	add_str(args, "addr", slotbuf);
	r = dom_qmp_exec(q, "device_add", args, NULL, DOM_QMP_CMD_MS, err);
	if (r < 0) {
		struct vs_error *e = NULL;

		args = json_object_new_object();
		add_str(args, "id", id);
		dom_qmp_exec(q, "chardev-remove", args, NULL, DOM_QMP_CMD_MS,
			     &e);
		vs_error_free(e);
	}
out:
	dom_qmp_close(q);
	return r;
}

int dom_block_attach(const char *name, const char *spec_text,
		     struct vs_error **err)
{
	struct dom_record *rec = NULL;
	struct dom_rec_disk d = {0};
	autofree char *sock = NULL, *leaf = NULL;
	struct json_object *o;
	int lockfd = -1, slot = -1, r;

	lockfd = dom_lock_live(name, &rec, err);
	if (lockfd < 0)
		return lockfd;
	r = dom_disk_check(name, spec_text, &d, &slot, err);
	if (r == 1)
		r = vs_error_set(
			err, EOPNOTSUPP,
			"disk '%s': an empty cdrom drive cannot be attached",
			spec_text);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < rec->n_disks; i++) {
		const struct dom_rec_disk *od = &rec->disks[i];

		if (dom_disk_slot(od->vdev, NULL) == slot) {
			r = vs_error_set(err, EEXIST,
					 "domain '%s' already has a disk at "
					 "vdev '%s' (%s)",
					 name, d.vdev, od->spec);
			goto out;
		}
		if (d.dev && od->dev == d.dev && od->ino == d.ino &&
		    (!d.readonly || !od->readonly)) {
			r = vs_error_set(
				err, EBUSY,
				"disk '%s': its target is already disk '%s' of "
				"domain '%s'",
				spec_text, od->spec, name);
			goto out;
		}
	}
	if (asprintf(&leaf, "%s.sock", d.vdev) < 0 ||
	    !(sock = serve_sock(rec))) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if ((r = dom_run_path(rec->rundir, leaf, &d.socket, err)) < 0)
		goto out;
	o = req("add-disk");
	add_str(o, "spec", spec_text);
	if ((r = dom_serve_request(sock, o, NULL, err)) < 0)
		goto out;
	{
		char opts[32];

		snprintf(opts, sizeof(opts), "num-queues=%u", num_queues(rec));
		o = req("add-export");
		add_str(o, "type", "vhost-user");
		add_str(o, "disk", d.vdev);
		add_str(o, "addr", d.socket);
		add_str(o, "opts", opts);
		r = dom_serve_request(sock, o, NULL, err);
	}
	if (r == 0)
		r = qmp_plug(rec, &d, slot, err);
	if (r < 0) {
		struct vs_error *e = NULL;

		serve_drop(sock, d.vdev, &e);
		vs_error_free(e);
		goto out;
	}
	if (dom_record_add_disk(rec, &d) < 0) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	r = dom_record_save(rec, err);
out:
	free(d.spec);
	free(d.vdev);
	free(d.socket);
	dom_record_free(rec);
	dom_state_unlock(lockfd);
	return r;
}

/* device_del, then the guest's DEVICE_DELETED for our id (QEMU also
 * sends one for the device's virtio back-end, without "device"). */
static int qmp_unplug(const struct dom_record *rec, const char *vdev,
		      int timeout_ms, struct vs_error **err)
{
	struct dom_qmp *q = NULL;
	struct json_object *args;
	int64_t end = dom_now_ms() + timeout_ms;
	char id[64];
	int r;

	r = dom_qmp_open(rec, &q, err);
	if (r < 0)
		return r;
	args = json_object_new_object();
	add_str(args, "id", vdev);
	r = dom_qmp_exec(q, "device_del", args, NULL, DOM_QMP_CMD_MS, err);
	if (r == -ENODEV) {
		/* An earlier block-detach timed out and the guest has let go
		 * since: QEMU removed the device, what is left is ours. */
		vs_error_free(*err);
		*err = NULL;
		r = 0;
		goto removed;
	}
	if (r < 0 && *err &&
	    strstr(vs_error_msg(*err), "in the process of unplug")) {
		/* The earlier request still waits for the guest. */
		vs_error_free(*err);
		*err = NULL;
		r = 0;
	}
	while (r == 0) {
		struct json_object *ev = NULL, *data, *dev;
		int64_t left = end - dom_now_ms();
		bool ours;

		r = dom_qmp_wait_event(q, "DEVICE_DELETED",
				       left > 0 ? (int)left : 0, &ev, err);
		if (r == -ETIMEDOUT) {
			vs_error_free(*err);
			*err = NULL;
			r = vs_error_set(err, ETIMEDOUT,
					 "domain '%s': the guest did not "
					 "release '%s' within %d s "
					 "(no ACPI hot-plug support, or the "
					 "disk is in use); it stays "
					 "attached",
					 rec->name, vdev, timeout_ms / 1000);
			break;
		}
		if (r < 0)
			break;
		ours = json_object_object_get_ex(ev, "data", &data) &&
		       json_object_object_get_ex(data, "device", &dev) &&
		       !strcmp(json_object_get_string(dev), vdev);
		json_object_put(ev);
		if (ours)
			break;
	}
removed:
	if (r == 0) {
		struct vs_error *e = NULL;

		snprintf(id, sizeof(id), "vd-%s", vdev);
		args = json_object_new_object();
		add_str(args, "id", id);
		/* A chardev from the command line is removable too. */
		if (dom_qmp_exec(q, "chardev-remove", args, NULL,
				 DOM_QMP_CMD_MS, &e) < 0)
			vs_warn("%s", vs_error_msg(e));
		vs_error_free(e);
	}
	dom_qmp_close(q);
	return r;
}

int dom_block_detach(const char *name, const char *vdev, int timeout_ms,
		     struct vs_error **err)
{
	struct dom_record *rec = NULL;
	autofree char *sock = NULL;
	int lockfd, r;

	r = dom_load_live(name, &rec, err);
	if (r < 0)
		return r;
	if (!dom_record_find_disk(rec, vdev)) {
		r = vs_error_set(err, ENOENT, "domain '%s' has no disk '%s'",
				 name, vdev);
		goto out;
	}
	if (dom_record_find_disk(rec, vdev)->empty) {
		r = vs_error_set(err, EOPNOTSUPP,
				 "disk '%s' of domain '%s' is an empty cdrom "
				 "drive: nothing to "
				 "detach",
				 vdev, name);
		goto out;
	}
	/* Not under the lock: the guest may take seconds. */
	r = qmp_unplug(rec, vdev, timeout_ms, err);
	if (r < 0)
		goto out;
	sock = serve_sock(rec);
	if (!sock) {
		r = vs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	r = serve_drop(sock, vdev, err);
	if (r < 0)
		goto out;
	dom_record_free(rec);
	rec = NULL;
	lockfd = dom_state_lock(err);
	if (lockfd < 0)
		return lockfd;
	r = dom_record_load(name, &rec, err);
	if (r == 0) {
		dom_record_remove_disk(rec, vdev);
		r = dom_record_save(rec, err);
	}
	dom_state_unlock(lockfd);
out:
	dom_record_free(rec);
	return r;
}

int dom_block_states(const struct dom_record *rec, const char **states,
		     struct vs_error **err)
{
	struct json_object *reply = NULL, *exports = NULL, *disks = NULL;
	autofree char *sock = serve_sock(rec);
	int r;

	for (size_t i = 0; i < rec->n_disks; i++)
		states[i] = rec->disks[i].empty ? "empty" : "missing";
	if (!sock)
		return vs_error_set(err, ENOMEM, "out of memory");
	r = dom_serve_request(sock, req("list"), &reply, err);
	if (r < 0)
		return r;
	json_object_object_get_ex(reply, "exports", &exports);
	json_object_object_get_ex(reply, "disks", &disks);
	for (size_t i = 0; i < rec->n_disks; i++) {
		if (rec->disks[i].empty)
			continue;
		for (size_t j = 0;
		     exports && j < json_object_array_length(exports); j++) {
			struct json_object *e = json_object_array_get_idx(
						   exports, j),
					   *d, *c;

			if (!json_object_object_get_ex(e, "disk", &d) ||
			    strcmp(json_object_get_string(d),
				   rec->disks[i].vdev))
				continue;
			states[i] = json_object_object_get_ex(e, "connections",
							      &c) &&
						    json_object_get_int64(c) > 0
					    ? "connected"
					    : "waiting";
		}
	}
	json_object_put(reply);
	return 0;
}
