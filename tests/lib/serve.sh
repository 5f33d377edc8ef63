# Helpers for tests that run `vstor serve`; source after functions.sh.
# shellcheck shell=bash

# serve_start NAME ARGS...: `vstor serve ARGS` in the background, its
# output in $T/NAME.out and $T/NAME.err.  Returns once the server is
# ready: it writes its pidfile ($T/NAME.pid) only when every export
# listens.  Sets $server_pid; the server is killed at cleanup whatever
# happens.  Fails (with a diagnostic) when the server exits first.
serve_start() {
	local name=$1 i
	shift
	"$VSTOR" serve --pidfile "$T/$name.pid" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" &
	server_pid=$!
	cleanup_add kill -KILL "$server_pid"
	for ((i = 0; i < 600; i++)); do
		[ -s "$T/$name.pid" ] && return 0
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	diag "server $name did not start: $(cat "$T/$name.err")"
	return 1
}

# serve_stop NAME: SIGTERM to $server_pid, a bounded wait; one point:
# the server exits 0.  Sets $rc.
serve_stop() {
	local i
	kill -TERM "$server_pid"
	for ((i = 0; i < 600; i++)); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	rc=0
	wait "$server_pid" || rc=$?
	is "$rc" 0 "$1: the server exits 0 on SIGTERM"
}
