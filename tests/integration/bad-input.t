#!/bin/bash
# Files that are not images: each gives exactly one line on stderr that
# names the file, nothing on stdout, and a non-zero exit, never a crash.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires setpriv "$VSTOR"

# refused NAME FILE CMD...: CMD fails cleanly, with one stderr line that
# names FILE and nothing on stdout.
refused() {
	local name=$1 file=$2
	shift 2
	run_fails "$name: exits non-zero" "$@"
	is "$(wc -l <<<"$err")" 1 "$name: exactly one line on stderr"
	if [[ $err == *"$file"* ]]; then
		ok "$name: the message names the file"
	else
		not_ok "$name: the message names the file" "stderr: $err"
	fi
	is "$out" "" "$name: nothing on stdout"
}

plan 21

# A directory the unprivileged user can walk into.
chmod 0711 "$T"

refused "img info on a missing file" "$T/missing.img" \
	"$VSTOR" img info "$T/missing.img"

mkdir "$T/dir.img"
refused "img info on a directory" "$T/dir.img" "$VSTOR" img info "$T/dir.img"

: >"$T/empty.img"
refused "img info on a zero-length file" "$T/empty.img" \
	"$VSTOR" img info "$T/empty.img"

# Unreadable: mode 000.  Root reads anything, so run as nobody then.
: >"$T/secret.img"
truncate -s 1M "$T/secret.img"
chmod 000 "$T/secret.img"
as_user=()
[ "$(id -u)" -ne 0 ] || as_user=(setpriv --reuid=65534 --regid=65534
				  --clear-groups)
run_ok "the unprivileged user can run vstor" "${as_user[@]}" "$VSTOR" --version
refused "img info on a file without read permission" "$T/secret.img" \
	"${as_user[@]}" "$VSTOR" img info "$T/secret.img"

refused "img create in a missing directory" "$T/no/such/dir/new.img" \
	"$VSTOR" img create -q -f raw "$T/no/such/dir/new.img" 1M
