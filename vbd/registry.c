/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The list of disk format drivers: the one place a new format is added.
 * Order matters only for probing ties: earlier wins.
 */
#include <string.h>

#include "driver.h"

extern const struct vbd_driver vbd_driver_raw;
extern const struct vbd_driver vbd_driver_qcow2;
extern const struct vbd_driver vbd_driver_vmdk;
extern const struct vbd_driver vbd_driver_vpc;
extern const struct vbd_driver vbd_driver_vdi;
extern const struct vbd_driver vbd_driver_crash;

static const struct vbd_driver *const drivers[] = {
	&vbd_driver_raw,
	&vbd_driver_qcow2,
	&vbd_driver_vmdk,
	&vbd_driver_vpc,
	&vbd_driver_vdi,
	&vbd_driver_crash, /* fault injection for tests (vbd/crash.h) */
	NULL,
};

const struct vbd_driver *const *vbd_drivers(void)
{
	return drivers;
}

/*
 * Other names for a driver: xl's disk specs say "vhd" where qemu-img says
 * "vpc"; both are accepted, and the driver reports qemu-img's name.
 */
static const struct {
	const char *alias, *name;
} aliases[] = {
	{"vhd", "vpc"},
};

const struct vbd_driver *vbd_driver_find(const char *name)
{
	for (int i = 0; drivers[i]; i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcmp(aliases[i].alias, name))
			return vbd_driver_find(aliases[i].name);
	return NULL;
}

const char *const *vbd_driver_names(void)
{
	static const char *names[sizeof(drivers) / sizeof(drivers[0])];

	for (int i = 0; drivers[i]; i++)
		names[i] = drivers[i]->name;
	return names;
}
