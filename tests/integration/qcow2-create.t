#!/bin/bash
# Creating qcow2 images (cow/qcow2-create.c), checked against qemu-img:
# every combination of options gives an image that qemu-img check finds
# clean, whose info matches both what we asked for and what qemu-img
# create makes from the same options, whose content equals that image's,
# and that qemu-io can write to and still check clean.  Bad options are
# refused with one line naming them, and an image in use is not
# destroyed.
#
# Until the qcow2 driver is wired to `vstor img create -f qcow2`, the
# images are made with $TOOLS/qcow2-create, which calls qcow2_create
# directly; without that helper the vstor command is used.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 sha256sum
if [ -x "$TOOLS/qcow2-create" ]; then
	CREATE_TOOL=$TOOLS/qcow2-create
else
	requires "$VSTOR"
	CREATE_TOOL=
fi

# mk IMG SIZE [OPTIONS]: create a qcow2 image with our code.
mk() {
	if [ -n "$CREATE_TOOL" ]; then
		"$CREATE_TOOL" "$@"
	else
		"$VSTOR" img create -q -f qcow2 ${3:+-o "$3"} "$1" "$2"
	fi
}

# summary IMG: the facts qemu-img info gives, on one line.
summary() {
	qemu-img info --output=json -f qcow2 "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = d.get("format-specific", {}).get("data", {})
f = [("virtual-size", d.get("virtual-size")),
     ("cluster-size", d.get("cluster-size")),
     ("compat", s.get("compat")),
     ("refcount-bits", s.get("refcount-bits")),
     ("lazy-refcounts", s.get("lazy-refcounts")),
     ("extended-l2", s.get("extended-l2")),
     ("compression-type", s.get("compression-type")),
     ("backing-filename", d.get("backing-filename")),
     ("backing-filename-format", d.get("backing-filename-format"))]
print(" ".join("%s=%s" % kv for kv in f))'
}

# clean IMG: qemu-img check exits 0 and reports no errors, corruptions
# or leaks.
clean() {
	local json
	json=$(qemu-img check --output=json -f qcow2 "$1") || return 1
	python3 -c '
import json, sys
d = json.load(sys.stdin)
bad = {k: d.get(k, 0) for k in ("check-errors", "corruptions", "leaks",
				"corruptions-fixed", "leaks-fixed")}
sys.exit(1 if any(bad.values()) else 0)' <<<"$json"
}

# vsize IMG: the virtual size.
vsize() {
	qemu-img info --output=json -f qcow2 "$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["virtual-size"])'
}

# one_error NAME REGEX: $err is exactly one "vstor: ..." line matching
# REGEX.
one_error() {
	if [ "$(wc -l <<<"$err")" = 1 ] && [[ $err =~ ^vstor:\ .*$2 ]]; then
		ok "$1"
	else
		not_ok "$1" "stderr: $err" "expected one line matching: vstor: .*$2"
	fi
}

# A raw and a qcow2 backing file with a pattern in their first MiB.
base_raw=$T/base.raw
base_qcow2=$T/base.qcow2
qemu-img create -q -f raw "$base_raw" 4M || die "cannot create $base_raw"
qemu-io -f raw -c 'write -P 0x11 0 1M' "$base_raw" >/dev/null ||
	die "cannot write $base_raw"
qemu-img create -q -f qcow2 "$base_qcow2" 4M || die "cannot create $base_qcow2"
qemu-io -f qcow2 -c 'write -P 0x22 64K 1M' "$base_qcow2" >/dev/null ||
	die "cannot write $base_qcow2"

# The matrix: SIZE|OPTIONS|what info must show (a regex on the summary).
cases=(
	"1G||^virtual-size=1073741824 cluster-size=65536 compat=1.1 refcount-bits=16 lazy-refcounts=False extended-l2=False compression-type=zlib backing-filename=None"
	"64M|compat=1.1|compat=1.1 "
	"64M|compat=v3|compat=1.1 "
	"64M|compat=0.10|compat=0.10 "
	"64M|compat=v2|compat=0.10 "
	"16M|cluster_size=512|cluster-size=512 "
	"16M|cluster_size=4k|cluster-size=4096 "
	"64M|cluster_size=64k|cluster-size=65536 "
	"64M|cluster_size=2M|cluster-size=2097152 "
	"64M|refcount_bits=1|refcount-bits=1 "
	"64M|refcount_bits=8|refcount-bits=8 "
	"64M|refcount_bits=16|refcount-bits=16 "
	"64M|refcount_bits=64|refcount-bits=64 "
	"64M|lazy_refcounts=on|lazy-refcounts=True "
	"64M|extended_l2=on|extended-l2=True "
	"64M|extended_l2=on,cluster_size=16k|cluster-size=16384 .*extended-l2=True "
	"64M|compression_type=zstd|compression-type=zstd "
	"64M|compression_type=zlib,compat=0.10|compat=0.10 "
	"16M|preallocation=off|virtual-size=16777216 "
	"16M|preallocation=metadata|virtual-size=16777216 "
	"16M|preallocation=falloc|virtual-size=16777216 "
	"16M|preallocation=full|virtual-size=16777216 "
	"3M|preallocation=metadata,compat=0.10|compat=0.10 "
	"8M|preallocation=metadata,cluster_size=512,refcount_bits=1|cluster-size=512 .*refcount-bits=1 "
	"4M|preallocation=metadata,cluster_size=512,refcount_bits=64|cluster-size=512 .*refcount-bits=64 "
	"2M|preallocation=full,cluster_size=2M|cluster-size=2097152 "
	"5M|preallocation=falloc,extended_l2=on|extended-l2=True "
	"4M|backing_file=$base_raw,backing_fmt=raw|backing-filename=$base_raw backing-filename-format=raw$"
	"4M|backing_file=$base_qcow2,backing_fmt=qcow2|backing-filename=$base_qcow2 backing-filename-format=qcow2$"
	"4M|backing_file=$base_qcow2,backing_fmt=qcow2,compat=0.10|compat=0.10 .*backing-filename-format=qcow2$"
	"4M|backing_file=$base_qcow2,backing_fmt=qcow2,cluster_size=512|cluster-size=512 .*backing-filename-format=qcow2$"
	"4M|backing_file=$base_raw,backing_fmt=raw,extended_l2=on,preallocation=metadata|extended-l2=True .*backing-filename-format=raw$"
	"0||^virtual-size=0 "
	"1||^virtual-size=512 "
	"1048577||^virtual-size=1049088 "
	"10G||^virtual-size=10737418240 "
	"1T||^virtual-size=1099511627776 "
	"128G|cluster_size=512|^virtual-size=137438953472 cluster-size=512 "
)
POINTS=8

errors=(
	# OPTIONS|regex the one error line must match
	"cluster_size=3000|cluster_size='3000'"
	"cluster_size=256|cluster_size='256'"
	"cluster_size=4M|cluster_size='4M'"
	"cluster_size=64q|cluster_size='64q'"
	"refcount_bits=3|refcount_bits='3'"
	"refcount_bits=128|refcount_bits='128'"
	"refcount_bits=8,compat=0.10|refcount_bits='8'.*compat"
	"compat=1.2|compat='1.2'"
	"lazy_refcounts=on,compat=0.10|lazy_refcounts='on'.*compat"
	"lazy_refcounts=maybe|lazy_refcounts='maybe'"
	"extended_l2=on,cluster_size=4k|extended_l2='on'.*16K"
	"extended_l2=on,compat=0.10|extended_l2='on'.*compat"
	"compression_type=zstd,compat=0.10|compression_type='zstd'.*compat"
	"compression_type=lz4|compression_type='lz4'"
	"preallocation=sometimes|preallocation='sometimes'"
	"preallocation=metadata,backing_file=$base_raw|preallocation='metadata'.*extended_l2"
	"backing_file=$(printf 'x%.0s' {1..1100})|backing_file: the name is 1100 bytes"
	"backing_fmt=raw|backing_fmt='raw'.*backing_file"
	"foo=1|'foo'"
	"data_file=/tmp/x|'data_file' is not supported"
	"encrypt.format=luks|'encrypt.format' is not supported"
)
EPOINTS=3

# Images whose first cluster must be byte for byte what qemu-img writes
# (the same layout of header, extensions and backing name; qemu leaves
# the feature name table out of clusters of 4K and less).
headers=(
	"1G|"
	"0|"
	"1G|compat=0.10"
	"4M|cluster_size=512"
	"1G|cluster_size=4k"
	"1G|cluster_size=8k"
	"1G|cluster_size=2M"
	"1G|refcount_bits=1"
	"1G|refcount_bits=64"
	"1G|lazy_refcounts=on,extended_l2=on,compression_type=zstd"
	"1G|backing_file=$base_qcow2,backing_fmt=qcow2"
	"1G|backing_file=$base_raw,backing_fmt=raw,compat=0.10"
	"1G|backing_file=$base_qcow2,backing_fmt=qcow2,cluster_size=4k"
)

plan $((${#cases[@]} * POINTS + ${#errors[@]} * EPOINTS + ${#headers[@]} + 6 + 4 + 4))

n=0
for c in "${cases[@]}"; do
	n=$((n + 1))
	IFS='|' read -r size opts expect <<<"$c"
	ours=$T/ours$n.qcow2
	ref=$T/ref$n.qcow2
	name="size=$size${opts:+ $opts}"
	run_ok "$name: create" mk "$ours" "$size" "$opts"
	check "$name: qemu-img check is clean" clean "$ours"
	s=$(summary "$ours" 2>/dev/null) || s="no image"
	like "$s" "$expect" "$name: info shows $expect"
	if qemu-img create -q -f qcow2 ${opts:+-o "$opts"} "$ref" "$size"; then
		is "$s" "$(summary "$ref")" "$name: info as qemu-img create's image"
	else
		not_ok "$name: info as qemu-img create's image" \
			"qemu-img create -o '$opts' $size failed"
	fi
	run_ok "$name: content as qemu-img create's image" \
		qemu-img compare -f qcow2 -F qcow2 "$ours" "$ref"
	vs=$(vsize "$ours")
	len=$((vs < 1048576 ? vs : 1048576))
	if [ "$len" -gt 0 ]; then
		run_ok "$name: qemu-io writes $len bytes" \
			qemu-io -f qcow2 -c "write -P 0x5a 0 $len" "$ours"
		run_ok "$name: and reads them back" \
			qemu-io -f qcow2 -c "read -P 0x5a 0 $len" "$ours"
		check "$name: qemu-img check is clean after the write" \
			clean "$ours"
	else
		# An empty disk: nothing fits, yet it is a valid image.
		run_fails "$name: a write to the empty disk fails" \
			qemu-io -f qcow2 -c "write -P 0x5a 0 512" "$ours"
		run_ok "$name: vstor img info reads it" "$VSTOR" img info \
			--output=json "$ours"
		like "$out" '"virtual-size": 0,' "$name: of virtual size 0"
	fi
	rm -f "$ours" "$ref"
done

for h in "${headers[@]}"; do
	IFS='|' read -r size opts <<<"$h"
	rm -f "$T/ours.qcow2" "$T/ref.qcow2"
	mk "$T/ours.qcow2" "$size" "$opts" || diag "create -o '$opts' failed"
	qemu-img create -q -f qcow2 ${opts:+-o "$opts"} "$T/ref.qcow2" "$size"
	cs=$(qemu-img info --output=json -f qcow2 "$T/ref.qcow2" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["cluster-size"])')
	check "size=$size${opts:+ $opts}: header cluster as qemu-img writes it" \
		cmp -s <(head -c "$cs" "$T/ours.qcow2") <(head -c "$cs" "$T/ref.qcow2")
done

for e in "${errors[@]}"; do
	opts=${e%%|*}
	re=${e#*|}
	img=$T/bad.qcow2
	rm -f "$img"
	run_fails "refused: ${opts:0:60}" mk "$img" 64M "$opts"
	one_error "refused: ${opts:0:60}: one line naming it" "$re"
	check "refused: ${opts:0:60}: no file left behind" test ! -e "$img"
done

# Sizes no L1 table of at most 32 MiB could map (qemu-img's limit too:
# 128G is the most 512-byte clusters can hold), refused before any
# allocation.
for size in $((128 << 30 | 512)) 1T 4611686018427387904; do
	run_fails "$size bytes with 512-byte clusters is refused" \
		mk "$T/huge.qcow2" "$size" cluster_size=512
	one_error "$size bytes: one line naming the L1 table limit" \
		"too large for cluster_size 512: the L1 table"
done

# Negative controls: the checks above can fail.
img=$T/control.qcow2
mk "$img" 64M || die "cannot create $img"
# Refcount of cluster 0 (the header) raised from 1 to 2.
printf '\x00\x02' | dd of="$img" bs=1 seek=$((0x20000)) conv=notrunc status=none
if clean "$img" 2>/dev/null; then
	not_ok "negative control: a poked refcount is caught by the check"
else
	ok "negative control: a poked refcount is caught by the check"
fi
mk "$img" 64M cluster_size=4k || die "cannot create $img"
qemu-img create -q -f qcow2 "$T/control-ref.qcow2" 64M
unlike "$(summary "$img")" "^$(summary "$T/control-ref.qcow2")$" \
	"negative control: a different cluster size shows in the summary"
qemu-io -f qcow2 -c 'write -P 0x01 0 4k' "$img" >/dev/null
run_fails "negative control: qemu-img compare sees a changed image" \
	qemu-img compare -f qcow2 -F qcow2 "$img" "$T/control-ref.qcow2"
run_fails "negative control: cluster_size=0 is refused" \
	mk "$img" 1M cluster_size=0

# An image in use is refused, and left as it was.
img=$T/busy.qcow2
qemu-img create -q -f qcow2 "$img" 16M
qemu-io -f qcow2 -c 'write -P 0x33 0 64k' "$img" >/dev/null
before=$(sha256sum <"$img")
# qemu-io's sleep is in milliseconds: ten minutes, ended by the cleanup
# (a short one could end under load before the create below runs).
qemu-io -f qcow2 "$img" -c 'sleep 600000' &
holder=$!
cleanup_add kill "$holder"
# Wait until the writer holds its lock (qemu-img info without -U fails).
locked=no
for _ in $(seq 600); do
	if ! qemu-img info -f qcow2 "$img" >/dev/null 2>&1; then
		locked=yes
		break
	fi
	sleep 0.1
done
[ "$locked" = yes ] || die "qemu-io did not lock $img within 60 s"
run_fails "create over an image in use is refused" mk "$img" 1G
like "$err" "lock|in use|busy" "the refusal says the image is in use"
is "$(sha256sum <"$img")" "$before" "the image in use is unchanged"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
run_ok "once it is free, create over it succeeds" mk "$img" 1G
