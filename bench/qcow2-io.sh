#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# qcow2-io.sh: `vstor img bench` against `qemu-img bench` on qcow2 images:
# 4 KiB reads that jump around an allocated image, 4 KiB writes that
# allocate a new cluster each, 4 KiB writes over allocated clusters, and
# 64 KiB sequential writes to a new image; both tools with the same
# command line on the same kind of image in the same run, alternating.
# Prints a table with the ratio vstor/qemu-img (IOPS; above 1.0 means
# vstor is faster).  See bench/README.md.
#
# Environment:
#   VSTOR          the vstor binary (default: build/vstor of this tree)
#   QEMU_IMG       the qemu-img binary (default: qemu-img)
#   BENCH_DIR      where the images go (default /var/tmp: /tmp may be a
#                  tmpfs)
#   BENCH_SIZE     virtual size of the images, a power of two from 256M
#                  (default 1G)
#   BENCH_DEPTH    requests in flight, -d of both tools (default 32)
#   BENCH_AIO      I/O engine, -i of both tools (default threads, the
#                  default of qemu-img bench)
#   BENCH_COUNT    requests per run; default: calibrated per line so that
#                  a qemu-img run lasts about BENCH_SECONDS (and capped
#                  where a line must not wrap, see below)
#   BENCH_SECONDS  target length of one qemu-img run (default 0.5)
#   BENCH_ROUNDS   runs per tool and line; the median counts (default 3)
#
# Exit status: 0 when every run succeeded (whatever the ratios), 77 when a
# requirement is missing (the reason is printed), 1 when a run failed.

set -euo pipefail

# shellcheck source=bench/lib/functions.sh
. "$(dirname "$0")/lib/functions.sh"

here=$(cd "$(dirname "$0")" && pwd)
VSTOR=${VSTOR:-$here/../build/vstor}
QEMU_IMG=${QEMU_IMG:-qemu-img}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_DEPTH=${BENCH_DEPTH:-32}
BENCH_AIO=${BENCH_AIO:-threads}
BENCH_COUNT=${BENCH_COUNT:-}
BENCH_SECONDS=${BENCH_SECONDS:-0.5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}

BS=4096
CLUSTER=65536
# The stride of the 4 KiB lines: a prime number of 4 KiB blocks (~31
# MiB), as in raw-io.sh.  Both tools wrap a position past the end modulo
# the image size, so on a power-of-two image the positions visit every
# block once, far from the last one, before any block comes again.
STEP_BLOCKS=7919
STEP=$((STEP_BLOCKS * BS))

skip() {
	echo "SKIP: qcow2-io: $*"
	exit 77
}

die() {
	echo "qcow2-io: $*" >&2
	exit 1
}

command -v "$QEMU_IMG" >/dev/null || skip "no $QEMU_IMG (install qemu-utils)"
[ -x "$VSTOR" ] || skip "no vstor binary at $VSTOR (run make first)"
[ -d "$BENCH_DIR" ] || skip "BENCH_DIR=$BENCH_DIR is not a directory"

size=$(numfmt --from=iec "$BENCH_SIZE" 2>/dev/null) ||
	die "BENCH_SIZE=$BENCH_SIZE: not a size (e.g. 512M, 1G)"
((size >= (256 << 20) && (size & (size - 1)) == 0)) ||
	die "BENCH_SIZE=$BENCH_SIZE must be a power of two, 256M or more"
for v in BENCH_DEPTH BENCH_ROUNDS ${BENCH_COUNT:+BENCH_COUNT}; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: not a positive number"
done

dir=$(mktemp -d "$BENCH_DIR/vstor-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
full=$dir/full.qcow2 # every cluster allocated, random data
fresh=$dir/fresh.qcow2

# The allocated image: random data in every block (a compressing file
# system must not shorten the work, and zeros would not be stored at
# all), converted to qcow2 by qemu-img, so that every cluster is
# allocated, in order, by the peer.
chunk=$((4 << 20))
head -c "$chunk" /dev/urandom >"$dir/chunk"
for ((i = 0; i < size / chunk; i++)); do
	cat "$dir/chunk"
done >"$dir/full.raw"
rm -f "$dir/chunk"
"$QEMU_IMG" convert -f raw -O qcow2 -o cluster_size=$CLUSTER \
	"$dir/full.raw" "$full" || die "qemu-img convert failed"
rm -f "$dir/full.raw"

# The 4 KiB allocating line must allocate with every request: at most as
# many requests as the stride visits distinct clusters before the first
# one it has seen (about 4000 for 256M to 2G images).
alloc_max=$(awk -v blocks=$((size / BS)) -v step=$STEP_BLOCKS \
	-v per=$((CLUSTER / BS)) 'BEGIN {
	for (i = 0; ; i++) {
		c = int((i * step) % blocks / per)
		if (c in seen) { print i; exit }
		seen[c] = 1
	}
}')
# The 64 KiB sequential line allocates a cluster per request until it
# wraps.
seq_max=$((size / CLUSTER))

# bench TOOL IMAGE-KIND OPTS...: one run; a fresh image is made first
# (outside the time) for the lines that need one.  The file system is
# synced before each run, so that no run starts behind the writeback of
# the one before.
bench() {
	local tool=$1 kind=$2 img=$full
	shift 2

	if [ "$kind" = fresh ]; then
		rm -f "$fresh"
		"$QEMU_IMG" create -q -f qcow2 -o cluster_size=$CLUSTER \
			"$fresh" "$size" || die "qemu-img create failed"
		img=$fresh
	fi
	sync -f "$dir"
	if [ "$tool" = qemu ]; then
		run_one "$QEMU_IMG" bench "$@" "$img"
	else
		run_one "$VSTOR" img bench "$@" "$img"
	fi
}

# A count that makes a qemu-img run last about BENCH_SECONDS, at most
# MAX.  Each trial runs twice and the faster counts: a single slow run
# (a hiccup of the disk) would make the count, and so every run of the
# line, too short to measure.
calibrate() {
	local max=$1 kind=$2 c=1000 secs
	shift 2

	while :; do
		((c <= max)) || c=$max
		secs=$(printf '%s\n' "$(bench qemu "$kind" -c "$c" "$@")" \
			"$(bench qemu "$kind" -c "$c" "$@")" | sort -g | head -n 1)
		if awk -v s="$secs" 'BEGIN { exit !(s >= 0.05) }' ||
			((c >= max)); then
			break
		fi
		c=$((c * 10))
	done
	awk -v c="$c" -v s="$secs" -v t="$BENCH_SECONDS" -v m="$max" 'BEGIN {
		if (s < 0.001) s = 0.001
		n = int(c / s * t)
		if (n < 2000) n = 2000
		if (n > m) n = m
		print n
	}'
}

row() {
	printf '%-24s %6s %7s %12s %14s %7s\n' "$@"
}
line=0

# measure NAME IMAGE-KIND MAX OPTS...: one line of the table.
measure() {
	local name=$1 kind=$2 max=$3 count r v q
	shift 3
	local opts=(-f qcow2 -d "$BENCH_DEPTH" -i "$BENCH_AIO" -t writeback
		"$@")
	local vs=() qs=()

	count=${BENCH_COUNT:-$(calibrate "$max" "$kind" "${opts[@]}")}
	((count <= max)) || count=$max
	for ((r = 0; r < BENCH_ROUNDS; r++)); do
		# Alternate who goes first, so that neither always runs on
		# the state (page cache, device queue) the other left.
		if (((r + line) % 2)); then
			vs+=("$(bench vstor "$kind" -c "$count" "${opts[@]}")")
			qs+=("$(bench qemu "$kind" -c "$count" "${opts[@]}")")
		else
			qs+=("$(bench qemu "$kind" -c "$count" "${opts[@]}")")
			vs+=("$(bench vstor "$kind" -c "$count" "${opts[@]}")")
		fi
	done
	line=$((line + 1))
	v=$(iops "$count" "$(median "${vs[@]}")")
	q=$(iops "$count" "$(median "${qs[@]}")")
	row "$name" "$BENCH_DEPTH" "$count" "$v" "$q" "$(ratio "$v" "$q")"
}

echo "qcow2-io: $($VSTOR --version) vs $($QEMU_IMG --version | head -n 1)"
echo "qcow2-io: $BENCH_SIZE qcow2 images (64 KiB clusters) in $dir," \
	"kernel $(uname -r)"
echo "qcow2-io: -t writeback -i $BENCH_AIO -d $BENCH_DEPTH for both," \
	"median of $BENCH_ROUNDS runs per tool, count" \
	"${BENCH_COUNT:-calibrated to ~${BENCH_SECONDS}s of qemu-img}"
echo
row work depth count "vstor IOPS" "qemu-img IOPS" ratio

# Reads from the page cache: read the whole image once, so that neither
# tool pays for filling it.
cat "$full" >/dev/null
measure "read 4k random" full $((size / BS)) -s $BS -S $STEP
measure "write 4k random, alloc" fresh "$alloc_max" -w -s $BS -S $STEP \
	--pattern=0x5a
measure "write 4k random, over" full $((size / BS)) -w -s $BS -S $STEP \
	--pattern=0xa5
measure "write 64k sequential" fresh "$seq_max" -w -s $CLUSTER \
	--pattern=0x3c

echo
echo "ratio = vstor IOPS / qemu-img IOPS; above 1.00 vstor is faster."
