#!/bin/bash
# vstor img resize against qemu-img resize.
#
# Every case builds an image with qemu-img and qemu-io, copies it, and
# resizes one copy with qemu-img and the other with vstor: the two must
# then read the same (qemu-img compare, same virtual size) and vstor's
# qcow2 images must be clean for qemu-img check.  Cases: raw and qcow2
# growing and shrinking, absolute and +/- sizes, cluster sizes 512, 64k
# and 2M, growth far past what the L1 table covers (with 512-byte
# clusters the new table is longer than a refcount block reaches), an
# overlay whose longer backing file must not show through the new
# bytes, internal snapshots, extended L2 entries, and qemu-img's
# refusals (shrink without --shrink, sizes not positive or not a multiple
# of 512, version 2 images with snapshots or a longer backing file, an
# L1 table over 32 MiB, preallocation when shrinking or an unknown
# mode, an image in use); --preallocation for raw and qcow2; damaged
# images refused cleanly.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR"

plan 100

# twin NAME FMT CREATE-OPTS SIZE IO-CMDS...: $T/q-NAME and $T/v-NAME,
# the same image, for qemu-img and for vstor.
twin() {
	local name=$1 fmt=$2 opts=$3 size=$4 cmd
	shift 4
	qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$T/q-$name" "$size" ||
		die "cannot create $name"
	for cmd in "$@"; do
		qemu-io -f "$fmt" -c "$cmd" "$T/q-$name" >/dev/null ||
			die "qemu-io $cmd on $name failed"
	done
	cp "$T/q-$name" "$T/v-$name"
}

vsize() {
	qemu-img info --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# same NAME FMT TEXT: one point: both copies read the same and have the
# same virtual size.
same() {
	local q v
	q=$(vsize "$T/q-$1") v=$(vsize "$T/v-$1")
	run qemu-img compare -f "$2" -F "$2" "$T/q-$1" "$T/v-$1"
	if [ "$rc" -eq 0 ] && [ "$q" = "$v" ] && [ -n "$q" ]; then
		ok "$3"
	else
		not_ok "$3" "qemu-img size $q, vstor size $v" "$out" "$err"
	fi
}

# both NAME FMT TEXT ARGS...: resize both copies with the same
# arguments (FILE stands for the image), then two points: vstor said
# "Image resized." and the copies read the same.
both() {
	local name=$1 fmt=$2 text=$3 a qa=() va=()
	shift 3
	for a in "$@"; do
		if [ "$a" = FILE ]; then
			qa+=("$T/q-$name") va+=("$T/v-$name")
		else
			qa+=("$a") va+=("$a")
		fi
	done
	qemu-img resize -f "$fmt" "${qa[@]}" >/dev/null ||
		diag "qemu-img resize ${qa[*]} failed"
	run "$VSTOR" img resize -f "$fmt" "${va[@]}"
	is "$out" "Image resized." "$text: vstor resizes"
	same "$name" "$fmt" "$text: reads as qemu-img's result"
}

# --- raw ---------------------------------------------------------------
twin raw raw "" 1M "write -P 1 0 1M"
both raw raw "raw +1M" FILE +1M
is "$(stat -c %s "$T/v-raw")" 2097152 "raw +1M: the file is 2 MiB"
both raw raw "raw absolute 3M" FILE 3M
run "$VSTOR" img resize -f raw "$T/v-raw" 1M
ok_refused() {
	if [ "$rc" -eq 1 ] && [[ $err =~ "Use the --shrink option to perform a shrink operation." ]] &&
		[[ $err =~ "warning: Shrinking an image will delete all data" ]]; then
		ok "$1"
	else
		not_ok "$1" "exit $rc" "$err"
	fi
}
ok_refused "raw: shrinking without --shrink is refused with qemu-img's message"
is "$(stat -c %s "$T/v-raw")" 3145728 "raw: a refused shrink changes nothing"
both raw raw "raw --shrink -- -1M" --shrink FILE -- -1M
is "$(stat -c %s "$T/v-raw")" 2097152 "raw: the file is cut to 2 MiB"
both raw raw "raw odd size +1 byte" FILE +1
run "$VSTOR" img resize -q -f raw "$T/v-raw" --preallocation=full 5M
is "$out" "" "-q prints nothing"
qemu-img resize -q -f raw --preallocation=full "$T/q-raw" 5M
same raw raw "raw --preallocation=full"
blocks=$(stat -c %b "$T/v-raw")
check "raw --preallocation=full writes the new bytes" test "$((blocks * 512))" -ge $((3 << 20))
twin rawf raw "" 1M
both rawf raw "raw --preallocation=falloc" --preallocation=falloc FILE 9M
blocks=$(stat -c %b "$T/v-rawf")
check "raw --preallocation=falloc reserves the new bytes" test "$((blocks * 512))" -ge $((8 << 20))

# --- qcow2 -------------------------------------------------------------
twin q64 qcow2 "" 4M "write -P 1 0 1M" "write -P 2 3M 1M" "write -c -P 3 1M 64k" "write -z 2M 64k"
both q64 qcow2 "qcow2 +10M" FILE +10M
qcow2_clean "qcow2 +10M: clean" "$T/v-q64"
run qemu-io -c "write -P 9 13M 1M" "$T/v-q64"
qemu-io -c "write -P 9 13M 1M" "$T/q-q64" >/dev/null
same q64 qcow2 "qcow2: the grown area takes writes"
run "$VSTOR" img resize -f qcow2 "$T/v-q64" 1M
ok_refused "qcow2: shrinking without --shrink is refused"
both q64 qcow2 "qcow2 --shrink to 3M" --shrink FILE 3M
qcow2_clean "qcow2 shrink: clean (no leaks)" "$T/v-q64"
check "qcow2 shrink: the file is cut as qemu-img cuts it" \
	test "$(stat -c %s "$T/v-q64")" -le "$(stat -c %s "$T/q-q64")"
both q64 qcow2 "qcow2 grow back +5M" FILE +5M
run qemu-io -c "read -P 0 3M 5M" "$T/v-q64"
like "$out" "read 5242880/5242880" "qcow2: the old data past a shrink does not come back"

# 512-byte clusters: 2 GiB needs an L1 table of 512 KiB, more than a
# refcount block (256 clusters) reaches.
twin q512 qcow2 cluster_size=512 1M "write -P 1 0 1M"
both q512 qcow2 "512-byte clusters to 2G (L1 table moves)" FILE 2G
qcow2_clean "512-byte clusters to 2G: clean" "$T/v-q512"
run qemu-io -c "write -P 5 2047M 1M" -c "write -P 6 1000M 4k" "$T/v-q512"
qemu-io -c "write -P 5 2047M 1M" -c "write -P 6 1000M 4k" "$T/q-q512" >/dev/null
same q512 qcow2 "512-byte clusters: writes past the old end"
qcow2_clean "512-byte clusters: clean after writes" "$T/v-q512"
# (qemu-img takes minutes to shrink this one: vstor's result is read.)
run_ok "512-byte clusters --shrink to 1500M" "$VSTOR" img resize --shrink "$T/v-q512" 1500M
is "$(vsize "$T/v-q512")" $((1500 << 20)) "512-byte clusters shrink: the new size"
run qemu-io -c "read -P 1 0 1M" -c "read -P 6 1000M 4k" -c "read -P 0 1M 999M" "$T/v-q512"
like "$out" "read 1048576/1048576.*read 4096/4096.*read 1047527424/1047527424" \
	"512-byte clusters shrink: the data below the new end stays"
qcow2_clean "512-byte clusters shrink: clean" "$T/v-q512"
twin q512b qcow2 cluster_size=512 1M "write -P 1 0 1M"
run "$VSTOR" img resize "$T/v-q512b" 200G
if [ "$rc" -eq 1 ] && [[ $err =~ "failed to grow the L1 table" ]]; then
	ok "512-byte clusters to 200G: L1 over 32 MiB refused"
else
	not_ok "512-byte clusters to 200G: L1 over 32 MiB refused" "$err"
fi
qcow2_clean "a refused growth leaves the image clean" "$T/v-q512b"
is "$(vsize "$T/v-q512b")" 1048576 "a refused growth leaves the size"

twin q2m qcow2 cluster_size=2M 8M "write -P 1 0 3M" "write -P 2 6M 2M"
both q2m qcow2 "2M clusters +1T" FILE +1T
qcow2_clean "2M clusters +1T: clean" "$T/v-q2m"
both q2m qcow2 "2M clusters --shrink to 7M" --shrink FILE 7M
qcow2_clean "2M clusters shrink: clean" "$T/v-q2m"

twin qext qcow2 extended_l2=on 4M "write -P 1 0 100k" "write -P 2 3M 3k"
both qext qcow2 "extended L2 +1G" FILE +1G
qcow2_clean "extended L2 +1G: clean" "$T/v-qext"
both qext qcow2 "extended L2 --shrink 3M" --shrink FILE 3M
qcow2_clean "extended L2 shrink: clean" "$T/v-qext"

twin qv2 qcow2 compat=0.10 4M "write -P 1 0 4M"
both qv2 qcow2 "version 2 +60M" FILE +60M
qcow2_clean "version 2 +60M: clean" "$T/v-qv2"
both qv2 qcow2 "version 2 --shrink 2M" --shrink FILE 2M
qcow2_clean "version 2 shrink: clean" "$T/v-qv2"

# An overlay whose backing file is longer: the new bytes are zeros.
qemu-img create -q -f raw "$T/back.raw" 8M
qemu-io -f raw -c "write -P 7 0 8M" "$T/back.raw" >/dev/null
twin ovl qcow2 "backing_file=$T/back.raw,backing_fmt=raw" 2M "write -P 1 0 512k"
both ovl qcow2 "overlay of a longer backing file +4M" FILE +4M
run qemu-io -c "read -P 0 2M 4M" "$T/v-ovl"
like "$out" "read 4194304/4194304" "overlay: the backing file does not show through the new bytes"
run qemu-io -c "read -P 7 512k 1536k" "$T/v-ovl"
like "$out" "read 1572864/1572864" "overlay: it still shows through the old bytes"
qcow2_clean "overlay +4M: clean" "$T/v-ovl"
both ovl qcow2 "overlay --shrink 1M" --shrink FILE 1M
qcow2_clean "overlay shrink: clean" "$T/v-ovl"

# Internal snapshots (version 3) keep their own size and data.
twin snap qcow2 "" 4M "write -P 1 0 4M"
qemu-img snapshot -c s1 "$T/q-snap" && qemu-img snapshot -c s1 "$T/v-snap"
qemu-io -c "write -P 2 0 1M" "$T/q-snap" >/dev/null
qemu-io -c "write -P 2 0 1M" "$T/v-snap" >/dev/null
both snap qcow2 "with a snapshot --shrink 1M" --shrink FILE 1M
qcow2_clean "with a snapshot shrink: clean" "$T/v-snap"
both snap qcow2 "with a snapshot +8M" FILE +8M
qcow2_clean "with a snapshot grow: clean" "$T/v-snap"
qemu-img snapshot -a s1 "$T/q-snap" && qemu-img snapshot -a s1 "$T/v-snap"
same snap qcow2 "the snapshot still reads as it was"

# Refusals.
twin v2snap qcow2 compat=0.10 1M
qemu-img snapshot -c s1 "$T/v-v2snap"
run "$VSTOR" img resize "$T/v-v2snap" 2M
like "$err" "can't resize a v2 image which has snapshots" "version 2 with snapshots refused"
twin v2back qcow2 "compat=0.10,backing_file=$T/back.raw,backing_fmt=raw" 1M
run "$VSTOR" img resize "$T/v-v2back" 4M
like "$err" "failed to zero out new clusters" "version 2 with a longer backing file refused"
is "$(vsize "$T/v-v2back")" 1048576 "and left as it was"
run_fails "qcow2 size not a multiple of 512" "$VSTOR" img resize "$T/v-q64" +1
like "$err" "must be a multiple of 512" "and says so"
run_fails "a size that is not positive" "$VSTOR" img resize -f raw "$T/v-raw" -- -1G
like "$err" "New image size must be positive" "with qemu-img's message"
run_fails "preallocation when shrinking" "$VSTOR" img resize --shrink --preallocation=full -f raw "$T/v-raw" 1M
like "$err" "Preallocation can only be used for growing images" "with qemu-img's message"
run_fails "preallocation=metadata" "$VSTOR" img resize --preallocation=metadata -f raw "$T/v-raw" 9M
run_fails "an unknown preallocation mode" "$VSTOR" img resize --preallocation=xx -f raw "$T/v-raw" 9M
like "$err" "Invalid preallocation mode 'xx'" "with qemu-img's message"
both q64 qcow2 "qcow2 --preallocation=falloc +1M" --preallocation=falloc FILE +1M
both q64 qcow2 "qcow2 --preallocation=full +1M" --preallocation=full FILE +1M
run qemu-img map --output=json "$T/v-q64"
like "$out" '"start": 8388608, "length": 1048576, "depth": 0, "present": true, "zero": false, "data": true.*"start": 9437184, "length": 1048576, "depth": 0, "present": true, "zero": false, "data": true' \
	"qcow2 preallocation: the new clusters are allocated"
qcow2_clean "qcow2 preallocation: clean" "$T/v-q64"
run_fails "no size" "$VSTOR" img resize "$T/v-raw"
run_fails "a size that is not a size" "$VSTOR" img resize "$T/v-raw" 12Q

# Damaged images: an L1 entry past the end of the file and an L2 entry
# pointing at garbage are reported, never used (no crash, no refcount
# changed through them).
qemu-img create -q -f qcow2 -o cluster_size=512 "$T/bad.qcow2" 4M
qemu-io -c "write -P 1 0 4M" "$T/bad.qcow2" >/dev/null
python3 - "$T/bad.qcow2" <<'EOF2' || die "cannot damage the image"
import struct, sys
f = open(sys.argv[1], 'r+b')
l1, = struct.unpack('>Q', f.read(48)[40:48])
f.seek(l1 + 100 * 8)
f.write(struct.pack('>Q', 1 << 63 | 0x7fff0000))
f.seek(l1 + 50 * 8)
l2, = struct.unpack('>Q', f.read(8))
f.seek((l2 & 0x00fffffffffffe00) + 3 * 8)
f.write(struct.pack('>Q', 1 << 63 | 0x12345600))
EOF2
run_fails "shrinking a damaged image fails cleanly" "$VSTOR" img resize --shrink "$T/bad.qcow2" 1M
like "$err" "corrupt image: data cluster past the end of the file: L2 table" "and names the bad entry"
run_fails "the image is then marked corrupt" "$VSTOR" img resize "$T/bad.qcow2" +1M

# An image in use (qemu-io holds it open for writing) is refused.
mkfifo "$T/fifo"
qemu-io "$T/v-q64" <"$T/fifo" >/dev/null 2>&1 &
holder=$!
exec 7>"$T/fifo"
cleanup_add kill "$holder"
sleep 1
run_fails "an image open in qemu-io is refused" "$VSTOR" img resize "$T/v-q64" +1M
like "$err" "lock" "because of its lock"
echo quit >&7
exec 7>&-
wait "$holder" 2>/dev/null
