#!/bin/bash
# vstor console (cli/console.c, hypervisor/console.c).
#
# First against a QEMU that serves its human monitor on a chardev socket,
# as a domain's QEMU serves the serial console: piped input reaches the
# peer and its answers come back; --until, --timeout and --exit-on-eof
# end the attachment; a peer that quits ends it; a socket nobody serves
# is a clear error.  On a terminal (a pty made by script(1)): raw mode
# (keys reach the peer unbuffered), Ctrl-] leaves, and the terminal's
# settings come back, also after SIGTERM.
#
# Then a real domain of `vstor create`: its guest waits for a line on
# ttyS0, `vstor console NAME` (and by domain ID) sends one and reads the
# guest's answer; once the domain ended, the console says so.
# shellcheck disable=SC2016 # single-quoted scripts run in another shell
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"
# shellcheck source=tests/lib/domain.sh
. "$(dirname "$0")/../lib/domain.sh"

requires qemu-system-x86_64 script stty timeout
dom_requires

plan 22

# hmp_start NAME: a QEMU without a machine whose monitor is served on
# $T/NAME.sock, logged to $T/NAME.log; its pid in $qpid.
hmp_start() {
	local i
	rm -f "$T/$1.sock"
	qemu-system-x86_64 -M none -nodefaults -no-user-config -display none \
		-name "peer-$1" \
		-chardev "socket,id=con0,path=$T/$1.sock,server=on,wait=off,logfile=$T/$1.log" \
		-mon chardev=con0,mode=readline </dev/null >"$T/$1.qemu" 2>&1 &
	qpid=$!
	cleanup_add kill -9 "$qpid"
	for ((i = 0; i < 100; i++)); do
		[ -S "$T/$1.sock" ] && return 0
		sleep 0.1
	done
	die "QEMU did not serve $T/$1.sock: $(cat "$T/$1.qemu")"
}

hmp_start m
S=$T/m.sock

# Piped input, --until: the answer to "info name" is the name.
run timeout 60 sh -c 'printf "info name\n" | "$0" console --socket "$1" --until peer-m -t 30' \
	"$VSTOR" "$S"
is "$rc" 0 "--until: seen, exit 0"
like "$out" 'QEMU [0-9.]+ monitor' "the peer's banner comes through"
like "$out" $'\npeer-m' "input reached the peer and its answer came back"

# --timeout with input that ends at once: the output is still shown,
# then the command leaves once nothing moves.
run timeout 60 "$VSTOR" console --socket "$S" -t 1 </dev/null
is "$rc" 0 "--timeout: leaves after the peer went quiet, exit 0"
like "$out" 'monitor' "... having shown what the peer said"

# --exit-on-eof: leave when the input ends.
run timeout 60 "$VSTOR" console --socket "$S" --exit-on-eof </dev/null
is "$rc" 0 "--exit-on-eof: leaves when the input ends"

# --until never seen and the peer goes away: exit 3.
run timeout 60 sh -c 'printf "quit\n" | "$0" console --socket "$1" --until NEVER-SEEN' \
	"$VSTOR" "$S"
is "$rc" 3 "--until not seen before the peer closed: exit 3"
wait "$qpid"
is "$?" 0 "the peer quit as asked"

run "$VSTOR" console --socket "$S"
is "$rc" 1 "a socket nobody serves: exit 1"
like "$err" "console socket $S: nobody serves it" "... with a message naming it"

run "$VSTOR" console --timeout 5x --socket "$S"
like "$rc:$err" "^1:.*--timeout: '5x' is not a number of seconds" "a bad --timeout is refused"
run "$VSTOR" console
like "$rc:$err" "^1:.*give one domain name or ID" "no domain: a usage error"

# On a terminal.  script(1) gives the command a pty; the feeder types
# into it.  In raw mode "info name\r" and Ctrl-] go through at once; in
# canonical mode the pty would hold them back waiting for a newline.
hmp_start t
cat >"$T/inpty.sh" <<EOF1
stty -g >"$T/before"
"$VSTOR" console --socket "$T/t.sock"
echo \$? >"$T/rc"
stty -g >"$T/after"
EOF1
feed() {
	local i
	sleep 1
	printf 'info name\r'
	for ((i = 0; i < 300; i++)); do
		grep -q 'peer-t' "$T/t.log" 2>/dev/null && break
		sleep 0.1
	done
	printf '\035'
	sleep 1
}
feed | timeout 120 script -qec "sh $T/inpty.sh" /dev/null >"$T/tty.out" 2>&1
is "$(cat "$T/rc" 2>/dev/null)" 0 "on a terminal, Ctrl-] leaves with exit 0"
like "$(tr -d '\r' <"$T/tty.out")" $'\npeer-t\n' "typed keys reached the peer in raw mode"
like "$(cat "$T/tty.out")" 'Ctrl-] leaves' "the terminal is told how to leave"
is "$(cat "$T/after" 2>/dev/null)" "$(cat "$T/before")" "the terminal's settings came back"

# SIGTERM while attached on a terminal: settings restored, exit 1.  (A
# background job of a shell without job control gets /dev/null as its
# input unless told otherwise: hence fd 3.)
cat >"$T/inpty2.sh" <<EOF2
stty -g >"$T/before2"
exec 3<&0
"$VSTOR" console --socket "$T/t.sock" <&3 &
pid=\$!
for i in \$(seq 100); do
	[ "\$(stty -g)" != "\$(cat "$T/before2")" ] && break
	sleep 0.1
done
stty -g >"$T/raw2"
kill -TERM \$pid
wait \$pid
echo \$? >"$T/rc2"
stty -g >"$T/after2"
EOF2
sleep 5 | timeout 120 script -qec "sh $T/inpty2.sh" /dev/null >"$T/tty2.out" 2>&1
[ "$(cat "$T/raw2" 2>/dev/null)" != "$(cat "$T/before2")" ] && mode=raw || mode=unchanged
is "$mode" raw "the console had put the terminal in raw mode"
is "$(cat "$T/rc2" 2>/dev/null)" 1 "SIGTERM ends the console with exit 1"
is "$(cat "$T/after2" 2>/dev/null)" "$(cat "$T/before2")" \
	"the terminal's settings came back after SIGTERM"

# A real domain: its guest answers lines typed on its console.
cat >"$T/guest.sh" <<'EOF3'
#!/bin/sh
echo "waiting for a line"
read -r line </dev/ttyS0
echo "answer: $(echo "$line" | tr a-z A-Z)"
read -r line </dev/ttyS0
echo "second: $(echo "$line" | tr a-z A-Z)"
EOF3
dom_guest_initrd "$T/guest.sh" "$T/guest.cpio"
dom_cfg "$T/c1.cfg" name=con1 ramdisk="$T/guest.cpio" memory=128 accel=tcg
run "$VSTOR" create "$T/c1.cfg"
[ "$rc" -eq 0 ] || diag "create: $err"
dom_wait_console con1 'waiting for a line' 300 || true
word=hello$RANDOM
run timeout 120 sh -c 'printf "%s\n" "$1" | "$0" console --until "answer: $2" -t 60 con1' \
	"$VSTOR" "$word" "${word^^}"
is "$rc" 0 "vstor console NAME: the guest's answer came back"
domid=$("$VSTOR" list | awk '$1 == "con1" { print $2 }')
run timeout 120 sh -c 'printf "%s\n" "$1" | "$0" console --until "second: $2" -t 60 "$3"' \
	"$VSTOR" "again$word" "AGAIN${word^^}" "$domid"
is "$rc" 0 "vstor console ID (domain $domid) works too"
dom_gone con1 120 || true
run "$VSTOR" console con1
like "$rc:$err" "^1:.*con1" "once the domain ended, vstor console says it is not there"
