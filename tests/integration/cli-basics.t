#!/bin/bash
# The vstor command's front door: help, version, errors for unknown verbs,
# img create/info (human and JSON, sizes with suffixes, checked against
# qemu-img) and disk parse.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img python3 "$VSTOR"

# json_field KEY: the value of KEY in the JSON object on stdin, "MISSING"
# if absent; fails if stdin is not JSON.
json_field() {
	python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get(sys.argv[1], "MISSING"))' "$1"
}

# one_error NAME REGEX: $err is one "vstor: ..." line matching REGEX, and
# at most a "Try 'vstor help ...'" hint besides.
one_error() {
	local lines
	lines=$(grep -v -e "^Try 'vstor help" -e "^Try 'vstor --help'" <<<"$err")
	if [ "$(wc -l <<<"$lines")" = 1 ] && [[ $lines =~ ^vstor:\ .*$2 ]]; then
		ok "$1"
	else
		not_ok "$1" "stderr: $err" "expected one line matching: vstor: .*$2"
	fi
}

plan 53

# Help and version.
run_ok "vstor --help" "$VSTOR" --help
like "$out" "Usage: vstor" "--help prints a usage line"
like "$out" $'\n'"  img " "--help lists the img group"
run_ok "vstor --version" "$VSTOR" --version
like "$out" "^vstor [0-9]+\.[0-9]+" "--version prints 'vstor N.N...'"
run_ok "vstor help img" "$VSTOR" help img
like "$out" $'\n  create .*\n  info ' "help img lists create and info"
run_ok "vstor help img info" "$VSTOR" help img info
like "$out" "Usage: vstor img info" "help img info prints its usage"
run_ok "vstor img info --help" "$VSTOR" img info --help
is "$out" "$("$VSTOR" help img info)" "--help and 'help img info' agree"

# Unknown verbs and groups.
run_fails "unknown verb fails" "$VSTOR" img frobnicate
one_error "unknown verb: one clear line naming it" "frobnicate"
is "$out" "" "unknown verb: nothing on stdout"
run_fails "unknown group fails" "$VSTOR" frobnicate
one_error "unknown group: one clear line naming it" "frobnicate"
run_fails "help for an unknown verb fails" "$VSTOR" help img frobnicate
one_error "help for an unknown verb: one clear line" "frobnicate"

# img create and img info.
f=$T/one-gig.img
run_ok "img create -f raw F 1G" "$VSTOR" img create -f raw "$f" 1G
is "$(stat -c %s "$f")" 1073741824 "the file is 1 GiB long"
like "$(stat -c %b "$f")" "^[0-9]{1,3}$" "and sparse (off is the default)"
run_ok "img info F" "$VSTOR" img info "$f"
like "$out" "^image: $f"$'\n' "img info: image: F"
like "$out" $'\n'"file format: raw"$'\n' "img info: file format: raw"
like "$out" $'\n'"virtual size: 1 GiB \(1073741824 bytes\)"$'\n' \
	"img info: virtual size: 1 GiB (1073741824 bytes)"
like "$out" $'\n'"disk size: [0-9.]+ (B|KiB|MiB)" "img info: disk size"

run_ok "img info --output=json F" "$VSTOR" img info --output=json "$f"
json=$out
is "$(json_field virtual-size <<<"$json")" 1073741824 "json: virtual-size"
is "$(json_field filename <<<"$json")" "$f" "json: filename"
is "$(json_field format <<<"$json")" raw "json: format"
is "$(qemu-img info --output=json -f raw "$f" | json_field virtual-size)" \
	"$(json_field virtual-size <<<"$json")" \
	"json: virtual-size as qemu-img info says"
run_fails "img info --output=yaml fails" "$VSTOR" img info --output=yaml "$f"
one_error "--output=yaml: one clear line" "yaml"

# Sizes: suffixes, bytes, fractions, and nonsense.  The file must come
# out as long as qemu-img create makes it (which rounds up to 512).
for spec in 1000:1024 512K:524288 3M:3145728 1.5M:1572864 2G:2147483648 \
	1T:1099511627776; do
	size=${spec%%:*} bytes=${spec#*:}
	qemu-img create -q -f raw "$T/q-$size.img" "$size"
	run "$VSTOR" img create -f raw "$T/s-$size.img" "$size"
	is "$rc:$(stat -c %s "$T/s-$size.img" 2>&1)" \
		"0:$(stat -c %s "$T/q-$size.img")" \
		"img create ... $size makes $bytes bytes, as qemu-img create does"
	rm -f "$T/q-$size.img" "$T/s-$size.img"
done
for size in 12X abc 1.5; do
	run_fails "img create with size '$size' fails" \
		"$VSTOR" img create -f raw "$T/bad.img" "$size"
	one_error "size '$size': one clear line naming it" "${size//./\\.}"
done
check "a bad size creates no file" test ! -e "$T/bad.img"

# disk parse.
run_ok "disk parse 'phy:/dev/vg/lv,xvda1,w'" \
	"$VSTOR" disk parse 'phy:/dev/vg/lv,xvda1,w'
is "$(json_field devnum <<<"$out")" 51713 "disk parse: devnum 51713 (xvda1)"
like "$out" '"/dev/vg/lv"' "disk parse: the target is there"
run_fails "disk parse of a bad spec fails" \
	"$VSTOR" disk parse 'phy:/dev/vg/lv,xvda1,w,colour=blue'
is "$rc" 1 "a bad spec: exit status 1"
is "$(wc -l <<<"$err")" 1 "a bad spec: exactly one line on stderr"
like "$err" "colour=blue" "a bad spec: the error names the token"
