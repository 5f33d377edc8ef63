/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the VDI driver: an image is untrusted input.  The
 * bytes become a file (a memfd), which is opened read-only as VDI, read
 * and mapped at a few places and checked, then opened for writing and
 * written, discarded, zeroed and checked again; every outcome but a
 * crash, a leak or a hang is fine.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "vbd/vbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65536];
	static int quiet;
	struct vs_error *err = NULL;
	struct vbd_extent ext;
	struct vbd_check res;
	struct vbd *vbd = NULL;
	char path[64];
	int fd = memfd_create("fuzz-vdi", MFD_CLOEXEC);

	/* The check and the bad entries speak on stderr: keep it short. */
	if (!quiet++)
		vs_log_set_quiet(true);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (vbd_open_file(path, "vdi", VBD_O_RDONLY, &vbd, &err) < 0) {
		vs_error_free(err);
		goto out;
	}
	/* Both ends of every block of the first 64 MiB, whatever the
	 * block size. */
	for (uint64_t off = 0; off < vbd_size(vbd) && off < (64u << 20);
	     off += 1u << 20) {
		uint64_t len = vbd_size(vbd) - off;

		if (len > sizeof(buf))
			len = sizeof(buf);
		vbd_pread(vbd, off, buf, len);
		vbd_block_status(vbd, off, vbd_size(vbd) - off, &ext);
	}
	if (vbd_check(vbd, 0, &res, &err) < 0)
		vs_error_free(err);
	vbd_close(vbd);
	vbd = NULL;
	/* What opens for writing takes a partial write (a new block, or
	 * in place), a whole-block discard and a zeroing, and is checked
	 * again: the write path must hold on any layout the header check
	 * lets through. */
	if (vbd_open_file(path, "vdi", VBD_O_NOLOCK, &vbd, &err) < 0) {
		vs_error_free(err);
		goto out;
	}
	for (uint64_t off = 0; off < vbd_size(vbd) && off < (4u << 20);
	     off += 1u << 20) {
		uint64_t len = vbd_size(vbd) - off;

		if (len > 4096)
			len = 4096;
		memset(buf, 0x5a, len);
		vbd_pwrite(vbd, off, buf, len);
	}
	if (vbd_size(vbd) >= vbd_cluster_size(vbd))
		vbd_discard(vbd, 0, vbd_cluster_size(vbd));
	if (vbd_size(vbd) > 512)
		vbd_write_zeroes(vbd, 512, vbd_size(vbd) - 512,
				 VBD_ZERO_MAY_UNMAP);
	if (vbd_check(vbd, 0, &res, &err) < 0)
		vs_error_free(err);
	vbd_close(vbd);
out:
	close(fd);
	return 0;
}
