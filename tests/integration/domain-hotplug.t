#!/bin/bash
# Disk hot-plug on a running domain: vstor block-attach and block-detach.
#
# The guest (the test VM's kernel in domain-guest mode) watches
# /sys/block: for each disk that appears it prints its size, its
# read-only flag and the first bytes the host wrote, writes a pattern
# into a writable one (synced), and prints a marker when the disk goes.
# The host attaches a writable raw disk at xvdb, waits for the guest to
# report it, checks block-list, detaches it and waits for the guest to
# see it go; the guest's write is then in the image, serve no longer has
# it open and its socket is gone.  A read-only qcow2 disk at xvdc comes
# and goes the same way, read-only in the guest.  Refused: a vdev in use,
# a file that is already a disk of the domain, a vdev the domain lacks.
# A guest that cannot release a disk (paused) makes block-detach fail
# after its timeout with the disk still attached; a second block-detach,
# once the guest runs, completes.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"
# shellcheck source=tests/lib/domain.sh
. "$(dirname "$0")/../lib/domain.sh"

requires python3 qemu-img qemu-io "$VSTOR"
dom_requires

plan 39

S=$VSTOR_STATE_DIR
cat >"$T/guest.sh" <<'EOF2'
#!/bin/sh
# wait_until TEST...: up to 300 s.
wait_until() {
	i=0
	while ! "$@" && [ $i -lt 3000 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
echo "disks $(ls /sys/block | grep '^vd' | tr '\n' ' ')"
for round in 1 2; do
	wait_until test -e /sys/block/vdb
	wait_until test -b /dev/vdb
	echo "round $round vdb size $(cat /sys/block/vdb/size) ro $(cat /sys/block/vdb/ro)"
	echo "round $round reads $(head -c 12 /dev/vdb)"
	if [ "$(cat /sys/block/vdb/ro)" = 0 ]; then
		echo "guest-wrote-this" | dd of=/dev/vdb bs=512 seek=2048 conv=fsync 2>/dev/null &&
			echo "round $round written"
	fi
	wait_until test ! -e /sys/block/vdb
	echo "round $round vdb gone"
done
while :; do sleep 1; done
EOF2
dom_guest_initrd "$T/guest.sh" "$T/guest.cpio" || die "cannot build the guest's initramfs"
truncate -s 32M "$T/a.img"
truncate -s 48M "$T/hot.img"
printf 'host-pattern' | dd of="$T/hot.img" conv=notrunc status=none
qemu-img create -q -f qcow2 "$T/ro.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x61 0 4k' "$T/ro.qcow2" >/dev/null ||
	die "qemu-io cannot write the qcow2 image"

dom_cfg "$T/d1.cfg" name=d1 ramdisk="$T/guest.cpio" "disk=['raw:$T/a.img,xvda,w']"
run_ok "create d1" "$VSTOR" create "$T/d1.cfg"
if dom_wait_console d1 '^disks vda $' 400; then
	ok "the guest starts with one disk"
else
	not_ok "the guest starts with one disk"
fi
serve_pid=$("$VSTOR" list -l d1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["processes"]["serve"]["pid"])')

# Refusals first: nothing changes.
run_fails "attach at a vdev in use" "$VSTOR" block-attach d1 "raw:$T/hot.img,xvda,w"
like "$err" "already has a disk at vdev 'xvda'" "... says so"
run_fails "attach the file of xvda again" "$VSTOR" block-attach d1 "raw:$T/a.img,xvdc,r"
like "$err" "a.img.*already" "... says so"
run_fails "detach a vdev the domain lacks" "$VSTOR" block-detach d1 xvdq
like "$err" "domain 'd1' has no disk 'xvdq'" "... says so"

# Round 1: a writable raw disk.
run_ok "block-attach xvdb" "$VSTOR" block-attach d1 "raw:$T/hot.img,xvdb,w"
if dom_wait_console d1 '^round 1 vdb size 98304 ro 0$' 120; then
	ok "the guest sees the disk appear (48 MiB, writable)"
else
	not_ok "the guest sees the disk appear (48 MiB, writable)"
fi
if dom_wait_console d1 '^round 1 written$' 60; then
	ok "the guest wrote to it"
else
	not_ok "the guest wrote to it"
fi
check "the guest read what the host wrote" grep -qx "round 1 reads host-pattern" <(dom_out d1)
run_ok "block-list" "$VSTOR" block-list d1
like "$out" $'\nxvdb +w +connected +[^ ]*/xvdb.sock +raw:' "block-list: xvdb connected"
check "serve has hot.img open" eval "ls -l /proc/$serve_pid/fd | grep -q hot.img"
run_ok "block-detach xvdb" "$VSTOR" block-detach -t 120 d1 xvdb
if dom_wait_console d1 '^round 1 vdb gone$' 60; then
	ok "the guest sees the disk go"
else
	not_ok "the guest sees the disk go"
fi
is "$(dd if="$T/hot.img" bs=512 skip=2048 count=1 status=none | head -c 16)" "guest-wrote-this" \
	"the guest's write is in the image"
check "serve closed hot.img" eval "! ls -l /proc/$serve_pid/fd | grep -q hot.img"
rundir=$(dirname "$(dom_console_log d1)")
check "xvdb's socket is gone" test ! -e "$rundir/xvdb.sock"
run "$VSTOR" block-list d1
unlike "$out" "xvdb" "block-list no longer has xvdb"

# Round 2: a read-only qcow2 disk, at xvdc (the guest names it vdb: the
# next free name).
run_ok "block-attach xvdc read-only" "$VSTOR" block-attach d1 "qcow2:$T/ro.qcow2,xvdc,r"
if dom_wait_console d1 '^round 2 vdb size 32768 ro 1$' 120; then
	ok "the guest sees a read-only disk appear"
else
	not_ok "the guest sees a read-only disk appear"
fi
if dom_wait_console d1 '^round 2 reads aaaaaaaaaaaa$' 60; then
	ok "the guest reads the qcow2 disk's data"
else
	not_ok "the guest reads the qcow2 disk's data"
fi
run_ok "block-detach xvdc" "$VSTOR" block-detach d1 xvdc
if dom_wait_console d1 '^round 2 vdb gone$' 60; then
	ok "the guest sees it go"
else
	not_ok "the guest sees it go"
fi
check "serve closed ro.qcow2" eval "! ls -l /proc/$serve_pid/fd | grep -q ro.qcow2"
is "$(python3 -c 'import json,sys; print(",".join(d["vdev"] for d in json.load(open(sys.argv[1]))["disks"]))' "$S/domains/d1.json")" \
	"xvda" "the record holds xvda only"
# A guest that does not let go in time (paused): block-detach fails and
# the disk stays; once the guest runs again, a second block-detach
# finishes the job.
truncate -s 8M "$T/hot2.img"
run_ok "pause d1" "$VSTOR" pause d1
run_ok "block-attach xvdd to the paused domain" "$VSTOR" block-attach d1 "raw:$T/hot2.img,xvdd,r"
run_fails "block-detach -t 3 of a disk the guest cannot release" \
	"$VSTOR" block-detach -t 3 d1 xvdd
like "$err" "the guest did not release 'xvdd' within 3 s.*stays attached" "... says so"
like "$("$VSTOR" block-list d1)" $'\nxvdd +r ' "xvdd is still listed"
run_ok "unpause d1" "$VSTOR" unpause d1
run_ok "a second block-detach finishes" "$VSTOR" block-detach -t 120 d1 xvdd
unlike "$("$VSTOR" block-list d1)" "xvdd" "xvdd is gone from block-list"
check "serve closed hot2.img" eval "! ls -l /proc/$serve_pid/fd | grep -q hot2.img"

run_ok "destroy d1" "$VSTOR" destroy d1
dom_unfollow d1
is "$(dom_leftovers)" "" "nothing left running"
