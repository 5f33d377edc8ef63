/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Completion batches.  A thread that completes several requests in a
 * row (the io_uring reaper with a batch of CQEs, a qcow2 image's write
 * lane) opens a batch around the callbacks.  A transport whose callback
 * would otherwise send one message per request (an NBD reply, waking
 * the client each time) can hold its message and ask for one call at
 * the batch's end instead, where it sends them all together.  The
 * batch is per thread: nothing here takes a lock.
 *
 * The deferred calls are few (one per connection that had a completion
 * in the batch), so a small fixed array is enough; when it is full, or
 * no batch is open, the transport is told to act at once, as it would
 * without batches.
 */
#include <stdbool.h>
#include <stddef.h>

#include "driver.h"

#define DEFER_MAX 16

struct deferred {
	void (*fn)(void *arg);
	void *arg;
};

static __thread struct {
	unsigned depth;
	unsigned n;
	struct deferred d[DEFER_MAX];
} batch;

void vbd_batch_begin(void)
{
	batch.depth++;
}

void vbd_batch_end(void)
{
	struct deferred d[DEFER_MAX];
	unsigned n;

	if (batch.depth == 0 || --batch.depth)
		return;
	/* Taken off first: a deferred call runs outside any batch, so what
	 * it completes in turn acts at once. */
	n = batch.n;
	for (unsigned i = 0; i < n; i++)
		d[i] = batch.d[i];
	batch.n = 0;
	for (unsigned i = 0; i < n; i++)
		d[i].fn(d[i].arg);
}

int vbd_batch_defer(void (*fn)(void *arg), void *arg)
{
	if (batch.depth == 0)
		return -1;
	for (unsigned i = 0; i < batch.n; i++)
		if (batch.d[i].fn == fn && batch.d[i].arg == arg)
			return 0;
	if (batch.n == DEFER_MAX)
		return -1;
	batch.d[batch.n++] = (struct deferred){fn, arg};
	return 1;
}
