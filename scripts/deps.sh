#!/bin/sh
# Install the Debian packages that building and testing vstor need.
# Quiet and quick when everything is present; as root it runs one
# `apt-get update` and one `apt-get install`; otherwise it prints the
# command to run.
set -e

# build: compiler, libraries; test: cmocka, prove (perl), peers (qemu-img,
# qemu-nbd, qemu-storage-daemon, nbdinfo/nbdcopy, fio); the test VM: QEMU
# and busybox (tests/vm/); lvm2, dmsetup, kpartx, thin_* for the guest,
# which runs the host's /usr.
PKGS="gcc make pkg-config libc6-dev clang clang-format strace
libzstd-dev libxxhash-dev zlib1g-dev liburing-dev libaio-dev libblkid-dev libjson-c-dev
libdevmapper-dev
libcmocka-dev libclang-rt-14-dev perl python3 qemu-utils fio util-linux xxd
fdisk
libfuse3-dev fuse3 libnbd-bin qemu-system-x86 qemu-system-common
busybox-static lvm2 dmsetup kpartx thin-provisioning-tools e2fsprogs zstd
iproute2"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "vstor: missing Debian packages:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "vstor: run as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
