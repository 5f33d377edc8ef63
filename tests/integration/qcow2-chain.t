#!/bin/bash
# Backing chains.  (1) `vstor img info --backing-chain` says what
# `qemu-img info --backing-chain` says, JSON compared field by field and
# the human text line for line, for chains over a raw and a qcow2 base,
# 4 deep with relative names across directories and absolute names,
# with internal snapshots; a loop, a missing file, a chain deeper than
# the qcow2 limit and a base held by a writer fail cleanly.  (2) A chain
# 100 deep, each layer written by qemu-io in a region of its own plus
# some overwrites and zeroes over lower layers, reads through vstor
# exactly as the model of those writes says and exactly as qemu-img
# converts it.  (3) Reading through that chain does not re-read any
# image's header per request: under strace, 200 reads cause no more
# reads at file offset 0 than 1 read does.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 strace "$VSTOR" "$VBD_IO"

DEPTH=100
plan 59

# json_diff QEMU.json VSTOR.json: the same JSON value, every key and
# value, in any key order; else print the differences (at most 20) and
# return 1.  No field is ignored: both tools describe the same files
# (actual-size is st_blocks of the same inodes, read while nothing
# writes them).
json_diff() {
	python3 - "$1" "$2" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))
v = json.load(open(sys.argv[2]))
out = []
def cmp(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append("%s.%s: only qemu-img has it (%r)" % (path, k, a[k]))
            elif k not in a:
                out.append("%s.%s: only vstor has it (%r)" % (path, k, b[k]))
            else:
                cmp(a[k], b[k], "%s.%s" % (path, k))
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append("%s: %d entries from qemu-img, %d from vstor"
                       % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            cmp(x, y, "%s[%d]" % (path, i))
    elif type(a) != type(b) or a != b:
        out.append("%s: qemu-img %r, vstor %r" % (path or "top", a, b))
cmp(q, v, "")
print("\n".join(out[:20]))
sys.exit(1 if out else 0)
PY
}

# todo NAME WHY [DIAGNOSTIC...]: a failure that is a known gap, printed
# as TAP "not ok ... # TODO WHY", which the harness does not count.
todo() {
	_tap_n=$((_tap_n + 1))
	echo "not ok $_tap_n - $1 # TODO $2"
	shift 2
	[ $# -eq 0 ] || diag "$@"
}

# While $todo is set, the comparisons below report a difference as a
# TODO with that reason instead of a failure.
todo=

# miss NAME DIAGNOSTIC...: not_ok, or todo while $todo is set.
miss() {
	local name=$1
	shift
	if [ -n "$todo" ]; then
		todo "$name" "$todo" "$@"
	else
		not_ok "$name" "$@"
	fi
}

# cmp_json NAME QEMU.json VSTOR.json
cmp_json() {
	local diffs
	if diffs=$(json_diff "$2" "$3"); then
		ok "$1"
	else
		miss "$1" "$diffs"
	fi
}

# same_info NAME DIR FILE [OPT...]: in DIR, `img info --backing-chain`
# of FILE gives qemu-img's JSON and qemu-img's human text.
same_info() {
	local name=$1 dir=$2 file=$3 q v
	shift 3
	cd "$dir" || die "cd $dir"
	run qemu-img info "$@" --backing-chain --output=json "$file"
	q=$out
	[ "$rc" -eq 0 ] || die "qemu-img info $file: $err"
	run_ok "$name: vstor info --backing-chain --output=json" "$VSTOR" \
		img info "$@" --backing-chain --output=json "$file"
	echo "$q" >"$T/q.json"
	echo "$out" >"$T/v.json"
	cmp_json "$name: JSON as qemu-img's" "$T/q.json" "$T/v.json"
	run qemu-img info "$@" --backing-chain "$file"
	q=$out
	run "$VSTOR" img info "$@" --backing-chain "$file"
	v=$out
	if [ "$q" = "$v" ]; then
		ok "$name: human text as qemu-img's"
	else
		miss "$name: human text as qemu-img's" \
			"$(diff <(echo "$q") <(echo "$v") | head -20)"
	fi
	cd - >/dev/null || die "cd back"
}

mk() { qemu-img create -q "$@" || die "qemu-img create $*"; }
qio() { qemu-io "$@" >/dev/null || die "qemu-io $*"; }

# 1. Chains compared with qemu-img.
# A raw base under a qcow2 image, relative name.
mkdir "$T/c1"
mk -f raw "$T/c1/base.raw" 3M
qio -f raw -c 'write -P 0x11 0 1M' "$T/c1/base.raw"
(cd "$T/c1" && mk -f qcow2 -b base.raw -F raw top.qcow2 4M)
qio -f qcow2 -c 'write -P 0x12 1M 64k' "$T/c1/top.qcow2"
same_info "raw base" "$T/c1" top.qcow2
# The comparison can fail: a value changed deep inside is seen.
sed 's/"virtual-size": 3145728/"virtual-size": 3145729/' "$T/v.json" \
	>"$T/v2.json"
if json_diff "$T/v.json" "$T/v2.json" >/dev/null; then
	not_ok "the JSON comparison sees a changed value"
else
	ok "the JSON comparison sees a changed value"
fi
same_info "raw base, absolute path given" / "$T/c1/top.qcow2"

# A qcow2 base (compat 0.10, 4 KiB clusters) named by its absolute path,
# a top with lazy refcounts.
mkdir "$T/c2"
mk -f qcow2 -o compat=0.10,cluster_size=4096 "$T/c2/base.qcow2" 2M
qio -f qcow2 -c 'write -P 0x21 0 100k' "$T/c2/base.qcow2"
mk -f qcow2 -o lazy_refcounts=on -b "$T/c2/base.qcow2" -F qcow2 \
	"$T/c2/top.qcow2" 2M
same_info "qcow2 base, absolute name" "$T/c2" top.qcow2
same_info "qcow2 base, -U" "$T" c2/top.qcow2 -U

# Four deep across directories: top -> mid/mid.qcow2 (relative, down)
# -> ../base/base.raw (relative, up) and a fourth image above naming the
# top by its absolute name.
mkdir -p "$T/c3/mid" "$T/c3/base" "$T/c3/up"
mk -f raw "$T/c3/base/base.raw" 1M
(cd "$T/c3/mid" && mk -f qcow2 -o cluster_size=512 -b ../base/base.raw \
	-F raw mid.qcow2 2M)
(cd "$T/c3" && mk -f qcow2 -b mid/mid.qcow2 -F qcow2 top.qcow2 3M)
mk -f qcow2 -b "$T/c3/top.qcow2" -F qcow2 "$T/c3/up/over.qcow2" 3M
qio -f qcow2 -c 'write -P 0x31 0 64k' -c 'write -z 1M 64k' \
	"$T/c3/up/over.qcow2"
same_info "4 deep, relative names" "$T/c3" top.qcow2
same_info "4 deep, relative names, from another directory" "$T" \
	c3/top.qcow2
same_info "4 deep, absolute name on top" "$T/c3/up" over.qcow2
same_info "4 deep, from /" / "$T/c3/up/over.qcow2"

# A single image: an array of one.
same_info "no backing file" "$T/c2" base.qcow2

# Internal snapshots, in the middle of a chain: "snapshots" and the
# "Snapshot list:" table.
mkdir "$T/c4"
mk -f qcow2 "$T/c4/base.qcow2" 1M
qio -f qcow2 -c 'write -P 0x41 0 64k' "$T/c4/base.qcow2"
for name in first 'second one' a-name-longer-than-the-tag-column; do
	qemu-img snapshot -c "$name" "$T/c4/base.qcow2" ||
		die "qemu-img snapshot -c $name"
done
(cd "$T/c4" && mk -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 1M)
qemu-img snapshot -c on-top "$T/c4/top.qcow2" || die "qemu-img snapshot -c"
same_info "internal snapshots" "$T/c4" top.qcow2

# 2. Chains that cannot be described: one clear line, naming the file.
cp "$T/c2/base.qcow2" "$T/loop.qcow2"
(cd "$T" && qemu-img rebase -u -b loop.qcow2 -F qcow2 loop.qcow2) ||
	die "cannot make loop.qcow2"
run_fails "a chain that loops is refused" "$VSTOR" img info \
	--backing-chain "$T/loop.qcow2"
like "$err" "loop\.qcow2.*loop" "the error names the file and says it loops"
is "$(wc -l <<<"$err")" 1 "the error is one line"

(cd "$T" && mk -f qcow2 -b gone.raw -F raw -u orphan.qcow2 1M)
run_fails "a missing backing file is an error" "$VSTOR" img info \
	--backing-chain "$T/orphan.qcow2"
like "$err" "gone\.raw" "the error names the missing file"

# 258 qcow2 images: more than the 256 a chain may hold.
mkdir "$T/long"
mk -f qcow2 "$T/long/l0.qcow2" 1M
for ((i = 1; i < 258; i++)); do
	(cd "$T/long" && mk -u -f qcow2 -b "l$((i - 1)).qcow2" -F qcow2 \
		"l$i.qcow2" 1M)
done
run_fails "a chain deeper than 256 images is refused" "$VSTOR" img info \
	--backing-chain "$T/long/l257.qcow2"
like "$err" "^vstor: $T/long/l257\.qcow2: " "the error names the top image"
is "$(wc -l <<<"$err")" 1 "the error is one line"
like "$err" "l1\.qcow2: backing chain deeper than 256 images" \
	"the error says why, naming the image where the chain gets too deep"
run_ok "a chain of 256 qcow2 images is described" "$VSTOR" img info \
	--backing-chain --output=json "$T/long/l255.qcow2"
is "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' \
	<<<"$out")" 256 "all 256 images listed"

# -U reaches every image of the chain: a writer holding the base keeps
# a plain info out (the message names the base) and lets -U in.
"$VBD_IO" -f raw --hold 60 "$T/c1/base.raw" >"$T/hold.out" 2>&1 &
holder=$!
cleanup_add kill "$holder"
for ((i = 0; i < 100; i++)); do
	grep -q holding "$T/hold.out" && break
	sleep 0.1
done
run_fails "a base held by a writer: refused without -U" "$VSTOR" img info \
	--backing-chain "$T/c1/top.qcow2"
like "$err" "base\.raw.*-U" "the refusal names the base and says -U"
run_ok "a base held by a writer: -U reads it" "$VSTOR" img info -U \
	--backing-chain "$T/c1/top.qcow2"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# 3. A chain 100 deep.  Layer i writes 4 KiB of pattern i+1 at i*64k;
# every fifth layer also overwrites 2 KiB in the middle of the region of
# the layer three below, every eleventh zeroes the region five below.
# Layers alternate 64 KiB and 4 KiB clusters.
D=$T/deep
mkdir "$D"
SIZE=$((8 << 20))
: >"$D/ops"
for ((i = 0; i < DEPTH; i++)); do
	opts=cluster_size=$((i % 2 ? 4096 : 65536))
	if ((i == 0)); then
		mk -f qcow2 -o "$opts" "$D/l0.qcow2" "$SIZE"
	else
		(cd "$D" && mk -u -f qcow2 -o "$opts" -b "l$((i - 1)).qcow2" \
			-F qcow2 "l$i.qcow2" "$SIZE")
	fi
	cmds=(-c "write -P $((i + 1)) $((i * 65536)) 4k")
	echo "$((i + 1)) $((i * 65536)) 4096" >>"$D/ops"
	if ((i % 5 == 4)); then
		cmds+=(-c "write -P $((0x80 + i)) $(((i - 3) * 65536 + 1024)) 2k")
		echo "$((0x80 + i)) $(((i - 3) * 65536 + 1024)) 2048" >>"$D/ops"
	fi
	if ((i % 11 == 10)); then
		cmds+=(-c "write -z $(((i - 5) * 65536)) 4k")
		echo "0 $(((i - 5) * 65536)) 4096" >>"$D/ops"
	fi
	qio -f qcow2 "${cmds[@]}" "$D/l$i.qcow2"
done
TOPIMG=$D/l$((DEPTH - 1)).qcow2

# The model: what the disk holds after those writes, as "OFF LEN 0xPP"
# runs of equal bytes.
python3 - "$D/ops" "$SIZE" "$D/model.raw" <<'PY' || die "model"
import sys
disk = bytearray(int(sys.argv[2]))
for line in open(sys.argv[1]):
    pat, off, n = map(int, line.split())
    disk[off:off + n] = bytes([pat]) * n
open(sys.argv[3], "wb").write(disk)
PY
runs() {
	python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
out, start = [], 0
for i in range(1, len(data) + 1):
    if i == len(data) or data[i] != data[start]:
        out.append("%d %d 0x%02x" % (start, i - start, data[start]))
        start = i
print("\n".join(out))
PY
}
args=()
while read -r line; do
	# shellcheck disable=SC2206 # three words
	args+=(read $line)
done <<<"$(runs "$D/model.raw")"
run_ok "100 deep: every region reads as written ($((${#args[@]} / 4)) runs)" \
	"$VBD_IO" -f qcow2 --readonly "$TOPIMG" "${args[@]}"

run_ok "100 deep: qemu-img converts it" qemu-img convert -O raw "$TOPIMG" \
	"$D/qemu.raw"
run_ok "100 deep: qemu-img's conversion equals the model" cmp "$D/qemu.raw" \
	"$D/model.raw"
args=()
while read -r line; do
	# shellcheck disable=SC2206
	args+=(read $line)
done <<<"$(runs "$D/qemu.raw")"
run_ok "100 deep: vstor reads every byte as qemu-img converts it" \
	"$VBD_IO" -f qcow2 --readonly "$TOPIMG" "${args[@]}"
same_info "100 deep" "$D" "l$((DEPTH - 1)).qcow2"

# 4. No header re-read per request.  1 read, then 200 reads (each
# layer's region, whole and a 1 KiB piece of it), each under strace;
# reads at file offset 0 (headers) of every image file must be the same
# in number: they belong to the open, not to the requests.
# shellcheck disable=SC2034 # used through the nameref below
one=(read 0 4k 0x01)
# shellcheck disable=SC2207 # words on purpose
many=($(python3 - "$D/model.raw" "$DEPTH" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
for i in range(int(sys.argv[2])):
    for off in (i * 65536, i * 65536 + 3072):
        print("read %d 1k 0x%02x" % (off, d[off]))
PY
))
is "$((${#many[@]} / 4))" 200 "200 reads planned"
for n in one many; do
	declare -n ops=$n
	run_ok "strace of $((${#ops[@]} / 4)) read(s) through 100 layers" \
		strace -f -y -qq -e trace=pread64,preadv,preadv2,read \
		-o "$D/strace-$n.log" "$VBD_IO" --aio=threads -f qcow2 \
		--readonly "$TOPIMG" "${ops[@]}"
	unset -n ops
done

# "FILE KIND AT0 OTHER" per image file and syscall kind: how many reads
# at offset 0, and elsewhere (read(2) has no offset: counted as at0).
count_reads() {
	python3 - "$1" "$D/" <<'PY'
import collections, re, sys
pending, counts = {}, collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"(\d+)\s+(.*)", line.rstrip("\n"))
    if not m:
        continue
    pid, rest = m.groups()
    if rest.endswith("<unfinished ...>"):
        pending[pid] = rest[:-len("<unfinished ...>")]
        continue
    r = re.match(r"<\.\.\. \w+ resumed>\s?(.*)", rest)
    if r:
        rest = pending.pop(pid, "") + r.group(1)
    m = re.match(r"(pread64|preadv2|preadv|read)\(\d+<([^>]*)>, (.*)\) += -?\d+", rest)
    if not m or not m.group(2).startswith(sys.argv[2]):
        continue
    call, path, args = m.groups()
    parts = args.rsplit(", ", 2)
    off = None if call == "read" else int(parts[-2 if call == "preadv2" else -1])
    counts[(path, call, "at0" if not off else "other")] += 1
for (path, call, where), n in sorted(counts.items()):
    print(path, call, where, n)
PY
}
count_reads "$D/strace-one.log" >"$D/one.count"
count_reads "$D/strace-many.log" >"$D/many.count"
hdr_one=$(awk '$3 == "at0" { n += $4 } END { print n + 0 }' "$D/one.count")
hdr_many=$(awk '$3 == "at0" { n += $4 } END { print n + 0 }' "$D/many.count")
files_one=$(awk '$3 == "at0" { print $1 }' "$D/one.count" | sort -u | wc -l)
data_one=$(awk '$3 == "other" { n += $4 } END { print n + 0 }' \
	"$D/one.count")
data_many=$(awk '$3 == "other" { n += $4 } END { print n + 0 }' \
	"$D/many.count")
is "$files_one" "$DEPTH" \
	"strace sees the header reads of all $DEPTH images at open"
# 182 of the 200 reads find data (18 fall on zeroed regions): each is a
# read of an image file that strace must see.
check "strace sees the requests' reads ($data_one, then $data_many reads elsewhere than offset 0)" \
	test $((data_many - data_one)) -ge 182
is "$hdr_many" "$hdr_one" "200 reads: no more header reads than 1 read"
is "$(awk '$3 == "at0"' "$D/many.count")" \
	"$(awk '$3 == "at0"' "$D/one.count")" \
	"the same header reads, file by file"
