/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor part list [-f FMT] [-p DELIM] [--output=human|json] DISK
 * (and kpartx's spelling: vstor part -l DISK) */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "../common/log.h"
#include "../imgtools/part-map.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor part list [-f FMT] [-p DELIM] [--output=human|json] "
	"DISK\n"
	"       vstor part -l [-f FMT] [-p DELIM] DISK\n"
	"\n"
	"List the partitions of DISK as 'kpartx -l' does: one line per\n"
	"partition that 'vstor part map' would map, with the name it would\n"
	"get and its device-mapper table:\n"
	"\n"
	"  loop0p1 : 0 204800 /dev/loop0 2048\n"
	"  NAME      0 SECTORS DEVICE START\n"
	"\n"
	"DISK is a block device or an image file of any format vstor reads\n"
	"(raw, qcow2, vmdk, vhd, vdi).  An image file is read through a loop\n"
	"device, attached for the listing and detached again (as kpartx\n"
	"does), which gives the names; where none can be attached (not\n"
	"root), the names come from the file's name.  An image of a format\n"
	"other than raw is exported read-only through 'vstor serve --fuse'\n"
	"for the listing (root).  Sizes and starts are in 512-byte sectors.\n"
	"\n"
	"Tables are read with libblkid: MBR (DOS) with extended and logical\n"
	"partitions, and GPT.  Numbers are kpartx's: MBR slots keep 1-4,\n"
	"logical partitions count from 5, GPT entries keep their index.  An\n"
	"extended partition is listed with kpartx's size of 2 sectors (room\n"
	"for a boot loader).  Unlike kpartx -l, a logical partition is shown\n"
	"as it is mapped, on the disk at its absolute start (kpartx -l shows\n"
	"it relative to the extended partition's future /dev/dm-N).\n"
	"\n"
	"A partition that lies past the end of the disk, or a logical one\n"
	"outside its extended partition, is listed with a warning: 'map'\n"
	"refuses such a table.\n"
	"\n"
	"Options:\n"
	"  -f, --format=FMT     DISK's format; default: probe an image file,\n"
	"                       raw for a block device.  Give -f raw for a\n"
	"                       guest's disk image: a guest may write what\n"
	"                       looks like another format's header.\n"
	"  -p, --delimiter=DELIM  between the disk's name and the number;\n"
	"                       default 'p' after a name ending in a digit\n"
	"                       (loop0p1), nothing otherwise (sdb1)\n"
	"      --output=FORMAT  human (default) or json: the table's type and\n"
	"                       id, and each partition's number, name, kind\n"
	"                       (primary, extended, logical), start, size,\n"
	"                       map size, type, uuid, label and problem\n"
	"  -v                   accepted for kpartx's sake; no effect\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 the table was listed (or DISK has none: no lines);\n"
	"1 an error (a table type other than MBR or GPT, an unreadable disk,\n"
	"a protective MBR without a valid GPT); 2 the table was listed but\n"
	"some partition cannot be mapped (one warning each on stderr).\n"
	"\n"
	"Examples:\n"
	"  vstor part list /srv/web1.img\n"
	"  vstor part list --output=json /srv/web1.qcow2\n"
	"  vstor part -l /dev/vg0/web1-disk\n";

enum {
	OPT_OUTPUT = 256,
};

static const char *kind_name(enum img_part_kind k)
{
	switch (k) {
	case IMG_PART_EXTENDED: return "extended";
	case IMG_PART_LOGICAL: return "logical";
	default: return "primary";
	}
}

static struct json_object *part_json(const struct img_part_listing *l,
				     const struct img_part *p, const char *name)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "number", json_object_new_int(p->number));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "kind",
			       json_object_new_string(kind_name(p->kind)));
	json_object_object_add(o, "start",
			       json_object_new_int64((int64_t)p->start));
	json_object_object_add(o, "size",
			       json_object_new_int64((int64_t)p->size));
	json_object_object_add(o, "map-size",
			       json_object_new_int64((int64_t)p->map_size));
	json_object_object_add(o, "type", json_object_new_string(p->type));
	if (p->uuid[0])
		json_object_object_add(o, "uuid",
				       json_object_new_string(p->uuid));
	if (p->label[0])
		json_object_object_add(o, "label",
				       json_object_new_string(p->label));
	if (p->problem[0])
		json_object_object_add(o, "problem",
				       json_object_new_string(p->problem));
	(void)l;
	return o;
}

static void print_json(const char *disk, const struct img_part_listing *l)
{
	struct json_object *o = json_object_new_object();
	struct json_object *parts = json_object_new_array();
	const struct img_part_table *t = l->table;

	json_object_object_add(o, "disk", json_object_new_string(disk));
	json_object_object_add(o, "format", json_object_new_string(l->format));
	json_object_object_add(o, "device", json_object_new_string(l->device));
	json_object_object_add(o, "table",
			       t->type[0] ? json_object_new_string(t->type)
					  : NULL);
	if (t->id[0])
		json_object_object_add(o, "id", json_object_new_string(t->id));
	json_object_object_add(o, "sectors",
			       json_object_new_int64((int64_t)t->disk_sectors));
	json_object_object_add(o, "sector-size",
			       json_object_new_int((int)t->sector_size));
	for (size_t i = 0; i < t->n; i++) {
		char name[160];

		if (img_part_name(l->base, l->delim, t->parts[i].number, name,
				  sizeof(name)) < 0)
			name[0] = '\0';
		json_object_array_add(parts, part_json(l, &t->parts[i], name));
	}
	json_object_object_add(o, "partitions", parts);
	if (t->dropped)
		json_object_object_add(
			o, "dropped-entries",
			json_object_new_int64((int64_t)t->dropped));
	cli_print_json(o);
}

static void print_human(const struct img_part_listing *l)
{
	const struct img_part_table *t = l->table;

	for (size_t i = 0; i < t->n; i++) {
		const struct img_part *p = &t->parts[i];
		char name[160];

		if (img_part_name(l->base, l->delim, p->number, name,
				  sizeof(name)) < 0)
			continue;
		printf("%s : 0 %" PRIu64 " %s %" PRIu64 "\n", name, p->map_size,
		       l->device, p->start);
	}
}

static int warn_problems(const char *disk, const struct img_part_listing *l)
{
	const struct img_part_table *t = l->table;

	if (t->nested)
		vs_warn("%s: %zu partitions of tables nested in a partition "
			"(BSD, Solaris, Minix slices) are not listed: not "
			"supported",
			disk, t->nested);
	if (t->dropped)
		vs_warn("%s: %zu GPT entries lie outside the disk's usable "
			"area and are not listed; map refuses this table",
			disk, t->dropped);
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].problem[0])
			vs_warn("%s: partition %u: %s; map refuses this table",
				disk, t->parts[i].number, t->parts[i].problem);
	return img_part_table_problems(t) ? 2 : 0;
}

static int run(int argc, char **argv, const char *verb)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"delimiter", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, OPT_OUTPUT},
		{NULL, 0, NULL, 0},
	};
	struct img_part_opts o = {0};
	struct img_part_listing *l = NULL;
	struct vs_error *err = NULL;
	int c, json = 0, status;

	while ((c = getopt_long(argc, argv, "f:p:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'p': o.delim = optarg; break;
		case 'v': break;
		case OPT_OUTPUT:
			json = cli_parse_output("part", verb, optarg);
			if (json < 0)
				return 1;
			break;
		default:
			fprintf(stderr, "Try 'vstor help part %s'.\n", verb);
			return 1;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("part", verb,
				       "part list: exactly one DISK expected");
	if (img_part_list(argv[optind], &o, &l, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (json)
		print_json(argv[optind], l);
	else
		print_human(l);
	fflush(stdout);
	status = warn_problems(argv[optind], l);
	img_part_listing_free(l);
	return status;
}

static int part_list_run(int argc, char **argv)
{
	return run(argc, argv, "list");
}

const struct cli_verb cli_verb_part_list = {
	.name = "list",
	.summary = "list the partitions a map would make (kpartx -l)",
	.usage = usage,
	.run = part_list_run,
};

const struct cli_verb cli_verb_part_alias_l = {
	.name = "-l",
	.usage = usage,
	.run = part_list_run,
};

const struct cli_verb cli_verb_part_alias_lv = {
	.name = "-lv",
	.usage = usage,
	.run = part_list_run,
};
