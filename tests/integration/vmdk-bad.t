#!/bin/bash
# Hostile VMDK images: tests/tools/vmdk-bad.py breaks one thing per image
# (magic, version, grain size, capacity, grain table size, GD and GT
# offsets and entries past the end of the file or into the metadata,
# embedded descriptor bounds, compression algorithm, COWD, truncated
# header; streams cut short, without footer or end-of-stream marker,
# grain markers with bad sizes or LBAs, grains that do not inflate;
# descriptors with absurd or too many extents, extents past their file,
# missing files, unknown or unsupported types, bad quoting, versions,
# createTypes and CIDs, a parent, binary garbage).  For each:
#
#   - `vstor img info -f vmdk` refuses it with an error naming the file
#     and the problem, or succeeds when the damage is in a table entry
#     or a grain that info does not read;
#   - reading the whole disk fails with such an error;
#   - `vstor img check` ends by itself, whatever it finds (run with the
#     ASan build only, when there is one);
#
# and nothing dies of a signal.  Every case runs with build/vstor and
# with the ASan/UBSan build beside it, where no sanitizer report may show.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img python3 "$VSTOR" "$VBD_IO"

ASAN_VSTOR=${ASAN_VSTOR:-$(dirname "$VSTOR")/asan/vstor}
ASAN_VBD_IO=${ASAN_VBD_IO:-$(dirname "$VSTOR")/asan/tests/tools/vbd-io}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# Base images with data in their first grains.
python3 -c '
import random, sys
r = random.Random(5)
sys.stdout.buffer.write(bytes(r.getrandbits(8) % 8 for _ in range(300000)))
' >"$T/p.raw" || die "pattern"
truncate -s 1M "$T/p.raw" || die truncate
qemu-img convert -O vmdk "$T/p.raw" "$T/mono.vmdk" || die "mono"
"$VSTOR" img create -q -f vmdk -o subformat=streamOptimized \
	"$T/stream.vmdk" 1M || die "stream"
"$VBD_IO" -f vmdk "$T/stream.vmdk" write 0 300000 0x3c || die "stream data"
mkdir "$T/img" || die mkdir
python3 "$TOP/tests/tools/vmdk-bad.py" "$T/img" "$T/mono.vmdk" \
	"$T/stream.vmdk" >"$T/cases" || die "tests/tools/vmdk-bad.py"
ncases=$(wc -l <"$T/cases")
[ "$ncases" -ge 12 ] || die "only $ncases cases"
POINTS=4 # per case and build, and `img check` once per case (with ASan
# when there is an ASan build)
plan $((ncases * POINTS * 2 + ncases + 2))

# The base images are sound: a case fails for its damage only.
run_ok "the base monolithicSparse image reads" \
	"$VBD_IO" -f vmdk --readonly "$T/mono.vmdk" dump /dev/null
run_ok "the base streamOptimized image reads" \
	"$VBD_IO" -f vmdk --readonly "$T/stream.vmdk" dump /dev/null

SANITIZER='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

# expect NAME WANT RE FILE CMD...: as in qcow2-bad.t, two points.
expect() {
	local name=$1 want=$2 re=$3 file=$4
	shift 4
	run "$@"
	if [[ $err =~ $SANITIZER ]]; then
		not_ok "$name: no sanitizer report" "command: $*" \
			"$(grep -E -A12 "$SANITIZER" <<<"$err" | head -25)"
	elif [ "$want" = fail ] && [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ]; then
		ok "$name: fails cleanly (exit $rc)"
	elif [ "$want" = ok ] && [ "$rc" -eq 0 ]; then
		ok "$name: succeeds"
	else
		not_ok "$name: expected to $want, exit $rc" "command: $*" \
			"stderr: $(head -5 <<<"$err")"
	fi
	if [ "$want" = fail ]; then
		like "$err" "$file: (.*)?$re" "$name: the error names the file and /$re/"
	else
		is "$err" "" "$name: nothing on stderr"
	fi
}

# survives NAME CMD...: one point, CMD ends by itself (any exit status
# below 128) without a sanitizer report.
survives() {
	local name=$1
	shift
	run "$@"
	if [[ $err =~ $SANITIZER ]]; then
		not_ok "$name: no sanitizer report" "command: $*" \
			"$(grep -E -A12 "$SANITIZER" <<<"$err" | head -25)"
	elif [ "$rc" -lt 128 ]; then
		ok "$name: ends cleanly (exit $rc)"
	else
		not_ok "$name: killed by a signal (exit $rc)" "command: $*"
	fi
}

one_pass() {
	local label=$1 vstor=$2 vbdio=$3
	local name file info info_re read read_re

	while IFS=$'\t' read -r name file info info_re read read_re; do
		expect "$label $name: info" "$info" "$info_re" "$file" \
			"$vstor" img info -f vmdk "$file"
		expect "$label $name: read" "$read" "$read_re" "$file" \
			"$vbdio" -f vmdk --readonly "$file" dump /dev/null
		[ "$label" != "$CHECK_PASS" ] ||
			survives "$label $name: check" "$vstor" img check \
				-f vmdk "$file"
	done <"$T/cases"
}

if [ -x "$ASAN_VSTOR" ] && [ -x "$ASAN_VBD_IO" ]; then
	CHECK_PASS=asan
else
	CHECK_PASS=plain
fi
one_pass plain "$VSTOR" "$VBD_IO"
if [ "$CHECK_PASS" = asan ]; then
	one_pass asan "$ASAN_VSTOR" "$ASAN_VBD_IO"
else
	skip $((ncases * POINTS)) "no ASan build ($ASAN_VSTOR, $ASAN_VBD_IO): make BUILD=build/asan SANITIZE=address,undefined build/asan/vstor tools"
fi
