#!/bin/bash
# A vif's tap (hypervisor/tap.c): dom_tap_open makes a tap with a virtio
# header, puts it on a Linux bridge and sets it up; the descriptor is
# what QEMU gets as -netdev tap,fd=N; the tap goes away with its last
# descriptor.  Frames flow: a "guest" behind the tap gets an ARP reply
# from the bridge's address.  Mistakes (no such bridge, not a bridge, a
# bad MAC or name) fail with a clear message and leave no tap behind.
#
# Each step runs in a network namespace of its own (unshare --net, with
# a private /sys so that sysfs shows that namespace), holding a bridge
# br0 made there; the namespace and everything in it vanish when the
# step ends.
# shellcheck disable=SC2016 # single-quoted scripts run in another shell
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

TAP=$TOOLS/dom-tap
requires unshare ip bridge qemu-system-x86_64 "$TAP"
[ "$(id -u)" -eq 0 ] || skip_all "needs root for network namespaces"

plan 22

# in_ns SCRIPT: run SCRIPT (sh) in a fresh network namespace holding an
# up bridge br0 with address 10.99.0.1/24; $TAP is the helper.
in_ns() {
	TAP=$TAP timeout -k 5 60 unshare --net --mount sh -ec '
		mount -t sysfs sysfs /sys
		ip link set lo up
		ip link add br0 type bridge
		ip addr add 10.99.0.1/24 dev br0
		ip link set br0 up
		'"$1"
}

# The tap on the bridge, as seen while the command holding it runs.
run in_ns '$TAP --name vif7.0 br0 -- sh -c "
	echo name=\$DOM_TAP_IFNAME
	echo fd3=\$(readlink /proc/self/fd/3)
	echo brif=\$(ls /sys/class/net/br0/brif)
	ip -d link show vif7.0
	bridge link show dev vif7.0"
echo after=$(ip -o link show | grep -c vif7.0 || true)'
is "$rc" 0 "a tap on br0 for a command"
like "$out" $'(^|\n)name=vif7\\.0\n' "the tap has the name asked for"
like "$out" $'\nfd3=/dev/net/tun\n' "the command gets the tap as fd 3"
like "$out" $'\nbrif=vif7\\.0\n' "the tap is the bridge's port (sysfs brif)"
like "$out" 'master br0 state forwarding' "bridge link shows it on br0, forwarding"
like "$out" 'tun type tap pi off vnet_hdr on' "a tap without packet info, with a virtio header"
like "$out" '<[A-Z_,]*,UP[,>]' "the tap is up"
like "$out" $'\nafter=0$' "the tap is gone once its descriptor is closed"

# A MAC address for the host side; a name the kernel numbers.
run in_ns '$TAP --mac fe:ff:ff:ff:ff:ff --name "vif%d" br0 -- sh -c "
	ip -o link show \$DOM_TAP_IFNAME"'
like "$out" '^[0-9]+: vif[0-9]+: .*master br0.*link/ether fe:ff:ff:ff:ff:ff' \
	"the MAC is set and the kernel numbered vif%d"
run in_ns '$TAP br0 -- sh -c "echo \$DOM_TAP_IFNAME"'
like "$rc:$out" '^0:tap[0-9]+$' "no name: the kernel picks tapN"

# Two vifs on one bridge (the first tap moves to fd 4 to stay open).
run in_ns '$TAP --name a0 br0 -- sh -c "exec 4<&3 && exec \$TAP --name b0 br0 -- \
	ls /sys/class/net/br0/brif"'
is "${out//$'\n'/ }" "a0 b0" "two taps on one bridge"

# Frames go through: a guest behind the tap asks who has the bridge's
# address and gets the answer.
run in_ns '$TAP --arp br0 10.99.0.1 10.99.0.2
	ip -o link show | grep -c tap || true'
like "$rc:$out" $'^0:10\\.99\\.0\\.1 is at ([0-9a-f]{2}:){5}[0-9a-f]{2}\n0$' \
	"an ARP request through the tap is answered by the bridge's host"

# QEMU takes the descriptor as its tap.
run in_ns 'printf "info network\nquit\n" |
	$TAP --name vif9.0 br0 -- qemu-system-x86_64 -M none -nodefaults \
		-no-user-config -display none \
		-netdev tap,id=net0,fd=3,vhost=off -monitor stdio 2>&1'
like "$out" 'net0: index=0,type=tap,fd=3' "QEMU runs a tap netdev on fd 3"

# Errors: one message each, nothing left behind.
count='; echo; echo links=$(ip -o link show | grep -vc -e ": lo:" -e ": br0:")'
run in_ns '$TAP --name vif1.0 nosuchbr -- true 2>&1 || true'"$count"
like "$out" "bridge 'nosuchbr' does not exist" "a missing bridge is named"
like "$out" $'\nlinks=0$' "and no tap is left"
run in_ns '$TAP --name vif1.0 lo -- true 2>&1 || true'"$count"
like "$out" "'lo' is not a bridge" "a device that is not a bridge is refused"
like "$out" $'\nlinks=0$' "and no tap is left"
run in_ns '$TAP --mac 00:16:3e:zz:00:01 br0 -- true'
like "$rc:$out$err" "^1:.*MAC address '00:16:3e:zz:00:01' is not xx:xx:xx:xx:xx:xx" \
	"a malformed MAC is refused"
run in_ns '$TAP --mac 01:00:5e:00:00:01 br0 -- true'
like "$rc:$err" "^1:.*'01:00:5e:00:00:01' is a multicast address" "a multicast MAC is refused"
run in_ns '$TAP --name averyveryverylongname br0 -- true'
like "$rc:$err" "^1:.*must be 1 to 15 bytes" "a name longer than IFNAMSIZ is refused"
run in_ns '$TAP --name "a/b" br0 -- true'
like "$rc:$err" "^1:.*tap name 'a/b': character 2 is not allowed" "a name with a slash is refused"
run in_ns '$TAP --name br0 br0 -- true'
like "$rc:$err" "^1:.*tap br0: a network device of that name is in use" \
	"a name taken by another device is refused"
