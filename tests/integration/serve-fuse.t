#!/bin/bash
# vstor serve --fuse: a disk as a regular file.
#
# A qcow2 made from a raw image holding an MBR partition table (sfdisk)
# and some data is exported as a FUSE file.  The file has the disk's
# size and mode, reads as `qemu-img convert -O raw` of the image, and
# SEEK_DATA/SEEK_HOLE follow the image's allocation.  Punching a hole
# zeroes it; writes past the end fail, writes across it are short, and
# truncation is refused.  fio's verifying random writes through the file
# read back.  losetup on the file and partx on the loop device show both
# partitions with the right start and size, and a write through a
# partition lands in the qcow2 at the partition's offset.  SIGTERM, while
# a process still holds the file open, unmounts and removes the file we
# created; afterwards the image holds exactly what was written through
# the file and both `vstor img check` and `qemu-img check` find it clean.
# Other users reach the file only with allow-other=on.  A read-only
# export on an existing file refuses to open for writing,
# stops on SIGTERM while idle and leaves the file as it was; one
# unmounted from outside (fusermount3 -u) still stops cleanly.  SIGTERM
# during fio's writes to a qcow2 ends the server cleanly, fio with errors
# (not a hang), and leaves the image clean.  Bad mountpoints and options
# are refused.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img python3 sfdisk losetup partx fusermount3 findmnt fallocate \
	fio cmp setpriv "$VSTOR"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
[ "$(id -u)" -eq 0 ] || skip_all "losetup and partx need root"

plan 49

MiB=1048576
SIZE=$((64 * MiB))
IMG=$T/disk.qcow2
FILE=$T/disk # the FUSE file: missing before, so the export creates it
SPEC="format=qcow2, vdev=xvda, access=rw, target=$IMG"

# The source: an MBR with p1 = 10 MiB at 1 MiB and p2 = 20 MiB at
# 11 MiB, and 128 KiB of data at 40 MiB.  Everything else is zeros, so
# the qcow2 holds two data runs (cluster 0 and 40 MiB) and holes.
truncate -s $SIZE "$T/src.raw"
sfdisk -q "$T/src.raw" <<EOF >/dev/null || die "sfdisk failed"
label: dos
start=2048, size=20480, type=83
start=22528, size=40960, type=83
EOF
head -c $((128 * 1024)) /dev/urandom >"$T/data40"
dd if="$T/data40" of="$T/src.raw" bs=64k seek=640 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$T/src.raw" "$IMG" || die "convert failed"
qemu-img convert -f qcow2 -O raw "$IMG" "$T/ref.raw" || die "convert failed"

# wait_ready PID PIDFILE: the server wrote its pidfile (it writes it once
# everything listens) or died.  The bound only keeps a broken server
# from hanging the test.
wait_ready() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ -s "$2" ] && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_server NAME FUSEFILE ARGS...: vstor serve in the background;
# sets $server_pid.  Killed and unmounted at exit on every path.
start_server() {
	local name=$1 file=$2
	shift 2
	"$VSTOR" serve --pidfile "$T/$name.pid" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" &
	server_pid=$!
	cleanup_add fusermount3 -u -z "$file"
	cleanup_add kill -KILL "$server_pid"
	wait_ready "$server_pid" "$T/$name.pid"
}

# stop_server PID: SIGTERM, then wait for the exit (bounded, so that a
# server that hangs fails the test instead of blocking it); sets $rc.
stop_server() {
	local i
	kill -TERM "$1"
	for ((i = 0; i < 600; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1"
		rc=hung
		return 1
	fi
	rc=0
	wait "$1" || rc=$?
}

is_mounted() {
	findmnt -n "$1" >/dev/null 2>&1
}

not_mounted() {
	! is_mounted "$1"
}

# loop_release DEV FILE (cleanup): remove DEV's partitions and detach it,
# but only while DEV is still attached to FILE: once we let it go, a test
# running beside this one may have it.
loop_release() {
	[ "$(losetup -n -O BACK-FILE "$1" 2>/dev/null)" = "$2" ] || return 0
	partx -d "$1"
	losetup -d "$1"
}

# The rest of the file needs the export: without it, stop here.
if start_server rw "$FILE" --fuse "$FILE" "$SPEC"; then
	ok "serve --fuse starts"
else
	not_ok "serve --fuse starts" "$(cat "$T/rw.err")"
	die "no server"
fi
check "the file is a FUSE mount" is_mounted "$FILE"
is "$(stat -c '%F %a %u %s' "$FILE")" "regular file 600 $(id -u) $SIZE" \
	"a regular file of the virtual size, mode 0600, ours"
run_ok "the file reads as the image" cmp "$FILE" "$T/ref.raw"

# Other users: only with allow-other=on, whatever the mode says.
chmod 711 "$T"
chmod 644 "$FILE"
run setpriv --reuid=65534 --regid=65534 --clear-groups \
	dd if="$FILE" of=/dev/null count=1 status=none
like "$rc:$(stat -c %a "$FILE"):$err" "^[1-9][0-9]*:644:.*Permission denied" \
	"without allow-other another user cannot read it, even at mode 0644"
chmod 600 "$FILE"

# lseek.py FILE WHENCE:OFFSET...: what each lseek returns, or the errno
# name.
cat >"$T/lseek.py" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
res = []
for q in sys.argv[2:]:
    w, off = q.split(":")
    try:
        res.append(str(os.lseek(fd, int(off), getattr(os, w))))
    except OSError as e:
        res.append(errno.errorcode[e.errno])
print(" ".join(res))
EOF
D40=$((40 * MiB))
run python3 "$T/lseek.py" "$FILE" SEEK_DATA:0 SEEK_HOLE:0 SEEK_DATA:65536 \
	SEEK_HOLE:$D40 SEEK_DATA:$((D40 + 131072)) SEEK_HOLE:$((D40 + 131072)) \
	SEEK_DATA:$SIZE
is "$out" "0 65536 $D40 $((D40 + 131072)) ENXIO $((D40 + 131072)) ENXIO" \
	"SEEK_DATA and SEEK_HOLE follow the image's data runs"

run_ok "fallocate --punch-hole" fallocate -p -o $D40 -l 65536 "$FILE"
run cmp -n 65536 -i $D40:0 "$FILE" /dev/zero
is "$rc" 0 "the punched range reads as zeros"
run python3 "$T/lseek.py" "$FILE" SEEK_DATA:65536 SEEK_HOLE:$((D40 + 65536))
is "$out" "$((D40 + 65536)) $((D40 + 131072))" \
	"the punched range is a hole"

# Edges of a file that cannot change size.
cat >"$T/edges.py" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
res = []
def attempt(f):
    try:
        r = f()
        res.append("ok" if r is None else str(r))
    except OSError as e:
        res.append(errno.errorcode[e.errno])
attempt(lambda: os.pwrite(fd, b"x", size))
attempt(lambda: os.pwrite(fd, b"y" * 8192, size - 4096))
attempt(lambda: os.ftruncate(fd, size))
attempt(lambda: os.ftruncate(fd, size - 1))
attempt(lambda: os.ftruncate(fd, size * 2))
attempt(lambda: len(os.pread(fd, 8192, size - 4096)))
attempt(lambda: len(os.pread(fd, 10, size)))
attempt(lambda: os.fsync(fd))
print(" ".join(res), os.fstat(fd).st_size)
EOF
run python3 "$T/edges.py" "$FILE"
is "$out" "ENOSPC 4096 ok EINVAL EINVAL 4096 0 ok $SIZE" \
	"past the end: ENOSPC, short writes and reads, no truncation"

# Concurrent verified I/O through the file (libaio, O_DIRECT, depth 16).
run_ok "fio verifies random writes through the file" \
	fio --name=verify --filename="$FILE" --ioengine=libaio --direct=1 \
	--rw=randwrite --bs=4k --iodepth=16 --offset=$((48 * MiB)) \
	--size=$((4 * MiB)) --verify=crc32c --do_verify=1 \
	--verify_state_save=0 --output="$T/fio.out"
# What the file shows there is what the image must hold after the stop.
dd if="$FILE" of="$T/fio.region" bs=$MiB skip=48 count=4 status=none

# losetup and partx on the FUSE file.
loop=$(losetup -f --show "$FILE" 2>"$T/losetup.err")
if [ -n "$loop" ] && [ -b "$loop" ]; then
	ok "losetup attaches the file ($loop)"
	cleanup_add loop_release "$loop" "$FILE"
else
	not_ok "losetup attaches the file" "$(cat "$T/losetup.err")"
fi
dev=${loop##*/}
run_ok "partx -a adds the partitions" partx -a "${loop:-/dev/null}"
# The nodes may take a moment to appear in devtmpfs.
for ((i = 0; i < 50; i++)); do
	[ -b "${loop}p2" ] && break
	sleep 0.1
done
check "partition 1 is a block device" test -b "${loop}p1"
check "partition 2 is a block device" test -b "${loop}p2"
is "$(cat "/sys/class/block/${dev}p1/start" "/sys/class/block/${dev}p1/size" \
	2>/dev/null | xargs)" "2048 20480" "partition 1: 10 MiB at 1 MiB"
is "$(cat "/sys/class/block/${dev}p2/start" "/sys/class/block/${dev}p2/size" \
	2>/dev/null | xargs)" "22528 40960" "partition 2: 20 MiB at 11 MiB"
run lsblk -b -n -o SIZE "${loop}p2"
is "$out" $((20 * MiB)) "lsblk shows partition 2's size"

# 256 KiB at 1 MiB into partition 2: 12 MiB into the disk.
head -c 262144 /dev/urandom >"$T/pattern"
if [ -b "${loop}p2" ]; then
	run_ok "write through the partition" dd if="$T/pattern" \
		of="${loop}p2" bs=64k seek=16 oflag=direct conv=fsync \
		status=none
else
	not_ok "write through the partition" "no ${loop}p2 block device"
fi
run cmp -n 262144 -i $((12 * MiB)):0 "$FILE" "$T/pattern"
is "$rc" 0 "the file shows the write at the partition's offset"
run_ok "partx -d" partx -d "${loop:-/dev/null}"
run_ok "losetup -d" losetup -d "${loop:-/dev/null}"

# SIGTERM while a process holds the file open.
# shellcheck disable=SC2217 # the redirection is the point: it holds the file
sleep 1000 <"$FILE" &
holder=$!
cleanup_add kill "$holder"
stop_server "$server_pid"
is "$rc" 0 "SIGTERM with the file held open: clean exit"
check "the file is unmounted" not_mounted "$FILE"
check "the file the export created is removed" test ! -e "$FILE"
kill "$holder" 2>/dev/null

# What was written through the file, and nothing else, is in the image.
cp "$T/ref.raw" "$T/expect.raw"
dd if=/dev/zero of="$T/expect.raw" bs=64k seek=640 count=1 conv=notrunc \
	status=none
head -c 4096 /dev/zero | tr '\0' y |
	dd of="$T/expect.raw" bs=4096 seek=$((SIZE / 4096 - 1)) conv=notrunc \
		status=none
dd if="$T/fio.region" of="$T/expect.raw" bs=$MiB seek=48 conv=notrunc \
	status=none
dd if="$T/pattern" of="$T/expect.raw" bs=$MiB seek=12 conv=notrunc \
	status=none
qemu-img convert -f qcow2 -O raw "$IMG" "$T/after.raw"
run cmp -n 262144 -i $((12 * MiB)):0 "$T/after.raw" "$T/pattern"
is "$rc" 0 "the partition write is in the qcow2 at 12 MiB"
run_ok "the qcow2 holds exactly what was written through the file" \
	cmp "$T/after.raw" "$T/expect.raw"
run_ok "vstor img check is clean" "$VSTOR" img check "$IMG"
qcow2_clean "qemu-img check is clean" "$IMG"

# Read-only, on an existing file that must survive the export.
RO=$T/ro-file
echo "keep me" >"$RO"
if start_server ro "$RO" --readonly --fuse "xvda=$RO,allow-other=on" "$SPEC"; then
	ok "read-only export on an existing file starts"
else
	not_ok "read-only export on an existing file starts" \
		"$(cat "$T/ro.err")"
fi
is "$(stat -c '%a %s' "$RO")" "400 $SIZE" "read-only: mode 0400"
cat >"$T/open-rw.py" <<'EOF'
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDWR))
    print("opened")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
run python3 "$T/open-rw.py" "$RO"
is "$out" EROFS "read-only: opening for writing fails with EROFS"
run_fails "read-only: dd cannot write" dd if=/dev/zero of="$RO" bs=4k \
	count=1 conv=notrunc status=none
run_ok "read-only: reads the image" cmp "$RO" "$T/after.raw"
chmod 444 "$RO"
run_ok "allow-other=on: another user reads it (mode 0444)" \
	setpriv --reuid=65534 --regid=65534 --clear-groups \
	cmp "$RO" "$T/after.raw"
stop_server "$server_pid"
is "$rc" 0 "SIGTERM while idle: clean exit"
is "$(is_mounted "$RO" && echo mounted; cat "$RO")" "keep me" \
	"an existing file is unmounted and left as it was"

# Unmounted from outside: the server notices, and still stops cleanly.
EXT=$T/ext
if start_server ext "$EXT" --readonly --fuse "$EXT" "$SPEC"; then
	run_ok "fusermount3 -u unmounts a served file" fusermount3 -u "$EXT"
else
	not_ok "fusermount3 -u unmounts a served file" "$(cat "$T/ext.err")"
fi
stop_server "$server_pid"
is "$rc" 0 "SIGTERM after an outside unmount: clean exit"
check "the file the export created is removed" test ! -e "$EXT"

# SIGTERM in the middle of writes: the server drains and exits, the
# writer gets errors instead of hanging, the image stays consistent.
qemu-img create -q -f qcow2 "$T/busy.qcow2" $SIZE
BUSY=$T/busy
if start_server busy "$BUSY" --fuse "$BUSY" \
	"format=qcow2, vdev=xvda, access=rw, target=$T/busy.qcow2"; then
	fio --name=busy --filename="$BUSY" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=64k --iodepth=32 --runtime=600 --time_based \
		--verify_state_save=0 --output="$T/busy-fio.out" \
		>/dev/null 2>&1 &
	fio_pid=$!
	cleanup_add kill -KILL "$fio_pid"
	# Until the writes have allocated clusters (bounded).
	start_size=$(stat -c %s "$T/busy.qcow2")
	for ((i = 0; i < 300; i++)); do
		[ "$(stat -c %s "$T/busy.qcow2")" -gt $((start_size + MiB)) ] &&
			break
		sleep 0.1
	done
fi
stop_server "$server_pid"
is "$rc" 0 "SIGTERM during writes: clean exit"
for ((i = 0; i < 600; i++)); do
	kill -0 "${fio_pid:-0}" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "${fio_pid:-0}" 2>/dev/null; then
	not_ok "the writer gets errors, not a hang" "fio still runs"
else
	fio_rc=0
	wait "$fio_pid" || fio_rc=$?
	like "$fio_rc:$(cat "$T/busy-fio.out")" "^[1-9].*(not connected|connection abort)" \
		"the writer gets errors, not a hang"
fi
qcow2_clean "the image written until SIGTERM is clean" "$T/busy.qcow2"

# Refusals: the mountpoint must be a regular file; options are checked.
mkdir "$T/dir"
run_fails "a directory is not a mountpoint" \
	"$VSTOR" serve --fuse "$T/dir" "$SPEC"
like "$err" "$T/dir.*not a regular file" "the error names the path"
run_fails "an unknown option is refused" \
	"$VSTOR" serve --fuse "xvda=$T/x,bogus=1" "$SPEC"
like "$err" "unknown FUSE export option 'bogus'" "the error names the option"
check "nothing is mounted on the directory" not_mounted "$T/dir"
check "no file is left behind after the refusals" test ! -e "$T/x"
