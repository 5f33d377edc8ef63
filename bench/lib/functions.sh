# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What the benchmarks share: sourced by bench/*.sh, each of which
# defines die MESSAGE (print, exit 1) before calling run_one.

# The median of a list of seconds.  Not the best: the speed of a shared
# or virtual disk drifts with its neighbours' load, and the best run
# would reward whichever tool happened to run in a quiet moment.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

# iops COUNT SECONDS
iops() {
	awk -v c="$1" -v s="$2" 'BEGIN {
		if (s > 0) printf "%.0f", c / s; else printf "-"
	}'
}

# ratio VSTOR-IOPS PEER-IOPS: above 1, vstor is faster.
ratio() {
	awk -v v="$1" -v q="$2" 'BEGIN {
		if (v > 0 && q > 0) printf "%.2f", v / q; else printf "-"
	}'
}

# run_one COMMAND...: run a `bench` of vstor or qemu-img and print the
# seconds from the "Run completed in N seconds." line both tools print.
run_one() {
	local out secs

	if ! out=$("$@" 2>&1); then
		echo "$out" >&2
		die "failed: $*"
	fi
	secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' \
		<<<"$out")
	[ -n "$secs" ] || die "no 'Run completed' line from: $*"$'\n'"$out"
	echo "$secs"
}
