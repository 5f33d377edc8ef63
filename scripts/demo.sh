#!/bin/bash
# make demo: the main job as far as it exists, on the built-in example
# domain examples/web1.cfg.  Today that is the disk side of a domain:
# parse its disk lines, create its images, write through the vbd layer
# and read back with QEMU's tools, and measure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
VSTOR=${VSTOR:-$top/build/vstor}
dir=$(mktemp -d /var/tmp/vstor-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

sed "s|@DIR@|$dir|g" "$top/examples/web1.cfg" >"$dir/web1.cfg"
step "The domain config ($dir/web1.cfg)"
cat "$dir/web1.cfg"

# The disk list: every single-quoted item inside disk = [ ... ].
mapfile -t disks < <(tr '\n' ' ' <"$dir/web1.cfg" |
	sed -n "s/.*disk *= *\[\([^]]*\)\].*/\1/p" | grep -o "'[^']*'" |
	tr -d "'")

step "Its disk specs, parsed as xl parses them"
for d in "${disks[@]}"; do
	run "$VSTOR" disk parse "$d"
done

step "Creating the domain's images"
run "$VSTOR" img create -f raw "$dir/web1-root.img" 256M
run "$VSTOR" img create -f raw -o preallocation=falloc "$dir/web1-data.img" 64M
run "$VSTOR" img create -f raw "$dir/web1-swap.img" 32M
run "$VSTOR" img info "$dir/web1-root.img"
run "$VSTOR" img info --output=json "$dir/web1-data.img"

step "Writing through vstor (io_uring, O_DIRECT), reading back with qemu-io"
run "$VSTOR" img bench -q -w -c 256 -d 16 -s 64k --pattern=0x5a -t none \
	-i io_uring -f raw "$dir/web1-data.img"
run qemu-io -f raw -r -c 'read -P 0x5a 0 16M' "$dir/web1-data.img"

step "A second writer is refused while one holds the image"
"$VSTOR" img bench -w -c 4000000 -d 1 -s 4k -f raw "$dir/web1-root.img" \
	>/dev/null 2>&1 &
holder=$!
sleep 1
printf '$ qemu-io -f raw %s -c "write 0 4k"\n' "$dir/web1-root.img"
qemu-io -f raw "$dir/web1-root.img" -c 'write 0 4k' 2>&1 | head -n 1 || true
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true

step "4 KiB random reads at depth 32, vstor beside qemu-img"
run "$VSTOR" img bench -c 100000 -d 32 -s 4k -S 1028k -i io_uring -f raw \
	"$dir/web1-data.img"
run qemu-img bench -c 100000 -d 32 -s 4k -S 1028k -i io_uring -f raw \
	"$dir/web1-data.img"

step "Done"
echo "The demo's files are removed on exit; bench/raw-io.sh measures more."
