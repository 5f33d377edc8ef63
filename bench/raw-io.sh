#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# raw-io.sh: `vstor img bench` against `qemu-img bench` on one raw file:
# 4 KiB reads and writes that jump around the file, depth 1 and 32, for
# each I/O engine and cache mode, both tools with the same command line in
# the same run, alternating.  Prints a table with the ratio vstor/qemu-img
# (IOPS; above 1.0 means vstor is faster).  See bench/README.md.
#
# Environment:
#   VSTOR          the vstor binary (default: build/vstor of this tree)
#   QEMU_IMG       the qemu-img binary (default: qemu-img)
#   BENCH_DIR      where the test file goes; must support O_DIRECT
#                  (default /var/tmp: /tmp may be a tmpfs)
#   BENCH_SIZE     size of the test file, a multiple of 4M (default 1G)
#   BENCH_COUNT    requests per run; default: calibrated per combination
#                  so that a run lasts about BENCH_SECONDS
#   BENCH_SECONDS  target length of one run (default 0.3)
#   BENCH_ROUNDS   runs per tool and combination; the median counts
#                  (default 5)
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
BENCH_COUNT=${BENCH_COUNT:-}
BENCH_SECONDS=${BENCH_SECONDS:-0.3}
BENCH_ROUNDS=${BENCH_ROUNDS:-5}

BS=4096
# The stride: a prime number of 4 KiB blocks (~31 MiB).  On a file whose
# size in blocks it does not divide (any power of two) the positions
# offset + i*step modulo the size visit every block once before any comes
# again, far from the last one: no readahead, no merging, no cache reuse
# between neighbours.  Both tools wrap around the same way, so the same
# command line gives both the same sequence of offsets.
STEP_BLOCKS=7919
STEP=$((STEP_BLOCKS * BS))
DEPTHS="1 32"

skip() {
	echo "SKIP: raw-io: $*"
	exit 77
}

die() {
	echo "raw-io: $*" >&2
	exit 1
}

command -v "$QEMU_IMG" >/dev/null || skip "no $QEMU_IMG (install qemu-utils)"
[ -x "$VSTOR" ] || skip "no vstor binary at $VSTOR (run make first)"
[ -d "$BENCH_DIR" ] || skip "BENCH_DIR=$BENCH_DIR is not a directory"

size=$(numfmt --from=iec "$BENCH_SIZE" 2>/dev/null) ||
	die "BENCH_SIZE=$BENCH_SIZE: not a size (e.g. 512M, 1G)"
chunk=$((4 << 20))
((size >= chunk && size % chunk == 0)) ||
	die "BENCH_SIZE=$BENCH_SIZE must be a non-zero multiple of 4M"
((size / BS % STEP_BLOCKS != 0)) ||
	die "BENCH_SIZE=$BENCH_SIZE is a multiple of the stride; pick another"
if [ -n "$BENCH_COUNT" ]; then
	[[ $BENCH_COUNT =~ ^[1-9][0-9]*$ ]] ||
		die "BENCH_COUNT=$BENCH_COUNT: not a positive number"
fi
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_ROUNDS=$BENCH_ROUNDS: not a positive number"

dir=$(mktemp -d "$BENCH_DIR/vstor-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
img=$dir/raw-io.img

# Real data in every block: a file that is sparse, or fallocated
# (unwritten extents), reads zeros without touching the disk.  Random
# bytes so that no compressing file system shortens the work; written with
# O_DIRECT so that the page cache is not filled behind our back.
head -c "$chunk" /dev/urandom >"$dir/chunk"
for ((i = 0; i < size / chunk; i++)); do
	dd if="$dir/chunk" of="$img" bs="$chunk" seek="$i" conv=notrunc \
		oflag=direct status=none 2>/dev/null ||
		skip "$BENCH_DIR does not support O_DIRECT (set BENCH_DIR)"
done
rm -f "$dir/chunk"

# A count that makes a qemu-img run last about BENCH_SECONDS.
calibrate() {
	local c=1000 secs

	while :; do
		secs=$(run_one "$QEMU_IMG" bench -c "$c" "$@" "$img")
		if awk -v s="$secs" 'BEGIN { exit !(s >= 0.05) }' ||
			((c >= 1000000)); then
			break
		fi
		c=$((c * 10))
	done
	awk -v c="$c" -v s="$secs" -v t="$BENCH_SECONDS" 'BEGIN {
		if (s < 0.001) s = 0.001
		n = int(c / s * t)
		if (n < 1000) n = 1000
		if (n > 5000000) n = 5000000
		print n
	}'
}

row() {
	printf '%-6s %-9s %5s %-10s %8s %12s %14s %7s\n' "$@"
}
results=()
combo=0

# One line of the table: vstor and qemu-img with the same options.
measure() {
	local wl=$1 engine=$2 depth=$3 cache=$4 count r
	local opts=(-f raw -s "$BS" -S "$STEP" -d "$depth" -i "$engine"
		-t "$cache")
	local vs=() qs=()

	[ "$wl" = write ] && opts+=(-w)
	count=${BENCH_COUNT:-$(calibrate "${opts[@]}")}
	for ((r = 0; r < BENCH_ROUNDS; r++)); do
		# Alternate who goes first, so that neither always runs on
		# the state (cache, device queue) the other left behind.
		if (((r + combo) % 2)); then
			qs+=("$(run_one "$QEMU_IMG" bench -c "$count" \
				"${opts[@]}" "$img")")
			vs+=("$(run_one "$VSTOR" img bench -c "$count" \
				"${opts[@]}" "$img")")
		else
			vs+=("$(run_one "$VSTOR" img bench -c "$count" \
				"${opts[@]}" "$img")")
			qs+=("$(run_one "$QEMU_IMG" bench -c "$count" \
				"${opts[@]}" "$img")")
		fi
	done
	combo=$((combo + 1))
	local v q
	v=$(iops "$count" "$(median "${vs[@]}")")
	q=$(iops "$count" "$(median "${qs[@]}")")
	row "$wl" "$engine" "$depth" "$cache" "$count" "$v" "$q" \
		"$(ratio "$v" "$q")"
	results+=("$wl $engine $depth $cache $(ratio "$v" "$q")")
}

echo "raw-io: $($VSTOR --version) vs $($QEMU_IMG --version | head -n 1)"
echo "raw-io: $img, $BENCH_SIZE of random data, kernel $(uname -r)"
echo "raw-io: 4 KiB requests, step $STEP bytes ($STEP_BLOCKS blocks," \
	"every block once), median of $BENCH_ROUNDS runs per tool," \
	"count ${BENCH_COUNT:-calibrated to ~${BENCH_SECONDS}s}"
echo
row work engine depth cache count "vstor IOPS" "qemu-img IOPS" ratio

# O_DIRECT first: every engine (native needs it).
for wl in read write; do
	for engine in io_uring native threads; do
		for depth in $DEPTHS; do
			measure "$wl" "$engine" "$depth" none
		done
	done
done

# The page cache: what the tools cost per request.  Read the whole file
# once so that neither tool pays for filling the cache.
dd if="$img" of=/dev/null bs="$chunk" status=none
for wl in read write; do
	for engine in io_uring threads; do
		for depth in $DEPTHS; do
			measure "$wl" "$engine" "$depth" writeback
		done
	done
done

echo
echo "ratio = vstor IOPS / qemu-img IOPS; above 1.00 vstor is faster."
for line in "${results[@]}"; do
	read -r wl engine depth cache r <<<"$line"
	[ "$engine $depth $cache" = "io_uring 32 none" ] || continue
	verdict=$(awk -v r="$r" 'BEGIN { print (r >= 1.0) ? "met" : "NOT met" }')
	echo "target ratio >= 1.0 for io_uring, depth 32, cache=none," \
		"$wl: $r, $verdict"
done
