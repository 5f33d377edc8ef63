/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor img: image tools in the manner of qemu-img. */
#include <stddef.h>

#include "cli.h"

/* One verb per line, in "vstor help img" order (clang-format would pack them). */
/* clang-format off */
static const struct cli_verb *const img_verbs[] = {
	&cli_verb_img_create,
	&cli_verb_img_info,
	&cli_verb_img_check,
	&cli_verb_img_convert,
	&cli_verb_img_bench,
	&cli_verb_img_snapshot,
	&cli_verb_img_commit,
	&cli_verb_img_rebase,
	&cli_verb_img_resize,
	&cli_verb_img_map,
	&cli_verb_img_compare,
	&cli_verb_img_measure,
	NULL,
};
/* clang-format on */

const struct cli_group cli_group_img = {
	.name = "img",
	.summary = "Create, inspect and measure disk images (as qemu-img)",
	.verbs = img_verbs,
};
