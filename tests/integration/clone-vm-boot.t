#!/bin/bash
# An LV clone boots, and a running domain is backed up (issue 7).  LVs
# exist only in the test VM (the host has no device-mapper), so the
# clone's domain runs there: QEMU under TCG nested in the TCG test VM,
# the guest in domain guest mode of tests/vm/init (only the virtio and
# power-button modules), everything else as `vstor create` makes it.
#
# In the VM: a template domain with a thin LV disk (xvda) and a qcow2
# disk (xvdb), each holding a marker; `vstor clone`; `vstor create` of
# the clone.  Its guest reads the template's markers through both
# clone disks, writes its own to each, then keeps writing a counter
# (one sector, fsynced, also printed on the console) to the LV until
# the power button.  While it runs, `vstor backup c1 DEST` backs up the
# domain: one backup, of the LV disk (the qcow2 disk is skipped with a
# notice, as vstor-backup(1) says), which qemu-img check and `vstor
# backup verify` accept, whose manifest names the domain, and which
# leaves no snapshot but the thin one it keeps for incrementals.  The
# test waits until the guest has written past the backup, then `vstor
# shutdown -w`.  Afterwards: the clone LV and the clone's overlay hold
# the guest's writes, the template LV and image are byte for byte what
# they were, the overlay checks clean (vstor img check and qemu-img
# check), no process of the domain is left, and `vstor restore` of the
# backup into a new thin LV gives the template's marker, the guest's
# marker and a whole counter sector from between the counts the console
# showed before and after the backup (not the later, final count).
#
# The guest script's facts come back as "NAME VALUE" lines and each
# command's status as "rc NAME STATUS"; the host checks them.  Nested
# TCG is slow (minutes for the guest's boot); the test asserts on no
# time.
#
# test-timeout: 1500
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

requires "$VSTOR" lvm qemu-img qemu-io python3 sha256sum
vm_requires

plan 34

# The nested domain's script (busybox sh; tests/vm/init runs it as /test
# and powers off when it ends; the power button sends it SIGTERM).
cat >"$T/guest.sh" <<'EOF'
#!/bin/sh
echo "lv-head $(head -c 12 /dev/vda)"
echo "img-head $(head -c 12 /dev/vdb)"
printf GUEST-LV-WRITE | dd of=/dev/vda bs=512 seek=2048 conv=sync,fsync 2>/dev/null &&
	echo "lv-wrote yes"
printf GUEST-IMG-WRITE | dd of=/dev/vdb bs=512 seek=2048 conv=sync,fsync 2>/dev/null &&
	echo "img-wrote yes"
stop=0
trap 'stop=1' TERM
n=0
# One sector per count, so that a snapshot holds a whole one.  The
# bound only keeps a forgotten guest from running for ever.
while [ $stop = 0 ] && [ $n -lt 3000 ]; do
	n=$((n + 1))
	printf 'count %08d\n' $n | dd of=/dev/vda bs=512 seek=4096 conv=sync,fsync 2>/dev/null ||
		echo "count-failed $n"
	echo "count $n"
	sleep 1
done
echo "final $n"
EOF
_vm_initrd "$T/guest.sh" "$T/guest.cpio" || die "cannot build the guest's initramfs"

# The test VM's script (bash, with the host's tools).  tests/lib/domain.sh
# runs there too, with what it needs of functions.sh.
cat >"$T/vm.sh" <<EOF
#!/bin/bash
TOP=/host$TOP
VSTOR=/host$VSTOR
VM_DIR=/host$VM_DIR
RAMDISK=/host$T/guest.cpio
EOF
cat >>"$T/vm.sh" <<'EOF'
set -u
T=/tmp/t
mkdir -p $T
exec 3>>$T/trace
export TMPDIR=/tmp VSTOR_STATE_DIR=$T/state
mkdir -p $VSTOR_STATE_DIR
diag() { printf '# %s\n' "$@"; }
die() {
	diag "$@"
	exit 1
}
requires() { :; }
cleanup_add() { :; } # the VM goes down with everything in it
. $TOP/tests/lib/domain.sh

# r NAME CMD...: run CMD, print "rc NAME STATUS" and its output.
r() {
	local name=$1
	shift
	"$@" >/tmp/o 2>/tmp/e
	echo "rc $name $?"
	sed "s|^|out $name: |" /tmp/o
	sed "s|^|err $name: |" /tmp/e
}
# at FILE SECTOR [LEN]: the text in LEN bytes (512) at SECTOR.
at() { dd if="$1" bs=512 skip="$2" count=1 status=none | head -c "${3:-512}" | tr -d '\0\n'; }
last_count() { dom_out c1 | sed -n 's/^count \([0-9]*\)$/\1/p' | tail -1; }
# wait_count N SECS: until the guest printed a count above N.
wait_count() {
	local i c
	for ((i = 0; i < $2; i++)); do
		c=$(last_count)
		[ "${c:-0}" -gt "$1" ] && return 0
		sleep 1
	done
	return 1
}
step() { echo "step $1 $(cut -d' ' -f1 /proc/uptime)"; }

step setup
pvcreate -q /dev/vda && vgcreate -q vgb /dev/vda &&
	lvcreate -q -L 96M -T vgb/pool >/dev/null &&
	lvcreate -q -V 32M -T vgb/pool -n tmpl >/dev/null || exit 1
head -c 33554432 /dev/urandom >/dev/vgb/tmpl || exit 1
printf TMPL-LV-MARK | dd of=/dev/vgb/tmpl conv=notrunc,fsync status=none || exit 1
truncate -s 16M /tmp/t.raw
printf TMPL-IMG-MRK | dd of=/tmp/t.raw conv=notrunc status=none
qemu-img convert -O qcow2 /tmp/t.raw /tmp/t.qcow2 || exit 1
sync
sum_lv=$(sha256sum </dev/vgb/tmpl)
sum_img=$(sha256sum </tmp/t.qcow2)

dom_cfg /tmp/tmpl.cfg name=tmpl ramdisk="$RAMDISK" memory=128 \
	extra="mitigations=off cryptomgr.notests" \
	"disk=['phy:/dev/vgb/tmpl,xvda,w', 'qcow2:/tmp/t.qcow2,xvdb,w']"
step clone
r clone $VSTOR clone /tmp/tmpl.cfg c1
_dom_token[c1]=${_dom_token[tmpl]} # extra= is copied as it is

step create
r create $VSTOR create /tmp/c1.cfg
dom_wait_marker c1 ready 1500 || echo "ready-timeout yes"
step ready
wait_count 0 600 || echo "count-timeout yes"
step counting
n0=$(last_count)
echo "before $n0"
mkdir -p /tmp/bk
r backup $VSTOR backup c1 /tmp/bk
n1=$(last_count)
echo "after $n1"
step backup
# The guest writes on past the backup before it is stopped, so the
# clone's final count is not the one the backup holds.
wait_count $((n1 + 1)) 600 || echo "count-timeout-2 yes"
r shutdown $VSTOR shutdown -w c1
step shutdown
dom_gone c1 120 && echo "gone yes"
dom_unfollow c1
dom_out c1 | grep -v '^count ' | sed 's/^/guest /'
dom_console c1 | grep '^vm: ' | sed 's/^/dom-stage /'
echo "last $(last_count)"
echo "leftovers $(dom_leftovers | wc -l)"
dom_leftovers | sed 's/^/leftover /'
echo "listed $($VSTOR list | awk 'NR > 1 && $1 != "Domain-0"' | wc -l)"

# What the backup is.
man=$(ls /tmp/bk/*.json 2>/dev/null)
echo "manifests $(ls /tmp/bk/*.json 2>/dev/null | wc -l)"
echo "images $(ls /tmp/bk/*.qcow2 2>/dev/null | wc -l)"
echo "manifest ${man#/tmp/bk/}"
python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
print("man-source", m["source"]["vg"], m["source"]["lv"], m["source"].get("domain"))
print("man-thin", m.get("thin_snapshot"))
' "$man"
r check-bk qemu-img check "${man%.json}.qcow2"
r verify $VSTOR backup verify "$man"
# The LVs: the template, its pool, the clone and the thin snapshot the
# backup keeps (named in its manifest), nothing else.
echo "lvs $(lvs --noheadings -o lv_name vgb | tr -d ' ' | LC_ALL=C sort | tr '\n' ' ')"
echo "snap-origin $(lvs --noheadings -o lv_name,origin vgb | awk '$2 != "" { print $1 "<" $2 }' | LC_ALL=C sort | tr '\n' ' ')"

# The clone after its run; the template.
echo "c1-lv $(at /dev/vgb/c1-xvda 0 12) $(at /dev/vgb/c1-xvda 2048) $(at /dev/vgb/c1-xvda 4096)"
qemu-img convert -O raw /tmp/c1-xvdb.qcow2 /tmp/c1-xvdb.raw
echo "c1-img $(at /tmp/c1-xvdb.raw 0) $(at /tmp/c1-xvdb.raw 2048)"
[ "$(sha256sum </dev/vgb/tmpl)" = "$sum_lv" ] && echo "tmpl-lv-same yes"
[ "$(sha256sum </tmp/t.qcow2)" = "$sum_img" ] && echo "tmpl-img-same yes"
r img-check $VSTOR img check /tmp/c1-xvdb.qcow2
r qemu-img-check qemu-img check /tmp/c1-xvdb.qcow2

# Restore into a new thin LV.
lvcreate -q -V 32M -T vgb/pool -n rest >/dev/null || exit 1
r restore $VSTOR restore "$man" vgb/rest
echo "rest $(at /dev/vgb/rest 0 12) $(at /dev/vgb/rest 2048) $(at /dev/vgb/rest 4096)"
step end
exit 0
EOF

truncate -s 256M "$T/pv.img"
rc=0
VM_TIMEOUT=${VM_TIMEOUT_NESTED:-1400} VM_SMP=2 VM_MEM=1024 vm_run "$T/vm.sh" \
	-blockdev driver=file,filename="$T/pv.img",node-name=f0 \
	-blockdev driver=raw,file=f0,node-name=d0 \
	-device virtio-blk-pci,drive=d0 || rc=$?
is "$rc/$vm_status" 0/exit "the VM's script ran to its end"
# Where the time went (the guest's uptime at each step), for the log.
grep -E '^(step|dom-stage) ' <<<"$vm_out" | sed 's/^/# /' >&3

has_line() { grep -qxF -- "$1" <<<"$vm_out"; }
val() { sed -n "s/^$1 //p" <<<"$vm_out" | head -1; }
rc_is() {
	local got
	got=$(grep -m1 "^rc $1 " <<<"$vm_out" | awk '{print $3}')
	is "${got:-none}" "$2" "$3"
}
err_of() { grep "^err $1: " <<<"$vm_out" | sed "s/^err $1: //"; }
out_of() { grep "^out $1: " <<<"$vm_out" | sed "s/^out $1: //"; }

rc_is clone 0 "vstor clone of the template (thin LV + qcow2)"
like "$(out_of clone)" "xvda +thin snapshot +/dev/vgb/tmpl -> /dev/vgb/c1-xvda" \
	"the LV disk became a thin snapshot"
rc_is create 0 "vstor create of the clone, nested in the test VM"
check "the clone's guest reached its script" has_line "guest lv-head TMPL-LV-MARK"
is "$(val 'guest lv-head')" TMPL-LV-MARK \
	"it read the template's LV marker through its LV disk"
check "and the template image's marker through its qcow2 disk" \
	has_line "guest img-head TMPL-IMG-MRK"
check "it wrote to its LV disk" has_line "guest lv-wrote yes"
check "and to its qcow2 disk" has_line "guest img-wrote yes"

rc_is backup 0 "vstor backup of the running domain"
like "$(err_of backup)" "disk xvdb .*is not an LV: skipped" \
	"its qcow2 disk is skipped with a notice"
is "$(val manifests)/$(val images)" 1/1 "one backup: of the one LV disk"
like "$(val manifest)" '^vgb-c1-xvda-[0-9]{8}T[0-9]{6}Z\.json$' \
	"named after the clone's LV"
is "$(val man-source)" "vgb c1-xvda c1" "its manifest names the LV and the domain"
rc_is check-bk 0 "qemu-img check accepts the backup"
rc_is verify 0 "vstor backup verify accepts it"
thin=$(val man-thin)
like "$thin" '^c1-xvda\.vsbk-' "the manifest names the thin snapshot kept for incrementals"
is "$(val lvs)" "$(printf '%s\n' c1-xvda "$thin" pool tmpl | LC_ALL=C sort | tr '\n' ' ')" \
	"no other LV is left (no snapshot but the kept one)"
is "$(val snap-origin)" "$(printf '%s\n' "c1-xvda<tmpl" "$thin<c1-xvda" | LC_ALL=C sort | tr '\n' ' ')" \
	"the clone's origin is the template, the kept snapshot's the clone"

is "$(grep -c 'count-timeout' <<<"$vm_out")" 0 "the guest wrote on past the backup"
rc_is shutdown 0 "vstor shutdown -w of the clone"
check "the domain is gone" has_line "gone yes"
check "the guest stopped on the power button" has_line "guest final $(val last)"
is "$(val leftovers)/$(val listed)" 0/0 "no process or domain of it is left"

n0=$(val before) n1=$(val after) last=$(val last)
is "$(val c1-lv)" "TMPL-LV-MARK GUEST-LV-WRITE count $(printf %08d "${last:-0}")" \
	"the clone LV holds the template's data and the guest's writes"
is "$(val c1-img)" "TMPL-IMG-MRK GUEST-IMG-WRITE" \
	"the clone's overlay holds the template's data and the guest's write"
check "the template LV is byte for byte unchanged" has_line "tmpl-lv-same yes"
check "the template image too" has_line "tmpl-img-same yes"
rc_is img-check 0 "vstor img check: the overlay is clean"
rc_is qemu-img-check 0 "qemu-img check: the overlay is clean"

rc_is restore 0 "vstor restore of the backup into a new thin LV"
rest=$(val rest)
like "$rest" "^TMPL-LV-MARK GUEST-LV-WRITE count [0-9]{8}$" \
	"it holds the template's marker, the guest's and a whole counter sector"
m=${rest##* }
m=$((10#${m:-0}))
ok_if=0
[ -n "$n0" ] && [ -n "$n1" ] && [ "$m" -ge "$n0" ] && [ "$m" -le $((n1 + 1)) ] && ok_if=1
is "$ok_if" 1 "the counter is the snapshot's: $n0 <= $m <= $n1 + 1"
check "not the guest's final count" test "$m" -lt "${last:-0}"
