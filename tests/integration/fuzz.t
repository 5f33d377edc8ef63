#!/bin/bash
# Bounded libFuzzer runs of every parser of untrusted input (make fuzz
# builds them; run one longer by hand with build/fuzz/NAME -max_total_time=600).
. "$(dirname "$0")/../lib/functions.sh"

FUZZ=${FUZZ:-$TOP/build/fuzz}
targets=("$FUZZ"/fuzz-*)
[ -x "${targets[0]}" ] || skip_all "no fuzz targets in $FUZZ (run make fuzz)"
plan "${#targets[@]}"

for bin in "${targets[@]}"; do
	name=${bin##*/}
	corpus=$TOP/tests/fuzz/corpus-${name#fuzz-}
	mkdir -p "$T/$name"
	# Images need room; a config line does not.
	case $name in
	fuzz-qcow2 | fuzz-vmdk | fuzz-vhd | fuzz-vdi) max_len=65536 runs=20000 ;;
	# Rings and buffers in 8 KiB of guest memory.
	fuzz-virtqueue) max_len=4096 runs=100000 ;;
	# One NBD connection per input, served by threads: fewer runs.
	fuzz-nbd) max_len=2048 runs=10000 ;;
	# A whole domain config, each one also through JSON and a rewrite.
	fuzz-dom-config) max_len=2048 runs=50000 ;;
	# The start of a disk, probed by libblkid.
	fuzz-part-table) max_len=65536 runs=20000 ;;
	# One QMP session per input, played by a thread on a socket.
	fuzz-qmp) max_len=4096 runs=10000 ;;
	# lvm reports: a few KiB of JSON.
	fuzz-lvm-json) max_len=4096 runs=50000 ;;
	# Backup manifests (JSON), optionally followed by a .sums file.
	fuzz-backup-manifest) max_len=4096 runs=50000 ;;
	# Control-socket sessions: each line parsed, each reply re-read.
	fuzz-serve-control) max_len=4096 runs=20000 ;;
	# State records (a domain's, a part map's): a few KiB of JSON, each
	# accepted one written and read again (about 10 s each).
	fuzz-dom-state) max_len=4096 runs=100000 ;;
	fuzz-part-state) max_len=4096 runs=150000 ;;
	*) max_len=512 runs=200000 ;;
	esac
	# A fixed seed keeps a failure reproducible; new inputs go to $T only.
	run "$bin" -seed=1 -runs="$runs" -max_len="$max_len" -timeout=10 \
		"$T/$name" "$corpus"
	if [ "$rc" -eq 0 ]; then
		ok "$name: $runs runs without a crash, leak or assertion"
	else
		not_ok "$name: libFuzzer exit $rc"
		diag "$(tail -n 30 <<<"$err")"
	fi
done
