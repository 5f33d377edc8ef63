#!/bin/bash
# Hostile VHD images: tests/tools/vhd-bad.py pokes one field into images
# made by qemu-img, qemu-io and vstor (footer cookie and checksum, disk
# type, data offset, current size, fixed data area, truncation, dynamic
# header cookie, checksum, version, block size, max table entries, BAT
# offset, BAT entries past the end or over the metadata, parent
# locators with absurd lengths, offsets or text, a parent with another
# unique id, a missing parent).  For each image:
#
#   - `vstor img info -f vpc` refuses it with an error naming the file
#     and what was wrong;
#   - a read with vbd-io is refused the same way;
#
# and nothing dies of a signal.  Every case runs twice: with the plain
# build and with the ASan/UBSan build beside it ($(dirname $VSTOR)/asan),
# where no sanitizer report may show.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR" "$VBD_IO"

ASAN_VSTOR=${ASAN_VSTOR:-$(dirname "$VSTOR")/asan/vstor}
ASAN_VBD_IO=${ASAN_VBD_IO:-$(dirname "$VSTOR")/asan/tests/tools/vbd-io}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

mkdir "$T/img" || die "mkdir"
python3 "$TOP/tests/tools/vhd-bad.py" "$T/img" "$VSTOR" >"$T/cases" ||
	die "cannot make the images (tests/tools/vhd-bad.py)"
ncases=$(wc -l <"$T/cases")
[ "$ncases" -ge 12 ] || die "only $ncases cases"
POINTS=4 # per case and build
plan $((ncases * POINTS * 2 + 3))

SANITIZER='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

# refused NAME RE FILE CMD...: CMD exits 1..127 without a sanitizer
# report, and its stderr names FILE and matches RE.  Two points.
refused() {
	local name=$1 re=$2 file=$3
	shift 3
	run "$@"
	if [[ $err =~ $SANITIZER ]]; then
		not_ok "$name: no sanitizer report" "command: $*" \
			"$(grep -E -A12 "$SANITIZER" <<<"$err" | head -25)"
	elif [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ]; then
		ok "$name: fails cleanly (exit $rc)"
	else
		not_ok "$name: expected to fail, exit $rc" "command: $*" \
			"stderr: $(head -5 <<<"$err")"
	fi
	like "$err" "$file: (.*)?$re" "$name: the error names the file and /$re/"
}

one_pass() {
	local label=$1 vstor=$2 vbdio=$3 name re img

	while IFS=$'\t' read -r name re; do
		img=$T/img/$name.vhd
		refused "$label $name: info" "$re" "$img" \
			"$vstor" img info -f vpc "$img"
		refused "$label $name: read" "$re" "$img" \
			"$vbdio" -f vpc --readonly "$img" read 0 4k 0
	done <"$T/cases"
}

# The bases themselves are fine: the damage is what is refused.
run_ok "base dynamic image opens" "$VBD_IO" -f vpc --readonly \
	"$T/img/base-dyn.vhd" read 0 64k 0x5a read 4M 64k 0xa5
run_ok "base fixed image opens" "$VBD_IO" -f vpc --readonly \
	"$T/img/base-fixed.vhd" read 0 4M 0
run_ok "base differencing image opens" "$VBD_IO" -f vpc --readonly \
	"$T/img/base-child.vhd" read 0 8M 0

one_pass plain "$VSTOR" "$VBD_IO"
if [ -x "$ASAN_VSTOR" ] && [ -x "$ASAN_VBD_IO" ]; then
	one_pass asan "$ASAN_VSTOR" "$ASAN_VBD_IO"
else
	skip $((ncases * POINTS)) "no ASan build ($ASAN_VSTOR, $ASAN_VBD_IO): make BUILD=build/asan SANITIZE=address,undefined build/asan/vstor tools"
fi
