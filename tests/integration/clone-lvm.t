#!/bin/bash
# vstor clone of LV templates, in the test VM (the host has no
# device-mapper).  The guest gets an empty virtio-blk disk as its PV and
# runs vstor from the host root; each step prints "rc NAME STATUS" and
# facts as "NAME VALUE" lines, which the host checks.
#
# Templates: a thin LV of 64 MiB and a linear LV, each holding an ext4
# root with an identity (hostname, machine-id, SSH host keys), a thin LV
# of 1 GiB holding 8 MiB of data, and a qcow2 image as a second disk.  A thin LV is cloned as a thin
# snapshot of it and the qcow2 disk as an overlay, in constant work: the
# pool's used data blocks do not change for either size.  Writes to a
# clone do not reach its template.  --customize resets the identity in
# the thin snapshot (read back with debugfs; the template keeps its
# own).  A linear LV becomes a classic snapshot, with the warning about
# its cost and the COW size asked for.  Refusals leave no LV behind: an
# existing config, an existing LV, a --customize that finds no ext4 root
# after its snapshot was made (it is removed again), a template LV that
# a process holds open.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

vm_requires
requires "$VSTOR" lvm mkfs.ext4 debugfs qemu-img

plan 35

truncate -s 256M "$T/pv.img"
mkdir -p "$T/root/etc/ssh"
echo tmpl >"$T/root/etc/hostname"
echo 0123456789abcdef0123456789abcdef >"$T/root/etc/machine-id"
echo private >"$T/root/etc/ssh/ssh_host_ed25519_key"
echo 'Port 22' >"$T/root/etc/ssh/sshd_config"

cat >"$T/guest.sh" <<EOF
#!/bin/bash
V=/host$VSTOR
ROOT=/host$T/root
EOF
cat >>"$T/guest.sh" <<'EOF'
set -u
export TMPDIR=/tmp
# r NAME CMD...: run CMD, print "rc NAME STATUS" and its output.
r() {
	local name=$1
	shift
	"$@" >/tmp/o 2>/tmp/e
	echo "rc $name $?"
	sed "s|^|out $name: |" /tmp/o
	sed "s|^|err $name: |" /tmp/e
}
# used: the thin pool's used data blocks, exactly (dmsetup status).
used() { dmsetup status vgc-pool-tpool | awk '{ split($6, a, "/"); print a[1] }'; }
lvnames() { lvs --noheadings -o lv_name vgc | tr -d ' ' | sort | tr '\n' ' '; }
get() { debugfs -R "$2" "$1" 2>/dev/null; }

pvcreate -q /dev/vda && vgcreate -q vgc /dev/vda &&
	lvcreate -q -L 128M -T vgc/pool >/dev/null &&
	lvcreate -q -V 64M -T vgc/pool -n small >/dev/null &&
	lvcreate -q -V 1G -T vgc/pool -n large >/dev/null &&
	lvcreate -q -L 16M -n thick vgc >/dev/null &&
	lvcreate -q -V 16M -T vgc/pool -n blank >/dev/null || exit 1
for lv in small thick; do
	mkfs.ext4 -q -d "$ROOT" /dev/vgc/$lv || exit 1
done
# The 1 GiB template needs data, not a file system (mkfs of 1 GiB is
# slow under TCG).
head -c 8388608 /dev/urandom >/dev/vgc/large || exit 1
qemu-img create -q -f qcow2 /tmp/data.qcow2 16M || exit 1

# tmpl NAME DISK...: a template config.
tmpl() {
	local name=$1 d
	shift
	{
		echo "# template $name"
		echo "name = '$name'"
		echo "kernel = '/boot/vmlinuz'"
		echo "vif = [ 'bridge=br0' ]"
		printf 'disk = [ '
		for d in "$@"; do printf "'%s', " "$d"; done
		echo ']'
	} >/tmp/$name.cfg
}
tmpl small 'phy:/dev/vgc/small,xvda,w' 'qcow2:/tmp/data.qcow2,xvdb,w'
tmpl large 'phy:/dev/vgc/large,xvda,w'
tmpl thick 'phy:/dev/vgc/thick,xvda,w'
tmpl blank 'phy:/dev/vgc/blank,xvda,w'
sync

sum_small=$(sha256sum </dev/vgc/small)
u0=$(used)
r clone-small $V clone /tmp/small.cfg c1
u1=$(used)
r clone-large $V clone /tmp/large.cfg c2
u2=$(used)
echo "used-small $((u1 - u0))"
echo "used-large $((u2 - u1))"
echo "c1-origin $(lvs --noheadings -o origin,pool_lv vgc/c1-xvda | tr -s ' ')"
echo "c2-origin $(lvs --noheadings -o origin vgc/c2-xvda | tr -d ' ')"
echo "c1-cfg $(grep -c "'phy:/dev/vgc/c1-xvda,xvda,w'" /tmp/c1.cfg)"
echo "c1-qcow2 $(qemu-img info /tmp/c1-xvdb.qcow2 | grep -c 'backing file: /tmp/data.qcow2')"

# Writes to the clone stay in the clone.
head -c 1048576 /dev/urandom >/tmp/pattern
dd if=/tmp/pattern of=/dev/vgc/c1-xvda bs=1M seek=8 conv=fsync status=none
echo "clone-has $(head -c 9437184 /dev/vgc/c1-xvda | tail -c 1048576 | cmp -s - /tmp/pattern && echo yes)"
echo "template-same $([ "$(sha256sum </dev/vgc/small)" = "$sum_small" ] && echo yes)"

# --customize in a thin snapshot (and the qcow2 disk through FUSE).
r customize $V clone --customize /tmp/small.cfg c3
echo "c3-hostname $(get /dev/vgc/c3-xvda 'cat /etc/hostname')"
echo "c3-machine-id $(get /dev/vgc/c3-xvda 'stat /etc/machine-id' | grep -o 'Size: [0-9]*')"
echo "c3-ssh $(get /dev/vgc/c3-xvda 'ls /etc/ssh' | grep -c ssh_host_)"
echo "small-hostname $(get /dev/vgc/small 'cat /etc/hostname')"
e2fsck -fn /dev/vgc/c3-xvda >/dev/null 2>&1 && echo "c3-fsck yes"

# A linear LV: a classic snapshot, with a warning.
r thick $V clone --cow-size 8M /tmp/thick.cfg c4
echo "c4-lv $(lvs --noheadings --units b --nosuffix -o origin,lv_size vgc/c4-xvda | tr -s ' ')"

# Refusals.
before=$(lvnames)
r again $V clone /tmp/small.cfg c1
rm /tmp/c2.cfg
r lv-exists $V clone /tmp/large.cfg c2
r undo $V clone --customize /tmp/blank.cfg c5
sleep 600 </dev/vgc/large &
holder=$!
sleep 0.5
r busy $V clone /tmp/large.cfg c6
kill $holder
wait $holder 2>/dev/null
[ "$(lvnames)" = "$before" ] && echo "lvs-unchanged yes"
[ -e /tmp/c5.cfg ] || echo "c5-cfg-absent yes"
exit 0
EOF

rc=0
VM_TIMEOUT=${VM_TIMEOUT:-600} VM_MEM=384 vm_run "$T/guest.sh" \
	-blockdev driver=file,filename="$T/pv.img",node-name=f0 \
	-blockdev driver=raw,file=f0,node-name=d0 \
	-device virtio-blk-pci,drive=d0 || rc=$?
is "$rc/$vm_status" 0/exit "the guest script ran to its end"

has_line() { grep -qxF -- "$1" <<<"$vm_out"; }
rc_is() {
	local got
	got=$(grep -m1 "^rc $1 " <<<"$vm_out" | awk '{print $3}')
	is "${got:-none}" "$2" "$3"
}
err_of() { grep "^err $1: " <<<"$vm_out" | sed "s/^err $1: //"; }
out_of() { grep "^out $1: " <<<"$vm_out" | sed "s/^out $1: //"; }

rc_is clone-small 0 "clone of the 64 MiB thin template"
like "$(out_of clone-small)" "xvda +thin snapshot +/dev/vgc/small -> /dev/vgc/c1-xvda" \
	"its LV disk is a thin snapshot"
like "$(out_of clone-small)" "xvdb +qcow2 overlay +/tmp/data.qcow2 -> /tmp/c1-xvdb.qcow2" \
	"its qcow2 disk an overlay"
rc_is clone-large 0 "clone of the 1 GiB thin template"
check "the 64 MiB clone took no data block of the pool" has_line "used-small 0"
check "the 1 GiB clone took none either" has_line "used-large 0"
check "the snapshot's origin is the template, in its pool" \
	has_line "c1-origin  small pool"
check "the 1 GiB snapshot's origin is the 1 GiB template" has_line "c2-origin large"
check "the new config names the snapshot, in the template's form" \
	has_line "c1-cfg 1"
check "the overlay's backing file is the template image" has_line "c1-qcow2 1"
check "a write to the clone reads back from it" has_line "clone-has yes"
check "the template did not change" has_line "template-same yes"

rc_is customize 0 "clone --customize"
like "$(out_of customize)" "xvda .* -> /dev/vgc/c3-xvda \\(customized\\)" \
	"the LV disk was customized"
unlike "$(out_of customize)" "xvdb .*customized" \
	"the qcow2 disk without a file system was looked at, not changed"
check "the clone's hostname is its name" has_line "c3-hostname c3"
check "its machine-id is empty" has_line "c3-machine-id Size: 0"
check "its SSH host keys are gone" has_line "c3-ssh 0"
check "the template keeps its hostname" has_line "small-hostname tmpl"
check "e2fsck: the clone's file system is clean" has_line "c3-fsck yes"

rc_is thick 0 "clone of a linear LV template"
like "$(out_of thick)" "xvda +classic snapshot +/dev/vgc/thick -> /dev/vgc/c4-xvda" \
	"it is a classic snapshot"
like "$(err_of thick)" "warning: disk xvda: '/dev/vgc/thick' is a thick LV: .*8388608-byte COW store" \
	"with a warning about its cost"
like "$(grep '^c4-lv ' <<<"$vm_out")" "^c4-lv  thick 8388608" \
	"of the COW size asked for"

rc_is again 1 "a clone over an existing config is refused"
like "$(err_of again)" "config '/tmp/c1.cfg' already exists" "the message says so"
rc_is lv-exists 1 "a clone over an existing LV is refused"
like "$(err_of lv-exists)" "disk xvda: LV 'vgc/c2-xvda' already exists; vstor clone never overwrites" \
	"the message names the LV"
rc_is undo 1 "--customize with no ext4 root fails"
like "$(err_of undo)" "no cloned disk holds an ext2/3/4 file system" \
	"the message says what is missing"
rc_is busy 1 "a template LV in use is refused"
like "$(err_of busy)" "disk xvda: the template LV '/dev/vgc/large' is open" \
	"the message says so"
check "no LV was left behind by the refusals" has_line "lvs-unchanged yes"
check "no config was written" has_line "c5-cfg-absent yes"
