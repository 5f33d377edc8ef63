#!/bin/bash
# vstor create refuses a bad domain before anything starts, and a start
# that fails halfway leaves nothing behind.
#
# For each case: the command exits 1, stderr is one line that names the
# culprit (file, key, disk, domain), and afterwards no process names the
# test's folder beyond those of the one domain that runs on purpose (d1,
# for the "already running" and "disk in use" cases), the state folder
# holds only d1's record and run folder.  Cases: a config syntax error,
# a bad disk spec, a missing kernel, a missing disk, a disk named by a
# relative path (a restart may run in another folder), two disks on one
# vdev (twice the name, and xvda/sda which are one device), a partition
# as a vdev, a vif without a bridge, a name already running, a disk that
# another domain writes (by its path, and by a hard link to it), serve
# that cannot open a disk (a raw file called qcow2), QEMU that fails to
# start, and a state folder too long for socket paths.  Then the verbs
# on a domain that does not exist.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"
# shellcheck source=tests/lib/domain.sh
. "$(dirname "$0")/../lib/domain.sh"

requires python3 "$VSTOR"
dom_requires

CASES=15
VERBS="destroy shutdown reboot pause unpause block-list"
plan $((4 + CASES * 4 + 4 + $(wc -w <<<"$VERBS") * 2 + 2 + 12))

S=$VSTOR_STATE_DIR
printf '#!/bin/sh\nwhile :; do sleep 1; done\n' >"$T/guest.sh"
dom_guest_initrd "$T/guest.sh" "$T/guest.cpio" || die "cannot build the guest's initramfs"
truncate -s 16M "$T/a.img" "$T/b.img" "$T/c.img"
ln "$T/a.img" "$T/a-link.img"

# The domain that runs on purpose, paused so that it costs no CPU.
dom_cfg "$T/d1.cfg" name=d1 ramdisk="$T/guest.cpio" memory=64 "disk=['raw:$T/a.img,xvda,w']"
run_ok "create d1" "$VSTOR" create "$T/d1.cfg"
run_ok "pause d1" "$VSTOR" pause d1
# state_files: the records and run folders, on one line.
state_files() {
	{
		ls -A "$S/domains"
		ls -A "$S/run"
	} | tr '\n' ' '
}
baseline=$(dom_leftovers | awk '{ print $1 }' | sort | tr '\n' ' ')
is "$(wc -w <<<"$baseline")" 3 "d1 is three processes (QEMU, serve, monitor)"
is "$(state_files)" "d1.json 1 " "the state folder holds d1 only"

# The state folder and the processes are as with d1 alone.
only_d1() {
	local now files
	now=$(dom_leftovers | awk '{ print $1 }' | sort | tr '\n' ' ')
	files=$(state_files)
	if [ "$now" != "$baseline" ] || [ "$files" != "d1.json 1 " ]; then
		diag "processes: '$now' (expected '$baseline')" "state: '$files'"
		dom_leftovers >&2
		return 1
	fi
}

# refused NAME ERE CONFIG-ARGS...: a config from dom_cfg (name=e unless
# given) that vstor create refuses with one line matching ERE.
refused() {
	local name=$1 re=$2
	shift 2
	dom_cfg "$T/e.cfg" name=e ramdisk="$T/guest.cpio" memory=64 "$@"
	refused_cmd "$name" "$re" "$VSTOR" create "$T/e.cfg"
}

refused_cmd() {
	local name=$1 re=$2
	shift 2
	run_fails "$name: refused" "$@"
	like "$err" "$re" "$name: the message names it"
	is "$(wc -l <<<"$err")" 1 "$name: one line"
	check "$name: nothing left running or on disk" only_d1
}

# 1-7: the config itself.
refused "syntax" "e.cfg:[0-9]+: memory: .*12x" memory=12x "disk=['raw:$T/b.img,xvda,w']"
refused "disk spec" "bogus" "disk=['raw:$T/b.img,xvda,bogus']"
refused "missing kernel" "$T/no-such-kernel" kernel="$T/no-such-kernel" \
	"disk=['raw:$T/b.img,xvda,w']"
refused "missing disk" "$T/missing.img.*No such file" "disk=['raw:$T/missing.img,xvda,w']"
refused "relative disk path" "target 'b.img' is a relative path" "disk=['raw:b.img,xvda,w']"
refused "one vdev twice" "xvda" "disk=['raw:$T/b.img,xvda,w', 'raw:$T/c.img,xvda,w']"
refused "xvda and sda" "'sda' is the same device as 'xvda'" \
	"disk=['raw:$T/b.img,xvda,w', 'raw:$T/c.img,sda,w']"
refused "two partitions of one disk" "'xvda2' is the same device as 'xvda1'" \
	"disk=['raw:$T/b.img,xvda1,w', 'raw:$T/c.img,xvda2,w']"
# 8: a vif without bridge= (xl would use xenbr0; there is none here).
refused "vif without bridge" "vif 0: no bridge=.*not supported" \
	"disk=['raw:$T/b.img,xvda,w']" "vif=['mac=00:16:3e:00:00:01']"
# 9-11: clashes with d1.
refused "name running" "domain 'd1' already exists" name=d1 "disk=['raw:$T/b.img,xvda,w']"
refused "disk written by d1" "'$T/a.img' is already opened for writing by domain 'd1'" \
	"disk=['raw:$T/a.img,xvdb,w']"
refused "hard link to d1's disk" "a-link.img' is already opened for writing by domain 'd1'" \
	"disk=['raw:$T/a-link.img,xvda,r']"
# 12-13: starts that fail halfway: serve (a raw file is no qcow2), QEMU.
refused "serve fails" "vstor serve failed to start: .*b.img" "disk=['qcow2:$T/b.img,xvda,w']"
printf '#!/bin/sh\necho "fake-qemu: no such machine" >&2\nexit 1\n' >"$T/fake-qemu"
chmod +x "$T/fake-qemu"
dom_cfg "$T/e.cfg" name=e ramdisk="$T/guest.cpio" memory=64 "disk=['raw:$T/b.img,xvda,w']"
refused_cmd "QEMU fails" "QEMU failed to start: fake-qemu: no such machine" \
	env VSTOR_QEMU="$T/fake-qemu" "$VSTOR" create "$T/e.cfg"
# 14: socket paths that cannot fit a unix socket address.
long="$T/$(printf 'x%.0s' {1..100})"
refused_cmd "state folder too long" "is [0-9]+ bytes, more than the 107 .* VSTOR_STATE_DIR" \
	env VSTOR_STATE_DIR="$long" "$VSTOR" create "$T/e.cfg"
# After all that, e can start (nothing of the failures got in the way).
run_ok "e: create" "$VSTOR" create "$T/e.cfg"
run_ok "e: destroy" "$VSTOR" destroy e
check "e: nothing left" only_d1
is "$(find "$long/domains" "$long/run" -mindepth 1 | wc -l)" 0 \
	"nothing in the long state folder"

# The verbs, on a domain that does not exist.
for v in $VERBS; do
	run_fails "$v of an unknown domain" "$VSTOR" "$v" nosuch
	like "$err" "no domain 'nosuch'" "$v: says so"
done
run_ok "destroy d1" "$VSTOR" destroy d1
is "$(dom_leftovers | wc -l)/$(find "$S/domains" "$S/run" -mindepth 1 | wc -l)" "0/0" \
	"nothing left at all"

# A record that does not read back (here cut short, as by a disk that
# lost a write) names no processes to stop: list skips it and says how
# to get rid of it, destroy refuses it, destroy --force sets it aside
# (kept as .damaged) and frees the name.
printf '{"name": "d9", "domid": 9, "sta' >"$S/domains/d9.json"
run_ok "list with a damaged record" "$VSTOR" list
like "$err" "skipping a damaged record: $S/domains/d9.json: .*destroy --force d9" \
	"list names the damaged record and the way out"
run_fails "destroy refuses a damaged record" "$VSTOR" destroy d9
like "$err" "$S/domains/d9.json: .*destroy --force d9" "destroy names it and says --force"
is "$(ls -A "$S/domains" | tr '\n' ' ')" "d9.json " "the record is still there"
run_ok "destroy --force sets it aside" "$VSTOR" destroy --force d9
like "$err" "set aside as $S/domains/d9.json.damaged; no process was stopped" \
	"destroy --force says where it went and what it did not do"
is "$(ls -A "$S/domains" | tr '\n' ' ')" "d9.json.damaged " "kept as d9.json.damaged, d9.json gone"
run_ok "list after" "$VSTOR" list
is "$err" "" "list no longer warns"
run_fails "destroy --force of no domain fails" "$VSTOR" destroy --force d9
like "$err" "no domain 'd9'" "and says so"
