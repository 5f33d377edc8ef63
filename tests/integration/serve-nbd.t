#!/bin/bash
# vstor serve --nbd against the real NBD clients: libnbd's nbdinfo and
# nbdcopy, QEMU's qemu-img and qemu-io.
#
# For a raw and a qcow2 disk: nbdinfo sees the size and the flags, and
# its --map shows data and holes where `vstor img map` has them;
# nbdcopy and `qemu-img convert` read the export into files equal to
# the image; qemu-io's write -P / read -P patterns (aligned, unaligned,
# FUA) read back through NBD and, after the server stops, from the
# image itself; write zeroes and discard free qcow2 clusters (seen by
# `vstor img map`); nbdcopy and `qemu-img convert -n` write whole
# images into the export, which then equals them.  After each server
# stops (SIGTERM, exit 0, socket removed) `vstor img check` is clean.
# Two disks are listed by nbdinfo --list under their vdevs; data in a
# qcow2's backing file is data in the map, not a hole; a read-only
# disk refuses writes; tcp:127.0.0.1:PORT serves; two clients writing
# at once and then flushing both land; a disk removed through the
# control socket closes the connections that use it.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/serve.sh
. "$(dirname "$0")/../lib/serve.sh"

requires nbdinfo nbdcopy qemu-img qemu-io python3 cmp "$VSTOR"

HOSTILE=$(cd "$(dirname "$0")/../tools" && pwd)/nbd-hostile.py
MiB=1048576
SIZE=$((64 * MiB))

plan $((26 + 27 + 5 + 3 + 5 + 4 + 6 + 4))

# qio_ok NAME ARGS...: qemu-io runs every command without an error
# (a failed pattern check is a message, so look at the output too).
qio_ok() {
	local name=$1
	shift
	run qemu-io "$@"
	if [ "$rc" -eq 0 ] && ! [[ "$out$err" =~ [Ff]ail|error ]]; then
		ok "$name"
	else
		not_ok "$name" "exit $rc" "$out" "$err"
	fi
}

# map_of_nbd URI: "start length data|hole" lines, merged, from nbdinfo.
map_of_nbd() {
	nbdinfo --map --json "$1" | python3 -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    kind = "hole" if e["type"] & 1 else "data"
    if out and out[-1][2] == kind:
        out[-1][1] += e["length"]
    else:
        out.append([e["offset"], e["length"], kind])
for o in out:
    print(*o)'
}

# map_of_img FMT FILE: the same from vstor img map.
map_of_img() {
	"$VSTOR" img map -U -f "$1" --output=json "$2" | python3 -c '
import json, sys
out = []
text = sys.stdin.read().strip()
ents = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines()]
for e in ents:
    kind = "data" if e["data"] else "hole"
    if out and out[-1][2] == kind:
        out[-1][1] += e["length"]
    else:
        out.append([e["start"], e["length"], kind])
for o in out:
    print(*o)'
}

# data_at FMT FILE OFFSET: "data" or "hole" per vstor img map at OFFSET.
data_at() {
	map_of_img "$1" "$2" | awk -v o="$3" '$1 <= o && o < $1 + $2 {print $3}'
}

one_format() {
	local fmt=$1 img=$T/disk.$1 sock=$T/$1.sock uri
	uri="nbd+unix:///xvda?socket=$sock"

	"$VSTOR" img create -f "$fmt" "$img" $SIZE >/dev/null ||
		die "cannot create $img"
	# Data at 0 and 8 MiB (and for qcow2 a zeroed cluster at 16 MiB);
	# the rest is holes.
	qemu-io -f "$fmt" -c "write -P 0x11 0 1M" -c "write -P 0x22 8M 512k" \
		-c "write -z 16M 64k" "$img" >/dev/null || die "qemu-io failed"

	# Reading.
	serve_start "$fmt-r" --nbd "$sock" "$fmt:$img,xvda,w"
	check "$fmt: the socket is mode 0600" \
		test "$(stat -c %a "$sock")" = 600
	run_ok "$fmt: nbdinfo --size" nbdinfo --size "$uri"
	is "$out" "$SIZE" "$fmt: nbdinfo sees the size"
	run_ok "$fmt: nbdinfo" nbdinfo "$uri"
	like "$out" "can_multi_conn: true" "$fmt: multi-conn is offered"
	map_of_nbd "$uri" >"$T/nbd.map"
	map_of_img "$fmt" "$img" >"$T/img.map"
	is "$(cat "$T/nbd.map")" "$(cat "$T/img.map")" \
		"$fmt: nbdinfo --map agrees with vstor img map"
	like "$(cat "$T/nbd.map")" "^0 1048576 data" "$fmt: map shows the data"
	run_ok "$fmt: nbdcopy from the export" nbdcopy "$uri" "$T/out1.raw"
	run_ok "$fmt: qemu-img convert from nbd+unix://" \
		qemu-img convert -f raw -O raw "$uri" "$T/out2.raw"
	serve_stop "$fmt: reading"
	check "$fmt: the socket is removed" test ! -e "$sock"
	run_ok "$fmt: nbdcopy's copy equals the image" \
		qemu-img compare -f "$fmt" -F raw "$img" "$T/out1.raw"
	run_ok "$fmt: qemu-img's copy equals the image" \
		qemu-img compare -f "$fmt" -F raw "$img" "$T/out2.raw"

	# Writing with qemu-io: aligned, unaligned, FUA, zeroes, discard.
	serve_start "$fmt-w" --nbd "$sock" "$fmt:$img,xvda,w"
	qio_ok "$fmt: qemu-io writes patterns through NBD" -f raw -c "write -P 0x5a 2M 1M" \
		-c "write -P 0x6b 5000000 3000" -c "write -f -P 0x7c 60M 4k" \
		-c "write -z -u 8M 512k" -c "discard 0 1M" -c "flush" "$uri"
	qio_ok "$fmt: qemu-io reads them back through NBD" -f raw -c "read -P 0x5a 2M 1M" \
		-c "read -P 0x6b 5000000 3000" -c "read -P 0x7c 60M 4k" \
		-c "read -P 0 8M 512k" -c "read -P 0 0 1M" "$uri"
	serve_stop "$fmt: writing"
	qio_ok "$fmt: the image holds the patterns" -r -f "$fmt" -c "read -P 0x5a 2M 1M" \
		-c "read -P 0x6b 5000000 3000" -c "read -P 0x7c 60M 4k" \
		-c "read -P 0 8M 512k" "$img"
	if [ "$fmt" = qcow2 ]; then
		is "$(data_at qcow2 "$img" $((8 * MiB)))" hole \
			"qcow2: write zeroes freed the clusters at 8M"
		is "$(data_at qcow2 "$img" $((512 * 1024)))" hole \
			"qcow2: discard freed the clusters at 0"
		run_ok "qcow2: vstor img check is clean" \
			"$VSTOR" img check "$img"
	else
		run_ok "raw: the discarded range reads as zeros" \
			qemu-io -r -f raw -c "read -P 0 0 1M" "$img"
		is "$(data_at raw "$img" $((512 * 1024)))" hole \
			"raw: discard punched a hole"
	fi

	# Writing whole images into the export.
	head -c $SIZE /dev/urandom >"$T/src1.raw"
	truncate -s $SIZE "$T/src2.raw"
	head -c $((3 * MiB)) /dev/urandom |
		dd of="$T/src2.raw" bs=1M seek=20 conv=notrunc status=none
	serve_start "$fmt-c" --nbd "$sock" "$fmt:$img,xvda,w"
	run_ok "$fmt: nbdcopy into the export" nbdcopy "$T/src1.raw" "$uri"
	run_ok "$fmt: nbdcopy reads it back" nbdcopy "$uri" "$T/back1.raw"
	run_ok "$fmt: what nbdcopy wrote reads back" cmp "$T/src1.raw" \
		"$T/back1.raw"
	run_ok "$fmt: qemu-img convert -n into nbd+unix://" \
		qemu-img convert -n -f raw -O raw "$T/src2.raw" "$uri"
	serve_stop "$fmt: copying"
	run_ok "$fmt: the image equals what qemu-img wrote" \
		qemu-img compare -f "$fmt" -F raw "$img" "$T/src2.raw"
	if [ "$fmt" = qcow2 ]; then
		run_ok "qcow2: vstor img check after the copies" \
			"$VSTOR" img check -f qcow2 "$img"
	else
		run_ok "raw: qemu-img compare with the source" \
			qemu-img compare -f raw -F raw "$img" "$T/src2.raw"
	fi
	rm -f "$T"/*.raw
}

one_format raw
one_format qcow2

# Two disks: listed by name, the first is the default export.
"$VSTOR" img create -f raw "$T/a.raw" 4M >/dev/null || die "create failed"
"$VSTOR" img create -f qcow2 "$T/b.qcow2" 8M >/dev/null || die "create failed"
sock=$T/two.sock
serve_start two --nbd "unix:$sock" "raw:$T/a.raw,xvda,w" \
	"qcow2:$T/b.qcow2,xvdb,w"
run_ok "two disks: nbdinfo --list" nbdinfo --list --json \
	"nbd+unix://?socket=$sock"
is "$(printf '%s' "$out" | python3 -c 'import json,sys
print(" ".join(sorted(e["export-name"] for e in json.load(sys.stdin)["exports"])))')" \
	"xvda xvdb" "two disks: both exports are listed by vdev"
run_ok "two disks: the empty name is the first disk" \
	nbdinfo --size "nbd+unix:///?socket=$sock"
is "$out" $((4 * MiB)) "two disks: its size is the first disk's"
serve_stop "two disks"

# A qcow2 over a raw backing file: what the backing file holds is data
# (not a hole) for the client too.
"$VSTOR" img create -f raw "$T/base.raw" 4M >/dev/null || die "create"
qemu-io -f raw -c "write -P 0x77 1M 1M" "$T/base.raw" >/dev/null ||
	die "qemu-io"
qemu-img create -q -f qcow2 -b "$T/base.raw" -F raw "$T/top.qcow2" ||
	die "qemu-img create"
qemu-io -f qcow2 -c "write -P 0x78 3M 64k" "$T/top.qcow2" >/dev/null ||
	die "qemu-io"
sock=$T/top.sock
serve_start top --nbd "$sock" "qcow2:$T/top.qcow2,xvda,w"
map_of_nbd "nbd+unix:///xvda?socket=$sock" >"$T/nbd.map"
is "$(cat "$T/nbd.map")" "$(map_of_img qcow2 "$T/top.qcow2")" \
	"backing file: nbdinfo --map agrees with vstor img map"
like "$(cat "$T/nbd.map")" "1048576 1048576 data" \
	"backing file: the backing file's data is data"
serve_stop "backing file"

# Read-only.
sock=$T/ro.sock
serve_start ro --nbd "$sock" --readonly "qcow2:$T/b.qcow2,xvdb,w"
run_ok "read-only: nbdinfo" nbdinfo "nbd+unix:///xvdb?socket=$sock"
like "$out" "is_read_only: true" "read-only: the export says so"
run_fails "read-only: qemu-io cannot write" qemu-io -f raw \
	-c "write -P 1 0 4k" "nbd+unix:///xvdb?socket=$sock"
run_ok "read-only: writes, trims and zeroes get EPERM" python3 "$HOSTILE" \
	"$sock" readonly xvdb
serve_stop "read-only"

# TCP, on a port that was free a moment ago (another test may take it
# meanwhile: then try another).
for attempt in 1 2 3; do
	port=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	serve_start "tcp$attempt" --nbd "tcp:127.0.0.1:$port" \
		"raw:$T/a.raw,xvda,w" && break
done
qio_ok "tcp: qemu-io writes and reads over TCP" -f raw \
	-c "write -P 0x42 1M 64k" -c "read -P 0x42 1M 64k" \
	"nbd://127.0.0.1:$port/xvda"
run_ok "tcp: nbdinfo --size" nbdinfo --size "nbd://127.0.0.1:$port/xvda"
is "$out" $((4 * MiB)) "tcp: the size"
serve_stop "tcp"

# Two writers at once, each flushing at the end; then both land.
sock=$T/multi.sock
serve_start multi --nbd "$sock" "qcow2:$T/b.qcow2,xvdb,w"
uri="nbd+unix:///xvdb?socket=$sock"
qemu-io -f raw -c "aio_write -P 0xa1 0 1M" -c "aio_write -P 0xa2 1M 1M" \
	-c "aio_flush" -c "write -P 0xa3 2M 512k" -c flush "$uri" \
	>"$T/w1.out" 2>&1 &
w1=$!
qemu-io -f raw -c "aio_write -P 0xb1 4M 1M" -c "aio_write -P 0xb2 5M 1M" \
	-c "aio_flush" -c "write -P 0xb3 6M 512k" -c flush "$uri" \
	>"$T/w2.out" 2>&1 &
w2=$!
rc1=0 rc2=0
wait $w1 || rc1=$?
wait $w2 || rc2=$?
is "$rc1 $rc2" "0 0" "two writers: both finish"
qio_ok "two writers: a third client reads both" -f raw \
	-c "read -P 0xa1 0 1M" -c "read -P 0xa2 1M 1M" \
	-c "read -P 0xa3 2M 512k" -c "read -P 0xb1 4M 1M" \
	-c "read -P 0xb2 5M 1M" -c "read -P 0xb3 6M 512k" "$uri"
serve_stop "two writers"
qio_ok "two writers: the image holds both" -r -f qcow2 \
	-c "read -P 0xa1 0 1M" -c "read -P 0xa3 2M 512k" \
	-c "read -P 0xb2 5M 1M" -c "read -P 0xb3 6M 512k" "$T/b.qcow2"
run_ok "two writers: vstor img check" "$VSTOR" img check "$T/b.qcow2"
unlike "$(cat "$T"/w1.out "$T"/w2.out)" "error|failed" \
	"two writers: qemu-io reported no error"

# remove-disk through the control socket: the NBD client of that disk
# is disconnected, the disk is closed, the other disk still serves.
sock=$T/rm.sock
serve_start rm --nbd "$sock" --control "$T/rm.ctl" \
	"raw:$T/a.raw,xvda,w" "qcow2:$T/b.qcow2,xvdb,w"
if python3 "$HOSTILE" "$sock" retire xvdb "$T/rm.ctl" 2>"$T/retire.err"; then
	ok "remove-disk: the client sees ESHUTDOWN or a closed connection"
else
	not_ok "remove-disk: the client sees ESHUTDOWN or a closed connection" \
		"$(cat "$T/retire.err")"
fi
qio_ok "remove-disk: xvda still serves" -f raw \
	-c "read -P 0x42 1M 64k" "nbd+unix:///xvda?socket=$sock"
run_fails "remove-disk: xvdb is no longer an export" \
	nbdinfo "nbd+unix:///xvdb?socket=$sock"
serve_stop "remove-disk"
