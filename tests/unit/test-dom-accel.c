/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The KVM probe gives a definite answer with a reason, the same one twice,
 * whatever the caller did to its signals; dom_accel_resolve follows it.
 * Whether the answer is right on this machine is dom-accel.t's job (it
 * boots a guest under KVM).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "hypervisor/accel.h"

/* Run the probe and check the shape of its answer; returns 0 or 1 and
 * the reason (caller frees). */
static int probe(char **why_out)
{
	struct vs_error *err = NULL;
	char *why = (char *)1;
	int r = dom_accel_probe(&why, &err);

	if (r < 0)
		fail_msg("the probe could not run: %s", vs_error_msg(err));
	assert_null(err);
	assert_true(r == 0 || r == 1);
	if (r == 1) {
		assert_null(why);
	} else {
		/* A reason a user can act on, on one line. */
		assert_non_null(why);
		assert_true(strlen(why) > 10);
		assert_null(strchr(why, '\n'));
		if (access("/dev/kvm", F_OK) != 0)
			assert_non_null(strstr(why, "/dev/kvm"));
	}
	*why_out = why;
	return r;
}

/* The first answer, that later probes must repeat.  (Each probe costs
 * up to DOM_ACCEL_PROBE_TIMEOUT_MS where KVM cannot run a guest, so the
 * tests share it.) */
static int first_answer = -1;

static int ref_answer(void)
{
	char *why;

	if (first_answer < 0) {
		first_answer = probe(&why);
		free(why);
	}
	return first_answer;
}

static void test_probe_definite(void **state)
{
	/* NULL why and err are allowed. */
	assert_int_equal(dom_accel_probe(NULL, NULL), ref_answer());
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/*
 * A caller with SIGALRM blocked, SIGCHLD ignored and its own interval
 * timer running: the probe must neither depend on nor disturb any of it.
 */
static void test_probe_caller_signals(void **state)
{
	struct sigaction sa = {.sa_handler = on_alarm}, old_alrm, old_chld;
	struct itimerval it = {{0, 50000}, {0, 50000}}, stop = {{0, 0}, {0, 0}};
	sigset_t set, old_mask;
	int ref = ref_answer();
	char *why;

	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old_alrm), 0);
	sa.sa_handler = SIG_IGN;
	assert_int_equal(sigaction(SIGCHLD, &sa, &old_chld), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);

	/* Timer signals interrupt the parent's wait: still one answer. */
	assert_int_equal(probe(&why), ref);
	free(why);

	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &set, &old_mask), 0);
	assert_int_equal(probe(&why), ref);
	free(why);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);

	/* Our handler is still ours. */
	alarms = 0;
	for (int i = 0; i < 100 && !alarms; i++)
		usleep(10000);
	assert_true(alarms > 0);

	assert_int_equal(setitimer(ITIMER_REAL, &stop, NULL), 0);
	sigaction(SIGALRM, &old_alrm, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
}

static void *probe_thread(void *arg)
{
	char *why;
	int *r = arg;

	*r = probe(&why);
	free(why);
	return NULL;
}

/* From two threads at once (a multi-threaded daemon's fork). */
static void test_probe_threads(void **state)
{
	pthread_t t1, t2;
	int r1 = -1, r2 = -1;

	assert_int_equal(pthread_create(&t1, NULL, probe_thread, &r1), 0);
	assert_int_equal(pthread_create(&t2, NULL, probe_thread, &r2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(r1, ref_answer());
	assert_int_equal(r2, ref_answer());
}

static void test_resolve(void **state)
{
	char *why = (char *)1;
	int works = ref_answer();
	const char *name;

	/* Explicit choices are taken as they are, without a probe. */
	assert_string_equal(dom_accel_resolve(DOM_ACCEL_KVM, &why), "kvm");
	assert_null(why);
	assert_string_equal(dom_accel_resolve(DOM_ACCEL_TCG, &why), "tcg");
	assert_null(why);

	name = dom_accel_resolve(DOM_ACCEL_AUTO, &why);
	if (works) {
		assert_string_equal(name, "kvm");
		assert_null(why);
	} else {
		assert_string_equal(name, "tcg");
		assert_non_null(why);
		assert_true(strlen(why) > 10);
		free(why);
	}
}

/*
 * The probe guest's code is right: given time for one round, it gets
 * through every mode to its report on any KVM that runs it at all, even
 * one that emulates it (kvm_pvm: about a second).  Without this a wrong
 * byte in the hand-assembled guest would pass for a KVM that cannot run
 * guests.
 */
static void test_probe_guest_code(void **state)
{
	struct vs_error *err = NULL;
	char *why = NULL;
	int r;

	/* Out-of-range settings are refused. */
	assert_int_equal(dom_accel_probe_run(0, 1000, NULL, &err), -EINVAL);
	vs_error_free(err);
	err = NULL;
	assert_int_equal(dom_accel_probe_run(256, 1000, NULL, &err), -EINVAL);
	vs_error_free(err);
	err = NULL;

	r = dom_accel_probe_run(1, 60000, &why, &err);
	assert_null(err);
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		/* No KVM here: nothing to run the code on. */
		assert_int_equal(r, 0);
		assert_non_null(why);
		free(why);
		return;
	}
	if (r != 1)
		fail_msg("one round of the probe guest failed: %s", why);
	assert_null(why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_definite),
		cmocka_unit_test(test_probe_guest_code),
		cmocka_unit_test(test_probe_caller_signals),
		cmocka_unit_test(test_probe_threads),
		cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
