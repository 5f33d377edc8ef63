#!/bin/bash
# vstor part list|map|unmap on the host, which has no device-mapper: the
# loop-device fallback.
#
# MBR and GPT images with 1, 4 and 9 partitions (the 9-partition MBR has
# two primaries, an extended partition in slot 3 and seven logical
# partitions, so slot 4 is empty and logical numbers start at 5) are made
# with sfdisk.  For each: `vstor part list` agrees with `kpartx -l` on
# every partition's number, size and start (kpartx -l shows a logical
# partition relative to its extended partition; we add that back), and
# its JSON agrees with `sfdisk --json`.  The kpartx spelling (-l) prints
# the same.  Map, then unmap, of the 9-partition images: each partition's
# loop device has the partition's size and shows the marker written into
# the image at the partition's offset (the extended partition: the first
# 1 KiB, its EBR); a write through a partition lands in the image; a
# second map (of the image or of its loop device), an unmap while a
# partition is open and a map with --method=dm are refused; unmap removes every loop device and the state
# file.  A qcow2 image's partitions are mapped through the FUSE export:
# the markers read back, a write through a partition is in the qcow2
# (qemu-io read -P), the server is gone after unmap and the image is
# clean.  Malformed tables: a partition past the end of the disk, a
# logical partition outside its extended partition, a GPT entry outside
# the usable area, a protective MBR without a valid GPT, an EBR chain
# that loops; a disk without a table; things that are not disks.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires sfdisk kpartx losetup qemu-img qemu-io python3 blockdev "$VSTOR"
[ "$(id -u)" -eq 0 ] || skip_all "loop devices need root"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
[ -c /dev/loop-control ] || skip_all "no /dev/loop-control"

plan 107

export VSTOR_PART_STATE_DIR=$T/state
MiB=1048576

# What the state folder holds besides its lock file.
state_files() {
	local f
	for f in "$T"/state/*; do
		[ -e "$f" ] && [ "${f##*/}" != lock ] && echo "${f##*/}"
	done
	return 0
}

# The loop devices bound to FILE (losetup -j), one per line.
loops_of() { losetup -j "$1" -O NAME -n 2>/dev/null; }

# Whatever a failing test leaves: unmap, then detach any loop device on
# the test's images and stop FUSE servers still running.
cleanup_add rm -rf "$T/state"
final_cleanup() {
	local f d
	for f in "$T"/*.img "$T"/*.qcow2; do
		[ -e "$f" ] || continue
		"$VSTOR" part unmap -q "$f" 2>/dev/null
		for d in $(loops_of "$f"); do losetup -d "$d"; done
	done
	for f in "$T"/state/*.pid; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")"
	done
	return 0
}
cleanup_add final_cleanup

# mkimg NAME LABEL SIZE_MIB: an image with the sfdisk script on stdin.
mkimg() {
	truncate -s $(($3 * MiB)) "$T/$1" || return 1
	{ echo "label: $2"; cat; } | sfdisk -q "$T/$1" >&3 2>&1
}

mkimg mbr1.img dos 16 <<<'start=2048, size=20480, type=83' || die "sfdisk mbr1"
mkimg mbr4.img dos 32 <<'EOF' || die "sfdisk mbr4"
start=2048, size=8192, type=83
start=10240, size=8192, type=82
start=18432, size=16384, type=83
start=34816, size=28672, type=8e
EOF
mkimg mbr9.img dos 64 <<'EOF' || die "sfdisk mbr9"
start=2048, size=8192, type=83
start=10240, size=8192, type=83
start=18432, size=106496, type=5
start=20480, size=4096, type=83
start=26624, size=8192, type=83
start=36864, size=2048, type=82
start=40960, size=16384, type=83
start=59392, size=4096, type=83
start=65536, size=20480, type=83
start=88064, size=30720, type=83
EOF
mkimg gpt1.img gpt 16 <<<'start=2048, size=20480, name=root' || die "sfdisk gpt1"
mkimg gpt4.img gpt 32 <<'EOF' || die "sfdisk gpt4"
start=2048, size=8192, name=boot
start=10240, size=8192, name=swap
start=18432, size=16384, name=root
start=34816, size=28672, name=home
EOF
{
	for i in 0 1 2 3 4 5 6 7 8; do
		echo "start=$((2048 + i * 10240)), size=$((4096 + i * 512)), name=p$i"
	done
} | mkimg gpt9.img gpt 128 || die "sfdisk gpt9"

# "NUMBER SIZE START" lines, sorted, from the human listing of vstor part
# list or kpartx -l.  kpartx -l prints a logical partition on /dev/dm-N
# relative to its extended partition (mapped with size 2): add its start.
norm_list() {
	awk '
	{ n = $1; sub(/.*[^0-9]/, "", n); line[NR] = n " " $4 " " $5 " " $6 }
	$4 == 2 { ext = $6 }
	END {
		for (i = 1; i <= NR; i++) {
			split(line[i], f, " ")
			start = f[4]
			if (f[3] ~ /^\/dev\/dm-/) start += ext
			print f[1], f[2], start
		}
	}' | sort -n
}

# The same from `sfdisk --json` (extended partitions as kpartx maps
# them: 2 sectors) or from vstor part list --output=json ("map-size").
norm_json() {
	python3 -c '
import json, re, sys
d = json.load(sys.stdin)
if "partitiontable" in d:
    for p in d["partitiontable"]["partitions"]:
        n = re.search(r"(\d+)$", p["node"]).group(1)
        size = 2 if p.get("type") in ("5", "f", "85") else p["size"]
        print(n, size, p["start"])
else:
    for p in d["partitions"]:
        print(p["number"], p["map-size"], p["start"])
' | sort -n
}

for img in mbr1 mbr4 mbr9 gpt1 gpt4 gpt9; do
	f="$T/$img.img"
	run "$VSTOR" part list "$f"
	ours=$(norm_list <<<"$out")
	run kpartx -l "$f"
	theirs=$(norm_list <<<"$out")
	is "$ours" "$theirs" "$img: vstor part list agrees with kpartx -l"
	run "$VSTOR" part list --output=json "$f"
	ours_json=$(norm_json <<<"$out")
	is "$ours_json" "$(sfdisk --json "$f" | norm_json)" \
		"$img: the JSON listing agrees with sfdisk --json"
done
# The counts, so that agreement on an empty listing cannot pass.
is "$(wc -l <<<"$ours")" 9 "gpt9 lists 9 partitions"
run "$VSTOR" part list "$T/mbr9.img"
is "$(wc -l <<<"$out")" 10 "mbr9 lists 9 partitions and the extended one"
like "$out" $'loop[0-9]+p3 : 0 2 /dev/loop[0-9]+ 18432\n' \
	"the extended partition is listed with 2 sectors, as kpartx does"
unlike "$out" 'p4 :' "the empty slot 4 is not listed"
like "$out" 'p11 : 0 30720 /dev/loop[0-9]+ 88064$' \
	"the last logical partition is number 11, at its absolute start"
mbr9_list=$out
run "$VSTOR" part -l "$T/mbr9.img"
is "$(norm_list <<<"$out")" "$(norm_list <<<"$mbr9_list")" "part -l prints what part list prints"
run_ok "list -p: another delimiter" "$VSTOR" part list -p _part "$T/gpt1.img"
like "$out" '^loop[0-9]+_part1 : 0 20480 ' "the delimiter is used"
run "$VSTOR" part list --output=json "$T/mbr9.img"
like "$out" '"kind": "logical"' "the JSON listing names logical partitions"
like "$out" '"type": "0x05"' "and the extended partition's type"
run "$VSTOR" part list --output=json "$T/gpt4.img"
like "$out" '"label": "home"' "GPT partition names are in the JSON listing"
is "$(loops_of "$T/mbr9.img")" "" "list leaves no loop device behind"

# ---- map and unmap with loop devices ----

# put_markers IMG: "part-N" markers at each data partition's first byte;
# remembers "NUMBER START SIZE" of every partition in $T/IMG.parts.
put_markers() {
	local f="$T/$1" n start size type
	sfdisk --json "$f" | python3 -c '
import json, re, sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    n = re.search(r"(\d+)$", p["node"]).group(1)
    print(n, p["start"], p["size"], p.get("type", ""))
' >"$f.parts"
	while read -r n start size type; do
		case $type in 5 | f | 85) continue ;; esac
		printf 'part-%s-marker' "$n" |
			dd of="$f" bs=512 seek="$start" conv=notrunc status=none
	done <"$f.parts"
}

# check_maps IMG OUTPUT: every partition in $T/IMG.parts has an "add map"
# line whose loop device has its size and shows its marker (for the
# extended partition: its first 1 KiB as in the image).  Sets $bad.
check_maps() {
	local f="$T/$1" n start size type dev want got
	bad=
	while read -r n start size type; do
		dev=$(sed -n "s/^add map [a-z0-9]*p$n .* as \(\/dev\/loop[0-9]*\)$/\1/p" <<<"$2")
		if [ -z "$dev" ] || [ ! -b "$dev" ]; then
			bad="$bad $n:no-device"
			continue
		fi
		case $type in
		5 | f | 85)
			[ "$(blockdev --getsz "$dev")" = 2 ] || bad="$bad $n:size"
			cmp -s -n 1024 "$dev" <(dd if="$f" bs=512 skip="$start" count=2 status=none) ||
				bad="$bad $n:ebr"
			continue
			;;
		esac
		[ "$(blockdev --getsz "$dev")" = "$size" ] || bad="$bad $n:size"
		want="part-$n-marker"
		got=$(dd if="$dev" bs=512 count=1 status=none | head -c ${#want})
		[ "$got" = "$want" ] || bad="$bad $n:marker"
	done <"$f.parts"
	[ -z "$bad" ]
}

for img in mbr9 gpt9; do
	put_markers "$img.img"
	run_ok "$img: map" "$VSTOR" part map "$T/$img.img"
	maps=$out
	nparts=$(wc -l <"$T/$img.img.parts")
	is "$(grep -c '^add map .* loop [0-9]*:[0-9]* [0-9]* as /dev/loop' <<<"$maps")" \
		"$nparts" "$img: one loop device per partition"
	check "$img: each partition device has the size and the marker" check_maps "$img.img" "$maps"
	[ -z "$bad" ] || diag "bad: $bad" "$maps"
	is "$(loops_of "$T/$img.img" | wc -l)" 1 "$img: one loop device holds the image"
	run_fails "$img: a second map is refused" "$VSTOR" part map "$T/$img.img"
	like "$err" "is mapped already" "$img: ... saying so"
	run_fails "$img: so is a map of the image's loop device" \
		"$VSTOR" part map "$(loops_of "$T/$img.img")"
	like "$err" "partitions of /dev/loop[0-9]+ are mapped already" "$img: ... saying so"
	run_ok "$img: unmap" "$VSTOR" part unmap "$T/$img.img"
	is "$(grep -c '^del loop : ' <<<"$out")" "$nparts" "$img: every partition is unmapped"
	gone=yes
	while read -r d; do
		losetup "$d" >/dev/null 2>&1 && [[ $(losetup -n -O BACK-FILE "$d") == /dev/loop* ]] &&
			gone="no: $d"
	done < <(sed -n 's/.* as \(\/dev\/loop[0-9]*\)$/\1/p' <<<"$maps")
	is "$gone" yes "$img: the partition loop devices are detached"
	is "$(loops_of "$T/$img.img")" "" "$img: the image's loop device is detached"
done
is "$(state_files)" "" "no state file is left"

# A write through a partition lands in the image at its offset.
run_ok "map mbr4" "$VSTOR" part map "$T/mbr4.img"
dev2=$(sed -n 's/^add map [a-z0-9]*p2 .* as \(\/dev\/loop[0-9]*\)$/\1/p' <<<"$out")
if [ -b "$dev2" ]; then
	printf 'written-through-p2' | dd of="$dev2" bs=512 seek=3 conv=notrunc,fsync status=none
fi
is "$(dd if="$T/mbr4.img" bs=512 skip=$((10240 + 3)) count=1 status=none | head -c 18)" \
	written-through-p2 "a write through partition 2 is in the image at its offset"
# Busy: a process holds partition 2 open.
# shellcheck disable=SC2217 # sleep holds the device open
sleep 600 <"$dev2" &
holder=$!
cleanup_add kill "$holder"
# Once it runs sleep, its stdin (the device) is open.
for ((i = 0; i < 100; i++)); do
	[ "$(cat "/proc/$holder/comm" 2>/dev/null)" = sleep ] && break
	sleep 0.1
done
run_fails "unmap while a partition is open is refused" "$VSTOR" part unmap "$T/mbr4.img"
like "$err" "p2 \(/dev/loop[0-9]+\) is in use: open in process $holder \(sleep\); nothing was unmapped" \
	"... naming the partition and the process"
is "$(losetup -n -O BACK-FILE "$dev2" 2>&1)" "$(loops_of "$T/mbr4.img")" "... and nothing was unmapped"
kill "$holder"
wait "$holder" 2>/dev/null
run_ok "unmap with kpartx's spelling (-dv)" "$VSTOR" part -dv "$T/mbr4.img"
like "$out" 'loop deleted : /dev/loop' "-dv prints kpartx -dv's lines"
run_fails "unmap of a disk that is not mapped" "$VSTOR" part unmap "$T/mbr4.img"
like "$err" 'is not mapped' "... says so"
run_ok "map with kpartx's spelling (-a), quiet" "$VSTOR" part -a -r "$T/mbr1.img"
is "$out" "" "-a prints nothing (as kpartx -a)"
dev1=$(losetup -j "$T/mbr1.img" -O NAME -n)
is "$(losetup -n -O RO "$dev1" | tr -d ' ')" 1 "-r attaches the image read-only"
run_ok "unmap by the image's loop device" "$VSTOR" part unmap -q "/dev/${dev1##*/}"
is "$(loops_of "$T/mbr1.img")" "" "... detaches it"
# A damaged state file in the way is named, not trusted.
key=$(printf 'file-%x-%s' "$(stat -c %d "$T/mbr1.img")" "$(stat -c %i "$T/mbr1.img")")
printf '{"disk": "/", "maps": [{"name": "x", "kind": "loop", "dev": "/dev/loop0"}]}' \
	>"$T/state/$key.json"
run_fails "a damaged state file stops map" "$VSTOR" part map "$T/mbr1.img"
like "$err" "state file that cannot be read is in the way \\($T/state/$key.json: field 'format' is missing" \
	"... naming the file and the field"
rm -f "$T/state/$key.json"
run_fails "map --method=dm without device-mapper" "$VSTOR" part map --method=dm "$T/mbr1.img"
like "$err" 'device-mapper is not available' "... says why"
is "$(loops_of "$T/mbr1.img")" "" "... and leaves nothing attached"

# ---- a qcow2 image through the FUSE export ----

put_markers mbr4.img
qemu-img convert -f raw -O qcow2 "$T/mbr4.img" "$T/mbr4.qcow2" || die "convert"
cp "$T/mbr4.img.parts" "$T/mbr4.qcow2.parts"
run_ok "qcow2: list" "$VSTOR" part list "$T/mbr4.qcow2"
is "$(norm_list <<<"$out")" "$(sfdisk --json "$T/mbr4.img" | norm_json)" \
	"qcow2: the listing through FUSE agrees with sfdisk on the raw image"
run_ok "qcow2: map" "$VSTOR" part map "$T/mbr4.qcow2"
maps=$out
like "$maps" '^add fuse export .*\.fuse \(pid [0-9]+\)' "qcow2: map starts a FUSE export"
spid=$(sed -n 's/^add fuse export .* (pid \([0-9]*\))$/\1/p' <<<"$maps")
check "qcow2: each partition device has the size and the marker" check_maps mbr4.qcow2 "$maps"
[ -z "$bad" ] || diag "bad: $bad" "$maps"
dev4=$(sed -n 's/^add map [a-z0-9]*p4 .* as \(\/dev\/loop[0-9]*\)$/\1/p' <<<"$maps")
if [ -b "$dev4" ]; then
	head -c 65536 /dev/zero | tr '\0' '\125' |
		dd of="$dev4" bs=64k seek=1 conv=notrunc,fsync status=none
fi
run_ok "qcow2: unmap" "$VSTOR" part unmap "$T/mbr4.qcow2"
like "$out" "del fuse export \\(pid $spid\\)" "qcow2: unmap stops the FUSE server"
# alive PID: running (a zombie that nobody reaped yet counts as gone).
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$st" ] && [ "$st" != Z ]
}
check "qcow2: the server is gone" eval "! alive ${spid:-0}"
run_ok "qcow2: the write through partition 4 is in the image" \
	qemu-io -f qcow2 -c "read -P 0x55 $((34816 * 512 + 65536)) 65536" "$T/mbr4.qcow2"
run qemu-io -f qcow2 -c "read -P 0 $((34816 * 512 + 131072)) 512" "$T/mbr4.qcow2"
is "$rc" 0 "qcow2: and nothing past it"
qcow2_clean "qcow2: the image is clean after unmap" "$T/mbr4.qcow2"
is "$(state_files)" "" "qcow2: no state, FUSE file or pidfile is left"

# ---- malformed tables ----

# poke FILE OFFSET FORMAT VALUE: a little-endian field into an image.
poke() {
	python3 -c 'import struct, sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2]))
f.write(struct.pack(sys.argv[3], int(sys.argv[4])))' "$@"
}
# GPT: the first entry's last LBA, and both CRCs fixed up.
gpt_poke_last_lba() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys, zlib
f = open(sys.argv[1], "r+b")
f.seek(512); h = bytearray(f.read(92))
lba, n, esz = struct.unpack_from("<QII", h, 72)
f.seek(lba * 512); ents = bytearray(f.read(n * esz))
struct.pack_into("<Q", ents, 40, int(sys.argv[2]))
f.seek(lba * 512); f.write(ents)
struct.pack_into("<I", h, 88, zlib.crc32(ents))
struct.pack_into("<I", h, 16, 0)
struct.pack_into("<I", h, 16, zlib.crc32(h))
f.seek(512); f.write(h)
EOF
}

cp "$T/mbr4.img" "$T/past.img"
poke "$T/past.img" $((446 + 3 * 16 + 12)) '<I' 200000
run "$VSTOR" part list "$T/past.img"
is "$rc" 2 "a partition past the end of the disk: list exits 2"
like "$err" 'partition 4: 200000 sectors from sector 34816 run past the end of the disk \(65536 sectors\)' \
	"... and says which partition and why"
run_fails "... map refuses the table" "$VSTOR" part map "$T/past.img"
like "$err" 'partition 4: .*; nothing was mapped' "... saying why"
is "$(loops_of "$T/past.img")" "" "... and leaves no loop device"
run "$VSTOR" part list --output=json "$T/past.img"
like "$out" '"problem": "200000 sectors' "... the JSON listing carries the problem"

cp "$T/mbr9.img" "$T/logical.img"
# The first EBR (at the extended partition's start) gives its logical
# partition's size: make it reach past the extended partition.
poke "$T/logical.img" $((18432 * 512 + 446 + 12)) '<I' 106000
run "$VSTOR" part list "$T/logical.img"
is "$rc" 2 "a logical partition outside its extended partition: list exits 2"
like "$err" 'partition 5: .* lie outside the extended partition' "... and says so"
run_fails "... map refuses it" "$VSTOR" part map "$T/logical.img"

cp "$T/gpt4.img" "$T/gptout.img"
gpt_poke_last_lba "$T/gptout.img" 1000000
run "$VSTOR" part list "$T/gptout.img"
is "$rc" 2 "a GPT entry outside the usable area: list exits 2"
like "$err" '1 GPT entries lie outside the disk.s usable area' "... and says so"
run_fails "... map refuses it" "$VSTOR" part map "$T/gptout.img"

cp "$T/gpt4.img" "$T/nogpt.img"
poke "$T/nogpt.img" $((512 + 16)) '<I' 0
poke "$T/nogpt.img" $((32 * MiB - 512 + 16)) '<I' 0
run_fails "a protective MBR without a valid GPT" "$VSTOR" part list "$T/nogpt.img"
like "$err" 'protective MBR announces a GPT, but neither GPT header is valid' "... says so"

cp "$T/mbr9.img" "$T/loop.img"
# The first EBR's link to the next points back at itself.
poke "$T/loop.img" $((18432 * 512 + 446 + 16 + 8)) '<I' 0
run timeout 20 "$VSTOR" part list "$T/loop.img"
is "$rc" 0 "an EBR chain that loops ends (no hang)"
is "$(norm_list <<<"$out")" "$(printf '1 8192 2048\n2 8192 10240\n3 2 18432\n5 4096 20480')" \
	"... with the partitions before the loop"

truncate -s 8M "$T/blank.img"
run_ok "a disk without a table lists nothing" "$VSTOR" part list "$T/blank.img"
is "$out" "" "... no lines"
run_fails "map of a disk without a table" "$VSTOR" part map "$T/blank.img"
like "$err" 'no partition table' "... says so"
run_fails "a missing disk" "$VSTOR" part list "$T/missing.img"
like "$err" 'missing.img: No such file or directory' "... is named"
run_fails "a folder is not a disk" "$VSTOR" part map "$T/state"
like "$err" 'neither a block device nor an image file' "... says so"
run_fails "a bad --method" "$VSTOR" part map --method=zfs "$T/mbr1.img"
like "$err" "'zfs' is not one of auto, dm, loop" "... says so"
is "$(losetup -a | grep -c "$T/")" 0 "no loop device on the test's files is left"
