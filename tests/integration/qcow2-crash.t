#!/bin/bash
# Crash tests of the qcow2 driver.  crash-io runs a seeded write/flush
# workload on an image whose file sits on the "crash" driver (vbd/crash.h),
# which loses power after the N-th write that reaches the file, and then
# exits without closing.  For every crash point:
#
#   - `qemu-img check` finds no corruption (leaks are allowed; an image
#     left dirty by lazy refcounts may have refcount errors only, and
#     `qemu-img check -r all` must then leave it clean);
#   - every byte as of the last completed flush is intact, and every byte
#     written since holds its old value or a value written since, read
#     both through vstor and through qemu-img's raw conversion.
#
# Three crash modes: keep (the process died, the page cache survived),
# drop (a power cut lost every write since the last flush) and subset (a
# power cut kept a random subset of them).  Crash points are spread over
# the whole workload of every image kind: cluster sizes 512 to 64 KiB,
# refcount widths 1 to 64, compat 0.10 and 1.1, lazy refcounts, raw and
# qcow2 backing files.
#
# A failure prints the reproducer: the image options, the seed, the mode
# and the crash point for crash-io.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

CRASH_IO=$TOOLS/crash-io
requires qemu-img qemu-io od "$CRASH_IO"

SIZE=$((8 << 20))
# Crash points per image kind for each mode.  Subset gets the most: it
# is the mode that catches writes persisted out of order (metadata on
# disk before what it points at), which keep and drop cannot show.
MODES=(keep:6 drop:7 subset:14)
POINTS=0
for m in "${MODES[@]}"; do POINTS=$((POINTS + ${m#*:})); done
CONFIGS=(
	"v3-64k cluster_size=65536"
	"v3-4k-rc1 cluster_size=4096,refcount_bits=1"
	"v3-512-rc64 cluster_size=512,refcount_bits=64"
	"v2-4k compat=0.10,cluster_size=4096"
	"v2-512 compat=0.10,cluster_size=512"
	"v3-lazy-4k lazy_refcounts=on,cluster_size=4096"
	"v3-64k-qcow2-backing cluster_size=65536 qcow2"
	"v3-lazy-512-raw-backing lazy_refcounts=on,cluster_size=512,refcount_bits=8 raw"
)
plan $((${#CONFIGS[@]} * (${#MODES[@]} + POINTS)))

# Backing files with data everywhere, so that copy-on-write shows: a raw
# one, and a shorter qcow2 one over it (reads past its end are zeros).
qemu-img create -q -f raw "$T/base.raw" "$SIZE" &&
	qemu-io -f raw -c "write -P 0xb1 0 $SIZE" -c 'write -P 0xb2 1000 2M' \
		"$T/base.raw" >/dev/null || die "cannot make base.raw"
(cd "$T" && qemu-img create -q -f qcow2 -o cluster_size=4096 \
	-b base.raw -F raw base.qcow2 6M) || die "cannot make base.qcow2"
qemu-io -f qcow2 -c 'write -P 0xc1 2M 2M' -c 'write -z 5M 512K' \
	"$T/base.qcow2" >/dev/null || die "base.qcow2 writes"

# make_img IMG OPTS [raw|qcow2]: a new image, on a backing file if asked.
make_img() {
	local img=$1 opts=$2 backing=${3:-}
	rm -f "$img"
	if [ -n "$backing" ]; then
		(cd "$T" && qemu-img create -q -f qcow2 -o "$opts" \
			-b "base.$backing" -F "$backing" "$img" "$SIZE")
	else
		qemu-img create -q -f qcow2 -o "$opts" "$img" "$SIZE"
	fi
}

# dirty IMG: the header's dirty bit (incompatible feature bit 0) is set.
dirty() {
	[ $(($(od -An -tu1 -j79 -N1 "$1") & 1)) -eq 1 ]
}

# check_img IMG: no corruption.  Sets $why on failure.
check_img() {
	local img=$1 errors
	run qemu-img check -f qcow2 "$img"
	if { [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; } &&
		! [[ $out =~ ERROR|corruption ]]; then
		return 0
	fi
	if ! dirty "$img"; then
		why="qemu-img check (exit $rc): $(printf '%s\n%s' "$out" "$err" |
			grep -m5 -E 'ERROR|corrupt')"
		return 1
	fi
	# Lazy refcounts: a dirty image may have wrong refcounts, nothing
	# else, and a repair must leave it clean.
	errors=$(grep ERROR <<<"$out" | grep -v -E 'refcount|OFLAG_COPIED')
	if [ -n "$errors" ]; then
		why="qemu-img check of a dirty image (exit $rc): $(head -5 <<<"$errors")"
		return 1
	fi
	cp "$img" "$img.repair"
	qemu-img check -q -r all "$img.repair" >/dev/null 2>&1
	run qemu-img check -f qcow2 "$img.repair"
	if [ "$rc" -ne 0 ]; then
		why="dirty image: not clean after check -r all (exit $rc): $(grep -m5 -E 'ERROR|Leaked|corrupt' <<<"$out")"
		return 1
	fi
	return 0
}

# verify_img IMG MODEL: the data, through vstor and through qemu-img.
verify_img() {
	local img=$1 model=$2
	run "$CRASH_IO" --verify "$model" "$img"
	if [ "$rc" -ne 0 ]; then
		why="read through vstor: $(head -6 <<<"$err")"
		return 1
	fi
	run qemu-img convert -t unsafe -f qcow2 -O raw "$img" "$T/conv.raw"
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

# crash_point NAME IMG OPTS BACKING SEED MODE N TOTAL: one crash point,
# one TAP line.
crash_point() {
	local name=$1 img=$2 opts=$3 backing=$4 seed=$5 mode=$6 n=$7
	local total=$8 model=$T/model what
	why=
	cp "$img.orig" "$img"
	run "$CRASH_IO" --mode="$mode" --crash-after="$n" "$seed" "$img" "$model"
	what=$out
	if [ "$rc" -ne 0 ] || ! [[ $out =~ crashed ]]; then
		why="crash-io (exit $rc): $out $(head -5 <<<"$err")"
	elif check_img "$img"; then
		verify_img "$img" "$model" || true
	fi
	if [ -z "$why" ]; then
		ok "$name $mode: write $n of $total: ${what#crashed }"
	else
		not_ok "$name $mode: write $n of $total" "$why" \
			"reproduce: qemu-img create -f qcow2 -o $opts${backing:+ -b base.$backing -F $backing} IMG $SIZE;" \
			"  crash-io --mode=$mode --crash-after=$n $seed IMG MODEL"
	fi
}

ci=0
for c in "${CONFIGS[@]}"; do
	read -r name opts backing <<<"$c"
	img=$T/$name.qcow2
	make_img "$img.orig" "$opts" "$backing" || die "cannot make $img"
	for mi in "${!MODES[@]}"; do
		mode=${MODES[mi]%:*} points=${MODES[mi]#*:}
		seed=$((1000 + 10 * ci + mi))
		cp "$img.orig" "$img"
		run "$CRASH_IO" --count "$seed" "$img"
		total=$out
		if [ "$rc" -ne 0 ] || ! [[ $total =~ ^[0-9]+$ ]] ||
			[ "$total" -lt $((2 * points)) ]; then
			not_ok "$name $mode: the whole workload runs (seed $seed)" \
				"exit $rc: $out" "$err"
			skip "$points" "no write count for $name"
			continue
		fi
		ok "$name $mode: the whole workload (seed $seed) makes $total writes"
		# Spread over the run, from the first write to the last, with
		# a little jitter so that kinds do not all stop alike.
		for ((k = 0; k < points; k++)); do
			n=$((1 + (total - 1) * k / (points - 1) + (k * 7 + ci) % 5))
			[ "$n" -le "$total" ] || n=$total
			crash_point "$name" "$img" "$opts" "$backing" "$seed" \
				"$mode" "$n" "$total"
		done
	done
	ci=$((ci + 1))
done
