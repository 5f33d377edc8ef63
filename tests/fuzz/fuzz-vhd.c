/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the VHD ("vpc") driver: an image is untrusted
 * input.  The bytes become a file (a memfd), which is opened read-only
 * and read and mapped at a few places, then opened for writing and
 * written at the start and the middle (a new block, a bitmap update, a
 * footer moved: all on hostile metadata).  Every outcome but a crash, a
 * leak or a hang is fine.  A differencing image's parent locators name
 * files beside /proc/self/fd/N, which mostly do not exist.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vbd/vbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_some(struct vbd *vbd)
{
	static uint8_t buf[65536];
	struct vbd_extent ext;

	for (uint64_t off = 0; off < vbd_size(vbd) && off < (64u << 20);
	     off += 8u << 20) {
		uint64_t len = vbd_size(vbd) - off;

		if (len > sizeof(buf))
			len = sizeof(buf);
		vbd_pread(vbd, off, buf, len);
		vbd_block_status(vbd, off, len, &ext);
		/* An unaligned read crosses sector runs. */
		if (len > 700)
			vbd_pread(vbd, off + 300, buf, len - 600);
	}
}

static void write_some(struct vbd *vbd)
{
	static uint8_t buf[4096];
	uint64_t size = vbd_size(vbd);

	memset(buf, 0x5a, sizeof(buf));
	if (size > 1000)
		vbd_pwrite(vbd, 100, buf, 900);
	if (size > sizeof(buf))
		vbd_pwrite(vbd, size / 2 - size / 2 % 512, buf, sizeof(buf));
	vbd_flush(vbd);
	read_some(vbd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_error *err = NULL;
	struct vbd *vbd = NULL;
	char path[64];
	int fd = memfd_create("fuzz-vhd", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (vbd_open_file(path, "vpc", VBD_O_RDONLY | VBD_O_NOLOCK, &vbd,
			  &err) < 0) {
		vs_error_free(err);
		goto out;
	}
	read_some(vbd);
	vbd_close(vbd);
	vbd = NULL;
	if (vbd_open_file(path, "vpc", VBD_O_NOLOCK, &vbd, &err) < 0) {
		vs_error_free(err);
		goto out;
	}
	write_some(vbd);
	vbd_close(vbd);
out:
	close(fd);
	return 0;
}
