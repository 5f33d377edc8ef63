/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * MAC addresses of domain NICs.  A vif written without mac= gets one in
 * Xen's 00:16:3e range, as xl does, but derived from the domain's name
 * and the vif's position rather than drawn at random: the guest then
 * sees the same NIC every time the domain is created (a DHCP lease or a
 * udev rule keyed on the MAC keeps working), and a clone, which gets a
 * new name, gets new MACs without anyone writing them down.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* FNV-1a: small, and good enough to spread names over 23 bits once its
 * result is mixed by the finalizer below. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* splitmix64's finalizer: every input bit moves every output bit. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

void dom_mac_generate(const char *name, size_t index, char buf[18])
{
	static const char tag[] = "vstor-vif";
	char idx[32];
	uint64_t h = 0xcbf29ce484222325ULL;

	/* The tag and the NUL after the name keep ("ab", 1) and ("a", "b1")
	 * apart. */
	h = fnv1a(h, tag, sizeof(tag));
	h = fnv1a(h, name, strlen(name) + 1);
	snprintf(idx, sizeof(idx), "%zu", index);
	h = mix(fnv1a(h, idx, strlen(idx)));
	/* The lower half of 00:16:3e:xx:xx:xx (top bit of the fourth byte
	 * clear), the half xl draws its random MACs from. */
	snprintf(buf, 18, "00:16:3e:%02x:%02x:%02x", (unsigned)(h >> 16) & 0x7f,
		 (unsigned)(h >> 8) & 0xff, (unsigned)h & 0xff);
}

int dom_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dom_mac_parse(const char *text, char buf[18], struct vs_error **err)
{
	unsigned char b[6];
	char sep = 0;

	if (strlen(text) != 17)
		goto bad;
	for (int i = 0; i < 6; i++) {
		const char *p = text + i * 3;
		int hi = dom_hex_digit(p[0]), lo = dom_hex_digit(p[1]);

		if (hi < 0 || lo < 0)
			goto bad;
		b[i] = (unsigned char)(hi * 16 + lo);
		if (i == 5)
			break;
		if (!sep && (p[2] == ':' || p[2] == '-'))
			sep = p[2];
		if (p[2] != sep)
			goto bad;
	}
	if (b[0] & 1)
		return vs_error_set(err, EINVAL,
				    "'%s' is a multicast MAC address (a NIC "
				    "needs a unicast one: the first byte "
				    "even)",
				    text);
	if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
		return vs_error_set(err, EINVAL,
				    "'%s' is the all-zero MAC address", text);
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5]);
	return 0;
bad:
	return vs_error_set(err, EINVAL,
			    "'%.40s' is not a MAC address (six hex bytes "
			    "separated by ':', as 00:16:3e:12:34:56)",
			    text);
}
