#!/bin/bash
# vstor img measure against qemu-img measure.
#
# The same numbers, the same lines, the same exit status as qemu-img
# measure prints: for --size (sizes from 0 to hundreds of TiB, not
# multiples of a cluster) and output raw and qcow2 with every -o option
# that changes the result (cluster_size 512 to 2M, refcount_bits 1 to
# 64, extended_l2, preallocation off/metadata/falloc/full, compat,
# backing_file) and those that do not; for files (sparse and full raw,
# qcow2 with zero, compressed and discarded clusters, a backing chain,
# extended L2, metadata preallocation, persistent bitmaps giving "bitmaps
# size"), with the same option sets.  JSON is compared as values.  Bad
# options (a cluster size not a power of two, refcount widths that v2
# cannot have, extended L2 with small clusters, an image too large for
# its L1 table, unknown options) fail as qemu-img fails, and so does an
# output format that cannot be measured.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR"

cd "$T" || die "cannot cd to $T"

{
	truncate -s 64M sparse.raw
	qemu-io -f raw -c 'write -P 1 0 1M' -c 'write -P 2 10M 4k' \
		-c 'write -P 3 20000k 1k' -c 'write -P 4 63M 1M' sparse.raw
	dd if=/dev/zero of=full.raw bs=1M count=5 status=none
	truncate -s 5000k odd.raw
	qemu-io -f raw -c 'write -P 1 4k 4k' odd.raw

	qemu-img create -q -f qcow2 mix.qcow2 100M
	qemu-io -c 'write -P 1 0 3M' -c 'write -z 64k 128k' \
		-c 'write -z -u 512k 64k' -c 'write -c -P 2 40M 1M' \
		-c 'write -P 3 99M 1k' -c 'discard 1M 64k' mix.qcow2
	qemu-img create -q -f raw base.raw 16M
	qemu-io -f raw -c 'write -P 5 0 4M' base.raw
	qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 32M
	qemu-io -c 'write -P 7 2M 4M' -c 'write -z 1M 64k' -c 'write -P 8 20M 64k' top.qcow2
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k ext.qcow2 8M
	qemu-io -c 'write -P 1 0 4k' -c 'write -P 2 1M 300k' ext.qcow2
	qemu-img create -q -f qcow2 -o preallocation=metadata pre.qcow2 16M
	qemu-io -c 'write -P 1 1M 64k' pre.qcow2
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 16M
	qemu-io -c 'write -P 1 0 1M' v2.qcow2
	qemu-img create -q -f qcow2 bitmaps.qcow2 1G
	qemu-img bitmap --add bitmaps.qcow2 b0
	qemu-img bitmap --add -g 512 bitmaps.qcow2 a-much-longer-bitmap-name
	qemu-img bitmap --add -g 2M --disable bitmaps.qcow2 off
	qemu-io -c 'write -P 1 0 1M' bitmaps.qcow2
	qemu-img create -q -f qcow2 empty.qcow2 0
} >/dev/null 2>"$T/setup.err" || die "setup: $(cat "$T/setup.err")"

SIZES=(0 1 512 1000 65536 "1G" "1234567k" "100G" "4T" "300T")
OPTS=(
	""
	"-O raw"
	"-O raw -o preallocation=full"
	"-O qcow2"
	"-O qcow2 -o cluster_size=512"
	"-O qcow2 -o cluster_size=4k,refcount_bits=1"
	"-O qcow2 -o cluster_size=2M,refcount_bits=64"
	"-O qcow2 -o refcount_bits=8"
	"-O qcow2 -o extended_l2=on"
	"-O qcow2 -o extended_l2=on,cluster_size=32k"
	"-O qcow2 -o preallocation=metadata"
	"-O qcow2 -o preallocation=falloc"
	"-O qcow2 -o preallocation=full,cluster_size=1M"
	"-O qcow2 -o compat=0.10"
	"-O qcow2 -o compat=1.1,lazy_refcounts=on,compression_type=zstd"
	"-O qcow2 -o backing_file=base.raw,backing_fmt=raw"
)
FILES=(sparse.raw full.raw odd.raw mix.qcow2 top.qcow2 ext.qcow2 pre.qcow2
	v2.qcow2 bitmaps.qcow2 empty.qcow2)
# Options against files: a subset, so that the file cases stay quick.
FILE_OPTS=(0 1 3 4 6 8 11 13 15)
BAD=(
	"-O qcow2 -o cluster_size=3000 --size 1M"
	"-O qcow2 -o cluster_size=4M --size 1M"
	"-O qcow2 -o compat=0.10,refcount_bits=8 --size 1M"
	"-O qcow2 -o refcount_bits=3 --size 1M"
	"-O qcow2 -o refcount_bits=128 --size 1M"
	"-O qcow2 -o extended_l2=on,cluster_size=4k --size 1M"
	"-O qcow2 -o compat=9 --size 1M"
	"-O qcow2 -o compat=v3 --size 1M"
	"-O qcow2 -o lazy_refcounts=maybe --size 1M"
	"-O qcow2 -o cluster_size=512 --size 300T"
	"-O qcow2 -o nosuchoption=1 --size 1M"
	"-O raw -o nosuchoption=1 --size 1M"
	"-O qcow2 -o preallocation=bogus --size 1M"
	"--size 1M sparse.raw"
	""
	"-O nosuchformat --size 1M"
)

# Damage to the bitmap directory of bitmaps.qcow2: FIELD VALUE, where
# FIELD is a field of the extension (count, dir_size, dir_offset) or of
# the first directory entry (granularity, name_size, extra_size).
POKES=("count 0" "count 70000" "dir_size 8" "dir_size 0x10000000"
	"dir_offset 0x123" "dir_offset 0x7fff0000" "granularity 3"
	"granularity 200" "name_size 0" "name_size 0xffff"
	"extra_size 0xfffffff0")

# Foreign formats as sources, converted by qemu-img from mix.qcow2.
FOREIGN=(vmdk vdi vpc)

plan $((${#SIZES[@]} * ${#OPTS[@]} + ${#FILES[@]} * ${#FILE_OPTS[@]} + \
	${#FILES[@]} + ${#BAD[@]} + 4 + ${#POKES[@]} * 2 + ${#FOREIGN[@]} * 2))

# same NAME ARGS...: the same stdout and exit status.
same() {
	local name=$1 q
	shift
	run qemu-img measure "$@"
	q="$rc: $out"
	run "$VSTOR" img measure "$@"
	is "$rc: $out" "$q" "$name"
}

for s in "${SIZES[@]}"; do
	for o in "${OPTS[@]}"; do
		# shellcheck disable=SC2086 # options are several words
		same "--size $s ${o:-(defaults)}" --size "$s" $o
	done
done

for f in "${FILES[@]}"; do
	for i in "${FILE_OPTS[@]}"; do
		o=${OPTS[i]}
		# shellcheck disable=SC2086
		same "$f ${o:-(defaults)}" $o "$f"
	done
	# JSON, as values (qemu-img's key order is its hash's).
	run qemu-img measure --output=json -O qcow2 "$f"
	q=$out
	run "$VSTOR" img measure --output=json -O qcow2 "$f"
	if python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' "$q" "$out" 2>/dev/null; then
		ok "$f: the same JSON"
	else
		not_ok "$f: the same JSON" "qemu-img: $q" "vstor: $out"
	fi
done

for b in "${BAD[@]}"; do
	# shellcheck disable=SC2086
	run qemu-img measure $b
	qrc=$rc
	# shellcheck disable=SC2086
	run "$VSTOR" img measure $b
	if [ "$rc" -eq "$qrc" ] && [ "$rc" -ne 0 ] && [ -z "$out" ] &&
		[ -n "$err" ]; then
		ok "refused: ${b:-(no arguments)}"
	else
		not_ok "refused: ${b:-(no arguments)}" \
			"qemu-img exit $qrc, vstor exit $rc" "$out" "$err"
	fi
done

# The messages that say what was wrong.
run "$VSTOR" img measure -O qcow2 -o cluster_size=3000 --size 1M
like "$err" "power of two between 512 and 2048k" "the cluster size message"
run "$VSTOR" img measure -O qcow2 -o nosuchoption=1 --size 1M
like "$err" "nosuchoption" "an unknown option is named"
run "$VSTOR" img measure -O vmdk --size 1M
like "$rc:$err" "^1:.*vmdk" "an output format without measure is refused"
run "$VSTOR" img measure -O qcow2 nosuch.qcow2
like "$rc:$err" "^1:.*nosuch\\.qcow2" "a missing file is named"

# The bitmap directory is untrusted input: each damaged field makes
# measure and info fail with a message naming the file, never crash.
cat >"$T/bm.py" <<'PY'
import struct, sys
path, field, value = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
f = open(path, 'r+b')
h = f.read(65536)
off = struct.unpack('>I', h[100:104])[0]
while True:
    t, n = struct.unpack('>II', h[off:off + 8])
    if t == 0x23852875:
        break
    if t == 0:
        sys.exit("no bitmaps extension")
    off += 8 + (n + 7) // 8 * 8
ext = off + 8
dir_off = struct.unpack('>Q', h[ext + 16:ext + 24])[0]
where = {'count': (ext, '>I'), 'dir_size': (ext + 8, '>Q'),
         'dir_offset': (ext + 16, '>Q'), 'granularity': (dir_off + 17, '>B'),
         'name_size': (dir_off + 18, '>H'),
         'extra_size': (dir_off + 20, '>I')}[field]
f.seek(where[0])
f.write(struct.pack(where[1], value))
PY
for p in "${POKES[@]}"; do
	cp bitmaps.qcow2 poked.qcow2
	# shellcheck disable=SC2086 # field and value
	python3 "$T/bm.py" poked.qcow2 $p || die "poking $p"
	run "$VSTOR" img measure -O qcow2 poked.qcow2
	like "$rc:$err" "^1:.*poked\\.qcow2.*bitmap" "bitmaps $p: measure refuses it"
	run "$VSTOR" img info --output=json poked.qcow2
	like "$rc:$err" "^1:.*poked\\.qcow2.*bitmap" "bitmaps $p: info refuses it"
done

for fmt in "${FOREIGN[@]}"; do
	qemu-img convert -O "$fmt" mix.qcow2 "mix.$fmt" ||
		die "qemu-img convert -O $fmt"
	if ! "$VSTOR" img info -f "$fmt" "mix.$fmt" >/dev/null 2>&1; then
		skip 2 "vstor cannot open $fmt yet"
		continue
	fi
	same "$fmt source, -O qcow2" -O qcow2 "mix.$fmt"
	same "$fmt source, -O raw" "mix.$fmt"
done
