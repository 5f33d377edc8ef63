#!/bin/bash
# vstor serve: life cycle, signals and start-up errors.
#
# SIGTERM (and SIGINT) while a client writes through NBD: the server
# exits 0, the image is clean for `vstor img check` and qemu-img check,
# the pidfile and the sockets are gone, and what the client had written
# before reads back.  SIGKILL during writes: the image has at most
# leaked clusters, which `vstor img check -r leaks` repairs.
# --daemonize returns only once the exports listen (NBD answers at
# once), the pidfile names the daemon and nothing else is left in its
# directory; SIGTERM stops the daemon and removes both.  Start-up errors
# (a missing image, a bad spec, a duplicate vdev, a socket in a missing
# directory, an export naming an unknown vdev, a control socket in a
# missing directory), in the foreground and with --daemonize: exit 1,
# one message naming the culprit, no socket, no pidfile, and the image
# unlocked.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires python3 qemu-img qemu-io nbdinfo nbdcopy "$VSTOR"

plan 74

IMG=$T/disk.qcow2
SPEC="format=qcow2,vdev=xvda,target=$IMG"
NBD=$T/nbd.sock
CTL=$T/ctl.sock
PID=$T/serve.pid

# A source of data for the writers: 64 MiB of random bytes.
head -c $((64 << 20)) /dev/urandom >"$T/data" || die "no random data"

# wait_for TEST PATH PID: `test TEST PATH` holds, or the server died.
# The bound only keeps a broken server from hanging the test.
wait_for() {
	local i
	for ((i = 0; i < 600; i++)); do
		test "$1" "$2" && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# wait_exit PID: wait for the process to end (bounded); sets $rc.
wait_exit() {
	local i
	rc=0
	for ((i = 0; i < 600; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && kill -KILL "$1"
	wait "$1" || rc=$?
}

# writes_seen: the control socket's stats show writes done.
writes_seen() {
	python3 - "$CTL" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rwb")
f.write(b'{"cmd":"stats","name":"xvda"}\n')
f.flush()
r = json.loads(f.readline())
sys.exit(0 if r["ops"]["write"]["ops"] >= 8 else 1)
EOF
}

# start_writer: nbdcopy of the random data onto the disk, in the
# background; returns once the server has seen writes.  Sets $writer.
start_writer() {
	local i
	nbdcopy --request-size=65536 --requests=8 --connections=1 \
		"$T/data" "nbd+unix:///xvda?socket=$NBD" \
		>"$T/writer.out" 2>&1 &
	writer=$!
	cleanup_add kill -KILL "$writer"
	for ((i = 0; i < 600; i++)); do
		writes_seen && return 0
		kill -0 "$writer" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_server: the foreground server with NBD, control and pidfile, in
# the background; sets $pid.
start_server() {
	"$VSTOR" serve --nbd "$NBD" --control "$CTL" --pidfile "$PID" \
		"$@" "$SPEC" >"$T/server.out" 2>"$T/server.err" &
	pid=$!
	cleanup_add kill -KILL "$pid"
	wait_for -s "$PID" "$pid"
}

nothing_left() {
	test ! -e "$NBD" -a ! -e "$CTL" -a ! -e "$PID" &&
		[ -z "$(find "$T" -maxdepth 1 -name 'serve.pid.*' -o \
			-maxdepth 1 -name '*.sock*')" ]
}

# --- SIGTERM while a client writes ---------------------------------------
qemu-img create -q -f qcow2 "$IMG" 64M || die "qemu-img create failed"
check "the server starts" start_server
is "$(cat "$PID")" "$pid" "the pidfile holds the server's pid"
check "the NBD socket is mode 0600" test "$(stat -c %a "$NBD")" = 600
check "a client is writing" start_writer
kill -TERM "$pid"
wait_exit "$pid"
is "$rc" 0 "SIGTERM during writes: exit 0"
is "$(cat "$T/server.err")" "" "nothing printed"
check "the pidfile and the sockets are gone" nothing_left
wait "$writer" 2>/dev/null
run_ok "vstor img check: clean" "$VSTOR" img check "$IMG"
qcow2_clean "qemu-img check: clean" "$IMG"
# What was acknowledged before the signal is in the image: the first
# 512 KiB went in order, long before the server saw eight writes.
run qemu-img convert -f qcow2 -O raw "$IMG" "$T/out.raw"
check "the first writes are in the image" \
	cmp -n $((512 << 10)) "$T/data" "$T/out.raw"

# --- SIGINT, idle ---------------------------------------------------------
check "restarted" start_server
kill -INT "$pid"
wait_exit "$pid"
is "$rc" 0 "SIGINT: exit 0"
check "the pidfile and the sockets are gone" nothing_left
run_ok "the image is clean" "$VSTOR" img check "$IMG"

# --- SIGKILL during writes ------------------------------------------------
rm -f "$IMG"
qemu-img create -q -f qcow2 -o cluster_size=4096 "$IMG" 64M ||
	die "qemu-img create failed"
check "started again" start_server
check "a client is writing" start_writer
# bash reports "Killed" for its job on stderr: not a test failure.
exec 4>&2 2>/dev/null
kill -KILL "$pid"
wait_exit "$pid"
exec 2>&4 4>&-
is "$rc" 137 "SIGKILL: killed"
wait "$writer" 2>/dev/null
rm -f "$NBD" "$CTL" "$PID"
run "$VSTOR" img check "$IMG"
check "vstor img check: at most leaks (exit 0 or 3)" test "$rc" -eq 0 -o "$rc" -eq 3
unlike "$out$err" '(ERROR|corrupt)' "no errors, only leaks"
run_ok "vstor img check -r leaks repairs" "$VSTOR" img check -r leaks "$IMG"
qcow2_clean "then qemu-img check finds it clean" "$IMG"
run_ok "and vstor img check too" "$VSTOR" img check "$IMG"

# --- --daemonize and --pidfile --------------------------------------------
run "$VSTOR" serve --daemonize --pidfile "$PID" --nbd "unix:$NBD" \
	--control "$CTL" "$SPEC"
is "$rc" 0 "--daemonize returns 0"
is "$out$err" "" "and prints nothing"
dpid=$(cat "$PID" 2>/dev/null)
like "$dpid" '^[0-9]+$' "the pidfile holds a pid"
# Never 0 or empty below: `kill 0` would signal this test's own process
# group.  A pid above any pid_max only makes the kills fail.
[[ $dpid =~ ^[1-9][0-9]*$ ]] || dpid=999999999
cleanup_add kill -KILL "$dpid"
check "the daemon runs" kill -0 "$dpid"
check "it is in its own session" \
	test "$(ps -o sid= -p "$dpid" | tr -d ' ')" = "$dpid"
run_ok "NBD answers as soon as --daemonize returned" \
	nbdinfo --size "nbd+unix:///xvda?socket=$NBD"
is "$out" 67108864 "the disk's size"
check "no temporary pidfile is left" \
	test -z "$(find "$T" -maxdepth 1 -name 'serve.pid.*')"
kill -TERM "$dpid"
for ((i = 0; i < 600; i++)); do
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.1
done
check "SIGTERM stops the daemon" test ! -d "/proc/$dpid"
check "the pidfile and the sockets are gone" nothing_left
run_ok "the image is clean" "$VSTOR" img check "$IMG"

# --- start-up errors ------------------------------------------------------
# startup_fails NAME PATTERN ARGS...: exit 1, exactly one line on
# stderr matching PATTERN, nothing left, and the image not locked.
startup_fails() {
	local name=$1 pattern=$2
	shift 2
	run timeout 60 "$VSTOR" serve --pidfile "$PID" "$@"
	is "$rc" 1 "$name: exit 1"
	if [[ $err =~ $pattern ]] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]; then
		ok "$name: one message naming it"
	else
		not_ok "$name: one message naming it" "stderr: $err" \
			"expected one line matching /$pattern/"
	fi
	check "$name: nothing left behind" nothing_left
}

startup_fails "missing image" "$T/missing\\.qcow2" --nbd "$NBD" \
	"format=qcow2,vdev=xvda,target=$T/missing.qcow2"
startup_fails "bad spec" "frobnicate" --nbd "$NBD" \
	"format=qcow2,vdev=xvda,frobnicate=1,target=$IMG"
startup_fails "duplicate vdev" "xvda.*already" --nbd "$NBD" "$SPEC" \
	"format=raw,vdev=xvda,target=$T/data"
startup_fails "socket in a missing directory" "$T/nodir/vu\\.sock" \
	--nbd "$NBD" --vhost-user "$T/nodir/vu.sock" "$SPEC"
startup_fails "export naming an unknown vdev" "no disk named 'xvdq'" \
	--nbd "$NBD" --vhost-user "xvdq=$T/vu.sock" "$SPEC"
startup_fails "control socket in a missing directory" "$T/nodir/ctl\\.sock" \
	--nbd "$NBD" --control "$T/nodir/ctl.sock" "$SPEC"
startup_fails "pidfile in a missing directory" "$T/nodir/serve\\.pid" \
	--nbd "$NBD" "$SPEC" --pidfile "$T/nodir/serve.pid"
run_ok "after all that, the image is not locked" \
	qemu-io -f qcow2 -c 'write -P 1 0 4k' "$IMG"

# The same through --daemonize: the parent reports the child's error.
startup_fails "--daemonize, missing image" "$T/missing\\.qcow2" --daemonize \
	--nbd "$NBD" "format=qcow2,vdev=xvda,target=$T/missing.qcow2"
startup_fails "--daemonize, bad export" "$T/nodir/vu\\.sock" --daemonize \
	--nbd "$NBD" --vhost-user "$T/nodir/vu.sock" "$SPEC"

# --- usage ------------------------------------------------------------------
run_ok "vstor help serve" "$VSTOR" help serve
like "$out" '^Usage: vstor serve ' "prints the usage"
is "$out" "$("$VSTOR" serve --help)" "--help and 'help serve' agree"
run_ok "vstor --help" "$VSTOR" --help
like "$out" $'\n  serve +serve disks' "lists serve"
# usage_fails NAME PATTERN ARGS...: exit 1, one message and the hint.
usage_fails() {
	local name=$1 pattern=$2
	shift 2
	run "$VSTOR" serve "$@"
	if [ "$rc" -eq 1 ] && [[ $err =~ ^vstor:\ [^$'\n']*${pattern}[^$'\n']*$'\n'"Try 'vstor help serve'."$ ]]; then
		ok "$name"
	else
		not_ok "$name" "exit $rc" "stderr: $err"
	fi
}
usage_fails "no disk" "no DISKSPEC" --nbd "$NBD"
usage_fails "no export" "nothing to serve on" "$SPEC"
usage_fails "a VDEV for NBD" "NBD serves every disk" --nbd "xvda=$NBD" "$SPEC"
usage_fails "an empty VDEV" "empty VDEV" --fuse "=$T/f" "$SPEC"
usage_fails "an empty address" "no address" --vhost-user "xvda=,num-queues=2" "$SPEC"
run "$VSTOR" serve --bogus "$SPEC"
is "$rc" 1 "an unknown option: exit 1"
run "$VSTOR" serve --nbd "$NBD" --vhost-user "$T/vu.sock,num-queues=2,frob=1" "$SPEC"
like "$rc:$err" "^1:vstor: .*frob" "an unknown export option is refused by its transport"
check "nothing left behind" nothing_left
