/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor part: partitions of a disk as block devices (as kpartx). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "../imgtools/part-map.h"
#include "cli.h"

/* One verb per line, in "vstor help part" order; then kpartx's own
 * flags as hidden aliases (no summary), so that "vstor part -av DISK"
 * does what "kpartx -av DISK" does. */
/* clang-format off */
static const struct cli_verb *const part_verbs[] = {
	&cli_verb_part_list,
	&cli_verb_part_map,
	&cli_verb_part_unmap,
	&cli_verb_part_alias_l,
	&cli_verb_part_alias_a,
	&cli_verb_part_alias_d,
	&cli_verb_part_alias_lv,
	&cli_verb_part_alias_av,
	&cli_verb_part_alias_dv,
	NULL,
};
/* clang-format on */

const struct cli_group cli_group_part = {
	.name = "part",
	.summary = "List and map the partitions of a disk (as kpartx)",
	.verbs = part_verbs,
};

/* kpartx -v's lines for what map and unmap do, as they happen. */
void cli_part_report(const struct img_part_event *ev, void *opaque)
{
	(void)opaque;
	switch (ev->kind) {
	case IMG_PART_EV_SERVE_START:
		printf("add fuse export %s (pid %d)\n", ev->dev, (int)ev->pid);
		break;
	case IMG_PART_EV_ADD:
		printf("add map %s (%u:%u): 0 %" PRIu64 " %s %u:%u %" PRIu64
		       "%s%s\n",
		       ev->name, major(ev->devt), minor(ev->devt), ev->size,
		       ev->dm ? "linear" : "loop", major(ev->parent_devt),
		       minor(ev->parent_devt), ev->start, ev->dm ? "" : " as ",
		       ev->dm ? "" : ev->dev);
		break;
	case IMG_PART_EV_DEL:
		if (ev->dm)
			printf("del devmap : %s\n", ev->name);
		else
			printf("del loop : %s (%s)\n", ev->name, ev->dev);
		break;
	case IMG_PART_EV_LOOP_DEL:
		printf("loop deleted : %s\n", ev->dev);
		break;
	case IMG_PART_EV_SERVE_STOP:
		printf("del fuse export (pid %d)\n", (int)ev->pid);
		break;
	}
	fflush(stdout);
}

int cli_part_method(const char *verb, const char *arg, int *out)
{
	if (!strcmp(arg, "auto"))
		*out = IMG_PART_AUTO;
	else if (!strcmp(arg, "dm"))
		*out = IMG_PART_DM;
	else if (!strcmp(arg, "loop"))
		*out = IMG_PART_LOOP;
	else
		return cli_usage_error("part", verb,
				       "--method: '%s' is not one of auto, dm, "
				       "loop",
				       arg);
	return 0;
}
