/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Progress of a long operation (img convert, commit, rebase...), for a
 * person and for a script.
 *
 * A person gets qemu-img's line, "    (12.34/100%)", redrawn in place on
 * stderr with a carriage return.  A script gets one JSON object per line
 * on a file descriptor it chose (--progress-fd=FD):
 *
 *   {"done": 1048576, "total": 4294967296}
 *
 * "done" never goes down and the last line has done == total when the
 * operation succeeded.  Updates may come from any thread: they are
 * serialised inside.  Output is rate-limited (a line when the shown
 * hundredth of a percent changes and at least 100 ms passed, or a whole
 * percent was crossed), so a caller may update as often as it likes.
 */
#ifndef VS_COMMON_PROGRESS_H
#define VS_COMMON_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct vs_progress;

/*
 * `bar`: draw qemu-img's line on stderr.  `fd`: write JSON lines there
 * (-1: none).  Returns NULL on allocation failure (the caller then
 * carries on without progress) or when neither output is wanted.
 * The fd stays the caller's.
 */
struct vs_progress *vs_progress_new(bool bar, int fd);

/* `done` of `total` bytes are processed.  NULL is allowed. */
void vs_progress_update(struct vs_progress *p, uint64_t done, uint64_t total);

/*
 * Finish: with `success`, the last update is printed even if rate
 * limiting held it back, and the bar's line is ended.  Frees p (NULL is
 * allowed).
 */
void vs_progress_end(struct vs_progress *p, bool success);

/* Plain helper for callers that keep their own state: the JSON line for
 * done/total in buf (always NUL-terminated).  Returns its length. */
int vs_progress_json(char *buf, unsigned buflen, uint64_t done, uint64_t total);

#endif
