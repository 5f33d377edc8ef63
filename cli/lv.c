/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv: LVM logical volumes for domain disks. */
#include <stddef.h>

#include "cli.h"

/* One verb per line, in "vstor help lv" order (clang-format would pack them). */
/* clang-format off */
static const struct cli_verb *const lv_verbs[] = {
	&cli_verb_lv_list,
	&cli_verb_lv_show,
	&cli_verb_lv_create,
	&cli_verb_lv_resize,
	&cli_verb_lv_snapshot,
	&cli_verb_lv_remove,
	NULL,
};
/* clang-format on */

const struct cli_group cli_group_lv = {
	.name = "lv",
	.summary =
		"List, create, resize, snapshot and remove LVM logical volumes",
	.verbs = lv_verbs,
};
