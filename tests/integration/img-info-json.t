#!/bin/bash
# vstor img info against qemu-img info, image by image.
#
# qcow2-chain.t compares backing chains (raw and qcow2 bases, relative
# and absolute names, snapshots); this file covers the kinds of single
# images: raw (sparse, fully written, a size that is not a power of
# two), qcow2 version 2 and 3, cluster sizes 512 and 2M, refcount widths
# 1 and 64, zlib- and zstd-compressed clusters, extended L2 entries,
# lazy refcounts, a dirty image left by a killed writer, an image marked
# corrupt, metadata and full preallocation, persistent bitmaps (listed
# in the format-specific data, also disabled ones), a backing file with
# compressed clusters and bitmaps in the chain.  For each, `--output=json`
# must carry the same fields with the same values (compared as JSON
# values, no field ignored), and the human text must be the same line
# for line; with --backing-chain too.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR"

cd "$T" || die "cannot cd to $T"

# name|how to make it
IMAGES=(
	"sparse.raw|truncate -s 64M sparse.raw; qemu-io -f raw -c 'write -P 1 1M 64k' sparse.raw"
	"full.raw|dd if=/dev/zero of=full.raw bs=64k count=48 status=none"
	"odd.raw|truncate -s 3000k odd.raw"
	"v2.qcow2|qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 10M; qemu-io -c 'write -P 1 0 1M' v2.qcow2"
	"v3-512.qcow2|qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 v3-512.qcow2 3M; qemu-io -c 'write -P 1 0 100k' v3-512.qcow2"
	"big-2M.qcow2|qemu-img create -q -f qcow2 -o cluster_size=2M,refcount_bits=64 big-2M.qcow2 1G; qemu-io -c 'write -P 1 0 5M' big-2M.qcow2"
	"zlib.qcow2|qemu-img create -q -f qcow2 zlib.qcow2 8M; qemu-io -c 'write -c -P 3 0 2M' -c 'write -P 2 4M 64k' zlib.qcow2"
	"zstd.qcow2|qemu-img create -q -f qcow2 -o compression_type=zstd zstd.qcow2 8M; qemu-io -c 'write -c -P 3 0 2M' zstd.qcow2"
	"ext.qcow2|qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 8M; qemu-io -c 'write -P 1 0 4k' ext.qcow2"
	"lazy.qcow2|qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 8M; qemu-io -c 'write -P 1 0 1M' lazy.qcow2"
	"dirty.qcow2|qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 8M; qemu-io -c 'write -P 1 0 1M' -c 'sigraise 9' dirty.qcow2"
	"corrupt.qcow2|qemu-img create -q -f qcow2 corrupt.qcow2 8M; python3 -c 'import sys; f=open(sys.argv[1],\"r+b\"); f.seek(79); b=f.read(1)[0]; f.seek(79); f.write(bytes([b|2]))' corrupt.qcow2"
	"pre-meta.qcow2|qemu-img create -q -f qcow2 -o preallocation=metadata pre-meta.qcow2 8M"
	"pre-full.qcow2|qemu-img create -q -f qcow2 -o preallocation=full pre-full.qcow2 2M"
	"bitmaps.qcow2|qemu-img create -q -f qcow2 bitmaps.qcow2 64M; qemu-img bitmap --add bitmaps.qcow2 b0; qemu-img bitmap --add -g 512 bitmaps.qcow2 second; qemu-img bitmap --add --disable bitmaps.qcow2 off; qemu-io -c 'write -P 1 0 1M' bitmaps.qcow2"
	"over-comp.qcow2|qemu-img create -q -f qcow2 -b zlib.qcow2 -F qcow2 over-comp.qcow2; qemu-io -c 'write -c -P 4 1M 64k' over-comp.qcow2"
	"over-bitmaps.qcow2|qemu-img create -q -f qcow2 -b bitmaps.qcow2 -F qcow2 over-bitmaps.qcow2; qemu-img bitmap --add over-bitmaps.qcow2 top"
)

plan $((${#IMAGES[@]} * 4 + 1))

json_same() {
	python3 - "$1" "$2" <<'PY'
import json, sys
q, v = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = []
def cmp(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append("%s.%s: only qemu-img has it (%r)" % (path, k, a[k]))
            elif k not in a:
                out.append("%s.%s: only vstor has it (%r)" % (path, k, b[k]))
            else:
                cmp(a[k], b[k], "%s.%s" % (path, k))
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append("%s: %d entries from qemu-img, %d from vstor"
                       % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            cmp(x, y, "%s[%d]" % (path, i))
    elif type(a) != type(b) or a != b:
        out.append("%s: qemu-img %r, vstor %r" % (path or "top", a, b))
cmp(q, v, "")
print("\n".join(out[:20]))
sys.exit(1 if out else 0)
PY
}

# same_info NAME FILE [--backing-chain]: JSON values and human text.
same_info() {
	local name=$1 file=$2 q diffs
	shift 2
	run qemu-img info -U --output=json "$@" "$file"
	[ "$rc" -eq 0 ] || die "qemu-img info $file: $err"
	q=$out
	run "$VSTOR" img info -U --output=json "$@" "$file"
	if [ "$rc" -ne 0 ]; then
		not_ok "$name: json" "vstor failed: $err"
	elif diffs=$(json_same "$q" "$out"); then
		ok "$name: json"
	else
		not_ok "$name: json" "$diffs"
	fi
	run qemu-img info -U "$@" "$file"
	q=$out
	run "$VSTOR" img info -U "$@" "$file"
	if [ "$rc" -eq 0 ] && [ "$out" = "$q" ]; then
		ok "$name: human"
	else
		not_ok "$name: human" "qemu-img:" "$q" "vstor (exit $rc):" \
			"$out" "$err"
	fi
}

for img in "${IMAGES[@]}"; do
	IFS='|' read -r name make <<<"$img"
	eval "$make" >/dev/null 2>"$T/make.err"
	[ -e "$name" ] || die "making $name: $(cat "$T/make.err")"
	same_info "$name" "$name"
	same_info "$name --backing-chain" "$name" --backing-chain
done

# The bitmaps are where qemu-img puts them.
run "$VSTOR" img info --output=json bitmaps.qcow2
like "$out" '"name": "off"' "a disabled bitmap is listed too"
