/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which accelerator a domain runs on: KVM where it can boot a guest, TCG
 * otherwise.
 *
 * An openable /dev/kvm proves little: some hosts (nested setups such as
 * kvm_pvm) accept every ioctl yet hang a guest as soon as it leaves real
 * mode, which is where a Linux boot goes within its first milliseconds.
 * Others (kvm_pvm) get through the mode switches but only by emulating
 * the guest one instruction at a time, so that a Linux boot takes hours.
 * So the probe runs code: a tiny guest that starts in real mode, loads a
 * GDT, enters 32-bit protected mode, turns on PAE paging and long mode,
 * runs a loop of some 30 million instructions (milliseconds on a CPU,
 * half a minute in an emulator) and reports from 64-bit code with an OUT
 * to an I/O port.  KVM works when that OUT reaches us with the expected
 * value within DOM_ACCEL_PROBE_TIMEOUT_MS.
 *
 * Nothing is cached on disk: the answer can change with a module reload.
 * The probe costs a few milliseconds where KVM works, and the timeout
 * where it does not.
 */
#ifndef VS_HYPERVISOR_ACCEL_H
#define VS_HYPERVISOR_ACCEL_H

#include "hypervisor/config.h" /* enum dom_accel */

struct vs_error;

/* How long the probe guest may run before KVM counts as unable: about
 * a hundred times what it needs on a loaded host where KVM works. */
#define DOM_ACCEL_PROBE_TIMEOUT_MS 1000

/*
 * Probe whether KVM can run a guest through real mode, protected mode and
 * long mode at the speed of a CPU.  Returns 1 if it can, 0 if it cannot
 * (*why, if why is non-NULL, gets a malloc'd one-line reason such as
 * "/dev/kvm does not exist (no KVM module loaded)" or "the probe guest
 * hung in protected mode, before long mode"), or a negative errno with
 * err set when the probe itself could not run (no pipe, no fork).  The
 * caller frees *why.  The probe runs in a child process: the caller's
 * signal handlers, timers and threads are left alone.
 */
int dom_accel_probe(char **why, struct vs_error **err);

/* The rounds of the probe's loop (about 0.5 M instructions each). */
#define DOM_ACCEL_PROBE_ROUNDS 64

/*
 * dom_accel_probe with other settings: `rounds` (1 to 255) of the loop,
 * `timeout_ms` (1 to 600000) to run them.  For tests: one round in a long
 * time proves the probe guest's code right even on a KVM that emulates
 * it.
 */
int dom_accel_probe_run(unsigned rounds, int timeout_ms, char **why,
			struct vs_error **err);

/*
 * The QEMU accelerator name for `want`: "kvm" or "tcg".  DOM_ACCEL_AUTO
 * probes and picks "kvm" when the probe says yes, else "tcg" with the
 * reason in *why (malloc'd, if why is non-NULL; NULL when KVM was picked
 * or not probed).  DOM_ACCEL_KVM and DOM_ACCEL_TCG are returned as asked
 * without probing: a user who insists on KVM gets QEMU's own error.
 */
const char *dom_accel_resolve(enum dom_accel want, char **why);

#endif
