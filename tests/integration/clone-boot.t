#!/bin/bash
# A clone boots: vstor clone of a template domain whose disk is a qcow2
# image, then vstor create of the clone (the test VM's kernel in domain
# guest mode, tests/lib/domain.sh).  The guest reads the template's
# marker through its COW disk and writes its own; after it powered off
# (on_poweroff destroy), the clone's overlay holds the guest's write,
# the template is byte for byte what it was, and qemu-img check finds
# the overlay clean.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"
# shellcheck source=tests/lib/domain.sh
. "$(dirname "$0")/../lib/domain.sh"

requires qemu-img sha256sum "$VSTOR"
dom_requires

plan 10

cat >"$T/guest.sh" <<'EOF'
#!/bin/sh
echo "head $(head -c 8 /dev/vda)"
printf CLONEWRT | dd of=/dev/vda bs=1M seek=1 conv=fsync 2>/dev/null &&
	echo "wrote yes"
EOF
dom_guest_initrd "$T/guest.sh" "$T/guest.cpio" ||
	die "cannot build the guest's initramfs"
truncate -s 64M "$T/t.raw"
printf TEMPLATE | dd of="$T/t.raw" conv=notrunc 2>/dev/null
qemu-img convert -O qcow2 "$T/t.raw" "$T/t.qcow2" || die "qemu-img failed"
sum=$(sha256sum <"$T/t.qcow2")

dom_cfg "$T/tmpl.cfg" name=tmpl ramdisk="$T/guest.cpio" \
	"disk=['qcow2:$T/t.qcow2,xvda,w']"
run_ok "clone the template" "$VSTOR" clone "$T/tmpl.cfg" c1
like "$out" "xvda +qcow2 overlay +$T/t.qcow2 -> $T/c1-xvda.qcow2" \
	"its disk is an overlay"
# The clone's console carries the template's marker token (extra= is
# copied as it is).
_dom_token[c1]=${_dom_token[tmpl]}

run_ok "vstor create the clone" "$VSTOR" create "$T/c1.cfg"
dom_wait_marker c1 'exit 0' 300
is "$?" 0 "the clone's guest ran its script to the end"
out=$(dom_out c1)
like "$out" "(^|$(printf '\n'))head TEMPLATE" "it read the template's data"
like "$out" "wrote yes" "and wrote its own"
dom_gone c1 120
is "$?" 0 "the clone powered off and was destroyed (on_poweroff)"
dom_unfollow c1

run qemu-io -f qcow2 -c 'read -P 0x43 1M 1' -c 'read -P 0x54 1048583 1' \
	"$T/c1-xvda.qcow2"
is "$rc/$(grep -c 'read 1/1 bytes' <<<"$out")" 0/2 \
	"the overlay holds the guest's write"
is "$(sha256sum <"$T/t.qcow2")" "$sum" "the template did not change"
qcow2_clean "qemu-img check: the clone's overlay is clean" "$T/c1-xvda.qcow2"
