#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# serve.sh: `vstor serve --nbd` against qemu-nbd and qemu-storage-daemon
# as NBD servers, driven by the same client, fio's nbd engine (libnbd),
# on the same raw and qcow2 images in one run.  Three loads: 4 KiB
# random reads and 4 KiB random writes with 32 requests in flight, and
# 1 MiB sequential reads with 8 in flight.  Each server runs each load
# once unmeasured (the warm-up), then BENCH_ROUNDS times, the three
# servers taking turns in a rotating order; the median counts.  Prints
# IOPS (MiB/s for the sequential line) of each server, the ratios
# vstor / qemu-nbd and vstor / qemu-storage-daemon (above 1.00 vstor is
# faster), and each server's own CPU time per request (median over the
# same runs), which, unlike IOPS, hardly depends on what else runs on
# the machine.  See bench/README.md.
#
# Fairness:
#   - One server at a time: each run starts its server on the image,
#     waits until it answers (nbdinfo), runs fio, stops it with SIGTERM
#     and waits for its exit.  The three never hold the image at the
#     same time (they lock it), and none idles beside another's run.
#   - The same caching for all: the host page cache (vstor's default
#     without direct-io-safe; qemu-nbd --cache=writeback; the daemon's
#     file node with cache.direct=off).  O_DIRECT for everyone would be
#     unfair the other way: vstor's qcow2 driver does not open its image
#     with O_DIRECT yet (cow/README.md).  Flushes are honoured by all
#     three (no cache=unsafe); fio sends none during the run.
#   - The same I/O engine for all: BENCH_AIO (io_uring, vstor's
#     default; qemu-nbd --aio=, the daemon's file node aio=).
#   - The images hold random data in every block (qcow2: every cluster
#     allocated, converted from the raw by qemu-img), so reads do real
#     work, and the image is read again before each line, so that every
#     server finds it in the page cache whatever ran before (other
#     lines, other programs); no server pays for the disk on reads.
#     Writes overwrite (no allocation in either format).
#   - The same page-cache state for both images: before each line the
#     image is synced, dropped from the page cache and read back in
#     without readahead (prime_cache), so it sits in 4 KiB pages, as a
#     server's own random reads of a disk image leave it.  Since Linux
#     6.16 ext4 caches files in large folios, and a buffered 4 KiB
#     write walks every block of the folio it lands in: with the images
#     left as their writers cached them (the raw by head in small
#     pieces, the qcow2 by qemu-img convert in 2 MiB ones), or read in
#     by cat with readahead, a 4 KiB write cost every server 30-80 us
#     of kernel time in that walk alone, and the write lines measured
#     the kernel's walk, not the servers.
#   - The same client and command line for all three servers; only the
#     socket differs.  Each server exports the disk under the same name.
#
# Environment:
#   VSTOR          the vstor binary (default: build/vstor of this tree)
#   QEMU_NBD       the qemu-nbd binary (default: qemu-nbd)
#   QSD            the qemu-storage-daemon binary (default:
#                  qemu-storage-daemon)
#   QEMU_IMG       the qemu-img binary (default: qemu-img)
#   BENCH_DIR      where the images go (default /var/tmp: /tmp may be a
#                  tmpfs)
#   BENCH_SIZE     image size (default 1G)
#   BENCH_SECONDS  seconds per measured fio run (default 2)
#   BENCH_ROUNDS   measured runs per server and line (default 5)
#   BENCH_WARMUP   seconds of the unmeasured first run of each server on
#                  each line (default 1; 0: none)
#   BENCH_AIO      io_uring (default) or threads
#   BENCH_ONLY     a regular expression: only lines whose name matches
#
# Exit status: 0 when every run succeeded (whatever the ratios), 77 when a
# requirement is missing (the reason is printed), 1 when a run failed.

set -euo pipefail

# shellcheck source=bench/lib/functions.sh
. "$(dirname "$0")/lib/functions.sh"

here=$(cd "$(dirname "$0")" && pwd)
VSTOR=${VSTOR:-$here/../build/vstor}
QEMU_NBD=${QEMU_NBD:-qemu-nbd}
QSD=${QSD:-qemu-storage-daemon}
QEMU_IMG=${QEMU_IMG:-qemu-img}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_SECONDS=${BENCH_SECONDS:-2}
BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_AIO=${BENCH_AIO:-io_uring}
BENCH_ONLY=${BENCH_ONLY:-}

skip() {
	echo "SKIP: serve: $*"
	exit 77
}

die() {
	echo "serve: $*" >&2
	exit 1
}

for tool in "$QEMU_NBD" "$QSD" "$QEMU_IMG" fio nbdinfo python3; do
	command -v "$tool" >/dev/null || skip "no $tool"
done
[ -x "$VSTOR" ] || skip "no vstor binary at $VSTOR (run make first)"
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"
[ -d "$BENCH_DIR" ] || skip "BENCH_DIR=$BENCH_DIR is not a directory"
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_ROUNDS=$BENCH_ROUNDS: not a positive number"
[[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_SECONDS=$BENCH_SECONDS: not a positive number"
[[ $BENCH_WARMUP =~ ^[0-9]+$ ]] ||
	die "BENCH_WARMUP=$BENCH_WARMUP: not a number of seconds"
[ -r /proc/self/stat ] || skip "no /proc/PID/stat (CPU time per request)"
clk_tck=$(getconf CLK_TCK) || die "getconf CLK_TCK failed"
case $BENCH_AIO in
io_uring | threads) ;;
*) die "BENCH_AIO=$BENCH_AIO: io_uring or threads" ;;
esac

dir=$(mktemp -d "$BENCH_DIR/vstor-bench-serve.XXXXXX")
server_pid=
cleanup() {
	[ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

NAME=xvda
SOCK=$dir/nbd.sock
URI="nbd+unix:///$NAME?socket=$SOCK"

# start SERVER FMT IMAGE: start one server in the background on $SOCK
# and wait until it answers.
start() {
	local server=$1 fmt=$2 img=$3 i

	rm -f "$SOCK"
	case $server in
	vstor)
		"$VSTOR" serve --nbd "unix:$SOCK" \
			"format=$fmt, vdev=$NAME, access=rw, aio=$BENCH_AIO, target=$img" \
			2>"$dir/server.err" &
		;;
	qemu-nbd)
		"$QEMU_NBD" -f "$fmt" --socket "$SOCK" -x "$NAME" \
			--cache=writeback --aio="$BENCH_AIO" --persistent \
			--shared=8 "$img" 2>"$dir/server.err" &
		;;
	qsd)
		"$QSD" --blockdev "driver=file,node-name=file,filename=$img,cache.direct=off,aio=$BENCH_AIO" \
			--blockdev "driver=$fmt,node-name=disk,file=file" \
			--nbd-server "addr.type=unix,addr.path=$SOCK" \
			--export "type=nbd,id=e0,node-name=disk,name=$NAME,writable=on" \
			2>"$dir/server.err" &
		;;
	esac
	server_pid=$!
	for ((i = 0; i < 300; i++)); do
		[ -S "$SOCK" ] && nbdinfo --size "$URI" >/dev/null 2>&1 &&
			return 0
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/server.err" >&2
	die "$server did not start on $img"
}

stop() {
	kill -TERM "$server_pid"
	wait "$server_pid" || true
	server_pid=
}

# cpu_ticks PID: user + system CPU time of a process and all its
# threads, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted
# after the command name, which may hold spaces).
cpu_ticks() {
	local st f

	st=$(<"/proc/$1/stat") || die "cannot read /proc/$1/stat"
	# shellcheck disable=SC2206 # the fields are words
	f=(${st##*) })
	echo $((f[11] + f[12]))
}

# run_fio RW BS DEPTH SECONDS: one fio run against the running server.
# Sets fio_val (IOPS for bs 4k, MiB/s for larger) and fio_cpu (the
# server's CPU microseconds per request during the run).
run_fio() {
	local rw=$1 bs=$2 depth=$3 secs=$4 out t0 t1

	t0=$(cpu_ticks "$server_pid")
	out=$(fio --name=bench --ioengine=nbd --uri="$URI" --rw="$rw" \
		--bs="$bs" --iodepth="$depth" --runtime="$secs" \
		--time_based --randrepeat=0 --output-format=terse 2>&1) ||
		die "fio --rw=$rw --bs=$bs failed: $out"
	t1=$(cpu_ticks "$server_pid")
	# Terse format v3: fields 6-8 read KiB, KiB/s and IOPS, 47-49 the
	# same for writes.
	read -r fio_val fio_cpu < <(awk -F';' -v rw="$rw" -v bs="$bs" \
		-v ticks=$((t1 - t0)) -v hz="$clk_tck" 'NF > 49 {
		kib = (rw ~ /write/) ? $47 : $6
		rate = (rw ~ /write/) ? $48 : $7
		io = (rw ~ /write/) ? $49 : $8
		reqs = kib / (bs == "4k" ? 4 : 1024)
		cpu = (reqs > 0) ? ticks * 1e6 / hz / reqs : 0
		printf "%.0f %.1f\n", (bs == "4k") ? io : rate / 1024, cpu
	}' <<<"$out")
	[ -n "$fio_val" ] || die "no terse line from fio --rw=$rw: $out"
}

servers=(vstor qemu-nbd qsd)
line=0

row() {
	printf '%-24s %9s %9s %9s %9s %9s  %8s %8s %8s\n' "$@"
}

# prime_cache FILE: sync FILE, drop it from the page cache, and read it
# back without readahead (POSIX_FADV_RANDOM), so that it is cached in
# 4 KiB pages (see Fairness above).
prime_cache() {
	sync "$1"
	python3 - "$1" <<'PY' || die "cannot read $1 into the page cache"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
off = 0
while True:
    n = len(os.pread(fd, 1 << 20, off))
    if n == 0:
        break
    off += n
os.close(fd)
PY
}

# measure NAME FMT IMAGE RW BS DEPTH: one line of the table.
measure() {
	local name=$1 fmt=$2 img=$3 rw=$4 bs=$5 depth=$6 r i s first
	local -A res=() cpu=()

	if [ -n "$BENCH_ONLY" ] && ! [[ $name =~ $BENCH_ONLY ]]; then
		return 0
	fi
	# Whatever ran since (other lines, other programs) may have pushed
	# the image out of the page cache.
	prime_cache "$img"
	first=0
	[ "$BENCH_WARMUP" -gt 0 ] && first=-1
	for ((r = first; r < BENCH_ROUNDS; r++)); do
		# Rotate who goes first, so that no server always runs on the
		# state (page cache, CPU frequency) another left.
		for ((i = 0; i < ${#servers[@]}; i++)); do
			s=${servers[(i + r + 1 + line) % ${#servers[@]}]}
			start "$s" "$fmt" "$img"
			if ((r < 0)); then
				run_fio "$rw" "$bs" "$depth" "$BENCH_WARMUP"
			else
				run_fio "$rw" "$bs" "$depth" "$BENCH_SECONDS"
				res[$s]+="$fio_val "
				cpu[$s]+="$fio_cpu "
			fi
			stop
		done
	done
	line=$((line + 1))
	local v q d cv cq cd
	# shellcheck disable=SC2086 # the lists are numbers
	v=$(median ${res[vstor]})
	# shellcheck disable=SC2086
	q=$(median ${res[qemu-nbd]})
	# shellcheck disable=SC2086
	d=$(median ${res[qsd]})
	# shellcheck disable=SC2086
	cv=$(median ${cpu[vstor]})
	# shellcheck disable=SC2086
	cq=$(median ${cpu[qemu-nbd]})
	# shellcheck disable=SC2086
	cd=$(median ${cpu[qsd]})
	row "$name" "$v" "$q" "$d" "$(ratio "$v" "$q")" "$(ratio "$v" "$d")" \
		"$cv" "$cq" "$cd"
}

echo "serve: $("$VSTOR" --version) vs $("$QEMU_NBD" --version | head -n 1)" \
	"and $("$QSD" --version | head -n 1)"
echo "serve: fio $(fio --version) nbd engine; $BENCH_SIZE images in $dir;" \
	"aio=$BENCH_AIO, page cache (images read in 4 KiB pages before each line);" \
	"kernel $(uname -r), $(nproc) CPUs"
echo "serve: median of $BENCH_ROUNDS runs of ${BENCH_SECONDS}s per server" \
	"after a ${BENCH_WARMUP}s warm-up, rotating; IOPS (MiB/s for 1M);" \
	"ratio = vstor / peer; us: server CPU microseconds per request"
echo "serve: load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The images: random data everywhere, qcow2 converted from it.
raw=$dir/disk.raw
qcow2=$dir/disk.qcow2
size_bytes=$(numfmt --from=iec "$BENCH_SIZE") ||
	die "BENCH_SIZE=$BENCH_SIZE: not a size"
head -c "$size_bytes" /dev/urandom >"$raw" || die "cannot write $raw"
"$QEMU_IMG" convert -f raw -O qcow2 "$raw" "$qcow2" ||
	die "qemu-img convert to qcow2 failed"
sync -f "$dir"

echo
row line vstor qemu-nbd qsd "/qemu-nbd" "/qsd" us:vstor us:q-nbd us:qsd
for fmt in raw qcow2; do
	img=$dir/disk.$fmt
	measure "$fmt 4k randread d32" "$fmt" "$img" randread 4k 32
	measure "$fmt 4k randwrite d32" "$fmt" "$img" randwrite 4k 32
	measure "$fmt 1M read d8 (MiB/s)" "$fmt" "$img" read 1M 8
done
echo "serve: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
