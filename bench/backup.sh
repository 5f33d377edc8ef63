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
# on the host from BENCH_SRC (mkfs.ext4 -d): by default a 2 GiB disk a
# bit under half full of /usr/share (documentation, locales, icons, man
# pages: text and already-compressed files), the rest free space, which
# reads as zeros and which a thin LV has never provisioned (the image is
# copied in with conv=sparse).  A disk of 512 MiB made the incremental
# line meaningless: its 1% was 80 clusters, and it measured the lvm
# commands around it, not the backup.  The guest's page cache is
# dropped before every run, so each tool reads the LV from the virtual
# disk.  Backups and the peer's file go to an ext4 file system on an LV
# of the same VG, not to the guest's memory.  Runs alternate (vstor
# first, then the peer, then the other way round), BENCH_ROUNDS times
# each; each side's median counts.  Everything runs under TCG, so
# absolute times are slow and only the ratios mean something; one round
# at 2G took 13 minutes on a 2-CPU host at load 3.
#
# Environment:
#   VSTOR          the vstor binary (default: build/vstor of this tree)
#   BENCH_DIR      where the VM's disk file goes (default /var/tmp)
#   BENCH_CACHE    where the ext4 image is kept (default build/bench-cache)
#   BENCH_SIZE     the LVs' size, in M or G (default 2G)
#   BENCH_SRC      the folder copied into the file system (default
#                  /usr/share; about 0.9 GB on a Debian 12 build host:
#                  give a smaller one, such as /usr/include, for a
#                  BENCH_SIZE under 1G)
#   BENCH_ROUNDS   runs per side (default 1)
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
BENCH_SIZE=${BENCH_SIZE:-2G}
BENCH_SRC=${BENCH_SRC:-/usr/share}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_SMP=${BENCH_SMP:-2}

skip() {
	echo "SKIP: backup: $*"
	exit 77
}

die() {
	echo "backup: $*" >&2
	exit 1
}

for c in qemu-system-x86_64 busybox mkfs.ext4 zstd lvm thin_delta python3; do
	command -v "$c" >/dev/null || skip "no $c (make deps installs it)"
done
[ -x "$VSTOR" ] || skip "no vstor binary at $VSTOR (run make first)"
[ -d "$BENCH_DIR" ] || skip "BENCH_DIR=$BENCH_DIR is not a directory"
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_ROUNDS=$BENCH_ROUNDS: not a positive number"
if [[ $BENCH_SIZE =~ ^[1-9][0-9]{0,5}M$ ]]; then
	mib=${BENCH_SIZE%M}
elif [[ $BENCH_SIZE =~ ^[1-9][0-9]{0,2}G$ ]]; then
	mib=$((${BENCH_SIZE%G} * 1024))
else
	die "BENCH_SIZE=$BENCH_SIZE: give it in MiB or GiB (512M, 2G)"
fi
[ "$mib" -ge 64 ] || die "BENCH_SIZE=$BENCH_SIZE: at least 64M"
VSTOR=$(cd "$(dirname "$VSTOR")" && pwd)/$(basename "$VSTOR")

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
# The VG: two LVs of BENCH_SIZE, a pool for the thin one, the
# destination's LV, and room for a full-size classic snapshot (a sparse
# file: only what is written takes space).
truncate -s $((mib * 6 + 512))M "$work/pv.img"

cat >"$work/guest.sh" <<GUEST_HEAD
#!/bin/bash
set -eu
V=$VSTOR
MIB=$mib
ROUNDS=$BENCH_ROUNDS
GUEST_HEAD
cat >>"$work/guest.sh" <<'GUEST'
V=/host$V
D=/mnt/dest/vstor
P=/mnt/dest/peer.zst
now() { date +%s.%N; }
secs() { echo "$(now) - $1" | bc; }
# The programs both sides run, with their libraries.  In the test VM they
# come from the host over virtio-9p; faulting them in again after every
# drop cost seconds under TCG (the first lvm run after a drop took 3 to
# 9 s, the next ones about 1 s), which is the test VM's cost, not a
# backup's: on a real host they sit on a local disk or in memory.  So
# after the drop, outside the time, the same files are read back for
# either side; the LVs' data and LVM's metadata stay cold.
progs=$(for p in "$V" lvm thin_delta zstd dd; do
	p=$(command -v "$p")
	readlink -f "$p"
	ldd "$p" | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' \
		-e 's/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
done | sort -u)
drop() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2086 # a list of paths without blanks
	cat $progs >/dev/null
}
pvcreate -q /dev/vda >/dev/null
vgcreate -q vgb /dev/vda >/dev/null
lvcreate -q -L ${MIB}M -n src vgb >/dev/null
lvcreate -q -L $((MIB + 64))M -T vgb/pool >/dev/null 2>&1
lvcreate -q -V ${MIB}M -T vgb/pool -n tsrc >/dev/null 2>&1
lvcreate -q -L ${MIB}M -n dest vgb >/dev/null
# The LVs are new: the classic one reads zeros (a fresh sparse PV), the
# thin one is unprovisioned, so copying only the non-zero blocks gives
# both the image's content.
dd if=/dev/vdb of=/dev/vgb/src bs=1M oflag=direct conv=sparse status=none
dd if=/dev/vdb of=/dev/vgb/tsrc bs=1M oflag=direct conv=sparse status=none
# Inode tables written now, not by ext4lazyinit during the runs.
mkfs.ext4 -q -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 /dev/vgb/dest
mkdir -p /mnt/dest
mount /dev/vgb/dest /mnt/dest
mkdir -p "$D"

vstor_full() { # LV
	rm -rf "$D" && mkdir -p "$D"
	drop
	local t=$(now)
	"$V" backup "vgb/$1" "$D" >/dev/null
	secs "$t"
}
peer_full() {
	rm -f "$P"
	drop
	local t=$(now)
	lvcreate -q -s -L $((MIB + MIB / 32 + 4))M -n psnap vgb/src >/dev/null
	dd if=/dev/vgb/psnap bs=1M status=none | zstd -q -T0 >"$P"
	sync "$P" # fsync: vstor's backup is on disk when it returns
	lvremove -q -y vgb/psnap >/dev/null
	secs "$t"
}
# The last chain's thin snapshot stays when its folder is emptied for a
# new full backup: removed, outside the time, so none piles up.
drop_thin_snaps() {
	local s
	for s in $(lvs --noheadings -o lv_name -S 'lv_name=~^tsrc\.vsbk' vgb); do
		lvremove -q -y "vgb/$s" >/dev/null
	done
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
echo "SIZE peer $(stat -c %s "$P")"
rm -f "$P"

# The thin LV: a full backup, then per round 1% of the clusters changed
# and an incremental one; full backups of it timed the same way.
changed=$((MIB * 16 / 100))
for r in $(seq "$ROUNDS"); do
	drop_thin_snaps
	echo "RESULT thin-full $(vstor_full tsrc)"
	# One writer process, not a dd per cluster: after hundreds of dd
	# runs the next lvm process sat in the guest kernel for one to
	# three minutes (soft lockups; not understood), which no
	# incremental backup made on a real host would pay.
	python3 - "$changed" "$((MIB * 16))" <<'PY'
import os, random, sys
n, clusters = int(sys.argv[1]), int(sys.argv[2])
fd = os.open("/dev/vgb/tsrc", os.O_WRONLY)
for _ in range(n):
    os.pwrite(fd, os.urandom(65536), random.randrange(clusters) * 65536)
os.fsync(fd)
os.close(fd)
PY
	drop
	t=$(now)
	"$V" backup -i vgb/tsrc "$D" >/tmp/inc.out
	echo "RESULT thin-inc $(secs "$t")"
	grep -q 'incremental (thin-delta)' /tmp/inc.out ||
		{ echo "not a thin-delta incremental: $(cat /tmp/inc.out)"; exit 1; }
done
GUEST

# The host's load decides how slow TCG is: said with the result.
load() { cut -d' ' -f1 /proc/loadavg; }
load0=$(load)
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
printf 'each run (s): full vstor %s; peer %s; thin full %s; thin incremental %s\n' \
	"$(times full-vstor | xargs)" "$(times full-peer | xargs)" \
	"$(times thin-full | xargs)" "$(times thin-inc | xargs)"
printf 'host load (1-minute average): %s at the start, %s at the end\n' \
	"$load0" "$(load)"
