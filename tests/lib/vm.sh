# shellcheck shell=bash
# The test VM for integration tests (tests/vm/README.md tells the whole
# story).  Source it after functions.sh:
#
#   . "$(dirname "$0")/../lib/functions.sh"
#   . "$(dirname "$0")/../lib/vm.sh"
#   vm_requires                 # before plan: QEMU, and the VM built
#   plan 2
#   vm_run "$T/guest.sh" -device virtio-blk-pci,drive=d0 ...
#   is "$?" 0 "the guest test passed"
#
# vm_run SCRIPT [QEMU ARGS...] boots the VM under TCG with the extra QEMU
# arguments, runs SCRIPT in the guest (as /test, chrooted into a root made
# of the host's /usr and a copy of its /etc; the whole host root is
# read-only at /host) and returns the script's exit status.  When the
# guest never reported one (a timeout, a kernel panic, a setup failure)
# it returns 255 and prints the end of the console as diagnostics;
# $vm_status tells which: exit, timeout, setup-error or no-marker.
#
# After vm_run: $vm_log is the console log (kept under $T), $vm_out the
# test script's own output (carriage returns removed).
#
# Settings (environment or shell variables):
#   VM_TIMEOUT  seconds before QEMU is killed (default 300)
#   VM_MEM      guest memory in MiB (default 512; a memory backend that a
#               test adds for vhost-user must have the same size)
#   VM_SMP      virtual CPUs (default 1)
#   VM_SHARE    a host folder the guest mounts writable at /share
#   VM_ACCEL    QEMU's accelerator: tcg (default) or kvm (dom-accel.t:
#               whether KVM boots the guest at all)
#   VM_CPU      QEMU's CPU model (default max)
#   VSTOR_VM_CACHE  where tests/vm/build.sh keeps the VM

VM_TIMEOUT=${VM_TIMEOUT:-300}
VM_MEM=${VM_MEM:-512}
VM_SMP=${VM_SMP:-1}
VM_SHARE=${VM_SHARE:-}
VM_ACCEL=${VM_ACCEL:-tcg}
VM_CPU=${VM_CPU:-max}
VM_DIR=
vm_log='' vm_out='' vm_status=''
_vm_n=0

# vm_requires: skip the whole file, with the reason, unless QEMU and
# busybox are there and the VM is built (or can be built now).
vm_requires() {
	requires qemu-system-x86_64 busybox
	local log="$T/vm-build.log"
	if ! VM_DIR=$("$TOP/tests/vm/build.sh" 2>"$log"); then
		skip_all "cannot build the test VM: $(tail -1 "$log")"
	fi
}

# _vm_initrd SCRIPT OUT: the VM's initramfs with SCRIPT appended as /test
# in a second cpio archive (the kernel unpacks concatenated archives).
_vm_initrd() {
	local extra="$2.d"
	mkdir -p "$extra"
	cp "$1" "$extra/test" && chmod 755 "$extra/test" || return 1
	cat "$VM_DIR/initramfs.cpio" >"$2" || return 1
	(cd "$extra" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null) >>"$2"
}

vm_run() {
	local script=$1 d token qrc=0 exit_line kernel
	shift
	[ -n "$VM_DIR" ] || die "vm_run: call vm_requires first"
	_vm_n=$((_vm_n + 1))
	d="$T/vm-$_vm_n"
	mkdir -p "$d"
	vm_log="$d/console.log"
	vm_out='' vm_status=''
	_vm_initrd "$script" "$d/initrd" || die "vm_run: cannot make $d/initrd"
	token=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	kernel="$VM_DIR/$(cat "$VM_DIR/kernel")"

	local share=()
	[ -z "$VM_SHARE" ] ||
		share=(-virtfs "local,path=$VM_SHARE,mount_tag=share,security_model=none,multidevs=remap")
	echo "+ vm_run $script $*" >&3
	timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 \
		-accel "$VM_ACCEL" -M pc -cpu "$VM_CPU" -m "$VM_MEM" -smp "$VM_SMP" \
		-nodefaults -no-user-config -display none -monitor none \
		-serial "file:$vm_log" -no-reboot \
		-kernel "$kernel" -initrd "$d/initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 no_timer_check vstor_token=$token" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		"${share[@]}" "$@" </dev/null >"$d/qemu.log" 2>&1 || qrc=$?

	touch "$vm_log"
	tr -d '\r' <"$vm_log" >"$d/console.txt"
	vm_out=$(sed -n "/^VSTOR-VM $token ready\$/,/VSTOR-VM $token exit /p" "$d/console.txt" |
		sed '1d;$d')
	exit_line=$(grep -o "VSTOR-VM $token exit [0-9]*\$" "$d/console.txt" | tail -1)
	sed 's/^/  vm: /' "$d/console.txt" | head -c 20000 >&3
	[ -s "$d/qemu.log" ] && sed 's/^/  qemu: /' "$d/qemu.log" >&3
	if [ -n "$exit_line" ]; then
		vm_status="exit"
		echo "  vm exit: ${exit_line##* }" >&3
		return "${exit_line##* }"
	fi
	if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
		vm_status=timeout
		diag "vm_run: no exit status from the guest after $VM_TIMEOUT s; QEMU killed"
	elif grep -q "VSTOR-VM $token error" "$d/console.txt"; then
		vm_status=setup-error
		diag "vm_run: the guest's init failed: $(grep "VSTOR-VM $token error" "$d/console.txt")"
	else
		vm_status=no-marker
		diag "vm_run: QEMU exited ($qrc) without the guest's exit marker"
	fi
	diag "console ($vm_log), last lines:" "$(tail -15 "$d/console.txt")"
	[ -s "$d/qemu.log" ] && diag "qemu: $(tail -5 "$d/qemu.log")"
	return 255
}

# vm_ok NAME SCRIPT [QEMU ARGS...]: one test point, ok when the guest
# script exits 0; otherwise its output is shown.
vm_ok() {
	local name=$1 rc=0
	shift
	vm_run "$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name" "guest exit status $rc ($vm_status)" \
			"guest output (last lines):" "$(printf '%s\n' "$vm_out" | tail -20)"
	fi
}
