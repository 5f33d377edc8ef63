/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A vif's tap device on a Linux bridge. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/log.h"
#include "tap.h"

int dom_tap_parse_mac(const char *text, unsigned char out[6])
{
	unsigned char mac[6];

	if (!text || strlen(text) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = text + i * 3;
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = p[j];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return -EINVAL;
			v = v * 16 + d;
		}
		if (i < 5 && p[2] != ':')
			return -EINVAL;
		mac[i] = (unsigned char)v;
	}
	if (out)
		memcpy(out, mac, 6);
	return 0;
}

/*
 * A name the kernel will take as it is: 1 to IFNAMSIZ-1 bytes, printable,
 * no '/' or blank (dev_valid_name's rules), and at most one "%d", which the
 * kernel replaces with the first free number ("vif%d").
 */
static int check_name(const char *name, struct vs_error **err)
{
	size_t len = strlen(name);
	const char *pct;

	if (len == 0 || len >= IFNAMSIZ)
		return vs_error_set(err, EINVAL,
				    "tap name '%s': must be 1 to %d bytes long",
				    name, IFNAMSIZ - 1);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return vs_error_set(err, EINVAL, "tap name '%s' is not allowed",
				    name);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':')
			return vs_error_set(
				err, EINVAL,
				"tap name '%s': character %zu is not allowed",
				name, i + 1);
	}
	pct = strchr(name, '%');
	if (pct && (pct[1] != 'd' || strchr(pct + 1, '%')))
		return vs_error_set(
			err, EINVAL,
			"tap name '%s': '%%' may only appear once, as \"%%d\"",
			name);
	return 0;
}

static int bridge_error(int e, const char *bridge, const char *tap,
			struct vs_error **err)
{
	if (e == ENODEV)
		return vs_error_set(
			err, ENODEV,
			"bridge '%s' does not exist (create it first: "
			"ip link add %s type bridge)",
			bridge, bridge);
	if (e == EOPNOTSUPP || e == EINVAL || e == ENOTTY)
		return vs_error_set(err, ENOTTY, "'%s' is not a bridge",
				    bridge);
	if (e == EBUSY)
		return vs_error_set(
			err, EBUSY,
			"tap %s is already a port of another bridge", tap);
	return vs_error_set_errno(err, e, "adding tap %s to bridge '%s'", tap,
				  bridge);
}

/* The index of a network device, 0 with errno if it has none. */
static int ifindex(int sock, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0)
		return 0;
	return ifr.ifr_ifindex;
}

int dom_tap_open(const char *ifname, const char *bridge, const char *mac,
		 int *fd_out, char **ifname_out, struct vs_error **err)
{
	unsigned char hw[6];
	struct ifreq ifr;
	int fd, sock, r;
	char name[IFNAMSIZ];

	*fd_out = -1;
	if (ifname_out)
		*ifname_out = NULL;
	if (!bridge || !*bridge)
		return vs_error_set(err, EINVAL, "a tap needs a bridge");
	if (strlen(bridge) >= IFNAMSIZ)
		return vs_error_set(err, ENODEV,
				    "bridge '%s' does not exist (names are at "
				    "most %d bytes)",
				    bridge, IFNAMSIZ - 1);
	if (ifname && (r = check_name(ifname, err)) < 0)
		return r;
	if (mac && dom_tap_parse_mac(mac, hw) < 0)
		return vs_error_set(
			err, EINVAL,
			"tap MAC address '%s' is not xx:xx:xx:xx:xx:xx", mac);
	if (mac && (hw[0] & 1))
		return vs_error_set(
			err, EINVAL,
			"tap MAC address '%s' is a multicast address", mac);
	/* Any socket reaches the device ioctls; AF_UNIX needs no IP stack. */
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return vs_error_set_errno(err, errno, "tap: socket");
	/* Checked before the tap exists, so that a typo leaves nothing. */
	if (!ifindex(sock, bridge)) {
		r = bridge_error(errno == ENXIO ? ENODEV : errno, bridge, "",
				 err);
		close(sock);
		return r;
	}

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = vs_error_set_errno(err, errno, "/dev/net/tun");
		close(sock);
		return r;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ifname)
		memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = errno;
		close(fd);
		close(sock);
		if (r == EBUSY || r == EINVAL)
			/* A device of that name exists and is not a free tap. */
			return vs_error_set(err, EEXIST,
					    "tap %s: a network device of that "
					    "name is in use",
					    ifname ? ifname : "");
		if (r == EPERM)
			return vs_error_set(
				err, EPERM,
				"creating a tap needs CAP_NET_ADMIN");
		return vs_error_set_errno(err, r, "creating tap %s",
					  ifname ? ifname : "");
	}
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';

	if (mac) {
		memset(&ifr, 0, sizeof(ifr));
		memcpy(ifr.ifr_name, name, IFNAMSIZ);
		ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(ifr.ifr_hwaddr.sa_data, hw, 6);
		if (ioctl(sock, SIOCSIFHWADDR, &ifr) < 0) {
			r = vs_error_set_errno(err, errno,
					       "tap %s: setting MAC address %s",
					       name, mac);
			goto fail;
		}
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, bridge, strlen(bridge) + 1);
	ifr.ifr_ifindex = ifindex(sock, name);
	if (!ifr.ifr_ifindex) {
		r = vs_error_set_errno(err, errno, "tap %s vanished", name);
		goto fail;
	}
	if (ioctl(sock, SIOCBRADDIF, &ifr) < 0) {
		r = bridge_error(errno, bridge, name, err);
		goto fail;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, IFNAMSIZ);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
		r = vs_error_set_errno(err, errno, "tap %s: reading its flags",
				       name);
		goto fail;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
		r = vs_error_set_errno(err, errno, "tap %s: setting it up",
				       name);
		goto fail;
	}
	close(sock);
	if (ifname_out && !(*ifname_out = strdup(name))) {
		close(fd);
		return vs_error_set(err, ENOMEM, "tap %s: out of memory", name);
	}
	vs_debug("tap", "%s on bridge %s", name, bridge);
	*fd_out = fd;
	return 0;

fail:
	close(sock);
	/* The tap is not persistent: closing its only descriptor removes it
	 * and takes it off the bridge. */
	close(fd);
	return r;
}
