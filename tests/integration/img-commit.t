#!/bin/bash
# vstor img commit against qemu-img commit.
#
# Chains are built with qemu-img create and seeded qemu-io writes (data,
# zero clusters over data below, compressed clusters, a top larger than
# its base, raw and qcow2 bases), copied into two directories, and
# committed there by qemu-img and by vstor.  Every image of the two
# copies must then read the same (qemu-img compare) and vstor's qcow2
# images must be clean.  Without -d the top image is emptied: nothing of
# it stays allocated.  With -b the data of every image down to BASE goes
# into BASE, and the top is kept (-b implies -d).  Refusals follow
# qemu-img: no backing file, a BASE not in the chain.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io "$VSTOR"

plan 56

mkdir "$T/src" "$T/q" "$T/v"

io() {
	local img=$1 fmt=$2 cmd
	shift 2
	for cmd in "$@"; do
		qemu-io -f "$fmt" -c "$cmd" "$img" >/dev/null ||
			die "qemu-io $cmd on $img failed"
	done
}

# Copies of $T/src/* in $T/q and $T/v (names stay relative).
twins() {
	rm -f "$T"/q/* "$T"/v/*
	cp "$T"/src/* "$T/q/" && cp "$T"/src/* "$T/v/" || die "cannot copy"
}

# same IMG FMT TEXT: $T/q/IMG and $T/v/IMG read the same.
same() {
	run qemu-img compare -f "$2" -F "$2" "$T/q/$1" "$T/v/$1"
	if [ "$rc" -eq 0 ]; then
		ok "$3"
	else
		not_ok "$3" "$out" "$err"
	fi
}

# empty IMG TEXT: nothing of IMG itself is allocated any more.
empty() {
	run qemu-img map --output=json "$1"
	if [ "$rc" -eq 0 ] && ! [[ $out =~ \"depth\":\ 0,\ \"present\":\ true ]]; then
		ok "$2"
	else
		not_ok "$2" "$out" "$err"
	fi
}

# commit TEXT ARGS... (FILE relative to $T/q and $T/v): both commit;
# vstor says "Image committed.".
commit() {
	local text=$1
	shift
	(cd "$T/q" && qemu-img commit -q "$@") || diag "qemu-img commit $* failed"
	run env -C "$T/v" "$VSTOR" img commit "$@"
	is "$out" "Image committed." "$text: vstor commits"
}

# --- two images, top over a qcow2 base --------------------------------
rm -f "$T"/src/*
qemu-img create -q -f qcow2 "$T/src/base.qcow2" 8M
io "$T/src/base.qcow2" qcow2 "write -P 1 0 8M"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/src/top.qcow2"
io "$T/src/top.qcow2" qcow2 "write -P 2 1M 1M" "write -z 3M 1M" \
	"write -c -P 3 5M 128k" "write -P 4 7M 1000" "write -z 6M 4k"
twins
commit "2 deep" top.qcow2
same base.qcow2 qcow2 "2 deep: the base reads as qemu-img's"
same top.qcow2 qcow2 "2 deep: the top reads as qemu-img's"
run qemu-io -c "read -P 0 3M 1M" -c "read -P 3 5M 128k" "$T/v/base.qcow2"
like "$out" "read 1048576/1048576.*read 131072/131072" \
	"2 deep: zero clusters over data and compressed data reached the base"
empty "$T/v/top.qcow2" "2 deep: the top is emptied"
qcow2_clean "2 deep: base clean" "$T/v/base.qcow2"
qcow2_clean "2 deep: top clean" "$T/v/top.qcow2"
check "2 deep: the top gave its space back" \
	test "$(stat -c %s "$T/v/top.qcow2")" -le "$(stat -c %s "$T/q/top.qcow2")"

# -d keeps the top's data.
twins
commit "-d" -d top.qcow2
same base.qcow2 qcow2 "-d: the base reads as qemu-img's"
run qemu-img compare "$T/src/top.qcow2" "$T/v/top.qcow2"
is "$rc" 0 "-d: the top still reads as before"
run qemu-img map --output=json "$T/v/top.qcow2"
like "$out" '"depth": 0, "present": true' "-d: the top keeps its clusters"
qcow2_clean "-d: base clean" "$T/v/base.qcow2"

# -p prints progress, -q nothing, -t unsafe still commits.
twins
run env -C "$T/v" "$VSTOR" img commit -p -t unsafe top.qcow2
like "$err" "100.00/100%" "-p shows progress up to 100%"
run env -C "$T/v" "$VSTOR" img commit -q top.qcow2
is "$out" "" "-q prints nothing"

# --- a base smaller than the top, a raw base ---------------------------
rm -f "$T"/src/*
qemu-img create -q -f raw "$T/src/base.raw" 2M
io "$T/src/base.raw" raw "write -P 1 0 2M"
qemu-img create -q -f qcow2 -b base.raw -F raw "$T/src/top.qcow2" 6M
io "$T/src/top.qcow2" qcow2 "write -P 2 1M 2M" "write -P 3 5M 1M" "write -z 0 64k"
twins
commit "raw base smaller than the top" top.qcow2
same base.raw raw "raw base: reads as qemu-img's"
is "$(stat -c %s "$T/v/base.raw")" 6291456 "raw base: grown to the top's size"
same top.qcow2 qcow2 "raw base: the top reads as qemu-img's"
empty "$T/v/top.qcow2" "raw base: the top is emptied"
qcow2_clean "raw base: top clean" "$T/v/top.qcow2"

# --- a qcow2 base smaller than the top, over a longer backing file -----
rm -f "$T"/src/*
qemu-img create -q -f qcow2 "$T/src/b.qcow2" 8M
io "$T/src/b.qcow2" qcow2 "write -P 1 0 8M"
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 "$T/src/m.qcow2" 2M
io "$T/src/m.qcow2" qcow2 "write -P 2 0 1M"
qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 "$T/src/t.qcow2" 6M
io "$T/src/t.qcow2" qcow2 "write -P 3 512k 1M" "write -P 4 5M 512k"
twins
commit "qcow2 base smaller, longer backing below" t.qcow2
for img in b m t; do
	same $img.qcow2 qcow2 "smaller qcow2 base: $img reads as qemu-img's"
done
run qemu-io -c "read -P 0 2M 3M" "$T/v/m.qcow2"
like "$out" "read 3145728/3145728" "smaller qcow2 base: its grown part hides the longer backing file"
qcow2_clean "smaller qcow2 base: clean" "$T/v/m.qcow2"

# --- three deep, -b ------------------------------------------------------
rm -f "$T"/src/*
qemu-img create -q -f qcow2 "$T/src/b.qcow2" 8M
io "$T/src/b.qcow2" qcow2 "write -P 1 0 8M"
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 "$T/src/m.qcow2"
io "$T/src/m.qcow2" qcow2 "write -P 2 1M 2M" "write -c -P 5 6M 64k" "write -z 7M 64k"
qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 "$T/src/t.qcow2"
io "$T/src/t.qcow2" qcow2 "write -P 3 2M 2M" "write -z 1M 64k"
twins
commit "3 deep, into the middle" t.qcow2
for img in b m t; do
	same $img.qcow2 qcow2 "3 deep into the middle: $img reads as qemu-img's"
done
empty "$T/v/t.qcow2" "3 deep into the middle: the top is emptied"
twins
commit "3 deep, -b b.qcow2" -b b.qcow2 t.qcow2
for img in b t; do
	same $img.qcow2 qcow2 "-b: $img reads as qemu-img's"
done
run qemu-img compare "$T/src/t.qcow2" "$T/v/b.qcow2"
is "$rc" 0 "-b: the base now reads as the top did"
run qemu-img compare "$T/src/t.qcow2" "$T/v/t.qcow2"
is "$rc" 0 "-b implies -d: the top still reads as before"
qcow2_clean "-b: base clean" "$T/v/b.qcow2"
# vstor also knows the base by any path to it (qemu-img only by name).
twins
(cd "$T/q" && qemu-img commit -q -b b.qcow2 t.qcow2)
run_ok "3 deep, -b by another path" "$VSTOR" img commit -b "$T/v/./b.qcow2" "$T/v/t.qcow2"
same b.qcow2 qcow2 "-b by path: the base reads as qemu-img's"
twins
commit "3 deep, -b m.qcow2 (the backing file)" -b m.qcow2 t.qcow2
for img in b m t; do
	same $img.qcow2 qcow2 "-b m: $img reads as qemu-img's"
done

# --- version 2 top, 512-byte clusters -------------------------------------
rm -f "$T"/src/*
qemu-img create -q -f qcow2 -o cluster_size=512 "$T/src/b.qcow2" 4M
io "$T/src/b.qcow2" qcow2 "write -P 1 0 4M"
qemu-img create -q -f qcow2 -o compat=0.10 -b b.qcow2 -F qcow2 "$T/src/t.qcow2"
io "$T/src/t.qcow2" qcow2 "write -P 2 1000 3000" "write -P 0 2M 1M"
twins
commit "version 2 top, 512-byte base" t.qcow2
for img in b t; do
	same $img.qcow2 qcow2 "version 2 top: $img reads as qemu-img's"
done
empty "$T/v/t.qcow2" "version 2 top: emptied"
qcow2_clean "version 2 top: clean" "$T/v/t.qcow2"

# --- refusals ---------------------------------------------------------------
run_fails "no backing file" "$VSTOR" img commit "$T/v/b.qcow2"
like "$err" "Image does not have a backing file" "with qemu-img's message"
run_fails "a base not in the chain" "$VSTOR" img commit -b nonexistent.qcow2 "$T/v/t.qcow2"
like "$err" "Did not find 'nonexistent.qcow2' in the backing chain of" "with qemu-img's message"
run_fails "the top as its own base" "$VSTOR" img commit -b "$T/v/t.qcow2" "$T/v/t.qcow2"
run_fails "an unknown cache mode" "$VSTOR" img commit -t bogus "$T/v/t.qcow2"
run_fails "a missing image" "$VSTOR" img commit "$T/v/none.qcow2"
