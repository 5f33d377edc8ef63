/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test control of the "crash" driver (vbd/crash.c): a driver that wraps
 * the raw driver and simulates a crash after the N-th write.  For the
 * crash tests only (tests/tools/crash-io.c); nothing in vstor itself
 * calls these.
 *
 * Unarmed, the driver is a plain pass-through to "raw", so opening a
 * disk with `-f crash` or `format=crash` does no harm.  Armed, it counts
 * the writes (pwritev, write_zeroes and discard) that reach the file,
 * keeps the writes since the last flush in a journal with their
 * pre-images, and after the N-th one "loses power": every later write,
 * flush, discard and write_zeroes fails with -EIO and nothing more
 * reaches the file.  While armed, flush only marks the journal stable
 * and does not fdatasync: the driver plays the disk's volatile cache
 * itself, so a real sync would only slow the tests down.
 *
 * The state is process-global (one crash for the whole process), and
 * the calls are thread-safe.  Arm before opening the disk: writes made
 * before arming are never undone.
 */
#ifndef VS_VBD_CRASH_H
#define VS_VBD_CRASH_H

#include <stdbool.h>
#include <stdint.h>

/* What survives in the file when the crash fires. */
enum vbd_crash_mode {
	/* Everything written stays: the page cache survived, only the
	 * process died. */
	VBD_CRASH_KEEP,
	/* Every write since the last flush is undone (in reverse order,
	 * from its pre-image) and the file is cut back to its size at that
	 * flush: the disk's volatile cache was lost in a power cut. */
	VBD_CRASH_DROP,
	/* A seeded random subset of the writes since the last flush
	 * persists, whole: the file is rolled back as for DROP and the kept
	 * writes are replayed in their order.  A disk may persist any
	 * subset of its unflushed writes, so this is a legal power cut too
	 * (torn writes are legal as well, but not simulated). */
	VBD_CRASH_SUBSET,
};

/*
 * Arm the driver: the crash fires right after the `after_writes`-th write
 * from now reaches the file (0: never fire, only count and journal).
 * `seed` chooses the subset for VBD_CRASH_SUBSET.  Resets the count and
 * the fired flag.
 */
void vbd_crash_arm(uint64_t after_writes, enum vbd_crash_mode mode,
		   uint64_t seed);

/* Back to a plain pass-through (flushes sync again). */
void vbd_crash_disarm(void);

/* True once the crash has fired. */
bool vbd_crash_fired(void);

/* Writes that reached a file since vbd_crash_arm. */
uint64_t vbd_crash_writes(void);

/* "keep", "drop", "subset" -> mode; -EINVAL for anything else. */
int vbd_crash_mode_from_name(const char *name, enum vbd_crash_mode *out);

#endif
