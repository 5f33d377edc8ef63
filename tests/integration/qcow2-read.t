#!/bin/bash
# The qcow2 driver reads what QEMU writes: compat 0.10 and 1.1 images of
# every cluster size, data at aligned and unaligned places, zero
# clusters, zlib and zstd compressed clusters, a three-deep backing chain
# over a shorter raw file.  Every byte vstor reads is compared with
# qemu-img's own raw conversion of the same image.  Byte-poked and
# truncated images fail cleanly; a dirty image is not opened for writing.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR" "$VBD_IO"

SIZE=$((8 << 20))
plan 87

# "OFF LEN 0xPP" for every run of equal bytes in a raw file.
runs() {
	python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
out, start, n = [], 0, len(data)
cur = data[0] if n else 0
for i in range(0, n, 512):
    blk = data[i:i + 512]
    if blk.count(cur) == len(blk):
        continue  # the whole block continues the current run
    for j, v in enumerate(blk):
        if v != cur:
            out.append("%d %d 0x%02x" % (start, i + j - start, cur))
            start, cur = i + j, v
if n:
    out.append("%d %d 0x%02x" % (start, n - start, cur))
print("\n".join(out))
PY
}

# same_as_qemu NAME IMG: vstor reads IMG exactly as qemu-img converts it.
same_as_qemu() {
	local name=$1 img=$2 ref=$T/ref.raw line
	local args=()
	rm -f "$ref"
	if ! qemu-img convert -U -O raw "$img" "$ref" 2>/dev/null; then
		not_ok "$name" "qemu-img convert failed"
		return
	fi
	while read -r line; do
		# shellcheck disable=SC2206 # three words
		args+=(read $line)
	done <<<"$(runs "$ref")"
	run "$VBD_IO" -f qcow2 --readonly "$img" "${args[@]}"
	if [ "$rc" -eq 0 ] && [ $((${#args[@]} / 4)) -gt 0 ]; then
		ok "$name ($((${#args[@]} / 4)) runs checked)"
	else
		not_ok "$name" "vbd-io exit $rc" "$err"
	fi
}

# json_get FILE.json KEY.PATH: a value from vstor img info --output=json.
json_get() {
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("MISSING" if v is None else str(v).lower() if isinstance(v, bool) else v)
' "$1" "$2"
}

fill() {
	qemu-io -f qcow2 "$1" \
		-c 'write -P 0xa1 0 4k' \
		-c 'write -P 0xa2 70001 12345' \
		-c 'write -P 0xa3 3M 1M' \
		-c 'write -P 0xa4 5M 512k' \
		-c 'write -z 5308416 128k' \
		-c "write -P 0xa5 $((SIZE - 1000)) 1000" >/dev/null
}

# 1. Plain images: 2 compat levels x 4 cluster sizes, 4 points each.
for compat in 0.10 1.1; do
	for cs in 512 4096 65536 2097152; do
		img=$T/plain-$compat-$cs.qcow2
		qemu-img create -q -f qcow2 -o "compat=$compat,cluster_size=$cs" \
			"$img" "$SIZE" && fill "$img" ||
			die "cannot make $img"
		run_ok "info $compat/$cs (probed)" "$VSTOR" img info \
			--output=json "$img"
		echo "$out" >"$T/info.json"
		is "$(json_get "$T/info.json" format) $(json_get "$T/info.json" virtual-size) $(json_get "$T/info.json" cluster-size)" \
			"qcow2 $SIZE $cs" "info $compat/$cs: format, size, cluster size"
		is "$(json_get "$T/info.json" format-specific.data.compat)" \
			"$compat" "info $compat/$cs: compat"
		same_as_qemu "content $compat/$cs" "$img"
	done
done

# 2. -f qcow2 given, and the human output.
img=$T/plain-1.1-65536.qcow2
run_ok "info -f qcow2" "$VSTOR" img info -f qcow2 "$img"
like "$out" "file format: qcow2" "human info names the format"
like "$out" "cluster_size: 65536" "human info gives the cluster size"

# 3. Compressed clusters, zlib and zstd.
src=$T/plain-1.1-65536.qcow2
for ct in zlib zstd; do
	for cs in 4096 65536; do
		img=$T/comp-$ct-$cs.qcow2
		run_ok "convert -c ($ct, $cs)" qemu-img convert -c -O qcow2 \
			-o "compression_type=$ct,cluster_size=$cs" "$src" "$img"
		run qemu-img check "$img"
		like "$out" "[1-9][0-9.]*% compressed clusters" \
			"$ct/$cs image holds compressed clusters"
		run_ok "info $ct/$cs" "$VSTOR" img info --output=json "$img"
		echo "$out" >"$T/info.json"
		is "$(json_get "$T/info.json" format-specific.data.compression-type)" \
			"$ct" "info says compression-type $ct"
		same_as_qemu "content $ct/$cs" "$img"
	done
done
img=$T/comp-v2.qcow2
run_ok "convert -c compat=0.10" qemu-img convert -c -O qcow2 \
	-o compat=0.10 "$src" "$img"
same_as_qemu "content compressed compat=0.10" "$img"

# 4. A backing chain three deep over a shorter raw file.
qemu-img create -q -f raw "$T/base.raw" 3M &&
	qemu-io -f raw -c 'write -P 0xb1 0 3M' -c 'write -P 0xb2 1000 3000' \
		"$T/base.raw" >/dev/null || die "cannot make base.raw"
(cd "$T" && qemu-img create -q -f qcow2 -o cluster_size=4096 \
	-b base.raw -F raw mid.qcow2 6M) || die "cannot make mid.qcow2"
qemu-io -f qcow2 -c 'write -P 0xc1 8192 8192' -c 'write -P 0xc2 2M 2M' \
	-c 'write -z 100k 64k' "$T/mid.qcow2" >/dev/null || die "mid writes"
(cd "$T" && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 \
	"$SIZE") || die "cannot make top.qcow2"
qemu-io -f qcow2 -c 'write -P 0xd1 12345 777' -c 'write -z 2M 64k' \
	-c 'write -P 0xd2 7M 100k' "$T/top.qcow2" >/dev/null || die "top writes"
run_ok "info of the chain's top" "$VSTOR" img info --output=json \
	"$T/top.qcow2"
echo "$out" >"$T/info.json"
is "$(json_get "$T/info.json" backing-filename) $(json_get "$T/info.json" backing-filename-format)" \
	"mid.qcow2 qcow2" "info gives the backing file and its format"
same_as_qemu "content through a 3-deep chain (relative names)" \
	"$T/top.qcow2"
same_as_qemu "content of the middle image" "$T/mid.qcow2"
run_ok "zero cluster hides backing data" "$VBD_IO" -f qcow2 --readonly \
	"$T/top.qcow2" read 2M 64k 0 read $((2 * 1024 * 1024 + 65536)) 4096 0xc2
run_ok "past the shorter base: zeros" "$VBD_IO" -f qcow2 --readonly \
	"$T/mid.qcow2" read 3M 1M 0xc2 read 4M 2M 0

# Without a backing format the backing file is probed: the backing
# format extension is turned into an unknown one (which must be skipped).
(cd "$T" && qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 \
	probe.qcow2 "$SIZE") || die "cannot make probe.qcow2"
python3 - "$T/probe.qcow2" <<'PY' || die "poke failed"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = f.read(4096)
    off = struct.unpack(">I", h[100:104])[0]
    while True:
        t, n = struct.unpack(">II", h[off:off + 8])
        assert t != 0, "no backing format extension"
        if t == 0xe2792aca:
            f.seek(off)
            f.write(struct.pack(">I", 0x12345678))
            break
        off += 8 + (n + 7) // 8 * 8
PY
run_ok "info of an image whose backing format is not given" \
	"$VSTOR" img info --output=json "$T/probe.qcow2"
echo "$out" >"$T/info.json"
is "$(json_get "$T/info.json" backing-filename-format)" "MISSING" \
	"no backing format recorded"
same_as_qemu "content through a probed backing file" "$T/probe.qcow2"

# A backing file missing: the open fails naming it.
(cd "$T" && qemu-img create -q -f qcow2 -b gone.raw -F raw -u \
	orphan.qcow2 1M) || die "cannot make orphan.qcow2"
run_fails "a missing backing file fails the open" \
	"$VSTOR" img info "$T/orphan.qcow2"
like "$err" "gone\.raw" "the error names the missing backing file"

# A backing chain that loops.
cp "$T/plain-1.1-65536.qcow2" "$T/loop.qcow2"
(cd "$T" && qemu-img rebase -u -b loop.qcow2 -F qcow2 loop.qcow2) ||
	die "cannot make loop.qcow2"
run_fails "a backing loop is refused" "$VSTOR" img info "$T/loop.qcow2"
like "$err" "loop" "the error says the chain loops"

# 5. An image marked dirty (a crash with lazy refcounts) is repaired
# when it is opened for writing, as QEMU repairs it; read-only it is
# read as it is.
cp "$T/plain-1.1-65536.qcow2" "$T/dirty.qcow2"
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(79)
    f.write(bytes([1]))
' "$T/dirty.qcow2" || die "poke failed"
run_ok "a dirty image opens read-only as it is" "$VBD_IO" -f qcow2 \
	--readonly "$T/dirty.qcow2" read 0 1 0xa1
run_ok "opened for writing, a dirty image is repaired" "$VBD_IO" -f qcow2 \
	"$T/dirty.qcow2" read 0 1 0xa1
is "$(od -An -tx1 -j79 -N1 "$T/dirty.qcow2" | tr -d ' ')" 00 \
	"the dirty bit is cleared"

# 6. Byte-poked images.
# poke IMG L1INDEX L2INDEX VALUE: set an L2 entry (VALUE=l1:HEX sets the
# L1 entry instead).
poke() {
	python3 - "$@" <<'PY'
import struct, sys
path, l2i, val = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "r+b") as f:
    h = f.read(104)
    l1off = struct.unpack(">Q", h[40:48])[0]
    f.seek(l1off)
    l1e = struct.unpack(">Q", f.read(8))[0]
    if val.startswith("l1:"):
        f.seek(l1off)
        f.write(struct.pack(">Q", int(val[3:], 16)))
    else:
        f.seek((l1e & 0x00fffffffffffe00) + 8 * l2i)
        f.write(struct.pack(">Q", int(val, 16)))
PY
}
img=$T/poke.qcow2
for what in "past-eof 8000010000000000" "unaligned 8000000000030200" \
	"l1-past-eof l1:8000010000000000"; do
	name=${what%% *} val=${what#* }
	cp "$T/plain-1.1-65536.qcow2" "$img"
	poke "$img" 0 "$val" || die "poke failed"
	run_fails "$name: the read fails" "$VBD_IO" -f qcow2 --readonly \
		"$img" read 0 4k 0xa1
	like "$err" "corrupt image: .*(L2|L1) table at offset 0x[0-9a-f]+, index 0" \
		"$name: the error names the table and the index"
	if [ "$name" = l1-past-eof ]; then
		# L1 entry 0 maps all of the disk: nothing else to read.
		run_ok "$name: info still works" "$VSTOR" img info "$img"
	else
		run_ok "$name: a read elsewhere still works" "$VBD_IO" -f qcow2 \
			--readonly "$img" read 3M 1M 0xa3
	fi
done

# A corrupt compressed cluster: garbage where its data is.
img=$T/comp-zlib-65536.qcow2
cp "$img" "$T/badcomp.qcow2"
python3 - "$T/badcomp.qcow2" <<'PY' || die "poke failed"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = f.read(104)
    cb = struct.unpack(">I", h[20:24])[0]
    l1off = struct.unpack(">Q", h[40:48])[0]
    f.seek(l1off)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2)
    e = struct.unpack(">Q", f.read(8))[0]
    assert e & (1 << 62), "cluster 0 is not compressed"
    host = e & ((1 << (62 - (cb - 8))) - 1)
    f.seek(host)
    f.write(b"\xff" * 64)
PY
run_fails "a corrupt compressed cluster fails the read" "$VBD_IO" -f qcow2 \
	--readonly "$T/badcomp.qcow2" read 0 4k 0xa1
like "$err" "does not decompress" "the error says it does not decompress"

# 7. A truncated header.
head -c 50 "$T/plain-1.1-65536.qcow2" >"$T/trunc.qcow2"
run_fails "info of a truncated header fails" "$VSTOR" img info \
	"$T/trunc.qcow2"
like "$err" "^vstor: $T/trunc.qcow2: truncated qcow2 header" \
	"the error names the file"
is "$(wc -l <<<"$err")" 1 "the error is one line"
