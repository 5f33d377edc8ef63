/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the xl disk-spec parser: a config line is
 * untrusted input, so no byte sequence may crash it, leak, or produce a
 * spec that breaks its own invariants.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vbd/diskspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_error *err = NULL;
	struct vbd_spec *spec = NULL;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (vbd_spec_parse(text, &spec, &err) == 0) {
		assert(spec && !err);
		assert(spec->format && spec->vdev);
		assert(spec->devnum >= 0);
		assert(vbd_vdev_to_devnum(spec->vdev, NULL, NULL) ==
			       spec->devnum ||
		       strchr(spec->vdev, ':'));
		/* A cdrom is never writable. */
		assert(!spec->cdrom || spec->readonly);
		vbd_spec_free(spec);
	} else {
		assert(err && !spec);
		assert(vs_error_msg(err)[0] != '\0');
		vs_error_free(err);
	}
	(void)vbd_vdev_to_devnum(text, NULL, NULL);
	free(text);
	return 0;
}
