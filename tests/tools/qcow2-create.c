/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-create: a helper for the integration tests (not a user command)
 * that calls qcow2_create directly, as `vstor img create -f qcow2` will:
 *
 *   qcow2-create PATH SIZE [OPTIONS]
 *
 * SIZE takes suffixes (64K); OPTIONS is qemu-img's -o text.  Errors are
 * printed as the vstor command prints them.  Exit status: 0, 1 when the
 * create failed, 2 on bad usage.
 */
#include <stdio.h>

#include "common/error.h"
#include "common/size.h"
#include "cow/qcow2-create.h"

int main(int argc, char **argv)
{
	struct vs_error *err = NULL;
	uint64_t size;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: qcow2-create PATH SIZE [OPTIONS]\n");
		return 2;
	}
	if (vs_parse_size(argv[2], &size, "image size", &err) < 0) {
		vs_error_report(err);
		return 2;
	}
	if (qcow2_create(argv[1], size, argc > 3 ? argv[3] : NULL, &err) < 0) {
		vs_error_report(err);
		return 1;
	}
	return 0;
}
