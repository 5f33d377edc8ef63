/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the state files of `vstor part map`
 * (imgtools/part-state.c): what unmap reads to know which loop devices,
 * maps and FUSE server to take down.  A damaged file must give an error,
 * never a wrong unmap, so it is untrusted input.  An input is the text
 * of one file.  A state that parses must keep part-priv.h's promises
 * (strings ended inside their buffers, a map kind unmap knows, numbers
 * in the ranges the reader checks) and must read back the same after
 * img_part_state_format, which is what img_part_state_save writes.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "imgtools/part-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENDED(buf) (strnlen((buf), sizeof(buf)) < sizeof(buf))

static void check_loop(const struct img_loop *l)
{
	assert(ENDED(l->dev));
	assert(major(l->rdev) <= 0xfff && minor(l->rdev) <= 0xfffff);
	/* The writer stores these as signed 64-bit numbers. */
	assert(l->backing_dev <= INT64_MAX && l->backing_ino <= INT64_MAX &&
	       l->offset <= INT64_MAX && l->sizelimit <= INT64_MAX);
}

static bool same_loop(const struct img_loop *a, const struct img_loop *b)
{
	return !strcmp(a->dev, b->dev) && a->rdev == b->rdev &&
	       a->backing_dev == b->backing_dev &&
	       a->backing_ino == b->backing_ino && a->offset == b->offset &&
	       a->sizelimit == b->sizelimit && a->autoclear == b->autoclear;
}

static void check(const struct img_part_state *s)
{
	struct img_part_state *again = NULL;
	struct vs_error *err = NULL;
	char *text, *text2;

	assert(ENDED(s->disk) && ENDED(s->format));
	assert(s->n <= 4096);
	assert(s->has_whole || !s->loop_created);
	if (s->has_whole)
		check_loop(&s->whole);
	assert(s->serve_pid == 0 ||
	       (s->serve_pid >= 2 && s->serve_pid <= 0x3fffffff));
	if (s->serve_pid)
		assert(ENDED(s->fuse_file) && ENDED(s->pidfile) &&
		       s->serve_start <= INT64_MAX);
	for (size_t i = 0; i < s->n; i++) {
		const struct img_part_rec *r = &s->recs[i];

		assert(ENDED(r->name) && ENDED(r->dev));
		assert(r->kind == IMG_MAP_DM || r->kind == IMG_MAP_LOOP);
		assert(r->number <= 1000000);
		if (r->kind == IMG_MAP_LOOP)
			check_loop(&r->loop);
	}

	/* What is accepted, written again, reads back the same. */
	text = img_part_state_format(s);
	assert(text);
	if (img_part_state_parse(text, strlen(text), "fuzz-again", &again,
				 &err))
		abort(); /* err names what the writer got wrong */
	assert(!strcmp(again->disk, s->disk) &&
	       !strcmp(again->format, s->format) &&
	       again->has_whole == s->has_whole &&
	       again->loop_created == s->loop_created &&
	       again->serve_pid == s->serve_pid && again->n == s->n);
	if (s->has_whole)
		assert(same_loop(&again->whole, &s->whole));
	if (s->serve_pid)
		assert(again->serve_start == s->serve_start &&
		       !strcmp(again->fuse_file, s->fuse_file) &&
		       !strcmp(again->pidfile, s->pidfile));
	for (size_t i = 0; i < s->n; i++) {
		const struct img_part_rec *a = &s->recs[i],
					  *b = &again->recs[i];

		assert(!strcmp(a->name, b->name) && a->kind == b->kind &&
		       !strcmp(a->dev, b->dev) && a->number == b->number);
		if (a->kind == IMG_MAP_LOOP)
			assert(same_loop(&a->loop, &b->loop));
	}
	text2 = img_part_state_format(again);
	assert(text2 && !strcmp(text, text2));
	free(text2);
	free(text);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_part_state *s = NULL;
	struct vs_error *err = NULL;

	if (img_part_state_parse((const char *)data, size, "fuzz.json", &s,
				 &err) < 0) {
		assert(err && vs_error_msg(err)[0] && !s);
		vs_error_free(err);
		return 0;
	}
	assert(!err && s);
	check(s);
	free(s);
	return 0;
}
