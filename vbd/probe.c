/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Format probing, for image tools only (VBD_O_PROBE).  A guest disk's
 * format always comes from its spec: a guest can write any header into
 * its own disk, and probing that would let it choose a backing file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "driver.h"
#include "probe.h"

#define PROBE_BYTES 4096

int vbd_probe_format(const char *path, const char **format,
		     struct vs_error **errp)
{
	uint8_t buf[PROBE_BYTES];
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	const struct vbd_driver *const *d = vbd_drivers();
	const char *best = "raw";
	int best_score = 0;
	ssize_t n;

	if (fd < 0)
		return vs_error_set_errno(errp, errno, "%s: cannot open", path);
	do
		n = pread(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EISDIR)
			return vs_error_set(errp, EISDIR,
					    "%s: is a directory, not a disk "
					    "image",
					    path);
		return vs_error_set_errno(errp, errno,
					  "%s: cannot read the header at "
					  "offset 0",
					  path);
	}
	memset(buf + n, 0, sizeof(buf) - (size_t)n);
	for (int i = 0; d[i]; i++) {
		int score;

		if (!d[i]->probe)
			continue;
		score = d[i]->probe(buf, (size_t)n, path);
		if (score > best_score) {
			best_score = score;
			best = d[i]->name;
		}
	}
	*format = best;
	return 0;
}
