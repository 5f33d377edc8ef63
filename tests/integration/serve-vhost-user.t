#!/bin/bash
# vhost-user-blk: a real guest (the test VM under QEMU TCG) on the socket
# of `vstor serve --vhost-user`.
#
# The guest's memory is a shared memfd, so the backend maps it.  In the
# guest: the disk has the size of the image and as many queues as asked;
# mkfs.ext4, files written (one writer per virtual CPU, so that every
# queue carries I/O), sync, a large file removed and `fstrim`, umount,
# `e2fsck -fn` clean, and the files read back after a remount give the
# checksums they were written with.  On the host, once the server has
# stopped on SIGTERM (exit status 0): the ranges the large file occupied
# are no longer data in `vstor img map` (the discard freed the clusters
# of a qcow2 or punched holes in a raw file), the image passes e2fsck,
# debugfs reads every file with its checksum, and a qcow2 image is clean
# for `vstor img check` and `qemu-img check`.
#
# vstor's device offers a write-back cache (so the guest flushes),
# discard and write zeroes; a range zeroed from the guest reads back as
# zeros.
#
# The same guest test runs first against qemu-storage-daemon's
# vhost-user-blk export on the same socket path: that proves the test.
# Then vstor: a qcow2 disk with one queue, with two queues (and two
# virtual CPUs), and a raw disk (with the ASan build when there is one).
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

requires qemu-storage-daemon qemu-img e2fsck debugfs python3 "$VSTOR"
vm_requires

# name|server|format|queues
CASES=(
	"qsd-qcow2-2q|qsd|qcow2|2"
	"vstor-qcow2|vstor|qcow2|1"
	"vstor-qcow2-2q|vstor|qcow2|2"
	"vstor-raw|vstor-asan|raw|1"
)
# The raw case runs the ASan/UBSan build of vstor when there is one
# (make check builds it beside $VSTOR): a sanitizer report, or a leak at
# exit, fails "the server exits 0".
VSTOR_ASAN=${VSTOR_ASAN:-$(dirname "$VSTOR")/asan/vstor}
PER_CASE=12
plan $((${#CASES[@]} * PER_CASE))

SIZE_MB=200
SOCK=$T/vhost.sock

cat >"$T/guest.sh" <<'EOF'
#!/bin/bash
# The guest half: prints "key value" lines that the host checks.
set -u
fail() {
	echo "FAIL: $*"
	exit 1
}
echo "size $(cat /sys/block/vda/size)"
echo "queues $(ls /sys/block/vda/mq | wc -l)"
q=/sys/block/vda/queue
echo "cache $(cat $q/write_cache)"
echo "limits discard=$(($(cat $q/discard_max_bytes) > 0)) write-zeroes=$(($(cat $q/write_zeroes_max_bytes) > 0))"
# Write zeroes over a pattern in the last MiB; it must read back as zeros.
last=$(($(cat /sys/block/vda/size) / 2048 - 1))
dd if=/dev/urandom of=/dev/vda bs=1M seek=$last count=1 conv=fsync status=none
blkdiscard -z -o $((last << 20)) -l 1M /dev/vda || fail "blkdiscard -z"
echo "zeroed $(dd if=/dev/vda bs=1M skip=$last count=1 iflag=direct status=none |
	tr -d '\0' | wc -c)"
mkfs.ext4 -q -F -b 4096 /dev/vda || fail "mkfs.ext4"
mount /dev/vda /mnt || fail "mount"
head -c 3M /dev/urandom >/mnt/a.bin
mkdir /mnt/dir && head -c 100001 /dev/urandom >/mnt/dir/b.bin
echo "hello from the guest" >/mnt/hello.txt
# One writer per CPU, each pinned and syncing its own file: blk-mq maps
# a CPU to a queue, so with several queues every one carries requests.
n=$(nproc)
for ((c = 0; c < n; c++)); do
	taskset -c "$c" dd if=/dev/urandom of="/mnt/cpu$c.bin" bs=64k count=64 \
		conv=fsync status=none &
done
wait || fail "a writer failed"
files="a.bin dir/b.bin hello.txt"
for ((c = 0; c < n; c++)); do files="$files cpu$c.bin"; done
for f in $files; do
	echo "wrote $(sha256sum <"/mnt/$f" | cut -d' ' -f1) $f"
done

# A large file: where it lies on the disk (filefrag -b512 counts 512-byte
# units), then removed and trimmed.
head -c 24M /dev/urandom >/mnt/big.bin && sync || fail "big.bin"
filefrag -e -b512 /mnt/big.bin |
	awk '$1 ~ /^[0-9]+:$/ { sub(/\.\.$/, "", $4); sub(/:$/, "", $6);
		print "extent", $4 * 512, $6 * 512 }'
rm /mnt/big.bin && sync
fstrim -v /mnt || fail "fstrim"
umount /mnt || fail "umount"
e2fsck -fn /dev/vda >/tmp/fsck.log 2>&1
echo "fsck $?"
cat /tmp/fsck.log

# Read back from the disk, not the page cache.
mount -o ro /dev/vda /mnt || fail "mount again"
for f in $files; do
	echo "read $(sha256sum <"/mnt/$f" | cut -d' ' -f1) $f"
done
umount /mnt || fail "umount again"
exit 0
EOF

# check-map.py MAP.json EXTENTS ALIGN: every ALIGN-aligned range inside an
# extent that the guest discarded must be data:false in the map.  Prints
# the discarded bytes checked, or the offending map entries.
cat >"$T/check-map.py" <<'EOF'
import json, sys
entries = json.load(open(sys.argv[1]))
align = int(sys.argv[3])
checked, bad = 0, []
for line in open(sys.argv[2]):
    start, length = (int(x) for x in line.split())
    lo = -(-start // align) * align
    hi = (start + length) // align * align
    if hi <= lo:
        continue
    checked += hi - lo
    for e in entries:
        if e["start"] < hi and e["start"] + e["length"] > lo and e["data"]:
            bad.append("%d+%d is data inside discarded %d..%d"
                       % (e["start"], e["length"], lo, hi))
for b in bad[:10]:
    print(b)
print("checked %d" % checked)
sys.exit(1 if bad else 0)
EOF

srv_pid=
# start_server LOG CMD...: run a server in the background and wait until
# its socket is there (or it died).
start_server() {
	local log=$1 i
	shift
	rm -f "$SOCK"
	echo "+ $* &" >&3
	"$@" >"$log" 2>&1 &
	srv_pid=$!
	cleanup_add kill -KILL "$srv_pid"
	for ((i = 0; i < 600; i++)); do
		[ -S "$SOCK" ] && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	diag "the server did not listen on $SOCK: $(tail -5 "$log")"
	return 1
}

# stop_server: SIGTERM and the server's exit status.  A server that
# still runs a minute later is killed (a hang is not a clean stop).
stop_server() {
	local st=0 i
	kill -TERM "$srv_pid" 2>/dev/null
	for ((i = 0; i < 600; i++)); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$srv_pid" 2>/dev/null; then
		diag "the server ignored SIGTERM; killed"
		kill -KILL "$srv_pid"
	fi
	wait "$srv_pid" || st=$?
	return "$st"
}

# value KEY: the value of the guest's "KEY value" line.
value() { sed -n "s/^$1 //p" <<<"$vm_out" | head -1; }

run_case() {
	local name=$1 server=$2 fmt=$3 queues=$4 img="$T/$1.$3" st=0 rc=0
	local smp=1 raw sums bad f sum

	if [ "$fmt" = qcow2 ]; then
		qemu-img create -q -f qcow2 "$img" "${SIZE_MB}M"
	else
		truncate -s "${SIZE_MB}M" "$img"
	fi
	case $server in
	qsd)
		start_server "$T/$name.server.log" qemu-storage-daemon \
			--blockdev driver=file,node-name=f,filename="$img",discard=unmap \
			--blockdev driver="$fmt",node-name=d,file=f,discard=unmap \
			--export type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path="$SOCK",writable=on,num-queues="$queues"
		;;
	vstor*)
		local opt='' bin=$VSTOR
		[ "$queues" -eq 1 ] || opt=",num-queues=$queues"
		if [ "$server" = vstor-asan ]; then
			if [ -x "$VSTOR_ASAN" ]; then
				bin=$VSTOR_ASAN
			else
				diag "$name: no $VSTOR_ASAN; running $VSTOR"
			fi
		fi
		start_server "$T/$name.server.log" "$bin" serve \
			--vhost-user "$SOCK$opt" "$fmt:$img,xvda,w"
		;;
	esac || st=$?
	[ "$queues" -eq 1 ] || smp=2

	rc=0 vm_out=''
	[ "$st" -ne 0 ] || VM_SMP=$smp vm_run "$T/guest.sh" \
		-object memory-backend-memfd,id=mem,size="${VM_MEM}M",share=on \
		-numa node,memdev=mem \
		-chardev socket,id=c0,path="$SOCK" \
		-device vhost-user-blk-pci,chardev=c0,num-queues="$queues" || rc=$?
	[ "$st" -eq 0 ] || rc="no server"
	is "$rc" 0 "$name: the guest test ran to its end" ||
		diag "guest output:" "$(tail -20 <<<"$vm_out")"
	is "$(value size)" $((SIZE_MB * 2048)) "$name: the guest sees the disk's size"
	is "$(value queues)" "$queues" "$name: the guest has $queues queue(s)"
	# vstor offers a write-back cache, so the guest sends flushes;
	# qemu-storage-daemon 7.2 says "write through".
	if [ "$server" = qsd ]; then
		like "$(value cache)" '^write (back|through)$' "$name: the disk's cache mode is known"
	else
		is "$(value cache)" "write back" "$name: the disk has a write-back cache (flush offered)"
	fi
	is "$(value limits)/$(value zeroed)" "discard=1 write-zeroes=1/0" \
		"$name: discard and write zeroes offered; a zeroed MiB reads as zeros"
	is "$(value fsck)" 0 "$name: e2fsck -fn in the guest is clean"
	sums=$(sed -n 's/^wrote //p' <<<"$vm_out")
	if [ -n "$sums" ] && [ "$sums" = "$(sed -n 's/^read //p' <<<"$vm_out")" ]; then
		ok "$name: the guest reads back what it wrote"
	else
		not_ok "$name: the guest reads back what it wrote" \
			"wrote: $sums" "read: $(sed -n 's/^read //p' <<<"$vm_out")"
	fi

	st=0
	stop_server || st=$?
	is "$st" 0 "$name: the server exits 0 on SIGTERM" ||
		diag "$(tail -5 "$T/$name.server.log")"

	# The discard: qcow2 clusters are 64 KiB; a raw file's holes come in
	# host filesystem blocks.
	sed -n 's/^extent //p' <<<"$vm_out" >"$T/$name.extents"
	run "$VSTOR" img map -f "$fmt" --output=json "$img"
	echo "$out" >"$T/$name.map"
	run python3 "$T/check-map.py" "$T/$name.map" "$T/$name.extents" \
		"$([ "$fmt" = qcow2 ] && echo 65536 || echo 4096)"
	if [ "$rc" -eq 0 ] && [[ $out =~ checked\ ([0-9]+) ]] &&
		[ "${BASH_REMATCH[1]}" -ge $((16 << 20)) ]; then
		ok "$name: the guest's discard freed the removed file's clusters"
	else
		not_ok "$name: the guest's discard freed the removed file's clusters" \
			"$out" "extents: $(tr '\n' ' ' <"$T/$name.extents")"
	fi

	raw=$img
	if [ "$fmt" = qcow2 ]; then
		raw="$T/$name.raw"
		"$VSTOR" img convert -f qcow2 -O raw "$img" "$raw" 2>&3 ||
			qemu-img convert -f qcow2 -O raw "$img" "$raw"
	fi
	run_ok "$name: e2fsck -fn on the host is clean" e2fsck -fn "$raw"
	bad=
	while read -r sum f; do
		[ "$(debugfs -R "cat /$f" "$raw" 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$sum" ] ||
			bad="$bad $f"
	done <<<"$sums"
	if [ -n "$sums" ] && [ -z "$bad" ]; then
		ok "$name: the host reads every file with its checksum"
	else
		not_ok "$name: the host reads every file with its checksum" "differ:${bad:- no files}"
	fi
	if [ "$fmt" = qcow2 ]; then
		run "$VSTOR" img check "$img"
		if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]] &&
			! [[ $out =~ leaked ]]; then
			run qemu-img check "$img"
		fi
		if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]] &&
			! [[ $out =~ leaked ]]; then
			ok "$name: vstor img check and qemu-img check are clean"
		else
			not_ok "$name: vstor img check and qemu-img check are clean" "$out" "$err"
		fi
	else
		is "$(stat -c %s "$img")" $((SIZE_MB << 20)) "$name: the raw file kept its size"
	fi
}

for c in "${CASES[@]}"; do
	IFS='|' read -r name server fmt queues <<<"$c"
	run_case "$name" "$server" "$fmt" "$queues"
done
