#!/bin/bash
# vstor serve --control: the JSON-lines control socket.
#
# A server starts with one qcow2 disk, an NBD export and a control
# socket (mode 0600).  Through the socket: list shows the disk and the
# export; add-disk adds a raw disk that NBD then serves by name
# (nbdinfo --list, qemu-io patterns written through NBD land in the
# image); stats count those operations and bytes; add-export starts a
# vhost-user export whose socket appears, remove-export stops it and the
# socket goes; a second NBD address comes and goes the same way.
# remove-disk, while a qemu-io client still holds an NBD
# connection to the disk, retires it: the reply comes once the image is
# closed, so QEMU can then take its write lock, and the disk is gone from
# list, stats and NBD.  Bad requests (malformed JSON, an array, unknown
# commands and fields, missing and mistyped fields, unknown disks and
# export types, a duplicate vdev or address, a missing image) each get
# {"ok":false} with a message naming the thing, and the same connection
# keeps working, as it does after 300 lines of random bytes; a line over
# 64 KiB closes only its connection.  Two clients work at once; a 17th
# is turned away.  quit stops the server: exit 0, nothing printed,
# sockets gone, the qcow2 image clean.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires python3 qemu-img qemu-io nbdinfo "$VSTOR"

plan 65

CTL=$T/ctl.sock
NBD=$T/nbd.sock
A=$T/a.qcow2
B=$T/b.raw
qemu-img create -q -f qcow2 "$A" 64M || die "qemu-img create failed"
qemu-img create -q -f raw "$B" 16M || die "qemu-img create failed"

# The control client: each argument is one request line; prints one reply
# line per request, all on one connection.
cat >"$T/ctl.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for line in sys.argv[2:]:
    f.write(line.encode() + b"\n")
    f.flush()
    reply = f.readline()
    if not reply:
        print("EOF")
        sys.exit(1)
    sys.stdout.write(reply.decode())
EOF

# ctl REQUEST...: $out holds the replies.
ctl() {
	run python3 "$T/ctl.py" "$CTL" "$@"
}

# jq-less field access: jget JSON PYEXPR (r = the parsed reply)
jget() {
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>&1
}

# wait_for PATH PID: the socket PATH exists, or the server died.  The
# bound only keeps a broken server from hanging the test.
wait_for() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

"$VSTOR" serve --control "$CTL" --nbd "unix:$NBD" \
	"format=qcow2,vdev=xvda,target=$A" >"$T/server.out" 2>"$T/server.err" &
pid=$!
cleanup_add kill -KILL "$pid"
wait_for "$CTL" "$pid" || die "server did not start: $(cat "$T/server.err")"

is "$(stat -c %a "$CTL")" 600 "the control socket is mode 0600"

ctl '{"cmd":"list"}'
like "$out" '^\{"ok":true' "list answers"
is "$(jget "$out" '[(d["name"], d["format"], d["size"], d["readonly"]) for d in r["disks"]]')" \
	"[('xvda', 'qcow2', 67108864, False)]" "list: the disk, its format, size, read-only flag"
is "$(jget "$out" '[(e["id"], e["type"], e["addr"]) for e in r["exports"]]')" \
	"[('nbd0', 'nbd', 'unix:$NBD')]" "list: the NBD export"

# Disks at run time.
ctl "{\"cmd\":\"add-disk\",\"spec\":\"raw:$B,xvdb,w\"}"
is "$out" '{"ok":true,"name":"xvdb"}' "add-disk adds a raw disk"
ctl "{\"cmd\":\"add-disk\",\"spec\":\"raw:$B,xvdb,w\"}"
like "$out" '^\{"ok":false,"error":".*xvdb.*already' "a second disk under one vdev is refused"
ctl "{\"cmd\":\"add-disk\",\"spec\":\"qcow2:$T/missing.qcow2,xvdc,w\"}"
like "$out" '^\{"ok":false,"error":".*missing\.qcow2' "a missing image is refused, named"
ctl '{"cmd":"add-disk","spec":"qcow2:/x,xvd0,w"}'
like "$out" '^\{"ok":false,"error":".*xvd0' "a bad spec is refused, naming the bad token"
ctl '{"cmd":"add-disk"}'
like "$out" "^\\{\"ok\":false,\"error\":\"missing field 'spec'\"" "add-disk without spec"
ctl '{"cmd":"add-disk","spec":42}'
like "$out" "^\\{\"ok\":false,\"error\":\"field 'spec' is not a string\"" "a spec that is not a string"

run nbdinfo --list "nbd+unix://?socket=$NBD"
like "$out" 'export="xvda".*export="xvdb"' "NBD lists both disks"

# I/O through NBD onto the new disk, then its statistics.
run_ok "qemu-io writes to xvdb through NBD" qemu-io -f raw \
	-c 'write -P 0x5a 1M 64k' -c 'write -P 0x33 0 4k' -c 'flush' \
	"nbd+unix:///xvdb?socket=$NBD"
run_ok "qemu-io reads the patterns back" qemu-io -f raw \
	-c 'read -P 0x5a 1M 64k' -c 'read -P 0x33 0 4k' \
	"nbd+unix:///xvdb?socket=$NBD"
like "$out" 'read 65536/65536' "the read went through"
ctl '{"cmd":"stats","name":"xvdb"}'
is "$(jget "$out" '(r["ok"], r["name"], r["ops"]["write"]["ops"], r["ops"]["write"]["bytes"], r["ops"]["write"]["errors"])')" \
	"(True, 'xvdb', 2, 69632, 0)" "stats: two writes of 68 KiB, no errors"
is "$(jget "$out" '(r["ops"]["read"]["bytes"] >= 69632, r["ops"]["flush"]["ops"] >= 1, r["in_flight"])')" \
	"(True, True, 0)" "stats: the reads and the flush, nothing in flight"
is "$(jget "$out" 'all(o["latency_max_ns"] >= o["latency_avg_ns"] and (o["ops"] == 0) == (o["latency_avg_ns"] == 0 and o["latency_max_ns"] == 0) or o["ops"] > 0 for o in r["ops"].values())')" \
	"True" "stats: latency average and maximum are consistent"
is "$(jget "$out" 'r["ops"]["write"]["latency_avg_ns"] > 0')" True "stats: writes took time"
ctl '{"cmd":"stats","name":"xvdz"}'
like "$out" "^\\{\"ok\":false,\"error\":\"no disk named 'xvdz'\"" "stats of an unknown disk"

# Exports at run time.
ctl "{\"cmd\":\"add-export\",\"type\":\"vhost-user\",\"disk\":\"xvdb\",\"addr\":\"$T/vu.sock\",\"opts\":\"num-queues=2\"}"
is "$(jget "$out" '(r["ok"], r.get("id"), r.get("error"))')" "(True, 'vhost-user-xvdb', None)" \
	"add-export starts a vhost-user export"
check "its socket exists" test -S "$T/vu.sock"
ctl '{"cmd":"list"}'
is "$(jget "$out" '[(e["id"], e.get("disk"), e.get("opts")) for e in r["exports"]]')" \
	"[('nbd0', None, None), ('vhost-user-xvdb', 'xvdb', 'num-queues=2')]" \
	"list shows both exports"
ctl "{\"cmd\":\"add-export\",\"type\":\"vhost-user\",\"disk\":\"xvdb\",\"addr\":\"$T/vu.sock\"}"
like "$out" '^\{"ok":false,"error":".*vhost-user-xvdb already uses' "a taken address is refused"
ctl "{\"cmd\":\"add-export\",\"type\":\"vhost-user\",\"addr\":\"$T/vu2.sock\"}"
like "$out" '^\{"ok":false,"error":".*name its disk.*2 disks' "a per-disk export needs its disk named when there are two"
ctl "{\"cmd\":\"add-export\",\"type\":\"vhost-user\",\"disk\":\"xvdq\",\"addr\":\"$T/vu2.sock\"}"
like "$out" "^\\{\"ok\":false,\"error\":\".*no disk named 'xvdq'\"" "an export of an unknown disk is refused"
ctl "{\"cmd\":\"add-export\",\"type\":\"iscsi\",\"addr\":\"$T/x.sock\"}"
like "$out" "^\\{\"ok\":false,\"error\":\"unknown export type 'iscsi'" "an unknown export type is refused"
ctl "{\"cmd\":\"add-export\",\"type\":\"vhost-user\",\"disk\":\"xvdb\",\"addr\":\"$T/nodir/vu.sock\"}"
like "$out" '^\{"ok":false,"error":".*nodir' "a socket in a missing directory is refused"
check "nothing was left behind" test ! -e "$T/vu2.sock" -a ! -e "$T/x.sock"
ctl '{"cmd":"remove-export","id":"vhost-user-xvdb"}'
is "$out" '{"ok":true}' "remove-export"
check "its socket is gone" test ! -e "$T/vu.sock"
ctl '{"cmd":"remove-export","id":"vhost-user-xvdb"}'
like "$out" "^\\{\"ok\":false,\"error\":\"no export with id 'vhost-user-xvdb'\"" "removing it again is an error"

# A second NBD address at run time serves every disk too.
ctl "{\"cmd\":\"add-export\",\"type\":\"nbd\",\"addr\":\"unix:$T/nbd2.sock\"}"
is "$out" '{"ok":true,"id":"nbd1"}' "add-export of a second NBD address"
run nbdinfo --size "nbd+unix:///xvdb?socket=$T/nbd2.sock"
is "$out" 16777216 "it serves xvdb"
ctl "{\"cmd\":\"add-export\",\"type\":\"nbd\",\"disk\":\"xvda\",\"addr\":\"$T/nbd3.sock\"}"
like "$out" '^\{"ok":false,"error":"nbd export .*serves every disk' "an NBD export takes no disk"
ctl '{"cmd":"remove-export","id":"nbd1"}'
is "$out" '{"ok":true}' "remove-export nbd1"
check "its socket is gone, the first one stays" test ! -e "$T/nbd2.sock" -a -S "$NBD"

# remove-disk while an NBD client holds a connection to it: qemu-io
# waits on a FIFO for its next command.
mkfifo "$T/qio.in"
qemu-io -f raw "nbd+unix:///xvdb?socket=$NBD" <"$T/qio.in" >"$T/qio.out" 2>&1 &
qio=$!
cleanup_add kill -KILL "$qio"
exec 5>"$T/qio.in"
echo 'read -P 0x33 0 4k' >&5
for ((i = 0; i < 300; i++)); do
	grep -qs 'read 4096/4096' "$T/qio.out" && break
	sleep 0.1
done
like "$(cat "$T/qio.out")" 'read 4096/4096' "a client holds a connection to xvdb"
ctl '{"cmd":"remove-disk","name":"xvdb"}'
is "$out" '{"ok":true}' "remove-disk while a client is connected"
run_ok "the image is closed and unlocked: QEMU takes its write lock" \
	qemu-io -f raw -c 'write -P 0x77 8M 4k' "$B"
echo 'read -P 0x33 0 4k' >&5
exec 5>&-
wait "$qio"
ctl '{"cmd":"list"}'
is "$(jget "$out" '[d["name"] for d in r["disks"]]')" "['xvda']" "list no longer shows xvdb"
run nbdinfo "nbd+unix:///xvdb?socket=$NBD"
check "NBD no longer serves xvdb" test "$rc" -ne 0
ctl '{"cmd":"remove-disk","name":"xvdb"}'
like "$out" "^\\{\"ok\":false,\"error\":\"no disk named 'xvdb'\"" "removing it again is an error"
ctl '{"cmd":"remove-disk","name":"xvda","wait-ms":"soon"}'
like "$out" "^\\{\"ok\":false,\"error\":\"field 'wait-ms' must be" "a mistyped wait-ms is refused"
run qemu-io -f raw -c 'read -P 0x5a 1M 64k' -c 'read -P 0x77 8M 4k' "$B"
like "$out" 'read 65536/65536.*read 4096/4096' "the writes through NBD are in the image"

# Bad input on one connection: each gets an error, the connection stays.
ctl 'not json' '[1,2]' '{"cmd":"launch"}' '{"cmd":"list","x":1}' '{}' \
	'{"cmd":"list"} trailing' '{"cmd":"list"}' '{"cmd":' '{"cmd":"stats","name":"xvda"}'
mapfile -t replies <<<"$out"
like "${replies[0]}" '^\{"ok":false,"error":"malformed JSON' "malformed JSON"
is "${replies[1]}" '{"ok":false,"error":"a request is a JSON object"}' "an array is not a request"
is "${replies[2]}" "{\"ok\":false,\"error\":\"unknown command 'launch'\"}" "an unknown command"
is "${replies[3]}" "{\"ok\":false,\"error\":\"unknown field 'x'\"}" "an unknown field"
is "${replies[4]}" "{\"ok\":false,\"error\":\"missing field 'cmd'\"}" "a request without cmd"
like "${replies[5]}" '^\{"ok":false,"error":"malformed JSON: text after' "text after the object"
like "${replies[6]}" '^\{"ok":true,"disks"' "the connection still works after errors"
like "${replies[7]}" '^\{"ok":false,"error":"malformed JSON' "a request cut short by its newline"
like "${replies[8]}" '^\{"ok":true,"name":"xvda"' "and still works"

# A line over 64 KiB closes its connection only; two clients at once.
run python3 - "$CTL" <<'EOF'
import socket, sys
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(sys.argv[1])
    return s, s.makefile("rwb")
a, fa = conn()
b, fb = conn()
fa.write(b'{"cmd":"list"}\n'); fa.flush()
fb.write(b'{"cmd":"stats","name":"xvda"}\n'); fb.flush()
print("b:", fb.readline().decode().strip()[:30])
print("a:", fa.readline().decode().strip()[:30])
fa.write(b'{"cmd":"list","pad":"' + b"x" * 70000 + b'"}\n'); fa.flush()
print("long:", fa.readline().decode().strip())
try:
    print("then:", repr(fa.readline()))
except ConnectionResetError:
    print("then: reset")
fb.write(b'{"cmd":"list"}\n'); fb.flush()
print("b again:", fb.readline().decode().strip()[:30])
EOF
like "$out" 'b: \{"ok":true,"name":"xvda".*a: \{"ok":true,"disks"' "two clients are served at once"
like "$out" 'long: \{"ok":false,"error":"request longer than 65536 bytes' "an over-long line gets an error"
like "$out" "then: (b''|reset)" "and its connection is closed"
like "$out" 'b again: \{"ok":true,"disks"' "the other client is unaffected"

# Garbage: random bytes (NULs included) on one connection; each line
# gets an error reply, then the connection and the server still work.
# Clients beyond 16 at once are turned away with a message.
run python3 - "$CTL" <<'EOF'
import json, random, socket, sys
random.seed(5)
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
f = s.makefile("rwb")
bad = 0
for i in range(300):
    line = bytes(random.randrange(256) for _ in range(random.randrange(1, 300)))
    line = line.replace(b"\n", b" ")
    if not line.strip(b" \t\r"):
        continue
    f.write(line + b"\n"); f.flush()
    r = json.loads(f.readline())
    bad += r["ok"] is False and isinstance(r["error"], str)
    for prefix in (b'{"cmd":"stats","name":"', b'{"cmd":"', b'{"'):
        f.write(prefix + line.replace(b'"', b"") + b'"}\n'); f.flush()
        r = json.loads(f.readline())
        bad += r["ok"] is False
f.write(b'{"cmd":"list"}\n'); f.flush()
print("garbage refused:", bad >= 300, "then:", f.readline().decode()[:12])
others = []
for i in range(16):
    c = socket.socket(socket.AF_UNIX); c.settimeout(60); c.connect(sys.argv[1])
    others.append(c)
print("17th:", others[-1].makefile("rb").readline().decode().strip())
EOF
like "$out" 'garbage refused: True then: \{"ok":true,' "random garbage gets error replies and the connection keeps working"
like "$out" '17th: \{"ok":false,"error":"too many control clients"\}' "a 17th client is turned away"

ctl '{"cmd":"quit"}'
is "$out" '{"ok":true}' "quit answers"
rc=0
for ((i = 0; i < 600; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
wait "$pid" || rc=$?
is "$rc" 0 "the server exits 0 after quit"
is "$(cat "$T/server.err")" "" "the server printed nothing"
check "the sockets are gone" test ! -e "$CTL" -a ! -e "$NBD"
qcow2_clean "the qcow2 is clean" "$A"
run_ok "vstor img check: clean" "$VSTOR" img check "$A"
