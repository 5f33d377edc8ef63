#!/bin/bash
# Run every test: the cmocka unit-test binaries in each directory of
# $UNIT_DIRS (plain and ASan builds), then the TAP integration tests in
# tests/integration/*.t.  `make check` sets the environment:
#
#   VSTOR      absolute path of build/vstor
#   TOOLS      directory of the helper programs (build/tests/tools)
#   UNIT_DIRS  directories holding the unit-test binaries (test-*)
#   JOBS       tests run at once (default 2); VERBOSE=1 shows all TAP
#   CI=true    a skipped test counts as a failure
#   TEST_TIMEOUT  seconds one test file may take (default 900; a file
#                 whose header has a line "# test-timeout: N" may take N
#                 seconds if that is more, and starts before the others)
#
# `tests/run.sh FILE.t...` runs only the given integration tests.
#
# Every test's TAP, diagnostics and command trace go to build/test-logs/.  The run uses
# TAP::Harness, the engine behind prove; the last line printed is
# "N passed, N failed[, N skipped]", counting test points over all files.
# A file that dies before its plan completes, or that exits non-zero
# (a sanitizer report at exit), adds a failure.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
self="$top/tests/run.sh"
logdir=${TEST_LOGS:-$top/build/test-logs}
limit=${TEST_TIMEOUT:-900}	# seconds for one test file or binary

# cmocka 1.1.5 with CMOCKA_MESSAGE_OUTPUT=TAP prints a plan per group
# (several plans break TAP), "not ok N # SKIP" for skips and nothing when
# it dies.  Renumber, turn skips into "ok # SKIP", make other lines
# comments, and end with one plan; a short run or a non-zero exit status
# adds a failing point.
fix_cmocka_tap() {
	awk -v bin="$1" '
	/^vstor-exit-status / { status = $2; next }
	/^1\.\.[0-9]+/ { planned += substr($1, 4); next }
	/^(not )?ok [0-9]+/ {
		n++
		if ($0 ~ /^not ok [0-9]+ # SKIP/) {
			sub(/^not ok [0-9]+/, "ok " n)
		} else {
			if ($0 ~ /^not ok/) failed++
			sub(/ok [0-9]+/, "ok " n)
		}
		print; fflush(); next
	}
	/^#/ { print; fflush(); next }
	{ print "# " $0; fflush() }
	END {
		if (n < planned) {
			printf "not ok %d - %s died after %d of %d tests " \
			       "(exit status %d)\n", ++n, bin, n - 1, planned, status
			failed++
		}
		if (status != 0 && !failed)
			printf "not ok %d - %s exited with status %d\n",
			       ++n, bin, status
		if (n == 0 && status == 0)
			print "1..0 # SKIP no test points in " bin
		else
			print "1.." n
	}'
}

# The "# test-timeout: N" a test file declares in its first 40 lines,
# or 0: nested TCG guests take many minutes.
declared_timeout() {
	local n
	n=$(head -n 40 "$1" | sed -n 's/^# test-timeout: \([0-9]\{1,5\}\)$/\1/p' |
		head -n 1)
	echo "${n:-0}"
}

case ${1:-} in
--unit)	# --unit LOG BINARY: one cmocka binary, as TAP
	log=$2 bin=$3
	: >"$log"
	# shellcheck disable=SC2094 # both only append to the log
	{
		CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$limit" "$bin"
		echo "vstor-exit-status $?"
	} 2>>"$log" | fix_cmocka_tap "${bin##*/}" | tee -a "$log"
	exit 0
	;;
--test)	# --test LOG FILE: one integration test
	log=$2 file=$3
	shift 3
	: >"$log"
	export VSTOR_TEST_TRACE=1
	# One stream, so that diagnostics stay next to their test point;
	# the harness ignores lines that are not TAP.
	[ -x "$file" ] || set -- bash
	own=$(declared_timeout "$file")
	[ "$own" -le "$limit" ] || limit=$own
	timeout -k 10 "$limit" "$@" "$file" 2>&1 | tee -a "$log"
	status=${PIPESTATUS[0]}
	[ "$status" -ne 124 ] || echo "# timed out after $limit seconds" |
		tee -a "$log"
	exit "$status"
	;;
esac

cd "$top" || exit 1
export VSTOR=${VSTOR:-$top/build/vstor}
export TOOLS=${TOOLS:-$top/build/tests/tools}
UNIT_DIRS=${UNIT_DIRS:-$top/build/tests/unit $top/build/asan/tests/unit}

# Each entry: MODE<TAB>NAME<TAB>PATH<TAB>LOG
entries=()
# add_tests FILE.t...: an entry per integration test, in that order.
add_tests() {
	local t name
	for t; do
		[ -f "$t" ] || { echo "run.sh: no test file '$t'" >&2; exit 2; }
		name=${t##*/}
		entries+=("test	$t	$t	$logdir/${name%.t}.log")
	done
}
mkdir -p "$logdir"
if [ $# -eq 0 ]; then
	for d in $UNIT_DIRS; do
		[ -d "$d" ] || continue
		case $d in
		*/asan/*) kind=asan ;;
		*) kind=unit ;;
		esac
		mkdir -p "$logdir/$kind"
		for bin in "$d"/test-*; do
			[[ -f $bin && -x $bin ]] || continue
			name=${bin##*/}
			entries+=("unit	$kind/$name	$bin	$logdir/$kind/$name.log")
		done
	done
	shopt -s nullglob
	set -- tests/integration/*.t
	shopt -u nullglob
	# The slowest files (those that declare a timeout, longest first)
	# start first, before the unit tests too, so that the run does not
	# end waiting for one of them.
	slow=() rest=()
	while read -r n t; do
		if [ "$n" -gt 0 ]; then slow+=("$t"); else rest+=("$t"); fi
	done < <(for t in "$@"; do
		echo "$(declared_timeout "$t") $t"
	done | sort -s -k1,1nr)
	units=("${entries[@]}")
	entries=()
	add_tests "${slow[@]}"
	entries+=("${units[@]}")
	add_tests "${rest[@]}"
else
	add_tests "$@"
fi

perl -e '
use strict;
use warnings;
use TAP::Harness;

my ($self, @entries) = @ARGV;
my (%run, %log, %mode, @tests);
for (@entries) {
	my ($mode, $name, $path, $log) = split /\t/;
	die "duplicate test $path\n" if $run{$path};
	$run{$path} = [ $self, "--$mode", $log, $path ];
	$mode{$name} = $mode;
	$log{$name} = $log;
	push @tests, [ $path, $name ];	# the name keeps unit and ASan apart
}
my $harness = TAP::Harness->new({
	verbosity => $ENV{VERBOSE} ? 1 : 0,
	jobs      => $ENV{JOBS} || 2,
	failures  => 1,
	color     => -t STDOUT ? 1 : 0,
	exec      => sub { $run{$_[1]} },	# this script as the wrapper
});
my $agg = $harness->runtests(@tests);

my $ci = ($ENV{CI} // "") eq "true";
my ($pass, $fail, $skip) = (0, 0, 0);
my (@failed_files, @skips);
for my $name (map { $_->[1] } @tests) {
	my ($p) = $agg->parsers($name);
	next unless $p;
	my $run = $p->tests_run;
	my $f = scalar $p->failed;
	my $s = scalar $p->skipped;
	my $planned = $p->tests_planned // 0;
	if ($p->skip_all) {
		push @skips, "$name: " . ($p->skip_all || "no reason");
		$s = 1;
	} else {
		$f += $planned - $run if $planned > $run;
		$f++ if !$f && ($p->has_problems || !defined $p->tests_planned);
	}
	if ($s && !$p->skip_all && open my $fh, "<", $log{$name}) {
		while (<$fh>) {
			push @skips, "$name: test $1: $2" if /^ok (\d+) # SKIP\s*(.*)/i;
		}
	}
	$pass += $run - (scalar $p->failed) - ($p->skip_all ? 0 : $s);
	$fail += $f;
	$skip += $s;
	push @failed_files, $name if $f;
}
if (@skips) {
	print "\n", $ci ? "Skipped (a failure when CI=true):\n" : "Skipped:\n";
	print "  $_\n" for @skips;
}
for my $name (@failed_files) {
	print "\nFAILED $name (log: $log{$name})\n";
	if (open my $fh, "<", $log{$name}) {
		# Unit logs: everything but passing points (stderr holds the
		# sanitizer reports).  Integration logs also hold a trace of
		# every command: show the failures and their diagnostics.
		my ($lines, $show) = (0, $mode{$name} eq "unit");
		while (<$fh>) {
			if ($mode{$name} eq "unit") {
				next if /^ok |^1\.\./;
			} else {
				$show = /^not ok/ || ($show && /^#/);
				next unless $show ||
				    /^# (fatal|planned|no plan|timed out)/;
			}
			print "  $_";
			last if ++$lines >= 60;
		}
	}
}
if ($ci && $skip) {
	$fail += $skip;
	$skip = 0;
}
print "\n$pass passed, $fail failed", ($skip ? ", $skip skipped" : ""), "\n";
exit($fail ? 1 : 0);
' "$self" "${entries[@]}"
