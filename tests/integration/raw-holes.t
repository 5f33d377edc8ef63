#!/bin/bash
# Discard and write-zeroes through the vbd API punch holes in a raw file
# that qemu-img map reports as holes, leave the data around them alone,
# and read back as zeros (also the unaligned and non-unmap cases).
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR" "$VBD_IO"

K=1024 M=$((1024 * 1024))
img=$T/holes.img

# map_status START LEN: "data" if qemu-img map reports the whole range as
# data, "hole" if all of it as an unallocated zero range, else what it saw.
map_status() {
	qemu-img map --output=json -f raw "$img" | python3 -c '
import json, sys
start, end = int(sys.argv[1]), int(sys.argv[1]) + int(sys.argv[2])
kinds = set()
for e in json.load(sys.stdin):
    if e["start"] < end and e["start"] + e["length"] > start:
        kinds.add("data" if e["data"] and not e["zero"] else
                  "hole" if e["zero"] and not e["data"] else
                  "data=%s,zero=%s" % (e["data"], e["zero"]))
print(" ".join(sorted(kinds)) or "nothing")' "$1" "$2"
}

plan 21

run_ok "create a 16 MiB raw image" "$VSTOR" img create -f raw "$img" 16M
run_ok "vbd-io writes 0xaa over the first 8 MiB" \
	"$VBD_IO" "$img" write 0 8M 0xaa flush
is "$(map_status 0 $((8 * M)))" data "map: the written 8 MiB are data"
is "$(map_status $((8 * M)) $((8 * M)))" hole "map: the rest is a hole"

# 64 KiB-aligned ranges, well above the 4 KiB filesystem block; two
# unaligned ones, to check that the bytes around them survive.
run_ok "vbd-io discards and zeroes ranges" \
	"$VBD_IO" "$img" \
	discard $((1 * M)) $((1 * M)) \
	zero $((3 * M)) $((512 * K)) unmap \
	zero $((5 * M)) $((256 * K)) \
	zero $((6 * M + 100)) 1000 \
	zero $((7 * M + 100)) 5000 unmap \
	flush

is "$(map_status $((1 * M)) $((1 * M)))" hole "map: the discarded MiB is a hole"
is "$(map_status $((3 * M)) $((512 * K)))" hole \
	"map: the zeroed (unmap) 512 KiB are a hole"
is "$(map_status 0 $((1 * M)))" data "map: data before the discard stays data"
is "$(map_status $((2 * M)) $((1 * M)))" data \
	"map: data between discard and zero stays data"
is "$(map_status $((3 * M + 512 * K)) $((1 * M + 512 * K)))" data \
	"map: data after the unmapped range stays data"
is "$(map_status $((8 * M)) $((8 * M)))" hole "map: the never written half is a hole"

# OFF LEN PATTERN for qemu-io: what every byte of the first 8 MiB holds.
expect="0 $((1 * M)) 0xaa
$((2 * M)) $((1 * M)) 0xaa
$((3 * M)) $((512 * K)) 0
$((3 * M + 512 * K)) $((1 * M + 512 * K)) 0xaa
$((5 * M)) $((256 * K)) 0
$((5 * M + 256 * K)) $((768 * K)) 0xaa
$((6 * M)) 100 0xaa
$((6 * M + 100)) 1000 0
$((6 * M + 1100)) $((M - 1100)) 0xaa
$((7 * M)) 100 0xaa
$((7 * M + 100)) 5000 0
$((7 * M + 5100)) $((M - 5100)) 0xaa"
qargs=()
while read -r off len pat; do
	qargs+=(-c "read -P $pat $off $len")
done <<<"$expect"
run qemu-io -f raw -r "$img" "${qargs[@]}"
is "$rc" 0 "qemu-io: all reads succeed"
unlike "$out" "Pattern verification failed" \
	"qemu-io: zeroed ranges read as zeros, data around them intact"
is "$(grep -c '^read ' <<<"$out")" 12 "qemu-io: all 12 ranges were read"

run_ok "vbd-io reads zeros and data back through the vbd" \
	"$VBD_IO" "$img" read $((3 * M)) $((512 * K)) 0 \
	read $((5 * M)) $((256 * K)) 0 read $((6 * M + 100)) 1000 0 \
	read 0 $((1 * M)) 0xaa read $((6 * M)) 100 0xaa \
	read $((8 * M)) $((8 * M)) 0

# The checks above can fail: vbd-io notices a wrong byte.
run_fails "vbd-io read of data with pattern 0 fails" \
	"$VBD_IO" "$img" read $((6 * M)) 200 0
like "$err" "mismatch at offset $((6 * M)):" \
	"and names the first bad offset"

run_fails "discard on a read-only vbd is refused" \
	"$VBD_IO" --readonly "$img" discard 0 64K
like "$err" "[Rr]ead-only" "the refusal says read-only"
run_fails "zeroing past the end of the image is refused" \
	"$VBD_IO" "$img" zero 16M 64K
is "$(map_status 0 $((1 * M)))" data "refused requests changed nothing"
