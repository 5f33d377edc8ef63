#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# run-all.sh: run every benchmark in bench/ (each *.sh but this one), one
# after the other, for `make bench`.  A benchmark exits 0 when it ran
# (whatever its ratios: a benchmark measures, it does not pass or fail),
# 77 when a requirement is missing (it prints why), anything else when a
# run failed.  Exit status: 1 if any benchmark failed, else 0.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
self=$(basename "$0")
failed=()
skipped=()
ran=0

for script in "$here"/*.sh; do
	name=$(basename "$script")
	[ "$name" = "$self" ] && continue
	echo "=== $name"
	"$script"
	rc=$?
	case $rc in
	0) ran=$((ran + 1)) ;;
	77) skipped+=("$name") ;;
	*)
		echo "=== $name failed (exit status $rc)" >&2
		failed+=("$name")
		;;
	esac
	echo
done

echo "=== $ran ran, ${#skipped[@]} skipped${skipped:+ (${skipped[*]})}," \
	"${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
