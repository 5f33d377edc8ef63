#!/bin/bash
# The test VM itself (tests/vm/, tests/lib/vm.sh).
#
# It boots under TCG, runs the test script, and the script's exit status
# comes back: 0, and 7 from a script that also prints a forged exit
# marker (the per-boot token must keep it from counting).  A guest that
# never reports (a script that hangs) ends in a timeout with status 255.
# In the guest: the modules that later tests need are loaded; a
# virtio-blk disk given by QEMU has the right size, reads what the host
# wrote and its writes reach the image; the host root is readable at
# /host and VM_SHARE is writable at /share; device-mapper, LVM (classic
# and thin volumes, a thin snapshot) work without udev; the kernel and
# kpartx see the partitions of a second disk; the host tools
# tests run in the guest are in reach.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

vm_requires

MODULES="virtio_blk loop dm_mod dm_snapshot dm_thin_pool ext4 9p overlay fuse"
TOOLS_IN_GUEST="mkfs.ext4 e2fsck debugfs fstrim blkdiscard sync python3 lvm
dmsetup kpartx losetup blkid thin_check sha256sum"
# shellcheck disable=SC2086 # a list
requires $TOOLS_IN_GUEST sfdisk

plan $((14 + $(wc -w <<<"$MODULES") + 4))

# A disk of an odd size (37 MiB + 3 sectors) with a pattern the guest
# must read at 1 MiB.
truncate -s $((37 * 1024 * 1024 + 3 * 512)) "$T/disk.img"
host_pat="host-pattern-$RANDOM$RANDOM"
printf '%s' "$host_pat" | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
guest_pat="guest-pattern-$RANDOM$RANDOM"
echo "a file on the host" >"$T/hostfile"
mkdir "$T/share"
# A second disk with two partitions: 4 MiB at 1 MiB, 8 MiB at 5 MiB.
truncate -s 16M "$T/parts.img"
printf 'start=2048, size=8192, type=83\nstart=10240, size=16384, type=83\n' |
	sfdisk -q "$T/parts.img" >&3 2>&1 || die "sfdisk failed"

cat >"$T/guest.sh" <<EOF
#!/bin/bash
set -u
echo "size \$(cat /sys/block/vda/size)"
while read -r m _; do echo "module \$m"; done </proc/modules
echo "read \$(dd if=/dev/vda bs=1M skip=1 count=1 status=none | head -c ${#host_pat})"
printf '%s' "$guest_pat" | dd of=/dev/vda bs=512 seek=4000 conv=notrunc,fsync status=none
echo "hostfile \$(cat /host$T/hostfile)"
echo "from the guest" >/share/guest-file
for t in $(tr "\n" " " <<<"$TOOLS_IN_GUEST"); do
	command -v \$t >/dev/null && echo "tool \$t"
done

# device-mapper without udev: /init sets DM_DISABLE_UDEV=1, so
# libdevmapper makes the /dev/mapper node itself.
dmsetup create vmz --table "0 2048 zero" &&
	echo "dm-size \$(blockdev --getsz /dev/mapper/vmz)" && dmsetup remove vmz

# LVM on a loop device over a tmpfs file.
truncate -s 64M /tmp/pv.img
lo=\$(losetup -f --show /tmp/pv.img) || exit 1
pvcreate -q \$lo && vgcreate -q vgt \$lo && lvcreate -q -L 8M -n lv0 vgt &&
	echo "lv-size \$(blockdev --getsz /dev/vgt/lv0)"
lvcreate -q -L 16M -T vgt/pool && lvcreate -q -V 32M -T vgt/pool -n thin1 &&
	lvcreate -q -s -n snap1 vgt/thin1 &&
	lvs --noheadings -o lv_name,pool_lv,origin vgt | awk '\$1 == "snap1" { print "thin-snap", \$2, \$3 }'
vgchange -q -an vgt >/dev/null && losetup -d \$lo && echo "lvm-down"

# Partitions of the second disk: the kernel's own parser, then kpartx.
echo "parts \$(blockdev --getsz /dev/vdb1) \$(blockdev --getsz /dev/vdb2)"
kpartx -asr /dev/vdb &&
	echo "kpartx \$(blockdev --getsz /dev/mapper/vdb1) \$(blockdev --getsz /dev/mapper/vdb2)" &&
	kpartx -d /dev/vdb
exit 0
EOF
rc=0
VM_SHARE="$T/share" vm_run "$T/guest.sh" \
	-blockdev driver=file,filename="$T/disk.img",node-name=f0 \
	-blockdev driver=raw,file=f0,node-name=d0 \
	-device virtio-blk-pci,drive=d0 \
	-blockdev driver=file,filename="$T/parts.img",node-name=f1 \
	-blockdev driver=raw,file=f1,node-name=d1 \
	-device virtio-blk-pci,drive=d1 || rc=$?
is "$rc" 0 "the guest script's exit status 0 comes back"
is "$vm_status" exit "the guest reported its exit status"
# has_line TEXT: $vm_out holds the line TEXT.
has_line() { grep -qxF -- "$1" <<<"$vm_out"; }
check "the guest sees the virtio-blk disk's size in sectors" has_line "size 75779"
for m in $MODULES; do
	check "module $m is loaded" has_line "module $m"
done
check "the guest reads what the host wrote" has_line "read $host_pat"
is "$(dd if="$T/disk.img" bs=512 skip=4000 count=1 status=none | head -c ${#guest_pat})" \
	"$guest_pat" "the guest's write reached the image"
check "the host root is readable at /host" has_line "hostfile a file on the host"
is "$(cat "$T/share/guest-file" 2>&1)" "from the guest" "VM_SHARE is writable at /share"
absent=
for t in $TOOLS_IN_GUEST; do
	has_line "tool $t" || absent="$absent $t"
done
is "$absent" "" "the host tools are in the guest's PATH"
check "device-mapper works without udev" has_line "dm-size 2048"
check "LVM creates and activates a logical volume" has_line "lv-size 16384"
check "LVM makes a thin pool, a thin volume and its snapshot" has_line "thin-snap pool thin1"
check "the volume group deactivates" has_line "lvm-down"
check "the guest kernel reads an MSDOS partition table" has_line "parts 8192 16384"
check "kpartx maps the partitions" has_line "kpartx 8192 16384"

# A non-zero status, from a script that first prints a forged marker.
cat >"$T/seven.sh" <<'EOF'
#!/bin/sh
echo "VSTOR-VM 0123456789abcdef exit 0"
echo "seven says hello"
exit 7
EOF
rc=0
vm_run "$T/seven.sh" || rc=$?
is "$rc" 7 "the guest script's exit status 7 comes back"
is "$vm_status" exit "the forged marker did not count"
check "the script's output is in \$vm_out" has_line "seven says hello"

# A guest that never reports: QEMU is killed at VM_TIMEOUT and vm_run
# says so (whether or not the kernel had time to boot).
printf '#!/bin/sh\nsleep 100000\n' >"$T/hang.sh"
rc=0
VM_TIMEOUT=3 vm_run "$T/hang.sh" 2>/dev/null || rc=$?
is "$rc/$vm_status" 255/timeout "a guest that hangs gives status 255 and vm_status=timeout"
