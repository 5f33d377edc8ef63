#!/bin/bash
# The qcow2 driver writes images that QEMU's tools find clean: images of
# both compat levels, every cluster size from 512 bytes to 2 MiB,
# refcount widths 1 to 64, lazy refcounts, raw and qcow2 backing files
# (one shorter than the image), internal snapshots and compressed
# clusters are written through vstor, then `qemu-img check` must find no
# error and no leak, every region must read back with qemu-io, and the
# image must equal a copy written the same way by qemu-io.  The refcount
# table must grow cleanly.  vbd-io killed with SIGKILL in the middle of a
# run must leave no corruption (leaks are allowed).
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 timeout "$VBD_IO"

SIZE=$((64 << 20))
CONFIGS=(
	"v2-64k compat=0.10,cluster_size=65536"
	"v3-512 compat=1.1,cluster_size=512"
	"v3-4k-rc1 cluster_size=4096,refcount_bits=1"
	"v3-4k-rc8 cluster_size=4096,refcount_bits=8"
	"v3-64k-rc16 cluster_size=65536,refcount_bits=16"
	"v3-2M-rc64 cluster_size=2097152,refcount_bits=64"
	"v3-lazy lazy_refcounts=on,cluster_size=4096"
	"v2-raw-backing compat=0.10,cluster_size=4096 raw"
	"v3-raw-backing cluster_size=65536 raw"
	"v3-qcow2-backing cluster_size=4096 qcow2"
	"v3-lazy-backing lazy_refcounts=on,cluster_size=512 qcow2"
)
SWEEP=16
plan $((${#CONFIGS[@]} * 7 + 5 + 6 + 6 + 8 + 20 + 2 * SWEEP + 8 + 4 + 4))

# A raw base shorter than the images, and a qcow2 one over it.
qemu-img create -q -f raw "$T/base.raw" 40M &&
	qemu-io -f raw -c 'write -P 0xb1 0 40M' -c 'write -P 0xb2 1000 3M' \
		"$T/base.raw" >/dev/null || die "cannot make base.raw"
(cd "$T" && qemu-img create -q -f qcow2 -o cluster_size=65536 \
	-b base.raw -F raw base.qcow2 48M) || die "cannot make base.qcow2"
qemu-io -f qcow2 -c 'write -P 0xc1 8M 8M' -c 'write -z 20M 1M' \
	"$T/base.qcow2" >/dev/null || die "base.qcow2 writes"

# make IMG OPTS [raw|qcow2]: a new image, on a backing file if asked.
make_img() {
	local img=$1 opts=$2 backing=${3:-}
	rm -f "$img"
	case $backing in
	raw) (cd "$T" && qemu-img create -q -f qcow2 -o "$opts" -b base.raw \
		-F raw "$img" "$SIZE") ;;
	qcow2) (cd "$T" && qemu-img create -q -f qcow2 -o "$opts" \
		-b base.qcow2 -F qcow2 "$img" "$SIZE") ;;
	*) qemu-img create -q -f qcow2 -o "$opts" "$img" "$SIZE" ;;
	esac
}

# verify NAME IMG REGIONS: every "OFF LEN 0xPP" reads back with qemu-io.
verify() {
	local name=$1 img=$2 off len pat args=() n=0
	while read -r off len pat; do
		args+=(-c "read -q -P $pat $off $len")
		n=$((n + 1))
	done <<<"$3"
	run qemu-io -r -f qcow2 "${args[@]}" "$img"
	if [ "$rc" -eq 0 ] && [ -z "$out" ] && [ "$n" -gt 0 ]; then
		ok "$name ($n regions)"
	else
		not_ok "$name" "exit $rc" "$(head -5 <<<"$out")"
	fi
}

# replay IMG REGIONS: write the regions into IMG with qemu-io.
replay() {
	local img=$1 off len pat args=()
	while read -r off len pat; do
		args+=(-c "write -q -P $pat $off $len")
	done <<<"$2"
	qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

FIXED_VSTOR=(write 100000 300000 0x5a zero 1M 3M zero 5000000 70000 unmap
	zero 8M 2M unmap write 9M 4096 0x77 zero 30M 9M write $((SIZE - 700)) 700 0x33)
FIXED_QEMU=(-c 'write -q -P 0x5a 100000 300000' -c 'write -q -z 1M 3M'
	-c 'write -q -z -u 5000000 70000' -c 'write -q -z -u 8M 2M'
	-c 'write -q -P 0x77 9M 4096' -c 'write -q -z 30M 9M'
	-c "write -q -P 0x33 $((SIZE - 700)) 700")

# 1. Random writes, then zeroing, for every configuration: 7 points each.
seed=1
for c in "${CONFIGS[@]}"; do
	read -r name opts backing <<<"$c"
	img=$T/$name.qcow2 ref=$T/$name-ref.qcow2
	make_img "$img" "$opts" "$backing" || die "cannot make $img"
	cp "$img" "$ref"
	run_ok "$name: random writes" "$VBD_IO" -f qcow2 "$img" \
		random $((seed++)) 100 200K
	regions=$out
	qcow2_clean "$name: clean after random writes" "$img"
	verify "$name: regions read back" "$img" "$regions"
	replay "$ref" "$regions" || die "qemu-io replay failed"
	run_ok "$name: same as qemu-io's writes (incl. unwritten areas)" \
		qemu-img compare -f qcow2 -F qcow2 "$img" "$ref"
	run "$VBD_IO" -f qcow2 "$img" "${FIXED_VSTOR[@]}" flush
	qemu-io -f qcow2 "${FIXED_QEMU[@]}" "$ref" >/dev/null ||
		die "qemu-io fixed writes failed"
	qcow2_clean "$name: clean after zeroing and more writes" "$img"
	run_ok "$name: zeroing: same as qemu-io's" \
		qemu-img compare -f qcow2 -F qcow2 "$img" "$ref"
	run_ok "$name: vstor reads it back" "$VBD_IO" -f qcow2 --readonly \
		"$img" read 100000 300000 0x5a read 1M 3M 0 read 9M 4096 0x77
done

# 1b. Writes over clusters the image owns go to their place in parallel
# (without the writers' lock), mixed with allocating ones: a second random
# run over the first, three times, against qemu-io doing the same.
img=$T/inplace.qcow2 ref=$T/inplace-ref.qcow2
make_img "$img" cluster_size=4096 qcow2
cp "$img" "$ref"
for s in 41 42 43; do
	run "$VBD_IO" -f qcow2 "$img" random "$s" 300 60K
	[ "$rc" -eq 0 ] || break
	replay "$ref" "$out" || die "qemu-io replay failed"
	last=$out
done
is "$rc" 0 "in place: three random runs over each other"
qcow2_clean "in place: clean" "$img"
verify "in place: the last run reads back" "$img" "$last"
run_ok "in place: same as qemu-io's writes" \
	qemu-img compare -f qcow2 -F qcow2 "$img" "$ref"
size1=$(stat -c %s "$img")
"$VBD_IO" -f qcow2 "$img" random 43 300 60K >/dev/null ||
	die "the rewrite failed"
is "$(stat -c %s "$img")" "$size1" \
	"in place: rewriting the same regions allocates nothing"

# header_field IMG OFFSET SIZE: a big-endian header field.
header_field() {
	python3 -c '
import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    n = int(sys.argv[3])
    print(int.from_bytes(f.read(n), "big"))
' "$@"
}

# 2. The refcount table grows: 512-byte clusters, 64-bit refcounts
# (64 clusters per refcount block, 64 blocks per table cluster).
img=$T/grow.qcow2
make_img "$img" cluster_size=512,refcount_bits=64
before=$(header_field "$img" 56 4)
run_ok "grow: 24 MiB written in 512-byte clusters" "$VBD_IO" -f qcow2 "$img" \
	write 0 8M 0x41 write 8M 8M 0x42 write 20M 4M 0x43
after=$(header_field "$img" 56 4)
check "grow: the refcount table grew ($before -> $after clusters)" \
	test "$after" -gt "$before"
qcow2_clean "grow: clean" "$img"
verify "grow: data reads back" "$img" "0 8M 0x41
8M 8M 0x42
20M 4M 0x43
16M 4M 0"
run_ok "grow: more writes after the growth" "$VBD_IO" -f qcow2 "$img" \
	random 9 50 100K
qcow2_clean "grow: still clean" "$img"

# 3. Internal snapshots (shared L2 tables and clusters) and compressed
# clusters are copied on write, and the snapshot keeps its content.
img=$T/snap.qcow2
make_img "$img" cluster_size=4096
qemu-io -f qcow2 -c 'write -P 0x61 0 4M' -c 'write -P 0x62 10M 1M' "$img" \
	>/dev/null && qemu-img snapshot -c s1 "$img" ||
	die "cannot make a snapshot"
run_ok "snapshot: writes over shared clusters" "$VBD_IO" -f qcow2 "$img" \
	write 1000 5000 0x71 write 2M 3M 0x72 zero 10M 512K unmap
qcow2_clean "snapshot: clean" "$img"
verify "snapshot: new data reads back" "$img" "1000 5000 0x71
2M 3M 0x72
10M 512K 0
0 1000 0x61
$((10 * 1048576 + 524288)) 524288 0x62"
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/s1.raw" ||
	die "cannot read the snapshot"
run_ok "snapshot: its content is untouched" qemu-io -r -f raw \
	-c 'read -q -P 0x61 0 4M' -c 'read -q -P 0x62 10M 1M' \
	-c 'read -q -P 0 4M 6M' "$T/s1.raw"
img=$T/comp.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$T/snap.qcow2" "$img" ||
	die "cannot compress"
run_ok "compressed: partial writes over compressed clusters" "$VBD_IO" \
	-f qcow2 "$img" write 100 200 0x81 write 3M 10000 0x82 zero 8192 8192
qcow2_clean "compressed: clean (their refcounts dropped)" "$img"

# 4. The dirty bit of lazy-refcount images: set while open, cleared on
# close; refusals.
img=$T/lazy.qcow2
make_img "$img" lazy_refcounts=on
"$VBD_IO" -f qcow2 --hold 3 "$img" write 0 64k 1 >"$T/hold.out" 2>&1 &
pid=$!
for _ in $(seq 50); do
	grep -q holding "$T/hold.out" 2>/dev/null && break
	sleep 0.1
done
is "$(($(header_field "$img" 72 8) & 1))" 1 "lazy: dirty bit set while open"
wait "$pid"
is "$(($(header_field "$img" 72 8) & 1))" 0 "lazy: dirty bit clear after close"
qcow2_clean "lazy: clean after close" "$img"
img=$T/plain.qcow2
make_img "$img" cluster_size=65536
run_ok "non-lazy: write" "$VBD_IO" -f qcow2 "$img" write 0 64k 1
is "$(header_field "$img" 72 8)" 0 "non-lazy: no dirty bit ever"
qcow2_clean "non-lazy: clean" "$img"
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(79)
    f.write(bytes([2]))
' "$img"
run_fails "a corrupt image is not opened for writing" "$VBD_IO" -f qcow2 \
	"$img" write 0 1 1
like "$err" "marked corrupt.*img check -r all" "the refusal says why"

# 5. Crashes: vbd-io killed in the middle of a long run, lazy and not,
# five times each: no corruption (leaks allowed: exit 0 or 3).
for kind in plain lazy; do
	img=$T/crash-$kind.qcow2
	if [ $kind = lazy ]; then
		make_img "$img" lazy_refcounts=on,cluster_size=4096 qcow2
	else
		make_img "$img" cluster_size=4096 qcow2
	fi
	for i in 1 2 3 4 5; do
		run timeout --foreground -s KILL 0.$((2 + i)) "$VBD_IO" -f qcow2 "$img" \
			random $((100 + i)) 3000 20K
		killed=$rc
		run qemu-img check -f qcow2 "$img"
		if { [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; } &&
			! [[ $out =~ ERROR|corruption ]]; then
			ok "crash $kind $i: no corruption (vbd-io exit $killed, check exit $rc)"
		else
			not_ok "crash $kind $i: no corruption" "$out"
		fi
		# A dirty (lazy) image is repaired as it opens.
		run_ok "crash $kind $i: writable again" "$VBD_IO" \
			-f qcow2 "$img" write 0 1 1
		qemu-img check -q -r all "$img" >/dev/null 2>&1
	done
done

# 6. Deterministic crashes: the same writes (over a snapshot, so that
# shared clusters are copied and their old references dropped) killed at
# the Nth pwritev of the image, N swept over the whole run: every prefix
# of the write sequence must leave an image without corruption.
crash_ops=()
for i in $(seq 0 23); do
	crash_ops+=(write $((i * 2731 * 1024 + i * 777)) $((1000 + i * 5321)) $((i + 1)))
	[ $((i % 6)) -ne 5 ] || crash_ops+=(zero $((i * 2 << 20)) 64k unmap)
done
for kind in plain lazy; do
	img=$T/sweep-$kind.qcow2
	if [ $kind = lazy ]; then
		make_img "$img" lazy_refcounts=on,cluster_size=4096 qcow2
	else
		make_img "$img" cluster_size=4096 qcow2
	fi
	qemu-io -f qcow2 -c 'write -P 0x11 0 32M' "$img" >/dev/null &&
		qemu-img snapshot -c s1 "$img" || die "cannot make $img"
	cp "$img" "$img.orig"
	if ! command -v strace >/dev/null; then
		skip "$SWEEP" "strace is not installed"
		continue
	fi
	strace -o "$T/count.log" -e trace=pwritev "$VBD_IO" -f qcow2 "$img" \
		"${crash_ops[@]}" >/dev/null 2>&1 || die "sweep run failed"
	total=$(grep -c '^pwritev(' "$T/count.log")
	for k in $(seq 1 "$SWEEP"); do
		n=$((1 + total * k / (SWEEP + 1) + k % 3))
		cp "$img.orig" "$img"
		# Under sh, so that this shell does not report the kill.
		killed=0
		sh -c '"$@"; exit $?' sh strace -o /dev/null -e trace=pwritev \
			-e inject=pwritev:signal=KILL:when="$n" "$VBD_IO" \
			-f qcow2 "$img" "${crash_ops[@]}" >/dev/null 2>&1 ||
			killed=$?
		run qemu-img check -f qcow2 "$img"
		if [ "$killed" -eq 137 ] &&
			{ [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; } &&
			! [[ $out =~ ERROR|corruption ]]; then
			ok "sweep $kind: killed at pwritev $n of $total: no corruption"
		else
			not_ok "sweep $kind: killed at pwritev $n of $total" \
				"vbd-io exit $killed (137 expected)" \
				"$(head -5 <<<"$out")"
		fi
	done
done

# 7. Extended L2 entries: partial writes fill only their subclusters
# (the matrix in qcow2-matrix.t covers them fully).
img=$T/ext.qcow2
make_img "$img" extended_l2=on,cluster_size=65536
run_ok "extended L2: writes and zeroes read back with qemu-io" sh -c "
	'$VBD_IO' -f qcow2 '$img' write 1000 5000 0x11 write 70000 100 0x22 \
		zero 131072 65536 write 200000 3000 0x33 zero 198656 2048 &&
	qemu-io -f qcow2 -c 'read -P 0x11 1000 5000' -c 'read -P 0 6000 64000' \
		-c 'read -P 0x22 70000 100' -c 'read -P 0 198656 2048' \
		-c 'read -P 0x33 200704 2296' '$img' >'$T/ext.out' &&
	! grep -q 'verification failed' '$T/ext.out' &&
	[ \$(grep -c '^read' '$T/ext.out') = 5 ]"
qcow2_clean "extended L2: qemu-img check is clean" "$img"
img=$T/read-only-dirty.qcow2
make_img "$img" lazy_refcounts=on
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(79)
    f.write(bytes([1]))
' "$img"
run_ok "a dirty image opens read-only as it is" "$VBD_IO" -f qcow2 \
	--readonly "$img" read 0 4k 0
run_ok "opened for writing, a dirty image is repaired and written" \
	"$VBD_IO" -f qcow2 "$img" write 0 4k 9
is "$(od -An -tx1 -j79 -N1 "$img" | tr -d ' ')" 00 \
	"a clean close clears the dirty bit"
qcow2_clean "qemu-img check finds it clean" "$img"
# A real crash of QEMU with lazy refcounts: its refcounts are stale.
img=$T/qemu-crashed.qcow2
make_img "$img" lazy_refcounts=on,cluster_size=4096
sh -c "qemu-io -f qcow2 -c 'write -P 7 0 64k' -c 'sigraise 9' '$img'" \
	>/dev/null 2>&1
run_ok "after QEMU died with lazy refcounts, vstor repairs and writes" \
	"$VBD_IO" -f qcow2 "$img" write 64k 4k 8 read 0 64k 7
qcow2_clean "and the image is clean" "$img"

# 8. Corruption found while open for writing is written into the header
# (v3), as QEMU does: the next writer is refused until a check.
img=$T/found-corrupt.qcow2
make_img "$img" cluster_size=65536
qemu-io -f qcow2 -c 'write -P 5 0 64k' "$img" >/dev/null || die "qemu-io"
python3 -c '
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(40); l1 = struct.unpack(">Q", f.read(8))[0]
    f.seek(l1); l2 = struct.unpack(">Q", f.read(8))[0] & ((1 << 56) - 512)
    f.seek(l2); f.write(struct.pack(">Q", (1 << 63) | 0x50200))
' "$img" || die "poke"
run_fails "a write through an unaligned L2 entry fails" "$VBD_IO" -f qcow2 \
	"$img" write 0 4k 1
like "$err" "marked corrupt" "the image is marked corrupt"
is "$(od -An -tx1 -j79 -N1 "$img" | tr -d ' ')" 02 \
	"the corrupt bit is in the header"
run_fails "the next writer is refused" "$VBD_IO" -f qcow2 "$img" write 0 1 1

# 9. What this driver does not know: an unknown header extension and an
# unknown compatible bit are kept, an unknown autoclear bit is cleared
# (its owner's data is not kept up to date by vstor).
img=$T/unknown.qcow2
make_img "$img" cluster_size=65536
python3 - "$img" <<'PY' || die "cannot add the extension"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = bytearray(f.read(65536))
    compat, autoclear = struct.unpack_from(">QQ", h, 80)
    struct.pack_into(">QQ", h, 80, compat | 1 << 5, autoclear | 1 << 7)
    off = struct.unpack_from(">I", h, 100)[0]
    while True:
        t, n = struct.unpack_from(">II", h, off)
        if t == 0:
            break
        off += 8 + (n + 7) // 8 * 8
    ext = struct.pack(">II", 0x5653544f, 5) + b"vstor\0\0\0" + bytes(8)
    h[off:off + len(ext)] = ext
    f.seek(0)
    f.write(h)
    print(off, file=open(sys.argv[1] + ".off", "w"))
PY
off=$(cat "$img.off")
before=$(od -An -tx1 -j "$off" -N 16 "$img")
run_ok "an image with unknown extension and bits is written" "$VBD_IO" \
	-f qcow2 "$img" write 0 64k 3
is "$(od -An -tx1 -j "$off" -N 16 "$img")" "$before" \
	"the unknown extension is kept"
is "$(od -An -tx1 -j 80 -N 16 "$img" | tr -d ' ')" \
	00000000000000200000000000000000 \
	"the compatible bit is kept, the autoclear bit cleared"
qcow2_clean "and qemu-img check is clean" "$img"
