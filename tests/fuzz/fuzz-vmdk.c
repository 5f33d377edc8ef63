/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the VMDK reader: an image is untrusted input.
 * The bytes become a file (a memfd), which is opened read-only as vmdk
 * and read at a few places; every outcome but a crash, a leak or a hang
 * is fine.  Extent files named by a descriptor are looked up beside
 * /proc/self/fd/, where they are not found (or are this file).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <json-c/json.h>
#include <unistd.h>

#include "common/log.h"
#include "vbd/vbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65536];
	struct vs_error *err = NULL;
	struct vbd_extent ext;
	struct vbd *vbd = NULL;
	struct vbd_info info;
	struct vbd_check chk;
	uint64_t step;
	char path[64];
	int fd = memfd_create("fuzz-vmdk", MFD_CLOEXEC);

	/* The check's findings are INFO lines: thousands per second. */
	vs_log_set_quiet(true);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (vbd_open_file(path, "vmdk", VBD_O_RDONLY, &vbd, &err) < 0) {
		vs_error_free(err);
		err = NULL;
		goto out;
	}
	vbd_check(vbd, 0, &chk, &err);
	vs_error_free(err);
	err = NULL;
	if (vbd_get_info(vbd, &info, &err) == 0)
		json_object_put(info.specific);
	vs_error_free(err);
	/* Small disks are read whole; large ones at a few places. */
	step = vbd_size(vbd) <= (1u << 20) ? sizeof(buf) : 8u << 20;
	for (uint64_t off = 0; off < vbd_size(vbd) && off < (64u << 20);
	     off += step) {
		uint64_t len = vbd_size(vbd) - off;

		if (len > sizeof(buf))
			len = sizeof(buf);
		vbd_pread(vbd, off, buf, len);
		vbd_block_status(vbd, off, len, &ext);
	}
	vbd_close(vbd);
out:
	close(fd);
	return 0;
}
