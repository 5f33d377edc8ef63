#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# convert.sh: `vstor img convert` against `qemu-img convert` on a disk
# holding real files: a 4 GiB ext4 file system made from /usr/share
# (mkfs.ext4 -d), about a quarter full, text and binaries mixed.  Both
# tools run the same conversion with the same options, targets in the
# same directory, alternating who goes first, BENCH_ROUNDS times each;
# the median counts.  Prints, per conversion, both times, the ratio
# qemu-img time / vstor time (above 1.0 means vstor is faster), the
# seconds the disk under the targets was busy during each tool's runs
# (median), and both output sizes; then each run's time.  See
# bench/README.md.
#
# Fairness:
#   - The source is read once before every run, so both tools read it
#     from the page cache (dropping the cache would need root and would
#     measure the disk, not the tools).
#   - qemu-img convert writes its target with cache=unsafe and never
#     flushes it; vstor flushes it once at the end, so that a convert
#     that returns 0 has its data on stable storage.  Each timed run is
#     therefore "convert, then fsync the target" (sync FILE), for both
#     tools: both pay for getting their data to the disk, and neither
#     for other processes' dirty data (as a sync of the whole file
#     system would make them).
#   - The file system is synced before each run, so that no run starts
#     behind the writeback of the one before.
#   - Each run starts with no earlier target left, and after the memory
#     they held has been handed back to the host where the kernel does
#     that (settle, below): the state a convert started by hand meets,
#     the same for both tools, whoever ran before.
#
# Environment:
#   VSTOR          the vstor binary (default: build/vstor of this tree)
#   QEMU_IMG       the qemu-img binary (default: qemu-img)
#   BENCH_DIR      where the targets go (default /var/tmp: /tmp may be a
#                  tmpfs)
#   BENCH_CACHE    where the ext4 image is kept between runs (default
#                  build/bench-cache of this tree; making it takes minutes)
#   BENCH_ROUNDS   runs per tool of the compressing conversions (the
#                  ones that take tens of seconds; default 3)
#   BENCH_FAST_ROUNDS  runs per tool of the others (default 5: they take
#                  about a second, and a second's worth of page-cache and
#                  host-memory state swings them by 2x from run to run)
#   BENCH_ONLY     a regular expression: only conversions whose name
#                  matches
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
BENCH_CACHE=${BENCH_CACHE:-$here/../build/bench-cache}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_FAST_ROUNDS=${BENCH_FAST_ROUNDS:-5}
BENCH_ONLY=${BENCH_ONLY:-}

skip() {
	echo "SKIP: convert: $*"
	exit 77
}

die() {
	echo "convert: $*" >&2
	exit 1
}

command -v "$QEMU_IMG" >/dev/null || skip "no $QEMU_IMG (install qemu-utils)"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4 (install e2fsprogs)"
[ -x "$VSTOR" ] || skip "no vstor binary at $VSTOR (run make first)"
[ -d "$BENCH_DIR" ] || skip "BENCH_DIR=$BENCH_DIR is not a directory"
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_ROUNDS=$BENCH_ROUNDS: not a positive number"
[[ $BENCH_FAST_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_FAST_ROUNDS=$BENCH_FAST_ROUNDS: not a positive number"

# The source disk, made once: mkfs.ext4 -d copies a directory tree into
# the new file system.  Made under a temporary name, so that an
# interrupted run never leaves a half-made image to be reused.
src=$BENCH_CACHE/convert-ext4.raw
if [ ! -s "$src" ]; then
	mkdir -p "$BENCH_CACHE"
	echo "convert: making $src (4 GiB ext4 holding /usr/share, once)"
	rm -f "$src.tmp"
	truncate -s 4G "$src.tmp"
	mkfs.ext4 -q -F -d /usr/share "$src.tmp" ||
		die "mkfs.ext4 -d /usr/share failed"
	mv "$src.tmp" "$src"
fi

dir=$(mktemp -d "$BENCH_DIR/vstor-bench-convert.XXXXXX")
trap 'rm -rf "$dir"' EXIT

now() {
	date +%s.%N
}

# has_driver FMT: vstor can create (and so write and read) FMT.
has_driver() {
	"$VSTOR" img create -q -f "$1" "$dir/probe.$1" 1M >/dev/null 2>&1
	local rc=$?
	rm -f "$dir/probe.$1"
	return $rc
}

# The disk under the targets, for the time it was busy during each run:
# io_ticks, the 10th field of /sys/class/block/DEV/stat, counts the
# milliseconds the device had a request in flight.  Both tools write the
# same bytes (the size column), so a tool whose run takes little more
# than its disk-busy time is waiting for the disk, not for itself.
# Unknown (a tmpfs, a network file system): printed as "-".
disk_stat=
dev=$(findmnt -n -o SOURCE --target "$dir" 2>/dev/null || true)
if [ -b "$dev" ]; then
	dev=$(basename "$(readlink -f "$dev")")
	[ -r "/sys/class/block/$dev/stat" ] &&
		disk_stat=/sys/class/block/$dev/stat
fi
busy_ms() {
	awk '{ print $10 }' "$disk_stat"
}

# settle: wait until the memory that earlier runs freed is handed back
# to the host, where the kernel does that (free page reporting, in a VM
# whose host takes free memory back).  Without it each run met the
# memory its predecessor had just freed, still backed by the host, or
# not, by chance: a tool that ran after itself reused its own previous
# target's pages, one that ran after the other did not, and a page
# taken from reported memory costs a fault in the host.  Now every run
# of either tool starts in the state a convert started by hand meets:
# memory not in use has gone back.  Where the kernel counts what it
# reported, until the count stands still for a second (at most 20 s);
# elsewhere the kernel's reporting delay (2 s) and a margin.
reported=/sys/module/page_reporting/parameters/reported_kib
settle() {
	local before now i
	if [ -r "$reported" ]; then
		before=$(cat "$reported")
		for ((i = 0; i < 40; i++)); do
			sleep 0.5
			now=$(cat "$reported")
			if [ "$now" = "$before" ] && ((i >= 2)); then
				return 0
			fi
			before=$now
		done
	elif [ -d /sys/module/page_reporting ]; then
		sleep 3
	fi
}

# time_one TOOL SRC TARGET ARGS...: seconds for one conversion plus the
# fsync that makes its target durable, the seconds the disk was busy
# meanwhile ("-" when unknown), and the target's size.  Each run starts
# with no earlier target left and the memory settled.
time_one() {
	local tool=$1 in=$2 out=$3 t0 t1 b0=0 b1=0
	shift 3

	rm -f "$dir"/[vq].*
	cat "$in" >/dev/null
	sync -f "$dir"
	settle
	[ -z "$disk_stat" ] || b0=$(busy_ms)
	t0=$(now)
	if [ "$tool" = qemu ]; then
		"$QEMU_IMG" convert "$@" "$in" "$out" ||
			die "failed: $QEMU_IMG convert $* $in $out"
	else
		"$VSTOR" img convert "$@" "$in" "$out" ||
			die "failed: $VSTOR img convert $* $in $out"
	fi
	sync "$out"
	t1=$(now)
	[ -z "$disk_stat" ] || b1=$(busy_ms)
	awk -v a="$t0" -v b="$t1" -v d="$((b1 - b0))" -v k="$disk_stat" \
		-v s="$(stat -c %s "$out")" \
		'BEGIN { printf "%.3f %s %s", b - a, k == "" ? "-" : d / 1000, s }'
}

row() {
	printf '%-22s %9s %9s %6s %7s %7s %12s %12s %7s\n' "$@"
}
line=0

# med_field N "SECS BUSY"...: the median of field N, or "-".
med_field() {
	local n=$1 vals
	shift
	vals=$(printf '%s\n' "$@" | awk -v n="$n" '$n != "-" { print $n }')
	if [ -n "$vals" ]; then
		# shellcheck disable=SC2086 # one number per word
		median $vals | awk '{ printf "%.3f", $1 }'
	else
		echo -
	fi
}

# measure ROUNDS NAME SRC TARGET-EXT ARGS...: one line of the table.
measure() {
	local rounds=$1 name=$2 in=$3 ext=$4 r v q vs=() qs=() vsize qsize
	shift 4

	if [ -n "$BENCH_ONLY" ] && ! [[ $name =~ $BENCH_ONLY ]]; then
		return 0
	fi
	for ((r = 0; r < rounds; r++)); do
		# Alternate who goes first, so that neither always runs on
		# the state (page cache, device queue) the other left.
		if (((r + line) % 2)); then
			vs+=("$(time_one vstor "$in" "$dir/v.$ext" "$@")")
			qs+=("$(time_one qemu "$in" "$dir/q.$ext" "$@")")
		else
			qs+=("$(time_one qemu "$in" "$dir/q.$ext" "$@")")
			vs+=("$(time_one vstor "$in" "$dir/v.$ext" "$@")")
		fi
	done
	line=$((line + 1))
	v=$(med_field 1 "${vs[@]}")
	q=$(med_field 1 "${qs[@]}")
	vsize=$(awk 'END { print $3 }' <<<"$(printf '%s\n' "${vs[@]}")")
	qsize=$(awk 'END { print $3 }' <<<"$(printf '%s\n' "${qs[@]}")")
	row "$name" "$v" "$q" "$(ratio "$q" "$v")" "$(med_field 2 "${vs[@]}")" \
		"$(med_field 2 "${qs[@]}")" "$vsize" "$qsize" \
		"$(awk -v a="$vsize" -v b="$qsize" 'BEGIN {
			printf "%+.1f%%", (a - b) * 100 / b }')"
	runs+=("$(printf '%-22s vstor %s; qemu-img %s' "$name" \
		"$(printf '%s\n' "${vs[@]}" | awk '{ print $1 }' | xargs)" \
		"$(printf '%s\n' "${qs[@]}" | awk '{ print $1 }' | xargs)")")
	rm -f "$dir"/[vq].*
}
runs=()

# skipped NAME FMT
skipped() {
	if [ -z "$BENCH_ONLY" ] || [[ $1 =~ $BENCH_ONLY ]]; then
		printf '%-22s skipped (no %s driver)\n' "$1" "$2"
	fi
}

echo "convert: $($VSTOR --version) vs $($QEMU_IMG --version | head -n 1)"
echo "convert: source $src ($(du -h "$src" | cut -f1) allocated of 4 GiB)," \
	"targets in $dir, kernel $(uname -r), $(nproc) CPUs"
echo "convert: seconds for convert + fsync of the target, median of" \
	"$BENCH_ROUNDS runs per tool (compressing) or $BENCH_FAST_ROUNDS" \
	"(the others), alternating; ratio = qemu-img / vstor"
echo
row conversion "vstor s" "qemu s" ratio "v disk" "q disk" "vstor bytes" \
	"qemu bytes" size

# Inputs in other formats, made by qemu-img (outside the timing).
"$QEMU_IMG" convert -f raw -O qcow2 "$src" "$dir/src.qcow2" ||
	die "qemu-img convert to qcow2 failed"

measure "$BENCH_FAST_ROUNDS" "raw -> qcow2" "$src" qcow2 -f raw -O qcow2
measure "$BENCH_ROUNDS" "raw -> qcow2 -c zlib" "$src" qcow2 -f raw -O qcow2 \
	-c
measure "$BENCH_ROUNDS" "raw -> qcow2 -c zstd" "$src" qcow2 -f raw -O qcow2 -c \
	-o compression_type=zstd
if has_driver vmdk; then
	measure "$BENCH_ROUNDS" "raw -> vmdk stream" "$src" vmdk -f raw -O vmdk \
		-o subformat=streamOptimized
	"$QEMU_IMG" convert -f raw -O vmdk -o subformat=streamOptimized \
		"$src" "$dir/src.vmdk" || die "qemu-img convert to vmdk failed"
	measure "$BENCH_FAST_ROUNDS" "vmdk stream -> qcow2" "$dir/src.vmdk" \
		qcow2 -f vmdk -O qcow2
	rm -f "$dir/src.vmdk"
else
	skipped "raw -> vmdk stream" vmdk
	skipped "vmdk stream -> qcow2" vmdk
fi
measure "$BENCH_FAST_ROUNDS" "qcow2 -> raw" "$dir/src.qcow2" raw -f qcow2 -O raw
if has_driver vpc; then
	measure "$BENCH_FAST_ROUNDS" "raw -> vhd (vpc)" "$src" vhd -f raw -O vpc
else
	skipped "raw -> vhd (vpc)" vpc
fi

echo
echo "each run (s):"
printf '  %s\n' "${runs[@]}"
