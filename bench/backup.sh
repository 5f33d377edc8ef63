#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# backup.sh: `vstor backup` against the manual way, in the test VM (LVM
# needs device-mapper, which the hosts we bench on lack; see
# tests/vm/README.md).  Two lines:
#
#   full backup      `vstor backup VG/LV DEST` against what it replaces:
#                    `lvcreate -s` of the LV, `dd if=SNAPSHOT bs=1M |
#                    zstd -T0 > FILE`, `lvremove` of the snapshot.  Both
#                    take, read and drop a snapshot of the same classic
#                    LV; the ratio is peer time / vstor time (above 1.0
#                    vstor is faster; the target is 1.5).
#   incremental 1%   `vstor backup -i` of a thin LV after 1% of its 64 KiB
#                    clusters were rewritten, against a full backup of
#                    the same thin LV: incremental time / full time (the
#                    target is at most 0.10).
#
# The LVs hold a real file system: an ext4 image of BENCH_SIZE made once
# on the host from /usr/include (mkfs.ext4 -d), about a quarter full of
# text, the rest free (zeros).  The guest's page cache is dropped before
# every run, so each tool reads the LV from the virtual disk.  Runs
# alternate (vstor first, then the peer, then the other way round),
# BENCH_ROUNDS times each; each side's median counts.  Everything runs
# under TCG, so absolute times are slow and only the ratios mean
# something.
#
# Environment:
#   VSTOR          the vstor binary (default: build/vstor of this tree)
#   BENCH_DIR      where the VM's disk file goes (default /var/tmp)
#   BENCH_CACHE    where the ext4 image is kept (default build/bench-cache)
#   BENCH_SIZE     the LVs' size (default 512M)
#   BENCH_SRC      the folder copied into the file system (default
#                  /usr/include, about 130 MB: give a smaller one, such
#                  as /usr/include/linux, for a BENCH_SIZE under 256M)
#   BENCH_ROUNDS   runs per side (default 3)
#   BENCH_SMP      the VM's CPUs (default 2: zstd -T0 and vstor's
#                  threads both use them)
#
# Exit status: 0 when every run succeeded (whatever the ratios), 77 when a
# requirement is missing (the reason is printed), 1 when a run failed.

set -euo pipefail

# shellcheck source=bench/lib/functions.sh
. "$(dirname "$0")/lib/functions.sh"

here=$(cd "$(dirname "$0")" && pwd)
VSTOR=${VSTOR:-$here/../build/vstor}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH_CACHE=${BENCH_CACHE:-$here/../build/bench-cache}
BENCH_SIZE=${BENCH_SIZE:-512M}
BENCH_SRC=${BENCH_SRC:-/usr/include}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SMP=${BENCH_SMP:-2}

skip() {
	echo "SKIP: backup: $*"
	exit 77
}

die() {
	echo "backup: $*" >&2
	exit 1
}

for c in qemu-system-x86_64 busybox mkfs.ext4 zstd lvm thin_delta; do
	command -v "$c" >/dev/null || skip "no $c (make deps installs it)"
done
[ -x "$VSTOR" ] || skip "no vstor binary at $VSTOR (run make first)"
[ -d "$BENCH_DIR" ] || skip "BENCH_DIR=$BENCH_DIR is not a directory"
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_ROUNDS=$BENCH_ROUNDS: not a positive number"
[[ $BENCH_SIZE =~ ^[1-9][0-9]*M$ ]] ||
	die "BENCH_SIZE=$BENCH_SIZE: give it in MiB (512M)"
VSTOR=$(cd "$(dirname "$VSTOR")" && pwd)/$(basename "$VSTOR")
mib=${BENCH_SIZE%M}

# The source file system, made once under a temporary name.
[ -d "$BENCH_SRC" ] || skip "BENCH_SRC=$BENCH_SRC is not a folder"
src=$BENCH_CACHE/backup-ext4-$BENCH_SIZE-$(tr / _ <<<"$BENCH_SRC").raw
if [ ! -s "$src" ]; then
	mkdir -p "$BENCH_CACHE"
	echo "backup: making $src ($BENCH_SIZE ext4 holding $BENCH_SRC, once)"
	rm -f "$src.tmp"
	truncate -s "$BENCH_SIZE" "$src.tmp"
	mkfs.ext4 -q -F -d "$BENCH_SRC" "$src.tmp" ||
		die "mkfs.ext4 failed (BENCH_SRC too large for BENCH_SIZE?)"
	mv "$src.tmp" "$src"
fi

work=$(mktemp -d "$BENCH_DIR/vstor-bench-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The VG: two LVs of BENCH_SIZE, a pool for the thin one, and room for
# a full-size classic snapshot.
truncate -s $((mib * 5 + 512))M "$work/pv.img"

cat >"$work/guest.sh" <<GUEST_HEAD
#!/bin/bash
set -eu
V=$VSTOR
MIB=$mib
ROUNDS=$BENCH_ROUNDS
GUEST_HEAD
cat >>"$work/guest.sh" <<'GUEST'
V=/host$V
D=/tmp/dest
now() { date +%s.%N; }
secs() { echo "$(now) - $1" | bc; }
drop() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
pvcreate -q /dev/vda >/dev/null
vgcreate -q vgb /dev/vda >/dev/null
lvcreate -q -L ${MIB}M -n src vgb >/dev/null
lvcreate -q -L $((MIB + 64))M -T vgb/pool >/dev/null 2>&1
lvcreate -q -V ${MIB}M -T vgb/pool -n tsrc >/dev/null 2>&1
dd if=/dev/vdb of=/dev/vgb/src bs=1M oflag=direct status=none
dd if=/dev/vdb of=/dev/vgb/tsrc bs=1M oflag=direct status=none
mkdir -p "$D"

vstor_full() { # LV
	rm -rf "$D" && mkdir -p "$D"
	drop
	local t=$(now)
	"$V" backup "vgb/$1" "$D" >/dev/null
	secs "$t"
}
peer_full() {
	rm -f /tmp/peer.zst
	drop
	local t=$(now)
	lvcreate -q -s -L $((MIB + MIB / 32 + 4))M -n psnap vgb/src >/dev/null
	dd if=/dev/vgb/psnap bs=1M status=none | zstd -q -T0 >/tmp/peer.zst
	lvremove -q -y vgb/psnap >/dev/null
	secs "$t"
}
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		echo "RESULT full-vstor $(vstor_full src)"
		echo "RESULT full-peer $(peer_full)"
	else
		echo "RESULT full-peer $(peer_full)"
		echo "RESULT full-vstor $(vstor_full src)"
	fi
done
echo "SIZE vstor $(du -cb "$D"/*.qcow2 | tail -1 | cut -f1)"
echo "SIZE peer $(stat -c %s /tmp/peer.zst)"
rm -f /tmp/peer.zst

# The thin LV: a full backup, then per round 1% of the clusters changed
# and an incremental one; full backups of it timed the same way.
changed=$((MIB * 16 / 100))
for r in $(seq "$ROUNDS"); do
	echo "RESULT thin-full $(vstor_full tsrc)"
	for i in $(seq "$changed"); do
		c=$(((RANDOM * 32768 + RANDOM) % (MIB * 16)))
		dd if=/dev/urandom of=/dev/vgb/tsrc bs=64k seek=$c count=1 \
			oflag=direct conv=notrunc status=none
	done
	drop
	t=$(now)
	"$V" backup -i vgb/tsrc "$D" >/tmp/inc.out
	echo "RESULT thin-inc $(secs "$t")"
	grep -q 'incremental (thin-delta)' /tmp/inc.out ||
		{ echo "not a thin-delta incremental: $(cat /tmp/inc.out)"; exit 1; }
done
GUEST

echo "backup: booting the test VM ($BENCH_SMP CPUs, TCG; minutes)"
out=$(VM_SMP=$BENCH_SMP VM_MEM=1024 VM_TIMEOUT=3600 \
	"$here/../tests/vm/run.sh" "$work/guest.sh" \
	-blockdev driver=file,filename="$work/pv.img",node-name=f0 \
	-blockdev driver=raw,file=f0,node-name=d0 \
	-device virtio-blk-pci,drive=d0 \
	-blockdev driver=file,filename="$src",node-name=f1,read-only=on \
	-blockdev driver=raw,file=f1,node-name=d1,read-only=on \
	-device virtio-blk-pci,drive=d1) || {
	tail -30 <<<"$out" >&2
	die "the guest failed"
}

times() { sed -n "s/^RESULT $1 \([0-9.]*\)\$/\1/p" <<<"$out"; }
# shellcheck disable=SC2046 # lists of numbers
fv=$(median $(times full-vstor))
# shellcheck disable=SC2046
fp=$(median $(times full-peer))
# shellcheck disable=SC2046
tf=$(median $(times thin-full))
# shellcheck disable=SC2046
ti=$(median $(times thin-inc))
sv=$(sed -n 's/^SIZE vstor //p' <<<"$out")
sp=$(sed -n 's/^SIZE peer //p' <<<"$out")
[ -n "$fv" ] && [ -n "$fp" ] && [ -n "$tf" ] && [ -n "$ti" ] ||
	die "missing results in the guest's output"

printf '%-34s %10s %10s %8s\n' "work ($BENCH_SIZE LV)" "vstor s" "peer s" "ratio"
printf '%-34s %10.2f %10.2f %8s   (peer/vstor, target >= 1.5)\n' \
	"full backup vs dd|zstd -T0" "$fv" "$fp" "$(ratio "$fp" "$fv")"
printf '%-34s %10.2f %10.2f %8s   (inc/full, target <= 0.10)\n' \
	"thin incremental 1% vs full" "$ti" "$tf" "$(ratio "$ti" "$tf")"
printf 'output sizes: vstor %s bytes, dd|zstd %s bytes\n' "$sv" "$sp"
