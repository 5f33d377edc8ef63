#!/bin/bash
# vstor img rebase against qemu-img rebase.
#
# Overlays built with qemu-img and qemu-io (data, zero clusters,
# compressed clusters, partial clusters, a shorter and a longer old
# backing file, a two-deep old chain) are copied into two directories
# and rebased there by qemu-img and by vstor: safe mode onto another
# qcow2 or raw backing file and onto nothing (-b ""), unsafe mode (-u)
# onto a renamed or missing file.  The results must read the same as
# qemu-img's, safe mode must not change what the overlay reads, the
# recorded name and format must be what qemu-img info shows, and the
# images must be clean.  Refusals follow qemu-img (-b without -F,
# neither -b nor -u), a backing name too long for the header is refused,
# and a header with an unknown extension keeps it.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io "$VSTOR"

plan 55

mkdir "$T/src" "$T/q" "$T/v"

io() {
	local img=$1 fmt=$2 cmd
	shift 2
	for cmd in "$@"; do
		qemu-io -f "$fmt" -c "$cmd" "$img" >/dev/null ||
			die "qemu-io $cmd on $img failed"
	done
}

twins() {
	rm -f "$T"/q/* "$T"/v/*
	cp "$T"/src/* "$T/q/" && cp "$T"/src/* "$T/v/" || die "cannot copy"
}

same() {
	run qemu-img compare -f "$2" -F "$2" "$T/q/$1" "$T/v/$1"
	if [ "$rc" -eq 0 ]; then
		ok "$3"
	else
		not_ok "$3" "$out" "$err"
	fi
}

# info IMG: "backing|format" as qemu-img info records them.
info() {
	qemu-img info --output=json "$1" | python3 -c '
import json, sys
i = json.load(sys.stdin)
print("%s|%s" % (i.get("backing-filename", ""), i.get("backing-filename-format", "")))'
}

# rebase TEXT ARGS... (file names relative to $T/q and $T/v): both
# rebase; vstor succeeds and prints nothing.
rebase() {
	local text=$1
	shift
	(cd "$T/q" && qemu-img rebase -q "$@") || diag "qemu-img rebase $* failed"
	run env -C "$T/v" "$VSTOR" img rebase "$@"
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		ok "$text: vstor rebases"
	else
		not_ok "$text: vstor rebases" "exit $rc" "$err"
	fi
}

# The old chain: old.qcow2 (8M) <- top.qcow2; new backing files
# new.qcow2, new.raw (8M) and short.raw (3M).
qemu-img create -q -f qcow2 "$T/src/old.qcow2" 8M
io "$T/src/old.qcow2" qcow2 "write -P 1 0 4M" "write -P 2 4M 2M" "write -c -P 3 6M 128k"
qemu-img create -q -f qcow2 -b old.qcow2 -F qcow2 "$T/src/top.qcow2"
io "$T/src/top.qcow2" qcow2 "write -P 9 1M 64k" "write -z 2M 64k" "write -P 8 3M 1000" \
	"write -c -P 7 5M 64k"
qemu-img create -q -f qcow2 "$T/src/new.qcow2" 8M
io "$T/src/new.qcow2" qcow2 "write -P 1 0 2M" "write -P 5 2M 1M" "write -P 2 4M 1M" \
	"write -z 6M 64k"
qemu-img create -q -f raw "$T/src/new.raw" 8M
io "$T/src/new.raw" raw "write -P 1 0 4M" "write -P 3 6M 128k"
qemu-img create -q -f raw "$T/src/short.raw" 3M
io "$T/src/short.raw" raw "write -P 1 0 3M"

for target in "new.qcow2|qcow2" "new.raw|raw" "short.raw|raw"; do
	name=${target%|*} fmt=${target#*|}
	twins
	rebase "safe onto $name" -b "$name" -F "$fmt" top.qcow2
	same top.qcow2 qcow2 "safe onto $name: reads as qemu-img's result"
	run qemu-img compare "$T/src/top.qcow2" "$T/v/top.qcow2"
	is "$rc" 0 "safe onto $name: reads as before the rebase"
	is "$(info "$T/v/top.qcow2")" "$name|$fmt" "safe onto $name: qemu-img info shows the new backing file"
	qcow2_clean "safe onto $name: clean" "$T/v/top.qcow2"
done

twins
rebase "safe onto nothing" -b "" top.qcow2
same top.qcow2 qcow2 "onto nothing: reads as qemu-img's result"
run qemu-img compare "$T/src/top.qcow2" "$T/v/top.qcow2"
is "$rc" 0 "onto nothing: reads as before the rebase"
is "$(info "$T/v/top.qcow2")" "|" "onto nothing: no backing file any more"
qcow2_clean "onto nothing: clean" "$T/v/top.qcow2"

# Safe mode on a version 2 overlay with 512-byte clusters.
rm -f "$T/src/top.qcow2"
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 -b old.qcow2 -F qcow2 "$T/src/top.qcow2"
io "$T/src/top.qcow2" qcow2 "write -P 9 1000 3000" "write -P 8 5M 4k"
twins
rebase "version 2 overlay onto new.raw" -p -b new.raw -F raw top.qcow2
same top.qcow2 qcow2 "version 2 overlay: reads as qemu-img's result"
run qemu-img compare "$T/src/top.qcow2" "$T/v/top.qcow2"
is "$rc" 0 "version 2 overlay: reads as before"
qcow2_clean "version 2 overlay: clean" "$T/v/top.qcow2"

# Two-deep old chain onto its base: only mid's data moves up.
rm -f "$T"/src/*
qemu-img create -q -f qcow2 "$T/src/base.qcow2" 4M
io "$T/src/base.qcow2" qcow2 "write -P 1 0 4M"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/src/mid.qcow2"
io "$T/src/mid.qcow2" qcow2 "write -P 2 1M 1M" "write -z 3M 64k"
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$T/src/top.qcow2"
io "$T/src/top.qcow2" qcow2 "write -P 3 1536k 64k"
twins
rebase "onto the base below the backing file" -b base.qcow2 -F qcow2 top.qcow2
same top.qcow2 qcow2 "onto the base: reads as qemu-img's result"
run qemu-img compare "$T/src/top.qcow2" "$T/v/top.qcow2"
is "$rc" 0 "onto the base: reads as before"
run qemu-img map --output=json "$T/v/top.qcow2"
like "$out" '"start": 0, "length": 1048576, "depth": 1' "onto the base: equal ranges stay unallocated"
qcow2_clean "onto the base: clean" "$T/v/top.qcow2"

# Unsafe mode: only the name changes; the old file may be gone.
twins
rebase "-u onto another name" -u -b moved.qcow2 -F qcow2 top.qcow2
is "$(info "$T/v/top.qcow2")" "moved.qcow2|qcow2" "-u: qemu-img info shows the new name"
cmp -s "$T/q/top.qcow2" "$T/v/top.qcow2"
is "$?" 0 "-u: the file is byte for byte what qemu-img wrote"
mv "$T/v/mid.qcow2" "$T/v/moved.qcow2"
run qemu-img compare "$T/src/top.qcow2" "$T/v/top.qcow2"
is "$rc" 0 "-u: the image reads through the renamed file"
rebase "-u with the old backing file missing" -u -b mid2.qcow2 -F qcow2 top.qcow2
is "$(info "$T/v/top.qcow2")" "mid2.qcow2|qcow2" "-u with the old file missing: the new name"
rebase "-u alone: the image stands alone" -u top.qcow2
is "$(info "$T/v/top.qcow2")" "|" "-u alone: no backing file"
qcow2_clean "-u: clean" "$T/v/top.qcow2"

# Refusals.
twins
run_fails "-b without -F" "$VSTOR" img rebase -b base.qcow2 "$T/v/top.qcow2"
like "$err" "backing format must be specified" "with qemu-img's message"
is "$(info "$T/v/top.qcow2")" "mid.qcow2|qcow2" "a refusal changes nothing"
run_fails "neither -b nor -u" "$VSTOR" img rebase "$T/v/top.qcow2"
like "$err" "Must specify backing file \(-b\) or use unsafe mode \(-u\)" "with qemu-img's message"
long=$(printf 'x%.0s' $(seq 1 1100))
run_fails "a backing name longer than 1023 bytes" "$VSTOR" img rebase -u -b "$long" -F raw "$T/v/top.qcow2"
is "$(info "$T/v/top.qcow2")" "mid.qcow2|qcow2" "the long name changed nothing"
run_fails "a raw image has no backing file" "$VSTOR" img rebase -u -b base.qcow2 -F qcow2 -f raw "$T/v/base.qcow2"
like "$err" "does not support backing files" "and says so"
run_fails "safe mode with a missing new backing file" "$VSTOR" img rebase -b none.qcow2 -F qcow2 "$T/v/top.qcow2"

# Unknown header extensions survive a rewrite of the header.
python3 - "$T/v/top.qcow2" <<'EOF' || die "cannot add a header extension"
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(4096)
hl, = struct.unpack('>I', h[100:104])
bfo, = struct.unpack('>Q', h[8:16])
bfs, = struct.unpack('>I', h[16:20])
name = h[bfo:bfo + bfs]
off = hl
exts = b''
while True:
    t, n = struct.unpack('>II', h[off:off + 8])
    if t == 0:
        break
    exts += h[off:off + 8 + (n + 7) // 8 * 8]
    off += 8 + (n + 7) // 8 * 8
exts += struct.pack('>II', 0x12345678, 5) + b'hello\0\0\0' + b'\0' * 8
nbfo = hl + len(exts)
f.seek(8); f.write(struct.pack('>Q', nbfo))
f.seek(hl); f.write(exts + name)
EOF
run_ok "rebase of an image with an unknown extension" "$VSTOR" img rebase -u -b base.qcow2 -F qcow2 "$T/v/top.qcow2"
is "$(info "$T/v/top.qcow2")" "base.qcow2|qcow2" "the new name with the extension there"
run grep -c hello "$T/v/top.qcow2"
is "$out" 1 "the unknown extension is kept"
qcow2_clean "the image with the extension is clean" "$T/v/top.qcow2"

# 512-byte clusters: the header, the backing format extension and a long
# name do not fit in the first cluster; nothing is written then.
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 "$T/v/small.qcow2"
cp "$T/v/small.qcow2" "$T/small.orig"
long=$(printf 'y%.0s' $(seq 1 400))
run_fails "a name that does not fit in a 512-byte header cluster" "$VSTOR" img rebase -u -b "$long" -F raw "$T/v/small.qcow2"
like "$err" "do not fit in the first cluster" "and says so"
cmp -s "$T/small.orig" "$T/v/small.qcow2"
is "$?" 0 "the image is left byte for byte as it was"
