/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The network side of a vif: a tap device on a Linux bridge, whose file
 * descriptor QEMU inherits (-netdev tap,fd=N).
 *
 * The tap is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (virtio-net's
 * header, so offloads work), added to the bridge with SIOCBRADDIF and set
 * up.  It lives as long as a descriptor on it is open: when QEMU exits,
 * the kernel removes it and it leaves the bridge.  The fd we return is
 * close-on-exec; the caller clears that on the copy it hands to QEMU.
 */
#ifndef VS_HYPERVISOR_TAP_H
#define VS_HYPERVISOR_TAP_H

struct vs_error;

/*
 * Create a tap named ifname (at most IFNAMSIZ-1 = 15 bytes; NULL lets the
 * kernel pick "tapN"), optionally set its MAC address to mac
 * ("xx:xx:xx:xx:xx:xx"; NULL keeps the kernel's random one; note that the
 * guest's MAC goes to QEMU's virtio-net device, so this is the host-side
 * address, usually left NULL or made distinct from the guest's, e.g.
 * fe:ff:ff:ff:ff:ff as Xen does), add it to `bridge` (which must exist and
 * be a bridge: -ENODEV or -ENOTTY with a clear message otherwise) and
 * bring it up.  On success *fd_out owns the tap and *ifname_out (if
 * non-NULL) gets its name, malloc'd.  On failure nothing is left behind.
 * Needs CAP_NET_ADMIN.
 */
int dom_tap_open(const char *ifname, const char *bridge, const char *mac,
		 int *fd_out, char **ifname_out, struct vs_error **err);

/* Check a MAC address text "xx:xx:xx:xx:xx:xx" (hex, either case) and
 * store its bytes in out[6] (may be NULL).  0 or -EINVAL. */
int dom_tap_parse_mac(const char *text, unsigned char out[6]);

#endif
