/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img: image tools in the manner of qemu-img. */
#include <stddef.h>

#include "cli.h"

static const struct cli_verb *const img_verbs[] = {
	&cli_verb_img_create,
	&cli_verb_img_info,
	&cli_verb_img_bench,
	NULL,
};

const struct cli_group cli_group_img = {
	.name = "img",
	.summary = "Create, inspect and measure disk images (as qemu-img)",
	.verbs = img_verbs,
};
