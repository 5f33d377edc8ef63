#!/bin/bash
# Image locks: vstor keeps a second writer out, lets readers share, and
# keeps QEMU's tools out (and is kept out by them) with QEMU's own lock
# bytes, exactly as one QEMU process does to another.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io "$VSTOR" "$VBD_IO"

img=$T/disk.img
qcow=$T/disk.qcow2
holder=

# start_holder NAME CMD...: run CMD (a vbd-io --hold) in the background
# and wait until it prints "holding".  Sets $holder to its pid.
start_holder() {
	local name=$1 i
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	holder=$!
	cleanup_add kill -9 "$holder"
	for ((i = 0; i < 150; i++)); do
		grep -q '^holding$' "$T/$name.out" && return 0
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.1
	done
	diag "$name did not start: $(cat "$T/$name.err")"
	return 1
}

# start_qemu_holder FILE CMD...: run a qemu-io that keeps FILE open, and
# wait until its locks show in /proc/locks.
start_qemu_holder() {
	local file=$1 ino i
	shift
	ino=$(stat -c %i "$file")
	"$@" >"$T/qemu.out" 2>"$T/qemu.err" &
	holder=$!
	cleanup_add kill -9 "$holder"
	for ((i = 0; i < 150; i++)); do
		grep -q ":$ino " /proc/locks && return 0
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.1
	done
	diag "qemu-io did not take its locks: $(cat "$T/qemu.err")"
	return 1
}

stop_holder() {
	kill -9 "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	holder=
}

lock_error='lock.*'"$img"'|'"$img"'.*lock'

plan 30

run_ok "create a raw image" "$VSTOR" img create -f raw "$img" 16M
run_ok "write a pattern" "$VBD_IO" "$img" write 0 64K 0x5a

# A vstor writer holds the image.
check "a vbd-io writer holds the image" \
	start_holder writer "$VBD_IO" --hold 30 "$img"

run_fails "a second vstor writer is refused" \
	"$VBD_IO" "$img" write 0 512 0x11
like "$err" "$lock_error" "the error names the file and the lock"
is "$(wc -l <<<"$err")" 1 "the error is one line"
run_fails "a vstor reader that keeps writers out is refused" \
	"$VBD_IO" --readonly "$img" read 0 512 0x5a
run_ok "a --share reader gets in and reads" \
	"$VBD_IO" --share "$img" read 0 64K 0x5a
run_fails "vstor img info is refused" "$VSTOR" img info "$img"
run_ok "vstor img info -U gets in" "$VSTOR" img info -U "$img"

run_fails "a qemu-io writer is refused" qemu-io -f raw "$img" -c "read 0 512"
like "$err" "lock" "qemu-io says why: the lock"
# (qemu-img info shares write with everyone; convert wants a stable
# image, as vstor's readers do.)
run_fails "qemu-img convert, a reader that keeps writers out, is refused" \
	qemu-img convert -f raw -O raw "$img" "$T/copy.img"
run_ok "qemu-img convert -U gets in" \
	qemu-img convert -U -f raw -O raw "$img" "$T/copy.img"

stop_holder
run_ok "once the writer is gone (killed), a new writer gets in" \
	"$VBD_IO" "$img" write 0 512 0x5a

# Readers share with readers and keep writers out.
check "a vbd-io reader holds the image" \
	start_holder reader "$VBD_IO" --readonly --hold 30 "$img"
run_ok "a second reader reads at the same time" \
	"$VBD_IO" --readonly "$img" read 0 64K 0x5a
run_fails "a vstor writer is refused while a reader holds it" \
	"$VBD_IO" "$img" write 0 512 0x11
like "$err" "$lock_error" "the error names the file and the lock"
run_fails "a qemu-io writer is refused while a reader holds it" \
	qemu-io -f raw "$img" -c "write -P 0x11 0 512"
stop_holder
run_ok "the refused writers changed nothing" \
	"$VBD_IO" --readonly "$img" read 0 64K 0x5a

# QEMU holding the image.  A qcow2 node keeps other writers off its
# file; vbd-io opens that file as raw, which is enough to see the lock.
run_ok "qemu-img creates a qcow2 image" qemu-img create -f qcow2 "$qcow" 16M
check "qemu-io -f qcow2 holds the qcow2 image for write" \
	start_qemu_holder "$qcow" qemu-io -f qcow2 "$qcow" -c "sleep 30000"
run_fails "a vstor writer is refused while qemu-io writes the qcow2" \
	"$VBD_IO" -f raw "$qcow" write 0 512 0x11
like "$err" "lock.*$qcow|$qcow.*lock" "the error names the file and the lock"
run_ok "a --share reader of the qcow2 file still gets in" \
	"$VBD_IO" -f raw --share "$qcow" read 0 1 0x51
stop_holder

# qemu-io's raw format shares write permission with everyone, so a
# second qemu-io writer gets in.  A vstor writer does not share write
# (a guest disk, like a QEMU virtio-blk device without share-rw), so it
# must see qemu-io's write lock and stay out.
check "qemu-io -f raw holds the raw image for write" \
	start_qemu_holder "$img" qemu-io -f raw "$img" -c "sleep 30000"
run qemu-io -f raw "$img" -c "read 0 512"
diag "with qemu-io -f raw writing, a second qemu-io writer" \
	"$([ "$rc" = 0 ] && echo "gets in" || echo "is refused")"
run_fails "a vstor writer is refused while qemu-io -f raw writes" \
	"$VBD_IO" "$img" read 0 512 0x5a
like "$err" "$lock_error" "the error names the file and the lock"
run_ok "a --share reader still gets in" "$VBD_IO" --share "$img" read 0 512 0x5a
stop_holder
