#!/bin/bash
# Internal snapshots, checked against QEMU's tools: snapshots that vstor
# creates are listed by `qemu-img snapshot -l` exactly as vstor lists
# them, and `qemu-img check` finds neither errors nor leaks after every
# create, apply and delete; snapshots that qemu-img creates are listed,
# applied and deleted by vstor.  Data written between snapshots (by
# qemu-io and through vstor's own data path) is restored by apply,
# and writes after an apply never reach the snapshot.  Images of both
# compat levels, cluster sizes 512 to 2 MiB, refcount widths 8 to 64,
# lazy refcounts, zstd, compressed clusters and backing files.  A
# refcount that would overflow (refcount_bits=1 and 2) refuses the
# snapshot and leaves the image as it was.  Malformed snapshot tables
# are refused at open, naming the field, without a crash.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VBD_IO"

SIZE=$((64 << 20))
M=$((1 << 20))
CONFIGS=(
	"v2-64k compat=0.10,cluster_size=65536"
	"v3-512 cluster_size=512"
	"v3-4k-rc8 cluster_size=4096,refcount_bits=8"
	"v3-64k-rc64 cluster_size=65536,refcount_bits=64"
	"v3-2M cluster_size=2097152"
	"v3-lazy lazy_refcounts=on,cluster_size=65536"
	"v3-zstd compression_type=zstd,cluster_size=65536"
	"v2-raw-backing compat=0.10,cluster_size=65536 raw"
	"v3-qcow2-backing cluster_size=4096 qcow2"
)
# Extended L2 entries (16 bytes each), where this build opens them.
EXTL2="v3-extl2 extended_l2=on,cluster_size=65536"
PER_CONFIG=22
BAD_CASES=8
SWEEP=12
plan $(((${#CONFIGS[@]} + 1) * PER_CONFIG + 9 + 11 + 7 + 13 + BAD_CASES * 3 + 2 +
	3 * SWEEP))

# A raw base that reads 0xb1 everywhere, and a qcow2 one over it.
qemu-img create -q -f raw "$T/base.raw" "$SIZE" &&
	qemu-io -f raw -c "write -P 0xb1 0 $SIZE" "$T/base.raw" >/dev/null ||
	die "cannot make base.raw"
(cd "$T" && qemu-img create -q -f qcow2 -b base.raw -F raw base.qcow2) ||
	die "cannot make base.qcow2"

# make IMG OPTS [raw|qcow2]: a new image, on a backing file if asked.
make_img() {
	local img=$1 opts=$2 backing=${3:-}
	rm -f "$img"
	case $backing in
	raw | qcow2) (cd "$T" && qemu-img create -q -f qcow2 -o "$opts" \
		-b "base.$backing" -F "$backing" "$img" "$SIZE") ;;
	*) qemu-img create -q -f qcow2 -o "$opts" "$img" "$SIZE" ;;
	esac
}

# verify NAME IMG REGIONS: every "OFF LEN 0xPP" reads back with qemu-io.
verify() {
	local name=$1 img=$2 off len pat args=() n=0
	while read -r off len pat; do
		[ -n "$off" ] || continue
		args+=(-c "read -q -P $pat $off $len")
		n=$((n + 1))
	done <<<"$3"
	run qemu-io -r -f qcow2 "${args[@]}" "$img"
	if [ "$rc" -eq 0 ] && [ -z "$out" ] && [ "$n" -gt 0 ]; then
		ok "$name ($n regions)"
	else
		not_ok "$name" "exit $rc" "$(head -5 <<<"$out")"
	fi
}

# "ID NAME" per snapshot, from either tool's -l output.
ids() {
	awk 'NR > 2 { print $1, $2 }' <<<"$1"
}

# same_list NAME IMG: vstor and qemu-img list the same snapshots, in
# the same layout.
same_list() {
	local q
	run qemu-img snapshot -l "$2"
	q=$out
	run "$VSTOR" img snapshot -l "$2"
	is "$out" "$q" "$1"
}

snap() {
	"$VSTOR" img snapshot "$@"
}

# One configuration: snapshots by vstor around writes by qemu-io and by
# vstor (vbd-io), applied, written after, applied again, deleted.
run_config() {
	local name=$1 opts=$2 backing=${3:-} img="$T/$1.qcow2" cs base
	local s1 s2
	cs=$(sed -n 's/.*cluster_size=\([0-9]*\).*/\1/p' <<<"$opts")
	cs=${cs:-65536}
	base=0x00
	[ -z "$backing" ] || base=0xb1
	make_img "$img" "$opts" "$backing" &&
		qemu-io -f qcow2 -c "write -P 0x11 0 1M" \
			-c "write -P 0x12 8M 256k" \
			-c "write -c -P 0x13 16M $cs" "$img" >/dev/null ||
		die "$name: cannot make the image"
	s1="0 1M 0x11
8M 256k 0x12
16M $cs 0x13
32M 64k $base"
	s2="0 128k 0x31
128k 896k 0x11
8M 64k 0x21
$((8 * M + 65536)) 192k 0x12
16M 512 0x31
32M 64k 0x31"
	[ "$cs" -le 512 ] || s2+="
$((16 * M + 512)) $((cs - 512)) 0x13"

	run_ok "$name: create s1" snap -c s1 "$img"
	# After the snapshot, vstor's own writes must copy, never write in
	# place: partial clusters, a compressed one, a new one.
	run_ok "$name: vstor writes after s1" "$VBD_IO" -f qcow2 "$img" \
		write 0 128k 0x31 write 16M 512 0x31 write 32M 64k 0x31
	run qemu-io -f qcow2 -c "write -P 0x21 8M 64k" "$img"
	run_ok "$name: create s2" snap -c s2 "$img"
	run qemu-img snapshot -l "$img"
	is "$(ids "$out")" "1 s1
2 s2" "$name: qemu-img lists ids and names"
	same_list "$name: same list as qemu-img" "$img"
	qcow2_clean "$name: clean after two snapshots" "$img"

	run "$VBD_IO" -f qcow2 "$img" write 0 128k 0x41
	run qemu-io -f qcow2 -c "write -P 0x42 8M 64k" "$img"
	run_ok "$name: apply s1" snap -a s1 "$img"
	verify "$name: s1 content back" "$img" "$s1"
	qcow2_clean "$name: clean after apply" "$img"

	# Writes after an apply go to the active tables only.
	run_ok "$name: vstor writes after apply" "$VBD_IO" -f qcow2 "$img" \
		write 0 1M 0x51 write 16M 4k 0x52 write 8M 64k 0x53
	verify "$name: the writes read back" "$img" "0 1M 0x51
8M 64k 0x53"
	run_ok "$name: apply s1 again" snap -a 1 "$img"
	verify "$name: s1 untouched by them" "$img" "$s1"

	run_ok "$name: apply s2" snap -a s2 "$img"
	verify "$name: s2 content" "$img" "$s2"
	qcow2_clean "$name: clean after second apply" "$img"

	run_ok "$name: delete s1" snap -d s1 "$img"
	qcow2_clean "$name: clean after delete" "$img"
	verify "$name: active content kept" "$img" "$s2"
	run_ok "$name: delete id 2" snap -d 2 "$img"
	qcow2_clean "$name: clean with no snapshot" "$img"
	run qemu-img snapshot -l "$img"
	is "$out" "" "$name: qemu-img lists none"
}

for c in "${CONFIGS[@]}"; do
	# shellcheck disable=SC2086 # name, options, backing
	run_config $c
done
qemu-img create -q -f qcow2 -o extended_l2=on "$T/x.qcow2" 1M
if "$VSTOR" img info "$T/x.qcow2" >/dev/null 2>&1; then
	# shellcheck disable=SC2086 # name, options
	run_config $EXTL2
else
	skip "$PER_CONFIG" "this build does not open extended L2 images"
fi

# Snapshots that qemu-img made (9).
img=$T/q.qcow2
make_img "$img" "cluster_size=65536"
qemu-io -f qcow2 -c "write -P 0x61 0 2M" "$img" >/dev/null &&
	qemu-img snapshot -c qa "$img" &&
	qemu-io -f qcow2 -c "write -P 0x62 1M 2M" "$img" >/dev/null &&
	qemu-img snapshot -c qb "$img" &&
	qemu-io -f qcow2 -c "write -P 0x63 0 512k" "$img" >/dev/null ||
	die "cannot make q.qcow2"
same_list "qemu-img's snapshots: same list" "$img"
run "$VSTOR" img snapshot -l "$img"
is "$(ids "$out")" "1 qa
2 qb" "qemu-img's snapshots: ids and names"
run_ok "qemu-img's snapshots: apply qa" snap -a qa "$img"
verify "qa content" "$img" "0 2M 0x61
2M 1M 0x00"
qcow2_clean "clean after applying qa" "$img"
run_ok "qemu-img's snapshots: delete qb" snap -d qb "$img"
qcow2_clean "clean after deleting qb" "$img"
run_ok "qemu-img applies what is left" qemu-img snapshot -a qa "$img"
verify "qa content from qemu-img" "$img" "0 2M 0x61"

# Refcount overflow (12): qemu-img refuses too, but leaks clusters.
img=$T/rc1.qcow2
make_img "$img" "refcount_bits=1"
run_ok "rc1: a snapshot of an empty image" snap -c a "$img"
run_ok "rc1: a second one" snap -c b "$img"
qcow2_clean "rc1: clean" "$img"
qemu-io -f qcow2 -c "write -P 0x71 0 64k" "$img" >/dev/null
run_fails "rc1: no snapshot of data with 1-bit refcounts" snap -c c "$img"
like "$err" "overflow refcount_bits=1.*unchanged" "rc1: says why"
qcow2_clean "rc1: no leak after the refusal" "$img"
img=$T/rc2.qcow2
make_img "$img" "refcount_bits=2"
qemu-io -f qcow2 -c "write -P 0x72 0 64k" "$img" >/dev/null
run_ok "rc2: first snapshot" snap -c a "$img"
run_ok "rc2: second snapshot (refcount 3)" snap -c b "$img"
run_fails "rc2: a third would overflow" snap -c c "$img"
qcow2_clean "rc2: no leak after the refusal" "$img"
run "$VSTOR" img snapshot -l "$img"
is "$(ids "$out")" "1 a
2 b" "rc2: the list is unchanged"

# Apply restores the virtual size a snapshot was taken with (7).
img=$T/z.qcow2
make_img "$img" "cluster_size=65536"
qemu-img resize -q -f qcow2 --shrink "$img" 16M &&
	qemu-io -f qcow2 -c "write -P 0xa1 0 16M" "$img" >/dev/null &&
	snap -c small "$img" && qemu-img resize -q -f qcow2 "$img" 2G &&
	qemu-io -f qcow2 -c "write -P 0xa2 1G 1M" "$img" >/dev/null &&
	snap -c big "$img" || die "cannot make z.qcow2"
run_ok "resize: apply the smaller snapshot" snap -a small "$img"
run qemu-img info -f qcow2 "$img"
like "$out" "virtual size: 16 MiB \(16777216 bytes\)" "resize: 16 MiB again"
qcow2_clean "resize: clean after shrinking" "$img"
run_ok "resize: apply the larger one" snap -a big "$img"
run qemu-img info -f qcow2 "$img"
like "$out" "virtual size: 2 GiB" "resize: 2 GiB again"
verify "resize: content of the larger one" "$img" "0 16M 0xa1
1G 1M 0xa2"
qcow2_clean "resize: clean after growing" "$img"

# Refusals (13).
img=$T/u.qcow2
make_img "$img" "cluster_size=65536"
run_ok "one snapshot" snap -c dup "$img"
run_fails "a name in use" snap -c dup "$img"
like "$err" "named 'dup' exists already \(id 1\)" "the name in use is named"
run_fails "an empty name" snap -c "" "$img"
run_fails "apply a missing snapshot" snap -a nosuch "$img"
like "$err" "no snapshot has that id or name" "the missing one is named"
run_fails "delete a missing snapshot" snap -d nosuch "$img"
run_fails "-U with -c" snap -U -c x "$img"
run_fails "two operations" snap -l -c x "$img"
qemu-img create -q -f raw "$T/r.raw" 1M
run_fails "raw has no snapshots" snap -l "$T/r.raw"
like "$err" "not supported by format 'raw'" "raw: says so"
run_ok "help" "$VSTOR" img snapshot --help
like "$out" "Usage: vstor img snapshot" "help: usage"

# Malformed tables (3 each): refused at open, naming the field.
good=$T/good.qcow2
make_img "$good" "cluster_size=65536"
qemu-io -f qcow2 -c "write -P 0x81 0 1M" "$good" >/dev/null &&
	qemu-img snapshot -c one "$good" && qemu-img snapshot -c two "$good" ||
	die "cannot make good.qcow2"

# poke NAME WHAT: a copy of good.qcow2 with one field changed.
poke() {
	python3 - "$good" "$T/$1.qcow2" "$2" <<'EOF'
import struct, sys
src, dst, what = sys.argv[1:4]
d = bytearray(open(src, "rb").read())
nb, off = struct.unpack(">IQ", d[60:72])
def entry_end(p):
    _, _, idl, nl, _, _, _, _, xl = struct.unpack(">QIHHIIQII", d[p:p + 40])
    return p + (40 + xl + idl + nl + 7) // 8 * 8
last = entry_end(off)  # the second (last) entry starts here
if what == "nb":
    d[60:64] = struct.pack(">I", 0x7FFFFFFF)
elif what == "past-end":
    d[60:64] = struct.pack(">I", 200)
elif what == "l1-unaligned":
    v = struct.unpack(">Q", d[off:off + 8])[0] + 512
    d[off:off + 8] = struct.pack(">Q", v)
elif what == "l1-outside":
    d[off:off + 8] = struct.pack(">Q", 1 << 40)
elif what == "l1-size":
    d[off + 8:off + 12] = struct.pack(">I", 0x1000000)
elif what == "id-len":
    d[last + 12:last + 14] = struct.pack(">H", 0xFFFF)
elif what == "extra":
    d[last + 36:last + 40] = struct.pack(">I", 0x10000)
elif what == "offset":
    d[64:72] = struct.pack(">Q", (len(d) + (1 << 20)) // 65536 * 65536)
open(dst, "wb").write(d)
EOF
}

# bad CASE ERE: both info and snapshot -l refuse, naming the field.
bad() {
	poke "$1" "$1" || die "cannot poke $1"
	run_fails "bad $1: info refuses" "$VSTOR" img info "$T/$1.qcow2"
	like "$err" "$2" "bad $1: the error names it"
	run_fails "bad $1: snapshot -l refuses" snap -l "$T/$1.qcow2"
}
bad nb "nb_snapshots 2147483647 is more than 65536"
bad past-end "past the end of the file"
bad l1-unaligned "entry 0: l1_table_offset 0x[0-9a-f]+ is not aligned"
bad l1-outside "entry 0: l1_table_offset 0x10000000000 .*not inside the file"
bad l1-size "entry 0: l1_size 16777216 makes an L1 table larger than 32 MiB"
bad id-len "entry 1: id_str_size goes past the end of the file"
bad extra "entry 1: extra_data_size 65536 is larger than 1024"
bad offset "snapshots_offset|past the end of the file"

# A snapshot of an image written only by vstor, read by qemu-img (2).
img=$T/v.qcow2
make_img "$img" "cluster_size=65536"
"$VBD_IO" -f qcow2 "$img" write 0 3M 0x91 >/dev/null &&
	snap -c v1 "$img" && "$VBD_IO" -f qcow2 "$img" write 1M 1M 0x92 \
	>/dev/null || die "cannot write v.qcow2"
run_ok "qemu-img applies vstor's snapshot" qemu-img snapshot -a v1 "$img"
verify "its content" "$img" "0 3M 0x91"

# Crashes (3 x SWEEP): vstor killed at the Nth pwritev of create, apply
# and delete, N swept over the whole operation.  After any prefix the
# snapshot list is the old or the new one, the disk reads as before (or,
# for apply, as the snapshot), qemu-img check finds no error but leaks
# and COPIED flags that are stale against a leaked refcount (QEMU leaves
# the same windows; both are safe), and `check -r all` makes it clean.
img=$T/k.qcow2
make_img "$img" "cluster_size=4096"
qemu-io -f qcow2 -c "write -P 0x11 0 3M" -c "write -P 0x12 40M 1M" \
	-c "write -c -P 0x14 44M 4k" "$img" >/dev/null &&
	qemu-img snapshot -c q1 "$img" &&
	qemu-io -f qcow2 -c "write -P 0x13 1M 1M" "$img" >/dev/null ||
	die "cannot make k.qcow2"
cp "$img" "$img.orig"
NOW="0 1M 0x11
1M 1M 0x13
2M 1M 0x11
40M 1M 0x12
44M 4k 0x14"
Q1="0 3M 0x11
40M 1M 0x12
44M 4k 0x14"

# after_crash OP N KILLED: one test point for the state a crash left.
after_crash() {
	local op=$1 n=$2 killed=$3 why=() list errs
	run qemu-img snapshot -l "$img"
	list=$(ids "$out")
	case $op in
	create) [[ $list == "1 q1" || $list == "1 q1
2 new" ]] || why+=("list: $list") ;;
	delete) [[ $list == "1 q1" || $list == "" ]] || why+=("list: $list") ;;
	apply) [[ $list == "1 q1" ]] || why+=("list: $list") ;;
	esac
	run qemu-img check -f qcow2 "$img"
	errs=$(grep -E 'ERROR' <<<"$out$err" | grep -v 'OFLAG_COPIED')
	[ "$rc" -le 3 ] && [ "$rc" -ne 1 ] && [ -z "$errs" ] ||
		why+=("check exit $rc: $(head -3 <<<"$out$err")")
	reads_as "$NOW" || { [ "$op" = apply ] && reads_as "$Q1"; } ||
		why+=("the disk reads wrong")
	run qemu-img check -q -r all -f qcow2 "$img"
	run qemu-img check -f qcow2 "$img"
	[ "$rc" -eq 0 ] || why+=("not clean after check -r all: exit $rc")
	[ "$killed" -eq 137 ] || [ "$killed" -eq 0 ] ||
		why+=("vstor exit $killed")
	if [ ${#why[@]} -eq 0 ]; then
		ok "crash in $op at pwritev $n (exit $killed)"
	else
		not_ok "crash in $op at pwritev $n" "${why[@]}"
	fi
}

# reads_as REGIONS: $img reads "OFF LEN 0xPP" in every region.
reads_as() {
	local off len pat args=()
	while read -r off len pat; do
		args+=(-c "read -q -P $pat $off $len")
	done <<<"$1"
	[ -z "$(qemu-io -r -f qcow2 "${args[@]}" "$img" 2>&1)" ]
}

if ! command -v strace >/dev/null; then
	skip $((3 * SWEEP)) "strace is not installed"
else
	# LeakSanitizer cannot run under ptrace (ASan builds).
	export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
	for op in "create -c new" "apply -a q1" "delete -d q1"; do
		read -r name flag arg <<<"$op"
		cp "$img.orig" "$img"
		strace -f -o "$T/count.log" -e trace=pwritev "$VSTOR" img \
			snapshot "$flag" "$arg" "$img" || die "$name run failed"
		total=$(grep -c 'pwritev(' "$T/count.log")
		for k in $(seq 1 "$SWEEP"); do
			n=$k
			[ "$total" -le "$SWEEP" ] ||
				n=$((1 + (total - 1) * (k - 1) / (SWEEP - 1)))
			cp "$img.orig" "$img"
			killed=0
			sh -c '"$@"; exit $?' sh strace -f -o /dev/null \
				-e trace=pwritev \
				-e inject=pwritev:signal=KILL:when="$n" \
				"$VSTOR" img snapshot "$flag" "$arg" "$img" \
				>/dev/null 2>&1 || killed=$?
			after_crash "$name" "$n" "$killed"
		done
	done
fi
