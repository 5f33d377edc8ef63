/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor lv list [--output=human|json] [VG] */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../common/size.h"
#include "../lvmglue/lvm.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor lv list [--output=human|json] [VG]\n"
	"\n"
	"List the logical volumes of the volume group VG, or of every\n"
	"volume group, as lvm's 'lvs' reports them.  LVM's hidden internal\n"
	"volumes (a thin pool's data and metadata) are left out.\n"
	"\n"
	"Options:\n"
	"      --output=FORMAT  human (default): a table with the columns\n"
	"                       VG, LV, SIZE, TYPE, POOL/ORIGIN, ACTIVE and\n"
	"                       PATH; json: an array with one object per LV\n"
	"  -h, --help           this help\n"
	"\n"
	"TYPE is linear (also striped), thin, thin-pool, snapshot (a\n"
	"classic copy-on-write snapshot) or other (mirror, RAID, cache).\n"
	"POOL/ORIGIN shows a thin LV's pool and, after '<', the origin of a\n"
	"snapshot.  ACTIVE is 'open' when the LV's device is in use (by a\n"
	"domain, a mount, device-mapper or another process), 'yes' when it\n"
	"is active and 'no' when it is not.\n"
	"\n"
	"JSON fields of each object, always all of them:\n"
	"  vg, name      the VG and the LV\n"
	"  path          /dev/VG/LV\n"
	"  dm-path       /dev/mapper/VG-LV (each '-' of a name doubled)\n"
	"  uuid, attr    LVM's lv_uuid and lv_attr\n"
	"  size          the size in bytes\n"
	"  type          as TYPE above\n"
	"  pool, origin  a thin LV's pool and a snapshot's origin, or null\n"
	"  active, open, thin, thin-pool, snapshot\n"
	"                true or false\n"
	"\n"
	"Exit status: 0 listed (also when there are no LVs), 1 error (no\n"
	"such VG, lvm failed or is missing).\n"
	"\n"
	"Examples:\n"
	"  vstor lv list\n"
	"  vstor lv list --output=json vg0\n";

static void pool_origin(const struct lvm_lv *lv, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", lv->pool ? lv->pool : "",
		 lv->origin ? "<" : "", lv->origin ? lv->origin : "");
	if (!*buf)
		snprintf(buf, len, "-");
}

static const char *active_word(const struct lvm_lv *lv)
{
	return lv->open ? "open" : lv->active ? "yes" : "no";
}

#define NCOL 7

static void print_table(const struct lvm_lv *lvs, size_t n)
{
	static const char *const head[NCOL] = {
		"VG", "LV", "SIZE", "TYPE", "POOL/ORIGIN", "ACTIVE", "PATH"};
	int width[NCOL];
	char size[32], po[300];

	for (int c = 0; c < NCOL; c++)
		width[c] = (int)strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		vs_format_size(lvs[i].size, size, sizeof(size));
		pool_origin(&lvs[i], po, sizeof(po));
		const char *cell[NCOL] = {lvs[i].vg,  lvs[i].name,
					  size,	      lvm_lv_type(&lvs[i]),
					  po,	      active_word(&lvs[i]),
					  lvs[i].path};
		for (int c = 0; c < NCOL; c++)
			if ((int)strlen(cell[c]) > width[c])
				width[c] = (int)strlen(cell[c]);
	}
	for (int c = 0; c < NCOL - 1; c++)
		printf("%-*s  ", width[c], head[c]);
	printf("%s\n", head[NCOL - 1]);
	for (size_t i = 0; i < n; i++) {
		vs_format_size(lvs[i].size, size, sizeof(size));
		pool_origin(&lvs[i], po, sizeof(po));
		/* SIZE is right-aligned so that the units line up. */
		printf("%-*s  %-*s  %*s  %-*s  %-*s  %-*s  %s\n", width[0],
		       lvs[i].vg, width[1], lvs[i].name, width[2], size,
		       width[3], lvm_lv_type(&lvs[i]), width[4], po, width[5],
		       active_word(&lvs[i]), lvs[i].path);
	}
}

static int print_json(const struct lvm_lv *lvs, size_t n)
{
	struct json_object *all = json_object_new_array();

	for (size_t i = 0; all && i < n; i++) {
		struct json_object *o = lvm_lv_to_json(&lvs[i]);

		if (!o || json_object_array_add(all, o)) {
			json_object_put(o);
			json_object_put(all);
			all = NULL;
		}
	}
	if (!all) {
		fputs("vstor: out of memory\n", stderr);
		return 1;
	}
	cli_print_json(all);
	return 0;
}

static int lv_list_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct vs_error *err = NULL;
	struct lvm_lv *lvs = NULL;
	const char *vg = NULL;
	int json = 0, c, ret;
	size_t n = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			json = cli_parse_output("lv", "list", optarg);
			if (json < 0)
				return 1;
			break;
		default: fputs("Try 'vstor help lv list'.\n", stderr); return 1;
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("lv", "list",
				       "lv list: at most one VG, got %d "
				       "arguments",
				       argc - optind);
	if (optind < argc)
		vg = argv[optind];
	if (lvm_lv_list(vg, &lvs, &n, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	if (json)
		ret = print_json(lvs, n);
	else
		print_table(lvs, n), ret = 0;
	lvm_lv_free_array(lvs, n);
	return ret;
}

const struct cli_verb cli_verb_lv_list = {
	.name = "list",
	.summary = "list logical volumes (table or JSON)",
	.usage = usage,
	.run = lv_list_run,
};
