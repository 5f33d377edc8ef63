/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The KVM probe: run a tiny guest from real mode to long mode, then
 * through a loop that a CPU runs in milliseconds, and see it report in
 * time.  It reports each mode it reaches and each round of the loop, so
 * that a "no" says where the guest got stuck.
 *
 * The probe runs in a child process.  A KVM_RUN that never returns (the
 * failure we look for) then costs us a SIGKILL, not a stuck caller, and
 * the child may set its own signal handlers and timer without touching
 * the caller's.  The child does only system calls after fork (the caller
 * may have threads holding malloc's lock); it sends a fixed-size report
 * through a pipe and the parent turns it into words.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/log.h"
#include "accel.h"

/* The guest's memory: 2 MiB at guest physical 0, laid out as below. */
#define MEM_SIZE   0x200000
#define PML4_ADDR  0x1000
#define PDPT_ADDR  0x2000
#define PD_ADDR	   0x3000
#define GDT_ADDR   0x4000
#define CODE_ADDR  0x5000
#define STACK_ADDR 0x8000

/* Where and what the guest reports: one OUT per mode it reached. */
#define PROBE_PORT  0x00e9
#define STAGE_REAL  0x01	/* byte OUT from real mode */
#define STAGE_PROT  0x02	/* byte OUT from 32-bit protected mode */
#define STAGE_LONG  0x03	/* byte OUT from 64-bit mode */
#define PROBE_MAGIC 0x76737472u /* dword OUT from 64-bit mode: "vstr" */

/* The furthest point the guest reached, for the reason we give. */
enum stage { AT_START, AT_REAL, AT_PROT, AT_LONG, AT_DONE };

/* Where a failure happened on the host side of the probe. */
enum step {
	STEP_NONE,
	STEP_OPEN,
	STEP_API,
	STEP_CREATE_VM,
	STEP_MEMORY,
	STEP_CPUID,
	STEP_VCPU,
	STEP_REGS,
	STEP_TIMER,
	STEP_RUN,
};

static const char *const step_names[] = {
	[STEP_NONE] = "",
	[STEP_OPEN] = "open /dev/kvm",
	[STEP_API] = "KVM_GET_API_VERSION",
	[STEP_CREATE_VM] = "KVM_CREATE_VM",
	[STEP_MEMORY] = "guest memory",
	[STEP_CPUID] = "KVM_SET_CPUID2",
	[STEP_VCPU] = "KVM_CREATE_VCPU",
	[STEP_REGS] = "KVM_SET_SREGS/KVM_SET_REGS",
	[STEP_TIMER] = "setitimer",
	[STEP_RUN] = "KVM_RUN",
};

/* What the child reports; every field is plain data. */
struct report {
	int works;   /* 1: the guest said the magic from long mode */
	int step;    /* enum step that failed, STEP_NONE if none */
	int error;   /* errno of that step */
	int stage;   /* enum stage reached */
	int timeout; /* KVM_RUN was interrupted by our timer */
	int rounds;  /* rounds of the long-mode loop done */
	int exit_reason;
	uint64_t detail; /* exit-specific: port, fail_entry reason, ... */
};

/*
 * The guest program, hand-assembled, loaded at CODE_ADDR with CS = 0.
 * The two far jumps aim at fixed places, so the parts are laid out
 * there: real mode at +0, 32-bit at PROT_OFF, 64-bit at LONG_OFF.
 */
#define PROT_OFF 0x40
#define LONG_OFF 0x100
/* Byte tables laid out one instruction a line: keep them so. */
/* clang-format off */
static const uint8_t code_real[] = {
	0xfa,				/* cli */
	0xba, PROBE_PORT & 0xff, PROBE_PORT >> 8, /* mov dx, PORT */
	0xb0, STAGE_REAL,		/* mov al, STAGE_REAL */
	0xee,				/* out dx, al */
	0x0f, 0x01, 0x16, (GDT_ADDR + 0x20) & 0xff, (GDT_ADDR + 0x20) >> 8,
	/* lgdt [GDT_ADDR + 0x20] */
	0x0f, 0x20, 0xc0,		/* mov eax, cr0 */
	0x0c, 0x01,			/* or al, 1 (PE) */
	0x0f, 0x22, 0xc0,		/* mov cr0, eax */
	0xea, (CODE_ADDR + PROT_OFF) & 0xff, (CODE_ADDR + PROT_OFF) >> 8, 0x08, 0x00,
	/* jmp 0x08:CODE_ADDR+PROT_OFF */
};

static const uint8_t code_prot[] = {
	0x66, 0xb8, 0x10, 0x00,		/* mov ax, 0x10 */
	0x8e, 0xd8,			/* mov ds, ax */
	0x8e, 0xc0,			/* mov es, ax */
	0x8e, 0xd0,			/* mov ss, ax */
	0xbc, STACK_ADDR & 0xff, STACK_ADDR >> 8, 0, 0, /* mov esp, STACK_ADDR */
	0x66, 0xba, PROBE_PORT & 0xff, PROBE_PORT >> 8, /* mov dx, PORT */
	0xb0, STAGE_PROT,		/* mov al, STAGE_PROT */
	0xee,				/* out dx, al */
	0x0f, 0x20, 0xe0,		/* mov eax, cr4 */
	0x83, 0xc8, 0x20,		/* or eax, 0x20 (PAE) */
	0x0f, 0x22, 0xe0,		/* mov cr4, eax */
	0xb8, PML4_ADDR & 0xff, PML4_ADDR >> 8, 0, 0, /* mov eax, PML4 */
	0x0f, 0x22, 0xd8,		/* mov cr3, eax */
	0xb9, 0x80, 0x00, 0x00, 0xc0,	/* mov ecx, 0xc0000080 (EFER) */
	0x0f, 0x32,			/* rdmsr */
	0x0d, 0x00, 0x01, 0x00, 0x00,	/* or eax, 0x100 (LME) */
	0x0f, 0x30,			/* wrmsr */
	0x0f, 0x20, 0xc0,		/* mov eax, cr0 */
	0x0d, 0x00, 0x00, 0x00, 0x80,	/* or eax, 0x80000000 (PG) */
	0x0f, 0x22, 0xc0,		/* mov cr0, eax */
	0xea, (CODE_ADDR + LONG_OFF) & 0xff, (CODE_ADDR + LONG_OFF) >> 8, 0, 0, 0x18, 0x00,
	/* jmp 0x18:CODE_ADDR+LONG_OFF */
};

/*
 * In long mode, before the magic: work that a CPU does in a few
 * milliseconds, DOM_ACCEL_PROBE_ROUNDS times writing a 1 MiB buffer a
 * quadword at a time (32 M instructions), with a progress OUT after each
 * round (build_guest patches the count for dom_accel_probe_run).  Some KVMs
 * (kvm_pvm) run a guest that is not written for them by emulating it
 * instruction by instruction: it gets through the mode switches above,
 * but a Linux boot then takes hours.  The loop tells the two apart.
 */
#define STAGE_ROUND  0x04 /* byte OUT after each round */
#define BUF_ADDR     0x100000
#define BUF_QWORDS   0x20000

static const uint8_t code_long[] = {
	0x66, 0xba, PROBE_PORT & 0xff, PROBE_PORT >> 8, /* mov dx, PORT */
	0xb0, STAGE_LONG,		/* mov al, STAGE_LONG */
	0xee,				/* out dx, al */
	0x41, 0xb8, DOM_ACCEL_PROBE_ROUNDS, 0, 0, 0, /* mov r8d, ROUNDS */
	/* outer: */
	0xbf, 0, 0, BUF_ADDR >> 16, 0,	/* mov edi, BUF_ADDR */
	0xb9, 0, 0, BUF_QWORDS >> 16, 0, /* mov ecx, BUF_QWORDS */
	/* inner: */
	0x48, 0x89, 0x0f,		/* mov [rdi], rcx */
	0x48, 0x83, 0xc7, 0x08,		/* add rdi, 8 */
	0xff, 0xc9,			/* dec ecx */
	0x75, 0xf5,			/* jnz inner (-11) */
	0xb0, STAGE_ROUND,		/* mov al, STAGE_ROUND */
	0xee,				/* out dx, al */
	0x41, 0xff, 0xc8,		/* dec r8d */
	0x75, 0xe3,			/* jnz outer (-29) */
	0xb8, PROBE_MAGIC & 0xff, (PROBE_MAGIC >> 8) & 0xff, (PROBE_MAGIC >> 16) & 0xff,
	PROBE_MAGIC >> 24,		/* mov eax, MAGIC */
	0xef,				/* out dx, eax */
	0xf4,				/* hlt */
};
/* clang-format on */

/* Flat 4 GiB segments: 32-bit code, data, 64-bit code. */
static const uint64_t gdt[] = {
	0,
	0x00cf9a000000ffffull,
	0x00cf92000000ffffull,
	0x00af9a000000ffffull,
};

/* Each part must fit before the next one's fixed offset. */
_Static_assert(sizeof(code_real) <= PROT_OFF, "real-mode code overlaps");
_Static_assert(PROT_OFF + sizeof(code_prot) <= LONG_OFF,
	       "protected-mode code overlaps");

/* Where code_long holds the number of rounds (mov r8d's immediate). */
#define ROUNDS_IMM_OFF 9

static void build_guest(uint8_t *mem, unsigned rounds)
{
	uint64_t *pt;

	memset(mem, 0, MEM_SIZE);
	/* Identity map of the first 2 MiB with one large page: enough for
	 * everything the guest touches. */
	pt = (uint64_t *)(mem + PML4_ADDR);
	pt[0] = PDPT_ADDR | 0x3; /* present, writable */
	pt = (uint64_t *)(mem + PDPT_ADDR);
	pt[0] = PD_ADDR | 0x3;
	pt = (uint64_t *)(mem + PD_ADDR);
	pt[0] = 0x0 | 0x83; /* present, writable, 2 MiB page */

	memcpy(mem + GDT_ADDR, gdt, sizeof(gdt));
	/* The lgdt operand: limit (16 bits), base (32 bits). */
	uint16_t limit = sizeof(gdt) - 1;
	uint32_t base = GDT_ADDR;
	memcpy(mem + GDT_ADDR + 0x20, &limit, 2);
	memcpy(mem + GDT_ADDR + 0x22, &base, 4);

	memcpy(mem + CODE_ADDR, code_real, sizeof(code_real));
	memcpy(mem + CODE_ADDR + PROT_OFF, code_prot, sizeof(code_prot));
	memcpy(mem + CODE_ADDR + LONG_OFF, code_long, sizeof(code_long));
	mem[CODE_ADDR + LONG_OFF + ROUNDS_IMM_OFF] = (uint8_t)rounds;
}

/* ---- the child ---- */

static struct kvm_run *volatile child_run;

/* The timer's signal: make KVM_RUN return now, or at once if it was
 * about to be entered (immediate_exit closes that race). */
static void on_alarm(int sig)
{
	(void)sig;
	if (child_run)
		child_run->immediate_exit = 1;
}

/* Enough CPUID entries for any CPU KVM knows; static because the child
 * must not call malloc. */
#define CPUID_MAX 512
static uint64_t cpuid_buf[(sizeof(struct kvm_cpuid2) +
			   CPUID_MAX * sizeof(struct kvm_cpuid_entry2)) /
				  sizeof(uint64_t) +
			  1];

static int fail(struct report *rep, enum step step, int error)
{
	rep->step = step;
	rep->error = error;
	return 0;
}

static int run_probe(struct report *rep, unsigned rounds, int timeout_ms)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	struct sigaction sa;
	struct itimerval it;
	int kvm, vm, vcpu, api;
	long run_size;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail(rep, STEP_OPEN, errno);
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return fail(rep, STEP_API, api < 0 ? errno : EPROTO);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail(rep, STEP_CREATE_VM, errno);

	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail(rep, STEP_MEMORY, errno);
	build_guest(mem, rounds);
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail(rep, STEP_MEMORY, errno);
	/* Intel without unrestricted guest emulates real mode with a TSS in
	 * guest memory; put it where our guest has none (as QEMU does). */
	(void)ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail(rep, STEP_VCPU, errno);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (long)sizeof(*run))
		return fail(rep, STEP_VCPU, run_size < 0 ? errno : EPROTO);
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu, 0);
	if (run == MAP_FAILED)
		return fail(rep, STEP_VCPU, errno);

	/* Long mode needs CPUID to say so (EFER.LME is refused otherwise). */
	struct kvm_cpuid2 *cpuid = (struct kvm_cpuid2 *)cpuid_buf;

	cpuid->nent = CPUID_MAX;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 ||
	    ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0)
		return fail(rep, STEP_CPUID, errno);

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return fail(rep, STEP_REGS, errno);
	/* Real mode with every segment at 0: the code runs at CS:IP =
	 * 0:CODE_ADDR. */
	struct kvm_segment *segs[] = {&sregs.cs, &sregs.ds, &sregs.es,
				      &sregs.fs, &sregs.gs, &sregs.ss};
	for (size_t i = 0; i < VS_ARRAY_SIZE(segs); i++) {
		segs[i]->base = 0;
		segs[i]->selector = 0;
	}
	sregs.cr0 &= ~1ull;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return fail(rep, STEP_REGS, errno);
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_ADDR;
	regs.rsp = STACK_ADDR;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return fail(rep, STEP_REGS, errno);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		return fail(rep, STEP_TIMER, errno);
	/* The caller's thread may have blocked it. */
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	if (sigprocmask(SIG_UNBLOCK, &alrm, NULL) < 0)
		return fail(rep, STEP_TIMER, errno);
	child_run = run;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = timeout_ms / 1000;
	it.it_value.tv_usec = (timeout_ms % 1000) * 1000;
	/* Repeat, in case a signal lands between two KVM_RUNs. */
	it.it_interval.tv_usec = 100 * 1000;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		return fail(rep, STEP_TIMER, errno);

	/* Our OUTs and a HLT.  More exits means the guest is looping
	 * through something we did not ask for. */
	for (unsigned exits = 0; exits < rounds + 16; exits++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR) {
				rep->timeout = 1;
				return 0;
			}
			return fail(rep, STEP_RUN, errno);
		}
		rep->exit_reason = (int)run->exit_reason;
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			const uint8_t *data =
				(const uint8_t *)run + run->io.data_offset;
			uint32_t val = 0;

			rep->detail = run->io.port;
			if (run->io.direction != KVM_EXIT_IO_OUT ||
			    run->io.port != PROBE_PORT || run->io.count != 1 ||
			    run->io.size > 4 ||
			    run->io.data_offset + run->io.size >
				    (uint64_t)run_size)
				return 0;
			memcpy(&val, data, run->io.size);
			if (run->io.size == 1 && val == STAGE_REAL)
				rep->stage = AT_REAL;
			else if (run->io.size == 1 && val == STAGE_PROT)
				rep->stage = AT_PROT;
			else if (run->io.size == 1 && val == STAGE_LONG)
				rep->stage = AT_LONG;
			else if (run->io.size == 1 && val == STAGE_ROUND)
				rep->rounds++;
			else if (run->io.size == 4 && val == PROBE_MAGIC &&
				 rep->rounds == (int)rounds) {
				rep->stage = AT_DONE;
				rep->works = 1;
				return 0;
			} else
				return 0;
			break;
		}
		case KVM_EXIT_FAIL_ENTRY:
			rep->detail =
				run->fail_entry.hardware_entry_failure_reason;
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			rep->detail = run->internal.suberror;
			return 0;
		default: return 0;
		}
	}
	return 0;
}

/* ---- the parent ---- */

static const char *stage_text(int stage)
{
	switch (stage) {
	case AT_START:
		return "before its first instruction's report (in real mode)";
	case AT_REAL: return "in real mode, before protected mode";
	case AT_PROT: return "in protected mode, before long mode";
	case AT_LONG: return "in long mode";
	default: return "at its end";
	}
}

static char *explain(const struct report *rep, unsigned rounds, int timeout_ms)
{
	char *s = NULL;
	int r;

	if (rep->step == STEP_OPEN && rep->error == ENOENT)
		r = asprintf(&s,
			     "/dev/kvm does not exist (no KVM module loaded)");
	else if (rep->step != STEP_NONE)
		r = asprintf(&s, "%s: %s", step_names[rep->step],
			     strerror(rep->error));
	else if (rep->timeout && rep->stage == AT_LONG)
		r = asprintf(&s,
			     "the probe guest reached long mode but ran %d of "
			     "%d rounds of a "
			     "loop that takes milliseconds on a CPU in %d ms "
			     "(KVM emulates "
			     "this kind of guest instead of running it)",
			     rep->rounds, rounds, timeout_ms);
	else if (rep->timeout)
		r = asprintf(&s,
			     "the probe guest hung %s (no progress in %d ms)",
			     stage_text(rep->stage), timeout_ms);
	else if (rep->exit_reason == KVM_EXIT_SHUTDOWN)
		r = asprintf(&s, "the probe guest triple-faulted %s",
			     stage_text(rep->stage));
	else if (rep->exit_reason == KVM_EXIT_FAIL_ENTRY)
		r = asprintf(&s,
			     "KVM could not enter the probe guest %s (hardware "
			     "reason %#llx)",
			     stage_text(rep->stage),
			     (unsigned long long)rep->detail);
	else if (rep->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		r = asprintf(&s, "KVM internal error %llu %s",
			     (unsigned long long)rep->detail,
			     stage_text(rep->stage));
	else if (rep->exit_reason == KVM_EXIT_IO)
		r = asprintf(
			&s,
			"the probe guest did unexpected I/O on port %#llx %s",
			(unsigned long long)rep->detail,
			stage_text(rep->stage));
	else
		r = asprintf(
			&s,
			"the probe guest stopped with KVM exit reason %d %s",
			rep->exit_reason, stage_text(rep->stage));
	return r < 0 ? NULL : s;
}

static void set_why(char **why, char *text)
{
	if (why)
		*why = text;
	else
		free(text);
}

/* Reap the child, killing it first if asked; give up after a while (a
 * task stuck in the kernel may not die at once; it becomes init's). */
static void reap(pid_t pid, int do_kill)
{
	struct timespec ms = {0, 10 * 1000000};

	if (do_kill)
		kill(pid, SIGKILL);
	for (int i = 0; i < 300; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return;
		nanosleep(&ms, NULL);
	}
	vs_debug("accel", "the probe process %d did not end", (int)pid);
}

int dom_accel_probe(char **why, struct vs_error **err)
{
	return dom_accel_probe_run(DOM_ACCEL_PROBE_ROUNDS,
				   DOM_ACCEL_PROBE_TIMEOUT_MS, why, err);
}

int dom_accel_probe_run(unsigned rounds, int timeout_ms, char **why,
			struct vs_error **err)
{
	struct report rep;
	struct pollfd pfd;
	int64_t waited = 0;
	int fds[2];
	pid_t pid;
	ssize_t n;
	int r;

	if (why)
		*why = NULL;
	if (rounds < 1 || rounds > 255 || timeout_ms < 1 || timeout_ms > 600000)
		return vs_error_set(
			err, EINVAL,
			"KVM probe: %u rounds in %d ms is out of range", rounds,
			timeout_ms);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return vs_error_set_errno(err, errno, "KVM probe: pipe");
	memset(&rep, 0, sizeof(rep));
	pid = fork();
	if (pid < 0) {
		r = errno;
		close(fds[0]);
		close(fds[1]);
		return vs_error_set_errno(err, r, "KVM probe: fork");
	}
	if (pid == 0) {
		/* Keep only the report pipe (as fd 3): a child stuck in the
		 * kernel must not hold the caller's sockets and pipes open,
		 * where someone may wait for their end. */
		if (fds[1] != 3 && dup2(fds[1], 3) < 0)
			_exit(1);
		close_range(4, ~0u, 0);
		run_probe(&rep, rounds, timeout_ms);
		n = write(3, &rep, sizeof(rep));
		_exit(n == (ssize_t)sizeof(rep) ? 0 : 1);
	}
	close(fds[1]);

	/* The child's own timer ends a hung KVM_RUN; this bound is for a
	 * KVM_RUN that even signals cannot end. */
	pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
	int limit = timeout_ms + 2000;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		r = poll(&pfd, 1, (int)(limit - waited));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (t1.tv_sec - t0.tv_sec) * 1000 +
			 (t1.tv_nsec - t0.tv_nsec) / 1000000;
	} while (r < 0 && errno == EINTR && waited < limit);
	if (r <= 0) {
		close(fds[0]);
		reap(pid, 1);
		set_why(why, strdup("the probe guest hung and could not be "
				    "interrupted"));
		return 0;
	}
	n = read(fds[0], &rep, sizeof(rep));
	close(fds[0]);
	reap(pid, 0);
	if (n != (ssize_t)sizeof(rep)) {
		set_why(why, strdup("the probe process died without a report"));
		return 0;
	}
	if (rep.works) {
		vs_debug("accel", "KVM ran the probe guest to long mode");
		return 1;
	}
	char *text = explain(&rep, rounds, timeout_ms);
	if (!text)
		return vs_error_set(err, ENOMEM, "KVM probe: out of memory");
	vs_debug("accel", "KVM cannot run a guest: %s", text);
	set_why(why, text);
	return 0;
}

const char *dom_accel_resolve(enum dom_accel want, char **why)
{
	struct vs_error *err = NULL;
	char *reason = NULL;
	int r;

	if (why)
		*why = NULL;
	if (want == DOM_ACCEL_KVM)
		return "kvm";
	if (want == DOM_ACCEL_TCG)
		return "tcg";
	r = dom_accel_probe(&reason, &err);
	if (r == 1)
		return "kvm";
	if (r < 0) {
		free(reason);
		reason = strdup(vs_error_msg(err));
		vs_error_free(err);
	}
	set_why(why, reason);
	return "tcg";
}
