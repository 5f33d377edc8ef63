#!/bin/bash
# make demo: vstor's main job end to end on the built-in example domains
# (examples/web1.cfg, examples/web2.cfg), in a few minutes under TCG:
#
#   a template disk (ext4 holding a busybox root) -> qcow2 -> two COW
#   clones -> web1 started with `vstor create` -> the guest writes a file
#   -> `vstor shutdown -w` -> the file read from the host, the template
#   unchanged.
#
# The guests boot the test VM's kernel and initramfs (tests/vm/build.sh
# builds or finds them; the Makefile's demo target builds them first).
# Everything goes into a mktemp folder, the domains' state folder too
# (VSTOR_STATE_DIR), removed at exit with any domain still running.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
VSTOR=${VSTOR:-$top/build/vstor}
# Seconds the guest may take to boot and write its file; TCG on a busy
# machine is slow, and this is a limit, not a measure.
BOOT_SECS=${BOOT_SECS:-300}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# run CMD...: echo the command as one would type it, then run it.
run() {
	local a
	printf '$'
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			printf ' %s' "$a"
		elif [[ $a == *\'* ]] && ! [[ $a =~ [\"\$\`\\] ]]; then
			printf ' "%s"' "$a"
		else
			printf " '%s'" "${a//\'/\'\\\'\'}"
		fi
	done
	printf '\n'
	"$@"
}
fail() {
	printf '\ndemo: error: %s\n' "$*" >&2
	exit 1
}

for c in "$VSTOR" qemu-system-x86_64 busybox mkfs.ext4 debugfs python3 sha256sum; do
	command -v "$c" >/dev/null || fail "missing '$c' (make deps installs the packages)"
done

dir=$(mktemp -d /var/tmp/vstor-demo.XXXXXX)
export VSTOR_STATE_DIR="$dir/state"
cleanup() {
	local st=$? n
	# A domain left by a failed step: destroy it before its files go.
	for n in $("$VSTOR" list 2>/dev/null | awk 'NR > 1 && $1 != "Domain-0" { print $1 }'); do
		echo "demo: destroying $n" >&2
		"$VSTOR" destroy "$n" >/dev/null 2>&1 || true
	done
	rm -rf "$dir"
	[ "$st" -eq 0 ] || echo "demo: failed (exit status $st); its files are removed" >&2
}
trap cleanup EXIT
# So that an interrupted demo also cleans up (bash runs the EXIT trap on exit).
trap 'exit 130' INT
trap 'exit 143' TERM

# console_log NAME: the domain's console log, from its state record.
console_log() {
	"$VSTOR" list -l "$1" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
for rec in doc if isinstance(doc, list) else [doc]:
    if isinstance(rec, dict) and rec.get("name") == sys.argv[1]:
        print(rec["rundir"] + "/console.log")
' "$1"
}

step "The guests' kernel and initramfs (the test VM, tests/vm/)"
vm=$("$top/tests/vm/build.sh")
kernel="$vm/$(cat "$vm/kernel")"
initrd="$vm/initramfs.cpio"
echo "kernel $kernel ($(cat "$vm/kernel-version"))"
echo "initrd $initrd"

step "A template disk: ext4 holding a busybox root"
run "$top/scripts/demo-template.sh" "$dir/template.raw" 32
run debugfs -R 'ls -l /sbin' "$dir/template.raw"
run "$VSTOR" img info "$dir/template.raw"

step "The template as qcow2"
run "$VSTOR" img convert -f raw -O qcow2 "$dir/template.raw" "$dir/template.qcow2"
run "$VSTOR" img info "$dir/template.qcow2"
template_sum=$(sha256sum <"$dir/template.qcow2")

step "Two domains whose disks are copy-on-write clones of the template"
for d in web1 web2; do
	run "$VSTOR" img create -f qcow2 -b "$dir/template.qcow2" -F qcow2 "$dir/$d.qcow2"
	sed -e "/^#/!s|@DIR@|$dir|g" -e "/^#/!s|@KERNEL@|$kernel|g" -e "/^#/!s|@INITRD@|$initrd|g" \
		"$top/examples/$d.cfg" >"$dir/$d.cfg"
done
run "$VSTOR" img create -f raw "$dir/web1-data.raw" 16M
echo
echo "--- $dir/web1.cfg"
cat "$dir/web1.cfg"
# Its disk lines, parsed as xl parses them: every single-quoted item
# inside disk = [ ... ].
mapfile -t disks < <(tr '\n' ' ' <"$dir/web1.cfg" |
	sed -n "s/.*disk *= *\[\([^]]*\)\].*/\1/p" | grep -o "'[^']*'" | tr -d "'")
for d in "${disks[@]}"; do
	run "$VSTOR" disk parse "$d"
done

step "Start web1"
run "$VSTOR" create "$dir/web1.cfg"
run "$VSTOR" list

step "The guest boots from its clone and writes /root/hello.txt"
log=$(console_log web1)
[ -n "$log" ] || fail "vstor list -l web1 names no run folder"
echo "(its serial console, $log)"
shown=0
for ((i = 0; i < BOOT_SECS * 2; i++)); do
	if [ -f "$log" ]; then
		n=$(wc -l <"$log")
		if [ "$n" -gt "$shown" ]; then
			tail -n +$((shown + 1)) "$log" | head -n $((n - shown)) | tr -d '\r' | sed 's/^/  | /'
			shown=$n
		fi
		grep -q 'demo-guest: waiting for the power button' "$log" && break
		grep -q 'demo-guest: no power button' "$log" && break
	fi
	"$VSTOR" list 2>/dev/null | awk '{ print $1 }' | grep -qx web1 ||
		fail "web1 ended before it wrote its file"
	sleep 0.5
done
((i < BOOT_SECS * 2)) || fail "web1 did not write its file within $BOOT_SECS s"
run "$VSTOR" list

step "A second domain on web1's disk is refused while web1 runs"
if run "$VSTOR" create "$dir/web2.cfg" "disk=['qcow2:$dir/web1.qcow2,xvda,w']"; then
	fail "web2 started on the disk web1 has open for writing"
fi
run "$VSTOR" list

step "Shut web1 down (the ACPI power button), and wait until it is gone"
run "$VSTOR" shutdown -w -t 300 web1
run "$VSTOR" list

step "The clone's backing chain"
run "$VSTOR" img info --backing-chain "$dir/web1.qcow2"
run "$VSTOR" img check "$dir/web1.qcow2"

step "The guest's file, read from the host"
run "$VSTOR" img convert -f qcow2 -O raw "$dir/web1.qcow2" "$dir/web1.raw"
run debugfs -R 'cat /root/hello.txt' "$dir/web1.raw"
hello=$(debugfs -R 'cat /root/hello.txt' "$dir/web1.raw" 2>/dev/null)
[[ $hello == "Hello from web1"* ]] || fail "/root/hello.txt is not in web1's disk"

step "The template is unchanged, and web2 still reads as the template"
if [ "$(sha256sum <"$dir/template.qcow2")" = "$template_sum" ]; then
	echo "template.qcow2: the same bytes as before web1 ran"
else
	fail "template.qcow2 changed"
fi
printf "\$ debugfs -R 'cat /root/hello.txt' %s\n" "$dir/template.raw"
debugfs -R 'cat /root/hello.txt' "$dir/template.raw" 2>&1 | grep -v '^debugfs [0-9]' || true
run "$VSTOR" img compare "$dir/template.qcow2" "$dir/web2.qcow2"
run "$VSTOR" img compare "$dir/template.qcow2" "$dir/web1.qcow2" || true

step "Done"
echo "web1 ran from a copy-on-write clone, wrote to it, and the template"
echo "stayed as it was.  The demo's files are removed on exit."
