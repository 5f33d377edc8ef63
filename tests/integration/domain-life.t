#!/bin/bash
# A domain's life: vstor create, list, pause, unpause, the console log,
# shutdown -w, destroy, and what vstor list does when a domain's monitor
# and QEMU were killed behind its back.
#
# d1 boots the test VM's kernel in domain-guest mode on a raw disk: the
# guest prints its disks on the console and waits; `vstor shutdown -w`
# presses the ACPI power button, the guest powers off and on_poweroff
# (destroy) removes the domain.  Along the way `vstor list` shows xl's
# columns with Domain-0 first, pause shows state p and unpause clears it.
# d2 is destroyed: no QEMU, serve or monitor process, no socket and no
# record is left.  d3 (on_crash destroy) and d4 (on_crash preserve) have
# their monitor and QEMU killed with SIGKILL: vstor list reports d3 as
# crashed and cleans it up, and shows d4 as crashed (c) until destroyed;
# d5 (on_crash restart) is started again by that list.  Before its
# shutdown, d1's monitor alone is killed: list gives it a new monitor,
# which then handles `vstor reboot` (the guest boots again in a fresh
# QEMU, on_reboot restart).  d6 reboots itself as soon as it runs: with
# on_reboot=preserve it is kept as shut down (s).  n1 has two vifs on a
# bridge of a private network namespace: its taps (vifID.0, vifID.1) are
# ports of the bridge, QEMU has the NICs with the generated and the given
# MAC, and the taps are gone after destroy.
# Every check of "nothing left" looks at /proc and the state folder.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"
# shellcheck source=tests/lib/domain.sh
. "$(dirname "$0")/../lib/domain.sh"

requires python3 unshare ip "$VSTOR"
dom_requires

plan 63

S=$VSTOR_STATE_DIR

cat >"$T/guest.sh" <<'EOF'
#!/bin/sh
echo "size $(cat /sys/block/vda/size)"
echo "ro $(cat /sys/block/vda/ro)"
while :; do sleep 1; done
EOF
dom_guest_initrd "$T/guest.sh" "$T/guest.cpio" || die "cannot build the guest's initramfs"
truncate -s 64M "$T/a.img" "$T/b.img" "$T/c.img" "$T/d.img" "$T/e.img"

# field NAME EXPR: a value from `vstor list -l NAME` (a Python expression
# on the record r).
field() {
	"$VSTOR" list -l "$1" 2>/dev/null | python3 -c "
import json, sys
r = json.load(sys.stdin)[0]
print($2)"
}

# alive PID START: the process is there, with that start time, not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	# shellcheck disable=SC2086 # the fields, split
	set -- "$2" $st
	[ "$2" != Z ] && [ "${21}" = "$1" ]
}

# nothing_left NAME ID PIDS...: none of the processes (pid:start) runs,
# and the domain has no record and no run folder (sockets, logs).
nothing_left() {
	local p bad=""
	for p in "${@:3}"; do
		alive "${p%%:*}" "${p##*:}" && bad="$bad process ${p%%:*}"
	done
	[ -e "$S/domains/$1.json" ] && bad="$bad record"
	[ -e "$S/run/$2" ] && bad="$bad run/$2: $(find "$S/run/$2" -mindepth 1 -printf '%f ')"
	[ -z "$bad" ] || diag "$1: left behind:$bad"
	[ -z "$bad" ]
}

# pids NAME: the domain's processes as pid:start words.
pids() {
	field "$1" '" ".join("%d:%d" % (p["pid"], p["start"]) for p in r["processes"].values())'
}

# --- d1: create, list, pause, console, shutdown -w ----------------------
dom_cfg "$T/d1.cfg" name=d1 ramdisk="$T/guest.cpio" "disk=['raw:$T/a.img,xvda,w']"
run_ok "create d1" "$VSTOR" create "$T/d1.cfg"
run_ok "list" "$VSTOR" list
is "$(head -1 <<<"$out")" "$(printf 'Name                                        ID   Mem VCPUs\tState\tTime(s)')" \
	"list: xl's header line"
like "$(sed -n 2p <<<"$out")" '^Domain-0 {32} {5}0 +[0-9]+ +[0-9]+     r-----  +[0-9]+\.[0-9]$' \
	"list: Domain-0 first, ID 0"
like "$(sed -n 3p <<<"$out")" '^d1 {38} {5}1 {3}256 {5}1     [-r][-b]----  +[0-9]+\.[0-9]$' \
	"list: d1 with ID 1, 256 MiB, 1 VCPU, running or blocked"
d1_procs=$(pids d1)

# d6 boots beside d1 and reboots itself at once: with on_reboot=preserve
# it must end kept as shut down (s), which on_poweroff (destroy) would
# not do.  Checked after d1.
printf '#!/bin/sh\nreboot -f\n' >"$T/reboot.sh"
dom_guest_initrd "$T/reboot.sh" "$T/reboot.cpio" || die "cannot build the rebooting initramfs"
dom_cfg "$T/d6.cfg" name=d6 ramdisk="$T/reboot.cpio" memory=128 on_reboot=preserve \
	"disk=['raw:$T/e.img,xvda,w']"
run_ok "create d6 (on_reboot preserve)" "$VSTOR" create "$T/d6.cfg"
d6_procs=$(pids d6)
is "$(wc -w <<<"$d1_procs")" 3 "the record names QEMU, serve and the monitor"
ok_all=yes
for p in $d1_procs; do alive "${p%%:*}" "${p##*:}" || ok_all=no; done
is "$ok_all" yes "the three processes of the record run"
qemu_pid=$(field d1 'r["processes"]["qemu"]["pid"]')
like "$(tr '\0' ' ' <"/proc/$qemu_pid/cmdline")" \
	"vhost-user-blk-pci,chardev=vd-xvda,id=xvda,num-queues=1,addr=0x8" \
	"QEMU has xvda as a vhost-user-blk device at slot 8"
like "$(tr '\0' ' ' <"/proc/$qemu_pid/cmdline")" "memory-backend-memfd,id=mem,size=256M,share=on" \
	"guest memory is a shared memfd"
is "$(stat -c %a "$S/run/1")" 700 "the run folder is private"

if dom_wait_marker d1 ready 400; then ok "the guest booted"; else not_ok "the guest booted"; fi
if dom_wait_console d1 '^size 131072$' 60; then
	ok "the console log shows the guest's output (its disk: 64 MiB)"
else
	not_ok "the console log shows the guest's output (its disk: 64 MiB)"
fi
if dom_wait_console d1 '^ro 0$' 60; then
	ok "xvda is writable in the guest"
else
	not_ok "xvda is writable in the guest"
fi

run_ok "pause d1" "$VSTOR" pause d1
run "$VSTOR" list d1
like "$(sed -n 2p <<<"$out")" '^d1 .* --p---  ' "list shows d1 paused (p)"
is "$(field d1 'r["state"]')" paused "the record says paused"
run_fails "shutdown refuses a paused domain" "$VSTOR" shutdown d1
like "$err" "paused" "... and says why"
run_ok "unpause d1" "$VSTOR" unpause d1
run "$VSTOR" list d1
like "$(sed -n 2p <<<"$out")" '^d1 .* [-r][-b]----  ' "list shows d1 running again"

# The monitor killed: QEMU runs on, and the next list gives it a new one.
old_mon=$(field d1 'r["processes"]["monitor"]["pid"]')
old_mon_start=$(field d1 'r["processes"]["monitor"]["start"]')
kill -KILL "$old_mon"
for ((i = 0; i < 100; i++)); do
	alive "$old_mon" "$old_mon_start" || break
	sleep 0.1
done
run_ok "list after the monitor was killed" "$VSTOR" list
like "$err" "domain 'd1': its monitor was gone; a new one took over" "list says so"
new_mon=$(field d1 '"%d %d" % (r["processes"]["monitor"]["pid"], r["processes"]["monitor"]["start"])')
check "a new monitor runs" eval "[ ${new_mon% *} != $old_mon ] && alive $new_mon"

# Reboot (handled by the new monitor): the power button, then on_reboot
# (restart) starts a fresh QEMU and the guest boots again.
qemu_before=$(field d1 'r["processes"]["qemu"]["pid"]')
run_ok "reboot d1" "$VSTOR" reboot d1
for ((i = 0; i < 600; i++)); do
	q=$(field d1 'r["processes"]["qemu"]["pid"]')
	[ -n "$q" ] && [ "$q" != 0 ] && [ "$q" != "$qemu_before" ] && break
	sleep 0.5
done
check "a new QEMU runs the domain" eval "[ -n '$q' ] && [ '$q' != '$qemu_before' ] && [ '$q' != 0 ]"
is "$(field d1 'r["restarts"]')" 1 "the record counts one restart"
booted_again() {
	[ "$(dom_console d1 | grep -c "^VSTOR-VM ${_dom_token[d1]} ready\$")" -ge 2 ]
}
for ((i = 0; i < 400 * 5; i++)); do
	booted_again && break
	_dom_follow d1
	sleep 0.2
done
check "the guest booted again" booted_again

# The guest's init may not watch the power button yet right after its
# second boot: press it again every 30 s, as an administrator would.
for ((i = 0; i < 10; i++)); do
	run "$VSTOR" shutdown -w -t 30 d1
	[ "$rc" = 0 ] && break
	# It went down just after the timeout: nothing left to press.
	"$VSTOR" list d1 >/dev/null 2>&1 || {
		rc=0
		break
	}
done
is "$rc" 0 "shutdown -w d1 (one or more presses)"
if dom_wait_marker d1 power-button 5; then ok "the guest saw the power button"; else not_ok "the guest saw the power button"; fi
dom_unfollow d1
run "$VSTOR" list
unlike "$out" $'\nd1 ' "d1 is no longer listed (on_poweroff destroy)"
# shellcheck disable=SC2086 # words
check "d1: no process, record or socket left" nothing_left d1 1 $d1_procs

# --- d6: the guest's own reboot, on_reboot preserve --------------------
for ((i = 0; i < 400 * 2; i++)); do
	[ "$(field d6 'r["state"]')" = shutdown ] && break
	sleep 0.5
done
like "$("$VSTOR" list d6 | sed -n 2p)" '^d6 +[0-9]+ +128 +1     ---s--  ' \
	"d6 rebooted itself and is kept as shut down (s)"
none=yes
# shellcheck disable=SC2086 # words
for p in $d6_procs; do alive "${p%%:*}" "${p##*:}" && none=no; done
is "$none" yes "d6's QEMU, serve and monitor are gone"
run_ok "destroy d6" "$VSTOR" destroy d6
# shellcheck disable=SC2086 # words
check "d6: nothing left" nothing_left d6 2 $d6_procs

# --- d2: destroy --------------------------------------------------------
dom_cfg "$T/d2.cfg" name=d2 ramdisk="$T/guest.cpio" memory=128 "disk=['raw:$T/b.img,xvda,w']"
run_ok "create d2" "$VSTOR" create "$T/d2.cfg"
like "$("$VSTOR" list d2 | sed -n 2p)" '^d2 +3 ' "d2 has ID 3 (IDs increase)"
d2_procs=$(pids d2)
ls "$S/run/3"/*.sock >"$T/d2.socks" 2>/dev/null
is "$(wc -l <"$T/d2.socks")" 5 "d2 has its five sockets (2 QMP, serve, console, xvda)"
run_ok "destroy d2" "$VSTOR" destroy d2
# shellcheck disable=SC2086 # words
check "d2: no process, record or socket left" nothing_left d2 3 $d2_procs
run_fails "destroy of a domain that is gone fails" "$VSTOR" destroy d2
like "$err" "no domain 'd2'" "... naming it"

# --- d3, d4: the monitor and QEMU killed --------------------------------
dom_cfg "$T/d3.cfg" name=d3 ramdisk="$T/guest.cpio" memory=128 "disk=['raw:$T/c.img,xvda,w']"
dom_cfg "$T/d4.cfg" name=d4 ramdisk="$T/guest.cpio" memory=128 on_crash=preserve \
	"disk=['raw:$T/d.img,xvda,w']"
run_ok "create d3 (on_crash destroy)" "$VSTOR" create "$T/d3.cfg"
run_ok "create d4 (on_crash preserve)" "$VSTOR" create "$T/d4.cfg"
d3_procs=$(pids d3)
d4_serve=$(field d4 '"%d:%d" % (r["processes"]["serve"]["pid"], r["processes"]["serve"]["start"])')
for d in d3 d4; do
	kill -KILL "$(field $d 'r["processes"]["monitor"]["pid"]')" \
		"$(field $d 'r["processes"]["qemu"]["pid"]')"
done
sleep 1
run_ok "list after the kills" "$VSTOR" list
unlike "$out" $'\nd3 ' "d3 is gone from the list (crashed, on_crash destroy)"
like "$err" "domain 'd3': QEMU died with no monitor to see it: crashed, destroy" \
	"list says d3 crashed"
# shellcheck disable=SC2086 # words
check "d3: serve stopped, no record or socket left" nothing_left d3 4 $d3_procs
like "$out" $'\nd4 +[0-9]+ +128 +1     ----c-  ' "d4 is listed as crashed (on_crash preserve)"
check "d4's serve was stopped (images closed)" \
	eval "! alive ${d4_serve%%:*} ${d4_serve##*:}"
run_ok "destroy the preserved d4" "$VSTOR" destroy d4

# --- d5: on_crash restart, with no monitor to do it ---------------------
dom_cfg "$T/d5.cfg" name=d5 ramdisk="$T/guest.cpio" memory=128 on_crash=restart \
	"disk=['raw:$T/d.img,xvda,w']"
run_ok "create d5 (on_crash restart)" "$VSTOR" create "$T/d5.cfg"
d5_qemu=$(field d5 'r["processes"]["qemu"]["pid"]')
kill -KILL "$(field d5 'r["processes"]["monitor"]["pid"]')" "$d5_qemu"
sleep 1
run_ok "list after the kills" "$VSTOR" list
like "$out" $'\nd5 +6 +128 +1     [-r][-b]----  ' "d5 is listed, running again"
d5_new=$(field d5 '"%d %d %d" % (r["processes"]["qemu"]["pid"], r["processes"]["qemu"]["start"], r["restarts"])')
check "a new QEMU runs d5, one restart counted" \
	eval "[ ${d5_new%% *} != $d5_qemu ] && alive ${d5_new% *} && [ ${d5_new##* } = 1 ]"
run_ok "destroy d5" "$VSTOR" destroy d5
check "d4: nothing left" nothing_left d4 5

# --- n1: vifs, on a bridge of a private network namespace ---------------
dom_cfg "$T/n1.cfg" name=n1 ramdisk="$T/guest.cpio" memory=128 "disk=['raw:$T/d.img,xvda,w']" \
	"vif=['bridge=br0', 'bridge=br0,mac=00:16:3e:aa:bb:cc,model=e1000']"
export T
rc=0
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -n bash -c '
	ip link add br0 type bridge && ip link set br0 up || exit 2
	"$VSTOR" create "$T/n1.cfg" 2>"$T/n1.err" || exit 3
	ip -o link show master br0 | awk -F": " "{ print \$2 }" | cut -d@ -f1 |
		sort | tr "\n" " " >"$T/n1.ports"
	q=$("$VSTOR" list -l n1 | python3 -c "import json, sys; print(json.load(sys.stdin)[0][\"processes\"][\"qemu\"][\"pid\"])")
	tr "\0" " " <"/proc/$q/cmdline" >"$T/n1.cmdline"
	"$VSTOR" destroy n1 || exit 4
	ip -o link show master br0 | wc -l >"$T/n1.after"
' >&3 2>&1 || rc=$?
is "$rc" 0 "n1 with two vifs starts and is destroyed in a network namespace"
like "$(cat "$T/n1.ports" 2>/dev/null)" '^vif([0-9]+)\.0 vif\1\.1 $' \
	"its taps vifID.0 and vifID.1 are ports of the bridge"
like "$(cat "$T/n1.cmdline" 2>/dev/null)" \
	"virtio-net-pci,netdev=net0,mac=00:16:3e:[0-9a-f:]{8},addr=0x3 .*e1000,netdev=net1,mac=00:16:3e:aa:bb:cc,addr=0x4" \
	"QEMU has a virtio NIC with a generated MAC and an e1000 with the given one"
is "$(cat "$T/n1.after" 2>/dev/null)" 0 "the taps are gone after destroy"
is "$(ls -A "$S/domains")" "" "the state folder holds no record"
