#!/bin/bash
# VDI (VirtualBox) images, fixed ("static") and dynamic, against qemu-img:
#
#   - images qemu-img writes from a seeded raw pattern (holes and data,
#     some blocks partly written) read byte for byte as qemu-img reads
#     them (`vstor img convert -O raw`, and vbd-io's dump), with the same
#     virtual size, map and check result;
#   - images vstor writes (create, writes from two threads, partial and
#     overlapping writes, zeroes and discards that free whole blocks,
#     `vstor img convert -O vdi`) read by qemu-img with the content of a
#     raw model (`qemu-img compare`), clean for `qemu-img check` and for
#     `vstor img check`, and still writable by qemu-io;
#   - create options as qemu-img has them; probing; check and repair of
#     a block count left behind by a crash.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 cmp "$VSTOR" "$VBD_IO"

plan 120

SIZE=$((37 * 1024 * 1024 + 4096)) # not a whole number of 1 MiB blocks

# pattern FILE SEED: a raw disk of $SIZE bytes, runs of random bytes and
# of single bytes in seeded places, holes between them.
pattern() {
	python3 - "$1" "$2" "$SIZE" <<'EOF'
import random, sys
path, seed, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
b = bytearray(size)
for _ in range(40):
    off = r.randrange(0, size - 1)
    n = min(r.randrange(1, 900000), size - off)
    if r.random() < 0.5:
        b[off:off + n] = bytes([r.randrange(1, 256)]) * n
    else:
        b[off:off + n] = r.randbytes(n)
b[size - 700:] = b"\x5a" * 700  # the last, partial block
with open(path, "wb") as f:
    f.write(b)
EOF
}

# model FILE OPS...: apply "w OFF LEN BYTE" / "z OFF LEN" to a raw model.
model() {
	python3 - "$@" <<'EOF'
import sys
path, ops = sys.argv[1], sys.argv[2:]
b = bytearray(open(path, "rb").read())
for op in ops:
    f = op.split()
    off, n = int(f[1]), int(f[2])
    b[off:off + n] = bytes([int(f[3], 0)]) * n if f[0] == "w" else bytes(n)
open(path, "wb").write(b)
EOF
}

# apply_log FILE LOG: apply vbd-io random's "OFF LEN 0xPP" lines.
apply_log() {
	python3 - "$1" "$2" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
for line in open(sys.argv[2]):
    off, n, p = line.split()
    off, n = int(off), int(n)
    b[off:off + n] = bytes([int(p, 16)]) * n
open(sys.argv[1], "wb").write(b)
EOF
}

# set_count IMG N: the header's count of allocated blocks := N.
set_count() {
	python3 -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0x184); f.write(struct.pack("<I", int(sys.argv[2])))' "$1" "$2"
}

vsize() { # the virtual size that `TOOL img info --output=json` reports
	sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' <<<"$1"
}

# same_as_raw NAME IMG RAW: qemu-img reads IMG as RAW's content, and both
# checks are clean.
same_as_raw() {
	run qemu-img compare -f vdi -F raw "$2" "$3"
	is "$rc:$out" "0:Images are identical." "$1: qemu-img reads the content"
	run qemu-img check -f vdi "$2"
	is "$rc:$out" "0:No errors were found on the image." \
		"$1: qemu-img check is clean"
	run "$VSTOR" img check -f vdi "$2"
	is "$rc:$out" "0:No errors were found on the image." \
		"$1: vstor img check is clean"
}

pattern "$T/pat.raw" 4242 || die "cannot write the pattern"

# 1. Images qemu-img writes, read by vstor.
for kind in dynamic static; do
	o=()
	[ $kind = static ] && o=(-o static=on)
	img=$T/q-$kind.vdi
	qemu-img convert -f raw -O vdi "${o[@]}" "$T/pat.raw" "$img" ||
		die "qemu-img convert -O vdi $kind"
	qemu-img convert -f vdi -O raw "$img" "$T/q-$kind.ref" ||
		die "qemu-img convert -O raw"
	run_ok "$kind by qemu-img: vstor img info" "$VSTOR" img info \
		--output=json "$img"
	vinfo=$out
	run qemu-img info --output=json "$img"
	is "$(vsize "$vinfo")" "$(vsize "$out")" \
		"$kind by qemu-img: virtual size as qemu-img's"
	like "$vinfo" '"format": "vdi"' "$kind by qemu-img: probed as vdi"
	run_ok "$kind by qemu-img: vstor img convert -O raw" \
		"$VSTOR" img convert -f vdi -O raw "$img" "$T/v.raw"
	run cmp "$T/v.raw" "$T/q-$kind.ref"
	is "$rc" 0 "$kind by qemu-img: byte-identical to qemu-img's raw"
	run_ok "$kind by qemu-img: vbd-io dump" "$VBD_IO" -f vdi --readonly \
		"$img" dump "$T/d.raw"
	run cmp "$T/d.raw" "$T/q-$kind.ref"
	is "$rc" 0 "$kind by qemu-img: vbd-io dump is byte-identical"
	run "$VSTOR" img check -f vdi "$img"
	is "$rc:$out" "0:No errors were found on the image." \
		"$kind by qemu-img: vstor img check agrees"
	run "$VSTOR" img map -f vdi --output=json "$img"
	vmap=$out
	run qemu-img map -f vdi --output=json "$img"
	if [ $kind = dynamic ]; then
		is "$vmap" "$out" "$kind by qemu-img: map as qemu-img's"
	else
		# qemu-img also looks into the file's holes; the data blocks
		# still start where they start.
		like "$vmap" '"data": true, "offset": 1024' \
			"$kind by qemu-img: map shows the data in place"
	fi
done

# 2. Images vstor creates and writes, read by qemu-img.
for kind in dynamic static; do
	o=()
	[ $kind = static ] && o=(-o static=on)
	img=$T/v-$kind.vdi
	run_ok "$kind by vstor: create" "$VSTOR" img create -f vdi "${o[@]}" \
		"$img" 64M
	rm -f "$T/m.raw" && truncate -s 64M "$T/m.raw"
	same_as_raw "$kind by vstor: new" "$img" "$T/m.raw"
	run qemu-img info --output=json "$img"
	is "$(vsize "$out")" $((64 << 20)) "$kind by vstor: qemu-img sees 64 MiB"

	# Two threads, up to 32 requests in flight, blocks allocated by
	# racing writers.
	run_ok "$kind by vstor: 300 random writes" "$VBD_IO" -f vdi "$img" \
		random 7 300 300000
	printf '%s\n' "$out" >"$T/log"
	apply_log "$T/m.raw" "$T/log"
	same_as_raw "$kind by vstor: random writes" "$img" "$T/m.raw"

	# Partial and overlapping writes, zeroes and discards of whole and
	# partial blocks.
	ops=("w 1000 3000 0x41" "w 5242880 1048576 0x42" "z 2097152 1048576"
		"w 10485760 4096 0x43" "z 3145728 3145728"
		"w 66060288 1048576 0x44" "z 40000000 100000")
	run_ok "$kind by vstor: writes, zeroes, discards" "$VBD_IO" -f vdi \
		"$img" write 1000 3000 0x41 write 5M 1M 0x42 \
		zero 2M 1M unmap write 10M 4k 0x43 zero 3M 3M unmap \
		write 63M 1M 0x44 zero 40000000 100000 discard 20M 2M
	model "$T/m.raw" "${ops[@]}"
	# A discard leaves the content undefined: read what it became and
	# make sure it is either the old data or zeros, then take it.
	run "$VBD_IO" -f vdi --readonly "$img" dump "$T/now.raw"
	run python3 - "$T/m.raw" "$T/now.raw" <<'EOF'
import sys
m = bytearray(open(sys.argv[1], "rb").read())
n = open(sys.argv[2], "rb").read()
lo, hi = 20 << 20, 22 << 20
ok = n[lo:hi] == m[lo:hi] or n[lo:hi] == bytes(hi - lo)
m[lo:hi] = n[lo:hi]
open(sys.argv[1], "wb").write(m)
sys.exit(0 if ok and m == n else 1)
EOF
	is "$rc" 0 "$kind by vstor: content as the model"
	same_as_raw "$kind by vstor: after zeroes and discards" "$img" \
		"$T/m.raw"

	# qemu adds its blocks after ours without clashing.
	run_ok "$kind by vstor: qemu-io writes into it" qemu-io -f vdi \
		-c "write -P 0x61 30M 1M" -c "write -P 0x62 3M 64k" "$img"
	model "$T/m.raw" "w 31457280 1048576 0x61" "w 3145728 65536 0x62"
	same_as_raw "$kind by vstor: after qemu-io" "$img" "$T/m.raw"
done

# 3. vstor img convert -O vdi from the pattern.
for kind in dynamic static; do
	o=()
	[ $kind = static ] && o=(-o static=on)
	img=$T/c-$kind.vdi
	run_ok "convert -O vdi $kind" "$VSTOR" img convert -f raw -O vdi \
		"${o[@]}" "$T/pat.raw" "$img"
	same_as_raw "convert -O vdi $kind" "$img" "$T/pat.raw"
done

# 4. Create options.
run_fails "create: preallocation=metadata is refused, as by qemu-img" \
	"$VSTOR" img create -f vdi -o preallocation=metadata "$T/x.vdi" 1M
like "$err" "preallocation='metadata'" "create: the error names the option"
run_fails "create: an unknown option is refused" \
	"$VSTOR" img create -f vdi -o cluster_size=64k "$T/x.vdi" 1M
like "$err" "cluster_size" "create: the error names the unknown option"
run_ok "create: static=on,preallocation=full" "$VSTOR" img create -f vdi \
	-o static=on,preallocation=full "$T/full.vdi" 8M
used=$(du -k "$T/full.vdi" | cut -f1)
check "create: preallocation=full allocates the data ($used KiB)" \
	test "$used" -ge 8192
# A fixed image keeps its blocks when zeroed with unmap, not their space.
run_ok "fixed image: zero 8M unmap" "$VBD_IO" -f vdi "$T/full.vdi" \
	zero 0 8M unmap
used=$(du -k "$T/full.vdi" | cut -f1)
check "fixed image: the space is given back ($used KiB)" test "$used" -lt 1024
run qemu-img check -f vdi "$T/full.vdi"
is "$rc:$out" "0:No errors were found on the image." \
	"fixed image: still clean, every block still allocated"
run_fails "create: larger than qemu opens is refused" "$VSTOR" img create \
	-f vdi "$T/huge.vdi" $((0x1fffff8000000 + 512))
like "$err" "too large for VDI \(at most 562949819203584 bytes" \
	"create: the error gives the largest size"
run_ok "create: odd size" "$VSTOR" img create -f vdi "$T/odd.vdi" 1000001
run qemu-img info --output=json "$T/odd.vdi"
is "$(vsize "$out")" 1000448 "create: size rounded up to sectors, as qemu-img"

# 5. A crash between a new block's map entry and the header's count:
#    both checks see it, and `vstor img check -r all` repairs it.
cp "$T/c-dynamic.vdi" "$T/crash.vdi"
n=$(od -An -tu4 -j $((0x184)) -N4 "$T/crash.vdi" | tr -d ' ')
set_count "$T/crash.vdi" $((n - 1))
run qemu-img check -f vdi "$T/crash.vdi"
like "$rc:$err" "^2:.*allocated blocks mismatch, is $n, should be $((n - 1))" \
	"crash: qemu-img check finds it"
run "$VSTOR" img check -f vdi "$T/crash.vdi"
like "$rc:$err" "^2:.*allocated blocks mismatch, is $n, should be $((n - 1))" \
	"crash: vstor img check finds it"
run_ok "crash: vstor img check -r all" "$VSTOR" img check -f vdi -r all \
	"$T/crash.vdi"
same_as_raw "crash: repaired" "$T/crash.vdi" "$T/pat.raw"

# 6. The count ahead of the map (what a crash during an allocation may
#    leave): both checks see it, -r all repairs it, and writes are safe.
cp "$T/c-dynamic.vdi" "$T/ahead.vdi"
set_count "$T/ahead.vdi" $((n + 1))
run qemu-img check -f vdi "$T/ahead.vdi"
like "$rc:$err" "^2:.*allocated blocks mismatch, is $n, should be $((n + 1))" \
	"count ahead: qemu-img check finds it"
run "$VSTOR" img check -f vdi "$T/ahead.vdi"
like "$rc:$err" "^2:.*allocated blocks mismatch, is $n, should be $((n + 1))" \
	"count ahead: vstor img check finds it"
cp "$T/ahead.vdi" "$T/ahead2.vdi"
run_ok "count ahead: vstor img check -r all" "$VSTOR" img check -f vdi \
	-r all "$T/ahead.vdi"
same_as_raw "count ahead: repaired" "$T/ahead.vdi" "$T/pat.raw"

# Writes into images with the count behind or ahead of the map: new
# blocks take indices no entry uses.
cp "$T/pat.raw" "$T/m.raw"
model "$T/m.raw" "w 0 1048576 0x71" "w 36700160 4096 0x72"
cp "$T/c-dynamic.vdi" "$T/behind2.vdi"
set_count "$T/behind2.vdi" $((n - 1))
for f in behind2 ahead2; do
	run_ok "$f: vstor writes new blocks" "$VBD_IO" -f vdi "$T/$f.vdi" \
		write 0 1M 0x71 write 35M 4k 0x72
	run qemu-img compare -f vdi -F raw "$T/$f.vdi" "$T/m.raw"
	is "$rc:$out" "0:Images are identical." "$f: no block in use was reused"
done

# A count left at the very end by crashes: the holes are filled before
# new blocks run out of room, and the image ends up clean.
cp "$T/c-dynamic.vdi" "$T/full-count.vdi"
set_count "$T/full-count.vdi" "$(od -An -tu4 -j $((0x180)) -N4 \
	"$T/full-count.vdi" | tr -d ' ')"
run_ok "count at the end: vstor writes new blocks" "$VBD_IO" -f vdi \
	"$T/full-count.vdi" write 0 1M 0x71 write 35M 4k 0x72
same_as_raw "count at the end: after the writes" "$T/full-count.vdi" \
	"$T/m.raw"

# 7. A VirtualBox layout, made here from the pattern: header_size 0x190
#    with geometry, map at 1 MiB, data at 2 MiB, blocks stored in reverse
#    order, all-zero blocks as 0xfffffffe entries.
python3 - "$T/pat.raw" "$T/c-dynamic.vdi" "$T/vbox.vdi" <<'EOF'
import struct, sys
raw = open(sys.argv[1], "rb").read()
hdr = bytearray(open(sys.argv[2], "rb").read(512))
bs = mb = 1 << 20
n = (len(raw) + bs - 1) // bs
hdr[0:0x40] = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(0x40, b"\0")
struct.pack_into("<I", hdr, 0x48, 0x190)
struct.pack_into("<II", hdr, 0x154, mb, 2 * mb)
struct.pack_into("<III", hdr, 0x15c, 1024, 16, 63)
struct.pack_into("<IIII", hdr, 0x1c8, 1024, 16, 63, 512)
blocks = [raw[i * bs:(i + 1) * bs].ljust(bs, b"\0") for i in range(n)]
used = [i for i in range(n) if any(blocks[i])]
bmap = [0xfffffffe] * n
for k, i in enumerate(reversed(used)):
    bmap[i] = k
struct.pack_into("<II", hdr, 0x180, n, len(used))
out = bytearray(2 * mb)
out[0:512] = hdr
struct.pack_into("<%dI" % n, out, mb, *bmap)
for i in reversed(used):
    out += blocks[i]
open(sys.argv[3], "wb").write(out)
EOF
run qemu-img compare -f vdi -F raw "$T/vbox.vdi" "$T/pat.raw"
is "$rc:$out" "0:Images are identical." "vbox layout: qemu-img reads the pattern"
run_ok "vbox layout: vstor img convert -O raw" "$VSTOR" img convert -f vdi \
	-O raw "$T/vbox.vdi" "$T/vb.raw"
run cmp "$T/vb.raw" "$T/pat.raw"
is "$rc" 0 "vbox layout: vstor reads the pattern"
run "$VSTOR" img map -f vdi --output=json "$T/vbox.vdi"
vmap=$out
run qemu-img map -f vdi --output=json "$T/vbox.vdi"
is "$vmap" "$out" "vbox layout: map as qemu-img's"
run_ok "vbox layout: writes, a zeroed block, a discard" "$VBD_IO" -f vdi \
	"$T/vbox.vdi" write 1M 4k 0x81 write 9M 2M 0x82 zero 20M 1M unmap \
	discard 30M 1M
cp "$T/pat.raw" "$T/m.raw"
model "$T/m.raw" "w 1048576 4096 0x81" "w 9437184 2097152 0x82" \
	"z 20971520 1048576" "z 31457280 1048576"
same_as_raw "vbox layout: after writes" "$T/vbox.vdi" "$T/m.raw"

# 8. Resizing (qemu-img cannot resize VDI): dynamic images grow within
#    the room of their block map and shrink; the bytes past an old end
#    read as zeros after growing again.
cp "$T/c-dynamic.vdi" "$T/rs.vdi"
run_ok "resize: grow to 100M" "$VSTOR" img resize -f vdi "$T/rs.vdi" 100M
run qemu-img info --output=json "$T/rs.vdi"
is "$(vsize "$out")" $((100 << 20)) "resize: qemu-img sees 100 MiB"
cp "$T/pat.raw" "$T/m.raw" && truncate -s 100M "$T/m.raw"
same_as_raw "resize: grown" "$T/rs.vdi" "$T/m.raw"
run_fails "resize: past the room of the block map" "$VSTOR" img resize \
	-f vdi "$T/rs.vdi" 200M
like "$err" "rs.vdi: .*block map at offset 0x200 has room for 128" \
	"resize: the error says how far the map reaches"
# A new end 512 bytes into a block that holds data further on.
cut=$(python3 -c 'import sys
b = open(sys.argv[1], "rb").read()
mb = 1 << 20
print(next(k * mb + 512 for k in range(len(b) // mb - 1, 0, -1)
           if any(b[k * mb + 512:(k + 1) * mb])))' "$T/pat.raw")
run_ok "resize: shrink to $cut" "$VSTOR" img resize -f vdi --shrink \
	"$T/rs.vdi" "$cut"
head -c "$cut" "$T/pat.raw" >"$T/m.raw"
same_as_raw "resize: shrunk" "$T/rs.vdi" "$T/m.raw"
run_ok "resize: grow again to 60M" "$VSTOR" img resize -f vdi "$T/rs.vdi" 60M
truncate -s 60M "$T/m.raw"
same_as_raw "resize: grown after shrinking" "$T/rs.vdi" "$T/m.raw"
run_fails "resize: a fixed image keeps its size" "$VSTOR" img resize \
	-f vdi "$T/c-static.vdi" 100M
like "$err" "fixed \(static\) VDI images cannot be resized" \
	"resize: the error says why"
