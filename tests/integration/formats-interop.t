#!/bin/bash
# Every format vstor writes, read back by qemu-img: `vstor img convert -O
# FMT` from a seeded raw pattern (random and repeated bytes, holes, whole
# and partial clusters, data in the very last sector), then
#
#   - `qemu-img compare -f FMT -F raw` finds the content identical;
#   - where qemu-img has a check for the format (qcow2, vmdk, vdi),
#     `qemu-img check` is clean (no errors, no leaks), elsewhere
#     `qemu-img info` reads it with at least the pattern's size;
#   - `vstor img convert -O raw` of the image gives back the pattern,
#     byte for byte.
#
# A format whose driver this build does not have is skipped with a
# message, not failed.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img python3 cmp "$VSTOR"

# name | -O format | convert options | qemu-img has a check
CASES=(
	"raw|raw||no"
	"qcow2|qcow2||yes"
	"qcow2-zlib|qcow2|-c|yes"
	"qcow2-zstd|qcow2|-c -o compression_type=zstd|yes"
	"vmdk-monolithicSparse|vmdk|-o subformat=monolithicSparse|yes"
	"vmdk-streamOptimized|vmdk|-o subformat=streamOptimized|yes"
	"vpc-fixed|vpc|-o subformat=fixed|no"
	"vpc-dynamic|vpc|-o subformat=dynamic|no"
	"vdi-static|vdi|-o static=on|yes"
	"vdi-dynamic|vdi||yes"
)
POINTS=4 # convert, compare, check (or info), back to raw

plan $((${#CASES[@]} * POINTS))

# 40 MiB plus 5 sectors: a partial cluster, grain and block at the end.
SIZE=$((40 * 1024 * 1024 + 5 * 512))
python3 - "$T/pat.raw" "$SIZE" <<'EOF' || die "cannot write the pattern"
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
r = random.Random(20260411)
b = bytearray(size)
for _ in range(50):
    off = r.randrange(0, size - 1)
    n = min(r.choice([1, 511, 4096, 65536, 300000, 1 << 20]), size - off)
    if r.random() < 0.5:
        b[off:off + n] = bytes([r.randrange(1, 256)]) * n
    else:
        b[off:off + n] = r.randbytes(n)
b[size - 512:] = r.randbytes(512)
with open(path, "wb") as f:
    f.write(b)
EOF

# has_format FMT: this build of vstor has a driver that can create FMT.
has_format() {
	rm -f "$T/probe.img"
	"$VSTOR" img create -q -f "$1" "$T/probe.img" 1M >/dev/null 2>&1
}

for c in "${CASES[@]}"; do
	IFS='|' read -r name fmt opts qcheck <<<"$c"
	if ! has_format "$fmt"; then
		skip $POINTS "$name: vstor has no $fmt driver in this build"
		continue
	fi
	img=$T/$name.$fmt
	# shellcheck disable=SC2086 # the options are words
	run_ok "$name: vstor img convert -O $fmt $opts" "$VSTOR" img convert \
		-f raw -O "$fmt" $opts "$T/pat.raw" "$img"
	run qemu-img compare -f "$fmt" -F raw "$img" "$T/pat.raw"
	like "$rc:$out" "^0:(Warning: Image size mismatch!.)?Images are identical\.$" \
		"$name: qemu-img reads the same content"
	if [ "$qcheck" = yes ]; then
		run qemu-img check -f "$fmt" "$img"
		if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]] &&
			! [[ $out =~ leaked ]]; then
			ok "$name: qemu-img check is clean"
		else
			not_ok "$name: qemu-img check is clean" "exit $rc" \
				"$out" "$err"
		fi
	else
		# No check in qemu-img for this format: its header then, as
		# qemu-img's info reads it.
		run qemu-img info -f "$fmt" --output=json "$img"
		vs=$(sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' <<<"$out")
		if [ "$rc" -eq 0 ] && [ "${vs:-0}" -ge "$SIZE" ]; then
			ok "$name: qemu-img info reads it ($vs bytes)"
		else
			not_ok "$name: qemu-img info reads it" "exit $rc" \
				"$out" "$err"
		fi
	fi
	rm -f "$T/back.raw"
	run "$VSTOR" img convert -f "$fmt" -O raw "$img" "$T/back.raw"
	if [ "$rc" -eq 0 ]; then
		# A format with a coarser size may add zeros at the end.
		truncate -s "$SIZE" "$T/back.raw"
		run cmp "$T/back.raw" "$T/pat.raw"
	fi
	is "$rc" 0 "$name: vstor img convert -O raw gives the pattern back"
done
