#!/bin/bash
# vstor img map against qemu-img map.
#
# For raw files with holes and data, and qcow2 images of every kind that
# changes a map (data, zero clusters with and without their host
# cluster, discarded and compressed clusters, small and large clusters,
# version 2, extended L2 entries alone and over a backing file, a chain
# of three over a shorter raw base, metadata and full preallocation, a
# sparse copy whose zero-filled clusters became holes, an empty image),
# `vstor img map --output=json` must print what `qemu-img map
# --output=json` prints: the same text, so the same entries merged the
# same way, with the same fields in the same order.  The human table
# must be identical too, line for line (compressed clusters make both
# refuse it).  --start-offset and --max-length cut the map the same way,
# also past the end.  Bad options and missing files fail cleanly.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR"

cd "$T" || die "cannot cd to $T"

# name|how to make it (a shell snippet run in $T)|has compressed clusters
IMAGES=(
	"sparse.raw|truncate -s 8M sparse.raw; qemu-io -f raw -c 'write -P 1 1M 64k' -c 'write -P 2 5124k 8k' -c 'write -P 3 8128k 64k' sparse.raw|"
	"full.raw|dd if=/dev/zero of=full.raw bs=1M count=3 status=none|"
	"plain.qcow2|qemu-img create -q -f qcow2 plain.qcow2 16M; qemu-io -c 'write -P 1 0 2M' -c 'write -z 64k 128k' -c 'write -z -u 512k 64k' -c 'write -z 4M 64k' -c 'discard 1M 64k' -c 'write -P 4 12M 4M' plain.qcow2|"
	"comp.qcow2|qemu-img create -q -f qcow2 comp.qcow2 8M; qemu-io -c 'write -P 1 0 1M' -c 'write -c -P 2 2M 192k' -c 'write -c -P 3 6M 64k' comp.qcow2|yes"
	"frag-4k.qcow2|qemu-img create -q -f qcow2 -o cluster_size=4096 frag-4k.qcow2 4M; qemu-io -c 'write -P 1 0 4k' -c 'write -P 1 1M 4k' -c 'write -P 1 8k 4k' -c 'write -P 1 4k 4k' -c 'write -P 5 2M 1M' -c 'write -z 2100k 8k' frag-4k.qcow2|"
	"big-2M.qcow2|qemu-img create -q -f qcow2 -o cluster_size=2M big-2M.qcow2 64M; qemu-io -c 'write -P 1 0 3M' -c 'write -z 10M 2M' -c 'write -P 2 33M 1k' big-2M.qcow2|"
	"v2.qcow2|qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M; qemu-io -c 'write -P 1 0 1M' -c 'write -z 128k 64k' -c 'write -P 2 3M 4k' v2.qcow2|"
	"ext.qcow2|qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 4M; qemu-io -c 'write -P 1 0 4k' -c 'write -z 8k 4k' -c 'write -P 3 1M 100k' -c 'write -z 2M 64k' ext.qcow2|"
	"ext-over.qcow2|qemu-img create -q -f raw ext-base.raw 4M; qemu-io -f raw -c 'write -P 1 1M 64k' ext-base.raw; qemu-img create -q -f qcow2 -o extended_l2=on -b ext-base.raw -F raw ext-over.qcow2 4M; qemu-io -c 'write -P 2 0 4k' -c 'write -z 2M 64k' -c 'write -P 3 1040k 2k' ext-over.qcow2|"
	"chain.qcow2|qemu-img create -q -f raw short.raw 1M; qemu-io -f raw -c 'write -P 5 0 512k' short.raw; qemu-img create -q -f qcow2 -b short.raw -F raw mid.qcow2 2M; qemu-io -c 'write -P 6 256k 64k' -c 'write -z 1536k 64k' mid.qcow2; qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 chain.qcow2 4M; qemu-io -c 'write -P 7 0 64k' -c 'write -P 7 3M 64k' -c 'write -z 768k 64k' chain.qcow2|"
	"chain-comp.qcow2|qemu-img create -q -f qcow2 -b chain.qcow2 -F qcow2 chain-comp.qcow2 4M; qemu-io -c 'write -c -P 8 128k 64k' chain-comp.qcow2|yes"
	"pre-meta.qcow2|qemu-img create -q -f qcow2 -o preallocation=metadata pre-meta.qcow2 4M; qemu-io -c 'write -P 1 64k 64k' -c 'write -P 1 4032k 64k' -c 'write -P 2 1M 4k' pre-meta.qcow2|"
	"pre-full.qcow2|qemu-img create -q -f qcow2 -o preallocation=full pre-full.qcow2 1M; qemu-io -c 'write -z 0 64k' pre-full.qcow2|"
	"sparse-copy.qcow2|qemu-img create -q -f qcow2 orig.qcow2 16M; qemu-io -c 'write -P 1 0 1M' -c 'write -P 0 9M 64k' -c 'write -P 3 15M 1k' orig.qcow2; cp --sparse=always orig.qcow2 sparse-copy.qcow2|"
	"empty.qcow2|qemu-img create -q -f qcow2 empty.qcow2 0|"
)
RANGES=("" "--start-offset=300k --max-length=1M" "--start-offset=3M"
	"--start-offset=100M" "--max-length=0")

# Foreign formats (their drivers live in imgtools/formats/): qemu-img
# convert writes them from plain.qcow2, and each must map as qemu-img
# maps it.  -O FMT|-o OPTIONS|"extents" when the data lives in extent
# files: block status does not name the file, so the table's File
# column names the descriptor where qemu-img names the extent (a known
# gap); the other columns must agree.
FOREIGN=("vmdk||" "vmdk|subformat=streamOptimized|"
	"vmdk|subformat=twoGbMaxExtentSparse|extents" "vdi||" "vpc||"
	"vpc|subformat=fixed|")

plan $((${#IMAGES[@]} * (1 + ${#RANGES[@]} * 2) + 1 + 7 + ${#FOREIGN[@]} * 2))

# same_json NAME FILE ARGS...: the JSON of both tools parses, and is
# the same text (then also the same value).
same_json() {
	local name=$1 file=$2 q v
	shift 2
	run qemu-img map --output=json "$@" "$file"
	q=$out
	[ "$rc" -eq 0 ] || die "qemu-img map $file: $err"
	run "$VSTOR" img map --output=json "$@" "$file"
	v=$out
	if [ "$rc" -ne 0 ]; then
		not_ok "$name" "vstor failed ($rc): $err"
	elif ! printf '%s' "$v" | python3 -c 'import json,sys; json.load(sys.stdin)'; then
		not_ok "$name" "vstor's JSON does not parse: $v"
	elif [ "$q" != "$v" ]; then
		not_ok "$name" "qemu-img:" "$q" "vstor:" "$v"
	else
		ok "$name"
	fi
}

# same_human NAME FILE ARGS...: the same table and the same exit status.
same_human() {
	local name=$1 file=$2 q qrc
	shift 2
	run qemu-img map "$@" "$file"
	q=$out qrc=$rc
	run "$VSTOR" img map "$@" "$file"
	if [ "$rc" -ne "$qrc" ] || [ "$out" != "$q" ]; then
		not_ok "$name" "qemu-img (exit $qrc):" "$q" \
			"vstor (exit $rc):" "$out" "$err"
	else
		ok "$name"
	fi
}

for img in "${IMAGES[@]}"; do
	IFS='|' read -r name make comp <<<"$img"
	if ! eval "$make" >/dev/null 2>"$T/make.err"; then
		die "making $name: $(cat "$T/make.err")"
	fi
	for r in "${RANGES[@]}"; do
		# shellcheck disable=SC2086 # the range is two words
		same_json "$name: json ${r:-whole}" "$name" $r
		# shellcheck disable=SC2086
		same_human "$name: human ${r:-whole}" "$name" $r
	done
	if [ -n "$comp" ]; then
		run "$VSTOR" img map "$name"
		like "$rc:$err" '^1:.*compressed clusters' \
			"$name: the table refuses compressed clusters"
	else
		# A path with directories, and -f: the table names the file
		# as qemu-img does.
		same_human "$name: human, absolute path and -f" "$T/$name" \
			-f "$(qemu-img info --output=json "$name" |
				python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')"
	fi
done

# The chain seen from another directory: backing names are relative to
# the image that names them.
mkdir -p sub
cd sub || die "cd sub"
same_human "chain from another directory" ../chain.qcow2
cd "$T" || die "cd $T"

run_fails "a missing file fails" "$VSTOR" img map nosuch.qcow2
like "$err" 'nosuch\.qcow2' "the message names the file"
run_fails "--output must be human or json" "$VSTOR" img map --output=xml \
	plain.qcow2
run_fails "a bad --start-offset fails" "$VSTOR" img map \
	--start-offset=12x plain.qcow2
run_fails "two files are refused" "$VSTOR" img map plain.qcow2 v2.qcow2
# A data cluster pointing past the end of the file: an error naming the
# file, no crash, as for every table entry we read.
cp plain.qcow2 bad.qcow2
python3 - bad.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(104)
l1_off = struct.unpack('>Q', h[40:48])[0]
f.seek(l1_off); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2); e = struct.unpack('>Q', f.read(8))[0]
f.seek(l2); f.write(struct.pack('>Q', (e & ~0x00fffffffffffe00) | (1 << 40)))
PY
run "$VSTOR" img map --output=json bad.qcow2
like "$rc:$err" '^1:.*bad\.qcow2' "a corrupt L2 entry fails the map, naming the file"
run "$VSTOR" img map --output=json -U plain.qcow2
is "$rc" 0 "-U maps an image"

i=0
for f in "${FOREIGN[@]}"; do
	IFS='|' read -r fmt opts extents <<<"$f"
	i=$((i + 1))
	name=foreign$i.$fmt
	qemu-img convert -O "$fmt" ${opts:+-o "$opts"} plain.qcow2 "$name" ||
		die "qemu-img convert -O $fmt $opts"
	if ! "$VSTOR" img info -f "$fmt" "$name" >/dev/null 2>&1; then
		skip 2 "vstor cannot open $fmt ($opts) yet"
		continue
	fi
	same_json "$fmt ${opts:-(default)}: json" "$name"
	if [ -z "$extents" ]; then
		same_human "$fmt ${opts:-(default)}: human" "$name"
		continue
	fi
	run qemu-img map "$name"
	q=$(printf '%s\n' "$out" | cut -c1-48)
	run "$VSTOR" img map "$name"
	is "$rc:$(printf '%s\n' "$out" | cut -c1-48)" "0:$q" \
		"$fmt ${opts:-(default)}: human, offsets and lengths"
done
