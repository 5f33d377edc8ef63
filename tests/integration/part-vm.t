#!/bin/bash
# vstor part with device-mapper, in the test VM (the host has no dm).
#
# Compared with kpartx on the same disks in the guest:
# - a virtio disk (/dev/vda) with an MBR of 9 partitions (an extended
#   one and 7 logical): `list` agrees with `kpartx -l`; `map` makes the
#   same maps as `kpartx -a`: names, `dmsetup table` lines and uuids
#   equal; a logical partition reads its marker through its map; unmap
#   refuses while a map is open (open count) and then removes them all;
#   `vstor part unmap` removes what `kpartx -a` made and `kpartx -d` what
#   `vstor part map` made;
# - a device-mapper disk (/dev/mapper/disk9, a name ending in a digit):
#   list and map name its partitions disk9p1... as kpartx does, with
#   kpartx's tables and uuids (partN-<disk9's uuid>);
# - a GPT image file: attached to a loop device and mapped as kpartx -a
#   maps it; unmap detaches the loop device;
# - a qcow2 image: mapped through the FUSE export and a loop device; a
#   write through a partition's map is in the qcow2 afterwards (qemu-io
#   on the host) and the image is clean.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

vm_requires
requires sfdisk kpartx dmsetup qemu-img qemu-io python3 "$VSTOR"

plan 32

MiB=1048576
mkdir "$T/share"
S=$T/share

truncate -s $((64 * MiB)) "$T/mbr9.img"
sfdisk -q "$T/mbr9.img" <<'EOF' >&3 2>&1 || die "sfdisk mbr9"
label: dos
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
printf 'part-5-marker' | dd of="$T/mbr9.img" bs=512 seek=20480 conv=notrunc status=none
truncate -s $((32 * MiB)) "$S/gpt4.img"
sfdisk -q "$S/gpt4.img" <<'EOF' >&3 2>&1 || die "sfdisk gpt4"
label: gpt
start=2048, size=8192, name=boot
start=10240, size=8192, name=swap
start=18432, size=16384, name=root
start=34816, size=28672, name=home
EOF
truncate -s $((32 * MiB)) "$T/mbr4.raw"
sfdisk -q "$T/mbr4.raw" <<'EOF' >&3 2>&1 || die "sfdisk mbr4"
label: dos
start=2048, size=8192, type=83
start=10240, size=8192, type=83
EOF
qemu-img convert -f raw -O qcow2 "$T/mbr4.raw" "$S/mbr4.qcow2" || die "convert"

cat >"$T/guest.sh" <<EOF
#!/bin/bash
set -u
V=/host$VSTOR
S=/share
export VSTOR_PART_STATE_DIR=/tmp/pst
# The maps whose names start with \$1: table lines and name/uuid pairs.
tables() { dmsetup table | grep "^\$1" | sort; }
uuids() { dmsetup info -c --noheadings -o name,uuid --separator ' ' | grep "^\$1" | sort; }
step() { echo "step \$1 \$2"; }

\$V part list /dev/vda >\$S/list-vstor.txt 2>&1; step list \$?
kpartx -l /dev/vda >\$S/list-kpartx.txt 2>/dev/null
\$V part map /dev/vda >\$S/map-vda.txt 2>&1; step map-vda \$?
tables vda >\$S/vstor-vda.table
uuids vda >\$S/vstor-vda.uuid
dd if=/dev/mapper/vda5 bs=512 count=1 status=none | head -c 13 >\$S/vda5.marker
sleep 600 </dev/mapper/vda6 &
h=\$!
for i in \$(seq 100); do
	[ "\$(dmsetup info -c --noheadings -o open vda6 | tr -d ' ')" = 1 ] && break
	sleep 0.1
done
\$V part unmap /dev/vda >\$S/busy.txt 2>&1; step busy-unmap \$?
tables vda >\$S/busy.table
kill \$h; wait \$h
\$V part unmap /dev/vda >\$S/unmap-vda.txt 2>&1; step unmap-vda \$?
tables vda >\$S/after-unmap.table
kpartx -a /dev/vda; step kpartx-a \$?
tables vda >\$S/kpartx-vda.table
uuids vda >\$S/kpartx-vda.uuid
\$V part unmap /dev/vda >\$S/unmap-kpartx.txt 2>&1; step unmap-kpartx \$?
tables vda >\$S/after-unmap-kpartx.table
\$V part map -q /dev/vda; step map-again \$?
kpartx -d /dev/vda; step kpartx-d \$?
tables vda >\$S/after-kpartx-d.table
# The state file of that map is stale now: a new map sees it and goes
# ahead; unmap then finds its maps.
\$V part map -q /dev/vda; step map-stale \$?
\$V part unmap -q /dev/vda; step unmap-stale \$?

dmsetup create disk9 -u vstor-test-disk9 --table "0 \$(blockdev --getsz /dev/vda) linear /dev/vda 0"
\$V part list /dev/mapper/disk9 >\$S/list-disk9-vstor.txt 2>&1
kpartx -l /dev/mapper/disk9 >\$S/list-disk9-kpartx.txt 2>/dev/null
\$V part map /dev/mapper/disk9 >\$S/map-disk9.txt 2>&1; step map-disk9 \$?
tables disk9p >\$S/vstor-disk9.table
uuids disk9p >\$S/vstor-disk9.uuid
\$V part unmap /dev/mapper/disk9 >/dev/null 2>&1; step unmap-disk9 \$?
kpartx -a /dev/mapper/disk9
tables disk9p >\$S/kpartx-disk9.table
uuids disk9p >\$S/kpartx-disk9.uuid
kpartx -d /dev/mapper/disk9
dmsetup remove disk9

\$V part map \$S/gpt4.img >\$S/map-gpt.txt 2>&1; step map-gpt \$?
tables loop >\$S/vstor-gpt.table
\$V part unmap \$S/gpt4.img >\$S/unmap-gpt.txt 2>&1; step unmap-gpt \$?
losetup -j \$S/gpt4.img >\$S/gpt-loops-after.txt
kpartx -a \$S/gpt4.img
tables loop >\$S/kpartx-gpt.table
\$V part unmap \$S/gpt4.img >\$S/unmap-kpartx-gpt.txt 2>&1; step unmap-kpartx-gpt \$?
losetup -j \$S/gpt4.img >\$S/gpt-loops-after2.txt

\$V part map \$S/mbr4.qcow2 >\$S/map-qcow2.txt 2>&1; step map-qcow2 \$?
p2=\$(sed -n 's/^add map \([a-z0-9]*p2\) .*/\1/p' \$S/map-qcow2.txt)
printf 'through-dm-p2' | dd of=/dev/mapper/\$p2 bs=512 seek=5 conv=notrunc,fsync status=none
step write-qcow2 \$?
\$V part unmap \$S/mbr4.qcow2 >\$S/unmap-qcow2.txt 2>&1; step unmap-qcow2 \$?
ls /tmp/pst >\$S/state-after.txt
dmsetup ls >\$S/dm-after.txt
exit 0
EOF

VM_MEM=384 VM_SHARE="$S" vm_ok "the guest script ran" "$T/guest.sh" \
	-blockdev driver=file,filename="$T/mbr9.img",node-name=f1 \
	-blockdev driver=raw,file=f1,node-name=d1 \
	-device virtio-blk-pci,drive=d1
diag "$(grep '^step' <<<"$vm_out" | grep -v ' 0$' || true)"

# step NAME: the exit status the guest printed for a step.
step() { sed -n "s/^step $1 //p" <<<"$vm_out"; }

# As in part.t: "NUMBER SIZE START" from a listing, kpartx -l's logical
# partitions made absolute again.
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
	}' <"$1" | sort -n
}

is "$(norm_list "$S/list-vstor.txt")" "$(norm_list "$S/list-kpartx.txt")" \
	"list agrees with kpartx -l on the guest's disk"
is "$(step map-vda)" 0 "map /dev/vda with device-mapper"
is "$(wc -l <"$S/vstor-vda.table")" 10 "ten maps: 9 partitions and the extended one"
is "$(cat "$S/vstor-vda.table")" "$(cat "$S/kpartx-vda.table")" \
	"names and tables are kpartx -a's (dmsetup table)"
is "$(cat "$S/vstor-vda.uuid")" "$(cat "$S/kpartx-vda.uuid")" "and so are the uuids"
like "$(cat "$S/map-vda.txt")" 'add map vda5 \([0-9]+:[0-9]+\): 0 4096 linear [0-9]+:0 20480' \
	"map prints kpartx -av's lines"
is "$(cat "$S/vda5.marker")" part-5-marker "a logical partition reads its data through its map"
is "$(step busy-unmap)" 1 "unmap refuses while a map is open"
like "$(cat "$S/busy.txt")" 'vda6 \(/dev/mapper/vda6\) is in use: open count 1; nothing was unmapped' \
	"... naming it and its open count"
is "$(wc -l <"$S/busy.table")" 10 "... and removes nothing"
is "$(step unmap-vda)" 0 "unmap"
is "$(cat "$S/after-unmap.table")" "" "... removes every map"
is "$(step unmap-kpartx)" 0 "vstor part unmap removes what kpartx -a made"
is "$(cat "$S/after-unmap-kpartx.table")" "" "... all of it"
is "$(step kpartx-d)/$(cat "$S/after-kpartx-d.table")" 0/ "kpartx -d removes what vstor part map made"
is "$(step map-stale)/$(step unmap-stale)" 0/0 \
	"a state file whose maps kpartx -d removed does not stop a new map"
is "$(awk '{ print $1 }' "$S/list-disk9-vstor.txt" | sort)" \
	"$(awk '{ print $1 }' "$S/list-disk9-kpartx.txt" | sort)" \
	"list of a device-mapper disk: kpartx's names (disk9p1...)"
is "$(norm_list "$S/list-disk9-vstor.txt")" "$(norm_list "$S/list-disk9-kpartx.txt")" \
	"... sizes and starts"
is "$(step map-disk9)" 0 "map a device-mapper disk"
like "$(cat "$S/vstor-disk9.table")" $'(^|\n)disk9p1: 0 8192 linear [0-9]+:[0-9]+ 2048\n' \
	"its partitions are disk9p1..."
is "$(cat "$S/vstor-disk9.table")" "$(cat "$S/kpartx-disk9.table")" "... with kpartx's tables"
is "$(cat "$S/vstor-disk9.uuid")" "$(cat "$S/kpartx-disk9.uuid")" "... and uuids (partN-vstor-test-disk9)"
is "$(step map-gpt)" 0 "map a GPT image file"
# The loop device numbers may differ between the two runs.
is "$(sed 's/loop[0-9]*p/loopXp/; s/ 7:[0-9]* / 7:X /' "$S/vstor-gpt.table")" \
	"$(sed 's/loop[0-9]*p/loopXp/; s/ 7:[0-9]* / 7:X /' "$S/kpartx-gpt.table")" \
	"... as kpartx -a maps it"
is "$(step unmap-gpt)/$(cat "$S/gpt-loops-after.txt")" 0/ "unmap detaches its loop device"
is "$(step unmap-kpartx-gpt)/$(cat "$S/gpt-loops-after2.txt")" 0/ \
	"unmap of an image file that kpartx -a mapped: maps and loop device removed"
is "$(step map-qcow2)/$(step write-qcow2)" 0/0 "map a qcow2 image through FUSE and write to a partition"
is "$(step unmap-qcow2)" 0 "... and unmap it"
run_ok "the write through the partition's map is in the qcow2" \
	qemu-io -f qcow2 -c "read -P 0x74 $((10240 * 512 + 5 * 512)) 1" "$S/mbr4.qcow2"
qcow2_clean "the qcow2 is clean" "$S/mbr4.qcow2"
is "$(grep -v '^lock$' "$S/state-after.txt")/$(cat "$S/dm-after.txt")" "/No devices found" \
	"nothing is left: no state, no device-mapper device"
