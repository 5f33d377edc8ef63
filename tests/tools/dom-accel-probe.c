/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dom-accel-probe: a helper for tests/integration/dom-accel.t (not a user
 * command).  Runs dom_accel_probe (hypervisor/accel.h) and prints
 * "kvm" (exit 0) when KVM can run a guest, or "tcg: REASON" (exit 1) when
 * it cannot; exit 2 when the probe itself failed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"
#include "hypervisor/accel.h"

int main(void)
{
	struct vs_error *err = NULL;
	char *why = NULL;
	int r = dom_accel_probe(&why, &err);

	if (r < 0) {
		fprintf(stderr, "dom-accel-probe: %s\n", vs_error_msg(err));
		vs_error_free(err);
		return 2;
	}
	if (r == 1)
		printf("kvm\n");
	else
		printf("tcg: %s\n", why ? why : "(no reason given)");
	free(why);
	return r == 1 ? 0 : 1;
}
