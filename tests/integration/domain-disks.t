#!/bin/bash
# Issue 6's first acceptance point: a domain of `vstor create` with three
# disks of three kinds, served by `vstor serve` over vhost-user-blk:
#
#   disk = [ 'qcow2:CLONE,xvda,w', 'file:DATA.raw,xvdb,w', 'phy:/dev/loopN,xvdc,r' ]
#
# CLONE is a qcow2 overlay of a qcow2 base, DATA a raw file, loopN a loop
# device over a file.  The guest (the test VM in domain guest mode, see
# tests/vm/README.md) checks that it sees three disks with their sizes,
# the third read-only (a write to it fails); it reads what the host put
# in the base image (through the overlay) and on the loop device, writes
# patterns chosen by this run to the first two disks, syncs, says so and
# waits.  Then `vstor shutdown -w` presses the ACPI power button and
# waits for the domain to end.  On the host: the guest's init saw the
# power button, the domain is gone from `vstor list`, no process naming
# this test's files is left and the state folder holds no record or
# socket of it; the patterns are in both images (qemu-io read -P), the
# overlay is clean for `vstor img check` and `qemu-img check`, and the
# base image and the read-only disk's file are unchanged.
#
# Then a domain that boots from its disk: a clone (qcow2 overlay) of make
# demo's template (scripts/demo-template.sh: ext4 holding a busybox root),
# root= in the config, so the VM's init mounts it and switch_roots.  Its
# /sbin/init writes /root/hello.txt and waits for the power button;
# after `vstor shutdown -w` the host reads the file from the clone, and
# the template is unchanged.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"
# shellcheck source=tests/lib/domain.sh
. "$(dirname "$0")/../lib/domain.sh"

requires qemu-img qemu-io losetup sha256sum mkfs.ext4 debugfs
dom_requires

plan 26

NAME=dd$$
BOOT_SECS=300 # TCG on a busy machine; never a measure of speed

# Sizes in MiB, all different so that each disk is known by its size.
SIZE_A=64 SIZE_B=24 SIZE_C=16
# This run's bytes: the guest writes PAT_A to vda at 1 MiB and PAT_B to
# vdb at 2 MiB (64 KiB each); the host put BASE_TAG into the base image
# and RO_TAG on the loop device's file.
PAT_A=$((RANDOM % 200 + 32)) PAT_B=$((RANDOM % 200 + 32))
[ "$PAT_B" -ne "$PAT_A" ] || PAT_B=$((PAT_A + 1))
BASE_TAG="base-$RANDOM$RANDOM"
RO_TAG="ro-$RANDOM$RANDOM"

run_ok "a qcow2 base image" qemu-img create -q -f qcow2 "$T/base.qcow2" "${SIZE_A}M"
qemu-io -f qcow2 -c "write -P 0 0 4k" "$T/base.qcow2" >&3 2>&1
printf '%s' "$BASE_TAG" | dd of="$T/tag" status=none
qemu-io -f qcow2 -c "write -s $T/tag 0 ${#BASE_TAG}" "$T/base.qcow2" >&3 2>&1 ||
	die "cannot write the tag into the base image"
qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/clone.qcow2" ||
	die "cannot create the overlay"
truncate -s "${SIZE_B}M" "$T/data.raw"
truncate -s "${SIZE_C}M" "$T/ro.img"
printf '%s' "$RO_TAG" | dd of="$T/ro.img" bs=512 seek=8 conv=notrunc status=none
LOOP=$(losetup -f --show "$T/ro.img") || die "losetup -f --show failed"
cleanup_add losetup -d "$LOOP"
base_sum=$(sha256sum <"$T/base.qcow2")
ro_sum=$(sha256sum <"$T/ro.img")

# The guest half (busybox sh): "key value" lines, then "written".
cat >"$T/guest.sh" <<EOF
#!/bin/sh
for d in vda vdb vdc; do
	echo "size \$d \$(cat /sys/block/\$d/size 2>&1)"
	echo "ro \$d \$(cat /sys/block/\$d/ro 2>&1)"
done
if dd if=/dev/zero of=/dev/vdc bs=512 count=1 conv=fsync 2>/dev/null; then
	echo "vdc-write accepted"
else
	echo "vdc-write refused"
fi
echo "base-read \$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c ${#BASE_TAG})"
echo "ro-read \$(dd if=/dev/vdc bs=512 skip=8 count=1 2>/dev/null | head -c ${#RO_TAG})"
# pattern BYTE DEV SEEK_MIB: 64 KiB of BYTE at SEEK_MIB, on stable storage
pattern() {
	dd if=/dev/zero bs=64k count=1 2>/dev/null | tr '\\000' "\$(printf '\\\\%03o' \$1)" |
		dd of=\$2 bs=64k seek=\$((\$3 * 16)) conv=fsync 2>/dev/null &&
		echo "pattern-\${2#/dev/} ok"
}
pattern $PAT_A /dev/vda 1
pattern $PAT_B /dev/vdb 2
sync
echo written
# Until the power button: init sends SIGTERM then.
trap 'echo "stopping on SIGTERM"; exit 0' TERM
while :; do sleep 1; done
EOF
dom_guest_initrd "$T/guest.sh" "$T/guest.cpio" || die "cannot build the guest's initramfs"
dom_cfg "$T/$NAME.cfg" name="$NAME" ramdisk="$T/guest.cpio" \
	"disk=[ 'qcow2:$T/clone.qcow2,xvda,w', 'file:$T/data.raw,xvdb,w', 'phy:$LOOP,xvdc,r' ]"

run_ok "vstor create starts the domain" "$VSTOR" create "$T/$NAME.cfg"
check "the guest's script starts" dom_wait_marker "$NAME" ready "$BOOT_SECS"
check "the guest wrote its patterns" dom_wait_console "$NAME" '^written$' "$BOOT_SECS"
out=$(dom_out "$NAME")
# value KEY: the rest of the guest's "KEY ..." line
value() { sed -n "s/^$1 //p" <<<"$out" | head -1; }
is "$(value "size vda")/$(value "size vdb")/$(value "size vdc")" \
	"$((SIZE_A * 2048))/$((SIZE_B * 2048))/$((SIZE_C * 2048))" \
	"the guest sees vda, vdb and vdc with their sizes in sectors"
is "$(value "ro vda")/$(value "ro vdb")/$(value "ro vdc")" 0/0/1 \
	"vda and vdb are writable, vdc is read-only"
is "$(value vdc-write)" refused "a write to the read-only disk fails in the guest"
is "$(value base-read)" "$BASE_TAG" "the guest reads the base image through the qcow2 overlay"
is "$(value ro-read)" "$RO_TAG" "the guest reads the loop device's file"
is "$(value pattern-vda)/$(value pattern-vdb)" ok/ok \
	"the guest's writes to vda and vdb completed"

run_ok "vstor shutdown -w ends the domain" "$VSTOR" shutdown -w -t 300 "$NAME"
check "the guest's init saw the ACPI power button" \
	dom_wait_marker "$NAME" power-button 10
check "the domain is gone from vstor list" dom_gone "$NAME" 30
dom_unfollow "$NAME"
is "$(dom_leftovers)" "" "no process naming the test's files is left"
is "$(find "$VSTOR_STATE_DIR" \( -type s -o -name "*$NAME*" \) 2>/dev/null)" "" \
	"the state folder holds no socket or record of the domain"

run_ok "the guest's pattern is in the qcow2 overlay" \
	qemu-io -r -f qcow2 -c "read -P $PAT_A 1M 64k" "$T/clone.qcow2"
run_ok "the guest's pattern is in the raw file" \
	qemu-io -r -f raw -c "read -P $PAT_B 2M 64k" "$T/data.raw"
run "$VSTOR" img check "$T/clone.qcow2"
if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]] && ! [[ $out =~ leaked ]]; then
	qcow2_clean "the overlay is clean for vstor img check and qemu-img check" "$T/clone.qcow2"
else
	not_ok "the overlay is clean for vstor img check and qemu-img check" "$out" "$err"
fi
is "$(sha256sum <"$T/base.qcow2")/$(sha256sum <"$T/ro.img")" "$base_sum/$ro_sum" \
	"the base image and the read-only disk's file are unchanged"

# A domain that boots its own root filesystem from a template's clone.
ROOTED=rt$$
run "$TOP/scripts/demo-template.sh" "$T/template.raw" 16
run_ok "the demo's template converts to qcow2" \
	"$VSTOR" img convert -f raw -O qcow2 "$T/template.raw" "$T/template.qcow2"
"$VSTOR" img create -q -f qcow2 -b "$T/template.qcow2" -F qcow2 "$T/rooted.qcow2" >&3 2>&1
template_sum=$(sha256sum <"$T/template.qcow2")
dom_cfg "$T/$ROOTED.cfg" name="$ROOTED" ramdisk="$VM_DIR/initramfs.cpio" \
	root="/dev/xvda rw" extra="vstor.hostname=$ROOTED" \
	"disk=[ 'qcow2:$T/rooted.qcow2,xvda,w' ]"
run_ok "vstor create starts a domain whose root is a template's clone" \
	"$VSTOR" create "$T/$ROOTED.cfg"
check "the guest boots from the clone and writes its file" \
	dom_wait_console "$ROOTED" '^demo-guest: waiting for the power button' "$BOOT_SECS"
run_ok "vstor shutdown -w ends it" "$VSTOR" shutdown -w -t 300 "$ROOTED"
check "the booted system saw the power button" \
	dom_wait_console "$ROOTED" '^demo-guest: power button pressed' 10
dom_unfollow "$ROOTED"
"$VSTOR" img convert -f qcow2 -O raw "$T/rooted.qcow2" "$T/rooted.raw" >&3 2>&1
like "$(debugfs -R 'cat /root/hello.txt' "$T/rooted.raw" 2>&3)" "^Hello from $ROOTED, a vstor domain" \
	"the guest's file is in the clone, read from the host"
run "$VSTOR" img check "$T/rooted.qcow2"
if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]] &&
	[ "$(sha256sum <"$T/template.qcow2")" = "$template_sum" ]; then
	ok "the clone is clean and the template unchanged"
else
	not_ok "the clone is clean and the template unchanged" "$out" "$err"
fi
