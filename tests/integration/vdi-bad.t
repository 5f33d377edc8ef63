#!/bin/bash
# Hostile VDI images: tests/tools/vdi-bad.py pokes one field or block map
# entry of an image made by qemu-img per case (signature, version, header
# size, image type, sector and block sizes, block extra data, map and
# data offsets, disk size, block counts, link and parent UUIDs,
# truncated header, map and data, entries out of range, past the end of
# the file or shared).  For each image:
#
#   - `vstor img info -f vdi` refuses it with an error naming the file,
#     the field and its offset, or (damage in the map) succeeds with a
#     warning naming the entry;
#   - a read fails with an error naming the file and what is wrong (or
#     succeeds when it does not touch the damage);
#   - an open for writing is refused;
#
# and nothing dies of a signal.  Every case runs with build/vstor and
# with the ASan/UBSan build beside it, where no sanitizer report may
# show.  Then the damaged maps go through `vstor img check` (errors,
# exit 2, as qemu-img check has them) and `-r all`, after which both
# checks are clean and the undamaged data still reads.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR" "$VBD_IO"

ASAN_VSTOR=${ASAN_VSTOR:-$(dirname "$VSTOR")/asan/vstor}
ASAN_VBD_IO=${ASAN_VBD_IO:-$(dirname "$VSTOR")/asan/tests/tools/vbd-io}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

mkdir "$T/img" || die "mkdir"
python3 "$TOP/tests/tools/vdi-bad.py" "$T/img" >"$T/cases" ||
	die "cannot make the images (tests/tools/vdi-bad.py)"
ncases=$(wc -l <"$T/cases")
[ "$ncases" -ge 12 ] || die "only $ncases cases"
nmap=$(grep -c $'\twarn\t' "$T/cases")
POINTS=6 # per case and build
REPAIR_POINTS=6
plan $((ncases * POINTS * 2 + nmap * REPAIR_POINTS))

SANITIZER='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

# expect NAME WANT RE FILE CMD...: run CMD.  WANT is fail (exit status 1
# to 127, stderr naming FILE and matching RE), warn (exit 0, stderr
# naming FILE and matching RE) or ok (exit 0, nothing on stderr).  Two
# points: how it ended, and what it said.
expect() {
	local name=$1 want=$2 re=$3 file=$4
	shift 4
	run "$@"
	if [[ $err =~ $SANITIZER ]]; then
		not_ok "$name: no sanitizer report" "command: $*" \
			"$(grep -E -A12 "$SANITIZER" <<<"$err" | head -25)"
	elif [ "$want" = fail ] && [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ]; then
		ok "$name: fails cleanly (exit $rc)"
	elif [ "$want" != fail ] && [ "$rc" -eq 0 ]; then
		ok "$name: succeeds"
	else
		not_ok "$name: expected to $want, exit $rc" "command: $*" \
			"stderr: $(head -5 <<<"$err")"
	fi
	if [ "$want" = ok ]; then
		is "$err" "" "$name: nothing on stderr"
	else
		like "$err" "$file: (.*)?$re" "$name: the message names the file and /$re/"
	fi
}

# one_pass LABEL VSTOR VBD_IO: every case with these binaries.
one_pass() {
	local label=$1 vstor=$2 vbdio=$3
	local name info info_re read read_re write img rwant roff rlen rpat

	while IFS=$'\t' read -r name info info_re read read_re write; do
		img=$T/img/$name.vdi
		expect "$label $name: info" "$info" "$info_re" "$img" \
			"$vstor" img info -f vdi "$img"
		read -r rwant roff rlen rpat <<<"$read"
		# A refused open says what info said; a read through a bad
		# entry names the entry.
		[ "$read_re" = - ] && read_re=$info_re
		[ "$rwant" = ok ] && [ "$info" = warn ] && rwant=warn
		expect "$label $name: read $roff+$rlen" "$rwant" "$read_re" \
			"$img" "$vbdio" -f vdi --readonly "$img" read "$roff" \
			"$rlen" "$rpat"
		cp "$img" "$T/w.vdi"
		expect "$label $name: open for writing" "$write" \
			"$([ "$info" = warn ] && echo "opens read-only" ||
				echo "$info_re")" "$T/w.vdi" \
			"$vbdio" -f vdi "$T/w.vdi" write 0 4k 0x33
	done <"$T/cases"
}

one_pass plain "$VSTOR" "$VBD_IO"
if [ -x "$ASAN_VSTOR" ] && [ -x "$ASAN_VBD_IO" ]; then
	one_pass asan "$ASAN_VSTOR" "$ASAN_VBD_IO"
else
	skip $((ncases * POINTS)) "no ASan build ($ASAN_VSTOR, $ASAN_VBD_IO): make BUILD=build/asan SANITIZE=address,undefined build/asan/vstor tools"
fi

# Damaged maps: found by check, repaired by check -r all.  Blocks 0 and 2
# of the base image hold 0x11 and 0x22; a repaired image keeps what was
# readable.
while IFS=$'\t' read -r name info _ _ _ _; do
	[ "$info" = warn ] || continue
	cp "$T/img/$name.vdi" "$T/r.vdi"
	run "$VSTOR" img check -f vdi "$T/r.vdi"
	like "$rc:$err" "^2:.*ERROR: block [0-9]+:" "$name: vstor img check finds errors (exit 2)"
	# The same counts as qemu-img, where qemu-img looks (it does not
	# compare entries with the file's size).
	run "$VSTOR" img check -f vdi --output=json "$T/r.vdi"
	vjson=$out
	run qemu-img check -f vdi --output=json "$T/r.vdi"
	if [ "$rc" -eq 2 ]; then
		is "$vjson" "$out" "$name: vstor img check --output=json as qemu-img's"
	else
		like "$vjson" '"corruptions": [1-9]' \
			"$name: vstor img check finds what qemu-img does not look for"
	fi
	run_ok "$name: vstor img check -r all" "$VSTOR" img check -f vdi \
		-r all "$T/r.vdi"
	run qemu-img check -f vdi "$T/r.vdi"
	is "$rc:$out" "0:No errors were found on the image." \
		"$name: qemu-img check is clean after the repair"
	run "$VSTOR" img check -f vdi "$T/r.vdi"
	is "$rc:$out" "0:No errors were found on the image." \
		"$name: vstor img check is clean after the repair"
	case $name in
	entry-out-of-range) cmd=(-c "read -P 0 0 1M" -c "read -P 0x22 2M 1M") ;;
	entry-shared) cmd=(-c "read -P 0x11 0 2M" -c "read -P 0x22 2M 1M") ;;
	entry-ok-read) cmd=(-c "read -P 0x11 0 1M" -c "read -P 0 3M 1M") ;;
	*) cmd=(-c "read -P 0x11 0 1M" -c "read -P 0 2M 2M") ;;
	esac
	run qemu-io -f vdi "${cmd[@]}" "$T/r.vdi"
	if [ "$rc" = 0 ] && ! [[ $out$err =~ [Pp]attern|[Ff]ailed ]]; then
		ok "$name: qemu-io reads what was readable"
	else
		not_ok "$name: qemu-io reads what was readable" "$out" "$err"
	fi
done <"$T/cases"
