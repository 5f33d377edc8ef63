#!/bin/bash
# vstor backup / backup verify / restore on real LVM, in the test VM.
#
# For a classic LV and a thin LV, each 32 MiB with 8 MiB of data, a
# writer process keeps rewriting, zeroing (and on the thin LV
# discarding) random 64 KiB clusters of the origin while a full backup
# and two incrementals are taken.
# (The sizes are small because every lvm command costs a second or more
# under TCG.)
#
# Knowing the content "at the snapshot": the snapshot is taken inside
# vstor, so the test freezes the writer's whole process group (SIGSTOP,
# then waits until every member is stopped: a write in flight finishes
# first, and the writer writes with O_DIRECT so nothing waits in the page
# cache), copies the origin (its content at this point), starts
# the backup, waits until the vstor process holds the snapshot's
# device-mapper device open (lvm_snapshot_create has then returned: the
# snapshot is complete) and only then lets the writer go on (SIGCONT).
# So the writer runs during every read of every snapshot, and the
# snapshot's content is exactly what the test recorded.
#
# Checked in the guest, each printed as a CHECK line that becomes a test
# point here: each backup's stored cluster count equals the clusters
# that really changed (incrementals) or hold data (full), so each
# incremental is smaller than the full by the ratio of unchanged data
# (asserted on the files' sizes too); qemu-img check accepts every
# image; restoring every point into a raw file gives the recorded
# checksum and qemu-img compare finds it identical to the backup; one
# point restored into an LV full of garbage and one as qcow2; backup
# verify accepts the chains and names the cluster of a corrupted copy;
# the thin incremental found its LV without lvs and ran lvcreate and
# lvremove in one lvm shell (its -D lvm output); a
# backup into a full destination fails, leaves no new snapshot (lvs) and
# no file claiming to be a backup; a backup stopped by SIGTERM the same.
#
# test-timeout: 1200
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

vm_requires
requires "$VSTOR" qemu-img qemu-io python3 lvm dmsetup thin_delta setsid \
	mkfs.ext4 blkdiscard

NCHECKS=80
plan $((NCHECKS + 1))

truncate -s 1G "$T/pv.img"

cat >"$T/clusters.py" <<'PY'
# nonzero FILE: clusters of 64 KiB that hold data;
# diff A B: clusters that differ.
import sys
C = 65536
def blocks(path):
    with open(path, "rb") as f:
        while True:
            b = f.read(C)
            if not b:
                return
            yield b
if sys.argv[1] == "nonzero":
    z = bytes(C)
    print(sum(1 for b in blocks(sys.argv[2]) if b != z[:len(b)]))
else:
    print(sum(1 for a, b in zip(blocks(sys.argv[2]), blocks(sys.argv[3]))
              if a != b))
PY

cat >"$T/guest.sh" <<GUEST_HEAD
#!/bin/bash
set -u
V=/host$VSTOR
CL=/host$T/clusters.py
GUEST_HEAD
cat >>"$T/guest.sh" <<'GUEST'
W=/tmp/w
D=$W/dest
mkdir -p "$D"
check() { # check NAME COMMAND...: one CHECK line
	local name=$1
	shift
	if "$@" >"$W/check.out" 2>&1; then
		echo "CHECK 1 $name"
	else
		echo "CHECK 0 $name :: $(tail -c 600 "$W/check.out" | tr '\n' ' ')"
	fi
}
die() {
	echo "FATAL: $*"
	exit 1
}

pvcreate -q /dev/vda && vgcreate -q vgb /dev/vda || die "pv/vg"
lvcreate -q -L 32M -n cl vgb >/dev/null || die "lvcreate cl"
lvcreate -q -L 100M -T vgb/pool >/dev/null 2>&1 || die "pool"
lvcreate -q -V 32M -T vgb/pool -n th >/dev/null 2>&1 || die "thin"
for lv in cl th; do
	dd if=/dev/urandom of=/dev/vgb/$lv bs=1M count=8 oflag=direct status=none ||
		die "fill $lv"
done

# The writer: random clusters of the first 16 MiB, with O_DIRECT.
writer() {
	local dev=$1 kind=$2 i=0 c
	while :; do
		c=$(((RANDOM * 32768 + RANDOM) % 256))
		i=$((i + 1))
		if [ $((i % 7)) = 0 ]; then
			dd if=/dev/zero of="$dev" bs=64k seek=$c count=1 oflag=direct conv=notrunc status=none
		elif [ "$kind" = thin ] && [ $((i % 5)) = 0 ]; then
			blkdiscard -o $((c * 65536)) -l 65536 "$dev"
		else
			dd if=/dev/urandom of="$dev" bs=64k seek=$c count=1 oflag=direct conv=notrunc status=none
		fi
		# Under TCG a writer at full speed would starve the rest.
		sleep 0.1
	done
}
declare -A PG
start_writer() {
	setsid bash -c "$(declare -f writer); writer /dev/vgb/$1 $2" &
	PG[$1]=$!
}
# Stop the writer's group and wait until each member is stopped.
stop_writer() {
	local pg=$1 f st busy
	kill -STOP -- -"$pg"
	for _ in $(seq 400); do
		busy=0
		for f in /proc/[0-9]*/stat; do
			{ read -r st <"$f"; } 2>/dev/null || continue
			st=${st##*) }
			# shellcheck disable=SC2086 # fields
			set -- $st
			# T: stopped; Z: a dd that ended, which its stopped
			# parent has not reaped yet.
			[ "$3" = "$pg" ] && [ "$1" != T ] && [ "$1" != Z ] && busy=1
		done
		[ $busy = 0 ] && return 0
		sleep 0.05
	done
	die "the writer does not stop"
}
# A dm device, not device-mapper's control node (which the source's
# lookup may open before the snapshot exists).
holds_dm() {
	ls -l /proc/"$1"/fd 2>/dev/null | grep -v ' /dev/mapper/control$' |
		grep -q -e ' /dev/dm-' -e ' /dev/mapper/'
}

# point LV K [OPTIONS]: one backup at a recorded point.
declare -A MAN
DBG=
point() {
	local lv=$1 k=$2 bp rc=0
	shift 2
	stop_writer "${PG[$lv]}"
	dd if=/dev/vgb/$lv of="$W/$lv.$k.img" iflag=direct bs=1M conv=sparse status=none
	# shellcheck disable=SC2086 # DBG: options, or nothing
	"$V" $DBG backup "$@" vgb/$lv "$D" >"$W/out" 2>"$W/err" &
	bp=$!
	while kill -0 $bp 2>/dev/null && ! holds_dm $bp; do sleep 0.02; done
	kill -CONT -- -"${PG[$lv]}"
	wait $bp || rc=$?
	check "$lv point $k: backup $* succeeds" test $rc = 0
	[ $rc = 0 ] || cat "$W/err"
	MAN[$lv.$k]=$(sed -n '1s/: .*//p' "$W/out")
	echo "TIME $SECONDS s: $lv point $k done"
}
field() { # field MANIFEST KEY
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
nonzero() { python3 "$CL" nonzero "$1"; }
ndiff() { python3 "$CL" diff "$1" "$2"; }
size_of() { stat -c %s "${1%.json}.qcow2"; }

for lv in cl th; do
	kind=linear
	[ $lv = th ] && kind=thin
	start_writer $lv $kind
	# Cluster 400, outside the writer's range, holds data at point 0
	# and zeros at point 1: incremental 1 has a zeroed change however
	# few writes the writer made in between on a loaded host.
	dd if=/dev/urandom of=/dev/vgb/$lv bs=64k seek=400 count=1 oflag=direct conv=notrunc status=none
	sleep 1
	point $lv 0
	dd if=/dev/zero of=/dev/vgb/$lv bs=64k seek=400 count=1 oflag=direct conv=notrunc status=none
	sleep 2
	point $lv 1 -i -p
	sleep 2
	# The thin one says how it ran lvm: none for the source (its dm
	# device), one shell for lvcreate and lvremove.
	DBG=
	[ $lv = th ] && DBG="-D lvm"
	point $lv 2 --incremental
	DBG=
	cp "$W/err" "$W/$lv.2.err"
	kill -KILL -- -"${PG[$lv]}"
	wait "${PG[$lv]}" 2>/dev/null
done
check "th: the incremental described the thin LV from its dm device" \
	grep -q "vgb/th: described from its dm device" "$W/th.2.err"
check "th: it ran lvm twice, lvcreate and lvremove, both in one lvm shell" \
	sh -c "test \$(grep -c 'running lvm' '$W/th.2.err') = 2 &&
		test \$(grep -c -e 'running lvm lvcreate (in the lvm shell)' \
			-e 'running lvm lvremove (in the lvm shell)' '$W/th.2.err') = 2 &&
		test \$(grep -c 'started the lvm shell' '$W/th.2.err') = 1"

for lv in cl th; do
	m0=${MAN[$lv.0]}
	nz=$(nonzero "$W/$lv.0.img")
	check "$lv: the full backup stores the $nz clusters holding data" \
		test "$(field "$m0" changed_clusters)" = "$nz"
	method=checksums
	[ $lv = th ] && method=thin-delta
	for k in 1 2; do
		mk=${MAN[$lv.$k]}
		ch=$(ndiff "$W/$lv.$((k - 1)).img" "$W/$lv.$k.img")
		check "$lv: incremental $k stores exactly the $ch changed clusters" \
			test "$(field "$mk" changed_clusters)" = "$ch"
		check "$lv: incremental $k found them by $method" \
			test "$(field "$mk" method)" = "$method"
		check "$lv: incremental $k is smaller than the full by the ratio of unchanged data" \
			test $(($(size_of "$mk") * nz)) -le $(($(size_of "$m0") * ch + 512 * 1024 * nz))
		prev=$(basename "${MAN[$lv.$((k - 1))]%.json}").qcow2
		check "$lv: incremental $k's backing file is the previous point" \
			sh -c "qemu-img info '${mk%.json}.qcow2' | grep -Eq '^backing file: ${prev//./\\.}( |\$)'"
	done
	check "$lv: the writer changed something between points" \
		test "$(ndiff "$W/$lv.0.img" "$W/$lv.2.img")" -ge 5
	check "$lv: some changes were zeroed clusters" \
		test "$(($(field "${MAN[$lv.1]}" zero_clusters) + $(field "${MAN[$lv.2]}" zero_clusters)))" -gt 0
	for k in 0 1 2; do
		mk=${MAN[$lv.$k]}
		img=${mk%.json}.qcow2
		check "$lv point $k: qemu-img check accepts the image" qemu-img check -q "$img"
		rm -f /tmp/r.raw
		check "$lv point $k: restore into a raw file" "$V" restore "$mk" /tmp/r.raw
		check "$lv point $k: the restored disk is the snapshot's content" \
			cmp /tmp/r.raw "$W/$lv.$k.img"
		check "$lv point $k: qemu-img compare: backup and restore are identical" \
			qemu-img compare -q -f qcow2 -F raw "$img" /tmp/r.raw
		rm -f /tmp/r.raw
	done
	check "$lv: backup verify accepts the chain" "$V" backup verify "${MAN[$lv.2]}"
done
check "the images are zstd-compressed" \
	sh -c "qemu-img info '${MAN[cl.0]%.json}.qcow2' | grep -q 'compression type: zstd'"
check "the thin LV keeps one snapshot: the last backup's" \
	test "$(lvs --noheadings -o lv_name vgb | grep -c 'th\.vsbk')" = 1
check "the classic LV keeps none" \
	sh -c "! lvs --noheadings -o lv_name vgb | grep -q 'cl\.vsbk'"

# Restore into an LV full of garbage: zeros must be written too.
lvcreate -q -L 32M -n rt vgb >/dev/null || die "lvcreate rt"
dd if=/dev/urandom of=/dev/vgb/rt bs=1M count=32 oflag=direct status=none
check "restore into an LV" "$V" restore "${MAN[th.1]}" vgb/rt
check "the LV holds the point's content" cmp /dev/vgb/rt "$W/th.1.img"
check "restore -O qcow2" "$V" restore -O qcow2 "${MAN[cl.1]}" /tmp/r.qcow2
check "the qcow2 restore is the same disk" qemu-img compare -q /tmp/r.qcow2 "${MAN[cl.1]%.json}.qcow2"
rm -f /tmp/r.qcow2
check "restore refuses an existing file" sh -c "! '$V' restore '${MAN[cl.1]}' '$W/out'"

# A corrupted copy: verify names the cluster.
mkdir -p /tmp/bad
b=$(basename "${MAN[cl.0]%.json}")
cp "$D/$b".* /tmp/bad/
qemu-io -f qcow2 -c "write -P 0x55 1M 64k" "/tmp/bad/$b.qcow2" >/dev/null
"$V" backup verify "/tmp/bad/$b.json" >"$W/out" 2>"$W/err"
rc=$?
check "verify fails on a corrupted backup" test $rc = 1
check "verify names the cluster" grep -q "cluster 16 (offset 0x100000)" "$W/err"
check "restore refuses the corrupted backup" sh -c "! '$V' restore '/tmp/bad/$b.json' /tmp/r.raw && test ! -e /tmp/r.raw"

# A full destination: the backup fails and leaves nothing behind.
mkdir -p /tmp/small
mount -t tmpfs -o size=3m tmpfs /tmp/small || die "tmpfs"
for lv in cl th; do
	before=$(lvs --noheadings -o lv_name vgb | grep "$lv\.vsbk" | tr -d ' ' | sort)
	"$V" backup vgb/$lv /tmp/small >"$W/out" 2>"$W/err"
	rc=$?
	check "$lv: a backup into a full folder fails" test $rc = 1
	check "$lv: it says why" grep -q "No space left" "$W/err"
	after=$(lvs --noheadings -o lv_name vgb | grep "$lv\.vsbk" | tr -d ' ' | sort)
	check "$lv: no snapshot is left behind" test "$before" = "$after"
	check "$lv: no manifest and no partial image are left" \
		test -z "$(ls -A /tmp/small | grep -v '^\.vstor-backup\.lock$')"
done
check "the classic LV has no snapshot at all" \
	sh -c "! lvs --noheadings -o lv_name vgb | grep -q 'cl\.vsbk'"
umount /tmp/small

# SIGTERM in the middle: the same.  A dm-delay under the destination
# keeps the backup busy long enough to be interrupted.
truncate -s 64M /tmp/slow.img
lo=$(losetup -f --show /tmp/slow.img)
dmsetup create slow --table "0 131072 delay $lo 0 40" || die "dm-delay"
mkfs.ext4 -q /dev/mapper/slow && mkdir -p /tmp/slowfs &&
	mount -o sync /dev/mapper/slow /tmp/slowfs || die "mkfs"
"$V" backup -m 1 vgb/cl /tmp/slowfs >"$W/out" 2>"$W/err" &
bp=$!
while kill -0 $bp 2>/dev/null && ! holds_dm $bp; do sleep 0.02; done
sleep 0.5
kill -TERM $bp
wait $bp
rc=$?
check "a backup stopped by SIGTERM fails" test $rc = 1
check "it says it was interrupted" grep -q "interrupted" "$W/err"
check "the interrupted backup left no snapshot" \
	sh -c "! lvs --noheadings -o lv_name vgb | grep -q 'cl\.vsbk'"
check "the interrupted backup left no file" \
	test -z "$(ls -A /tmp/slowfs | grep -v -e '^\.vstor-backup\.lock$' -e '^lost+found$')"
umount /tmp/slowfs
dmsetup remove slow
losetup -d "$lo"
exit 0
GUEST

rc=0
VM_TIMEOUT=${VM_TIMEOUT_BACKUP:-1100} VM_MEM=768 vm_run "$T/guest.sh" \
	-blockdev driver=file,filename="$T/pv.img",node-name=f0 \
	-blockdev driver=raw,file=f0,node-name=d0 \
	-device virtio-blk-pci,drive=d0 || rc=$?
is "$rc" 0 "the guest script ran to its end"
n=0
while IFS= read -r line; do
	case $line in
	"CHECK 1 "*)
		ok "${line#CHECK 1 }"
		n=$((n + 1))
		;;
	"CHECK 0 "*)
		rest=${line#CHECK 0 }
		not_ok "${rest%% :: *}" "${rest#* :: }"
		n=$((n + 1))
		;;
	esac
done <<<"$vm_out"
[ "$n" = "$NCHECKS" ] || diag "the guest printed $n checks, $NCHECKS expected" \
	"$(printf '%s\n' "$vm_out" | grep -v '^CHECK' | tail -20)"
while [ "$n" -lt "$NCHECKS" ]; do
	not_ok "a check the guest never reached"
	n=$((n + 1))
done
