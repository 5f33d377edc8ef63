#!/bin/bash
# vstor clone on the host: image files and a block device (a loop device)
# as template disks.  LV templates (thin and classic snapshots) are
# cloned in the test VM by clone-lvm.t.
#
# Two ext4 templates, 64 MiB and 1 GiB (sparse), each with /etc/hostname,
# /etc/machine-id and SSH host keys; a third the 64 MiB one converted to
# qcow2.  Cloning takes constant work: each clone's overlay has no data
# cluster, and the 64 MiB and 1 GiB clones' files have the same size and
# allocation.  The new config keeps the template's comments and layout,
# with a new name, uuid and MAC, the cloned disk's target, and the
# read-only disk and empty cdrom shared; the overlay records its backing
# file and format, and qemu-img check finds it clean.  A write to the
# clone lands in the clone only: the template's bytes do not change.
# --customize resets hostname, machine-id and SSH host keys inside the
# clone (read back with debugfs from a raw copy; e2fsck finds the file
# system clean), through a raw and a qcow2 template, and leaves the
# template as it was; in a partitioned template, the root in its second
# partition is the one customized.  A loop device template gets an
# overlay beside the new config.  Refusals, each with nothing left
# behind: the clone's config or disk exists already, its folder does
# not, a template that assigns its name twice, the template's name, a
# bad name, a template disk open for writing (vstor serve holds it), a
# --customize that finds no ext4 root (the overlays it had made are
# removed).
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/serve.sh
. "$(dirname "$0")/../lib/serve.sh"

requires qemu-img qemu-io debugfs mkfs.ext4 e2fsck losetup sfdisk sha256sum \
	"$VSTOR"
[ -e /dev/fuse ] || skip_all "no /dev/fuse"

plan 70

# The clone's temporary files (debugfs scripts, the FUSE mount point) go
# under $T too.
export TMPDIR=$T

# A root file system with an identity to reset.
mkdir -p "$T/root/etc/ssh" "$T/root/data"
echo tmpl >"$T/root/etc/hostname"
echo 0123456789abcdef0123456789abcdef >"$T/root/etc/machine-id"
echo private >"$T/root/etc/ssh/ssh_host_ed25519_key"
echo public >"$T/root/etc/ssh/ssh_host_ed25519_key.pub"
echo private >"$T/root/etc/ssh/ssh_host_rsa_key"
echo 'Port 22' >"$T/root/etc/ssh/sshd_config"
truncate -s 64M "$T/small.img" && truncate -s 1G "$T/large.img" &&
	mkfs.ext4 -q -d "$T/root" "$T/small.img" &&
	mkfs.ext4 -q -d "$T/root" "$T/large.img" &&
	qemu-img convert -O qcow2 "$T/small.img" "$T/q.qcow2" &&
	qemu-img create -q -f raw "$T/ro.img" 4M ||
	die "cannot make the templates"

# template NAME IMAGE FORMAT: a template config with comments, a vif with
# a MAC, the image as xvda, a read-only disk and an empty cdrom.
template() {
	cat >"$T/$1.cfg" <<EOF
# the $1 template
name = "$1"    # its name
kernel = "/boot/vmlinuz"
memory = 256
vif = [ 'bridge=br0, mac=00:16:3e:00:00:01' ]
disk = [ 'format=$3, vdev=xvda, access=rw, target=$2',  # the root
         'file:$T/ro.img,xvdb,r',
         ',,hdc:cdrom,r' ]
EOF
}
template small "$T/small.img" raw
template large "$T/large.img" raw
template q "$T/q.qcow2" qcow2
sum_small=$(sha256sum <"$T/small.img")
sum_q=$(sha256sum <"$T/q.qcow2")

# own_bytes IMG: bytes of guest data the qcow2 image IMG holds itself
# (not its backing file), from qemu-img map.
own_bytes() {
	qemu-img map -f qcow2 --output=json "$1" |
		awk '/"depth": 0,/ && /"data": true/ {
			sub(/.*"length": /, ""); sub(/,.*/, ""); n += $0 }
			END { print n + 0 }'
}

# fs_get IMG REQUEST [OFFSET]: run a debugfs request on a raw copy of
# IMG, on the file system at OFFSET (default 0).
fs_get() {
	qemu-img convert -O raw "$1" "$T/view.raw" &&
		debugfs -R "$2" "$T/view.raw?offset=${3:-0}" 2>/dev/null
}

# --- constant work ---------------------------------------------------------
run_ok "clone the 64 MiB template" "$VSTOR" clone "$T/small.cfg" s1
like "$out" "s1: $T/s1.cfg \\(uuid [0-9a-f-]{36}\\)" "it names the new config"
like "$out" "xvda +qcow2 overlay +$T/small.img -> $T/s1-xvda.qcow2" \
	"xvda becomes a qcow2 overlay beside the template"
like "$out" "xvdb +shared +$T/ro.img" "the read-only disk is shared"
run_ok "clone the 1 GiB template" "$VSTOR" clone "$T/large.cfg" b1
is "$(own_bytes "$T/s1-xvda.qcow2")" 0 "the 64 MiB clone holds no data"
is "$(own_bytes "$T/b1-xvda.qcow2")" 0 "the 1 GiB clone holds no data"
# The only difference: qcow2's L1 table, 8 bytes per 512 MiB of disk.
size_s=$(stat -c %s "$T/s1-xvda.qcow2") size_b=$(stat -c %s "$T/b1-xvda.qcow2")
check "both clones' files have the same size, to the L1 table's 8 bytes" \
	test $((size_b - size_s)) -eq 8
is "$(stat -c %b "$T/b1-xvda.qcow2")" "$(stat -c %b "$T/s1-xvda.qcow2")" \
	"and the same allocation"
run qemu-img info --output=json "$T/b1-xvda.qcow2"
like "$out" '"virtual-size": 1073741824' "the clone has the template's size"
like "$out" "\"full-backing-filename\": \"$T/large.img\"" \
	"its backing file is the template"
like "$out" '"backing-filename-format": "raw"' "with the format recorded"
qcow2_clean "qemu-img check: the 1 GiB clone is clean" "$T/b1-xvda.qcow2"

# --- the new config --------------------------------------------------------
cfg=$(cat "$T/s1.cfg")
like "$cfg" "^# the small template
name = 's1'    # its name
uuid = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
kernel = \"/boot/vmlinuz\"
memory = 256
" "name and a new uuid; comments and other lines as written"
like "$cfg" "vif = \\[ 'bridge=br0, mac=00:16:3e:[0-7][0-9a-f](:[0-9a-f]{2}){2}' \\]" \
	"the vif keeps its bridge, with a MAC in 00:16:3e"
unlike "$cfg" "mac=00:16:3e:00:00:01" "the template's MAC is gone"
like "$cfg" "disk = \\[ 'format=qcow2, vdev=xvda, access=rw, target=$T/s1-xvda.qcow2',  # the root
         'file:$T/ro.img,xvdb,r',
         ',,hdc:cdrom,r' \\]" "the cloned disk's spec changes, the rest stays"
uuid1=$(sed -n "s/^uuid = '\\(.*\\)'/\\1/p" "$T/s1.cfg")
uuid2=$(sed -n "s/^uuid = '\\(.*\\)'/\\1/p" "$T/b1.cfg")
check "each clone has its own uuid" test -n "$uuid1" -a "$uuid1" != "$uuid2"
mac1=$(grep -o 'mac=[0-9a-f:]*' "$T/s1.cfg")
mac2=$(grep -o 'mac=[0-9a-f:]*' "$T/b1.cfg")
check "and its own MAC" [ "$mac1" != "$mac2" ]

# --- writes stay in the clone ----------------------------------------------
run_ok "write 1 MiB into the clone" qemu-io -f qcow2 \
	-c 'write -P 0xab 1M 1M' "$T/s1-xvda.qcow2"
run_ok "the clone reads it back" qemu-io -f qcow2 -c 'read -P 0xab 1M 1M' \
	"$T/s1-xvda.qcow2"
is "$(sha256sum <"$T/small.img")" "$sum_small" "the template did not change"
run_fails "template and clone now differ" qemu-img compare -q \
	"$T/small.img" "$T/s1-xvda.qcow2"

# --- --customize -----------------------------------------------------------
run_ok "clone the raw template with --customize" "$VSTOR" clone --customize \
	"$T/small.cfg" c1
like "$out" "xvda .* -> $T/c1-xvda.qcow2 \\(customized\\)" \
	"it says xvda was customized"
is "$(fs_get "$T/c1-xvda.qcow2" 'cat /etc/hostname')" c1 \
	"/etc/hostname is the new name"
like "$(fs_get "$T/c1-xvda.qcow2" 'stat /etc/machine-id')" \
	'Size: 0[^0-9]' "/etc/machine-id is empty"
ssh=$(fs_get "$T/c1-xvda.qcow2" 'ls /etc/ssh')
unlike "$ssh" "ssh_host_" "no SSH host key is left"
like "$ssh" "sshd_config" "other files in /etc/ssh stay"
run e2fsck -fn "$T/view.raw"
is "$rc" 0 "e2fsck: the clone's file system is clean"
is "$(debugfs -R 'cat /etc/hostname' "$T/small.img" 2>/dev/null)" tmpl \
	"the template's hostname is unchanged"
is "$(sha256sum <"$T/small.img")" "$sum_small" "and so is every byte of it"
qcow2_clean "qemu-img check: the customized clone is clean" "$T/c1-xvda.qcow2"
check "no FUSE mount or temporary file is left" \
	[ -z "$(find "$T" -mindepth 1 -maxdepth 1 -name 'vstor-*')" ]

run_ok "clone the qcow2 template with --customize" "$VSTOR" clone \
	--customize "$T/q.cfg" c2
run qemu-img info --output=json "$T/c2-xvda.qcow2"
like "$out" '"backing-filename-format": "qcow2"' \
	"the overlay records the qcow2 backing format"
is "$(fs_get "$T/c2-xvda.qcow2" 'cat /etc/hostname')" c2 \
	"the qcow2 clone's hostname is the new name"
unlike "$(fs_get "$T/c2-xvda.qcow2" 'ls /etc/ssh')" "ssh_host_" \
	"and its SSH host keys are gone"
is "$(sha256sum <"$T/q.qcow2")" "$sum_q" "the qcow2 template did not change"

# A partitioned template: a data file system in partition 1, the root
# in partition 2 (MBR).
truncate -s 40M "$T/part.img" && truncate -s 8M "$T/p1.fs" &&
	truncate -s 24M "$T/p2.fs" && mkfs.ext4 -q "$T/p1.fs" &&
	mkfs.ext4 -q -d "$T/root" "$T/p2.fs" &&
	printf 'label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=49152, type=83\n' |
	sfdisk -q "$T/part.img" &&
	dd if="$T/p1.fs" of="$T/part.img" bs=512 seek=2048 conv=notrunc status=none &&
	dd if="$T/p2.fs" of="$T/part.img" bs=512 seek=18432 conv=notrunc status=none ||
	die "cannot make the partitioned template"
template part "$T/part.img" raw
run_ok "clone a partitioned template with --customize" "$VSTOR" clone \
	--customize "$T/part.cfg" c3
like "$out" "xvda .* -> $T/c3-xvda.qcow2 \\(customized\\)" \
	"its disk was customized"
is "$(fs_get "$T/c3-xvda.qcow2" "cat /etc/hostname" \
	"$((18432 * 512))")" c3 "the root in partition 2 has the new hostname"
unlike "$(fs_get "$T/c3-xvda.qcow2" 'ls /etc/ssh' "$((18432 * 512))")" \
	"ssh_host_" "and no SSH host key"
is "$(debugfs -R 'cat /etc/hostname' "$T/part.img?offset=$((18432 * 512))" \
	2>/dev/null)" tmpl "the template's partition is unchanged"

# --- a block device template -----------------------------------------------
loop=$(losetup -f --show "$T/small.img") || die "losetup failed"
cleanup_add losetup -d "$loop"
cat >"$T/dev.cfg" <<EOF
name = "dev"
kernel = "/boot/vmlinuz"
disk = [ 'phy:$loop,xvda,w' ]
EOF
mkdir -p "$T/out"
run_ok "clone a block device template" "$VSTOR" clone "$T/dev.cfg" d1 \
	-o "$T/out/d1.cfg"
like "$out" "xvda +qcow2 overlay +$loop -> $T/out/d1-xvda.qcow2" \
	"its overlay goes beside the new config"
run qemu-img info --output=json "$T/out/d1-xvda.qcow2"
like "$out" "\"backing-filename\": \"$loop\"" "backed by the device"
like "$(cat "$T/out/d1.cfg")" "disk = \\[ 'format=qcow2, vdev=xvda, access=rw, target=$T/out/d1-xvda.qcow2' \\]" \
	"the new config names the overlay"

# --- refusals, with nothing left behind ------------------------------------
# listing: what is in $T, to compare before and after a refusal.
listing() { (cd "$T" && find . -path ./view.raw -prune -o -print | sort); }

before=$(listing)
cfg_before=$(cat "$T/s1.cfg")
run_fails "a second clone named s1 is refused" "$VSTOR" clone \
	"$T/small.cfg" s1
like "$err" "config '$T/s1.cfg' already exists; vstor clone never overwrites" \
	"because its config exists"
is "$(cat "$T/s1.cfg")" "$cfg_before" "the existing config is untouched"

sed 's/^memory = 256$/name = "again"/' "$T/large.cfg" >"$T/twice.cfg"
rm "$T/b1.cfg"
before=$(listing)
run_fails "a clone whose disk exists is refused" "$VSTOR" clone \
	"$T/large.cfg" b1
like "$err" "clone disk '$T/b1-xvda.qcow2' already exists" \
	"the message names the disk"
is "$(listing)" "$before" "nothing was made"

run_fails "a new config in a missing folder is refused" "$VSTOR" clone \
	"$T/large.cfg" b2 -o "$T/nodir/b2.cfg"
like "$err" "folder of the new config '$T/nodir': No such file" \
	"the message names the folder"

run_fails "a template that assigns name twice is refused" "$VSTOR" clone \
	"$T/twice.cfg" b2
like "$err" "twice.cfg:4: name is assigned again \\(first on line 2\\)" \
	"the message names both lines"

run_fails "the template's own name is refused" "$VSTOR" clone \
	"$T/small.cfg" small
like "$err" "a name other than the template's" "the message says why"
run_fails "a bad name is refused" "$VSTOR" clone "$T/small.cfg" 'a/b'
like "$err" "new name: 'a/b': a domain name holds only" \
	"the message names the bad name"
is "$(listing)" "$before" "nothing was made by any of them"

serve_start busy --nbd "$T/busy.sock" "format=raw,vdev=xvda,access=rw,target=$T/small.img"
before=$(listing)
run_fails "a template open for writing is refused" "$VSTOR" clone \
	"$T/small.cfg" w1
like "$err" "disk xvda: the template '$T/small.img' is open for writing" \
	"the message names the template disk"
is "$(listing)" "$before" "nothing was made"
serve_stop busy

# A template whose disk holds no file system: --customize fails after
# the overlay was made, and removes it.
qemu-img create -q -f raw "$T/blank.img" 8M
cat >"$T/blank.cfg" <<EOF
name = "blank"
kernel = "/boot/vmlinuz"
disk = [ 'file:$T/blank.img,xvda,w' ]
EOF
before=$(listing)
run_fails "--customize without an ext4 root fails" "$VSTOR" clone \
	--customize "$T/blank.cfg" n1
like "$err" "no cloned disk holds an ext2/3/4 file system with /etc" \
	"the message says what was missing"
is "$(listing)" "$before" "the overlay it had made is removed"
