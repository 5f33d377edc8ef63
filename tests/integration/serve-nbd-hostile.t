#!/bin/bash
# Hostile NBD clients against vstor serve --nbd (the ASan/UBSan build when
# there is one: $VSTOR_ASAN, else asan/vstor beside $VSTOR).
#
# tests/tools/nbd-hostile.py speaks the protocol by hand and breaks one
# thing per case: option and request magic, client flags, unknown and
# withdrawn options, an option of 1 MiB, options and payloads cut off by
# a disconnect, lying lengths inside GO/INFO and the meta-context
# options, unknown exports, STARTTLS, reads and writes past the end or
# at 2^64 - 512, a READ of 64 MiB and a WRITE of 4 GiB, unknown commands
# and flags, BLOCK_STATUS without a context, random bytes after GO, 200
# requests on the wire at once, 8 writes of 32 MiB at once (more than a
# connection buffers), writes to a read-only disk, more connections than
# allowed, a client that never reads its replies.  Each gets its error
# reply (the case checks the exact error) or a closed connection.
# Meanwhile a well-behaved client keeps its connection open and reads
# back what it wrote when the hostile ones are done; the server is still
# up, serves nbdinfo, stops on SIGTERM (the stalled client still
# connected) with exit 0 and prints no sanitizer report; the qcow2 it
# served is clean.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires nbdinfo qemu-img python3 "$VSTOR"

HOSTILE=$(cd "$(dirname "$0")/../tools" && pwd)/nbd-hostile.py
SERVE=${VSTOR_ASAN:-$(dirname "$VSTOR")/asan/vstor}
if [ ! -x "$SERVE" ]; then
	diag "no ASan build at $SERVE: running $VSTOR (make BUILD=build/asan SANITIZE=address,undefined build/asan/vstor)"
	SERVE=$VSTOR
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

MiB=1048576
GARBAGE=12

plan $((22 + GARBAGE + 6))

"$VSTOR" img create -f raw "$T/a.raw" 32M >/dev/null || die "create"
"$VSTOR" img create -f qcow2 "$T/b.qcow2" 64M >/dev/null || die "create"
"$VSTOR" img create -f raw "$T/c.raw" 1M >/dev/null || die "create"
qemu-io -f qcow2 -c "write -P 0x33 0 4M" "$T/b.qcow2" >/dev/null ||
	die "qemu-io"

sock=$T/nbd.sock
small=$T/small.sock
"$SERVE" serve --pidfile "$T/pid" --nbd "$sock" \
	--nbd "$small,max-connections=4" "raw:$T/a.raw,xvda,w" \
	"qcow2:$T/b.qcow2,xvdb,w" "raw:$T/c.raw,xvdc,r" \
	>"$T/serve.out" 2>"$T/serve.err" &
pid=$!
cleanup_add kill -KILL "$pid"
for ((i = 0; i < 600; i++)); do
	[ -s "$T/pid" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
[ -s "$T/pid" ] || die "the server did not start: $(cat "$T/serve.err")"

# The well-behaved client, connected through everything below.
python3 "$HOSTILE" "$sock" hold xvdb $((64 * MiB)) "$T/flag" \
	2>"$T/hold.err" &
hold=$!
cleanup_add kill -KILL "$hold"

# A client that sends reads and never reads the replies: its connection
# stalls, nobody else's does, and SIGTERM still stops the server.
python3 "$HOSTILE" "$sock" stall xvda >"$T/stall.out" 2>&1 &
stall=$!
cleanup_add kill -KILL "$stall"
for ((i = 0; i < 300; i++)); do
	grep -q stalled "$T/stall.out" && break
	sleep 0.1
done

hostile() {
	local name=$1
	shift
	run python3 "$HOSTILE" "$sock" "$@"
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name" "$err"
	fi
}

hostile "bad option magic: closed" option-bad-magic
hostile "unknown client flags: closed" client-flags
hostile "unknown and withdrawn options: ERR_UNSUP" option-unknown
hostile "a 1 MiB option: ERR_TOO_BIG, closed" option-too-big
hostile "disconnect in the middle of an option" option-short
hostile "STARTTLS: ERR_POLICY" starttls
hostile "EXPORT_NAME: 124 zeros, simple replies; unknown: closed" \
	export-name xvdb $((64 * MiB))
hostile "GO/INFO with lying lengths: ERR_INVALID" go-malformed xvda
hostile "meta context options with lying lengths" meta-malformed xvdb
hostile "OPT_LIST names the three disks" list xvda xvdb xvdc
hostile "bad requests on raw get their errors" requests xvda $((32 * MiB))
hostile "bad requests on qcow2 get their errors" requests xvdb $((64 * MiB))
hostile "bad requests on a read-only disk" requests xvdc $MiB
hostile "bad request magic: closed" request-bad-magic xvdb
hostile "a 4 GiB write: EINVAL, closed" write-too-big xvda
hostile "disconnect in the middle of a write payload" write-short xvdb
hostile "200 requests in flight, each answered once" deep xvdb \
	$((64 * MiB))
hostile "a read-only disk: EPERM for every write" readonly xvdc
hostile "8 writes of 32 MiB at once, then a 32 MiB read" big xvda
for ((s = 1; s <= GARBAGE; s++)); do
	hostile "random bytes after GO (seed $s)" garbage xvda "$s"
done
run python3 "$HOSTILE" "$small" flood xvda 4
if [ "$rc" -eq 0 ]; then
	ok "max-connections: the connections past it are closed"
else
	not_ok "max-connections: the connections past it are closed" "$err"
fi
check "the server is still running" kill -0 "$pid"
check "the stalled client is still connected" kill -0 "$stall"

touch "$T/flag"
rc=0
wait "$hold" || rc=$?
is "$rc" 0 "the well-behaved client read back what it wrote"
[ "$rc" -eq 0 ] || diag "$(cat "$T/hold.err")"
run_ok "nbdinfo still works" nbdinfo --size "nbd+unix:///xvdb?socket=$sock"
is "$out" $((64 * MiB)) "and sees the size"

kill -TERM "$pid"
for ((i = 0; i < 600; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
rc=0
wait "$pid" || rc=$?
is "$rc" 0 "SIGTERM, with the stalled client connected: exit 0"
unlike "$(cat "$T/serve.err")" "AddressSanitizer|LeakSanitizer|runtime error" \
	"no sanitizer report"
run_ok "the qcow2 is clean" "$VSTOR" img check "$T/b.qcow2"
