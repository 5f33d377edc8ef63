/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk specifications in Xen's xl syntax (xl-disk-configuration(5)):
 *
 *   'phy:/dev/vg/web1,xvda1,w'
 *   'format=qcow2, vdev=xvdb, access=rw, target=/var/lib/vstor/a.qcow2'
 *
 * The parser is the edge where a config line enters: every token is
 * checked here and an error names the offending token.
 */
#ifndef VS_VBD_DISKSPEC_H
#define VS_VBD_DISKSPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

/* A tri-state for flags that may be given either way or not at all. */
enum vbd_tristate {
	VBD_UNSET = -1,
	VBD_NO = 0,
	VBD_YES = 1,
};

struct vbd_spec {
	char *target;	     /* file, device or other target; NULL when
				 * absent (an empty cdrom drive) */
	char *format;	     /* "raw" (default), "qcow", "qcow2", "vhd",
				 * "vmdk", "vdi", "empty" */
	char *vdev;	     /* virtual device name as written: "xvda1" */
	long devnum;	     /* Xen virtual-device number, -1 if no vdev */
	bool readonly;	     /* access=r|ro; default rw, r for cdrom */
	bool cdrom;	     /* "cdrom", "devtype=cdrom" or "vdev:cdrom" */
	char *backendtype;   /* backendtype= (phy, tap, qdisk, standalone) */
	char *backend;	     /* backend= driver domain */
	char *script;	     /* script=, or block-NAME from "iscsi:" etc. */
	char *specification; /* specification= (xen, virtio) */
	char *transport;     /* transport= (for specification=virtio) */
	enum vbd_tristate discard; /* discard / no-discard */
	enum vbd_tristate trusted; /* trusted / untrusted */
	bool direct_io_safe;	   /* direct-io-safe: open with O_DIRECT */
	char *aio; /* vstor extension aio=io_uring|native|threads */
	uint64_t l2_cache_size; /* vstor extension
					   * l2-cache-size=SIZE: bytes of
					   * qcow2 L2 tables cached (0 =
					   * enough for the whole disk, at
					   * most 32 MiB) */
	char *file_driver;	/* not in xl syntax: the driver of the file
			    * layer under a format driver (NULL = "raw");
			    * tests interpose fault injection here */
};

/*
 * Parse one disk spec.  On success *out is a new spec the caller owns
 * (free with vbd_spec_free).  On failure returns -EINVAL and *errp says
 * which token was wrong: "unknown parameter 'foo=bar'", "unknown prefix
 * 'blah:'", "duplicate parameter 'format'", "bad vdev 'xvd0'".
 */
int vbd_spec_parse(const char *text, struct vbd_spec **out,
		   struct vs_error **errp);

/* A spec for a plain file or device with the given format (NULL = raw). */
struct vbd_spec *vbd_spec_new(const char *target, const char *format,
			      bool readonly);

void vbd_spec_free(struct vbd_spec *spec);

/*
 * Xen virtual-device number for a vdev name ("xvda" -> 51712,
 * "hdc" -> 5632, "sdb3" -> 2067, "d536p37" -> 268572709).  Returns the
 * number (>= 0), or -EINVAL if the name is not a valid vdev.  *disk and
 * *part (either may be NULL) receive the disk index and partition.
 */
long vbd_vdev_to_devnum(const char *vdev, int *disk, int *part);

#endif
