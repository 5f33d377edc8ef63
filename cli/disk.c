/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor disk: disk specs in xl syntax (xl-disk-configuration(5)). */
#include <stddef.h>

#include "cli.h"

static const struct cli_verb *const disk_verbs[] = {
	&cli_verb_disk_parse,
	NULL,
};

const struct cli_group cli_group_disk = {
	.name = "disk",
	.summary = "Check disk specs written in xl syntax",
	.verbs = disk_verbs,
};
