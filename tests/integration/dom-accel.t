#!/bin/bash
# The KVM probe (hypervisor/accel.c) is right on this machine: the test
# VM's kernel boots under KVM exactly when the probe says KVM can run a
# guest.  The same guest booting under TCG shows that a failed KVM boot
# is KVM's doing, not the guest's.
#
# Where KVM cannot run a Linux guest (kvm_pvm hosts: the guest crawls
# through an emulator, stuck for hours after "Probing EDD"), the KVM boot
# must run out of its time; where KVM works, the boot takes seconds.
# Either way the probe's answer came first and is compared afterwards.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

PROBE=$TOOLS/dom-accel-probe
requires "$PROBE"
vm_requires

plan 5

run "$PROBE"
probe_rc=$rc probe_out=$out
like "$probe_rc:$probe_out" '^(0:kvm|1:tcg: .{10,})$' \
	"the probe gives a definite answer ($probe_out)"

cat >"$T/guest.sh" <<'EOF2'
#!/bin/sh
echo "guest up: $(uname -m) $(cut -d' ' -f1 /proc/uptime)s"
EOF2

# The control: the guest boots under TCG.
VM_MEM=256 VM_TIMEOUT=120 vm_run "$T/guest.sh"
tcg_rc=$?
is "$tcg_rc/$vm_status" "0/exit" "the guest boots under TCG"
like "$vm_out" 'guest up: x86_64' "the guest ran its script under TCG"

# Under KVM, with a CPU model every KVM offers (-cpu host and max need
# MSRs that some KVMs refuse, which makes QEMU abort before the guest
# runs: not what the probe is about).  A working KVM boots this guest in
# a few seconds even on a loaded host; 40 s is far beyond that.
kvm_rc=0
VM_ACCEL=kvm VM_CPU=qemu64 VM_MEM=256 VM_TIMEOUT=40 vm_run "$T/guest.sh" || kvm_rc=$?
kvm_status=$vm_status
diag "KVM boot: exit $kvm_rc ($kvm_status); probe: $probe_out"
if [ "$kvm_rc" -eq 0 ]; then booted=yes; else booted=no; fi
if [ "$probe_rc" -eq 0 ]; then says=yes; else says=no; fi
is "$booted" "$says" "the guest boots under KVM exactly when the probe says KVM works"

# When it does not boot, the reason is the guest never getting anywhere
# (the boot ran out of time, or QEMU refused KVM: no /dev/kvm), not a
# guest that reached its script and failed.
if [ "$booted" = yes ]; then
	like "$vm_out" 'guest up: x86_64' "the guest ran its script under KVM"
else
	like "$kvm_status" '^(timeout|no-marker)$' \
		"under KVM the guest never reached its script ($kvm_status)"
fi
