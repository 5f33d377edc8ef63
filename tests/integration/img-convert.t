#!/bin/bash
# vstor img convert against qemu-img.
#
# Every result is compared with its source by `qemu-img compare`, and
# every qcow2 target is checked by `qemu-img check`.  Covered: raw to
# qcow2 and back (sparse output), compressed qcow2 (deflate and zstd:
# compressed clusters really there, sizes within 5% of qemu-img's),
# chains flattened, -B overlays (the backing file named, only the top
# layer's clusters stored), -n with and without --target-is-zero (the
# latter really skips zero ranges), -S 0 against the default, -W and
# -m 1/16, kernel copies from a raw source (copy_file_range really used,
# the zero probe, fallbacks through the buffer for clusters that hold
# data, a partial last cluster and an O_DIRECT target), several sources
# concatenated, --progress-fd's JSON lines, and
# refusals: a missing source, an unknown format, -c for raw,
# --target-is-zero without -n, a source that fails midway (the target
# convert created is removed, one given with -n stays).
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 stat strace "$VSTOR"

plan 121

MiB=$((1 << 20))
SIZE=$((64 * MiB))

# The source: patterns, real text (compressible as disks are), random
# bytes (not compressible), zeros written as data, and a last short
# write that ends in the middle of a cluster.
src=$T/src.raw
qemu-img create -q -f raw "$src" $SIZE
cat /usr/share/common-licenses/* /usr/share/doc/*/copyright 2>/dev/null |
	head -c $((6 * MiB)) >"$T/text"
head -c $((2 * MiB)) /dev/urandom >"$T/random"
dd if="$T/text" of="$src" bs=1M seek=2 conv=notrunc status=none
dd if="$T/random" of="$src" bs=1M seek=20 conv=notrunc status=none
qemu-io -f raw -c "write -P 0x11 0 1M" -c "write -P 0x22 30M 3M" \
	-c "write -P 0 40M 2M" -c "write -P 0x33 50M 4k" \
	-c "write -P 0x44 63M 100k" "$src" >/dev/null ||
	die "cannot fill the source"

# compare_ok NAME A B [qemu-img compare options]
compare_ok() {
	local name=$1 a=$2 b=$3
	shift 3
	run qemu-img compare "$@" "$a" "$b"
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name" "$out" "$err"
	fi
}

# check_json IMG KEY: the value of KEY in qemu-img check --output=json.
check_json() {
	qemu-img check --output=json "$1" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2"
}

# within5 A B: A and B (sizes) differ by at most 5%.
within5() {
	python3 -c 'import sys; a,b=map(int,sys.argv[1:]); sys.exit(0 if abs(a-b)*100 <= 5*max(a,b) else 1)' "$1" "$2"
}

# allocated IMG: bytes stored in IMG's own layer (qemu-img map, depth 0,
# data or zero clusters).
allocated() {
	qemu-img map --output=json "$1" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin)
          if e["depth"] == 0 and (e["data"] or e.get("present") and e["zero"])))'
}

# --- raw <-> qcow2 ---
run_ok "raw to qcow2" "$VSTOR" img convert -O qcow2 "$src" "$T/a.qcow2"
compare_ok "raw to qcow2: same content" "$src" "$T/a.qcow2"
qcow2_clean "raw to qcow2: qemu-img check is clean" "$T/a.qcow2"
is "$(qemu-img info --output=json "$T/a.qcow2" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" \
	$SIZE "raw to qcow2: virtual size kept"
qemu-img convert -O qcow2 "$src" "$T/q-a.qcow2"
a=$(stat -c %s "$T/a.qcow2") q=$(stat -c %s "$T/q-a.qcow2")
check "raw to qcow2: size $a within 5% of qemu-img's $q" within5 "$a" "$q"

run_ok "qcow2 to raw" "$VSTOR" img convert -f qcow2 "$T/a.qcow2" "$T/b.raw"
compare_ok "qcow2 to raw: same content" "$src" "$T/b.raw"
is "$(stat -c %s "$T/b.raw")" $SIZE "qcow2 to raw: raw file size"
# Data: 1 + 6 + 2 + 3 MiB + 4k + 100k; the 2 MiB of written zeros and
# everything else must stay holes.
blocks=$(stat -c %b "$T/b.raw")
check "qcow2 to raw: sparse ($blocks blocks of 512)" test "$blocks" -lt $((15 * MiB / 512))

# --- -S 0 and -S sizes ---
run_ok "-S 0" "$VSTOR" img convert -S 0 -O raw "$src" "$T/s0.raw"
compare_ok "-S 0: same content" "$src" "$T/s0.raw"
blocks0=$(stat -c %b "$T/s0.raw")
check "-S 0: fully allocated ($blocks0 blocks)" test "$blocks0" -ge $((SIZE / 512))
run_ok "-S 0 to qcow2" "$VSTOR" img convert -S 0 -O qcow2 "$src" "$T/s0.qcow2"
compare_ok "-S 0 to qcow2: same content" "$src" "$T/s0.qcow2"
is "$(check_json "$T/s0.qcow2" allocated-clusters)" $((SIZE / 65536)) \
	"-S 0 to qcow2: every cluster allocated"
run_ok "-S 1M" "$VSTOR" img convert -S 1M "$src" "$T/s1m.raw"
compare_ok "-S 1M: same content" "$src" "$T/s1m.raw"
run_fails "-S 1000 is refused" "$VSTOR" img convert -S 1000 "$src" "$T/bad.raw"
like "$err" "Invalid buffer size for sparse output" "-S 1000: qemu-img's message"

# --- compression ---
run_ok "-c (deflate), qcow2 to qcow2" "$VSTOR" img convert -c -O qcow2 \
	"$T/a.qcow2" "$T/c.qcow2"
compare_ok "-c: same content" "$src" "$T/c.qcow2"
qcow2_clean "-c: qemu-img check is clean" "$T/c.qcow2"
n=$(check_json "$T/c.qcow2" compressed-clusters)
check "-c: $n compressed clusters" test "$n" -ge 90
qemu-img convert -c -O qcow2 "$T/a.qcow2" "$T/q-c.qcow2"
a=$(stat -c %s "$T/c.qcow2") q=$(stat -c %s "$T/q-c.qcow2")
check "-c: size $a within 5% of qemu-img's $q" within5 "$a" "$q"
run_ok "-c read back by vstor" "$VSTOR" img convert "$T/c.qcow2" "$T/c.raw"
compare_ok "-c read back: same content" "$src" "$T/c.raw"

run_ok "-c zstd, qcow2 to qcow2" "$VSTOR" img convert -c -O qcow2 \
	-o compression_type=zstd "$T/a.qcow2" "$T/z.qcow2"
compare_ok "-c zstd: same content" "$src" "$T/z.qcow2"
qcow2_clean "-c zstd: qemu-img check is clean" "$T/z.qcow2"
like "$(qemu-img info "$T/z.qcow2")" "compression type: zstd" \
	"-c zstd: the image says zstd"
n=$(check_json "$T/z.qcow2" compressed-clusters)
check "-c zstd: $n compressed clusters" test "$n" -ge 90
qemu-img convert -c -O qcow2 -o compression_type=zstd "$T/a.qcow2" \
	"$T/q-z.qcow2"
a=$(stat -c %s "$T/z.qcow2") q=$(stat -c %s "$T/q-z.qcow2")
check "-c zstd: size $a within 5% of qemu-img's $q" within5 "$a" "$q"
run_ok "-c with 4k clusters and -m 3" "$VSTOR" img convert -c -m 3 -O qcow2 \
	-o cluster_size=4096 "$src" "$T/c4k.qcow2"
compare_ok "-c 4k clusters: same content" "$src" "$T/c4k.qcow2"
qcow2_clean "-c 4k clusters: clean" "$T/c4k.qcow2"

# --- other formats: a streamOptimized VMDK is compressed by the
# workers (vbd_compress) without -c ---
if "$VSTOR" img create -q -f vmdk "$T/probe.vmdk" 1M 2>/dev/null; then
	run_ok "to streamOptimized vmdk" "$VSTOR" img convert -O vmdk \
		-o subformat=streamOptimized "$src" "$T/s.vmdk"
	compare_ok "streamOptimized vmdk: same content" "$src" "$T/s.vmdk"
	qemu-img convert -O vmdk -o subformat=streamOptimized "$src" \
		"$T/q-s.vmdk"
	a=$(stat -c %s "$T/s.vmdk") q=$(stat -c %s "$T/q-s.vmdk")
	check "streamOptimized: size $a within 5% of qemu-img's $q" \
		within5 "$a" "$q"
	run_ok "streamOptimized vmdk back to qcow2" "$VSTOR" img convert \
		-f vmdk -O qcow2 "$T/s.vmdk" "$T/s.qcow2"
	compare_ok "from vmdk: same content" "$src" "$T/s.qcow2"
else
	skip 5 "no vmdk driver"
fi

# --- chains ---
qemu-img create -q -f qcow2 -o cluster_size=4096 "$T/base.qcow2" $SIZE
qemu-io -f qcow2 -c "write -P 0x55 0 8M" -c "write -P 0x66 20M 1M" \
	"$T/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/mid.qcow2"
qemu-io -f qcow2 -c "write -P 0x77 4M 1M" -c "write -z 6M 1M" \
	"$T/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$T/top.qcow2"
qemu-io -f qcow2 -c "write -P 0x88 5M 64k" -c "write -P 0x99 40M 2M" \
	-c "write -z 20M 64k" "$T/top.qcow2" >/dev/null
run_ok "chain flattened to qcow2" "$VSTOR" img convert -O qcow2 \
	"$T/top.qcow2" "$T/flat.qcow2"
compare_ok "chain flattened: same content" "$T/top.qcow2" "$T/flat.qcow2"
qcow2_clean "chain flattened: clean" "$T/flat.qcow2"
unlike "$(qemu-img info "$T/flat.qcow2")" "backing file" \
	"chain flattened: no backing file"
run_ok "chain flattened to raw" "$VSTOR" img convert "$T/top.qcow2" "$T/flat.raw"
compare_ok "chain to raw: same content" "$T/top.qcow2" "$T/flat.raw"

# --- -B ---
run_ok "-B overlay" "$VSTOR" img convert -O qcow2 -B mid.qcow2 -F qcow2 \
	"$T/top.qcow2" "$T/ov.qcow2"
like "$(qemu-img info "$T/ov.qcow2")" "backing file: mid.qcow2" \
	"-B: the overlay names its backing file"
like "$(qemu-img info "$T/ov.qcow2")" "backing file format: qcow2" \
	"-B: and its format"
compare_ok "-B: same content" "$T/top.qcow2" "$T/ov.qcow2"
qcow2_clean "-B: clean" "$T/ov.qcow2"
is "$(allocated "$T/ov.qcow2")" "$(allocated "$T/top.qcow2")" \
	"-B: the overlay holds the top layer's ranges and nothing more"
run_fails "-B with two sources is refused" "$VSTOR" img convert -O qcow2 \
	-B mid.qcow2 "$T/top.qcow2" "$src" "$T/ov2.qcow2"
like "$err" "makes no sense when concatenating" "-B with two sources: message"

# --- -n ---
qemu-img create -q -f raw "$T/ff.raw" $SIZE
qemu-io -f raw -c "write -P 0xff 0 $SIZE" "$T/ff.raw" >/dev/null
run_ok "-n into a target full of 0xff" "$VSTOR" img convert -n -O raw \
	"$T/a.qcow2" "$T/ff.raw"
compare_ok "-n: zero ranges overwritten" "$src" "$T/ff.raw"
qemu-img create -q -f qcow2 "$T/n.qcow2" $SIZE
run_ok "-n into an existing qcow2" "$VSTOR" img convert -n -O qcow2 "$src" \
	"$T/n.qcow2"
compare_ok "-n qcow2: same content" "$src" "$T/n.qcow2"
qcow2_clean "-n qcow2: clean" "$T/n.qcow2"
qemu-img create -q -f raw "$T/z.raw" $SIZE
run_ok "-n --target-is-zero" "$VSTOR" img convert -n --target-is-zero \
	"$src" "$T/z.raw"
compare_ok "-n --target-is-zero: same content" "$src" "$T/z.raw"
qemu-io -f raw -c "write -P 0xff 0 $SIZE" "$T/ff.raw" >/dev/null
run_ok "--target-is-zero believed" "$VSTOR" img convert -n --target-is-zero \
	"$src" "$T/ff.raw"
run qemu-io -f raw -c "read -P 0xff 45M 1M" -c "read -P 0x11 0 1M" "$T/ff.raw"
unlike "$out" "Pattern verification failed" \
	"--target-is-zero: zero ranges were not written, data was"
qemu-img create -q -f raw "$T/small.raw" 1M
run_fails "-n into a smaller target" "$VSTOR" img convert -n "$src" "$T/small.raw"
like "$err" "output file is smaller than input file" "-n smaller: message"

# --- -W, -m ---
for m in "-m 1" "-m 16" "-W" "-W -m 2 -c"; do
	# shellcheck disable=SC2086 # the options are words
	run_ok "$m" "$VSTOR" img convert $m -O qcow2 "$src" "$T/m.qcow2"
	compare_ok "$m: same content" "$src" "$T/m.qcow2"
	qcow2_clean "$m: clean" "$T/m.qcow2"
done

# --- kernel copies (copy_file_range from a raw source file) ---
# A source whose clusters test the zero probe: data; a cluster whose
# first 4 KiB are zeros and the rest data (read whole, written from the
# buffer); written zeros (not stored); data only at a cluster's end; and
# a size that ends inside a cluster (that one goes through a buffer).
kc=$T/kc.raw
qemu-img create -q -f raw "$kc" $((8 * MiB + 4608))
qemu-io -f raw -c "write -P 0x11 0 64k" -c "write -P 0x22 1028k 60k" \
	-c "write -P 0 2M 64k" -c "write -P 0x33 3132k 4k" \
	-c "write -P 0x44 8M 4608" "$kc" >/dev/null ||
	die "cannot fill the kernel-copy source"
run_ok "raw to qcow2 by copy_file_range" strace -f -e trace=copy_file_range \
	-o "$T/kc.strace" "$VSTOR" img convert -O qcow2 "$kc" "$T/kc.qcow2"
check "raw to qcow2: the kernel copies the data" \
	grep -Eq 'copy_file_range\(.*= [1-9]' "$T/kc.strace"
compare_ok "kernel copy: same content" "$kc" "$T/kc.qcow2"
qcow2_clean "kernel copy: clean" "$T/kc.qcow2"
is "$(allocated "$T/kc.qcow2")" $((3 * 65536 + 4608)) \
	"kernel copy: written zeros not stored, data after zeros kept"
qemu-img convert -O qcow2 "$kc" "$T/q-kc.qcow2"
is "$(allocated "$T/kc.qcow2")" "$(allocated "$T/q-kc.qcow2")" \
	"kernel copy: the same clusters as qemu-img's"
qemu-img create -q -f qcow2 "$T/full.qcow2" $((8 * MiB + 4608))
qemu-io -f qcow2 -c "write -P 0xff 0 $((8 * MiB + 4608))" "$T/full.qcow2" \
	>/dev/null
run_ok "-n into a qcow2 whose clusters hold data" "$VSTOR" img convert -n \
	-O qcow2 "$kc" "$T/full.qcow2"
compare_ok "-n full qcow2: overwritten through the buffer path" "$kc" \
	"$T/full.qcow2"
qcow2_clean "-n full qcow2: clean" "$T/full.qcow2"
run_ok "-t none target, cached source" "$VSTOR" img convert -t none \
	-O qcow2 "$kc" "$T/kc-direct.qcow2"
compare_ok "-t none target: same content" "$kc" "$T/kc-direct.qcow2"
run_ok "-S 0 raw to raw by copy_file_range" strace -f \
	-e trace=copy_file_range -o "$T/kc-raw.strace" "$VSTOR" img convert \
	-S 0 -O raw "$kc" "$T/kc-copy.raw"
check "-S 0 raw to raw: the kernel copies" \
	grep -Eq 'copy_file_range\(.*= [1-9]' "$T/kc-raw.strace"
compare_ok "-S 0 raw to raw: same content" "$kc" "$T/kc-copy.raw"

# --- several sources ---
head -c 1000 /dev/urandom >"$T/odd.raw" # not a whole sector
run_ok "three sources" "$VSTOR" img convert -O qcow2 "$T/odd.raw" \
	"$T/c.qcow2" "$T/odd.raw" "$T/cat.qcow2"
qemu-img convert -O raw "$T/odd.raw" "$T/c.qcow2" "$T/odd.raw" "$T/q-cat.raw"
compare_ok "three sources: same as qemu-img's" "$T/q-cat.raw" "$T/cat.qcow2"
qcow2_clean "three sources: clean" "$T/cat.qcow2"
is "$(stat -c %s "$T/q-cat.raw")" $((SIZE + 2048)) \
	"three sources: qemu-img's size in whole sectors"

# --- progress ---
run_ok "--progress-fd" bash -c "exec 5>'$T/progress'; exec '$VSTOR' img convert \
	--progress-fd=5 -O qcow2 '$src' '$T/p.qcow2'"
run python3 -c '
import json, sys
last = -1
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert set(d) == {"done", "total"}, d
    assert d["total"] == int(sys.argv[2]) and d["done"] >= last, d
    last = d["done"]
assert last == int(sys.argv[2]), last
print("ok")' "$T/progress" $SIZE
is "$out" "ok" "--progress-fd: JSON lines, done grows and ends at total"
run_ok "-p" "$VSTOR" img convert -p -O raw "$src" "$T/p.raw"
like "$err" "\(100.00/100%\)" "-p: the bar reaches 100%"

# --- errors ---
run_fails "missing source" "$VSTOR" img convert "$T/nothere.raw" "$T/e1.raw"
like "$err" "nothere.raw" "missing source: the file is named"
check "missing source: no target made" test ! -e "$T/e1.raw"
run_fails "unknown -O" "$VSTOR" img convert -O nosuchfmt "$src" "$T/e2.img"
check "unknown -O: no target made" test ! -e "$T/e2.img"
run_fails "-c with raw" "$VSTOR" img convert -c -O raw "$src" "$T/e3.raw"
like "$err" "Compression not supported for this file format" \
	"-c with raw: qemu-img's message"
check "-c with raw: no target left" test ! -e "$T/e3.raw"
run_fails "--target-is-zero without -n" "$VSTOR" img convert --target-is-zero \
	"$src" "$T/e4.raw"
like "$err" "--target-is-zero requires use of -n flag" \
	"--target-is-zero without -n: qemu-img's message"
run_fails "-m 17" "$VSTOR" img convert -m 17 "$src" "$T/e5.raw"

# -t none / -T none: O_DIRECT reaches the qcow2's own host file (its
# size is no multiple of 4 KiB and its tail block is written partially),
# not only the layer above it.
run_ok "-t none -T none into qcow2" strace -f -e trace=openat \
	-o "$T/direct.strace" "$VSTOR" img convert -t none -T none -O qcow2 \
	"$src" "$T/direct.qcow2"
check "-t none: the qcow2 file is opened O_DIRECT" \
	grep -q 'direct\.qcow2".*O_DIRECT' "$T/direct.strace"
compare_ok "-t none: content" "$src" "$T/direct.qcow2"
run_ok "-t none: qemu-img check" qemu-img check "$T/direct.qcow2"
run_ok "-t none back to raw" "$VSTOR" img convert -t none -T none -O raw \
	"$T/direct.qcow2" "$T/direct.raw"
compare_ok "-t none: raw from a qcow2 read O_DIRECT" "$src" "$T/direct.raw"

# A source whose L2 entry for 32 MiB points past the end of its file:
# the copy fails there, after writing what came before.
qemu-img convert -O qcow2 "$src" "$T/broken.qcow2"
python3 - "$T/broken.qcow2" <<'EOF' || die "cannot poke the image"
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(104)
cs = 1 << struct.unpack('>I', h[20:24])[0]
l1 = struct.unpack('>Q', h[40:48])[0]
f.seek(l1)
l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2 + (32 << 20) // cs * 8)
f.write(struct.pack('>Q', 0x8000000000000000 | (1 << 40)))
EOF
run_fails "a source failing midway" "$VSTOR" img convert -O qcow2 \
	"$T/broken.qcow2" "$T/e6.qcow2"
like "$err" "broken.qcow2.*offset" "failing source: file and offset named"
check "failing source: the target convert created is removed" \
	test ! -e "$T/e6.qcow2"
qemu-img create -q -f raw "$T/keep.raw" $SIZE
run_fails "a source failing midway, -n" "$VSTOR" img convert -n -f qcow2 \
	"$T/broken.qcow2" "$T/keep.raw"
check "failing source: a target given with -n stays" test -e "$T/keep.raw"
