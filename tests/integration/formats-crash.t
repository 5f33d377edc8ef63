#!/bin/bash
# Crash tests of the VHD (vpc), VDI and VMDK write paths, as
# qcow2-crash.t does for qcow2: crash-io runs a seeded write/zero/
# discard/flush workload on an image whose file sits on the "crash"
# driver (vbd/crash.h), which loses power after the N-th write that
# reaches the file, and then exits without closing.  For every crash
# point:
#
#   - the image still opens, through vstor and through qemu-img;
#   - `qemu-img check` finds no corruption where qemu-img can check the
#     format (vdi, vmdk), and neither does `vstor img check`.  Leaks are
#     allowed: a crash may leave space that nothing points at.  A VDI
#     header whose count of allocated blocks is ahead of its block map is
#     such a leak (qemu-img calls it an error, but the block it counts is
#     only unused space; a count behind the map would be corruption);
#   - every byte as of the last completed flush is intact, and every byte
#     written since holds its old value or a value written since, read
#     both through vstor and through qemu-img's raw conversion (but for
#     differencing VHDs, whose parent qemu-img does not read);
#   - life goes on (keep and subset modes, which leave half-done work
#     behind; drop leaves the file as at a flush): vstor opens the image
#     read-write, writes a few ranges (new blocks and old ones, across
#     grain and block edges) and closes it; then the checks still pass
#     and the image holds what it held plus those writes, through vstor
#     and qemu-img.  This is what catches a driver that, after a crash,
#     puts new data over space a crash left half-used.
#
# Three crash modes: keep (the process died, the page cache survived),
# drop (a power cut lost every write since the last flush) and subset (a
# power cut kept a random subset of them, which is what shows metadata
# that reached the disk before the data it points at).  Crash points are
# spread over the whole workload of every image kind.
#
# A failure prints the reproducer: how the image was made, the seed, the
# mode and the crash point for crash-io.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

CRASH_IO=$TOOLS/crash-io
requires qemu-img qemu-io cmp "$VSTOR" "$CRASH_IO" "$VBD_IO"

SIZE=$((8 << 20))
# NAME FORMAT POINTS MAKER [OPTIONS [BACKING]]: an image kind, the crash
# points per mode, and what makes the image (qemu-img, or vstor where
# qemu-img cannot: a differencing VHD).  The images with the most
# metadata to get wrong (new blocks, grain tables, sector bitmaps) get
# the most points; fixed and static images only have their data and a
# header that never changes.  Each image lives in a folder of its own,
# with its extent files (twoGbMaxExtentSparse, monolithicFlat).
CONFIGS=(
	"vpc-dynamic vpc 4 qemu-img subformat=dynamic"
	"vpc-diff vpc 6 vstor - ../base.vhd"
	"vpc-fixed vpc 1 qemu-img subformat=fixed"
	"vdi-dynamic vdi 6 qemu-img -"
	"vdi-static vdi 1 qemu-img static=on"
	"vmdk-sparse vmdk 5 qemu-img -"
	"vmdk-sparse-zeroed vmdk 2 qemu-img zeroed_grain=on"
	"vmdk-sparse-backing vmdk 5 qemu-img - ../base.vmdk"
	"vmdk-2gb-sparse vmdk 2 qemu-img subformat=twoGbMaxExtentSparse"
	"vmdk-flat vmdk 1 qemu-img subformat=monolithicFlat"
)
MODES=(keep drop subset)
# Subset gets three times the points: keep and drop cannot show writes
# that persisted out of order.
WEIGHT=(1 1 3)
tests=0
for c in "${CONFIGS[@]}"; do
	read -r _ _ points _ <<<"$c"
	for w in "${WEIGHT[@]}"; do tests=$((tests + 1 + w * points)); done
done
plan "$tests"

# Parents with data everywhere, so that reads through to them show: a
# dynamic VHD and a monolithicSparse VMDK.
for p in vhd:vpc vmdk:vmdk; do
	ext=${p%:*} fmt=${p#*:}
	qemu-img create -q -f "$fmt" "$T/base.$ext" "$SIZE" ||
		die "cannot make base.$ext"
	qemu-io -f "$fmt" -c "write -P 0xb1 0 $SIZE" \
		-c 'write -P 0xb2 1000 3M' -c 'write -z 5M 1M' \
		"$T/base.$ext" >/dev/null || die "cannot write base.$ext"
done

# make_img IMG FMT MAKER OPTS BACKING: a new image (BACKING relative to
# the image's folder).
make_img() {
	local img=$1 fmt=$2 maker=$3 opts=$4 backing=$5 o=() size=$SIZE
	rm -rf "$(dirname "$img")"
	mkdir "$(dirname "$img")" || return 1
	[ "$opts" = - ] || o+=(-o "$opts")
	[ -z "$backing" ] || o+=(-b "$backing" -F "$fmt")
	# An image on a parent takes the parent's size: VHD's geometry
	# rounding makes it a little more than $SIZE.
	[ -z "$backing" ] || size=
	if [ "$maker" = vstor ]; then
		(cd "$(dirname "$img")" &&
			"$VSTOR" img create -q -f "$fmt" "${o[@]}" "$img" $size)
	else
		(cd "$(dirname "$img")" &&
			qemu-img create -q -f "$fmt" "${o[@]}" "$img" $size)
	fi
}

# vdi_count_leak: the output of `qemu-img check` on a VDI ($out, $err)
# has one error, the header's count of allocated blocks ahead of the
# blocks the map uses: space leaked by a crash between the two writes.
vdi_count_leak() {
	local errors re='allocated blocks mismatch, is ([0-9]+), should be ([0-9]+)'
	errors=$(grep -c ERROR <<<"$out$err")
	[ "$rc" -eq 2 ] && [ "$errors" -eq 1 ] && [[ $out$err =~ $re ]] &&
		[ "${BASH_REMATCH[1]}" -lt "${BASH_REMATCH[2]}" ]
}

# check_img IMG FMT: no corruption.  Sets $why on failure.
check_img() {
	local img=$1 fmt=$2 tool
	if [ "$fmt" = vpc ]; then
		# Neither tool checks VHD: opening and reading it all
		# (verify_img) is the check.
		return 0
	fi
	for tool in qemu-img "$VSTOR img"; do
		# shellcheck disable=SC2086
		run $tool check -f "$fmt" "$img"
		if [ "$fmt" = vdi ] && vdi_count_leak; then
			# Then a repair must leave it clean for qemu-img.
			cp "$img" "$img.repair"
			run "$VSTOR" img check -q -r all -f vdi "$img.repair"
			run qemu-img check -f vdi "$img.repair"
			if [ "$rc" -ne 0 ]; then
				why="VDI count ahead of the map: not clean after vstor img check -r all (exit $rc): $(printf '%s\n%s' "$out" "$err" | head -5)"
				return 1
			fi
			continue
		fi
		# 0: clean, 3: leaks only.
		if { [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; } ||
			[[ $out$err =~ ERROR|[Cc]orrupt ]]; then
			why="$tool check (exit $rc): $(printf '%s\n%s' "$out" "$err" |
				head -5)"
			return 1
		fi
	done
	return 0
}

# verify_img IMG FMT MODEL PARENT: the data, through vstor and through
# qemu-img (left in conv.raw, or vstor's reading for a differencing
# VHD).
verify_img() {
	local img=$1 fmt=$2 model=$3 parent=$4
	run "$CRASH_IO" --verify -f "$fmt" "$model" "$img"
	if [ "$rc" -ne 0 ]; then
		why="read through vstor: $(head -6 <<<"$err")"
		return 1
	fi
	if [ "$fmt" = vpc ] && [ -n "$parent" ]; then
		# qemu-img reads a differencing VHD as if it had no parent:
		# it can only show that the image still opens.
		run qemu-img info -f vpc "$img"
		[ "$rc" -eq 0 ] || why="qemu-img info (exit $rc): $err"
		[ "$rc" -eq 0 ] || return 1
		dump "$img" "$fmt" "$parent" "$T/conv.raw"
		[ "$rc" -eq 0 ] || why="vbd-io dump (exit $rc): $err"
		[ "$rc" -eq 0 ]
		return
	fi
	run qemu-img convert -t unsafe -f "$fmt" -O raw "$img" "$T/conv.raw"
	if [ "$rc" -ne 0 ]; then
		why="qemu-img convert (exit $rc): $err"
		return 1
	fi
	run "$CRASH_IO" --verify -f raw "$model" "$T/conv.raw"
	if [ "$rc" -ne 0 ]; then
		why="read through qemu-img convert: $(head -6 <<<"$err")"
		return 1
	fi
	return 0
}

# The writes after the crash: OFF LEN PATTERN.  A sector-unaligned one
# at the start, one across the 1 MiB (VDI block) and 64 KiB (grain)
# edges in the middle, one over the 2 MiB VHD block edge, and the tail.
AFTER=("700 5000 0xe1" "$((SIZE / 2 - 3000)) 70000 0xe2"
	"$((4 << 20)) 4096 0xe3" "$((SIZE - 3000)) 3000 0xe4")

# dump IMG FMT PARENT OUT: the image's content as raw, through qemu-img
# where it reads the format, else through vstor.
dump() {
	local img=$1 fmt=$2 parent=$3 out=$4
	if [ "$fmt" = vpc ] && [ -n "$parent" ]; then
		run "$VBD_IO" -f "$fmt" --readonly "$img" dump "$out"
	else
		run qemu-img convert -t unsafe -f "$fmt" -O raw "$img" "$out"
	fi
}

# goes_on IMG FMT PARENT: write the AFTER ranges through vstor into the
# crashed image; the result is what it read before (verify_img's
# conv.raw) plus them.  Sets $why on failure.
goes_on() {
	local img=$1 fmt=$2 parent=$3 a ops=() qops=() off len pat
	mv "$T/conv.raw" "$T/expect.raw"
	for a in "${AFTER[@]}"; do
		read -r off len pat <<<"$a"
		ops+=(write "$off" "$len" "$pat")
		qops+=(-c "write -P $pat $off $len")
	done
	run "$VBD_IO" -f "$fmt" "$img" "${ops[@]}" flush
	if [ "$rc" -ne 0 ]; then
		why="writing after the crash (exit $rc): $(head -3 <<<"$err")"
		return 1
	fi
	run qemu-io -f raw "${qops[@]}" "$T/expect.raw"
	[ "$rc" -eq 0 ] || die "qemu-io on a raw file: $err"
	check_img "$img" "$fmt" || {
		why="after writing past the crash: $why"
		return 1
	}
	run "$VBD_IO" -f "$fmt" --readonly "$img" dump "$T/after.raw"
	if [ "$rc" -ne 0 ] || ! cmp "$T/expect.raw" "$T/after.raw" >"$T/cmp" 2>&1; then
		why="after writing past the crash, vstor reads (exit $rc) $(head -c 300 "$T/cmp") $err"
		return 1
	fi
	dump "$img" "$fmt" "$parent" "$T/after.raw"
	if [ "$rc" -ne 0 ] || ! cmp "$T/expect.raw" "$T/after.raw" >"$T/cmp" 2>&1; then
		why="after writing past the crash, qemu-img reads (exit $rc) $(head -c 300 "$T/cmp") $err"
		return 1
	fi
	return 0
}

# fresh NAME: the image NAME as made, with its extent files.
fresh() {
	rm -rf "${T:?}/$1"
	cp -a "$T/$1.orig" "$T/$1" || die "cannot copy $T/$1.orig"
}

# crash_point NAME IMG FMT PARENT HOWTO SEED MODE N TOTAL: one crash
# point, one TAP line.
crash_point() {
	local name=$1 img=$2 fmt=$3 parent=$4 howto=$5 seed=$6 mode=$7 n=$8
	local total=$9
	local model=$T/model what
	why=
	fresh "$name"
	run "$CRASH_IO" -f "$fmt" --mode="$mode" --crash-after="$n" "$seed" \
		"$img" "$model"
	what=$out
	if [ "$rc" -ne 0 ] || ! [[ $out =~ crashed ]]; then
		why="crash-io (exit $rc): $out $(head -5 <<<"$err")"
	elif check_img "$img" "$fmt" &&
		verify_img "$img" "$fmt" "$model" "$parent" &&
		[ "$mode" != drop ]; then
		goes_on "$img" "$fmt" "$parent" || true
	fi
	if [ -z "$why" ]; then
		ok "$name $mode: write $n of $total: ${what#crashed }"
	else
		not_ok "$name $mode: write $n of $total" "$why" \
			"reproduce: $howto;" \
			"  crash-io -f $fmt --mode=$mode --crash-after=$n $seed IMG MODEL"
	fi
}

ci=0
for c in "${CONFIGS[@]}"; do
	read -r name fmt points maker opts backing <<<"$c"
	img=$T/$name/disk.$fmt
	howto="$maker create -f $fmt"
	[ "$opts" = - ] || howto+=" -o $opts"
	if [ -n "$backing" ]; then
		howto+=" -b $backing -F $fmt IMG"
	else
		howto+=" IMG $SIZE"
	fi
	make_img "$T/$name.orig/disk.$fmt" "$fmt" "$maker" "$opts" \
		"$backing" || die "cannot make $img: $howto"
	for mi in "${!MODES[@]}"; do
		mode=${MODES[mi]}
		np=$((points * WEIGHT[mi]))
		seed=$((2000 + 10 * ci + mi))
		fresh "$name"
		run "$CRASH_IO" -f "$fmt" --count "$seed" "$img"
		total=$out
		if [ "$rc" -ne 0 ] || ! [[ $total =~ ^[0-9]+$ ]] ||
			[ "$total" -lt $((2 * np)) ]; then
			not_ok "$name $mode: the whole workload runs (seed $seed)" \
				"exit $rc: $out" "$err"
			skip "$np" "no write count for $name"
			continue
		fi
		ok "$name $mode: the whole workload (seed $seed) makes $total writes"
		# Spread over the run, from the first write to the last, with
		# a little jitter so that kinds do not all stop alike.  Subset
		# points crowd towards the start (quadratically), where a
		# fresh image allocates the most and so has the most metadata
		# in flight.
		d=$((np > 1 ? np - 1 : 1))
		for ((k = 0; k < np; k++)); do
			if [ "$mode" = subset ]; then
				n=$((1 + (total - 1) * k * k / (d * d)))
			else
				n=$((1 + (total - 1) * k / d))
			fi
			n=$((n + (k * 7 + ci) % 5))
			[ "$n" -le "$total" ] || n=$total
			crash_point "$name" "$img" "$fmt" "$backing" "$howto" \
				"$seed" "$mode" "$n" "$total"
		done
	done
	ci=$((ci + 1))
done
