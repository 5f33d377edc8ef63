#!/bin/bash
# vstor img bench against qemu-img bench: the same options must send the
# same requests.  Writes are the proof: two images written by the two
# tools with the same options must compare identical, for every engine
# and cache mode, with wrap-around at the end of the image.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR"

# Identical command lines: a 64 KiB step over a 3 MiB image wraps after
# 48 requests, so 100 requests wrap twice; an 8 KiB buffer at a 12 KiB
# step leaves gaps that must stay zero.
cases=(
	"-c 100 -d 1 -s 8k -S 64k --pattern=0x3c"
	"-c 100 -d 16 -s 8k -S 12k -o 4096 --pattern=0xa5"
	"-c 333 -d 32 -s 4k -S 28k --pattern=0x11"
)
engines=("-i io_uring" "-i threads" "-t none -i native" "-t none -i io_uring"
	 "-t writethrough -i threads")
plan $((${#cases[@]} * ${#engines[@]} * 3 + 9))

for c in "${cases[@]}"; do
	for e in "${engines[@]}"; do
		name="bench -w $c $e"
		rm -f "$T/q.img" "$T/v.img"
		truncate -s 3M "$T/q.img" "$T/v.img"
		# shellcheck disable=SC2086 # options are words on purpose
		run qemu-img bench -f raw -w $c "$T/q.img"
		# shellcheck disable=SC2086
		run_ok "$name: runs" "$VSTOR" img bench -f raw -w $c $e "$T/v.img"
		like "$out" '^Sending [0-9]+ write requests, [0-9]+ bytes each, [0-9]+ in parallel \(starting at offset [0-9]+, step size [0-9]+\)' \
			"$name: first line as qemu-img prints it"
		run_ok "$name: image identical to qemu-img's" \
			qemu-img compare -f raw -F raw "$T/q.img" "$T/v.img"
	done
done

# The compare above can fail: a different pattern must differ.
truncate -s 3M "$T/x.img"
run_ok "bench with another pattern" \
	"$VSTOR" img bench -f raw -w -c 100 -d 1 -s 8k -S 64k --pattern=0x3d "$T/x.img"
run_fails "a different pattern is seen by qemu-img compare" \
	qemu-img compare -f raw -F raw "$T/q.img" "$T/x.img"

# Reads: the same request lines, and the read really happens (a read
# past a truncated end is an error in both tools).
run_ok "read bench" "$VSTOR" img bench -f raw -c 1000 -d 8 -s 4k "$T/x.img"
like "$out" 'Run completed in [0-9]+\.[0-9]{3} seconds\.' "it reports the time"

# Bad options: one clear line, exit 1.
run_fails "-d 0 is refused" "$VSTOR" img bench -d 0 -f raw "$T/x.img"
run_fails "a size that is not a size" "$VSTOR" img bench -s 4q -f raw "$T/x.img"
like "$err" "4q" "the error names the bad value"
run_fails "an unknown engine" "$VSTOR" img bench -i bogus -f raw "$T/x.img"
run_fails "native without O_DIRECT" "$VSTOR" img bench -i native -f raw "$T/x.img"
