#!/bin/bash
# Hostile qcow2 images: tests/tools/qcow2-bad.py pokes bytes into images
# made by qemu-img (one field or table entry broken per image: magic,
# version, cluster_bits, header_length, L1 and refcount tables too big,
# unaligned, past the end or overlapping the header or each other,
# snapshot table bounds, backing file name, features, extensions, L1/L2
# entries, compressed clusters, refcount blocks...).  For each image:
#
#   - `vstor img info -f qcow2` refuses it with an error naming the file
#     and the field (or succeeds when the damage is in a table that info
#     does not read);
#   - a read through the damaged area fails with EIO and a log line
#     naming the table and the index (or the whole open is refused);
#   - an open for writing and a write are refused or fail cleanly;
#
# and nothing dies of a signal.  Every case runs twice: with build/vstor
# and with the ASan/UBSan build (build/asan/vstor and its vbd-io), where
# no sanitizer report may show.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR" "$VBD_IO"

# The sanitizer build sits beside the plain one: make BUILD=build/asan
# SANITIZE=address,undefined build/asan/vstor tools
ASAN_VSTOR=${ASAN_VSTOR:-$(dirname "$VSTOR")/asan/vstor}
ASAN_VBD_IO=${ASAN_VBD_IO:-$(dirname "$VSTOR")/asan/tests/tools/vbd-io}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

mkdir "$T/img" || die "mkdir"
python3 "$TOP/tests/tools/qcow2-bad.py" "$T/img" >"$T/cases" ||
	die "cannot make the images (tests/tools/qcow2-bad.py)"
ncases=$(wc -l <"$T/cases")
[ "$ncases" -ge 30 ] || die "only $ncases cases"
POINTS=6 # per case and build
plan $((ncases * POINTS * 2))

SANITIZER='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

# expect NAME WANT RE FILE CMD...: run CMD; WANT is fail (exit status 1
# to 127, stderr naming FILE and matching RE) or ok (exit 0, stdout
# matching RE unless it is -, nothing on stderr).  Two points: how it
# ended, and what it said.
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
	elif [ "$re" != - ]; then
		like "$out" "$re" "$name: output matches /$re/"
	else
		is "$err" "" "$name: nothing on stderr"
	fi
}

# one_pass LABEL VSTOR VBD_IO: every case with these binaries.
one_pass() {
	local label=$1 vstor=$2 vbdio=$3
	local name info info_re read read_re write write_re img w
	local rwant roff rlen rpat wwant woff

	while IFS=$'\t' read -r name info info_re read read_re write \
		write_re; do
		img=$T/img/$name.qcow2
		expect "$label $name: info" "$info" "$info_re" "$img" \
			"$vstor" img info -f qcow2 "$img"
		read -r rwant roff rlen rpat <<<"$read"
		expect "$label $name: read $roff+$rlen" "$rwant" "$read_re" \
			"$img" "$vbdio" -f qcow2 --readonly "$img" \
			read "$roff" "$rlen" "$rpat"
		# On a copy: a write that gets through must not change what
		# the other pass sees.
		w=$T/w.qcow2
		cp "$img" "$w" || die "cp"
		read -r wwant woff <<<"$write"
		woff=${woff:-0}
		expect "$label $name: write $woff+4k" "$wwant" "$write_re" "$w" \
			"$vbdio" -f qcow2 "$w" write "$woff" 4k 0x11
	done <"$T/cases"
}

one_pass plain "$VSTOR" "$VBD_IO"
if [ -x "$ASAN_VSTOR" ] && [ -x "$ASAN_VBD_IO" ]; then
	one_pass asan "$ASAN_VSTOR" "$ASAN_VBD_IO"
else
	skip $((ncases * POINTS)) "no ASan build ($ASAN_VSTOR, $ASAN_VBD_IO): make BUILD=build/asan SANITIZE=address,undefined build/asan/vstor tools"
fi
