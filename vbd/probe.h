/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internal to vbd/: guess a file's format from its first bytes. */
#ifndef VS_VBD_PROBE_H
#define VS_VBD_PROBE_H

#include "../common/error.h"

/* *format is a static driver name; "raw" when nothing else matches. */
int vbd_probe_format(const char *path, const char **format,
		     struct vs_error **errp);

#endif
