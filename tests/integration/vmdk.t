#!/bin/bash
# The VMDK driver against qemu-img:
#
#   - reading: for each subformat qemu-img writes (monolithicSparse,
#     monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat,
#     streamOptimized), a seeded random pattern with holes is converted
#     to VMDK by qemu-img, then to raw by vstor and by qemu-img, and the
#     two raw files must be identical; the same for disks of more than
#     one 2 GiB extent, a hand-written VMFS descriptor with its flat
#     file, a descriptor mixing FLAT (at an offset) and ZERO extents, and
#     zeroed grains; `vstor img map` reports what `qemu-img map` does;
#   - info: format, virtual size, cluster size and create type as
#     qemu-img reports them, probed without -f;
#   - writing: images vstor creates (every subformat) and writes with
#     vbd-io, and images `vstor img convert` makes from the pattern, are
#     identical to the raw model for `qemu-img compare` and clean for
#     `qemu-img check`; writes to qemu's own images too; a grain table
#     missing from the GD is allocated; a streamOptimized grain is not
#     written twice; a disk with a parent is refused by name.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 cmp "$VSTOR" "$VBD_IO"

SUBS="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized"
plan 67

# pattern FILE SIZE SEED COUNT: a sparse raw file of SIZE bytes with
# COUNT random runs of data (some of them zeros, some of them unaligned),
# the rest holes.
pattern() {
	python3 - "$@" <<'PY' || die "pattern $*"
import os, random, sys
path, size, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = random.Random(seed)
with open(path, "wb") as f:
    f.truncate(size)
    for i in range(count):
        n = r.choice([1, 511, 4096, 65536, 70000, 200000])
        off = r.randrange(0, size - n)
        if i % 7 == 0:
            data = bytes(n)  # zeros that are written, not holes
        else:
            data = r.randbytes(n // 2) * 2 + r.randbytes(n % 2)
        f.seek(off)
        f.write(data)
PY
}

# same_raw NAME IMG: `vstor img convert -O raw` of IMG is byte for byte
# `qemu-img convert -O raw` of it.
same_raw() {
	local name=$1 img=$2
	rm -f "$T/q.raw" "$T/v.raw"
	qemu-img convert -U -O raw "$img" "$T/q.raw" || die "qemu-img convert $img"
	run "$VSTOR" img convert -U -O raw "$img" "$T/v.raw"
	if [ "$rc" -ne 0 ]; then
		not_ok "$name" "vstor img convert exit $rc" "$err"
	elif same_bytes "$T/q.raw" "$T/v.raw"; then
		ok "$name"
	else
		not_ok "$name" "$(cmp "$T/q.raw" "$T/v.raw" 2>&1 | head -1)"
	fi
}

# same_bytes A B: two raw files hold the same bytes.  cmp reads holes
# byte by byte, which takes long for gigabytes of them: big files are
# compared by qemu-img, which skips holes (sizes checked apart).
same_bytes() {
	local a b
	a=$(stat -c %s "$1") b=$(stat -c %s "$2")
	[ "$a" = "$b" ] || return 1
	if [ "$a" -lt $((256 << 20)) ]; then
		cmp -s "$1" "$2"
	else
		qemu-img compare -q -f raw -F raw "$1" "$2"
	fi
}

# json_get JSON KEY.PATH
json_get() {
	python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k) if isinstance(v, dict) else None
print("MISSING" if v is None else str(v).lower() if isinstance(v, bool) else v)
' "$1" "$2"
}

# same_info NAME IMG: format, virtual size, cluster size and create type
# as qemu-img reports them (vstor probes the format).
same_info() {
	local name=$1 img=$2 q v k ok=1 diffs=()
	q=$(qemu-img info -U --output=json "$img") || die "qemu-img info $img"
	run "$VSTOR" img info --output=json "$img"
	v=$out
	for k in format virtual-size cluster-size format-specific.data.create-type \
		format-specific.data.cid format-specific.data.extents.0.virtual-size; do
		if [ "$(json_get "$q" "$k")" != "$(json_get "$v" "$k")" ]; then
			ok=0
			diffs+=("$k: qemu '$(json_get "$q" "$k")' vstor '$(json_get "$v" "$k")'")
		fi
	done
	if [ "$rc" -eq 0 ] && [ $ok = 1 ]; then
		ok "$name"
	else
		not_ok "$name" "exit $rc" "${diffs[@]}" "$err"
	fi
}

# same_map NAME IMG
same_map() {
	local q
	q=$(qemu-img map -U --output=json "$2") || die "qemu-img map $2"
	run "$VSTOR" img map --output=json "$2"
	is "$out" "$q" "$1"
}

# clean_and_same NAME IMG MODEL: qemu-img finds IMG identical to the raw
# MODEL and its metadata clean.  Two points.
clean_and_same() {
	run qemu-img compare -f raw "$3" "$2"
	if [ "$rc" -eq 0 ]; then
		ok "$1: qemu-img compare finds it identical"
	else
		not_ok "$1: qemu-img compare finds it identical" "$out" "$err"
	fi
	run qemu-img check "$2"
	if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]]; then
		ok "$1: qemu-img check finds no errors"
	else
		not_ok "$1: qemu-img check finds no errors" "exit $rc" "$out" "$err"
	fi
}

SIZE=$((24 << 20))
pattern "$T/p.raw" "$SIZE" 4242 120

# 1. Each subformat, as qemu-img writes it: 3 points x 5.
for sub in $SUBS; do
	mkdir "$T/q-$sub" || die mkdir
	img=$T/q-$sub/disk.vmdk
	qemu-img convert -O vmdk -o subformat="$sub" "$T/p.raw" "$img" ||
		die "qemu-img convert -o subformat=$sub"
	same_raw "$sub by qemu-img: vstor reads what qemu-img reads" "$img"
	same_info "$sub by qemu-img: info as qemu-img's" "$img"
	same_map "$sub by qemu-img: map as qemu-img's" "$img"
done

# 2. More than one 2 GiB extent: 2 points.
pattern "$T/big.raw" $(((2 << 30) + (100 << 20))) 77 40
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
	mkdir "$T/big-$sub" || die mkdir
	img=$T/big-$sub/big.vmdk
	qemu-img convert -O vmdk -o subformat="$sub" "$T/big.raw" "$img" ||
		die "qemu-img convert big $sub"
	same_raw "$sub, 2 extents: vstor reads what qemu-img reads" "$img"
done
rm -rf "$T/big.raw" "$T"/big-* "$T/q.raw" "$T/v.raw"

# 3. Hand-written descriptors: an ESXi VMFS disk, and FLAT extents at an
# offset around a ZERO extent (3 points).
mkdir "$T/esx" || die mkdir
cp "$T/p.raw" "$T/esx/vm1-flat.vmdk"
cat >"$T/esx/vm1.vmdk" <<EOF
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW $((SIZE / 512)) VMFS "vm1-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "3"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.longContentID = "8c5bd4c6ee4bb0f0b32de0c1fffffffe"
ddb.uuid = "60 00 C2 9a 2c 5e 3f 14-c1 08 f7 27 d5 88 02 3b"
ddb.virtualHWVersion = "13"
EOF
same_raw "VMFS descriptor and flat file: vstor reads what qemu-img reads" \
	"$T/esx/vm1.vmdk"
same_info "VMFS descriptor: info as qemu-img's" "$T/esx/vm1.vmdk"
printf '# Disk DescriptorFile\r\nversion=1\r\nCID=12345678\r\nparentCID=ffffffff\r\ncreateType="monolithicFlat"\r\nRW 8192 FLAT "../p.raw" 2048\r\nRW 4096 ZERO\r\nRDONLY 2048 FLAT "../p.raw" 0\r\n' \
	>"$T/esx/mixed.vmdk"
# qemu-img skips ZERO and RDONLY extent lines (its disk comes out 4 MiB):
# the expected bytes are built here instead.
{
	dd if="$T/p.raw" bs=512 skip=2048 count=8192 status=none
	head -c $((4096 * 512)) /dev/zero
	dd if="$T/p.raw" bs=512 count=2048 status=none
} >"$T/mixed.raw" || die "mixed.raw"
run "$VSTOR" img convert -O raw "$T/esx/mixed.vmdk" "$T/v.raw"
if [ "$rc" -eq 0 ] && cmp -s "$T/mixed.raw" "$T/v.raw"; then
	ok "FLAT at an offset, ZERO, RDONLY, CRLF lines read as VMware lays them out"
else
	not_ok "FLAT at an offset, ZERO, RDONLY, CRLF lines read as VMware lays them out" \
		"exit $rc" "$err" "$(cmp "$T/mixed.raw" "$T/v.raw" 2>&1)"
fi

# 4. Zeroed grains (zeroed_grain=on, qemu-io write -z): 2 points.
img=$T/zg.vmdk
qemu-img create -q -f vmdk -o zeroed_grain=on "$img" 4M || die "create zg"
qemu-io -f vmdk "$img" -c 'write -P 0x61 0 256k' -c 'write -z 64k 128k' \
	-c 'write -P 0x62 1M 64k' >/dev/null || die "qemu-io zg"
same_raw "zeroed grains read as zeros" "$img"
same_map "zeroed grains: map as qemu-img's" "$img"

# 5. Images vstor creates, written by vbd-io: 2 points x 5.  The writes
# never share a grain, so that streamOptimized takes them all.
WRITES=(write 0 100000 0x11 write 200000 70000 0x22 write 1048575 2 0x33
	write 5000000 1000000 0x44 write $((SIZE - 4096)) 4096 0x55)
truncate -s "$SIZE" "$T/model.raw"
"$VBD_IO" -f raw "$T/model.raw" "${WRITES[@]}" || die "model"
for sub in $SUBS; do
	mkdir "$T/v-$sub" || die mkdir
	img=$T/v-$sub/new.vmdk
	"$VSTOR" img create -q -f vmdk -o subformat="$sub" "$img" "$SIZE" ||
		die "vstor img create $sub"
	"$VBD_IO" -f vmdk "$img" "${WRITES[@]}" || die "vbd-io $sub"
	clean_and_same "$sub by vstor, written by vstor" "$img" "$T/model.raw"
done

# 6. A stream takes more grains after it was closed, never one twice:
# 4 points.
img=$T/v-streamOptimized/new.vmdk
"$VBD_IO" -f raw "$T/model.raw" write 3000000 65536 0x66 || die "model"
run_ok "streamOptimized: reopened, takes new grains" \
	"$VBD_IO" -f vmdk "$img" write 3000000 65536 0x66
clean_and_same "streamOptimized after a second session" "$img" "$T/model.raw"
run_fails "streamOptimized: a grain is not written twice" \
	"$VBD_IO" -f vmdk "$img" write 4096 512 0x77
like "$err" "already written.*cannot be overwritten" \
	"streamOptimized: the refusal says why"

# 7. `vstor img convert` to each subformat: 2 points x 5.
for sub in $SUBS; do
	mkdir "$T/c-$sub" || die mkdir
	img=$T/c-$sub/conv.vmdk
	run "$VSTOR" img convert -O vmdk -o subformat="$sub" "$T/p.raw" "$img"
	[ "$rc" -eq 0 ] || diag "convert $sub: $err"
	clean_and_same "$sub by vstor img convert" "$img" "$T/p.raw"
done

# 8. Writes to qemu's own images (tables in front, redundant GD; a
# qemu-made stream): 4 points.
for sub in monolithicSparse streamOptimized; do
	img=$T/qw-$sub.vmdk
	qemu-img create -q -f vmdk -o subformat="$sub" "$img" "$SIZE" ||
		die "create $sub"
	"$VBD_IO" -f vmdk "$img" "${WRITES[@]}" || die "vbd-io $sub"
	"$VBD_IO" -f raw "$T/model.raw" write 3000000 65536 0 || die "model"
	clean_and_same "$sub by qemu-img, written by vstor" "$img" "$T/model.raw"
	"$VBD_IO" -f raw "$T/model.raw" write 3000000 65536 0x66 || die "model"
done

# 9. A grain directory without its tables: vstor allocates the tables
# (data, then table, then directory): 2 points.
img=$T/nogt.vmdk
qemu-img create -q -f vmdk "$img" "$SIZE" || die "create nogt"
python3 - "$img" <<'PY' || die "poke nogt"
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(512)
gts = -(-struct.unpack_from("<Q", h, 12)[0] // (128 * 512))
for off in (struct.unpack_from("<Q", h, 48)[0], struct.unpack_from("<Q", h, 56)[0]):
    f.seek(off * 512)
    f.write(bytes(4 * gts))
PY
"$VBD_IO" -f raw "$T/model.raw" write 3000000 65536 0 || die "model"
"$VBD_IO" -f vmdk "$img" "${WRITES[@]}" || die "vbd-io nogt"
clean_and_same "tables allocated on write" "$img" "$T/model.raw"

# 10. Info in text, probed: 2 points.
run_ok "vstor img info (probed) runs" "$VSTOR" img info "$T/q-monolithicSparse/disk.vmdk"
like "$out" "file format: vmdk.*virtual size: 24 MiB \\($SIZE bytes\\)" \
	"info says format vmdk and the virtual size"

# 11. Parents (qemu-img create -b): a child reads its unallocated grains
# from its parent; vstor makes children too, and copies the parent's
# bytes into a grain a write only partly covers; a loop is refused: 7
# points.
mkdir "$T/chain" || die mkdir
qemu-img create -q -f vmdk "$T/chain/base.vmdk" 4M || die "base"
qemu-io -f vmdk "$T/chain/base.vmdk" -c 'write -P 0x61 0 3M' >/dev/null ||
	die "base data"
qemu-img create -q -f vmdk -b base.vmdk -F vmdk "$T/chain/child.vmdk" ||
	die "child"
qemu-io -f vmdk "$T/chain/child.vmdk" -c 'write -P 0x62 100k 50k' \
	-c 'write -P 0x63 3M 64k' >/dev/null || die "child data"
same_raw "a child of a parent: vstor reads what qemu-img reads" \
	"$T/chain/child.vmdk"
same_map "a child of a parent: map as qemu-img's" "$T/chain/child.vmdk"
run "$VSTOR" img info --output=json "$T/chain/child.vmdk"
is "$(json_get "$out" backing-filename)" "base.vmdk" \
	"a child's info names its parent"
run_ok "vstor img create -b makes a child" "$VSTOR" img create -q -f vmdk \
	-b base.vmdk -F vmdk "$T/chain/child2.vmdk"
qemu-img convert -O raw "$T/chain/base.vmdk" "$T/chain/model.raw" ||
	die "model"
CW=(write 70000 1000 0x71 write $((2 << 20)) 70000 0x72 write $((3 << 20)) 512 0x73)
"$VBD_IO" -f raw "$T/chain/model.raw" "${CW[@]}" || die "model"
"$VBD_IO" -f vmdk "$T/chain/child2.vmdk" "${CW[@]}" || die "child2 writes"
clean_and_same "a child made and written by vstor" "$T/chain/child2.vmdk" \
	"$T/chain/model.raw"
python3 - "$T/chain/child.vmdk" "$T/chain/loop.vmdk" <<'PY' || die "loop"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
d = bytes(b[512:512 + 10240])
d = d.replace(b'parentFileNameHint="base.vmdk"', b'parentFileNameHint="loop.vmdk"')
b[512:512 + 10240] = d.rstrip(b"\0").ljust(10240, b"\0")
open(sys.argv[2], "wb").write(b)
PY
run_fails "a disk that is its own parent is refused" "$VSTOR" img info \
	"$T/chain/loop.vmdk"
like "$err" "loop.vmdk: .*loops back" "the refusal says the chain loops"

# 12. vstor img check: clean on qemu's and vstor's images, and a grain
# table entry past the end of the file is an error, as qemu-img says: 4
# points.
run_ok "vstor img check: qemu-img's stream is clean" "$VSTOR" img check \
	"$T/q-streamOptimized/disk.vmdk"
run_ok "vstor img check: vstor's twoGbMaxExtentSparse is clean" "$VSTOR" \
	img check "$T/c-twoGbMaxExtentSparse/conv.vmdk"
img=$T/c-monolithicSparse/conv.vmdk
python3 - "$img" <<'PY' || die "poke"
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
gd = struct.unpack_from("<Q", b, 56)[0] * 512
gt = struct.unpack_from("<I", b, gd)[0] * 512
struct.pack_into("<I", b, gt, 1 << 28)
open(sys.argv[1], "wb").write(b)
PY
run "$VSTOR" img check "$img"
is "$rc" 2 "vstor img check: a grain past EOF is a corruption (exit 2)"
like "$err" "conv.vmdk: ERROR: cluster offset for sector 0 points after EOF" \
	"vstor img check names the sector and the problem"
