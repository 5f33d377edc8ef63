#!/bin/bash
# qcow2's asynchronous path (cow/qcow2-submit.c) under a real client:
# `vstor serve --nbd` on a qcow2 image, plain and with extended L2
# entries, half of it written beforehand by qemu-io (so that requests
# find data clusters, written in place, as well as empty ones, which are
# allocated), driven by fio's nbd engine at depth 32 with verification,
# while qemu-io writes, discards and rewrites another range through the
# same server, so that clusters are freed and handed out again under the
# requests in flight.  fio checks every block it wrote (crc32c); after
# the server stops, qemu-img check finds the image clean, qemu-io reads
# the discarding range's last pattern, and a second server verifies
# fio's blocks again from the image as stored.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/serve.sh
. "$(dirname "$0")/../lib/serve.sh"

requires fio nbdinfo qemu-img qemu-io "$VSTOR"
fio --enghelp=nbd >/dev/null 2>&1 || skip_all "fio has no nbd engine"

MiB=1048576
SIZE=$((64 * MiB))
FIO_SIZE=$((24 * MiB)) # fio's range: [0, 24M)
CHURN=$((48 * MiB))    # qemu-io's range: [48M, 64M)

plan $((2 * 9))

# fio_job URI ARGS...: the fio job on [0, FIO_SIZE), random writes of
# 4 KiB to 128 KiB with a crc32c in every block, 32 in flight.
fio_job() {
	local uri=$1
	shift
	fio --name=async --ioengine=nbd --uri="$uri" --rw=randwrite \
		--bsrange=4k-128k --iodepth=32 \
		--size="$FIO_SIZE" --verify=crc32c --verify_fatal=1 \
		--verify_state_save=0 --randseed=20261122 --output-format=terse "$@"
}

# churn URI: qemu-io writes, discards and rewrites [CHURN, SIZE) through
# the server, cluster by cluster, ending with pattern 0x77.
churn() {
	local uri=$1 round off args=()
	for ((round = 0; round < 6; round++)); do
		for ((off = CHURN; off < SIZE; off += 2 * MiB)); do
			args+=(-c "write -P $((0x30 + round)) $off 2M"
				-c "discard $off 1M" -c flush)
		done
	done
	for ((off = CHURN; off < SIZE; off += 2 * MiB)); do
		args+=(-c "write -P 0x77 $off 2M")
	done
	qemu-io -f raw "${args[@]}" "$uri"
}

one_image() {
	local name=$1 opts=$2 img=$T/$1.qcow2 sock=$T/$1.sock uri out rc

	uri="nbd+unix:///?socket=$sock"
	run_ok "$name: created" qemu-img create -f qcow2 -o "$opts" "$img" \
		"$SIZE"
	run_ok "$name: the first half written by qemu-io" \
		qemu-io -f qcow2 -c "write -P 0x5a 0 $((SIZE / 2))" "$img"
	if ! serve_start "$name" --nbd "unix:$sock" \
		"format=qcow2, vdev=xvda, access=rw, target=$img"; then
		not_ok "$name: the server started"
		skip 6 "$name: no server"
		return
	fi
	ok "$name: the server started"
	churn "$uri" >"$T/$name.churn" 2>&1 &
	local churn_pid=$!
	cleanup_add kill -KILL "$churn_pid"
	out=$(fio_job "$uri" 2>&1)
	rc=$?
	is "$rc" 0 "$name: fio wrote and verified every block at depth 32" ||
		diag "$out"
	rc=0
	wait "$churn_pid" || rc=$?
	is "$rc" 0 "$name: qemu-io wrote, discarded and rewrote meanwhile" ||
		diag "$(tail -5 "$T/$name.churn")"
	serve_stop "$name"
	run_ok "$name: qemu-img check is clean" qemu-img check -f qcow2 "$img"
	run_ok "$name: the churned range reads its last pattern" \
		qemu-io -f qcow2 -c "read -P 0x77 $CHURN $((SIZE - CHURN))" \
		-c "read -P 0x5a $FIO_SIZE $((SIZE / 2 - FIO_SIZE))" "$img"
	# fio's blocks again, read back through a new server.
	if serve_start "$name-ro" --nbd "unix:$sock" --readonly \
		"format=qcow2, vdev=xvda, access=ro, target=$img"; then
		out=$(fio_job "$uri" --verify_only 2>&1)
		rc=$?
		is "$rc" 0 "$name: fio's blocks verify after a restart" ||
			diag "$out"
		kill -TERM "$server_pid"
		wait "$server_pid" || true
	else
		not_ok "$name: fio's blocks verify after a restart"
	fi
}

one_image plain "cluster_size=65536"
one_image extl2 "cluster_size=65536,extended_l2=on"
