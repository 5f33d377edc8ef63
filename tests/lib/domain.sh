# shellcheck shell=bash
# Domains of `vstor create` in integration tests (tests/vm/README.md,
# "Domain guests").  Source it after functions.sh and vm.sh:
#
#   . "$(dirname "$0")/../lib/functions.sh"
#   . "$(dirname "$0")/../lib/vm.sh"
#   . "$(dirname "$0")/../lib/domain.sh"
#   requires "$VSTOR"
#   dom_requires                      # before plan: the VM, a state folder
#   plan 3
#   dom_guest_initrd "$T/guest.sh" "$T/guest.cpio"
#   dom_cfg "$T/d1.cfg" name=d1 ramdisk="$T/guest.cpio" \
#       "disk=['raw:$T/a.img,xvda,w']"
#   run_ok "create" "$VSTOR" create "$T/d1.cfg"
#   dom_wait_marker d1 ready 300 || ...
#   dom_wait_console d1 '^size [0-9]+$' 60 || ...
#
# The guest runs in the test VM's "domain guest" mode (vstor.guest=1 on
# its command line): no 9p share and no host tools, the test script runs
# under busybox sh (its #! must be /bin/sh), prints the same markers as
# vm_run's guests on the serial console and powers off at its end; the
# ACPI power button (`vstor shutdown`) sends it SIGTERM.
#
# The console of a domain is copied by a `tail -f` that the first
# dom_wait_console/dom_wait_marker for it starts, so that its text
# outlives the domain: call those from the test's own shell (not inside
# $(...)), and dom_unfollow NAME once the domain has ended.
#
# dom_requires points VSTOR_STATE_DIR at $T/state, so every domain a test
# makes is its own, and at exit every one left is destroyed, and any
# process still running with the test's temp dir on its command line
# (QEMU, vstor serve, a domain monitor) is killed.
#
# Functions:
#   dom_guest_initrd SCRIPT OUT   the VM's initramfs with SCRIPT as /test
#   dom_cfg FILE KEY=VALUE...     a domain config for the VM's kernel
#   dom_console_log NAME          the path of NAME's console.log
#   dom_wait_console NAME ERE SECS  wait for a console line matching ERE
#   dom_wait_marker NAME WHAT SECS  wait for "VSTOR-VM TOKEN WHAT"
#   dom_console NAME              the console text seen so far (\r removed)
#   dom_unfollow NAME             stop copying NAME's console (when it ended)
#   dom_out NAME                  the guest script's output so far
#   dom_gone NAME SECS            wait until `vstor list` no longer has NAME
#   dom_leftovers                 processes still naming $T (should be none)

declare -A _dom_token=()

# dom_requires: the test VM, and a private state folder for the domains.
dom_requires() {
	requires "$VSTOR" python3
	vm_requires
	export VSTOR_STATE_DIR="$T/state"
	mkdir -p "$VSTOR_STATE_DIR"
	cleanup_add _dom_cleanup
}

# dom_guest_initrd SCRIPT OUT: the test VM's initramfs with SCRIPT
# appended as /test (the kernel merges concatenated cpio archives).
dom_guest_initrd() {
	[ -n "$VM_DIR" ] || die "dom_guest_initrd: call dom_requires first"
	_vm_initrd "$1" "$2"
}

# _dom_value VALUE: VALUE as it goes into a config file.  A list, a
# quoted string or a number stays as it is; anything else becomes a
# double-quoted string.
_dom_value() {
	case $1 in
	\[* | \"* | \'*) printf '%s' "$1" ;;
	*)
		if [[ $1 =~ ^[0-9]+$ ]]; then
			printf '%s' "$1"
		else
			printf '"%s"' "$1"
		fi
		;;
	esac
}

# dom_cfg FILE KEY=VALUE...: write a domain config that boots the test
# VM's kernel in domain guest mode.  name= and (for a guest script)
# ramdisk= are the caller's; kernel, memory (256), vcpus (1) and extra
# have defaults that a KEY=VALUE given replaces.  extra always carries
# the console, vstor.guest=1 and a fresh per-domain marker token; extra=
# given is appended to that.
dom_cfg() {
	local file=$1 kv key val name='' extra='' token
	shift
	declare -A set=()
	for kv in "$@"; do
		key=${kv%%=*}
		val=${kv#*=}
		case $key in
		name) name=$val ;;
		extra) extra=" $val" ;;
		esac
		set[$key]=$val
	done
	[ -n "$name" ] || die "dom_cfg: no name="
	token=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	_dom_token[$name]=$token
	{
		echo "# written by tests/lib/domain.sh for $(basename "$0")"
		[ -n "${set[kernel]:-}" ] ||
			echo "kernel = \"$VM_DIR/$(cat "$VM_DIR/kernel")\""
		[ -n "${set[memory]:-}" ] || echo "memory = 256"
		[ -n "${set[vcpus]:-}" ] || echo "vcpus = 1"
		echo "extra = \"console=ttyS0 panic=-1 quiet loglevel=4 no_timer_check vstor.guest=1 vstor_token=$token$extra\""
		for kv in "$@"; do
			key=${kv%%=*}
			[ "$key" = extra ] && continue
			echo "$key = $(_dom_value "${kv#*=}")"
		done
	} >"$file"
	echo "+ dom_cfg $file:" >&3
	sed 's/^/  cfg: /' "$file" >&3
}

# dom_console_log NAME: the path of the domain's console log, from its
# state record (`vstor list -l` JSON: the run folder's console.log, or a
# string that ends in console.log), else from a search of the state
# folder.
dom_console_log() {
	local p
	p=$("$VSTOR" list -l "$1" 2>/dev/null | python3 -c '
import json, sys
def walk(o):
    if isinstance(o, dict):
        if isinstance(o.get("rundir"), str):
            yield o["rundir"] + "/console.log"
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
    elif isinstance(o, str) and o.endswith("console.log"):
        yield o
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
for p in walk(doc):
    print(p)
    break
' 2>/dev/null)
	if [ -z "$p" ]; then
		p=$(find "$VSTOR_STATE_DIR" -path "*/$1/*" -name console.log 2>/dev/null | head -1)
	fi
	[ -n "$p" ] || return 1
	echo "$p"
}

# _dom_follow NAME: once the console log exists, a `tail -f` copies it
# to $T/dom-NAME.console.raw: it keeps reading the open file, so the text
# outlives the domain's runtime folder (removed when the domain ends).
# Call it from the test's own shell (its pid is kept for dom_unfollow).
declare -A _dom_follower=()
_dom_follow() {
	local log
	[ -z "${_dom_follower[$1]:-}" ] || return 0
	log=$(dom_console_log "$1") && [ -f "$log" ] || return 0
	tail -c +1 -f "$log" >"$T/dom-$1.console.raw" 2>/dev/null &
	_dom_follower[$1]=$!
	cleanup_add kill "$!"
}

# dom_unfollow NAME: stop the copy once it has caught up (the log no
# longer grows), so that no process is left reading the domain's files.
dom_unfollow() {
	local pid=${_dom_follower[$1]:-} a b i
	[ -n "$pid" ] && [ "$pid" != "done" ] || return 0
	for ((i = 0; i < 20; i++)); do
		a=$(stat -c %s "$T/dom-$1.console.raw" 2>/dev/null)
		sleep 0.5
		b=$(stat -c %s "$T/dom-$1.console.raw" 2>/dev/null)
		[ "$a" != "$b" ] || break
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	_dom_follower[$1]="done"
	# The whole console into the trace (build/test-logs/).
	dom_console "$1" | head -c 20000 | sed "s/^/  dom $1: /" >&3
	return 0
}

# dom_console NAME: the console text seen so far.
dom_console() {
	if [ -f "$T/dom-$1.console.raw" ]; then
		tr -d '\r' <"$T/dom-$1.console.raw"
	else
		local log
		log=$(dom_console_log "$1") && tr -d '\r' <"$log" 2>/dev/null
	fi
}

# dom_out NAME: the guest script's output so far: the lines after the
# "ready" marker, up to the exit marker if it came.
dom_out() {
	local tok=${_dom_token[$1]:-none}
	dom_console "$1" | sed -n "/^VSTOR-VM $tok ready\$/,/^VSTOR-VM $tok exit /p" |
		sed "1d;/^VSTOR-VM $tok /d"
}

# dom_wait_console NAME ERE SECS: wait until a console line matches ERE;
# on timeout, a diagnostic with the console's last lines and status 1.
dom_wait_console() {
	local name=$1 re=$2 secs=$3 i
	echo "+ dom_wait_console $name /$re/ $secs" >&3
	for ((i = 0; i < secs * 2; i++)); do
		_dom_follow "$name"
		dom_console "$name" >"$T/dom-$name.console" 2>/dev/null
		if grep -qE -- "$re" "$T/dom-$name.console"; then
			return 0
		fi
		# A guest whose init failed will not print it any more.
		if grep -q "^VSTOR-VM ${_dom_token[$name]:-none} error" \
			"$T/dom-$name.console"; then
			break
		fi
		# Nor will a domain that is gone (every 5 s: a list costs).
		if ((i % 10 == 9)) && ! _dom_listed "$name"; then
			sleep 1 # the follower's last read
			dom_console "$name" >"$T/dom-$name.console" 2>/dev/null
			grep -qE -- "$re" "$T/dom-$name.console" && return 0
			diag "$name: the domain is gone"
			break
		fi
		sleep 0.5
	done
	diag "$name: no console line matching /$re/ (waited up to $secs s)" \
		"console ($(dom_console_log "$name" 2>/dev/null || echo 'no log found')), last lines:" \
		"$(tail -15 "$T/dom-$name.console" 2>/dev/null)"
	return 1
}

# dom_wait_marker NAME WHAT SECS: wait for the guest's "VSTOR-VM TOKEN
# WHAT" line (booted, ready, power-button, exit N...).
dom_wait_marker() {
	local tok=${_dom_token[$1]:-}
	[ -n "$tok" ] || die "dom_wait_marker: $1 was not written by dom_cfg"
	dom_wait_console "$1" "^VSTOR-VM $tok $2" "$3"
}

# _dom_listed NAME: `vstor list` shows NAME.
_dom_listed() {
	"$VSTOR" list 2>/dev/null | awk 'NR > 1 { print $1 }' | grep -qxF -- "$1"
}

# dom_gone NAME SECS: wait until `vstor list` no longer shows NAME.
dom_gone() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		_dom_listed "$1" || return 0
		sleep 0.2
	done
	return 1
}

# dom_leftovers: the processes (pid and command) that still have the
# test's temp dir on their command line, this shell excepted.
dom_leftovers() {
	local p cmd
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
		# (a process may end between the glob and the read)
		cmd=$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) || continue
		case $cmd in
		*"$T/"* | *"$T "*) echo "$p $cmd" ;;
		esac
	done
}

# At exit: destroy every domain of the state folder, then kill whatever
# still names $T (a monitor or QEMU that destroy could not reach).
_dom_cleanup() {
	local n p _
	for n in $("$VSTOR" list 2>/dev/null | awk 'NR > 1 && $1 != "Domain-0" { print $1 }'); do
		"$VSTOR" destroy "$n" >/dev/null 2>&1
	done
	dom_leftovers | while read -r p _; do
		kill -KILL "$p" 2>/dev/null
	done
	return 0
}
