#!/bin/bash
# The VHD driver ("vpc") against qemu-img:
#
#   - images qemu-img makes (fixed and dynamic, from a raw file of seeded
#     random data and holes; qemu-io writes at unaligned places) read by
#     vstor exactly as qemu-img converts them;
#   - images vstor makes and writes (vbd-io writes, concurrent random
#     writes, `vstor img convert -O vpc`) read by qemu-img exactly as a
#     raw model written the same way;
#   - sector bitmaps: clear bits read as zeros and map as such, writes
#     set the bits of the sectors they touch;
#   - differencing images: a child of a dynamic parent reads the parent
#     through it, writes (partial sectors too) land in the child only,
#     the pair still opens when moved together, and a parent with another
#     unique id or no parent at all is refused;
#   - virtual sizes equal qemu-img's for several sizes (CHS-rounded, not
#     CHS-representable, above the CHS limit, force_size) and for the
#     creator applications that size disks by current_size or geometry.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 cmp "$VSTOR" "$VBD_IO"

plan 101

# A raw file of SIZE bytes, seeded random data and holes.
pattern() {
	python3 - "$1" "$2" "$3" <<'PY'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
with open(path, "wb") as f:
    f.truncate(size)
    off = 0
    while off < size:
        n = min(rnd.randrange(1, 300 << 10), size - off)
        if rnd.random() < 0.5:
            f.seek(off)
            f.write(rnd.randbytes(n))
        off += n + rnd.randrange(0, 600 << 10)
PY
}

# vsize IMG [FMT]: the virtual size `vstor img info` reports.
vsize() {
	local fmt=()
	[ -z "${2:-}" ] || fmt=(-f "$2")
	"$VSTOR" img info --output=json "${fmt[@]}" "$1" 2>/dev/null |
		sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}
qsize() {
	local fmt=()
	[ -z "${2:-}" ] || fmt=(-f "$2")
	qemu-img info --output=json "${fmt[@]}" "$1" 2>/dev/null |
		sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# same_bytes NAME A B
same_bytes() {
	if cmp -s "$2" "$3"; then
		ok "$1"
	else
		not_ok "$1" "$(cmp "$2" "$3" 2>&1 | head -2)"
	fi
}

# qemu_same NAME IMG MODEL: qemu-img compare finds IMG (vpc) equal to
# the raw MODEL.
qemu_same() {
	run qemu-img compare -f raw -F vpc "$3" "$2"
	if [ "$rc" -eq 0 ]; then
		ok "$1"
	else
		not_ok "$1" "$out" "$err"
	fi
}

SIZE=$((20 * 1024 * 1024 + 7 * 512))
pattern "$T/pat.raw" "$SIZE" 4242 || die "pattern"

# 1. qemu-img's images, read by vstor.
for sub in fixed dynamic; do
	img=$T/q-$sub.vhd
	run_ok "qemu-img makes a $sub VHD" qemu-img convert -f raw -O vpc \
		-o subformat=$sub "$T/pat.raw" "$img"
	run_ok "$sub: vstor img convert -O raw" "$VSTOR" img convert -f vpc \
		-O raw "$img" "$T/v.raw"
	qemu-img convert -f vpc -O raw "$img" "$T/r.raw" || die "qemu convert"
	same_bytes "$sub: vstor reads what qemu-img reads" "$T/v.raw" "$T/r.raw"
	run_ok "$sub: vbd-io dump" "$VBD_IO" -f vpc --readonly "$img" dump \
		"$T/d.raw"
	same_bytes "$sub: vbd-io dump is the same" "$T/d.raw" "$T/r.raw"
	is "$(vsize "$img" vpc)" "$(qsize "$img" vpc)" \
		"$sub: virtual size as qemu-img's"
done
run_ok "a dynamic VHD probes as vpc" "$VSTOR" img info "$T/q-dynamic.vhd"
like "$out" "file format: vpc" "info says vpc"
run_ok "a fixed VHD probes as raw, as in qemu (-f vpc needed)" \
	"$VSTOR" img info "$T/q-fixed.vhd"
like "$out" "file format: raw" "info says raw"
run_ok "the alias vhd opens the fixed image" "$VBD_IO" -f vhd --readonly \
	"$T/q-fixed.vhd" read 0 0 0
run_ok "qemu-img map and vstor img map agree on a dynamic VHD" \
	"$VSTOR" img map --output=json "$T/q-dynamic.vhd"
# shellcheck disable=SC2001 # a regex, not a fixed string
vmap=$(sed 's/, "offset": [0-9]*//' <<<"$out")
qmap=$(qemu-img map --output=json "$T/q-dynamic.vhd" |
	sed 's/, "offset": [0-9]*//')
is "$vmap" "$qmap" "map: the same extents (host offsets aside)"

# qemu-io writes at unaligned places, across blocks.
img=$T/qio.vhd
qemu-img create -q -f vpc "$img" 12M || die "create"
run_ok "qemu-io writes unaligned data" qemu-io -f vpc \
	-c 'write -P 0x11 1000 3000' -c 'write -P 0x22 2047k 5k' \
	-c 'write -P 0x33 6291455 2' -c 'write -P 0x44 11M 1M' "$img"
qemu-img convert -f vpc -O raw "$img" "$T/r.raw" || die "qemu convert"
run_ok "vstor img convert of it" "$VSTOR" img convert -O raw "$img" "$T/v.raw"
same_bytes "vstor reads qemu-io's writes" "$T/v.raw" "$T/r.raw"

# 2. vstor's images, read by qemu-img.
WRITES=(write 0 4k 0x01 write 1000 3000 0x02 write 2047k 5k 0x03
	write 6291455 2 0x04 write 7M 2M 0x05 write 13M 1 0x06
	write 19M 1M 0x07)
for sub in fixed dynamic; do
	img=$T/v-$sub.vhd
	run_ok "vstor img create $sub" "$VSTOR" img create -f vpc \
		-o subformat=$sub "$img" 20M
	is "$(vsize "$img" vpc)" "$(qsize "$img" vpc)" \
		"$sub: qemu-img sees the size vstor made"
	run_ok "$sub: qemu-img check or info accepts it" qemu-img info \
		-f vpc "$img"
	rm -f "$T/model.raw"
	truncate -s "$(vsize "$img" vpc)" "$T/model.raw" || die "truncate"
	run_ok "$sub: vstor writes" "$VBD_IO" -f vpc "$img" "${WRITES[@]}"
	"$VBD_IO" -f raw "$T/model.raw" "${WRITES[@]}" || die "model"
	qemu_same "$sub: qemu-img reads vstor's writes" "$img" "$T/model.raw"
	run_ok "$sub: concurrent random writes" "$VBD_IO" -f vpc "$img" \
		random 7 300 200k
	while read -r off len pat; do
		echo write "$off" "$len" "$pat"
	done <<<"$out" | xargs "$VBD_IO" -f raw "$T/model.raw" ||
		die "model random"
	qemu_same "$sub: qemu-img reads the random writes" "$img" \
		"$T/model.raw"
	run_ok "$sub: vstor img convert -O vpc" "$VSTOR" img convert -f raw \
		-O vpc -o subformat=$sub "$T/pat.raw" "$T/c-$sub.vhd"
	qemu_same "$sub: qemu-img reads vstor's conversion" "$T/c-$sub.vhd" \
		"$T/pat.raw"
done
rm -f "$T/model.raw" "$T/v-fixed.vhd" "$T/c-fixed.vhd" "$T/q-fixed.vhd"

# 2b. Sector bitmaps, as Hyper-V leaves them: a dynamic image of 1 MiB
# blocks whose block 0 has sectors 8..15 clear (zeros under them, or
# stale bytes in the second copy).
python3 - "$T/hv.vhd" "$T/hv-stale.vhd" <<'PY' || die "hv image"
import struct, sys
def ck(b): return ~sum(b) & 0xFFFFFFFF
def footer():
    f = bytearray(512)
    f[0:8] = b"conectix"
    struct.pack_into(">IIQI4sI4sQQHBBI", f, 8, 2, 0x10000, 512, 0, b"win ",
                     0x60001, b"Wi2k", 4 << 20, 4 << 20, 120, 4, 17, 3)
    f[68:84] = bytes(range(1, 17))
    struct.pack_into(">I", f, 64, ck(f))
    return f
for path, stale in ((sys.argv[1], 0), (sys.argv[2], 0xEE)):
    bs, n = 1 << 20, 4
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", h, 8, 2**64 - 1, 1536, 0x10000, n, bs)
    struct.pack_into(">I", h, 36, ck(h))
    bat = bytearray(b"\xff" * 512)
    struct.pack_into(">I", bat, 0, 2048 // 512)
    bitmap = bytearray(b"\xff" * 512)
    bitmap[1] = 0  # sectors 8..15
    data = bytearray(b"\x61" * bs)
    data[8 * 512:16 * 512] = bytes([stale]) * (8 * 512)
    open(path, "wb").write(footer() + h + bat + bitmap + data + footer())
PY
qemu-img convert -f vpc -O raw "$T/hv.vhd" "$T/r.raw" || die "convert"
run_ok "bitmaps: vstor reads a block with clear bits" "$VSTOR" img convert \
	-f vpc -O raw "$T/hv.vhd" "$T/v.raw"
same_bytes "bitmaps: as qemu-img when the data under clear bits is zero" \
	"$T/v.raw" "$T/r.raw"
run_ok "bitmaps: map" "$VSTOR" img map --output=json "$T/hv.vhd"
like "$out" '"start": 4096, "length": 4096, "depth": 0, "present": true, "zero": true, "data": false' \
	"bitmaps: the clear sectors map as zeros"
run_ok "bitmaps: stale bytes under clear bits read as zeros (the spec)" \
	"$VBD_IO" -f vpc --readonly "$T/hv-stale.vhd" read 0 4k 0x61 \
	read 4k 4k 0 read 8k 1016k 0x61
run_ok "bitmaps: a write into the clear sectors" "$VBD_IO" -f vpc \
	"$T/hv-stale.vhd" write 4608 1000 0x3c
run_ok "bitmaps: vstor reads it back" "$VBD_IO" -f vpc --readonly \
	"$T/hv-stale.vhd" read 4k 512 0 read 4608 1000 0x3c read 5608 2584 0
run_ok "bitmaps: map after the write" "$VSTOR" img map --output=json \
	"$T/hv-stale.vhd"
like "$out" '"start": 4096, "length": 512, "depth": 0, "present": true, "zero": true' \
	"bitmaps: an untouched clear sector stays unset"
like "$out" '"start": 4608, "length": 1024, "depth": 0, "present": true, "zero": false, "data": true' \
	"bitmaps: the written sectors' bits are set"

# 3. Differencing images.
mkdir "$T/d" || die "mkdir"
P=$T/d/base.vhd C=$T/d/child.vhd
"$VSTOR" img create -q -f vpc "$P" 20M || die "parent"
"$VBD_IO" -f vpc "$P" write 0 6M 0xaa write 9M 3M 0xbb || die "parent data"
cp "$P" "$T/base.orig" || die "cp"
run_ok "vstor img create -b a differencing VHD" "$VSTOR" img create -f vpc \
	-b base.vhd -F vpc "$C"
run_ok "info shows the parent" "$VSTOR" img info "$C"
like "$out" "backing file: $T/d/base.vhd" "the parent is named"
like "$out" "virtual size: .*\\($(vsize "$P") bytes\\)" "the parent's size"
CW=(write 100 1000 0x01 write 2047k 2k 0x02 write 4M 1 0x03
	write 10M 5000 0x04 write 17M 4k 0x05)
run_ok "writes into the child" "$VBD_IO" -f vpc "$C" "${CW[@]}"
"$VBD_IO" -f vpc --readonly "$P" dump "$T/model.raw" || die "model"
"$VBD_IO" -f raw "$T/model.raw" "${CW[@]}" || die "model writes"
run_ok "concurrent random writes into the child" "$VBD_IO" -f vpc "$C" \
	random 11 150 300k
while read -r off len pat; do
	echo write "$off" "$len" "$pat"
done <<<"$out" | xargs "$VBD_IO" -f raw "$T/model.raw" || die "model random"
run_ok "dump the child" "$VBD_IO" -f vpc --readonly "$C" dump "$T/c.raw"
same_bytes "the child reads the parent merged with its writes" \
	"$T/c.raw" "$T/model.raw"
run_ok "vstor img convert of the child" "$VSTOR" img convert -O raw "$C" \
	"$T/c2.raw"
same_bytes "convert gives the merged content" "$T/c2.raw" "$T/model.raw"
same_bytes "the parent is unchanged" "$P" "$T/base.orig"
run_ok "vstor img map of the child" "$VSTOR" img map --output=json "$C"
like "$out" '"depth": 0, "present": true, "zero": false, "data": true' \
	"map: the child's own data at depth 0"
like "$out" '"depth": 1, "present": true, "zero": false, "data": true' \
	"map: the parent's data at depth 1"
run_ok "a grandchild" "$VSTOR" img create -q -f vpc -b child.vhd -F vpc \
	"$T/d/gc.vhd"
"$VBD_IO" -f vpc "$T/d/gc.vhd" write 4M 512 0x09 || die "gc write"
cp "$T/model.raw" "$T/gmodel.raw" || die "cp"
"$VBD_IO" -f raw "$T/gmodel.raw" write 4M 512 0x09 || die "model"
run_ok "dump the grandchild" "$VBD_IO" -f vpc --readonly "$T/d/gc.vhd" \
	dump "$T/c.raw"
same_bytes "three layers merge" "$T/c.raw" "$T/gmodel.raw"
rm -f "$T/d/gc.vhd" "$T/gmodel.raw"

# A child made on Windows: only an absolute W2ku path with a drive.
mkdir "$T/win" || die "mkdir"
cp "$P" "$C" "$T/win/" || die "cp"
python3 - "$T/win/child.vhd" <<'PY' || die "poke locators"
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
h = struct.unpack_from(">Q", b, 16)[0]
name = "C:\\VMs\\base.vhd".encode("utf-16-le")
for i in range(8):
    at = h + 576 + 24 * i
    code, space, length, res, off = struct.unpack_from(">IIIIQ", b, at)
    if code == 0x57326B75:  # W2ku
        b[off:off + len(name)] = name
        struct.pack_into(">I", b, at + 8, len(name))
    elif code:
        struct.pack_into(">I", b, at, 0)
b[h + 64:h + 576] = bytes(512)  # no parent name either
struct.pack_into(">I", b, h + 36, 0)
struct.pack_into(">I", b, h + 36, ~sum(b[h:h + 1024]) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b)
PY
run_ok "a Windows drive path finds the parent beside the child" "$VBD_IO" \
	-f vpc --readonly "$T/win/child.vhd" dump "$T/c.raw"
same_bytes "and reads the merged content" "$T/c.raw" "$T/model.raw"
rm -rf "$T/win"

mkdir "$T/moved" || die "mkdir"
mv "$T/d/base.vhd" "$T/d/child.vhd" "$T/moved/" || die "mv"
run_ok "child and parent moved together still open" "$VBD_IO" -f vpc \
	--readonly "$T/moved/child.vhd" dump "$T/c.raw"
same_bytes "and read the merged content" "$T/c.raw" "$T/model.raw"
run_ok "a new file at the parent's name" "$VSTOR" img create -q -f vpc \
	"$T/moved/base.vhd" 20M
run_fails "a parent with another unique id is refused" "$VSTOR" img info \
	"$T/moved/child.vhd"
like "$err" "child.vhd: parent .*base.vhd has unique id .*the image records parent id" \
	"the error names both ids"
rm -f "$T/moved/base.vhd"
run_fails "a missing parent is refused" "$VBD_IO" -f vpc --readonly \
	"$T/moved/child.vhd" read 0 512 0
like "$err" "child.vhd: differencing image: parent not found" \
	"the error says the parent is missing"
run_fails "-b with a non-VHD parent format is refused" "$VSTOR" img create \
	-f vpc -b "$T/pat.raw" -F raw "$T/bad.vhd"
like "$err" "parent of a differencing VHD is a VHD" "and says why"
rm -f "$T/model.raw" "$T/c.raw" "$T/c2.raw" "$T/base.orig"

# 4. Sizes.
for spec in 1G:dynamic 10M:dynamic 3000M:dynamic 1000001:dynamic \
	200G:dynamic 10M:fixed 1000001:fixed 10M:dynamic,force_size=on \
	10514433:fixed,force_size=on; do
	sz=${spec%%:*} opts=subformat=${spec#*:}
	qemu-img create -q -f vpc -o "$opts" "$T/qs.vhd" "$sz" || die "qemu"
	"$VSTOR" img create -q -f vpc -o "$opts" "$T/vs.vhd" "$sz" ||
		die "vstor create $sz $opts"
	q=$(qsize "$T/qs.vhd" vpc)
	is "$(vsize "$T/qs.vhd" vpc)/$(vsize "$T/vs.vhd" vpc)/$(qsize "$T/vs.vhd" vpc)" \
		"$q/$q/$q" "size $sz $opts: vstor and qemu-img agree on both files"
	rm -f "$T/qs.vhd" "$T/vs.vhd"
done

# Layouts: vstor writes qemu-img's bytes, apart from what must differ
# (time stamp, checksum, unique id).
for opts in subformat=dynamic subformat=fixed subformat=dynamic,force_size=on; do
	qemu-img create -q -f vpc -o "$opts" "$T/qs.vhd" 100M || die "qemu"
	"$VSTOR" img create -q -f vpc -o "$opts" "$T/vs.vhd" 100M || die "vstor"
	run python3 - "$T/qs.vhd" "$T/vs.vhd" <<'PY'
import sys
a, b = (bytearray(open(p, "rb").read()) for p in sys.argv[1:3])
if len(a) != len(b):
    sys.exit("sizes %d and %d" % (len(a), len(b)))
for img in (a, b):
    for at in {0, len(img) - 512}:
        if img[at:at + 8] == b"conectix":
            img[at + 24:at + 28] = bytes(4)  # time stamp
            img[at + 64:at + 84] = bytes(20)  # checksum, unique id
diff = [i for i in range(len(a)) if a[i] != b[i]]
if diff:
    sys.exit("first difference at offset %d" % diff[0])
PY
	is "$rc/$err" "0/" "$opts: the same bytes as qemu-img's"
	rm -f "$T/qs.vhd" "$T/vs.vhd"
done

# Creator applications: the geometry says 10 MiB, current_size 12 MiB.
qemu-img create -q -f vpc "$T/app.vhd" 10M || die "create"
qemu-io -f vpc -c 'write -P 0x77 9M 1M' -c 'write -P 0x66 0 1M' \
	"$T/app.vhd" >/dev/null || die "qemu-io"
for app in 'vpc ' 'win ' 'tap\0' 'd2v ' 'CTXS' 'qem2' 'qemu'; do
	python3 - "$T/app.vhd" "$T/a.vhd" "$app" <<'PY' || die "poke $app"
import struct, sys
src, dst, app = sys.argv[1], sys.argv[2], sys.argv[3].replace("\\0", "\0")
b = bytearray(open(src, "rb").read())
for at in (0, len(b) - 512):
    b[at + 28:at + 32] = app.encode()
    struct.pack_into(">Q", b, at + 48, 12 << 20)
    struct.pack_into(">I", b, at + 64, 0)
    struct.pack_into(">I", b, at + 64, ~sum(b[at:at + 512]) & 0xFFFFFFFF)
open(dst, "wb").write(b)
PY
	qemu-img convert -f vpc -O raw "$T/a.vhd" "$T/r.raw" || die "convert"
	"$VSTOR" img convert -f vpc -O raw "$T/a.vhd" "$T/v.raw" ||
		die "vstor convert"
	if [ "$(vsize "$T/a.vhd")" = "$(qsize "$T/a.vhd")" ] &&
		cmp -s "$T/r.raw" "$T/v.raw"; then
		ok "creator '$app': size $(vsize "$T/a.vhd") and data as qemu-img's"
	else
		not_ok "creator '$app'" "vstor $(vsize "$T/a.vhd"), qemu $(qsize "$T/a.vhd")"
	fi
done

# convert from a raw file fills new dynamic blocks by copy_file_range
# (vhd_copy_from_fd); from another file system (a tmpfs source, where
# the kernel refuses with EXDEV) through a buffer instead.  Both read
# back as the source.
head -c $((5 << 20)) /dev/urandom >"$T/k.raw" || die "cannot write k.raw"
truncate -s 8M "$T/k.raw"
run_ok "raw -> vpc by kernel copies" "$VSTOR" img convert -f raw -O vpc \
	"$T/k.raw" "$T/k.vhd"
run_ok "raw -> vpc by kernel copies: reads as the source" \
	qemu-img compare -q -f raw -F vpc "$T/k.raw" "$T/k.vhd"
shm=$(mktemp -d /dev/shm/vstor-test.XXXXXX 2>/dev/null) || shm=$T
cp "$T/k.raw" "$shm/k.raw"
run_ok "raw on $(stat -f -c %T "$shm") -> vpc" "$VSTOR" img convert -f raw \
	-O vpc "$shm/k.raw" "$T/k2.vhd"
run_ok "raw on $(stat -f -c %T "$shm") -> vpc: reads as the source" \
	qemu-img compare -q -f raw -F vpc "$T/k.raw" "$T/k2.vhd"
[ "$shm" = "$T" ] || rm -rf "$shm"
