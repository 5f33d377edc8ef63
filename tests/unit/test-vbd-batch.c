/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for completion batches (vbd/batch.c): a deferred call runs
 * once, at the end of the outermost batch, outside any batch; with no
 * batch open, or no room left, the caller is told to act at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vbd/driver.h"

static int calls[20];
static int nested_ret = 99;

static void count(void *arg)
{
	calls[(intptr_t)arg]++;
}

/* A deferred call that tries to defer again: no batch is open then. */
static void defer_again(void *arg)
{
	calls[(intptr_t)arg]++;
	nested_ret = vbd_batch_defer(count, arg);
}

static void test_no_batch(void **state)
{
	(void)state;
	assert_int_equal(vbd_batch_defer(count, (void *)1), -1);
	vbd_batch_end(); /* unbalanced: ignored */
	assert_int_equal(calls[1], 0);
}

static void test_once_at_end(void **state)
{
	(void)state;
	calls[2] = calls[3] = 0;
	vbd_batch_begin();
	assert_int_equal(vbd_batch_defer(count, (void *)2), 1);
	assert_int_equal(vbd_batch_defer(count, (void *)2), 0);
	assert_int_equal(vbd_batch_defer(count, (void *)3), 1);
	vbd_batch_begin();
	assert_int_equal(vbd_batch_defer(count, (void *)3), 0);
	vbd_batch_end();
	assert_int_equal(calls[2], 0);
	assert_int_equal(calls[3], 0);
	vbd_batch_end();
	assert_int_equal(calls[2], 1);
	assert_int_equal(calls[3], 1);
	/* Over: the next batch starts empty. */
	vbd_batch_begin();
	vbd_batch_end();
	assert_int_equal(calls[2], 1);
}

static void test_full(void **state)
{
	int added = 0;

	(void)state;
	for (int i = 0; i < 20; i++)
		calls[i] = 0;
	vbd_batch_begin();
	for (intptr_t i = 0; i < 20; i++) {
		int r = vbd_batch_defer(count, (void *)i);

		assert_true(r == 1 || r == -1);
		if (r == 1)
			added++;
		else
			count((void *)i); /* acts at once */
	}
	assert_true(added > 0 && added < 20);
	vbd_batch_end();
	for (int i = 0; i < 20; i++)
		assert_int_equal(calls[i], 1);
}

static void test_runs_outside(void **state)
{
	(void)state;
	calls[4] = 0;
	vbd_batch_begin();
	assert_int_equal(vbd_batch_defer(defer_again, (void *)4), 1);
	vbd_batch_end();
	assert_int_equal(nested_ret, -1);
	assert_int_equal(calls[4], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_batch),
		cmocka_unit_test(test_once_at_end),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_runs_outside),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
