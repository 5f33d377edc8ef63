#!/bin/bash
# The template disk of `make demo`: an ext4 filesystem image (raw, whole
# disk, no partition table) holding a busybox root whose /sbin/init
# writes /root/hello.txt and then waits for the ACPI power button.
#
#   scripts/demo-template.sh OUT.raw [SIZE_MIB]
#
# The guest boots it with the test VM's kernel and initramfs
# (tests/vm/README.md, "Domain guests": root=/dev/xvda mounts it and
# switch_roots to /sbin/init).  mkfs.ext4 -d copies a folder in with its
# owners: run as root (make demo is), every file in the image is root's.
#
# Needs: busybox-static, mkfs.ext4 (e2fsprogs).
set -euo pipefail

say() { echo "demo-template: $*" >&2; }
fail() {
	say "error: $*"
	exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	fail "usage: $0 OUT.raw [SIZE_MIB]"
fi
out=$1
size=${2:-32}
if ! [[ $size =~ ^[0-9]{1,4}$ ]] || [ "$size" -lt 8 ] || [ "$size" -gt 4096 ]; then
	fail "size '$size' is not a number of MiB from 8 to 4096"
fi
for c in busybox mkfs.ext4; do
	command -v "$c" >/dev/null || fail "missing command '$c'"
done
busybox_bin=$(command -v busybox)
# The guest has no C library: a dynamic busybox would not start.
if LC_ALL=C file -L "$busybox_bin" 2>/dev/null | grep -q dynamically; then
	fail "$busybox_bin is dynamically linked: install busybox-static"
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/vstor-template.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,dev,proc,sys,tmp,run,root,mnt}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox_bin" "$root/bin/busybox"
for app in $("$busybox_bin" --list); do
	# /sbin/init is ours, not busybox's init applet.
	case $app in busybox | init) continue ;; esac
	ln -s busybox "$root/bin/$app"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
EOF
echo template >"$root/etc/hostname"
cat >"$root/etc/motd" <<'EOF'
A vstor demo guest: busybox on ext4, cloned from a qcow2 template.
EOF

# The guest's init.  The initramfs already loaded the modules (virtio,
# ext4, the power button's) and moved /dev, /proc and /sys here.
cat >"$root/sbin/init" <<'EOF'
#!/bin/sh
# /sbin/init of the vstor demo template (busybox sh): note who and when
# in /root/hello.txt, then run until the ACPI power button is pressed
# (`vstor shutdown`), and power off cleanly.
PATH=/bin
export PATH
# (busybox-static has no mountpoint applet: look for what each one holds)
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/class ] || mount -t sysfs sysfs /sys
[ -c /dev/console ] || mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tmpfs -o mode=1777 tmp /tmp
mount -o remount,rw / || echo "demo-guest: the root stayed read-only"

# The domain's name, when its config passes vstor.hostname= in extra.
name=$(cat /etc/hostname)
for arg in $(cat /proc/cmdline); do
	case $arg in vstor.hostname=*) name=${arg#vstor.hostname=} ;; esac
done
hostname "$name"

{
	echo "Hello from $(hostname), a vstor domain."
	echo "Written by the guest at $(date -u '+%Y-%m-%d %H:%M:%S UTC')."
	echo "Kernel $(uname -r); up $(cut -d' ' -f1 /proc/uptime) s."
	echo "Disks: $(cd /sys/block && echo vd*)"
} >/root/hello.txt
sync
echo "demo-guest: $(hostname) wrote /root/hello.txt:"
sed 's/^/demo-guest:   /' /root/hello.txt
cat /etc/motd

# The power button is a key on an input device named "Power Button".
ev=
for d in /sys/class/input/input*; do
	[ "$(cat "$d/name" 2>/dev/null)" = "Power Button" ] || continue
	for e in "$d"/event*; do
		[ -e "$e" ] && ev=/dev/input/${e##*/}
	done
done
if [ -n "$ev" ]; then
	echo "demo-guest: waiting for the power button ($ev)"
	dd if="$ev" of=/dev/null bs=24 count=1 2>/dev/null
	echo "demo-guest: power button pressed; powering off"
else
	echo "demo-guest: no power button found; powering off now"
fi
sync
umount /tmp
mount -o remount,ro / || sync
poweroff -f
EOF
chmod 755 "$root/sbin/init"

rm -f "$out"
mkfs.ext4 -q -F -L template -E root_owner=0:0 -d "$root" "$out" "${size}M" >/dev/null ||
	fail "mkfs.ext4 -d $root $out failed"
say "built $out (${size} MiB ext4, busybox $("$busybox_bin" | head -1 | awk '{ print $2 }'))"
