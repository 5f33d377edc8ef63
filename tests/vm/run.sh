#!/bin/bash
# tests/vm/run.sh SCRIPT [QEMU ARGS...]: boot the test VM by hand, run
# SCRIPT in it, print the console and exit with the script's status (255
# when it gave none).  The same as vm_run in a test (tests/lib/vm.sh reads
# the same VM_* variables), for trying a guest script out:
#
#   tests/vm/run.sh my-guest.sh -blockdev driver=file,filename=a.img,node-name=f \
#       -blockdev driver=raw,file=f,node-name=d -device virtio-blk-pci,drive=d
set -u

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
	echo "usage: tests/vm/run.sh SCRIPT [QEMU ARGS...]" >&2
	exit 2
fi
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/vstor-vm.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
exec 3>/dev/null

# What tests/lib/vm.sh uses of tests/lib/functions.sh.
diag() { printf '# %s\n' "$@" >&2; }
die() {
	diag "$*"
	exit 1
}
skip_all() { die "$*"; }
requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || die "missing command: $c"
	done
}

# shellcheck source=tests/lib/vm.sh
. "$TOP/tests/lib/vm.sh"
vm_requires
rc=0
vm_run "$@" || rc=$?
tr -d '\r' <"$vm_log"
exit "$rc"
