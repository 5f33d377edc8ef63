#!/bin/bash
# vstor img convert does not fill the page cache with its target: pages
# written two pushes back (128 MiB) are dropped once the disk has them
# (imgtools/convert-copy.c, drop_behind), so that a multi-GiB convert
# neither evicts what the host caches nor takes fresh memory for every
# page it writes.  For a raw target (marks at guest offsets) and qcow2,
# VHD and VMDK targets (marks at the file's end): the content is what
# qemu-img reads from the source, and at most 3/4 of the target is left
# in the page cache (fincore; without the drop it is all of it, as -W,
# which does not drop, shows).
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img fincore "$VSTOR"

plan 12

MiB=$((1 << 20))
SIZE=$((512 * MiB))

# Random bytes: no zero run to skip, nothing to compress.
head -c "$SIZE" /dev/urandom >"$T/src.raw" || die "cannot write $T/src.raw"

resident() {
	fincore --bytes --noheadings --output RES "$1"
}

for fmt in raw qcow2 vpc vmdk; do
	rm -f "$T/out"
	run_ok "convert to $fmt" "$VSTOR" img convert -f raw -O "$fmt" \
		"$T/src.raw" "$T/out"
	res=$(resident "$T/out")
	if [ "$res" -le $((SIZE * 3 / 4)) ]; then
		ok "$fmt: $((res / MiB)) MiB of the target left in the page cache"
	else
		not_ok "$fmt: $((res / MiB)) MiB of the target left in the" \
			"page cache (at most $((SIZE * 3 / 4 / MiB)) expected)"
	fi
	run_ok "$fmt: the target reads as the source" \
		qemu-img compare -q -f raw -F "$fmt" "$T/src.raw" "$T/out"
done

# For scale: -W writes out of order, where nothing is dropped.
rm -f "$T/out"
"$VSTOR" img convert -W -f raw -O raw "$T/src.raw" "$T/out" &&
	diag "with -W: $(($(resident "$T/out") / MiB)) MiB left in the page cache"
