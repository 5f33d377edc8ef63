#!/bin/bash
# vstor img compare against qemu-img compare.
#
# Each case runs both tools with the same arguments and must give the
# same exit status and the same stdout: "Images are identical.",
# "Content mismatch at offset N!" (N the 512-byte sector of the first
# difference, inside common data and in a longer image's tail alike),
# "Warning: Image size mismatch!", and in strict mode "Strict mode:
# Image size mismatch!" and "Strict mode: Offset N block status
# mismatch!".  Cases: identical raw files, one byte changed, raw against
# qcow2 and the other way round, -f/-F forcing a format, backing chains
# against their flattened copy, zero clusters against holes, allocated
# zeros against unallocated ones, shorter and longer images with zero
# and non-zero tails, compressed clusters, strict mode on each.  Then -q
# prints nothing, -p still decides, a missing file exits 2, compressed
# data that does not decompress exits 4 as with qemu-img, a corrupt
# table entry exits 3 naming the file, and usage errors exit 1.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR"

cd "$T" || die "cannot cd to $T"

# poke FILE OFFSET BYTE: one byte changed in place.
poke() {
	# shellcheck disable=SC2059 # the byte is built as an escape
	printf "\\x$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

{
	truncate -s 4M zero.raw
	cp zero.raw one.raw
	poke one.raw $((1048576 + 1000)) 78
	truncate -s 8M long-zero.raw
	cp long-zero.raw long-tail.raw
	poke long-tail.raw $((5 * 1048576 + 1000)) 78
	poke long-tail.raw $((7 * 1048576 + 3)) 79
	qemu-img convert -O qcow2 one.raw one.qcow2

	qemu-img create -q -f qcow2 mix.qcow2 8M
	qemu-io -c 'write -P 1 0 2M' -c 'write -z 64k 128k' \
		-c 'write -z -u 512k 64k' -c 'write -z 4M 64k' \
		-c 'write -c -P 2 6M 128k' -c 'discard 1M 64k' mix.qcow2
	qemu-img convert -O raw mix.qcow2 mix.raw
	qemu-img convert -O qcow2 -o cluster_size=4096 mix.qcow2 mix-4k.qcow2
	cp mix.raw mix-diff.raw
	poke mix-diff.raw $((6 * 1048576 + 70000)) 51
	cp mix.raw mix-diff2.raw
	poke mix-diff2.raw $((2 * 1048576 - 1)) 00
	cp mix.raw mix-long.raw
	truncate -s 12M mix-long.raw
	cp mix.raw mix-short.raw
	truncate -s 6M mix-short.raw

	qemu-img create -q -f raw base.raw 4M
	qemu-io -f raw -c 'write -P 5 0 1M' -c 'write -P 6 3M 4k' base.raw
	qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 6M
	qemu-io -c 'write -P 7 512k 64k' -c 'write -z 3M 64k' top.qcow2
	qemu-img convert -O qcow2 top.qcow2 flat.qcow2
	qemu-img convert -O raw top.qcow2 flat.raw
	qemu-img create -q -f qcow2 -b flat.raw -F raw over.qcow2

	qemu-img create -q -f qcow2 alloc-zero.qcow2 4M
	qemu-io -c 'write -P 0 0 4M' alloc-zero.qcow2
	qemu-img create -q -f qcow2 unalloc.qcow2 4M
	qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 4M
	qemu-io -c 'write -P 1 0 4k' -c 'write -z 8k 4k' ext.qcow2
	qemu-img convert -O qcow2 ext.qcow2 ext-flat.qcow2
} >/dev/null 2>"$T/setup.err" || die "setup: $(cat "$T/setup.err")"

CASES=(
	"zero.raw zero.raw"
	"-s zero.raw zero.raw"
	"zero.raw one.raw"
	"one.raw one.qcow2"
	"one.qcow2 one.raw"
	"-s one.raw one.qcow2"
	"-f raw one.qcow2 one.raw"
	"-F raw one.raw one.qcow2"
	"-f qcow2 -F raw one.qcow2 one.raw"
	"zero.raw long-zero.raw"
	"long-zero.raw zero.raw"
	"-s zero.raw long-zero.raw"
	"zero.raw long-tail.raw"
	"long-tail.raw zero.raw"
	"mix.qcow2 mix.raw"
	"mix.raw mix.qcow2"
	"-s mix.qcow2 mix.raw"
	"-s mix.qcow2 mix.qcow2"
	"mix.qcow2 mix-4k.qcow2"
	"-s mix.qcow2 mix-4k.qcow2"
	"mix.qcow2 mix-diff.raw"
	"mix-diff.raw mix.qcow2"
	"mix.qcow2 mix-diff2.raw"
	"mix.qcow2 mix-long.raw"
	"mix.qcow2 mix-short.raw"
	"mix-short.raw mix.qcow2"
	"-s mix-short.raw mix.qcow2"
	"top.qcow2 flat.qcow2"
	"-s top.qcow2 flat.qcow2"
	"top.qcow2 flat.raw"
	"top.qcow2 base.raw"
	"base.raw top.qcow2"
	"over.qcow2 top.qcow2"
	"-s over.qcow2 flat.raw"
	"alloc-zero.qcow2 unalloc.qcow2"
	"-s alloc-zero.qcow2 unalloc.qcow2"
	"alloc-zero.qcow2 zero.raw"
	"-s unalloc.qcow2 unalloc.qcow2"
	"ext.qcow2 ext-flat.qcow2"
	"-s ext.qcow2 ext.qcow2"
	"-s ext.qcow2 ext-flat.qcow2"
)

# Foreign formats, converted by qemu-img from mix.raw and from
# mix-diff.raw: compared with mix.qcow2 (identical, or the mismatch).
FOREIGN=(vmdk vdi vpc)

plan $((${#CASES[@]} + 12 + ${#FOREIGN[@]} * 2))

for c in "${CASES[@]}"; do
	# shellcheck disable=SC2086 # a case is several words
	run qemu-img compare $c
	q="$rc: $out"
	# shellcheck disable=SC2086
	run "$VSTOR" img compare $c
	is "$rc: $out" "$q" "compare $c"
done

run "$VSTOR" img compare -q zero.raw one.raw
is "$rc:$out" "1:" "-q: the status says it, nothing is printed"
run "$VSTOR" img compare -q mix.qcow2 mix.raw
is "$rc:$out" "0:" "-q on identical images"
run "$VSTOR" img compare -p mix.qcow2 mix-diff.raw
like "$rc:$out" "^1:Content mismatch at offset 6361088!$" \
	"-p: the same verdict, progress kept off stdout"
run "$VSTOR" img compare zero.raw nosuch.raw
like "$rc:$err" "^2:.*nosuch\\.raw" "a missing file: exit 2, named"
run "$VSTOR" img compare zero.raw
is "$rc" 1 "one file only: a usage error"
run "$VSTOR" img compare -x zero.raw one.raw
is "$rc" 1 "an unknown option: a usage error"
run "$VSTOR" img compare -f qcow2 zero.raw one.raw
like "$rc:$err" "^2:.*zero\\.raw" "-f naming the wrong format: exit 2"

# A data cluster past the end of the file is refused by block status
# (exit 3), with the file's name; never a crash.
cp mix.qcow2 bad.qcow2
python3 - bad.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(104)
l1_off = struct.unpack('>Q', h[40:48])[0]
f.seek(l1_off); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2); e = struct.unpack('>Q', f.read(8))[0]
f.seek(l2); f.write(struct.pack('>Q', (e & ~0x00fffffffffffe00) | (1 << 40)))
PY
run "$VSTOR" img compare bad.qcow2 mix.raw
like "$rc:$err" "^3:.*bad\\.qcow2" "a corrupt L2 entry: exit 3, named"
is "$out" "" "nothing is claimed about the content"

# Compressed data that does not decompress: block status is fine, the
# read fails, and both tools exit 4.
qemu-img create -q -f qcow2 badcomp.qcow2 4M
qemu-io -c 'write -c -P 3 1M 64k' badcomp.qcow2 >/dev/null
python3 - badcomp.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(104)
cbits = struct.unpack('>I', h[20:24])[0]
l1_off = struct.unpack('>Q', h[40:48])[0]
f.seek(l1_off); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2 + 8 * ((1 << 20) >> cbits)); e = struct.unpack('>Q', f.read(8))[0]
assert e >> 62 & 1, "not compressed"
host = e & ((1 << (62 - (cbits - 8))) - 1)
f.seek(host); f.write(b'\xff' * 64)
PY
run qemu-img compare badcomp.qcow2 zero.raw
q="$rc: $out"
run "$VSTOR" img compare badcomp.qcow2 zero.raw
is "$rc: $out" "$q" "undecompressable data: the same exit status ($q)"

# The same images compared while a writer holds one: refused, and -U
# shares.
qemu-io -c 'sleep 10000' mix.qcow2 >/dev/null 2>&1 &
pid=$!
cleanup_add kill "$pid"
for _ in $(seq 50); do
	qemu-img info mix.qcow2 >/dev/null 2>&1 || break
	sleep 0.1
done
run "$VSTOR" img compare mix.qcow2 mix.raw
is "$rc" 2 "an image held by a writer is refused"
run "$VSTOR" img compare -U mix.qcow2 mix.raw
is "$rc:$out" "0:Images are identical." "-U compares it"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true

for fmt in "${FOREIGN[@]}"; do
	if ! qemu-img convert -O "$fmt" mix.raw "mix.$fmt" ||
		! qemu-img convert -O "$fmt" mix-diff.raw "diff.$fmt"; then
		die "qemu-img convert -O $fmt"
	fi
	if ! "$VSTOR" img info -f "$fmt" "mix.$fmt" >/dev/null 2>&1; then
		skip 2 "vstor cannot open $fmt yet"
		continue
	fi
	for c in "mix.$fmt mix.qcow2" "mix.qcow2 diff.$fmt"; do
		# shellcheck disable=SC2086 # two files
		run qemu-img compare $c
		q="$rc: $out"
		# shellcheck disable=SC2086
		run "$VSTOR" img compare $c
		is "$rc: $out" "$q" "compare $c"
	done
done
