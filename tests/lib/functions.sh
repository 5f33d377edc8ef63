# shellcheck shell=bash
# The one helper file every integration test sources:
#
#   . "$(dirname "$0")/../lib/functions.sh"
#   requires qemu-img "$VSTOR"
#   plan 2
#   run_ok "create" "$VSTOR" img create -f raw "$T/a.img" 1M
#   like "$out" '^Formatting' "create says what it made"
#
# TAP output goes to stdout; diagnostics ("# ..." lines, as Test::More
# prints them) go to stderr, where prove shows them.  A trace of every
# command that run, run_ok and run_fails ran, with its output, goes to
# stderr when VSTOR_TEST_TRACE=1 (tests/run.sh sets it and keeps it all in
# build/test-logs/) and nowhere otherwise.  The counters live in this
# shell: call ok, is, run_ok... from the test's own shell, never from a
# pipeline or $(...).  requires and skip_all come before plan.
#
# Variables for the test: $VSTOR, $TOOLS (helper programs), $VBD_IO, $T
# (a private temp dir on a real filesystem, removed at exit), and after
# run_ok/run_fails/run: $out, $err (the command's stdout/stderr, trailing
# newlines removed) and $rc.

set -u

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VSTOR=${VSTOR:-$TOP/build/vstor}
TOOLS=${TOOLS:-$TOP/build/tests/tools}
# shellcheck disable=SC2034 # for the tests
VBD_IO=$TOOLS/vbd-io
export LC_ALL=C

if [ "${VSTOR_TEST_TRACE:-}" = 1 ]; then
	exec 3>&2
else
	exec 3>/dev/null
fi

_tap_n=0
_tap_failed=0
_tap_planned=
_cleanups=()
out='' err='' rc=0

# diag TEXT...: each argument, and each line in it, as a "# " line on
# stderr.
diag() {
	local arg line
	for arg in "$@"; do
		while IFS= read -r line; do
			printf '# %s\n' "$line"
		done <<<"$arg"
	done >&2
}

plan() {
	_tap_planned=$1
	echo "1..$1"
}

skip_all() {
	echo "1..0 # SKIP $*"
	_tap_planned=0
	exit 0
}

# Stop this test file now: the points not run count as failures.
die() {
	diag "fatal: $*"
	exit 1
}

ok() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $*"
}

# not_ok NAME [DIAGNOSTIC...]
not_ok() {
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
	shift
	[ $# -eq 0 ] || diag "$@"
	return 1
}

# skip N REASON: N test points that cannot run here.
skip() {
	local i
	for ((i = 0; i < $1; i++)); do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # SKIP $2"
	done
}

# check NAME CMD...: ok if CMD (a test, a shell function) succeeds.  CMD
# runs in this shell, so it may set variables.
check() {
	local name=$1
	shift
	if "$@"; then
		ok "$name"
	else
		not_ok "$name" "failed: $*"
	fi
}

# is GOT EXPECTED NAME
is() {
	if [ "$1" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "     got: '$1'" "expected: '$2'"
	fi
}

# like GOT ERE NAME (bash =~ syntax; anchors apply to the whole text)
like() {
	if [[ $1 =~ $2 ]]; then
		ok "$3"
	else
		not_ok "$3" "     got: '$1'" "expected to match: /$2/"
	fi
}

unlike() {
	if [[ $1 =~ $2 ]]; then
		not_ok "$3" "     got: '$1'" "expected not to match: /$2/"
	else
		ok "$3"
	fi
}

# run CMD...: run a command, keep $out, $err and $rc, log them.  Asserts
# nothing.
run() {
	local o="$T/.out" e="$T/.err"

	echo "+ $*" >&3
	rc=0
	"$@" >"$o" 2>"$e" 3>&- || rc=$?
	out=$(cat "$o")
	err=$(cat "$e")
	[ -z "$out" ] || head -c 20000 "$o" | sed 's/^/  out: /' >&3
	[ -z "$err" ] || head -c 20000 "$e" | sed 's/^/  err: /' >&3
	echo "  exit: $rc" >&3
}

_run_diag() {
	diag "command: $*" "exit status: $rc"
	[ -z "$err" ] || diag "stderr: $(printf '%s' "$err" | head -5)"
}

# run_ok NAME CMD...: the command exits 0.
run_ok() {
	local name=$1
	shift
	run "$@"
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name"
		_run_diag "$@"
	fi
}

# run_fails NAME CMD...: the command exits non-zero (and is not killed by
# a signal: a crash is not a clean refusal).
run_fails() {
	local name=$1
	shift
	run "$@"
	if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ]; then
		ok "$name"
	else
		not_ok "$name"
		_run_diag "$@"
	fi
}

# requires CMD...: skip the whole file, with the reason, unless every
# command (a name on $PATH or a path) is there and executable.
requires() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	[ ${#missing[@]} -eq 0 ] || skip_all "missing: ${missing[*]}"
}

# cleanup_add CMD...: run CMD at exit (last added runs first), even when
# the test dies.
# qcow2_clean NAME IMG: one test point, ok when `qemu-img check` finds
# neither errors nor leaks in the qcow2 image IMG.
qcow2_clean() {
	run qemu-img check -f qcow2 "$2"
	if [ "$rc" -eq 0 ] && [[ $out =~ "No errors were found" ]] &&
		! [[ $out =~ leaked ]]; then
		ok "$1"
	else
		not_ok "$1" "exit $rc" "$out" "$err"
	fi
}

cleanup_add() {
	_cleanups+=("$(printf '%q ' "$@")")
}

_finish() {
	local status=$? i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}" >/dev/null 2>&1 || true
	done
	[ -n "${T:-}" ] && rm -rf "$T"
	if [ -z "$_tap_planned" ]; then
		diag "no plan was printed"
		status=1
	elif [ "$_tap_n" -ne "$_tap_planned" ]; then
		diag "planned $_tap_planned tests but ran $_tap_n"
		status=1
	elif [ "$_tap_failed" -gt 0 ]; then
		status=1
	fi
	exit "$status"
}

trap _finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# O_DIRECT needs a real filesystem: /var/tmp, not a tmpfs /tmp.
T=$(mktemp -d "${VSTOR_TEST_TMPDIR:-/var/tmp}/vstor-test.XXXXXX") ||
	die "cannot create a temp dir"
