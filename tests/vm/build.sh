#!/bin/bash
# Build the test VM (a Debian kernel and a busybox initramfs) into a cache
# folder, or find it there, and print the folder that holds it:
#
#   tests/vm/build.sh            -> /…/build/vm-cache/vm-<stamp>
#
# That folder holds vmlinux (an ELF kernel, or vmlinuz when extraction
# failed; the name is in the file "kernel"), initramfs.cpio, modules.order
# (the modules /init loads, in order) and kernel-version.
#
# The cache is $VSTOR_VM_CACHE (default build/vm-cache at the top of the
# tree) and is kept between runs: a build happens only when no folder
# matches the stamp, a hash of this script and tests/vm/init (a newer
# Debian kernel is picked up by the next rebuild, or after removing the
# cache: tests stay on one kernel until then).  Several tests may call
# this at once: builders take a lock, build in a temporary folder and
# rename it into place, so readers never see half a VM.
#
# Needs: apt-get (to download the kernel package; nothing is installed),
# dpkg-deb, objcopy, xz (or the kernel's compressor), busybox-static.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${VSTOR_VM_CACHE:-$top/build/vm-cache}

# The modules the guest loads, by module name.  Their dependencies (the
# depends= field of each module's .modinfo) and resolvable soft
# dependencies are added and loaded first.  Issues that need more (a
# filesystem, a dm target) add them here.
# button and evdev: the ACPI power button (QMP system_powerdown, that is
# `vstor shutdown`) reaches a domain guest as a key on /dev/input/event*.
WANT="virtio_pci virtio_blk virtio_scsi sd_mod loop dm_mod dm_snapshot
dm_thin_pool dm_zero dm_delay dm_flakey dm_mirror 9pnet_virtio 9p fuse overlay
virtiofs qemu_fw_cfg crc32c_generic ext4 button evdev"

# Soft dependencies name crypto algorithms, not modules; the ones our
# modules name, mapped to the generic module that provides them (TCG's CPU
# model may lack SSE4.2, so never crc32c-intel alone).
SOFTDEP_ALIASES="crc32c=crc32c_generic crypto-crc32c=crc32c_generic
crct10dif=crct10dif_generic"

say() { echo "vm-build: $*" >&2; }
fail() {
	say "error: $*"
	exit 1
}

for c in apt-get apt-cache dpkg-deb objcopy busybox sha256sum flock; do
	command -v "$c" >/dev/null || fail "missing command '$c'"
done
busybox_bin=$(command -v busybox)
# A dynamic busybox would need the host's libraries in the initramfs.
if LC_ALL=C file -L "$busybox_bin" 2>/dev/null | grep -q dynamically; then
	fail "$busybox_bin is dynamically linked: install busybox-static"
fi

stamp=$(cat "$here/build.sh" "$here/init" | sha256sum | cut -c1-16)
out="$cache/vm-$stamp"

ready() { [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; }

mkdir -p "$cache"
if ready; then
	echo "$out"
	exit 0
fi

exec 9>"$cache/lock"
flock 9
# Another builder may have finished while we waited for the lock.
if ready; then
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d "$cache/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. The kernel package that linux-image-amd64 points to, downloaded once
# into the cache.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || fail "apt-cache depends linux-image-amd64 names no kernel package (run apt-get update?)"
mkdir -p "$cache/debs"
deb=$(find "$cache/debs" -maxdepth 1 -name "${kpkg}_*_amd64.deb" | sort | tail -1)
if [ -z "$deb" ]; then
	say "downloading $kpkg"
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$kpkg" >&2) ||
		fail "apt-get download $kpkg failed"
	f=$(find "$tmp" -maxdepth 1 -name "${kpkg}_*_amd64.deb" | head -1)
	[ -n "$f" ] || fail "apt-get download $kpkg left no .deb in $tmp"
	mv "$f" "$cache/debs/"
	deb="$cache/debs/${f##*/}"
fi
say "unpacking ${deb##*/}"
dpkg-deb -x "$deb" "$tmp/pkg"
vmlinuz=$(find "$tmp/pkg/boot" -name 'vmlinuz-*' | head -1)
[ -n "$vmlinuz" ] || fail "${deb##*/} holds no /boot/vmlinuz-*"
kver=${vmlinuz##*/vmlinuz-}
moddir=$(find "$tmp/pkg" -maxdepth 4 -type d -path "*/modules/$kver" | head -1)
[ -n "$moddir" ] || fail "${deb##*/} holds no modules/$kver"

# 2. An ELF vmlinux from the bzImage: it boots faster under TCG (no
# decompression by an emulated CPU) and QEMU boots it through PVH.  The
# bzImage header (boot protocol 2.08 and later) says where the compressed
# payload is: it starts payload_offset bytes into the protected-mode code,
# which follows the (setup_sects + 1) sectors of real-mode setup.
u8() { od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' '; }
u16() { od -An -tu2 -j "$2" -N 2 --endian=little "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N 4 --endian=little "$1" | tr -d ' '; }
extract_vmlinux() { # BZIMAGE OUT: 0 when OUT is an ELF kernel
	local img=$1 dst=$2 setup version poff plen start magic dec
	[ "$(od -An -c -j $((0x202)) -N 4 "$img" | tr -d ' ')" = HdrS ] || {
		say "$img: no HdrS boot header"
		return 1
	}
	version=$(u16 "$img" $((0x206)))
	[ "$version" -ge $((0x208)) ] || {
		say "$img: boot protocol $version has no payload fields"
		return 1
	}
	setup=$(u8 "$img" $((0x1f1)))
	[ "$setup" -ne 0 ] || setup=4 # as the boot protocol says
	poff=$(u32 "$img" $((0x248)))
	plen=$(u32 "$img" $((0x24c)))
	start=$(((setup + 1) * 512 + poff))
	[ $((start + plen)) -le "$(stat -c %s "$img")" ] || {
		say "$img: payload $start+$plen runs past the end"
		return 1
	}
	magic=$(od -An -tx1 -j "$start" -N 6 "$img" | tr -d ' \n')
	case $magic in
	fd377a585a00) dec="xz -dc --single-stream" ;;
	1f8b*) dec="gzip -dc" ;;
	28b52ffd*) dec="zstd -dcq" ;;
	02214c18*) dec="lz4 -dc" ;;
	425a68*) dec="bzip2 -dc" ;;
	5d0000*) dec="xz -dc --format=lzma" ;;
	*)
		say "$img: unknown payload magic $magic at $start"
		return 1
		;;
	esac
	# The decompressor may complain about the size trailer after the
	# stream; what counts is the ELF header of its output.
	tail -c +$((start + 1)) "$img" | head -c "$plen" | $dec >"$dst" 2>/dev/null || true
	[ "$(head -c 4 "$dst" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || {
		say "$img: payload ($dec) did not decompress to an ELF image"
		return 1
	}
}
if extract_vmlinux "$vmlinuz" "$tmp/vmlinux"; then
	echo vmlinux >"$tmp/kernel"
else
	say "booting the compressed vmlinuz instead"
	rm -f "$tmp/vmlinux"
	cp "$vmlinuz" "$tmp/vmlinuz"
	echo vmlinuz >"$tmp/kernel"
fi

# 3. Modules in dependency order.  depmod never ran on the unpacked tree,
# so read each module's .modinfo ourselves.
declare -A path_of state
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	path_of[${n//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst')

unpacked_ko() { # MODNAME -> path of an uncompressed copy under $tmp
	local f=${path_of[$1]} d="$tmp/ko/$1.ko"
	mkdir -p "$tmp/ko"
	if [ ! -f "$d" ]; then
		case $f in
		*.xz) xz -dc "$f" >"$d" ;;
		*.zst) zstd -dcq "$f" >"$d" ;;
		*) cp "$f" "$d" ;;
		esac
	fi
	echo "$d"
}
modinfo_field() { # MODNAME FIELD
	objcopy -O binary --only-section=.modinfo "$(unpacked_ko "$1")" /dev/stdout |
		tr '\0' '\n' | sed -n "s/^$2=//p"
}
order=()
visit() { # MODNAME: depth-first, dependencies first
	local m=${1//-/_} d a
	case ${state[$m]:-} in
	"done") return 0 ;;
	active) fail "module dependency loop through $m" ;;
	esac
	[ -n "${path_of[$m]:-}" ] || fail "kernel $kver has no module $m"
	state[$m]=active
	for d in $(modinfo_field "$m" softdep | sed -n 's/.*pre: *//p'); do
		for a in $SOFTDEP_ALIASES; do
			[ "${a%%=*}" = "$d" ] && d=${a#*=}
		done
		d=${d//-/_}
		if [ -n "${path_of[$d]:-}" ]; then
			visit "$d"
		else
			say "note: $m: soft dependency '$d' is no module; skipped"
		fi
	done
	for d in $(modinfo_field "$m" depends | tr ',' ' '); do
		visit "$d"
	done
	state[$m]="done"
	order+=("$m")
}
for m in $WANT; do
	visit "$m"
done

# 4. The initramfs: busybox, /init, the modules.  The host's /usr reaches
# the guest over 9p at boot, so nothing else is copied.
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,newroot,lib/modules}
cp "$busybox_bin" "$root/bin/busybox"
for app in $("$busybox_bin" --list); do
	[ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
cp "$here/init" "$root/init"
chmod 755 "$root/init"
: >"$root/lib/modules/order"
for m in "${order[@]}"; do
	cp "$(unpacked_ko "$m")" "$root/lib/modules/$m.ko"
	echo "$m" >>"$root/lib/modules/order"
done
cp "$root/lib/modules/order" "$tmp/modules.order"
echo "$kver" >"$tmp/kernel-version"
# Uncompressed: TCG would spend longer inflating it than reading it.
(cd "$root" && find . | LC_ALL=C sort | "$busybox_bin" cpio -o -H newc -R 0:0 2>/dev/null) >"$tmp/initramfs.cpio"
rm -rf "$root" "$tmp/pkg" "$tmp/ko"
echo "$stamp" >"$tmp/stamp"
chmod 755 "$tmp" # mktemp made it private

# 5. Into place: a rename, so a reader sees all of it or nothing.  Older
# builds go (a VM running from one already holds its kernel and initrd in
# memory).
mv "$tmp" "$out"
trap - EXIT
for old in "$cache"/vm-*; do
	[ "$old" = "$out" ] || rm -rf "$old"
done
say "built $out (kernel $kver, $(wc -l <"$out/modules.order") modules)"
echo "$out"
