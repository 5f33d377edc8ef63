/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dom-tap: a helper for tests/integration/dom-tap.t (not a user command).
 * Opens a tap on a bridge with dom_tap_open (hypervisor/tap.h), then:
 *
 *   dom-tap [--name NAME] [--mac MAC] BRIDGE -- CMD [ARG...]
 *       runs CMD with the tap's descriptor as fd 3 (as QEMU gets it for
 *       -netdev tap,fd=3) and its name in $DOM_TAP_IFNAME; the tap lives
 *       as long as CMD
 *   dom-tap [--name NAME] [--mac MAC] --arp BRIDGE TARGET-IP SOURCE-IP
 *       plays a guest behind the tap: sends an ARP request for TARGET-IP
 *       from SOURCE-IP and waits up to 10 s for the reply; prints
 *       "TARGET-IP is at MAC", exit 0, or exit 1 without a reply
 *
 * Errors from dom_tap_open are printed as "dom-tap: MESSAGE", exit 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "hypervisor/tap.h"

/* The guest's side of the link (QEMU's virtio-net would have this MAC). */
static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* With IFF_VNET_HDR each frame starts with a struct virtio_net_hdr. */
#define VNET_HDR_LEN 10

static int arp(int fd, const char *target, const char *source)
{
	uint8_t frame[VNET_HDR_LEN + 60], buf[VNET_HDR_LEN + 2048];
	struct in_addr tip, sip;
	uint8_t *eth = frame + VNET_HDR_LEN, *a = eth + 14;
	struct timespec t0, t1;

	if (inet_pton(AF_INET, target, &tip) != 1 ||
	    inet_pton(AF_INET, source, &sip) != 1) {
		fprintf(stderr, "dom-tap: bad IPv4 address\n");
		return 1;
	}
	memset(frame, 0, sizeof(frame));
	memset(eth, 0xff, 6);
	memcpy(eth + 6, guest_mac, 6);
	eth[12] = 0x08, eth[13] = 0x06; /* ARP */
	a[0] = 0, a[1] = 1, a[2] = 0x08, a[3] = 0, a[4] = 6,
	a[5] = 4;	    /* Ethernet/IPv4 */
	a[6] = 0, a[7] = 1; /* request */
	memcpy(a + 8, guest_mac, 6);
	memcpy(a + 14, &sip, 4);
	memcpy(a + 24, &tip, 4);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int tries = 0; tries < 10; tries++) {
		if (write(fd, frame, sizeof(frame)) != (ssize_t)sizeof(frame)) {
			perror("dom-tap: write");
			return 1;
		}
		for (;;) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			int r = poll(&pfd, 1, 1000);
			ssize_t n;

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n = read(fd, buf, sizeof(buf));
			if (n < VNET_HDR_LEN + 14 + 28)
				continue;
			const uint8_t *re = buf + VNET_HDR_LEN, *ra = re + 14;
			if (re[12] != 0x08 || re[13] != 0x06 || ra[7] != 2 ||
			    memcmp(ra + 14, &tip, 4) ||
			    memcmp(re, guest_mac, 6))
				continue;
			printf("%s is at %02x:%02x:%02x:%02x:%02x:%02x\n",
			       target, ra[8], ra[9], ra[10], ra[11], ra[12],
			       ra[13]);
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= 10)
			break;
	}
	fprintf(stderr, "dom-tap: no ARP reply for %s\n", target);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"mac", required_argument, NULL, 'm'},
		{"arp", no_argument, NULL, 'a'},
		{0},
	};
	const char *name = NULL, *mac = NULL;
	struct vs_error *err = NULL;
	char *ifname = NULL;
	int c, fd, do_arp = 0;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'm': mac = optarg; break;
		case 'a': do_arp = 1; break;
		default: return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: dom-tap [--name N] [--mac M] BRIDGE -- "
				"CMD... | "
				"--arp BRIDGE TARGET SOURCE\n");
		return 2;
	}
	const char *bridge = argv[optind++];
	if (!do_arp && optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (do_arp ? argc - optind != 2 : (optind >= argc)) {
		fprintf(stderr, "dom-tap: wrong arguments\n");
		return 2;
	}
	if (dom_tap_open(name, bridge, mac, &fd, &ifname, &err) < 0) {
		fprintf(stderr, "dom-tap: %s\n", vs_error_msg(err));
		vs_error_free(err);
		return 1;
	}
	if (do_arp)
		return arp(fd, argv[optind], argv[optind + 1]);

	/* fd 3 without close-on-exec, as the engine hands it to QEMU. */
	if (fd != 3) {
		if (dup2(fd, 3) < 0) {
			perror("dom-tap: dup2");
			return 1;
		}
		close(fd);
	}
	setenv("DOM_TAP_IFNAME", ifname, 1);
	free(ifname);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "dom-tap: %s: %s\n", argv[optind], strerror(errno));
	return 127;
}
